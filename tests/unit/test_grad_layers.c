/* The gradient rules of passes/grad_layers.c against central finite differences: for each case a
 * small f64 function computes y with the op under test and a scalar loss sum(y * w) with fixed
 * random weights w; pass_grad_build appends the gradients, the reference interpreter runs them,
 * and every element of every gradient is compared with (L(a + h) - L(a - h)) / 2h. Covers the
 * gathers with repeated indices, convolutions with stride, padding, dilation, groups and
 * output_padding, pooling with padding, ceil_mode and count_include_pad, batch_norm in training
 * and evaluation, the gradient ops' own rules, checkpoint regions and symbolic batch sizes. */
#include "codegen/ref/interp.h"
#include "passes/autodiff.h"
#include "support/diag.h"
#include "tests/unit/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One case: `args` declares the function's operands (inputs and params are differentiated,
 * buffers not: an `rv` buffer holds variances and gets values in [0.5, 1.5]); `body` computes
 * %y of type `yt`; integer arguments hold (7 k + 3) mod `imod`; symbols are bound to `nsym`. */
typedef struct gcase {
    const char *name, *args, *body, *yt;
    int         imod, nsym;
} gcase;

static const gcase cases[] = {
    /* ---- gathers: repeated indices accumulate ---- */
    {"gather_dim0", "%x: f64[4, 3]",
     "  %i = constant {value=[0, 1, 3, 3, 0, 2, 1, 1, 0, 0, 3, 3, 2, 2, 2]} : i64[5, 3]\n"
     "  %y = gather %x, %i {dim=0}\n", "f64[5, 3]", 0, 0},
    {"gather_dim1_small_index", "%x: f64[4, 5]",
     "  %i = constant {value=[4, 4, 0, 1, 4, 2, 3, 3, 3, 0, 0, 0, 1, 2, 1, 2, 1, 2]} : i32[3, 6]\n"
     "  %y = gather %x, %i {dim=1}\n", "f64[3, 6]", 0, 0},
    {"gather_dim_neg", "%x: f64[2, 3, 4]",
     "  %i = constant {value=[1, 1, 0, 3, 3, 3, 2, 0, 1, 1, 0, 3]} : i64[2, 3, 2]\n"
     "  %y = gather %x, %i {dim=-1}\n", "f64[2, 3, 2]", 0, 0},
    {"index_select_dim0", "%x: f64[4, 3]",
     "  %i = constant {value=[0, 2, 2, 3, 0]} : i64[5]\n"
     "  %y = index_select %x, %i {dim=0}\n", "f64[5, 3]", 0, 0},
    {"index_select_dim1_i32", "%x: f64[2, 4, 3]",
     "  %i = constant {value=[3, 3, 1]} : i32[3]\n"
     "  %y = index_select %x, %i {dim=-2}\n", "f64[2, 3, 3]", 0, 0},
    {"index_select_scalar_index", "%x: f64[3, 4]",
     "  %i = constant {value=[2]} : i64\n"
     "  %y = index_select %x, %i {dim=1}\n", "f64[3, 1]", 0, 0},
    {"index_select_scalar_input", "%x: f64",
     "  %i = constant {value=[0]} : i64[1]\n"
     "  %y = index_select %x, %i {dim=0}\n", "f64", 0, 0},
    {"index_select_symbolic", "%x: f64[N, 4], %i: i64[5]",
     "  %y = index_select %x, %i {dim=1}\n", "f64[N, 5]", 4, 3},
    {"embedding", "%e: f64[6, 4] {role=param}",
     "  %i = constant {value=[5, 1, 1, 0, 5, 5]} : i64[2, 3]\n"
     "  %y = embedding %i, %e\n", "f64[2, 3, 4]", 0, 0},
    {"embedding_scalar_index", "%e: f64[3, 2] {role=param}",
     "  %i = constant {value=[1]} : i32\n"
     "  %y = embedding %i, %e\n", "f64[2]", 0, 0},
    {"embedding_symbolic", "%i: i64[N, 3], %e: f64[5, 2] {role=param}",
     "  %y = embedding %i, %e\n", "f64[N, 3, 2]", 5, 2},
    /* ---- convolutions ---- */
    {"conv2d_bias", "%x: f64[2, 3, 6, 5], %w: f64[4, 3, 3, 3] {role=param}, %b: f64[4] {role=param}",
     "  %y = conv2d %x, %w, %b\n", "f64[2, 4, 4, 3]", 0, 0},
    {"conv2d_stride_pad_dil", "%x: f64[1, 2, 7, 6], %w: f64[3, 2, 3, 2] {role=param}, %b: f64[3] {role=param}",
     "  %y = conv2d %x, %w, %b {stride=[2, 1], padding=[1, 2], dilation=[2, 1]}\n", "f64[1, 3, 3, 9]", 0, 0},
    {"conv2d_groups_stride_rest", "%x: f64[2, 4, 6, 5], %w: f64[6, 2, 3, 3] {role=param}",
     "  %y = conv2d %x, %w {stride=[2], padding=[1], groups=2}\n", "f64[2, 6, 3, 3]", 0, 0},
    {"conv2d_depthwise_dil", "%x: f64[1, 3, 6, 6], %w: f64[3, 1, 2, 3] {role=param}",
     "  %y = conv2d %x, %w {stride=[3, 1], dilation=[2], groups=3}\n", "f64[1, 3, 2, 2]", 0, 0},
    {"conv2d_symbolic", "%x: f64[N, 2, 4, 4], %w: f64[2, 2, 3, 3] {role=param}",
     "  %y = conv2d %x, %w {padding=[1]}\n", "f64[N, 2, 4, 4]", 0, 2},
    {"conv_transpose2d", "%x: f64[2, 3, 3, 4], %w: f64[3, 2, 3, 3] {role=param}",
     "  %y = conv_transpose2d %x, %w\n", "f64[2, 2, 5, 6]", 0, 0},
    {"conv_transpose2d_outpad", "%x: f64[1, 2, 3, 3], %w: f64[2, 2, 3, 2] {role=param}, %b: f64[2] {role=param}",
     "  %y = conv_transpose2d %x, %w, %b {stride=[2, 3], padding=[1, 0], output_padding=[1, 2]}\n",
     "f64[1, 2, 6, 10]", 0, 0},
    {"conv_transpose2d_groups_dil", "%x: f64[1, 4, 3, 4], %w: f64[4, 3, 2, 2] {role=param}, %b: f64[6] {role=param}",
     "  %y = conv_transpose2d %x, %w, %b {padding=[1], dilation=[2, 1], groups=2}\n", "f64[1, 6, 3, 3]", 0, 0},
    /* output_padding 1 with stride 1 (allowed below the dilation): the gradients cut and pad. */
    {"conv_transpose2d_outpad_ge_stride", "%x: f64[1, 2, 4, 3], %w: f64[2, 3, 3, 3] {role=param}",
     "  %y = conv_transpose2d %x, %w {dilation=[2], output_padding=[1]}\n", "f64[1, 3, 9, 8]", 0, 0},
    /* ---- pooling ---- */
    {"max_pool2d", "%x: f64[2, 2, 5, 4]",
     "  %y = max_pool2d %x {kernel_size=[2]}\n", "f64[2, 2, 2, 2]", 0, 0},
    {"max_pool2d_pad_ceil", "%x: f64[1, 2, 6, 7]",
     "  %y = max_pool2d %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true}\n", "f64[1, 2, 4, 4]", 0, 0},
    {"max_pool2d_dil", "%x: f64[2, 6, 7]",
     "  %y = max_pool2d %x {kernel_size=[2, 3], stride=[1, 2], dilation=[2, 1]}\n", "f64[2, 4, 3]", 0, 0},
    {"avg_pool2d", "%x: f64[2, 2, 5, 4]",
     "  %y = avg_pool2d %x {kernel_size=[2]}\n", "f64[2, 2, 2, 2]", 0, 0},
    {"avg_pool2d_pad_nocount", "%x: f64[1, 2, 6, 7]",
     "  %y = avg_pool2d %x {kernel_size=[3], stride=[2], padding=[1], count_include_pad=false}\n",
     "f64[1, 2, 3, 4]", 0, 0},
    {"avg_pool2d_ceil_pad", "%x: f64[1, 2, 6, 7]",
     "  %y = avg_pool2d %x {kernel_size=[3, 2], stride=[2], padding=[1], ceil_mode=true}\n", "f64[1, 2, 4, 4]", 0, 0},
    {"avg_pool2d_ceil_nocount", "%x: f64[3, 5, 5]",
     "  %y = avg_pool2d %x {kernel_size=[2], ceil_mode=true, count_include_pad=false}\n", "f64[3, 3, 3]", 0, 0},
    {"adaptive_avg_pool2d", "%x: f64[2, 2, 7, 6]",
     "  %y = adaptive_avg_pool2d %x {output_size=[3, 4]}\n", "f64[2, 2, 3, 4]", 0, 0},
    {"adaptive_avg_pool2d_overlap", "%x: f64[3, 5, 5]",
     "  %y = adaptive_avg_pool2d %x {output_size=[4, 3]}\n", "f64[3, 4, 3]", 0, 0},
    {"adaptive_avg_pool2d_up", "%x: f64[1, 2, 3, 4]",
     "  %y = adaptive_avg_pool2d %x {output_size=[5, 6]}\n", "f64[1, 2, 5, 6]", 0, 0},
    /* ---- batch_norm ---- */
    {"batch_norm_train4d",
     "%x: f64[3, 2, 3, 2], %g: f64[2] {role=param}, %b: f64[2] {role=param}, %rm: f64[2] {role=buffer}, "
     "%rv: f64[2] {role=buffer}",
     "  %y, %m, %v = batch_norm %x, %g, %b, %rm, %rv {training=true, eps=0.001}\n", "f64[3, 2, 3, 2]", 0, 0},
    {"batch_norm_train2d",
     "%x: f64[5, 3], %g: f64[3] {role=param}, %b: f64[3] {role=param}, %rm: f64[3] {role=buffer}, "
     "%rv: f64[3] {role=buffer}",
     "  %y, %m, %v = batch_norm %x, %g, %b, %rm, %rv {training=true, momentum=0.2}\n", "f64[5, 3]", 0, 0},
    {"batch_norm_eval",
     "%x: f64[2, 3, 4], %g: f64[3] {role=param}, %b: f64[3] {role=param}, %rm: f64[3] {role=buffer}, "
     "%rv: f64[3] {role=buffer}",
     "  %y, %m, %v = batch_norm %x, %g, %b, %rm, %rv {eps=0.01}\n", "f64[2, 3, 4]", 0, 0},
    {"batch_norm_train_symbolic",
     "%x: f64[N, 2, 3], %g: f64[2] {role=param}, %b: f64[2] {role=param}, %rm: f64[2] {role=buffer}, "
     "%rv: f64[2] {role=buffer}",
     "  %y, %m, %v = batch_norm %x, %g, %b, %rm, %rv {training=true}\n", "f64[N, 2, 3]", 0, 3},
    /* ---- the gradient ops' own rules ---- */
    {"scatter_add", "%x: f64[4, 3], %s: f64[2, 3]",
     "  %i = constant {value=[3, 0, 3, 3, 1, 3]} : i64[2, 3]\n"
     "  %y = scatter_add %x, %i, %s {dim=0}\n", "f64[4, 3]", 0, 0},
    {"scatter_add_small_index", "%x: f64[4, 5], %s: f64[3, 4]",
     "  %i = constant {value=[4, 4, 0, 2, 1, 1]} : i64[2, 3]\n"
     "  %y = scatter_add %x, %i, %s {dim=1}\n", "f64[4, 5]", 0, 0},
    {"avg_pool2d_grad", "%d: f64[1, 2, 3, 4], %x: f64[1, 2, 6, 7]",
     "  %y = avg_pool2d_grad %d, %x {kernel_size=[3], stride=[2], padding=[1], count_include_pad=false}\n",
     "f64[1, 2, 6, 7]", 0, 0},
    {"adaptive_avg_pool2d_grad", "%d: f64[3, 4, 3], %x: f64[3, 5, 5]",
     "  %y = adaptive_avg_pool2d_grad %d, %x {output_size=[4, 3]}\n", "f64[3, 5, 5]", 0, 0},
    /* No gradient (ops.def): with respect to x it is zero almost everywhere. */
    {"max_pool2d_grad_wrt_x", "%d: f64[1, 2, 4, 4] {role=buffer}, %x: f64[1, 2, 6, 7]",
     "  %y = max_pool2d_grad %d, %x {kernel_size=[3], stride=[2], padding=[1], ceil_mode=true}\n",
     "f64[1, 2, 6, 7]", 0, 0},
    {"conv2d_grad_weight", "%x: f64[2, 4, 6, 5], %d: f64[2, 6, 3, 3]",
     "  %y = conv2d_grad_weight %x, %d {stride=[2], padding=[1], groups=2, weight_shape=[6, 2, 3, 3]}\n",
     "f64[6, 2, 3, 3]", 0, 0},
    /* ---- composition: a checkpoint region is recomputed and the rules read the clones ---- */
    {"checkpoint_conv_pool_bn",
     "%x: f64[2, 2, 6, 6], %w: f64[3, 2, 3, 3] {role=param}, %g: f64[3] {role=param}, "
     "%b: f64[3] {role=param}, %rm: f64[3] {role=buffer}, %rv: f64[3] {role=buffer}, %e: f64[4, 9] {role=param}",
     "  %c = conv2d %x, %w {padding=[1], checkpoint=1}\n"
     "  %p = max_pool2d %c {kernel_size=[2], checkpoint=1}\n"
     "  %n, %m, %v = batch_norm %p, %g, %b, %rm, %rv {training=true, checkpoint=1}\n"
     "  %a = adaptive_avg_pool2d %n {output_size=[2, 3], checkpoint=1}\n"
     "  %f = reshape %a {shape=[2, 3, 6]}\n"
     "  %i = constant {value=[3, 3, 0, 1, 3, 3]} : i64[6]\n"
     "  %k = embedding %i, %e\n"
     "  %q = reshape %k {shape=[2, 3, 9]}\n"
     "  %i2 = constant {value=[0, 8, 8, 1, 2, 3, 4, 5, 6, 6, 6, 6, 0, 1, 2, 3, 4, 5, 7, 7, 7, 7, 7, 7,"
     " 8, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]} : i64[2, 3, 6]\n"
     "  %z = gather %q, %i2 {dim=2}\n"
     "  %y = mul %z, %f\n", "f64[2, 3, 6]", 0, 0},
};

/* ---- running ------------------------------------------------------------------------------ */

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double uniform(double lo, double hi)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * (double)(rng >> 11) * 0x1p-53;
}

static char *case_text(const gcase *c)
{
    static char buf[8192];
    snprintf(buf, sizeof buf,
             "func @f(%s, %%lw: %s {role=buffer}) -> (f64) {\n%s  %%lm = mul %%y, %%lw\n"
             "  %%l = sum %%lm\n  return %%l\n}\n", c->args, c->yt, c->body);
    return buf;
}

static dl_module *parse(const char *text, dl_diag *diag)
{
    const char *n = sup_diag_add_source(diag, "case", text, strlen(text));
    dl_module *m = ir_parse(n, text, strlen(text), diag);
    if (m && !ir_verify(m, diag)) {
        ir_module_destroy(m);
        return NULL;
    }
    return m;
}

/* Appends the gradients wrt[a] to f's results (as the autodiff pass does) and verifies. */
static bool add_gradients(dl_module *m, const bool *wrt, dl_diag *diag)
{
    dl_func *f = m->first;
    sup_arena scratch;
    sup_arena_init(&scratch, NULL);
    dl_value *grads[32];
    bool ok = pass_grad_build(f, 0, wrt, grads, &scratch, diag);
    sup_arena_reset(&scratch);
    if (!ok)
        return false;
    dl_op *ret = f->last;
    dl_value *vals[33] = {ret->in[0]};
    dl_result_info info[33] = {f->results[0]};
    int n = 1;
    for (int a = 0; a < f->nargs; a++)
        if (wrt[a]) {
            info[n] = (dl_result_info){grads[a]->type, DL_ROLE_OUTPUT};
            vals[n++] = grads[a];
        }
    dl_op *nret = ir_op_create(f, DL_OP_RETURN, n, vals, 0, NULL, 0, NULL, ret->loc, diag);
    if (!nret)
        return false;
    ir_op_insert_before(ret, nret);
    ir_op_remove(ret);
    ir_func_set_results(f, n, info);
    return ir_verify(m, diag);
}

static int64_t numel(const dl_type *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dim[i].c;
    return n;
}

/* Concrete arguments for f: symbols bound to nsym, values as the case says. */
static void make_args(const gcase *c, const dl_func *f, cg_tensor *args)
{
    for (int a = 0; a < f->nargs; a++) {
        dl_type t = f->args[a]->type;
        for (int i = 0; i < t.rank; i++) {
            int64_t v = t.dim[i].c;
            for (int k = 0; k < t.dim[i].n; k++)
                v *= c->nsym;
            t.dim[i] = ir_dim_const(v);
        }
        args[a].type = t;
        int64_t n = numel(&t);
        args[a].data = calloc((size_t)(n ? n : 1), (size_t)ir_dtype_size(t.dtype));
        bool var = !strncmp(f->arginfo[a].name, "rv", 2);
        for (int64_t k = 0; k < n; k++)
            cg_tensor_set(&args[a], k, ir_dtype_is_float(t.dtype) ? (var ? uniform(0.5, 1.5) : uniform(-1, 1))
                                                                   : (double)((7 * k + 3) % c->imod));
    }
}

static double loss(const dl_func *f, cg_tensor *args)
{
    cg_tensor r[1];
    char err[512];
    if (!cg_ref_run(f, args, r, err, sizeof err)) {
        fprintf(stderr, "run: %s\n", err);
        check_failures++;
        return NAN;
    }
    double l = cg_tensor_get(&r[0], 0);
    cg_tensor_free(&r[0]);
    return l;
}

static double worst;     /* the largest |autodiff - FD| / (1 + |FD|) over all cases */
static long nchecked;

static void run_case(const gcase *c)
{
    const char *text = case_text(c);
    dl_diag *diag = sup_diag_create(stderr);
    dl_module *fm = parse(text, diag), *gm = parse(text, diag);
    CHECK(fm && gm);
    if (!fm || !gm) {
        fprintf(stderr, "%s: does not parse:\n%s", c->name, text);
        goto done;
    }
    dl_func *ff = fm->first, *gf = gm->first;
    bool wrt[32] = {0};
    int na = gf->nargs;
    for (int a = 0; a < na; a++)
        wrt[a] = pass_grad_wants(gf, a);
    if (!add_gradients(gm, wrt, diag)) {
        fprintf(stderr, "%s: no gradients\n", c->name);
        check_failures++;
        goto done;
    }
    cg_tensor args[32], res[33];
    make_args(c, ff, args);
    char err[512];
    if (!cg_ref_run(gf, args, res, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", c->name, err);
        check_failures++;
    } else {
        const double h = 1e-6, tol = 1e-6;
        double l0 = loss(ff, args), case_worst = 0;
        CHECK_NEAR(cg_tensor_get(&res[0], 0), l0, 1e-12 * (1 + fabs(l0)));
        int r = 1;
        for (int a = 0; a < na; a++) {
            if (!wrt[a])
                continue;
            const cg_tensor *g = &res[r++];
            CHECK(ir_type_eq(&g->type, &args[a].type));
            for (int64_t k = 0; k < numel(&args[a].type); k++) {
                double v = cg_tensor_get(&args[a], k);
                cg_tensor_set(&args[a], k, v + h);
                double lp = loss(ff, args);
                cg_tensor_set(&args[a], k, v - h);
                double lm = loss(ff, args);
                cg_tensor_set(&args[a], k, v);
                double fd = (lp - lm) / (2 * h), ad = cg_tensor_get(g, k);
                double e = fabs(ad - fd) / (1 + fabs(fd));
                case_worst = fmax(case_worst, e);
                nchecked++;
                if (!(e <= tol)) {
                    fprintf(stderr, "%s: d/d%%%s[%lld]: autodiff %.12g, finite differences %.12g\n",
                            c->name, ff->arginfo[a].name, (long long)k, ad, fd);
                    check_failures++;
                }
            }
        }
        worst = fmax(worst, case_worst);
        printf("  %-34s max error %.2e\n", c->name, case_worst);
        for (int i = 0; i < r; i++)
            cg_tensor_free(&res[i]);
    }
    for (int a = 0; a < na; a++)
        free(args[a].data);
done:
    if (fm)
        ir_module_destroy(fm);
    if (gm)
        ir_module_destroy(gm);
    sup_diag_destroy(diag);
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_case(&cases[i]);
    printf("grad_layers: %zu cases, %ld gradient elements, largest error %.2e (tolerance 1e-6)\n",
           sizeof cases / sizeof *cases, nchecked, worst);
    return check_result("test_grad_layers");
}
