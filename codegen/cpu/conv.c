/* Convolutions and pooling on the CPU (see conv.h). The convolutions run the gemm's micro-kernel
 * (gemm.h) from loops of their own: the weights are packed once per call into the kernel's A
 * layout (a conv2d bias as one more column, against a row of ones in B), and the columns of
 * im2col are written straight into its B layout, a block at a time, so no column matrix is
 * built and packed again. Work is split across the pool by images (and blocks of output rows
 * when images are few), one pool run per op: each thread packs its own columns, and a finished
 * block's rows go to the epilogue from that thread. Scratch lives in the gemm
 * (cg_gemm_scratch_acquire) and only grows, so a call with shapes seen before allocates nothing.
 * The loops index from a row's start with an offset (never a pointer before it) and take the
 * valid range of each tap analytically instead of testing every element. */
#include "codegen/cpu/conv.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void par(rt_pool *pool, int64_t n, rt_pool_fn *fn, void *ctx)
{
    if (pool && n > 1)
        rt_pool_run(pool, n, fn, ctx);
    else if (n > 0)
        fn(ctx, 0, n, 0);
}

static int threads_of(const rt_pool *pool) { return pool ? rt_pool_threads(pool) : 1; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t rup(int64_t a, int64_t b) { return cdiv(a, b) * b; }

/* The outputs i in [0, out) whose tap i * s + off lies in [0, n), as [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t out, int64_t *lo, int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    b = b < out ? b : out;
    *lo = a < b ? a : b;
    *hi = b;
}

/* Four floats at a time, with GCC's vector extensions (SSE2 on any x86-64, NEON on Arm), for
 * the loops gcc -O2 leaves scalar: transposes into slivers, and the 2x2 pooling windows, whose
 * maxima of random data defeat the branch predictor where selects do not. */
typedef float   f4 __attribute__((vector_size(16)));
typedef int32_t i4 __attribute__((vector_size(16)));

static inline f4 ld4(const float *p)
{
    f4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st4(float *p, f4 v) { memcpy(p, &v, sizeof v); }
static inline f4 sel4(i4 m, f4 a, f4 b) { return (f4)((m & (i4)a) | (~m & (i4)b)); }
static inline i4 take4(f4 m, f4 v) { return (v > m) | ((m == m) & (v != v)); }
static inline f4 even4(f4 a, f4 b) { return __builtin_shufflevector(a, b, 0, 2, 4, 6); }
static inline f4 odd4(f4 a, f4 b) { return __builtin_shufflevector(a, b, 1, 3, 5, 7); }

/* A depth of d split into blocks of at most kc, all about the same size (no short last block
 * for the micro-kernel to run at a loss). */
static int64_t depth_block(int64_t d, int64_t kc) { return d > 0 ? cdiv(d, cdiv(d, kc)) : 1; }

/* Scratch carved into 64-byte aligned pieces: sized with base NULL, then carved for real. */
typedef struct carve {
    char  *base;
    size_t off;
} carve;

static float *take(carve *c, int64_t floats)
{
    float *p = c->base ? (float *)(void *)(c->base + c->off) : NULL;
    c->off += ((size_t)(floats > 0 ? floats : 0) * sizeof(float) + 63) / 64 * 64;
    return p;
}

/* ---- the micro-kernel's loops ------------------------------------------------------------- */

typedef struct mk {
    cg_gemm_ukr *ukr;
    int64_t      mr, nr, kc;
} mk;

static mk mk_of(const cg_gemm *g)
{
    const cg_gemm_params *p = cg_gemm_get_params(g);
    return (mk){cg_gemm_get_kernel(g), p->mr, p->nr, p->kc};
}

/* C[0:M, 0:N] (+= when add) = A @ B over one depth block of kb: A's MR-row slivers ([kb][mr])
 * `as` floats apart, B's NR-column slivers ([kb][nr]) `bs` floats apart; C's rows ldc apart. */
static void mk_run(const mk *k, int64_t M, int64_t N, int64_t kb, const float *a, int64_t as,
                   const float *b, int64_t bs, float *c, int64_t ldc, bool add)
{
    for (int64_t j = 0; j < N; j += k->nr)
        for (int64_t i = 0; i < M; i += k->mr)
            k->ukr(kb, a + i / k->mr * as, b + j / k->nr * bs, c + i * ldc + j, ldc, min64(k->mr, M - i),
                   min64(k->nr, N - j), add);
}

/* ---- the input a block of output rows reads, padded --------------------------------------- */

typedef struct conv_geom {
    int64_t C, H, W;        /* input channels of one group, input plane */
    int64_t KH, KW, OH, OW;
    int64_t s[2], p[2], d[2];
} conv_geom;

/* Output rows [oh0, oh1) read input rows ih0 = oh0 * s0 - p0 onwards: pad_rows(g, rows) of them,
 * pad_width(g) columns from iw = -p1 on. */
static int64_t pad_rows(const conv_geom *g, int64_t rows) { return (rows - 1) * g->s[0] + (g->KH - 1) * g->d[0] + 1; }
static int64_t pad_width(const conv_geom *g) { return (g->OW - 1) * g->s[1] + (g->KW - 1) * g->d[1] + 1; }

/* Where tap (c, kh, kw) of output position (oh0 + r, ow) lies: p[c * cs + (r * s0 + kh * d0) * ld
 * + ow * s1 + kw * d1], zero in the padding. */
typedef struct padded {
    const float *p;
    int64_t      cs, ld;    /* channel and row strides */
} padded;

/* The input rows output rows [oh0, oh1) of one image read (x: the group's first plane), copied
 * into buf with their padding, or x itself when they need none. */
static padded pad_input(const conv_geom *g, const float *x, int64_t oh0, int64_t oh1, float *buf)
{
    int64_t PR = pad_rows(g, oh1 - oh0), Wp = pad_width(g), ih0 = oh0 * g->s[0] - g->p[0];
    if (g->p[1] == 0 && Wp <= g->W && ih0 >= 0 && ih0 + PR <= g->H)
        return (padded){x + ih0 * g->W, g->H * g->W, g->W};
    /* Column u of a padded row is input column u - p1. */
    int64_t u0 = min64(max64(g->p[1], 0), Wp), u1 = min64(max64(g->p[1] + g->W, u0), Wp);
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t r = 0; r < PR; r++) {
            float *row = buf + (c * PR + r) * Wp;
            int64_t ih = ih0 + r;
            if (ih < 0 || ih >= g->H) {
                memset(row, 0, sizeof *row * (size_t)Wp);
                continue;
            }
            memset(row, 0, sizeof *row * (size_t)u0);
            if (u1 > u0)
                memcpy(row + u0, x + (c * g->H + ih) * g->W + (u0 - g->p[1]), sizeof *row * (size_t)(u1 - u0));
            memset(row + u1, 0, sizeof *row * (size_t)(Wp - u1));
        }
    return (padded){buf, PR * Wp, Wp};
}

/* The start of tap t's values in a padded input. */
static const float *tap_start(const conv_geom *g, const padded *x, int64_t t)
{
    int64_t kw = t % g->KW, kh = t / g->KW % g->KH, c = t / (g->KW * g->KH);
    return x->p + c * x->cs + kh * g->d[0] * x->ld + kw * g->d[1];
}

/* ---- conv2d (and conv_transpose2d at stride 1): packed columns + micro-kernel ---------------- */

/* One call's plan. An item is (a few images, group, block of output rows): the block's input
 * padded, then for each depth block its columns packed as B and Y[Og, block] (+)= W_g @ columns.
 * At stride 1 the columns are taken over the padded rows' whole width, so each tap's row is one
 * contiguous run of the padded input (a copy per sliver); the product then goes to a scratch
 * tile whose columns past OW in each row are dropped on the way out. Small images go several
 * to an item, their columns side by side, when that fills the NR-wide slivers better (the CNN's
 * 14x14 planes: 4 images in 14 slivers instead of 16). */
typedef struct fwd_job {
    mk           k;
    conv_geom    g;
    const float *x, *w, *bias;
    float       *y;
    bool         flip;        /* w is a conv_transpose2d weight [Cin, Og, KH, KW], read flipped */
    bool         unit;        /* stride 1 */
    int64_t      N, groups, Cin, O, Og;
    int64_t      K, Kt;       /* taps per group; Kt = K + 1 with a bias (a row of ones in B) */
    int64_t      rows, nblk;  /* output rows per block, blocks per image */
    int64_t      ipb, nimb;   /* images per item (1 unless nblk is 1), image blocks */
    int64_t      kb;          /* depth block */
    float       *a;           /* packed weights: per group, per MR-row sliver, [Kt][mr] */
    float       *b, *pad, *tile;   /* per thread: packed columns, padded inputs, product */
    int64_t      bfloats, padfloats, tilefloats;
    const cg_gemm_epilogue *epi;
} fwd_job;

enum { MAX_IPB = 16 };

/* Output rows per block: the block's columns for one depth block near 256 KiB, at least two
 * items per thread in all, and of the sizes near that, the one that pads the last NR-wide
 * sliver of each block the least. */
static int64_t fwd_rows(int64_t OH, int64_t OW, int64_t kb, int64_t nr, int64_t images, int threads)
{
    int64_t rows = min64(OH, max64(1, (65536 / kb) / OW));
    if (images < 2 * threads)
        rows = min64(rows, max64(1, cdiv(OH, cdiv(2 * threads, images))));
    int64_t best = rows, best_cols = INT64_MAX;
    for (int64_t r = rows; r >= 1 && 2 * r >= rows; r--) {
        int64_t cols = OH / r * rup(r * OW, nr) + (OH % r ? rup(OH % r * OW, nr) : 0);
        if (cols < best_cols)
            best_cols = cols, best = r;
    }
    return best;
}

/* Images per item for whole-image blocks of nbi columns: the fewest slivers per image, with
 * at least two items per thread and the columns of an item under 1 MiB per depth block. */
static int64_t fwd_images(int64_t nbi, int64_t kb, int64_t nr, int64_t N, int64_t groups, int threads)
{
    int64_t most = min64(MAX_IPB, max64(1, N / cdiv(2 * threads, groups)));
    int64_t best = 1;
    double best_cost = (double)rup(nbi, nr);
    for (int64_t i = 2; i <= most && i * nbi * kb <= (1 << 18); i++) {
        double cost = (double)rup(i * nbi, nr) / (double)i;
        if (cost < 0.97 * best_cost)
            best = i, best_cost = cost;
    }
    return best;
}

/* Weight (o, t) of group gi as conv2d reads it. */
static float fwd_weight(const fwd_job *j, int64_t gi, int64_t o, int64_t t)
{
    if (!j->flip)
        return j->w[(gi * j->Og + o) * j->K + t];
    const conv_geom *g = &j->g;
    int64_t kw = t % g->KW, kh = t / g->KW % g->KH, c = t / (g->KW * g->KH);
    return j->w[(((gi * g->C + c) * j->Og + o) * g->KH + g->KH - 1 - kh) * g->KW + g->KW - 1 - kw];
}

/* Slivers [begin, end) of the packed weights (all groups' slivers in a row). */
static void fwd_pack_weights(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const fwd_job *j = ctx;
    int64_t mr = j->k.mr, Ms = cdiv(j->Og, mr);
    for (int64_t sl = begin; sl < end; sl++) {
        int64_t gi = sl / Ms, o0 = sl % Ms * mr;
        float *dst = j->a + sl * j->Kt * mr;
        for (int64_t r = 0; r < mr; r++) {
            int64_t o = o0 + r;
            if (o >= j->Og) {
                for (int64_t t = 0; t < j->Kt; t++)
                    dst[t * mr + r] = 0;
                continue;
            }
            for (int64_t t = 0; t < j->K; t++)
                dst[t * mr + r] = fwd_weight(j, gi, o, t);
            if (j->Kt > j->K)
                dst[j->K * mr + r] = j->bias[gi * j->Og + o];
        }
    }
}

/* Rows [d0, d0 + kb) of an item's columns (ni images of nbi columns, side by side) into NR-wide
 * slivers [kb][nr] back to back, zero past the last. At stride 1, column q of a tap in an image
 * is its start + q (padded rows back to back); otherwise the columns are the rows of OW
 * outputs, read at stride s1. */
static void fwd_pack_columns(const fwd_job *j, const padded *x, int64_t ni, int64_t rows, int64_t nbi,
                             int64_t d0, int64_t kb, float *dst)
{
    const conv_geom *g = &j->g;
    int64_t nr = j->k.nr, nb = ni * nbi;
    for (int64_t t = d0; t < d0 + kb; t++) {
        float *row = dst + (t - d0) * nr;     /* sliver s's row: row + s * kb * nr */
        if (t >= j->K) {
            for (int64_t q = 0; q < nb; q++)
                row[q / nr * kb * nr + q % nr] = 1;
        } else if (j->unit) {
            for (int64_t i = 0; i < ni; i++) {
                const float *src = tap_start(g, &x[i], t);
                for (int64_t q = i * nbi, e = q + nbi; q < e;) {
                    int64_t lane = q % nr, w = min64(nr - lane, e - q);
                    memcpy(row + q / nr * kb * nr + lane, src + (q - i * nbi), sizeof *row * (size_t)w);
                    q += w;
                }
            }
        } else {
            int64_t lane = 0, s1 = g->s[1];
            float *sl = row;
            for (int64_t i = 0; i < ni; i++) {
                const float *src = tap_start(g, &x[i], t);
                for (int64_t r = 0; r < rows; r++) {
                    const float *sr = src + r * g->s[0] * x[i].ld;
                    for (int64_t ow = 0; ow < g->OW; ow++) {
                        sl[lane] = sr[ow * s1];
                        if (++lane == nr)
                            lane = 0, sl += kb * nr;
                    }
                }
            }
        }
        if (nb % nr)
            memset(row + nb / nr * kb * nr + nb % nr, 0, sizeof *row * (size_t)(nr - nb % nr));
    }
}

static void fwd_items(void *ctx, int64_t begin, int64_t end, int thread)
{
    const fwd_job *j = ctx;
    const conv_geom *g = &j->g;
    int64_t mr = j->k.mr, nr = j->k.nr, OHW = g->OH * g->OW, Ms = cdiv(j->Og, mr);
    float *bp = j->b + thread * j->bfloats, *tile = j->tile + thread * j->tilefloats;
    for (int64_t it = begin; it < end; it++) {
        int64_t ib = it / (j->groups * j->nblk), gi = it / j->nblk % j->groups, blk = it % j->nblk;
        int64_t n0 = ib * j->ipb, ni = min64(j->ipb, j->N - n0);
        int64_t oh0 = blk * j->rows, oh1 = min64(g->OH, oh0 + j->rows), rows = oh1 - oh0;
        padded x[MAX_IPB];
        for (int64_t i = 0; i < ni; i++)
            x[i] = pad_input(g, j->x + ((n0 + i) * j->Cin + gi * g->C) * g->H * g->W, oh0, oh1,
                             j->pad + (thread * j->ipb + i) * j->padfloats);
        /* Columns per image: the padded rows' whole width at stride 1, the outputs otherwise. */
        int64_t ld = j->unit ? x[0].ld : g->OW, nbi = (rows - 1) * ld + g->OW, nb = ni * nbi;
        float *y = j->y + (n0 * j->O + gi * j->Og) * OHW + oh0 * g->OW;
        bool direct = ld == g->OW && ni == 1;
        const float *a = j->a + gi * Ms * j->Kt * mr;
        for (int64_t d0 = 0; d0 < j->Kt; d0 += j->kb) {
            int64_t kb = min64(j->kb, j->Kt - d0);
            fwd_pack_columns(j, x, ni, rows, nbi, d0, kb, bp);
            mk_run(&j->k, j->Og, nb, kb, a + d0 * mr, j->Kt * mr, bp, kb * nr, direct ? y : tile,
                   direct ? OHW : nb, d0 > 0);
        }
        for (int64_t i = 0; !direct && i < ni; i++)
            for (int64_t o = 0; o < j->Og; o++)
                for (int64_t r = 0; r < rows; r++)
                    memcpy(y + (i * j->O + o) * OHW + r * g->OW, tile + o * nb + i * nbi + r * ld,
                           sizeof *y * (size_t)g->OW);
        for (int64_t i = 0; j->epi && i < ni; i++) {
            int64_t r0 = j->epi->row0 + ((n0 + i) * j->O + gi * j->Og) * g->OH;
            if (j->nblk == 1)
                j->epi->fn(j->epi->ctx, r0, r0 + j->Og * g->OH);
            else
                for (int64_t o = 0; o < j->Og; o++)
                    j->epi->fn(j->epi->ctx, r0 + o * g->OH + oh0, r0 + o * g->OH + oh1);
        }
    }
}

/* The plan of conv2d (flip: conv_transpose2d at stride 1, as a conv2d over its input with the
 * weight flipped and its channels exchanged, padded d * (k - 1) - p). */
static void fwd_plan(fwd_job *j, const mk *k, const dl_op *op, const cg_tensor *in, const cg_tensor *out,
                     bool flip, int threads)
{
    const dl_dim *xd = in[0].type.dim, *wd = in[1].type.dim, *yd = out->type.dim;
    *j = (fwd_job){.k = *k, .flip = flip, .groups = IR_OP_ATTR(int, op, "groups"), .N = xd[0].c};
    conv_geom *g = &j->g;
    *g = (conv_geom){.H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c, .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g->s), ir_attr_pair(op, "padding", 0, g->p), ir_attr_pair(op, "dilation", 1, g->d);
    j->Cin = xd[1].c, j->O = yd[1].c, j->Og = j->O / j->groups;
    g->C = j->Cin / j->groups;
    if (flip)
        for (int i = 0; i < 2; i++)
            g->p[i] = g->d[i] * ((i ? g->KW : g->KH) - 1) - g->p[i];
    j->unit = g->s[0] == 1 && g->s[1] == 1;
    j->K = g->C * g->KH * g->KW;
    j->Kt = j->K + (op->nin > 2);
    j->kb = depth_block(j->Kt, k->kc);
    j->ipb = 1;
    if (g->OH <= 0 || g->OW <= 0 || j->N <= 0)
        return;
    j->rows = fwd_rows(g->OH, g->OW, j->kb, k->nr, j->N * j->groups, threads);
    j->nblk = cdiv(g->OH, j->rows);
    int64_t Wp = pad_width(g), PR = pad_rows(g, j->rows);
    /* Sized for the wider of the two: a short last block may be padded where the others are not. */
    int64_t nbi = (j->rows - 1) * (j->unit ? max64(g->W, Wp) : g->OW) + g->OW;
    if (j->nblk == 1)
        j->ipb = fwd_images(nbi, j->kb, k->nr, j->N, j->groups, threads);
    j->nimb = cdiv(j->N, j->ipb);
    j->bfloats = j->kb * rup(j->ipb * nbi, k->nr);
    j->padfloats = rup(g->C * PR * Wp, 16);
    j->tilefloats = rup(j->Og * j->ipb * nbi, 16);
}

static bool conv_forward(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                         bool flip, const cg_gemm_epilogue *epi)
{
    mk k = mk_of(gm);
    int threads = threads_of(pool);
    fwd_job j;
    fwd_plan(&j, &k, op, in, out, flip, threads);
    j.x = in[0].data, j.w = in[1].data, j.bias = op->nin > 2 ? in[2].data : NULL, j.y = out->data, j.epi = epi;
    int64_t OHW = j.g.OH * j.g.OW, Ms = cdiv(j.Og, k.mr);
    if (j.N * j.O * OHW == 0)
        return true;
    if (j.Kt == 0) {            /* no input channels and no bias */
        memset(j.y, 0, sizeof *j.y * (size_t)(j.N * j.O * OHW));
        if (epi)
            epi->fn(epi->ctx, epi->row0, epi->row0 + j.N * j.O * j.g.OH);
        return true;
    }
    carve c = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass && !(c.base = cg_gemm_scratch_acquire(gm, c.off)))
            return false;
        c.off = 0;
        j.a = take(&c, j.groups * Ms * j.Kt * k.mr);
        j.b = take(&c, threads * j.bfloats);
        j.pad = take(&c, threads * j.ipb * j.padfloats);
        j.tile = take(&c, threads * j.tilefloats);
    }
    /* Packing the weights pays for a pool run only when there are many. */
    if (j.groups * Ms * j.Kt * k.mr >= ((int64_t)1 << 16))
        par(pool, j.groups * Ms, fwd_pack_weights, &j);
    else
        fwd_pack_weights(&j, 0, j.groups * Ms, 0);
    par(pool, j.nimb * j.groups * j.nblk, fwd_items, &j);
    cg_gemm_scratch_release(gm);
    return true;
}

/* ---- conv2d_grad_weight: packed transposed columns + micro-kernel ---------------------------- */

/* dW_g[o][t] = sum over images n and output positions q of dy[n][o][q] * tap t at q: per group a
 * product with the positions as its depth, dy_g [Og, q] @ columns^T [q, K], or transposed,
 * columns [K, q] @ dy_g^T [q, Og], whichever pads its MR x NR tiles less (a 1-channel input's 9
 * taps fill a 64-wide sliver poorly; its 16 output channels less poorly). Both operands are
 * packed straight from the padded input and dy, a block of output rows at a time. The images
 * are split into chunks, each summing into a partial of its own; the partials are added in
 * order at the end, so the result depends on the thread count only. */
typedef struct gw_job {
    mk           k;
    conv_geom    g;
    const float *x, *dy;
    int64_t      N, groups, Cin, O, Og, K;
    bool         swap;        /* A: the columns' taps, B: dy's channels; C is dW transposed */
    int64_t      M, Nc;       /* C's rows and columns: Og x K, or K x Og when swapped */
    int64_t      nch;         /* chunks of images */
    int64_t      rows, kb;    /* output rows per depth block, and their positions */
    float       *part;        /* [nch][groups][M * Nc] */
    float       *a, *b, *pad; /* per thread: packed A, packed B, the padded input */
    int64_t      afloats, bfloats, padfloats;
} gw_job;

/* dst[q * width + l] = src[l][q] for l < nl, q < n: rows into a sliver, transposed 4 x 4 in
 * registers (a store per position and four lanes, not one per element). */
static void transpose_into(float *restrict dst, int64_t width, const float *const *src, int64_t nl, int64_t n)
{
    int64_t l = 0;
    for (; l + 4 <= nl; l += 4) {
        const float *s0 = src[l], *s1 = src[l + 1], *s2 = src[l + 2], *s3 = src[l + 3];
        int64_t q = 0;
        for (; q + 4 <= n; q += 4) {
            f4 a = ld4(s0 + q), b = ld4(s1 + q), c = ld4(s2 + q), d = ld4(s3 + q);
            f4 ab0 = __builtin_shufflevector(a, b, 0, 4, 1, 5), ab1 = __builtin_shufflevector(a, b, 2, 6, 3, 7);
            f4 cd0 = __builtin_shufflevector(c, d, 0, 4, 1, 5), cd1 = __builtin_shufflevector(c, d, 2, 6, 3, 7);
            st4(dst + q * width + l, __builtin_shufflevector(ab0, cd0, 0, 1, 4, 5));
            st4(dst + (q + 1) * width + l, __builtin_shufflevector(ab0, cd0, 2, 3, 6, 7));
            st4(dst + (q + 2) * width + l, __builtin_shufflevector(ab1, cd1, 0, 1, 4, 5));
            st4(dst + (q + 3) * width + l, __builtin_shufflevector(ab1, cd1, 2, 3, 6, 7));
        }
        for (; q < n; q++) {
            float *d = dst + q * width + l;
            d[0] = s0[q], d[1] = s1[q], d[2] = s2[q], d[3] = s3[q];
        }
    }
    for (; l < nl; l++)
        for (int64_t q = 0; q < n; q++)
            dst[q * width + l] = src[l][q];
}

enum { MAX_WIDTH = 128 };   /* nr <= 8 vectors of 16, mr <= 32 (gemm.c's check_params) */

/* Taps [0, K) at a block's positions (rows of OW outputs) as `width`-wide slivers [kb][width],
 * `ss` floats apart. */
static void gw_pack_taps(const gw_job *j, const padded *x, int64_t rows, int64_t width, int64_t ss, float *dst)
{
    const conv_geom *g = &j->g;
    const float *src[MAX_WIDTH], *start[MAX_WIDTH];
    for (int64_t t0 = 0; t0 < j->K; t0 += width) {
        int64_t nl = min64(width, j->K - t0);
        float *sl = dst + t0 / width * ss;
        for (int64_t l = 0; l < nl; l++)
            start[l] = tap_start(g, x, t0 + l);
        for (int64_t r = 0; r < rows; r++) {
            float *d = sl + r * g->OW * width;
            if (g->s[1] == 1) {
                for (int64_t l = 0; l < nl; l++)
                    src[l] = start[l] + r * g->s[0] * x->ld;
                transpose_into(d, width, src, nl, g->OW);
                continue;
            }
            for (int64_t l = 0; l < nl; l++) {
                const float *sr = start[l] + r * g->s[0] * x->ld;
                for (int64_t ow = 0; ow < g->OW; ow++)
                    d[ow * width + l] = sr[ow * g->s[1]];
            }
        }
    }
}

/* Rows [0, R) of dy (rows OHW apart) at kb positions from q0, likewise. */
static void gw_pack_rows(const float *dy, int64_t R, int64_t OHW, int64_t q0, int64_t kb, int64_t width,
                         int64_t ss, float *dst)
{
    const float *src[MAX_WIDTH];
    for (int64_t r0 = 0; r0 < R; r0 += width) {
        int64_t nl = min64(width, R - r0);
        for (int64_t l = 0; l < nl; l++)
            src[l] = dy + (r0 + l) * OHW + q0;
        transpose_into(dst + r0 / width * ss, width, src, nl, kb);
    }
}

/* Lanes [n, rup(n, width)) of a thread's slivers: zero once, no block writes them. */
static void zero_lanes(float *dst, int64_t n, int64_t width, int64_t ss, int64_t kb)
{
    if (n % width == 0)
        return;
    float *sl = dst + n / width * ss;
    for (int64_t q = 0; q < kb; q++)
        for (int64_t l = n % width; l < width; l++)
            sl[q * width + l] = 0;
}

static void gw_chunks(void *ctx, int64_t begin, int64_t end, int thread)
{
    const gw_job *j = ctx;
    const conv_geom *g = &j->g;
    int64_t mr = j->k.mr, nr = j->k.nr, OHW = g->OH * g->OW, CM = j->M * j->Nc;
    int64_t as = j->kb * mr, bs = j->kb * nr;   /* sliver strides: every block's slivers at the same place */
    float *a = j->a + thread * j->afloats, *b = j->b + thread * j->bfloats;
    float *pad = j->pad + thread * j->padfloats;
    zero_lanes(a, j->M, mr, as, j->kb);
    zero_lanes(b, j->Nc, nr, bs, j->kb);
    for (int64_t ch = begin; ch < end; ch++) {
        float *part = j->part + ch * j->groups * CM;
        memset(part, 0, sizeof *part * (size_t)(j->groups * CM));
        for (int64_t n = j->N * ch / j->nch; n < j->N * (ch + 1) / j->nch; n++)
            for (int64_t gi = 0; gi < j->groups; gi++) {
                const float *x = j->x + (n * j->Cin + gi * g->C) * g->H * g->W;
                const float *dy = j->dy + (n * j->O + gi * j->Og) * OHW;
                for (int64_t oh0 = 0; oh0 < g->OH; oh0 += j->rows) {
                    int64_t oh1 = min64(g->OH, oh0 + j->rows), kb = (oh1 - oh0) * g->OW;
                    padded xp = pad_input(g, x, oh0, oh1, pad);
                    if (j->swap) {
                        gw_pack_taps(j, &xp, oh1 - oh0, mr, as, a);
                        gw_pack_rows(dy, j->Og, OHW, oh0 * g->OW, kb, nr, bs, b);
                    } else {
                        gw_pack_rows(dy, j->Og, OHW, oh0 * g->OW, kb, mr, as, a);
                        gw_pack_taps(j, &xp, oh1 - oh0, nr, bs, b);
                    }
                    mk_run(&j->k, j->M, j->Nc, kb, a, as, b, bs, part + gi * CM, j->Nc, true);
                }
            }
    }
}

static void gw_plan(gw_job *j, const mk *k, const dl_op *op, const cg_tensor *in, const cg_tensor *out,
                    int threads)
{
    const dl_dim *xd = in[0].type.dim, *yd = in[1].type.dim, *wd = out->type.dim;
    *j = (gw_job){.k = *k, .groups = IR_OP_ATTR(int, op, "groups"), .N = xd[0].c, .Cin = xd[1].c, .O = wd[0].c};
    conv_geom *g = &j->g;
    *g = (conv_geom){.C = wd[1].c, .H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c,
                     .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g->s), ir_attr_pair(op, "padding", 0, g->p), ir_attr_pair(op, "dilation", 1, g->d);
    j->Og = j->O / j->groups;
    j->K = g->C * g->KH * g->KW;
    j->swap = rup(j->K, k->mr) * rup(j->Og, k->nr) < rup(j->Og, k->mr) * rup(j->K, k->nr);
    j->M = j->swap ? j->K : j->Og;
    j->Nc = j->swap ? j->Og : j->K;
    j->nch = threads > 1 ? min64(j->N, 4 * (int64_t)threads) : 1;
    if (g->OH <= 0 || g->OW <= 0)
        return;
    /* Depth blocks of whole output rows, about kc positions, the same size. */
    j->rows = max64(1, min64(g->OH, k->kc / g->OW));
    j->rows = cdiv(g->OH, cdiv(g->OH, j->rows));
    j->kb = j->rows * g->OW;
    j->afloats = rup(rup(j->M, k->mr) * j->kb, 16);
    j->bfloats = rup(j->Nc, k->nr) * j->kb;
    j->padfloats = rup(g->C * pad_rows(g, j->rows) * pad_width(g), 16);
}

static bool conv2d_grad_weight(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out)
{
    mk k = mk_of(gm);
    int threads = threads_of(pool);
    gw_job j;
    gw_plan(&j, &k, op, in, out, threads);
    j.x = in[0].data, j.dy = in[1].data;
    float *dw = out->data;
    int64_t CM = j.M * j.Nc;
    if (j.N * j.g.OH * j.g.OW == 0 || CM == 0) {
        memset(dw, 0, sizeof *dw * (size_t)(j.O * j.K));
        return true;
    }
    carve c = {0};
    for (int pass = 0; pass < 2; pass++) {
        if (pass && !(c.base = cg_gemm_scratch_acquire(gm, c.off)))
            return false;
        c.off = 0;
        j.part = take(&c, j.nch * j.groups * CM);
        j.a = take(&c, threads * j.afloats);
        j.b = take(&c, threads * j.bfloats);
        j.pad = take(&c, threads * j.padfloats);
    }
    par(pool, j.nch, gw_chunks, &j);
    for (int64_t gi = 0; gi < j.groups; gi++)
        for (int64_t o = 0; o < j.Og; o++)
            for (int64_t t = 0; t < j.K; t++) {
                int64_t at = gi * CM + (j.swap ? t * j.Og + o : o * j.K + t);
                float s = j.part[at];
                for (int64_t ch = 1; ch < j.nch; ch++)
                    s += j.part[ch * j.groups * CM + at];
                dw[(gi * j.Og + o) * j.K + t] = s;
            }
    cg_gemm_scratch_release(gm);
    return true;
}

/* ---- conv_transpose2d at other strides: micro-kernel + col2im -------------------------------- */

/* Per (image, group), for each block of input rows: columns [Og * KH * KW, block] = W_g^T @ x's
 * block (the weight packed transposed once per call), then col2im adds each column row into
 * the output at oh = h * s0 - p0 + kh * d0 (likewise ow), over an output that starts at the
 * bias. Blocks follow each other within an item (they add into the same output rows). */
typedef struct tr_job {
    mk           k;
    conv_geom    g;           /* C: output channels of a group; H, W: the input plane; OH, OW: the output's */
    const float *x, *w, *bias;
    float       *y;
    int64_t      groups, Cin, Cg, O, R;   /* R = C * KH * KW: rows of the columns */
    int64_t      hrows, kb;   /* input rows per block, depth block (over Cg) */
    float       *a;           /* per group, per MR-row sliver: [Cg][mr] */
    float       *b, *col;     /* per thread */
    int64_t      bfloats, colfloats;
    const cg_gemm_epilogue *epi;
} tr_job;

static void tr_pack_weights(const tr_job *j)
{
    int64_t mr = j->k.mr, Rs = cdiv(j->R, mr);
    for (int64_t gi = 0; gi < j->groups; gi++)
        for (int64_t sl = 0; sl < Rs; sl++) {
            float *dst = j->a + (gi * Rs + sl) * j->Cg * mr;
            for (int64_t c = 0; c < j->Cg; c++)
                for (int64_t r = 0; r < mr; r++) {
                    int64_t row = sl * mr + r;
                    dst[c * mr + r] = row < j->R ? j->w[(gi * j->Cg + c) * j->R + row] : 0;
                }
        }
}

/* The column rows of one block (input rows [h0, h1)) added into the group's output planes. */
static void tr_col2im(const tr_job *j, const float *col, int64_t h0, int64_t h1, float *y)
{
    const conv_geom *g = &j->g;
    int64_t s1 = g->s[1], nb = (h1 - h0) * g->W;
    for (int64_t oc = 0; oc < g->C; oc++)
        for (int64_t kh = 0; kh < g->KH; kh++)
            for (int64_t kw = 0; kw < g->KW; kw++) {
                const float *cp = col + ((oc * g->KH + kh) * g->KW + kw) * nb;
                int64_t off = kw * g->d[1] - g->p[1], lo, hi;
                valid_range(off, s1, g->OW, g->W, &lo, &hi);
                for (int64_t h = h0; h < h1; h++) {
                    int64_t oh = h * g->s[0] - g->p[0] + kh * g->d[0];
                    if (oh < 0 || oh >= g->OH)
                        continue;
                    float *yr = y + (oc * g->OH + oh) * g->OW;
                    const float *cr = cp + (h - h0) * g->W;
                    if (s1 == 1)
                        for (int64_t w = lo; w < hi; w++)
                            yr[w + off] += cr[w];
                    else
                        for (int64_t w = lo; w < hi; w++)
                            yr[w * s1 + off] += cr[w];
                }
            }
}

static void tr_items(void *ctx, int64_t begin, int64_t end, int thread)
{
    const tr_job *j = ctx;
    const conv_geom *g = &j->g;
    int64_t mr = j->k.mr, nr = j->k.nr, HW = g->H * g->W, OHW = g->OH * g->OW, Rs = cdiv(j->R, mr);
    float *bp = j->b + thread * j->bfloats, *col = j->col + thread * j->colfloats;
    for (int64_t it = begin; it < end; it++) {
        int64_t n = it / j->groups, gi = it % j->groups;
        const float *x = j->x + (n * j->Cin + gi * j->Cg) * HW;
        float *y = j->y + (n * j->O + gi * g->C) * OHW;
        for (int64_t oc = 0; oc < g->C; oc++) {
            float b = j->bias ? j->bias[gi * g->C + oc] : 0.0f;
            for (int64_t i = 0; i < OHW; i++)
                y[oc * OHW + i] = b;
        }
        for (int64_t h0 = 0; j->Cg > 0 && h0 < g->H; h0 += j->hrows) {
            int64_t h1 = min64(g->H, h0 + j->hrows), q0 = h0 * g->W, nb = (h1 - h0) * g->W;
            for (int64_t d0 = 0; d0 < j->Cg; d0 += j->kb) {
                int64_t kb = min64(j->kb, j->Cg - d0);
                for (int64_t c = d0; c < d0 + kb; c++)
                    for (int64_t s0 = 0; s0 < nb; s0 += nr) {
                        int64_t w = min64(nr, nb - s0);
                        float *row = bp + s0 * kb + (c - d0) * nr;
                        memcpy(row, x + c * HW + q0 + s0, sizeof *row * (size_t)w);
                        for (int64_t i = w; i < nr; i++)
                            row[i] = 0;
                    }
                mk_run(&j->k, j->R, nb, kb, j->a + gi * Rs * j->Cg * mr + d0 * mr, j->Cg * mr, bp, kb * nr, col, nb,
                       d0 > 0);
            }
            tr_col2im(j, col, h0, h1, y);
        }
        if (j->epi) {
            int64_t r0 = j->epi->row0 + (n * j->O + gi * g->C) * g->OH;
            j->epi->fn(j->epi->ctx, r0, r0 + g->C * g->OH);
        }
    }
}

static void tr_plan(tr_job *j, const mk *k, const dl_op *op, const cg_tensor *in, const cg_tensor *out)
{
    const dl_dim *xd = in[0].type.dim, *wd = in[1].type.dim, *yd = out->type.dim;
    *j = (tr_job){.k = *k, .groups = IR_OP_ATTR(int, op, "groups"), .Cin = xd[1].c, .O = yd[1].c};
    conv_geom *g = &j->g;
    *g = (conv_geom){.C = wd[1].c, .H = xd[2].c, .W = xd[3].c, .KH = wd[2].c, .KW = wd[3].c,
                     .OH = yd[2].c, .OW = yd[3].c};
    ir_attr_pair(op, "stride", 1, g->s), ir_attr_pair(op, "padding", 0, g->p), ir_attr_pair(op, "dilation", 1, g->d);
    j->Cg = j->Cin / j->groups;
    j->R = g->C * g->KH * g->KW;
    j->kb = depth_block(j->Cg, k->kc);
    /* The columns of a block near 512 KiB. */
    j->hrows = g->W > 0 ? min64(max64(g->H, 1), max64(1, (131072 / max64(j->R, 1)) / g->W)) : 1;
    j->bfloats = j->kb * rup(j->hrows * g->W, k->nr);
    j->colfloats = rup(j->R * j->hrows * g->W, 16);
}

static bool conv_transpose2d(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                             const cg_gemm_epilogue *epi)
{
    int64_t s[2];
    ir_attr_pair(op, "stride", 1, s);
    if (s[0] == 1 && s[1] == 1)
        return conv_forward(gm, pool, op, in, out, true, epi);
    mk k = mk_of(gm);
    int threads = threads_of(pool);
    tr_job j;
    tr_plan(&j, &k, op, in, out);
    j.x = in[0].data, j.w = in[1].data, j.bias = op->nin > 2 ? in[2].data : NULL, j.y = out->data, j.epi = epi;
    int64_t N = in[0].type.dim[0].c, Rs = cdiv(j.R, k.mr);
    if (N * j.O * j.g.OH * j.g.OW == 0)
        return true;
    carve c = {0};
    take(&c, j.groups * Rs * j.Cg * k.mr);
    take(&c, threads * j.bfloats);
    take(&c, threads * j.colfloats);
    if (!(c.base = cg_gemm_scratch_acquire(gm, c.off)))
        return false;
    c.off = 0;
    j.a = take(&c, j.groups * Rs * j.Cg * k.mr);
    j.b = take(&c, threads * j.bfloats);
    j.col = take(&c, threads * j.colfloats);
    tr_pack_weights(&j);
    par(pool, N * j.groups, tr_items, &j);
    cg_gemm_scratch_release(gm);
    return true;
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct pool_job {
    const float *x;
    float       *y;
    int64_t      H, W, OH, OW;
    int64_t      k[2], s[2], p[2], d[2];
    bool         is_max, include_pad;
    bool         inside;    /* no padding or dilation, every window inside the input */
    float       *scratch;   /* adaptive: W floats per thread */
    const float *dy;        /* max_pool2d_grad: the gradient; x is the pooled input, y the result */
} pool_job;

/* The reference's running maximum: a NaN, once seen, stays (the first one). */
static inline float max_step(float m, float v) { return ((v > m) | (m == m && v != v)) ? v : m; }


/* y = max(y, x) over a row of outputs. */
static void max_row(float *restrict y, const float *restrict x, int64_t lo, int64_t hi, int64_t s,
                    int64_t off)
{
    if (s == 1)
        for (int64_t i = lo; i < hi; i++)
            y[i] = max_step(y[i], x[i + off]);
    else
        for (int64_t i = lo; i < hi; i++)
            y[i] = max_step(y[i], x[i * s + off]);
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

/* Windows that lie inside the input, undilated: each output reads its window directly, summing
 * or taking the maximum in the reference's order (2x2 windows at stride 2 four at a time; a
 * window's sum times 1/4 is its sum / 4 exactly). */
static void pool_plane_inside(const pool_job *j, const float *restrict xp, float *restrict yp)
{
    int64_t W = j->W, OW = j->OW, k0 = j->k[0], k1 = j->k[1], s0 = j->s[0], s1 = j->s[1];
    float div = (float)(k0 * k1);
    f4 quarter = {0.25f, 0.25f, 0.25f, 0.25f};
    for (int64_t oh = 0; oh < j->OH; oh++) {
        const float *x0 = xp + oh * s0 * W;
        float *yr = yp + oh * OW;
        int64_t ow = 0;
        if (k0 == 2 && k1 == 2 && s1 == 2) {
            const float *x1 = x0 + W;
            /* A last partial group of four is done again over the three before it. */
            for (int64_t w4 = 0; OW >= 4 && w4 < OW; w4 += 4) {
                ow = min64(w4, OW - 4);
                f4 a0 = ld4(x0 + 2 * ow), a1 = ld4(x0 + 2 * ow + 4), b0 = ld4(x1 + 2 * ow), b1 = ld4(x1 + 2 * ow + 4);
                f4 m = even4(a0, a1), v = odd4(a0, a1), c = even4(b0, b1), d = odd4(b0, b1);
                if (j->is_max) {
                    m = sel4(take4(m, v), v, m);
                    m = sel4(take4(m, c), c, m);
                    st4(yr + ow, sel4(take4(m, d), d, m));
                } else {
                    st4(yr + ow, ((m + v + c) + d) * quarter);    /* the scalar loop's order */
                }
                ow += 4;
            }
        }
        for (; ow < OW; ow++) {
            const float *xw = x0 + ow * s1;
            float acc = j->is_max ? -INFINITY : 0.0f;
            for (int64_t kh = 0; kh < k0; kh++)
                for (int64_t kw = 0; kw < k1; kw++)
                    acc = j->is_max ? max_step(acc, xw[kh * W + kw]) : acc + xw[kh * W + kw];
            yr[ow] = j->is_max ? acc : acc / div;
        }
    }
}

static void pool_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *xp = j->x + pl * H * W;
        if (j->inside) {
            pool_plane_inside(j, xp, j->y + pl * OH * OW);
            continue;
        }
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
                    if (j->is_max)
                        max_row(yr, xp + ih * W, lo, hi, j->s[1], off);
                    else
                        sum_row(yr, xp + ih * W, lo, hi, j->s[1], off);
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

/* max_pool2d_grad where the windows tile the input (kernel = stride, inside, undilated): every
 * position is written once, the window's gradient where its maximum is and zero elsewhere
 * (rows and columns no window covers are zeroed), with no separate clearing pass. The maximum
 * is the reference's (codegen/ref/ref_nn.c, max_at): the first of equal maxima, the last NaN,
 * the window's first position when all are -inf. */
static void max_grad_plane_tiled(const pool_job *j, const float *restrict xp, const float *restrict g,
                                 float *restrict dx)
{
    int64_t W = j->W, OW = j->OW, k0 = j->k[0], k1 = j->k[1];
    for (int64_t oh = 0; oh < j->OH; oh++) {
        const float *x0 = xp + oh * k0 * W;
        float *d0 = dx + oh * k0 * W;
        if (k0 == 2 && k1 == 2) {
            const float *x1 = x0 + W;
            float *d1 = d0 + W;
            int64_t ow = 0;
            for (int64_t w4 = 0; OW >= 4 && w4 < OW; w4 += 4) {
                ow = min64(w4, OW - 4);
                f4 a0 = ld4(x0 + 2 * ow), a1 = ld4(x0 + 2 * ow + 4), b0 = ld4(x1 + 2 * ow), b1 = ld4(x1 + 2 * ow + 4);
                f4 m = even4(a0, a1), v = odd4(a0, a1), gv = ld4(g + oh * OW + ow), z = {0, 0, 0, 0};
                i4 at = {0, 0, 0, 0}, t = take4(m, v), one = {1, 1, 1, 1};
                m = sel4(t, v, m), at = (t & one) | (~t & at);
                v = even4(b0, b1), t = take4(m, v);
                m = sel4(t, v, m), at = (t & (one + one)) | (~t & at);
                v = odd4(b0, b1), t = take4(m, v);
                at = (t & (one + one + one)) | (~t & at);
                f4 g0 = sel4(at == 0, gv, z), g1 = sel4(at == one, gv, z), g2 = sel4(at == one + one, gv, z),
                   g3 = sel4(at == one + one + one, gv, z);
                st4(d0 + 2 * ow, __builtin_shufflevector(g0, g1, 0, 4, 1, 5));
                st4(d0 + 2 * ow + 4, __builtin_shufflevector(g0, g1, 2, 6, 3, 7));
                st4(d1 + 2 * ow, __builtin_shufflevector(g2, g3, 0, 4, 1, 5));
                st4(d1 + 2 * ow + 4, __builtin_shufflevector(g2, g3, 2, 6, 3, 7));
                ow += 4;
            }
            for (; ow < OW; ow++) {
                float a = x0[2 * ow], b = x0[2 * ow + 1], c = x1[2 * ow], d = x1[2 * ow + 1], m = a, gv = g[oh * OW + ow];
                int at = 0;
                if (b > m || b != b)
                    m = b, at = 1;
                if (c > m || c != c)
                    m = c, at = 2;
                if (d > m || d != d)
                    at = 3;
                d0[2 * ow] = at == 0 ? gv : 0.0f;
                d0[2 * ow + 1] = at == 1 ? gv : 0.0f;
                d1[2 * ow] = at == 2 ? gv : 0.0f;
                d1[2 * ow + 1] = at == 3 ? gv : 0.0f;
            }
        } else {
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t at = 0;
                float m = -INFINITY;
                for (int64_t kh = 0; kh < k0; kh++)
                    for (int64_t kw = 0; kw < k1; kw++) {
                        float v = x0[kh * W + ow * k1 + kw];
                        if (v > m || v != v)
                            m = v, at = kh * W + kw;
                    }
                for (int64_t kh = 0; kh < k0; kh++)
                    for (int64_t kw = 0; kw < k1; kw++)
                        d0[kh * W + ow * k1 + kw] = 0;
                d0[at + ow * k1] = g[oh * OW + ow];
            }
        }
        for (int64_t kh = 0; kh < k0; kh++)
            for (int64_t w = OW * k1; w < W; w++)
                d0[kh * W + w] = 0;
    }
    memset(dx + j->OH * k0 * W, 0, sizeof *dx * (size_t)((j->H - j->OH * k0) * W));
}

/* Each window's gradient added where its maximum is, over a cleared plane (windows may overlap
 * or reach into the padding). Planes are independent. */
static void max_grad_planes(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const pool_job *j = ctx;
    int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW;
    for (int64_t pl = begin; pl < end; pl++) {
        const float *xp = j->x + pl * H * W, *g = j->dy + pl * OH * OW;
        float *dx = j->y + pl * H * W;
        if (j->inside && j->k[0] == j->s[0] && j->k[1] == j->s[1]) {
            max_grad_plane_tiled(j, xp, g, dx);
            continue;
        }
        memset(dx, 0, sizeof *dx * (size_t)(H * W));
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = oh * j->s[0] - j->p[0], w0 = ow * j->s[1] - j->p[1];
                /* The first taps inside the input. */
                int64_t hs = h0 < 0 ? h0 + cdiv(-h0, j->d[0]) * j->d[0] : h0;
                int64_t ws = w0 < 0 ? w0 + cdiv(-w0, j->d[1]) * j->d[1] : w0;
                int64_t he = min64(H, h0 + (j->k[0] - 1) * j->d[0] + 1), we = min64(W, w0 + (j->k[1] - 1) * j->d[1] + 1);
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

static bool pool2d(cg_gemm *gm, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out)
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
        if (!(j.scratch = cg_gemm_scratch_acquire(gm, sizeof *j.scratch * (size_t)(threads_of(pool) * j.W))))
            return false;
        par(pool, planes, adaptive_planes, &j);
        cg_gemm_scratch_release(gm);
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
    j.inside = j.p[0] == 0 && j.p[1] == 0 && j.d[0] == 1 && j.d[1] == 1 && j.OH > 0 && j.OW > 0 &&
               (j.OH - 1) * j.s[0] + j.k[0] <= j.H && (j.OW - 1) * j.s[1] + j.k[1] <= j.W;
    par(pool, planes, grad ? max_grad_planes : pool_planes, &j);
    return true;
}

/* The plans above, as the product each op's work is made of. */
bool cg_conv_gemm_shape(const dl_op *op, const cg_tensor *in, const cg_tensor *out, cg_gemm_shape *s)
{
    /* The default micro-tile: the shape is a key and a workload, not a promise about blocking. */
    mk k = {NULL, 6, 64, 256};
    if (op->code == DL_OP_CONV2D || op->code == DL_OP_CONV_TRANSPOSE2D) {
        int64_t st[2];
        ir_attr_pair(op, "stride", 1, st);
        if (op->code == DL_OP_CONV2D || (st[0] == 1 && st[1] == 1)) {
            fwd_job j;
            fwd_plan(&j, &k, op, in, out, op->code == DL_OP_CONV_TRANSPOSE2D, 1);
            int64_t nb = min64(j.rows, j.g.OH) * j.g.OW, OHW = j.g.OH * j.g.OW;
            *s = (cg_gemm_shape){j.Og, nb, j.Kt, j.Kt, 1, nb, 1, OHW};
            return j.Og > 0 && nb > 0 && j.Kt > 0;
        }
        tr_job j;
        tr_plan(&j, &k, op, in, out);
        int64_t nb = min64(j.hrows, j.g.H) * j.g.W;
        *s = (cg_gemm_shape){j.R, nb, j.Cg, j.Cg, 1, nb, 1, nb};
        return j.R > 0 && nb > 0 && j.Cg > 0;
    }
    if (op->code == DL_OP_CONV2D_GRAD_WEIGHT) {
        gw_job j;
        gw_plan(&j, &k, op, in, out, 1);
        int64_t OHW = j.g.OH * j.g.OW;
        *s = (cg_gemm_shape){j.M, j.Nc, OHW, 1, OHW, j.Nc, 1, j.Nc};
        return j.N * OHW > 0 && j.M * j.Nc > 0;
    }
    return false;
}

bool cg_conv_run(cg_gemm *g, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                 const cg_gemm_epilogue *epi, char *err, size_t errlen)
{
    bool ok;
    switch (op->code) {
    case DL_OP_CONV2D: ok = conv_forward(g, pool, op, in, out, false, epi); break;
    case DL_OP_CONV_TRANSPOSE2D: ok = conv_transpose2d(g, pool, op, in, out, epi); break;
    case DL_OP_CONV2D_GRAD_WEIGHT: ok = conv2d_grad_weight(g, pool, op, in, out); break;
    case DL_OP_MAX_POOL2D:
    case DL_OP_MAX_POOL2D_GRAD:
    case DL_OP_AVG_POOL2D:
    case DL_OP_ADAPTIVE_AVG_POOL2D: ok = pool2d(g, pool, op, in, out); break;
    default:
        snprintf(err, errlen, "%s has no convolution or pooling kernel", ir_op_info(op->code)->name);
        return false;
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory in %s", ir_op_info(op->code)->name);
        return false;
    }
    /* The other ops' rows: after the whole op (none of them has an epilogue today). */
    if (epi && op->code != DL_OP_CONV2D && op->code != DL_OP_CONV_TRANSPOSE2D) {
        int64_t rows = 1;
        for (int d = 0; d + 1 < out->type.rank; d++)
            rows *= out->type.dim[d].c;
        epi->fn(epi->ctx, epi->row0, epi->row0 + rows);
    }
    return true;
}
