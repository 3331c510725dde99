/* The thread pool (see pool.h). One run is a "generation": the caller publishes the job and
 * bumps `gen`; every worker sees the new generation, takes chunks from a shared counter until
 * none are left, and checks in by decrementing `remaining`. The caller returns only when all
 * workers have checked in, so no worker can still hold a pointer to this run's job when the next
 * one is published. Waiting spins for a short while first, then sleeps on a condition variable. */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT */
#include "runtime/pool.h"

#include "support/alloc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    CHUNKS_PER_THREAD = 4,      /* a little slack so a late thread's share is picked up by others */
    MAX_THREADS = 1024,
    SPIN_NS = 50 * 1000,        /* long enough to cover the gap between back-to-back kernels */
};

typedef struct worker {
    rt_pool  *pool;
    int       index;
    pthread_t thread;
} worker;

struct rt_pool {
    int             nthreads;       /* counting the caller */
    worker         *workers;        /* nthreads - 1 of them */
    pthread_mutex_t mu;             /* for sleeping on wake/done */
    pthread_cond_t  wake, done;
    pthread_mutex_t run_mu;         /* one outside caller at a time */
    /* Sleepers announce themselves, so a run pays for the mutex and the wake-up only when
     * someone actually sleeps (seq_cst on both sides: either the sleeper sees the new value or
     * the waker sees the sleeper). Each hot atomic has its own cache line. */
    _Alignas(64) _Atomic uint64_t gen;
    atomic_int      sleepers;       /* workers asleep (or about to be) on `wake` */
    _Alignas(64) atomic_int remaining;   /* workers yet to check in for this generation */
    atomic_int      caller_asleep;
    _Alignas(64) _Atomic int64_t next;   /* next chunk to take */
    /* The job (or `stop`) of the current generation, written before `gen` is bumped (release) and read
     * after it is seen (acquire). */
    bool            stop;
    rt_pool_fn     *fn;
    void           *ctx;
    int64_t         n, nchunks;
};

/* Set while a thread is working for a pool, so a nested call can be recognised. Initial-exec:
 * an AOT library, which carries the pool, then needs no __tls_get_addr from the loader. */
static _Thread_local const rt_pool *tl_pool __attribute__((tls_model("initial-exec")));
static _Thread_local int tl_index __attribute__((tls_model("initial-exec")));

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Chunk k of nchunks over [0, n): sizes differ by at most one. */
static void chunk_bounds(int64_t n, int64_t nchunks, int64_t k, int64_t *begin, int64_t *end)
{
    int64_t q = n / nchunks, r = n % nchunks;
    *begin = k * q + (k < r ? k : r);
    *end = *begin + q + (k < r);
}

static void take_chunks(rt_pool *p, int thread)
{
    for (;;) {
        int64_t k = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (k >= p->nchunks)
            return;
        int64_t b, e;
        chunk_bounds(p->n, p->nchunks, k, &b, &e);
        p->fn(p->ctx, b, e, thread);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    rt_pool *p = w->pool;
    tl_pool = p;
    tl_index = w->index;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g == seen) {
            int64_t until = now_ns() + SPIN_NS;
            for (int i = 1; (g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen; i++) {
                cpu_relax();
                if (i % 64 == 0 && now_ns() > until)
                    break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((g = atomic_load(&p->gen)) == seen)
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (p->stop)        /* written before the bump of `gen` we just acquired */
            return NULL;
        take_chunks(p, w->index);
        if (atomic_fetch_sub(&p->remaining, 1) == 1 && atomic_load(&p->caller_asleep)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* DLC_NUM_THREADS if set, else the CPUs in this process's affinity mask. */
static int default_threads(char *err, size_t errlen)
{
    const char *env = getenv("DLC_NUM_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (errno || *end || v < 1 || v > MAX_THREADS) {
            snprintf(err, errlen, "DLC_NUM_THREADS: expected a number of threads in 1..%d, got '%s'",
                     MAX_THREADS, env);
            return -1;
        }
        return (int)v;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n < MAX_THREADS ? n : MAX_THREADS) : 1;
}

/* Stops and joins the first `started` workers, then frees the pool. */
static void shut_down(rt_pool *p, int started)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    sup_free(p->workers);
    sup_free(p);
}

rt_pool *rt_pool_create(int nthreads, char *err, size_t errlen)
{
    if (nthreads <= 0 && (nthreads = default_threads(err, errlen)) < 0)
        return NULL;
    if (nthreads > MAX_THREADS) {
        snprintf(err, errlen, "thread pool: %d threads asked for, at most %d", nthreads, MAX_THREADS);
        return NULL;
    }
    rt_pool *p = sup_malloc(sizeof *p);
    worker *ws = sup_malloc(sizeof *ws * (size_t)(nthreads > 1 ? nthreads - 1 : 1));
    if (!p || !ws) {
        sup_free(p);
        sup_free(ws);
        snprintf(err, errlen, "thread pool: out of memory");
        return NULL;
    }
    memset(p, 0, sizeof *p);
    p->nthreads = nthreads;
    p->workers = ws;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_asleep, 0);
    atomic_init(&p->next, 0);
    for (int i = 0; i < nthreads - 1; i++) {
        ws[i].pool = p;
        ws[i].index = i + 1;
        int rc = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
        if (rc != 0) {
            snprintf(err, errlen, "thread pool: cannot start thread %d of %d: %s", i + 1, nthreads,
                     strerror(rc));
            shut_down(p, i);
            return NULL;
        }
    }
    return p;
}

void rt_pool_destroy(rt_pool *p)
{
    if (p)
        shut_down(p, p->nthreads - 1);
}

int rt_pool_threads(const rt_pool *p) { return p->nthreads; }

void rt_pool_run(rt_pool *p, int64_t n, rt_pool_fn *fn, void *ctx)
{
    if (n <= 0)
        return;
    /* One thread, one index, or a call from inside one of this pool's own chunks (whose
     * threads are all busy with the outer call): the range runs here, in one piece. */
    if (p->nthreads == 1 || n == 1 || tl_pool == p) {
        fn(ctx, 0, n, tl_pool == p ? tl_index : 0);
        return;
    }
    pthread_mutex_lock(&p->run_mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->nchunks = n < (int64_t)p->nthreads * CHUNKS_PER_THREAD ? n :
                                                                (int64_t)p->nthreads * CHUNKS_PER_THREAD;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->remaining, p->nthreads - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }

    const rt_pool *outer = tl_pool;   /* a chunk of another pool may be calling */
    int outer_index = tl_index;
    tl_pool = p;
    tl_index = 0;
    take_chunks(p, 0);
    tl_pool = outer;
    tl_index = outer_index;

    if (atomic_load_explicit(&p->remaining, memory_order_acquire) != 0) {
        int64_t until = now_ns() + SPIN_NS;
        for (int i = 1; atomic_load_explicit(&p->remaining, memory_order_acquire) != 0; i++) {
            cpu_relax();
            if (i % 64 == 0 && now_ns() > until)
                break;
        }
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_asleep, 1);
        while (atomic_load(&p->remaining) != 0)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_asleep, 0);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->run_mu);
}
