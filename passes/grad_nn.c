/* Gradient rules of reductions, matrix products, softmax, layer norm, dropout, attention and
 * the losses (ir/ops.def). Attention's backward recomputes the probabilities from q and k, as
 * FlashAttention's does, rather than keeping the score matrix; losses are differentiated through
 * their decomposition (decompose_loss.c), the same graph the backends run forward. */
#include "passes/autodiff.h"

#include <math.h>
#include <string.h>

static dl_value *num(gd *g, double v, const dl_value *like) { return dc_scalar(&g->c, v, like->type.dtype); }
static dl_value *mul(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_MUL, a, b); }
static dl_value *sub(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_SUB, a, b); }
static dl_value *div_(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_DIV, a, b); }

static int norm(int64_t d, int rank) { return (int)(d < 0 ? d + rank : d); }

/* The reduced dimensions of a reduction op, normalized; every dimension when `dim` is absent. */
static int reduced_dims(const dl_op *op, int64_t *dims)
{
    int rank = op->in[0]->type.rank;
    const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dim");
    int n = 0;
    if (!a || a->n == 0) {
        for (int i = 0; i < rank; i++)
            dims[n++] = i;
        return n;
    }
    for (int i = 0; i < a->n; i++)
        dims[n++] = norm(a->u.ints[i], rank);
    return n;
}

/* v, reduced over dims (its keepdim = false form when keepdim was false), as the keepdim
 * shape: the shape that broadcasts against the operand. */
static dl_value *keep(gd *g, dl_value *v, const dl_type *x, int n, const int64_t *dims)
{
    dl_type k = *x;
    k.dtype = v->type.dtype;
    for (int i = 0; i < n; i++)
        k.dim[dims[i]] = ir_dim_const(1);
    return ir_type_eq(&v->type, &k) ? v : dc_reshape(&g->c, v, &k);
}

static dl_value *sum_keep(gd *g, dl_value *v, int n, const int64_t *dims)
{
    return dc_reduce(&g->c, DL_OP_SUM, v, n, dims, true);
}

bool grad_reduce(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0), *y = gd_res(g, op, 0);
    const dl_type *xt = &x->type;
    int64_t dims[DL_MAX_RANK];
    int n = reduced_dims(op, dims);
    dl_dim rd[DL_MAX_RANK];
    for (int i = 0; i < n; i++)
        rd[i] = xt->dim[dims[i]];
    /* The result in the keepdim shape, for the rules that read it. */
    bool reads_y = op->code != DL_OP_SUM && op->code != DL_OP_MEAN;
    dl_value *d = keep(g, dy[0], xt, n, dims), *yk = reads_y ? keep(g, y, xt, n, dims) : NULL, *r;
    switch (op->code) {
    case DL_OP_SUM:
        r = d;
        break;
    case DL_OP_MEAN:
        r = div_(g, d, dc_numel(&g->c, n, rd, d->type.dtype));
        break;
    case DL_OP_MAX: case DL_OP_MIN: {
        /* As torch.amax/amin: the gradient is shared evenly among the tied extremes. */
        dl_value *hit = dc_cast(&g->c, dc_bin(&g->c, DL_OP_EQ, x, yk), xt->dtype);
        r = mul(g, hit, div_(g, d, sum_keep(g, hit, n, dims)));
        break;
    }
    case DL_OP_PROD: {
        /* y / x, except at zeros: there the product of the others (one zero) or 0 (several). */
        dl_value *zero = dc_bin(&g->c, DL_OP_EQ, x, num(g, 0, x));
        dl_value *nzeros = sum_keep(g, dc_cast(&g->c, zero, xt->dtype), n, dims);
        dl_value *others = dc_reduce(&g->c, DL_OP_PROD, dc_where(&g->c, zero, num(g, 1, x), x), n, dims, true);
        dl_value *at_zero = dc_where(&g->c, dc_bin(&g->c, DL_OP_EQ, nzeros, num(g, 1, x)), others, num(g, 0, x));
        r = mul(g, d, dc_where(&g->c, zero, at_zero, div_(g, yk, dc_where(&g->c, zero, num(g, 1, x), x))));
        break;
    }
    case DL_OP_VAR: case DL_OP_STD: {
        int64_t corr = IR_OP_ATTR(int, op, "correction");
        dl_value *mean = dc_reduce(&g->c, DL_OP_MEAN, x, n, dims, true);
        dl_value *den = sub(g, dc_numel(&g->c, n, rd, xt->dtype), num(g, (double)corr, x));
        dl_value *dvar = op->code == DL_OP_VAR ? d : div_(g, d, mul(g, num(g, 2, x), yk));
        r = mul(g, mul(g, dvar, num(g, 2, x)), div_(g, sub(g, x, mean), den));
        break;
    }
    case DL_OP_LOGSUMEXP:
        r = mul(g, d, dc_un(&g->c, DL_OP_EXP, sub(g, x, yk)));
        break;
    default:
        return gd_error(g, op, "no rule for this reduction");
    }
    dx[0] = gd_expand_to(g, dc_cast(&g->c, r, xt->dtype), xt);
    return true;
}

/* ---- matrix products ------------------------------------------------------------------- */

static dl_value *swap_last2(gd *g, dl_value *x)
{
    dl_attr a[2] = {dc_int(&g->c, "dim0", -2), dc_int(&g->c, "dim1", -1)};
    return dc_op(&g->c, DL_OP_TRANSPOSE, 1, &x, 2, a);
}

static dl_value *unsqueeze(gd *g, dl_value *x, int d)
{
    dl_attr a = dc_int(&g->c, "dim", d);
    return dc_op(&g->c, DL_OP_UNSQUEEZE, 1, &x, 1, &a);
}

bool grad_matmul(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *a = gd_in(g, op, 0), *b = gd_in(g, op, 1), *d = dy[0];
    /* Vectors as matrices: a [K] as [1, K], b [K] as [K, 1]; dy gets the dimensions back. */
    dl_value *a2 = a->type.rank == 1 ? unsqueeze(g, a, 0) : a;
    dl_value *b2 = b->type.rank == 1 ? unsqueeze(g, b, 1) : b;
    if (a->type.rank == 1)
        d = unsqueeze(g, d, d->type.rank - (b->type.rank == 1 ? 0 : 1));
    if (b->type.rank == 1)
        d = unsqueeze(g, d, d->type.rank);
    dl_value *da = dc_bin(&g->c, DL_OP_MATMUL, d, swap_last2(g, b2));
    dl_value *db = dc_bin(&g->c, DL_OP_MATMUL, swap_last2(g, a2), d);
    /* Broadcast batch dimensions sum back; then the vector shapes. */
    da = gd_unbroadcast(g, da, &a2->type);
    db = gd_unbroadcast(g, db, &b2->type);
    dx[0] = dc_reshape(&g->c, da, &a->type);
    dx[1] = dc_reshape(&g->c, db, &b->type);
    return true;
}

/* ---- softmax, layer norm, dropout ------------------------------------------------------ */

bool grad_softmax(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *y = gd_res(g, op, 0), *d = dy[0];
    int64_t dim = norm(IR_OP_ATTR(int, op, "dim"), y->type.rank);
    if (op->code == DL_OP_SOFTMAX)   /* y * (dy - sum(dy * y)) */
        dx[0] = mul(g, y, sub(g, d, sum_keep(g, mul(g, d, y), 1, &dim)));
    else                             /* dy - exp(y) * sum(dy) */
        dx[0] = sub(g, d, mul(g, dc_un(&g->c, DL_OP_EXP, y), sum_keep(g, d, 1, &dim)));
    return true;
}

bool grad_layer_norm(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0), *d = dy[0];
    int rank = x->type.rank, k = ir_attr_find(op->nattr, op->attr, "normalized_shape")->n;
    int64_t dims[DL_MAX_RANK], lead[DL_MAX_RANK];
    for (int i = 0; i < k; i++)
        dims[i] = rank - k + i;
    for (int i = 0; i < rank - k; i++)
        lead[i] = i;
    /* The statistics again (cheap next to keeping them): mean, rstd, xhat. */
    double eps = IR_OP_ATTR(float, op, "eps");
    dl_value *mu = dc_reduce(&g->c, DL_OP_MEAN, x, k, dims, true);
    dl_value *xc = sub(g, x, mu);
    dl_value *var = dc_reduce(&g->c, DL_OP_MEAN, mul(g, xc, xc), k, dims, true);
    dl_value *rstd = dc_un(&g->c, DL_OP_RSQRT, dc_bin(&g->c, DL_OP_ADD, var, num(g, eps, x)));
    dl_value *xhat = mul(g, xc, rstd);
    dl_value *gx = op->nin > 1 ? mul(g, d, gd_in(g, op, 1)) : d;
    dl_value *m1 = dc_reduce(&g->c, DL_OP_MEAN, gx, k, dims, true);
    dl_value *m2 = dc_reduce(&g->c, DL_OP_MEAN, mul(g, gx, xhat), k, dims, true);
    dx[0] = mul(g, rstd, sub(g, sub(g, gx, m1), mul(g, xhat, m2)));
    if (op->nin > 1) {
        dl_value *t = mul(g, d, xhat);
        dx[1] = rank > k ? dc_reduce(&g->c, DL_OP_SUM, t, rank - k, lead, false) : t;
    }
    if (op->nin > 2)
        dx[2] = rank > k ? dc_reduce(&g->c, DL_OP_SUM, d, rank - k, lead, false) : d;
    return true;
}

bool grad_dropout(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    /* The same mask and scale: dropout is a pure function of (key, stream, element). */
    dl_value *in[2] = {dy[0], gd_in(g, op, 1)};
    dx[0] = dc_op(&g->c, DL_OP_DROPOUT, 2, in, op->nattr, op->attr);
    return true;
}

/* ---- attention --------------------------------------------------------------------------- */

bool grad_sdpa(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *q = gd_in(g, op, 0), *k = gd_in(g, op, 1), *v = gd_in(g, op, 2), *d = dy[0];
    int rank = q->type.rank;
    dl_dim L = q->type.dim[rank - 2], S = k->type.dim[k->type.rank - 2], E = q->type.dim[rank - 1];
    const dl_attr *sa = ir_attr_find(op->nattr, op->attr, "scale");
    if (!sa && !ir_dim_is_const(E))
        return gd_error(g, op, "the default scale needs a constant embedding size");
    double scale = sa ? sa->u.f : 1 / sqrt((double)E.c);
    /* p = softmax(q k^T * scale + mask), recomputed. */
    dl_value *s = mul(g, dc_bin(&g->c, DL_OP_MATMUL, q, swap_last2(g, k)), num(g, scale, q));
    if (op->nin > 3) {
        dl_value *m = gd_in(g, op, 3);
        s = m->type.dtype == DL_BOOL ? dc_where(&g->c, m, s, num(g, -INFINITY, s))
                                     : dc_bin(&g->c, DL_OP_ADD, s, m);
    } else if (IR_OP_ATTR(bool, op, "causal")) {
        if (!ir_dim_is_const(L) || !ir_dim_is_const(S) || L.c * S.c > (1 << 24))
            return gd_error(g, op, "a causal mask needs constant (and moderate) sequence lengths");
        /* PyTorch's is_causal: the lower triangle of an L x S matrix, from the top left. */
        double *tri = sup_arena_alloc(g->scratch, sizeof *tri * (size_t)(L.c * S.c));
        for (int64_t i = 0; i < L.c; i++)
            for (int64_t j = 0; j < S.c; j++)
                tri[i * S.c + j] = j <= i;
        dl_type mt = {.dtype = DL_BOOL, .rank = 2, .dim = {L, S}};
        dl_value *m = dc_constant(&g->c, &mt, (int)(L.c * S.c), tri);
        s = dc_where(&g->c, m, s, num(g, -INFINITY, s));
    }
    int64_t last = -1;
    dl_attr sm = dc_int(&g->c, "dim", -1);
    dl_value *p = dc_op(&g->c, DL_OP_SOFTMAX, 1, &s, 1, &sm);
    dl_value *dv = dc_bin(&g->c, DL_OP_MATMUL, swap_last2(g, p), d);
    dl_value *dp = dc_bin(&g->c, DL_OP_MATMUL, d, swap_last2(g, v));
    dl_value *ds = mul(g, p, sub(g, dp, sum_keep(g, mul(g, dp, p), 1, &last)));
    ds = mul(g, ds, num(g, scale, ds));
    dl_value *dq = dc_bin(&g->c, DL_OP_MATMUL, ds, k);
    dl_value *dk = dc_bin(&g->c, DL_OP_MATMUL, swap_last2(g, ds), q);
    dx[0] = gd_unbroadcast(g, dq, &q->type);
    dx[1] = gd_unbroadcast(g, dk, &k->type);
    dx[2] = gd_unbroadcast(g, dv, &v->type);
    return true;
}

/* ---- losses ---------------------------------------------------------------------------- */

bool grad_loss(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    return gd_decomposed(g, op, dc_loss, dy, dx);
}
