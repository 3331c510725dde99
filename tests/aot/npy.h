/* A strict .npy reader for the AOT library tests (tests/lit/aot): versions 1.0 and 2.0, dtype
 * '<f4' or '<i8', C order, the data exactly filling the rest of the file. Anything else is refused
 * with a message, so a test never runs on data it misread. Header-only: each test program is one
 * `cc` command. */
#ifndef DLC_TESTS_AOT_NPY_H
#define DLC_TESTS_AOT_NPY_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { NPY_MAX_RANK = 8 };

typedef struct npy {
    char    kind;                  /* 'f': float32, 'i': int64 */
    int     ndim;
    int64_t shape[NPY_MAX_RANK];
    int64_t n;                     /* elements */
    void   *data;
} npy;

static inline int64_t npy_elsize(const npy *a) { return a->kind == 'f' ? 4 : 8; }

/* The value of `'key': ` in the header dictionary h, or NULL. */
static inline const char *npy_field(const char *h, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

/* 0, or -1 after printing why. */
static inline int npy_read(const char *path, npy *a)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    unsigned char pre[12];
    char *h = NULL;
    int rc = -1;
    const char *why = "not a .npy file";
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) || (pre[6] != 1 && pre[6] != 2))
        goto out;
    uint64_t hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8, start = 10;
    if (pre[6] == 2) {
        if (fread(pre + 10, 1, 2, f) != 2)
            goto out;
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        start = 12;
    }
    why = "a bad header";
    if (hlen == 0 || hlen > 1 << 20 || !(h = malloc(hlen + 1)) || fread(h, 1, hlen, f) != hlen)
        goto out;
    h[hlen] = 0;
    const char *d = npy_field(h, "descr"), *fo = npy_field(h, "fortran_order"), *s = npy_field(h, "shape");
    why = "not '<f4' or '<i8'";
    if (!d || (strncmp(d, "'<f4'", 5) && strncmp(d, "'<i8'", 5)))
        goto out;
    a->kind = d[2] == 'f' ? 'f' : 'i';
    why = "not C order";
    if (!fo || strncmp(fo, "False", 5))
        goto out;
    why = "a bad shape";
    if (!s || *s != '(')
        goto out;
    s++;
    a->n = 1;
    for (;;) {
        while (*s == ' ' || *s == ',')
            s++;
        if (*s == ')')
            break;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || a->ndim == NPY_MAX_RANK || v > (1LL << 40) || a->n > (1LL << 40) / (v ? v : 1))
            goto out;
        a->shape[a->ndim++] = v;
        a->n *= v;
        s = end;
    }
    long here = ftell(f);
    if (fseek(f, 0, SEEK_END))
        goto out;
    long size = ftell(f);
    why = "a data size that does not fit the shape";
    if (here < 0 || (uint64_t)here != start + hlen || (int64_t)(size - here) != a->n * npy_elsize(a))
        goto out;
    why = "unreadable data";
    if (fseek(f, here, SEEK_SET) || !(a->data = malloc((size_t)(a->n * npy_elsize(a)) + 1)) ||
        fread(a->data, (size_t)npy_elsize(a), (size_t)a->n, f) != (size_t)a->n)
        goto out;
    rc = 0;
out:
    if (rc) {
        fprintf(stderr, "%s: %s\n", path, why);
        free(a->data);
        a->data = NULL;
    }
    free(h);
    fclose(f);
    return rc;
}

#endif
