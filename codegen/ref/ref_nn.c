/* Layers in the reference interpreter: convolutions, pooling, normalisation, dropout and
 * attention, written as the direct loops of their PyTorch definitions with float64 sums. */
#include "codegen/ref/ref_internal.h"
#include "support/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A 2-element spatial attribute; one element means both, absent means `def`. */
static void pair(const dl_op *op, const char *name, int64_t def, int64_t out[2])
{
    const dl_attr *a = RFIND(name);
    if (!a)
        out[0] = out[1] = def;
    else
        out[0] = a->u.ints[0], out[1] = a->u.ints[a->n > 1];
}

static bool conv2d(const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *w = in[1];
    int64_t s[2], p[2], d[2], g = RATTR(int, "groups");
    pair(op, "stride", 1, s), pair(op, "padding", 0, p), pair(op, "dilation", 1, d);
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
    pair(op, "stride", 1, s), pair(op, "padding", 0, p), pair(op, "dilation", 1, d);
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

/* max_pool2d and avg_pool2d over the last two dimensions (3-D or 4-D input). */
static void pool2d(const dl_op *op, const ref_t *x, ref_t *out)
{
    int64_t k[2], s[2], p[2], d[2] = {1, 1};
    pair(op, "kernel_size", 1, k), pair(op, "padding", 0, p);
    if (RFIND("stride"))
        pair(op, "stride", 1, s);
    else
        s[0] = k[0], s[1] = k[1];
    bool is_max = op->code == DL_OP_MAX_POOL2D;
    if (is_max)
        pair(op, "dilation", 1, d);
    bool include_pad = !is_max && RATTR(bool, "count_include_pad");
    int r = x->rank;
    int64_t H = x->dim[r - 2], W = x->dim[r - 1], OH = out->dim[r - 2], OW = out->dim[r - 1];
    int64_t planes = H * W > 0 ? x->n / (H * W) : 0;
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * s[0] - p[0], w0 = ow * s[1] - p[1];
                double acc = is_max ? -INFINITY : 0;
                for (int64_t kh = 0; kh < k[0]; kh++)
                    for (int64_t kw = 0; kw < k[1]; kw++) {
                        int64_t h = h0 + kh * d[0], w = w0 + kw * d[1];
                        if (h < 0 || h >= H || w < 0 || w >= W)
                            continue;
                        double v = ref_get(x, (pl * H + h) * W + w);
                        if (!is_max)
                            acc += v;
                        else if (v > acc || isnan(v))
                            acc = isnan(acc) ? acc : v;
                    }
                if (!is_max) {
                    /* PyTorch's divisor: the window clipped to the padded input, or to the
                     * input itself without count_include_pad. */
                    int64_t h1 = h0 + k[0] < H + p[0] ? h0 + k[0] : H + p[0];
                    int64_t w1 = w0 + k[1] < W + p[1] ? w0 + k[1] : W + p[1];
                    int64_t pool = (h1 - h0) * (w1 - w0);
                    int64_t hs = h0 > 0 ? h0 : 0, ws = w0 > 0 ? w0 : 0;
                    int64_t he = h1 < H ? h1 : H, we = w1 < W ? w1 : W;
                    acc /= (double)(include_pad ? pool : (he - hs) * (we - ws));
                }
                ref_set(out, (pl * OH + oh) * OW + ow, acc);
            }
}

static void adaptive_avg_pool2d(const ref_t *x, ref_t *out)
{
    int r = x->rank;
    int64_t H = x->dim[r - 2], W = x->dim[r - 1], OH = out->dim[r - 2], OW = out->dim[r - 1];
    int64_t planes = H * W > 0 ? x->n / (H * W) : 0;
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                /* start = floor(o * in / out), end = ceil((o + 1) * in / out) */
                int64_t hs = oh * H / OH, he = ((oh + 1) * H + OH - 1) / OH;
                int64_t ws = ow * W / OW, we = ((ow + 1) * W + OW - 1) / OW;
                double acc = 0;
                for (int64_t h = hs; h < he; h++)
                    for (int64_t w = ws; w < we; w++)
                        acc += ref_get(x, (pl * H + h) * W + w);
                ref_set(out, (pl * OH + oh) * OW + ow, acc / (double)((he - hs) * (we - ws)));
            }
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
    case DL_OP_ADAPTIVE_AVG_POOL2D: adaptive_avg_pool2d(in[0], out); return true;
    case DL_OP_LAYER_NORM: layer_norm(op, in, out); return true;
    case DL_OP_BATCH_NORM: batch_norm(op, in, out); return true;
    case DL_OP_DROPOUT: dropout(op, in, out); return true;
    case DL_OP_SDPA: return sdpa(c, op, in, out);
    default: return ref_fail(c, op, "not a layer op");
    }
}
