/* The compile modes of SPEC §1 (-O0, -O default, -O reduce-overhead, -O max-autotune), as in
 * torch.compile: what each runs, in one place. Every mode gives the same results within float32
 * rounding; they differ in how much work goes into the compile and what the run costs. */
#ifndef DLC_CODEGEN_MODE_H
#define DLC_CODEGEN_MODE_H

#include "ir/ir.h"
#include "passes/pass.h"

typedef enum {
    CG_MODE_O0,               /* no graph passes, one kernel per op: the debugging baseline */
    CG_MODE_DEFAULT,          /* the graph passes, fusion, memory planning: fast compile */
    CG_MODE_REDUCE_OVERHEAD,  /* also: a step is one straight-line call over the planned arena */
    CG_MODE_MAX_AUTOTUNE,     /* also: candidate kernels timed on the real shapes, the fastest kept */
    CG_NMODES
} cg_mode;

/* "0", "default", "reduce-overhead", "max-autotune". */
bool        cg_mode_parse(const char *s, cg_mode *out);
const char *cg_mode_name(cg_mode m);

/* What code generation does in mode m. */
bool cg_mode_fuses(cg_mode m);          /* kernels follow the fuse pass's groups (else one per op) */
bool cg_mode_straight_line(cg_mode m);  /* reduce-overhead */
bool cg_mode_autotunes(cg_mode m);      /* max-autotune */

/* The graph passes (`dlc --emit=ir-opt` prints their result): none in -O0. */
const char *cg_mode_graph_pipeline(cg_mode m);
/* Everything from the frontend's IR to what the backends take: the graph passes, the
 * decompositions, the same passes again over what decomposing exposed, then fusion. */
const char *cg_mode_codegen_pipeline(cg_mode m);

/* Runs the graph pipeline or the code-generation pipeline (opts: --print-after, --time-passes). */
bool cg_mode_optimize(dl_module *m, cg_mode mode, bool for_codegen, const dl_pass_opts *opts, dl_diag *diag);

#endif
