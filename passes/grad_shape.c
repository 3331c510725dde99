/* Gradient rules of the shape ops (ir/ops.def): each moves the gradient back to where its
 * operand's elements were: reshapes reshape back, transposes and permutations invert,
 * broadcasts sum, slices and pads pad or crop with zeros, concat/stack/split split or join. */
#include "passes/autodiff.h"

#include <string.h>

/* pad(x) along dimension d only (lo before, hi after; negative crops). */
static dl_value *pad_dim(gd *g, dl_value *x, int d, int64_t lo, int64_t hi)
{
    int k = x->type.rank - 1 - d;
    int64_t p[2 * DL_MAX_RANK] = {0};
    p[2 * k] = lo;
    p[2 * k + 1] = hi;
    dl_attr a[2] = {dc_ints(&g->c, "pad", 2 * (k + 1), p), dc_float(&g->c, "value", 0)};
    return dc_op(&g->c, DL_OP_PAD, 1, &x, 2, a);
}

static dl_value *slice_dim(gd *g, dl_value *x, int d, int64_t start, int64_t end)
{
    dl_attr a[3] = {dc_int(&g->c, "dim", d), dc_int(&g->c, "start", start), dc_int(&g->c, "end", end)};
    return dc_op(&g->c, DL_OP_SLICE, 1, &x, 3, a);
}

static int norm(int64_t d, int rank) { return (int)(d < 0 ? d + rank : d); }

bool grad_reshape(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = dc_reshape(&g->c, dy[0], &op->in[0]->type);
    return true;
}

bool grad_transpose(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_attr a[2] = {dc_int(&g->c, "dim0", IR_OP_ATTR(int, op, "dim0")),
                    dc_int(&g->c, "dim1", IR_OP_ATTR(int, op, "dim1"))};
    dx[0] = dc_op(&g->c, DL_OP_TRANSPOSE, 1, &dy[0], 2, a);
    return true;
}

bool grad_permute(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    const dl_attr *p = ir_attr_find(op->nattr, op->attr, "dims");
    int rank = op->in[0]->type.rank;
    int64_t inv[DL_MAX_RANK];
    for (int i = 0; i < p->n; i++)
        inv[norm(p->u.ints[i], rank)] = i;
    dl_attr a = dc_ints(&g->c, "dims", p->n, inv);
    dx[0] = dc_op(&g->c, DL_OP_PERMUTE, 1, &dy[0], 1, &a);
    return true;
}

bool grad_expand(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = gd_unbroadcast(g, dy[0], &op->in[0]->type);
    return true;
}

/* The extent of operand i along d, which must be a constant to be sliced. */
static bool extent(gd *g, dl_op *op, int i, int d, int64_t *n)
{
    dl_dim e = op->in[i]->type.dim[d];
    if (!ir_dim_is_const(e))
        return gd_error(g, op, "operand %d has a symbolic size along dimension %d", i, d);
    *n = e.c;
    return true;
}

bool grad_concat(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    int d = norm(IR_OP_ATTR(int, op, "dim"), op->res[0].type.rank);
    int64_t at = 0;
    for (int i = 0; i < op->nin; i++) {
        int64_t n = 0;
        if (!extent(g, op, i, d, &n))
            return false;
        if (ir_dtype_is_float(op->in[i]->type.dtype))
            dx[i] = dc_cast(&g->c, slice_dim(g, dy[0], d, at, at + n), op->in[i]->type.dtype);
        at += n;
    }
    return true;
}

bool grad_stack(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    int d = norm(IR_OP_ATTR(int, op, "dim"), op->res[0].type.rank);
    for (int i = 0; i < op->nin; i++)
        if (ir_dtype_is_float(op->in[i]->type.dtype))
            dx[i] = dc_cast(&g->c, dc_reshape(&g->c, slice_dim(g, dy[0], d, i, i + 1), &op->in[i]->type),
                            op->in[i]->type.dtype);
    return true;
}

bool grad_split(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    int d = norm(IR_OP_ATTR(int, op, "dim"), op->in[0]->type.rank);
    dl_value *parts[64];
    for (int r = 0; r < op->nres; r++)
        parts[r] = dy[r] ? dy[r] : gd_fill(g, &op->res[r].type, 0);
    dl_attr a = dc_int(&g->c, "dim", d);
    dx[0] = dc_op(&g->c, DL_OP_CONCAT, op->nres, parts, 1, &a);
    return true;
}

bool grad_slice(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    const dl_type *x = &op->in[0]->type;
    int d = norm(IR_OP_ATTR(int, op, "dim"), x->rank);
    if (!ir_dim_is_const(x->dim[d])) {     /* the whole of a symbolic dimension */
        dx[0] = dy[0];
        return true;
    }
    int64_t n = x->dim[d].c, start = IR_OP_ATTR(int, op, "start"), step = IR_OP_ATTR(int, op, "step");
    if (start < 0)
        start += n;
    start = start < 0 ? 0 : start > n ? n : start;
    int64_t m = op->res[0].type.dim[d].c;
    dl_value *v = dy[0];
    if (step > 1 && m > 0) {
        /* Interleave step-1 zeros after each element: [.., m, 1, ..] padded to [.., m, step, ..]. */
        dl_type u = v->type, w = v->type;
        u.rank++;
        memmove(&u.dim[d + 2], &u.dim[d + 1], sizeof(dl_dim) * (size_t)(v->type.rank - d - 1));
        u.dim[d + 1] = ir_dim_const(1);
        v = pad_dim(g, dc_reshape(&g->c, v, &u), d + 1, 0, step - 1);
        w.dim[d] = ir_dim_const(m * step);
        v = dc_reshape(&g->c, v, &w);
        m *= step;
    }
    dx[0] = pad_dim(g, v, d, start, n - start - m);
    return true;
}

bool grad_pad(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    const dl_attr *p = ir_attr_find(op->nattr, op->attr, "pad");
    int64_t neg[2 * DL_MAX_RANK];
    for (int i = 0; i < p->n; i++)
        neg[i] = -p->u.ints[i];
    dl_attr a[2] = {dc_ints(&g->c, "pad", p->n, neg), dc_float(&g->c, "value", 0)};
    dx[0] = dc_op(&g->c, DL_OP_PAD, 1, &dy[0], 2, a);
    return true;
}
