/* Layers in the reference interpreter: convolutions, pooling, normalisation, dropout and
 * attention, and the gradient ops of convolution and pooling, written as the direct loops of
 * their PyTorch definitions with float64 sums. */
#include "codegen/ref/ref_internal.h"
#include "support/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool conv2d(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *w = in[1];
    int64_t s[2], p[2], d[2], g = RATTR(int, "groups");
    ir_attr_pair(op, "stride", 1, s), ir_attr_pair(op, "padding", 0, p), ir_attr_pair(op, "dilation", 1, d);
    int64_t N = x->dim[0], C = x->dim[1], H = x->dim[2], W = x->dim[3];
    int64_t O = w->dim[0], Cg = w->dim[1], KH = w->dim[2], KW = w->dim[3];
    int64_t OH = out->dim[2], OW = out->dim[3], Og = O / g;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = op->nin > 2 ? ref_get(in[2], o) : 0;
                    int64_t c0 = (o / Og) * Cg;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t h = oh * s[0] - p[0] + kh * d[0];
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ww = ow * s[1] - p[1] + kw * d[1];
                                if (ww < 0 || ww >= W)
                                    continue;
                                acc += ref_get(x, ((n * C + c0 + c) * H + h) * W + ww) *
                                       ref_get(w, ((o * Cg + c) * KH + kh) * KW + kw);
                            }
                        }
                    ref_set(out, ((n * O + o) * OH + oh) * OW + ow, acc);
                }
    return true;
}

/* The gradient of conv2d with respect to its input: every input element scatters its
 * products into the output, accumulated in doubles. */
static bool conv_transpose2d(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *w = in[1];
    int64_t s[2], p[2], d[2], g = RATTR(int, "groups");
    ir_attr_pair(op, "stride", 1, s), ir_attr_pair(op, "padding", 0, p), ir_attr_pair(op, "dilation", 1, d);
    int64_t N = x->dim[0], C = x->dim[1], H = x->dim[2], W = x->dim[3];
    int64_t Og = w->dim[1], KH = w->dim[2], KW = w->dim[3], Cg = C / g;
    int64_t O = out->dim[1], OH = out->dim[2], OW = out->dim[3];
    double *acc = calloc((size_t)(out->n ? out->n : 1), sizeof *acc);
    if (!acc)
        return ref_fail(c, op, "out of memory");
    for (int64_t n = 0; n < N; n++)
        for (int64_t ci = 0; ci < C; ci++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t ww = 0; ww < W; ww++) {
                    double xv = ref_get(x, ((n * C + ci) * H + h) * W + ww);
                    for (int64_t oc = 0; oc < Og; oc++)
                        for (int64_t kh = 0; kh < KH; kh++) {
                            int64_t oh = h * s[0] - p[0] + kh * d[0];
                            if (oh < 0 || oh >= OH)
                                continue;
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ow = ww * s[1] - p[1] + kw * d[1];
                                if (ow < 0 || ow >= OW)
                                    continue;
                                int64_t o = (ci / Cg) * Og + oc;
                                acc[((n * O + o) * OH + oh) * OW + ow] +=
                                    xv * ref_get(w, ((ci * Og + oc) * KH + kh) * KW + kw);
                            }
                        }
                }
    for (int64_t i = 0; i < out->n; i++)
        ref_set(out, i, acc[i] + (op->nin > 2 ? ref_get(in[2], (i / (OH * OW)) % O) : 0));
    free(acc);
    return true;
}

/* The gradient of conv2d with respect to its weight: each weight element's products summed
 * over the batch and the output positions it reached. */
static void conv2d_grad_weight(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *dy = in[1];
    int64_t s[2], p[2], d[2], g = RATTR(int, "groups");
    ir_attr_pair(op, "stride", 1, s), ir_attr_pair(op, "padding", 0, p), ir_attr_pair(op, "dilation", 1, d);
    int64_t N = x->dim[0], C = x->dim[1], H = x->dim[2], W = x->dim[3];
    int64_t O = out->dim[0], Cg = out->dim[1], KH = out->dim[2], KW = out->dim[3];
    int64_t OH = dy->dim[2], OW = dy->dim[3], Og = O / g;
    for (int64_t o = 0; o < O; o++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t kh = 0; kh < KH; kh++)
                for (int64_t kw = 0; kw < KW; kw++) {
                    double acc = 0;
                    int64_t ci = (o / Og) * Cg + c;
                    for (int64_t n = 0; n < N; n++)
                        for (int64_t oh = 0; oh < OH; oh++) {
                            int64_t h = oh * s[0] - p[0] + kh * d[0];
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t w = ow * s[1] - p[1] + kw * d[1];
                                if (w < 0 || w >= W)
                                    continue;
                                acc += ref_get(dy, ((n * O + o) * OH + oh) * OW + ow) *
                                       ref_get(x, ((n * C + ci) * H + h) * W + w);
                            }
                        }
                    ref_set(out, ((o * Cg + c) * KH + kh) * KW + kw, acc);
                }
}

/* The windows of max_pool2d and avg_pool2d and of their gradient ops. */
typedef struct pool_win {
    int64_t k[2], s[2], p[2], d[2];
    bool    is_max, include_pad;
} pool_win;

static pool_win pool_win_of(const dl_op *op)
{
    pool_win w = {.d = {1, 1}};
    ir_attr_pair(op, "kernel_size", 1, w.k), ir_attr_pair(op, "padding", 0, w.p);
    if (RFIND("stride"))
        ir_attr_pair(op, "stride", 1, w.s);
    else
        w.s[0] = w.k[0], w.s[1] = w.k[1];
    w.is_max = op->code == DL_OP_MAX_POOL2D || op->code == DL_OP_MAX_POOL2D_GRAD;
    if (w.is_max)
        ir_attr_pair(op, "dilation", 1, w.d);
    w.include_pad = !w.is_max && RATTR(bool, "count_include_pad");
    return w;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* PyTorch's divisor for the average window starting at (h0, w0): the window clipped to the
 * padded input, or to the input itself without count_include_pad. */
static int64_t avg_divisor(const pool_win *p, int64_t h0, int64_t w0, int64_t H, int64_t W)
{
    int64_t h1 = min64(h0 + p->k[0], H + p->p[0]), w1 = min64(w0 + p->k[1], W + p->p[1]);
    if (p->include_pad)
        return (h1 - h0) * (w1 - w0);
    return (min64(h1, H) - max64(h0, 0)) * (min64(w1, W) - max64(w0, 0));
}

/* Where in its H x W plane (at x's element `base`) the window starting at (h0, w0) has its
 * maximum, as PyTorch's kernels pick it: the first of equal maxima, the last NaN, the first
 * position inside the input when all are -inf; -1 when no position is inside. */
static int64_t max_at(const pool_win *p, const ref_t *x, int64_t base, int64_t h0, int64_t w0,
                      int64_t H, int64_t W)
{
    int64_t hs = h0, ws = w0;
    while (hs < 0)
        hs += p->d[0];
    while (ws < 0)
        ws += p->d[1];
    int64_t he = min64(h0 + (p->k[0] - 1) * p->d[0] + 1, H);
    int64_t we = min64(w0 + (p->k[1] - 1) * p->d[1] + 1, W);
    if (hs >= he || ws >= we)
        return -1;
    int64_t at = hs * W + ws;
    double m = -INFINITY;
    for (int64_t h = hs; h < he; h += p->d[0])
        for (int64_t w = ws; w < we; w += p->d[1]) {
            double v = ref_get(x, base + h * W + w);
            if (v > m || isnan(v))
                m = v, at = h * W + w;
        }
    return at;
}

/* max_pool2d and avg_pool2d over the last two dimensions (3-D or 4-D input). */
static void pool2d(const dl_op *op, const ref_t *x, ref_t *out)
{
    pool_win p = pool_win_of(op);
    int r = x->rank;
    int64_t H = x->dim[r - 2], W = x->dim[r - 1], OH = out->dim[r - 2], OW = out->dim[r - 1];
    int64_t planes = H * W > 0 ? x->n / (H * W) : 0;
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * p.s[0] - p.p[0], w0 = ow * p.s[1] - p.p[1];
                double acc = 0;
                if (p.is_max) {
                    int64_t at = max_at(&p, x, pl * H * W, h0, w0, H, W);
                    acc = at < 0 ? -INFINITY : ref_get(x, pl * H * W + at);
                } else {
                    for (int64_t h = max64(h0, 0); h < min64(h0 + p.k[0], H); h++)
                        for (int64_t w = max64(w0, 0); w < min64(w0 + p.k[1], W); w++)
                            acc += ref_get(x, (pl * H + h) * W + w);
                    acc /= (double)avg_divisor(&p, h0, w0, H, W);
                }
                ref_set(out, (pl * OH + oh) * OW + ow, acc);
            }
}

/* max_pool2d_grad and avg_pool2d_grad: each window's gradient back to the positions it read. */
static bool pool2d_grad(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *dy = in[0], *x = in[1];
    pool_win p = pool_win_of(op);
    int r = x->rank;
    int64_t H = x->dim[r - 2], W = x->dim[r - 1], OH = dy->dim[r - 2], OW = dy->dim[r - 1];
    int64_t planes = H * W > 0 ? x->n / (H * W) : 0;
    double *acc = calloc((size_t)(out->n ? out->n : 1), sizeof *acc);
    if (!acc)
        return ref_fail(c, op, "out of memory");
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * p.s[0] - p.p[0], w0 = ow * p.s[1] - p.p[1];
                double g = ref_get(dy, (pl * OH + oh) * OW + ow);
                if (p.is_max) {
                    int64_t at = max_at(&p, x, pl * H * W, h0, w0, H, W);
                    if (at >= 0)
                        acc[pl * H * W + at] += g;
                    continue;
                }
                g /= (double)avg_divisor(&p, h0, w0, H, W);
                for (int64_t h = max64(h0, 0); h < min64(h0 + p.k[0], H); h++)
                    for (int64_t w = max64(w0, 0); w < min64(w0 + p.k[1], W); w++)
                        acc[(pl * H + h) * W + w] += g;
            }
    for (int64_t i = 0; i < out->n; i++)
        ref_set(out, i, acc[i]);
    free(acc);
    return true;
}

/* adaptive_avg_pool2d and its gradient (grad: x is in[1], the gradient dy in[0]). Window o of
 * n over an extent `in`: [floor(o * in / n), ceil((o + 1) * in / n)). */
static bool adaptive_avg_pool2d(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    bool grad = op->code == DL_OP_ADAPTIVE_AVG_POOL2D_GRAD;
    const ref_t *x = grad ? in[1] : in[0], *y = grad ? in[0] : out;
    int r = x->rank;
    int64_t H = x->dim[r - 2], W = x->dim[r - 1], OH = y->dim[r - 2], OW = y->dim[r - 1];
    int64_t planes = H * W > 0 ? x->n / (H * W) : 0;
    double *acc = grad ? calloc((size_t)(out->n ? out->n : 1), sizeof *acc) : NULL;
    if (grad && !acc)
        return ref_fail(c, op, "out of memory");
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t hs = oh * H / OH, he = ((oh + 1) * H + OH - 1) / OH;
                int64_t ws = ow * W / OW, we = ((ow + 1) * W + OW - 1) / OW;
                double cnt = (double)((he - hs) * (we - ws)), sum = 0;
                double g = grad ? ref_get(y, (pl * OH + oh) * OW + ow) / cnt : 0;
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++) {
                        if (grad)
                            acc[(pl * H + h) * W + w] += g;
                        else
                            sum += ref_get(x, (pl * H + h) * W + w);
                    }
                if (!grad)
                    ref_set(out, (pl * OH + oh) * OW + ow, sum / cnt);
            }
    for (int64_t i = 0; grad && i < out->n; i++)
        ref_set(out, i, acc[i]);
    free(acc);
    return true;
}

static void layer_norm(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0];
    int nd = RFIND("normalized_shape")->n;
    int64_t m = 1;
    for (int i = x->rank - nd; i < x->rank; i++)
        m *= x->dim[i];
    double eps = RATTR(float, "eps");
    for (int64_t b = 0; m && b < x->n / m; b++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < m; j++)
            mean += ref_get(x, b * m + j);
        mean /= (double)m;
        for (int64_t j = 0; j < m; j++) {
            double dv = ref_get(x, b * m + j) - mean;
            var += dv * dv;
        }
        double inv = 1 / sqrt(var / (double)m + eps);
        for (int64_t j = 0; j < m; j++) {
            double y = (ref_get(x, b * m + j) - mean) * inv;
            if (op->nin > 1)
                y *= ref_get(in[1], j);
            if (op->nin > 2)
                y += ref_get(in[2], j);
            ref_set(out, b * m + j, y);
        }
    }
}

/* Training normalises with the biased batch variance but, like PyTorch, folds the unbiased
 * one into running_var. */
static void batch_norm(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *w = in[1], *b = in[2], *rm = in[3], *rv = in[4];
    int64_t N = x->dim[0], C = x->dim[1], S = N * C > 0 ? x->n / (N * C) : 0, cnt = N * S;
    bool training = RATTR(bool, "training");
    double mom = RATTR(float, "momentum"), eps = RATTR(float, "eps");
    for (int64_t ch = 0; ch < C; ch++) {
        double mean = 0, var = 0;
        if (training) {
            for (int64_t n = 0; n < N; n++)
                for (int64_t s = 0; s < S; s++)
                    mean += ref_get(x, (n * C + ch) * S + s);
            mean /= (double)cnt;
            for (int64_t n = 0; n < N; n++)
                for (int64_t s = 0; s < S; s++) {
                    double dv = ref_get(x, (n * C + ch) * S + s) - mean;
                    var += dv * dv;
                }
            double unbiased = var / (double)(cnt - 1);
            var /= (double)cnt;
            ref_set(&out[1], ch, (1 - mom) * ref_get(rm, ch) + mom * mean);
            ref_set(&out[2], ch, (1 - mom) * ref_get(rv, ch) + mom * unbiased);
        } else {
            mean = ref_get(rm, ch);
            var = ref_get(rv, ch);
            ref_set(&out[1], ch, mean);
            ref_set(&out[2], ch, var);
        }
        double inv = 1 / sqrt(var + eps), g = ref_get(w, ch), bb = ref_get(b, ch);
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) {
                int64_t i = (n * C + ch) * S + s;
                ref_set(out, i, (ref_get(x, i) - mean) * inv * g + bb);
            }
    }
}

/* Element i is kept iff uniform(i) >= p, uniform(i) = (word i % 4 of Philox4x32-10 at key,
 * counter (stream, i / 4)) >> 8) * 2^-24; kept values are scaled by 1 / (1 - p). */
static void dropout(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0];
    uint64_t key = (uint64_t)ref_geti(in[1], 0), stream = (uint64_t)RATTR(int, "stream");
    double p = RATTR(float, "p");
    uint32_t r[4];
    for (int64_t i = 0; i < x->n; i++) {
        if (i % 4 == 0)
            sup_philox4x32(key, stream, (uint64_t)i / 4, r);
        double u = (double)(r[i % 4] >> 8) * 0x1p-24;
        ref_set(out, i, u >= p ? ref_get(x, i) / (1 - p) : 0);
    }
}

/* softmax(q k^T * scale + mask) v over broadcast batch dimensions. */
static bool sdpa(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *q = in[0], *k = in[1], *v = in[2], *mask = op->nin > 3 ? in[3] : NULL;
    int64_t L = q->dim[q->rank - 2], E = q->dim[q->rank - 1], S = k->dim[k->rank - 2];
    int64_t Ev = v->dim[v->rank - 1];
    double scale = RFIND("scale") ? RATTR(float, "scale") : 1 / sqrt((double)E);
    bool causal = RATTR(bool, "causal");
    int nbd = out->rank - 2;
    int64_t nb = 1, sdim[DL_MAX_RANK];
    for (int i = 0; i < nbd; i++)
        nb *= sdim[i] = out->dim[i];
    sdim[nbd] = L, sdim[nbd + 1] = S;
    ref_t qb = *q, kb = *k, vb = *v;
    qb.rank -= 2, kb.rank -= 2, vb.rank -= 2;
    double *sc = malloc((size_t)(S ? S : 1) * sizeof *sc);
    if (!sc)
        return ref_fail(c, op, "out of memory");
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t oq = ref_bcast_off(&qb, nbd, out->dim, bi) * L * E;
        int64_t ok = ref_bcast_off(&kb, nbd, out->dim, bi) * S * E;
        int64_t ov = ref_bcast_off(&vb, nbd, out->dim, bi) * S * Ev;
        for (int64_t i = 0; i < L; i++) {
            double m = -INFINITY, sum = 0;
            for (int64_t j = 0; j < S; j++) {
                double a = 0;
                for (int64_t e = 0; e < E; e++)
                    a += ref_get(q, oq + i * E + e) * ref_get(k, ok + j * E + e);
                a *= scale;
                if (causal && j > i)
                    a = -INFINITY;
                if (mask) {
                    double mv = ref_get(mask, ref_bcast_off(mask, nbd + 2, sdim, (bi * L + i) * S + j));
                    a = mask->dt == DL_BOOL ? (mv != 0 ? a : -INFINITY) : a + mv;
                }
                sc[j] = a;
                m = fmax(m, a);
            }
            for (int64_t j = 0; j < S; j++)
                sum += sc[j] = exp(sc[j] - m);
            for (int64_t e = 0; e < Ev; e++) {
                double acc = 0;
                for (int64_t j = 0; j < S; j++)
                    acc += sc[j] / sum * ref_get(v, ov + j * Ev + e);
                ref_set(out, (bi * L + i) * Ev + e, acc);
            }
        }
    }
    free(sc);
    return true;
}

bool ref_nn(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    switch (op->code) {
    case DL_OP_CONV2D: return conv2d(op, in, out);
    case DL_OP_CONV_TRANSPOSE2D: return conv_transpose2d(c, op, in, out);
    case DL_OP_MAX_POOL2D:
    case DL_OP_AVG_POOL2D: pool2d(op, in[0], out); return true;
    case DL_OP_MAX_POOL2D_GRAD:
    case DL_OP_AVG_POOL2D_GRAD: return pool2d_grad(c, op, in, out);
    case DL_OP_ADAPTIVE_AVG_POOL2D:
    case DL_OP_ADAPTIVE_AVG_POOL2D_GRAD: return adaptive_avg_pool2d(c, op, in, out);
    case DL_OP_CONV2D_GRAD_WEIGHT: conv2d_grad_weight(op, in, out); return true;
    case DL_OP_LAYER_NORM: layer_norm(op, in, out); return true;
    case DL_OP_BATCH_NORM: batch_norm(op, in, out); return true;
    case DL_OP_DROPOUT: dropout(op, in, out); return true;
    case DL_OP_SDPA: return sdpa(c, op, in, out);
    default: return ref_fail(c, op, "not a layer op");
    }
}
