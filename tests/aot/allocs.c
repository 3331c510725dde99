/* Counts the heap allocations an AOT library makes per call, by defining malloc and its
 * relatives in this program (the library's calls bind to them) on top of glibc's own. After a
 * warm-up (the arena is allocated and the gemm's packing buffers sized on first use), training
 * steps and forward calls with batch sizes seen before must allocate nothing; the library's
 * memory plan (codegen/memplan.c) keeps every intermediate in one arena.
 *
 *     allocs STEPS        (prints the allocations of each phase; exits 1 if any after warm-up)
 *
 * Built against libtiny (tests/lit/aot/Inputs/tiny.dl) by default, or with -DMODEL=cnn against
 * libcnn (Inputs/cnn.dl: convolutions and pooling), which takes the same inputs. */
#ifndef MODEL
#define MODEL tiny
#endif
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(MODEL, name)
#define STR2(a) #a
#define STR(a) STR2(a)
#include STR(CAT(lib, MODEL).h)

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_long allocations;

void *malloc(size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t k)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_calloc(n, k);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t a, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    return __libc_memalign(a, n);
}

int posix_memalign(void **p, size_t a, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    *p = __libc_memalign(a, n);
    return *p ? 0 : 12;
}

void free(void *p) { __libc_free(p); }

enum { B = 32, SHORT = 22 };

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 20;
    static float x[B * 64], logits[B * 10];
    static int64_t y[B];
    for (int i = 0; i < B * 64; i++)
        x[i] = (float)((i * 7919) % 17) / 16;
    for (int i = 0; i < B; i++)
        y[i] = i % 10;
    char err[256];
    MODEL *m = FN(_create)(NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "create: %s\n", err);
        return 1;
    }
    float loss;
    /* Warm-up: both batch sizes once, both functions. */
    long before = atomic_load(&allocations);
    int rc = FN(_train_step)(m, B, x, y, &loss) | FN(_train_step)(m, SHORT, x, y, &loss) |
             FN(_forward)(m, B, x, logits) | FN(_forward)(m, SHORT, x, logits);
    printf("warm-up: %ld allocations\n", atomic_load(&allocations) - before);
    before = atomic_load(&allocations);
    for (int s = 0; s < steps && !rc; s++)
        rc = FN(_train_step)(m, s % 5 == 4 ? SHORT : B, x, y, &loss);
    long train = atomic_load(&allocations) - before;
    before = atomic_load(&allocations);
    for (int s = 0; s < steps && !rc; s++)
        rc = FN(_forward)(m, s % 2 ? SHORT : B, x, logits);
    long forward = atomic_load(&allocations) - before;
    if (rc) {
        fprintf(stderr, "error %d: %s\n", rc, FN(_last_error)(m));
        return 1;
    }
    printf("%d training steps: %ld allocations\n%d forward calls: %ld allocations\nloss %.4f\n", steps, train,
           steps, forward, loss);
    FN(_destroy)(m);
    return train || forward;
}
