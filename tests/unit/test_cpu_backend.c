/* The table-driven backend test: every golden case (every op of the IR) and a set of fused
 * chains on random inputs with several batch sizes, run on the CPU backend in every mode (-O0,
 * default, reduce-overhead, max-autotune), and compared with the reference interpreter, the
 * oracle. The reference runs the function as written; the backend a copy after the decompose
 * pass, as `dlc run` does. */
#include "codegen/cpu/cpu.h"
#include "codegen/cpu/exec.h"
#include "passes/pass.h"
#include "runtime/npy.h"
#include "support/file.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

static const char *root = "../goldens";

static double tolerance(dl_dtype t)
{
    switch (t) {
    case DL_F64: return 1e-9;
    case DL_F32: return 2e-5;
    case DL_F16: return 2e-3;
    case DL_BF16: return 1.6e-2;
    default: return 0;
    }
}

static int64_t numel(const cg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->type.rank; i++)
        n *= t->type.dim[i].c;
    return n;
}

static bool same(const cg_tensor *got, const cg_tensor *want, const char *what)
{
    if (!ir_type_eq(&got->type, &want->type)) {
        fprintf(stderr, "%s: the result types differ\n", what);
        return false;
    }
    double rtol = tolerance(got->type.dtype);
    for (int64_t i = 0; i < numel(got); i++) {
        double g = cg_tensor_get(got, i), w = cg_tensor_get(want, i);
        if ((isnan(g) && isnan(w)) || g == w || fabs(g - w) <= rtol * fmax(fabs(w), 1.0))
            continue;
        fprintf(stderr, "%s: element %lld: cpu %.9g, reference %.9g\n", what, (long long)i, g, w);
        return false;
    }
    return true;
}

static cg_tensor copy(const cg_tensor *t)
{
    cg_tensor c = *t;
    size_t n = (size_t)numel(t) * (size_t)ir_dtype_size(t->type.dtype);
    c.data = malloc(n ? n : 1);
    memcpy(c.data, t->data, n);
    return c;
}

enum { MAX_SETS = 4 };

/* One run of f on a copy of args: results in res, the arguments afterwards in after. */
static bool run_one(const dl_func *f, cg_cpu *p, const cg_tensor *args, cg_tensor *after,
                    cg_tensor *res, char *err, size_t errlen)
{
    for (int i = 0; i < f->nargs; i++)
        after[i] = copy(&args[i]);
    memset(res, 0, sizeof *res * (size_t)f->nresults);
    bool ok = p ? cg_cpu_run(p, after, res, err, errlen) : cg_ref_run(f, after, res, err, errlen);
    if (!ok)
        for (int i = 0; i < f->nargs; i++)
            free(after[i].data);
    return ok;
}

static void free_all(cg_tensor *t, int n)
{
    for (int i = 0; i < n; i++)
        free(t[i].data);
}

static size_t nbytes(const cg_tensor *t) { return (size_t)numel(t) * (size_t)ir_dtype_size(t->type.dtype); }

/* Bit for bit: reduce-overhead runs the same kernels in the same order as -O default. */
static bool identical(const cg_tensor *got, const cg_tensor *want, const char *what)
{
    if (ir_type_eq(&got->type, &want->type) && !memcmp(got->data, want->data, nbytes(got)))
        return true;
    fprintf(stderr, "%s: differs from -O default\n", what);
    return false;
}

/* The compile cache of this test (a temporary directory): the fused modes share their kernels'
 * object (-O default makes it, the others find it), reduce-overhead compiles a function once per
 * argument set, and max-autotune's records and micro-kernels are made once. */
static char cache_dir[512] = "";

static const char *const mode_names[CG_NMODES] = {"-O0", "fused", "reduce-overhead", "max-autotune"};

/* Runs f on each argument set with the reference and with the CPU backend in every mode: -O0
 * (unfused), then, after the fuse pass, -O default, -O max-autotune (compiled once: the gemm is
 * tuned at the first set's shapes) and -O reduce-overhead (compiled for each set, so every set
 * runs the straight-line step specialized to it); compares the results and the arguments
 * afterwards (buffer updates) with the reference's, and reduce-overhead's with -O default's bit
 * for bit. A set the reference refuses (a division by zero, an index out of range) is
 * skipped. */
static bool check_backend(const dl_func *f, const dl_func *lowered, int nsets, cg_tensor (*sets)[16],
                          const char *const *what)
{
    int na = f->nargs, nr = f->nresults;
    char err[512];
    bool ok = true;
    cg_tensor keep_r[MAX_SETS][16], keep_a[MAX_SETS][16];     /* -O default's, per set */
    bool kept[MAX_SETS] = {false}, has_ref[MAX_SETS];
    cg_tensor ref_r[MAX_SETS][16], ref_a[MAX_SETS][16];       /* the reference's, once per set */
    for (int s = 0; s < nsets; s++)
        has_ref[s] = run_one(f, NULL, sets[s], ref_a[s], ref_r[s], err, sizeof err);
    static const cg_mode order[] = {CG_MODE_O0, CG_MODE_DEFAULT, CG_MODE_MAX_AUTOTUNE, CG_MODE_REDUCE_OVERHEAD};
    for (int mi = 0; mi < 4 && ok; mi++) {
        cg_mode mode = order[mi];
        if (mode == CG_MODE_DEFAULT) {
            dl_pass_opts opts = {.verify_each = true};
            dl_diag *diag = sup_diag_create(stderr);
            bool fused = diag && pass_run_pipeline(lowered->module, "fuse", &opts, diag);
            sup_diag_destroy(diag);
            if (!fused) {
                fprintf(stderr, "%s: the fuse pass failed\n", what[0]);
                return false;
            }
        }
        cg_cpu_opts co = {mode, mode == CG_MODE_O0 ? NULL : cache_dir, NULL};
        cg_cpu *p = NULL;
        for (int s = 0; s < nsets && ok; s++) {
            if (!p || mode == CG_MODE_REDUCE_OVERHEAD) {
                cg_cpu_destroy(p);
                if (!(p = cg_cpu_compile_opts(lowered, &co, err, sizeof err))) {
                    fprintf(stderr, "%s (%s): compile: %s\n", what[0], mode_names[mode], err);
                    return false;
                }
            }
            char label[700];
            snprintf(label, sizeof label, "%s (%s)", what[s], mode_names[mode]);
            cg_tensor *ra = ref_a[s], *rr = ref_r[s], ca[16], cr[16];
            if (!has_ref[s])
                continue;
            if (!run_one(f, p, sets[s], ca, cr, err, sizeof err)) {
                fprintf(stderr, "%s: run: %s\n", label, err);
                ok = false;
            } else {
                for (int i = 0; ok && i < nr; i++)
                    ok = same(&cr[i], &rr[i], label);
                for (int i = 0; ok && i < na; i++)
                    ok = same(&ca[i], &ra[i], label);
                if (mode == CG_MODE_REDUCE_OVERHEAD) {
                    if (cg_exec_straight_runs(cg_cpu_exec(p)) != 1) {
                        fprintf(stderr, "%s: the straight-line step did not run\n", label);
                        ok = false;
                    }
                    for (int i = 0; ok && kept[s] && i < nr; i++)
                        ok = identical(&cr[i], &keep_r[s][i], label);
                    for (int i = 0; ok && kept[s] && i < na; i++)
                        ok = identical(&ca[i], &keep_a[s][i], label);
                }
                if (mode == CG_MODE_DEFAULT) {
                    memcpy(keep_r[s], cr, sizeof *cr * (size_t)nr);
                    memcpy(keep_a[s], ca, sizeof *ca * (size_t)na);
                    kept[s] = true;
                } else {
                    free_all(cr, nr);
                    free_all(ca, na);
                }
            }
        }
        cg_cpu_destroy(p);
    }
    for (int s = 0; s < nsets; s++)
        if (has_ref[s]) {
            free_all(ref_r[s], nr);
            free_all(ref_a[s], na);
        }
    for (int s = 0; s < nsets; s++)
        if (kept[s]) {
            free_all(keep_r[s], nr);
            free_all(keep_a[s], na);
        }
    return ok;
}

static dl_module *parse(const char *name, const char *text, size_t len, bool decompose)
{
    dl_diag *diag = sup_diag_create(stderr);
    const char *n = sup_diag_add_source(diag, name, text, len);
    dl_module *m = ir_parse(n, text, len, diag);
    dl_pass_opts opts = {.verify_each = true};
    if (m && (!ir_verify(m, diag) || (decompose && !pass_run_pipeline(m, "decompose", &opts, diag)))) {
        ir_module_destroy(m);
        m = NULL;
    }
    sup_diag_destroy(diag);
    return m;
}

static int only_dirs(const struct dirent *e) { return e->d_name[0] != '.'; }

static int run_goldens(void)
{
    struct dirent **ops;
    int nops = scandir(root, &ops, only_dirs, alphasort), cases = 0;
    CHECK(nops > 50);
    for (int i = 0; i < nops; i++) {
        char opdir[1024];
        snprintf(opdir, sizeof opdir, "%s/%s", root, ops[i]->d_name);
        struct dirent **cs;
        int ncs = scandir(opdir, &cs, only_dirs, alphasort);
        for (int k = 0; k < ncs; k++) {
            char dir[1500], path[1600], what[600];
            snprintf(dir, sizeof dir, "%s/%s", opdir, cs[k]->d_name);
            snprintf(path, sizeof path, "%s/case.dlir", dir);
            snprintf(what, sizeof what, "%s/%s", ops[i]->d_name, cs[k]->d_name);
            size_t len;
            char *text = sup_read_file(path, &len);
            dl_module *m = text ? parse(path, text, len, false) : NULL;
            dl_module *low = text ? parse(path, text, len, true) : NULL;
            sup_free(text);
            dl_func *f = m ? ir_func_find(m, "case") : NULL, *lf = low ? ir_func_find(low, "case") : NULL;
            CHECK(f != NULL && lf != NULL);
            cg_tensor args[16];
            bool ok = f && lf && f->nargs <= 16;
            for (int a = 0; ok && a < f->nargs; a++) {
                char in[1700], err[512];
                snprintf(in, sizeof in, "%s/in%d.npy", dir, a);
                rt_npy h;
                ok = rt_npy_read(in, &h, &args[a].data, err, sizeof err);
                args[a].type = (dl_type){.dtype = f->args[a]->type.dtype, .rank = h.rank};
                for (int d = 0; ok && d < h.rank; d++)
                    args[a].type.dim[d] = ir_dim_const(h.shape[d]);
            }
            const char *whats[1] = {what};
            CHECK(ok && check_backend(f, lf, 1, (cg_tensor(*)[16])args, whats));
            for (int a = 0; ok && a < f->nargs; a++)
                free(args[a].data);
            ir_module_destroy(m);
            ir_module_destroy(low);
            cases++;
            free(cs[k]);
        }
        free(cs);
        free(ops[i]);
    }
    free(ops);
    return cases;
}

/* Fused chains, broadcasting and dtypes, at several batch sizes. */
static const char *chains =
    "func @float_chain(%x: f32[N, 7], %y: f32[7], %s: f32) -> (f32[N, 7]) {\n"
    "  %0 = mul %x, %y\n  %1 = add %0, %s\n  %2 = relu %1\n  %3 = tanh %2\n"
    "  %4 = gelu %3 {approximate=\"tanh\"}\n  %5 = sigmoid %4\n  %6 = exp %5\n  %7 = log1p %6\n"
    "  %8 = clamp %7 {min=-0.5, max=2.5}\n  %9 = pow %8, %y\n  return %9\n}\n"
    "func @big_split_rows(%x: f32[N, 8], %w: f32[8, 9], %b: f32[9], %k: i64) -> (f32[N, 9]) {\n"
    "  %0 = matmul %x, %w\n  %1 = add %0, %b\n  %2 = gelu %1\n  %3 = dropout %2, %k {p=0.3, stream=2}\n"
    "  %4 = exp %3\n  return %4\n}\n"
    "func @broadcast(%a: f32[N, 1, 5], %b: f32[4, 1], %c: f32[N, 4, 5]) -> (f32[N, 4, 5]) {\n"
    "  %0 = sub %a, %b\n  %1 = maximum %0, %c\n  %2 = div %1, %c\n  %3 = floor %2\n"
    "  %4 = mod %1, %b\n  %5 = add %3, %4\n  return %5\n}\n"
    "func @ints(%a: i32[N, 6], %b: i32[6]) -> (i32[N, 6], i64[N, 6]) {\n"
    "  %0 = mul %a, %b\n  %1 = floor_div %0, %b\n  %2 = mod %0, %b\n  %3 = sub %1, %2\n"
    "  %4 = cast %3 {dtype=i64}\n  %5 = abs %4\n  return %3, %5\n}\n"
    "func @compare(%x: f32[N, 3], %y: f32[N, 3]) -> (f32[N, 3], bool[N, 3]) {\n"
    "  %0 = lt %x, %y\n  %1 = ge %x, %y\n  %2 = or %0, %1\n  %3 = not %0\n"
    "  %4 = where %3, %x, %y\n  %5 = sign %4\n  %6 = round %5\n  return %6, %2\n}\n"
    "func @narrow(%x: bf16[N, 9], %y: f16[9]) -> (bf16[N, 9], f16[N, 9]) {\n"
    "  %0 = cast %y {dtype=bf16}\n  %1 = mul %x, %0\n  %2 = sqrt %1\n  %3 = cast %2 {dtype=f16}\n"
    "  %4 = add %3, %y\n  %5 = cast %4 {dtype=bf16}\n  return %5, %4\n}\n"
    "func @mixed(%x: f32[N, 8], %w: f32[8, 3]) -> (f32[N, 3]) {\n"
    "  %0 = matmul %x, %w\n  %1 = neg %0\n  %2 = exp %1\n  %3 = sum %2 {dim=[1], keepdim=true}\n"
    "  %4 = div %2, %3\n  %5 = log %4\n  return %5\n}\n"
    /* Convolutions: strided, padded, dilated, grouped, with and without bias, 1x1 (read in
     * place, or through im2col when strided), transposed; then fused and pooled. */
    "func @conv(%x: f32[N, 4, 11, 9], %w: f32[6, 2, 3, 3], %b: f32[6], %w1: f32[3, 4, 1, 1],\n"
    "           %wt: f32[4, 3, 3, 2], %bt: f32[6], %w4: f32[5, 4, 5, 3])\n"
    "    -> (f32[N, 6, 5, 4], f32[N, 6, 5, 4], f32[N, 3, 11, 9], f32[N, 3, 6, 9], f32[N, 6, 22, 18],\n"
    "        f32[N, 5, 11, 9], f32[N, 6, 3, 2]) {\n"
    "  %0 = conv2d %x, %w, %b {stride=[2], padding=[1], dilation=[2], groups=2}\n"
    "  %1 = conv2d %x, %w {stride=[2], padding=[1], dilation=[2], groups=2}\n"
    "  %2 = conv2d %x, %w1\n  %3 = conv2d %x, %w1 {stride=[2, 1]}\n"
    "  %4 = conv_transpose2d %x, %wt, %bt {stride=[2], padding=[1], output_padding=[1], dilation=[1, 2], groups=2}\n"
    "  %5 = conv2d %x, %w4 {padding=[2, 1]}\n  %6 = relu %0\n"
    "  %7 = max_pool2d %6 {kernel_size=[2], ceil_mode=true}\n  return %0, %1, %2, %3, %4, %5, %7\n}\n"
    /* Pooling: ceil_mode with padding, dilation, count_include_pad false, uneven adaptive
     * windows, NaN (log of the negative inputs) in max pooling. */
    "func @pool(%x: f32[N, 3, 9, 10])\n"
    "    -> (f32[N, 3, 5, 6], f32[N, 3, 7, 4], f32[N, 3, 5, 6], f32[N, 3, 5, 4], f32[N, 3, 4, 7],\n"
    "        f32[N, 3, 5, 3], f32[N, 3, 4, 5]) {\n"
    "  %0 = max_pool2d %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true}\n"
    "  %1 = max_pool2d %x {kernel_size=[2, 3], stride=[1, 2], dilation=[2, 1]}\n"
    "  %2 = avg_pool2d %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true, count_include_pad=false}\n"
    "  %3 = avg_pool2d %x {kernel_size=[2, 3], padding=[1, 1]}\n"
    "  %4 = adaptive_avg_pool2d %x {output_size=[4, 7]}\n  %5 = adaptive_avg_pool2d %x {output_size=[5, 3]}\n"
    "  %6 = log %x\n  %7 = max_pool2d %6 {kernel_size=[2]}\n  return %0, %1, %2, %3, %4, %5, %7\n}\n"
    /* Native reductions (codegen/cpu/reduce.c): rows with and without keepdim, a middle
     * dimension (inner blocks of 256 and a remainder), ties, NaN, narrow and wide dtypes. */
    "func @row_reduce(%x: f32[N, 37]) -> (f32[N, 1], f32[N], f32[N, 1], f32[N], f32[N], f32[N], f32[N], f32[N]) {\n"
    "  %0 = sum %x {dim=[1], keepdim=true}\n  %1 = mean %x {dim=[1]}\n  %2 = max %x {dim=[-1], keepdim=true}\n"
    "  %3 = min %x {dim=[1]}\n  %4 = logsumexp %x {dim=[1]}\n  %5 = std %x {dim=[1]}\n"
    "  %6 = var %x {dim=[1], correction=0}\n  %7 = prod %x {dim=[1]}\n  return %0, %1, %2, %3, %4, %5, %6, %7\n}\n"
    "func @middle(%x: f32[N, 5, 300]) -> (f32[N, 300], f32[N, 1, 300], f32[N, 300], i64[N, 300], f32[N], f32[300], f32) {\n"
    "  %0 = sum %x {dim=[1]}\n  %1 = max %x {dim=[1], keepdim=true}\n  %2 = var %x {dim=[1]}\n"
    "  %3 = argmin %x {dim=1}\n  %4 = mean %x {dim=[1, 2]}\n  %5 = logsumexp %x {dim=[0, 1]}\n  %6 = sum %x\n"
    "  return %0, %1, %2, %3, %4, %5, %6\n}\n"
    "func @ties(%x: f32[N, 9]) -> (i64[N], i64[N, 1], i64[9], i64, f32[9]) {\n"
    "  %0 = round %x\n  %1 = argmax %0 {dim=1}\n  %2 = argmin %0 {dim=-1, keepdim=true}\n"
    "  %3 = argmax %0 {dim=0}\n  %4 = argmax %0\n  %5 = min %0 {dim=[0]}\n  return %1, %2, %3, %4, %5\n}\n"
    "func @nans(%x: f32[N, 6]) -> (f32[N], i64[N], i64[N], f32[N], f32[N, 6], f32[N, 6], f32[N]) {\n"
    "  %0 = sqrt %x\n  %1 = max %0 {dim=[1]}\n  %2 = argmax %0 {dim=1}\n  %3 = argmin %0 {dim=1}\n"
    "  %4 = logsumexp %0 {dim=[1]}\n  %5 = softmax %0 {dim=0}\n  %6 = log_softmax %0\n  %7 = min %0 {dim=[1]}\n"
    "  return %1, %2, %3, %4, %5, %6, %7\n}\n"
    "func @softmaxes(%x: f32[N, 4, 10]) -> (f32[N, 4, 10], f32[N, 4, 10], f32[N, 4, 10], f32[N, 4, 10]) {\n"
    "  %0 = softmax %x {dim=0}\n  %1 = softmax %x {dim=-1}\n  %2 = log_softmax %x {dim=1}\n"
    "  %3 = log_softmax %x {dim=2}\n  return %0, %1, %2, %3\n}\n"
    "func @norms(%x: f32[N, 3, 16], %w: f32[16], %b: f32[16], %w2: f32[3, 16]) -> (f32[N, 3, 16], f32[N, 3, 16], f32[N, 3, 16]) {\n"
    "  %0 = layer_norm %x, %w, %b {normalized_shape=[16], eps=0.001}\n  %1 = layer_norm %x {normalized_shape=[16]}\n"
    "  %2 = layer_norm %x, %w2 {normalized_shape=[3, 16]}\n  return %0, %1, %2\n}\n"
    "func @narrow_reduce(%x: f16[N, 12], %y: bf16[N, 3, 8], %w: bf16[8]) -> (f16[N], f16[N, 12], i64[N], bf16[N, 8], bf16[N, 3, 8], bf16[N, 3], f16[12]) {\n"
    "  %0 = sum %x {dim=[1]}\n  %1 = softmax %x\n  %2 = argmax %x {dim=1}\n  %3 = mean %y {dim=[1]}\n"
    "  %4 = layer_norm %y, %w {normalized_shape=[8]}\n  %5 = max %y {dim=[2]}\n  %6 = std %x {dim=[0]}\n"
    "  return %0, %1, %2, %3, %4, %5, %6\n}\n"
    "func @wide(%x: f64[N, 50]) -> (f64[N], f64[N], f64[N, 50], f64[50]) {\n"
    "  %0 = sum %x {dim=[1]}\n  %1 = std %x {dim=[1]}\n  %2 = log_softmax %x {dim=0}\n  %3 = prod %x {dim=[0]}\n"
    "  return %0, %1, %2, %3\n}\n"
    "func @large(%x: f32[N, 3000], %w: f32[3000]) -> (f32[N], f32[N], f32[N], f32[N, 3000], f32[N, 3000], f32[N], f32[3000]) {\n"
    "  %0 = sum %x {dim=[1]}\n  %1 = mean %x {dim=[1]}\n  %2 = var %x {dim=[1]}\n  %3 = softmax %x\n"
    "  %4 = layer_norm %x, %w, %w {normalized_shape=[3000]}\n  %5 = logsumexp %x {dim=[1]}\n  %6 = sum %x {dim=[0]}\n"
    "  return %0, %1, %2, %3, %4, %5, %6\n}\n"
    "func @int_reduce(%a: i32[N, 6], %b: i64[N, 4, 3]) -> (i64[N], i32[N, 1], i64[6], i64, i64[N, 3], i64[N], i64[N, 3]) {\n"
    "  %0 = sum %a {dim=[1]}\n  %1 = max %a {dim=[1], keepdim=true}\n  %2 = prod %a {dim=[0]}\n  %3 = argmin %a\n"
    "  %4 = min %b {dim=[1]}\n  %5 = sum %b {dim=[1, 2]}\n  %6 = argmax %b {dim=1}\n  return %0, %1, %2, %3, %4, %5, %6\n}\n"
    /* Index kernels (codegen/cpu/index.c): the random integers taken modulo the dimension as
     * indices (i64, i32, u8), rows of several dtypes, the index along a symbolic dimension and
     * the data's, a scalar. @raw_index takes them raw: sets with one out of range are skipped
     * (test_index_errors checks the message). */
    "func @lookup(%ids: i64[N, 3], %j: i32[N], %w: f32[7, 5], %h: f16[7, 4], %x: bf16[N, 6], %u: u8[7, N], %s: f64, %z: i64)\n"
    "    -> (f32[N, 3, 5], f16[N, 4], bf16[N, N], f32[N, 5], u8[N, N], i64[N, 3, 7], bf16[N, 6], f64) {\n"
    "  %c7 = constant {value=[7.0]} : i64\n  %c7i = constant {value=[7.0]} : i32\n"
    "  %c6i = constant {value=[6.0]} : i32\n  %c1 = constant {value=[1.0]} : i64\n"
    "  %0 = mod %ids, %c7\n  %1 = embedding %0, %w\n  %2 = mod %j, %c7i\n  %3 = embedding %2, %h\n"
    "  %4 = mod %j, %c6i\n  %5 = index_select %x, %4 {dim=1}\n  %6 = index_select %w, %2 {dim=0}\n"
    "  %7 = index_select %u, %2 {dim=-2}\n  %8 = one_hot %0 {num_classes=7}\n"
    "  %9 = one_hot %4 {num_classes=6, dtype=bf16}\n  %10 = mod %z, %c1\n  %11 = index_select %s, %10 {dim=0}\n"
    "  return %1, %3, %5, %6, %7, %8, %9, %11\n}\n"
    "func @gathers(%x: f64[N, 6], %i: i64[N, 4], %y: i8[5, N], %k: i32[3, N], %b: bool[N, 6])\n"
    "    -> (f64[N, 4], bool[N, 4], i8[3, N], bool[3, N, 5], f64[N, 4]) {\n"
    "  %c6 = constant {value=[6.0]} : i64\n  %c5 = constant {value=[5.0]} : i32\n"
    "  %0 = mod %i, %c6\n  %1 = gather %x, %0 {dim=1}\n  %2 = gather %b, %0 {dim=-1}\n  %3 = mod %k, %c5\n"
    "  %4 = gather %y, %3 {dim=0}\n  %5 = one_hot %3 {num_classes=5, dtype=bool}\n  %6 = cast %0 {dtype=u8}\n"
    "  %7 = gather %x, %6 {dim=1}\n  return %1, %2, %4, %5, %7\n}\n"
    "func @raw_index(%r: i64[N], %e: f32[10, 3]) -> (f32[N, 3]) {\n  %0 = embedding %r, %e\n  return %0\n}\n"
    /* Losses and metrics (passes/decompose_loss.c). Probabilities come from sigmoid, exact 0
     * and 1 from rounding them (bce's clamped logs), zero targets from relu (kl_div's xlogy). */
    "func @pair_losses(%x: f32[N, 5], %y: f32[N, 5])\n"
    "    -> (f32, f32, f32[N, 5], f32, f32, f32[N, 5], f32, f32, f32[N, 5], f32, f32[N, 5], f32, f32) {\n"
    "  %p = sigmoid %x\n  %q = sigmoid %y\n  %s = round %p\n  %t = relu %y\n  %c30 = constant {value=[30.0]} : f32\n"
    "  %big = mul %x, %c30\n  %0 = mse_loss %x, %y\n  %1 = l1_loss %x, %y {reduction=\"sum\"}\n"
    "  %2 = huber_loss %x, %y {reduction=\"none\", delta=0.5}\n  %3 = smooth_l1_loss %x, %y {beta=0.5}\n"
    "  %4 = smooth_l1_loss %x, %y {reduction=\"sum\", beta=0.0}\n  %5 = bce %p, %q {reduction=\"none\"}\n"
    "  %6 = bce %s, %q {reduction=\"sum\"}\n  %7 = bce_with_logits %x, %q\n"
    "  %8 = bce_with_logits %big, %q {reduction=\"none\"}\n  %9 = kl_div %x, %t {reduction=\"batchmean\"}\n"
    "  %10 = kl_div %x, %y {reduction=\"none\", log_target=true}\n  %11 = kl_div %x, %t\n"
    "  %12 = kl_div %x, %t {reduction=\"sum\"}\n  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12\n}\n"
    /* Class labels: the random integers modulo C, those that were 4 set to the ignore index
     * (-100, or 2 through ignore_index). */
    "func @class_losses(%x: f32[N, 6], %l: i64[N], %h: f16[N, 6])\n"
    "    -> (f32, f32, f32[N], f32, f32, f32, f32[N], f16, f32) {\n"
    "  %c6 = constant {value=[6.0]} : i64\n  %c4 = constant {value=[4.0]} : i64\n"
    "  %ign = constant {value=[-100.0]} : i64\n  %lab = mod %l, %c6\n  %is4 = eq %l, %c4\n"
    "  %y = where %is4, %ign, %lab\n  %lp = log_softmax %x {dim=1}\n"
    "  %0 = cross_entropy %x, %lab\n  %1 = cross_entropy %x, %y\n"
    "  %2 = cross_entropy %x, %y {reduction=\"none\", label_smoothing=0.2}\n"
    "  %3 = cross_entropy %x, %y {reduction=\"sum\", label_smoothing=0.3}\n"
    "  %4 = cross_entropy %x, %lab {ignore_index=2, label_smoothing=0.1}\n  %5 = nll_loss %lp, %y\n"
    "  %6 = nll_loss %lp, %lab {reduction=\"none\"}\n  %7 = cross_entropy %h, %y\n"
    "  %8 = nll_loss %x, %lab {reduction=\"sum\", ignore_index=0}\n  return %0, %1, %2, %3, %4, %5, %6, %7, %8\n}\n"
    "func @spatial_losses(%x: f32[N, 4, 3], %l: i32[N, 3], %u: f32[5], %v: i64, %p: f32[N, 5])\n"
    "    -> (f32, f32[N, 3], f32, f32, f32, f32[N], f32) {\n"
    "  %c4 = constant {value=[4.0]} : i32\n  %c3 = constant {value=[3.0]} : i32\n"
    "  %ign = constant {value=[-100.0]} : i32\n  %lab = mod %l, %c4\n  %is3 = eq %l, %c3\n"
    "  %y = where %is3, %ign, %lab\n  %c5 = constant {value=[5.0]} : i64\n  %w = mod %v, %c5\n"
    "  %q = softmax %p {dim=1}\n  %0 = cross_entropy %x, %y {label_smoothing=0.1}\n"
    "  %1 = cross_entropy %x, %y {reduction=\"none\"}\n  %2 = nll_loss %x, %lab {reduction=\"sum\"}\n"
    "  %3 = cross_entropy %u, %w {label_smoothing=0.25}\n  %4 = cross_entropy %p, %q {label_smoothing=0.1}\n"
    "  %5 = cross_entropy %p, %q {reduction=\"none\"}\n  %6 = cross_entropy %p, %q {reduction=\"sum\"}\n"
    "  return %0, %1, %2, %3, %4, %5, %6\n}\n"
    "func @triplets(%a: f32[N, 8], %p: f32[N, 8], %n: f32[N, 8], %v: f32[8], %w: f32[8], %z: f32[8])\n"
    "    -> (f32, f32, f32[N], f32, f32) {\n"
    "  %0 = triplet_margin_loss %a, %p, %n\n"
    "  %1 = triplet_margin_loss %a, %p, %n {reduction=\"sum\", p=1.0, swap=true, margin=0.5}\n"
    "  %2 = triplet_margin_loss %a, %p, %n {reduction=\"none\", p=3.0, eps=0.01}\n"
    "  %3 = triplet_margin_loss %v, %w, %z {swap=true}\n  %4 = triplet_margin_loss %v, %w, %z {p=1.5}\n"
    "  return %0, %1, %2, %3, %4\n}\n"
    /* Rounded logits tie often: top-k takes the lower index first, as the reference does. */
    "func @metrics(%x: f32[N, 7], %l: i64[N], %m: i32[N]) -> (f32, f32, f32, f32, f32, f32, f32, f32) {\n"
    "  %c7 = constant {value=[7.0]} : i64\n  %c7i = constant {value=[7.0]} : i32\n  %lab = mod %l, %c7\n"
    "  %labi = mod %m, %c7i\n  %labu = cast %lab {dtype=u8}\n  %r = round %x\n  %ri = cast %r {dtype=i32}\n"
    "  %0 = accuracy %x, %lab\n  %1 = accuracy %r, %lab\n  %2 = top_k_accuracy %r, %lab {k=3}\n"
    "  %3 = top_k_accuracy %x, %labi {k=2}\n  %4 = top_k_accuracy %ri, %labi\n  %5 = accuracy %ri, %lab\n"
    "  %6 = top_k_accuracy %r, %labu {k=2}\n  %7 = cross_entropy %x, %labu {label_smoothing=0.1}\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7\n}\n"
    /* Decomposed reductions over several runs of dimensions (passes/decompose.c): chains
     * innermost run first, symbolic and static counts, integers wrapping, narrow floats. */
    "func @split_reduce(%x: f32[N, 3, 5], %y: f32[4, N, 2, 3])\n"
    "    -> (f32[3], f32[1, 3, 1], f32[3], f32[1, N, 1, 3], f32[N], f32[3], f32[4, 2], f32[N, 3], f32[2], f32[3]) {\n"
    "  %0 = sum %x {dim=[0, 2]}\n  %1 = mean %x {dim=[0, -1], keepdim=true}\n  %2 = max %x {dim=[2, 0]}\n"
    "  %3 = min %y {dim=[0, 2], keepdim=true}\n  %4 = prod %y {dim=[0, 2, 3]}\n  %5 = var %x {dim=[0, 2]}\n"
    "  %6 = std %y {dim=[1, 3], correction=0}\n  %7 = var %y {dim=[0, 2], correction=2}\n"
    "  %8 = std %y {dim=[0, 1, 3]}\n  %9 = logsumexp %x {dim=[0, 2]}\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9\n}\n"
    "func @split_reduce_int(%a: i64[N, 3, 4], %b: i32[5, N, 2])\n"
    "    -> (i64[3], i64[1, 3, 1], i32[N], i64[N], i64[1, N, 1], i64[3]) {\n"
    "  %0 = sum %a {dim=[0, 2]}\n  %1 = max %a {dim=[0, 2], keepdim=true}\n  %2 = min %b {dim=[0, 2]}\n"
    "  %3 = prod %b {dim=[0, 2]}\n  %4 = sum %b {dim=[0, 2], keepdim=true}\n  %5 = prod %a {dim=[0, 2]}\n"
    "  return %0, %1, %2, %3, %4, %5\n}\n"
    "func @split_reduce_wide(%x: f64[N, 3, 5]) -> (f64[3], f64[3], f64[1, 3, 1], f64[3], f64[3], f64[3]) {\n"
    "  %0 = sum %x {dim=[0, 2]}\n  %1 = mean %x {dim=[0, 2]}\n  %2 = var %x {dim=[0, 2], keepdim=true, correction=0}\n"
    "  %3 = std %x {dim=[0, 2]}\n  %4 = logsumexp %x {dim=[0, 2]}\n  %5 = min %x {dim=[0, 2]}\n"
    "  return %0, %1, %2, %3, %4, %5\n}\n"
    "func @split_reduce_narrow(%x: f16[N, 3, 5], %y: bf16[4, N, 3]) -> (f16[3], bf16[N], f16[3], bf16[N], f16[3], bf16[1, N, 1]) {\n"
    "  %0 = sum %x {dim=[0, 2]}\n  %1 = mean %y {dim=[0, 2]}\n  %2 = var %x {dim=[0, 2]}\n  %3 = max %y {dim=[0, 2]}\n"
    "  %4 = logsumexp %x {dim=[0, 2]}\n  %5 = std %y {dim=[0, 2], keepdim=true}\n  return %0, %1, %2, %3, %4, %5\n}\n"
    /* logsumexp over all -inf, with some +inf, with some -inf, with NaN. */
    "func @split_logsumexp_inf(%x: f32[N, 3, 5]) -> (f32[3], f32[3], f32[3], f32[3]) {\n"
    "  %z = sub %x, %x\n  %ninf = log %z\n  %0 = logsumexp %ninf {dim=[0, 2]}\n"
    "  %inf = constant {value=[inf]} : f32\n  %two = constant {value=[2.0]} : f32\n  %big = gt %x, %two\n"
    "  %p = where %big, %inf, %x\n  %1 = logsumexp %p {dim=[0, 2]}\n  %neg = lt %x, %z\n"
    "  %q = where %neg, %ninf, %x\n  %2 = logsumexp %q {dim=[0, 2]}\n  %r = sqrt %x\n  %3 = logsumexp %r {dim=[0, 2]}\n"
    "  return %0, %1, %2, %3\n}\n"
    /* batch_norm as reductions and elementwise ops: training (N = 1 with [N, 6] divides by
     * count - 1 = 0, as the reference does) and eval, 4-D and 2-D, f32 and bf16. */
    "func @bn_train(%x: f32[N, 3, 5, 4], %w: f32[3], %b: f32[3], %rm: f32[3], %rv: f32[3])\n"
    "    -> (f32[N, 3, 5, 4], f32[3], f32[3]) {\n"
    "  %v = abs %rv\n  %y, %m, %s = batch_norm %x, %w, %b, %rm, %v {training=true, momentum=0.2, eps=0.001}\n"
    "  return %y, %m, %s\n}\n"
    "func @bn_eval(%x: f32[N, 3, 5, 4], %w: f32[3], %b: f32[3], %rm: f32[3], %rv: f32[3])\n"
    "    -> (f32[N, 3, 5, 4], f32[3], f32[3]) {\n"
    "  %v = abs %rv\n  %y, %m, %s = batch_norm %x, %w, %b, %rm, %v\n  return %y, %m, %s\n}\n"
    "func @bn_2d(%x: f32[N, 6], %w: f32[6], %b: f32[6], %rm: f32[6], %rv: f32[6])\n"
    "    -> (f32[N, 6], f32[6], f32[6], f32[N, 6], f32[6], f32[6]) {\n"
    "  %v = abs %rv\n  %y, %m, %s = batch_norm %x, %w, %b, %rm, %v {training=true}\n"
    "  %y2, %m2, %s2 = batch_norm %x, %w, %b, %rm, %v {training=false}\n  return %y, %m, %s, %y2, %m2, %s2\n}\n"
    "func @bn_narrow(%x: bf16[N, 6], %w: bf16[6], %b: bf16[6], %rm: bf16[6], %rv: bf16[6], %x4: f16[N, 3, 2, 2],\n"
    "                %w4: f16[3], %rm4: f16[3], %rv4: f16[3]) -> (bf16[N, 6], bf16[6], bf16[6], f16[N, 3, 2, 2]) {\n"
    "  %v = abs %rv\n  %y, %m, %s = batch_norm %x, %w, %b, %rm, %v {training=true}\n  %v4 = abs %rv4\n"
    "  %y4, %m4, %s4 = batch_norm %x4, %w4, %w4, %rm4, %v4\n  return %y, %m, %s, %y4\n}\n"
    /* Matrix products the native kernel does not take: narrow floats through f32, f64 and
     * integers as a product and a sum, vectors, broadcast batches. */
    "func @mm_dtypes(%a: f16[N, 8], %b: f16[8, 5], %c: bf16[N, 2, 8], %d: bf16[N, 8, 3], %e: f64[N, 8], %f: f64[8, 5],\n"
    "                %g: i64[N, 8], %h: i64[8, 5], %i: i32[N, 4, 8], %j: i32[1, 8, 3], %v: f64[8], %k: bf16[8])\n"
    "    -> (f16[N, 5], bf16[N, 2, 3], f64[N, 5], i64[N, 5], i32[N, 4, 3], f64[N], f64, bf16[N, 3]) {\n"
    "  %0 = matmul %a, %b\n  %1 = matmul %c, %d\n  %2 = matmul %e, %f\n  %3 = matmul %g, %h\n  %4 = matmul %i, %j\n"
    "  %5 = matmul %e, %v\n  %6 = matmul %v, %v\n  %7 = matmul %k, %d\n  return %0, %1, %2, %3, %4, %5, %6, %7\n}\n"
    "func @mm_shapes(%v: f32[8], %m: f32[N, 8, 3], %a: f32[N, 4, 8], %w: f32[1, 8, 3], %b: f32[5, 1, 4, 8], %u: f32[3])\n"
    "    -> (f32[N, 3], f32[N, 4, 3], f32[5, N, 4, 3], f32, f32[N, 4], f32[N, 8], f32[1, 3], f32[5, 1, 4, 3]) {\n"
    "  %0 = matmul %v, %m\n  %1 = matmul %a, %w\n  %2 = matmul %b, %m\n  %3 = matmul %v, %v\n  %4 = matmul %a, %v\n"
    "  %5 = matmul %m, %u\n  %6 = matmul %v, %w\n  %7 = matmul %b, %w\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7\n}\n"
    /* Narrow convolutions and pooling run in f32. */
    "func @conv_narrow(%x: bf16[N, 4, 9, 8], %w: bf16[6, 4, 3, 3], %b: bf16[6], %y: f16[N, 4, 6, 6], %wt: f16[4, 2, 3, 3])\n"
    "    -> (bf16[N, 6, 9, 8], bf16[N, 4, 4, 4], f16[N, 4, 2, 2], f16[N, 4, 4, 3], f16[N, 2, 8, 8]) {\n"
    "  %0 = conv2d %x, %w, %b {padding=[1]}\n  %1 = max_pool2d %x {kernel_size=[2]}\n"
    "  %2 = avg_pool2d %y {kernel_size=[3]}\n  %3 = adaptive_avg_pool2d %y {output_size=[4, 3]}\n"
    "  %4 = conv_transpose2d %y, %wt\n  return %0, %1, %2, %3, %4\n}\n"
    /* Fused attention (codegen/cpu/attention.c): causal with L < S and L > S, E = 33 and 5,
     * Ev != E, broadcast batch dimensions (a k of batch 1, a v without any), float and bool
     * masks with a fully masked row (NaN, as the reference's softmax of all -inf) and a fully
     * masked first block of keys, several query and key blocks (L = 3*N, S = 2*N, 70),
     * symbolic L, S and E (the default scale computed at run time), f64, f16 and bf16, S = 0. */
    "func @attn_causal(%q: f32[N, 2, 5, 33], %k: f32[N, 2, 7, 33], %v: f32[N, 2, 7, 9], %q2: f32[N, 9, 5],\n"
    "                  %k2: f32[N, 4, 5], %v2: f32[N, 4, 3], %q3: f32[2, 3*N, 5], %k3: f32[2, 2*N, 5])\n"
    "    -> (f32[N, 2, 5, 9], f32[N, 9, 3], f32[2, 3*N, 5], f32[2, 3*N, 5]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v {causal=true}\n"
    "  %1 = scaled_dot_product_attention %q2, %k2, %v2 {causal=true, scale=0.7}\n"
    "  %2 = scaled_dot_product_attention %q3, %k3, %k3 {causal=true}\n"
    "  %3 = scaled_dot_product_attention %q3, %k3, %k3\n  return %0, %1, %2, %3\n}\n"
    "func @attn_bcast(%q: f32[N, 3, 6, 8], %k: f32[1, 3, 70, 8], %v: f32[70, 12], %m: f32[N, 1, 1, 70],\n"
    "                 %q2: f32[130, 33], %k2: f32[N, 70, 33], %v2: f32[N, 1, 70, 4])\n"
    "    -> (f32[N, 3, 6, 12], f32[N, N, 130, 4], f32[N, N, 130, 4]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v, %m\n"
    "  %1 = scaled_dot_product_attention %q2, %k2, %v2 {causal=true}\n"
    "  %z = constant {value=[0.0]} : f32[64]\n  %o = constant {value=[1.0]} : f32[6]\n"
    "  %c = concat %z, %o {dim=0}\n  %l = log %c\n"
    "  %2 = scaled_dot_product_attention %q2, %k2, %v2, %l\n  return %0, %1, %2\n}\n"
    "func @attn_masks(%q: f32[N, 4, 5], %k: f32[N, 6, 5], %v: f32[N, 6, 7], %x: f32[4, 6], %qh: f16[N, 4, 5],\n"
    "                 %kh: f16[N, 6, 5], %xh: f16[N, 1, 6])\n"
    "    -> (f32[N, 4, 7], f32[N, 4, 7], f16[N, 4, 5], f16[N, 4, 5]) {\n"
    "  %0 = constant {value=[1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1]} : bool[4, 6]\n"
    "  %1 = scaled_dot_product_attention %q, %k, %v, %0\n"
    "  %2 = cast %0 {dtype=f32}\n  %3 = log %2\n  %4 = add %3, %x\n"
    "  %5 = scaled_dot_product_attention %q, %k, %v, %4 {scale=0.25}\n"
    "  %6 = scaled_dot_product_attention %qh, %kh, %kh, %0\n"
    "  %7 = scaled_dot_product_attention %qh, %kh, %kh, %xh\n  return %1, %5, %6, %7\n}\n"
    "func @attn_dtypes(%q: f64[2, N, 8], %k: f64[2, N, 8], %v: f64[2, N, 3], %h: bf16[N, 3, 5],\n"
    "                  %hk: bf16[N, 7, 5], %e: f32[N, 3, 4], %e0: f32[N, 0, 4], %v0: f32[N, 0, 2])\n"
    "    -> (f64[2, N, 3], f64[2, N, 3], bf16[N, 3, 5], f32[N, 3, 2]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v {causal=true}\n"
    "  %1 = scaled_dot_product_attention %q, %k, %v\n"
    "  %2 = scaled_dot_product_attention %h, %hk, %hk {causal=true}\n"
    "  %3 = scaled_dot_product_attention %e, %e0, %v0\n  return %0, %1, %2, %3\n}\n"
    "func @attn_head_dim(%q: f32[3, 5, N], %k: f32[3, 7, N], %v: f32[3, 7, N]) -> (f32[3, 5, N], f32[3, 5, N]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v\n"
    "  %1 = scaled_dot_product_attention %q, %k, %v {causal=true}\n  return %0, %1\n}\n"
    /* dropout fused mid-chain with a symbolic N (an i64 key argument; 37 columns, so the groups
     * of 4 words straddle rows), p = 0 and a large p; splat constants as leaves of chains,
     * non-splat constants of every storage type, fused and alone; tanh, erf, log1p and gelu
     * (inline f32 approximations) on wide ranges and special values. */
    "func @dropout_chain(%x: f32[N, 37], %b: f32[37], %k: i64, %h: bf16[N, 5])\n"
    "    -> (f32[N, 37], f32[N, 37], f32[N, 37], bf16[N, 5], f64[N, 37]) {\n"
    "  %0 = add %x, %b\n  %1 = dropout %0, %k {p=0.3, stream=5}\n  %2 = constant {value=[1.5]} : f32\n"
    "  %3 = mul %1, %2\n  %4 = dropout %x, %k {p=0.0}\n  %5 = exp %4\n  %6 = neg %x\n"
    "  %7 = dropout %6, %k {p=0.95, stream=1}\n  %8 = dropout %h, %k {p=0.5, stream=2}\n"
    "  %9 = cast %x {dtype=f64}\n  %10 = dropout %9, %k {p=0.7, stream=4294967297}\n  %11 = sqrt %10\n"
    "  return %3, %5, %7, %8, %11\n}\n"
    "func @constants(%x: f32[3, 4], %i: i64[2, 3], %y: f32[N, 5], %m: i32[N, 5])\n"
    "    -> (f32[3, 4], i64[2, 3], bf16[3, 4], bool[2, 3], f32[N, 5], i32[N, 5], f32[N, 5], f16[3, 4]) {\n"
    "  %0 = constant {value=[0.5, -2.0, 3.25, 0.001, 7.0, -1.5, 2.0, 0.1, -0.3, 4.0, 100.0, -1e-4]} : f32[3, 4]\n"
    "  %1 = mul %0, %x\n  %2 = constant {value=[1.0, -7.0, 3.0, 12.0, -5.0, 9e15]} : i64[2, 3]\n  %3 = add %2, %i\n"
    "  %4 = constant {value=[0.1, 0.2, -0.3, 1.7, 2.5, -3.14159, 1e10, 65504.0, 1e-20, 0.0, -0.0, nan]} : bf16[3, 4]\n"
    "  %5 = cast %x {dtype=bf16}\n  %6 = add %4, %5\n"
    "  %7 = constant {value=[1.0, 0.0, 1.0, 0.0, 0.0, 1.0]} : bool[2, 3]\n  %8 = not %7\n"
    "  %9 = constant {value=[3.0]} : f32\n  %10 = mul %y, %9\n  %11 = constant {value=[0.25]} : f32\n"
    "  %12 = sub %10, %11\n  %13 = constant {value=[-2.0]} : i32\n  %14 = mul %m, %13\n"
    "  %15 = constant {value=[0.0]} : f32[N, 5]\n  %16 = maximum %15, %y\n  %17 = constant {value=[1.0]} : f32\n"
    "  %18 = where %7, %17, %17\n  %19 = constant {value=[0.1, 70000.0, 1e-8, -2.5]} : f16[4]\n"
    "  %20 = cast %x {dtype=f16}\n  %21 = mul %20, %19\n  return %1, %3, %6, %8, %12, %14, %16, %21\n}\n"
    "func @wide_math(%x: f32[N, 33]) -> (f32[N, 33], f32[N, 33], f32[N, 33], f32[N, 33], f32[N, 33], f32[N, 33],\n"
    "                                   f32[N, 33], f32[N, 33], f32[N, 33]) {\n"
    "  %0 = constant {value=[12.0]} : f32\n  %1 = mul %x, %0\n  %2 = tanh %1\n"
    "  %3 = constant {value=[2.5]} : f32\n  %4 = mul %x, %3\n  %5 = erf %4\n"
    "  %6 = constant {value=[0.66]} : f32\n  %7 = mul %x, %6\n  %8 = log1p %7\n"
    "  %9 = constant {value=[40.0]} : f32\n  %10 = mul %x, %9\n  %11 = exp %10\n  %12 = log1p %11\n"
    "  %13 = constant {value=[1e-5]} : f32\n  %14 = mul %x, %13\n  %15 = tanh %14\n  %16 = erf %15\n"
    "  %17 = constant {value=[4.0]} : f32\n  %18 = mul %x, %17\n  %19 = gelu %18\n"
    "  %20 = gelu %18 {approximate=\"tanh\"}\n  %21 = sqrt %x\n  %22 = erf %21\n  %23 = log1p %14\n"
    "  return %2, %5, %8, %12, %16, %19, %20, %22, %23\n}\n"
    "func @special_math() -> (f32[16], f32[16], f32[16], f32[16], bf16[16], f16[16]) {\n"
    "  %0 = constant {value=[0.0, -0.0, inf, -inf, nan, -1.0, -2.0, 1e-40, -1e-40, 3.4e38, -3.4e38, 1e-7,\n"
    "                       -0.999999, 9.5, 3.9, 0.625]} : f32[16]\n"
    "  %1 = tanh %0\n  %2 = erf %0\n  %3 = log1p %0\n  %4 = gelu %0\n  %5 = cast %0 {dtype=bf16}\n"
    "  %6 = tanh %5\n  %7 = cast %0 {dtype=f16}\n  %8 = erf %7\n  return %1, %2, %3, %4, %6, %8\n}\n"
    /* Matrix products read through transposes (x @ w.T, x.T @ y, batched, as a permute) without
     * a copy; a transpose with a second use keeps its copy. */
    "func @transposed(%x: f32[N, 7], %w: f32[5, 7], %y: f32[N, 3], %b: f32[2, N, 4], %c: f32[2, 6, 4])\n"
    "    -> (f32[N, 5], f32[7, 3], f32[2, N, 6], f32[2, 4, 4], f32[N, 5], f32[7, N]) {\n"
    "  %0 = transpose %w {dim0=0, dim1=1}\n  %1 = matmul %x, %0\n"
    "  %2 = transpose %x {dim0=0, dim1=1}\n  %3 = matmul %2, %y\n"
    "  %4 = permute %c {dims=[0, 2, 1]}\n  %5 = matmul %b, %4\n"
    "  %6 = transpose %b {dim0=1, dim1=2}\n  %7 = matmul %6, %b\n"
    "  %8 = transpose %w {dim0=1, dim1=0}\n  %9 = matmul %x, %8\n  %10 = transpose %x {dim0=0, dim1=1}\n"
    "  %11 = relu %10\n  return %1, %3, %5, %7, %9, %11\n}\n";

static uint64_t rng = 88172645463325252ull;
static double rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static int run_chains(void)
{
    dl_module *m = parse("chains.dlir", chains, strlen(chains), false);
    dl_module *low = parse("chains.dlir", chains, strlen(chains), true);
    CHECK(m != NULL && low != NULL);
    int n = 0;
    static const int64_t sizes[MAX_SETS] = {1, 3, 17, 64};
    /* Functions named big_* run at sizes whose outputs are past the size at which elementwise
     * kernels split their rows across threads (in plans with a matrix product, which have a
     * thread pool), odd ones so the split leaves uneven parts. */
    static const int64_t big[MAX_SETS] = {5003, 4099, 17, 3};
    for (dl_func *f = m && low ? m->first : NULL, *lf = low ? low->first : NULL; f && lf;
         f = f->next, lf = lf->next) {
        CHECK(f->nargs <= 16 && f->nresults <= 16);
        cg_tensor sets[MAX_SETS][16];
        char names[MAX_SETS][128];
        const char *whats[MAX_SETS];
        for (int s = 0; s < MAX_SETS; s++) {
            for (int a = 0; a < f->nargs; a++) {
                cg_tensor *t = &sets[s][a];
                t->type = f->args[a]->type;
                for (int d = 0; d < t->type.rank; d++)
                    if (t->type.dim[d].n)
                        t->type.dim[d] = ir_dim_const(strncmp(f->name, "big_", 4) ? sizes[s] : big[s]);
                int64_t cnt = numel(t);
                t->data = calloc((size_t)(cnt ? cnt : 1), (size_t)ir_dtype_size(t->type.dtype));
                for (int64_t i = 0; i < cnt; i++) {
                    double v = ir_dtype_is_float(t->type.dtype) ? rnd() * 4 - 1.5 : (double)(int)(rnd() * 19) - 9;
                    if (!ir_dtype_is_float(t->type.dtype) && v == 0)
                        v = 3;     /* keep integer divisors non-zero */
                    cg_tensor_set(t, i, v);
                }
            }
            snprintf(names[s], sizeof names[s], "@%s with N=%lld", f->name,
                     (long long)(strncmp(f->name, "big_", 4) ? sizes[s] : big[s]));
            whats[s] = names[s];
        }
        CHECK(check_backend(f, lf, MAX_SETS, sets, whats));
        for (int s = 0; s < MAX_SETS; s++)
            free_all(sets[s], f->nargs);
        n += MAX_SETS;
    }
    ir_module_destroy(m);
    ir_module_destroy(low);
    return n;
}

/* An index out of range stops a run with the reference's message, naming the first bad index
 * in order; the kernels check before they move data, so nothing is read out of bounds (the
 * ASan build would see it). `idx` fills the last argument, N is n. */
static void check_index_error(const char *text, int64_t n, const int64_t *idx, const char *want)
{
    dl_module *m = parse("index_error.dlir", text, strlen(text), true);
    dl_func *f = m ? m->first : NULL;
    CHECK(f != NULL && f->nargs == 2);
    if (!f || f->nargs != 2) {
        ir_module_destroy(m);
        return;
    }
    cg_tensor args[2], res[4];
    for (int a = 0; a < 2; a++) {
        args[a].type = f->args[a]->type;
        for (int d = 0; d < args[a].type.rank; d++)
            if (args[a].type.dim[d].n)
                args[a].type.dim[d] = ir_dim_const(n);
        args[a].data = calloc((size_t)numel(&args[a]) + 1, (size_t)ir_dtype_size(args[a].type.dtype));
    }
    for (int64_t i = 0; i < numel(&args[1]); i++)
        cg_tensor_set(&args[1], i, (double)idx[i]);
    char err[512] = "";
    CHECK(!cg_ref_run(f, args, res, err, sizeof err));
    CHECK_EQ_STR(err, want);
    for (int mode = 0; mode < CG_NMODES; mode++) {     /* reduce-overhead: reported by the step */
        cg_cpu_opts co = {(cg_mode)mode, NULL, NULL};
        cg_cpu *p = cg_cpu_compile_opts(f, &co, err, sizeof err);
        CHECK(p != NULL);
        err[0] = 0;
        CHECK(p && !cg_cpu_run(p, args, res, err, sizeof err));
        CHECK_EQ_STR(err, want);
        CHECK(!p || cg_exec_straight_runs(cg_cpu_exec(p)) == (mode == CG_MODE_REDUCE_OVERHEAD));
        cg_cpu_destroy(p);
    }
    free_all(args, 2);
    ir_module_destroy(m);
}

static int test_index_errors(void)
{
    static const int64_t g[] = {1, 4, 7, 5}, s[] = {0, 2, -1, 3}, e[] = {3, 4, 0, -5}, o[] = {2, 3};
    check_index_error("func @f(%x: f32[N, 5], %i: i64[N, 2]) -> (f32[N, 2]) {\n"
                      "  %0 = gather %x, %i {dim=1}\n  return %0\n}\n", 2, g,
                      "'gather': index 7 is out of range for a dimension of size 5");
    check_index_error("func @f(%x: bf16[3, N], %i: i32[4]) -> (bf16[4, N]) {\n"
                      "  %0 = index_select %x, %i {dim=0}\n  return %0\n}\n", 5, s,
                      "'index_select': index -1 is out of range for a dimension of size 3");
    check_index_error("func @f(%w: f16[N, 3], %i: i64[2, 2]) -> (f16[2, 2, 3]) {\n"
                      "  %0 = embedding %i, %w\n  return %0\n}\n", 4, e,
                      "'embedding': index 4 is out of range for a dimension of size 4");
    check_index_error("func @f(%x: f32[N], %i: i32[N]) -> (f32[N, 3]) {\n"
                      "  %0 = one_hot %i {num_classes=3, dtype=f32}\n  return %0\n}\n", 2, o,
                      "'one_hot': index 3 is out of range for a dimension of size 3");
    return 4;
}

/* The f32 exp, tanh, erf and log1p of elementwise kernels are inline approximations
 * (codegen/cpu/emit.c): within 2 ulp of double-precision libm over 2^20 f32 bit patterns spread
 * over every sign and exponent (NaN and infinities included), which the chains' tolerance of
 * 2e-5 could not tell from a coefficient off in its fifth digit. */
static double ulps(float got, double want)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got) ? 0 : INFINITY;
    if (isinf((float)want) || isinf(got))       /* overflow: the f32 result must be infinite too */
        return (float)want == got ? 0 : INFINITY;
    int e;
    frexp(fmax(fabs(want), 0x1p-126), &e);
    return fabs((double)got - want) / ldexp(1, e - 24);
}

static int run_math_ulps(void)
{
    static const char *text = "func @m(%x: f32[N]) -> (f32[N], f32[N], f32[N], f32[N]) {\n"
                              "  %0 = tanh %x\n  %1 = erf %x\n  %2 = log1p %x\n  %3 = exp %x\n"
                              "  return %0, %1, %2, %3\n}\n";
    static double (*const want[4])(double) = {tanh, erf, log1p, exp};
    static const char *const names[4] = {"tanh", "erf", "log1p", "exp"};
    enum { n = 1 << 20 };
    dl_module *m = parse("ulps.dlir", text, strlen(text), false);
    float *x = malloc(sizeof *x * n);
    char err[512];
    cg_cpu *p = m && x ? cg_cpu_compile(m->first, true, err, sizeof err) : NULL;
    CHECK(p != NULL);
    cg_tensor arg = {.data = x}, res[4];
    for (uint32_t i = 0; p && i < n; i++) {
        uint32_t bits = i * 4096u + (i & 4095u);
        memcpy(&x[i], &bits, 4);
    }
    bool ran = p && (arg.type = m->first->args[0]->type, arg.type.dim[0] = ir_dim_const(n),
                     cg_cpu_run(p, &arg, res, err, sizeof err));
    CHECK(ran);
    for (int k = 0; ran && k < 4; k++) {
        double worst = 0;
        float at = 0;
        for (int i = 0; i < n; i++) {
            double u = ulps(((const float *)res[k].data)[i], want[k](x[i]));
            if (u > worst)
                worst = u, at = x[i];
        }
        if (worst > 2)
            fprintf(stderr, "f32 %s: %.2f ulp at %a\n", names[k], worst, at);
        CHECK(worst <= 2);
        free(res[k].data);
    }
    cg_cpu_destroy(p);
    ir_module_destroy(m);
    free(x);
    return n;
}

int main(void)
{
    /* max-autotune's smallest search (docs/modes.md): two register blocks, one run each. */
    setenv("DLC_AUTOTUNE", "quick", 1);
    snprintf(cache_dir, sizeof cache_dir, "%s/dlc-backend-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(cache_dir) != NULL);
    int g = run_goldens(), c = run_chains();
    printf("cpu backend: %d golden cases and %d fused cases checked against the reference\n", g, c);
    printf("cpu backend: %d out-of-range index cases refused as the reference refuses them\n", test_index_errors());
    printf("cpu backend: f32 exp, tanh, erf and log1p within 2 ulp of libm on %d inputs\n", run_math_ulps());
    char rm[600];
    snprintf(rm, sizeof rm, "rm -rf '%s'", cache_dir);
    CHECK(system(rm) == 0);
    return check_result("test_cpu_backend");
}
