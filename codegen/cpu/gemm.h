/* Single-precision matrix multiply for the CPU backend, built the way BLIS and OpenBLAS are: the
 * operands are packed into contiguous panels sized for the caches (B: KC x NC, A: MC x KC), and a
 * register-blocked MR x NR micro-kernel, generated as LLVM IR through the C API and JIT-compiled
 * once, runs over them. The block loops are split across the runtime's thread pool. */
#ifndef DLC_CODEGEN_CPU_GEMM_H
#define DLC_CODEGEN_CPU_GEMM_H

#include "codegen/cpu/jit.h"
#include "runtime/pool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The tuning knobs, all fixed when the micro-kernel is compiled, so an autotuner can search them.
 * The micro-kernel keeps mr * (nr / vec) vector accumulators in registers (32 zmm on AVX-512:
 * leave room for nr / vec loads of B and one broadcast of A). */
typedef struct cg_gemm_params {
    int vec;   /* floats per vector: 16 (AVX-512 zmm), 8 (AVX2 ymm) or 4 */
    int mr;    /* rows of C per micro-kernel call (broadcasts of A) */
    int nr;    /* columns of C per micro-kernel call, a multiple of vec */
    int kc;    /* depth of one packed block: a KC x NR sliver of B should sit in L1 */
    int mc;    /* rows of one packed A block (MC x KC, per thread, in L2); rounded up to mr */
    int nc;    /* columns of one packed B block (KC x NC, shared, in L3); rounded up to nr */
} cg_gemm_params;

typedef struct cg_gemm cg_gemm;

/* One call of the gemm as a kernel makes it (cg_gemm_run_strided's arguments but the data):
 * what max-autotune times candidates on and keys its choices by (codegen/cpu/tune.h). */
typedef struct cg_gemm_shape {
    int64_t M, N, K;
    int64_t rsa, csa, rsb, csb, ldc;
} cg_gemm_shape;

/* The micro-kernel: c[0:m, 0:n] (+= when add) = a_sliver (k x MR, packed) @ b_sliver (k x NR,
 * packed); c's rows are ldc apart. */
typedef void cg_gemm_ukr(int64_t k, const float *a, const float *b, float *c, int64_t ldc, int64_t m,
                         int64_t n, int64_t add);

/* Good parameters for the CPU that `j` compiles for (measured on Zen 5: bench/README.md). */
cg_gemm_params cg_gemm_default_params(cg_jit *j);

/* Compiles the micro-kernel for `p` (NULL: the defaults) into `j`, which must outlive the
 * result. NULL with a message in err when p is invalid or LLVM fails. The caller owns the result
 * and frees it with cg_gemm_destroy. */
cg_gemm *cg_gemm_create(cg_jit *j, const cg_gemm_params *p, char *err, size_t errlen);
void     cg_gemm_destroy(cg_gemm *g);
/* A gemm around a micro-kernel compiled earlier for *p (an AOT library's): gemm_run.c, which
 * needs no LLVM. NULL with a message in err when out of memory. */
cg_gemm *cg_gemm_from_kernel(const cg_gemm_params *p, cg_gemm_ukr *ukr, char *err, size_t errlen);
/* Checks *p and rounds its mc and nc up to whole micro-tiles, as cg_gemm_create does: *p is then
 * what cg_gemm_from_kernel wants. False with a message in err when p is invalid. */
bool     cg_gemm_fix_params(cg_gemm_params *p, char *err, size_t errlen);
/* Adds the micro-kernel for *p to module m as `name`, unoptimized, after cg_gemm_fix_params. */
bool     cg_gemm_add_kernel(cg_jit *j, LLVMModuleRef m, cg_gemm_params *p, const char *name,
                            char *err, size_t errlen);
const cg_gemm_params *cg_gemm_get_params(const cg_gemm *g);

/* C = A @ B, row-major: A is M x K (row stride lda), B is K x N (ldb), C is M x N (ldc); C is
 * overwritten (K == 0 gives zeros). pool may be NULL (the calling thread alone). The packing
 * buffers live in g and grow on demand, so calls on one g take turns; false only when they
 * cannot be allocated (C is then untouched). */
bool cg_gemm_run(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);

/* The same with any strides: element (i, k) of A is A[i * rsa + k * csa], (k, j) of B is
 * B[k * rsb + j * csb]. Packing reads them, so a transposed operand (csa or csb not 1) costs no
 * copy of its own: x @ w.T reads w where it lies. */
bool cg_gemm_run_strided(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                         int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                         int64_t ldc);

/* An epilogue: fn(ctx, r0, r1) is called once the rows [r0, r1) of C are final (all of N, all
 * of K), on the thread that finished them while they are in its cache when it can be arranged
 * (N within one packed B block and no split of B's columns), else after the product, the rows
 * split across the pool. Every row is passed exactly once. */
typedef struct cg_gemm_epilogue {
    void  (*fn)(void *ctx, int64_t r0, int64_t r1);
    void   *ctx;
    int64_t row0;     /* added to the rows passed (a batch's first row) */
} cg_gemm_epilogue;

/* cg_gemm_run_strided with an epilogue (NULL: none). */
bool cg_gemm_run_epilogue(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                          int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                          int64_t ldc, const cg_gemm_epilogue *epi);

/* For callers that run their own loops around g's micro-kernel (the convolutions pack im2col
 * columns straight into B's layout, codegen/cpu/conv.c): the kernel, which takes slivers packed
 * as gemm_run.c packs them (A: [k][mr], B: [k][nr], B's slivers 64-byte aligned). */
cg_gemm_ukr *cg_gemm_get_kernel(const cg_gemm *g);

/* Scratch memory kept in g for such callers (packed weights, column panels, partial sums): at
 * least `bytes`, 64-byte aligned, grown only when a call asks for more than any call before and
 * never shrunk, so a call with shapes seen before allocates nothing. Held from acquire to
 * release: callers of one g take turns with it (g's own products use other buffers and may run
 * meanwhile). NULL when it cannot grow; nothing is held then. */
void *cg_gemm_scratch_acquire(cg_gemm *g, size_t bytes);
void  cg_gemm_scratch_release(cg_gemm *g);

/* The micro-kernel for `p` as optimized LLVM IR (want_asm false) or as the assembly of j's CPU,
 * for inspection and FileCheck tests. malloc'd, the caller frees; NULL with a message in err. */
char *cg_gemm_print_kernel(cg_jit *j, const cg_gemm_params *p, bool want_asm, char *err,
                           size_t errlen);

#endif
