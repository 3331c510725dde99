/* The JSON reader (see json.h): recursive descent with a depth limit. */
#include "runtime/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct jp {
    sup_arena  *arena;
    const char *s, *p, *end;
    char       *err;
    size_t      errlen;
    int         depth;
} jp;

static bool fail(jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(jp *j, const char *fmt, ...)
{
    int n = snprintf(j->err, j->errlen, "offset %zu: ", (size_t)(j->p - j->s));
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < j->errlen)
        vsnprintf(j->err + n, j->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

static void ws(jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
           c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool read_u4(jp *j, unsigned *u)
{
    if (j->end - j->p < 4)
        return fail(j, "truncated \\u escape");
    *u = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0)
            return fail(j, "bad \\u escape");
        *u = *u * 16 + (unsigned)h;
    }
    j->p += 4;
    return true;
}

static bool parse_string(jp *j, const char **out, size_t *outlen)
{
    j->p++;   /* the opening quote */
    /* The decoded string is never longer than the encoded one. */
    const char *start = j->p;
    while (j->p < j->end && *j->p != '"')
        j->p += *j->p == '\\' ? 2 : 1;
    if (j->p >= j->end)
        return fail(j, "unterminated string");
    size_t cap = (size_t)(j->p - start) + 1;
    char *d = sup_arena_alloc(j->arena, cap), *o = d;
    if (!d)
        return fail(j, "out of memory");
    for (j->p = start; *j->p != '"';) {
        unsigned char c = (unsigned char)*j->p++;
        if (c < 0x20)
            return fail(j, "control character in a string");
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        char e = *j->p++;
        unsigned u;
        switch (e) {
        case '"': case '\\': case '/': *o++ = e; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (!read_u4(j, &u))
                return false;
            if (u >= 0xd800 && u < 0xdc00) {
                unsigned lo;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
                    return fail(j, "unpaired surrogate");
                j->p += 2;
                if (!read_u4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return fail(j, "bad surrogate pair");
                u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
            }
            /* UTF-8 of u needs at most 4 bytes; the escape took at least 6. */
            if (u < 0x80)
                *o++ = (char)u;
            else if (u < 0x800)
                *o++ = (char)(0xc0 | u >> 6), *o++ = (char)(0x80 | (u & 0x3f));
            else if (u < 0x10000)
                *o++ = (char)(0xe0 | u >> 12), *o++ = (char)(0x80 | (u >> 6 & 0x3f)),
                *o++ = (char)(0x80 | (u & 0x3f));
            else
                *o++ = (char)(0xf0 | u >> 18), *o++ = (char)(0x80 | (u >> 12 & 0x3f)),
                *o++ = (char)(0x80 | (u >> 6 & 0x3f)), *o++ = (char)(0x80 | (u & 0x3f));
            break;
        default: return fail(j, "bad escape '\\%c'", e);
        }
    }
    j->p++;
    *o = 0;
    *out = d;
    *outlen = (size_t)(o - d);
    return true;
}

static rt_json *parse_value(jp *j);

static bool push(jp *j, rt_json *v, int *cap, rt_json *item, const char *key)
{
    if (v->n == *cap) {
        int ncap = *cap ? *cap * 2 : 8;
        v->items = sup_arena_grow(j->arena, v->items, sizeof *v->items * (size_t)*cap,
                                  sizeof *v->items * (size_t)ncap);
        if (v->kind == RT_JSON_OBJECT)
            v->keys = sup_arena_grow(j->arena, v->keys, sizeof *v->keys * (size_t)*cap,
                                     sizeof *v->keys * (size_t)ncap);
        if (!v->items || (v->kind == RT_JSON_OBJECT && !v->keys))
            return fail(j, "out of memory");
        *cap = ncap;
    }
    if (key)
        v->keys[v->n] = key;
    v->items[v->n++] = item;
    return true;
}

static rt_json *parse_container(jp *j, rt_json *v, char close)
{
    int cap = 0;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return v;
    }
    for (;;) {
        const char *key = NULL;
        ws(j);
        if (v->kind == RT_JSON_OBJECT) {
            size_t klen;
            if (j->p >= j->end || *j->p != '"')
                return fail(j, "expected a key"), NULL;
            if (!parse_string(j, &key, &klen))
                return NULL;
            ws(j);
            if (j->p >= j->end || *j->p != ':')
                return fail(j, "expected ':'"), NULL;
            j->p++;
        }
        rt_json *item = parse_value(j);
        if (!item || !push(j, v, &cap, item, key))
            return NULL;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return v;
        }
        return fail(j, "expected ',' or '%c'", close), NULL;
    }
}

static rt_json *parse_value(jp *j)
{
    ws(j);
    if (j->p >= j->end)
        return fail(j, "unexpected end"), NULL;
    if (++j->depth > 64)
        return fail(j, "nested deeper than 64"), NULL;
    rt_json *v = SUP_NEW(j->arena, rt_json);
    if (!v)
        return fail(j, "out of memory"), NULL;
    char c = *j->p;
    rt_json *r = v;
    if (c == '{' || c == '[') {
        v->kind = c == '{' ? RT_JSON_OBJECT : RT_JSON_ARRAY;
        r = parse_container(j, v, c == '{' ? '}' : ']');
    } else if (c == '"') {
        v->kind = RT_JSON_STRING;
        if (!parse_string(j, &v->str, &v->len))
            r = NULL;
    } else if (j->end - j->p >= 4 && !memcmp(j->p, "true", 4)) {
        v->kind = RT_JSON_BOOL, v->b = true, j->p += 4;
    } else if (j->end - j->p >= 5 && !memcmp(j->p, "false", 5)) {
        v->kind = RT_JSON_BOOL, j->p += 5;
    } else if (j->end - j->p >= 4 && !memcmp(j->p, "null", 4)) {
        v->kind = RT_JSON_NULL, j->p += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        char buf[64];
        size_t n = 0;
        while (j->p + n < j->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", j->p[n]))
            n++;
        memcpy(buf, j->p, n);
        buf[n] = 0;
        char *endp;
        v->kind = RT_JSON_NUMBER;
        v->num = strtod(buf, &endp);
        if (endp != buf + n)
            r = (fail(j, "bad number"), NULL);
        j->p += n;
    } else
        r = (fail(j, "unexpected character '%c'", c), NULL);
    j->depth--;
    return r;
}

rt_json *rt_json_parse(sup_arena *arena, const char *text, size_t len, char *err, size_t errlen)
{
    jp j = {arena, text, text, text + len, err, errlen, 0};
    rt_json *v = parse_value(&j);
    if (!v)
        return NULL;
    ws(&j);
    if (j.p != j.end) {
        fail(&j, "trailing characters after the value");
        return NULL;
    }
    return v;
}

const rt_json *rt_json_get(const rt_json *obj, const char *key)
{
    if (!obj || obj->kind != RT_JSON_OBJECT)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key))
            return obj->items[i];
    return NULL;
}
