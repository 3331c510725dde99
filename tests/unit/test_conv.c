/* The CPU convolutions and pooling (codegen/cpu/conv.c) against the reference interpreter, op by
 * op through cg_conv_run: every path of the kernels (stride 1 over padded rows and other strides,
 * inputs read in place, several images per work item and several items per image, depth blocks,
 * both orientations of conv2d_grad_weight, conv_transpose2d at stride 1 as a flipped conv2d and
 * at others through col2im, the 2x2 pooling windows four at a time with ties, NaN and -inf), on
 * the calling thread alone and on pools of 1 and 2 threads, with the default micro-kernel and a
 * small odd one. The epilogue hook is checked on every call: each output row passed exactly once,
 * and final when it is (its values then are those of the finished output). Outputs start as NaN,
 * so an element left unwritten shows. */
#include "codegen/cpu/conv.h"
#include "support/diag.h"
#include "tests/unit/check.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

/* Each function is one op on its arguments; `ties` in the name fills them with small integers
 * and a few NaN and -inf (pooling), otherwise uniform values in [-1, 1). */
static const char *cases =
    /* conv2d: the small CNN's layers (1 channel: 10 taps with the bias; 16 -> 32), 5 images so
     * items hold several and one is short */
    "func @cnn1(%x: f32[5, 1, 28, 28], %w: f32[16, 1, 3, 3], %b: f32[16]) -> (f32[5, 16, 28, 28]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n"
    "func @cnn2(%x: f32[7, 16, 14, 14], %w: f32[32, 16, 3, 3], %b: f32[32]) -> (f32[7, 32, 14, 14]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n"
    /* more taps than a depth block (288), no bias; one tall image: several blocks of rows */
    "func @deep(%x: f32[3, 32, 9, 9], %w: f32[20, 32, 3, 3]) -> (f32[3, 20, 9, 9]) {\n"
    "  %0 = conv2d %x, %w {padding=[1]}\n  return %0\n}\n"
    "func @tall(%x: f32[1, 3, 70, 45], %w: f32[8, 3, 3, 3], %b: f32[8]) -> (f32[1, 8, 70, 45]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n"
    /* strided, dilated, grouped; asymmetric padding; 1x1 read in place, and strided */
    "func @sdg(%x: f32[4, 4, 11, 9], %w: f32[6, 2, 3, 3], %b: f32[6]) -> (f32[4, 6, 5, 4]) {\n"
    "  %0 = conv2d %x, %w, %b {stride=[2], padding=[1], dilation=[2], groups=2}\n  return %0\n}\n"
    "func @asym(%x: f32[2, 4, 11, 9], %w: f32[5, 4, 5, 3]) -> (f32[2, 5, 11, 9]) {\n"
    "  %0 = conv2d %x, %w {padding=[2, 1]}\n  return %0\n}\n"
    "func @one(%x: f32[6, 8, 7, 5], %w: f32[12, 8, 1, 1], %b: f32[12]) -> (f32[6, 12, 7, 5]) {\n"
    "  %0 = conv2d %x, %w, %b\n  return %0\n}\n"
    "func @one_s2(%x: f32[3, 8, 7, 5], %w: f32[12, 8, 1, 1]) -> (f32[3, 12, 4, 3]) {\n"
    "  %0 = conv2d %x, %w {stride=[2]}\n  return %0\n}\n"
    "func @valid(%x: f32[3, 2, 8, 6], %w: f32[3, 2, 3, 2]) -> (f32[3, 3, 6, 5]) {\n"
    "  %0 = conv2d %x, %w\n  return %0\n}\n"
    /* conv_transpose2d at stride 1 (a flipped conv2d): the CNN's input gradient, grouped and
     * dilated with output_padding and a bias, and padding past d * (k - 1) (a crop) */
    "func @grad_x(%dy: f32[6, 32, 14, 14], %w: f32[32, 16, 3, 3]) -> (f32[6, 16, 14, 14]) {\n"
    "  %0 = conv_transpose2d %dy, %w {padding=[1]}\n  return %0\n}\n"
    "func @tr_gd(%x: f32[3, 4, 6, 7], %w: f32[4, 3, 3, 2], %b: f32[6]) -> (f32[3, 6, 9, 8]) {\n"
    "  %0 = conv_transpose2d %x, %w, %b {padding=[1, 0], output_padding=[1, 0], dilation=[2, 1], groups=2}\n"
    "  return %0\n}\n"
    "func @tr_crop(%x: f32[2, 3, 9, 8], %w: f32[3, 2, 3, 3]) -> (f32[2, 2, 5, 4]) {\n"
    "  %0 = conv_transpose2d %x, %w {padding=[3]}\n  return %0\n}\n"
    /* conv_transpose2d at other strides: gemm and col2im */
    "func @tr_s2(%x: f32[3, 4, 11, 9], %w: f32[4, 3, 3, 3], %b: f32[6]) -> (f32[3, 6, 22, 18]) {\n"
    "  %0 = conv_transpose2d %x, %w, %b {stride=[2], padding=[1], output_padding=[1], dilation=[1, 2], groups=2}\n"
    "  return %0\n}\n"
    "func @tr_big(%x: f32[2, 8, 40, 30], %w: f32[8, 40, 3, 3]) -> (f32[2, 40, 81, 61]) {\n"
    "  %0 = conv_transpose2d %x, %w {stride=[2]}\n  return %0\n}\n"
    /* conv2d_grad_weight: taps as B (the CNN's second layer), as A (its first: 9 taps, 16
     * channels); strided (scalar packing), grouped, dilated */
    "func @gw2(%x: f32[6, 16, 14, 14], %dy: f32[6, 32, 14, 14]) -> (f32[32, 16, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {padding=[1], weight_shape=[32, 16, 3, 3]}\n  return %0\n}\n"
    "func @gw1(%x: f32[9, 1, 28, 28], %dy: f32[9, 16, 28, 28]) -> (f32[16, 1, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {padding=[1], weight_shape=[16, 1, 3, 3]}\n  return %0\n}\n"
    "func @gw_sdg(%x: f32[5, 4, 11, 9], %dy: f32[5, 6, 5, 4]) -> (f32[6, 2, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {stride=[2], padding=[1], dilation=[2], groups=2, weight_shape=[6, 2, 3, 3]}\n"
    "  return %0\n}\n"
    "func @gw_wide(%x: f32[2, 3, 5, 300], %dy: f32[2, 4, 5, 300]) -> (f32[4, 3, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {padding=[1], weight_shape=[4, 3, 3, 3]}\n  return %0\n}\n"
    /* pooling: 2x2 windows four at a time (14 and 5 wide: the last group redone; 3 wide: one
     * at a time), other windows inside, windows over the edge */
    "func @ties_max14(%x: f32[3, 5, 28, 28]) -> (f32[3, 5, 14, 14]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_max5(%x: f32[2, 3, 11, 10]) -> (f32[2, 3, 5, 5]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_max3(%x: f32[2, 3, 7, 7]) -> (f32[2, 3, 3, 3]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_max_k3(%x: f32[2, 3, 10, 9]) -> (f32[2, 3, 3, 3]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[3]}\n  return %0\n}\n"
    "func @ties_max_pad(%x: f32[2, 3, 9, 10]) -> (f32[2, 3, 5, 6]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true}\n  return %0\n}\n"
    "func @ties_grad14(%dy: f32[3, 5, 14, 14], %x: f32[3, 5, 28, 29]) -> (f32[3, 5, 28, 29]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_grad5(%dy: f32[2, 3, 5, 5], %x: f32[2, 3, 11, 10]) -> (f32[2, 3, 11, 10]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_grad3(%dy: f32[2, 3, 3, 3], %x: f32[2, 3, 7, 7]) -> (f32[2, 3, 7, 7]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @ties_grad_k3(%dy: f32[2, 3, 3, 3], %x: f32[2, 3, 10, 9]) -> (f32[2, 3, 10, 9]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[3]}\n  return %0\n}\n"
    "func @ties_grad_pad(%dy: f32[2, 3, 5, 6], %x: f32[2, 3, 9, 10]) -> (f32[2, 3, 9, 10]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true}\n  return %0\n}\n"
    "func @avg2(%x: f32[2, 3, 9, 10]) -> (f32[2, 3, 4, 5]) {\n"
    "  %0 = avg_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @avg14(%x: f32[3, 5, 28, 28]) -> (f32[3, 5, 14, 14]) {\n"
    "  %0 = avg_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @avg_k3(%x: f32[2, 3, 10, 9]) -> (f32[2, 3, 3, 3]) {\n"
    "  %0 = avg_pool2d %x {kernel_size=[3], count_include_pad=false}\n  return %0\n}\n"
    "func @avg_pad(%x: f32[2, 3, 9, 10]) -> (f32[2, 3, 5, 6]) {\n"
    "  %0 = avg_pool2d %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true, count_include_pad=false}\n"
    "  return %0\n}\n"
    "func @adaptive(%x: f32[2, 3, 9, 10]) -> (f32[2, 3, 4, 7]) {\n"
    "  %0 = adaptive_avg_pool2d %x {output_size=[4, 7]}\n  return %0\n}\n";

static unsigned seed = 2024;

static float rnd(void)
{
    seed = seed * 1664525u + 1013904223u;
    return (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static int64_t numel(const dl_type *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= t->dim[d].c;
    return n;
}

/* The epilogue's record: how often each row was passed, and the row's values at that moment. */
typedef struct seen {
    const float   *out;
    float         *snap;
    atomic_int    *count;
    int64_t        W, rows, row0;
    atomic_int     bad;     /* rows outside [row0, row0 + rows) */
} seen;

static void record(void *ctx, int64_t r0, int64_t r1)
{
    seen *s = ctx;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = r - s->row0;
        if (i < 0 || i >= s->rows) {
            atomic_fetch_add(&s->bad, 1);
            continue;
        }
        atomic_fetch_add(&s->count[i], 1);
        memcpy(s->snap + i * s->W, s->out + i * s->W, sizeof(float) * (size_t)s->W);
    }
}

static bool close_to(float got, float want)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return got == want || fabs((double)got - (double)want) <= 2e-5 * fmax(fabs((double)want), 1.0);
}

/* One op of f through cg_conv_run on g and pool against cg_ref_op. */
static void check_op(const dl_func *f, cg_gemm *g, rt_pool *pool, const char *gname)
{
    const dl_op *op = f->first;
    bool ties = !strncmp(f->name, "ties", 4);
    cg_tensor in[3], out = {.type = op->res[0].type}, ref = {.type = op->res[0].type};
    for (int i = 0; i < op->nin; i++) {
        in[i] = (cg_tensor){.type = op->in[i]->type};
        int64_t n = numel(&in[i].type);
        float *p = malloc(sizeof *p * (size_t)(n ? n : 1));
        for (int64_t e = 0; e < n; e++) {
            float v = rnd();
            if (ties && i == op->nin - 1)   /* the pooled input: ties, NaN, -inf, runs of -inf */
                v = e % 23 == 5 ? NAN : e % 19 == 7 || e / 40 % 17 == 3 ? -INFINITY : (float)(int)(v * 3);
            p[e] = v;
        }
        in[i].data = p;
    }
    int64_t n = numel(&out.type), W = out.type.dim[out.type.rank - 1].c, rows = W ? n / W : 0;
    out.data = malloc(sizeof(float) * (size_t)(n ? n : 1));
    ref.data = malloc(sizeof(float) * (size_t)(n ? n : 1));
    float *snap = malloc(sizeof(float) * (size_t)(n ? n : 1));
    atomic_int *count = calloc((size_t)(rows ? rows : 1), sizeof *count);
    for (int64_t e = 0; e < n; e++)
        ((float *)out.data)[e] = snap[e] = NAN;
    seen s = {.out = out.data, .snap = snap, .count = count, .W = W, .rows = rows, .row0 = 7};
    cg_gemm_epilogue epi = {record, &s, 7};
    char err[512];
    bool ran = cg_conv_run(g, pool, op, in, &out, &epi, err, sizeof err);
    CHECK(ran);
    CHECK(cg_ref_op(op, in, &ref, err, sizeof err));
    const float *got = out.data, *want = ref.data;
    int bad = 0;
    for (int64_t e = 0; ran && e < n && bad < 3; e++)
        if (!close_to(got[e], want[e])) {
            bad++, check_failures++;
            fprintf(stderr, "@%s, %s, %d threads: element %lld is %.9g, reference %.9g\n", f->name, gname,
                    pool ? rt_pool_threads(pool) : 0, (long long)e, got[e], want[e]);
        }
    for (int64_t r = 0; ran && r < rows && bad < 3; r++)
        if (atomic_load(&count[r]) != 1 || memcmp(snap + r * W, got + r * W, sizeof(float) * (size_t)W)) {
            bad++, check_failures++;
            fprintf(stderr, "@%s, %s, %d threads: epilogue row %lld passed %d times, or before it was final\n",
                    f->name, gname, pool ? rt_pool_threads(pool) : 0, (long long)r, atomic_load(&count[r]));
        }
    CHECK_EQ_INT(atomic_load(&s.bad), 0);
    for (int i = 0; i < op->nin; i++)
        free(in[i].data);
    free(out.data);
    free(ref.data);
    free(snap);
    free(count);
}

/* The scratch in a gemm only grows: a smaller request gets the same memory. */
static void check_scratch(cg_gemm *g)
{
    void *a = cg_gemm_scratch_acquire(g, 1 << 20);
    CHECK(a != NULL && (uintptr_t)a % 64 == 0);
    cg_gemm_scratch_release(g);
    void *b = cg_gemm_scratch_acquire(g, 1000);
    CHECK(b == a);
    cg_gemm_scratch_release(g);
}

int main(void)
{
    char err[512];
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = sup_diag_add_source(diag, "conv.dlir", cases, strlen(cases));
    dl_module *m = ir_parse(name, cases, strlen(cases), diag);
    cg_jit *j = m ? cg_jit_create(NULL, err, sizeof err) : NULL;
    CHECK(j != NULL);
    if (!j)
        return check_result("test_conv");
    cg_gemm_params def = cg_gemm_default_params(j), odd = def;
    odd.mr = 5, odd.nr = def.vec, odd.kc = 40;   /* narrow tiles, short depth blocks */
    const cg_gemm_params *ps[] = {&def, &odd};
    const char *pnames[] = {"default micro-kernel", "5 x vec micro-kernel, kc 40"};
    rt_pool *pools[] = {NULL, rt_pool_create(1, err, sizeof err), rt_pool_create(2, err, sizeof err)};
    CHECK(pools[1] && pools[2]);
    int ops = 0;
    for (size_t p = 0; p < sizeof ps / sizeof ps[0]; p++) {
        cg_gemm *g = cg_gemm_create(j, ps[p], err, sizeof err);
        CHECK(g != NULL);
        for (int t = 0; g && t < 3; t++)
            for (const dl_func *f = m->first; f; f = f->next, ops++)
                check_op(f, g, pools[t], pnames[p]);
        if (g)
            check_scratch(g);
        cg_gemm_destroy(g);
    }
    printf("conv: %d runs of convolutions and pooling checked against the reference\n", ops);
    for (int t = 1; t < 3; t++)
        rt_pool_destroy(pools[t]);
    cg_jit_destroy(j);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return check_result("test_conv");
}
