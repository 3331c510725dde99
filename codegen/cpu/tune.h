/* -O max-autotune on the CPU (docs/modes.md): the gemm's parameters chosen per matrix-product
 * shape by timing candidates. For each distinct gemm call a plan makes at given symbols (a
 * matrix product's, or the dominant one of a convolution's im2col path), a small set of
 * register blocks (mr x nr) valid for the CPU's vector width is timed on scratch data of that
 * shape with the default blocking, then blockings (kc, mc, nc) around the defaults with the
 * fastest block; the fastest is kept, recorded in the compile cache (support/cache.h) so the
 * next compile does no search. Each distinct (vec, mr, nr) micro-kernel is compiled once per
 * JIT (its object cached too); kernels with the same choice share one cg_gemm. */
#ifndef DLC_CODEGEN_CPU_TUNE_H
#define DLC_CODEGEN_CPU_TUNE_H

#include "codegen/cpu/exec.h"
#include "codegen/cpu/gemm.h"
#include "codegen/cpu/jit.h"
#include "codegen/program.h"
#include "runtime/pool.h"

#include <stdio.h>

/* How a matrix-product kernel calls the gemm at given symbols, as the executor's run_matmul
 * does: `batch` calls of shape s, the i-th on a + i * a_step, b + i * b_step, c + i * c_step
 * (elements), where a and b are the buffers read (a transpose's input when the product reads
 * through it) and c the product. */
typedef struct cg_matmul_call {
    cg_gemm_shape   s;
    int64_t         batch, a_step, b_step, c_step;
    const dl_value *a, *b, *c;
} cg_matmul_call;

/* The call of kernel k (a CG_K_MATMUL) of prog at syms (prog->syms' order). */
void cg_tune_matmul_call(const cg_program *prog, const cg_kernel *k, const int64_t *syms, cg_matmul_call *c);
/* The gemm call kernel k makes at syms that its choice is timed on: a product's, or a
 * convolution's dominant one; false for kernels that multiply nothing. */
bool cg_tune_kernel_shape(const cg_program *prog, const cg_kernel *k, const int64_t *syms, cg_gemm_shape *s);

typedef struct cg_tuner cg_tuner;

/* A tuner compiling micro-kernels into j (which must outlive it) and timing them on pool's
 * threads (NULL: one), keeping its records in cache_dir (NULL: none: every shape is searched);
 * one line per shape goes to log (NULL: silent). NULL with a message in err. */
cg_tuner *cg_tuner_create(cg_jit *j, rt_pool *pool, const char *cache_dir, FILE *log, char *err,
                          size_t errlen);
/* Frees the tuner and every gemm it made (the executors using them go first). */
void      cg_tuner_destroy(cg_tuner *t);

/* The parameters for shape s: the cache's record, else the fastest candidate (timed now, then
 * recorded). False with a message in err (LLVM or memory). */
bool      cg_tuner_choose(cg_tuner *t, const cg_gemm_shape *s, cg_gemm_params *out, char *err,
                          size_t errlen);
/* A gemm for p (made once per distinct p, owned by t). */
cg_gemm  *cg_tuner_gemm(cg_tuner *t, const cg_gemm_params *p, char *err, size_t errlen);
/* Every matrix product and convolution of e (which runs prog) gets the gemm chosen for its
 * shape at syms. */
bool      cg_tuner_tune_exec(cg_tuner *t, cg_exec *e, const cg_program *prog, const int64_t *syms,
                             char *err, size_t errlen);
/* Searches and cache hits so far. */
void      cg_tuner_counts(const cg_tuner *t, int *searched, int *cached);

#endif
