/* Instances of an AOT library are independent (SPEC section 8): THREADS instances of
 * tests/lit/aot/Inputs/tiny.dl's library, each trained and run in its own pthread at the same
 * time, give bit for bit what one instance gives alone. Each run takes STEPS training steps over
 * the batches in order and, after each, a forward pass over all the samples (typed entry on even
 * steps, the DLPack one on odd steps). Repeated ROUNDS times.
 *
 *     threads X.npy Y.npy BATCH STEPS THREADS ROUNDS */
#include "libtiny.h"
#include "npy.h"

#include <pthread.h>

enum { MAX_THREADS = 8, CLASSES = 10 };

typedef struct job {
    const npy         *x, *y;
    int64_t            batch, steps;
    pthread_barrier_t *start;
    float             *losses, *logits;     /* steps, and steps * N * CLASSES */
    int                rc;
    char               err[512];
} job;

static int forward(tiny *m, const npy *x, float *out, int dlpack)
{
    if (!dlpack)
        return tiny_forward(m, x->shape[0], x->data, out);
    int64_t oshape[2] = {x->shape[0], CLASSES};
    DLTensor in = {.data = x->data, .device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1},
                   .shape = (int64_t *)x->shape};
    DLTensor res = {.data = out, .device = {kDLCPU, 0}, .ndim = 2, .dtype = {kDLFloat, 32, 1}, .shape = oshape};
    return tiny_call(m, "forward", &in, 1, &res, 1);
}

static void *run(void *arg)
{
    job *j = arg;
    if (j->start)
        pthread_barrier_wait(j->start);
    tiny *m = tiny_create(NULL, j->err, sizeof j->err);
    if (!m) {
        j->rc = -1;
        return NULL;
    }
    int64_t n = j->x->shape[0], f = j->x->shape[1], nb = (n + j->batch - 1) / j->batch;
    for (int64_t i = 0; i < j->steps && !j->rc; i++) {
        int64_t first = (i % nb) * j->batch, b = n - first < j->batch ? n - first : j->batch;
        j->rc = tiny_train_step(m, b, (const float *)j->x->data + first * f, (const int64_t *)j->y->data + first,
                                &j->losses[i]);
        if (!j->rc)
            j->rc = forward(m, j->x, j->logits + i * n * CLASSES, (int)(i & 1));
    }
    if (j->rc)
        snprintf(j->err, sizeof j->err, "%s", tiny_last_error(m));
    tiny_destroy(m);
    return NULL;
}

static job make_job(const npy *x, const npy *y, int64_t batch, int64_t steps, pthread_barrier_t *start)
{
    job j = {.x = x, .y = y, .batch = batch, .steps = steps, .start = start};
    j.losses = malloc(sizeof(float) * (size_t)steps);
    j.logits = malloc(sizeof(float) * (size_t)(steps * x->shape[0] * CLASSES));
    return j;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: threads X.npy Y.npy BATCH STEPS THREADS ROUNDS\n");
        return 2;
    }
    npy x, y;
    if (npy_read(argv[1], &x) || npy_read(argv[2], &y))
        return 1;
    int64_t batch = atoll(argv[3]), steps = atoll(argv[4]);
    int nt = atoi(argv[5]), rounds = atoi(argv[6]);
    if (x.kind != 'f' || x.ndim != 2 || y.kind != 'i' || batch < 1 || steps < 1 || nt < 1 || nt > MAX_THREADS) {
        fprintf(stderr, "threads: bad arguments\n");
        return 2;
    }
    job alone = make_job(&x, &y, batch, steps, NULL);
    run(&alone);
    if (alone.rc) {
        printf("alone: error %d: %s\n", alone.rc, alone.err);
        return 1;
    }
    printf("alone: %lld steps, loss %.6f -> %.6f\n", (long long)steps, alone.losses[0], alone.losses[steps - 1]);
    size_t lbytes = sizeof(float) * (size_t)(steps * x.shape[0] * CLASSES);
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, (unsigned)nt);
        job jobs[MAX_THREADS];
        pthread_t tids[MAX_THREADS];
        for (int t = 0; t < nt; t++) {
            jobs[t] = make_job(&x, &y, batch, steps, &start);
            if (pthread_create(&tids[t], NULL, run, &jobs[t])) {
                printf("pthread_create failed\n");
                return 1;
            }
        }
        int same = 0;
        for (int t = 0; t < nt; t++) {
            pthread_join(tids[t], NULL);
            if (jobs[t].rc)
                printf("round %d thread %d: error %d: %s\n", r, t, jobs[t].rc, jobs[t].err);
            else if (memcmp(jobs[t].losses, alone.losses, sizeof(float) * (size_t)steps))
                printf("round %d thread %d: other losses\n", r, t);
            else if (memcmp(jobs[t].logits, alone.logits, lbytes))
                printf("round %d thread %d: other logits\n", r, t);
            else
                same++;
            free(jobs[t].losses);
            free(jobs[t].logits);
        }
        pthread_barrier_destroy(&start);
        printf("round %d: %d of %d threads identical to the instance alone\n", r, same, nt);
        bad += same != nt;
    }
    free(alone.losses);
    free(alone.logits);
    free(x.data);
    free(y.data);
    return bad ? 1 : 0;
}
