/* The reference interpreter against PyTorch: every case under tests/goldens (written by
 * tests/torch/make_goldens.py) is parsed, verified, run with its in*.npy and compared with its
 * out*.npy (and after*.npy, the arguments after `assign`). Also checks that every op of
 * ir/ops.def has a case, the Philox known-answer vectors, and the .npy writer and reader. */
#include "codegen/ref/interp.h"
#include "runtime/npy.h"
#include "support/alloc.h"
#include "support/diag.h"
#include "support/file.h"
#include "support/philox.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *root = "../goldens";

/* Relative tolerance per dtype: the goldens are float64 results rounded once, so a correct
 * interpreter is within about one rounding of the dtype. */
static double tolerance(dl_dtype t)
{
    switch (t) {
    case DL_F64: return 1e-10;
    case DL_F32: return 1e-5;
    case DL_F16: return 2e-3;
    case DL_BF16: return 1.6e-2;
    default: return 0;       /* integers and bools: exact */
    }
}

/* Reads DIR/NAME.npy as a tensor of dtype t; false if absent or of another element size. */
static bool load(const char *dir, const char *name, dl_dtype t, cg_tensor *out, const char *what)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    rt_npy h;
    void *data;
    if (!rt_npy_read(path, &h, &data, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", what, err);
        return false;
    }
    if (h.elem_size != ir_dtype_size(t)) {
        fprintf(stderr, "%s: %s holds %s, not %s\n", what, path, h.descr, ir_dtype_name(t));
        free(data);
        return false;
    }
    out->type = (dl_type){.dtype = t, .rank = h.rank};
    for (int i = 0; i < h.rank; i++)
        out->type.dim[i] = ir_dim_const(h.shape[i]);
    out->data = data;
    return true;
}

/* Compares got with DIR/NAME.npy; prints `what: max abs err` on a mismatch. */
static bool compare(const char *dir, const char *name, const cg_tensor *got, const char *what)
{
    cg_tensor want;
    if (!load(dir, name, got->type.dtype, &want, what))
        return false;
    bool ok = ir_type_eq(&want.type, &got->type);
    if (!ok) {
        char a[128], b[128];
        ir_type_str(&got->type, a, sizeof a);
        ir_type_str(&want.type, b, sizeof b);
        fprintf(stderr, "%s: %s is %s, expected %s\n", what, name, a, b);
    }
    int64_t n = 1;
    for (int i = 0; i < got->type.rank; i++)
        n *= got->type.dim[i].c;
    double rtol = tolerance(got->type.dtype), maxerr = 0;
    int64_t bad = -1;
    for (int64_t i = 0; ok && i < n; i++) {
        double g = cg_tensor_get(got, i), w = cg_tensor_get(&want, i);
        if ((isnan(g) && isnan(w)) || g == w)
            continue;
        double e = fabs(g - w);
        maxerr = isnan(e) || e > maxerr ? e : maxerr;
        if (!(e <= rtol * fmax(fabs(w), 1.0)) && bad < 0)
            bad = i;
    }
    if (ok && bad >= 0) {
        fprintf(stderr, "%s: %s: max abs err %g (element %lld: got %.9g, expected %.9g)\n", what,
                name, maxerr, (long long)bad, cg_tensor_get(got, bad), cg_tensor_get(&want, bad));
        ok = false;
    }
    free(want.data);
    return ok;
}

static bool run_case(const char *op, const char *cname)
{
    char dir[1024], path[1100], what[256], err[512];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, op, cname);
    snprintf(what, sizeof what, "%s/%s", op, cname);
    snprintf(path, sizeof path, "%s/case.dlir", dir);
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read %s\n", what, path);
        return false;
    }
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = sup_diag_add_source(diag, path, text, len);
    dl_module *m = ir_parse(name, text, len, diag);
    sup_free(text);
    bool ok = m && ir_verify(m, diag);
    dl_func *f = ok ? ir_func_find(m, "case") : NULL;
    if (ok && !f)
        fprintf(stderr, "%s: no @case\n", what), ok = false;
    cg_tensor args[16], res[16];
    memset(args, 0, sizeof args);
    memset(res, 0, sizeof res);
    if (f && (f->nargs > 16 || f->nresults > 16))
        ok = false;
    for (int i = 0; ok && f && i < f->nargs; i++) {
        char in[16];
        snprintf(in, sizeof in, "in%d", i);
        ok = load(dir, in, f->args[i]->type.dtype, &args[i], what);
    }
    if (ok && !(ok = cg_ref_run(f, args, res, err, sizeof err)))
        fprintf(stderr, "%s: %s\n", what, err);
    for (int i = 0; ok && i < f->nresults; i++) {
        char out[16];
        snprintf(out, sizeof out, "out%d", i);
        ok = compare(dir, out, &res[i], what);
    }
    for (int i = 0; ok && i < f->nargs; i++) {
        char after[16], apath[1100];
        snprintf(after, sizeof after, "after%d", i);
        snprintf(apath, sizeof apath, "%s/%s.npy", dir, after);
        if (access(apath, F_OK) == 0) {
            ok = compare(dir, after, &args[i], what);
        }
    }
    for (int i = 0; f && i < f->nresults && i < 16; i++)
        cg_tensor_free(&res[i]);
    for (int i = 0; f && i < f->nargs && i < 16; i++)
        cg_tensor_free(&args[i]);
    if (m)
        ir_module_destroy(m);
    sup_diag_destroy(diag);
    return ok;
}

static int only_dirs(const struct dirent *e) { return e->d_name[0] != '.'; }

static void run_goldens(void)
{
    struct dirent **ops;
    int nops = scandir(root, &ops, only_dirs, alphasort), ncases = 0, nfail = 0;
    CHECK(nops > 0);
    bool seen[DL_NOPS] = {0};
    for (int i = 0; i < nops; i++) {
        dl_opcode code;
        if (ir_op_lookup(ops[i]->d_name, strlen(ops[i]->d_name), &code))
            seen[code] = true;
        else
            fprintf(stderr, "tests/goldens/%s: not an op\n", ops[i]->d_name), nfail++;
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, ops[i]->d_name);
        struct dirent **cases;
        int nc = scandir(dir, &cases, only_dirs, alphasort);
        for (int k = 0; k < nc; k++) {
            ncases++;
            nfail += !run_case(ops[i]->d_name, cases[k]->d_name);
            free(cases[k]);
        }
        if (nc > 0)
            free(cases);
        free(ops[i]);
    }
    if (nops > 0)
        free(ops);
    for (int c = 0; c < DL_NOPS; c++)
        if (!seen[c])
            fprintf(stderr, "op '%s' has no golden case\n", ir_op_info(c)->name), nfail++;
    CHECK_EQ_INT(nfail, 0);
    if (!nfail)
        printf("ref goldens: %d cases, %d ops, all match\n", ncases, nops);
    else
        printf("ref goldens: %d cases, %d ops, %d failed\n", ncases, nops, nfail);
}

/* Random123's known-answer vectors for philox4x32_10. */
static void test_philox(void)
{
    uint32_t r[4];
    sup_philox4x32(0, 0, 0, r);
    CHECK(r[0] == 0x6627e8d5u && r[1] == 0xe169c58du && r[2] == 0xbc57ac4cu && r[3] == 0x9b00dbd8u);
    sup_philox4x32(UINT64_MAX, UINT64_MAX, UINT64_MAX, r);
    CHECK(r[0] == 0x408f276du && r[1] == 0x41c83b0eu && r[2] == 0xa20bc7c6u && r[3] == 0x6d5451fdu);
    sup_philox4x32(0x299f31d0a4093822u, 0x0370734413198a2eu, 0x85a308d3243f6a88u, r);
    CHECK(r[0] == 0xd16cfe09u && r[1] == 0x94fdccebu && r[2] == 0x5001e420u && r[3] == 0x24126ea1u);
}

static void test_npy(void)
{
    char path[64], err[256];
    snprintf(path, sizeof path, "/tmp/dlc_npy_test_%ld.npy", (long)getpid());
    float v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    CHECK(rt_npy_write(path, "<f4", 2, shape, v, err, sizeof err));
    rt_npy h;
    void *data;
    CHECK(rt_npy_read(path, &h, &data, err, sizeof err));
    CHECK(h.data_offset % 64 == 0 && h.rank == 2 && h.shape[1] == 3 && !h.fortran_order);
    CHECK(data && !memcmp(data, v, sizeof v));
    free(data);
    /* A Fortran-order file holds the columns one after another; reading gives C order. */
    const char hdr[] = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
    char buf[128] = "\x93NUMPY\x01\x00";
    size_t hl = 128 - 10;
    buf[8] = (char)hl;
    memset(buf + 10, ' ', hl);
    memcpy(buf + 10, hdr, strlen(hdr));
    buf[10 + hl - 1] = '\n';
    float col[6] = {1, 4, 2, 5, 3, 6};
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, 128, f);
    fwrite(col, 1, sizeof col, f);
    fclose(f);
    if (!rt_npy_read(path, &h, &data, err, sizeof err))
        fprintf(stderr, "%s\n", err), check_failures++;
    CHECK(h.fortran_order && data && !memcmp(data, v, sizeof v));
    free(data);
    /* Scalars and bad descriptors. */
    double s = 2.5;
    CHECK(rt_npy_write(path, "<f8", 0, NULL, &s, err, sizeof err));
    CHECK(rt_npy_read(path, &h, &data, err, sizeof err) && h.rank == 0 && *(double *)data == 2.5);
    free(data);
    CHECK(!rt_npy_write(path, ">f8", 0, NULL, &s, err, sizeof err));
    remove(path);
}

/* Runs `text`'s @f on a 1-D i32 x and y; the error message, or "" on success. */
static const char *run_error(const char *text, int32_t *x, int nx, int32_t *y, int ny)
{
    static char err[512];
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = sup_diag_add_source(diag, "t.dlir", text, strlen(text));
    dl_module *m = ir_parse(name, text, strlen(text), diag);
    CHECK(m && ir_verify(m, diag));
    cg_tensor args[2] = {{.type = {.dtype = DL_I32, .rank = 1, .dim = {ir_dim_const(nx)}}, .data = x},
                         {.type = {.dtype = DL_I32, .rank = 1, .dim = {ir_dim_const(ny)}}, .data = y}};
    cg_tensor res[1];
    err[0] = 0;
    if (m && cg_ref_run(m->first, args, res, err, sizeof err))
        cg_tensor_free(&res[0]);
    if (m)
        ir_module_destroy(m);
    sup_diag_destroy(diag);
    return err;
}

static void test_errors(void)
{
    int32_t x[4] = {7, -7, 3, 1}, y[4] = {2, 2, 0, 1}, idx[2] = {1, 4};
    const char *div = "func @f(%x: i32[N], %y: i32[N]) -> (i32[N]) {\n"
                      "  %0 = floor_div %x, %y\n  return %0\n}\n";
    CHECK(strstr(run_error(div, x, 3, y, 3), "division by zero"));
    CHECK(strstr(run_error(div, x, 3, y, 4), "argument %y"));
    CHECK_EQ_STR(run_error(div, x, 2, y, 2), "");
    const char *sel = "func @f(%x: i32[4], %i: i32[2]) -> (i32[2]) {\n"
                      "  %0 = index_select %x, %i {dim=0}\n  return %0\n}\n";
    CHECK(strstr(run_error(sel, x, 4, idx, 2), "out of range"));
    idx[1] = 3;
    CHECK_EQ_STR(run_error(sel, x, 4, idx, 2), "");
}

int main(void)
{
    test_errors();
    test_philox();
    test_npy();
    run_goldens();
    return check_result("test_ref_goldens");
}
