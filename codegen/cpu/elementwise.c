/* Fused elementwise kernels as LLVM IR (see elementwise.h). The semantics are those of the
 * reference implementation (passes/eval.c): NaN-propagating max/min, Python's floor division and
 * modulo, torch.round's half-to-even, results rounded or wrapped to their dtype. */
#include "codegen/cpu/elementwise.h"

#include <stdio.h>
#include <string.h>

typedef struct em {
    LLVMContextRef c;
    LLVMModuleRef  m;
    LLVMBuilderRef b;
    LLVMTypeRef    i1, i8, i16, i32, i64, f16, f32, f64, ptr;
    LLVMValueRef   syms;               /* const int64_t *syms */
    const cg_program *p;
} em;

/* ---- types and conversions ------------------------------------------------------------- */

static LLVMTypeRef storage_type(em *e, dl_dtype t)
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

static LLVMTypeRef compute_type(em *e, dl_dtype t)
{
    return t == DL_F64 ? e->f64 : ir_dtype_is_float(t) ? e->f32 : t == DL_BOOL ? e->i1 : e->i64;
}

static LLVMValueRef cf(LLVMTypeRef t, double v) { return LLVMConstReal(t, v); }
static LLVMValueRef ci(em *e, int64_t v) { return LLVMConstInt(e->i64, (unsigned long long)v, 1); }

static LLVMValueRef call_intrinsic(em *e, const char *name, LLVMTypeRef t, int n, LLVMValueRef *args)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[1] = {t};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m, id, tys, 1);
    LLVMTypeRef ft = LLVMIntrinsicGetType(e->c, id, tys, 1);
    return LLVMBuildCall2(e->b, ft, fn, args, (unsigned)n, "");
}

static LLVMValueRef call1(em *e, const char *name, LLVMValueRef a)
{
    return call_intrinsic(e, name, LLVMTypeOf(a), 1, &a);
}

/* A libm function of one argument (tanhf/tanh, ...), declared on first use. */
static LLVMValueRef call_libm(em *e, const char *name, LLVMValueRef a)
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

static LLVMValueRef call_i64_helper(em *e, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef ps[2] = {e->i64, e->i64}, ft = LLVMFunctionType(e->i64, ps, 2, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->m, name);
    if (!fn)
        fn = LLVMAddFunction(e->m, name, ft);
    LLVMValueRef args[2] = {a, b};
    return LLVMBuildCall2(e->b, ft, fn, args, 2, "");
}

static LLVMValueRef bf16_to_f32(em *e, LLVMValueRef bits16)
{
    LLVMValueRef w = LLVMBuildShl(e->b, LLVMBuildZExt(e->b, bits16, e->i32, ""),
                                  LLVMConstInt(e->i32, 16, 0), "");
    return LLVMBuildBitCast(e->b, w, e->f32, "");
}

/* Round to nearest even, as the reference does; NaN stays a (quiet) NaN. */
static LLVMValueRef f32_to_bf16(em *e, LLVMValueRef x)
{
    LLVMValueRef u = LLVMBuildBitCast(e->b, x, e->i32, "");
    LLVMValueRef lsb = LLVMBuildAnd(e->b, LLVMBuildLShr(e->b, u, LLVMConstInt(e->i32, 16, 0), ""),
                                    LLVMConstInt(e->i32, 1, 0), "");
    LLVMValueRef r = LLVMBuildAdd(e->b, u, LLVMBuildAdd(e->b, lsb, LLVMConstInt(e->i32, 0x7fff, 0), ""), "");
    LLVMValueRef hi = LLVMBuildTrunc(e->b, LLVMBuildLShr(e->b, r, LLVMConstInt(e->i32, 16, 0), ""), e->i16, "");
    LLVMValueRef nan = LLVMBuildFCmp(e->b, LLVMRealUNO, x, x, "");
    return LLVMBuildSelect(e->b, nan, LLVMConstInt(e->i16, 0x7fc0, 0), hi, "");
}

static LLVMValueRef load_elem(em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx)
{
    LLVMTypeRef st = storage_type(e, t);
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

static void store_elem(em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx, LLVMValueRef v)
{
    LLVMTypeRef st = storage_type(e, t);
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
static LLVMValueRef round_to(em *e, LLVMValueRef v, dl_dtype t)
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
static LLVMValueRef convert(em *e, LLVMValueRef v, dl_dtype from, dl_dtype to)
{
    LLVMTypeRef tt = compute_type(e, to), ft = compute_type(e, from);
    if (to == DL_BOOL)
        return ft == e->i1 ? v : ir_dtype_is_float(from) ?
               LLVMBuildFCmp(e->b, LLVMRealUNE, v, cf(ft, 0), "") :
               LLVMBuildICmp(e->b, LLVMIntNE, v, ci(e, 0), "");
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

static double attr_f(const dl_op *op, const char *name) { return IR_OP_ATTR(float, op, name); }

static LLVMValueRef emit_op(em *e, const dl_op *op, LLVMValueRef *a)
{
    dl_dtype dt = op->in[op->code == DL_OP_WHERE ? 1 : 0]->type.dtype;
    bool fl = ir_dtype_is_float(dt), isbool = dt == DL_BOOL;
    LLVMTypeRef t = compute_type(e, dt);
    LLVMValueRef x = a[0], y = op->nin > 1 ? a[1] : NULL, zero = fl ? cf(t, 0) : ci(e, 0),
                 one = fl ? cf(t, 1) : ci(e, 1);
    LLVMBuilderRef b = e->b;
    switch (op->code) {
    case DL_OP_CAST: return convert(e, x, dt, op->res[0].type.dtype);
    case DL_OP_NEG: return fl ? LLVMBuildFNeg(b, x, "") : LLVMBuildSub(b, zero, x, "");
    case DL_OP_ABS:
        return fl ? call1(e, "llvm.fabs", x)
                  : LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), LLVMBuildSub(b, zero, x, ""), x, "");
    case DL_OP_EXP: return call1(e, "llvm.exp", x);
    case DL_OP_LOG: return call1(e, "llvm.log", x);
    case DL_OP_SQRT: return call1(e, "llvm.sqrt", x);
    case DL_OP_SIN: return call1(e, "llvm.sin", x);
    case DL_OP_COS: return call1(e, "llvm.cos", x);
    case DL_OP_LOG1P: return call_libm(e, "log1p", x);
    case DL_OP_TANH: return call_libm(e, "tanh", x);
    case DL_OP_ERF: return call_libm(e, "erf", x);
    case DL_OP_RSQRT: return LLVMBuildFDiv(b, one, call1(e, "llvm.sqrt", x), "");
    case DL_OP_SIGMOID:
        return LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, call1(e, "llvm.exp", LLVMBuildFNeg(b, x, "")), ""), "");
    case DL_OP_SILU:
        return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, one, call1(e, "llvm.exp", LLVMBuildFNeg(b, x, "")), ""), "");
    case DL_OP_RELU:
        if (!fl)
            return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, x, zero, ""), x, zero, "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x,
                               LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, zero, ""), "");
    case DL_OP_LEAKY_RELU:
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x,
                               LLVMBuildFMul(b, x, cf(t, attr_f(op, "negative_slope")), ""), "");
    case DL_OP_GELU: {
        LLVMValueRef half = LLVMBuildFMul(b, cf(t, 0.5), x, ""), inner;
        if (!strcmp(IR_OP_ATTR(str, op, "approximate"), "tanh")) {
            LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
            inner = LLVMBuildFMul(b, cf(t, 0.7978845608028654),
                                  LLVMBuildFAdd(b, x, LLVMBuildFMul(b, cf(t, 0.044715), x3, ""), ""), "");
            inner = call_libm(e, "tanh", inner);
        } else
            inner = call_libm(e, "erf", LLVMBuildFMul(b, x, cf(t, 0.7071067811865476), ""));
        return LLVMBuildFMul(b, half, LLVMBuildFAdd(b, one, inner, ""), "");
    }
    case DL_OP_SIGN: {
        if (!fl) {
            LLVMValueRef p = LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSGT, x, zero, ""), t, "");
            return LLVMBuildSub(b, p, LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), t, ""), "");
        }
        LLVMValueRef p = LLVMBuildUIToFP(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), t, "");
        LLVMValueRef s = LLVMBuildFSub(b, p, LLVMBuildUIToFP(b, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), t, ""), "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, s, "");
    }
    case DL_OP_FLOOR: return fl ? call1(e, "llvm.floor", x) : x;
    case DL_OP_CEIL: return fl ? call1(e, "llvm.ceil", x) : x;
    case DL_OP_ROUND: return fl ? call1(e, "llvm.roundeven", x) : x;
    case DL_OP_CLAMP: {
        /* NaN-propagating bounds, computed in double for integers as the reference does. */
        LLVMValueRef v = fl ? x : LLVMBuildSIToFP(b, x, e->f64, "");
        LLVMTypeRef vt = LLVMTypeOf(v);
        if (ir_attr_find(op->nattr, op->attr, "min"))
            v = call_intrinsic(e, "llvm.maximum", vt, 2, (LLVMValueRef[]){v, cf(vt, attr_f(op, "min"))});
        if (ir_attr_find(op->nattr, op->attr, "max"))
            v = call_intrinsic(e, "llvm.minimum", vt, 2, (LLVMValueRef[]){v, cf(vt, attr_f(op, "max"))});
        return fl ? v : convert(e, v, DL_F64, DL_I64);
    }
    case DL_OP_NOT: return LLVMBuildNot(b, x, "");
    case DL_OP_AND: return LLVMBuildAnd(b, x, y, "");
    case DL_OP_OR: return LLVMBuildOr(b, x, y, "");
    case DL_OP_ADD: return fl ? LLVMBuildFAdd(b, x, y, "") : LLVMBuildAdd(b, x, y, "");
    case DL_OP_SUB: return fl ? LLVMBuildFSub(b, x, y, "") : LLVMBuildSub(b, x, y, "");
    case DL_OP_MUL: return fl ? LLVMBuildFMul(b, x, y, "") : LLVMBuildMul(b, x, y, "");
    case DL_OP_DIV: return LLVMBuildFDiv(b, x, y, "");
    case DL_OP_POW:
        return fl ? call_intrinsic(e, "llvm.pow", t, 2, (LLVMValueRef[]){x, y})
                  : call_i64_helper(e, "cg_cpu_ipow", x, y);
    case DL_OP_MAXIMUM:
    case DL_OP_MINIMUM:
        if (fl)
            return call_intrinsic(e, op->code == DL_OP_MAXIMUM ? "llvm.maximum" : "llvm.minimum", t, 2,
                                  (LLVMValueRef[]){x, y});
        return LLVMBuildSelect(b, LLVMBuildICmp(b, op->code == DL_OP_MAXIMUM ? LLVMIntSGT : LLVMIntSLT, x, y, ""),
                               x, y, "");
    case DL_OP_FLOOR_DIV:
        return fl ? call1(e, "llvm.floor", LLVMBuildFDiv(b, x, y, "")) : call_i64_helper(e, "cg_cpu_ifloordiv", x, y);
    case DL_OP_MOD: {
        if (!fl)
            return call_i64_helper(e, "cg_cpu_imod", x, y);
        LLVMValueRef q = call1(e, "llvm.floor", LLVMBuildFDiv(b, x, y, ""));
        LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, q, y, ""), "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, y, zero, ""), cf(t, __builtin_nan("")), r, "");
    }
    case DL_OP_EQ: case DL_OP_NE: case DL_OP_LT: case DL_OP_LE: case DL_OP_GT: case DL_OP_GE: {
        static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
        static const LLVMIntPredicate ip[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
        static const LLVMIntPredicate bp[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
        int k = op->code - DL_OP_EQ;
        return fl ? LLVMBuildFCmp(b, fp[k], x, y, "") : LLVMBuildICmp(b, isbool ? bp[k] : ip[k], x, y, "");
    }
    case DL_OP_WHERE: return LLVMBuildSelect(b, a[0], a[1], a[2], "");
    default: return NULL;
    }
}

/* ---- the kernel ------------------------------------------------------------------------ */

/* A dimension's value: its constant times its symbols, read from syms[]. */
static LLVMValueRef dim_value(em *e, dl_dim d)
{
    LLVMValueRef v = ci(e, d.c);
    for (int k = 0; k < d.n; k++) {
        LLVMValueRef idx = ci(e, cg_program_sym(e->p, d.sym[k]));
        LLVMValueRef s = LLVMBuildLoad2(e->b, e->i64, LLVMBuildGEP2(e->b, e->i64, e->syms, &idx, 1, ""), d.sym[k]);
        v = LLVMBuildMul(e->b, v, s, "");
    }
    return v;
}

static bool is_one(dl_dim d) { return d.n == 0 && d.c == 1; }

/* A counted loop: `for (i = 0; i < n; i++)`. Returns i; *after is where code continues. */
typedef struct loop { LLVMBasicBlockRef head, body, done; LLVMValueRef i; } loop;

static loop loop_begin(em *e, LLVMValueRef fn, LLVMValueRef n, const char *name)
{
    loop l;
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    l.body = LLVMAppendBasicBlockInContext(e->c, fn, name);
    l.done = LLVMAppendBasicBlockInContext(e->c, fn, "done");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, n, ci(e, 0), ""), l.body, l.done);
    LLVMPositionBuilderAtEnd(e->b, l.body);
    l.i = LLVMBuildPhi(e->b, e->i64, name);
    LLVMValueRef z = ci(e, 0);
    LLVMAddIncoming(l.i, &z, &pre, 1);
    l.head = l.body;
    return l;
}

static void loop_end(em *e, loop *l, LLVMValueRef n)
{
    LLVMValueRef next = LLVMBuildAdd(e->b, l->i, ci(e, 1), "");
    LLVMBasicBlockRef end = LLVMGetInsertBlock(e->b);
    LLVMAddIncoming(l->i, &next, &end, 1);
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, next, n, ""), l->body, l->done);
    LLVMPositionBuilderAtEnd(e->b, l->done);
}

bool cg_cpu_emit_elementwise(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                             char *err, size_t errlen)
{
    LLVMContextRef c = cg_jit_context(j);
    em e = {.c = c, .m = m, .b = LLVMCreateBuilderInContext(c), .p = p};
    e.i1 = LLVMInt1TypeInContext(c), e.i8 = LLVMInt8TypeInContext(c), e.i16 = LLVMInt16TypeInContext(c);
    e.i32 = LLVMInt32TypeInContext(c), e.i64 = LLVMInt64TypeInContext(c);
    e.f16 = LLVMHalfTypeInContext(c), e.f32 = LLVMFloatTypeInContext(c), e.f64 = LLVMDoubleTypeInContext(c);
    e.ptr = LLVMPointerTypeInContext(c, 0);
    LLVMTypeRef params[2] = {e.ptr, e.ptr};
    LLVMValueRef fn = LLVMAddFunction(m, k->name, LLVMFunctionType(LLVMVoidTypeInContext(c), params, 2, 0));
    cg_jit_tune(j, fn);
    LLVMSetValueName2(LLVMGetParam(fn, 0), "bufs", 4);
    LLVMSetValueName2(LLVMGetParam(fn, 1), "syms", 4);
    e.syms = LLVMGetParam(fn, 1);
    LLVMPositionBuilderAtEnd(e.b, LLVMAppendBasicBlockInContext(c, fn, "entry"));

    const dl_op *lastop = k->ops[k->nops - 1];
    const dl_value *outv = &lastop->res[0];
    const dl_type *ot = &outv->type;
    int r = ot->rank;
    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    /* Pointers, named after their buffers. */
    LLVMValueRef inptr[64], outptr;
    char nm[32];
    for (int i = 0; i < k->nin; i++) {
        LLVMValueRef idx = ci(&e, k->in[i]->id);
        snprintf(nm, sizeof nm, "b%d", k->in[i]->id);
        inptr[i] = LLVMBuildLoad2(e.b, e.ptr, LLVMBuildGEP2(e.b, e.ptr, bufs, &idx, 1, ""), nm);
    }
    LLVMValueRef oidx = ci(&e, outv->id);
    snprintf(nm, sizeof nm, "b%d", outv->id);
    outptr = LLVMBuildLoad2(e.b, e.ptr, LLVMBuildGEP2(e.b, e.ptr, bufs, &oidx, 1, ""), nm);

    /* Output extents: rows (all but the last dimension) by a contiguous inner run. */
    LLVMValueRef od[DL_MAX_RANK] = {0};
    for (int d = 0; d < r; d++)
        od[d] = dim_value(&e, ot->dim[d]);
    LLVMValueRef inner = r ? od[r - 1] : ci(&e, 1), rows = ci(&e, 1);
    for (int d = 0; d + 1 < r; d++)
        rows = LLVMBuildMul(e.b, rows, od[d], "");
    /* Each input's stride for each output dimension: 0 where it broadcasts. */
    LLVMValueRef stride[64][DL_MAX_RANK];
    bool inner_step[64];
    for (int i = 0; i < k->nin; i++) {
        const dl_type *t = &k->in[i]->type;
        LLVMValueRef s = ci(&e, 1);
        for (int d = r - 1; d >= 0; d--) {
            int id = d - (r - t->rank);
            bool bc = id < 0 || (is_one(t->dim[id]) && !is_one(ot->dim[d]));
            stride[i][d] = bc ? ci(&e, 0) : s;
            if (id >= 0)
                s = LLVMBuildMul(e.b, s, dim_value(&e, t->dim[id]), "");
        }
        int il = r - 1 - (r - t->rank);
        inner_step[i] = r > 0 && il >= 0 && !(is_one(t->dim[il]) && !is_one(ot->dim[r - 1]));
    }

    loop lr = loop_begin(&e, fn, rows, "row");
    LLVMValueRef base[64];
    for (int i = 0; i < k->nin; i++)
        base[i] = ci(&e, 0);
    LLVMValueRef rem = lr.i;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef coord = LLVMBuildSRem(e.b, rem, od[d], "");
        rem = LLVMBuildSDiv(e.b, rem, od[d], "");
        for (int i = 0; i < k->nin; i++)
            base[i] = LLVMBuildAdd(e.b, base[i], LLVMBuildMul(e.b, coord, stride[i][d], ""), "");
    }
    LLVMValueRef orow = LLVMBuildMul(e.b, lr.i, inner, "");
    loop li = loop_begin(&e, fn, inner, "col");

    /* The chain, in registers. */
    LLVMValueRef val[64 + 32];
    const dl_value *key[64 + 32];
    int nval = 0;
    for (int i = 0; i < k->nin; i++) {
        LLVMValueRef idx = inner_step[i] ? LLVMBuildAdd(e.b, base[i], li.i, "") : base[i];
        key[nval] = k->in[i];
        val[nval++] = load_elem(&e, inptr[i], k->in[i]->type.dtype, idx);
    }
    for (int o = 0; o < k->nops; o++) {
        const dl_op *op = k->ops[o];
        LLVMValueRef args[3];
        for (int a = 0; a < op->nin; a++)
            for (int q = 0; q < nval; q++)
                if (key[q] == op->in[a])
                    args[a] = val[q];
        LLVMValueRef v = emit_op(&e, op, args);
        if (!v) {
            snprintf(err, errlen, "no elementwise kernel for '%s' (a bug in dlc)", ir_op_info(op->code)->name);
            LLVMDisposeBuilder(e.b);
            return false;
        }
        key[nval] = &op->res[0];
        val[nval++] = round_to(&e, v, op->res[0].type.dtype);
    }
    store_elem(&e, outptr, ot->dtype, LLVMBuildAdd(e.b, orow, li.i, ""), val[nval - 1]);
    loop_end(&e, &li, inner);
    loop_end(&e, &lr, rows);
    LLVMBuildRetVoid(e.b);
    LLVMDisposeBuilder(e.b);
    return true;
}

int64_t cg_cpu_ifloordiv(int64_t a, int64_t b)
{
    if (b == 0 || (a == INT64_MIN && b == -1))
        return 0;    /* undefined: the reference reports it; compiled code must not trap */
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int64_t cg_cpu_imod(int64_t a, int64_t b)
{
    if (b == 0 || (a == INT64_MIN && b == -1))
        return 0;
    return a % b + ((a % b != 0) && ((a < 0) != (b < 0)) ? b : 0);
}

int64_t cg_cpu_ipow(int64_t a, int64_t b)
{
    if (b < 0)
        return 0;
    uint64_t r = 1, base = (uint64_t)a;
    for (; b; b >>= 1, base *= base)
        if (b & 1)
            r *= base;
    return (int64_t)r;
}
