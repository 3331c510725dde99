/* The thread pool: every index of [0, n) is visited exactly once for 1, 2, 4 threads and awkward
 * n, thread indices stay in range, many runs in a row, nested and concurrent callers, and the
 * default thread count. Built with -fsanitize=thread by hand to look for races (see report). */
#define _GNU_SOURCE   /* sched_getaffinity, CPU_COUNT, setenv */
#include "runtime/pool.h"
#include "tests/unit/check.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct sum_ctx {
    int              nthreads;
    unsigned char   *seen;          /* one byte per index, each written by one chunk only */
    _Atomic int64_t  sum;           /* of the indices */
    atomic_int       calls;
    atomic_int       bad_thread;    /* a thread index out of range */
    atomic_int       bad_range;     /* an empty or reversed chunk */
    atomic_int       used[8];       /* chunks per thread index */
} sum_ctx;

static void sum_fn(void *vctx, int64_t begin, int64_t end, int thread)
{
    sum_ctx *c = vctx;
    if (thread < 0 || thread >= c->nthreads)
        atomic_fetch_add(&c->bad_thread, 1);
    if (begin >= end)
        atomic_fetch_add(&c->bad_range, 1);
    int64_t s = 0;
    for (int64_t i = begin; i < end; i++) {
        s += i;
        c->seen[i]++;
    }
    atomic_fetch_add(&c->sum, s);
    atomic_fetch_add(&c->calls, 1);
    if (thread >= 0 && thread < 8)
        atomic_fetch_add(&c->used[thread], 1);
}

/* Runs sum_fn over [0, n) and checks that every index was visited exactly once. */
static void check_sum(rt_pool *p, int64_t n)
{
    sum_ctx c = {.nthreads = rt_pool_threads(p), .seen = calloc((size_t)n + 1, 1)};
    rt_pool_run(p, n, sum_fn, &c);
    CHECK_EQ_INT(atomic_load(&c.sum), n * (n - 1) / 2);
    int64_t once = 0;
    for (int64_t i = 0; i < n; i++)
        once += c.seen[i] == 1;
    CHECK_EQ_INT(once, n);
    CHECK_EQ_INT(atomic_load(&c.bad_thread), 0);
    CHECK_EQ_INT(atomic_load(&c.bad_range), 0);
    CHECK(n == 0 ? c.calls == 0 : c.calls >= 1 && c.calls <= 4 * c.nthreads);
    free(c.seen);
}

static void test_sums(void)
{
    static const int64_t ns[] = {0, 1, 2, 3, 5, 7, 8, 15, 16, 17, 101, 1000, 65537};
    for (int t = 1; t <= 4; t *= 2) {
        char err[256];
        rt_pool *p = rt_pool_create(t, err, sizeof err);
        CHECK(p != NULL);
        if (!p)
            continue;
        CHECK_EQ_INT(rt_pool_threads(p), t);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            check_sum(p, ns[i]);
        rt_pool_destroy(p);
    }
}

/* Many runs back to back, as kernels of a training step do; the workers really take part. */
static void test_repeated(void)
{
    char err[256];
    rt_pool *p = rt_pool_create(4, err, sizeof err);
    sum_ctx c = {.nthreads = 4, .seen = calloc(64, 1)};
    int64_t want = 0;
    for (int r = 0; r < 20000; r++) {
        int64_t n = 1 + r % 64;
        rt_pool_run(p, n, sum_fn, &c);
        want += n * (n - 1) / 2;
    }
    CHECK_EQ_INT(atomic_load(&c.sum), want);
    CHECK_EQ_INT(atomic_load(&c.bad_thread), 0);
    /* Workers took chunks (with 4 threads and 20000 runs, not all can fall to the caller). */
    CHECK(atomic_load(&c.used[1]) + atomic_load(&c.used[2]) + atomic_load(&c.used[3]) > 0);
    free(c.seen);
    rt_pool_destroy(p);
}

/* A chunk calling the same pool again runs that inner range inline on its own thread. */
typedef struct nest_ctx {
    rt_pool        *pool;
    _Atomic int64_t inner_sum;
    atomic_int      wrong_thread;
} nest_ctx;

typedef struct inner_ctx {
    nest_ctx *outer;
    int       thread;
} inner_ctx;

static void inner_fn(void *vctx, int64_t begin, int64_t end, int thread)
{
    inner_ctx *c = vctx;
    if (thread != c->thread)
        atomic_fetch_add(&c->outer->wrong_thread, 1);
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&c->outer->inner_sum, i);
}

static void outer_fn(void *vctx, int64_t begin, int64_t end, int thread)
{
    nest_ctx *c = vctx;
    for (int64_t i = begin; i < end; i++) {
        inner_ctx ic = {c, thread};
        rt_pool_run(c->pool, 10, inner_fn, &ic);
    }
}

static void test_nested(void)
{
    char err[256];
    rt_pool *p = rt_pool_create(4, err, sizeof err);
    nest_ctx c = {.pool = p};
    rt_pool_run(p, 33, outer_fn, &c);
    CHECK_EQ_INT(atomic_load(&c.inner_sum), 33 * 45);
    CHECK_EQ_INT(atomic_load(&c.wrong_thread), 0);
    rt_pool_destroy(p);
}

/* Two outside threads sharing one pool take turns. */
typedef struct caller_arg {
    rt_pool *pool;
    int64_t  got;
} caller_arg;

static void *caller_main(void *varg)
{
    caller_arg *a = varg;
    sum_ctx c = {.nthreads = rt_pool_threads(a->pool), .seen = calloc(100, 1)};
    for (int r = 0; r < 2000; r++)
        rt_pool_run(a->pool, 100, sum_fn, &c);
    a->got = atomic_load(&c.sum);
    free(c.seen);
    return NULL;
}

static void test_concurrent_callers(void)
{
    char err[256];
    rt_pool *p = rt_pool_create(2, err, sizeof err);
    caller_arg a[2] = {{p, 0}, {p, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, caller_main, &a[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(a[0].got, 2000 * 4950);
    CHECK_EQ_INT(a[1].got, 2000 * 4950);
    rt_pool_destroy(p);
}

static void test_default_threads(void)
{
    char err[256];
    unsetenv("DLC_NUM_THREADS");
    cpu_set_t set;
    CHECK(sched_getaffinity(0, sizeof set, &set) == 0);
    rt_pool *p = rt_pool_create(0, err, sizeof err);
    CHECK(p && rt_pool_threads(p) == CPU_COUNT(&set));
    rt_pool_destroy(p);

    setenv("DLC_NUM_THREADS", "3", 1);
    p = rt_pool_create(0, err, sizeof err);
    CHECK(p && rt_pool_threads(p) == 3);
    if (p)
        check_sum(p, 1001);
    rt_pool_destroy(p);
    p = rt_pool_create(2, err, sizeof err);      /* an explicit count wins */
    CHECK(p && rt_pool_threads(p) == 2);
    rt_pool_destroy(p);

    setenv("DLC_NUM_THREADS", "lots", 1);
    CHECK(rt_pool_create(0, err, sizeof err) == NULL && strstr(err, "DLC_NUM_THREADS"));
    setenv("DLC_NUM_THREADS", "0", 1);
    CHECK(rt_pool_create(0, err, sizeof err) == NULL && strstr(err, "got '0'"));
    unsetenv("DLC_NUM_THREADS");
    rt_pool_destroy(NULL);
}

int main(void)
{
    test_sums();
    test_repeated();
    test_nested();
    test_concurrent_callers();
    test_default_threads();
    return check_result("test_pool");
}
