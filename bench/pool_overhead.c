/* Overhead of one rt_pool_run call that does no work, on 1, 2 and (where the CPUs exist) 4
 * threads: what every parallel kernel pays before its first useful instruction. Prints the
 * median over several repetitions, in nanoseconds per call. Build: `ninja bench_pool`. */
#include "bench/bench.h"
#include "runtime/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

enum { CALLS = 100000, REPS = 9 };

static void empty_fn(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)ctx, (void)begin, (void)end, (void)thread;
}

int main(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    for (int threads = 1; threads <= 4; threads *= 2) {
        if (threads > cpus)
            break;
        char err[256];
        rt_pool *p = rt_pool_create(threads, err, sizeof err);
        if (!p) {
            fprintf(stderr, "bench_pool: %s\n", err);
            return 1;
        }
        double ns[REPS];
        for (int r = 0; r < REPS; r++) {
            double t0 = now_s();
            for (int i = 0; i < CALLS; i++)
                rt_pool_run(p, 1024, empty_fn, NULL);   /* n large enough to use every thread */
            ns[r] = (now_s() - t0) * 1e9 / CALLS;
        }
        qsort(ns, REPS, sizeof *ns, cmp_double);
        printf("rt_pool_run, empty, %d thread%s: median %.0f ns/call (min %.0f, max %.0f; %d x %d calls)\n",
               threads, threads > 1 ? "s" : "", ns[REPS / 2], ns[0], ns[REPS - 1], REPS, CALLS);
        rt_pool_destroy(p);
    }
    return 0;
}
