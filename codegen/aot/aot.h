/* `dlc FILE.dl -o OUT`: ahead-of-time compilation (SPEC sections 1 and 8, docs/aot.md). The
 * module's @forward (and, with a train block, its training step) is optimized, planned and
 * compiled by LLVM into one object file with the kernels, the gemm micro-kernel, the functions'
 * IR, the weights and typed C wrappers; the system linker joins it with dlc's run time (a static
 * PIC archive carried inside dlc) into a shared library or one relocatable object. */
#ifndef DLC_CODEGEN_AOT_AOT_H
#define DLC_CODEGEN_AOT_AOT_H

#include "codegen/mode.h"
#include "ir/ir.h"

#include <stdint.h>
#include <stdio.h>

typedef struct cg_aot_opts {
    const char *output;       /* ending .so (and its .h), .o (and its .h) or .h */
    const char *model;        /* the C prefix comes from this model's name */
    const char *source;       /* the .dl file, named in the header */
    const char *cpu;          /* LLVM CPU name; NULL: this machine */
    const char *weights;      /* --weights FILE.safetensors, or NULL: the initializers */
    bool        external;     /* --external-weights: the model's weights are read at create */
    cg_mode     mode;         /* -O: the pipeline and code generation */
    const char *print_after;  /* --print-after=PASS,...: print the IR after these passes */
    bool        seed_set;
    uint64_t    seed;
    bool        time;         /* --time-passes: print how long each stage took */
    const char *cache_dir;    /* the compile cache (support/cache.h), or NULL: none */
    bool        report;       /* --report: print the kernels' table on stdout (codegen/report.h) */
} cg_aot_opts;

/* Compiles m (as the frontend lowered it: @forward, and @loss with m->train) to o->output. False
 * after reporting an error. */
bool cg_aot_compile(dl_module *m, const cg_aot_opts *o, dl_diag *diag);

/* --emit=header: the header alone, on `out`. */
bool cg_aot_emit_header(dl_module *m, const cg_aot_opts *o, FILE *out, dl_diag *diag);

#endif
