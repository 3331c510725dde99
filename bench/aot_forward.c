/* The digits MLP through its AOT library (`dlc examples/digits/train.dl -o libdigits.so`):
 * microseconds per mlp_forward call at several batch sizes, the median of BENCH_SAMPLES samples,
 * each at least 20 ms of back-to-back calls after a warm-up. bench/run_aot.sh builds the library,
 * this program and the PyTorch side (bench/aot.py), and prints the ratios.
 *
 *     aot_forward WEIGHTS.safetensors BATCH...        (prints "BATCH us_per_call") */
#include "bench/bench.h"
#include "libdigits.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s WEIGHTS.safetensors BATCH...\n", argv[0]);
        return 2;
    }
    char err[512];
    mlp *m = mlp_create(argv[1], err, sizeof err);
    if (!m) {
        fprintf(stderr, "mlp_create: %s\n", err);
        return 1;
    }
    int samples = getenv("BENCH_SAMPLES") ? atoi(getenv("BENCH_SAMPLES")) : 7;
    if (samples < 1 || samples > 99)
        samples = 7;
    for (int a = 2; a < argc; a++) {
        int64_t n = atoll(argv[a]);
        float *x = bench_random(n * 64, 1), *y = malloc(sizeof *y * (size_t)(n * 10 + 1));
        if (n < 1 || !x || !y) {
            fprintf(stderr, "bad batch size '%s' or out of memory\n", argv[a]);
            return 1;
        }
        double t_end = now_s() + 0.2, times[99];
        while (now_s() < t_end)                     /* warm-up: caches, page faults, the pool */
            if (mlp_forward(m, n, x, y) != DLC_OK) {
                fprintf(stderr, "mlp_forward: %s\n", mlp_last_error(m));
                return 1;
            }
        for (int s = 0; s < samples; s++) {
            int64_t calls = 0;
            double t0 = now_s(), t;
            do {
                mlp_forward(m, n, x, y);
                calls++;
            } while ((t = now_s()) - t0 < 0.02);
            times[s] = (t - t0) / (double)calls;
        }
        qsort(times, (size_t)samples, sizeof *times, cmp_double);
        printf("%lld %.3f\n", (long long)n, 1e6 * times[samples / 2]);
        free(x);
        free(y);
    }
    mlp_destroy(m);
    return 0;
}
