/* sgemm for the CPU backend (see gemm.h), the compiler's half: the register-blocked micro-kernel
 * generated as LLVM IR, and the parameters that suit a CPU. The loop nest around it is in
 * gemm_run.c, which the AOT libraries carry without LLVM. */
#include "codegen/cpu/gemm.h"

#include <llvm-c/Core.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_REGS = 32 };

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

bool cg_gemm_fix_params(cg_gemm_params *p, char *err, size_t errlen)
{
    if (!check_params(p, err, errlen))
        return false;
    p->mc = (p->mc + p->mr - 1) / p->mr * p->mr;
    p->nc = (p->nc + p->nr - 1) / p->nr * p->nr;
    return true;
}

bool cg_gemm_add_kernel(cg_jit *j, LLVMModuleRef m, cg_gemm_params *p, const char *name, char *err,
                        size_t errlen)
{
    if (!cg_gemm_fix_params(p, err, errlen))
        return false;
    build_kernel(j, m, p, name);
    return true;
}

cg_gemm *cg_gemm_create(cg_jit *j, const cg_gemm_params *p, char *err, size_t errlen)
{
    cg_gemm_params dp = p ? *p : cg_gemm_default_params(j);
    if (!cg_gemm_fix_params(&dp, err, errlen))
        return NULL;
    /* Unique per kernel: one JIT may hold several (an autotuner compiles many). */
    char name[64];
    snprintf(name, sizeof name, "dlc_sgemm_ukr_%dx%d_%d", dp.mr, dp.nr, atomic_fetch_add(&kernel_serial, 1));
    LLVMModuleRef m;
    if (!make_module(j, &dp, name, &m, err, errlen))
        return NULL;
    if (!cg_jit_add(j, m, err, errlen))
        return NULL;
    cg_gemm_ukr *ukr = (cg_gemm_ukr *)cg_jit_lookup(j, name, err, errlen);
    return ukr ? cg_gemm_from_kernel(&dp, ukr, err, errlen) : NULL;
}


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

