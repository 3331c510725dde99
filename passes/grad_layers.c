/* Gradient rules of the gathers, convolutions, pooling and batch_norm (ir/ops.def), and of the
 * gradient ops they emit. Gathers scatter back (scatter_add, with index_select's and embedding's
 * indices broadcast to the gradient's shape); conv2d's input gradient is a transposed
 * convolution and conv_transpose2d's a convolution, their weight gradients conv2d_grad_weight;
 * pooling has an op per form; batch_norm's closed form recomputes the batch statistics. */
#include "passes/autodiff.h"

static dl_value *mul(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_MUL, a, b); }
static dl_value *sub(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_SUB, a, b); }

/* x viewed with t's dimensions; x itself when it has them already. */
static dl_value *view(gd *g, dl_value *x, const dl_type *t)
{
    dl_type want = *t;
    want.dtype = x->type.dtype;
    return ir_type_eq(&x->type, &want) ? x : dc_reshape(&g->c, x, t);
}

static dl_value *scatter_add(gd *g, dl_value *base, dl_value *idx, dl_value *src, int64_t dim)
{
    dl_value *in[3] = {base, idx, src};
    dl_attr a = dc_int(&g->c, "dim", dim);
    return dc_op(&g->c, DL_OP_SCATTER_ADD, 3, in, 1, &a);
}

/* idx broadcast to `like`'s shape along dimension d (idx holding like's extent there). */
static dl_value *index_along(gd *g, dl_value *idx, const dl_type *like, int d)
{
    dl_type t = {.dtype = idx->type.dtype, .rank = like->rank};
    for (int i = 0; i < like->rank; i++)
        t.dim[i] = i == d ? like->dim[d] : ir_dim_const(1);
    dl_value *r = view(g, idx, &t);
    t = *like;
    t.dtype = idx->type.dtype;
    return gd_expand_to(g, r, &t);
}

/* ---- gathers ------------------------------------------------------------------------------- */

bool grad_gather(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *zero = gd_fill(g, &op->in[0]->type, 0);
    dx[0] = scatter_add(g, zero, gd_in(g, op, 1), dy[0], IR_OP_ATTR(int, op, "dim"));
    return true;
}

bool grad_index_select(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    const dl_type *x = &op->in[0]->type;
    if (x->rank == 0) {      /* a scalar picked by its one valid index */
        dx[0] = dy[0];
        return true;
    }
    int64_t d = IR_OP_ATTR(int, op, "dim");
    d = d < 0 ? d + x->rank : d;
    dl_value *idx = index_along(g, gd_in(g, op, 1), &dy[0]->type, (int)d);
    dx[0] = scatter_add(g, gd_fill(g, x, 0), idx, dy[0], d);
    return true;
}

bool grad_embedding(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    /* The rows of dy, flattened to [K, D], added into the rows of the weight they came from. */
    const dl_type *w = &op->in[1]->type;
    dl_dim k;
    if (!ir_type_numel(&op->in[0]->type, &k))
        return gd_error(g, op, "the number of indices has too many symbols to be one dimension");
    dl_type rows = {.dtype = w->dtype, .rank = 2, .dim = {k, w->dim[1]}};
    dl_value *d = view(g, dy[0], &rows);
    dl_type col = {.dtype = op->in[0]->type.dtype, .rank = 1, .dim = {k}};
    dl_value *idx = view(g, gd_in(g, op, 0), &col);
    dx[1] = scatter_add(g, gd_fill(g, w, 0), index_along(g, idx, &rows, 0), d, 0);
    return true;
}

bool grad_scatter_add(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    /* src's elements the index walks get the gradient at their target; the rest none. */
    dx[0] = dy[0];
    dl_value *idx = gd_in(g, op, 1), *in[2] = {dy[0], idx};
    dl_attr a = dc_int(&g->c, "dim", IR_OP_ATTR(int, op, "dim"));
    dl_value *r = dc_op(&g->c, DL_OP_GATHER, 2, in, 1, &a);
    const dl_type *src = &op->in[2]->type;
    if (!ir_type_eq(&r->type, src)) {
        int64_t pad[2 * DL_MAX_RANK] = {0};
        for (int i = 0; i < src->rank; i++)     /* constants where they differ (the rule) */
            pad[2 * (src->rank - 1 - i) + 1] = src->dim[i].c - idx->type.dim[i].c;
        dl_attr p = dc_ints(&g->c, "pad", 2 * src->rank, pad);
        r = dc_op(&g->c, DL_OP_PAD, 1, &r, 1, &p);
    }
    dx[2] = r;
    return true;
}

/* ---- convolutions -------------------------------------------------------------------------- */

typedef struct conv_attrs {
    int64_t stride[2], padding[2], dilation[2], groups;
} conv_attrs;

static conv_attrs conv_attrs_of(const dl_op *op)
{
    conv_attrs a = {.groups = IR_OP_ATTR(int, op, "groups")};
    ir_attr_pair(op, "stride", 1, a.stride);
    ir_attr_pair(op, "padding", 0, a.padding);
    ir_attr_pair(op, "dilation", 1, a.dilation);
    return a;
}

/* A convolution's attributes from a, into out[0..4); returns 4. */
static int conv_attr_list(gd *g, const conv_attrs *a, dl_attr *out)
{
    out[0] = dc_ints(&g->c, "stride", 2, a->stride);
    out[1] = dc_ints(&g->c, "padding", 2, a->padding);
    out[2] = dc_ints(&g->c, "dilation", 2, a->dilation);
    out[3] = dc_int(&g->c, "groups", a->groups);
    return 4;
}

static dl_value *conv2d(gd *g, dl_value *x, dl_value *w, const conv_attrs *a)
{
    dl_attr at[4];
    dl_value *in[2] = {x, w};
    return dc_op(&g->c, DL_OP_CONV2D, 2, in, conv_attr_list(g, a, at), at);
}

/* The gradient of conv2d(x, w) with respect to x (of type xt) given its result's gradient d:
 * the transposed convolution, output_padding restoring the rows and columns the forward
 * stride skipped at the far edge. */
static dl_value *conv2d_input_grad(gd *g, dl_value *d, dl_value *w, const dl_type *xt,
                                   const conv_attrs *a)
{
    int64_t opad[2];
    for (int i = 0; i < 2; i++) {
        int64_t h = xt->dim[2 + i].c, oh = d->type.dim[2 + i].c, k = w->type.dim[2 + i].c;
        opad[i] = h - ((oh - 1) * a->stride[i] - 2 * a->padding[i] + a->dilation[i] * (k - 1) + 1);
    }
    dl_attr at[5];
    int n = conv_attr_list(g, a, at);
    at[n++] = dc_ints(&g->c, "output_padding", 2, opad);
    dl_value *in[2] = {d, w};
    return dc_op(&g->c, DL_OP_CONV_TRANSPOSE2D, 2, in, n, at);
}

static dl_value *conv2d_weight_grad(gd *g, dl_value *x, dl_value *d, const dl_type *wt,
                                    const conv_attrs *a)
{
    int64_t ws[4];
    for (int i = 0; i < 4; i++)
        ws[i] = wt->dim[i].c;
    dl_attr at[5];
    int n = conv_attr_list(g, a, at);
    at[n++] = dc_ints(&g->c, "weight_shape", 4, ws);
    dl_value *in[2] = {x, d};
    return dc_op(&g->c, DL_OP_CONV2D_GRAD_WEIGHT, 2, in, n, at);
}

/* The bias gradient: dy summed over N, H and W. */
static dl_value *bias_grad(gd *g, dl_value *d)
{
    static const int64_t dims[3] = {0, 2, 3};
    return dc_reduce(&g->c, DL_OP_SUM, d, 3, dims, false);
}

bool grad_conv2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0), *w = gd_in(g, op, 1);
    conv_attrs a = conv_attrs_of(op);
    dx[0] = conv2d_input_grad(g, dy[0], w, &x->type, &a);
    dx[1] = conv2d_weight_grad(g, x, dy[0], &w->type, &a);
    if (op->nin > 2)
        dx[2] = bias_grad(g, dy[0]);
    return true;
}

/* v with dimensions 2 and 3 cut or zero-padded at the far end to `to`'s extents. */
static dl_value *fit_spatial(gd *g, dl_value *v, const dl_type *to)
{
    int64_t pad[4] = {0, to->dim[3].c - v->type.dim[3].c, 0, to->dim[2].c - v->type.dim[2].c};
    if (!pad[1] && !pad[3])
        return v;
    dl_attr p = dc_ints(&g->c, "pad", 4, pad);
    return dc_op(&g->c, DL_OP_PAD, 1, &v, 1, &p);
}

/* conv_transpose2d(x, w) is the input gradient of conv2d(., w) taken at x: its input gradient
 * is that conv2d of dy, its weight gradient conv2d's weight gradient with the roles of input
 * and output exchanged. An output_padding of a stride or more (allowed below the dilation)
 * leaves dy with rows that conv2d maps past x's extent: x is padded to them, the conv2d cut. */
bool grad_conv_transpose2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0), *w = gd_in(g, op, 1);
    conv_attrs a = conv_attrs_of(op);
    dl_value *d = conv2d(g, dy[0], w, &a);
    dx[0] = fit_spatial(g, d, &x->type);
    dx[1] = conv2d_weight_grad(g, dy[0], fit_spatial(g, x, &d->type), &w->type, &a);
    if (op->nin > 2)
        dx[2] = bias_grad(g, dy[0]);
    return true;
}

/* conv2d_grad_weight(x, dy) is bilinear: <c, dW(x, dy)> = <dy, conv2d(x, c)>. */
bool grad_conv2d_grad_weight(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0), *d = gd_in(g, op, 1);
    conv_attrs a = conv_attrs_of(op);
    dx[0] = conv2d_input_grad(g, d, dy[0], &x->type, &a);
    dx[1] = conv2d(g, x, dy[0], &a);
    return true;
}

/* ---- pooling ------------------------------------------------------------------------------- */

/* The gradient op `code` of (dy, x), with op's attributes (the schemas are the forward's). */
static dl_value *pool_grad(gd *g, dl_opcode code, dl_op *op, dl_value *d)
{
    dl_value *in[2] = {d, gd_in(g, op, 0)};
    return dc_op(&g->c, code, 2, in, op->nattr, op->attr);
}

bool grad_max_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = pool_grad(g, DL_OP_MAX_POOL2D_GRAD, op, dy[0]);
    return true;
}

bool grad_avg_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = pool_grad(g, DL_OP_AVG_POOL2D_GRAD, op, dy[0]);
    return true;
}

bool grad_adaptive_avg_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = pool_grad(g, DL_OP_ADAPTIVE_AVG_POOL2D_GRAD, op, dy[0]);
    return true;
}

/* The average forms are linear in dy with the forward pooling as their adjoint. */
bool grad_avg_pool2d_grad(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = dc_op(&g->c, DL_OP_AVG_POOL2D, 1, &dy[0], op->nattr, op->attr);
    return true;
}

bool grad_adaptive_avg_pool2d_grad(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = dc_op(&g->c, DL_OP_ADAPTIVE_AVG_POOL2D, 1, &dy[0], op->nattr, op->attr);
    return true;
}

/* ---- batch_norm ---------------------------------------------------------------------------- */

/* y = xhat * w + b, xhat = (x - mean) * rstd, per channel (dimension 1). In training mean and
 * the biased variance are x's over every other dimension, so
 *   dx = rstd * (gx - mean(gx) - xhat * mean(gx * xhat)),  gx = dy * w;
 * in evaluation they are the running buffers, constants: dx = gx * rstd. The updated running
 * statistics (results 1 and 2) carry no gradient. */
bool grad_batch_norm(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    if (!dy[0])
        return true;
    dl_value *x = gd_in(g, op, 0), *d = dy[0];
    const dl_type *xt = &x->type;
    int64_t dims[DL_MAX_RANK];
    int n = 0;
    for (int i = 0; i < xt->rank; i++)
        if (i != 1)
            dims[n++] = i;
    /* [C] as [1, C, 1, ...], which broadcasts against x. */
    dl_type ct = {.dtype = xt->dtype, .rank = xt->rank};
    for (int i = 0; i < xt->rank; i++)
        ct.dim[i] = i == 1 ? xt->dim[1] : ir_dim_const(1);
    bool training = IR_OP_ATTR(bool, op, "training");
    dl_value *mean, *xc, *var;
    if (training) {
        mean = dc_reduce(&g->c, DL_OP_MEAN, x, n, dims, true);
        xc = sub(g, x, mean);
        var = dc_reduce(&g->c, DL_OP_MEAN, mul(g, xc, xc), n, dims, true);
    } else {
        mean = dc_reshape(&g->c, gd_in(g, op, 3), &ct);
        xc = sub(g, x, mean);
        var = dc_reshape(&g->c, gd_in(g, op, 4), &ct);
    }
    dl_value *eps = dc_scalar(&g->c, IR_OP_ATTR(float, op, "eps"), xt->dtype);
    dl_value *rstd = dc_un(&g->c, DL_OP_RSQRT, dc_bin(&g->c, DL_OP_ADD, var, eps));
    dl_value *xhat = mul(g, xc, rstd);
    dl_value *gx = mul(g, d, dc_reshape(&g->c, gd_in(g, op, 1), &ct));
    if (training) {
        dl_value *m1 = dc_reduce(&g->c, DL_OP_MEAN, gx, n, dims, true);
        dl_value *m2 = dc_reduce(&g->c, DL_OP_MEAN, mul(g, gx, xhat), n, dims, true);
        dx[0] = mul(g, rstd, sub(g, sub(g, gx, m1), mul(g, xhat, m2)));
    } else
        dx[0] = mul(g, gx, rstd);
    dx[1] = dc_reduce(&g->c, DL_OP_SUM, mul(g, d, xhat), n, dims, false);
    dx[2] = dc_reduce(&g->c, DL_OP_SUM, d, n, dims, false);
    return true;
}
