/* Reverse-mode automatic differentiation (SPEC section 7): the backward part of a function is
 * built in front of its return by walking the forward ops in reverse, each op's gradient rule
 * (ir/ops.def, passes/grad_*.c) turning the gradients of its results into those of its
 * operands, contributions to one value summed. Only ops on a path from a differentiated
 * argument to the differentiated result are visited. The ops of a `checkpoint { }` region are
 * cloned into the backward part when the walk reaches the region, and the rules read the clones
 * (gd_fwd): the region's activations are recomputed rather than kept alive until the backward.
 *
 * The `autodiff` pass applies this to every function whose first result is a floating-point
 * scalar, appending the gradients with respect to its parameters and floating-point inputs as
 * extra results (in argument order): `dlc run --grad` and the lit tests use it; the training
 * step (passes/train_step.c) calls pass_grad_build directly. */
#include "passes/autodiff.h"
#include "passes/pass.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool diff_operand(const dl_op *op, int i);

static const gd_rule rules[] = {
#define OP(id, name, rule, grad, nodiff, min_in, max_in, nres, props, attrs) grad,
#include "ir/ops.def"
#undef OP
};
_Static_assert(sizeof rules / sizeof *rules == DL_NOPS, "one gradient rule per op");

/* ---- helpers for the rules --------------------------------------------------------------- */

typedef struct walk {
    gd          g;
    dl_func    *f;
    int         nvals;
    dl_value  **orig;        /* orig[id]: the forward value numbered id */
    dl_value  **acc;         /* acc[id]: its accumulated gradient, or NULL */
    bool       *active;      /* active[id]: depends on a differentiated argument */
    bool       *needed;      /* needed[id]: the result depends on it */
    bool       *recomputed;  /* per checkpoint region */
    int         nregions;
} walk;

dl_value *gd_fwd(gd *g, dl_value *v)
{
    walk *w = (walk *)g;
    if (v->id >= 0 && v->id < w->nvals && w->orig[v->id] == v && g->fwd[v->id])
        return g->fwd[v->id];
    return v;
}

dl_value *gd_in(gd *g, const dl_op *op, int i) { return gd_fwd(g, op->in[i]); }
dl_value *gd_res(gd *g, const dl_op *op, int r) { return gd_fwd(g, &op->res[r]); }

bool gd_error(gd *g, const dl_op *op, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sup_diag_error(g->diag, op->loc, "cannot differentiate %s: %s", ir_op_info(op->code)->name, msg);
    g->failed = true;
    return false;
}

dl_value *gd_fill(gd *g, const dl_type *like, double v)
{
    return dc_constant(&g->c, like, 1, &v);
}

dl_value *gd_unbroadcast(gd *g, dl_value *grad, const dl_type *to)
{
    const dl_type *t = &grad->type;
    int lead = t->rank - to->rank;
    SUP_ASSERT(lead >= 0);
    int64_t dims[DL_MAX_RANK];
    int n = 0;
    for (int i = 0; i < t->rank; i++)
        if (i < lead || (ir_dim_eq(to->dim[i - lead], ir_dim_const(1)) &&
                         !ir_dim_eq(t->dim[i], ir_dim_const(1))))
            dims[n++] = i;
    dl_value *r = grad;
    if (n)
        r = dc_reduce(&g->c, DL_OP_SUM, r, n, dims, true);
    if (r->type.rank != to->rank)
        r = dc_reshape(&g->c, r, to);
    return dc_cast(&g->c, r, to->dtype);
}

dl_value *gd_expand_to(gd *g, dl_value *x, const dl_type *to)
{
    if (ir_type_eq(&x->type, to))
        return x;
    dl_dim nx, nt;
    if (x->type.rank != to->rank && ir_type_numel(&x->type, &nx) && ir_type_numel(to, &nt) &&
        ir_dim_eq(nx, nt))
        return dc_cast(&g->c, dc_reshape(&g->c, x, to), to->dtype);
    /* Align ranks (a reshape adding leading ones), then broadcast. */
    if (x->type.rank < to->rank) {
        dl_type r = {.dtype = x->type.dtype, .rank = to->rank};
        int lead = to->rank - x->type.rank;
        for (int i = 0; i < to->rank; i++)
            r.dim[i] = i < lead ? ir_dim_const(1) : x->type.dim[i - lead];
        x = dc_reshape(&g->c, x, &r);
    }
    dl_attr a = dc_shape(&g->c, "shape", to);
    x = dc_op(&g->c, DL_OP_BROADCAST_TO, 1, &x, 1, &a);
    return dc_cast(&g->c, x, to->dtype);
}

bool gd_decomposed(gd *g, dl_op *op, bool (*decompose)(dc *, dl_op *, dl_value **),
                   dl_value *const *dy, dl_value **dx)
{
    /* A copy of op on the forward values, decomposed in front of itself. */
    dl_value *in[256];
    SUP_ASSERT(op->nin <= 256 && op->nres <= 64);
    for (int i = 0; i < op->nin; i++)
        in[i] = gd_in(g, op, i);
    dl_type rt[64];
    for (int r = 0; r < op->nres; r++)
        rt[r] = op->res[r].type;
    dl_op *copy = ir_op_create(g->c.f, op->code, op->nin, in, op->nattr, op->attr, op->nres, rt,
                               op->loc, NULL);
    SUP_ASSERT(copy);
    ir_op_insert_before(g->c.at, copy);
    dl_op *before = copy->prev;
    dl_value *res[64];
    dc d = {g->c.f, copy, g->c.origin};
    if (!decompose(&d, copy, res)) {
        ir_op_remove(copy);
        return gd_error(g, op, "its decomposition is not available for these operands");
    }
    /* Number the decomposition's values; each gets a gradient slot. */
    dl_op *first = before ? before->next : g->c.f->first;
    int n = 0;
    for (dl_op *o = first; o != copy; o = o->next)
        for (int r = 0; r < o->nres; r++)
            o->res[r].id = n++;
    dl_value **acc = sup_arena_alloc(g->scratch, sizeof *acc * (size_t)(n + 1));
    dl_value **vals = sup_arena_alloc(g->scratch, sizeof *vals * (size_t)(n + 1));
    memset(acc, 0, sizeof *acc * (size_t)(n + 1));
    for (dl_op *o = first; o != copy; o = o->next)
        for (int r = 0; r < o->nres; r++)
            vals[o->res[r].id] = &o->res[r];
#define LOCAL(v) ((v)->id >= 0 && (v)->id < n && vals[(v)->id] == (v))
    for (int r = 0; r < op->nres; r++)
        if (dy[r] && LOCAL(res[r]))
            acc[res[r]->id] = dy[r];
    for (dl_op *o = copy->prev; o && o != before && !g->failed; o = o->prev) {
        dl_value *ody[64];
        bool any = false;
        for (int r = 0; r < o->nres; r++)
            any |= (ody[r] = acc[o->res[r].id]) != NULL;
        if (!any)
            continue;
        dl_value *odx[256] = {0};
        if (!rules[o->code](g, o, ody, odx))
            return false;
        for (int i = 0; i < o->nin; i++) {
            if (!odx[i] || !diff_operand(o, i))
                continue;
            if (LOCAL(o->in[i])) {
                dl_value **slot = &acc[o->in[i]->id];
                *slot = *slot ? dc_bin(&g->c, DL_OP_ADD, *slot, odx[i]) : odx[i];
                continue;
            }
            for (int k = 0; k < op->nin; k++)
                if (in[k] == o->in[i]) {
                    dx[k] = dx[k] ? dc_bin(&g->c, DL_OP_ADD, dx[k], odx[i]) : odx[i];
                    break;
                }
        }
    }
#undef LOCAL
    /* A result that is an operand itself (an identity decomposition). */
    for (int r = 0; r < op->nres; r++)
        for (int k = 0; dy[r] && k < op->nin; k++)
            if (res[r] == in[k] && ir_type_eq(&dy[r]->type, &in[k]->type))
                dx[k] = dx[k] ? dc_bin(&g->c, DL_OP_ADD, dx[k], dy[r]) : dy[r];
    ir_op_remove(copy);
    return !g->failed;
}

/* ---- the walk ---------------------------------------------------------------------------- */

static bool diff_operand(const dl_op *op, int i)
{
    const dl_op_info *info = ir_op_info(op->code);
    return (info->props & P_DIFF) && !(i < 32 && (info->nodiff & ND(i))) &&
           ir_dtype_is_float(op->in[i]->type.dtype);
}

static void number(walk *w)
{
    int n = w->f->nargs;
    for (dl_op *op = w->f->first; op; op = op->next)
        n += op->nres;
    w->nvals = n;
    w->orig = sup_arena_alloc(w->g.scratch, sizeof *w->orig * (size_t)(n + 1));
    w->acc = sup_arena_alloc(w->g.scratch, sizeof *w->acc * (size_t)(n + 1));
    w->g.fwd = sup_arena_alloc(w->g.scratch, sizeof *w->g.fwd * (size_t)(n + 1));
    w->active = sup_arena_alloc(w->g.scratch, (size_t)(n + 1));
    w->needed = sup_arena_alloc(w->g.scratch, (size_t)(n + 1));
    memset(w->acc, 0, sizeof *w->acc * (size_t)(n + 1));
    memset(w->g.fwd, 0, sizeof *w->g.fwd * (size_t)(n + 1));
    memset(w->active, 0, (size_t)(n + 1));
    memset(w->needed, 0, (size_t)(n + 1));
    w->g.nfwd = n;
    int id = 0;
    for (int a = 0; a < w->f->nargs; a++) {
        w->f->args[a]->id = id;
        w->orig[id++] = w->f->args[a];
    }
    w->nregions = 0;
    for (dl_op *op = w->f->first; op; op = op->next) {
        for (int r = 0; r < op->nres; r++) {
            op->res[r].id = id;
            w->orig[id++] = &op->res[r];
        }
        if (op->checkpoint > w->nregions)
            w->nregions = op->checkpoint;
    }
    w->recomputed = sup_arena_alloc(w->g.scratch, (size_t)w->nregions + 1);
    memset(w->recomputed, 0, (size_t)w->nregions + 1);
}

/* Marks values that depend on a differentiated argument (forward) and those the result depends
 * on (backward); ops with an active operand and a needed result are the ones differentiated. */
static void mark(walk *w, const bool *wrt, const dl_value *result)
{
    for (int a = 0; a < w->f->nargs; a++)
        w->active[a] = wrt[a] && ir_dtype_is_float(w->f->args[a]->type.dtype);
    for (dl_op *op = w->f->first; op; op = op->next) {
        bool any = false;
        for (int i = 0; i < op->nin; i++)
            any |= diff_operand(op, i) && w->active[op->in[i]->id];
        for (int r = 0; r < op->nres; r++)
            w->active[op->res[r].id] = any && ir_dtype_is_float(op->res[r].type.dtype);
    }
    w->needed[result->id] = true;
    for (dl_op *op = w->f->last; op; op = op->prev) {
        bool any = false;
        for (int r = 0; r < op->nres; r++)
            any |= w->needed[op->res[r].id];
        for (int i = 0; any && i < op->nin; i++)
            w->needed[op->in[i]->id] = true;
    }
}

/* An op that is differentiable but has no rule yet (P_NOGRAD) on the path from a differentiated
 * argument to the result: reported rather than silently treated as a constant. */
static bool check_rules(walk *w)
{
    for (dl_op *op = w->f->first; op; op = op->next) {
        if (!(ir_op_info(op->code)->props & P_NOGRAD))
            continue;
        unsigned nd = ir_op_info(op->code)->nodiff;
        bool in = false, out = false;
        for (int i = 0; i < op->nin; i++)
            in |= !(i < 32 && (nd & ND(i))) && w->active[op->in[i]->id] &&
                  ir_dtype_is_float(op->in[i]->type.dtype);
        for (int r = 0; r < op->nres; r++)
            out |= w->needed[op->res[r].id];
        if (in && out)
            return gd_error(&w->g, op, "its gradient (a second derivative of the op it differentiates) has no rule yet");
    }
    return true;
}

/* Clones the ops of checkpoint region `region` at the insertion point; gd_fwd answers the clones
 * for the region's values from now on. */
static void recompute(walk *w, int region)
{
    w->recomputed[region] = true;
    for (dl_op *op = w->f->first; op; op = op->next) {
        if (op->checkpoint != region || (ir_op_info(op->code)->props & P_EFFECT))
            continue;
        dl_value *in[256];
        SUP_ASSERT(op->nin <= 256);
        for (int i = 0; i < op->nin; i++)
            in[i] = gd_fwd(&w->g, op->in[i]);
        dl_type rt[64];
        SUP_ASSERT(op->nres <= 64);
        for (int r = 0; r < op->nres; r++)
            rt[r] = op->res[r].type;
        dl_op *c = ir_op_create(w->f, op->code, op->nin, in, op->nattr, op->attr, op->nres, rt,
                                op->loc, NULL);
        SUP_ASSERT(c);
        ir_op_insert_before(w->g.c.at, c);
        for (int r = 0; r < op->nres; r++)
            w->g.fwd[op->res[r].id] = &c->res[r];
    }
}

static void accumulate(walk *w, dl_value *v, dl_value *grad)
{
    SUP_ASSERT(ir_type_eq(&grad->type, &v->type));
    dl_value **slot = &w->acc[v->id];
    *slot = *slot ? dc_bin(&w->g.c, DL_OP_ADD, *slot, grad) : grad;
}

bool pass_grad_wants(const dl_func *f, int arg)
{
    dl_role r = f->arginfo[arg].role;
    return (r == DL_ROLE_PARAM || r == DL_ROLE_INPUT) && ir_dtype_is_float(f->args[arg]->type.dtype);
}

bool pass_grad_build(dl_func *f, int result, const bool *wrt, dl_value **grads,
                     sup_arena *scratch, dl_diag *diag)
{
    dl_op *ret = f->last;
    SUP_ASSERT(ret && ret->code == DL_OP_RETURN && result >= 0 && result < ret->nin);
    walk w = {.g = {.c = {.f = f, .at = ret}, .scratch = scratch, .diag = diag}, .f = f};
    number(&w);
    dl_value *y = ret->in[result];
    if (y->type.rank != 0 || !ir_dtype_is_float(y->type.dtype)) {
        char tb[128];
        ir_type_str(&y->type, tb, sizeof tb);
        sup_diag_error(diag, f->loc, "@%s: result %d is %s; gradients are taken of a floating-point scalar",
                       f->name, result, tb);
        return false;
    }
    mark(&w, wrt, y);
    if (!check_rules(&w))
        return false;
    if (w.active[y->id])
        w.acc[y->id] = gd_fill(&w.g, &y->type, 1.0);
    for (dl_op *op = ret->prev; op && !w.g.failed; op = op->prev) {
        if (op->nres == 0 || (ir_op_info(op->code)->props & P_EFFECT))
            continue;
        dl_value *dy[64];
        bool any = false;
        for (int r = 0; r < op->nres && r < 64; r++) {
            dy[r] = w.active[op->res[r].id] ? w.acc[op->res[r].id] : NULL;
            any |= dy[r] != NULL;
        }
        if (!any)
            continue;
        if (op->checkpoint && !w.recomputed[op->checkpoint])
            recompute(&w, op->checkpoint);
        dl_value *dx[256] = {0};
        SUP_ASSERT(op->nin <= 256);
        w.g.c.origin = op;      /* a gradient's ops carry the source line of the op they differentiate */
        bool ok = rules[op->code](&w.g, op, dy, dx);
        w.g.c.origin = NULL;
        if (!ok)
            break;
        for (int i = 0; i < op->nin; i++)
            if (dx[i] && diff_operand(op, i) && w.active[op->in[i]->id])
                accumulate(&w, op->in[i], dx[i]);
    }
    if (w.g.failed)
        return false;
    for (int a = 0; a < f->nargs; a++)
        grads[a] = !wrt[a] ? NULL : w.acc[a] ? w.acc[a] : gd_fill(&w.g, &f->args[a]->type, 0.0);
    return true;
}

/* ---- the pass ---------------------------------------------------------------------------- */

bool pass_autodiff(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    for (dl_func *f = m->first; f; f = f->next) {
        dl_op *ret = f->last;
        if (!ret || ret->code != DL_OP_RETURN || ret->nin == 0 || ret->in[0]->type.rank != 0 ||
            !ir_dtype_is_float(ret->in[0]->type.dtype))
            continue;
        bool *wrt = sup_arena_alloc(opts->scratch, (size_t)f->nargs + 1);
        dl_value **grads = sup_arena_alloc(opts->scratch, sizeof *grads * ((size_t)f->nargs + 1));
        int n = 0;
        for (int a = 0; a < f->nargs; a++)
            n += wrt[a] = pass_grad_wants(f, a);
        if (!pass_grad_build(f, 0, wrt, grads, opts->scratch, diag))
            return false;
        dl_value **vals = sup_arena_alloc(opts->scratch, sizeof *vals * ((size_t)n + 1));
        int k = 0;
        for (int a = 0; a < f->nargs; a++)
            if (wrt[a])
                vals[k++] = grads[a];
        ir_func_add_results(f, n, vals, DL_ROLE_OUTPUT);
    }
    return true;
}
