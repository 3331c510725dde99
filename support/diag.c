/* Diagnostics printing and -verify-diagnostics matching (see diag.h). */
#include "support/diag.h"

#include "dlc/dlc.h"
#include "support/alloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct source {
    const char *name;
    const char *text;
    size_t      len;
} source;

typedef struct record {
    dl_severity sev;
    dl_loc      loc;
    const char *msg;
    bool        matched;
} record;

struct dl_diag {
    FILE     *out;
    sup_arena arena;
    source   *src;
    int       nsrc, capsrc;
    record   *rec;
    int       nrec, caprec;
    int       errors;
    bool      verify;
};

static const char *const sev_name[] = {"error", "warning", "note"};

dl_diag *sup_diag_create(FILE *out)
{
    dl_diag *d = sup_malloc(sizeof *d);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    d->out = out;
    sup_arena_init(&d->arena, NULL);
    return d;
}

void sup_diag_destroy(dl_diag *d)
{
    if (!d)
        return;
    sup_arena_reset(&d->arena);
    sup_free(d);
}

/* Arrays in the diag's arena grow by doubling; false when memory is short. */
static bool grow(dl_diag *d, void **arr, int *cap, int n, size_t elem)
{
    if (n < *cap)
        return true;
    int ncap = *cap ? *cap * 2 : 8;
    void *p = sup_arena_grow(&d->arena, *arr, (size_t)*cap * elem, (size_t)ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

const char *sup_diag_add_source(dl_diag *d, const char *name, const char *text, size_t len)
{
    if (!grow(d, (void **)&d->src, &d->capsrc, d->nsrc, sizeof(source)))
        return NULL;
    char *n = sup_arena_strndup(&d->arena, name, strlen(name));
    char *t = sup_arena_strndup(&d->arena, text, len);
    if (!n || !t)
        return NULL;
    d->src[d->nsrc++] = (source){n, t, len};
    return n;
}

static const source *find_source(const dl_diag *d, const char *name)
{
    for (int i = 0; i < d->nsrc; i++)
        if (d->src[i].name == name)
            return &d->src[i];
    return NULL;
}

/* The text of line `line` (1-based) of `s`, without its newline. */
static const char *line_text(const source *s, int line, size_t *len)
{
    const char *p = s->text, *end = s->text + s->len;
    for (int l = 1; l < line && p < end; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        p = nl + 1;
    }
    if (p >= end && line > 1)
        return NULL;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

const char *sup_diag_source_text(const dl_diag *d, const char *name, size_t *len)
{
    const source *s = find_source(d, name);
    if (!s)
        return NULL;
    *len = s->len;
    return s->text;
}

static void print_one(const dl_diag *d, dl_severity sev, dl_loc loc, const char *msg)
{
    if (loc.file)
        fprintf(d->out, "%s:%d:%d: %s: %s\n", loc.file, loc.line, loc.col, sev_name[sev], msg);
    else
        fprintf(d->out, "dlc: %s: %s\n", sev_name[sev], msg);
    const source *s = loc.file ? find_source(d, loc.file) : NULL;
    size_t len;
    const char *text = s ? line_text(s, loc.line, &len) : NULL;
    if (!text)
        return;
    fprintf(d->out, "%.*s\n", (int)len, text);
    /* Keep tabs so the caret lines up under the same column in an editor or a terminal. */
    for (int i = 1; i < loc.col && (size_t)(i - 1) < len; i++)
        fputc(text[i - 1] == '\t' ? '\t' : ' ', d->out);
    fputs("^\n", d->out);
}

void sup_diag_report(dl_diag *d, dl_severity sev, dl_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_diag_vreport(d, sev, loc, fmt, ap);
    va_end(ap);
}

void sup_diag_vreport(dl_diag *d, dl_severity sev, dl_loc loc, const char *fmt, va_list ap)
{
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    if (sev == DL_SEV_ERROR)
        d->errors++;
    if (d->verify && grow(d, (void **)&d->rec, &d->caprec, d->nrec, sizeof(record))) {
        const char *m = sup_arena_strndup(&d->arena, buf, strlen(buf));
        if (m) {
            d->rec[d->nrec++] = (record){sev, loc, m, false};
            return;
        }
    }
    print_one(d, sev, loc, buf);
}

int sup_diag_error_count(const dl_diag *d) { return d->errors; }

void sup_diag_set_verify(dl_diag *d, bool on) { d->verify = on; }

/* One `expected-KIND[@(+|-)N] {{text}}` annotation found at `p` on line `line` of `s`.
 * Returns the number of mismatches it contributes (0 or 1) and advances *pp past it. */
static int check_expectation(dl_diag *d, const source *s, int line, const char **pp,
                             const char *line_end)
{
    const char *p = *pp + strlen("expected-");
    dl_severity sev;
    if (!strncmp(p, "error", 5))
        sev = DL_SEV_ERROR, p += 5;
    else if (!strncmp(p, "warning", 7))
        sev = DL_SEV_WARNING, p += 7;
    else if (!strncmp(p, "note", 4))
        sev = DL_SEV_NOTE, p += 4;
    else {
        *pp = p;
        return 0;
    }
    int target = line;
    if (*p == '@') {
        p++;
        int sign = *p == '-' ? -1 : 1;
        if (*p == '+' || *p == '-')
            p++;
        target = line + sign * (int)strtol(p, (char **)&p, 10);
    }
    while (p < line_end && *p == ' ')
        p++;
    const char *open = p, *close = NULL;
    if (line_end - p >= 2 && !strncmp(p, "{{", 2)) {
        for (const char *q = p + 2; q + 1 < line_end; q++)
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
    }
    int col = (int)(*pp - line_text(s, line, &(size_t){0})) + 1;
    if (!close) {
        fprintf(d->out, "%s:%d:%d: error: expected '{{' and '}}' around the expected message\n",
                s->name, line, col);
        *pp = p;
        return 1;
    }
    *pp = close + 2;
    size_t want_len = (size_t)(close - (open + 2));
    for (int i = 0; i < d->nrec; i++) {
        record *r = &d->rec[i];
        if (r->matched || r->sev != sev || r->loc.file != s->name || r->loc.line != target)
            continue;
        /* A substring match, as in MLIR. */
        for (const char *m = r->msg; *m; m++)
            if (!strncmp(m, open + 2, want_len)) {
                r->matched = true;
                return 0;
            }
    }
    fprintf(d->out, "%s:%d:%d: error: expected %s \"%.*s\" was not produced\n", s->name, line,
            col, sev_name[sev], (int)want_len, open + 2);
    return 1;
}

int sup_diag_verify(dl_diag *d)
{
    int bad = 0;
    for (int i = 0; i < d->nsrc; i++) {
        const source *s = &d->src[i];
        size_t len;
        const char *text;
        for (int line = 1; (text = line_text(s, line, &len)); line++) {
            const char *end = text + len;
            for (const char *p = text; p < end;) {
                const char *hit = NULL;
                for (const char *q = p; q + 9 <= end; q++)
                    if (!strncmp(q, "expected-", 9)) {
                        hit = q;
                        break;
                    }
                if (!hit)
                    break;
                p = hit;
                bad += check_expectation(d, s, line, &p, end);
            }
            if (text + len >= s->text + s->len)
                break;
        }
    }
    for (int i = 0; i < d->nrec; i++) {
        record *r = &d->rec[i];
        if (r->matched)
            continue;
        char buf[1200];
        snprintf(buf, sizeof buf, "unexpected %s: %s", sev_name[r->sev], r->msg);
        print_one(d, DL_SEV_ERROR, r->loc, buf);
        bad++;
    }
    return bad;
}

_Noreturn void sup_ice(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "dlc: internal compiler error (a bug in dlc, please report it): %s:%d: ",
            file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(DLC_EXIT_ICE);
}
