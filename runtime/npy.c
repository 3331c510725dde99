/* Reading .npy headers (see npy.h): the header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded with spaces. */
#include "runtime/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *descr; int size; } descrs[] = {
    {"<f4", 4}, {"<f8", 8}, {"<f2", 2}, {"|i1", 1}, {"|u1", 1}, {"<i4", 4}, {"<i8", 8},
    {"|b1", 1}, {"<i2", 2}, {"<u2", 2}, {"<u4", 4}, {"<u8", 8},
};

static bool bad(char *err, size_t errlen, const char *path, size_t off, const char *what)
{
    if (off)
        snprintf(err, errlen, "%s: offset %zu: %s", path, off, what);
    else
        snprintf(err, errlen, "%s: %s", path, what);
    return false;
}

/* The text after `'key':` in the dict, or NULL. */
static const char *field(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(hdr, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

bool rt_npy_read_header(const char *path, rt_npy *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    memset(out, 0, sizeof *out);
    unsigned char h[12];
    char hdr[65536 + 1];
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long size = ok ? ftell(f) : -1;
    ok = size >= 0 && fseek(f, 0, SEEK_SET) == 0;
    size_t got = ok ? fread(h, 1, 10, f) : 0;
    if (got != 10 || memcmp(h, "\x93NUMPY", 6)) {
        fclose(f);
        return bad(err, errlen, path, 0, "not a .npy file (no \\x93NUMPY magic)");
    }
    uint64_t hlen, start;
    if (h[6] == 1) {
        hlen = h[8] | (uint64_t)h[9] << 8;
        start = 10;
    } else if ((h[6] == 2 || h[6] == 3) && fread(h + 10, 1, 2, f) == 2) {
        hlen = h[8] | (uint64_t)h[9] << 8 | (uint64_t)h[10] << 16 | (uint64_t)h[11] << 24;
        start = 12;
    } else {
        fclose(f);
        return bad(err, errlen, path, 6, "unknown format version");
    }
    if (hlen > 65536 || start + hlen > (uint64_t)size || fread(hdr, 1, hlen, f) != hlen) {
        fclose(f);
        return bad(err, errlen, path, 8, "the header runs past the end of the file");
    }
    fclose(f);
    hdr[hlen] = 0;
    out->data_offset = start + hlen;
    out->file_size = (uint64_t)size;

    const char *d = field(hdr, "descr"), *fo = field(hdr, "fortran_order"), *sh = field(hdr, "shape");
    if (!d || !fo || !sh || *d != '\'' || *sh != '(')
        return bad(err, errlen, path, start, "the header lacks descr, fortran_order or shape");
    for (size_t i = 0; i < sizeof descrs / sizeof *descrs; i++)
        if (!strncmp(d + 1, descrs[i].descr, 3) && d[4] == '\'') {
            memcpy(out->descr, descrs[i].descr, 4);
            out->elem_size = descrs[i].size;
        }
    if (!out->elem_size)
        return bad(err, errlen, path, start, "unsupported dtype (descr)");
    out->fortran_order = !strncmp(fo, "True", 4);
    if (!out->fortran_order && strncmp(fo, "False", 5))
        return bad(err, errlen, path, start, "fortran_order is neither True nor False");
    uint64_t numel = 1;
    for (const char *p = sh + 1; *p != ')';) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == ')')
            break;
        char *endp;
        errno = 0;
        long long v = strtoll(p, &endp, 10);
        if (endp == p || errno || v < 0 || v > (1LL << 48) || out->rank == RT_NPY_MAX_RANK)
            return bad(err, errlen, path, start + (size_t)(p - hdr), "malformed shape");
        out->shape[out->rank++] = v;
        if (__builtin_mul_overflow(numel, (uint64_t)v, &numel))
            return bad(err, errlen, path, start, "the element count overflows");
        p = endp;
    }
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, (uint64_t)out->elem_size, &bytes) ||
        bytes != out->file_size - out->data_offset)
        return bad(err, errlen, path, out->data_offset,
                   bytes > out->file_size - out->data_offset ? "the data is truncated" :
                                                               "trailing bytes after the data");
    return true;
}
