/* Losses in the reference interpreter: a per-element (or per-sample) loss in doubles, then
 * PyTorch's reduction. Class losses divide "mean" by the number of labels not ignored. */
#include "codegen/ref/ref_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Writes per[0..n) reduced by `reduction` into out; `count` is the mean's divisor. */
static void reduce_into(const dl_op *op, const double *per, int64_t n, double count, ref_t *out)
{
    const char *red = RATTR(str, "reduction");
    if (!strcmp(red, "none")) {
        for (int64_t i = 0; i < n; i++)
            ref_set(out, i, per[i]);
        return;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += per[i];
    ref_set(out, 0, !strcmp(red, "sum") ? s : s / count);
}

static double pair_elem(const dl_op *op, double x, double y)
{
    double d = x - y, a = fabs(d);
    switch (op->code) {
    case DL_OP_MSE_LOSS: return d * d;
    case DL_OP_L1_LOSS: return a;
    case DL_OP_HUBER_LOSS: {
        double delta = RATTR(float, "delta");
        return a < delta ? 0.5 * d * d : delta * (a - 0.5 * delta);
    }
    case DL_OP_SMOOTH_L1_LOSS: {
        double beta = RATTR(float, "beta");
        return beta > 0 && a < beta ? 0.5 * d * d / beta : a - 0.5 * beta;
    }
    case DL_OP_BCE:
        /* torch clamps each log at -100 so that a confident wrong answer stays finite. */
        return -(y * fmax(log(x), -100) + (1 - y) * fmax(log1p(-x), -100));
    case DL_OP_BCE_WITH_LOGITS:
        return (1 - y) * x + fmax(-x, 0) + log1p(exp(-fabs(x)));
    case DL_OP_KL_DIV:
        if (RATTR(bool, "log_target"))
            return exp(y) * (y - x);
        return y > 0 ? y * (log(y) - x) : y == 0 ? 0 : NAN;   /* xlogy(0, 0) = 0 */
    default: return NAN;
    }
}

static bool pair_loss(ref_ctx *c, const dl_op *op, const ref_t *x, const ref_t *y, ref_t *out)
{
    double *per = malloc((size_t)(x->n ? x->n : 1) * sizeof *per);
    if (!per)
        return ref_fail(c, op, "out of memory");
    for (int64_t i = 0; i < x->n; i++)
        per[i] = pair_elem(op, ref_get(x, i), ref_get(y, i));
    double count = (double)x->n;
    if (op->code == DL_OP_KL_DIV && !strcmp(RATTR(str, "reduction"), "batchmean")) {
        count = x->rank ? (double)x->dim[0] : 1;
        double s = 0;
        for (int64_t i = 0; i < x->n; i++)
            s += per[i];
        ref_set(out, 0, s / count);
    } else
        reduce_into(op, per, x->n, count, out);
    free(per);
    return true;
}

/* cross_entropy (class indices or probabilities) and nll_loss over logits [C] or
 * [N, C, d1, ...]; the class dimension is 0 or 1. */
static bool class_loss(ref_ctx *c, const dl_op *op, const ref_t *x, const ref_t *y, ref_t *out)
{
    int cd = x->rank == 1 ? 0 : 1;
    int64_t outer, C, inner;
    ref_around(x, cd, &outer, &C, &inner);
    int64_t n = outer * inner;
    bool ce = op->code == DL_OP_CROSS_ENTROPY, probs = ce && ir_dtype_is_float(y->dt);
    double eps = ce ? RATTR(float, "label_smoothing") : 0;
    int64_t ignore = RATTR(int, "ignore_index");
    double *per = malloc((size_t)(n ? n : 1) * sizeof *per), *lp = malloc((size_t)(C ? C : 1) * sizeof *lp);
    if (!per || !lp) {
        free(per), free(lp);
        return ref_fail(c, op, "out of memory");
    }
    double count = probs ? (double)n : 0;
    bool ok = true;
    for (int64_t s = 0; s < n && ok; s++) {
        int64_t o = s / inner, i = s % inner, b = o * C * inner + i;
        /* log_softmax over the class dimension (nll_loss takes log-probabilities as given) */
        double m = -INFINITY, sum = 0;
        for (int64_t k = 0; k < C; k++)
            m = fmax(m, lp[k] = ref_get(x, b + k * inner));
        for (int64_t k = 0; ce && k < C; k++)
            sum += exp(lp[k] - m);
        for (int64_t k = 0; ce && k < C; k++)
            lp[k] -= m + log(sum);
        double l = 0, all = 0;
        for (int64_t k = 0; k < C; k++)
            all += lp[k];
        if (probs) {
            for (int64_t k = 0; k < C; k++)
                l -= (ref_get(y, b + k * inner) * (1 - eps) + eps / (double)C) * lp[k];
        } else {
            int64_t lab = ref_geti(y, s);
            if (lab == ignore) {
                per[s] = 0;
                continue;
            }
            if (lab < 0 || lab >= C) {
                ok = ref_fail(c, op, "label %lld is not in [0, %lld)", (long long)lab, (long long)C);
                break;
            }
            l = -(1 - eps) * lp[lab] - eps / (double)C * all;
            count++;
        }
        per[s] = l;
    }
    if (ok)
        reduce_into(op, per, n, count, out);
    free(per), free(lp);
    return ok;
}

static double pnorm_dist(const ref_t *a, const ref_t *b, int64_t off, int64_t d, double p, double eps)
{
    double s = 0;
    for (int64_t j = 0; j < d; j++)
        s += pow(fabs(ref_get(a, off + j) - ref_get(b, off + j) + eps), p);
    return pow(s, 1 / p);
}

static bool triplet(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *a = in[0], *pos = in[1], *neg = in[2];
    int64_t d = a->dim[a->rank - 1], n = a->rank == 2 ? a->dim[0] : 1;
    double margin = RATTR(float, "margin"), p = RATTR(float, "p"), eps = RATTR(float, "eps");
    double *per = malloc((size_t)(n ? n : 1) * sizeof *per);
    if (!per)
        return ref_fail(c, op, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        double dap = pnorm_dist(a, pos, i * d, d, p, eps), dan = pnorm_dist(a, neg, i * d, d, p, eps);
        if (RATTR(bool, "swap"))
            dan = fmin(dan, pnorm_dist(pos, neg, i * d, d, p, eps));
        per[i] = fmax(dap - dan + margin, 0);
    }
    reduce_into(op, per, n, (double)n, out);
    free(per);
    return true;
}

bool ref_loss(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    switch (op->code) {
    case DL_OP_CROSS_ENTROPY:
    case DL_OP_NLL_LOSS: return class_loss(c, op, in[0], in[1], out);
    case DL_OP_TRIPLET_MARGIN_LOSS: return triplet(c, op, in, out);
    default: return pair_loss(c, op, in[0], in[1], out);
    }
}
