/* What the benchmarks share: a monotonic clock, the comparison qsort needs to take medians, and
 * reproducible random inputs. */
#ifndef DLC_BENCH_BENCH_H
#define DLC_BENCH_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n floats uniform in [-1, 1) from a seeded LCG (malloc'd; NULL when memory is short). */
static inline float *bench_random(int64_t n, unsigned seed)
{
    float *p = malloc(sizeof *p * (size_t)(n ? n : 1));
    for (int64_t i = 0; p && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    return p;
}

#endif
