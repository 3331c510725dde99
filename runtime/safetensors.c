/* Reading safetensors headers (see safetensors.h). */
#include "runtime/safetensors.h"

#include "runtime/json.h"
#include "support/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *name; int size; } st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
    {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8},
    {"U64", 8},
};

static int cmp_begin(const void *a, const void *b)
{
    const rt_st_tensor *x = a, *y = b;
    return (x->begin > y->begin) - (x->begin < y->begin);
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
    if (ok && (size < 8 || fread(nb, 1, 8, f) != 8)) {
        fclose(f);
        return bad(err, errlen, path, "shorter than the 8-byte header length", NULL);
    }
    for (int i = 7; i >= 0; i--)
        n = n << 8 | nb[i];
    if (!ok || n > 100000000 || n > size - 8) {
        fclose(f);
        return bad(err, errlen, path, ok ? "header length past the end of the file" :
                                           "cannot find the file's size", NULL);
    }
    char *text = sup_malloc(n + 1);
    if (!text || fread(text, 1, n, f) != n) {
        fclose(f);
        sup_free(text);
        return bad(err, errlen, path, text ? "truncated header" : "out of memory", NULL);
    }
    fclose(f);
    char jerr[256];
    rt_json *root = rt_json_parse(arena, text, n, jerr, sizeof jerr);
    sup_free(text);
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

const rt_st_tensor *rt_st_find(const rt_safetensors *st, const char *name)
{
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}
