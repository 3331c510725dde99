/* The compile modes (see mode.h): every mode's pipeline is a line of this table. */
#include "codegen/mode.h"

#include <string.h>

static const struct mode {
    const char *name;
    const char *graph;       /* graph passes */
    const char *codegen;     /* graph passes, decomposition, graph passes again, fusion */
    bool        fuse, straight_line, autotune;
} modes[CG_NMODES] = {
    [CG_MODE_O0] = {"0", "", "decompose", false, false, false},
    [CG_MODE_DEFAULT] = {"default", "fold,simplify,cse,dce",
                         "fold,simplify,cse,dce,decompose,fold,simplify,cse,dce,fuse", true, false, false},
    [CG_MODE_REDUCE_OVERHEAD] = {"reduce-overhead", "fold,simplify,cse,dce",
                                 "fold,simplify,cse,dce,decompose,fold,simplify,cse,dce,fuse", true, true, false},
    [CG_MODE_MAX_AUTOTUNE] = {"max-autotune", "fold,simplify,cse,dce",
                              "fold,simplify,cse,dce,decompose,fold,simplify,cse,dce,fuse", true, false, true},
};

bool cg_mode_parse(const char *s, cg_mode *out)
{
    for (int i = 0; i < CG_NMODES; i++)
        if (!strcmp(s, modes[i].name)) {
            *out = (cg_mode)i;
            return true;
        }
    return false;
}

const char *cg_mode_name(cg_mode m) { return modes[m].name; }
bool        cg_mode_fuses(cg_mode m) { return modes[m].fuse; }
bool        cg_mode_straight_line(cg_mode m) { return modes[m].straight_line; }
bool        cg_mode_autotunes(cg_mode m) { return modes[m].autotune; }
const char *cg_mode_graph_pipeline(cg_mode m) { return modes[m].graph; }
const char *cg_mode_codegen_pipeline(cg_mode m) { return modes[m].codegen; }

bool cg_mode_optimize(dl_module *m, cg_mode mode, bool for_codegen, const dl_pass_opts *opts, dl_diag *diag)
{
    return pass_run_pipeline(m, for_codegen ? modes[mode].codegen : modes[mode].graph, opts, diag);
}
