/* The training data loader: every source loads with the types frontend/train.c promises, every bad
 * file is named with its position and problem, the split and the shuffle are the documented
 * permutation (known answers from a Python reimplementation), the batcher covers each sample once
 * per epoch in a reproducible order, resumes mid-epoch and stops mid-epoch, and a failed
 * allocation anywhere in loading leaves nothing behind. */
#include "runtime/data.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static char dir[64];      /* a fresh directory under /tmp for every file written here */
static char err[1024];

static const char *in_dir(const char *name)
{
    static char buf[64][400];
    static int next;
    char *p = buf[next++ % 64];   /* specs keep these pointers a while */
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const void *data, size_t n)
{
    FILE *f = fopen(in_dir(name), "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *name, const char *s) { write_file(name, s, strlen(s)); }

static void write_gz(const char *name, const void *data, size_t n)
{
    gzFile f = gzopen(in_dir(name), "wb");
    gzwrite(f, data, (unsigned)n);
    gzclose(f);
}

static bool contains(const char *s, const char *sub)
{
    bool ok = strstr(s, sub) != NULL;
    if (!ok)
        fprintf(stderr, "  \"%s\" does not contain \"%s\"\n", s, sub);
    return ok;
}

/* Loads s into *d; the error, or "" on success. */
static const char *load(rt_data_spec s, rt_dataset *d)
{
    if (!rt_data_load(&s, d, err, sizeof err))
        return err;
    return "";
}

/* The error of loading s, which must fail (an empty data set is left behind). */
static const char *load_error(rt_data_spec s)
{
    rt_dataset d;
    if (rt_data_load(&s, &d, err, sizeof err)) {
        rt_data_free(&d);
        return "(loaded)";
    }
    CHECK(d.n == 0 && !d.x_data && !d.y_data && !d.tokens);
    return err;
}

static rt_data_spec csv(const char *name, int label, double scale, bool header)
{
    return (rt_data_spec){.kind = RT_DATA_CSV, .path = in_dir(name), .label = label,
                          .scale = scale, .header = header};
}

/* ---- csv ---- */

static void test_csv(void)
{
    const char *text = "a,b,c\n1,2,3\r\n4.5, -6 ,7\n\n8,9e1,10\n";
    write_text("t.csv", text);
    write_gz("t.csv.gz", text, strlen(text));
    const char *names[] = {"t.csv", "t.csv.gz"};
    for (int k = 0; k < 2; k++) {
        rt_dataset d;
        CHECK_EQ_STR(load(csv(names[k], -1, 0.5, true), &d), "");
        CHECK_EQ_INT(d.n, 3);
        CHECK_EQ_STR(d.x_dtype, "F32");
        CHECK_EQ_STR(d.y_dtype, "I64");
        CHECK(d.x_rank == 1 && d.x_shape[0] == 2 && d.y_rank == 0);
        CHECK(d.x_bytes == 8 && d.y_bytes == 8);
        float x[2];
        int64_t y;
        rt_data_sample(&d, 1, x, &y);
        CHECK(x[0] == 2.25f && x[1] == -3.0f && y == 7);
        rt_data_sample(&d, 2, x, &y);
        CHECK(x[0] == 4.0f && x[1] == 45.0f && y == 10);
        rt_data_free(&d);
    }
    /* The label first, and no header: "a,b,c" is then a row, and not numbers. */
    write_text("l.csv", "3,1.5,2\n-1,0,0\n");
    rt_dataset d;
    CHECK_EQ_STR(load(csv("l.csv", 0, 1, false), &d), "");
    float x[2];
    int64_t y;
    rt_data_sample(&d, 1, x, &y);
    CHECK(d.n == 2 && y == -1 && x[0] == 0 && x[1] == 0);
    rt_data_sample(&d, 0, x, &y);
    CHECK(y == 3 && x[0] == 1.5f && x[1] == 2.0f);
    rt_data_free(&d);
    CHECK_EQ_STR(load(csv("l.csv", -3, 1, false), &d), "");   /* -3 of 3 columns: the first */
    CHECK(d.n == 2);
    rt_data_free(&d);
    CHECK(contains(load_error(csv("t.csv", -1, 1, false)), "t.csv:1:1: 'a' is not a number"));

    write_text("ragged.csv", "1,2,3\n4,5,6\n7,8\n");
    CHECK(contains(load_error(csv("ragged.csv", -1, 1, false)),
                   "ragged.csv:3:4: 2 columns, but the first row has 3"));
    write_text("long.csv", "h\n1,2\n3,4,5\n");
    CHECK(contains(load_error(csv("long.csv", -1, 1, true)),
                   "long.csv:3:5: more than the 2 columns of the first row"));
    write_text("nan.csv", "1,2\n3,x4\n");
    CHECK(contains(load_error(csv("nan.csv", -1, 1, false)), "nan.csv:2:3: 'x4' is not a number"));
    write_text("frac.csv", "1,2\n3,4.5\n");
    CHECK(contains(load_error(csv("frac.csv", -1, 1, false)),
                   "frac.csv:2:3: the label 4.5 is not an integer"));
    write_text("empty.csv", "1,,2\n");
    CHECK(contains(load_error(csv("empty.csv", -1, 1, false)), "empty.csv:1:3: empty field"));
    write_text("trail.csv", "1,2,\n3,4,5\n");
    CHECK(contains(load_error(csv("trail.csv", -1, 1, false)), "trail.csv:1:5: empty field"));
    write_text("hdr.csv", "a,b\n\n");
    CHECK(contains(load_error(csv("hdr.csv", -1, 1, true)), "hdr.csv: no data rows"));
    CHECK(contains(load_error(csv("l.csv", 3, 1, false)),
                   "l.csv:1:1: label column 3 is out of range for 3 columns"));
    CHECK(contains(load_error(csv("one.csv", -1, 1, false)), "one.csv: No such file"));
    write_text("one.csv", "1\n2\n");
    CHECK(contains(load_error(csv("one.csv", -1, 1, false)), "out of range for 1 columns"));
    write_file("nul.csv", "1,2\n3\0,4\n", 9);
    CHECK(contains(load_error(csv("nul.csv", -1, 1, false)), "nul.csv: offset 5: a NUL byte"));
    /* A gzip stream cut short. */
    char big[4000];
    for (int i = 0; i < 1000; i++)
        memcpy(big + 4 * i, i % 7 ? "1,2\n" : "9,8\n", 4);
    write_gz("cut.csv.gz", big, sizeof big);
    FILE *f = fopen(in_dir("cut.csv.gz"), "rb");
    unsigned char gz[4096];
    size_t n = fread(gz, 1, sizeof gz, f);
    fclose(f);
    write_file("cut.csv.gz", gz, n - 12);
    CHECK(contains(load_error(csv("cut.csv.gz", -1, 1, false)),
                   "the gzip stream is truncated"));
    write_file("bad.csv.gz", gz, 20);
    CHECK(contains(load_error(csv("bad.csv.gz", -1, 1, false)), "bad.csv.gz: offset"));
}

/* ---- npy ---- */

static void test_npy(void)
{
    float xs[3 * 2 * 2];
    for (int i = 0; i < 12; i++)
        xs[i] = (float)i;
    int64_t ys[3] = {5, 6, 7};
    CHECK(rt_npy_write(in_dir("x.npy"), "<f4", 3, (int64_t[]){3, 2, 2}, xs, err, sizeof err));
    CHECK(rt_npy_write(in_dir("y.npy"), "<i8", 1, (int64_t[]){3}, ys, err, sizeof err));
    rt_data_spec s = {.kind = RT_DATA_NPY, .path = in_dir("x.npy"), .path_y = in_dir("y.npy")};
    rt_dataset d;
    CHECK_EQ_STR(load(s, &d), "");
    CHECK_EQ_INT(d.n, 3);
    CHECK_EQ_STR(d.x_dtype, "F32");
    CHECK_EQ_STR(d.y_dtype, "I64");
    CHECK(d.x_rank == 2 && d.x_shape[0] == 2 && d.x_shape[1] == 2 && d.x_bytes == 16);
    CHECK(d.y_rank == 0 && d.y_bytes == 8);
    float x[4];
    int64_t y;
    rt_data_sample(&d, 2, x, &y);
    CHECK(x[0] == 8 && x[3] == 11 && y == 7);
    rt_data_free(&d);

    /* Other dtypes as they are: u8 labels of shape [3, 2]. */
    unsigned char u8[6] = {1, 2, 3, 4, 5, 6};
    CHECK(rt_npy_write(in_dir("y8.npy"), "|u1", 2, (int64_t[]){3, 2}, u8, err, sizeof err));
    s.path_y = in_dir("y8.npy");
    CHECK_EQ_STR(load(s, &d), "");
    CHECK_EQ_STR(d.y_dtype, "U8");
    unsigned char y8[2];
    rt_data_sample(&d, 1, x, y8);
    CHECK(d.y_rank == 1 && d.y_shape[0] == 2 && d.y_bytes == 2 && y8[0] == 3 && y8[1] == 4);
    rt_data_free(&d);

    /* A Fortran-order file comes back in C order. */
    char hdr[] = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }        \n";
    unsigned char f[10 + sizeof hdr - 1 + 24] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                                 (unsigned char)(sizeof hdr - 1), 0};
    memcpy(f + 10, hdr, sizeof hdr - 1);
    float col[6] = {0, 3, 1, 4, 2, 5};        /* column-major [[0,1,2],[3,4,5]] */
    memcpy(f + 10 + sizeof hdr - 1, col, 24);
    write_file("fx.npy", f, sizeof f);
    CHECK(rt_npy_write(in_dir("fy.npy"), "<i8", 1, (int64_t[]){2}, ys, err, sizeof err));
    CHECK_EQ_STR(load((rt_data_spec){.kind = RT_DATA_NPY, .path = in_dir("fx.npy"),
                                     .path_y = in_dir("fy.npy")}, &d), "");
    float row[3];
    rt_data_sample(&d, 1, row, &y);
    CHECK(row[0] == 3 && row[1] == 4 && row[2] == 5 && y == 6);
    rt_data_free(&d);

    CHECK(rt_npy_write(in_dir("y2.npy"), "<i8", 1, (int64_t[]){2}, ys, err, sizeof err));
    s.path_y = in_dir("y2.npy");
    CHECK(contains(load_error(s), "x.npy holds 3 samples but"));
    CHECK(contains(load_error(s), "y2.npy holds 2"));
    write_file("cut.npy", f, sizeof f - 4);
    s.path = in_dir("cut.npy");
    CHECK(contains(load_error(s), "cut.npy: offset 77: the data is truncated"));
    CHECK(rt_npy_write(in_dir("scalar.npy"), "<f4", 0, NULL, xs, err, sizeof err));
    s.path = in_dir("scalar.npy");
    CHECK(contains(load_error(s), "scalar.npy: holds a scalar"));
    s.path = in_dir("none.npy");
    CHECK(contains(load_error(s), "none.npy: No such file"));
}

/* ---- mnist ---- */

/* IDX files of n images of h x w (pixel p of image i: 10 * i + p) and n labels (i + 1). */
static void write_idx(const char *sub, bool gz, uint32_t n, uint32_t h, uint32_t w, uint32_t nlab)
{
    mkdir(in_dir(sub), 0700);
    unsigned char img[16 + 256], lab[8 + 16];
    unsigned char ih[16] = {0, 0, 8, 3, 0, 0, 0, (unsigned char)n, 0, 0, 0, (unsigned char)h,
                            0, 0, 0, (unsigned char)w};
    unsigned char lh[8] = {0, 0, 8, 1, 0, 0, 0, (unsigned char)nlab};
    memcpy(img, ih, 16);
    memcpy(lab, lh, 8);
    for (uint32_t i = 0; i < n * h * w; i++)
        img[16 + i] = (unsigned char)(10 * (i / (h * w)) + i % (h * w));
    for (uint32_t i = 0; i < nlab; i++)
        lab[8 + i] = (unsigned char)(i + 1);
    char name[200];
    snprintf(name, sizeof name, "%s/train-images-idx3-ubyte%s", sub, gz ? ".gz" : "");
    (gz ? write_gz : write_file)(name, img, 16 + n * h * w);
    snprintf(name, sizeof name, "%s/train-labels-idx1-ubyte%s", sub, gz ? ".gz" : "");
    (gz ? write_gz : write_file)(name, lab, 8 + nlab);
}

static void test_mnist(void)
{
    write_idx("m", false, 3, 2, 3, 3);
    write_idx("mgz", true, 3, 2, 3, 3);
    const char *subs[] = {"m", "mgz"};
    for (int k = 0; k < 2; k++) {
        rt_dataset d;
        CHECK_EQ_STR(load((rt_data_spec){.kind = RT_DATA_MNIST, .path = in_dir(subs[k])}, &d), "");
        CHECK_EQ_INT(d.n, 3);
        CHECK_EQ_STR(d.x_dtype, "F32");
        CHECK_EQ_STR(d.y_dtype, "I64");
        CHECK(d.x_rank == 3 && d.x_shape[0] == 1 && d.x_shape[1] == 2 && d.x_shape[2] == 3);
        CHECK(d.x_bytes == 24 && d.y_rank == 0 && d.y_bytes == 8);
        float x[6];
        int64_t y;
        rt_data_sample(&d, 2, x, &y);
        CHECK(x[0] == 20.0f / 255.0f && x[5] == 25.0f / 255.0f && y == 3);
        rt_data_free(&d);
    }
    rt_data_spec s = {.kind = RT_DATA_MNIST, .path = in_dir("m")};
    write_idx("m", false, 3, 2, 3, 2);
    CHECK(contains(load_error(s), "train-images-idx3-ubyte holds 3 images but"));
    CHECK(contains(load_error(s), "train-labels-idx1-ubyte holds 2 labels"));
    write_idx("m", false, 3, 2, 3, 3);
    write_file("m/train-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x03\0\0\0\x02\0\0\0\x03" "abc", 19);
    CHECK(contains(load_error(s), "m/train-images-idx3-ubyte: offset 16: the data is truncated: the "
                                  "dimensions ask for 18 bytes of data, the file has 3"));
    write_file("m/train-images-idx3-ubyte", "\0\0\x08\x01\0\0\0\x03", 8);
    CHECK(contains(load_error(s), "m/train-images-idx3-ubyte: offset 0: not an IDX file of unsigned "
                                  "bytes with 3 dimensions"));
    write_file("m/train-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x03\0\0", 10);
    CHECK(contains(load_error(s), "offset 4: the dimensions are truncated"));
    write_file("m/train-images-idx3-ubyte", "\0\0", 2);
    CHECK(contains(load_error(s), "offset 0: not an IDX file"));
    write_file("m/train-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\x01\0\0\0\x00\0\0\0\x03", 16);
    CHECK(contains(load_error(s), "offset 8: a dimension is 0"));
    write_idx("m", false, 3, 2, 3, 3);
    write_file("m/train-labels-idx1-ubyte", "\0\0\x08\x01\0\0\0\x03\x01\x02\x03\x04", 12);
    CHECK(contains(load_error(s), "train-labels-idx1-ubyte: offset 8: trailing bytes after the data"));
    unlink(in_dir("m/train-labels-idx1-ubyte"));
    CHECK(contains(load_error(s), "m/train-labels-idx1-ubyte: no such file (nor "
                                  "train-labels-idx1-ubyte.gz)"));
}

/* ---- safetensors ---- */

static void test_safetensors(void)
{
    float xs[4 * 3];
    for (int i = 0; i < 12; i++)
        xs[i] = (float)i / 2;
    int64_t ys[4] = {3, 1, 4, 1}, short_y[3] = {0};
    rt_st_writer *w = rt_st_writer_begin(in_dir("d.safetensors"), err, sizeof err);
    CHECK(w != NULL);
    rt_st_writer_add(w, "inputs", "F32", 2, (int64_t[]){4, 3}, xs);
    rt_st_writer_add(w, "targets", "I64", 1, (int64_t[]){4}, ys);
    rt_st_writer_add(w, "short", "I64", 1, (int64_t[]){3}, short_y);
    CHECK(rt_st_writer_finish(w, err, sizeof err));
    rt_data_spec s = {.kind = RT_DATA_SAFETENSORS, .path = in_dir("d.safetensors"),
                      .x_name = "inputs", .y_name = "targets"};
    rt_dataset d;
    CHECK_EQ_STR(load(s, &d), "");
    CHECK_EQ_INT(d.n, 4);
    CHECK_EQ_STR(d.x_dtype, "F32");
    CHECK_EQ_STR(d.y_dtype, "I64");
    CHECK(d.x_rank == 1 && d.x_shape[0] == 3 && d.x_bytes == 12 && d.y_rank == 0);
    float x[3];
    int64_t y;
    rt_data_sample(&d, 2, x, &y);
    CHECK(x[0] == 3.0f && x[2] == 4.0f && y == 4);
    rt_data_free(&d);
    s.y_name = "short";
    CHECK(contains(load_error(s), "d.safetensors: tensor 'inputs' holds 4 samples but 'short' holds 3"));
    s.y_name = "labels";
    CHECK(contains(load_error(s), "d.safetensors: no tensor named 'labels'"));
    /* Truncated: the header reader names it. */
    FILE *f = fopen(in_dir("d.safetensors"), "rb");
    unsigned char buf[1024];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file("cut.safetensors", buf, n - 5);
    s.path = in_dir("cut.safetensors");
    s.y_name = "targets";
    CHECK(contains(load_error(s), "cut.safetensors: the data runs past the end of the file"));
}

/* ---- text ---- */

static void test_text(void)
{
    const char *t = "hello world\n";
    write_text("t.txt", t);
    write_gz("t.txt.gz", t, strlen(t));
    const char *names[] = {"t.txt", "t.txt.gz"};
    for (int k = 0; k < 2; k++) {
        rt_dataset d;
        CHECK_EQ_STR(load((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir(names[k]),
                                         .context = 3}, &d), "");
        CHECK_EQ_INT(d.nvocab, 9);
        CHECK(!memcmp(d.vocab, "\n dehlorw", 9));
        CHECK_EQ_INT(d.n, 3);                     /* (12 - 1) / 3 non-overlapping windows */
        CHECK_EQ_STR(d.x_dtype, "I64");
        CHECK(d.x_rank == 1 && d.x_shape[0] == 3 && d.y_shape[0] == 3 && d.x_bytes == 24);
        int64_t x[3], y[3];
        rt_data_sample(&d, 1, x, y);              /* "lo " -> "o w" */
        char xs[4] = {0}, ys[4] = {0};
        for (int i = 0; i < 3; i++) {
            xs[i] = (char)d.vocab[x[i]];
            ys[i] = (char)d.vocab[y[i]];
        }
        CHECK_EQ_STR(xs, "lo ");
        CHECK_EQ_STR(ys, "o w");
        CHECK(x[0] == 5 && x[2] == 1);
        rt_data_sample(&d, 2, x, y);              /* the last window's target ends at byte 9 */
        CHECK(d.vocab[x[0]] == 'w' && d.vocab[y[2]] == 'l');
        rt_data_free(&d);
    }
    write_text("short.txt", "abc");
    CHECK(contains(load_error((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("short.txt"),
                                             .context = 3}),
                   "short.txt: 3 bytes of text are too few for one window of 3 tokens"));
    CHECK(contains(load_error((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("t.txt")}),
                   "t.txt: the context length must be positive, not 0"));
    CHECK(contains(load_error((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("no.txt"),
                                             .context = 2}), "no.txt: No such file"));
}

/* ---- shuffle and split ---- */

static void test_split(void)
{
    /* Known answers from a Python reimplementation of the documented algorithm. */
    int64_t v[10];
    for (int i = 0; i < 10; i++)
        v[i] = i;
    rt_data_shuffle(v, 10, 42, 0);
    const int64_t want[10] = {4, 3, 0, 6, 2, 9, 7, 1, 5, 8};
    CHECK(!memcmp(v, want, sizeof v));
    int64_t *tr, *va, nt, nv;
    CHECK(rt_data_split(10, 0.2, 7, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK(nt == 8 && nv == 2 && va[0] == 0 && va[1] == 5);
    CHECK(tr[0] == 1 && tr[7] == 9);
    sup_free(tr);
    sup_free(va);

    /* A partition, sorted, the same for the same seed, another for another seed. */
    int64_t *tr2, *va2, nt2, nv2;
    CHECK(rt_data_split(1000, 0.1, 1, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK(rt_data_split(1000, 0.1, 1, &tr2, &nt2, &va2, &nv2, err, sizeof err));
    CHECK(nt == 900 && nv == 100 && nt2 == 900 && nv2 == 100);
    CHECK(!memcmp(tr, tr2, 900 * sizeof *tr) && !memcmp(va, va2, 100 * sizeof *va));
    char seen[1000] = {0};
    bool sorted = true;
    for (int64_t i = 0; i < nt; i++)
        seen[tr[i]]++, sorted &= i == 0 || tr[i - 1] < tr[i];
    for (int64_t i = 0; i < nv; i++)
        seen[va[i]]++, sorted &= i == 0 || va[i - 1] < va[i];
    bool partition = true;
    for (int i = 0; i < 1000; i++)
        partition &= seen[i] == 1;
    CHECK(sorted && partition);
    sup_free(tr2);
    sup_free(va2);
    CHECK(rt_data_split(1000, 0.1, 2, &tr2, &nt2, &va2, &nv2, err, sizeof err));
    CHECK(memcmp(va, va2, 100 * sizeof *va) != 0);
    sup_free(tr);
    sup_free(va);
    sup_free(tr2);
    sup_free(va2);

    CHECK(rt_data_split(10, 0.01, 3, &tr, &nt, &va, &nv, err, sizeof err));   /* at least one */
    CHECK(nt == 9 && nv == 1);
    sup_free(tr);
    sup_free(va);
    CHECK(rt_data_split(10, 0, 3, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK(nt == 10 && nv == 0 && tr[9] == 9);
    sup_free(tr);
    sup_free(va);
    CHECK(!rt_data_split(10, 1.0, 3, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK(contains(err, "in [0, 1)"));
    CHECK(!rt_data_split(2, 0.9, 3, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK(contains(err, "leaves no training samples"));
    CHECK(tr == NULL && va == NULL);
}

/* ---- the batcher ---- */

/* A csv data set whose sample i has x = {i, -i} and y = i. */
static void index_dataset(rt_dataset *d, int n)
{
    FILE *f = fopen(in_dir("idx.csv"), "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%d,%d\n", i, -i, i);
    fclose(f);
    CHECK_EQ_STR(load(csv("idx.csv", -1, 1, false), d), "");
}

/* Runs one epoch; seq gets the y of every sample in order, sizes the batch sizes. Returns the
 * number of batches. */
static int64_t epoch(const rt_dataset *d, const int64_t *idx, int64_t n, int64_t batch, bool shuffle,
                     uint64_t seed, int64_t ep, int64_t first, int prefetch, int64_t *seq,
                     int64_t *sizes)
{
    rt_batcher *b = rt_batcher_create(d, idx, n, batch, shuffle, seed, ep, first, prefetch, err,
                                      sizeof err);
    CHECK(b != NULL);
    if (!b)
        return -1;
    rt_batch bt;
    int64_t nb = 0, k = 0;
    while (rt_batcher_next(b, &bt)) {
        CHECK_EQ_INT(bt.index, first + nb);
        const float *x = bt.x;
        const int64_t *y = bt.y;
        for (int64_t i = 0; i < bt.n; i++) {
            CHECK(x[2 * i] == (float)y[i] && x[2 * i + 1] == -(float)y[i]);
            seq[k++] = y[i];
        }
        sizes[nb++] = bt.n;
    }
    CHECK(!rt_batcher_next(b, &bt));      /* stays at the end */
    rt_batcher_destroy(b);
    return nb;
}

static void test_batcher(void)
{
    enum { N = 100 };
    rt_dataset d;
    index_dataset(&d, N);
    int64_t all[N], a[N], b[N], c[N], sizes[N], sizes2[N];
    for (int i = 0; i < N; i++)
        all[i] = i;
    CHECK_EQ_INT(rt_batcher_nbatches(100, 32), 4);
    CHECK_EQ_INT(rt_batcher_nbatches(96, 32), 3);
    CHECK_EQ_INT(rt_batcher_nbatches(0, 32), 0);

    /* In order without shuffling; the last batch partial. */
    CHECK_EQ_INT(epoch(&d, all, N, 32, false, 0, 0, 0, 2, a, sizes), 4);
    CHECK(sizes[0] == 32 && sizes[2] == 32 && sizes[3] == 4);
    bool in_order = true;
    for (int i = 0; i < N; i++)
        in_order &= a[i] == i;
    CHECK(in_order);

    /* Shuffled: every index once, the documented permutation, reproducible, per epoch. */
    CHECK_EQ_INT(epoch(&d, all, N, 7, true, 9, 3, 0, 1, a, sizes), 15);
    CHECK_EQ_INT(sizes[14], 2);
    int64_t want[N];
    memcpy(want, all, sizeof want);
    rt_data_shuffle(want, N, 9, 3);
    CHECK(!memcmp(a, want, sizeof a));
    char seen[N] = {0};
    for (int i = 0; i < N; i++)
        seen[a[i]]++;
    bool once = true;
    for (int i = 0; i < N; i++)
        once &= seen[i] == 1;
    CHECK(once);
    CHECK(epoch(&d, all, N, 7, true, 9, 3, 0, 8, b, sizes2) == 15 && !memcmp(a, b, sizeof a));
    CHECK(epoch(&d, all, N, 7, true, 9, 4, 0, 3, c, sizes2) == 15 && memcmp(a, c, sizeof a) != 0);

    /* Resuming at batch 5 gives the tail of the same epoch. */
    CHECK_EQ_INT(epoch(&d, all, N, 7, true, 9, 3, 5, 2, b, sizes2), 10);
    CHECK(!memcmp(b, a + 35, (N - 35) * sizeof *a) && sizes2[9] == 2);
    CHECK_EQ_INT(epoch(&d, all, N, 7, true, 9, 3, 15, 2, b, sizes2), 0);
    CHECK(rt_batcher_create(&d, all, N, 7, true, 9, 3, 16, 2, err, sizeof err) == NULL);
    CHECK(contains(err, "first batch 16 of 15"));

    /* A subset (a split's training list) is what gets batched. */
    int64_t *tr, *va, nt, nv;
    CHECK(rt_data_split(N, 0.25, 5, &tr, &nt, &va, &nv, err, sizeof err));
    CHECK_EQ_INT(epoch(&d, va, nv, 10, true, 1, 0, 0, 2, a, sizes), 3);
    memset(seen, 0, sizeof seen);
    for (int64_t i = 0; i < nv; i++)
        seen[a[i]]++;
    bool subset = true;
    for (int64_t i = 0; i < nv; i++)
        subset &= seen[va[i]] == 1;
    CHECK(subset);
    sup_free(tr);
    sup_free(va);
    int64_t bad[2] = {0, N};
    CHECK(rt_batcher_create(&d, bad, 2, 1, false, 0, 0, 0, 1, err, sizeof err) == NULL);
    CHECK(contains(err, "sample index 100 (at 1) is out of range for 100 samples"));

    /* The batch handed out is left alone while the thread fills the others of the ring. */
    rt_batcher *held = rt_batcher_create(&d, all, N, 9, true, 2, 0, 0, 2, err, sizeof err);
    rt_batch hb;
    bool intact = true;
    while (held && rt_batcher_next(held, &hb)) {
        int64_t copy[9];
        memcpy(copy, hb.y, (size_t)hb.n * sizeof *copy);
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);   /* time to fill the others */
        intact &= !memcmp(copy, hb.y, (size_t)hb.n * sizeof *copy);
    }
    CHECK(held && intact);
    rt_batcher_destroy(held);

    /* Stopping mid-epoch, before the first batch and after one: joins, no hang, no leak. */
    for (int k = 0; k < 50; k++) {
        rt_batcher *bt = rt_batcher_create(&d, all, N, 3, true, k, 0, 0, 1 + k % 4, err, sizeof err);
        rt_batch one;
        if (k % 2)
            CHECK(rt_batcher_next(bt, &one) && one.n == 3);
        rt_batcher_destroy(bt);
    }
    rt_batcher_destroy(NULL);
    rt_data_free(&d);

    /* Text windows through the batcher. */
    write_text("b.txt", "abcdefghij");
    CHECK_EQ_STR(load((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("b.txt"), .context = 4},
                      &d), "");
    int64_t idx[2] = {1, 0};
    rt_batcher *bt = rt_batcher_create(&d, idx, 2, 2, false, 0, 0, 0, 1, err, sizeof err);
    rt_batch one;
    CHECK(rt_batcher_next(bt, &one) && one.n == 2);
    const int64_t *x = one.x, *y = one.y;
    CHECK(x[0] == 4 && x[3] == 7 && y[0] == 5 && y[3] == 8);   /* window 1: "efgh" -> "fghi" */
    CHECK(x[4] == 0 && y[7] == 4);                              /* window 0: "abcd" -> "bcde" */
    CHECK(!rt_batcher_next(bt, &one));
    rt_batcher_destroy(bt);
    rt_data_free(&d);
}

/* ---- every truncation of every format ---- */

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = malloc(1 << 16);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

/* Cuts `name` (inside s's files) to every shorter length: loading must fail, naming the file,
 * and never crash (run under ASan); the whole file loads again at the end. */
static void truncations(rt_data_spec s, const char *name)
{
    size_t n = 0;
    unsigned char *whole = slurp(in_dir(name), &n);
    CHECK(whole && n > 0);
    int named = 0;
    for (size_t len = 0; whole && len < n; len++) {
        write_file(name, whole, len);
        named += contains(load_error(s), name);
    }
    CHECK_EQ_INT(named, n);
    if (whole)
        write_file(name, whole, n);
    rt_dataset d;
    CHECK_EQ_STR(load(s, &d), "");
    rt_data_free(&d);
    free(whole);
}

static void test_truncations(void)
{
    truncations((rt_data_spec){.kind = RT_DATA_MNIST, .path = in_dir("mgz")},
                "mgz/train-images-idx3-ubyte.gz");
    write_idx("m", false, 3, 2, 3, 3);
    truncations((rt_data_spec){.kind = RT_DATA_MNIST, .path = in_dir("m")},
                "m/train-images-idx3-ubyte");
    truncations((rt_data_spec){.kind = RT_DATA_MNIST, .path = in_dir("m")},
                "m/train-labels-idx1-ubyte");
    truncations((rt_data_spec){.kind = RT_DATA_NPY, .path = in_dir("x.npy"),
                               .path_y = in_dir("y.npy")}, "y.npy");
    truncations((rt_data_spec){.kind = RT_DATA_SAFETENSORS, .path = in_dir("d.safetensors"),
                               .x_name = "inputs", .y_name = "targets"}, "d.safetensors");
    truncations((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("t.txt.gz"), .context = 3},
                "t.txt.gz");
}

/* ---- failing allocations ---- */

/* Loads s, batches sample 0 and frees it all; true if everything succeeded, and a failure must
 * have said "out of memory". */
static bool load_and_batch(const rt_data_spec *s)
{
    rt_dataset d;
    rt_batcher *b = NULL;
    rt_batch one;
    bool ok = rt_data_load(s, &d, err, sizeof err) &&
              (b = rt_batcher_create(&d, (int64_t[]){0}, 1, 1, true, 0, 0, 0, 1, err, sizeof err)) &&
              rt_batcher_next(b, &one) && one.n == 1;
    if (!ok)
        CHECK(contains(err, "out of memory"));
    rt_batcher_destroy(b);
    rt_data_free(&d);
    return ok;
}

/* Fails the Nth allocation for every N until loading and batching `s` succeed: each run ends in
 * success or "out of memory", never a crash, and (under LSan) never a leak. */
static void alloc_fail_loop(rt_data_spec s)
{
    sup_alloc_fail_after(-1);
    CHECK(load_and_batch(&s));
    long total = sup_alloc_fail_after(-1);
    CHECK(total >= 4);
    for (long n = 0; n <= total; n++) {
        sup_alloc_fail_after(n);
        bool ok = load_and_batch(&s);
        sup_alloc_fail_after(-1);
        if (ok != (n >= total))
            fprintf(stderr, "  %s with %ld of %ld allocations: %s\n", s.path, n, total,
                    ok ? "succeeded" : err);
        CHECK(ok == (n >= total));
    }
}

static void test_alloc_fail(void)
{
    enum { ROWS = 20000 };      /* 80 KB: more than the reader's first 64 KiB buffer */
    char *rows = malloc(ROWS * 4 + 1);
    for (int i = 0; i < ROWS; i++)
        snprintf(rows + 4 * i, 5, "%d,%d\n", i % 10, i % 3);
    write_text("af.csv", rows);
    free(rows);
    alloc_fail_loop(csv("af.csv", -1, 1, false));
    alloc_fail_loop((rt_data_spec){.kind = RT_DATA_NPY, .path = in_dir("x.npy"),
                                   .path_y = in_dir("y.npy")});
    alloc_fail_loop((rt_data_spec){.kind = RT_DATA_MNIST, .path = in_dir("mgz")});
    alloc_fail_loop((rt_data_spec){.kind = RT_DATA_SAFETENSORS, .path = in_dir("d.safetensors"),
                                   .x_name = "inputs", .y_name = "targets"});
    alloc_fail_loop((rt_data_spec){.kind = RT_DATA_TEXT, .path = in_dir("t.txt.gz"), .context = 3});
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dlc_data_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_csv();
    test_npy();
    test_mnist();
    test_safetensors();
    test_text();
    test_split();
    test_batcher();
    test_truncations();
    test_alloc_fail();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_result("test_data");
}
