/* The runtime's file readers against good and hostile files: every size and offset is checked
 * against the real file, and each problem is named. */
#include "runtime/json.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char path[64];

static void write_file(const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

/* A safetensors file: header JSON `hdr`, then `nbytes` zero bytes of data. */
static void write_st(const char *hdr, size_t nbytes)
{
    size_t n = strlen(hdr);
    unsigned char *buf = calloc(1, 8 + n + nbytes);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, hdr, n);
    write_file(buf, 8 + n + nbytes);
    free(buf);
}

/* Reads path as safetensors; the error (or "" on success). */
static const char *st_error(void)
{
    static char err[512];
    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    bool ok = rt_st_read_header(&a, path, &st, err, sizeof err);
    sup_arena_reset(&a);
    if (ok)
        err[0] = 0;
    return err;
}

static bool contains(const char *s, const char *sub)
{
    bool ok = strstr(s, sub) != NULL;
    if (!ok)
        fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", s, sub);
    return ok;
}

static void test_safetensors(void)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    write_st("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},"
             "\"a\":{\"dtype\":\"I64\",\"shape\":[3,1],\"data_offsets\":[0,24]}}", 32);
    rt_safetensors st;
    char err[512];
    CHECK(rt_st_read_header(&a, path, &st, err, sizeof err));
    CHECK_EQ_INT(st.n, 2);
    const rt_st_tensor *t = rt_st_find(&st, "a");
    CHECK(t && !strcmp(t->dtype, "I64") && t->rank == 2 && t->shape[0] == 3 && t->end == 24);
    sup_arena_reset(&a);

    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    CHECK(contains(st_error(), "the data runs past the end of the file"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12);
    CHECK(contains(st_error(), "trailing bytes after the data"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    CHECK(contains(st_error(), "data_offsets do not match dtype and shape ('a')"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    CHECK(contains(st_error(), "leave a gap or overlap"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    CHECK(contains(st_error(), "duplicate tensor name"));
    write_st("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    CHECK(contains(st_error(), "unsupported dtype"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
    CHECK(contains(st_error(), "not a non-negative integer"));
    write_st("{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999,99999999999999],\"data_offsets\":[0,4]}}", 4);
    CHECK(contains(st_error(), "overflows"));
    write_st("{\"a\":{\"dtype\":\"F32\"", 0);
    CHECK(contains(st_error(), "header: offset"));
    write_st("[1, 2]", 0);
    CHECK(contains(st_error(), "not a JSON object"));
    /* A header length past the end of the file, and a file too short for one. */
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, '{', '}'};
    write_file(huge, 10);
    CHECK(contains(st_error(), "header length past the end of the file"));
    write_file(huge, 5);
    CHECK(contains(st_error(), "shorter than the 8-byte header length"));
    snprintf(path, sizeof path, "/nonexistent/x.safetensors");
    CHECK(contains(st_error(), "No such file"));
    snprintf(path, sizeof path, "test_readers.tmp");
}

static const char *npy_error(void)
{
    static char err[512];
    rt_npy h;
    if (rt_npy_read_header(path, &h, err, sizeof err))
        err[0] = 0;
    return err;
}

/* A v1.0 .npy file with header dict `dict` and `nbytes` of data. */
static void write_npy(const char *dict, size_t nbytes)
{
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "%s", dict);
    while ((10 + n + 1) % 64)
        hdr[n++] = ' ';
    hdr[n++] = '\n';
    unsigned char *buf = calloc(1, 10 + (size_t)n + nbytes);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)n;
    buf[9] = (unsigned char)(n >> 8);
    memcpy(buf + 10, hdr, (size_t)n);
    write_file(buf, 10 + (size_t)n + nbytes);
    free(buf);
}

static void test_npy(void)
{
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    rt_npy h;
    char err[512];
    CHECK(rt_npy_read_header(path, &h, err, sizeof err));
    CHECK(!strcmp(h.descr, "<f4") && h.rank == 2 && h.shape[1] == 3 && h.data_offset == 128);
    write_npy("{'descr': '<i8', 'fortran_order': False, 'shape': (5,), }", 40);
    CHECK(rt_npy_read_header(path, &h, err, sizeof err) && h.rank == 1 && h.elem_size == 8);
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4);
    CHECK(rt_npy_read_header(path, &h, err, sizeof err) && h.rank == 0);
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20);
    CHECK(contains(npy_error(), "the data is truncated"));
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28);
    CHECK(contains(npy_error(), "trailing bytes after the data"));
    write_npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16);
    CHECK(contains(npy_error(), "unsupported dtype"));
    write_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8);
    CHECK(contains(npy_error(), "malformed shape"));
    write_npy("{'descr': '<f4', 'shape': (2,), }", 8);
    CHECK(contains(npy_error(), "lacks descr, fortran_order or shape"));
    write_file("\x93NUMPX\x01\x00\x10\x00", 10);
    CHECK(contains(npy_error(), "not a .npy file"));
    write_file("\x93NUMPY\x01\x00\xff\x00{", 11);
    CHECK(contains(npy_error(), "the header runs past the end of the file"));
}

static void test_json(void)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    char err[256];
    const char *text = "{\"s\": \"a\\u00e9\\ud83d\\ude00\\n\", \"n\": [1, -2.5e3, true, null], \"o\": {}}";
    rt_json *v = rt_json_parse(&a, text, strlen(text), err, sizeof err);
    CHECK(v && v->kind == RT_JSON_OBJECT && v->n == 3);
    const rt_json *s = rt_json_get(v, "s");
    CHECK(s && !strcmp(s->str, "a\xc3\xa9\xf0\x9f\x98\x80\n"));
    const rt_json *n = rt_json_get(v, "n");
    CHECK(n && n->n == 4 && n->items[1]->num == -2500 && n->items[2]->b && n->items[3]->kind == RT_JSON_NULL);
    static const char *const bad[] = {"{", "[1,]", "{\"a\" 1}", "\"abc", "[1] 2", "tru", "\"\\x\"",
                                      "\"\\ud800\"", "{\"a\":\"\x01\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        CHECK(!rt_json_parse(&a, bad[i], strlen(bad[i]), err, sizeof err));
        CHECK(!strncmp(err, "offset ", 7));
    }
    char deep[200];
    memset(deep, '[', sizeof deep);
    CHECK(!rt_json_parse(&a, deep, sizeof deep, err, sizeof err) && contains(err, "deeper than 64"));
    sup_arena_reset(&a);
}

int main(void)
{
    snprintf(path, sizeof path, "test_readers.tmp");
    test_json();
    test_safetensors();
    test_npy();
    remove(path);
    return check_result("test_readers");
}
