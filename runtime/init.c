/* Parameter initialisation (see init.h). */
#include "runtime/init.h"

#include "support/philox.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A 64-bit FNV-1a hash of the path: the high word of every counter for that parameter. */
static uint64_t path_hash(const char *path)
{
    uint64_t h = 1469598103934665603ull;
    for (; *path; path++)
        h = (h ^ (unsigned char)*path) * 1099511628211ull;
    return h;
}

typedef struct stream {
    uint64_t key, hi, lo;
    uint32_t buf[4];
    int      left;
} stream;

/* A uniform double in [0, 1) from 53 random bits. */
static double next_uniform(stream *s)
{
    uint64_t bits = 0;
    for (int k = 0; k < 2; k++) {
        if (!s->left) {
            sup_philox4x32(s->key, s->hi, s->lo++, s->buf);
            s->left = 4;
        }
        bits = bits << 32 | s->buf[4 - s->left--];
    }
    return (double)(bits >> 11) * 0x1.0p-53;
}

/* A standard normal by Box-Muller (1 - u keeps the log finite). */
static double next_normal(stream *s)
{
    double u = next_uniform(s), v = next_uniform(s);
    return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

typedef struct spec {
    char   name[32];
    int    nargs;
    double args[4];
} spec;

static bool parse_spec(const char *text, spec *sp)
{
    const char *open = strchr(text, '(');
    size_t n = open ? (size_t)(open - text) : 0;
    if (!open || n == 0 || n >= sizeof sp->name)
        return false;
    memcpy(sp->name, text, n);
    sp->name[n] = 0;
    sp->nargs = 0;
    const char *p = open + 1;
    while (*p == ' ')
        p++;
    while (*p != ')') {
        if (sp->nargs == 4)
            return false;
        char *end;
        sp->args[sp->nargs++] = strtod(p, &end);
        if (end == p)
            return false;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            return false;
    }
    return p[1] == 0;
}

bool rt_init_fill(const char *text, uint64_t seed, const char *path, double *out, int64_t n,
                  char *err, size_t errlen)
{
    static const struct { const char *name; int nargs; } known[] = {
        {"zeros", 0}, {"ones", 0}, {"full", 1}, {"uniform", 2}, {"normal", 2},
        {"kaiming_uniform", 1}, {"xavier_uniform", 2}, {"trunc_normal", 1},
    };
    spec sp;
    int k = -1;
    if (parse_spec(text, &sp))
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (!strcmp(sp.name, known[i].name) && sp.nargs == known[i].nargs)
                k = (int)i;
    if (k < 0) {
        snprintf(err, errlen, "'%s': unknown initializer '%s'", path, text);
        return false;
    }
    stream s = {.key = seed, .hi = path_hash(path)};
    double *a = sp.args, lo = 0, hi = 0;
    switch (k) {
    case 0: case 1: case 2:
        for (int64_t i = 0; i < n; i++)
            out[i] = k == 0 ? 0 : k == 1 ? 1 : a[0];
        return true;
    case 4:
        for (int64_t i = 0; i < n; i++)
            out[i] = a[0] + a[1] * next_normal(&s);
        return true;
    case 7:
        for (int64_t i = 0; i < n; i++) {
            double z;
            do
                z = a[0] * next_normal(&s);
            while (z < -2 || z > 2);
            out[i] = z;
        }
        return true;
    case 3: lo = a[0], hi = a[1]; break;
    case 5: hi = sqrt(6.0 / a[0]), lo = -hi; break;
    default: hi = sqrt(6.0 / (a[0] + a[1])), lo = -hi; break;
    }
    if (!(hi >= lo) || !isfinite(hi) || !isfinite(lo)) {
        snprintf(err, errlen, "'%s': initializer '%s' has an empty or infinite range", path, text);
        return false;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = lo + (hi - lo) * next_uniform(&s);
    return true;
}

bool rt_init_is_load(const char *text, char *file, size_t filelen, char *name, size_t namelen)
{
    if (strncmp(text, "load(\"", 6))
        return false;
    const char *f = text + 6, *fe = strchr(f, '"');
    if (!fe || strncmp(fe, "\", \"", 4))
        return false;
    const char *nm = fe + 4, *ne = strchr(nm, '"');
    if (!ne || strcmp(ne, "\")") || (size_t)(fe - f) >= filelen || (size_t)(ne - nm) >= namelen)
        return false;
    snprintf(file, filelen, "%.*s", (int)(fe - f), f);
    snprintf(name, namelen, "%.*s", (int)(ne - nm), nm);
    return true;
}
