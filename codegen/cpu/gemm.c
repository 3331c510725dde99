/* sgemm for the CPU backend (see gemm.h): the BLIS loop nest in C around a micro-kernel that is
 * generated as LLVM IR. Loops, outermost first: jc over N by NC (a packed B block, shared by the
 * threads), pc over K by KC, then (ic over M by MC) x (column groups of the B block) split across
 * the pool, each thread packing its own A block; inside, jr over NR slivers of B and ir over MR
 * slivers of A call the micro-kernel. */
#include "codegen/cpu/gemm.h"

#include <llvm-c/Core.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* void ukr(i64 k, const float *a, const float *b, float *c, i64 ldc, i64 m, i64 n, i64 add):
 * c[0:m, 0:n] (+)= a_sliver (k x MR, packed) @ b_sliver (k x NR, packed). */
typedef void ukr_fn(int64_t k, const float *a, const float *b, float *c, int64_t ldc, int64_t m,
                    int64_t n, int64_t add);

enum { ALIGN = 64, MAX_REGS = 32 };

typedef struct thread_scratch {
    _Alignas(ALIGN) float *a;     /* this thread's packed A block, MC x KC */
    int64_t pass, ic;             /* which block a holds, so consecutive items reuse it */
} thread_scratch;

struct cg_gemm {
    cg_gemm_params  p;
    ukr_fn         *ukr;
    pthread_mutex_t lock;         /* one run at a time owns the buffers below */
    float          *b;            /* the packed B block, KC x NC */
    thread_scratch *ts;
    int             nts;
    int64_t         pass;
};

/* ---- the micro-kernel, as LLVM IR ---------------------------------------------------------- */

static LLVMValueRef intrinsic(LLVMModuleRef m, const char *name, LLVMTypeRef *over, size_t n,
                              LLVMTypeRef *fty)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    *fty = LLVMIntrinsicGetType(LLVMGetModuleContext(m), id, over, n);
    return LLVMGetIntrinsicDeclaration(m, id, over, n);
}

typedef struct kgen {
    LLVMContextRef c;
    LLVMBuilderRef b;
    LLVMValueRef   fn;
    LLVMTypeRef    f32, i64, i32, vec;
    LLVMValueRef   fma, mload, mstore;
    LLVMTypeRef    fma_t, mload_t, mstore_t;
    const cg_gemm_params *p;
    int            nv;            /* vectors per row of the tile: nr / vec */
} kgen;

static LLVMValueRef i64c(kgen *k, int64_t v) { return LLVMConstInt(k->i64, (unsigned long long)v, 1); }

static LLVMValueRef gep(kgen *k, LLVMValueRef base, LLVMValueRef off, const char *name)
{
    return LLVMBuildGEP2(k->b, k->f32, base, &off, 1, name);
}

/* A vector of `vec` copies of scalar (the C API has no splat builder). */
static LLVMValueRef splat(kgen *k, LLVMValueRef scalar, const char *name)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)k->p->vec);
    LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetPoison(vt), scalar,
                                            LLVMConstInt(k->i32, 0, 0), "");
    LLVMTypeRef zt = LLVMVectorType(k->i32, (unsigned)k->p->vec);
    return LLVMBuildShuffleVector(k->b, v, LLVMGetPoison(vt), LLVMConstNull(zt), name);
}

/* The K loop: acc[r][v] = fma(splat(a[kk*MR + r]), b[kk*NR + v*vec : +vec], acc[r][v]), the
 * accumulators carried in phis so they stay in registers. Leaves the builder in the exit block
 * with the final accumulators in acc. */
static void gen_loop(kgen *k, LLVMBasicBlockRef entry, LLVMValueRef *acc)
{
    const cg_gemm_params *p = k->p;
    int nacc = p->mr * k->nv;
    LLVMValueRef kn = LLVMGetParam(k->fn, 0), pa = LLVMGetParam(k->fn, 1), pb = LLVMGetParam(k->fn, 2);
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(k->c, k->fn, "kloop"),
                      exit = LLVMAppendBasicBlockInContext(k->c, k->fn, "kdone");
    LLVMValueRef zero = LLVMConstNull(k->vec);
    LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSGT, kn, i64c(k, 0), "has_k"), loop, exit);

    LLVMPositionBuilderAtEnd(k->b, loop);
    LLVMValueRef kk = LLVMBuildPhi(k->b, k->i64, "kk");
    LLVMValueRef phi[MAX_REGS * 4], next[MAX_REGS * 4];
    char name[32];
    for (int i = 0; i < nacc; i++) {
        snprintf(name, sizeof name, "acc.%d.%d", i / k->nv, i % k->nv);
        phi[i] = LLVMBuildPhi(k->b, k->vec, name);
    }
    LLVMValueRef arow = gep(k, pa, LLVMBuildMul(k->b, kk, i64c(k, p->mr), ""), "a.k");
    LLVMValueRef brow = gep(k, pb, LLVMBuildMul(k->b, kk, i64c(k, p->nr), ""), "b.k");
    LLVMValueRef bv[MAX_REGS];
    for (int v = 0; v < k->nv; v++) {
        snprintf(name, sizeof name, "b.%d", v);
        bv[v] = LLVMBuildLoad2(k->b, k->vec, gep(k, brow, i64c(k, (int64_t)v * p->vec), ""), name);
        /* Packed slivers start on ALIGN and are whole vectors wide. */
        LLVMSetAlignment(bv[v], (unsigned)p->vec * 4);
    }
    for (int r = 0; r < p->mr; r++) {
        snprintf(name, sizeof name, "a.%d", r);
        LLVMValueRef as = LLVMBuildLoad2(k->b, k->f32, gep(k, arow, i64c(k, r), ""), name);
        LLVMSetAlignment(as, 4);
        LLVMValueRef av = splat(k, as, name);
        for (int v = 0; v < k->nv; v++) {
            LLVMValueRef args[] = {av, bv[v], phi[r * k->nv + v]};
            next[r * k->nv + v] = LLVMBuildCall2(k->b, k->fma_t, k->fma, args, 3, "");
        }
    }
    LLVMValueRef kk1 = LLVMBuildAdd(k->b, kk, i64c(k, 1), "kk.next");
    LLVMValueRef i0 = i64c(k, 0);
    LLVMAddIncoming(kk, &i0, &entry, 1);
    LLVMAddIncoming(kk, &kk1, &loop, 1);
    for (int i = 0; i < nacc; i++) {
        LLVMAddIncoming(phi[i], &zero, &entry, 1);
        LLVMAddIncoming(phi[i], &next[i], &loop, 1);
    }
    LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, kk1, kn, ""), loop, exit);

    LLVMPositionBuilderAtEnd(k->b, exit);
    for (int i = 0; i < nacc; i++) {
        snprintf(name, sizeof name, "sum.%d.%d", i / k->nv, i % k->nv);
        acc[i] = LLVMBuildPhi(k->b, k->vec, name);
        LLVMAddIncoming(acc[i], &zero, &entry, 1);
        LLVMAddIncoming(acc[i], &next[i], &loop, 1);
    }
}

static LLVMValueRef c_ptr(kgen *k, int r, int v)
{
    LLVMValueRef off = LLVMBuildAdd(k->b, LLVMBuildMul(k->b, LLVMGetParam(k->fn, 4), i64c(k, r), ""),
                                    i64c(k, (int64_t)v * k->p->vec), "");
    return gep(k, LLVMGetParam(k->fn, 3), off, "c.rv");
}

/* A whole MR x NR tile: plain vector stores, after adding C's old values when `add`. */
static void gen_store_full(kgen *k, const LLVMValueRef *acc, bool add)
{
    for (int r = 0; r < k->p->mr; r++)
        for (int v = 0; v < k->nv; v++) {
            LLVMValueRef ptr = c_ptr(k, r, v), x = acc[r * k->nv + v];
            if (add) {
                LLVMValueRef old = LLVMBuildLoad2(k->b, k->vec, ptr, "c.old");
                LLVMSetAlignment(old, 4);
                x = LLVMBuildFAdd(k->b, x, old, "c.new");
            }
            LLVMSetAlignment(LLVMBuildStore(k->b, x, ptr), 4);
        }
    LLVMBuildRetVoid(k->b);
}

/* A partial tile (m < MR rows or n < NR columns): rows past m are skipped, columns past n are
 * masked off (AVX-512 mask registers make masked loads and stores as cheap as plain ones). */
static void gen_store_edge(kgen *k, const LLVMValueRef *acc)
{
    const cg_gemm_params *p = k->p;
    LLVMValueRef m = LLVMGetParam(k->fn, 5), n = LLVMGetParam(k->fn, 6);
    LLVMValueRef add = LLVMBuildICmp(k->b, LLVMIntNE, LLVMGetParam(k->fn, 7), i64c(k, 0), "add");
    LLVMValueRef nsplat = splat(k, n, "n.splat");
    LLVMValueRef addsplat = splat(k, add, "add.splat");
    LLVMValueRef mask[MAX_REGS], lmask[MAX_REGS], lanes[64];
    for (int v = 0; v < k->nv; v++) {
        for (int l = 0; l < p->vec; l++)
            lanes[l] = i64c(k, (int64_t)v * p->vec + l);
        LLVMValueRef col = LLVMConstVector(lanes, (unsigned)p->vec);
        mask[v] = LLVMBuildICmp(k->b, LLVMIntSLT, col, nsplat, "cols");
        /* Only read C when accumulating into it: it may hold garbage on the first K block. */
        lmask[v] = LLVMBuildAnd(k->b, mask[v], addsplat, "cols.load");
    }
    LLVMValueRef align4 = LLVMConstInt(k->i32, 4, 0), zero = LLVMConstNull(k->vec);
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(k->c, k->fn, "edge.done");
    for (int r = 0; r < p->mr; r++) {
        if (r > 0) {
            LLVMBasicBlockRef row = LLVMAppendBasicBlockInContext(k->c, k->fn, "edge.row");
            LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, i64c(k, r), m, ""), row, done);
            LLVMPositionBuilderAtEnd(k->b, row);
        }
        for (int v = 0; v < k->nv; v++) {
            LLVMValueRef ptr = c_ptr(k, r, v);
            LLVMValueRef largs[] = {ptr, align4, lmask[v], zero};
            LLVMValueRef old = LLVMBuildCall2(k->b, k->mload_t, k->mload, largs, 4, "c.old");
            LLVMValueRef x = LLVMBuildFAdd(k->b, acc[r * k->nv + v], old, "c.new");
            LLVMValueRef sargs[] = {x, ptr, align4, mask[v]};
            LLVMBuildCall2(k->b, k->mstore_t, k->mstore, sargs, 4, "");
        }
    }
    LLVMBuildBr(k->b, done);
    LLVMPositionBuilderAtEnd(k->b, done);
    LLVMBuildRetVoid(k->b);
}

static void add_attr(LLVMContextRef c, LLVMValueRef fn, unsigned idx, const char *kind)
{
    unsigned id = LLVMGetEnumAttributeKindForName(kind, strlen(kind));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(c, id, 0));
}

static void build_kernel(cg_jit *j, LLVMModuleRef mod, const cg_gemm_params *p, const char *name)
{
    kgen k = {.c = cg_jit_context(j), .p = p, .nv = p->nr / p->vec};
    k.f32 = LLVMFloatTypeInContext(k.c);
    k.i64 = LLVMInt64TypeInContext(k.c);
    k.i32 = LLVMInt32TypeInContext(k.c);
    k.vec = LLVMVectorType(k.f32, (unsigned)p->vec);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(k.c, 0);
    LLVMTypeRef params[] = {k.i64, ptr, ptr, ptr, k.i64, k.i64, k.i64, k.i64};
    k.fn = LLVMAddFunction(mod, name, LLVMFunctionType(LLVMVoidTypeInContext(k.c), params, 8, 0));
    cg_jit_tune(j, k.fn);
    const char *pnames[] = {"k", "a", "b", "c", "ldc", "m", "n", "add"};
    for (unsigned i = 0; i < 8; i++)
        LLVMSetValueName2(LLVMGetParam(k.fn, i), pnames[i], strlen(pnames[i]));
    for (unsigned i = 2; i <= 4; i++)   /* a, b, c (attribute index = argument + 1) */
        add_attr(k.c, k.fn, i, "noalias");
    add_attr(k.c, k.fn, LLVMAttributeFunctionIndex, "nounwind");
    LLVMTypeRef ov[] = {k.vec, ptr};
    k.fma = intrinsic(mod, "llvm.fma", ov, 1, &k.fma_t);
    k.mload = intrinsic(mod, "llvm.masked.load", ov, 2, &k.mload_t);
    k.mstore = intrinsic(mod, "llvm.masked.store", ov, 2, &k.mstore_t);

    k.b = LLVMCreateBuilderInContext(k.c);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(k.c, k.fn, "entry");
    LLVMPositionBuilderAtEnd(k.b, entry);
    /* Start C's lines on their way into the cache while the K loop runs (BLIS does the same). */
    LLVMTypeRef pf_t;
    LLVMValueRef pf = intrinsic(mod, "llvm.prefetch", &ptr, 1, &pf_t);
    for (int r = 0; r < p->mr; r++)
        for (int off = 0; off < p->nr; off += 16) {
            LLVMValueRef args[] = {c_ptr(&k, r, 0), LLVMConstInt(k.i32, 1, 0),
                                   LLVMConstInt(k.i32, 3, 0), LLVMConstInt(k.i32, 1, 0)};
            if (off)
                args[0] = gep(&k, args[0], i64c(&k, off), "");
            LLVMBuildCall2(k.b, pf_t, pf, args, 4, "");
        }
    LLVMValueRef acc[MAX_REGS * 4];
    gen_loop(&k, entry, acc);

    LLVMValueRef full = LLVMBuildAnd(
        k.b, LLVMBuildICmp(k.b, LLVMIntEQ, LLVMGetParam(k.fn, 5), i64c(&k, p->mr), ""),
        LLVMBuildICmp(k.b, LLVMIntEQ, LLVMGetParam(k.fn, 6), i64c(&k, p->nr), ""), "full");
    LLVMBasicBlockRef bfull = LLVMAppendBasicBlockInContext(k.c, k.fn, "full"),
                      bstore = LLVMAppendBasicBlockInContext(k.c, k.fn, "full.store"),
                      badd = LLVMAppendBasicBlockInContext(k.c, k.fn, "full.add"),
                      bedge = LLVMAppendBasicBlockInContext(k.c, k.fn, "edge");
    LLVMBuildCondBr(k.b, full, bfull, bedge);
    LLVMPositionBuilderAtEnd(k.b, bfull);
    LLVMBuildCondBr(k.b, LLVMBuildICmp(k.b, LLVMIntNE, LLVMGetParam(k.fn, 7), i64c(&k, 0), ""),
                    badd, bstore);
    LLVMPositionBuilderAtEnd(k.b, bstore);
    gen_store_full(&k, acc, false);
    LLVMPositionBuilderAtEnd(k.b, badd);
    gen_store_full(&k, acc, true);
    LLVMPositionBuilderAtEnd(k.b, bedge);
    gen_store_edge(&k, acc);
    LLVMDisposeBuilder(k.b);
}

static bool check_params(const cg_gemm_params *p, char *err, size_t errlen)
{
    const char *why = NULL;
    if (p->vec != 4 && p->vec != 8 && p->vec != 16)
        why = "vec must be 4, 8 or 16";
    else if (p->nr < p->vec || p->nr % p->vec || p->nr / p->vec > 8)
        why = "nr must be a multiple of vec, at most 8 vectors";
    else if (p->mr < 1 || p->mr > 32 || p->mr * (p->nr / p->vec) > 4 * MAX_REGS)
        why = "mr must be 1..32 with mr * nr / vec <= 128 accumulators";
    else if (p->kc < 1 || p->mc < 1 || p->nc < 1)
        why = "kc, mc and nc must be positive";
    if (why)
        snprintf(err, errlen, "invalid gemm parameters (vec %d, mr %d, nr %d, kc %d, mc %d, nc %d): %s",
                 p->vec, p->mr, p->nr, p->kc, p->mc, p->nc, why);
    return why == NULL;
}

static bool make_module(cg_jit *j, const cg_gemm_params *p, const char *name, LLVMModuleRef *out,
                        char *err, size_t errlen)
{
    if (!check_params(p, err, errlen))
        return false;
    LLVMModuleRef m = cg_jit_module(j, "dlc_sgemm");
    build_kernel(j, m, p, name);
    if (!cg_jit_optimize(j, m, err, errlen)) {
        LLVMDisposeModule(m);
        return false;
    }
    *out = m;
    return true;
}

/* ---- parameters ---------------------------------------------------------------------------- */

static int cpu_vector_floats(cg_jit *j)
{
    LLVMTargetMachineRef tm = cg_jit_target(j);
    char *feat = LLVMGetTargetMachineFeatureString(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    int vec = 4;
    /* A named CPU comes with an empty feature string: recognize the AVX-512 and AVX2 families. */
    static const char *const avx512[] = {"znver4", "znver5", "skylake-avx512", "cascadelake",
                                         "cooperlake", "icelake", "tigerlake", "sapphirerapids",
                                         "emeraldrapids", "graniterapids", "x86-64-v4", NULL};
    static const char *const avx2[] = {"haswell", "broadwell", "skylake", "znver", "alderlake",
                                       "x86-64-v3", NULL};
    if (strstr(feat, "+avx512f"))
        vec = 16;
    else if (strstr(feat, "+avx2"))
        vec = 8;
    for (int i = 0; !*feat && avx512[i] && vec == 4; i++)
        if (strstr(cpu, avx512[i]))
            vec = 16;
    for (int i = 0; !*feat && avx2[i] && vec == 4; i++)
        if (strstr(cpu, avx2[i]))
            vec = 8;
    LLVMDisposeMessage(feat);
    LLVMDisposeMessage(cpu);
    return vec;
}

cg_gemm_params cg_gemm_default_params(cg_jit *j)
{
    int vec = cpu_vector_floats(j);
    /* AVX-512: 6 x 64 keeps 24 zmm accumulators + 4 B vectors + 1 broadcast in 32 registers
     * (24 FMAs per 4 loads + 6 broadcasts). On Zen 5 it measured level with 14 x 32 and 4 x 96
     * on one thread and steadier on two; 8 x 64 (32 accumulators) spills. KC, MC and NC moved
     * the 1024^3 rate by less than the run-to-run noise (+-5 %) across 192..384, 96..240 and
     * 2048..4096 (bench/README.md). AVX2 (16 ymm): 6 x 16, 12 accumulators. */
    if (vec == 16)
        return (cg_gemm_params){.vec = 16, .mr = 6, .nr = 64, .kc = 256, .mc = 192, .nc = 2048};
    if (vec == 8)
        return (cg_gemm_params){.vec = 8, .mr = 6, .nr = 16, .kc = 256, .mc = 144, .nc = 2048};
    return (cg_gemm_params){.vec = 4, .mr = 4, .nr = 8, .kc = 256, .mc = 128, .nc = 1024};
}

/* ---- create / destroy / print -------------------------------------------------------------- */

static atomic_int kernel_serial;

cg_gemm *cg_gemm_create(cg_jit *j, const cg_gemm_params *p, char *err, size_t errlen)
{
    cg_gemm_params dp = p ? *p : cg_gemm_default_params(j);
    if (!check_params(&dp, err, errlen))
        return NULL;
    dp.mc = (dp.mc + dp.mr - 1) / dp.mr * dp.mr;
    dp.nc = (dp.nc + dp.nr - 1) / dp.nr * dp.nr;
    /* Unique per kernel: one JIT may hold several (an autotuner compiles many). */
    char name[64];
    snprintf(name, sizeof name, "dlc_sgemm_ukr_%dx%d_%d", dp.mr, dp.nr, atomic_fetch_add(&kernel_serial, 1));
    LLVMModuleRef m;
    if (!make_module(j, &dp, name, &m, err, errlen))
        return NULL;
    if (!cg_jit_add(j, m, err, errlen))
        return NULL;
    ukr_fn *ukr = (ukr_fn *)cg_jit_lookup(j, name, err, errlen);
    if (!ukr)
        return NULL;
    cg_gemm *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->p = dp;
    g->ukr = ukr;
    pthread_mutex_init(&g->lock, NULL);
    return g;
}

void cg_gemm_destroy(cg_gemm *g)
{
    if (!g)
        return;
    for (int t = 0; t < g->nts; t++)
        free(g->ts[t].a);
    free(g->ts);
    free(g->b);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

const cg_gemm_params *cg_gemm_get_params(const cg_gemm *g) { return &g->p; }

char *cg_gemm_print_kernel(cg_jit *j, const cg_gemm_params *p, bool want_asm, char *err,
                           size_t errlen)
{
    cg_gemm_params dp = p ? *p : cg_gemm_default_params(j);
    char name[64];
    snprintf(name, sizeof name, "dlc_sgemm_ukr_%dx%d", dp.mr, dp.nr);
    LLVMModuleRef m;
    if (!make_module(j, &dp, name, &m, err, errlen))
        return NULL;
    char *s = want_asm ? cg_jit_print_asm(j, m, err, errlen) : cg_jit_print_ir(m);
    LLVMDisposeModule(m);
    return s;
}

/* ---- packing and the loop nest ------------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* B[0:kc, 0:nc] (element (k, j) at B[k * rs + j * cs]) into NR-wide slivers [s][k][NR],
 * zero-padded past nc. Row-major B copies rows; a transposed one (rs == 1) walks its columns. */
static void pack_b(const float *B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int nr, float *dst,
                   int64_t s0, int64_t s1)
{
    for (int64_t s = s0; s < s1; s++) {
        int64_t j0 = s * nr, w = min64(nr, nc - j0);
        float *d = dst + s * nr * kc;
        if (cs == 1) {
            for (int64_t k = 0; k < kc; k++, d += nr) {
                memcpy(d, B + k * rs + j0, (size_t)w * sizeof *d);
                for (int64_t j = w; j < nr; j++)
                    d[j] = 0;
            }
            continue;
        }
        for (int64_t j = 0; j < nr; j++) {
            const float *src = B + (j0 + j) * cs;
            for (int64_t k = 0; k < kc; k++)
                d[k * nr + j] = j < w ? src[k * rs] : 0;
        }
    }
}

/* A[0:mc, 0:kc] (element (i, k) at A[i * rs + k * cs]) into MR-tall slivers [s][k][MR],
 * zero-padded past mc. */
static void pack_a(const float *A, int64_t rs, int64_t cs, int64_t mc, int64_t kc, int mr, float *dst)
{
    for (int64_t i0 = 0; i0 < mc; i0 += mr, dst += mr * kc) {
        int64_t h = min64(mr, mc - i0);
        if (rs == 1 && cs != 1) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = A + i0 + k * cs;
                for (int64_t r = 0; r < mr; r++)
                    dst[k * mr + r] = r < h ? src[r] : 0;
            }
            continue;
        }
        for (int64_t r = 0; r < h; r++) {
            const float *src = A + (i0 + r) * rs;
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + r] = src[k * cs];
        }
        for (int64_t r = h; r < mr; r++)
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + r] = 0;
    }
}

/* One (jc, pc) step's worth of work, shared by the pool's threads. */
typedef struct step {
    cg_gemm     *g;
    const float *A, *B;
    float       *C;
    int64_t      M, rsa, csa, rsb, csb, ldc;
    int64_t      kc, nc, pc, jc;
    int64_t      n_ic, n_jg, slivers;   /* items = n_ic x n_jg; slivers of NR in the B block */
    int64_t      add, pass;
} step;

static void pack_b_task(void *ctx, int64_t s0, int64_t s1, int thread)
{
    (void)thread;
    step *st = ctx;
    pack_b(st->B + st->pc * st->rsb + st->jc * st->csb, st->rsb, st->csb, st->kc, st->nc, st->g->p.nr,
           st->g->b, s0, s1);
}

/* Items are (A block ic, group of B slivers jg), ic-major, so a thread's consecutive items mostly
 * share the A block it has already packed. */
static void compute_task(void *ctx, int64_t it0, int64_t it1, int thread)
{
    step *st = ctx;
    cg_gemm *g = st->g;
    const cg_gemm_params *p = &g->p;
    thread_scratch *ts = &g->ts[thread];
    for (int64_t it = it0; it < it1; it++) {
        int64_t ic = it / st->n_jg, jg = it % st->n_jg;
        int64_t i0 = ic * p->mc, mc = min64(p->mc, st->M - i0);
        if (ts->pass != st->pass || ts->ic != ic) {
            pack_a(st->A + i0 * st->rsa + st->pc * st->csa, st->rsa, st->csa, mc, st->kc, p->mr, ts->a);
            ts->pass = st->pass;
            ts->ic = ic;
        }
        int64_t s0 = st->slivers * jg / st->n_jg, s1 = st->slivers * (jg + 1) / st->n_jg;
        for (int64_t s = s0; s < s1; s++) {
            int64_t j = s * p->nr, n = min64(p->nr, st->nc - j);
            const float *b = g->b + s * p->nr * st->kc;
            float *c = st->C + i0 * st->ldc + st->jc + j;
            for (int64_t i = 0; i < mc; i += p->mr)
                g->ukr(st->kc, ts->a + i * st->kc, b, c + i * st->ldc, st->ldc,
                       min64(p->mr, mc - i), n, st->add);
        }
    }
}

/* The buffers are sized for the parameters' full blocks on first use, so they never regrow. */
static bool reserve(cg_gemm *g, int threads)
{
    size_t bbytes = (size_t)g->p.kc * (size_t)g->p.nc * sizeof(float);
    size_t abytes = (size_t)g->p.kc * (size_t)g->p.mc * sizeof(float);
    if (!g->b && !(g->b = aligned_alloc(ALIGN, (bbytes + ALIGN - 1) / ALIGN * ALIGN)))
        return false;
    if (g->nts < threads) {
        thread_scratch *ts = aligned_alloc(ALIGN, sizeof *ts * (size_t)threads);
        if (!ts)
            return false;
        memset(ts, 0, sizeof *ts * (size_t)threads);
        if (g->nts)
            memcpy(ts, g->ts, sizeof *ts * (size_t)g->nts);
        free(g->ts);
        g->ts = ts;
        for (int t = g->nts; t < threads; t++) {
            if (!(ts[t].a = aligned_alloc(ALIGN, (abytes + ALIGN - 1) / ALIGN * ALIGN)))
                return false;
            g->nts = t + 1;
        }
    }
    return true;
}

/* Runs fn on [0, n) on the pool, or inline when it would not pay to wake the workers. */
static void run_on(rt_pool *pool, bool parallel, int64_t n, rt_pool_fn *fn, void *ctx)
{
    if (parallel)
        rt_pool_run(pool, n, fn, ctx);
    else
        fn(ctx, 0, n, 0);
}

bool cg_gemm_run(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc)
{
    return cg_gemm_run_strided(g, pool, M, N, K, A, lda, 1, B, ldb, 1, C, ldc);
}

bool cg_gemm_run_strided(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                         int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                         int64_t ldc)
{
    if (M <= 0 || N <= 0)
        return true;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            memset(C + i * ldc, 0, (size_t)N * sizeof *C);
        return true;
    }
    const cg_gemm_params *p = &g->p;
    int threads = pool ? rt_pool_threads(pool) : 1;
    /* Below ~2 MFLOP, waking a second thread costs more than it saves. */
    bool parallel = threads > 1 && (double)M * (double)N * (double)K >= 1e6;
    pthread_mutex_lock(&g->lock);
    if (!reserve(g, threads)) {
        pthread_mutex_unlock(&g->lock);
        return false;
    }
    step st = {.g = g, .A = A, .B = B, .C = C, .M = M, .rsa = rsa, .csa = csa, .rsb = rsb, .csb = csb,
               .ldc = ldc};
    st.n_ic = cdiv(M, p->mc);
    for (int64_t jc = 0; jc < N; jc += p->nc) {
        st.jc = jc;
        st.nc = min64(p->nc, N - jc);
        st.slivers = cdiv(st.nc, p->nr);
        /* Enough items for every thread to have a few, splitting B's columns when M is short. */
        st.n_jg = 1;
        if (parallel && st.n_ic < 4 * threads)
            st.n_jg = min64(st.slivers, cdiv(4 * threads, st.n_ic));
        for (int64_t pc = 0; pc < K; pc += p->kc) {
            st.pc = pc;
            st.kc = min64(p->kc, K - pc);
            st.add = pc > 0;
            st.pass = ++g->pass;
            run_on(pool, parallel, st.slivers, pack_b_task, &st);
            run_on(pool, parallel, st.n_ic * st.n_jg, compute_task, &st);
        }
    }
    pthread_mutex_unlock(&g->lock);
    return true;
}
