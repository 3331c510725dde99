/* Gradients against central finite differences, table-driven like ggml's test-backend-ops: every
 * differentiable op of ir/ops.def (P_DIFF) on its golden cases (tests/goldens, converted to f64)
 * and on random-shape cases written here, each wrapped into a scalar loss sum(r * W) whose
 * gradient pass_grad_build (passes/autodiff.c) builds and the reference interpreter runs. Also:
 * checkpoint regions give the same gradients and are recomputed in the backward part. */
#include "codegen/ref/interp.h"
#include "passes/autodiff.h"
#include "runtime/npy.h"
#include "support/file.h"
#include "tests/unit/check.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *root = "../goldens";

enum {
    MAXA = 40,        /* arguments of a case, its loss weights included */
    SAMPLES = 64,     /* elements checked per argument, chosen at random beyond that */
    ROUNDS = 4,       /* passes of moving inputs off kinks before giving up on an element */
    MAX_REPORT = 4,   /* mismatches printed per case */
};

/* Agreement of autodiff with the central difference: h = 1e-6 * max(1, |x|) leaves the
 * difference within about 1e-9 of the derivative in f64 (truncation h^2 f''' / 6, rounding
 * 1e-16 |L| / h), far inside this; the closest call is printed at the end. */
static double tolerance(double fd) { return 1e-6 + 1e-5 * fabs(fd); }

/* GRAD_VERBOSE=1 in the environment: a line for every case, skipped ones included. */
static bool verbose;

typedef struct stats {
    int  cases, skipped, failed;
    long elems, jittered, dropped;
    bool covered[DL_NOPS], failing[DL_NOPS];
    double worst;         /* the largest |autodiff - fd| / tolerance seen, and where */
    char   worst_at[256];
} stats;

/* ---- random numbers, tensors -------------------------------------------------------------- */

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}
static double uniform(uint64_t *s) { return (double)(next(s) >> 11) * 0x1.0p-53; }

/* A seed per case name, so that a case's numbers do not depend on which cases ran before it. */
static uint64_t seed_of(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++)
        h = (h ^ (unsigned char)*name) * 1099511628211ull;
    return h ? h : 1;
}

static int64_t numel(const cg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->type.rank; i++)
        n *= t->type.dim[i].c;
    return n;
}

static cg_tensor tensor_new(const dl_type *type)
{
    cg_tensor t = {.type = *type};
    int64_t n = numel(&t);
    t.data = calloc((size_t)(n ? n : 1), (size_t)ir_dtype_size(type->dtype));
    SUP_ASSERT(t.data);
    return t;
}

static void free_all(cg_tensor *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].data);
        t[i].data = NULL;
    }
}

/* ---- the loss ------------------------------------------------------------------------------ */

/* A case under test: its function, rewritten to return loss = sum_r sum(r * W_r) over its
 * floating-point results r, the weights W_r being extra arguments after the case's own. */
typedef struct loss_fn {
    const char *what;          /* "op/case" or "@func N=3" */
    dl_module  *m;
    dl_func    *f;
    dl_diag    *diag;
    int         nin;           /* the case's own arguments */
    cg_tensor   args[MAXA];    /* every argument's data, weights included (owned) */
    bool        wrt[MAXA];     /* differentiated arguments */
    bool        exact;         /* inputs and weights on a 1/8 grid, h = 1/32: no rounding at all */
    dl_op      *fwd_end;       /* the last op of the forward part, the loss's sum */
    uint64_t    rng;
} loss_fn;

/* The function's return replaced by one returning vals[0..n), the first the loss. */
static void set_return(dl_func *f, int n, dl_value **vals)
{
    dl_op *ret = f->last;
    dl_op *nret = ir_op_create(f, DL_OP_RETURN, n, vals, 0, NULL, 0, NULL, ret->loc, NULL);
    SUP_ASSERT(nret);
    ir_op_insert_before(ret, nret);
    ir_op_remove(ret);
    dl_result_info info[MAXA + 1];
    for (int i = 0; i < n; i++)
        info[i] = (dl_result_info){vals[i]->type, i ? DL_ROLE_OUTPUT : DL_ROLE_LOSS};
    ir_func_set_results(f, n, info);
}

/* An argument that is an operand without a gradient (ND() in ops.def: labels as probabilities,
 * running statistics, attention masks) of a differentiable op: autodiff treats it as a constant
 * where finite differences would not, so it is not differentiated. */
static bool feeds_nodiff(const dl_func *f, const dl_value *arg)
{
    for (const dl_op *op = f->first; op; op = op->next) {
        const dl_op_info *info = ir_op_info(op->code);
        for (int i = 0; i < op->nin; i++)
            if (op->in[i] == arg && (info->props & P_DIFF) && (i >= 32 || (info->nodiff & ND(i))))
                return true;
    }
    return false;
}

/* batch_norm's second and third results are the running statistics for `buffer := ...`: no
 * gradient flows back through them (PyTorch updates them under no_grad), so they stay out. */
static bool in_loss(const dl_value *v)
{
    return ir_dtype_is_float(v->type.dtype) && !(v->def && v->def->code == DL_OP_BATCH_NORM && v->index > 0);
}

static double weight(loss_fn *l)
{
    if (l->exact)
        return (double)((int)(uniform(&l->rng) * 33) - 16) / 8;
    return uniform(&l->rng) * 2 - 1;
}

/* Runs the case once for its result shapes, adds the weights and the loss. 1: built, 0: nothing
 * to differentiate (no floating-point result or argument), -1: an error (printed). */
static int build_loss(loss_fn *l)
{
    dl_func *f = l->f;
    dl_op *ret = f->last;
    l->nin = f->nargs;
    if (f->nargs + ret->nin > MAXA) {
        fprintf(stderr, "%s: too many arguments and results for the harness\n", l->what);
        return -1;
    }
    cg_tensor res[MAXA];
    char err[512];
    if (!cg_ref_run(f, l->args, res, err, sizeof err)) {
        fprintf(stderr, "%s: reference: %s\n", l->what, err);
        return -1;
    }
    dc c = {.f = f, .at = ret};
    dl_value *loss = NULL;
    for (int r = 0; r < ret->nin; r++) {
        dl_value *v = ret->in[r];
        if (!in_loss(v))
            continue;
        char name[32];
        snprintf(name, sizeof name, "loss_weight%d", r);
        dl_type wt = v->type;
        wt.dtype = DL_F64;
        dl_value *w = ir_func_add_arg(f, name, DL_ROLE_INPUT, NULL, &wt);
        wt = res[r].type;
        wt.dtype = DL_F64;
        cg_tensor *t = &l->args[f->nargs - 1];
        *t = tensor_new(&wt);
        for (int64_t i = 0; i < numel(t); i++)
            cg_tensor_set(t, i, weight(l));
        dl_value *p = dc_bin(&c, DL_OP_MUL, dc_cast(&c, v, DL_F64), w);
        p = dc_reduce(&c, DL_OP_SUM, p, -1, NULL, false);
        loss = loss ? dc_bin(&c, DL_OP_ADD, loss, p) : p;
    }
    free_all(res, f->nresults);
    bool any = false;
    for (int a = 0; a < f->nargs; a++)
        any |= l->wrt[a] = a < l->nin && ir_dtype_is_float(f->args[a]->type.dtype) &&
                           !feeds_nodiff(f, f->args[a]);
    if (!loss || !any)
        return 0;
    set_return(f, 1, &loss);
    l->fwd_end = loss->def;
    if (!ir_verify(l->m, l->diag)) {
        fprintf(stderr, "%s: the loss does not verify\n", l->what);
        return -1;
    }
    return 1;
}

static bool eval_loss(loss_fn *l, double *out)
{
    cg_tensor res[1];
    char err[512];
    if (!cg_ref_run(l->f, l->args, res, err, sizeof err)) {
        fprintf(stderr, "%s: reference: %s\n", l->what, err);
        return false;
    }
    *out = cg_tensor_get(&res[0], 0);
    free_all(res, 1);
    return true;
}

/* ---- finite differences ---------------------------------------------------------------------- */

typedef struct sample {
    int     arg;
    int64_t elem;
    double  fd;
    bool    ok;           /* fd holds the derivative; false: no smooth point found */
} sample;

/* Up to SAMPLES elements of each differentiated argument, all of them when there are fewer. */
static int pick_samples(loss_fn *l, sample *s)
{
    int n = 0;
    for (int a = 0; a < l->f->nargs; a++) {
        if (!l->wrt[a])
            continue;
        int64_t cnt = numel(&l->args[a]);
        if (cnt <= SAMPLES) {
            for (int64_t i = 0; i < cnt; i++)
                s[n++] = (sample){.arg = a, .elem = i};
            continue;
        }
        int64_t *perm = malloc(sizeof *perm * (size_t)cnt);
        SUP_ASSERT(perm);
        for (int64_t i = 0; i < cnt; i++)
            perm[i] = i;
        for (int i = 0; i < SAMPLES; i++) {
            int64_t j = i + (int64_t)(next(&l->rng) % (uint64_t)(cnt - i)), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
            s[n++] = (sample){.arg = a, .elem = perm[i]};
        }
        free(perm);
    }
    return n;
}

static double step(const loss_fn *l, double x) { return l->exact ? 1.0 / 32 : 1e-6 * fmax(1, fabs(x)); }

/* The loss at element `s` moved by k steps (k = -2..2). */
static bool loss_at(loss_fn *l, const sample *s, double x, double h, int k, double *out)
{
    cg_tensor *t = &l->args[s->arg];
    cg_tensor_set(t, s->elem, x + k * h);
    bool ok = eval_loss(l, out);
    cg_tensor_set(t, s->elem, x);
    return ok;
}

/* One pass over the samples. Besides the central difference (L(x+h) - L(x-h)) / 2h, the
 * second-order one-sided ones from each side: where they disagree the function has a kink or a
 * step within 2h of x (relu or abs at 0, floor of an integer, a tie in max, a clamp bound) and
 * finite differences mean nothing there, so x is moved a little (relatively 1e-3) and the next
 * pass tries again. Moving one input changes the others' derivatives, so passes repeat until
 * one moves nothing; the last never moves anything and gives up on the elements still on a
 * kink. Returns how many inputs moved, -1 on an error. */
static int fd_pass(loss_fn *l, sample *s, int ns, bool last)
{
    double l0;
    if (!eval_loss(l, &l0))
        return -1;
    int moved = 0;
    for (int i = 0; i < ns; i++) {
        cg_tensor *t = &l->args[s[i].arg];
        double x = cg_tensor_get(t, s[i].elem), h = step(l, x), lk[5];
        for (int k = -2; k <= 2; k++)
            if (k && !loss_at(l, &s[i], x, h, k, &lk[k + 2]))
                return -1;
        double c = (lk[3] - lk[1]) / (2 * h);
        double right = (-3 * l0 + 4 * lk[3] - lk[4]) / (2 * h);
        double left = (3 * l0 - 4 * lk[1] + lk[0]) / (2 * h);
        s[i].ok = isfinite(c) && isfinite(right) && isfinite(left) && fabs(right - left) <= tolerance(c);
        s[i].fd = c;
        if (s[i].ok || last || l->exact)
            continue;
        double u = uniform(&l->rng);
        double d = (1 + uniform(&l->rng)) * 1e-3 * fmax(fabs(x), 1e-2);
        cg_tensor_set(t, s[i].elem, u < 0.5 ? x - d : x + d);
        moved++;
    }
    return moved;
}

static int fd_all(loss_fn *l, sample *s, int ns, stats *st)
{
    for (int round = 0; round < ROUNDS; round++) {
        int moved = fd_pass(l, s, ns, round == ROUNDS - 1);
        if (moved <= 0)
            return moved;
        st->jittered += moved;
        if (verbose)
            fprintf(stderr, "%s: %d inputs moved off a kink\n", l->what, moved);
    }
    return 0;
}

/* ---- one case -------------------------------------------------------------------------------- */

/* Builds the gradients of the loss with respect to the differentiated arguments, returns them
 * after the loss and runs the function: grads[a] receives argument a's gradient (no data for
 * the arguments not differentiated). */
static bool run_grads(loss_fn *l, cg_tensor *grads)
{
    dl_func *f = l->f;
    dl_value *g[MAXA], *vals[MAXA + 1] = {f->last->in[0]};
    sup_arena scratch;
    sup_arena_init(&scratch, NULL);
    bool ok = pass_grad_build(f, 0, l->wrt, g, &scratch, l->diag);
    sup_arena_reset(&scratch);
    if (!ok) {
        fprintf(stderr, "%s: pass_grad_build failed\n", l->what);
        return false;
    }
    int n = 1;
    for (int a = 0; a < f->nargs; a++)
        if (l->wrt[a]) {
            if (!ir_type_eq(&g[a]->type, &f->args[a]->type)) {
                fprintf(stderr, "%s: the gradient of argument %d has another type\n", l->what, a);
                return false;
            }
            vals[n++] = g[a];
        }
    set_return(f, n, vals);
    if (!ir_verify(l->m, l->diag)) {
        fprintf(stderr, "%s: the gradient does not verify\n", l->what);
        return false;
    }
    cg_tensor res[MAXA + 1];
    char err[512];
    if (!cg_ref_run(f, l->args, res, err, sizeof err)) {
        fprintf(stderr, "%s: reference (gradients): %s\n", l->what, err);
        return false;
    }
    free(res[0].data);
    memset(grads, 0, sizeof *grads * MAXA);
    for (int a = 0, k = 1; a < f->nargs; a++)
        if (l->wrt[a])
            grads[a] = res[k++];
    return true;
}

typedef enum { CASE_SKIPPED, CASE_OK, CASE_FAILED } case_result;

/* The whole check of one case; l->args holds its inputs (f64 where floating-point). When
 * `grads` is given it receives the gradients (the caller frees them). */
static case_result check_case(loss_fn *l, stats *st, cg_tensor *grads)
{
    if (grads)
        memset(grads, 0, sizeof *grads * MAXA);
    int built = build_loss(l);
    if (built == 0 && verbose)
        fprintf(stderr, "%s: skipped: no floating-point result or differentiable argument\n", l->what);
    if (built <= 0)
        return built ? CASE_FAILED : CASE_SKIPPED;
    sample *s = malloc(sizeof *s * MAXA * SAMPLES);
    SUP_ASSERT(s);
    int ns = pick_samples(l, s);
    double l0 = 0;
    bool finite = eval_loss(l, &l0) && isfinite(l0);
    if (!finite) {
        fprintf(stderr, "%s: the loss is not finite at the inputs\n", l->what);
        free(s);
        return CASE_FAILED;
    }
    cg_tensor g[MAXA];
    if (fd_all(l, s, ns, st) < 0 || !run_grads(l, g)) {
        free(s);
        return CASE_FAILED;
    }
    int bad = 0, checked = 0;
    for (int i = 0; i < ns; i++) {
        if (!s[i].ok) {
            st->dropped++;
            continue;
        }
        checked++;
        double a = cg_tensor_get(&g[s[i].arg], s[i].elem), b = s[i].fd;
        if (fabs(a - b) / tolerance(b) > st->worst)
            st->worst = fabs(a - b) / tolerance(b), snprintf(st->worst_at, sizeof st->worst_at, "%s", l->what);
        if (fabs(a - b) <= tolerance(b))
            continue;
        if (bad++ < MAX_REPORT)
            fprintf(stderr, "%s: arg %d elem %lld: autodiff %.10g vs fd %.10g\n", l->what, s[i].arg,
                    (long long)s[i].elem, a, b);
    }
    if (bad > MAX_REPORT)
        fprintf(stderr, "%s: ... %d mismatches in all, of %d elements\n", l->what, bad, checked);
    st->elems += checked;
    if (verbose)
        fprintf(stderr, "%s: %d elements compared, %d mismatches\n", l->what, checked, bad);
    free(s);
    if (grads)
        memcpy(grads, g, sizeof g);
    else
        free_all(g, MAXA);
    if (!checked) {
        fprintf(stderr, "%s: no element at a differentiable point\n", l->what);
        return CASE_FAILED;
    }
    return bad ? CASE_FAILED : CASE_OK;
}

static void tally(stats *st, case_result r)
{
    st->cases += r != CASE_SKIPPED;
    st->skipped += r == CASE_SKIPPED;
    st->failed += r == CASE_FAILED;
}

/* ---- golden cases ---------------------------------------------------------------------------- */

static bool ident_char(char c) { return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* The case's text with every floating-point dtype (types and dtype attributes) written f64:
 * the words f32, f16 and bf16, not inside longer names nor naming a value or a function. */
static char *to_f64(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    SUP_ASSERT(out);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        bool start = ident_char(text[i]) && (i == 0 || (!ident_char(text[i - 1]) && text[i - 1] != '%' &&
                                                        text[i - 1] != '@'));
        if (!start) {
            out[o++] = text[i++];
            continue;
        }
        size_t j = i;
        while (j < len && ident_char(text[j]))
            j++;
        bool fl = (j - i == 3 && (!memcmp(text + i, "f32", 3) || !memcmp(text + i, "f16", 3))) ||
                  (j - i == 4 && !memcmp(text + i, "bf16", 4));
        if (fl) {
            memcpy(out + o, "f64", 3);
            o += 3;
        } else {
            memcpy(out + o, text + i, j - i);
            o += j - i;
        }
        i = j;
    }
    out[o] = 0;
    return out;
}

/* DIR/inA.npy, stored in the case's dtype `orig`, as f64 when floating-point. */
static bool load_input(const char *dir, int a, dl_dtype orig, cg_tensor *out, const char *what)
{
    char path[1200], err[512];
    snprintf(path, sizeof path, "%s/in%d.npy", dir, a);
    rt_npy h;
    void *data;
    if (!rt_npy_read(path, &h, &data, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", what, err);
        return false;
    }
    if (h.elem_size != ir_dtype_size(orig)) {
        fprintf(stderr, "%s: %s holds %s, not %s\n", what, path, h.descr, ir_dtype_name(orig));
        free(data);
        return false;
    }
    cg_tensor raw = {.type = {.dtype = orig, .rank = h.rank}, .data = data};
    for (int i = 0; i < h.rank; i++)
        raw.type.dim[i] = ir_dim_const(h.shape[i]);
    dl_type t = raw.type;
    if (ir_dtype_is_float(orig))
        t.dtype = DL_F64;
    *out = tensor_new(&t);
    for (int64_t i = 0; i < numel(&raw); i++)
        cg_tensor_set(out, i, cg_tensor_get(&raw, i));
    free(data);
    return true;
}

static dl_module *parse_text(dl_diag *diag, const char *name, const char *text, size_t len)
{
    const char *n = sup_diag_add_source(diag, name, text, len);
    dl_module *m = ir_parse(n, text, len, diag);
    if (m && !ir_verify(m, diag)) {
        ir_module_destroy(m);
        m = NULL;
    }
    return m;
}

static case_result golden_case(const char *op, const char *cname, stats *st)
{
    char dir[1024], path[1100], what[256];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, op, cname);
    snprintf(what, sizeof what, "%s/%s", op, cname);
    snprintf(path, sizeof path, "%s/case.dlir", dir);
    size_t len;
    char *text = sup_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read %s\n", what, path);
        return CASE_FAILED;
    }
    char *wide = to_f64(text, len);
    dl_diag *diag = sup_diag_create(stderr);
    dl_module *orig = parse_text(diag, path, text, len);
    dl_module *m = parse_text(diag, what, wide, strlen(wide));
    sup_free(text);
    free(wide);
    dl_func *f0 = orig ? ir_func_find(orig, "case") : NULL, *f = m ? ir_func_find(m, "case") : NULL;
    loss_fn l = {.what = what, .m = m, .f = f, .diag = diag, .rng = seed_of(what)};
    bool ok = f0 && f && f->nargs == f0->nargs && f->nargs < MAXA;
    if (!ok)
        fprintf(stderr, "%s: no @case, or it does not parse as f64\n", what);
    int nloaded = 0;
    for (int a = 0; ok && a < f->nargs; a++, nloaded++)
        ok = load_input(dir, a, f0->args[a]->type.dtype, &l.args[a], what);
    case_result r = ok ? check_case(&l, st, NULL) : CASE_FAILED;
    free_all(l.args, ok ? f->nargs : nloaded);
    if (orig)
        ir_module_destroy(orig);
    if (m)
        ir_module_destroy(m);
    sup_diag_destroy(diag);
    return r;
}

static int only_dirs(const struct dirent *e) { return e->d_name[0] != '.'; }

/* Every golden case of every differentiable op. */
static void run_goldens(stats *st)
{
    struct dirent **ops;
    int nops = scandir(root, &ops, only_dirs, alphasort);
    CHECK(nops > 50);
    for (int i = 0; i < nops; i++) {
        dl_opcode code;
        bool diff = ir_op_lookup(ops[i]->d_name, strlen(ops[i]->d_name), &code) &&
                    (ir_op_info(code)->props & P_DIFF);
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", root, ops[i]->d_name);
        struct dirent **cases;
        int nc = diff ? scandir(dir, &cases, only_dirs, alphasort) : 0;
        for (int k = 0; k < nc; k++) {
            case_result r = golden_case(ops[i]->d_name, cases[k]->d_name, st);
            tally(st, r);
            st->covered[code] |= r == CASE_OK;
            st->failing[code] |= r == CASE_FAILED;
            free(cases[k]);
        }
        if (nc > 0)
            free(cases);
        free(ops[i]);
    }
    if (nops > 0)
        free(ops);
}

/* ---- random-shape cases ---------------------------------------------------------------------- */

/* Chains of ops (several uses of a value, broadcasting, symbolic dimensions, ops feeding ops)
 * and the ops whose goldens are few, run twice with random sizes 2..5 for the symbols. Floating
 * inputs are uniform in [-2, 2], those named `pos*` in [0.25, 2.25]; integers in [-9, 9] (made
 * indices with `mod` inside the function), bools at random. Functions named `exact_*` take
 * inputs and weights on a 1/8 grid and h = 1/32, so that casts to f16, bf16 and f32 round
 * nothing and the differences are exact. A value computed from a differentiated argument must
 * not feed an ND() operand: finite differences would see a dependence autodiff ignores. */
static const char *customs =
    "func @chain(%x: f64[N, 7], %y: f64[7], %s: f64) -> (f64[N, 7], f64[N]) {\n"
    "  %0 = mul %x, %y\n  %1 = add %0, %s\n  %2 = tanh %1\n  %3 = mul %2, %x\n  %4 = exp %y\n"
    "  %5 = div %3, %4\n  %6 = gelu %5 {approximate=\"tanh\"}\n  %7 = silu %x\n  %8 = add %6, %7\n"
    "  %9 = sub %8, %s\n  %10 = logsumexp %9 {dim=[1]}\n  return %8, %10\n}\n"
    "func @positive(%x: f64[N, M], %e: f64[M], %pos: f64[M]) -> (f64[N, M], f64[N, M], f64[N, M]) {\n"
    "  %c = constant {value=[0.5]} : f64\n  %0 = exp %x\n  %1 = add %0, %c\n  %2 = log %1\n"
    "  %3 = sqrt %1\n  %4 = rsqrt %1\n  %5 = pow %1, %e\n  %6 = log1p %0\n  %7 = mul %2, %3\n"
    "  %8 = add %7, %4\n  %9 = erf %5\n  %10 = sin %6\n  %11 = cos %9\n  %12 = mul %10, %11\n"
    "  %13 = log %pos\n  %14 = pow %pos, %x\n  %15 = add %14, %13\n  return %8, %12, %15\n}\n"
    "func @select(%x: f64[N, 5], %y: f64[5], %c: bool[N, 5]) -> (f64[N, 5], f64[N]) {\n"
    "  %0 = where %c, %x, %y\n  %1 = maximum %x, %y\n  %2 = minimum %0, %1\n"
    "  %3 = clamp %x {min=-0.5, max=1.0}\n  %4 = abs %2\n  %5 = mul %4, %3\n  %6 = relu %5\n"
    "  %7 = neg %6\n  %8 = sigmoid %7\n  %9 = max %8 {dim=[1]}\n  return %8, %9\n}\n"
    "func @mlp(%x: f64[N, 8], %w1: f64[8, 16], %b1: f64[16], %w2: f64[16, 5], %b2: f64[5], %l: i64[N])\n"
    "    -> (f64, f64[N, 5], f64[N]) {\n"
    "  %c5 = constant {value=[5.0]} : i64\n  %lab = mod %l, %c5\n  %0 = matmul %x, %w1\n"
    "  %1 = add %0, %b1\n  %2 = leaky_relu %1 {negative_slope=0.1}\n  %3 = matmul %2, %w2\n"
    "  %4 = add %3, %b2\n  %5 = cross_entropy %4, %lab {label_smoothing=0.1}\n"
    "  %6 = log_softmax %4 {dim=1}\n  %7 = nll_loss %6, %lab {reduction=\"none\"}\n  return %5, %6, %7\n}\n"
    "func @matmuls(%a: f64[N, 3, 4], %b: f64[4, 5], %v: f64[4], %c: f64[1, 5, 2]) -> (f64[N, 3, 5], f64[N, 3], f64[N, 3, 2], f64) {\n"
    "  %0 = matmul %a, %b\n  %1 = matmul %a, %v\n  %2 = matmul %0, %c\n  %3 = matmul %v, %v\n"
    "  return %0, %1, %2, %3\n}\n"
    "func @norms(%x: f64[N, M, 6], %w: f64[6], %b: f64[6]) -> (f64[N, M, 6], f64[M], f64[N, 1, 6], f64[N], f64, f64[N, M]) {\n"
    "  %0 = layer_norm %x, %w, %b {normalized_shape=[6]}\n  %1 = mean %x {dim=[0, 2]}\n"
    "  %2 = var %x {dim=[1], keepdim=true}\n  %3 = std %x {dim=[1, 2], correction=0}\n"
    "  %4 = softmax %x {dim=1}\n  %5 = mul %4, %x\n  %6 = sum %5\n"
    "  %7 = layer_norm %x {normalized_shape=[6], eps=0.001}\n  %8 = prod %7 {dim=[2]}\n"
    "  return %0, %1, %2, %3, %6, %8\n}\n"
    "func @shapes(%x: f64[N, 3, 4], %y: f64[N, 2, 4], %z: f64[4], %s: f64[N, 1])\n"
    "    -> (f64[1, N, 5], f64[N, 15], f64[4, 2], f64[N, 4], f64[5, 4, N]) {\n"
    "  %0 = concat %x, %y {dim=1}\n  %1 = transpose %0 {dim0=0, dim1=2}\n  %2 = permute %1 {dims=[2, 0, 1]}\n"
    "  %3, %4 = split %2 {sizes=[1, 3], dim=1}\n  %5 = squeeze %3 {dim=[1]}\n  %6 = unsqueeze %5 {dim=0}\n"
    "  %7 = slice %4 {dim=2, start=1, end=5, step=2}\n  %8 = pad %7 {pad=[1, 2], value=0.5}\n"
    "  %9 = flatten %8 {start_dim=1}\n  %10 = stack %z, %z {dim=1}\n  %11 = broadcast_to %z {shape=[N, 4]}\n"
    "  %12 = expand %s {shape=[-1, 4]}\n  %13 = mul %11, %12\n  %14 = reshape %2 {shape=[5, 4, N]}\n"
    "  return %6, %9, %10, %13, %14\n}\n"
    "func @indexing(%x: f64[N, 6], %w: f64[7, 3], %i: i64[N, 4], %j: i32[5]) -> (f64[N, 4], f64[N, 5], f64[N, 4, 3], f64[5, 3]) {\n"
    "  %c6 = constant {value=[6.0]} : i64\n  %0 = mod %i, %c6\n  %1 = gather %x, %0 {dim=1}\n"
    "  %c6i = constant {value=[6.0]} : i32\n  %2 = mod %j, %c6i\n  %3 = index_select %x, %2 {dim=1}\n"
    "  %c7 = constant {value=[7.0]} : i64\n  %4 = mod %i, %c7\n  %5 = embedding %4, %w\n"
    "  %c7i = constant {value=[7.0]} : i32\n  %6 = mod %j, %c7i\n  %7 = index_select %w, %6 {dim=0}\n"
    "  return %1, %3, %5, %7\n}\n"
    /* The causal mask's rule wants static sequence lengths. */
    "func @attention(%q: f64[2, L, 4], %k: f64[2, S, 4], %v: f64[2, S, 3], %m: f64[L, S], %key: i64,\n"
    "                %q2: f64[N, 5, 4], %k2: f64[N, 3, 4], %v2: f64[N, 3, 2])\n"
    "    -> (f64[2, L, 3], f64[2, L, 3], f64[N, 5, 2], f64[N, 3, 4]) {\n"
    "  %0 = scaled_dot_product_attention %q, %k, %v, %m {scale=0.3}\n  %1 = dropout %0, %key {p=0.3}\n"
    "  %2 = scaled_dot_product_attention %q2, %k2, %v2 {causal=true}\n"
    "  %3 = scaled_dot_product_attention %k2, %q2, %q2 {causal=true, scale=0.7}\n"
    "  return %0, %1, %2, %3\n}\n"
    "func @losses(%x: f64[N, 5], %y: f64[N, 5], %z: f64[N, 5], %l: i32[N])\n"
    "    -> (f64, f64, f64[N, 5], f64, f64, f64, f64, f64[N], f64) {\n"
    "  %p = sigmoid %x\n  %q = sigmoid %y\n  %0 = mse_loss %x, %y\n  %1 = l1_loss %x, %y {reduction=\"sum\"}\n"
    "  %2 = huber_loss %x, %y {reduction=\"none\", delta=0.5}\n  %3 = smooth_l1_loss %x, %y {beta=0.5}\n"
    "  %4 = bce %p, %q\n  %5 = bce_with_logits %x, %q {reduction=\"sum\"}\n  %ls = log_softmax %x {dim=1}\n"
    "  %t = softmax %y {dim=1}\n  %6 = kl_div %ls, %t {reduction=\"batchmean\"}\n"
    "  %7 = triplet_margin_loss %x, %y, %z {reduction=\"none\", swap=true}\n"
    "  %c5 = constant {value=[5.0]} : i32\n  %lab = mod %l, %c5\n"
    "  %8 = cross_entropy %z, %lab {reduction=\"sum\", ignore_index=2}\n  return %0, %1, %2, %3, %4, %5, %6, %7, %8\n}\n"
    "func @conv(%x: f64[N, 4, 7, 6], %w: f64[6, 2, 3, 3], %b: f64[6], %wt: f64[4, 3, 3, 2], %bt: f64[6])\n"
    "    -> (f64[N, 6, 4, 4], f64[N, 6, 14, 7], f64[N, 4, 4, 3], f64[N, 4, 4, 6], f64[N, 4, 3, 4]) {\n"
    "  %0 = conv2d %x, %w, %b {stride=[2, 1], padding=[1, 1], dilation=[1, 2], groups=2}\n"
    "  %1 = conv_transpose2d %x, %wt, %bt {stride=[2, 1], padding=[1, 0], output_padding=[1, 0], groups=2}\n"
    "  %2 = max_pool2d %x {kernel_size=[3, 2], stride=[2, 2], padding=[1, 0]}\n"
    "  %3 = avg_pool2d %x {kernel_size=[2, 3], stride=[2, 1], padding=[1, 1], count_include_pad=false}\n"
    "  %4 = adaptive_avg_pool2d %x {output_size=[3, 4]}\n  return %0, %1, %2, %3, %4\n}\n"
    "func @bn(%x: f64[N, 3, 2, 2], %w: f64[3], %b: f64[3], %rm: f64[3], %rv: f64[3], %x2: f64[N, 3])\n"
    "    -> (f64[N, 3, 2, 2], f64[3], f64[3], f64[N, 3]) {\n"
    "  %0, %1, %2 = batch_norm %x, %w, %b, %rm, %rv {training=true, momentum=0.3}\n"
    "  %3, %4, %5 = batch_norm %x2, %w, %b, %rm, %rv {training=true, eps=0.01}\n  return %0, %1, %2, %3\n}\n"
    "func @exact_casts(%x: f64[N, 4], %y: f64[4]) -> (f16[N, 4], bf16[N, 4], f32[N, 4], f32, f64[N, 4]) {\n"
    "  %0 = cast %x {dtype=f16}\n  %1 = cast %x {dtype=bf16}\n  %2 = cast %y {dtype=f32}\n"
    "  %3 = cast %0 {dtype=f32}\n  %4 = add %3, %2\n  %5 = cast %1 {dtype=f32}\n  %6 = sub %4, %5\n"
    "  %7 = sum %2\n  %8 = cast %1 {dtype=f64}\n  return %0, %1, %6, %7, %8\n}\n";

typedef struct symtab {
    const char *sym[16];
    int64_t     val[16];
    int         n;
} symtab;

static int64_t sym_value(symtab *t, const char *s, uint64_t *rng)
{
    for (int i = 0; i < t->n; i++)
        if (t->sym[i] == s)
            return t->val[i];
    SUP_ASSERT(t->n < 16);
    t->sym[t->n] = s;
    return t->val[t->n++] = 2 + (int64_t)(next(rng) % 4);
}

/* Inputs for f's arguments, symbols bound to random sizes (named in `what`). */
static void random_inputs(loss_fn *l, char *what, size_t n)
{
    symtab syms = {.n = 0};
    for (int a = 0; a < l->f->nargs; a++) {
        dl_type t = l->f->args[a]->type;
        for (int d = 0; d < t.rank; d++) {
            int64_t v = t.dim[d].c;
            for (int k = 0; k < t.dim[d].n; k++)
                v *= sym_value(&syms, t.dim[d].sym[k], &l->rng);
            t.dim[d] = ir_dim_const(v);
        }
        cg_tensor *x = &l->args[a];
        *x = tensor_new(&t);
        bool pos = !strncmp(l->f->arginfo[a].name, "pos", 3);
        for (int64_t i = 0; i < numel(x); i++) {
            double u = uniform(&l->rng), v;
            if (ir_dtype_is_float(t.dtype))
                v = l->exact ? (double)((int)(u * 33) - 16) / 8 : pos ? 0.25 + 2 * u : 4 * u - 2;
            else
                v = t.dtype == DL_BOOL ? u < 0.5 : (double)((int)(u * 19) - 9);
            cg_tensor_set(x, i, v);
        }
    }
    size_t o = strlen(what);
    for (int i = 0; i < syms.n && o < n; i++)
        o += (size_t)snprintf(what + o, n - o, " %s=%lld", syms.sym[i], (long long)syms.val[i]);
}

/* One run of @name from `text` (parsed afresh: the loss rewrites it). `clear` drops its
 * checkpoint marks; `grads` as check_case; *mod receives the module when asked for (else it is
 * destroyed), the caller then destroying it. */
static case_result custom_case(const char *text, const char *name, int run, bool clear, stats *st,
                               cg_tensor *grads, loss_fn *out)
{
    char what[256];
    snprintf(what, sizeof what, "@%s%s (run %d)", name, clear ? " without checkpoints" : "", run);
    dl_diag *diag = sup_diag_create(stderr);
    dl_module *m = parse_text(diag, "customs.dlir", text, strlen(text));
    dl_func *f = m ? ir_func_find(m, name) : NULL;
    CHECK(f != NULL);
    if (!f) {
        sup_diag_destroy(diag);
        return CASE_FAILED;
    }
    char seed[300];
    snprintf(seed, sizeof seed, "@%s %d", name, run);
    loss_fn l = {.what = what, .m = m, .f = f, .diag = diag, .rng = seed_of(seed),
                 .exact = !strncmp(name, "exact_", 6)};
    bool ops[DL_NOPS] = {0};
    for (dl_op *op = f->first; op; op = op->next) {
        ops[op->code] = (ir_op_info(op->code)->props & P_DIFF) != 0;
        if (clear)
            op->checkpoint = 0;
    }
    random_inputs(&l, what, sizeof what);
    case_result r = check_case(&l, st, grads);
    for (int c = 0; c < DL_NOPS; c++)
        st->covered[c] |= ops[c] && r == CASE_OK;
    if (out) {
        l.what = NULL;
        *out = l;
        return r;
    }
    free_all(l.args, f->nargs);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return r;
}

static void run_customs(stats *st)
{
    dl_diag *diag = sup_diag_create(stderr);
    dl_module *m = parse_text(diag, "customs.dlir", customs, strlen(customs));
    CHECK(m != NULL);
    for (dl_func *f = m ? m->first : NULL; f; f = f->next)
        for (int run = 0; run < 2; run++)
            tally(st, custom_case(customs, f->name, run, false, st, NULL, NULL));
    if (m)
        ir_module_destroy(m);
    sup_diag_destroy(diag);
}

/* ---- checkpoint regions ---------------------------------------------------------------------- */

/* Each function runs twice: as written and with its checkpoint marks dropped. The gradients
 * must agree (the same arithmetic in another order of ops: to rounding), and the backward part
 * of the checkpointed one must hold, for each op kind, exactly the region's ops more than the
 * other's: the recomputed copy (autodiff.c's recompute). */
static const char *ckpts =
    "func @ckpt_mlp(%x: f64[N, 6], %w1: f64[6, 8], %w2: f64[8, 4]) -> (f64[N, 4], f64) {\n"
    "  %0 = matmul %x, %w1 {checkpoint=1}\n  %1 = tanh %0 {checkpoint=1}\n  %2 = mul %1, %1 {checkpoint=1}\n"
    "  %3 = matmul %2, %w2\n  %4 = gelu %3 {checkpoint=2}\n  %5 = softmax %4 {dim=1, checkpoint=2}\n"
    "  %6 = logsumexp %3\n  return %5, %6\n}\n"
    "func @ckpt_norm(%x: f64[N, 5], %w: f64[5], %b: f64[5]) -> (f64[N, 5], f64[N]) {\n"
    "  %0 = layer_norm %x, %w, %b {normalized_shape=[5], checkpoint=1}\n  %1 = sigmoid %0 {checkpoint=1}\n"
    "  %2 = mul %1, %x {checkpoint=1}\n  %3 = exp %2 {checkpoint=3}\n  %4 = sum %3 {dim=[1], checkpoint=3}\n"
    "  return %2, %4\n}\n";

static void count_after(const dl_op *from, int *cnt)
{
    for (const dl_op *op = from ? from->next : NULL; op; op = op->next)
        cnt[op->code]++;
}

/* Whether the forward value v, made in a checkpoint region, is used only inside its region:
 * an activation the region exists not to keep. */
static bool interior(const dl_op *fwd_end, const dl_value *v)
{
    const dl_op *def = v->def;
    if (!def || !def->checkpoint)
        return false;
    for (const dl_op *op = def->next; op; op = op->next) {
        for (int i = 0; i < op->nin; i++)
            if (op->in[i] == v && op->checkpoint != def->checkpoint)
                return false;
        if (op == fwd_end)
            break;
    }
    return true;
}

/* The backward part reads no interior value of a region: the rules read the recomputed copy
 * (gd_in, gd_res), never the forward op's own operands and results. */
static bool reads_no_activation(const char *name, const dl_op *fwd_end)
{
    for (const dl_op *op = fwd_end->next; op; op = op->next)
        for (int i = 0; i < op->nin; i++)
            if (interior(fwd_end, op->in[i])) {
                fprintf(stderr, "@%s: the backward part's '%s' reads operand %d from the forward '%s' "
                        "of checkpoint region %d, not its recomputed copy\n", name, ir_op_info(op->code)->name,
                        i, ir_op_info(op->in[i]->def->code)->name, op->in[i]->def->checkpoint);
                return false;
            }
    return true;
}

static bool same_grads(const char *name, const loss_fn *la, const cg_tensor *ga, const cg_tensor *gb)
{
    for (int a = 0; a < la->f->nargs; a++) {
        if (!ga[a].data || !gb[a].data) {
            if (ga[a].data || gb[a].data)
                fprintf(stderr, "@%s: argument %d has a gradient in only one of the two\n", name, a);
            if (ga[a].data || gb[a].data)
                return false;
            continue;
        }
        for (int64_t i = 0; i < numel(&ga[a]); i++) {
            double x = cg_tensor_get(&ga[a], i), y = cg_tensor_get(&gb[a], i);
            if (fabs(x - y) > 1e-12 * fmax(1, fabs(y))) {
                fprintf(stderr, "@%s: arg %d elem %lld: %.17g with checkpoints, %.17g without\n", name, a,
                        (long long)i, x, y);
                return false;
            }
        }
    }
    return true;
}

static void destroy_loss(loss_fn *l)
{
    free_all(l->args, l->f->nargs);
    ir_module_destroy(l->m);
    sup_diag_destroy(l->diag);
}

static int run_checkpoints(stats *st)
{
    dl_diag *diag = sup_diag_create(stderr);
    dl_module *m = parse_text(diag, "checkpoints.dlir", ckpts, strlen(ckpts));
    CHECK(m != NULL);
    int n = 0;
    for (dl_func *f = m ? m->first : NULL; f; f = f->next, n++) {
        int region[DL_NOPS] = {0}, nregion = 0;
        for (dl_op *op = f->first; op; op = op->next)
            if (op->checkpoint)
                region[op->code]++, nregion++;
        CHECK(nregion > 0);
        cg_tensor ga[MAXA], gb[MAXA];
        loss_fn la, lb;
        case_result rb = custom_case(ckpts, f->name, 0, true, st, gb, &lb);
        case_result ra = custom_case(ckpts, f->name, 0, false, st, ga, &la);
        tally(st, ra);
        tally(st, rb);
        int ca[DL_NOPS] = {0}, cb[DL_NOPS] = {0};
        count_after(la.fwd_end, ca);
        count_after(lb.fwd_end, cb);
        bool ok = true;
        for (int c = 0; c < DL_NOPS; c++)
            if (ca[c] - cb[c] != region[c]) {
                fprintf(stderr, "@%s: %d more '%s' ops in the backward part with checkpoints, expected %d "
                        "(the region's, recomputed)\n", f->name, ca[c] - cb[c], ir_op_info(c)->name, region[c]);
                ok = false;
            }
        for (int a = 0; a < la.f->nargs && ok; a++)
            ok = !memcmp(la.args[a].data, lb.args[a].data,
                         (size_t)numel(&la.args[a]) * (size_t)ir_dtype_size(la.args[a].type.dtype));
        ok = ok && la.fwd_end && reads_no_activation(f->name, la.fwd_end) && same_grads(f->name, &la, ga, gb);
        CHECK(ok);
        free_all(ga, MAXA);
        free_all(gb, MAXA);
        destroy_loss(&la);
        destroy_loss(&lb);
    }
    if (m)
        ir_module_destroy(m);
    sup_diag_destroy(diag);
    return n;
}

/* ---- the verdict ----------------------------------------------------------------------------- */

int main(void)
{
    stats st = {0};
    verbose = getenv("GRAD_VERBOSE") && *getenv("GRAD_VERBOSE") != '0';
    run_goldens(&st);
    run_customs(&st);
    int nck = run_checkpoints(&st);
    int nops = 0, missing = 0;
    for (int c = 0; c < DL_NOPS; c++) {
        if (!(ir_op_info(c)->props & P_DIFF))
            continue;
        nops += st.covered[c] && !st.failing[c];
        if (st.failing[c])
            fprintf(stderr, "grad: op '%s' fails\n", ir_op_info(c)->name);
        else if (!st.covered[c])
            fprintf(stderr, "grad: op '%s' has no gradient case checked\n", ir_op_info(c)->name), missing++;
    }
    CHECK_EQ_INT(st.failed, 0);
    CHECK_EQ_INT(missing, 0);
    printf("grad: %ld elements compared, %ld inputs moved off kinks, %ld elements left on one; "
           "%d cases without a differentiable input skipped; %d checkpoint functions\n",
           st.elems, st.jittered, st.dropped, st.skipped, nck);
    printf("grad: the largest |autodiff - fd|: %.3g of the tolerance (%s)\n", st.worst, st.worst_at);
    if (!st.failed && !missing)
        printf("grad: %d cases over %d ops, all match\n", st.cases, nops);
    else
        printf("grad: %d cases over %d ops, %d failed, %d ops without a case\n", st.cases, nops, st.failed,
               missing);
    return check_result("test_grad");
}
