/* The table-driven backend test: every golden case (every op of the IR) and a set of fused
 * chains on random inputs with several batch sizes, run on the CPU backend, unfused (-O0) and
 * fused, and compared with the reference interpreter, the oracle. */
#include "codegen/cpu/cpu.h"
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

/* Runs f on args with the reference and with the CPU backend (fused or not); compares results
 * and the arguments afterwards (buffer updates). */
static bool check_backend(const dl_func *f, const cg_tensor *args, const char *what)
{
    int na = f->nargs, nr = f->nresults;
    cg_tensor ra[16], ca[16], rr[16], cr[16];
    char err[512];
    bool ok = true;
    for (int i = 0; i < na; i++)
        ra[i] = copy(&args[i]);
    if (!cg_ref_run(f, ra, rr, err, sizeof err)) {
        /* The reference refuses it (a division by zero, an index out of range): nothing to compare. */
        for (int i = 0; i < na; i++)
            free(ra[i].data);
        return true;
    }
    for (int fuse = 0; fuse < 2 && ok; fuse++) {
        char label[700];
        snprintf(label, sizeof label, "%s (%s)", what, fuse ? "fused" : "-O0");
        cg_cpu *p = cg_cpu_compile(f, fuse, err, sizeof err);
        if (!p) {
            fprintf(stderr, "%s: compile: %s\n", label, err);
            ok = false;
            break;
        }
        for (int i = 0; i < na; i++)
            ca[i] = copy(&args[i]);
        if (!cg_cpu_run(p, ca, cr, err, sizeof err)) {
            fprintf(stderr, "%s: run: %s\n", label, err);
            ok = false;
        }
        for (int i = 0; ok && i < nr; i++)
            ok = same(&cr[i], &rr[i], label);
        for (int i = 0; ok && i < na; i++)
            ok = same(&ca[i], &ra[i], label);
        for (int i = 0; i < nr && ok; i++)
            free(cr[i].data);
        for (int i = 0; i < na; i++)
            free(ca[i].data);
        cg_cpu_destroy(p);
    }
    for (int i = 0; i < nr; i++)
        free(rr[i].data);
    for (int i = 0; i < na; i++)
        free(ra[i].data);
    return ok;
}

static dl_module *parse(const char *name, const char *text, size_t len)
{
    dl_diag *diag = sup_diag_create(stderr);
    const char *n = sup_diag_add_source(diag, name, text, len);
    dl_module *m = ir_parse(n, text, len, diag);
    if (m && !ir_verify(m, diag)) {
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
            dl_module *m = text ? parse(path, text, len) : NULL;
            sup_free(text);
            dl_func *f = m ? ir_func_find(m, "case") : NULL;
            CHECK(f != NULL);
            cg_tensor args[16];
            bool ok = f && f->nargs <= 16;
            for (int a = 0; ok && a < f->nargs; a++) {
                char in[1700], err[512];
                snprintf(in, sizeof in, "%s/in%d.npy", dir, a);
                rt_npy h;
                ok = rt_npy_read(in, &h, &args[a].data, err, sizeof err);
                args[a].type = (dl_type){.dtype = f->args[a]->type.dtype, .rank = h.rank};
                for (int d = 0; ok && d < h.rank; d++)
                    args[a].type.dim[d] = ir_dim_const(h.shape[d]);
            }
            CHECK(ok && check_backend(f, args, what));
            for (int a = 0; ok && a < f->nargs; a++)
                free(args[a].data);
            ir_module_destroy(m);
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
    "  %4 = div %2, %3\n  %5 = log %4\n  return %5\n}\n";

static uint64_t rng = 88172645463325252ull;
static double rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * 0x1.0p-53;
}

static int run_chains(void)
{
    dl_module *m = parse("chains.dlir", chains, strlen(chains));
    CHECK(m != NULL);
    int n = 0;
    static const int64_t sizes[] = {1, 3, 17, 64};
    for (dl_func *f = m ? m->first : NULL; f; f = f->next)
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            cg_tensor args[8];
            for (int a = 0; a < f->nargs; a++) {
                args[a].type = f->args[a]->type;
                for (int d = 0; d < args[a].type.rank; d++)
                    if (args[a].type.dim[d].n)
                        args[a].type.dim[d] = ir_dim_const(sizes[s]);
                int64_t cnt = numel(&args[a]);
                args[a].data = calloc((size_t)(cnt ? cnt : 1), (size_t)ir_dtype_size(args[a].type.dtype));
                for (int64_t i = 0; i < cnt; i++) {
                    double v = ir_dtype_is_float(args[a].type.dtype) ? rnd() * 4 - 1.5 : (double)(int)(rnd() * 19) - 9;
                    if (!ir_dtype_is_float(args[a].type.dtype) && v == 0)
                        v = 3;     /* keep integer divisors non-zero */
                    cg_tensor_set(&args[a], i, v);
                }
            }
            char what[128];
            snprintf(what, sizeof what, "@%s with N=%lld", f->name, (long long)sizes[s]);
            CHECK(check_backend(f, args, what));
            for (int a = 0; a < f->nargs; a++)
                free(args[a].data);
            n++;
        }
    ir_module_destroy(m);
    return n;
}

int main(void)
{
    int g = run_goldens(), c = run_chains();
    printf("cpu backend: %d golden cases and %d fused cases checked against the reference\n", g, c);
    return check_result("test_cpu_backend");
}
