/* dlc's sgemm (codegen/cpu/gemm.c) against OpenBLAS's cblas_sgemm in the same process, on square
 * sizes, row-major, C = A @ B. Prints GFLOP/s at the median time of each and the ratio
 * dlc / OpenBLAS. Run it through bench/run_gemm.sh, which unsets OPENBLAS_CORETYPE and pins the
 * 1-thread run. `bench_gemm THREADS [SIZE ...]`; env BENCH_SAMPLES (default 7), DLC_GEMM
 * ("MR NR KC MC NC", to try other blocking parameters). Build:
 * `ninja bench_gemm` (needs libopenblas-dev). */
#include "bench/bench.h"
#include "codegen/cpu/gemm.h"

#include <cblas.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *openblas_get_corename(void);
void  openblas_set_num_threads(int);

typedef struct job {
    int64_t  n;
    float   *a, *b, *c;
    cg_gemm *g;
    rt_pool *pool;
} job;

typedef void run_fn(job *x);

static void run_dlc(job *x)
{
    cg_gemm_run(x->g, x->pool, x->n, x->n, x->n, x->a, x->n, x->b, x->n, x->c, x->n);
}

static void run_openblas(job *x)
{
    int n = (int)x->n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, x->a, n, x->b, n, 0.0f,
                x->c, n);
}

/* Median seconds per call: warm up for 0.2 s, then samples of back-to-back calls lasting at least
 * 20 ms each (the protocol of the peer benchmarks in bench/README.md). */
static double time_median(run_fn *fn, job *x, int samples)
{
    double t0 = now_s(), t;
    long calls = 0;
    do {
        fn(x);
        calls++;
        t = now_s() - t0;
    } while (t < 0.2 || calls < 2);
    long inner = (long)(0.02 / (t / (double)calls)) + 1;
    double s[101];
    for (int i = 0; i < samples; i++) {
        double a = now_s();
        for (long k = 0; k < inner; k++)
            fn(x);
        s[i] = (now_s() - a) / (double)inner;
    }
    qsort(s, (size_t)samples, sizeof *s, cmp_double);
    return s[samples / 2];
}

static float *filled(int64_t n, unsigned seed)
{
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    return p;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    const char *env = getenv("BENCH_SAMPLES");
    int samples = env ? atoi(env) : 7;
    if (threads < 1 || samples < 1 || samples > 101) {
        fprintf(stderr, "usage: bench_gemm THREADS [SIZE ...]\n");
        return 2;
    }
    char err[512];
    cg_jit *j = cg_jit_create(NULL, err, sizeof err);
    /* DLC_GEMM="mr nr kc mc nc" overrides the defaults, for tuning by hand. */
    cg_gemm_params gp = j ? cg_gemm_default_params(j) : (cg_gemm_params){0};
    const char *override = getenv("DLC_GEMM");
    if (override)
        sscanf(override, "%d %d %d %d %d", &gp.mr, &gp.nr, &gp.kc, &gp.mc, &gp.nc);
    cg_gemm *g = j ? cg_gemm_create(j, &gp, err, sizeof err) : NULL;
    rt_pool *pool = g ? rt_pool_create(threads, err, sizeof err) : NULL;
    if (!pool) {
        fprintf(stderr, "bench_gemm: %s\n", err);
        return 1;
    }
    openblas_set_num_threads(threads);
    const cg_gemm_params *p = cg_gemm_get_params(g);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("# dlc micro-kernel %dx%d (vec %d), kc %d mc %d nc %d; OpenBLAS core %s%s%s; %d thread%s, "
           "median of %d samples\n", p->mr, p->nr, p->vec, p->kc, p->mc, p->nc,
           openblas_get_corename(), ct ? " (OPENBLAS_CORETYPE=" : "", ct ? ct : "", threads,
           threads > 1 ? "s" : "", samples);
    if (ct)
        printf("%s", ")\n# warning: OPENBLAS_CORETYPE is set; run through bench/run_gemm.sh\n");
    printf("%6s %8s %14s %14s %10s %12s\n", "size", "threads", "dlc GFLOP/s", "OpenBLAS", "ratio",
           "max |diff|");
    static const int64_t sizes[] = {256, 512, 1024, 2048};
    int nsizes = argc > 2 ? argc - 2 : 4;
    for (int s = 0; s < nsizes; s++) {
        int64_t n = argc > 2 ? atoll(argv[2 + s]) : sizes[s];
        job x = {.n = n, .a = filled(n * n, 1), .b = filled(n * n, 2), .c = filled(n * n, 3),
                 .g = g, .pool = pool};
        float *ref = filled(n * n, 4);
        /* The two must agree before their speeds mean anything. */
        run_dlc(&x);
        memcpy(ref, x.c, (size_t)(n * n) * sizeof *ref);
        run_openblas(&x);
        double diff = 0;
        for (int64_t i = 0; i < n * n; i++)
            diff = fmax(diff, fabs((double)ref[i] - (double)x.c[i]));
        double flop = 2.0 * (double)n * (double)n * (double)n;
        double td = time_median(run_dlc, &x, samples);
        double to = time_median(run_openblas, &x, samples);
        printf("%6lld %8d %14.1f %14.1f %10.2f %12.2g\n", (long long)n, threads, flop / td / 1e9,
               flop / to / 1e9, to / td, diff);
        fflush(stdout);
        free(x.a);
        free(x.b);
        free(x.c);
        free(ref);
    }
    rt_pool_destroy(pool);
    cg_gemm_destroy(g);
    cg_jit_destroy(j);
    return 0;
}
