/* -O reduce-overhead on the CPU (docs/modes.md): a step as one straight-line native function.
 * When a call's shapes are those the step was specialized to, the executor (exec.c) calls
 * cg_straight_fn instead of walking the plan. The function stores every value's pointer (the
 * arena's base plus its planned offset, a constant) in bufs, then calls the kernels in the
 * plan's order: compiled kernels directly, elementwise ones large enough to split through
 * cg_straight_split, matrix products straight into the gemm with their sizes and strides as
 * constants, all else (convolutions, scatter, reference ops, products with an epilogue)
 * through cg_straight_kernel, the executor's own driver for that kernel. The same kernels in
 * the same order as the executor: the results are identical, bit for bit.
 * codegen/cpu/straight_emit.c generates it (dlc run: at the first call; an AOT library: at
 * compile time). No LLVM here: AOT libraries carry this file. */
#ifndef DLC_CODEGEN_CPU_STRAIGHT_H
#define DLC_CODEGEN_CPU_STRAIGHT_H

#include "codegen/cpu/exec.h"
#include "codegen/cpu/gemm.h"
#include "runtime/pool.h"

#include <stddef.h>
#include <stdint.h>

/* What the generated function reads besides its buffers; the executor owns it. Generated code
 * reads pool, gemm and status at their offsetof (every field 8 bytes apart: one layout for C
 * and the LLVM IR). */
typedef struct cg_straight_env {
    cg_exec        *exec;
    rt_pool        *pool;       /* NULL: the calling thread alone */
    cg_gemm *const *gemm;       /* per kernel: the gemm that runs it (max-autotune's choice) */
    const int64_t  *syms;       /* the symbols' values the function is specialized to */
    int64_t         status[4];  /* a compiled kernel's report of bad data (exec.h CG_STATUS_*) */
    char            err[512];   /* a driver's message */
} cg_straight_env;

/* The step: bufs has the arguments' pointers at their ids; arena is at least the plan's peak
 * for the specialized symbols. -1 when every kernel ran, else the index of the kernel that
 * failed (env->status, or env->err, says why). */
typedef int64_t cg_straight_fn(cg_straight_env *env, void **bufs, char *arena);

/* Runs an elementwise kernel's `rows` output rows split across env's pool (whole when it has
 * one thread), as the executor splits them. */
void cg_straight_split(cg_straight_env *env, cg_kernel_fn *fn, void **bufs, int64_t rows);
/* Runs kernel `kernel` as the executor does (exec.c's driver for its kind); false with a
 * message in env->err. */
bool cg_straight_kernel(cg_straight_env *env, int64_t kernel, void **bufs);

#endif
