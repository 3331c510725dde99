/* dlc's native conv2d (codegen/cpu/conv.c: im2col + sgemm per image and group) against the
 * reference interpreter's (cg_ref_op: direct loops, float64 sums) on a ResNet-like 3x3 layer:
 * N=8, C=64, H=W=56, O=64, padding 1, stride 1, with bias. Prints GFLOP/s (2*N*O*OH*OW*C*KH*KW
 * per call) at the median time of each and the speed-up, after checking that the two agree.
 * `bench_conv [THREADS]` (default: every CPU); env BENCH_SAMPLES (default 7; the reference takes
 * 3 at most). Build: `ninja bench_conv`. */
#include "bench/bench.h"
#include "codegen/cpu/conv.h"
#include "support/diag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *text =
    "func @layer(%x: f32[8, 64, 56, 56], %w: f32[64, 64, 3, 3], %b: f32[64]) -> (f32[8, 64, 56, 56]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  return %0\n}\n";

static cg_tensor tensor(const dl_value *v, unsigned seed)
{
    cg_tensor t = {.type = v->type};
    int64_t n = 1;
    for (int d = 0; d < t.type.rank; d++)
        n *= t.type.dim[d].c;
    t.data = bench_random(n, seed);
    return t;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    const char *env = getenv("BENCH_SAMPLES");
    int samples = env ? atoi(env) : 7;
    if (samples < 1 || samples > 101) {
        fprintf(stderr, "usage: bench_conv [THREADS]; BENCH_SAMPLES from 1 to 101\n");
        return 2;
    }
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
    const dl_op *op = ir_func_find(m, "layer")->first;
    cg_tensor in[3], out = tensor(&op->res[0], 0), ref = tensor(&op->res[0], 0);
    for (int i = 0; i < 3; i++)
        in[i] = tensor(op->in[i], 17u + (unsigned)i);
    const dl_dim *xd = in[0].type.dim, *yd = out.type.dim, *wd = in[1].type.dim;
    double flop = 2.0 * (double)(yd[0].c * yd[1].c * yd[2].c * yd[3].c) * (double)(wd[1].c * wd[2].c * wd[3].c);
    int64_t n = yd[0].c * yd[1].c * yd[2].c * yd[3].c;

    double tn[101], tr[101];
    int nref = samples < 3 ? samples : 3;
    for (int s = -1; s < samples; s++) {      /* s = -1: a warm-up */
        double t0 = now_s();
        if (!cg_conv_run(g, pool, op, in, &out, err, sizeof err)) {
            fprintf(stderr, "bench_conv: %s\n", err);
            return 1;
        }
        if (s >= 0)
            tn[s] = now_s() - t0;
    }
    for (int s = 0; s < nref; s++) {
        double t0 = now_s();
        if (!cg_ref_op(op, in, &ref, err, sizeof err)) {
            fprintf(stderr, "bench_conv: %s\n", err);
            return 1;
        }
        tr[s] = now_s() - t0;
    }
    double diff = 0;
    for (int64_t i = 0; i < n; i++)
        diff = fmax(diff, fabs((double)((float *)out.data)[i] - (double)((float *)ref.data)[i]) /
                              fmax(fabs((double)((float *)ref.data)[i]), 1.0));
    qsort(tn, (size_t)samples, sizeof *tn, cmp_double);
    qsort(tr, (size_t)nref, sizeof *tr, cmp_double);
    double mn = tn[samples / 2], mr = tr[nref / 2];
    printf("# conv2d x [%lld, %lld, %lld, %lld], w [%lld, %lld, %lld, %lld], padding 1, bias; %d thread%s; "
           "%.2f GFLOP per call\n", (long long)xd[0].c, (long long)xd[1].c, (long long)xd[2].c,
           (long long)xd[3].c, (long long)wd[0].c, (long long)wd[1].c, (long long)wd[2].c,
           (long long)wd[3].c, rt_pool_threads(pool), rt_pool_threads(pool) > 1 ? "s" : "", flop / 1e9);
    printf("%-22s %10s %12s\n", "", "ms", "GFLOP/s");
    printf("%-22s %10.2f %12.1f   (median of %d)\n", "native (im2col+gemm)", mn * 1e3, flop / mn / 1e9, samples);
    printf("%-22s %10.2f %12.2f   (median of %d)\n", "reference (cg_ref_op)", mr * 1e3, flop / mr / 1e9, nref);
    printf("speed-up %.0fx; max relative difference %.2g\n", mr / mn, diff);
    for (int i = 0; i < 3; i++)
        free(in[i].data);
    free(out.data);
    free(ref.data);
    rt_pool_destroy(pool);
    cg_gemm_destroy(g);
    cg_jit_destroy(j);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return diff < 1e-4 ? 0 : 1;
}
