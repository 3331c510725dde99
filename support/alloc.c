/* The allocation hook and arenas (see alloc.h). */
#include "support/alloc.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Atomic (relaxed): an AOT library allocates from several instances' threads at once. */
static atomic_long g_fail_after = -1;   /* < 0: never fail */
static atomic_long g_count;

long sup_alloc_fail_after(long n)
{
    long made = atomic_exchange_explicit(&g_count, 0, memory_order_relaxed);
    atomic_store_explicit(&g_fail_after, n, memory_order_relaxed);
    return made;
}

static int should_fail(void)
{
    long count = atomic_fetch_add_explicit(&g_count, 1, memory_order_relaxed) + 1;
    long limit = atomic_load_explicit(&g_fail_after, memory_order_relaxed);
    return limit >= 0 && count > limit;
}

void *sup_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *sup_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void sup_free(void *p) { free(p); }

struct sup_chunk {
    sup_chunk *next;
    size_t     cap, used;
    _Alignas(16) unsigned char data[];
};

enum { CHUNK_MIN = 64 * 1024 };

void sup_arena_init(sup_arena *a, jmp_buf *oom)
{
    a->head = NULL;
    a->bytes = 0;
    a->oom = oom;
}

void *sup_arena_alloc(sup_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    sup_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_MIN ? n : CHUNK_MIN;
        c = sup_malloc(sizeof *c + cap);
        if (!c) {
            if (a->oom)
                longjmp(*a->oom, 1);
            return NULL;
        }
        c->cap = cap;
        c->used = 0;
        /* A big one-off block goes behind the head so the head keeps its free space. */
        if (a->head && n > CHUNK_MIN) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    a->bytes += n;
    memset(p, 0, n);
    return p;
}

void *sup_arena_grow(sup_arena *a, void *p, size_t old_n, size_t new_n)
{
    void *q = sup_arena_alloc(a, new_n);
    if (q && p && old_n)
        memcpy(q, p, old_n < new_n ? old_n : new_n);
    return q;
}

char *sup_arena_strndup(sup_arena *a, const char *s, size_t n)
{
    char *d = sup_arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

char *sup_arena_printf(sup_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = sup_arena_alloc(a, (size_t)n + 1);
    if (d) {
        va_start(ap, fmt);
        vsnprintf(d, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return d;
}

void sup_arena_reset(sup_arena *a)
{
    sup_chunk *c = a->head;
    while (c) {
        sup_chunk *next = c->next;
        sup_free(c);
        c = next;
    }
    a->head = NULL;
    a->bytes = 0;
}
