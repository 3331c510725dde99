/* dlc's native convolutions and pooling (codegen/cpu/conv.c) against the reference interpreter's
 * (cg_ref_op: direct loops, float64 sums), one op at a time through cg_conv_run, on two sets of
 * layers:
 *   resnet  a ResNet-like 3x3 layer: N=8, C=64, H=W=56, O=64, padding 1, stride 1, with bias;
 *   cnn     every convolution and pooling op of the small CNN's training step
 *           (bench/models/cnn.dl, batch 64), forward and backward.
 * Prints the median time of each op, GFLOP/s where it multiplies (as --report counts FLOPs), the
 * reference's time and the speed-up, after checking that the two agree (exit 1 if not).
 * `bench_conv [THREADS] [resnet|cnn] [LAYER]` (default: every CPU, resnet, every layer); env
 * BENCH_SAMPLES (default 7; the reference takes 3 at most), BENCH_REF=0 skips the reference (for
 * profiling). Build: `ninja bench_conv`. */
#include "bench/bench.h"
#include "codegen/cpu/conv.h"
#include "support/diag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *resnet =
    "func @layer(%x: f32[8, 64, 56, 56], %w: f32[64, 64, 3, 3], %b: f32[64]) -> (f32[8, 64, 56, 56]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n";

/* The CNN's step as the decompose pass leaves it: its ops in order, each on arguments. */
static const char *cnn =
    "func @conv1(%x: f32[64, 1, 28, 28], %w: f32[16, 1, 3, 3], %b: f32[16]) -> (f32[64, 16, 28, 28]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n"
    "func @pool1(%x: f32[64, 16, 28, 28]) -> (f32[64, 16, 14, 14]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @conv2(%x: f32[64, 16, 14, 14], %w: f32[32, 16, 3, 3], %b: f32[32]) -> (f32[64, 32, 14, 14]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n"
    "func @pool2(%x: f32[64, 32, 14, 14]) -> (f32[64, 32, 7, 7]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @pool2_grad(%dy: f32[64, 32, 7, 7], %x: f32[64, 32, 14, 14]) -> (f32[64, 32, 14, 14]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @conv2_grad_x(%dy: f32[64, 32, 14, 14], %w: f32[32, 16, 3, 3]) -> (f32[64, 16, 14, 14]) {\n"
    "  %0 = conv_transpose2d %dy, %w {padding=[1]}\n  return %0\n}\n"
    "func @conv2_grad_w(%x: f32[64, 16, 14, 14], %dy: f32[64, 32, 14, 14]) -> (f32[32, 16, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {padding=[1], weight_shape=[32, 16, 3, 3]}\n  return %0\n}\n"
    "func @pool1_grad(%dy: f32[64, 16, 14, 14], %x: f32[64, 16, 28, 28]) -> (f32[64, 16, 28, 28]) {\n"
    "  %0 = max_pool2d_grad %dy, %x {kernel_size=[2]}\n  return %0\n}\n"
    "func @conv1_grad_w(%x: f32[64, 1, 28, 28], %dy: f32[64, 16, 28, 28]) -> (f32[16, 1, 3, 3]) {\n"
    "  %0 = conv2d_grad_weight %x, %dy {padding=[1], weight_shape=[16, 1, 3, 3]}\n  return %0\n}\n";

static int64_t numel(const dl_type *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= t->dim[d].c;
    return n;
}

static cg_tensor tensor(const dl_value *v, unsigned seed)
{
    cg_tensor t = {.type = v->type};
    t.data = bench_random(numel(&t.type), seed);
    return t;
}

/* FLOPs as --report counts them (docs/codegen.md); 0 for pooling. */
static double flops(const dl_op *op, const cg_tensor *in, const cg_tensor *out)
{
    const dl_dim *w = in[1].type.dim;
    switch (op->code) {
    case DL_OP_CONV2D: return 2.0 * (double)numel(&out->type) * (double)(w[1].c * w[2].c * w[3].c);
    case DL_OP_CONV_TRANSPOSE2D: return 2.0 * (double)numel(&in[0].type) * (double)(w[1].c * w[2].c * w[3].c);
    case DL_OP_CONV2D_GRAD_WEIGHT:
        return 2.0 * (double)numel(&in[1].type) * (double)(out->type.dim[1].c * out->type.dim[2].c * out->type.dim[3].c);
    default: return 0;
    }
}

/* Times one op; false when it fails or disagrees with the reference. */
static bool bench_op(cg_gemm *g, rt_pool *pool, const dl_func *f, int samples, double *total)
{
    const dl_op *op = f->first;
    char err[512];
    cg_tensor in[3], out = tensor(&op->res[0], 0), ref = tensor(&op->res[0], 0);
    for (int i = 0; i < op->nin; i++)
        in[i] = tensor(op->in[i], 17u + (unsigned)i);
    double tn[101], tr[101];
    const char *want_ref = getenv("BENCH_REF");
    int nref = want_ref && !strcmp(want_ref, "0") ? 0 : samples < 3 ? samples : 3;
    for (int s = -1; s < samples; s++) {      /* s = -1: a warm-up */
        double t0 = now_s();
        if (!cg_conv_run(g, pool, op, in, &out, NULL, err, sizeof err)) {
            fprintf(stderr, "bench_conv: %s\n", err);
            return false;
        }
        if (s >= 0)
            tn[s] = now_s() - t0;
    }
    for (int s = 0; s < nref; s++) {
        double t0 = now_s();
        if (!cg_ref_op(op, in, &ref, err, sizeof err)) {
            fprintf(stderr, "bench_conv: %s\n", err);
            return false;
        }
        tr[s] = now_s() - t0;
    }
    double diff = 0;
    for (int64_t i = 0, n = nref ? numel(&out.type) : 0; i < n; i++)
        diff = fmax(diff, fabs((double)((float *)out.data)[i] - (double)((float *)ref.data)[i]) /
                              fmax(fabs((double)((float *)ref.data)[i]), 1.0));
    qsort(tn, (size_t)samples, sizeof *tn, cmp_double);
    qsort(tr, (size_t)nref, sizeof *tr, cmp_double);
    double mn = tn[samples / 2], mr = nref ? tr[nref / 2] : NAN, fl = flops(op, in, &out);
    *total += mn;
    printf("%-14s %-20s %9.3f ", f->name, ir_op_info(op->code)->name, mn * 1e3);
    if (fl > 0)
        printf("%9.1f", fl / mn / 1e9);
    else
        printf("%9s", "-");
    printf(" %10.2f %8.0fx %9.2g\n", mr * 1e3, mr / mn, diff);
    for (int i = 0; i < op->nin; i++)
        free(in[i].data);
    free(out.data);
    free(ref.data);
    return diff < 1e-4;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *set = argc > 2 ? argv[2] : "resnet", *only = argc > 3 ? argv[3] : NULL;
    const char *env = getenv("BENCH_SAMPLES");
    int samples = env ? atoi(env) : 7;
    if (samples < 1 || samples > 101 || (strcmp(set, "resnet") && strcmp(set, "cnn"))) {
        fprintf(stderr, "usage: bench_conv [THREADS] [resnet|cnn] [LAYER]; BENCH_SAMPLES from 1 to 101\n");
        return 2;
    }
    const char *text = strcmp(set, "cnn") ? resnet : cnn;
    char err[512];
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = sup_diag_add_source(diag, "conv.dlir", text, strlen(text));
    dl_module *m = ir_parse(name, text, strlen(text), diag);
    cg_jit *j = m ? cg_jit_create(NULL, err, sizeof err) : NULL;
    cg_gemm *g = j ? cg_gemm_create(j, NULL, err, sizeof err) : NULL;
    rt_pool *pool = g ? rt_pool_create(threads, err, sizeof err) : NULL;
    if (!pool) {
        fprintf(stderr, "bench_conv: %s\n", m ? err : "the IR does not parse");
        return 1;
    }
    printf("# %s, %d thread%s, median of %d (reference: of %d)\n", set, rt_pool_threads(pool),
           rt_pool_threads(pool) > 1 ? "s" : "", samples, samples < 3 ? samples : 3);
    printf("%-14s %-20s %9s %9s %10s %9s %9s\n", "layer", "op", "ms", "GFLOP/s", "ref ms", "speed-up",
           "max diff");
    bool ok = true;
    double total = 0;
    for (const dl_func *f = m->first; f; f = f->next)
        if (!only || !strcmp(f->name, only))
            ok &= bench_op(g, pool, f, samples, &total);
    printf("%-35s %9.3f\n", "total", total * 1e3);
    rt_pool_destroy(pool);
    cg_gemm_destroy(g);
    cg_jit_destroy(j);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return ok ? 0 : 1;
}
