/* The table-driven backend test: every golden case (every op of the IR) and a set of fused
 * chains on random inputs with several batch sizes, run on the CPU backend, unfused (-O0) and
 * fused, and compared with the reference interpreter, the oracle. The reference runs the
 * function as written; the backend a copy after the decompose pass, as `dlc run` does. */
#include "codegen/cpu/cpu.h"
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

/* Runs f on each argument set with the reference and with the CPU backend, compiled once
 * unfused (-O0) and once fused; compares the results and the arguments afterwards (buffer
 * updates). A set the reference refuses (a division by zero, an index out of range) is skipped. */
static bool check_backend(const dl_func *f, const dl_func *lowered, int nsets, cg_tensor (*sets)[16],
                          const char *const *what)
{
    int na = f->nargs, nr = f->nresults;
    char err[512];
    bool ok = true;
    for (int fuse = 0; fuse < 2 && ok; fuse++) {
        cg_cpu *p = cg_cpu_compile(lowered, fuse, err, sizeof err);
        if (!p) {
            fprintf(stderr, "%s: compile: %s\n", what[0], err);
            return false;
        }
        for (int s = 0; s < nsets && ok; s++) {
            char label[700];
            snprintf(label, sizeof label, "%s (%s)", what[s], fuse ? "fused" : "-O0");
            cg_tensor ra[16], rr[16], ca[16], cr[16];
            if (!run_one(f, NULL, sets[s], ra, rr, err, sizeof err))
                continue;
            if (!run_one(f, p, sets[s], ca, cr, err, sizeof err)) {
                fprintf(stderr, "%s: run: %s\n", label, err);
                ok = false;
            } else {
                for (int i = 0; ok && i < nr; i++)
                    ok = same(&cr[i], &rr[i], label);
                for (int i = 0; ok && i < na; i++)
                    ok = same(&ca[i], &ra[i], label);
                free_all(cr, nr);
                free_all(ca, na);
            }
            free_all(rr, nr);
            free_all(ra, na);
        }
        cg_cpu_destroy(p);
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
    "  %4 = min %b {dim=[1]}\n  %5 = sum %b {dim=[1, 2]}\n  %6 = argmax %b {dim=1}\n  return %0, %1, %2, %3, %4, %5, %6\n}\n";

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
                        t->type.dim[d] = ir_dim_const(sizes[s]);
                int64_t cnt = numel(t);
                t->data = calloc((size_t)(cnt ? cnt : 1), (size_t)ir_dtype_size(t->type.dtype));
                for (int64_t i = 0; i < cnt; i++) {
                    double v = ir_dtype_is_float(t->type.dtype) ? rnd() * 4 - 1.5 : (double)(int)(rnd() * 19) - 9;
                    if (!ir_dtype_is_float(t->type.dtype) && v == 0)
                        v = 3;     /* keep integer divisors non-zero */
                    cg_tensor_set(t, i, v);
                }
            }
            snprintf(names[s], sizeof names[s], "@%s with N=%lld", f->name, (long long)sizes[s]);
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

int main(void)
{
    int g = run_goldens(), c = run_chains();
    printf("cpu backend: %d golden cases and %d fused cases checked against the reference\n", g, c);
    return check_result("test_cpu_backend");
}
