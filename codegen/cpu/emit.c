/* The CPU backend's shared emitting helpers (see emit.h). */
#include "codegen/cpu/emit.h"

#include <stdio.h>
#include <string.h>

/* ---- types and conversions ------------------------------------------------------------- */

LLVMTypeRef cg_em_storage_type(cg_em *e, dl_dtype t)
{
    switch (t) {
    case DL_F32: return e->f32;
    case DL_F64: return e->f64;
    case DL_F16: return e->f16;
    case DL_BF16: return e->i16;
    case DL_I32: return e->i32;
    case DL_I64: return e->i64;
    default: return e->i8;        /* i8, u8, bool */
    }
}

LLVMTypeRef cg_em_compute_type(cg_em *e, dl_dtype t)
{
    return t == DL_F64 ? e->f64 : ir_dtype_is_float(t) ? e->f32 : t == DL_BOOL ? e->i1 : e->i64;
}

static LLVMValueRef cf(LLVMTypeRef t, double v) { return LLVMConstReal(t, v); }
LLVMValueRef cg_em_i64(cg_em *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

LLVMValueRef cg_em_intrinsic(cg_em *e, const char *name, LLVMTypeRef t, int n, LLVMValueRef *args)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[1] = {t};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m, id, tys, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(e->c, id, tys, 1);
    return LLVMBuildCall2(e->b, ft, fn, args, (unsigned)n, "");
}

LLVMValueRef cg_em_intrinsic1(cg_em *e, const char *name, LLVMValueRef a)
{
    return cg_em_intrinsic(e, name, LLVMTypeOf(a), 1, &a);
}

/* A libm function of one argument (tanhf/tanh, ...), declared on first use. */
LLVMValueRef cg_em_libm(cg_em *e, const char *name, LLVMValueRef a)
{
    bool dbl = LLVMTypeOf(a) == e->f64;
    char full[32];
    snprintf(full, sizeof full, "%s%s", name, dbl ? "" : "f");
    LLVMTypeRef t = LLVMTypeOf(a), ft = LLVMFunctionType(t, &t, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->m, full);
    if (!fn)
        fn = LLVMAddFunction(e->m, full, ft);
    return LLVMBuildCall2(e->b, ft, fn, &a, 1, "");
}

LLVMValueRef cg_em_helper(cg_em *e, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef ps[2] = {e->i64, e->i64}, ft = LLVMFunctionType(e->i64, ps, 2, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->m, name);
    if (!fn)
        fn = LLVMAddFunction(e->m, name, ft);
    LLVMValueRef args[2] = {a, b};
    return LLVMBuildCall2(e->b, ft, fn, args, 2, "");
}

static LLVMValueRef bf16_to_f32(cg_em *e, LLVMValueRef bits16)
{
    LLVMValueRef w = LLVMBuildShl(e->b, LLVMBuildZExt(e->b, bits16, e->i32, ""),
                                  LLVMConstInt(e->i32, 16, 0), "");
    return LLVMBuildBitCast(e->b, w, e->f32, "");
}

/* Round to nearest even, as the reference does; NaN stays a (quiet) NaN. */
static LLVMValueRef f32_to_bf16(cg_em *e, LLVMValueRef x)
{
    LLVMValueRef u = LLVMBuildBitCast(e->b, x, e->i32, "");
    LLVMValueRef lsb = LLVMBuildAnd(e->b, LLVMBuildLShr(e->b, u, LLVMConstInt(e->i32, 16, 0), ""),
                                    LLVMConstInt(e->i32, 1, 0), "");
    LLVMValueRef r = LLVMBuildAdd(e->b, u, LLVMBuildAdd(e->b, lsb, LLVMConstInt(e->i32, 0x7fff, 0), ""), "");
    LLVMValueRef hi = LLVMBuildTrunc(e->b, LLVMBuildLShr(e->b, r, LLVMConstInt(e->i32, 16, 0), ""), e->i16, "");
    LLVMValueRef nan = LLVMBuildFCmp(e->b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(e->b, nan, LLVMConstInt(e->i16, 0x7fc0, 0), hi, "");
}

LLVMValueRef cg_em_load(cg_em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx)
{
    LLVMTypeRef st = cg_em_storage_type(e, t);
    LLVMValueRef v = LLVMBuildLoad2(e->b, st, LLVMBuildGEP2(e->b, st, base, &idx, 1, ""), "");
    switch (t) {
    case DL_F16: return LLVMBuildFPExt(e->b, v, e->f32, "");
    case DL_BF16: return bf16_to_f32(e, v);
    case DL_I8: case DL_I32: return LLVMBuildSExt(e->b, v, e->i64, "");
    case DL_U8: return LLVMBuildZExt(e->b, v, e->i64, "");
    case DL_BOOL: return LLVMBuildICmp(e->b, LLVMIntNE, v, LLVMConstInt(e->i8, 0, 0), "");
    default: return v;
    }
}

void cg_em_store(cg_em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMTypeRef st = cg_em_storage_type(e, t);
    switch (t) {
    case DL_F16: v = LLVMBuildFPTrunc(e->b, v, e->f16, ""); break;
    case DL_BF16: v = f32_to_bf16(e, v); break;
    case DL_I8: case DL_U8: case DL_I32: v = LLVMBuildTrunc(e->b, v, st, ""); break;
    case DL_BOOL: v = LLVMBuildZExt(e->b, v, e->i8, ""); break;
    default: break;
    }
    LLVMBuildStore(e->b, v, LLVMBuildGEP2(e->b, st, base, &idx, 1, ""));
}

/* An op's result rounded (floats) or wrapped (integers) to its dtype, as storing and reloading
 * it would: a fused chain then computes what the unfused ops compute. */
LLVMValueRef cg_em_round(cg_em *e, LLVMValueRef v, dl_dtype t)
{
    switch (t) {
    case DL_F16: return LLVMBuildFPExt(e->b, LLVMBuildFPTrunc(e->b, v, e->f16, ""), e->f32, "");
    case DL_BF16: return bf16_to_f32(e, f32_to_bf16(e, v));
    case DL_I8: return LLVMBuildSExt(e->b, LLVMBuildTrunc(e->b, v, e->i8, ""), e->i64, "");
    case DL_U8: return LLVMBuildZExt(e->b, LLVMBuildTrunc(e->b, v, e->i8, ""), e->i64, "");
    case DL_I32: return LLVMBuildSExt(e->b, LLVMBuildTrunc(e->b, v, e->i32, ""), e->i64, "");
    default: return v;
    }
}

/* Converts a computed value from dtype `from` to dtype `to` (cast). */
LLVMValueRef cg_em_convert(cg_em *e, LLVMValueRef v, dl_dtype from, dl_dtype to)
{
    LLVMTypeRef tt = cg_em_compute_type(e, to), ft = cg_em_compute_type(e, from);
    if (to == DL_BOOL)
        return ft == e->i1 ? v : ir_dtype_is_float(from) ?
               LLVMBuildFCmp(e->b, LLVMRealUNE, v, cf(ft, 0), "") :
               LLVMBuildICmp(e->b, LLVMIntNE, v, cg_em_i64(e, 0), "");
    if (from == DL_BOOL)
        return ir_dtype_is_float(to) ? LLVMBuildUIToFP(e->b, v, tt, "") : LLVMBuildZExt(e->b, v, tt, "");
    if (ir_dtype_is_float(from) && ir_dtype_is_float(to))
        return ft == tt ? v : ft == e->f32 ? LLVMBuildFPExt(e->b, v, tt, "") : LLVMBuildFPTrunc(e->b, v, tt, "");
    if (ir_dtype_is_float(from)) {    /* saturating: out-of-range floats never make poison */
        unsigned id = LLVMLookupIntrinsicID("llvm.fptosi.sat", 15);
        LLVMTypeRef tys[2] = {e->i64, ft};
        LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m, id, tys, 2);
        return LLVMBuildCall2(e->b, LLVMIntrinsicGetType(e->c, id, tys, 2), fn, &v, 1, "");
    }
    if (ir_dtype_is_float(to))
        return LLVMBuildSIToFP(e->b, v, tt, "");
    return v;     /* integer to integer: i64 throughout, wrapped by round_to */
}

/* ---- tanh, erf and log1p of f32, vectorizable --------------------------------------------- */

/* libm's tanhf, erff and log1pf are scalar calls, which keep loops from vectorizing; these are
 * straight-line IR instead. The reductions follow Arm's optimized-routines (AdvSIMD expm1f:
 * x = n ln2 + f with ln2 in two parts, expm1(f) = f + f^2 P(f), 2^n through the exponent bits,
 * and its polynomial; log1pf: 1 + x = 2^k (1 + m), m in [-1/4, 1/2), scaled through the exponent
 * bits). The other polynomials were fitted for dlc: minimax of the relative error of the result,
 * by Lawson-weighted least squares, coefficients rounded to f32 one at a time, refitting the rest.
 * Errors against double-precision libm, over every 16th f32 bit pattern and every f32 of the
 * pieces' intervals: tanh 1.5 ulp (glibc's tanhf: 2.1), erf 0.95 ulp, log1p 1.3 ulp. Eigen's and XLA's rational tanh and erf (xla/codegen/intrinsic/tanh.cc
 * and erf.cc, after Eigen's generic_fast_tanh_float) measure 4.5 and 6.6 ulp, hence not those. */

static LLVMValueRef f32c(cg_em *e, float v) { return LLVMConstReal(e->f32, v); }
static LLVMValueRef i32c(cg_em *e, uint32_t v) { return LLVMConstInt(e->i32, v, 0); }

static LLVMValueRef fmuladd(cg_em *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    return cg_em_intrinsic(e, "llvm.fmuladd", e->f32, 3, (LLVMValueRef[]){a, b, c});
}

/* c[0] + x (c[1] + x (c[2] + ...)), n coefficients. */
static LLVMValueRef horner(cg_em *e, LLVMValueRef x, const float *c, int n)
{
    LLVMValueRef p = f32c(e, c[n - 1]);
    for (int k = n - 2; k >= 0; k--)
        p = fmuladd(e, p, x, f32c(e, c[k]));
    return p;
}

/* exp(x) = t (1 + p) for x in [-87, 88]: *t = 2^n, *p = expm1(f). */
static void exp_parts(cg_em *e, LLVMValueRef x, LLVMValueRef *t, LLVMValueRef *p)
{
    static const float c[5] = {0x1.fffffep-2f, 0x1.5554aep-3f, 0x1.555736p-5f, 0x1.12287cp-7f, 0x1.6b55a2p-10f};
    LLVMBuilderRef b = e->b;
    LLVMValueRef n = cg_em_intrinsic1(e, "llvm.roundeven", LLVMBuildFMul(b, x, f32c(e, 0x1.715476p+0f), ""));
    LLVMValueRef f = fmuladd(e, n, f32c(e, -0x1.62e4p-1f), x);
    f = fmuladd(e, n, f32c(e, -0x1.7f7d1cp-20f), f);
    *p = fmuladd(e, LLVMBuildFMul(b, f, f, ""), horner(e, f, c, 5), f);
    LLVMValueRef bits = LLVMBuildShl(b, LLVMBuildFPToSI(b, n, e->i32, ""), i32c(e, 23), "");
    *t = LLVMBuildBitCast(b, LLVMBuildAdd(b, bits, i32c(e, 0x3f800000), ""), e->f32, "");
}

static LLVMValueRef nan_passes(cg_em *e, LLVMValueRef x, LLVMValueRef y)
{
    return LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealUNO, x, x, ""), x, y, "");
}

/* exp of f32 for every input: x clamped to [-104, 89] (beyond, exp rounds to 0 and overflows to
 * infinity anyway), then t (1 + p) with t = 2^n applied as 2^(n/2) 2^(n - n/2), so that results
 * near the ends (subnormal or infinite) come out of the last multiplication rounded once. f64 and
 * other types go to llvm.exp. */
LLVMValueRef cg_em_exp(cg_em *e, LLVMValueRef x)
{
    if (LLVMTypeOf(x) != e->f32)
        return cg_em_intrinsic1(e, "llvm.exp", x);
    LLVMBuilderRef b = e->b;
    LLVMValueRef c = cg_em_intrinsic(e, "llvm.maxnum", e->f32, 2, (LLVMValueRef[]){x, f32c(e, -104)});
    c = cg_em_intrinsic(e, "llvm.minnum", e->f32, 2, (LLVMValueRef[]){c, f32c(e, 89)});
    static const float k[5] = {0x1.fffffep-2f, 0x1.5554aep-3f, 0x1.555736p-5f, 0x1.12287cp-7f, 0x1.6b55a2p-10f};
    LLVMValueRef n = cg_em_intrinsic1(e, "llvm.roundeven", LLVMBuildFMul(b, c, f32c(e, 0x1.715476p+0f), ""));
    LLVMValueRef f = fmuladd(e, n, f32c(e, -0x1.62e4p-1f), c);
    f = fmuladd(e, n, f32c(e, -0x1.7f7d1cp-20f), f);
    LLVMValueRef p = fmuladd(e, LLVMBuildFMul(b, f, f, ""), horner(e, f, k, 5), f);
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, e->i32, ""), n1 = LLVMBuildAShr(b, ni, i32c(e, 1), "");
    LLVMValueRef n2 = LLVMBuildSub(b, ni, n1, "");
    LLVMValueRef t1 = LLVMBuildBitCast(b, LLVMBuildAdd(b, LLVMBuildShl(b, n1, i32c(e, 23), ""), i32c(e, 0x3f800000), ""), e->f32, "");
    LLVMValueRef t2 = LLVMBuildBitCast(b, LLVMBuildAdd(b, LLVMBuildShl(b, n2, i32c(e, 23), ""), i32c(e, 0x3f800000), ""), e->f32, "");
    LLVMValueRef y = LLVMBuildFMul(b, fmuladd(e, t1, p, t1), t2, "exp");
    return nan_passes(e, x, y);
}

/* |x| < 0.625: x + x^3 P(x^2); above, with q = expm1(2|x|) (|x| clamped to 9, where tanh is 1
 * in f32), q / (q + 2); the sign from x. */
LLVMValueRef cg_em_tanh(cg_em *e, LLVMValueRef x)
{
    static const float c[6] = {-0x1.555554p-2f, 0x1.11107ap-3f, -0x1.b9f18ep-5f, 0x1.63a5e6p-6f,
                               -0x1.0c6368p-7f, 0x1.1a3efep-9f};
    if (LLVMTypeOf(x) != e->f32)
        return cg_em_libm(e, "tanh", x);
    LLVMBuilderRef b = e->b;
    LLVMValueRef ax = cg_em_intrinsic1(e, "llvm.fabs", x), x2 = LLVMBuildFMul(b, ax, ax, ""), t, p;
    LLVMValueRef small = fmuladd(e, ax, LLVMBuildFMul(b, horner(e, x2, c, 6), x2, ""), ax);
    LLVMValueRef a9 = cg_em_intrinsic(e, "llvm.minnum", e->f32, 2, (LLVMValueRef[]){ax, f32c(e, 9)});
    exp_parts(e, LLVMBuildFMul(b, a9, f32c(e, 2), ""), &t, &p);
    LLVMValueRef q = fmuladd(e, p, t, LLVMBuildFSub(b, t, f32c(e, 1), ""));
    LLVMValueRef big = LLVMBuildFDiv(b, q, LLVMBuildFAdd(b, q, f32c(e, 2), ""), "");
    LLVMValueRef y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, f32c(e, 0.625f), ""), small, big, "tanh");
    return nan_passes(e, x, cg_em_intrinsic(e, "llvm.copysign", e->f32, 2, (LLVMValueRef[]){y, x}));
}

/* |x| < 1: x + x P(x^2); above, 1 - exp(-x^2) Q(|x| - 2), Q fitting erfc(x) exp(x^2) on
 * [1, 3.92] (|x| clamped to 3.92, where erf is 1 in f32); the sign from x. */
LLVMValueRef cg_em_erf(cg_em *e, LLVMValueRef x)
{
    static const float cs[7] = {0x1.06eba8p-3f, -0x1.81273ep-2f, 0x1.ce2ce6p-4f, -0x1.b7f71ap-6f,
                                0x1.53f224p-8f, -0x1.a3515ep-11f, 0x1.4771fcp-14f};
    static const float cb[10] = {0x1.05867p-2f, -0x1.b5703cp-4f, 0x1.567578p-5f, -0x1.fa816p-7f,
                                 0x1.643576p-8f, -0x1.e55f04p-10f, 0x1.35aa4p-11f, -0x1.47dbd6p-13f,
                                 0x1.1cd85ep-14f, -0x1.db0022p-16f};
    if (LLVMTypeOf(x) != e->f32)
        return cg_em_libm(e, "erf", x);
    LLVMBuilderRef b = e->b;
    LLVMValueRef ax = cg_em_intrinsic1(e, "llvm.fabs", x), t, p;
    LLVMValueRef small = fmuladd(e, ax, horner(e, LLVMBuildFMul(b, ax, ax, ""), cs, 7), ax);
    LLVMValueRef a = cg_em_intrinsic(e, "llvm.minnum", e->f32, 2, (LLVMValueRef[]){ax, f32c(e, 3.92f)});
    exp_parts(e, LLVMBuildFNeg(b, LLVMBuildFMul(b, a, a, ""), ""), &t, &p);
    LLVMValueRef q = horner(e, LLVMBuildFSub(b, a, f32c(e, 2), ""), cb, 10);
    LLVMValueRef big = LLVMBuildFSub(b, f32c(e, 1), LLVMBuildFMul(b, fmuladd(e, p, t, t), q, ""), "");
    LLVMValueRef y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, ax, f32c(e, 1), ""), small, big, "erf");
    return nan_passes(e, x, cg_em_intrinsic(e, "llvm.copysign", e->f32, 2, (LLVMValueRef[]){y, x}));
}

/* 1 + x = 2^k (1 + m): k from the exponent of 1 + x (rounded), m = x 2^-k + (2^-k - 1) with both
 * terms exact, so the rounding of 1 + x is not in m; log1p(x) = k ln2 + m + m^2 P(m). */
LLVMValueRef cg_em_log1p(cg_em *e, LLVMValueRef x)
{
    static const float c[9] = {-0x1p-1f, 0x1.5555a4p-2f, -0x1.000044p-2f, 0x1.99696ep-3f, -0x1.54ee96p-3f,
                               0x1.28854cp-3f, -0x1.0d973p-3f, 0x1.acbde4p-4f, -0x1.717252p-5f};
    if (LLVMTypeOf(x) != e->f32)
        return cg_em_libm(e, "log1p", x);
    LLVMBuilderRef b = e->b;
    LLVMValueRef u = LLVMBuildFAdd(b, x, f32c(e, 1), "");
    LLVMValueRef k = LLVMBuildAnd(b, LLVMBuildSub(b, LLVMBuildBitCast(b, u, e->i32, ""), i32c(e, 0x3f400000), ""),
                                  i32c(e, 0xff800000), "");
    LLVMValueRef s = LLVMBuildBitCast(b, LLVMBuildSub(b, i32c(e, 0x40800000), k, ""), e->f32, "");   /* 4 2^-k */
    LLVMValueRef xs = LLVMBuildBitCast(b, LLVMBuildSub(b, LLVMBuildBitCast(b, x, e->i32, ""), k, ""), e->f32, "");
    LLVMValueRef m = LLVMBuildFAdd(b, xs, fmuladd(e, f32c(e, 0.25f), s, f32c(e, -1)), "");
    LLVMValueRef p = fmuladd(e, LLVMBuildFMul(b, m, m, ""), horner(e, m, c, 9), m);
    LLVMValueRef kf = LLVMBuildSIToFP(b, LLVMBuildAShr(b, k, i32c(e, 23), ""), e->f32, "");
    LLVMValueRef y = fmuladd(e, kf, f32c(e, 0x1.62e43p-1f), p);
    /* 1 + x is inf, 0, negative (x < -1) or 1 (|x| < 2^-25, where log1p(x) is x, -0 included). */
    static const struct { LLVMRealPredicate pred; float at, then; } special[] = {
        {LLVMRealOEQ, __builtin_inff(), __builtin_inff()}, {LLVMRealOEQ, 0, -__builtin_inff()},
        {LLVMRealOLT, 0, __builtin_nanf("")}};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        y = LLVMBuildSelect(b, LLVMBuildFCmp(b, special[i].pred, u, f32c(e, special[i].at), ""),
                            f32c(e, special[i].then), y, "");
    y = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, u, f32c(e, 1), ""), x, y, "log1p");
    return nan_passes(e, x, y);
}

/* ---- the ops --------------------------------------------------------------------------- */


/* A dimension's value: its constant times its symbols, read from syms[]. */
LLVMValueRef cg_em_dim(cg_em *e, dl_dim d)
{
    LLVMValueRef v = cg_em_i64(e, d.c);
    for (int k = 0; k < d.n; k++) {
        LLVMValueRef idx = cg_em_i64(e, cg_program_sym(e->p, d.sym[k]));
        LLVMValueRef s = LLVMBuildLoad2(e->b, e->i64, LLVMBuildGEP2(e->b, e->i64, e->syms, &idx, 1, ""), d.sym[k]);
        v = LLVMBuildMul(e->b, v, s, "");
    }
    return v;
}

cg_loop cg_em_loop_range(cg_em *e, LLVMValueRef fn, LLVMValueRef lo, LLVMValueRef hi, const char *name)
{
    cg_loop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    l.body = LLVMAppendBasicBlockInContext(e->c, fn, name);
    l.done = LLVMAppendBasicBlockInContext(e->c, fn, "done");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, lo, hi, ""), l.body, l.done);
    LLVMPositionBuilderAtEnd(e->b, l.body);
    l.i = LLVMBuildPhi(e->b, e->i64, name);
    LLVMAddIncoming(l.i, &lo, &pre, 1);
    return l;
}

cg_loop cg_em_loop_begin(cg_em *e, LLVMValueRef fn, LLVMValueRef n, const char *name)
{
    return cg_em_loop_range(e, fn, cg_em_i64(e, 0), n, name);
}

void cg_em_loop_end(cg_em *e, cg_loop *l, LLVMValueRef n)
{
    LLVMValueRef next = LLVMBuildAdd(e->b, l->i, cg_em_i64(e, 1), "");
    LLVMBasicBlockRef end = LLVMGetInsertBlock(e->b);
    LLVMAddIncoming(l->i, &next, &end, 1);
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, next, n, ""), l->body, l->done);
    LLVMPositionBuilderAtEnd(e->b, l->done);
}

LLVMValueRef cg_em_buffer(cg_em *e, LLVMValueRef bufs, const dl_value *v)
{
    char nm[32];
    snprintf(nm, sizeof nm, "b%d", v->id);
    LLVMValueRef idx = cg_em_i64(e, v->id);
    return LLVMBuildLoad2(e->b, e->ptr, LLVMBuildGEP2(e->b, e->ptr, bufs, &idx, 1, ""), nm);
}

void cg_em_fail(cg_em *e, int64_t op_index, LLVMValueRef value, LLVMValueRef size)
{
    LLVMValueRef w[4] = {cg_em_i64(e, CG_STATUS_INDEX), value, size, cg_em_i64(e, op_index)};
    for (int i = 0; i < 4; i++) {
        LLVMValueRef idx = cg_em_i64(e, i);
        LLVMBuildStore(e->b, w[i], LLVMBuildGEP2(e->b, e->i64, e->status, &idx, 1, ""));
    }
}

LLVMValueRef cg_em_begin(cg_em *e, cg_jit *j, LLVMModuleRef m, const cg_program *p, const char *name)
{
    LLVMContextRef c = cg_jit_context(j);
    *e = (cg_em){.c = c, .m = m, .b = LLVMCreateBuilderInContext(c), .p = p};
    e->i1 = LLVMInt1TypeInContext(c), e->i8 = LLVMInt8TypeInContext(c), e->i16 = LLVMInt16TypeInContext(c);
    e->i32 = LLVMInt32TypeInContext(c), e->i64 = LLVMInt64TypeInContext(c);
    e->f16 = LLVMHalfTypeInContext(c), e->f32 = LLVMFloatTypeInContext(c), e->f64 = LLVMDoubleTypeInContext(c);
    e->ptr = LLVMPointerTypeInContext(c, 0);
    LLVMTypeRef params[5] = {e->ptr, e->ptr, e->ptr, e->i64, e->i64};
    LLVMValueRef fn = LLVMAddFunction(m, name, LLVMFunctionType(LLVMVoidTypeInContext(c), params, 5, 0));
    cg_jit_tune(j, fn);
    LLVMSetValueName2(LLVMGetParam(fn, 0), "bufs", 4);
    LLVMSetValueName2(LLVMGetParam(fn, 1), "syms", 4);
    LLVMSetValueName2(LLVMGetParam(fn, 2), "status", 6);
    LLVMSetValueName2(LLVMGetParam(fn, 3), "begin", 5);
    LLVMSetValueName2(LLVMGetParam(fn, 4), "end", 3);
    e->syms = LLVMGetParam(fn, 1);
    e->status = LLVMGetParam(fn, 2);
    e->begin = LLVMGetParam(fn, 3);
    e->end = LLVMGetParam(fn, 4);
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    return fn;
}

void cg_em_end(cg_em *e)
{
    LLVMDisposeBuilder(e->b);
}
