/* The runtime's thread pool: compiled kernels split their outer loops across it. Threads are
 * created once per pool; a call wakes the workers (who spin briefly before sleeping, so calls in
 * quick succession are cheap), the calling thread works too, and the call returns when the whole
 * range is done. pthreads only. */
#ifndef DLC_RUNTIME_POOL_H
#define DLC_RUNTIME_POOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_pool rt_pool;

/* fn runs on [begin, end) as thread `thread` (0 = the caller, 1..threads-1 the workers), so a
 * kernel can keep per-thread scratch indexed by it. */
typedef void rt_pool_fn(void *ctx, int64_t begin, int64_t end, int thread);

/* A pool of `nthreads` threads counting the caller. nthreads <= 0 means the default: the env var
 * DLC_NUM_THREADS if set, else the CPUs this process may run on (sched_getaffinity). NULL with a
 * message in err on failure. The caller owns the pool and frees it with rt_pool_destroy. */
rt_pool *rt_pool_create(int nthreads, char *err, size_t errlen);
void     rt_pool_destroy(rt_pool *p);
int      rt_pool_threads(const rt_pool *p);

/* Runs fn over [0, n) split into chunks; returns once every chunk is done. The chunk bounds
 * depend only on n and the thread count (so per-chunk results are reproducible); which thread
 * runs which chunk does not. A call made from inside fn on the same pool runs its range inline
 * on the calling thread; calls from several outside threads take turns. */
void rt_pool_run(rt_pool *p, int64_t n, rt_pool_fn *fn, void *ctx);

#endif
