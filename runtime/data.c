/* The training data loader (see data.h): each source is read whole into memory, validated, and
 * kept as one array of x and one of y (text keeps only its tokens and cuts windows on demand);
 * the batcher's thread copies samples into a ring of batch buffers ahead of the training step.
 * Files may be gzipped wherever the source allows it: zlib's gzread reads plain files as they are. */
#include "runtime/data.h"

#include "runtime/npy.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "support/philox.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

__attribute__((format(printf, 3, 4)))
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- whole files, gzipped or not ------------------------------------------------------------ */

/* Reads all of `path` (decompressed if it is gzip) into a sup_malloc'd buffer with a NUL after the
 * *len bytes. NULL with "path: reason" in err: cannot open, read error, truncated gzip stream. */
static unsigned char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fail(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = sup_malloc(cap);
    bool oom = !buf;
    int got = 1;
    while (!oom && got > 0) {
        if (n + 1 == cap) {
            unsigned char *nb = cap <= SIZE_MAX / 2 ? sup_realloc(buf, cap * 2) : NULL;
            oom = !nb;
            if (nb)
                buf = nb, cap *= 2;
            continue;
        }
        got = gzread(f, buf + n, (unsigned)(cap - n - 1 < (1u << 30) ? cap - n - 1 : (1u << 30)));
        n += got > 0 ? (size_t)got : 0;
    }
    /* A gzip stream cut short reads as a short file; gzerror (then gzclose) says Z_BUF_ERROR. */
    int code = Z_OK;
    const char *zmsg = gzerror(f, &code);
    bool ok = !oom && got == 0 && code == Z_OK;
    if (oom)
        fail(err, errlen, "%s: out of memory", path);
    else if (!ok)
        fail(err, errlen, "%s: offset %zu: %s", path, n,
             code == Z_BUF_ERROR ? "the gzip stream is truncated" :
             code == Z_ERRNO ? strerror(errno) : zmsg);
    int closed = gzclose(f);
    if (ok && closed != Z_OK)
        ok = fail(err, errlen, "%s: offset %zu: %s", path, n,
                  closed == Z_BUF_ERROR ? "the gzip stream is truncated" : "cannot read the file");
    if (!ok) {
        sup_free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* n * size as a size_t, false on overflow. */
static bool mul_size(uint64_t n, uint64_t size, size_t *out)
{
    uint64_t r;
    if (__builtin_mul_overflow(n, size, &r) || r > SIZE_MAX)
        return false;
    *out = (size_t)r;
    return true;
}

/* Allocates the x and y arrays of d (d->n, x_bytes, y_bytes set). */
static bool alloc_xy(rt_dataset *d, const char *path, char *err, size_t errlen)
{
    size_t xb, yb;
    if (!mul_size((uint64_t)d->n, d->x_bytes, &xb) || !mul_size((uint64_t)d->n, d->y_bytes, &yb))
        return fail(err, errlen, "%s: the data does not fit in memory", path);
    d->x_data = sup_malloc(xb);
    d->y_data = sup_malloc(yb);
    if (!d->x_data || !d->y_data)
        return fail(err, errlen, "%s: out of memory", path);
    return true;
}

/* ---- csv ------------------------------------------------------------------------------------ */

/* The line starting at p: its end (the '\n' or the NUL) and its length without a trailing '\r'. */
static char *line_end(char *p, size_t *len)
{
    char *e = strchr(p, '\n');
    if (!e)
        e = p + strlen(p);
    *len = (size_t)(e - p) - (e > p && e[-1] == '\r');
    return e;
}

static bool blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != ' ' && p[i] != '\t')
            return false;
    return true;
}

enum { MAX_COLUMNS = 1 << 24 };

typedef struct csv_ctx {
    const char *path;
    int         cols, label;
    double      scale;
    char       *err;
    size_t      errlen;
} csv_ctx;

/* Parses one row (NUL-terminated at its end) into x (cols - 1 floats) and *y. */
static bool csv_row(const csv_ctx *c, char *line, long lineno, float *x, int64_t *y)
{
    char *p = line;
    int col = 0;
    for (;; col++) {
        while (*p == ' ' || *p == '\t')
            p++;
        long at = (long)(p - line) + 1;
        if (col == c->cols)
            return fail(c->err, c->errlen, "%s:%ld:%ld: more than the %d columns of the first row",
                        c->path, lineno, at, c->cols);
        if (*p == ',' || !*p)
            return fail(c->err, c->errlen, "%s:%ld:%ld: empty field (column %d)", c->path, lineno,
                        at, col + 1);
        char *end;
        double v = strtod(p, &end);
        while (*end == ' ' || *end == '\t')
            end++;
        if (end == p || (*end != ',' && *end)) {
            int w = (int)strcspn(p, ",");
            return fail(c->err, c->errlen, "%s:%ld:%ld: '%.*s' is not a number", c->path, lineno,
                        at, w > 40 ? 40 : w, p);
        }
        if (col == c->label) {
            if (!(v == floor(v) && fabs(v) < 9.2e18))
                return fail(c->err, c->errlen, "%s:%ld:%ld: the label %.*s is not an integer",
                            c->path, lineno, at, (int)(end - p), p);
            *y = (int64_t)v;
        } else {
            x[col - (col > c->label)] = (float)(v * c->scale);
        }
        p = end;
        if (!*p)
            break;
        p++;
    }
    if (col + 1 != c->cols)
        return fail(c->err, c->errlen, "%s:%ld:%ld: %d columns, but the first row has %d", c->path,
                    lineno, (long)(p - line) + 1, col + 1, c->cols);
    return true;
}

static bool load_csv(const rt_data_spec *s, rt_dataset *d, char *err, size_t errlen)
{
    size_t len;
    char *text = (char *)read_all(s->path, &len, err, errlen);
    if (!text)
        return false;
    size_t nul = strlen(text);
    if (nul != len) {
        sup_free(text);
        return fail(err, errlen, "%s: offset %zu: a NUL byte: not a text file", s->path, nul);
    }
    /* First pass: count the rows, and the columns of the first. */
    int64_t rows = 0;
    size_t cols = 0;
    long lineno = 0, first_line = 0;
    for (char *p = text; *p; lineno++) {
        size_t n;
        char *e = line_end(p, &n);
        if ((lineno > 0 || !s->header) && !blank(p, n)) {
            if (rows++ == 0) {
                cols = 1;
                first_line = lineno + 1;
                for (size_t i = 0; i < n; i++)
                    cols += p[i] == ',';
            }
        }
        p = *e ? e + 1 : e;
    }
    if (cols > MAX_COLUMNS) {
        sup_free(text);
        return fail(err, errlen, "%s:%ld:1: more than %d columns", s->path, first_line, MAX_COLUMNS);
    }
    csv_ctx c = {.path = s->path, .cols = (int)cols, .label = s->label < 0 ? (int)cols + s->label :
                 s->label, .scale = s->scale, .err = err, .errlen = errlen};
    bool ok = true;
    if (rows == 0)
        ok = fail(err, errlen, "%s: no data rows", s->path);
    else if (c.cols < 2 || c.label < 0 || c.label >= c.cols)
        ok = fail(err, errlen, "%s:%ld:1: label column %d is out of range for %d columns", s->path,
                  first_line, s->label, c.cols);
    if (ok) {
        d->n = rows;
        snprintf(d->x_dtype, sizeof d->x_dtype, "F32");
        snprintf(d->y_dtype, sizeof d->y_dtype, "I64");
        d->x_rank = 1;
        d->x_shape[0] = c.cols - 1;
        d->x_bytes = sizeof(float) * (size_t)(c.cols - 1);
        d->y_bytes = sizeof(int64_t);
        ok = alloc_xy(d, s->path, err, errlen);
    }
    /* Second pass: parse, each line cut at its end so strtod cannot run into the next. */
    int64_t row = 0;
    lineno = 0;
    for (char *p = text; ok && *p; lineno++) {
        size_t n;
        char *e = line_end(p, &n);
        char *next = *e ? e + 1 : e;
        if ((lineno > 0 || !s->header) && !blank(p, n)) {
            p[n] = 0;
            ok = csv_row(&c, p, lineno + 1, (float *)(void *)(d->x_data + (size_t)row * d->x_bytes),
                         (int64_t *)(void *)(d->y_data + (size_t)row * d->y_bytes));
            row++;
        }
        p = next;
    }
    sup_free(text);
    return ok;
}

/* ---- npy and safetensors: tensors as they are ----------------------------------------------- */

static const char *npy_dtype(const char *descr)
{
    static const char *const map[][2] = {
        {"<f4", "F32"}, {"<f8", "F64"}, {"<f2", "F16"}, {"|i1", "I8"},  {"|u1", "U8"},
        {"<i2", "I16"}, {"<i4", "I32"}, {"<i8", "I64"}, {"<u2", "U16"}, {"<u4", "U32"},
        {"<u8", "U64"}, {"|b1", "BOOL"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(descr, map[i][0]))
            return map[i][1];
    return NULL;
}

/* The per-sample part of a tensor of shape[0..rank) holding `bytes` bytes: dtype, shape[1:], bytes
 * per sample. shape[0] >= 1 and bytes == numel * element size, checked by the caller. */
static void per_sample(const char *dtype, int rank, const int64_t *shape, uint64_t bytes,
                       char *out_dtype, int *out_rank, int64_t *out_shape, size_t *out_bytes)
{
    snprintf(out_dtype, 8, "%s", dtype);
    *out_rank = rank - 1;
    for (int i = 1; i < rank; i++)
        out_shape[i - 1] = shape[i];
    *out_bytes = (size_t)(bytes / (uint64_t)shape[0]);
}

/* Reads one .npy file of samples: data into *data (sup_malloc'd), its header into *h. */
static bool npy_file(const char *path, rt_npy *h, unsigned char **data, char *err, size_t errlen)
{
    if (!rt_npy_read_header(path, h, err, errlen))
        return false;
    if (h->rank == 0)
        return fail(err, errlen, "%s: holds a scalar, not a batch of samples", path);
    if (h->shape[0] == 0)
        return fail(err, errlen, "%s: has no samples (shape[0] is 0)", path);
    uint64_t bytes = h->file_size - h->data_offset;
    if (bytes > SIZE_MAX)
        return fail(err, errlen, "%s: the data does not fit in memory", path);
    *data = sup_malloc((size_t)bytes);
    if (!*data)
        return fail(err, errlen, "%s: out of memory", path);
    if (h->fortran_order && h->rank > 1) {
        /* rt_npy_read transposes into C order (with malloc, not the hook); rare enough to copy. */
        void *c;
        if (!rt_npy_read(path, h, &c, err, errlen))
            return false;
        memcpy(*data, c, (size_t)bytes);
        free(c);
        return true;
    }
    FILE *f = fopen(path, "rb");
    bool ok = f && fseek(f, (long)h->data_offset, SEEK_SET) == 0 &&
              fread(*data, 1, (size_t)bytes, f) == bytes;
    if (f)
        fclose(f);
    return ok ? true : fail(err, errlen, "%s: offset %llu: cannot read the data", path,
                            (unsigned long long)h->data_offset);
}

static bool load_npy(const rt_data_spec *s, rt_dataset *d, char *err, size_t errlen)
{
    if (!s->path_y)
        return fail(err, errlen, "npy data needs both an x and a y file");
    rt_npy hx, hy;
    if (!npy_file(s->path, &hx, &d->x_data, err, errlen) ||
        !npy_file(s->path_y, &hy, &d->y_data, err, errlen))
        return false;
    if (hx.shape[0] != hy.shape[0])
        return fail(err, errlen, "%s holds %lld samples but %s holds %lld", s->path,
                    (long long)hx.shape[0], s->path_y, (long long)hy.shape[0]);
    const char *xt = npy_dtype(hx.descr), *yt = npy_dtype(hy.descr);
    if (!xt || !yt)
        return fail(err, errlen, "%s: unsupported dtype '%s'", xt ? s->path_y : s->path,
                    xt ? hy.descr : hx.descr);
    d->n = hx.shape[0];
    per_sample(xt, hx.rank, hx.shape, hx.file_size - hx.data_offset, d->x_dtype, &d->x_rank,
               d->x_shape, &d->x_bytes);
    per_sample(yt, hy.rank, hy.shape, hy.file_size - hy.data_offset, d->y_dtype, &d->y_rank,
               d->y_shape, &d->y_bytes);
    return true;
}

/* Reads tensor `name` of st (validated against the file by rt_st_read_header) into *data. */
static const rt_st_tensor *st_tensor(const char *path, const rt_safetensors *st, const char *name,
                                     unsigned char **data, char *err, size_t errlen)
{
    const rt_st_tensor *t = name ? rt_st_find(st, name) : NULL;
    if (!t) {
        fail(err, errlen, "%s: no tensor named '%s'", path, name ? name : "(none given)");
        return NULL;
    }
    if (t->rank == 0 || t->shape[0] == 0) {
        fail(err, errlen, "%s: tensor '%s' %s", path, name,
             t->rank == 0 ? "is a scalar, not a batch of samples" : "has no samples (shape[0] is 0)");
        return NULL;
    }
    uint64_t bytes = t->end - t->begin;
    *data = bytes <= SIZE_MAX ? sup_malloc((size_t)bytes) : NULL;
    if (!*data) {
        fail(err, errlen, "%s: out of memory for tensor '%s'", path, name);
        return NULL;
    }
    return rt_st_read_tensor(path, st, t, *data, err, errlen) ? t : NULL;
}

static bool load_safetensors(const rt_data_spec *s, rt_dataset *d, char *err, size_t errlen)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    const rt_st_tensor *x = NULL, *y = NULL;
    bool ok = rt_st_read_header(&a, s->path, &st, err, errlen) &&
              (x = st_tensor(s->path, &st, s->x_name, &d->x_data, err, errlen)) &&
              (y = st_tensor(s->path, &st, s->y_name, &d->y_data, err, errlen));
    if (ok && x->shape[0] != y->shape[0])
        ok = fail(err, errlen, "%s: tensor '%s' holds %lld samples but '%s' holds %lld", s->path,
                  s->x_name, (long long)x->shape[0], s->y_name, (long long)y->shape[0]);
    if (ok) {
        d->n = x->shape[0];
        per_sample(x->dtype, x->rank, x->shape, x->end - x->begin, d->x_dtype, &d->x_rank,
                   d->x_shape, &d->x_bytes);
        per_sample(y->dtype, y->rank, y->shape, y->end - y->begin, d->y_dtype, &d->y_rank,
                   d->y_shape, &d->y_bytes);
    }
    sup_arena_reset(&a);
    return ok;
}

/* ---- mnist (IDX) ---------------------------------------------------------------------------- */

/* Reads dir/name, or dir/name.gz when that is the one that exists, as an IDX file of unsigned bytes
 * with `rank` dimensions: dims[0..rank) and the data after the header. *path is the file used. */
static unsigned char *idx_file(const char *dir, const char *name, int rank, char *path,
                               size_t pathlen, uint64_t *dims, char *err, size_t errlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    if (access(path, F_OK) != 0) {
        snprintf(path, pathlen, "%s/%s.gz", dir, name);
        if (access(path, F_OK) != 0) {
            fail(err, errlen, "%s/%s: no such file (nor %s.gz)", dir, name, name);
            return NULL;
        }
    }
    size_t len;
    unsigned char *buf = read_all(path, &len, err, errlen);
    if (!buf)
        return NULL;
    size_t hdr = 4 + 4 * (size_t)rank;
    const char *why = NULL;
    size_t at = 0;
    if (len < 4 || buf[0] || buf[1] || buf[2] != 0x08 || buf[3] != rank) {
        why = rank == 3 ? "not an IDX file of unsigned bytes with 3 dimensions (magic 00 00 08 03)" :
                          "not an IDX file of unsigned bytes with 1 dimension (magic 00 00 08 01)";
    } else if (len < hdr) {
        why = "the dimensions are truncated";
        at = 4;
    }
    uint64_t want = 1;
    for (int i = 0; !why && i < rank; i++) {
        const unsigned char *p = buf + 4 + 4 * i;
        dims[i] = (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
        if (dims[i] == 0 || __builtin_mul_overflow(want, dims[i], &want)) {
            why = dims[i] ? "the dimensions' product overflows" :
                  i ? "a dimension is 0" : "no samples (the first dimension is 0)";
            at = 4 + 4 * (size_t)i;
        }
    }
    if (why)
        fail(err, errlen, "%s: offset %zu: %s", path, at, why);
    else if (want != len - hdr)
        fail(err, errlen, "%s: offset %zu: %s: the dimensions ask for %llu bytes of data, the file "
             "has %zu", path, hdr, want > len - hdr ? "the data is truncated" :
             "trailing bytes after the data", (unsigned long long)want, len - hdr);
    if (why || want != len - hdr) {
        sup_free(buf);
        return NULL;
    }
    return buf;
}

static bool load_mnist(const rt_data_spec *s, rt_dataset *d, char *err, size_t errlen)
{
    char ipath[4096], lpath[4096];
    uint64_t idims[3], ldims[1];
    unsigned char *img = idx_file(s->path, "train-images-idx3-ubyte", 3, ipath, sizeof ipath, idims,
                                  err, errlen);
    unsigned char *lab = img ? idx_file(s->path, "train-labels-idx1-ubyte", 1, lpath, sizeof lpath,
                                        ldims, err, errlen) : NULL;
    bool ok = img && lab;
    if (ok && idims[0] != ldims[0])
        ok = fail(err, errlen, "%s holds %llu images but %s holds %llu labels", ipath,
                  (unsigned long long)idims[0], lpath, (unsigned long long)ldims[0]);
    if (ok) {
        d->n = (int64_t)idims[0];
        snprintf(d->x_dtype, sizeof d->x_dtype, "F32");
        snprintf(d->y_dtype, sizeof d->y_dtype, "I64");
        d->x_rank = 3;
        d->x_shape[0] = 1, d->x_shape[1] = (int64_t)idims[1], d->x_shape[2] = (int64_t)idims[2];
        ok = mul_size(idims[1] * idims[2], sizeof(float), &d->x_bytes);
        d->y_bytes = sizeof(int64_t);
        ok = ok ? alloc_xy(d, ipath, err, errlen) : fail(err, errlen, "%s: images too large", ipath);
    }
    if (ok) {
        /* As torchvision's ToTensor: float32(pixel) / 255. */
        float *x = (float *)(void *)d->x_data;
        size_t npix = (size_t)d->n * (d->x_bytes / sizeof(float));
        for (size_t i = 0; i < npix; i++)
            x[i] = (float)img[16 + i] / 255.0f;
        int64_t *y = (int64_t *)(void *)d->y_data;
        for (int64_t i = 0; i < d->n; i++)
            y[i] = lab[8 + i];
    }
    sup_free(img);
    sup_free(lab);
    return ok;
}

/* ---- text ----------------------------------------------------------------------------------- */

static bool load_text(const rt_data_spec *s, rt_dataset *d, char *err, size_t errlen)
{
    if (s->context <= 0)
        return fail(err, errlen, "%s: the context length must be positive, not %lld", s->path,
                    (long long)s->context);
    size_t len;
    unsigned char *t = read_all(s->path, &len, err, errlen);
    if (!t)
        return false;
    if (s->context > INT64_MAX / 16 || (uint64_t)len < (uint64_t)s->context + 1) {
        sup_free(t);
        return fail(err, errlen, "%s: %zu bytes of text are too few for one window of %lld tokens "
                    "and its target (%lld bytes)", s->path, len, (long long)s->context,
                    (long long)s->context + 1);
    }
    /* The vocabulary is the sorted set of the bytes that occur; a token is its byte's rank. */
    bool seen[256] = {false};
    for (size_t i = 0; i < len; i++)
        seen[t[i]] = true;
    unsigned char rank[256];
    for (int b = 0; b < 256; b++)
        if (seen[b]) {
            rank[b] = (unsigned char)d->nvocab;
            d->vocab[d->nvocab++] = (unsigned char)b;
        }
    for (size_t i = 0; i < len; i++)
        t[i] = rank[t[i]];
    d->tokens = t;
    d->ntokens = (int64_t)len;
    d->context = s->context;
    d->n = (d->ntokens - 1) / s->context;
    snprintf(d->x_dtype, sizeof d->x_dtype, "I64");
    snprintf(d->y_dtype, sizeof d->y_dtype, "I64");
    d->x_rank = d->y_rank = 1;
    d->x_shape[0] = d->y_shape[0] = s->context;
    d->x_bytes = d->y_bytes = sizeof(int64_t) * (size_t)s->context;
    return true;
}

/* ---- the data set --------------------------------------------------------------------------- */

bool rt_data_load(const rt_data_spec *s, rt_dataset *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!s->path)
        return fail(err, errlen, "the data source names no file");
    bool ok = false;
    switch (s->kind) {
    case RT_DATA_CSV: ok = load_csv(s, out, err, errlen); break;
    case RT_DATA_NPY: ok = load_npy(s, out, err, errlen); break;
    case RT_DATA_MNIST: ok = load_mnist(s, out, err, errlen); break;
    case RT_DATA_SAFETENSORS: ok = load_safetensors(s, out, err, errlen); break;
    case RT_DATA_TEXT: ok = load_text(s, out, err, errlen); break;
    default: ok = fail(err, errlen, "unknown data source kind %d", (int)s->kind); break;
    }
    if (!ok)
        rt_data_free(out);
    return ok;
}

void rt_data_free(rt_dataset *d)
{
    sup_free(d->x_data);
    sup_free(d->y_data);
    sup_free(d->tokens);
    memset(d, 0, sizeof *d);
}

void rt_data_sample(const rt_dataset *d, int64_t i, void *x, void *y)
{
    if (d->tokens) {
        const unsigned char *w = d->tokens + (size_t)i * (size_t)d->context;
        int64_t *xs = x, *ys = y;
        for (int64_t k = 0; k < d->context; k++) {
            xs[k] = w[k];
            ys[k] = w[k + 1];
        }
        return;
    }
    memcpy(x, d->x_data + (size_t)i * d->x_bytes, d->x_bytes);
    memcpy(y, d->y_data + (size_t)i * d->y_bytes, d->y_bytes);
}

/* ---- split and shuffle ---------------------------------------------------------------------- */

void rt_data_shuffle(int64_t *v, int64_t n, uint64_t seed, uint64_t stream)
{
    for (int64_t i = n - 1; i >= 1; i--) {
        uint32_t w[4];
        sup_philox4x32(seed, stream, (uint64_t)i, w);
        uint64_t r = (uint64_t)w[0] | (uint64_t)w[1] << 32;
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

bool rt_data_split(int64_t n, double frac, uint64_t seed, int64_t **train, int64_t *ntrain,
                   int64_t **valid, int64_t *nvalid, char *err, size_t errlen)
{
    *train = *valid = NULL;
    *ntrain = *nvalid = 0;
    if (n < 1 || !(frac >= 0 && frac < 1))
        return fail(err, errlen, "a validation fraction must be in [0, 1) and the data non-empty "
                    "(fraction %g of %lld samples)", frac, (long long)n);
    int64_t nv = (int64_t)floor(frac * (double)n + 0.5);
    if (frac > 0 && nv < 1)
        nv = 1;
    if (nv >= n)
        return fail(err, errlen, "a validation fraction of %g leaves no training samples of %lld",
                    frac, (long long)n);
    size_t bytes;
    if (!mul_size((uint64_t)n, sizeof(int64_t), &bytes))
        return fail(err, errlen, "out of memory");
    int64_t *p = sup_malloc(bytes);
    unsigned char *is_valid = sup_malloc((size_t)n);
    *train = sup_malloc(sizeof(int64_t) * (size_t)(n - nv));
    *valid = sup_malloc(sizeof(int64_t) * (size_t)(nv ? nv : 1));
    bool ok = p && is_valid && *train && *valid;
    if (ok) {
        for (int64_t i = 0; i < n; i++)
            p[i] = i, is_valid[i] = 0;
        rt_data_shuffle(p, n, seed, RT_DATA_SPLIT_STREAM);
        for (int64_t i = n - nv; i < n; i++)
            is_valid[p[i]] = 1;
        for (int64_t i = 0; i < n; i++) {    /* ascending: walk 0..n-1 */
            if (is_valid[i])
                (*valid)[(*nvalid)++] = i;
            else
                (*train)[(*ntrain)++] = i;
        }
    }
    sup_free(p);
    sup_free(is_valid);
    if (!ok) {
        sup_free(*train);
        sup_free(*valid);
        *train = *valid = NULL;
        return fail(err, errlen, "out of memory");
    }
    return true;
}

/* ---- the batcher ---------------------------------------------------------------------------- */

/* The ring has prefetch + 1 slots: the consumer holds one (the batch last handed out) while the
 * producer fills up to `prefetch` others. Batch k (counted from `first`) goes to slot k % nslots;
 * the producer may fill batch k once k - released < nslots, where released counts the batches the
 * consumer has given back, so it never writes a slot the consumer still reads. */
struct rt_batcher {
    const rt_dataset *d;
    int64_t          *order;        /* the epoch's order of sample indices */
    int64_t           n, batch, nbatches, first;
    int               nslots;
    size_t            xslot, yslot; /* bytes of one slot */
    unsigned char    *xbuf, *ybuf;  /* nslots slots each */
    pthread_t         thread;
    bool              started;
    pthread_mutex_t   mu;
    pthread_cond_t    filled, freed;
    int64_t           produced, consumed, released; /* batches, counted from first */
    bool              holding, stop;
};

int64_t rt_batcher_nbatches(int64_t n, int64_t batch)
{
    return batch > 0 && n > 0 ? (n - 1) / batch + 1 : 0;
}

static void fill(rt_batcher *b, int64_t k)
{
    int64_t start = (b->first + k) * b->batch, count = b->n - start;
    if (count > b->batch)
        count = b->batch;
    size_t slot = (size_t)(k % b->nslots);
    unsigned char *x = b->xbuf + slot * b->xslot, *y = b->ybuf + slot * b->yslot;
    for (int64_t s = 0; s < count; s++)
        rt_data_sample(b->d, b->order[start + s], x + (size_t)s * b->d->x_bytes,
                       y + (size_t)s * b->d->y_bytes);
}

static void *producer(void *arg)
{
    rt_batcher *b = arg;
    for (int64_t k = 0; b->first + k < b->nbatches; k++) {
        pthread_mutex_lock(&b->mu);
        while (!b->stop && k - b->released >= b->nslots)
            pthread_cond_wait(&b->freed, &b->mu);
        bool stop = b->stop;
        pthread_mutex_unlock(&b->mu);
        if (stop)
            break;
        fill(b, k);
        pthread_mutex_lock(&b->mu);
        b->produced = k + 1;
        pthread_cond_signal(&b->filled);
        pthread_mutex_unlock(&b->mu);
    }
    return NULL;
}

static void batcher_free(rt_batcher *b)
{
    sup_free(b->order);
    sup_free(b->xbuf);
    sup_free(b->ybuf);
    pthread_cond_destroy(&b->filled);
    pthread_cond_destroy(&b->freed);
    pthread_mutex_destroy(&b->mu);
    sup_free(b);
}

rt_batcher *rt_batcher_create(const rt_dataset *d, const int64_t *idx, int64_t n, int64_t batch,
                              bool shuffle, uint64_t seed, int64_t epoch, int64_t first,
                              int prefetch, char *err, size_t errlen)
{
    int64_t nb = rt_batcher_nbatches(n, batch);
    if (n < 0 || batch < 1 || first < 0 || first > nb || epoch < 0) {
        fail(err, errlen, "bad batcher arguments: %lld samples, batch %lld, epoch %lld, first batch "
             "%lld of %lld", (long long)n, (long long)batch, (long long)epoch, (long long)first,
             (long long)nb);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= d->n) {
            fail(err, errlen, "sample index %lld (at %lld) is out of range for %lld samples",
                 (long long)idx[i], (long long)i, (long long)d->n);
            return NULL;
        }
    int nslots = (prefetch < 1 ? 1 : prefetch > 64 ? 64 : prefetch) + 1;
    int64_t per = n < batch ? n : batch;
    size_t xslot, yslot, xall, yall, obytes;
    if (!mul_size((uint64_t)per, d->x_bytes, &xslot) || !mul_size((uint64_t)per, d->y_bytes, &yslot) ||
        !mul_size(xslot, (uint64_t)nslots, &xall) || !mul_size(yslot, (uint64_t)nslots, &yall) ||
        !mul_size((uint64_t)n, sizeof(int64_t), &obytes)) {
        fail(err, errlen, "batches of %lld samples do not fit in memory", (long long)batch);
        return NULL;
    }
    rt_batcher *b = sup_malloc(sizeof *b);
    if (!b) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    *b = (rt_batcher){.d = d, .n = n, .batch = batch, .nbatches = nb, .first = first,
                      .nslots = nslots, .xslot = xslot, .yslot = yslot};
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->filled, NULL);
    pthread_cond_init(&b->freed, NULL);
    b->order = sup_malloc(obytes);
    b->xbuf = sup_malloc(xall);
    b->ybuf = sup_malloc(yall);
    if (!b->order || !b->xbuf || !b->ybuf) {
        batcher_free(b);
        fail(err, errlen, "out of memory for %d batch buffers", nslots);
        return NULL;
    }
    if (n)
        memcpy(b->order, idx, obytes);
    if (shuffle)
        rt_data_shuffle(b->order, n, seed, (uint64_t)epoch);
    if (first < nb) {
        int rc = pthread_create(&b->thread, NULL, producer, b);
        if (rc) {
            batcher_free(b);
            fail(err, errlen, "cannot start the data loader thread: %s", strerror(rc));
            return NULL;
        }
        b->started = true;
    }
    return b;
}

bool rt_batcher_next(rt_batcher *b, rt_batch *out)
{
    pthread_mutex_lock(&b->mu);
    if (b->holding) {
        b->released++;
        b->holding = false;
        pthread_cond_signal(&b->freed);
    }
    if (b->first + b->consumed >= b->nbatches) {
        pthread_mutex_unlock(&b->mu);
        return false;
    }
    while (b->produced <= b->consumed)
        pthread_cond_wait(&b->filled, &b->mu);
    int64_t k = b->consumed++;
    b->holding = true;
    pthread_mutex_unlock(&b->mu);
    size_t slot = (size_t)(k % b->nslots);
    int64_t start = (b->first + k) * b->batch;
    out->index = b->first + k;
    out->n = b->n - start < b->batch ? b->n - start : b->batch;
    out->x = b->xbuf + slot * b->xslot;
    out->y = b->ybuf + slot * b->yslot;
    return true;
}

void rt_batcher_destroy(rt_batcher *b)
{
    if (!b)
        return;
    if (b->started) {
        pthread_mutex_lock(&b->mu);
        b->stop = true;
        pthread_cond_broadcast(&b->freed);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
    }
    batcher_free(b);
}
