/* `dlc run FILE --entry NAME`: one compiled entry run on .npy inputs. Arguments come from
 * --input NAME=FILE.npy; parameters and buffers from --weights FILE.safetensors (by their
 * state_dict path) or from their initializers, seeded; results go to DIR/0.npy, DIR/1.npy, ...
 * Every file is checked against the signature first: a missing or extra input, a dtype or a
 * shape that does not fit is an error that names the argument and both types. */
#ifndef DLC_CODEGEN_RUN_H
#define DLC_CODEGEN_RUN_H

#include "codegen/mode.h"
#include "codegen/ref/interp.h"
#include "ir/ir.h"

#include <stdint.h>

typedef struct cg_run_input {
    const char *name;       /* the argument */
    const char *path;       /* its .npy file */
} cg_run_input;

typedef struct cg_run_opts {
    int                 ninputs;
    const cg_run_input *inputs;
    const char         *output_dir;
    const char         *weights;   /* NULL: initialise parameters from their initializers */
    uint64_t            seed;
    bool                reference; /* run on the reference interpreter instead of the CPU backend */
    cg_mode             mode;      /* -O: the CPU backend's pipeline and code generation */
    const char         *print_after; /* --print-after=PASS,...: print the IR after these passes */
    bool                time;      /* print compile and run times on stderr (--time-passes) */
    bool                grad;      /* f went through the autodiff pass: its last results are the
                                    * gradients (pass_grad_wants order), written as grad_NAME.npy */
    const char         *cache_dir; /* the compile cache (support/cache.h), or NULL: none */
    bool                report;    /* --report: print the memory plan of the run on stdout */
} cg_run_opts;

/* A parameter or buffer argument a of f: from `weights` (a safetensors file, by its path) when
 * given, else from its initializer seeded by `seed` (or the file its load() names). out->data
 * is malloc'd by the allocation hook (sup_free). False after reporting an error. */
bool cg_run_init(const dl_func *f, int a, const char *weights, uint64_t seed, cg_tensor *out,
                 dl_diag *diag);

/* Runs `f` (an entry lowered by the frontend) on the CPU backend or the reference interpreter.
 * False after reporting an error. */
bool cg_run_entry(const dl_func *f, const cg_run_opts *opts, dl_diag *diag);

#endif
