/* The pass manager. A pass is a plain function over a module, listed in passes/passes.def;
 * pipelines are lists of names. Between passes the manager resets the scratch arena, runs the
 * verifier (when asked, and always in debug and sanitizer builds) and prints the IR on request. */
#ifndef DLC_PASSES_PASS_H
#define DLC_PASSES_PASS_H

#include "ir/ir.h"

#include <stdio.h>

typedef struct dl_pass_opts {
    sup_arena  *scratch;         /* reset after every pass; set by the manager */
    bool        verify_each;     /* run the verifier after every pass */
    bool        print_after_all; /* print the IR after every pass ... */
    const char *print_after;     /* ... or after the passes in this comma-separated list */
    FILE       *print_to;        /* where printed IR goes (stdout when NULL) */
    bool        time_passes;     /* report each pass's wall time on stderr */
} dl_pass_opts;

/* Every pass: false when it failed (and reported why); the module is then unusable. */
typedef bool (*dl_pass_fn)(dl_module *m, const dl_pass_opts *opts, dl_diag *diag);

#define PASS(name, summary, fn) bool fn(dl_module *m, const dl_pass_opts *opts, dl_diag *diag);
#include "passes/passes.def"
#undef PASS

typedef struct dl_pass_info {
    const char *name;
    const char *summary;
    dl_pass_fn  fn;
} dl_pass_info;

const dl_pass_info *pass_lookup(const char *name, size_t n);
void                pass_list(FILE *out);

/* Runs the comma-separated passes in order. Unknown names are reported before anything runs. */
bool pass_run_pipeline(dl_module *m, const char *pipeline, const dl_pass_opts *opts, dl_diag *diag);

#endif
