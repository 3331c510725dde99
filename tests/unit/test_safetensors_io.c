/* safetensors data I/O: the writer's bytes (the reference implementation's own test vectors, and
 * tests/torch/st_reference.py as referee), round trips through the header reader and the data
 * readers, and the writer's atomicity: a failed write leaves an existing file as it was. */
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];      /* a fresh directory under /tmp for every file written here */

static const char *in_dir(const char *name)
{
    static char buf[4][400];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* The whole file; *n gets its length. NULL if it cannot be read. */
static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    *n = fread(buf, 1, (size_t)len, f);
    fclose(f);
    return buf;
}

static bool file_is(const char *path, const void *want, size_t wantn)
{
    size_t n = 0;
    unsigned char *got = slurp(path, &n);
    bool ok = got && n == wantn && !memcmp(got, want, n);
    free(got);
    return ok;
}

/* Files in dir whose name contains ".tmp.": what a failed write must not leave behind. */
static int temp_files(void)
{
    int count = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        count += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return count;
}

/* Header text of a file written by rt_st_writer (padding included). */
static bool header_is(const char *path, const char *want)
{
    size_t n = 0;
    unsigned char *got = slurp(path, &n);
    size_t len = strlen(want);
    bool ok = got && n >= 8 + len && got[0] == len && !memcmp(got + 8, want, len);
    if (!ok)
        fprintf(stderr, "  header of %s: \"%.*s\"\n  want \"%s\"\n", path,
                got && n > 8 ? (int)(n - 8) : 0, got ? (const char *)got + 8 : "", want);
    free(got);
    return ok;
}

/* The reference implementation's unit tests (safetensors/src/tensor.rs) pin these bytes. */
static void test_reference_vectors(void)
{
    char err[512];
    const char *p = in_dir("vec.safetensors");
    float v[6] = {0, 1, 2, 3, 4, 5};
    int64_t shape[3] = {1, 2, 3};
    rt_st_writer *w = rt_st_writer_begin(p, err, sizeof err);
    CHECK(rt_st_writer_add(w, "attn.0", "F32", 3, shape, v));
    CHECK(rt_st_writer_finish(w, err, sizeof err));
    CHECK(header_is(p, "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}"));
    size_t n = 0;
    unsigned char *got = slurp(p, &n);
    CHECK(got && n == 8 + 64 + 24 && !memcmp(got + 72, v, 24));
    free(got);

    w = rt_st_writer_begin(p, err, sizeof err);
    CHECK(rt_st_writer_finish(w, err, sizeof err));
    CHECK(file_is(p, "\x08\0\0\0\0\0\0\0{}      ", 16));

    w = rt_st_writer_begin(p, err, sizeof err);
    CHECK(rt_st_writer_add_metadata(w, "framework", "pt"));
    CHECK(rt_st_writer_finish(w, err, sizeof err));
    CHECK(file_is(p, "\x28\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     ", 48));
}

/* Several dtypes and shapes, a scalar and a zero-size tensor, written, then read back. */
typedef struct tcase {
    const char *name, *dtype;
    int         rank;
    int64_t     shape[3];
    int         elem;
} tcase;

static const tcase cases[] = {
    {"fc.weight", "F32", 2, {2, 3}, 4},
    {"fc.bias", "F32", 1, {3}, 4},
    {"empty", "F32", 2, {0, 3}, 4},            /* shares its offset with the next F32 tensor */
    {"step", "I64", 0, {0}, 8},                /* a 0-d scalar */
    {"scale", "F64", 1, {2}, 8},
    {"half", "BF16", 2, {4, 1}, 2},
    {"bytes", "U8", 1, {5}, 1},
    {"mask", "BOOL", 1, {3}, 1},
    {"idx", "I32", 2, {2, 2}, 4},
    {"h", "F16", 1, {1}, 2},
    {"q\"uote\\back\nline\x01\xc3\xa9", "I8", 1, {3}, 1},   /* escaping, and UTF-8 kept as is */
};
enum { NCASES = sizeof cases / sizeof *cases };

static size_t case_bytes(const tcase *c)
{
    size_t n = (size_t)c->elem;
    for (int i = 0; i < c->rank; i++)
        n *= (size_t)c->shape[i];
    return n;
}

static unsigned char case_data[NCASES][64];

static bool write_cases(const char *path, char *err, size_t errlen)
{
    rt_st_writer *w = rt_st_writer_begin(path, err, errlen);
    if (!w)
        return false;
    rt_st_writer_add_metadata(w, "format", "pt");
    for (int i = 0; i < NCASES; i++)
        rt_st_writer_add(w, cases[i].name, cases[i].dtype, cases[i].rank, cases[i].shape,
                         case_data[i]);
    return rt_st_writer_finish(w, err, errlen);
}

static void test_round_trip(void)
{
    for (int i = 0; i < NCASES; i++)
        for (int k = 0; k < 64; k++)
            case_data[i][k] = (unsigned char)(i * 37 + k * 11 + 1);
    char err[512];
    const char *p = in_dir("round.safetensors");
    CHECK(write_cases(p, err, sizeof err));
    CHECK_EQ_INT(temp_files(), 0);

    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    CHECK(rt_st_read_header(&a, p, &st, err, sizeof err));
    CHECK_EQ_INT(st.n, NCASES);
    CHECK_EQ_INT(st.data_start % 8, 0);
    void *all = rt_st_read_data(p, &st, err, sizeof err);
    CHECK(all != NULL);
    for (int i = 0; i < NCASES; i++) {
        const rt_st_tensor *t = rt_st_find(&st, cases[i].name);
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK_EQ_STR(t->dtype, cases[i].dtype);
        CHECK_EQ_INT(t->rank, cases[i].rank);
        for (int k = 0; k < t->rank; k++)
            CHECK_EQ_INT(t->shape[k], cases[i].shape[k]);
        CHECK_EQ_INT(t->end - t->begin, case_bytes(&cases[i]));
        /* Sorted by alignment, so every tensor is aligned in the file (and in a mapping). */
        CHECK_EQ_INT((st.data_start + t->begin) % (uint64_t)t->elem_size, 0);
        unsigned char buf[64];
        memset(buf, 0xEE, sizeof buf);
        CHECK(rt_st_read_tensor(p, &st, t, buf, err, sizeof err));
        CHECK(!memcmp(buf, case_data[i], case_bytes(&cases[i])));
        CHECK_EQ_INT(buf[case_bytes(&cases[i])], 0xEE);
        CHECK(all && !memcmp((unsigned char *)all + t->begin, case_data[i], case_bytes(&cases[i])));
    }
    /* The reference order: I64, F64, F32 (by name), I32, BF16, F16, I8, U8, BOOL. */
    static const char *order[] = {"step", "scale", "empty", "fc.bias", "fc.weight", "idx", "half",
                                  "h", NULL, "bytes", "mask"};
    for (int i = 0; i < NCASES; i++)
        if (order[i])
            CHECK_EQ_STR(st.tensors[i].name, order[i]);
    sup_free(all);

    /* The file shrinks after its header was read: the readers notice instead of reading junk. */
    CHECK(truncate(p, (off_t)st.file_size - 1) == 0);
    unsigned char buf[64];
    CHECK(!rt_st_read_tensor(p, &st, &st.tensors[0], buf, err, sizeof err) &&
          strstr(err, "changed size"));
    CHECK(rt_st_read_data(p, &st, err, sizeof err) == NULL && strstr(err, "changed size"));
    sup_arena_reset(&a);
}

/* tests/torch/st_reference.py rewrites the file by the reference's rules (and with the
 * safetensors package where installed) and must get the same bytes. */
static void test_reference_writer(void)
{
    if (access(DLC_PYTHON, X_OK) != 0) {
        fprintf(stderr, "note: %s missing, byte comparison with st_reference.py skipped\n",
                DLC_PYTHON);
        return;
    }
    char err[512], cmd[1024];
    const char *p = in_dir("ref.safetensors");
    CHECK(write_cases(p, err, sizeof err));
    snprintf(cmd, sizeof cmd, "%s %s/tests/torch/st_reference.py %s %s", DLC_PYTHON,
             DLC_SOURCE_DIR, p, in_dir("vec.safetensors"));
    CHECK_EQ_INT(system(cmd), 0);
}

static void test_writer_errors(void)
{
    char err[512];
    int64_t shape[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg = -1;
    float x = 1;
    const char *p = in_dir("err.safetensors");
    const struct { const char *name, *dtype; int rank; const int64_t *shape; const char *msg; }
        bad[] = {
            {"a", "Q4", 1, shape, "unsupported dtype ('a')"},
            {"a", "F32", 9, shape, "rank outside 0..8 ('a')"},
            {"a", "F32", 1, &neg, "negative dimension ('a')"},
            {"__metadata__", "F32", 0, shape, "cannot be named"},
            {"\xff", "F32", 0, shape, "not UTF-8"},
            {"dup", "F32", 0, shape, "duplicate tensor name ('dup')"},
        };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        rt_st_writer *w = rt_st_writer_begin(p, err, sizeof err);
        CHECK(rt_st_writer_add(w, "dup", "F32", 0, shape, &x));
        CHECK(!rt_st_writer_add(w, bad[i].name, bad[i].dtype, bad[i].rank, bad[i].shape, &x));
        CHECK(!rt_st_writer_add(w, "later", "F32", 0, shape, &x));   /* the first error sticks */
        CHECK(!rt_st_writer_finish(w, err, sizeof err));
        if (!strstr(err, bad[i].msg))
            CHECK_EQ_STR(err, bad[i].msg);
    }
    rt_st_writer *w = rt_st_writer_begin(p, err, sizeof err);
    CHECK(rt_st_writer_add_metadata(w, "k", "v"));
    CHECK(!rt_st_writer_add_metadata(w, "k", "w"));
    CHECK(!rt_st_writer_finish(w, err, sizeof err) && strstr(err, "duplicate metadata key ('k')"));
    rt_st_writer_abort(rt_st_writer_begin(p, err, sizeof err));
    CHECK(access(p, F_OK) != 0);   /* nothing above wrote anything */
}

/* Every way of failing leaves the old file byte for byte, and no temporary file. */
static void test_atomicity(void)
{
    static const char old[] = "the previous checkpoint";
    char err[512];
    const char *p = in_dir("keep.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite(old, 1, sizeof old, f);
    fclose(f);

    /* The disk fills up halfway through the data: RLIMIT_FSIZE makes write() fail (EFBIG). */
    struct rlimit saved, small = {200, 200};
    getrlimit(RLIMIT_FSIZE, &saved);
    small.rlim_max = saved.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    static unsigned char big[4096];
    int64_t n = sizeof big;
    rt_st_writer *w = rt_st_writer_begin(p, err, sizeof err);
    rt_st_writer_add(w, "big", "U8", 1, &n, big);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    CHECK(!rt_st_writer_finish(w, err, sizeof err) && strstr(err, "write failed"));
    setrlimit(RLIMIT_FSIZE, &saved);
    CHECK(file_is(p, old, sizeof old));
    CHECK_EQ_INT(temp_files(), 0);

    /* Every allocation in turn fails: each attempt fails cleanly or writes the whole file. */
    bool written = false;
    for (long k = 0; k < 200 && !written; k++) {
        sup_alloc_fail_after(k);
        written = write_cases(p, err, sizeof err);
        sup_alloc_fail_after(-1);
        if (!written) {
            CHECK(strstr(err, "out of memory"));
            CHECK(file_is(p, old, sizeof old));
            CHECK_EQ_INT(temp_files(), 0);
        }
    }
    CHECK(written);
    CHECK(write_cases(in_dir("fresh.safetensors"), err, sizeof err));
    size_t nnew = 0, n2 = 0;
    unsigned char *now = slurp(p, &nnew), *fresh = slurp(in_dir("fresh.safetensors"), &n2);
    CHECK(now && fresh && nnew == n2 && !memcmp(now, fresh, nnew));
    free(fresh);

    /* The target is a directory: rename fails, the temporary file goes. */
    const char *d = in_dir("adir");
    CHECK(mkdir(d, 0755) == 0);
    CHECK(!write_cases(d, err, sizeof err) && strstr(err, "rename failed"));
    CHECK_EQ_INT(temp_files(), 0);
    rmdir(d);

    /* No such directory; and (where permissions apply, i.e. not as root) a read-only one. */
    CHECK(!write_cases(in_dir("none/x.safetensors"), err, sizeof err) &&
          strstr(err, "cannot create a temporary file"));
    if (geteuid() != 0) {
        CHECK(chmod(dir, 0555) == 0);
        CHECK(!write_cases(p, err, sizeof err) && strstr(err, "cannot create a temporary file"));
        chmod(dir, 0755);
        CHECK(now && file_is(p, now, nnew));
        CHECK_EQ_INT(temp_files(), 0);
    }
    free(now);
}

/* The reader sorts by (begin, end): a zero-size tensor listed after its same-offset neighbour
 * must not look like an overlap. */
static void test_zero_size_order(void)
{
    const char *p = in_dir("zero.safetensors");
    const char hdr[] = "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                       "\"c\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}";
    unsigned char buf[8 + sizeof hdr + 4] = {sizeof hdr - 1};
    memcpy(buf + 8, hdr, sizeof hdr - 1);
    FILE *f = fopen(p, "wb");
    fwrite(buf, 1, 8 + sizeof hdr - 1 + 4, f);
    fclose(f);
    char err[512];
    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    CHECK(rt_st_read_header(&a, p, &st, err, sizeof err));
    if (st.n == 3)
        CHECK(!strcmp(st.tensors[0].name, "a") && !strcmp(st.tensors[2].name, "c"));
    sup_arena_reset(&a);
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            remove(in_dir(e->d_name));
    if (d)
        closedir(d);
    rmdir(dir);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/dlc_st_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_reference_vectors();
    test_round_trip();
    test_reference_writer();
    test_writer_errors();
    test_atomicity();
    test_zero_size_order();
    remove_dir();
    return check_result("test_safetensors_io");
}
