/* What -O max-autotune and -O reduce-overhead add to an AOT library (docs/modes.md). Shapes are
 * symbolic when the library is compiled, so both specialize to a batch size known then: the train
 * block's `batch`, else 64 (CG_AOT_SPECIAL_BATCH), every symbolic dimension taking that value.
 * max-autotune times the gemm candidates on this machine at those shapes (codegen/cpu/tune.h, its
 * records in the compile cache) and the library carries the micro-kernels it chose and, per matrix
 * product or convolution, which one runs it; reduce-overhead adds each function's straight-line
 * step for those shapes (codegen/cpu/straight.h), which the library runs when a call's shapes are
 * those (the executor otherwise). Decided before the object is made, so the object's cache key
 * covers the choices. */
#ifndef DLC_CODEGEN_AOT_SPECIAL_H
#define DLC_CODEGEN_AOT_SPECIAL_H

#include "codegen/aot/aot.h"
#include "codegen/cpu/gemm.h"
#include "codegen/cpu/jit.h"
#include "support/alloc.h"

#include <stdio.h>

enum { CG_AOT_SPECIAL_BATCH = 64, CG_AOT_MAX_VARIANTS = 32 };

typedef struct cg_aot_special {
    sup_arena      arena;
    int64_t        batch;          /* every symbol's value */
    bool           fuse;           /* the plans' fusion */
    bool           straight;       /* reduce-overhead: a step per function */
    int            nvar;           /* max-autotune: the distinct parameter sets chosen */
    cg_gemm_params var[CG_AOT_MAX_VARIANTS];
    int            ntuned;         /* kernels (by plan name) and the variant each runs on */
    const char   **tuned;
    int           *tuned_var;
} cg_aot_special;

/* Decides s for lib (its functions planned as the library plans them, with prefix): the tuning
 * runs here (log: one line per shape, or NULL). With --cpu naming another processor than this
 * one nothing is timed: the defaults stay (noted on log). False with a message in err. */
bool cg_aot_special_make(cg_aot_special *s, const dl_module *lib, const char *prefix, const cg_aot_opts *o,
                         int64_t batch, FILE *log, char *err, size_t errlen);
void cg_aot_special_free(cg_aot_special *s);
/* Adds the choices to an object's cache key. */
void cg_aot_special_hash(const cg_aot_special *s, sup_sha256_ctx *h);

/* Adds to m the variants' micro-kernels and the straight-line steps, and sets vals[0..9] to the
 * descriptor's fields from ngemms to straight_syms (codegen/aot/model.h). */
bool cg_aot_special_emit(const cg_aot_special *s, const dl_module *lib, const char *prefix, cg_jit *j,
                         LLVMModuleRef m, LLVMValueRef vals[10], char *err, size_t errlen);

#endif
