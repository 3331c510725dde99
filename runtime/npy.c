/* Reading .npy headers (see npy.h): the header is a Python dict literal such as
 * {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded with spaces. */
#include "runtime/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

bool rt_npy_read(const char *path, rt_npy *hdr, void **data, char *err, size_t errlen)
{
    *data = NULL;
    if (!rt_npy_read_header(path, hdr, err, errlen))
        return false;
    size_t bytes = (size_t)(hdr->file_size - hdr->data_offset);
    char *buf = malloc(bytes ? bytes : 1);
    FILE *f = buf ? fopen(path, "rb") : NULL;
    bool ok = f && fseek(f, (long)hdr->data_offset, SEEK_SET) == 0 &&
              fread(buf, 1, bytes, f) == bytes;
    if (f)
        fclose(f);
    if (!ok) {
        free(buf);
        if (!buf)
            return bad(err, errlen, path, 0, "out of memory");
        return bad(err, errlen, path, hdr->data_offset, "cannot read the data");
    }
    if (hdr->fortran_order && hdr->rank > 1) {
        /* Element (i0, ..., ir-1) lies at i0 + d0 * (i1 + d1 * (...)) in the file. */
        char *c = malloc(bytes ? bytes : 1);
        if (!c) {
            free(buf);
            return bad(err, errlen, path, 0, "out of memory");
        }
        uint64_t n = bytes / (size_t)hdr->elem_size;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t rem = i, off = 0, stride = 1, idx[RT_NPY_MAX_RANK];
            for (int k = hdr->rank - 1; k >= 0; k--) {
                idx[k] = rem % (uint64_t)hdr->shape[k];
                rem /= (uint64_t)hdr->shape[k];
            }
            for (int k = 0; k < hdr->rank; k++) {
                off += idx[k] * stride;
                stride *= (uint64_t)hdr->shape[k];
            }
            memcpy(c + i * (size_t)hdr->elem_size, buf + off * (size_t)hdr->elem_size,
                   (size_t)hdr->elem_size);
        }
        free(buf);
        buf = c;
    }
    *data = buf;
    return true;
}

bool rt_npy_write(const char *path, const char *descr, int rank, const int64_t *shape,
                  const void *data, char *err, size_t errlen)
{
    int esize = 0;
    for (size_t i = 0; i < sizeof descrs / sizeof *descrs; i++)
        if (!strcmp(descr, descrs[i].descr))
            esize = descrs[i].size;
    if (!esize || rank < 0 || rank > RT_NPY_MAX_RANK)
        return bad(err, errlen, path, 0, esize ? "rank above 8" : "unsupported dtype (descr)");
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
            return bad(err, errlen, path, 0, "invalid shape");
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld%s", (long long)shape[i],
                      rank == 1 ? "," : i + 1 < rank ? ", " : "");
    }
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* Pad with spaces so that magic + header length + header is a multiple of 64, ending in
     * a newline, as NumPy does. */
    int total = (10 + n + 1 + 63) / 64 * 64;
    while (10 + n + 1 < total)
        hdr[n++] = ' ';
    hdr[n++] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 0xff),
                             (unsigned char)(n >> 8)};
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return bad(err, errlen, path, 0, "path too long");
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return false;
    }
    size_t bytes = (size_t)numel * (size_t)esize;
    bool ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)n, f) == (size_t)n &&
              (bytes == 0 || fwrite(data, 1, bytes, f) == bytes) && fflush(f) == 0 &&
              fsync(fileno(f)) == 0;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false, saved = errno;
    if (!ok) {
        remove(tmp);
        snprintf(err, errlen, "%s: %s", path, strerror(saved ? saved : EIO));
    }
    return ok;
}
