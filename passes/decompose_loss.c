/* The decompose pass's rule for losses and metrics: each becomes its per-element (or
 * per-sample) loss in elementwise ops, log_softmax and gather, then PyTorch's reduction.
 * The definitions are the reference interpreter's (codegen/ref/ref_loss.c, and the metrics in
 * ref_reduce.c), down to its tie and NaN rules. f16 and bf16 compute in f32, as the reference
 * computes in double, and round once at the end. */
#include "passes/decompose.h"

#include <string.h>

/* The dtype a loss computes in. */
static dl_dtype work_dtype(dl_dtype t) { return t == DL_F16 || t == DL_BF16 ? DL_F32 : t; }

/* C leaves the order of a call's arguments unspecified: ops are built one statement at a time
 * (never two constructors as arguments of a third), so the IR is the same whatever the compiler. */

static dl_value *scalar_like(dc *c, double v, const dl_value *x)
{
    return dc_scalar(c, v, x->type.dtype);
}

static dl_value *add_c(dc *c, dl_value *x, double v)
{
    return dc_bin(c, DL_OP_ADD, x, scalar_like(c, v, x));
}

static dl_value *mul_c(dc *c, dl_value *x, double v)
{
    return dc_bin(c, DL_OP_MUL, x, scalar_like(c, v, x));
}

/* C's fmax(x, v), which the reference's clamps use: v where x is NaN, where the IR's maximum
 * would propagate the NaN. */
static dl_value *fmax_c(dc *c, dl_value *x, double v)
{
    dl_value *k = scalar_like(c, v, x);
    return dc_where(c, dc_bin(c, DL_OP_GE, x, k), x, k);
}

/* C's fmin(a, b): the other operand where one is NaN. */
static dl_value *fmin_v(dc *c, dl_value *a, dl_value *b)
{
    dl_value *less = dc_bin(c, DL_OP_LT, b, a), *nan = dc_bin(c, DL_OP_NE, a, a);
    return dc_where(c, dc_bin(c, DL_OP_OR, less, nan), b, a);
}

/* a * x + b * y, for the label smoothing blends. */
static dl_value *blend(dc *c, double a, dl_value *x, double b, dl_value *y)
{
    dl_value *ax = mul_c(c, x, a), *by = mul_c(c, y, b);
    return dc_bin(c, DL_OP_ADD, ax, by);
}

static dl_value *reduce1(dc *c, dl_opcode code, dl_value *x, int64_t dim)
{
    return dc_reduce(c, code, x, 1, &dim, false);
}

/* "none" keeps `per`, "sum" adds it up, "mean" divides by its element count. */
static dl_value *reduce_loss(dc *c, const dl_op *op, dl_value *per)
{
    const char *red = IR_OP_ATTR(str, op, "reduction");
    if (!strcmp(red, "none") || per->type.rank == 0)
        return per;
    return dc_reduce(c, !strcmp(red, "sum") ? DL_OP_SUM : DL_OP_MEAN, per, -1, NULL, false);
}

/* ---- elementwise losses ---------------------------------------------------------------- */

/* huber_loss and smooth_l1_loss: a quadratic below `below` (scaled by 1 / scale), a line
 * |d| - shift above, the line times `slope`. */
static dl_value *piecewise(dc *c, dl_value *x, dl_value *y, double below, double scale,
                           double slope, double shift)
{
    dl_value *d = dc_bin(c, DL_OP_SUB, x, y), *a = dc_un(c, DL_OP_ABS, d);
    dl_value *lin = shift != 0 ? add_c(c, a, -shift) : a;
    if (slope != 1)
        lin = mul_c(c, lin, slope);
    if (!(below > 0))
        return lin;
    dl_value *quad = mul_c(c, dc_bin(c, DL_OP_MUL, d, d), 0.5);
    if (scale != 1)
        quad = dc_bin(c, DL_OP_DIV, quad, scalar_like(c, scale, quad));
    dl_value *small = dc_bin(c, DL_OP_LT, a, scalar_like(c, below, a));
    return dc_where(c, small, quad, lin);
}

static dl_value *pair_per(dc *c, const dl_op *op, dl_value *x, dl_value *y)
{
    switch (op->code) {
    case DL_OP_MSE_LOSS: {
        dl_value *d = dc_bin(c, DL_OP_SUB, x, y);
        return dc_bin(c, DL_OP_MUL, d, d);
    }
    case DL_OP_L1_LOSS: return dc_un(c, DL_OP_ABS, dc_bin(c, DL_OP_SUB, x, y));
    case DL_OP_HUBER_LOSS: {
        double delta = IR_OP_ATTR(float, op, "delta");
        return piecewise(c, x, y, delta, 1, delta, 0.5 * delta);
    }
    case DL_OP_SMOOTH_L1_LOSS: {
        /* beta <= 0 is the L1 loss (shifted by -beta/2), without the division by beta. */
        double beta = IR_OP_ATTR(float, op, "beta");
        return piecewise(c, x, y, beta, beta, 1, 0.5 * beta);
    }
    case DL_OP_BCE: {
        /* -(y log x + (1 - y) log(1 - x)), each log clamped at -100 as torch does. */
        dl_value *lx = fmax_c(c, dc_un(c, DL_OP_LOG, x), -100);
        dl_value *l1x = fmax_c(c, dc_un(c, DL_OP_LOG1P, dc_un(c, DL_OP_NEG, x)), -100);
        dl_value *ny = dc_bin(c, DL_OP_SUB, scalar_like(c, 1, y), y);
        dl_value *pos = dc_bin(c, DL_OP_MUL, y, lx), *neg = dc_bin(c, DL_OP_MUL, ny, l1x);
        return dc_un(c, DL_OP_NEG, dc_bin(c, DL_OP_ADD, pos, neg));
    }
    case DL_OP_BCE_WITH_LOGITS: {
        /* (1 - y) x + max(-x, 0) + log1p(exp(-|x|)): no exp of a large positive number. */
        dl_value *ny = dc_bin(c, DL_OP_SUB, scalar_like(c, 1, y), y);
        dl_value *lin = dc_bin(c, DL_OP_MUL, ny, x);
        dl_value *hinge = dc_un(c, DL_OP_RELU, dc_un(c, DL_OP_NEG, x));
        dl_value *s = dc_bin(c, DL_OP_ADD, lin, hinge);
        dl_value *e = dc_un(c, DL_OP_EXP, dc_un(c, DL_OP_NEG, dc_un(c, DL_OP_ABS, x)));
        return dc_bin(c, DL_OP_ADD, s, dc_un(c, DL_OP_LOG1P, e));
    }
    case DL_OP_KL_DIV: {
        if (IR_OP_ATTR(bool, op, "log_target")) {
            dl_value *ey = dc_un(c, DL_OP_EXP, y);
            return dc_bin(c, DL_OP_MUL, ey, dc_bin(c, DL_OP_SUB, y, x));
        }
        /* y (log y - x), with xlogy's 0 where y == 0; a negative y gives log's NaN. */
        dl_value *t = dc_bin(c, DL_OP_MUL, y, dc_bin(c, DL_OP_SUB, dc_un(c, DL_OP_LOG, y), x));
        dl_value *zero = scalar_like(c, 0, y);
        return dc_where(c, dc_bin(c, DL_OP_EQ, y, zero), zero, t);
    }
    default: SUP_ASSERT(!"not an elementwise loss"); return NULL;
    }
}

static dl_value *pair_loss(dc *c, const dl_op *op)
{
    dl_dtype t = work_dtype(op->in[0]->type.dtype);
    dl_value *x = dc_cast(c, op->in[0], t), *y = dc_cast(c, op->in[1], t);
    dl_value *per = pair_per(c, op, x, y);
    if (op->code == DL_OP_KL_DIV && !strcmp(IR_OP_ATTR(str, op, "reduction"), "batchmean")) {
        /* The sum over everything divided by the batch size: a sum over all dimensions but
         * the first, then a mean over it (the size may be symbolic). */
        if (per->type.rank == 0)
            return per;
        if (per->type.rank > 1) {
            int64_t rest[DL_MAX_RANK];
            for (int i = 1; i < per->type.rank; i++)
                rest[i - 1] = i;
            per = dc_reduce(c, DL_OP_SUM, per, per->type.rank - 1, rest, false);
        }
        return dc_reduce(c, DL_OP_MEAN, per, -1, NULL, false);
    }
    return reduce_loss(c, op, per);
}

/* ---- triplet margin loss --------------------------------------------------------------- */

/* pairwise_distance: ||a - b + eps||_p over the last dimension. */
static dl_value *pdist(dc *c, dl_value *a, dl_value *b, double p, double eps)
{
    int64_t last = a->type.rank - 1;
    dl_value *d = dc_un(c, DL_OP_ABS, add_c(c, dc_bin(c, DL_OP_SUB, a, b), eps));
    if (p == 1)
        return reduce1(c, DL_OP_SUM, d, last);
    if (p == 2)
        return dc_un(c, DL_OP_SQRT, reduce1(c, DL_OP_SUM, dc_bin(c, DL_OP_MUL, d, d), last));
    dl_value *s = reduce1(c, DL_OP_SUM, dc_bin(c, DL_OP_POW, d, scalar_like(c, p, d)), last);
    return dc_bin(c, DL_OP_POW, s, scalar_like(c, 1 / p, s));
}

static dl_value *triplet(dc *c, const dl_op *op)
{
    dl_dtype t = work_dtype(op->in[0]->type.dtype);
    dl_value *a = dc_cast(c, op->in[0], t), *pos = dc_cast(c, op->in[1], t);
    dl_value *neg = dc_cast(c, op->in[2], t);
    double p = IR_OP_ATTR(float, op, "p"), eps = IR_OP_ATTR(float, op, "eps");
    dl_value *dap = pdist(c, a, pos, p, eps), *dan = pdist(c, a, neg, p, eps);
    if (IR_OP_ATTR(bool, op, "swap"))
        dan = fmin_v(c, dan, pdist(c, pos, neg, p, eps));
    dl_value *per = add_c(c, dc_bin(c, DL_OP_SUB, dap, dan), IR_OP_ATTR(float, op, "margin"));
    return reduce_loss(c, op, fmax_c(c, per, 0));
}

/* ---- class losses ---------------------------------------------------------------------- */

/* Whether an integer dtype can hold v (else no label can equal it). */
static bool int_fits(dl_dtype t, int64_t v)
{
    switch (t) {
    case DL_I8: return v >= -128 && v <= 127;
    case DL_U8: return v >= 0 && v <= 255;
    case DL_I32: return v >= INT32_MIN && v <= INT32_MAX;
    default: return true;
    }
}

/* The loss of each sample for class-index labels: -(1 - ls) lp[label] - ls mean(lp), 0 where
 * the label is ignore_index; *valid gets which are not (NULL: no label can be). */
static dl_value *class_index_per(dc *c, const dl_op *op, dl_value *lp, int64_t cd, dl_value **valid)
{
    dl_value *y = op->in[1], *idx = y;
    double ls = op->code == DL_OP_CROSS_ENTROPY ? IR_OP_ATTR(float, op, "label_smoothing") : 0;
    int64_t ignore = IR_OP_ATTR(int, op, "ignore_index");
    *valid = NULL;
    if (int_fits(y->type.dtype, ignore)) {
        /* gather never sees ignore_index: those samples read class 0, then are masked. */
        *valid = dc_bin(c, DL_OP_NE, y, dc_scalar(c, (double)ignore, y->type.dtype));
        idx = dc_where(c, *valid, y, dc_scalar(c, 0, y->type.dtype));
    }
    dl_attr dim = dc_int(c, "dim", cd);
    dl_value *idx1 = dc_op(c, DL_OP_UNSQUEEZE, 1, &idx, 1, &dim);
    dl_value *picked = dc_op(c, DL_OP_GATHER, 2, (dl_value *[]){lp, idx1}, 1, &dim);
    dl_type per_type = y->type;
    per_type.dtype = lp->type.dtype;
    dl_value *per = dc_un(c, DL_OP_NEG, dc_reshape(c, picked, &per_type));
    if (ls != 0) {
        dl_value *smooth = dc_un(c, DL_OP_NEG, reduce1(c, DL_OP_MEAN, lp, cd));
        per = blend(c, 1 - ls, per, ls, smooth);
    }
    return *valid ? dc_where(c, *valid, per, scalar_like(c, 0, per)) : per;
}

/* cross_entropy and nll_loss over [C] or [N, C, d1, ...] logits, the classes in dimension cd. */
static dl_value *class_loss(dc *c, const dl_op *op)
{
    dl_dtype t = work_dtype(op->in[0]->type.dtype);
    int64_t cd = op->in[0]->type.rank == 1 ? 0 : 1;
    dl_value *lp = dc_cast(c, op->in[0], t);
    if (op->code == DL_OP_CROSS_ENTROPY) {
        dl_attr dim = dc_int(c, "dim", cd);
        lp = dc_op(c, DL_OP_LOG_SOFTMAX, 1, &lp, 1, &dim);
    }
    if (!ir_dtype_is_float(op->in[1]->type.dtype)) {
        dl_value *valid, *per = class_index_per(c, op, lp, cd, &valid);
        if (strcmp(IR_OP_ATTR(str, op, "reduction"), "mean") || !valid)
            return reduce_loss(c, op, per);
        /* The mean is over the samples not ignored (NaN when there are none, as in torch). */
        dl_value *count = dc_cast(c, valid, t);
        if (per->type.rank > 0) {
            per = dc_reduce(c, DL_OP_SUM, per, -1, NULL, false);
            count = dc_reduce(c, DL_OP_SUM, count, -1, NULL, false);
        }
        return dc_bin(c, DL_OP_DIV, per, count);
    }
    /* Class probabilities: -sum_k ((1 - ls) y_k + ls / C) lp_k, the ls / C term as a mean over
     * the classes (C may be symbolic). */
    double ls = IR_OP_ATTR(float, op, "label_smoothing");
    dl_value *y = dc_cast(c, op->in[1], t);
    dl_value *per = reduce1(c, DL_OP_SUM, dc_bin(c, DL_OP_MUL, y, lp), cd);
    if (ls != 0)
        per = blend(c, 1 - ls, per, ls, reduce1(c, DL_OP_MEAN, lp, cd));
    return reduce_loss(c, op, dc_un(c, DL_OP_NEG, per));
}

/* ---- metrics --------------------------------------------------------------------------- */

/* top_k_accuracy (and accuracy, k = 1) on [N, C] logits: a row is right when fewer than k
 * classes come before its label's in a stable descending sort, that is, have a greater logit
 * or an equal one at a lower index. The index comparison needs the class numbers as a
 * constant, so with a symbolic (or huge) C the op stays as it is. */
static dl_value *metric(dc *c, const dl_op *op)
{
    dl_value *x = op->in[0], *y = op->in[1];
    if (!ir_dim_is_const(x->type.dim[1]) || x->type.dim[1].c > (1 << 20))
        return NULL;
    int64_t nc = x->type.dim[1].c;
    int64_t k = op->code == DL_OP_TOP_K_ACCURACY ? IR_OP_ATTR(int, op, "k") : 1;
    double *iota = ir_alloc(c->f->module, sizeof *iota * (size_t)(nc ? nc : 1));
    for (int64_t j = 0; j < nc; j++)
        iota[j] = (double)j;
    /* The class numbers in the labels' dtype, unless it cannot hold them (u8, i8). */
    dl_dtype ct = int_fits(y->type.dtype, nc - 1) ? y->type.dtype : DL_I64;
    dl_type it = {.dtype = ct, .rank = 2, .dim = {ir_dim_const(1), ir_dim_const(nc)}};
    dl_value *cls = dc_constant(c, &it, (int)nc, iota);
    dl_attr dim = dc_int(c, "dim", 1);
    dl_value *lab = dc_op(c, DL_OP_UNSQUEEZE, 1, &y, 1, &dim);
    dl_value *v = dc_op(c, DL_OP_GATHER, 2, (dl_value *[]){x, lab}, 1, &dim);
    dl_value *same = dc_bin(c, DL_OP_EQ, x, v);
    dl_value *lower = dc_bin(c, DL_OP_LT, cls, dc_cast(c, lab, ct));
    dl_value *tie = dc_bin(c, DL_OP_AND, same, lower);
    dl_value *greater = dc_bin(c, DL_OP_GT, x, v);
    dl_value *before = dc_cast(c, dc_bin(c, DL_OP_OR, greater, tie), DL_I64);
    dl_value *rank = reduce1(c, DL_OP_SUM, before, 1);
    dl_value *right = dc_bin(c, DL_OP_LT, rank, dc_scalar(c, (double)k, DL_I64));
    return dc_reduce(c, DL_OP_MEAN, dc_cast(c, right, DL_F32), -1, NULL, false);
}

bool dc_loss(dc *c, dl_op *op, dl_value **res)
{
    dl_value *r;
    switch (op->code) {
    case DL_OP_MSE_LOSS: case DL_OP_L1_LOSS: case DL_OP_HUBER_LOSS: case DL_OP_SMOOTH_L1_LOSS:
    case DL_OP_BCE: case DL_OP_BCE_WITH_LOGITS: case DL_OP_KL_DIV:
        r = pair_loss(c, op);
        break;
    case DL_OP_CROSS_ENTROPY: case DL_OP_NLL_LOSS:
        r = class_loss(c, op);
        break;
    case DL_OP_TRIPLET_MARGIN_LOSS:
        r = triplet(c, op);
        break;
    case DL_OP_ACCURACY: case DL_OP_TOP_K_ACCURACY:
        if (!(r = metric(c, op)))
            return false;
        break;
    default:
        return false;
    }
    res[0] = dc_cast(c, r, op->res[0].type.dtype);
    return true;
}
