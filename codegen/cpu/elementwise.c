/* Fused elementwise kernels as LLVM IR (see elementwise.h). The semantics are those of the
 * reference implementation (passes/eval.c): NaN-propagating max/min, Python's floor division and
 * modulo, torch.round's half-to-even, results rounded or wrapped to their dtype. */
#include "codegen/cpu/elementwise.h"

#include "codegen/cpu/emit.h"
#include "passes/eval.h"
#include "support/alloc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static double attr_f(const dl_op *op, const char *name) { return IR_OP_ATTR(float, op, name); }

/* Word i % 4 of Philox4x32-10 at `key`, counter (stream, i / 4), as support/philox.c computes it:
 * each 32x32 -> 64-bit product is a zext and a mul, which vectorize (vpmuludq). */
static LLVMValueRef philox_word(cg_em *e, LLVMValueRef key, uint64_t stream, LLVMValueRef i)
{
    LLVMBuilderRef b = e->b;
    LLVMValueRef n32 = cg_em_i64(e, 32), ctr = LLVMBuildLShr(b, i, cg_em_i64(e, 2), "ctr");
    LLVMValueRef c[4] = {LLVMBuildTrunc(b, ctr, e->i32, ""),
                         LLVMBuildTrunc(b, LLVMBuildLShr(b, ctr, n32, ""), e->i32, ""),
                         LLVMConstInt(e->i32, (uint32_t)stream, 0), LLVMConstInt(e->i32, stream >> 32, 0)};
    LLVMValueRef k0 = LLVMBuildTrunc(b, key, e->i32, "k0");
    LLVMValueRef k1 = LLVMBuildTrunc(b, LLVMBuildLShr(b, key, n32, ""), e->i32, "k1");
    for (int r = 0; r < 10; r++) {
        LLVMValueRef p0 = LLVMBuildNUWMul(b, LLVMBuildZExt(b, c[0], e->i64, ""), cg_em_i64(e, 0xD2511F53), "");
        LLVMValueRef p1 = LLVMBuildNUWMul(b, LLVMBuildZExt(b, c[2], e->i64, ""), cg_em_i64(e, 0xCD9E8D57), "");
        LLVMValueRef hi0 = LLVMBuildTrunc(b, LLVMBuildLShr(b, p0, n32, ""), e->i32, "");
        LLVMValueRef hi1 = LLVMBuildTrunc(b, LLVMBuildLShr(b, p1, n32, ""), e->i32, "");
        LLVMValueRef n0 = LLVMBuildXor(b, LLVMBuildXor(b, hi1, c[1], ""), k0, "");
        LLVMValueRef n2 = LLVMBuildXor(b, LLVMBuildXor(b, hi0, c[3], ""), k1, "");
        c[1] = LLVMBuildTrunc(b, p1, e->i32, "");
        c[3] = LLVMBuildTrunc(b, p0, e->i32, "");
        c[0] = n0, c[2] = n2;
        k0 = LLVMBuildAdd(b, k0, LLVMConstInt(e->i32, 0x9E3779B9u, 0), "");
        k1 = LLVMBuildAdd(b, k1, LLVMConstInt(e->i32, 0xBB67AE85u, 0), "");
    }
    LLVMValueRef w = LLVMBuildAnd(b, i, cg_em_i64(e, 3), ""), word = c[3];
    for (int k = 2; k >= 0; k--)
        word = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, w, cg_em_i64(e, k), ""), c[k], word, "");
    return word;
}

/* dropout at output position i (docs/ir.md): kept iff (word >> 8) 2^-24 >= p, that is iff
 * word >> 8 >= ceil(p 2^24), an exact integer test; kept values are x / (1 - p) in double,
 * rounded, as the reference computes them. */
static LLVMValueRef dropout(cg_em *e, const dl_op *op, LLVMValueRef x, LLVMValueRef key, LLVMValueRef i)
{
    LLVMBuilderRef b = e->b;
    double p = attr_f(op, "p"), t = ceil(p * 0x1p24);
    uint32_t thr = !(t > 0) ? (p == p ? 0 : (1u << 24) + 1) : t > 0x1p24 ? (1u << 24) + 1 : (uint32_t)t;
    LLVMValueRef u = LLVMBuildLShr(b, philox_word(e, key, (uint64_t)IR_OP_ATTR(int, op, "stream"), i),
                                   LLVMConstInt(e->i32, 8, 0), "");
    LLVMValueRef keep = LLVMBuildICmp(b, LLVMIntUGE, u, LLVMConstInt(e->i32, thr, 0), "keep");
    LLVMTypeRef t0 = LLVMTypeOf(x);
    LLVMValueRef xd = t0 == e->f64 ? x : LLVMBuildFPExt(b, x, e->f64, "");
    LLVMValueRef v = LLVMBuildFDiv(b, xd, LLVMConstReal(e->f64, 1 - p), "");
    v = t0 == e->f64 ? v : LLVMBuildFPTrunc(b, v, t0, "");
    return LLVMBuildSelect(b, keep, v, LLVMConstReal(t0, 0), "");
}

/* The op's value at output position i (the linear index: every op of a chain has its type). */
static LLVMValueRef emit_op(cg_em *e, const dl_op *op, LLVMValueRef *a, LLVMValueRef i)
{
    dl_dtype dt = op->in[op->code == DL_OP_WHERE ? 1 : 0]->type.dtype;
    bool fl = ir_dtype_is_float(dt), isbool = dt == DL_BOOL;
    LLVMTypeRef t = cg_em_compute_type(e, dt);
    LLVMValueRef x = a[0], y = op->nin > 1 ? a[1] : NULL, zero = fl ? LLVMConstReal(t, 0) : cg_em_i64(e, 0),
                 one = fl ? LLVMConstReal(t, 1) : cg_em_i64(e, 1);
    LLVMBuilderRef b = e->b;
    switch (op->code) {
    case DL_OP_CAST: return cg_em_convert(e, x, dt, op->res[0].type.dtype);
    case DL_OP_EXPAND:
    case DL_OP_BROADCAST_TO: return x;     /* the kernel's loop broadcasts */
    case DL_OP_NEG: return fl ? LLVMBuildFNeg(b, x, "") : LLVMBuildSub(b, zero, x, "");
    case DL_OP_ABS:
        return fl ? cg_em_intrinsic1(e, "llvm.fabs", x)
                  : LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), LLVMBuildSub(b, zero, x, ""), x, "");
    case DL_OP_EXP: return cg_em_exp(e, x);
    case DL_OP_LOG: return cg_em_intrinsic1(e, "llvm.log", x);
    case DL_OP_SQRT: return cg_em_intrinsic1(e, "llvm.sqrt", x);
    case DL_OP_SIN: return cg_em_intrinsic1(e, "llvm.sin", x);
    case DL_OP_COS: return cg_em_intrinsic1(e, "llvm.cos", x);
    case DL_OP_LOG1P: return cg_em_log1p(e, x);
    case DL_OP_TANH: return cg_em_tanh(e, x);
    case DL_OP_ERF: return cg_em_erf(e, x);
    case DL_OP_RSQRT: return LLVMBuildFDiv(b, one, cg_em_intrinsic1(e, "llvm.sqrt", x), "");
    case DL_OP_SIGMOID:
        return LLVMBuildFDiv(b, one, LLVMBuildFAdd(b, one, cg_em_exp(e, LLVMBuildFNeg(b, x, "")), ""), "");
    case DL_OP_SILU:
        return LLVMBuildFDiv(b, x, LLVMBuildFAdd(b, one, cg_em_exp(e, LLVMBuildFNeg(b, x, "")), ""), "");
    case DL_OP_RELU:
        if (!fl)
            return LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, x, zero, ""), x, zero, "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x,
                               LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUNO, x, x, ""), x, zero, ""), "");
    case DL_OP_LEAKY_RELU:
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), x,
                               LLVMBuildFMul(b, x, LLVMConstReal(t, attr_f(op, "negative_slope")), ""), "");
    case DL_OP_GELU: {
        LLVMValueRef half = LLVMBuildFMul(b, LLVMConstReal(t, 0.5), x, ""), inner;
        if (!strcmp(IR_OP_ATTR(str, op, "approximate"), "tanh")) {
            LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
            inner = LLVMBuildFMul(b, LLVMConstReal(t, 0.7978845608028654),
                                  LLVMBuildFAdd(b, x, LLVMBuildFMul(b, LLVMConstReal(t, 0.044715), x3, ""), ""), "");
            inner = cg_em_tanh(e, inner);
        } else
            inner = cg_em_erf(e, LLVMBuildFMul(b, x, LLVMConstReal(t, 0.7071067811865476), ""));
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
    case DL_OP_FLOOR: return fl ? cg_em_intrinsic1(e, "llvm.floor", x) : x;
    case DL_OP_CEIL: return fl ? cg_em_intrinsic1(e, "llvm.ceil", x) : x;
    case DL_OP_ROUND: return fl ? cg_em_intrinsic1(e, "llvm.roundeven", x) : x;
    case DL_OP_CLAMP: {
        /* NaN-propagating bounds, computed in double for integers as the reference does. */
        LLVMValueRef v = fl ? x : LLVMBuildSIToFP(b, x, e->f64, "");
        LLVMTypeRef vt = LLVMTypeOf(v);
        if (ir_attr_find(op->nattr, op->attr, "min"))
            v = cg_em_intrinsic(e, "llvm.maximum", vt, 2, (LLVMValueRef[]){v, LLVMConstReal(vt, attr_f(op, "min"))});
        if (ir_attr_find(op->nattr, op->attr, "max"))
            v = cg_em_intrinsic(e, "llvm.minimum", vt, 2, (LLVMValueRef[]){v, LLVMConstReal(vt, attr_f(op, "max"))});
        return fl ? v : cg_em_convert(e, v, DL_F64, DL_I64);
    }
    case DL_OP_NOT: return LLVMBuildNot(b, x, "");
    case DL_OP_AND: return LLVMBuildAnd(b, x, y, "");
    case DL_OP_OR: return LLVMBuildOr(b, x, y, "");
    case DL_OP_ADD: return fl ? LLVMBuildFAdd(b, x, y, "") : LLVMBuildAdd(b, x, y, "");
    case DL_OP_SUB: return fl ? LLVMBuildFSub(b, x, y, "") : LLVMBuildSub(b, x, y, "");
    case DL_OP_MUL: return fl ? LLVMBuildFMul(b, x, y, "") : LLVMBuildMul(b, x, y, "");
    case DL_OP_DIV: return LLVMBuildFDiv(b, x, y, "");
    case DL_OP_POW:
        return fl ? cg_em_intrinsic(e, "llvm.pow", t, 2, (LLVMValueRef[]){x, y})
                  : cg_em_helper(e, "cg_cpu_ipow", x, y);
    case DL_OP_MAXIMUM:
    case DL_OP_MINIMUM:
        if (fl)
            return cg_em_intrinsic(e, op->code == DL_OP_MAXIMUM ? "llvm.maximum" : "llvm.minimum", t, 2,
                                  (LLVMValueRef[]){x, y});
        return LLVMBuildSelect(b, LLVMBuildICmp(b, op->code == DL_OP_MAXIMUM ? LLVMIntSGT : LLVMIntSLT, x, y, ""),
                               x, y, "");
    case DL_OP_FLOOR_DIV:
        return fl ? cg_em_intrinsic1(e, "llvm.floor", LLVMBuildFDiv(b, x, y, "")) : cg_em_helper(e, "cg_cpu_ifloordiv", x, y);
    case DL_OP_MOD: {
        if (!fl)
            return cg_em_helper(e, "cg_cpu_imod", x, y);
        LLVMValueRef q = cg_em_intrinsic1(e, "llvm.floor", LLVMBuildFDiv(b, x, y, ""));
        LLVMValueRef r = LLVMBuildFSub(b, x, LLVMBuildFMul(b, q, y, ""), "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOEQ, y, zero, ""), LLVMConstReal(t, __builtin_nan("")), r, "");
    }
    case DL_OP_EQ: case DL_OP_NE: case DL_OP_LT: case DL_OP_LE: case DL_OP_GT: case DL_OP_GE: {
        static const LLVMRealPredicate fp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
        static const LLVMIntPredicate ip[] = {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE};
        static const LLVMIntPredicate bp[] = {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE};
        int k = op->code - DL_OP_EQ;
        return fl ? LLVMBuildFCmp(b, fp[k], x, y, "") : LLVMBuildICmp(b, isbool ? bp[k] : ip[k], x, y, "");
    }
    case DL_OP_WHERE: return LLVMBuildSelect(b, a[0], a[1], a[2], "");
    case DL_OP_DROPOUT: return dropout(e, op, x, y, i);
    default: return NULL;
    }
}

/* A constant's value `v` as the reference stores it, in the storage type of t (bf16 as its bits). */
static LLVMValueRef stored_constant(cg_em *e, dl_dtype t, double v)
{
    double r = pass_round_to(t, v);
    switch (t) {
    case DL_F32: case DL_F64: case DL_F16: return LLVMConstReal(cg_em_storage_type(e, t), r);
    case DL_BF16: {
        float f = (float)r;
        uint32_t u;
        memcpy(&u, &f, 4);
        return LLVMConstInt(e->i16, (u >> 16) | (f != f ? 0x40 : 0), 0);
    }
    default:
        return LLVMConstInt(cg_em_storage_type(e, t), (unsigned long long)(r >= 0x1p63 ? INT64_MAX : (int64_t)r), 1);
    }
}

/* A constant at output position i: a splat is an LLVM constant; other values are a private
 * constant array in the dtype's storage type, read at i (the constant has the chain's type). */
static LLVMValueRef constant(cg_em *e, const dl_op *op, LLVMValueRef i, const char *name)
{
    const dl_attr *a = ir_attr_find(op->nattr, op->attr, "value");
    dl_dtype t = op->res[0].type.dtype;
    if (a->n == 1) {
        double r = pass_round_to(t, a->u.floats[0]);
        LLVMTypeRef ct = cg_em_compute_type(e, t);
        return ct == e->i1 ? LLVMConstInt(ct, r != 0, 0) : ct == e->i64 ?
               LLVMConstInt(ct, (unsigned long long)(r >= 0x1p63 ? INT64_MAX : (int64_t)r), 1) : LLVMConstReal(ct, r);
    }
    LLVMValueRef *v = sup_malloc(sizeof *v * (size_t)a->n);
    if (!v)
        return NULL;
    for (int k = 0; k < a->n; k++)
        v[k] = stored_constant(e, t, a->u.floats[k]);
    LLVMValueRef init = LLVMConstArray2(cg_em_storage_type(e, t), v, (uint64_t)a->n);
    sup_free(v);
    LLVMValueRef g = LLVMAddGlobal(e->m, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return cg_em_load(e, g, t, i);
}

LLVMValueRef cg_cpu_elementwise_value(cg_em *e, dl_op *const *ops, int nops, LLVMValueRef at, int nin,
                                      const dl_value *const *in, const LLVMValueRef *inval, const char *name,
                                      char *err, size_t errlen)
{
    if (nin > 64 || nops > 64) {
        snprintf(err, errlen, "a fused group too large (a bug in dlc)");
        return NULL;
    }
    LLVMValueRef val[64 + 64];
    const dl_value *key[64 + 64];
    int nval = 0;
    for (int i = 0; i < nin; i++)
        key[nval] = in[i], val[nval++] = inval[i];
    for (int o = 0; o < nops; o++) {
        const dl_op *op = ops[o];
        LLVMValueRef args[3] = {0}, v;
        for (int a = 0; a < op->nin && a < 3; a++)
            for (int q = 0; q < nval; q++)
                if (key[q] == op->in[a])
                    args[a] = val[q];
        if (op->code == DL_OP_CONSTANT) {
            char cname[300];
            snprintf(cname, sizeof cname, "%s.value%d", name, o);
            if (!(v = constant(e, op, at, cname)))
                snprintf(err, errlen, "out of memory");
        } else if (!(v = emit_op(e, op, args, at)))
            snprintf(err, errlen, "no elementwise kernel for '%s' (a bug in dlc)", ir_op_info(op->code)->name);
        if (!v)
            return NULL;
        key[nval] = &op->res[0];
        val[nval++] = cg_em_round(e, v, op->res[0].type.dtype);
    }
    return val[nval - 1];
}

/* ---- the kernel ------------------------------------------------------------------------ */
static bool is_one(dl_dim d) { return d.n == 0 && d.c == 1; }
bool cg_cpu_emit_elementwise(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                             const cg_memplan *mp, char *err, size_t errlen)
{
    if (k->nin > 64 || k->nops > 64 || k->nout > 64) {
        snprintf(err, errlen, "kernel %s is too large (a bug in dlc)", k->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name);
    const dl_type *ot = &k->out[0]->type;
    int r = ot->rank;
    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    /* Pointers, named after their buffers; an input an output overwrites is read through the
     * output's pointer. */
    LLVMValueRef inptr[64], outptr[64], once[64] = {0};
    for (int q = 0; q < k->nout; q++)
        outptr[q] = cg_em_buffer(&e, bufs, k->out[q]);
    for (int i = 0; i < k->nin; i++) {
        inptr[i] = NULL;
        for (int q = 0; mp && q < k->nout && !inptr[i]; q++)
            if (mp->inplace[k->out[q]->id] >= 0 && mp->inplace[k->out[q]->id] == mp->root[k->in[i]->id])
                inptr[i] = outptr[q];
        if (!inptr[i])
            inptr[i] = cg_em_buffer(&e, bufs, k->in[i]);
    }
    /* Inputs of one element (scalars, dropout's key) are read once, before the loops. */
    for (int i = 0; i < k->nin; i++) {
        bool single = true;
        for (int d = 0; d < k->in[i]->type.rank; d++)
            single &= is_one(k->in[i]->type.dim[d]);
        if (single)
            once[i] = cg_em_load(&e, inptr[i], k->in[i]->type.dtype, cg_em_i64(&e, 0));
    }

    /* Output extents: rows (all but the last dimension) by a contiguous inner run. */
    LLVMValueRef od[DL_MAX_RANK] = {0};
    for (int d = 0; d < r; d++)
        od[d] = cg_em_dim(&e, ot->dim[d]);
    LLVMValueRef inner = r ? od[r - 1] : cg_em_i64(&e, 1), rows = cg_em_i64(&e, 1);
    for (int d = 0; d + 1 < r; d++)
        rows = LLVMBuildMul(e.b, rows, od[d], "");
    /* Each input's stride for each output dimension: 0 where it broadcasts. */
    LLVMValueRef stride[64][DL_MAX_RANK];
    bool inner_step[64];
    for (int i = 0; i < k->nin; i++) {
        const dl_type *t = &k->in[i]->type;
        LLVMValueRef s = cg_em_i64(&e, 1);
        for (int d = r - 1; d >= 0; d--) {
            int id = d - (r - t->rank);
            bool bc = id < 0 || (is_one(t->dim[id]) && !is_one(ot->dim[d]));
            stride[i][d] = bc ? cg_em_i64(&e, 0) : s;
            if (id >= 0)
                s = LLVMBuildMul(e.b, s, cg_em_dim(&e, t->dim[id]), "");
        }
        int il = r - 1 - (r - t->rank);
        inner_step[i] = r > 0 && il >= 0 && !(is_one(t->dim[il]) && !is_one(ot->dim[r - 1]));
    }

    /* The rows [begin, min(end, rows)) of this call. */
    LLVMValueRef hi = LLVMBuildSelect(e.b, LLVMBuildICmp(e.b, LLVMIntSLT, e.end, rows, ""), e.end, rows, "hi");
    cg_loop lr = cg_em_loop_range(&e, fn, e.begin, hi, "row");
    LLVMValueRef base[64];
    for (int i = 0; i < k->nin; i++)
        base[i] = cg_em_i64(&e, 0);
    LLVMValueRef rem = lr.i;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef coord = LLVMBuildSRem(e.b, rem, od[d], "");
        rem = LLVMBuildSDiv(e.b, rem, od[d], "");
        for (int i = 0; i < k->nin; i++)
            base[i] = LLVMBuildAdd(e.b, base[i], LLVMBuildMul(e.b, coord, stride[i][d], ""), "");
    }
    LLVMValueRef orow = LLVMBuildMul(e.b, lr.i, inner, "");
    cg_loop li = cg_em_loop_begin(&e, fn, inner, "col");

    /* The group, in registers. */
    LLVMValueRef val[64 + 64], at = LLVMBuildAdd(e.b, orow, li.i, "at");
    const dl_value *key[64 + 64];
    int nval = 0;
    for (int i = 0; i < k->nin; i++) {
        /* An input of the outputs' shape is read at the outputs' index: the same expression as
         * the stores', so LLVM sees an in-place element read before it is written (from the
         * row's coordinates it could not tell, checked the overlap at run time and, as the
         * pointers are equal, ran the scalar loop). */
        bool same = k->in[i]->type.rank == r;
        for (int d = 0; same && d < r; d++)
            same = ir_dim_eq(k->in[i]->type.dim[d], ot->dim[d]);
        LLVMValueRef idx = same ? at : inner_step[i] ? LLVMBuildAdd(e.b, base[i], li.i, "") : base[i];
        key[nval] = k->in[i];
        val[nval++] = once[i] ? once[i] : cg_em_load(&e, inptr[i], k->in[i]->type.dtype, idx);
    }
    for (int o = 0; o < k->nops; o++) {
        const dl_op *op = k->ops[o];
        LLVMValueRef args[3], v;
        for (int a = 0; a < op->nin; a++)
            for (int q = 0; q < nval; q++)
                if (key[q] == op->in[a])
                    args[a] = val[q];
        if (op->code == DL_OP_CONSTANT) {
            char name[300];
            snprintf(name, sizeof name, "%s.value%d", k->name, o);
            if (!(v = constant(&e, op, at, name)))
                snprintf(err, errlen, "out of memory");
        } else if (!(v = emit_op(&e, op, args, at)))
            snprintf(err, errlen, "no elementwise kernel for '%s' (a bug in dlc)", ir_op_info(op->code)->name);
        if (!v) {
            cg_em_end(&e);
            return false;
        }
        key[nval] = &op->res[0];
        val[nval++] = cg_em_round(&e, v, op->res[0].type.dtype);
    }
    for (int q = 0; q < k->nout; q++)
        for (int v = 0; v < nval; v++)
            if (key[v] == k->out[q])
                cg_em_store(&e, outptr[q], k->out[q]->type.dtype, at, val[v]);
    cg_em_loop_end(&e, &li, inner);
    cg_em_loop_end(&e, &lr, hi);
    LLVMBuildRetVoid(e.b);
    cg_em_end(&e);
    return true;
}
