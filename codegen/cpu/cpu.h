/* The CPU backend: a function planned into kernels (codegen/program.h), the elementwise ones
 * compiled to native code through LLVM and JIT-loaded, the others run on the reference
 * implementation until they have kernels of their own; then run on concrete tensors. */
#ifndef DLC_CODEGEN_CPU_CPU_H
#define DLC_CODEGEN_CPU_CPU_H

#include "codegen/cpu/jit.h"
#include "codegen/mode.h"
#include "codegen/program.h"
#include "codegen/ref/interp.h"
#include "ir/ir.h"
#include "support/cache.h"

#include <stdio.h>

typedef struct cg_cpu cg_cpu;

/* How to compile (docs/modes.md). reduce-overhead and max-autotune specialize at the first
 * call, to its shapes: max-autotune times gemm candidates for each matrix product and
 * convolution (codegen/cpu/tune.h), reduce-overhead makes the straight-line step
 * (codegen/cpu/straight.h); calls with other shapes run the plan kernel by kernel. */
typedef struct cg_cpu_opts {
    cg_mode     mode;
    const char *cache_dir;   /* the compile cache (support/cache.h); NULL: none */
    FILE       *log;         /* what specializing did: the search per gemm shape, the step's
                              * compile (--time-passes, --report); NULL: nothing */
} cg_cpu_opts;

/* What specializing took (seconds) and where the straight-line step came from. */
typedef struct cg_straight_stats {
    double            tune_seconds, seconds;
    bool              made;
    sup_cache_outcome cache;
} cg_straight_stats;

/* Compiles `f` (which must outlive the result); `fuse` is false for -O0. NULL with a message. */
cg_cpu *cg_cpu_compile(const dl_func *f, bool fuse, char *err, size_t errlen);
/* The same through the compile cache in `cache_dir` (support/cache.h; NULL: none): the object
 * LLVM makes for f is looked up there first and stored there after a miss. */
cg_cpu *cg_cpu_compile_cached(const dl_func *f, bool fuse, const char *cache_dir, char *err,
                              size_t errlen);
/* The same in any mode. */
cg_cpu *cg_cpu_compile_opts(const dl_func *f, const cg_cpu_opts *o, char *err, size_t errlen);
const cg_straight_stats *cg_cpu_straight_stats(const cg_cpu *p);
/* reduce-overhead: "dlc: @NAME: K of N calls ran the straight-line step" (nothing otherwise). */
void    cg_cpu_mode_summary(const cg_cpu *p, FILE *out);
/* Whether p's code came from the cache (hit), was compiled and stored (miss), or neither (off). */
sup_cache_outcome cg_cpu_cache_outcome(const cg_cpu *p);
void    cg_cpu_destroy(cg_cpu *p);
/* What compiling took and made: seconds, and kernels native (elementwise, matmul or convolution,
 * reduction or strided copy) and not (views are not counted). */
void    cg_cpu_stats(const cg_cpu *p, double *seconds, int *elementwise, int *matmul, int *reduce,
                     int *reference);
/* Runs the compiled function, as cg_ref_run does (same arguments, results, assign semantics). */
bool    cg_cpu_run(cg_cpu *p, cg_tensor *args, cg_tensor *results, char *err, size_t errlen);

/* --profile: from now on every kernel of p is timed (false when memory is short); the report
 * lists the `top` kernels by time, the share of each kind and the buffer bytes of a call. */
bool    cg_cpu_profile(cg_cpu *p);
void    cg_cpu_profile_report(const cg_cpu *p, FILE *out, int top);

/* The executor running the compiled function (its memory plan, for --report). */
const struct cg_exec *cg_cpu_exec(const cg_cpu *p);

/* Whether kernel k has compiled code (the others run C: gemm, conv, the reference; a matrix
 * product has its epilogue's, under its name). */
bool    cg_cpu_compiled(const cg_kernel *k);
/* Adds the code of every compiled kernel of prog to m, unoptimized, named as the kernels are. */
bool    cg_cpu_emit_kernels(cg_jit *j, LLVMModuleRef m, const cg_program *prog, char *err,
                            size_t errlen);

/* --emit=llvm and --emit=asm: the kernels of `f` as optimized LLVM IR or assembly (malloc'd). */
char   *cg_cpu_text(const dl_func *f, bool fuse, bool assembly, char *err, size_t errlen);

#endif
