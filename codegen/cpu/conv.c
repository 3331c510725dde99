/* Convolutions and pooling on the CPU (see conv.h). The loops index from a row's start with an
 * offset (never a pointer before it), take the valid range of each tap analytically instead of
 * testing every element, and keep unit-stride inner loops separate so gcc vectorizes them. */
#include "codegen/cpu/conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void par(rt_pool *pool, int64_t n, rt_pool_fn *fn, void *ctx)
{
    if (pool)
        rt_pool_run(pool, n, fn, ctx);
    else if (n > 0)
        fn(ctx, 0, n, 0);
}

/* The outputs i in [0, out) whose tap i * s + off lies in [0, n), as [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t out, int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    b = b < out ? b : out;
    *lo = a < b ? a : b;
    *hi = b;
}

/* ---- conv2d: im2col + gemm ------------------------------------------------------------------ */

typedef struct conv_geom {
    int64_t C, H, W;        /* channels of one group, input plane */
    int64_t KH, KW, OH, OW;
    int64_t s[2], p[2], d[2];
} conv_geom;

typedef struct im2col_job {
    const conv_geom *g;
    const float     *x;     /* the group's first input plane */
    int64_t          oh0, oh1;  /* the output rows this block covers */
    float           *col;   /* [C * KH * KW, (oh1 - oh0) * OW] */
} im2col_job;

/* Rows r = (c, kh, kw) of the column matrix: col[r][(oh - oh0) * OW + ow] is
 * x[c][oh * s0 - p0 + kh * d0][ow * s1 - p1 + kw * d1], zero in the padding. */
static void im2col_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const im2col_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t OW = g->OW, s1 = g->s[1];
    for (int64_t r = begin; r < end; r++) {
        int64_t kw = r % g->KW, kh = r / g->KW % g->KH, c = r / (g->KW * g->KH);
        const float *xp = j->x + c * g->H * g->W;
        float *dst = j->col + r * (j->oh1 - j->oh0) * OW;
        int64_t off = kw * g->d[1] - g->p[1], lo, hi;
        valid_range(off, s1, g->W, OW, &lo, &hi);
        for (int64_t oh = j->oh0; oh < j->oh1; oh++) {
            int64_t ih = oh * g->s[0] - g->p[0] + kh * g->d[0];
            float *row = dst + (oh - j->oh0) * OW;
            if (ih < 0 || ih >= g->H) {
                memset(row, 0, sizeof *row * (size_t)OW);
                continue;
            }
            const float *src = xp + ih * g->W;
            memset(row, 0, sizeof *row * (size_t)lo);
            if (s1 == 1)
                memcpy(row + lo, src + lo + off, sizeof *row * (size_t)(hi - lo));
            else
                for (int64_t ow = lo; ow < hi; ow++)
                    row[ow] = src[ow * s1 + off];
            memset(row + hi, 0, sizeof *row * (size_t)(OW - hi));
        }
    }
}

typedef struct bias_job {
    float       *y;
    const float *b;
    int64_t      C, plane;   /* channels, elements per plane */
    bool         set;        /* overwrite (y = b) instead of adding */
} bias_job;

static void bias_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const bias_job *j = ctx;
    for (int64_t pl = begin; pl < end; pl++) {
        float *y = j->y + pl * j->plane, b = j->b ? j->b[pl % j->C] : 0.0f;
        if (j->set)
            for (int64_t i = 0; i < j->plane; i++)
                y[i] = b;
        else
            for (int64_t i = 0; i < j->plane; i++)
                y[i] += b;
    }
}

/* The output rows of one block of columns: about 2 MiB, so a block is still in cache when the
 * gemm packs it (1.3-1.8x faster than one image's columns at once on the ResNet layer of
 * bench/conv.c, one thread). */
static int64_t conv2d_block_rows(int64_t K, int64_t OW, int64_t OH)
{
    int64_t rows = K * OW > 0 ? ((int64_t)2 << 20) / (4 * K * OW) : OH;
    return rows < 1 ? 1 : rows > OH ? OH : rows;
}

/* The images of one chunk of conv2d_grad_weight's columns (near 8 MiB). */
static int64_t grad_weight_chunk(int64_t K, int64_t OHW, int64_t N)
{
    int64_t nb = ((int64_t)2 << 20) / (K * OHW);
    return nb < 1 ? 1 : nb > N ? N : nb;
}

static bool conv2d(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out)
{
    const dl_dim *xd = in[0].type.dim, *wd = in[1].type.dim, *yd = out->type.dim;
    int64_t groups = IR_OP_ATTR(int, op, "groups");
    conv_geom g = {.H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c, .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g.s), ir_attr_pair(op, "padding", 0, g.p), ir_attr_pair(op, "dilation", 1, g.d);
    int64_t N = xd[0].c, C = xd[1].c, O = wd[0].c, Og = O / groups, OHW = g.OH * g.OW;
    g.C = wd[1].c;
    int64_t K = g.C * g.KH * g.KW;
    const float *x = in[0].data, *w = in[1].data;
    float *y = out->data;
    /* A 1x1 kernel at stride 1 without padding reads the input planes as they are. */
    bool direct = g.KH == 1 && g.KW == 1 && g.s[0] == 1 && g.s[1] == 1 && g.p[0] == 0 && g.p[1] == 0;
    /* Otherwise the columns go in blocks of whole output rows. */
    int64_t rows = conv2d_block_rows(K, g.OW, g.OH);
    float *col = NULL;
    if (!direct && K * OHW > 0 && !(col = malloc(sizeof *col * (size_t)(K * rows * g.OW))))
        return false;
    bool ok = true;
    for (int64_t n = 0; ok && n < N; n++)
        for (int64_t gi = 0; ok && gi < groups; gi++) {
            const float *xg = x + (n * C + gi * g.C) * g.H * g.W;
            float *yg = y + (n * O + gi * Og) * OHW;
            if (!col) {
                ok = cg_gemm_run(gm, pool, Og, OHW, K, w + gi * Og * K, K, xg, OHW, yg, OHW);
                continue;
            }
            for (int64_t oh0 = 0; ok && oh0 < g.OH; oh0 += rows) {
                int64_t oh1 = oh0 + rows < g.OH ? oh0 + rows : g.OH, nb = (oh1 - oh0) * g.OW;
                im2col_job j = {&g, xg, oh0, oh1, col};
                par(pool, K, im2col_rows, &j);
                ok = cg_gemm_run(gm, pool, Og, nb, K, w + gi * Og * K, K, col, nb, yg + oh0 * g.OW, OHW);
            }
        }
    free(col);
    if (ok && op->nin > 2) {
        bias_job b = {y, in[2].data, O, OHW, false};
        par(pool, N * O, bias_planes, &b);
    }
    return ok;
}

/* ---- conv2d_grad_weight: transposed im2col + gemm ------------------------------------------ */

typedef struct colt_job {
    const conv_geom *g;
    const float     *x;      /* the chunk's first image, at the group's first channel */
    int64_t          image;  /* elements from one image to the next */
    float           *colt;   /* [images * OH * OW, C * KH * KW] */
} colt_job;

/* Rows (n, oh) of the transposed column matrix: colt[(n, oh, ow)][(c, kh, kw)] is the input tap
 * x[n][c][oh * s0 - p0 + kh * d0][ow * s1 - p1 + kw * d1], zero in the padding. */
static void im2colt_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const colt_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t K = g->C * g->KH * g->KW;
    for (int64_t row = begin; row < end; row++) {
        int64_t n = row / g->OH, oh = row % g->OH;
        const float *xn = j->x + n * j->image;
        for (int64_t ow = 0; ow < g->OW; ow++) {
            float *dst = j->colt + (row * g->OW + ow) * K;
            for (int64_t c = 0; c < g->C; c++)
                for (int64_t kh = 0; kh < g->KH; kh++) {
                    int64_t ih = oh * g->s[0] - g->p[0] + kh * g->d[0];
                    for (int64_t kw = 0; kw < g->KW; kw++) {
                        int64_t iw = ow * g->s[1] - g->p[1] + kw * g->d[1];
                        bool in = ih >= 0 && ih < g->H && iw >= 0 && iw < g->W;
                        *dst++ = in ? xn[(c * g->H + ih) * g->W + iw] : 0.0f;
                    }
                }
        }
    }
}

/* dW[o][(c, kh, kw)] = sum over images and output positions of dy[n][o][oh][ow] times the tap,
 * per group: one gemm dy_g [Og, n*OHW] @ colt [n*OHW, K] per chunk of images (chunks keep the
 * columns near 8 MiB), chunks after the first added in. */
static bool conv2d_grad_weight(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in,
                               cg_tensor *out)
{
    const dl_dim *xd = in[0].type.dim, *yd = in[1].type.dim, *wd = out->type.dim;
    int64_t groups = IR_OP_ATTR(int, op, "groups");
    conv_geom g = {.C = wd[1].c, .H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c,
                   .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g.s), ir_attr_pair(op, "padding", 0, g.p), ir_attr_pair(op, "dilation", 1, g.d);
    int64_t N = xd[0].c, C = xd[1].c, O = wd[0].c, Og = O / groups, OHW = g.OH * g.OW;
    int64_t K = g.C * g.KH * g.KW;
    float *dw = out->data;
    const float *x = in[0].data, *dy = in[1].data;
    if (N * OHW == 0 || K == 0) {
        memset(dw, 0, sizeof *dw * (size_t)(O * K));
        return true;
    }
    int64_t nb = grad_weight_chunk(K, OHW, N);
    float *colt = malloc(sizeof *colt * (size_t)(nb * OHW * K));
    float *dyp = malloc(sizeof *dyp * (size_t)(Og * nb * OHW));
    float *tmp = nb < N ? malloc(sizeof *tmp * (size_t)(Og * K)) : NULL;
    bool ok = colt && dyp && (nb == N || tmp);
    for (int64_t gi = 0; ok && gi < groups; gi++) {
        float *dwg = dw + gi * Og * K;
        for (int64_t n0 = 0; ok && n0 < N; n0 += nb) {
            int64_t cnt = n0 + nb < N ? nb : N - n0;
            colt_job j = {&g, x + (n0 * C + gi * g.C) * g.H * g.W, C * g.H * g.W, colt};
            par(pool, cnt * g.OH, im2colt_rows, &j);
            for (int64_t o = 0; o < Og; o++)
                for (int64_t n = 0; n < cnt; n++)
                    memcpy(dyp + o * cnt * OHW + n * OHW, dy + ((n0 + n) * O + gi * Og + o) * OHW,
                           sizeof *dyp * (size_t)OHW);
            float *c = n0 ? tmp : dwg;
            ok = cg_gemm_run(gm, pool, Og, K, cnt * OHW, dyp, cnt * OHW, colt, K, c, K);
            for (int64_t i = 0; ok && n0 && i < Og * K; i++)
                dwg[i] += tmp[i];
        }
    }
    free(colt);
    free(dyp);
    free(tmp);
    return ok;
}

/* ---- conv_transpose2d: gemm + col2im ------------------------------------------------------- */

typedef struct col2im_job {
    const conv_geom *g;      /* C: output channels of one group; H, W: the input plane; OH, OW: the output's */
    const float     *col;    /* [C * KH * KW, H * W] */
    float           *y;      /* the group's first output plane */
    const float     *bias;   /* the group's first bias, or NULL */
} col2im_job;

/* Output channels [begin, end) of the group: the plane starts at the bias, then every (kh, kw)
 * row of the columns adds its input positions at oh = h * s0 - p0 + kh * d0 (likewise ow). */
static void col2im_channels(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const col2im_job *j = ctx;
    const conv_geom *g = j->g;
    int64_t s1 = g->s[1], HW = g->H * g->W;
    for (int64_t oc = begin; oc < end; oc++) {
        float *yp = j->y + oc * g->OH * g->OW, b = j->bias ? j->bias[oc] : 0.0f;
        for (int64_t i = 0; i < g->OH * g->OW; i++)
            yp[i] = b;
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                const float *cp = j->col + ((oc * g->KH + kh) * g->KW + kw) * HW;
                int64_t off = kw * g->d[1] - g->p[1], lo, hi;
                valid_range(off, s1, g->OW, g->W, &lo, &hi);
                for (int64_t h = 0; h < g->H; h++) {
                    int64_t oh = h * g->s[0] - g->p[0] + kh * g->d[0];
                    if (oh < 0 || oh >= g->OH)
                        continue;
                    float *yr = yp + oh * g->OW;
                    const float *cr = cp + h * g->W;
                    if (s1 == 1)
                        for (int64_t w = lo; w < hi; w++)
                            yr[w + off] += cr[w];
                    else
                        for (int64_t w = lo; w < hi; w++)
                            yr[w * s1 + off] += cr[w];
                }
            }
    }
}

static bool conv_transpose2d(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in,
                             cg_tensor *out)
{
    const dl_dim *xd = in[0].type.dim, *wd = in[1].type.dim, *yd = out->type.dim;
    int64_t groups = IR_OP_ATTR(int, op, "groups");
    conv_geom g = {.H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c, .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g.s), ir_attr_pair(op, "padding", 0, g.p), ir_attr_pair(op, "dilation", 1, g.d);
    int64_t N = xd[0].c, C = xd[1].c, Cg = C / groups, O = yd[1].c, HW = g.H * g.W;
    g.C = wd[1].c;                       /* output channels per group */
    int64_t R = g.C * g.KH * g.KW;       /* rows of the columns */
    const float *x = in[0].data, *w = in[1].data, *bias = op->nin > 2 ? in[2].data : NULL;
    float *y = out->data;
    /* The weight [C, Og * KH * KW] per group, transposed to [Og * KH * KW, Cg]. */
    size_t nwt = (size_t)(groups * R * Cg), ncol = (size_t)(R * HW);
    float *wt = malloc(sizeof *wt * (nwt ? nwt : 1)), *col = malloc(sizeof *col * (ncol ? ncol : 1));
    bool ok = wt && col;
    for (int64_t gi = 0; ok && gi < groups; gi++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t r = 0; r < R; r++)
                wt[(gi * R + r) * Cg + c] = w[(gi * Cg + c) * R + r];
    for (int64_t n = 0; ok && n < N; n++)
        for (int64_t gi = 0; ok && gi < groups; gi++) {
            ok = cg_gemm_run(gm, pool, R, HW, Cg, wt + gi * R * Cg, Cg, x + (n * C + gi * Cg) * HW, HW,
                             col, HW);
            col2im_job j = {&g, col, y + (n * O + gi * g.C) * g.OH * g.OW, bias ? bias + gi * g.C : NULL};
            if (ok)
                par(pool, g.C, col2im_channels, &j);
        }
    free(wt);
    free(col);
    return ok;
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct pool_job {
    const float *x;
    float       *y;
    int64_t      H, W, OH, OW;
    int64_t      k[2], s[2], p[2], d[2];
    bool         is_max, include_pad;
    float       *scratch;   /* adaptive: W floats per thread */
    const float *dy;        /* max_pool2d_grad: the gradient; x is the pooled input, y the result */
} pool_job;

/* y = max(y, x) as the reference takes it: a NaN, once seen, stays. */
static void max_row(float *restrict y, const float *restrict x, int64_t lo, int64_t hi, int64_t s,
                    int64_t off)
{
    if (s == 1)
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i + off], a = y[i];
            y[i] = ((v > a) | (a == a && v != v)) ? v : a;
        }
    else
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i * s + off], a = y[i];
            y[i] = ((v > a) | (a == a && v != v)) ? v : a;
        }
}

static void sum_row(float *restrict y, const float *restrict x, int64_t lo, int64_t hi, int64_t s,
                    int64_t off)
{
    if (s == 1)
        for (int64_t i = lo; i < hi; i++)
            y[i] += x[i + off];
    else
        for (int64_t i = lo; i < hi; i++)
            y[i] += x[i * s + off];
}

static void pool_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *xp = j->x + pl * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            float *yr = j->y + (pl * OH + oh) * OW;
            for (int64_t ow = 0; ow < OW; ow++)
                yr[ow] = j->is_max ? -INFINITY : 0.0f;
            for (int64_t kh = 0; kh < j->k[0]; kh++) {
                int64_t ih = oh * j->s[0] - j->p[0] + kh * j->d[0];
                if (ih < 0 || ih >= H)
                    continue;
                for (int64_t kw = 0; kw < j->k[1]; kw++) {
                    int64_t off = kw * j->d[1] - j->p[1], lo, hi;
                    valid_range(off, j->s[1], W, OW, &lo, &hi);
                    (j->is_max ? max_row : sum_row)(yr, xp + ih * W, lo, hi, j->s[1], off);
                }
            }
            if (j->is_max)
                continue;
            /* PyTorch's divisor: the window clipped to the padded input, or to the input itself
             * without count_include_pad. */
            int64_t h0 = oh * j->s[0] - j->p[0], h1 = h0 + j->k[0] < H + j->p[0] ? h0 + j->k[0] : H + j->p[0];
            int64_t hs = h0 > 0 ? h0 : 0, he = h1 < H ? h1 : H;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = ow * j->s[1] - j->p[1], w1 = w0 + j->k[1] < W + j->p[1] ? w0 + j->k[1] : W + j->p[1];
                int64_t ws = w0 > 0 ? w0 : 0, we = w1 < W ? w1 : W;
                yr[ow] /= (float)(j->include_pad ? (h1 - h0) * (w1 - w0) : (he - hs) * (we - ws));
            }
        }
    }
}

/* Rows summed into the scratch (vectorized over w), then each output's columns of it. */
static void adaptive_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    const pool_job *j = ctx;
    int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;
    float *t = j->scratch + (int64_t)thread * W;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *xp = j->x + pl * H * W;
        for (int64_t oh = 0; oh < OH; oh++) {
            /* start = floor(o * in / out), end = ceil((o + 1) * in / out) */
            int64_t hs = oh * H / OH, he = ((oh + 1) * H + OH - 1) / OH;
            for (int64_t w = 0; w < W; w++)
                t[w] = 0;
            for (int64_t h = hs; h < he; h++)
                for (int64_t w = 0; w < W; w++)
                    t[w] += xp[h * W + w];
            float *yr = j->y + (pl * OH + oh) * OW;
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t ws = ow * W / OW, we = ((ow + 1) * W + OW - 1) / OW;
                float acc = 0;
                for (int64_t w = ws; w < we; w++)
                    acc += t[w];
                yr[ow] = acc / (float)((he - hs) * (we - ws));
            }
        }
    }
}

/* max_pool2d_grad: each window's gradient goes to where its maximum is, picked as the reference
 * (codegen/ref/ref_nn.c, max_at) and PyTorch's kernels pick it: the first of equal maxima, the
 * last NaN, the first position inside the input when all are -inf. Planes are independent. */
static void max_grad_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *xp = j->x + pl * H * W, *g = j->dy + pl * OH * OW;
        float *dx = j->y + pl * H * W;
        memset(dx, 0, sizeof *dx * (size_t)(H * W));
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * j->s[0] - j->p[0], w0 = ow * j->s[1] - j->p[1], hs = h0, ws = w0;
                while (hs < 0)
                    hs += j->d[0];
                while (ws < 0)
                    ws += j->d[1];
                int64_t he = h0 + (j->k[0] - 1) * j->d[0] + 1, we = w0 + (j->k[1] - 1) * j->d[1] + 1;
                he = he < H ? he : H;
                we = we < W ? we : W;
                if (hs >= he || ws >= we)
                    continue;
                int64_t at = hs * W + ws;
                float m = -INFINITY;
                for (int64_t h = hs; h < he; h += j->d[0])
                    for (int64_t w = ws; w < we; w += j->d[1]) {
                        float v = xp[h * W + w];
                        if (v > m || v != v)
                            m = v, at = h * W + w;
                    }
                dx[at] += g[oh * OW + ow];
            }
    }
}

static bool pool2d(rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out)
{
    bool grad = op->code == DL_OP_MAX_POOL2D_GRAD;
    const cg_tensor *x = grad ? &in[1] : &in[0], *y = grad ? &in[0] : out;   /* y: the pooled shape */
    int r = x->type.rank;
    pool_job j = {.x = x->data, .y = out->data, .H = x->type.dim[r - 2].c, .W = x->type.dim[r - 1].c,
                  .OH = y->type.dim[r - 2].c, .OW = y->type.dim[r - 1].c, .d = {1, 1},
                  .dy = grad ? in[0].data : NULL};
    int64_t planes = 1;
    for (int i = 0; i < r - 2; i++)
        planes *= x->type.dim[i].c;
    if (op->code == DL_OP_ADAPTIVE_AVG_POOL2D) {
        int threads = pool ? rt_pool_threads(pool) : 1;
        if (!(j.scratch = malloc(sizeof *j.scratch * (size_t)(threads * j.W + 1))))
            return false;
        par(pool, planes, adaptive_planes, &j);
        free(j.scratch);
        return true;
    }
    ir_attr_pair(op, "kernel_size", 1, j.k), ir_attr_pair(op, "padding", 0, j.p);
    if (ir_attr_find(op->nattr, op->attr, "stride"))
        ir_attr_pair(op, "stride", 1, j.s);
    else
        j.s[0] = j.k[0], j.s[1] = j.k[1];
    j.is_max = op->code == DL_OP_MAX_POOL2D || grad;
    if (j.is_max)
        ir_attr_pair(op, "dilation", 1, j.d);
    j.include_pad = !j.is_max && IR_OP_ATTR(bool, op, "count_include_pad");
    par(pool, planes, grad ? max_grad_planes : pool_planes, &j);
    return true;
}

/* The shapes below follow the loops above: change them together. */
bool cg_conv_gemm_shape(const dl_op *op, const cg_tensor *in, const cg_tensor *out, cg_gemm_shape *s)
{
    bool conv = op->code == DL_OP_CONV2D || op->code == DL_OP_CONV2D_GRAD_WEIGHT ||
                op->code == DL_OP_CONV_TRANSPOSE2D;
    int64_t groups = conv ? IR_OP_ATTR(int, op, "groups") : 1;
    if (op->code == DL_OP_CONV2D) {
        const dl_dim *wd = in[1].type.dim, *yd = out->type.dim;
        int64_t s1[2], p1[2], OHW = yd[2].c * yd[3].c, K = wd[1].c * wd[2].c * wd[3].c;
        ir_attr_pair(op, "stride", 1, s1), ir_attr_pair(op, "padding", 0, p1);
        bool direct = wd[2].c == 1 && wd[3].c == 1 && s1[0] == 1 && s1[1] == 1 && p1[0] == 0 && p1[1] == 0;
        int64_t nb = direct ? OHW : conv2d_block_rows(K, yd[3].c, yd[2].c) * yd[3].c;
        *s = (cg_gemm_shape){wd[0].c / groups, nb, K, K, 1, direct ? OHW : nb, 1, OHW};
        return true;
    }
    if (op->code == DL_OP_CONV2D_GRAD_WEIGHT) {
        const dl_dim *xd = in[0].type.dim, *yd = in[1].type.dim, *wd = out->type.dim;
        int64_t OHW = yd[2].c * yd[3].c, K = wd[1].c * wd[2].c * wd[3].c;
        if (xd[0].c * OHW == 0 || K == 0)
            return false;
        int64_t cnt = grad_weight_chunk(K, OHW, xd[0].c);
        *s = (cg_gemm_shape){wd[0].c / groups, K, cnt * OHW, cnt * OHW, 1, K, 1, K};
        return true;
    }
    if (op->code == DL_OP_CONV_TRANSPOSE2D) {
        const dl_dim *xd = in[0].type.dim, *wd = in[1].type.dim;
        int64_t Cg = xd[1].c / groups, HW = xd[2].c * xd[3].c, R = wd[1].c * wd[2].c * wd[3].c;
        *s = (cg_gemm_shape){R, HW, Cg, Cg, 1, HW, 1, HW};
        return true;
    }
    return false;
}

bool cg_conv_run(cg_gemm *g, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                 char *err, size_t errlen)
{
    bool ok;
    switch (op->code) {
    case DL_OP_CONV2D: ok = conv2d(g, pool, op, in, out); break;
    case DL_OP_CONV_TRANSPOSE2D: ok = conv_transpose2d(g, pool, op, in, out); break;
    case DL_OP_CONV2D_GRAD_WEIGHT: ok = conv2d_grad_weight(g, pool, op, in, out); break;
    case DL_OP_MAX_POOL2D:
    case DL_OP_MAX_POOL2D_GRAD:
    case DL_OP_AVG_POOL2D:
    case DL_OP_ADAPTIVE_AVG_POOL2D: ok = pool2d(pool, op, in, out); break;
    default:
        snprintf(err, errlen, "%s has no convolution or pooling kernel", ir_op_info(op->code)->name);
        return false;
    }
    if (!ok)
        snprintf(err, errlen, "out of memory in %s", ir_op_info(op->code)->name);
    return ok;
}
