/* Running a planned function (codegen/program.h) whose kernels are already machine code: binding
 * the symbolic dimensions from the arguments, giving each value a buffer, calling the kernels in
 * order (matrix products and convolutions through gemm, kernel-less ops on the reference), and
 * applying the buffer updates. No LLVM here: `dlc run` hands it JIT-compiled kernels
 * (codegen/cpu/cpu.c), an AOT library the ones compiled into it (codegen/aot/). */
#ifndef DLC_CODEGEN_CPU_EXEC_H
#define DLC_CODEGEN_CPU_EXEC_H

#include "codegen/cpu/gemm.h"
#include "codegen/program.h"
#include "codegen/ref/interp.h"
#include "runtime/pool.h"

#include <stdio.h>

/* A compiled kernel: buffers by value id, the symbols' values, a status word for bad data
 * (CG_STATUS_*: status[1..3] = value, size, op), and the rows [begin, end) of its output to
 * compute (elementwise kernels split across the pool; the others take 0, INT64_MAX). */
typedef void cg_kernel_fn(void **bufs, const int64_t *syms, int64_t *status, int64_t begin,
                          int64_t end);
enum { CG_STATUS_OK, CG_STATUS_INDEX };

/* An elementwise kernel over some of its rows, as a pool task: cg_rows_run(&job, begin, end, t)
 * runs job.fn on rows [begin, end) (elementwise kernels meet no bad data, so the status goes
 * unread). The executor splits kernels and runs epilogues with it, the straight-line step too. */
typedef struct cg_rows_job {
    cg_kernel_fn  *fn;
    void         **bufs;
    const int64_t *syms;
} cg_rows_job;
void cg_rows_run(void *job, int64_t begin, int64_t end, int thread);

typedef struct cg_exec cg_exec;

/* An executor of `prog` (which must outlive it): fns[i] is kernel i's code (a matrix product's:
 * its epilogue's), NULL for the kinds without compiled code (matmul, conv, view, reference); `gemm` runs the matrix products and
 * convolutions (NULL when prog has none) and is borrowed, as `pool` is: with pool NULL the
 * executor starts its own when prog has work to split. NULL with a message in err. */
cg_exec *cg_exec_create(const cg_program *prog, cg_kernel_fn *const *fns, cg_gemm *gemm, rt_pool *pool,
                        char *err, size_t errlen);
void     cg_exec_destroy(cg_exec *e);

/* Runs the function on args (one per argument, concrete shapes: the symbols are bound from them
 * and every mention must agree). Results: with `outs` NULL, results[i].data is malloc'd (the
 * caller frees it with cg_tensor_free); else result i is copied to outs[i], which holds its
 * bytes. Then every `assign` writes its value into its buffer argument's data. False with a
 * message in err (a shape mismatch naming the argument, an index out of range, no memory). */
bool     cg_exec_run(cg_exec *e, const cg_tensor *args, cg_tensor *results, void *const *outs,
                     char *err, size_t errlen);

/* The memory plan (lifetimes, and the offsets of the last call), for --report; and how often
 * the arena has been allocated or grown (a second call with the same shapes adds none). */
const struct cg_memplan *cg_exec_memplan(const cg_exec *e);
/* The symbols' values the plan was last placed for (prog->syms' order), NULL before any call. */
const int64_t *cg_exec_syms(const cg_exec *e);
int64_t  cg_exec_arena_grows(const cg_exec *e);

/* --profile: time every kernel from now on (false when memory is short), then report the `top`
 * kernels by time, the share of each kind and the buffer bytes of a call. */
bool     cg_exec_profile(cg_exec *e);
void     cg_exec_profile_report(const cg_exec *e, FILE *out, int top);

/* ---- -O max-autotune and -O reduce-overhead (docs/modes.md) ---------------------------- */

/* Binds the symbols from args as a call does, checking every argument: syms in prog->syms'
 * order (at most 256). False with a message in err. */
bool     cg_exec_bind(const cg_exec *e, const cg_tensor *args, int64_t *syms, char *err, size_t errlen);
/* Kernel `kernel` (a matrix product or a convolution) runs on g (borrowed; NULL: the gemm the
 * executor was made with): max-autotune's choice for its shape. */
void     cg_exec_set_gemm(cg_exec *e, int kernel, cg_gemm *g);
cg_gemm *cg_exec_gemm(const cg_exec *e, int kernel);
/* The threads the kernels split their work across (NULL: none). */
rt_pool *cg_exec_pool(const cg_exec *e);
/* Runs kernel `kernel` on bufs (per value id) at syms as a call does. False with a message. */
bool     cg_exec_run_kernel(cg_exec *e, int kernel, void **bufs, const int64_t *syms, char *err,
                            size_t errlen);

/* reduce-overhead: from now on a call whose symbols are `syms` runs `fn`, the step specialized
 * to them (codegen/cpu/straight.h), instead of the kernels one by one; other calls, and every
 * call while profiling, run the plan as before. False when memory is short. */
typedef struct cg_straight_env cg_straight_env;
typedef int64_t cg_straight_fn(cg_straight_env *env, void **bufs, char *arena);
bool     cg_exec_set_straight(cg_exec *e, const int64_t *syms, cg_straight_fn *fn, char *err,
                              size_t errlen);
/* How many calls ran the straight-line step. */
int64_t  cg_exec_straight_runs(const cg_exec *e);

/* The integer helpers compiled kernels call by name (Python's floor division and modulo,
 * integer powers): the JIT resolves them in this process, an AOT library links them. */
int64_t cg_cpu_ifloordiv(int64_t a, int64_t b);
int64_t cg_cpu_imod(int64_t a, int64_t b);
int64_t cg_cpu_ipow(int64_t a, int64_t b);

#endif
