/* dlc's fused attention kernel (codegen/cpu/attention.c: FlashAttention-style, one thread) against
 * the unfused formulation through dlc's own kernels (q @ k^T on the gemm, scaled, masked by an
 * added -inf mask when causal, softmax, @ v on the gemm: the L x S scores in memory, the gemm on
 * the thread pool). q, k, v are [B*H, L, E] = [8, 256, 64] f32, causal and not. Prints GFLOP/s
 * (4*B*H*L*S*E per call, halved for causal: the work the fused kernel needs) at the median time
 * of each and at its fastest sample, and checks that the two agree. `bench_attention`; env BENCH_SAMPLES (default 7),
 * DLC_NUM_THREADS for the unfused gemm's threads. Build: `ninja bench_attention`. */
#include "bench/bench.h"
#include "codegen/cpu/cpu.h"
#include "support/diag.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BH = 8, L = 256, E = 64 };

static const char *text =
    "func @fused(%q: f32[8, 256, 64], %k: f32[8, 256, 64], %v: f32[8, 256, 64]) -> (f32[8, 256, 64]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v\n  return %0\n}\n"
    "func @fused_causal(%q: f32[8, 256, 64], %k: f32[8, 256, 64], %v: f32[8, 256, 64]) -> (f32[8, 256, 64]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v {causal=true}\n  return %0\n}\n"
    "func @unfused(%q: f32[8, 256, 64], %k: f32[8, 256, 64], %v: f32[8, 256, 64], %m: f32[256, 256])\n"
    "    -> (f32[8, 256, 64]) {\n"
    "  %0 = transpose %k {dim0=1, dim1=2}\n  %1 = matmul %q, %0\n  %2 = constant {value=[0.125]} : f32\n"
    "  %3 = mul %1, %2\n  %4 = add %3, %m\n  %5 = softmax %4 {dim=-1}\n  %6 = matmul %5, %v\n  return %6\n}\n";

static cg_tensor tensor(const dl_value *v, unsigned seed)
{
    cg_tensor t = {.type = v->type};
    int64_t n = 1;
    for (int d = 0; d < t.type.rank; d++)
        n *= t.type.dim[d].c;
    t.data = bench_random(n, seed);
    return t;
}

/* The median seconds per call of f over `samples` samples of at least 20 ms each, and the
 * fastest sample in *best (on a shared machine the better estimate); *out gets the last call's
 * result. */
static double time_fn(const dl_func *f, cg_tensor *args, int samples, cg_tensor *out, double *best)
{
    char err[512];
    cg_cpu *p = cg_cpu_compile(f, true, err, sizeof err);
    if (!p) {
        fprintf(stderr, "bench_attention: %s\n", err);
        exit(1);
    }
    double t[101];
    for (int s = -1; s < samples; s++) {     /* s = -1: a warm-up */
        int calls = 0;
        double t0 = now_s(), el;
        do {
            free(out->data);
            if (!cg_cpu_run(p, args, out, err, sizeof err)) {
                fprintf(stderr, "bench_attention: %s\n", err);
                exit(1);
            }
            calls++;
        } while ((el = now_s() - t0) < 0.02);
        if (s >= 0)
            t[s] = el / calls;
    }
    cg_cpu_destroy(p);
    qsort(t, (size_t)samples, sizeof *t, cmp_double);
    *best = t[0];
    return t[samples / 2];
}

static double max_diff(const cg_tensor *a, const cg_tensor *b)
{
    double d = 0;
    for (int64_t i = 0; i < (int64_t)BH * L * E; i++)
        d = fmax(d, fabs((double)((float *)a->data)[i] - (double)((float *)b->data)[i]));
    return d;
}

int main(void)
{
    const char *env = getenv("BENCH_SAMPLES");
    int samples = env ? atoi(env) : 7;
    if (samples < 1 || samples > 101) {
        fprintf(stderr, "usage: bench_attention; BENCH_SAMPLES from 1 to 101\n");
        return 2;
    }
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = sup_diag_add_source(diag, "attention.dlir", text, strlen(text));
    dl_module *m = ir_parse(name, text, strlen(text), diag);
    if (!m) {
        fprintf(stderr, "bench_attention: the IR does not parse\n");
        return 1;
    }
    const dl_func *unfused = ir_func_find(m, "unfused");
    cg_tensor args[4];
    for (int i = 0; i < 4; i++)
        args[i] = tensor(unfused->args[i], 17u + (unsigned)i);
    double flop = 4.0 * BH * L * (double)L * E;
    printf("# attention q, k, v [%d, %d, %d] f32, scale 1/8; GFLOP/s as 4*B*H*L*S*E (causal: half)\n",
           BH, L, E);
    printf("%-8s %10s %9s %10s %10s %9s %10s %9s %11s\n", "", "fused ms", "GFLOP/s", "best GF/s",
           "unfused ms", "GFLOP/s", "best GF/s", "speed-up", "max |diff|");
    int bad = 0;
    for (int causal = 0; causal < 2; causal++) {
        float *mask = args[3].data;
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                mask[i * L + j] = causal && j > i ? -INFINITY : 0;
        cg_tensor fo = {0}, uo = {0};
        double bf, bu;
        double tf = time_fn(ir_func_find(m, causal ? "fused_causal" : "fused"), args, samples, &fo, &bf);
        double tu = time_fn(unfused, args, samples, &uo, &bu);
        double fl = causal ? flop / 2 : flop, diff = max_diff(&fo, &uo);
        printf("%-8s %10.3f %9.1f %10.1f %10.3f %9.1f %10.1f %8.2fx %11.2g\n", causal ? "causal" : "full",
               tf * 1e3, fl / tf / 1e9, fl / bf / 1e9, tu * 1e3, fl / tu / 1e9, fl / bu / 1e9, tu / tf, diff);
        bad |= !(diff < 1e-4);
        free(fo.data);
        free(uo.data);
    }
    for (int i = 0; i < 4; i++)
        free(args[i].data);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return bad;
}
