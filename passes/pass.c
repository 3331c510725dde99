/* The pass manager (see pass.h). */
#include "passes/pass.h"

#include <string.h>
#include <time.h>

static const dl_pass_info passes[] = {
#define PASS(name, summary, fn) {#name, summary, fn},
#include "passes/passes.def"
#undef PASS
};
enum { NPASSES = sizeof passes / sizeof *passes };

const dl_pass_info *pass_lookup(const char *name, size_t n)
{
    for (int i = 0; i < NPASSES; i++)
        if (strlen(passes[i].name) == n && !memcmp(passes[i].name, name, n))
            return &passes[i];
    return NULL;
}

void pass_list(FILE *out)
{
    for (int i = 0; i < NPASSES; i++)
        fprintf(out, "  %-10s %s\n", passes[i].name, passes[i].summary);
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !memcmp(p, name, n))
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bool pass_run_pipeline(dl_module *m, const char *pipeline, const dl_pass_opts *opts_in,
                       dl_diag *diag)
{
    const dl_pass_info *list[64];
    int n = 0;
    for (const char *p = pipeline; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const dl_pass_info *pi = len ? pass_lookup(p, len) : NULL;
        if (!pi) {
            sup_diag_error(diag, (dl_loc){0}, "unknown pass '%.*s' (--list-passes lists them)",
                           (int)len, p);
            return false;
        }
        if (n == 64) {
            sup_diag_error(diag, (dl_loc){0}, "more than 64 passes in one pipeline");
            return false;
        }
        list[n++] = pi;
        p = comma ? comma + 1 : NULL;
    }

    dl_pass_opts opts = *opts_in;
    sup_arena scratch;
    jmp_buf oom;
    /* `i` survives the longjmp, so it must not live in a register. */
    volatile int i = 0;
    sup_arena_init(&scratch, &oom);
    opts.scratch = &scratch;
    if (setjmp(oom)) {
        m->arena.oom = NULL;
        sup_arena_reset(&scratch);
        sup_diag_error(diag, (dl_loc){0}, "out of memory in pass '%s'", list[i]->name);
        return false;
    }
    m->arena.oom = &oom;
#ifdef DLC_VERIFY_EACH
    opts.verify_each = true;
#endif
    bool ok = true;
    for (i = 0; i < n && ok; i++) {
        double t0 = now();
        ok = list[i]->fn(m, &opts, diag);
        sup_arena_reset(&scratch);
        if (opts.time_passes)
            fprintf(stderr, "dlc: pass %-10s %8.3f ms\n", list[i]->name, 1e3 * (now() - t0));
        if (ok && opts.verify_each && !ir_verify(m, diag)) {
            sup_diag_error(diag, (dl_loc){0}, "the IR is broken after pass '%s' (a bug in dlc)",
                           list[i]->name);
            ok = false;
        }
        if (ok && (opts.print_after_all || in_list(opts.print_after, list[i]->name))) {
            FILE *out = opts.print_to ? opts.print_to : stdout;
            fprintf(out, "// -----// IR Dump After %s //----- //\n", list[i]->name);
            ir_print(out, m);
        }
    }
    m->arena.oom = NULL;
    return ok;
}
