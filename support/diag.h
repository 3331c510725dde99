/* Diagnostics: every user-facing error in dlc goes through a dl_diag, which prints
 * `file:line:col: error: message`, the source line and a caret (the GCC/Clang format), or, in
 * verify mode, collects them and checks them against `expected-error {{...}}` annotations in the
 * source (MLIR's -verify-diagnostics). Internal invariants use SUP_ASSERT instead: a failed one
 * is a compiler bug and exits with status 3. */
#ifndef DLC_SUPPORT_DIAG_H
#define DLC_SUPPORT_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* A place in a source file. `file` is the name returned by sup_diag_add_source (or NULL when
 * the thing has no source, e.g. IR built by a pass); lines and columns count from 1. */
typedef struct dl_loc {
    const char *file;
    int line, col;
} dl_loc;

typedef enum { DL_SEV_ERROR, DL_SEV_WARNING, DL_SEV_NOTE } dl_severity;

typedef struct dl_diag dl_diag;

/* Creates a context that prints to `out`. NULL if memory is short. Destroy it with
 * sup_diag_destroy; it owns copies of every source registered with it. */
dl_diag    *sup_diag_create(FILE *out);
void        sup_diag_destroy(dl_diag *d);

/* Registers a source text so diagnostics can show its lines. Returns the stable copy of `name`
 * to put in dl_loc.file (owned by the context), or NULL if memory is short. */
const char *sup_diag_add_source(dl_diag *d, const char *name, const char *text, size_t len);

/* The text registered under `name` (the pointer sup_diag_add_source returned), or NULL. */
const char *sup_diag_source_text(const dl_diag *d, const char *name, size_t *len);

void sup_diag_report(dl_diag *d, dl_severity sev, dl_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void sup_diag_vreport(dl_diag *d, dl_severity sev, dl_loc loc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* sup_diag_error(d, loc, fmt, ...); loc may be a compound literal, hence the plain __VA_ARGS__. */
#define sup_diag_error(d, ...)   sup_diag_report((d), DL_SEV_ERROR, __VA_ARGS__)
#define sup_diag_warning(d, ...) sup_diag_report((d), DL_SEV_WARNING, __VA_ARGS__)
#define sup_diag_note(d, ...)    sup_diag_report((d), DL_SEV_NOTE, __VA_ARGS__)

int  sup_diag_error_count(const dl_diag *d);

/* Verify mode: collect instead of print. sup_diag_verify then matches what was collected
 * against the annotations in every registered source, prints each mismatch, and returns the
 * number of mismatches (0: every diagnostic was expected and every expectation was met). */
void sup_diag_set_verify(dl_diag *d, bool on);
int  sup_diag_verify(dl_diag *d);

/* A broken internal invariant: print "internal compiler error" and exit 3. */
_Noreturn void sup_ice(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define SUP_ASSERT(cond) \
    ((cond) ? (void)0 : sup_ice(__FILE__, __LINE__, "assertion failed: %s", #cond))

#endif
