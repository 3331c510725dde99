/* Reading and writing safetensors files (see safetensors.h): the header reader and its
 * validation, tensor data reads that re-check the file, and the atomic writer. */
#include "runtime/safetensors.h"

#include "runtime/json.h"
#include "support/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* In the order of the reference implementation's Dtype enum, which its writer sorts by. */
static const struct { const char *name; int size; } st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8},
    {"U64", 8},
};

/* By (begin, end), as the reference does: a zero-size tensor shares its begin with the next one
 * and must come first, or the contiguity check below would see an overlap. */
static int cmp_begin(const void *a, const void *b)
{
    const rt_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return (x->begin > y->begin) - (x->begin < y->begin);
    return (x->end > y->end) - (x->end < y->end);
}

static bool bad(char *err, size_t errlen, const char *path, const char *what, const char *name)
{
    snprintf(err, errlen, "%s: %s%s%s%s", path, what, name ? " ('" : "", name ? name : "",
             name ? "')" : "");
    return false;
}

/* An integer held exactly by a JSON number, in [0, max]. */
static bool json_uint(const rt_json *v, double max, uint64_t *out)
{
    if (!v || v->kind != RT_JSON_NUMBER || v->num < 0 || v->num > max || v->num != floor(v->num))
        return false;
    *out = (uint64_t)v->num;
    return true;
}

static bool read_entry(const char *path, const char *key, const rt_json *v, rt_st_tensor *t,
                       char *err, size_t errlen)
{
    const rt_json *dt = rt_json_get(v, "dtype"), *shape = rt_json_get(v, "shape"),
                  *offs = rt_json_get(v, "data_offsets");
    if (v->kind != RT_JSON_OBJECT || !dt || dt->kind != RT_JSON_STRING || !shape ||
        shape->kind != RT_JSON_ARRAY || !offs || offs->kind != RT_JSON_ARRAY || offs->n != 2)
        return bad(err, errlen, path, "an entry needs dtype, shape and data_offsets", key);
    t->name = key;
    t->dtype = dt->str;
    t->elem_size = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof *st_dtypes; i++)
        if (!strcmp(dt->str, st_dtypes[i].name))
            t->elem_size = st_dtypes[i].size;
    if (!t->elem_size)
        return bad(err, errlen, path, "unsupported dtype", key);
    if (shape->n > RT_ST_MAX_RANK)
        return bad(err, errlen, path, "rank above 8", key);
    t->rank = shape->n;
    uint64_t numel = 1, d;
    for (int i = 0; i < shape->n; i++) {
        if (!json_uint(shape->items[i], 281474976710656.0, &d))
            return bad(err, errlen, path, "a dimension is not a non-negative integer", key);
        t->shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel))
            return bad(err, errlen, path, "the element count overflows", key);
    }
    if (!json_uint(offs->items[0], 9007199254740992.0, &t->begin) ||
        !json_uint(offs->items[1], 9007199254740992.0, &t->end) || t->end < t->begin)
        return bad(err, errlen, path, "bad data_offsets", key);
    uint64_t bytes;
    if (__builtin_mul_overflow(numel, (uint64_t)t->elem_size, &bytes) || bytes != t->end - t->begin)
        return bad(err, errlen, path, "data_offsets do not match dtype and shape", key);
    return true;
}

/* The header's JSON text (n bytes) of a file of `size` bytes, validated against that size. */
static bool parse_header(sup_arena *arena, const char *path, const char *text, uint64_t n, uint64_t size,
                         rt_safetensors *out, char *err, size_t errlen)
{
    char jerr[256];
    rt_json *root = rt_json_parse(arena, text, n, jerr, sizeof jerr);
    if (!root || root->kind != RT_JSON_OBJECT) {
        snprintf(err, errlen, "%s: header: %s", path, root ? "not a JSON object" : jerr);
        return false;
    }
    out->tensors = SUP_NEWN(arena, rt_st_tensor, root->n + 1);
    if (!out->tensors)
        return bad(err, errlen, path, "out of memory", NULL);
    out->n = 0;
    out->data_start = 8 + n;
    out->file_size = size;
    for (int i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        if (!strcmp(key, "__metadata__"))
            continue;
        for (int k = 0; k < i; k++)
            if (!strcmp(root->keys[k], key))
                return bad(err, errlen, path, "duplicate tensor name", key);
        if (!read_entry(path, key, root->items[i], &out->tensors[out->n], err, errlen))
            return false;
        out->n++;
    }
    /* Offsets sorted and contiguous from 0, the last one ending at the end of the file. */
    qsort(out->tensors, (size_t)out->n, sizeof *out->tensors, cmp_begin);
    uint64_t at = 0;
    for (int i = 0; i < out->n; i++) {
        if (out->tensors[i].begin != at)
            return bad(err, errlen, path, "data_offsets leave a gap or overlap", out->tensors[i].name);
        at = out->tensors[i].end;
    }
    if (at != size - out->data_start)
        return bad(err, errlen, path, at > size - out->data_start ? "the data runs past the end of the file" :
                                                                    "trailing bytes after the data", NULL);
    return true;
}

/* The header length in the first 8 bytes, checked against the file's size. */
static bool header_length(const char *path, const unsigned char *nb, uint64_t size, uint64_t *n,
                          char *err, size_t errlen)
{
    *n = 0;
    for (int i = 7; i >= 0; i--)
        *n = *n << 8 | nb[i];
    if (*n > 100000000 || *n > size - 8)
        return bad(err, errlen, path, "header length past the end of the file", NULL);
    return true;
}

bool rt_st_read_header(sup_arena *arena, const char *path, rt_safetensors *out, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    unsigned char nb[8];
    uint64_t n = 0, size = 0;
    bool ok = fseek(f, 0, SEEK_END) == 0;
    long end = ok ? ftell(f) : -1;
    ok = end >= 0 && fseek(f, 0, SEEK_SET) == 0;
    size = (uint64_t)end;
    if (!ok) {
        fclose(f);
        return bad(err, errlen, path, "cannot find the file's size", NULL);
    }
    if (size < 8 || fread(nb, 1, 8, f) != 8) {
        fclose(f);
        return bad(err, errlen, path, "shorter than the 8-byte header length", NULL);
    }
    if (!header_length(path, nb, size, &n, err, errlen)) {
        fclose(f);
        return false;
    }
    char *text = sup_malloc(n + 1);
    if (!text || fread(text, 1, n, f) != n) {
        fclose(f);
        sup_free(text);
        return bad(err, errlen, path, text ? "truncated header" : "out of memory", NULL);
    }
    fclose(f);
    ok = parse_header(arena, path, text, n, size, out, err, errlen);
    sup_free(text);
    return ok;
}

bool rt_st_parse(sup_arena *arena, const char *name, const void *image, uint64_t size,
                 rt_safetensors *out, char *err, size_t errlen)
{
    uint64_t n;
    if (size < 8)
        return bad(err, errlen, name, "shorter than the 8-byte header length", NULL);
    return header_length(name, image, size, &n, err, errlen) &&
           parse_header(arena, name, (const char *)image + 8, n, size, out, err, errlen);
}

const rt_st_tensor *rt_st_find(const rt_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

/* ---- Reading tensor data ---- */

/* Reads exactly n bytes at offset off; pread may return short counts. */
static bool read_at(int fd, void *dst, uint64_t n, uint64_t off)
{
    unsigned char *p = dst;
    while (n > 0) {
        size_t want = n > (1u << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t got = pread(fd, p, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        off += (uint64_t)got;
        n -= (uint64_t)got;
    }
    return true;
}

/* Opens path and checks it still holds what the header promised: the data section can only be
 * trusted if the file has its old length (a shorter file would turn reads into garbage). */
static int open_checked(const char *path, const rt_safetensors *st, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (uint64_t)sb.st_size != st->file_size) {
        close(fd);
        bad(err, errlen, path, "the file changed size since its header was read", NULL);
        return -1;
    }
    return fd;
}

bool rt_st_read_tensor(const char *path, const rt_safetensors *st, const rt_st_tensor *t,
                       void *dst, char *err, size_t errlen)
{
    if (t->end < t->begin || t->end > st->file_size - st->data_start)
        return bad(err, errlen, path, "tensor outside the data section", t->name);
    int fd = open_checked(path, st, err, errlen);
    if (fd < 0)
        return false;
    bool ok = read_at(fd, dst, t->end - t->begin, st->data_start + t->begin);
    close(fd);
    return ok ? true : bad(err, errlen, path, "cannot read the tensor's data", t->name);
}

void *rt_st_read_data(const char *path, const rt_safetensors *st, char *err, size_t errlen)
{
    uint64_t n = st->file_size - st->data_start;
    if (n > SIZE_MAX) {
        bad(err, errlen, path, "the data section does not fit in memory", NULL);
        return NULL;
    }
    void *buf = sup_malloc((size_t)n);
    if (!buf) {
        bad(err, errlen, path, "out of memory", NULL);
        return NULL;
    }
    int fd = open_checked(path, st, err, errlen);
    bool ok = fd >= 0 && read_at(fd, buf, n, st->data_start);
    if (fd >= 0)
        close(fd);
    if (!ok) {
        if (fd >= 0)
            bad(err, errlen, path, "cannot read the data section", NULL);
        sup_free(buf);
        return NULL;
    }
    return buf;
}

/* ---- Writing ---- */

typedef struct st_entry {
    char       *name;
    int         dtype;         /* index into st_dtypes */
    int         rank;
    int64_t     shape[RT_ST_MAX_RANK];
    uint64_t    bytes;
    const void *data;          /* borrowed until finish */
} st_entry;

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct rt_st_writer {
    char     *path;
    st_entry *entries;
    int       n, cap;
    st_meta  *meta;
    int       nmeta, capmeta;
    char      err[256];        /* the first error; "" while none */
};

static bool w_fail(rt_st_writer *w, const char *what, const char *name)
{
    if (!w->err[0])
        snprintf(w->err, sizeof w->err, "%s%s%s%s", what, name ? " ('" : "", name ? name : "",
                 name ? "')" : "");
    return false;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = sup_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* The header must be UTF-8 (the reference rejects anything else on reading). */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int extra = *p < 0x80 ? 0 : (*p & 0xE0) == 0xC0 ? 1 : (*p & 0xF0) == 0xE0 ? 2 :
                    (*p & 0xF8) == 0xF0 ? 3 : -1;
        if (extra < 0 || (extra == 1 && *p < 0xC2) || (extra == 3 && *p > 0xF4))
            return false;
        uint32_t cp = *p & (extra ? 0x3F >> extra : 0x7F);
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        /* Overlong three/four-byte forms, surrogates, and code points past U+10FFFF. */
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += extra + 1;
    }
    return true;
}

rt_st_writer *rt_st_writer_begin(const char *path, char *err, size_t errlen)
{
    rt_st_writer *w = sup_malloc(sizeof *w);
    char *p = dup_str(path);
    if (!w || !p) {
        sup_free(w);
        sup_free(p);
        bad(err, errlen, path, "out of memory", NULL);
        return NULL;
    }
    memset(w, 0, sizeof *w);
    w->path = p;
    return w;
}

bool rt_st_writer_add(rt_st_writer *w, const char *name, const char *dtype, int rank,
                      const int64_t *shape, const void *data)
{
    if (w->err[0])
        return false;
    int dt = -1;
    for (int i = 0; i < (int)(sizeof st_dtypes / sizeof *st_dtypes); i++)
        if (!strcmp(dtype, st_dtypes[i].name))
            dt = i;
    if (dt < 0)
        return w_fail(w, "unsupported dtype", name);
    if (!valid_utf8(name))
        return w_fail(w, "a tensor name is not UTF-8", NULL);
    if (!strcmp(name, "__metadata__"))
        return w_fail(w, "a tensor cannot be named", name);
    if (rank < 0 || rank > RT_ST_MAX_RANK)
        return w_fail(w, "rank outside 0..8", name);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->entries[i].name, name))
            return w_fail(w, "duplicate tensor name", name);
    uint64_t bytes = (uint64_t)st_dtypes[dt].size;
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[i], &bytes))
            return w_fail(w, shape[i] < 0 ? "negative dimension" : "the size overflows", name);
    if (bytes > 0 && !data)
        return w_fail(w, "no data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *e = sup_realloc(w->entries, sizeof *e * (size_t)cap);
        if (!e)
            return w_fail(w, "out of memory", NULL);
        w->entries = e;
        w->cap = cap;
    }
    st_entry *e = &w->entries[w->n];
    if (!(e->name = dup_str(name)))
        return w_fail(w, "out of memory", NULL);
    e->dtype = dt;
    e->rank = rank;
    for (int i = 0; i < rank; i++)
        e->shape[i] = shape[i];
    e->bytes = bytes;
    e->data = data;
    w->n++;
    return true;
}

bool rt_st_writer_add_metadata(rt_st_writer *w, const char *key, const char *value)
{
    if (w->err[0])
        return false;
    if (!valid_utf8(key) || !valid_utf8(value))
        return w_fail(w, "metadata is not UTF-8", NULL);
    for (int i = 0; i < w->nmeta; i++)
        if (!strcmp(w->meta[i].key, key))
            return w_fail(w, "duplicate metadata key", key);
    if (w->nmeta == w->capmeta) {
        int cap = w->capmeta ? 2 * w->capmeta : 8;
        st_meta *m = sup_realloc(w->meta, sizeof *m * (size_t)cap);
        if (!m)
            return w_fail(w, "out of memory", NULL);
        w->meta = m;
        w->capmeta = cap;
    }
    st_meta *m = &w->meta[w->nmeta];
    m->key = dup_str(key);
    m->value = dup_str(value);
    if (!m->key || !m->value) {
        sup_free(m->key);
        sup_free(m->value);
        return w_fail(w, "out of memory", NULL);
    }
    w->nmeta++;
    return true;
}

void rt_st_writer_abort(rt_st_writer *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        sup_free(w->entries[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        sup_free(w->meta[i].key);
        sup_free(w->meta[i].value);
    }
    sup_free(w->entries);
    sup_free(w->meta);
    sup_free(w->path);
    sup_free(w);
}

/* The header text, grown as needed; `ok` goes false once an allocation fails. */
typedef struct st_buf {
    char  *s;
    size_t n, cap;
    bool   ok;
} st_buf;

static void put(st_buf *b, const char *s, size_t n)
{
    if (!b->ok || n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        char *p = sup_realloc(b->s, cap);
        if (!p) {
            b->ok = false;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
}

static void puts_(st_buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(st_buf *b, uint64_t v)
{
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    puts_(b, tmp);
}

/* A JSON string escaped as serde_json (the reference's serializer) and Python's json module
 * with ensure_ascii=False escape it: '"', '\\' and control characters only, short forms where
 * JSON has them, else \u00xx in lower case; everything else, UTF-8 included, as it is. */
static void put_json_str(st_buf *b, const char *s)
{
    put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *short_form = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\b' ? "\\b" :
                                 *p == '\f' ? "\\f" : *p == '\n' ? "\\n" : *p == '\r' ? "\\r" :
                                 *p == '\t' ? "\\t" : NULL;
        if (short_form)
            puts_(b, short_form);
        else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            puts_(b, esc);
        }
        else
            put(b, (const char *)p, 1);
    }
    put(b, "\"", 1);
}

/* Descending dtype (in enum order), then by name compared as bytes, as the reference sorts. */
static int cmp_entry(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->dtype != y->dtype)
        return y->dtype - x->dtype;
    return strcmp(x->name, y->name);
}

/* The header JSON, padded with spaces to a multiple of 8; entries must be sorted. */
static bool build_header(const rt_st_writer *w, st_buf *b)
{
    put(b, "{", 1);
    if (w->nmeta) {
        puts_(b, "\"__metadata__\":{");
        for (int i = 0; i < w->nmeta; i++) {
            if (i)
                put(b, ",", 1);
            put_json_str(b, w->meta[i].key);
            put(b, ":", 1);
            put_json_str(b, w->meta[i].value);
        }
        put(b, "}", 1);
    }
    uint64_t at = 0;
    for (int i = 0; i < w->n; i++) {
        const st_entry *e = &w->entries[i];
        if (i || w->nmeta)
            put(b, ",", 1);
        put_json_str(b, e->name);
        puts_(b, ":{\"dtype\":\"");
        puts_(b, st_dtypes[e->dtype].name);
        puts_(b, "\",\"shape\":[");
        for (int k = 0; k < e->rank; k++) {
            if (k)
                put(b, ",", 1);
            put_u64(b, (uint64_t)e->shape[k]);
        }
        puts_(b, "],\"data_offsets\":[");
        put_u64(b, at);
        put(b, ",", 1);
        put_u64(b, at += e->bytes);
        puts_(b, "]}");
    }
    put(b, "}", 1);
    while (b->ok && b->n % 8)
        put(b, " ", 1);
    return b->ok;
}

static bool write_all(int fd, const void *data, uint64_t n)
{
    const unsigned char *p = data;
    while (n > 0) {
        size_t want = n > (1u << 30) ? (size_t)1 << 30 : (size_t)n;
        ssize_t got = write(fd, p, want);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        p += got;
        n -= (uint64_t)got;
    }
    return true;
}

/* Creates a fresh temporary file next to `path` (same directory, so rename is atomic), with
 * the mode a plain create would give. Its name goes to tmp. */
static int create_temp(const char *path, char *tmp, size_t tmplen)
{
    static _Atomic unsigned counter;   /* writers may run on several threads */
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, tmplen, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

/* Makes the rename itself durable: the directory entry lives in the directory. */
static bool sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return false;
    int fd = open(dir, O_RDONLY);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0 || errno == EINVAL;   /* some file systems cannot sync a directory */
    close(fd);
    return ok;
}

static bool write_file(const rt_st_writer *w, const st_buf *hdr, char *err, size_t errlen)
{
    char tmp[4200];
    if (strlen(w->path) + 40 > sizeof tmp)
        return bad(err, errlen, w->path, "path too long", NULL);
    int fd = create_temp(w->path, tmp, sizeof tmp);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot create a temporary file: %s", w->path, strerror(errno));
        return false;
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)((uint64_t)hdr->n >> (8 * i));
    bool ok = write_all(fd, len, 8) && write_all(fd, hdr->s, hdr->n);
    for (int i = 0; ok && i < w->n; i++)
        ok = write_all(fd, w->entries[i].data, w->entries[i].bytes);
    const char *what = "write";
    if (ok && fsync(fd) != 0)
        ok = false, what = "fsync";
    if (close(fd) != 0 && ok)
        ok = false, what = "close";
    if (ok && rename(tmp, w->path) != 0)
        ok = false, what = "rename";
    if (!ok) {
        snprintf(err, errlen, "%s: %s failed: %s", w->path, what, strerror(errno));
        unlink(tmp);
        return false;
    }
    if (!sync_dir(w->path)) {
        snprintf(err, errlen, "%s: written, but syncing its directory failed: %s", w->path,
                 strerror(errno));
        return false;
    }
    return true;
}

bool rt_st_writer_finish(rt_st_writer *w, char *err, size_t errlen)
{
    bool ok = false;
    st_buf hdr = {.ok = true};
    if (w->err[0])
        snprintf(err, errlen, "%s: %s", w->path, w->err);
    else {
        if (w->n > 1)
            qsort(w->entries, (size_t)w->n, sizeof *w->entries, cmp_entry);
        if (!build_header(w, &hdr))
            bad(err, errlen, w->path, "out of memory", NULL);
        else
            ok = write_file(w, &hdr, err, errlen);
    }
    sup_free(hdr.s);
    rt_st_writer_abort(w);
    return ok;
}
