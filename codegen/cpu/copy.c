/* Strided copies (see copy.h): out[c0, ..., cr-1] = in[base + sum(c_d * stride_d)], the strides
 * and base from the op: a permutation of the input's strides (transpose, permute), or the input's
 * strides with one of them scaled by the step and an offset of start (slice). */
#include "codegen/cpu/copy.h"

#include "codegen/cpu/emit.h"

#include <stdio.h>

static int norm(int64_t d, int rank) { return (int)(d < 0 ? d + rank : d); }

/* One walk over `shape`: dst[db + sum(c_d * ds_d)] = src[sb + sum(c_d * ss_d)], rows outside and
 * the last dimension inside. */
static void walk(cg_em *e, LLVMValueRef fn, const dl_type *shape, LLVMValueRef src, dl_dtype st,
                 LLVMValueRef sb, const LLVMValueRef *ss, LLVMValueRef dst, dl_dtype dt,
                 LLVMValueRef db, const LLVMValueRef *ds)
{
    int r = shape->rank;
    LLVMValueRef od[DL_MAX_RANK], rows = cg_em_i64(e, 1);
    for (int d = 0; d < r; d++)
        od[d] = cg_em_dim(e, shape->dim[d]);
    for (int d = 0; d + 1 < r; d++)
        rows = LLVMBuildMul(e->b, rows, od[d], "");
    cg_loop lr = cg_em_loop_begin(e, fn, rows, "row");
    LLVMValueRef so = sb, doff = db, rem = lr.i;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef coord = LLVMBuildSRem(e->b, rem, od[d], "");
        rem = LLVMBuildSDiv(e->b, rem, od[d], "");
        so = LLVMBuildAdd(e->b, so, LLVMBuildMul(e->b, coord, ss[d], ""), "");
        doff = LLVMBuildAdd(e->b, doff, LLVMBuildMul(e->b, coord, ds[d], ""), "");
    }
    cg_loop li = cg_em_loop_begin(e, fn, od[r - 1], "col");
    LLVMValueRef x = cg_em_load(e, src, st, LLVMBuildAdd(e->b, so, LLVMBuildMul(e->b, li.i, ss[r - 1], ""), ""));
    cg_em_store(e, dst, dt, LLVMBuildAdd(e->b, doff, LLVMBuildMul(e->b, li.i, ds[r - 1], ""), ""), x);
    cg_em_loop_end(e, &li, od[r - 1]);
    cg_em_loop_end(e, &lr, rows);
}

/* Row-major strides of t at run time. */
static void strides(cg_em *e, const dl_type *t, LLVMValueRef *s)
{
    LLVMValueRef acc = cg_em_i64(e, 1);
    for (int d = t->rank - 1; d >= 0; d--) {
        s[d] = acc;
        acc = LLVMBuildMul(e->b, acc, cg_em_dim(e, t->dim[d]), "");
    }
}

/* concat and stack: each operand copied into its place in the result, along `dim` (for stack,
 * the new dimension: operand k lands at index k of it). split: each result copied out of its
 * place in the operand. */
static bool emit_pieces(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    bool split = op->code == DL_OP_SPLIT, stack = op->code == DL_OP_STACK;
    const dl_value *whole = split ? op->in[0] : &op->res[0];
    int r = whole->type.rank, n = split ? op->nres : op->nin;
    int d = norm(IR_OP_ATTR(int, op, "dim"), r);
    LLVMValueRef wptr = cg_em_buffer(e, bufs, whole), ws[DL_MAX_RANK], at = cg_em_i64(e, 0);
    strides(e, &whole->type, ws);
    for (int k = 0; k < n; k++) {
        const dl_value *piece = split ? &op->res[k] : op->in[k];
        LLVMValueRef pptr = cg_em_buffer(e, bufs, piece), ps[DL_MAX_RANK], wsub[DL_MAX_RANK];
        dl_type shape = piece->type;
        strides(e, &shape, ps);
        for (int q = 0, w = 0; q < shape.rank; q++, w++) {
            if (stack && w == d)
                w++;    /* the stacked dimension has no counterpart in the operand */
            wsub[q] = ws[w];
        }
        LLVMValueRef base = LLVMBuildMul(e->b, at, ws[d], "");
        if (shape.rank == 0) {     /* stacking scalars: one element each */
            LLVMValueRef x = cg_em_load(e, pptr, piece->type.dtype, cg_em_i64(e, 0));
            cg_em_store(e, wptr, whole->type.dtype, base, x);
        } else if (split)
            walk(e, fn, &shape, wptr, whole->type.dtype, base, wsub, pptr, piece->type.dtype, cg_em_i64(e, 0), ps);
        else
            walk(e, fn, &shape, pptr, piece->type.dtype, cg_em_i64(e, 0), ps, wptr, whole->type.dtype, base, wsub);
        at = LLVMBuildAdd(e->b, at, stack ? cg_em_i64(e, 1) : cg_em_dim(e, piece->type.dim[d]), "");
    }
    return true;
}

/* pad: the result filled with the value, then the overlap of the input copied into it (negative
 * pads crop). Padded dimensions are constants (the shape rule); the others may be symbolic. */
static bool emit_pad(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    const dl_value *in = op->in[0], *out = &op->res[0];
    int r = in->type.rank;
    const dl_attr *pads = ir_attr_find(op->nattr, op->attr, "pad");
    double value = IR_OP_ATTR(float, op, "value");
    LLVMValueRef src = cg_em_buffer(e, bufs, in), dst = cg_em_buffer(e, bufs, out);
    LLVMValueRef is[DL_MAX_RANK], os[DL_MAX_RANK];
    strides(e, &in->type, is);
    strides(e, &out->type, os);
    dl_dtype dt = out->type.dtype;
    LLVMTypeRef ct = cg_em_compute_type(e, dt);
    LLVMValueRef fill = ir_dtype_is_float(dt) ? LLVMConstReal(ct, value) :
                        dt == DL_BOOL ? LLVMConstInt(ct, value != 0, 0) :
                        cg_em_convert(e, LLVMConstReal(e->f64, value), DL_F64, dt);
    LLVMValueRef total = cg_em_i64(e, 1);
    for (int d = 0; d < r; d++)
        total = LLVMBuildMul(e->b, total, cg_em_dim(e, out->type.dim[d]), "");
    cg_loop lf = cg_em_loop_begin(e, fn, total, "fill");
    cg_em_store(e, dst, dt, lf.i, cg_em_round(e, fill, dt));
    cg_em_loop_end(e, &lf, total);
    dl_type inner = in->type;
    LLVMValueRef sb = cg_em_i64(e, 0), db = cg_em_i64(e, 0);
    for (int k = 0; k < pads->n / 2; k++) {
        int d = r - 1 - k;
        int64_t lo = pads->u.ints[2 * k], hi = pads->u.ints[2 * k + 1];
        if (lo == 0 && hi == 0)
            continue;
        int64_t n = in->type.dim[d].c, s0 = lo < 0 ? -lo : 0, d0 = lo > 0 ? lo : 0;
        int64_t len = n - s0 - (hi < 0 ? -hi : 0);
        if (len <= 0)
            return true;    /* nothing of the input survives the cropping */
        inner.dim[d] = ir_dim_const(len);
        sb = LLVMBuildAdd(e->b, sb, LLVMBuildMul(e->b, cg_em_i64(e, s0), is[d], ""), "");
        db = LLVMBuildAdd(e->b, db, LLVMBuildMul(e->b, cg_em_i64(e, d0), os[d], ""), "");
    }
    if (r > 0)
        walk(e, fn, &inner, src, in->type.dtype, sb, is, dst, dt, db, os);
    else
        cg_em_store(e, dst, dt, cg_em_i64(e, 0), cg_em_load(e, src, in->type.dtype, cg_em_i64(e, 0)));
    return true;
}

bool cg_cpu_emit_copy(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                      char *err, size_t errlen)
{
    const dl_op *op = k->ops[0];
    if (op->code == DL_OP_CONCAT || op->code == DL_OP_STACK || op->code == DL_OP_SPLIT ||
        op->code == DL_OP_PAD) {
        cg_em e;
        LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name);
        bool ok = op->code == DL_OP_PAD ? emit_pad(&e, fn, op, LLVMGetParam(fn, 0))
                                        : emit_pieces(&e, fn, op, LLVMGetParam(fn, 0));
        LLVMBuildRetVoid(e.b);
        cg_em_end(&e);
        return ok;
    }
    const dl_value *in = op->in[0], *out = &op->res[0];
    const dl_type *it = &in->type, *ot = &out->type;
    int r = ot->rank;
    if (r == 0 || r != it->rank) {
        snprintf(err, errlen, "'%s' is not a strided copy (a bug in dlc)", ir_op_info(op->code)->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name), bufs = LLVMGetParam(fn, 0);
    LLVMValueRef src = cg_em_buffer(&e, bufs, in), dst = cg_em_buffer(&e, bufs, out);
    /* The input's row-major strides. */
    LLVMValueRef s[DL_MAX_RANK], acc = cg_em_i64(&e, 1);
    for (int d = r - 1; d >= 0; d--) {
        s[d] = acc;
        acc = LLVMBuildMul(e.b, acc, cg_em_dim(&e, it->dim[d]), "");
    }
    /* Each output dimension's stride into the input, and where the copy starts. */
    LLVMValueRef st[DL_MAX_RANK], base = cg_em_i64(&e, 0);
    int perm[DL_MAX_RANK];
    for (int d = 0; d < r; d++) {
        perm[d] = d;
        st[d] = s[d];
    }
    if (op->code == DL_OP_TRANSPOSE) {
        int a = norm(IR_OP_ATTR(int, op, "dim0"), r), b = norm(IR_OP_ATTR(int, op, "dim1"), r);
        perm[a] = b, perm[b] = a;
    } else if (op->code == DL_OP_PERMUTE) {
        const dl_attr *dims = ir_attr_find(op->nattr, op->attr, "dims");
        for (int d = 0; d < r; d++)
            perm[d] = norm(dims->u.ints[d], r);
    }
    for (int d = 0; d < r; d++)
        st[d] = s[perm[d]];
    if (op->code == DL_OP_SLICE) {
        int dd = norm(IR_OP_ATTR(int, op, "dim"), r);
        int64_t start = IR_OP_ATTR(int, op, "start"), step = IR_OP_ATTR(int, op, "step");
        /* A symbolic dimension is only ever sliced whole (the shape rule), so start is 0 there;
         * Python's clamping of start needs the constant size. */
        if (!it->dim[dd].n) {
            int64_t n = it->dim[dd].c;
            if (start < 0)
                start += n;
            start = start < 0 ? 0 : start > n ? n : start;
        }
        st[dd] = LLVMBuildMul(e.b, s[dd], cg_em_i64(&e, step), "");
        base = LLVMBuildMul(e.b, s[dd], cg_em_i64(&e, start), "");
    }
    LLVMValueRef od[DL_MAX_RANK], rows = cg_em_i64(&e, 1);
    for (int d = 0; d < r; d++)
        od[d] = cg_em_dim(&e, ot->dim[d]);
    for (int d = 0; d + 1 < r; d++)
        rows = LLVMBuildMul(e.b, rows, od[d], "");
    cg_loop lr = cg_em_loop_begin(&e, fn, rows, "row");
    LLVMValueRef off = base, rem = lr.i;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef coord = LLVMBuildSRem(e.b, rem, od[d], "");
        rem = LLVMBuildSDiv(e.b, rem, od[d], "");
        off = LLVMBuildAdd(e.b, off, LLVMBuildMul(e.b, coord, st[d], ""), "");
    }
    LLVMValueRef orow = LLVMBuildMul(e.b, lr.i, od[r - 1], "");
    cg_loop li = cg_em_loop_begin(&e, fn, od[r - 1], "col");
    LLVMValueRef x = cg_em_load(&e, src, it->dtype, LLVMBuildAdd(e.b, off, LLVMBuildMul(e.b, li.i, st[r - 1], ""), ""));
    cg_em_store(&e, dst, ot->dtype, LLVMBuildAdd(e.b, orow, li.i, ""), x);
    cg_em_loop_end(&e, &li, od[r - 1]);
    cg_em_loop_end(&e, &lr, rows);
    LLVMBuildRetVoid(e.b);
    cg_em_end(&e);
    return true;
}
