/* Reductions, softmax and layer_norm as LLVM IR (see reduce.h). The semantics are the reference
 * interpreter's (codegen/ref/ref_reduce.c, ref_nn.c): float64 accumulation, int64 for integer
 * sum and prod, NaN-propagating max and min, the first index of the extreme value (NaN counting
 * as the maximum) for argmax and argmin, var and std dividing by max(0, n - correction),
 * logsumexp shifted by a finite maximum, softmax shifted by the maximum, layer_norm's biased
 * variance.
 *
 * The input is viewed as outer x len x inner and reduced over len. When inner is 1 (the run
 * ends at the last dimension) each row is one loop whose accumulators may be reassociated, so
 * the vectorizer keeps several partial sums; otherwise a block of up to 256 inner positions
 * accumulates side by side in a stack array, the loop over len outside and the contiguous loop
 * over the block inside. Ops that need several passes (logsumexp, var, std, softmax,
 * layer_norm) read the input once per pass. A reduction fused with its elementwise producers
 * (passes/fuse.c) computes each element of its input from theirs as it reads it, in every pass:
 * the input never reaches memory. */
#include "codegen/cpu/reduce.h"

#include "codegen/cpu/elementwise.h"
#include "codegen/cpu/emit.h"
#include "passes/decompose.h"

#include <math.h>
#include <stdio.h>

enum { BLOCK = 256 };

typedef struct rk {
    cg_em       *e;
    dl_opcode    code;
    dl_dtype     xt, ot;
    bool         fl;                 /* a float input: accumulate in double */
    LLVMValueRef x, out, w, bias;
    LLVMValueRef len, lenf;          /* the reduced length, as i64 and as double */
    double       eps;
    int64_t      corr;
    /* Fused producers: ops[0 .. npro) of the kernel, their operands in[] read through ptr[] as
     * kind[] says (DC_READ_*). */
    const cg_kernel *k;
    int          npro, nin;
    const dl_value *in[64];
    LLVMValueRef ptr[64];
    int          kind[64];
    bool         failed;
    char        *err;
    size_t       errlen;
} rk;

/* Pointers to one position's accumulators: doubles a and b, an i64 n (integer accumulator or
 * index of the extreme value). */
typedef struct slots { LLVMValueRef a, b, n; } slots;

static LLVMValueRef cd(rk *r, double v) { return LLVMConstReal(r->e->f64, v); }
static LLVMValueRef lda(rk *r, LLVMValueRef p) { return LLVMBuildLoad2(r->e->b, r->e->f64, p, ""); }
static LLVMValueRef ldn(rk *r, LLVMValueRef p) { return LLVMBuildLoad2(r->e->b, r->e->i64, p, ""); }
static void         st(rk *r, LLVMValueRef p, LLVMValueRef v) { LLVMBuildStore(r->e->b, v, p); }

/* Marks a floating-point accumulation reassociable: the vectorizer may split it into partial
 * sums (the order of a float64 sum is well inside every test tolerance). */
static LLVMValueRef reassoc(LLVMValueRef v)
{
    if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
        LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc);
    return v;
}

static LLVMValueRef fcall2(rk *r, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    return cg_em_intrinsic(r->e, name, r->e->f64, 2, (LLVMValueRef[]){a, b});
}

/* An element of `base` (dtype t) as double (floats) or i64 (integers). */
/* e^d for the double d of an f32 (f16, bf16) row: the vectorizable f32 exp of emit.c on d
 * rounded to f32 (the result is rounded to f32 anyway; libm's exp would be a call per element),
 * widened back for the double accumulation. f64 rows keep llvm.exp. */
static LLVMValueRef rexp(rk *r, LLVMValueRef d)
{
    cg_em *e = r->e;
    if (r->xt == DL_F64 || LLVMTypeOf(d) != e->f64)
        return cg_em_intrinsic1(e, "llvm.exp", d);
    LLVMValueRef f = LLVMBuildFPTrunc(e->b, d, e->f32, "");
    return LLVMBuildFPExt(e->b, cg_em_exp(e, f), e->f64, "");
}

static LLVMValueRef load_x(rk *r, LLVMValueRef base, dl_dtype t, LLVMValueRef idx)
{
    LLVMValueRef v = cg_em_load(r->e, base, t, idx);
    return ir_dtype_is_float(t) && t != DL_F64 ? LLVMBuildFPExt(r->e->b, v, r->e->f64, "") : v;
}

/* The input's element at xi (its position kept at `kept` when reduced away), loaded or computed
 * from the fused producers' operands. */
static LLVMValueRef x_at(rk *r, LLVMValueRef xi, LLVMValueRef kept)
{
    if (!r->npro)
        return load_x(r, r->x, r->xt, xi);
    LLVMValueRef v[64];
    for (int j = 0; j < r->nin; j++)
        v[j] = cg_em_load(r->e, r->ptr[j], r->in[j]->type.dtype,
                          r->kind[j] == DC_READ_FULL ? xi : r->kind[j] == DC_READ_ONE ? cg_em_i64(r->e, 0) : kept);
    LLVMValueRef y = cg_cpu_elementwise_value(r->e, r->k->ops, r->npro, xi, r->nin, r->in, v, r->k->name, r->err,
                                              r->errlen);
    if (!y) {
        r->failed = true;
        return ir_dtype_is_float(r->xt) ? cd(r, 0) : cg_em_i64(r->e, 0);
    }
    return ir_dtype_is_float(r->xt) && r->xt != DL_F64 ? LLVMBuildFPExt(r->e->b, y, r->e->f64, "") : y;
}

/* Stores a double (float dtypes) or an i64 (integer dtypes) as dtype t. */
static void store_out(rk *r, dl_dtype t, LLVMValueRef idx, LLVMValueRef v)
{
    if (ir_dtype_is_float(t) && t != DL_F64)
        v = LLVMBuildFPTrunc(r->e->b, v, r->e->f32, "");
    cg_em_store(r->e, r->out, t, idx, v);
}

static int npasses(dl_opcode c)
{
    switch (c) {
    case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX: case DL_OP_LAYER_NORM: return 3;
    case DL_OP_LOGSUMEXP: case DL_OP_VAR: case DL_OP_STD: return 2;
    default: return 1;
    }
}

static bool elementwise_out(dl_opcode c)
{
    return c == DL_OP_SOFTMAX || c == DL_OP_LOG_SOFTMAX || c == DL_OP_LAYER_NORM;
}

static void init(rk *r, slots s)
{
    switch (r->code) {
    case DL_OP_PROD:
        if (r->fl)
            st(r, s.a, cd(r, 1));
        else
            st(r, s.n, cg_em_i64(r->e, 1));
        break;
    case DL_OP_MAX: case DL_OP_MIN:
        if (r->fl)
            st(r, s.a, cd(r, r->code == DL_OP_MAX ? -INFINITY : INFINITY));
        else
            st(r, s.n, cg_em_i64(r->e, r->code == DL_OP_MAX ? INT64_MIN : INT64_MAX));
        break;
    case DL_OP_ARGMAX: case DL_OP_ARGMIN:
        st(r, s.a, cd(r, r->code == DL_OP_ARGMAX ? -INFINITY : INFINITY));
        st(r, s.n, cg_em_i64(r->e, 0));
        break;
    case DL_OP_LOGSUMEXP: case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX:
        st(r, s.b, cd(r, -INFINITY));
        st(r, s.a, cd(r, 0));
        break;
    default:                       /* sum, mean, var, std, layer_norm */
        if (r->fl)
            st(r, s.a, cd(r, 0));
        else
            st(r, s.n, cg_em_i64(r->e, 0));
        break;
    }
}

/* One element v (index k along len, xidx in the input) of pass `pass`. */
static void body(rk *r, int pass, slots s, LLVMValueRef v, LLVMValueRef k, LLVMValueRef xidx)
{
    LLVMBuilderRef b = r->e->b;
    switch (r->code) {
    case DL_OP_SUM: case DL_OP_MEAN:
        if (r->fl)
            st(r, s.a, reassoc(LLVMBuildFAdd(b, lda(r, s.a), v, "")));
        else
            st(r, s.n, LLVMBuildAdd(b, ldn(r, s.n), v, ""));
        return;
    case DL_OP_PROD:
        if (r->fl)
            st(r, s.a, reassoc(LLVMBuildFMul(b, lda(r, s.a), v, "")));
        else
            st(r, s.n, LLVMBuildMul(b, ldn(r, s.n), v, ""));
        return;
    case DL_OP_MAX: case DL_OP_MIN:
        if (r->fl)
            st(r, s.a, fcall2(r, r->code == DL_OP_MAX ? "llvm.maximum" : "llvm.minimum", lda(r, s.a), v));
        else {
            LLVMValueRef n = ldn(r, s.n);
            LLVMValueRef gt = LLVMBuildICmp(b, r->code == DL_OP_MAX ? LLVMIntSGT : LLVMIntSLT, v, n, "");
            st(r, s.n, LLVMBuildSelect(b, gt, v, n, ""));
        }
        return;
    case DL_OP_ARGMAX: case DL_OP_ARGMIN: {
        /* Like the reference: compared as doubles; once the best is NaN it stays. */
        LLVMValueRef vd = r->fl ? v : LLVMBuildSIToFP(b, v, r->e->f64, ""), bv = lda(r, s.a);
        LLVMValueRef better = LLVMBuildFCmp(b, r->code == DL_OP_ARGMAX ? LLVMRealOGT : LLVMRealOLT, vd, bv, "");
        better = LLVMBuildOr(b, better, LLVMBuildFCmp(b, LLVMRealUNO, vd, vd, ""), "");
        LLVMValueRef upd = LLVMBuildAnd(b, better, LLVMBuildFCmp(b, LLVMRealORD, bv, bv, ""), "");
        st(r, s.a, LLVMBuildSelect(b, upd, vd, bv, ""));
        st(r, s.n, LLVMBuildSelect(b, upd, k, ldn(r, s.n), ""));
        return;
    }
    case DL_OP_LOGSUMEXP: case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX:
        if (pass == 0)
            /* The reference's fmax ignores NaN, but a NaN anywhere in the row makes the sum of
             * the next pass NaN either way, so the NaN-propagating maximum (which vectorizes,
             * where maxnum does not) gives the same results. */
            st(r, s.b, fcall2(r, "llvm.maximum", lda(r, s.b), v));
        else if (pass == 1) {
            LLVMValueRef ex = rexp(r, LLVMBuildFSub(b, v, lda(r, s.b), ""));
            st(r, s.a, reassoc(LLVMBuildFAdd(b, lda(r, s.a), ex, "")));
        } else {
            LLVMValueRef d = LLVMBuildFSub(b, v, lda(r, s.b), ""), y;
            if (r->code == DL_OP_SOFTMAX)
                y = LLVMBuildFDiv(b, rexp(r, d), lda(r, s.a), "");
            else
                y = LLVMBuildFSub(b, d, lda(r, s.a), "");           /* a holds log(sum) */
            store_out(r, r->ot, xidx, y);
        }
        return;
    case DL_OP_VAR: case DL_OP_STD: case DL_OP_LAYER_NORM:
        if (pass == 0)
            st(r, s.a, reassoc(LLVMBuildFAdd(b, lda(r, s.a), v, "")));
        else if (pass == 1) {
            LLVMValueRef d = LLVMBuildFSub(b, v, lda(r, s.b), "");
            st(r, s.a, reassoc(LLVMBuildFAdd(b, lda(r, s.a), LLVMBuildFMul(b, d, d, ""), "")));
        } else {                   /* layer_norm: a holds 1 / sqrt(var + eps), b the mean */
            LLVMValueRef y = LLVMBuildFMul(b, LLVMBuildFSub(b, v, lda(r, s.b), ""), lda(r, s.a), "");
            if (r->w)
                y = LLVMBuildFMul(b, y, load_x(r, r->w, r->xt, k), "");
            if (r->bias)
                y = LLVMBuildFAdd(b, y, load_x(r, r->bias, r->xt, k), "");
            store_out(r, r->ot, xidx, y);
        }
        return;
    default: return;
    }
}

/* Between pass `pass` and the next. */
static void mid(rk *r, int pass, slots s)
{
    LLVMBuilderRef b = r->e->b;
    switch (r->code) {
    case DL_OP_LOGSUMEXP: {       /* torch leaves infinite maxima unshifted */
        LLVMValueRef m = lda(r, s.b);
        LLVMValueRef inf = LLVMBuildFCmp(b, LLVMRealOEQ, cg_em_intrinsic1(r->e, "llvm.fabs", m), cd(r, INFINITY), "");
        st(r, s.b, LLVMBuildSelect(b, inf, cd(r, 0), m, ""));
        return;
    }
    case DL_OP_LOG_SOFTMAX:
        if (pass == 1)
            st(r, s.a, cg_em_intrinsic1(r->e, "llvm.log", lda(r, s.a)));
        return;
    case DL_OP_VAR: case DL_OP_STD: case DL_OP_LAYER_NORM:
        if (pass == 0) {
            st(r, s.b, LLVMBuildFDiv(b, lda(r, s.a), r->lenf, ""));
            st(r, s.a, cd(r, 0));
        } else {
            LLVMValueRef var = LLVMBuildFAdd(b, LLVMBuildFDiv(b, lda(r, s.a), r->lenf, ""), cd(r, r->eps), "");
            st(r, s.a, LLVMBuildFDiv(b, cd(r, 1), cg_em_intrinsic1(r->e, "llvm.sqrt", var), ""));
        }
        return;
    default: return;
    }
}

/* A reduction's result for one position. */
static LLVMValueRef final(rk *r, slots s)
{
    LLVMBuilderRef b = r->e->b;
    switch (r->code) {
    case DL_OP_SUM: case DL_OP_PROD: case DL_OP_MAX: case DL_OP_MIN:
        return r->fl ? lda(r, s.a) : ldn(r, s.n);
    case DL_OP_MEAN: return LLVMBuildFDiv(b, lda(r, s.a), r->lenf, "");
    case DL_OP_ARGMAX: case DL_OP_ARGMIN: return ldn(r, s.n);
    case DL_OP_LOGSUMEXP:
        return LLVMBuildFAdd(b, cg_em_intrinsic1(r->e, "llvm.log", lda(r, s.a)), lda(r, s.b), "");
    case DL_OP_VAR: case DL_OP_STD: {
        LLVMValueRef d = LLVMBuildSub(b, r->len, cg_em_i64(r->e, r->corr), "");
        d = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, d, cg_em_i64(r->e, 0), ""), d, cg_em_i64(r->e, 0), "");
        LLVMValueRef v = LLVMBuildFDiv(b, lda(r, s.a), LLVMBuildSIToFP(b, d, r->e->f64, ""), "");
        return r->code == DL_OP_STD ? cg_em_intrinsic1(r->e, "llvm.sqrt", v) : v;
    }
    default: return NULL;
    }
}

static bool const_one(dl_dim d) { return d.n == 0 && d.c == 1; }

bool cg_cpu_emit_reduce(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                        char *err, size_t errlen)
{
    const dl_op *op = k->ops[k->nops - 1];
    int first, end;
    if (!dc_reduce_run(op, &first, &end)) {
        snprintf(err, errlen, "no reduction kernel for '%s' (a bug in dlc)", ir_op_info(op->code)->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name);
    LLVMBuilderRef b = e.b;
    const dl_type *xt = &op->in[0]->type;
    rk r = {.e = &e, .code = op->code, .xt = xt->dtype, .ot = op->res[0].type.dtype,
            .fl = ir_dtype_is_float(xt->dtype)};
    if (op->code == DL_OP_VAR || op->code == DL_OP_STD)
        r.corr = IR_OP_ATTR(int, op, "correction");
    if (op->code == DL_OP_LAYER_NORM)
        r.eps = IR_OP_ATTR(float, op, "eps");
    r.k = k, r.npro = k->nops - 1, r.err = err, r.errlen = errlen;

    /* Accumulators first, in the entry block: scalars for rows (promoted to registers), arrays
     * for blocks of inner positions. */
    bool rows = true;
    for (int d = end; d < xt->rank; d++)
        rows &= const_one(xt->dim[d]);
    LLVMTypeRef fat = rows ? e.f64 : LLVMArrayType2(e.f64, BLOCK), nat = rows ? e.i64 : LLVMArrayType2(e.i64, BLOCK);
    LLVMValueRef fa = LLVMBuildAlloca(b, fat, "acc"), fb = LLVMBuildAlloca(b, fat, "acc2"),
                 na = LLVMBuildAlloca(b, nat, "iacc");

    LLVMValueRef bufs = LLVMGetParam(fn, 0);
    /* The producers' operands: each read from memory once per element. */
    for (int o = 0; o < r.npro; o++)
        for (int a = 0; a < k->ops[o]->nin; a++) {
            const dl_value *v = k->ops[o]->in[a];
            bool known = false;
            for (int q = 0; q < o && !known; q++)
                known = v == &k->ops[q]->res[0];
            for (int q = 0; q < r.nin && !known; q++)
                known = r.in[q] == v;
            if (known)
                continue;
            if (r.nin == 64 || (r.kind[r.nin] = dc_reduce_operand(xt, first, end, &v->type)) < 0) {
                snprintf(err, errlen, "kernel %s: a producer's operand it cannot read (a bug in dlc)", k->name);
                cg_em_end(&e);
                return false;
            }
            r.ptr[r.nin] = cg_em_buffer(&e, bufs, v);
            r.in[r.nin++] = v;
        }
    r.x = r.npro ? NULL : cg_em_buffer(&e, bufs, op->in[0]);
    r.out = cg_em_buffer(&e, bufs, &op->res[0]);
    if (op->code == DL_OP_LAYER_NORM) {
        r.w = op->nin > 1 ? cg_em_buffer(&e, bufs, op->in[1]) : NULL;
        r.bias = op->nin > 2 ? cg_em_buffer(&e, bufs, op->in[2]) : NULL;
    }
    LLVMValueRef outer = cg_em_i64(&e, 1), inner = cg_em_i64(&e, 1);
    r.len = cg_em_i64(&e, 1);
    for (int d = 0; d < xt->rank; d++) {
        LLVMValueRef *v = d < first ? &outer : d < end ? &r.len : &inner;
        *v = LLVMBuildMul(b, *v, cg_em_dim(&e, xt->dim[d]), "");
    }
    r.lenf = LLVMBuildSIToFP(b, r.len, e.f64, "");
    int np = npasses(op->code);
    bool ew = elementwise_out(op->code);

    cg_loop lo = cg_em_loop_begin(&e, fn, outer, "outer");
    if (rows) {
        slots s = {fa, fb, na};
        LLVMValueRef base = LLVMBuildMul(b, lo.i, r.len, "");
        init(&r, s);
        for (int pass = 0; pass < np; pass++) {
            if (pass)
                mid(&r, pass - 1, s);
            cg_loop lk = cg_em_loop_begin(&e, fn, r.len, "k");
            LLVMValueRef xi = LLVMBuildAdd(b, base, lk.i, "");
            body(&r, pass, s, x_at(&r, xi, lo.i), lk.i, xi);
            cg_em_loop_end(&e, &lk, r.len);
        }
        if (!ew)
            store_out(&r, r.ot, lo.i, final(&r, s));
    } else {
        LLVMValueRef nblk = LLVMBuildSDiv(b, LLVMBuildAdd(b, inner, cg_em_i64(&e, BLOCK - 1), ""),
                                          cg_em_i64(&e, BLOCK), "");
        cg_loop lb = cg_em_loop_begin(&e, fn, nblk, "block");
        LLVMValueRef i0 = LLVMBuildMul(b, lb.i, cg_em_i64(&e, BLOCK), "");
        LLVMValueRef left = LLVMBuildSub(b, inner, i0, "");
        LLVMValueRef cnt = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, left, cg_em_i64(&e, BLOCK), ""),
                                           left, cg_em_i64(&e, BLOCK), "");
        LLVMValueRef obase = LLVMBuildAdd(b, LLVMBuildMul(b, lo.i, inner, ""), i0, "");
#define AT(i) ((slots){LLVMBuildGEP2(b, fat, fa, (LLVMValueRef[]){cg_em_i64(&e, 0), i}, 2, ""), \
                       LLVMBuildGEP2(b, fat, fb, (LLVMValueRef[]){cg_em_i64(&e, 0), i}, 2, ""), \
                       LLVMBuildGEP2(b, nat, na, (LLVMValueRef[]){cg_em_i64(&e, 0), i}, 2, "")})
        cg_loop li = cg_em_loop_begin(&e, fn, cnt, "i");
        init(&r, AT(li.i));
        cg_em_loop_end(&e, &li, cnt);
        for (int pass = 0; pass < np; pass++) {
            if (pass) {
                li = cg_em_loop_begin(&e, fn, cnt, "i");
                mid(&r, pass - 1, AT(li.i));
                cg_em_loop_end(&e, &li, cnt);
            }
            cg_loop lk = cg_em_loop_begin(&e, fn, r.len, "k");
            /* x[o][k][i0 + i] */
            LLVMValueRef xrow = LLVMBuildAdd(b, LLVMBuildMul(b, LLVMBuildAdd(b, LLVMBuildMul(b, lo.i, r.len, ""),
                                                                            lk.i, ""), inner, ""), i0, "");
            li = cg_em_loop_begin(&e, fn, cnt, "i");
            LLVMValueRef xi = LLVMBuildAdd(b, xrow, li.i, "");
            body(&r, pass, AT(li.i), x_at(&r, xi, LLVMBuildAdd(b, obase, li.i, "")), lk.i, xi);
            cg_em_loop_end(&e, &li, cnt);
            cg_em_loop_end(&e, &lk, r.len);
        }
        if (!ew) {
            li = cg_em_loop_begin(&e, fn, cnt, "i");
            store_out(&r, r.ot, LLVMBuildAdd(b, obase, li.i, ""), final(&r, AT(li.i)));
            cg_em_loop_end(&e, &li, cnt);
        }
#undef AT
        cg_em_loop_end(&e, &lb, nblk);
    }
    cg_em_loop_end(&e, &lo, outer);
    LLVMBuildRetVoid(b);
    cg_em_end(&e);
    return !r.failed;
}
