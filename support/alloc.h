/* The one allocation hook under all of dlc, and arenas named by lifetime.
 * Every byte dlc allocates goes through sup_malloc/sup_realloc, so a test can make the Nth
 * allocation fail (sup_alloc_fail_after) and check that nothing leaks or crashes. Arenas own
 * whole lifetimes (a module's IR, one pass's scratch): freed at once, never piecewise. */
#ifndef DLC_SUPPORT_ALLOC_H
#define DLC_SUPPORT_ALLOC_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

void *sup_malloc(size_t n);              /* NULL on failure */
void *sup_realloc(void *p, size_t n);    /* NULL on failure; p is then still valid */
void  sup_free(void *p);

/* Test hook: the next `n` allocations succeed, every later one fails; n < 0 turns it off.
 * Returns how many allocations have been made since the last call. */
long  sup_alloc_fail_after(long n);

typedef struct sup_chunk sup_chunk;

/* An arena. When an allocation fails and `oom` is set, sup_arena_alloc longjmps there with 1:
 * whoever set it owns every arena it may unwind past and frees them. Without `oom` it returns
 * NULL. Memory is zeroed and aligned to 16 bytes. */
typedef struct sup_arena {
    sup_chunk *head;
    size_t     bytes;                    /* total handed out, for reports */
    jmp_buf   *oom;
} sup_arena;

void  sup_arena_init(sup_arena *a, jmp_buf *oom);
void *sup_arena_alloc(sup_arena *a, size_t n);
void *sup_arena_grow(sup_arena *a, void *p, size_t old_n, size_t new_n); /* copy into a larger block */
char *sup_arena_strndup(sup_arena *a, const char *s, size_t n);
char *sup_arena_printf(sup_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  sup_arena_reset(sup_arena *a);     /* free everything, keep the arena usable */

#define SUP_NEW(a, T)        ((T *)sup_arena_alloc((a), sizeof(T)))
#define SUP_NEWN(a, T, n)    ((T *)sup_arena_alloc((a), sizeof(T) * (size_t)(n)))

#endif
