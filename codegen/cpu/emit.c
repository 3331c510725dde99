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

cg_loop cg_em_loop_begin(cg_em *e, LLVMValueRef fn, LLVMValueRef n, const char *name)
{
    cg_loop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    l.body = LLVMAppendBasicBlockInContext(e->c, fn, name);
    l.done = LLVMAppendBasicBlockInContext(e->c, fn, "done");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, n, cg_em_i64(e, 0), ""), l.body, l.done);
    LLVMPositionBuilderAtEnd(e->b, l.body);
    l.i = LLVMBuildPhi(e->b, e->i64, name);
    LLVMValueRef z = cg_em_i64(e, 0);
    LLVMAddIncoming(l.i, &z, &pre, 1);
    return l;
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
    LLVMTypeRef params[3] = {e->ptr, e->ptr, e->ptr};
    LLVMValueRef fn = LLVMAddFunction(m, name, LLVMFunctionType(LLVMVoidTypeInContext(c), params, 3, 0));
    cg_jit_tune(j, fn);
    LLVMSetValueName2(LLVMGetParam(fn, 0), "bufs", 4);
    LLVMSetValueName2(LLVMGetParam(fn, 1), "syms", 4);
    LLVMSetValueName2(LLVMGetParam(fn, 2), "status", 6);
    e->syms = LLVMGetParam(fn, 1);
    e->status = LLVMGetParam(fn, 2);
    LLVMPositionBuilderAtEnd(e->b, LLVMAppendBasicBlockInContext(c, fn, "entry"));
    return fn;
}

void cg_em_end(cg_em *e)
{
    LLVMDisposeBuilder(e->b);
}
