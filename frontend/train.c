/* The train block: its settings are checked (unknown names get the nearest valid one), the data
 * source's files are looked at to learn the batch's types, the settings are recorded for the
 * training step and the runtime (m->train, ir/train.h), and three IR functions are lowered:
 * @forward (the model on a batch, training = false), @loss (the loss and the metrics on a
 * batch, training = true: what the training step differentiates) and @evaluate (the same with
 * training = false: validation). */
#include "frontend/lower.h"
#include "ir/train.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct callspec {
    const char *name;
    const char *params;      /* space-separated */
} callspec;

static const callspec sources[] = {
    {"csv", "path label scale header"}, {"npy", "x y"}, {"mnist", "dir"},
    {"safetensors", "path x y"}, {"text", "path context"},
};
static const callspec optimizers[] = {
    {"sgd", "lr momentum dampening nesterov weight_decay no_decay"},
    {"adam", "lr betas eps weight_decay amsgrad no_decay"},
    {"adamw", "lr betas eps weight_decay amsgrad no_decay"},
    {"rmsprop", "lr alpha eps weight_decay momentum centered no_decay"},
    {"adagrad", "lr lr_decay weight_decay eps no_decay"},
};
static const callspec schedules[] = {
    {"constant", ""}, {"step", "every gamma"}, {"multistep", "milestones gamma"},
    {"exponential", "gamma"}, {"cosine", "warmup min_lr"}, {"one_cycle", "max_lr pct_start"},
    {"cyclic", "lo hi period"}, {"plateau", "patience factor"},
};
static const char *const settings[] = {
    "data", "valid", "batch", "shuffle", "epochs", "steps", "loss", "metrics", "optimizer",
    "schedule", "clip_grad", "accumulate", "precision", "seed", "save", "checkpoint_every",
    "checkpoint", "quantize",
};
enum { NSETTINGS = sizeof settings / sizeof *settings };

#define COUNT(a) ((int)(sizeof(a) / sizeof *(a)))

/* A setting written as a call of one of `specs`: checks the name and the argument names and
 * evaluates the arguments (compile-time values) into vals[] in the order of the parameters. */
static const callspec *check_call(fe_lctx *lc, const fe_ast *e, const callspec *specs, int n,
                                  const char *what, fe_scope *s, fe_val *vals, dl_loc *locs)
{
    if (e->kind != FE_CALL || e->a->kind != FE_NAME) {
        fe_err(lc, e->loc, "%s is written as a call, e.g. %s(...)", what, specs[0].name);
        return NULL;
    }
    const callspec *cs = NULL;
    const char *names[16];
    for (int i = 0; i < n; i++) {
        names[i] = specs[i].name;
        if (!strcmp(specs[i].name, e->a->name))
            cs = &specs[i];
    }
    if (!cs) {
        const char *near = fe_nearest(e->a->name, names, n);
        fe_err(lc, e->a->loc, "unknown %s '%s'%s%s%s", what, e->a->name,
               near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        return NULL;
    }
    char buf[128];
    snprintf(buf, sizeof buf, "%s", cs->params);
    const char *params[12];
    int np = 0;
    for (char *p = strtok(buf, " "); p && np < 12; p = strtok(NULL, " "))
        params[np++] = sup_arena_strndup(lc->arena, p, strlen(p));
    for (int i = 0; i < np; i++)
        vals[i] = (fe_val){.k = V_NONE};
    for (int i = 0; i < e->items.n; i++) {
        const fe_ast *a = e->items.v[i];
        int k = -1;
        if (!a->name)
            k = i < np ? i : -1;
        else
            for (int j = 0; j < np; j++)
                if (!strcmp(params[j], a->name))
                    k = j;
        if (k < 0) {
            if (!a->name) {
                fe_err(lc, a->loc, "%s() takes at most %d argument%s", cs->name, np, np == 1 ? "" : "s");
                return NULL;
            }
            const char *near = fe_nearest(a->name, params, np);
            fe_err(lc, a->loc, "%s() has no parameter '%s'%s%s%s", cs->name, a->name,
                   near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
            return NULL;
        }
        vals[k] = fe_eval(lc, a->a, s);
        locs[k] = a->loc;
        if (vals[k].k == V_ERR)
            return NULL;
        if (vals[k].k == V_TENSOR) {
            fe_err(lc, a->loc, "settings are known at compile time, not tensors");
            return NULL;
        }
    }
    return cs;
}

/* ---- looking at data files ------------------------------------------------------------- */

static const char *resolve(fe_lctx *lc, const char *dir, const char *path)
{
    return path[0] == '/' ? path : sup_arena_printf(lc->arena, "%s/%s", dir, path);
}

/* The number of comma-separated columns of line `skip` (0-based) of a CSV file, gzipped or not. */
static int csv_columns(fe_lctx *lc, const char *path, int skip, dl_loc loc)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fe_err(lc, loc, "cannot open '%s': %s", path, strerror(errno ? errno : ENOENT));
        return -1;
    }
    char line[1 << 16];
    int cols = -1;
    for (int i = 0; i <= skip; i++) {
        if (!gzgets(f, line, sizeof line)) {
            fe_err(lc, loc, "'%s' has no data rows", path);
            gzclose(f);
            return -1;
        }
    }
    cols = 1;
    for (char *p = line; *p && *p != '\n'; p++)
        cols += *p == ',';
    gzclose(f);
    return cols;
}

/* A sample's type from a .npy file's header: its dtype and shape, the first dimension being the
 * samples. */
static bool npy_type(fe_lctx *lc, const char *path, dl_type *t, dl_loc loc)
{
    rt_npy h;
    char err[512];
    if (!rt_npy_read_header(path, &h, err, sizeof err)) {
        fe_err(lc, loc, "%s", err);
        return false;
    }
    dl_dtype dt;
    bool known = ir_dtype_from_npy(h.descr, &dt);
    if (!known || h.rank == 0) {
        fe_err(lc, loc, "%s: %s", path, !known ? "dtype not supported by dlc" :
                                                 "holds a scalar, not a batch of samples");
        return false;
    }
    *t = (dl_type){.dtype = dt, .rank = h.rank};
    for (int i = 0; i < h.rank; i++)
        t->dim[i] = ir_dim_const(h.shape[i]);
    return true;
}

/* A sample's type from a tensor of a safetensors file. */
static bool st_type(fe_lctx *lc, const rt_safetensors *st, const char *path, const char *name,
                    dl_type *t, dl_loc loc)
{
    const rt_st_tensor *x = rt_st_find(st, name);
    if (!x) {
        fe_err(lc, loc, "%s has no tensor named '%s'", path, name);
        return false;
    }
    dl_dtype dt;
    bool known = ir_dtype_from_safetensors(x->dtype, &dt);
    if (!known || x->rank == 0) {
        fe_err(lc, loc, "%s: tensor '%s' %s", path, name,
               !known ? "has a dtype dlc does not support" : "is a scalar, not a batch of samples");
        return false;
    }
    *t = (dl_type){.dtype = dt, .rank = x->rank};
    for (int i = 0; i < x->rank; i++)
        t->dim[i] = ir_dim_const(x->shape[i]);
    return true;
}

/* The dimensions of an IDX file (MNIST), gzipped or not. */
static bool idx_dims(fe_lctx *lc, const char *path, int want_rank, int64_t *dims, dl_loc loc)
{
    gzFile f = gzopen(path, "rb");
    if (!f) {
        char *gz = sup_arena_printf(lc->arena, "%s.gz", path);
        f = gzopen(gz, "rb");
    }
    if (!f) {
        fe_err(lc, loc, "cannot open '%s' (or '%s.gz')", path, path);
        return false;
    }
    unsigned char h[4 + 4 * 3];
    int n = gzread(f, h, (unsigned)(4 + 4 * want_rank));
    gzclose(f);
    if (n != 4 + 4 * want_rank || h[0] || h[1] || h[2] != 0x08 || h[3] != want_rank) {
        fe_err(lc, loc, "'%s' is not an IDX file of unsigned bytes with %d dimensions", path, want_rank);
        return false;
    }
    for (int i = 0; i < want_rank; i++)
        dims[i] = (int64_t)h[4 + 4 * i] << 24 | h[5 + 4 * i] << 16 | h[6 + 4 * i] << 8 | h[7 + 4 * i];
    return true;
}

/* Strings the module keeps (the checker's arenas and the syntax tree go away). */
static const char *keep(fe_lctx *lc, const char *s)
{
    return s ? ir_intern(lc->m, s, strlen(s)) : NULL;
}

/* The batch's x and y types from the data source (B is the symbolic batch size), and the source
 * as the runtime loads it (ir/train.h: paths resolved, strings kept by the module). */
static bool data_types(fe_lctx *lc, const fe_ast *data, fe_scope *s, const char *dir,
                       dl_type *x, dl_type *y, dl_train_data *rec)
{
    fe_val v[12];
    dl_loc at[12];
    for (int i = 0; i < 12; i++)
        at[i] = data->loc;
    const callspec *cs = check_call(lc, data, sources, COUNT(sources), "data source", s, v, at);
    if (!cs)
        return false;
    dl_dim B = ir_dim_sym(ir_intern(lc->m, "B", 1));
    *x = (dl_type){.dtype = DL_F32, .rank = 1, .dim = {B}};
    *y = (dl_type){.dtype = DL_I64, .rank = 1, .dim = {B}};
    *rec = (dl_train_data){.loc = data->loc, .label = -1, .scale = 1};
    if (v[0].k == V_STR)
        rec->path = keep(lc, resolve(lc, dir, v[0].s));
    if (!strcmp(cs->name, "csv")) {
        if (v[0].k != V_STR || (v[1].k != V_NONE && v[1].k != V_INT) ||
            (v[3].k != V_NONE && v[3].k != V_BOOL) || (v[2].k != V_NONE && !fe_is_number(&v[2]))) {
            fe_err(lc, data->loc, "csv(path: str, label: int = -1, scale: float = 1, header: bool = false)");
            return false;
        }
        int cols = csv_columns(lc, resolve(lc, dir, v[0].s), v[3].k == V_BOOL && v[3].i, at[0]);
        if (cols < 0)
            return false;
        int64_t label = v[1].k == V_INT ? v[1].i : -1;
        if (cols < 2 || label < -cols || label >= cols) {
            fe_err(lc, at[1], "label column %" PRId64 " is out of range for %d columns", label, cols);
            return false;
        }
        x->rank = 2;
        x->dim[1] = ir_dim_const(cols - 1);
        rec->kind = DL_DATA_CSV;
        rec->label = (int)label;
        rec->scale = v[2].k == V_NONE ? 1 : fe_number(&v[2]);
        rec->header = v[3].k == V_BOOL && v[3].i;
        return true;
    }
    if (!strcmp(cs->name, "npy")) {
        if (v[0].k != V_STR || v[1].k != V_STR) {
            fe_err(lc, data->loc, "npy(x: str, y: str) names the two .npy files");
            return false;
        }
        if (!npy_type(lc, resolve(lc, dir, v[0].s), x, at[0]) ||
            !npy_type(lc, resolve(lc, dir, v[1].s), y, at[1]))
            return false;
        x->dim[0] = y->dim[0] = B;
        rec->kind = DL_DATA_NPY;
        rec->path_y = keep(lc, resolve(lc, dir, v[1].s));
        return true;
    }
    if (!strcmp(cs->name, "mnist")) {
        if (v[0].k != V_STR) {
            fe_err(lc, data->loc, "mnist(dir: str) names the folder of the IDX files");
            return false;
        }
        int64_t d[3];
        const char *root = resolve(lc, dir, v[0].s);
        if (!idx_dims(lc, sup_arena_printf(lc->arena, "%s/train-images-idx3-ubyte", root), 3, d, at[0]) ||
            !idx_dims(lc, sup_arena_printf(lc->arena, "%s/train-labels-idx1-ubyte", root), 1, d, at[0]))
            return false;
        *x = (dl_type){.dtype = DL_F32, .rank = 4, .dim = {B, ir_dim_const(1), ir_dim_const(d[1]), ir_dim_const(d[2])}};
        rec->kind = DL_DATA_MNIST;
        return true;
    }
    if (!strcmp(cs->name, "text")) {
        if (v[0].k != V_STR || v[1].k != V_INT || v[1].i <= 0) {
            fe_err(lc, data->loc, "text(path: str, context: int) needs a positive context length");
            return false;
        }
        const char *path = resolve(lc, dir, v[0].s);
        gzFile f = gzopen(path, "rb");
        if (!f) {
            fe_err(lc, at[0], "cannot open '%s': %s", path, strerror(errno ? errno : ENOENT));
            return false;
        }
        gzclose(f);
        *x = (dl_type){.dtype = DL_I64, .rank = 2, .dim = {B, ir_dim_const(v[1].i)}};
        *y = *x;
        rec->kind = DL_DATA_TEXT;
        rec->context = v[1].i;
        return true;
    }
    /* safetensors(path, x=, y=) */
    if (v[0].k != V_STR || v[1].k != V_STR || v[2].k != V_STR) {
        fe_err(lc, data->loc, "safetensors(path: str, x: str, y: str) names the file and its two tensors");
        return false;
    }
    const char *path = resolve(lc, dir, v[0].s);
    rt_safetensors st;
    char err[512];
    if (!rt_st_read_header(lc->arena, path, &st, err, sizeof err)) {
        fe_err(lc, at[0], "%s", err);
        return false;
    }
    if (!st_type(lc, &st, path, v[1].s, x, at[1]) || !st_type(lc, &st, path, v[2].s, y, at[2]))
        return false;
    if (!ir_dim_eq(x->dim[0], y->dim[0])) {
        fe_err(lc, data->loc, "%s: x and y hold different numbers of samples", path);
        return false;
    }
    x->dim[0] = y->dim[0] = B;
    rec->kind = DL_DATA_SAFETENSORS;
    rec->x_name = keep(lc, v[1].s);
    rec->y_name = keep(lc, v[2].s);
    return true;
}

/* ---- the block ------------------------------------------------------------------------- */

static const fe_ast *setting(const fe_ast *train, const char *name)
{
    for (int i = 0; i < train->items.n; i++)
        if (!strcmp(train->items.v[i]->name, name))
            return train->items.v[i]->a;
    return NULL;
}

static bool check_number(fe_lctx *lc, const fe_ast *e, fe_scope *s, const char *name, bool integer,
                         double lo)
{
    fe_val v = fe_eval(lc, e, s);
    if (v.k == V_ERR)
        return false;
    if ((integer ? v.k != V_INT : !(v.k == V_INT || v.k == V_FLOAT)) || fe_number(&v) < lo) {
        fe_err(lc, e->loc, "'%s' must be %s >= %g, got %s", name, integer ? "an int" : "a number",
               lo, fe_val_desc(lc, &v));
        return false;
    }
    return true;
}

static bool check_name(fe_lctx *lc, const fe_ast *e, const char *setting_name,
                       const char *const *choices, int n)
{
    if (e->kind == FE_NAME || e->kind == FE_STR)
        for (int i = 0; i < n; i++)
            if (!strcmp(e->name, choices[i]))
                return true;
    const char *near = e->kind == FE_NAME || e->kind == FE_STR ? fe_nearest(e->name, choices, n) : NULL;
    fe_err(lc, e->loc, "'%s' must be one of %s%s%s%s%s", setting_name, choices[0],
           n > 1 ? ", " : "", n > 1 ? choices[1] : "", n > 2 ? ", ..." : "",
           near ? sup_arena_printf(lc->arena, " (did you mean '%s'?)", near) : "");
    return false;
}

static bool check_settings(fe_lctx *lc, const fe_ast *train, fe_scope *s)
{
    bool ok = true;
    for (int i = 0; i < train->items.n; i++) {
        const fe_ast *st = train->items.v[i];
        const char *n = st->name;
        const fe_ast *e = st->a;
        bool known = false;
        for (int k = 0; k < NSETTINGS; k++)
            known |= !strcmp(n, settings[k]);
        for (int k = 0; k < i; k++)
            if (!strcmp(train->items.v[k]->name, n)) {
                fe_err(lc, st->loc, "setting '%s' is given twice", n);
                ok = false;
            }
        if (!known) {
            bool load = e->kind == FE_CALL && e->a->kind == FE_NAME && !strcmp(e->a->name, "load");
            if (load)
                continue;   /* an extra frozen model: checked when the loss is lowered */
            const char *near = fe_nearest(n, settings, NSETTINGS);
            fe_err(lc, st->loc, "unknown setting '%s'%s%s%s", n, near ? " (did you mean '" : "",
                   near ? near : "", near ? "'?)" : "");
            ok = false;
            continue;
        }
        fe_val v[12];
        dl_loc at[12];
        if (!strcmp(n, "batch") || !strcmp(n, "epochs") || !strcmp(n, "steps") ||
            !strcmp(n, "accumulate") || !strcmp(n, "checkpoint_every"))
            ok &= check_number(lc, e, s, n, true, 1);
        else if (!strcmp(n, "seed"))
            ok &= check_number(lc, e, s, n, true, 0);
        else if (!strcmp(n, "clip_grad"))
            ok &= check_number(lc, e, s, n, false, 0);
        else if (!strcmp(n, "shuffle")) {
            fe_val b = fe_eval(lc, e, s);
            if (b.k != V_BOOL && b.k != V_ERR)
                fe_err(lc, e->loc, "'shuffle' must be true or false, got %s", fe_val_desc(lc, &b));
            ok &= b.k == V_BOOL;
        } else if (!strcmp(n, "save")) {
            fe_val b = fe_eval(lc, e, s);
            if (b.k != V_STR && b.k != V_ERR)
                fe_err(lc, e->loc, "'save' must be a file name, got %s", fe_val_desc(lc, &b));
            ok &= b.k == V_STR;
        } else if (!strcmp(n, "precision")) {
            static const char *const p[] = {"fp32", "bf16", "fp16"};
            ok &= check_name(lc, e, n, p, 3);
        } else if (!strcmp(n, "checkpoint")) {
            static const char *const p[] = {"auto"};
            ok &= check_name(lc, e, n, p, 1);
        } else if (!strcmp(n, "quantize")) {
            static const char *const p[] = {"qat"};
            ok &= check_name(lc, e, n, p, 1);
        } else if (!strcmp(n, "optimizer"))
            ok &= check_call(lc, e, optimizers, COUNT(optimizers), "optimizer", s, v, at) != NULL;
        else if (!strcmp(n, "schedule"))
            ok &= check_call(lc, e, schedules, COUNT(schedules), "schedule", s, v, at) != NULL;
        else if (!strcmp(n, "valid")) {
            if (e->kind == FE_CALL) {
                ok &= check_call(lc, e, sources, COUNT(sources), "data source", s, v, at) != NULL;
            } else {
                fe_val f = fe_eval(lc, e, s);
                if (f.k != V_ERR && !(f.k == V_FLOAT && f.f > 0 && f.f < 1))
                    fe_err(lc, e->loc, "'valid' is a fraction between 0 and 1 or a data source, got %s",
                           fe_val_desc(lc, &f));
                ok &= f.k == V_FLOAT && f.f > 0 && f.f < 1;
            }
        }
    }
    if (!setting(train, "data")) {
        fe_err(lc, train->loc, "a train block needs 'data'");
        ok = false;
    }
    if (!setting(train, "loss")) {
        fe_err(lc, train->loc, "a train block needs 'loss'");
        ok = false;
    }
    return ok;
}

/* ---- recording the settings (ir/train.h) ------------------------------------------------- */


/* A number argument of a setting's call (vals[i] from check_call), or `def` when not given. */
static bool arg_num(fe_lctx *lc, const fe_val *v, dl_loc at, const char *name, double def,
                    double lo, double *out)
{
    if (v->k == V_NONE) {
        *out = def;
        return true;
    }
    if (!fe_is_number(v) || fe_number(v) < lo) {
        fe_err(lc, at, "'%s' must be a number >= %g, got %s", name, lo, fe_val_desc(lc, v));
        return false;
    }
    *out = fe_number(v);
    return true;
}

static bool arg_bool(fe_lctx *lc, const fe_val *v, dl_loc at, const char *name, bool *out)
{
    if (v->k == V_NONE)
        return true;
    if (v->k != V_BOOL) {
        fe_err(lc, at, "'%s' must be true or false, got %s", name, fe_val_desc(lc, v));
        return false;
    }
    *out = v->i;
    return true;
}

/* A list of strings (no_decay) or of ints (milestones) into the arena. */
static bool list_arg(fe_lctx *lc, const fe_val *v, dl_loc at, const char *name, bool strings,
                     int *n, const char ***strs, int64_t **ints)
{
    if (v->k == V_NONE)
        return true;
    bool ok = v->k == V_LIST;
    for (int i = 0; ok && i < v->n; i++)
        ok = v->items[i].k == (strings ? V_STR : V_INT);
    if (!ok) {
        fe_err(lc, at, "'%s' is a list of %s", name, strings ? "strings" : "ints");
        return false;
    }
    *n = v->n;
    if (strings) {
        *strs = sup_arena_alloc(&lc->m->arena, sizeof **strs * (size_t)(v->n + 1));
        for (int i = 0; i < v->n; i++)
            (*strs)[i] = ir_intern(lc->m, v->items[i].s, strlen(v->items[i].s));
    } else {
        *ints = sup_arena_alloc(&lc->m->arena, sizeof **ints * (size_t)(v->n + 1));
        for (int i = 0; i < v->n; i++)
            (*ints)[i] = v->items[i].i;
    }
    return true;
}

static bool record_optimizer(fe_lctx *lc, const fe_ast *e, fe_scope *s, dl_train_opt *o)
{
    fe_val v[12];
    dl_loc at[12];
    for (int i = 0; i < 12; i++)
        at[i] = e->loc;
    const callspec *cs = check_call(lc, e, optimizers, COUNT(optimizers), "optimizer", s, v, at);
    if (!cs)
        return false;
    const char *k = cs->name;
    bool ok = true;
    *o = (dl_train_opt){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .alpha = 0.99};
    if (!strcmp(k, "sgd")) {       /* lr momentum dampening nesterov weight_decay no_decay */
        o->kind = DL_OPT_SGD;
        ok = arg_num(lc, &v[0], at[0], "lr", 1e-3, 0, &o->lr) &&
             arg_num(lc, &v[1], at[1], "momentum", 0, 0, &o->momentum) &&
             arg_num(lc, &v[2], at[2], "dampening", 0, 0, &o->dampening) &&
             arg_bool(lc, &v[3], at[3], "nesterov", &o->nesterov) &&
             arg_num(lc, &v[4], at[4], "weight_decay", 0, 0, &o->weight_decay) &&
             list_arg(lc, &v[5], at[5], "no_decay", true, &o->nno_decay, &o->no_decay, NULL);
        if (ok && o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
            fe_err(lc, e->loc, "nesterov momentum requires a momentum and zero dampening");
            ok = false;
        }
    } else if (!strcmp(k, "adam") || !strcmp(k, "adamw")) {  /* lr betas eps weight_decay amsgrad no_decay */
        o->kind = !strcmp(k, "adam") ? DL_OPT_ADAM : DL_OPT_ADAMW;
        ok = arg_num(lc, &v[0], at[0], "lr", 1e-3, 0, &o->lr) &&
             arg_num(lc, &v[2], at[2], "eps", 1e-8, 0, &o->eps) &&
             arg_num(lc, &v[3], at[3], "weight_decay", o->kind == DL_OPT_ADAMW ? 1e-2 : 0, 0,
                     &o->weight_decay) &&
             arg_bool(lc, &v[4], at[4], "amsgrad", &o->amsgrad) &&
             list_arg(lc, &v[5], at[5], "no_decay", true, &o->nno_decay, &o->no_decay, NULL);
        if (ok && v[1].k != V_NONE) {
            ok = v[1].k == V_LIST && v[1].n == 2 && fe_is_number(&v[1].items[0]) &&
                 fe_is_number(&v[1].items[1]);
            if (!ok)
                fe_err(lc, at[1], "'betas' is a list of two numbers, e.g. [0.9, 0.999]");
            else {
                o->beta1 = fe_number(&v[1].items[0]);
                o->beta2 = fe_number(&v[1].items[1]);
            }
        }
    } else if (!strcmp(k, "rmsprop")) {  /* lr alpha eps weight_decay momentum centered no_decay */
        o->kind = DL_OPT_RMSPROP;
        ok = arg_num(lc, &v[0], at[0], "lr", 1e-2, 0, &o->lr) &&
             arg_num(lc, &v[1], at[1], "alpha", 0.99, 0, &o->alpha) &&
             arg_num(lc, &v[2], at[2], "eps", 1e-8, 0, &o->eps) &&
             arg_num(lc, &v[3], at[3], "weight_decay", 0, 0, &o->weight_decay) &&
             arg_num(lc, &v[4], at[4], "momentum", 0, 0, &o->momentum) &&
             arg_bool(lc, &v[5], at[5], "centered", &o->centered) &&
             list_arg(lc, &v[6], at[6], "no_decay", true, &o->nno_decay, &o->no_decay, NULL);
    } else {                             /* adagrad: lr lr_decay weight_decay eps no_decay */
        o->kind = DL_OPT_ADAGRAD;
        ok = arg_num(lc, &v[0], at[0], "lr", 1e-2, 0, &o->lr) &&
             arg_num(lc, &v[1], at[1], "lr_decay", 0, 0, &o->lr_decay) &&
             arg_num(lc, &v[2], at[2], "weight_decay", 0, 0, &o->weight_decay) &&
             arg_num(lc, &v[3], at[3], "eps", 1e-10, 0, &o->eps) &&
             list_arg(lc, &v[4], at[4], "no_decay", true, &o->nno_decay, &o->no_decay, NULL);
    }
    return ok;
}

static bool record_schedule(fe_lctx *lc, const fe_ast *e, fe_scope *s, dl_train_sched *r)
{
    fe_val v[12];
    dl_loc at[12];
    *r = (dl_train_sched){.kind = DL_SCHED_CONSTANT, .gamma = 0.1, .pct_start = 0.3, .factor = 0.1,
                          .patience = 10};
    if (!e)
        return true;
    for (int i = 0; i < 12; i++)
        at[i] = e->loc;
    const callspec *cs = check_call(lc, e, schedules, COUNT(schedules), "schedule", s, v, at);
    if (!cs)
        return false;
    const char *k = cs->name;
    double x = 0;
    bool ok = true;
    if (!strcmp(k, "step")) {
        r->kind = DL_SCHED_STEP;
        ok = arg_num(lc, &v[0], at[0], "every", 1, 1, &x) &&
             arg_num(lc, &v[1], at[1], "gamma", 0.1, 0, &r->gamma);
        r->every = (int64_t)x;
    } else if (!strcmp(k, "multistep")) {
        r->kind = DL_SCHED_MULTISTEP;
        ok = list_arg(lc, &v[0], at[0], "milestones", false, &r->nmilestones, NULL, &r->milestones) &&
             arg_num(lc, &v[1], at[1], "gamma", 0.1, 0, &r->gamma);
    } else if (!strcmp(k, "exponential")) {
        r->kind = DL_SCHED_EXPONENTIAL;
        ok = arg_num(lc, &v[0], at[0], "gamma", 0.1, 0, &r->gamma);
    } else if (!strcmp(k, "cosine")) {
        r->kind = DL_SCHED_COSINE;
        ok = arg_num(lc, &v[0], at[0], "warmup", 0, 0, &x) &&
             arg_num(lc, &v[1], at[1], "min_lr", 0, 0, &r->min_lr);
        r->warmup = (int64_t)x;
    } else if (!strcmp(k, "one_cycle")) {
        r->kind = DL_SCHED_ONE_CYCLE;
        ok = arg_num(lc, &v[0], at[0], "max_lr", -1, 0, &r->max_lr) &&
             arg_num(lc, &v[1], at[1], "pct_start", 0.3, 0, &r->pct_start);
        if (ok && r->max_lr < 0) {
            fe_err(lc, e->loc, "one_cycle needs max_lr");
            ok = false;
        }
    } else if (!strcmp(k, "cyclic")) {
        r->kind = DL_SCHED_CYCLIC;
        ok = arg_num(lc, &v[0], at[0], "lo", -1, 0, &r->lo) &&
             arg_num(lc, &v[1], at[1], "hi", -1, 0, &r->hi) &&
             arg_num(lc, &v[2], at[2], "period", 2, 2, &x);
        r->period = (int64_t)x;
        if (ok && (r->lo < 0 || r->hi < 0)) {
            fe_err(lc, e->loc, "cyclic needs lo and hi");
            ok = false;
        }
    } else if (!strcmp(k, "plateau")) {
        r->kind = DL_SCHED_PLATEAU;
        ok = arg_num(lc, &v[0], at[0], "patience", 10, 0, &x) &&
             arg_num(lc, &v[1], at[1], "factor", 0.1, 0, &r->factor);
        r->patience = (int64_t)x;
    }
    return ok;
}

static int64_t int_setting(fe_lctx *lc, const fe_ast *train, fe_scope *s, const char *name, int64_t def)
{
    const fe_ast *e = setting(train, name);
    if (!e)
        return def;
    fe_val v = fe_eval(lc, e, s);
    return v.k == V_INT ? v.i : def;
}

/* Records the checked settings in lc->m->train. */
static bool record(fe_lctx *lc, const fe_ast *train, fe_scope *s, const char *dir)
{
    dl_train *t = sup_arena_alloc(&lc->m->arena, sizeof *t);
    memset(t, 0, sizeof *t);
    t->batch = int_setting(lc, train, s, "batch", 32);
    t->epochs = int_setting(lc, train, s, "epochs", 1);
    t->steps = int_setting(lc, train, s, "steps", 0);
    t->accumulate = int_setting(lc, train, s, "accumulate", 1);
    t->seed = (uint64_t)int_setting(lc, train, s, "seed", 0);
    t->checkpoint_every = int_setting(lc, train, s, "checkpoint_every", 0);
    t->precision = "fp32";
    const fe_ast *e = train->a->kind == FE_CALL ? train->a->a : train->a;
    t->model = keep(lc, e->kind == FE_NAME ? e->name : "model");
    fe_val v;
    if ((e = setting(train, "shuffle")) && (v = fe_eval(lc, e, s)).k == V_BOOL)
        t->shuffle = v.i;
    if ((e = setting(train, "clip_grad")) && (v = fe_eval(lc, e, s)).k != V_ERR && fe_is_number(&v))
        t->clip_grad = fe_number(&v);
    if ((e = setting(train, "save")) && (v = fe_eval(lc, e, s)).k == V_STR)
        t->save = keep(lc, resolve(lc, dir, v.s));
    if ((e = setting(train, "precision"))) {
        t->precision = keep(lc, e->name);
        t->precision_at = e->loc;
    }
    if ((e = setting(train, "quantize"))) {
        t->quantize = keep(lc, e->name);
        t->quantize_at = e->loc;
    }
    if ((e = setting(train, "checkpoint"))) {
        t->auto_checkpoint = true;
        t->checkpoint_at = e->loc;
    }
    bool ok = true;
    if ((e = setting(train, "valid")) && e->kind != FE_CALL && (v = fe_eval(lc, e, s)).k == V_FLOAT)
        t->valid = v.f;
    if ((e = setting(train, "optimizer")))
        ok &= record_optimizer(lc, e, s, &t->opt);
    else
        ok &= record_optimizer(lc, &(fe_ast){.kind = FE_CALL, .loc = train->loc,
                                             .a = &(fe_ast){.kind = FE_NAME, .name = "sgd"}},
                               s, &t->opt);
    ok &= record_schedule(lc, setting(train, "schedule"), s, &t->sched);
    if ((e = setting(train, "metrics")) && e->kind == FE_LIST) {
        t->nmetrics = e->items.n;
        t->metric_names = sup_arena_alloc(&lc->m->arena, sizeof *t->metric_names * (size_t)(e->items.n + 1));
        for (int i = 0; i < e->items.n; i++) {
            const fe_ast *m = e->items.v[i];
            t->metric_names[i] = m->kind == FE_CALL && m->a->kind == FE_NAME ? keep(lc, m->a->name)
                               : sup_arena_printf(&lc->m->arena, "metric%d", i);
        }
    }
    lc->m->train = t;
    return ok;
}

/* The trained model, built into lc->f; `frozen` extra models are built too. */
static fe_val build_model(fe_lctx *lc, const fe_ast *train, fe_scope *s)
{
    const fe_ast *e = train->a;
    fe_val def = e->kind == FE_CALL ? fe_eval(lc, e->a, s) : fe_eval(lc, e, s);
    if (def.k == V_ERR)
        return def;
    if (def.k != V_MODELDEF)
        return fe_err(lc, e->loc, "a train block trains a model: train Name(args) { ... }, not %s",
                      fe_val_desc(lc, &def));
    lc->root_ok = true;
    fe_val inst = e->kind == FE_CALL ? fe_eval(lc, e, s) : fe_call(lc, def, 0, NULL, e->loc);
    lc->root_ok = false;
    return inst;
}

static bool lower_forward(fe_lctx *lc, const fe_ast *train, fe_scope *s, const dl_type *xt)
{
    fe_begin_function(lc, "forward", train->loc);
    lc->training = false;
    fe_val inst = build_model(lc, train, s);
    if (inst.k != V_INSTANCE)
        return false;
    dl_value *x = ir_func_add_arg(lc->f, "x", DL_ROLE_INPUT, NULL, xt);
    fe_arg arg = {NULL, fe_tensor(x), train->a->loc};
    fe_val out = fe_call(lc, inst, 1, &arg, train->a->loc);
    if (out.k == V_ERR)
        return false;
    if (out.k == V_LIST)
        return fe_finish(lc, out.n, out.items, NULL, train->a->loc);
    return fe_finish(lc, 1, &out, NULL, train->a->loc);
}

static bool want_scalar(fe_lctx *lc, const fe_val *v, const char *what, dl_loc loc)
{
    if (v->k == V_ERR)
        return false;
    if (v->k != V_TENSOR || v->t->type.rank != 0 || !ir_dtype_is_float(v->t->type.dtype)) {
        fe_err(lc, loc, "%s must be a floating-point scalar, got %s", what, fe_val_desc(lc, v));
        return false;
    }
    return true;
}

static bool lower_loss(fe_lctx *lc, const fe_ast *train, fe_scope *s, const char *dir,
                       const dl_type *xt, const dl_type *yt, const char *name, bool training)
{
    fe_begin_function(lc, name, train->loc);
    lc->training = training;
    fe_val inst = build_model(lc, train, s);
    if (inst.k != V_INSTANCE)
        return false;
    fe_scope *ts = fe_scope_new(lc, s);
    fe_bind(lc, ts, "model", inst, train->a->loc);
    fe_bind(lc, ts, "x", fe_tensor(ir_func_add_arg(lc->f, "x", DL_ROLE_INPUT, NULL, xt)), train->loc);
    fe_bind(lc, ts, "y", fe_tensor(ir_func_add_arg(lc->f, "y", DL_ROLE_INPUT, NULL, yt)), train->loc);
    /* Extra frozen models: name = load(Model(...), "weights.safetensors"). */
    bool ok = true;
    for (int i = 0; i < train->items.n; i++) {
        const fe_ast *st = train->items.v[i], *e = st->a;
        if (!(e->kind == FE_CALL && e->a->kind == FE_NAME && !strcmp(e->a->name, "load")))
            continue;
        if (e->items.n != 2 || e->items.v[0]->a->kind != FE_CALL || e->items.v[1]->a->kind != FE_STR) {
            fe_err(lc, e->loc, "load(Model(args), \"weights.safetensors\") loads a frozen model");
            ok = false;
            continue;
        }
        /* Its parameters are not trained: buffers loaded from the file. */
        lc->member = st->name;
        lc->frozen_root = st->name;
        lc->frozen_file = resolve(lc, dir, e->items.v[1]->a->name);
        fe_val m = fe_eval(lc, e->items.v[0]->a, s);
        lc->member = NULL;
        lc->frozen_file = lc->frozen_root = NULL;
        ok &= m.k == V_INSTANCE;
        fe_bind(lc, ts, st->name, m, st->loc);
    }
    const fe_ast *le = setting(train, "loss"), *me = setting(train, "metrics");
    lc->memo_inst = inst.inst;
    lc->memo_arg = NULL;
    fe_val loss = fe_eval(lc, le, ts);
    ok &= want_scalar(lc, &loss, "the loss", le->loc);
    fe_val results[65];
    dl_role roles[65];
    int n = 0;
    results[n] = loss;
    roles[n++] = DL_ROLE_LOSS;
    if (me) {
        if (me->kind != FE_LIST) {
            lc->memo_inst = NULL;
            fe_err(lc, me->loc, "'metrics' is a list: [accuracy(model(x), y), ...]");
            return false;
        }
        for (int i = 0; i < me->items.n && n < 65; i++) {
            fe_val v = fe_eval(lc, me->items.v[i], ts);
            ok &= want_scalar(lc, &v, "a metric", me->items.v[i]->loc);
            results[n] = v;
            roles[n++] = DL_ROLE_METRIC;
        }
    }
    lc->memo_inst = NULL;
    return ok && fe_finish(lc, n, results, roles, train->loc);
}

bool fe_lower_train(fe_lctx *lc, const fe_ast *train, fe_scope *scope, const char *dir)
{
    if (!check_settings(lc, train, scope))
        return false;
    if (!record(lc, train, scope, dir))
        return false;
    dl_train *t = lc->m->train;
    dl_type xt, yt, vx, vy;
    if (!data_types(lc, setting(train, "data"), scope, dir, &xt, &yt, &t->data))
        return false;
    /* A validation source must give batches of the training data's types. */
    const fe_ast *valid = setting(train, "valid");
    if (valid && valid->kind == FE_CALL) {
        t->has_valid_data = true;
        if (!data_types(lc, valid, scope, dir, &vx, &vy, &t->valid_data))
            return false;
        if (!ir_type_eq(&vx, &xt) || !ir_type_eq(&vy, &yt)) {
            char a[128], b[128], c[128], d[128];
            ir_type_str(&vx, a, sizeof a), ir_type_str(&vy, b, sizeof b);
            ir_type_str(&xt, c, sizeof c), ir_type_str(&yt, d, sizeof d);
            fe_err(lc, valid->loc, "the validation data gives x %s, y %s but the training data x %s, y %s",
                   a, b, c, d);
            return false;
        }
    }
    bool ok = lower_forward(lc, train, scope, &xt) &&
              lower_loss(lc, train, scope, dir, &xt, &yt, "loss", true) &&
              lower_loss(lc, train, scope, dir, &xt, &yt, "evaluate", false);
    lc->f = NULL;
    return ok;
}
