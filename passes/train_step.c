/* The training step (SPEC section 4): @loss becomes @train_step, one function holding the
 * forward pass, the loss, the backward pass (autodiff.c), gradient accumulation, global-norm
 * clipping, the learning-rate schedule and the optimizer's update, written back into the
 * parameters and the optimizer's state with `assign`. The runtime only feeds batches.
 *
 * State the step carries, as buffer arguments (what a checkpoint saves):
 *   train.step      optimizer steps taken (f64 scalar)
 *   train.micro     micro-batches accumulated since the last update (with accumulate > 1)
 *   train.lr_scale  the plateau schedule's factor (1 otherwise; set by the runtime per epoch)
 *   train.total     the run's number of optimizer steps (cosine, one_cycle)
 *   optim.STATE.PATH  each parameter's optimizer state, under PyTorch's names (exp_avg,
 *                   exp_avg_sq, max_exp_avg_sq, momentum_buffer, square_avg, grad_avg, sum)
 *   grad_acc.PATH   accumulated gradients (with accumulate > 1)
 * Results: the loss and metrics of @loss, then the learning rate used and the gradients'
 * global norm (before clipping), both f32.
 *
 * Update rules are PyTorch's (torch.optim, the single-tensor path), arithmetic in f32 with
 * the scalar factors (schedule, bias corrections) computed in f64 and rounded once, as
 * PyTorch does with Python floats. */
#include "passes/train_step.h"
#include "passes/autodiff.h"

#include <fnmatch.h>
#include <math.h>
#include <string.h>

typedef struct ts {
    dc          c;
    const dl_train *t;
    dl_value   *step, *micro, *lr_scale, *total;    /* f64 scalars */
    dl_value   *last;                               /* bool: this micro-batch ends a step */
} ts;

static dl_value *f64(ts *s, double v) { return dc_scalar(&s->c, v, DL_F64); }
static dl_value *bin(ts *s, dl_opcode op, dl_value *a, dl_value *b) { return dc_bin(&s->c, op, a, b); }
static dl_value *mul(ts *s, dl_value *a, dl_value *b) { return bin(s, DL_OP_MUL, a, b); }
static dl_value *add(ts *s, dl_value *a, dl_value *b) { return bin(s, DL_OP_ADD, a, b); }
static dl_value *sub(ts *s, dl_value *a, dl_value *b) { return bin(s, DL_OP_SUB, a, b); }
static dl_value *dvd(ts *s, dl_value *a, dl_value *b) { return bin(s, DL_OP_DIV, a, b); }
static dl_value *un(ts *s, dl_opcode op, dl_value *x) { return dc_un(&s->c, op, x); }
static dl_value *sel(ts *s, dl_value *c, dl_value *a, dl_value *b) { return dc_where(&s->c, c, a, b); }
static dl_value *f32(ts *s, dl_value *x) { return dc_cast(&s->c, x, DL_F32); }
/* A scalar factor for arithmetic with tensors of `like`'s dtype. */
static dl_value *as(ts *s, dl_value *x, const dl_value *like) { return dc_cast(&s->c, x, like->type.dtype); }

static dl_value *state_arg(ts *s, const char *name, const dl_type *type, const char *init)
{
    dl_func *f = s->c.f;
    /* Argument names are SSA names: dots are fine, the path is the checkpoint's tensor name. */
    dl_value *v = ir_func_add_arg(f, name, DL_ROLE_BUFFER, name, type);
    f->arginfo[f->nargs - 1].init = ir_intern(f->module, init, strlen(init));
    return v;
}

static void assign(ts *s, dl_value *dst, dl_value *v)
{
    dc_op(&s->c, DL_OP_ASSIGN, 2, (dl_value *[]){dst, v}, 0, NULL);
}

/* ---- the schedule ------------------------------------------------------------------------ */

/* cos annealing from a to b as pct goes 0 -> 1 (PyTorch's OneCycleLR _annealing_cos). */
static dl_value *anneal(ts *s, dl_value *a, dl_value *b, dl_value *pct)
{
    dl_value *c = add(s, un(s, DL_OP_COS, mul(s, f64(s, 3.14159265358979323846), pct)), f64(s, 1));
    return add(s, b, mul(s, dvd(s, sub(s, a, b), f64(s, 2)), c));
}

/* The learning rate of optimizer step `step` (0-based), f64. */
static dl_value *schedule(ts *s)
{
    const dl_train_sched *r = &s->t->sched;
    double lr = s->t->opt.lr;
    dl_value *st = s->step, *v;
    switch (r->kind) {
    case DL_SCHED_STEP:
        v = mul(s, f64(s, lr), bin(s, DL_OP_POW, f64(s, r->gamma),
                                   un(s, DL_OP_FLOOR, dvd(s, st, f64(s, (double)r->every)))));
        break;
    case DL_SCHED_MULTISTEP: {
        dl_value *n = f64(s, 0);
        for (int i = 0; i < r->nmilestones; i++)
            n = add(s, n, dc_cast(&s->c, bin(s, DL_OP_GE, st, f64(s, (double)r->milestones[i])), DL_F64));
        v = mul(s, f64(s, lr), bin(s, DL_OP_POW, f64(s, r->gamma), n));
        break;
    }
    case DL_SCHED_EXPONENTIAL:
        v = mul(s, f64(s, lr), bin(s, DL_OP_POW, f64(s, r->gamma), st));
        break;
    case DL_SCHED_COSINE: {
        /* Linear warm-up from 0 over `warmup` steps, then a cosine from lr down to min_lr at the
         * last step (Hugging Face's get_cosine_schedule_with_warmup, with a floor). */
        double w = (double)r->warmup;
        dl_value *warm = dvd(s, mul(s, f64(s, lr), st), f64(s, w > 1 ? w : 1));
        dl_value *span = bin(s, DL_OP_MAXIMUM, sub(s, s->total, f64(s, w)), f64(s, 1));
        dl_value *pct = bin(s, DL_OP_MINIMUM, dvd(s, sub(s, st, f64(s, w)), span), f64(s, 1));
        dl_value *cosv = anneal(s, f64(s, lr), f64(s, r->min_lr), pct);
        v = sel(s, bin(s, DL_OP_LT, st, f64(s, w)), warm, cosv);
        break;
    }
    case DL_SCHED_ONE_CYCLE: {
        /* PyTorch's OneCycleLR (cos, div_factor 25, final_div_factor 1e4, two phases). */
        double init = r->max_lr / 25, fin = init / 1e4;
        dl_value *end1 = sub(s, mul(s, f64(s, r->pct_start), s->total), f64(s, 1));
        dl_value *end2 = sub(s, s->total, f64(s, 1));
        dl_value *p1 = anneal(s, f64(s, init), f64(s, r->max_lr),
                              dvd(s, st, bin(s, DL_OP_MAXIMUM, end1, f64(s, 1e-12))));
        dl_value *p2 = anneal(s, f64(s, r->max_lr), f64(s, fin),
                              dvd(s, sub(s, st, end1), bin(s, DL_OP_MAXIMUM, sub(s, end2, end1), f64(s, 1e-12))));
        v = sel(s, bin(s, DL_OP_LE, st, end1), p1, p2);
        break;
    }
    case DL_SCHED_CYCLIC: {
        /* PyTorch's CyclicLR, triangular, step_size_up = period / 2. */
        double half = (double)r->period / 2;
        dl_value *cycle = un(s, DL_OP_FLOOR, add(s, f64(s, 1), dvd(s, st, f64(s, 2 * half))));
        dl_value *x = un(s, DL_OP_ABS, add(s, sub(s, dvd(s, st, f64(s, half)), mul(s, f64(s, 2), cycle)), f64(s, 1)));
        v = add(s, f64(s, r->lo), mul(s, f64(s, r->hi - r->lo),
                                     bin(s, DL_OP_MAXIMUM, f64(s, 0), sub(s, f64(s, 1), x))));
        break;
    }
    default:    /* constant, plateau (whose factor is lr_scale) */
        v = f64(s, lr);
        break;
    }
    return mul(s, v, s->lr_scale);
}

/* ---- optimizers -------------------------------------------------------------------------- */

static bool decays(const dl_train_opt *o, const char *path)
{
    for (int i = 0; i < o->nno_decay; i++)
        if (!fnmatch(o->no_decay[i], path, 0))
            return false;
    return o->weight_decay != 0;
}

/* Keeps `old` unless this micro-batch ends a step (accumulation). */
static dl_value *on_step(ts *s, dl_value *updated, dl_value *old)
{
    return s->last ? sel(s, s->last, updated, old) : updated;
}

static dl_value *state(ts *s, const char *kind, const char *path, const dl_value *p)
{
    char name[512];
    snprintf(name, sizeof name, "optim.%s.%s", kind, path);
    return state_arg(s, name, &p->type, "zeros()");
}

/* One parameter's update: p the parameter, g its (accumulated, clipped) gradient, lr the step's
 * learning rate (f64), t the 1-based step number (f64). Assigns the new values. */
static void update(ts *s, dl_value *p, const char *path, dl_value *g, dl_value *lr, dl_value *t)
{
    const dl_train_opt *o = &s->t->opt;
    double wd = decays(o, path) ? o->weight_decay : 0;
    dl_value *p0 = p, *np;
    switch (o->kind) {
    case DL_OPT_SGD: {
        if (wd)
            g = add(s, g, mul(s, p, as(s, f64(s, wd), p)));
        if (o->momentum) {
            dl_value *buf = state(s, "momentum_buffer", path, p);
            dl_value *nb = add(s, mul(s, buf, as(s, f64(s, o->momentum), p)),
                               mul(s, g, as(s, f64(s, 1 - o->dampening), p)));
            nb = sel(s, bin(s, DL_OP_EQ, t, f64(s, 1)), g, nb);   /* the first step: buf = g */
            assign(s, buf, on_step(s, nb, buf));
            g = o->nesterov ? add(s, g, mul(s, nb, as(s, f64(s, o->momentum), p))) : nb;
        }
        np = sub(s, p, mul(s, g, as(s, lr, p)));
        break;
    }
    case DL_OPT_ADAM: case DL_OPT_ADAMW: {
        if (o->kind == DL_OPT_ADAMW && wd)
            p = mul(s, p, as(s, sub(s, f64(s, 1), mul(s, lr, f64(s, wd))), p));
        else if (wd)
            g = add(s, g, mul(s, p, as(s, f64(s, wd), p)));
        dl_value *m = state(s, "exp_avg", path, p), *v = state(s, "exp_avg_sq", path, p);
        /* exp_avg.lerp_(g, 1 - beta1); exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2) */
        dl_value *nm = add(s, m, mul(s, sub(s, g, m), as(s, f64(s, 1 - o->beta1), p)));
        dl_value *nv = add(s, mul(s, v, as(s, f64(s, o->beta2), p)),
                           mul(s, mul(s, g, g), as(s, f64(s, 1 - o->beta2), p)));
        assign(s, m, on_step(s, nm, m));
        assign(s, v, on_step(s, nv, v));
        dl_value *bc1 = sub(s, f64(s, 1), bin(s, DL_OP_POW, f64(s, o->beta1), t));
        dl_value *bc2 = sub(s, f64(s, 1), bin(s, DL_OP_POW, f64(s, o->beta2), t));
        dl_value *step_size = dvd(s, lr, bc1);
        dl_value *vv = nv;
        if (o->amsgrad) {
            dl_value *vmax = state(s, "max_exp_avg_sq", path, p);
            vv = bin(s, DL_OP_MAXIMUM, vmax, nv);
            assign(s, vmax, on_step(s, vv, vmax));
        }
        dl_value *denom = add(s, dvd(s, un(s, DL_OP_SQRT, vv), as(s, un(s, DL_OP_SQRT, bc2), p)),
                              as(s, f64(s, o->eps), p));
        np = sub(s, p, mul(s, dvd(s, nm, denom), as(s, step_size, p)));
        break;
    }
    case DL_OPT_RMSPROP: {
        if (wd)
            g = add(s, g, mul(s, p, as(s, f64(s, wd), p)));
        dl_value *sq = state(s, "square_avg", path, p);
        dl_value *nsq = add(s, mul(s, sq, as(s, f64(s, o->alpha), p)),
                            mul(s, mul(s, g, g), as(s, f64(s, 1 - o->alpha), p)));
        assign(s, sq, on_step(s, nsq, sq));
        dl_value *avg;
        if (o->centered) {
            dl_value *ga = state(s, "grad_avg", path, p);
            dl_value *nga = add(s, ga, mul(s, sub(s, g, ga), as(s, f64(s, 1 - o->alpha), p)));
            assign(s, ga, on_step(s, nga, ga));
            avg = un(s, DL_OP_SQRT, sub(s, nsq, mul(s, nga, nga)));
        } else
            avg = un(s, DL_OP_SQRT, nsq);
        avg = add(s, avg, as(s, f64(s, o->eps), p));
        if (o->momentum > 0) {
            dl_value *buf = state(s, "momentum_buffer", path, p);
            dl_value *nb = add(s, mul(s, buf, as(s, f64(s, o->momentum), p)), dvd(s, g, avg));
            assign(s, buf, on_step(s, nb, buf));
            np = sub(s, p, mul(s, nb, as(s, lr, p)));
        } else
            np = sub(s, p, mul(s, dvd(s, g, avg), as(s, lr, p)));
        break;
    }
    default: {   /* adagrad */
        if (wd)
            g = add(s, g, mul(s, p, as(s, f64(s, wd), p)));
        dl_value *clr = dvd(s, lr, add(s, f64(s, 1), mul(s, sub(s, t, f64(s, 1)), f64(s, o->lr_decay))));
        dl_value *sum = state(s, "sum", path, p);
        dl_value *ns = add(s, sum, mul(s, g, g));
        assign(s, sum, on_step(s, ns, sum));
        dl_value *std = add(s, un(s, DL_OP_SQRT, ns), as(s, f64(s, o->eps), p));
        np = sub(s, p, mul(s, dvd(s, g, std), as(s, clr, p)));
        break;
    }
    }
    assign(s, p0, on_step(s, np, p0));
}

/* ---- the step ---------------------------------------------------------------------------- */

static const char *path_of(const dl_func *f, int a)
{
    return f->arginfo[a].path ? f->arginfo[a].path : f->arginfo[a].name;
}

/* With accumulate = k > 1: each parameter's gradient is added to its grad_acc buffer, the update
 * uses the mean of the k micro-batches' gradients, and s->last says when a step ends. */
static void accumulate(ts *s, const dl_func *f, int nargs, const bool *wrt, dl_value **grads)
{
    dl_type scalar = {.dtype = DL_F64};
    int64_t k = s->t->accumulate;
    s->micro = state_arg(s, "train.micro", &scalar, "zeros()");
    s->last = bin(s, DL_OP_GE, s->micro, f64(s, (double)(k - 1)));
    for (int a = 0; a < nargs; a++) {
        if (!wrt[a])
            continue;
        char name[512];
        snprintf(name, sizeof name, "grad_acc.%s", path_of(f, a));
        dl_value *acc = state_arg(s, name, &f->args[a]->type, "zeros()");
        dl_value *sum = add(s, acc, grads[a]);
        assign(s, acc, sel(s, s->last, as(s, f64(s, 0), sum), sum));
        grads[a] = mul(s, sum, as(s, f64(s, 1.0 / (double)k), sum));
    }
    assign(s, s->micro, sel(s, s->last, f64(s, 0), add(s, s->micro, f64(s, 1))));
}

/* The gradients' global norm (f64), and clipping as torch.nn.utils.clip_grad_norm_ does:
 * g *= min(1, clip / (norm + 1e-6)). Returns the norm before clipping. */
static dl_value *clip(ts *s, int nargs, const bool *wrt, dl_value **grads)
{
    dl_value *sq = NULL;
    for (int a = 0; a < nargs; a++)
        if (wrt[a]) {
            dl_value *g64 = dc_cast(&s->c, grads[a], DL_F64);
            dl_value *ss = dc_reduce(&s->c, DL_OP_SUM, mul(s, g64, g64), -1, NULL, false);
            sq = sq ? add(s, sq, ss) : ss;
        }
    dl_value *norm = un(s, DL_OP_SQRT, sq);
    if (s->t->clip_grad > 0) {
        dl_value *coef = dvd(s, f64(s, s->t->clip_grad), add(s, norm, f64(s, 1e-6)));
        coef = bin(s, DL_OP_MINIMUM, coef, f64(s, 1));
        for (int a = 0; a < nargs; a++)
            if (wrt[a])
                grads[a] = mul(s, grads[a], as(s, coef, grads[a]));
    }
    return norm;
}

bool pass_train_step(dl_module *m, dl_diag *diag)
{
    const dl_train *t = m->train;
    dl_func *f = ir_func_find(m, "loss");
    SUP_ASSERT(t && f);
    f->name = ir_intern(m, "train_step", 10);
    int nargs = f->nargs;
    bool *wrt = sup_arena_alloc(&m->arena, (size_t)nargs + 1);
    dl_value **grads = sup_arena_alloc(&m->arena, sizeof *grads * ((size_t)nargs + 1));
    int nparams = 0;
    for (int a = 0; a < nargs; a++)
        nparams += wrt[a] = f->arginfo[a].role == DL_ROLE_PARAM &&
                            ir_dtype_is_float(f->args[a]->type.dtype);
    if (!nparams) {
        sup_diag_error(diag, f->loc, "the trained model has no parameters");
        return false;
    }
    sup_arena scratch;
    sup_arena_init(&scratch, NULL);
    bool ok = pass_grad_build(f, 0, wrt, grads, &scratch, diag);
    sup_arena_reset(&scratch);
    if (!ok)
        return false;

    ts s = {.c = {.f = f, .at = f->last}, .t = t};
    dl_type scalar = {.dtype = DL_F64};
    s.step = state_arg(&s, "train.step", &scalar, "zeros()");
    s.lr_scale = state_arg(&s, "train.lr_scale", &scalar, "ones()");
    s.total = state_arg(&s, "train.total", &scalar, "ones()");
    /* wrt and grads cover the arguments @loss had: the state arguments come after them. */
    if (t->accumulate > 1)
        accumulate(&s, f, nargs, wrt, grads);
    dl_value *norm = clip(&s, nargs, wrt, grads);
    dl_value *lr = schedule(&s);
    dl_value *tnum = add(&s, s.step, f64(&s, 1));
    for (int a = 0; a < nargs; a++)
        if (wrt[a])
            update(&s, f->args[a], path_of(f, a), grads[a], lr, tnum);
    assign(&s, s.step, s.last ? add(&s, s.step, dc_cast(&s.c, s.last, DL_F64)) : tnum);
    /* Results: @loss's, then the learning rate and the gradient norm. */
    ir_func_add_results(f, 2, (dl_value *[]){f32(&s, lr), f32(&s, norm)}, DL_ROLE_OUTPUT);
    return true;
}
