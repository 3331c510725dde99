/* Calls of primitives (frontend/builtins.def): arguments matched Python style against the
 * signature, tensors to IR operands, the rest to the IR op's attributes by their kinds. */
#include "frontend/lower.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct builtin {
    const char *name;
    dl_opcode   op;
    const char *sig;
} builtin;

static const builtin builtins[] = {
#define BUILTIN(name, op, sig) {name, DL_OP_##op, sig},
#include "frontend/builtins.def"
#undef BUILTIN
};
enum { NBUILTINS = sizeof builtins / sizeof *builtins, MAX_PARAMS = 12 };

const char *fe_builtin_name(int b) { return b >= 0 && b < NBUILTINS ? builtins[b].name : NULL; }

typedef struct sig_param {
    char name[32];
    bool tensor, list, optional;
    int  operand;             /* IR operand index for tensors */
} sig_param;

static int parse_sig(const char *sig, sig_param *p)
{
    int n = 0, nop = 0;
    for (const char *s = sig; *s && n < MAX_PARAMS;) {
        while (*s == ' ')
            s++;
        if (!*s)
            break;
        sig_param *q = &p[n++];
        *q = (sig_param){0};
        q->list = *s == '*' && s++;
        q->tensor = *s == '%' && s++;
        size_t k = 0;
        while (*s && *s != ' ' && *s != '?' && *s != ':' && k + 1 < sizeof q->name)
            q->name[k++] = *s++;
        q->name[k] = 0;
        q->optional = *s == '?' && s++;
        q->operand = q->tensor ? nop++ : -1;
        if (*s == ':') {
            s++;
            q->operand = (int)strtol(s, (char **)&s, 10);
        }
        while (*s && *s != ' ')
            s++;
    }
    return n;
}

/* A compile-time value as an attribute of `kind`. */
static bool to_attr(fe_lctx *lc, const fe_val *v, const dl_attr_spec *spec, dl_attr *a, dl_loc loc,
                    const char *fname)
{
    a->name = spec->name;
    a->kind = spec->kind;
    const char *want = NULL;
    switch (spec->kind) {
    case DL_ATTR_INT:
        if (v->k == V_INT) {
            a->u.i = v->i;
            return true;
        }
        want = "an int";
        break;
    case DL_ATTR_FLOAT:
        if (v->k == V_INT || v->k == V_FLOAT) {
            a->u.f = fe_number(v);
            return true;
        }
        want = "a number";
        break;
    case DL_ATTR_BOOL:
        if (v->k == V_BOOL) {
            a->u.b = v->i != 0;
            return true;
        }
        want = "a bool";
        break;
    case DL_ATTR_STR:
        if (v->k == V_STR) {
            a->u.s = v->s;
            return true;
        }
        want = "a string";
        break;
    case DL_ATTR_DTYPE:
        if (v->k == V_STR && ir_dtype_parse(v->s, strlen(v->s), &a->u.dt))
            return true;
        want = "a dtype";
        break;
    case DL_ATTR_INTS:
    case DL_ATTR_FLOATS:
    case DL_ATTR_SHAPE: {
        /* One number stands for a list of one. */
        const fe_val *items = v->k == V_LIST ? v->items : v;
        int n = v->k == V_LIST ? v->n : 1;
        a->n = n;
        int64_t *ints = SUP_NEWN(lc->arena, int64_t, n + 1);
        double *floats = SUP_NEWN(lc->arena, double, n + 1);
        dl_dim *dims = SUP_NEWN(lc->arena, dl_dim, n + 1);
        for (int i = 0; i < n; i++) {
            const fe_val *x = &items[i];
            if (spec->kind == DL_ATTR_SHAPE && (x->k == V_INT || x->k == V_DIM))
                dims[i] = x->k == V_INT ? ir_dim_const(x->i) : x->dim;
            else if (spec->kind == DL_ATTR_INTS && x->k == V_INT)
                ints[i] = x->i;
            else if (spec->kind == DL_ATTR_FLOATS && fe_is_number(x))
                floats[i] = fe_number(x);
            else {
                want = spec->kind == DL_ATTR_SHAPE ? "a list of dimensions" :
                       spec->kind == DL_ATTR_INTS ? "an int or a list of ints" : "a list of numbers";
                goto bad;
            }
        }
        if (spec->kind == DL_ATTR_SHAPE)
            a->u.dims = dims;
        else if (spec->kind == DL_ATTR_INTS)
            a->u.ints = ints;
        else
            a->u.floats = floats;
        return true;
    }
    }
bad:
    fe_err(lc, loc, "'%s' of %s must be %s, got %s", spec->name, fname, want, fe_val_desc(lc, v));
    return false;
}

/* split(x, size_or_sizes, dim): a single size makes equal chunks (the last one smaller). */
static bool split_sizes(fe_lctx *lc, fe_val *v, const dl_value *x, const fe_val *dimv, dl_loc loc)
{
    if (v->k != V_INT)
        return true;
    int64_t d = dimv ? dimv->i : 0, size = v->i;
    int r = x->type.rank;
    if (r == 0 || d < -r || d >= r) {
        fe_err(lc, loc, "split: dimension %" PRId64 " is out of range", d);
        return false;
    }
    dl_dim n = x->type.dim[d < 0 ? d + r : d];
    if (n.n || size <= 0 || n.c / size > 64) {
        fe_err(lc, loc, "split: a chunk size needs a known dimension and at most 64 chunks");
        return false;
    }
    int k = (int)((n.c + size - 1) / size);
    fe_val l = {.k = V_LIST, .n = k, .items = SUP_NEWN(lc->arena, fe_val, k + 1)};
    for (int i = 0; i < k; i++)
        l.items[i] = fe_int(i < k - 1 ? size : n.c - size * (k - 1));
    *v = l;
    return true;
}

fe_val fe_call_builtin(fe_lctx *lc, int b, int nargs, fe_arg *args, dl_loc loc)
{
    const builtin *bi = &builtins[b];
    dl_opcode code = bi->op;
    char fname[64];
    snprintf(fname, sizeof fname, "'%s'", bi->name);
    /* max(a, b) and min(a, b) of two tensors or numbers are elementwise. */
    if ((code == DL_OP_MAX || code == DL_OP_MIN) && nargs == 2 && !args[1].name &&
        (args[1].v.k == V_TENSOR || args[1].v.k == V_FLOAT))
        code = code == DL_OP_MAX ? DL_OP_MAXIMUM : DL_OP_MINIMUM, bi = &builtins[b + 0];
    sig_param p[MAX_PARAMS];
    int np = parse_sig(code == DL_OP_MAXIMUM || code == DL_OP_MINIMUM ? "%a %b" : bi->sig, p);
    const fe_val *val[MAX_PARAMS] = {0};
    dl_loc at[MAX_PARAMS];
    for (int i = 0; i < nargs; i++) {
        int k = -1;
        if (!args[i].name)
            k = i < np ? i : -1;
        else
            for (int j = 0; j < np; j++)
                if (!strcmp(p[j].name, args[i].name))
                    k = j;
        if (k < 0) {
            if (!args[i].name)
                return fe_err(lc, args[i].loc, "%s takes at most %d argument%s", fname, np,
                              np == 1 ? "" : "s");
            const char *cands[MAX_PARAMS];
            for (int j = 0; j < np; j++)
                cands[j] = p[j].name;
            const char *near = fe_nearest(args[i].name, cands, np);
            return fe_err(lc, args[i].loc, "%s has no parameter '%s'%s%s%s", fname, args[i].name,
                          near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        }
        if (val[k])
            return fe_err(lc, args[i].loc, "argument '%s' of %s is given twice", p[k].name, fname);
        val[k] = &args[i].v;
        at[k] = args[i].loc;
    }
    /* The dtype numbers take: the first tensor operand's that is not a bool (where's condition,
     * a mask), else the first tensor operand's. */
    int dtype = -1;
    for (int j = 0; j < np && dtype < 0; j++)
        if (p[j].tensor && val[j] && val[j]->k == V_TENSOR && val[j]->t->type.dtype != DL_BOOL)
            dtype = val[j]->t->type.dtype;
    for (int j = 0; j < np && dtype < 0; j++)
        if (p[j].tensor && val[j] && val[j]->k == V_TENSOR)
            dtype = val[j]->t->type.dtype;

    dl_value *in[256];
    int nin = 0;
    dl_attr attrs[MAX_PARAMS];
    int nattr = 0;
    for (int j = 0; j < np; j++) {
        if (p[j].tensor && !val[j]) {
            if (p[j].optional)
                continue;
            return fe_err(lc, loc, "%s needs argument '%s'", fname, p[j].name);
        }
        if (p[j].list) {
            const fe_val *l = val[j];
            if (l->k != V_LIST || l->n < 1 || l->n > 256)
                return fe_err(lc, at[j], "'%s' of %s must be a list of 1 to 256 tensors, got %s",
                              p[j].name, fname, fe_val_desc(lc, l));
            for (int i = 0; i < l->n; i++)
                if (!(in[nin++] = fe_as_tensor(lc, l->items[i], dtype, at[j])))
                    return (fe_val){.k = V_ERR};
            continue;
        }
        if (p[j].tensor) {
            dl_value *t = fe_as_tensor(lc, *val[j], dtype, at[j]);
            if (!t)
                return (fe_val){.k = V_ERR};
            in[p[j].operand] = t;
            nin = p[j].operand + 1 > nin ? p[j].operand + 1 : nin;
            continue;
        }
        if (!val[j])
            continue;
        const dl_attr_spec *spec = ir_attr_spec(code, p[j].name, strlen(p[j].name));
        SUP_ASSERT(spec);
        fe_val v = *val[j];
        if (code == DL_OP_SPLIT && !strcmp(p[j].name, "sizes")) {
            const fe_val *dimv = NULL;
            for (int k = 0; k < np; k++)
                if (!strcmp(p[k].name, "dim") && val[k] && val[k]->k == V_INT)
                    dimv = val[k];
            if (!split_sizes(lc, &v, in[0], dimv, at[j]))
                return (fe_val){.k = V_ERR};
        }
        if (!to_attr(lc, &v, spec, &attrs[nattr], at[j], fname))
            return (fe_val){.k = V_ERR};
        nattr++;
    }
    /* Operands given out of order must all be there (batch_norm). */
    for (int i = 0; i < nin; i++)
        if (!in[i])
            return fe_err(lc, loc, "%s is missing an operand", fname);

    if (code == DL_OP_DROPOUT) {
        /* Identity outside training; in training, a pure function of the step's RNG key. */
        if (!lc->training)
            return fe_tensor(in[0]);
        if (!lc->rng) {
            dl_type key = {.dtype = DL_I64};
            lc->rng = ir_func_add_arg(lc->f, "rng", DL_ROLE_INPUT, NULL, &key);
        }
        in[nin++] = lc->rng;
        attrs[nattr++] = (dl_attr){.name = "stream", .kind = DL_ATTR_INT, .u.i = lc->nstreams++};
    }
    dl_op *op = fe_emit(lc, code, nin, in, nattr, attrs, -1, loc);
    if (!op)
        return (fe_val){.k = V_ERR};
    if (op->nres == 1)
        return fe_tensor(&op->res[0]);
    fe_val l = {.k = V_LIST, .n = op->nres, .items = SUP_NEWN(lc->arena, fe_val, op->nres + 1)};
    for (int i = 0; i < op->nres; i++)
        l.items[i] = fe_tensor(&op->res[i]);
    return l;
}
