/* The checker and lowerer (see lower.h): scopes, compile-time values, statements and
 * expressions, functions and model instances. Programs are read in program.c. */
#include "frontend/lower.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 200, MAX_LIST = 1 << 20 };

/* ---- errors ---------------------------------------------------------------------------- */

fe_val fe_err(fe_lctx *lc, dl_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_diag_vreport(lc->diag, DL_SEV_ERROR, loc, fmt, ap);
    va_end(ap);
    return (fe_val){.k = V_ERR};
}

void fe_note(fe_lctx *lc, dl_loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_diag_vreport(lc->diag, DL_SEV_NOTE, loc, fmt, ap);
    va_end(ap);
}

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    int d[65][65];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

const char *fe_nearest(const char *name, const char *const *candidates, int n)
{
    const char *best = NULL;
    int bestd = 3 + (int)strlen(name) / 4;   /* a typo, not a different word */
    for (int i = 0; i < n; i++) {
        int d = edit_distance(name, candidates[i]);
        if (d < bestd) {
            bestd = d;
            best = candidates[i];
        }
    }
    return best;
}

/* ---- values ---------------------------------------------------------------------------- */

fe_val fe_int(int64_t i) { return (fe_val){.k = V_INT, .i = i}; }
fe_val fe_tensor(dl_value *t) { return t ? (fe_val){.k = V_TENSOR, .t = t} : (fe_val){.k = V_ERR}; }

bool fe_is_number(const fe_val *v) { return v->k == V_INT || v->k == V_FLOAT || v->k == V_BOOL; }
double fe_number(const fe_val *v) { return v->k == V_FLOAT ? v->f : (double)v->i; }

const char *fe_val_desc(fe_lctx *lc, const fe_val *v)
{
    char buf[256];
    switch (v->k) {
    case V_ERR: return "an erroneous value";
    case V_NONE: return "nothing";
    case V_INT: snprintf(buf, sizeof buf, "the int %" PRId64, v->i); break;
    case V_FLOAT: snprintf(buf, sizeof buf, "the float %g", v->f); break;
    case V_BOOL: return v->i ? "true" : "false";
    case V_STR: snprintf(buf, sizeof buf, "the string \"%s\"", v->s); break;
    case V_DIM: buf[0] = 0; ir_dim_str(v->dim, buf, sizeof buf); break;
    case V_LIST: snprintf(buf, sizeof buf, "a list of %d", v->n); break;
    case V_TENSOR: ir_type_str(&v->t->type, buf, sizeof buf); break;
    case V_FN: snprintf(buf, sizeof buf, "the function %s", v->node->name); break;
    case V_MODELDEF: snprintf(buf, sizeof buf, "the model %s", v->node->name); break;
    case V_INSTANCE: snprintf(buf, sizeof buf, "an instance of %s", v->inst->def->name); break;
    case V_BUILTIN: return "a primitive";
    case V_INIT: return "an initializer";
    }
    return sup_arena_strndup(lc->arena, buf, strlen(buf));
}

/* ---- scopes ---------------------------------------------------------------------------- */

fe_scope *fe_scope_new(fe_lctx *lc, fe_scope *parent)
{
    fe_scope *s = SUP_NEW(lc->arena, fe_scope);
    s->parent = parent;
    return s;
}

fe_binding *fe_lookup(fe_scope *s, const char *name)
{
    for (; s; s = s->parent)
        for (fe_binding *b = s->first; b; b = b->next)
            if (!strcmp(b->name, name))
                return b;
    return NULL;
}

fe_binding *fe_lookup_here(fe_scope *s, const char *name)
{
    for (fe_binding *b = s->first; b; b = b->next)
        if (!strcmp(b->name, name))
            return b;
    return NULL;
}

void fe_bind(fe_lctx *lc, fe_scope *s, const char *name, fe_val v, dl_loc loc)
{
    fe_binding *b = fe_lookup_here(s, name);
    if (!b) {
        b = SUP_NEW(lc->arena, fe_binding);
        b->name = name;
        b->next = s->first;
        s->first = b;
    }
    b->v = v;
    b->loc = loc;
}

/* An "unknown name" error, with the nearest visible name as a suggestion. */
static fe_val unknown_name(fe_lctx *lc, fe_scope *s, const char *name, dl_loc loc)
{
    const char *cands[512];
    int n = 0;
    for (; s; s = s->parent)
        for (fe_binding *b = s->first; b && n < 512; b = b->next)
            cands[n++] = b->name;
    const char *near = fe_nearest(name, cands, n);
    if (near)
        return fe_err(lc, loc, "unknown name '%s' (did you mean '%s'?)", name, near);
    return fe_err(lc, loc, "unknown name '%s'", name);
}

/* ---- emitting IR ----------------------------------------------------------------------- */

dl_op *fe_emit(fe_lctx *lc, dl_opcode code, int nin, dl_value *const *in, int nattr,
               const dl_attr *attr, int nres, dl_loc loc)
{
    if (!lc->f) {
        fe_err(lc, loc, "tensor operations need a function to run in (inside a fn or a train block)");
        return NULL;
    }
    dl_type restype;
    dl_op *op = ir_op_create(lc->f, code, nin, in, nattr, attr, nres,
                             code == DL_OP_CONSTANT ? &restype : NULL, loc, lc->diag);
    if (!op)
        return NULL;
    op->checkpoint = lc->checkpoint;
    ir_op_append(lc->f, op);
    return op;
}

static dl_value *emit_constant(fe_lctx *lc, const dl_type *t, int n, double *vals, dl_loc loc)
{
    dl_attr a = {.name = "value", .kind = DL_ATTR_FLOATS, .n = n, .u.floats = vals};
    dl_op *op = ir_op_create(lc->f, DL_OP_CONSTANT, 0, NULL, 1, &a, 1, t, loc, lc->diag);
    if (!op)
        return NULL;
    op->checkpoint = lc->checkpoint;
    ir_op_append(lc->f, op);
    return &op->res[0];
}

/* The shape of nested lists of numbers (from the first element at each level), checked to be
 * rectangular; whether any element is a float or a bool; how many there are. */
static bool literal_check(fe_lctx *lc, const fe_val *v, const dl_type *t, int depth, bool *isfloat,
                          bool *isbool, int64_t *count, dl_loc loc)
{
    if (depth == t->rank) {
        if (!fe_is_number(v)) {
            fe_err(lc, loc, "a tensor literal holds numbers, not %s", fe_val_desc(lc, v));
            return false;
        }
        *isfloat |= v->k == V_FLOAT;
        *isbool |= v->k == V_BOOL;
        ++*count;
        return true;
    }
    if (v->k != V_LIST || v->n != t->dim[depth].c) {
        fe_err(lc, loc, "a tensor literal must be rectangular");
        return false;
    }
    for (int i = 0; i < v->n; i++)
        if (!literal_check(lc, &v->items[i], t, depth + 1, isfloat, isbool, count, loc))
            return false;
    return true;
}

static bool literal_shape(fe_lctx *lc, const fe_val *v, dl_type *t, bool *isfloat, bool *isbool,
                          int64_t *count, dl_loc loc)
{
    t->rank = 0;
    for (const fe_val *p = v; p->k == V_LIST; p = &p->items[0]) {
        if (t->rank == DL_MAX_RANK) {
            fe_err(lc, loc, "a tensor literal nests deeper than %d", DL_MAX_RANK);
            return false;
        }
        t->dim[t->rank++] = ir_dim_const(p->n);
        if (p->n == 0)
            break;
    }
    return literal_check(lc, v, t, 0, isfloat, isbool, count, loc);
}

static void literal_values(const fe_val *v, double *out, int64_t *k)
{
    if (v->k != V_LIST) {
        out[(*k)++] = fe_number(v);
        return;
    }
    for (int i = 0; i < v->n; i++)
        literal_values(&v->items[i], out, k);
}

dl_value *fe_as_tensor(fe_lctx *lc, fe_val v, int dtype, dl_loc loc)
{
    if (v.k == V_ERR)
        return NULL;
    if (v.k == V_TENSOR)
        return v.t;
    if (!lc->f) {
        fe_err(lc, loc, "tensor operations need a function to run in (inside a fn or a train block)");
        return NULL;
    }
    if (fe_is_number(&v)) {
        dl_type t = {.dtype = dtype >= 0 ? (dl_dtype)dtype : v.k == V_FLOAT ? DL_F32 :
                              v.k == V_BOOL ? DL_BOOL : DL_I64};
        double x = fe_number(&v);
        if (!ir_dtype_is_float(t.dtype) && v.k == V_FLOAT) {
            fe_err(lc, loc, "the float %g cannot be a %s", x, ir_dtype_name(t.dtype));
            return NULL;
        }
        return emit_constant(lc, &t, 1, &x, loc);
    }
    if (v.k == V_LIST) {
        dl_type t = {0};
        bool isfloat = false, isbool = false;
        int64_t count = 0;
        if (!literal_shape(lc, &v, &t, &isfloat, &isbool, &count, loc))
            return NULL;
        t.dtype = dtype >= 0 ? (dl_dtype)dtype : isfloat ? DL_F32 : isbool ? DL_BOOL : DL_I64;
        double *vals = SUP_NEWN(lc->arena, double, count ? count : 1);
        int64_t k = 0;
        literal_values(&v, vals, &k);
        return emit_constant(lc, &t, (int)count, vals, loc);
    }
    fe_err(lc, loc, "expected a tensor, got %s", fe_val_desc(lc, &v));
    return NULL;
}

/* ---- operators ------------------------------------------------------------------------- */

static fe_val dim_val(dl_dim d) { return d.n ? (fe_val){.k = V_DIM, .dim = d} : fe_int(d.c); }

static bool as_dim(const fe_val *v, dl_dim *d)
{
    if (v->k == V_INT)
        *d = ir_dim_const(v->i);
    else if (v->k == V_DIM)
        *d = v->dim;
    else
        return false;
    return true;
}

/* PyTorch's promotion of two tensor dtypes: bool < integers < floats, the wider within. */
static int category(dl_dtype t) { return t == DL_BOOL ? 0 : ir_dtype_is_int(t) ? 1 : 2; }

static dl_dtype promote(dl_dtype a, dl_dtype b)
{
    if (a == b)
        return a;
    int ca = category(a), cb = category(b);
    if (ca != cb)
        return ca > cb ? a : b;
    if (ca == 2)
        return a == DL_F64 || b == DL_F64 ? DL_F64 : DL_F32;   /* f16 with bf16: f32 */
    return a == DL_I64 || b == DL_I64 ? DL_I64 : DL_I32;       /* i8 with u8: i32 here */
}

static dl_value *cast_to(fe_lctx *lc, dl_value *v, dl_dtype t, dl_loc loc)
{
    if (!v || v->type.dtype == t)
        return v;
    dl_attr a = {.name = "dtype", .kind = DL_ATTR_DTYPE, .u.dt = t};
    dl_op *op = fe_emit(lc, DL_OP_CAST, 1, &v, 1, &a, 1, loc);
    return op ? &op->res[0] : NULL;
}

/* The dtype a binary op computes in. Python numbers take the tensor's dtype unless their kind
 * is higher (a float with an integer tensor gives f32), as in PyTorch. */
static dl_dtype operand_dtype(const fe_val *a, const fe_val *b)
{
    const fe_val *t = a->k == V_TENSOR ? a : b, *o = a->k == V_TENSOR ? b : a;
    dl_dtype dt = t->t->type.dtype;
    if (o->k == V_TENSOR)
        return promote(dt, o->t->type.dtype);
    if (o->k == V_FLOAT && !ir_dtype_is_float(dt))
        return DL_F32;
    if (o->k == V_INT && dt == DL_BOOL)
        return DL_I64;
    return dt;
}

static fe_val tensor_binary(fe_lctx *lc, fe_op op, fe_val a, fe_val b, dl_loc loc)
{
    /* Lists are tensor literals here. */
    if (a.k == V_LIST && (a = fe_tensor(fe_as_tensor(lc, a, -1, loc))).k == V_ERR)
        return a;
    if (b.k == V_LIST && (b = fe_tensor(fe_as_tensor(lc, b, -1, loc))).k == V_ERR)
        return b;
    if ((a.k != V_TENSOR && !fe_is_number(&a)) || (b.k != V_TENSOR && !fe_is_number(&b)))
        return fe_err(lc, loc, "'%s' is not defined for %s and %s", fe_op_text(op),
                      fe_val_desc(lc, &a), fe_val_desc(lc, &b));
    dl_dtype dt = operand_dtype(&a, &b);
    if ((op == FE_OP_DIV || (op == FE_OP_POW && (a.k == V_FLOAT || b.k == V_FLOAT))) &&
        !ir_dtype_is_float(dt))
        dt = DL_F32;
    if ((op == FE_OP_AND || op == FE_OP_OR))
        dt = DL_BOOL;
    dl_value *x = cast_to(lc, fe_as_tensor(lc, a, dt, loc), dt, loc);
    dl_value *y = cast_to(lc, fe_as_tensor(lc, b, dt, loc), dt, loc);
    if (!x || !y)
        return (fe_val){.k = V_ERR};
    static const dl_opcode codes[] = {
        [FE_OP_OR] = DL_OP_OR, [FE_OP_AND] = DL_OP_AND, [FE_OP_EQ] = DL_OP_EQ,
        [FE_OP_NE] = DL_OP_NE, [FE_OP_LT] = DL_OP_LT, [FE_OP_LE] = DL_OP_LE,
        [FE_OP_GT] = DL_OP_GT, [FE_OP_GE] = DL_OP_GE, [FE_OP_ADD] = DL_OP_ADD,
        [FE_OP_SUB] = DL_OP_SUB, [FE_OP_MUL] = DL_OP_MUL, [FE_OP_DIV] = DL_OP_DIV,
        [FE_OP_FLOORDIV] = DL_OP_FLOOR_DIV, [FE_OP_MOD] = DL_OP_MOD,
        [FE_OP_MATMUL] = DL_OP_MATMUL, [FE_OP_POW] = DL_OP_POW,
    };
    dl_op *o = fe_emit(lc, codes[op], 2, (dl_value *[]){x, y}, 0, NULL, 1, loc);
    return o ? fe_tensor(&o->res[0]) : (fe_val){.k = V_ERR};
}

static int64_t floordiv_i(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

/* Arithmetic on dimensions: products and exact quotients stay dimensions. */
static fe_val dim_binary(fe_lctx *lc, fe_op op, dl_dim a, dl_dim b, dl_loc loc)
{
    char sa[160], sb[160];
    ir_dim_str(a, sa, sizeof sa);
    ir_dim_str(b, sb, sizeof sb);
    dl_dim r;
    switch (op) {
    case FE_OP_MUL:
        if (!ir_dim_mul(a, b, &r))
            return fe_err(lc, loc, "%s * %s is too large or has more than 4 symbols", sa, sb);
        return dim_val(r);
    case FE_OP_FLOORDIV:
    case FE_OP_DIV:
        if (!ir_dim_div(a, b, &r))
            return fe_err(lc, loc, "%s / %s is not a whole dimension", sa, sb);
        return dim_val(r);
    case FE_OP_EQ:
    case FE_OP_NE:
        if (ir_dim_eq(a, b))
            return (fe_val){.k = V_BOOL, .i = op == FE_OP_EQ};
        break;
    default: break;
    }
    return fe_err(lc, loc, "'%s' of the dimensions %s and %s is not known at compile time "
                  "(dimensions are products of symbols)", fe_op_text(op), sa, sb);
}

static fe_val const_binary(fe_lctx *lc, fe_op op, fe_val a, fe_val b, dl_loc loc)
{
    if (a.k == V_STR && b.k == V_STR) {
        if (op == FE_OP_EQ || op == FE_OP_NE)
            return (fe_val){.k = V_BOOL, .i = (strcmp(a.s, b.s) == 0) == (op == FE_OP_EQ)};
        if (op == FE_OP_ADD) {
            char *s = sup_arena_printf(lc->arena, "%s%s", a.s, b.s);
            return (fe_val){.k = V_STR, .s = s};
        }
    }
    dl_dim da, db;
    if ((a.k == V_DIM || b.k == V_DIM) && as_dim(&a, &da) && as_dim(&b, &db))
        return dim_binary(lc, op, da, db, loc);
    if (!fe_is_number(&a) || !fe_is_number(&b))
        return fe_err(lc, loc, "'%s' is not defined for %s and %s", fe_op_text(op),
                      fe_val_desc(lc, &a), fe_val_desc(lc, &b));
    if (op == FE_OP_AND || op == FE_OP_OR) {
        if (a.k != V_BOOL || b.k != V_BOOL)
            return fe_err(lc, loc, "'%s' needs bools, got %s and %s", fe_op_text(op),
                          fe_val_desc(lc, &a), fe_val_desc(lc, &b));
        return (fe_val){.k = V_BOOL, .i = op == FE_OP_AND ? a.i && b.i : a.i || b.i};
    }
    double x = fe_number(&a), y = fe_number(&b);
    switch (op) {
    case FE_OP_EQ: return (fe_val){.k = V_BOOL, .i = x == y};
    case FE_OP_NE: return (fe_val){.k = V_BOOL, .i = x != y};
    case FE_OP_LT: return (fe_val){.k = V_BOOL, .i = x < y};
    case FE_OP_LE: return (fe_val){.k = V_BOOL, .i = x <= y};
    case FE_OP_GT: return (fe_val){.k = V_BOOL, .i = x > y};
    case FE_OP_GE: return (fe_val){.k = V_BOOL, .i = x >= y};
    case FE_OP_MATMUL: return fe_err(lc, loc, "'@' needs tensors");
    case FE_OP_DIV:
        if (y == 0)
            return fe_err(lc, loc, "division by zero");
        return (fe_val){.k = V_FLOAT, .f = x / y};       /* true division, as in Python 3 */
    default: break;
    }
    if (a.k != V_FLOAT && b.k != V_FLOAT) {
        int64_t i = a.i, j = b.i, r;
        switch (op) {
        case FE_OP_ADD:
            if (__builtin_add_overflow(i, j, &r))
                return fe_err(lc, loc, "integer overflow in %" PRId64 " + %" PRId64, i, j);
            return fe_int(r);
        case FE_OP_SUB:
            if (__builtin_sub_overflow(i, j, &r))
                return fe_err(lc, loc, "integer overflow in %" PRId64 " - %" PRId64, i, j);
            return fe_int(r);
        case FE_OP_MUL:
            if (__builtin_mul_overflow(i, j, &r))
                return fe_err(lc, loc, "integer overflow in %" PRId64 " * %" PRId64, i, j);
            return fe_int(r);
        case FE_OP_FLOORDIV:
        case FE_OP_MOD:
            if (j == 0)
                return fe_err(lc, loc, "division by zero");
            if (i == INT64_MIN && j == -1)
                return fe_err(lc, loc, "integer overflow");
            r = floordiv_i(i, j);
            return fe_int(op == FE_OP_FLOORDIV ? r : i - r * j);
        case FE_OP_POW:
            if (j >= 0) {
                int64_t acc = 1;
                for (int64_t e = 0; e < j; e++)
                    if (__builtin_mul_overflow(acc, i, &acc))
                        return fe_err(lc, loc, "integer overflow in %" PRId64 " ** %" PRId64, i, j);
                    else if (acc == 0 || acc == 1)
                        break;
                return fe_int(acc);
            }
            break;
        default: break;
        }
    }
    switch (op) {
    case FE_OP_ADD: return (fe_val){.k = V_FLOAT, .f = x + y};
    case FE_OP_SUB: return (fe_val){.k = V_FLOAT, .f = x - y};
    case FE_OP_MUL: return (fe_val){.k = V_FLOAT, .f = x * y};
    case FE_OP_POW: return (fe_val){.k = V_FLOAT, .f = pow(x, y)};
    case FE_OP_FLOORDIV:
        if (y == 0)
            return fe_err(lc, loc, "division by zero");
        return (fe_val){.k = V_FLOAT, .f = floor(x / y)};
    case FE_OP_MOD:
        if (y == 0)
            return fe_err(lc, loc, "division by zero");
        return (fe_val){.k = V_FLOAT, .f = x - floor(x / y) * y};
    default: return fe_err(lc, loc, "unsupported operator");
    }
}

static fe_val eval_binary(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val a = fe_eval(lc, e->a, s);
    /* && and || on compile-time bools short-circuit (so `training && x` can guard x). */
    if ((e->op == FE_OP_AND || e->op == FE_OP_OR) && a.k == V_BOOL &&
        (a.i != 0) == (e->op == FE_OP_OR))
        return a;
    fe_val b = fe_eval(lc, e->b, s);
    if (a.k == V_ERR || b.k == V_ERR)
        return (fe_val){.k = V_ERR};
    /* A list in arithmetic is a tensor literal. */
    if (a.k == V_TENSOR || b.k == V_TENSOR || a.k == V_LIST || b.k == V_LIST)
        return tensor_binary(lc, e->op, a, b, e->loc);
    return const_binary(lc, e->op, a, b, e->loc);
}

static fe_val eval_unary(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val a = fe_eval(lc, e->a, s);
    if (a.k == V_ERR)
        return a;
    if (a.k == V_TENSOR) {
        dl_opcode code = e->op == FE_OP_NEG ? DL_OP_NEG : DL_OP_NOT;
        dl_op *op = fe_emit(lc, code, 1, &a.t, 0, NULL, 1, e->loc);
        return op ? fe_tensor(&op->res[0]) : (fe_val){.k = V_ERR};
    }
    if (e->op == FE_OP_NOT) {
        if (a.k != V_BOOL)
            return fe_err(lc, e->loc, "'!' needs a bool, got %s", fe_val_desc(lc, &a));
        return (fe_val){.k = V_BOOL, .i = !a.i};
    }
    if (a.k == V_INT) {
        if (a.i == INT64_MIN)
            return fe_err(lc, e->loc, "integer overflow");
        return fe_int(-a.i);
    }
    if (a.k == V_FLOAT)
        return (fe_val){.k = V_FLOAT, .f = -a.f};
    if (a.k == V_DIM)
        return fe_err(lc, e->loc, "a dimension cannot be negated");
    return fe_err(lc, e->loc, "'-' is not defined for %s", fe_val_desc(lc, &a));
}

/* ---- indexing, fields, casts ----------------------------------------------------------- */

static bool eval_int_opt(fe_lctx *lc, const fe_ast *e, fe_scope *s, int64_t *out, bool *given)
{
    *given = e != NULL;
    if (!e)
        return true;
    fe_val v = fe_eval(lc, e, s);
    if (v.k == V_INT) {
        *out = v.i;
        return true;
    }
    if (v.k != V_ERR)
        fe_err(lc, e->loc, "a slice bound must be an int known at compile time, got %s",
               fe_val_desc(lc, &v));
    return false;
}

static dl_value *emit_slice(fe_lctx *lc, dl_value *x, int dim, int64_t start, bool has_end,
                            int64_t end, int64_t step, dl_loc loc)
{
    dl_attr a[4] = {{.name = "dim", .kind = DL_ATTR_INT, .u.i = dim},
                    {.name = "start", .kind = DL_ATTR_INT, .u.i = start},
                    {.name = "step", .kind = DL_ATTR_INT, .u.i = step},
                    {.name = "end", .kind = DL_ATTR_INT, .u.i = end}};
    dl_op *op = fe_emit(lc, DL_OP_SLICE, 1, &x, has_end ? 4 : 3, a, 1, loc);
    return op ? &op->res[0] : NULL;
}

/* x[i, a:b:c, ..., :]: one slice per sliced dimension, then one squeeze of the indexed ones. */
static fe_val index_tensor(fe_lctx *lc, dl_value *x, const fe_ast *e, fe_scope *s)
{
    int rank = x->type.rank, nitems = e->items.n, explicit = 0, ellipses = 0;
    for (int k = 0; k < nitems; k++)
        explicit += e->items.v[k]->kind != FE_ELLIPSIS, ellipses += e->items.v[k]->kind == FE_ELLIPSIS;
    if (ellipses > 1)
        return fe_err(lc, e->loc, "an index can have one '...' only");
    if (explicit > rank)
        return fe_err(lc, e->loc, "too many indices (%d) for %s", explicit, fe_val_desc(lc, &(fe_val){.k = V_TENSOR, .t = x}));
    int64_t squeeze[DL_MAX_RANK];
    int nsq = 0, d = 0;
    for (int k = 0; k < nitems && x; k++) {
        const fe_ast *it = e->items.v[k];
        if (it->kind == FE_ELLIPSIS) {
            d += rank - explicit;
            continue;
        }
        if (it->kind == FE_SLICE) {
            int64_t start = 0, end = 0, step = 1;
            bool has_start, has_end, has_step;
            if (!eval_int_opt(lc, it->a, s, &start, &has_start) ||
                !eval_int_opt(lc, it->b, s, &end, &has_end) ||
                !eval_int_opt(lc, it->c, s, &step, &has_step))
                return (fe_val){.k = V_ERR};
            if (start != 0 || has_end || step != 1)
                x = emit_slice(lc, x, d, start, has_end, end, step, it->loc);
            d++;
            continue;
        }
        fe_val iv = fe_eval(lc, it, s);
        if (iv.k == V_ERR)
            return iv;
        if (iv.k == V_TENSOR)
            return fe_err(lc, it->loc, "indexing with a tensor: use gather or index_select");
        if (iv.k != V_INT)
            return fe_err(lc, it->loc, "an index must be an int known at compile time, got %s",
                          fe_val_desc(lc, &iv));
        /* x[i] is x[i:i+1] squeezed; x[-1] is x[-1:] squeezed. */
        bool to_end = iv.i == -1;
        x = emit_slice(lc, x, d, iv.i, !to_end, iv.i + 1, 1, it->loc);
        if (x && x->type.dim[d].n == 0 && x->type.dim[d].c == 0)
            return fe_err(lc, it->loc, "index %" PRId64 " is out of range for dimension %d", iv.i, d);
        squeeze[nsq++] = d++;
    }
    if (!x)
        return (fe_val){.k = V_ERR};
    if (nsq) {
        dl_attr a = {.name = "dim", .kind = DL_ATTR_INTS, .n = nsq, .u.ints = squeeze};
        dl_op *op = fe_emit(lc, DL_OP_SQUEEZE, 1, &x, 1, &a, 1, e->loc);
        return op ? fe_tensor(&op->res[0]) : (fe_val){.k = V_ERR};
    }
    return fe_tensor(x);
}

static fe_val eval_index(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val base = fe_eval(lc, e->a, s);
    if (base.k == V_ERR)
        return base;
    if (base.k == V_TENSOR)
        return index_tensor(lc, base.t, e, s);
    if (base.k == V_LIST && e->items.n == 1 && e->items.v[0]->kind != FE_SLICE &&
        e->items.v[0]->kind != FE_ELLIPSIS) {
        fe_val iv = fe_eval(lc, e->items.v[0], s);
        if (iv.k == V_ERR)
            return iv;
        if (iv.k != V_INT)
            return fe_err(lc, e->loc, "a list index must be an int, got %s", fe_val_desc(lc, &iv));
        int64_t i = iv.i < 0 ? iv.i + base.n : iv.i;
        if (i < 0 || i >= base.n)
            return fe_err(lc, e->loc, "index %" PRId64 " is out of range for a list of %d", iv.i,
                          base.n);
        return base.items[i];
    }
    return fe_err(lc, e->loc, "%s cannot be indexed this way", fe_val_desc(lc, &base));
}

static fe_val eval_field(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val base = fe_eval(lc, e->a, s);
    if (base.k == V_ERR)
        return base;
    if (base.k == V_INSTANCE) {
        fe_binding *b = fe_lookup_here(base.inst->env, e->name);
        if (b)
            return b->v;
        const char *cands[256];
        int n = 0;
        for (fe_binding *m = base.inst->env->first; m && n < 256; m = m->next)
            cands[n++] = m->name;
        const char *near = fe_nearest(e->name, cands, n);
        return fe_err(lc, e->loc, "%s has no member '%s'%s%s%s", fe_val_desc(lc, &base), e->name,
                      near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    if (base.k == V_TENSOR) {
        const dl_type *t = &base.t->type;
        if (!strcmp(e->name, "T")) {
            if (t->rank < 2)
                return fe_err(lc, e->loc, ".T needs rank 2 or more, got %s", fe_val_desc(lc, &base));
            dl_attr a[2] = {{.name = "dim0", .kind = DL_ATTR_INT, .u.i = t->rank - 2},
                            {.name = "dim1", .kind = DL_ATTR_INT, .u.i = t->rank - 1}};
            dl_op *op = fe_emit(lc, DL_OP_TRANSPOSE, 1, &base.t, 2, a, 1, e->loc);
            return op ? fe_tensor(&op->res[0]) : (fe_val){.k = V_ERR};
        }
        if (!strcmp(e->name, "shape")) {
            fe_val l = {.k = V_LIST, .n = t->rank, .items = SUP_NEWN(lc->arena, fe_val, t->rank + 1)};
            for (int i = 0; i < t->rank; i++)
                l.items[i] = dim_val(t->dim[i]);
            return l;
        }
        if (!strcmp(e->name, "ndim"))
            return fe_int(t->rank);
        return fe_err(lc, e->loc, "a tensor has no field '%s' (T, shape and ndim)", e->name);
    }
    if (base.k == V_LIST && !strcmp(e->name, "len"))
        return fe_int(base.n);
    return fe_err(lc, e->loc, "%s has no field '%s'", fe_val_desc(lc, &base), e->name);
}

static fe_val eval_cast(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    dl_dtype t;
    if (!ir_dtype_parse(e->name, strlen(e->name), &t))
        return fe_err(lc, e->loc, "'%s' is not a dtype (f32, f16, bf16, f64, i8, u8, i32, i64, bool)",
                      e->name);
    fe_val v = fe_eval(lc, e->a, s);
    if (v.k == V_ERR)
        return v;
    dl_value *x = fe_as_tensor(lc, v, -1, e->loc);
    return fe_tensor(cast_to(lc, x, t, e->loc));
}

static fe_val eval_call(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val callee = fe_eval(lc, e->a, s);
    int n = e->items.n;
    fe_arg *args = SUP_NEWN(lc->arena, fe_arg, n + 1);
    bool bad = callee.k == V_ERR, named = false;
    for (int i = 0; i < n; i++) {
        const fe_ast *a = e->items.v[i];
        args[i] = (fe_arg){a->name, fe_eval(lc, a->a, s), a->loc};
        bad |= args[i].v.k == V_ERR;
        if (a->name)
            named = true;
        else if (named) {
            fe_err(lc, a->loc, "a positional argument after a named one");
            bad = true;
        }
        for (int j = 0; j < i; j++)
            if (a->name && args[j].name && !strcmp(a->name, args[j].name)) {
                fe_err(lc, a->loc, "argument '%s' is given twice", a->name);
                bad = true;
            }
    }
    if (bad)
        return (fe_val){.k = V_ERR};
    return fe_call(lc, callee, n, args, e->loc);
}

/* [Block(d); n]: n instances named path.0 ... path.(n-1). */
static fe_val eval_repeat(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    fe_val n = fe_eval(lc, e->b, s);
    if (n.k == V_ERR)
        return n;
    if (n.k != V_INT || n.i < 0 || n.i > 4096)
        return fe_err(lc, e->b->loc, "the count of an array of submodules must be an int from 0 to 4096, got %s",
                      fe_val_desc(lc, &n));
    if (!lc->member)
        return fe_err(lc, e->loc, "an array of submodules is a model member: name = [Model(...); n]");
    const char *path = lc->member;
    fe_val l = {.k = V_LIST, .n = (int)n.i, .items = SUP_NEWN(lc->arena, fe_val, n.i + 1)};
    for (int64_t i = 0; i < n.i; i++) {
        lc->member = sup_arena_printf(lc->arena, "%s.%" PRId64, path, i);
        l.items[i] = fe_eval(lc, e->a, s);
        if (l.items[i].k == V_ERR)
            break;
        if (l.items[i].k != V_INSTANCE) {
            lc->member = path;
            return fe_err(lc, e->a->loc, "an array of submodules repeats a model, got %s",
                          fe_val_desc(lc, &l.items[i]));
        }
    }
    lc->member = path;
    return l;
}

static fe_val eval_node(fe_lctx *lc, const fe_ast *e, fe_scope *s);

/* Expressions nest as deep as the source writes them (1+1+...+1 is a chain): bound the
 * recursion so a hostile file gets an error, not a stack overflow. */
fe_val fe_eval(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    if (lc->edepth >= 2000)
        return fe_err(lc, e->loc, "expression nests deeper than 2000");
    lc->edepth++;
    fe_val v = eval_node(lc, e, s);
    lc->edepth--;
    return v;
}

static fe_val eval_node(fe_lctx *lc, const fe_ast *e, fe_scope *s)
{
    switch (e->kind) {
    case FE_INT: return fe_int(e->i);
    case FE_FLOAT: return (fe_val){.k = V_FLOAT, .f = e->f};
    case FE_BOOL: return (fe_val){.k = V_BOOL, .i = e->i};
    case FE_STR: return (fe_val){.k = V_STR, .s = e->name};
    case FE_TRAINING: return (fe_val){.k = V_BOOL, .i = lc->training};
    case FE_NAME:
    case FE_MODEL: {
        const char *name = e->kind == FE_MODEL ? "model" : e->name;
        fe_binding *b = fe_lookup(s, name);
        if (!b) {
            if (e->kind == FE_MODEL)
                return fe_err(lc, e->loc, "'model' names the trained model inside a train block only");
            return unknown_name(lc, s, name, e->loc);
        }
        return b->v;
    }
    case FE_LIST: {
        if (e->items.n > MAX_LIST)
            return fe_err(lc, e->loc, "a list literal of more than %d elements", MAX_LIST);
        fe_val l = {.k = V_LIST, .n = e->items.n, .items = SUP_NEWN(lc->arena, fe_val, e->items.n + 1)};
        for (int i = 0; i < e->items.n; i++)
            if ((l.items[i] = fe_eval(lc, e->items.v[i], s)).k == V_ERR)
                return l.items[i];
        return l;
    }
    case FE_REPEAT: return eval_repeat(lc, e, s);
    case FE_UNARY: return eval_unary(lc, e, s);
    case FE_BINARY: return eval_binary(lc, e, s);
    case FE_CALL: return eval_call(lc, e, s);
    case FE_INDEX: return eval_index(lc, e, s);
    case FE_FIELD: return eval_field(lc, e, s);
    case FE_CAST: return eval_cast(lc, e, s);
    default: return fe_err(lc, e->loc, "%s is not an expression", fe_kind_name(e->kind));
    }
}

/* ---- types and arguments --------------------------------------------------------------- */

static bool is_kind(const char *n)
{
    return !strcmp(n, "int") || !strcmp(n, "float") || !strcmp(n, "bool") || !strcmp(n, "str");
}

/* Checks (and converts) `v` against the annotation `ty`, binding unbound dimension names of the
 * annotation in `s`. `what` names the argument in messages; `at` is where the value came from. */
static bool check_type(fe_lctx *lc, const fe_ast *ty, fe_val *v, fe_scope *s, const char *what,
                       dl_loc at)
{
    if (v->k == V_ERR)
        return false;
    const char *n = ty->name;
    /* `bool` alone is a hyperparameter kind; bool[...] a tensor type. */
    if (is_kind(n) && !(ty->items.n && !strcmp(n, "bool"))) {
        if (ty->items.n) {
            fe_err(lc, ty->loc, "'%s' takes no dimensions", n);
            return false;
        }
        bool ok = (!strcmp(n, "int") && (v->k == V_INT || v->k == V_DIM)) ||
                  (!strcmp(n, "float") && (v->k == V_INT || v->k == V_FLOAT)) ||
                  (!strcmp(n, "bool") && v->k == V_BOOL) || (!strcmp(n, "str") && v->k == V_STR);
        if (!ok) {
            fe_err(lc, at, "%s must be %s %s, got %s", what, n[0] == 'i' ? "an" : "a", n,
                   fe_val_desc(lc, v));
            return false;
        }
        if (!strcmp(n, "float") && v->k == V_INT)
            *v = (fe_val){.k = V_FLOAT, .f = (double)v->i};
        return true;
    }
    dl_dtype dt;
    if (!ir_dtype_parse(n, strlen(n), &dt)) {
        fe_err(lc, ty->loc, "unknown type '%s' (a dtype such as f32, or int, float, bool, str)", n);
        return false;
    }
    if (v->k != V_TENSOR) {
        dl_value *t = fe_as_tensor(lc, *v, dt, at);
        if (!t)
            return false;
        *v = fe_tensor(t);
    }
    const dl_type *t = &v->t->type;
    char have[256];
    ir_type_str(t, have, sizeof have);
    if (t->dtype != dt) {
        fe_err(lc, at, "%s must have dtype %s, got %s", what, n, have);
        return false;
    }
    int nd = ty->items.n, ell = -1;
    for (int i = 0; i < nd; i++)
        if (ty->items.v[i]->kind == FE_ELLIPSIS) {
            if (ell >= 0) {
                fe_err(lc, ty->items.v[i]->loc, "a type can have one '...' only");
                return false;
            }
            ell = i;
        }
    int explicit = nd - (ell >= 0);
    if (ell < 0 ? t->rank != explicit : t->rank < explicit) {
        fe_err(lc, at, "%s must have rank %s%d, got %s", what, ell >= 0 ? "at least " : "",
               explicit, have);
        return false;
    }
    for (int i = 0; i < nd; i++) {
        if (i == ell)
            continue;
        const fe_ast *de = ty->items.v[i];
        int d = ell >= 0 && i > ell ? t->rank - (nd - i) : i;
        dl_dim actual = t->dim[d];
        fe_binding *b = de->kind == FE_NAME ? fe_lookup(s, de->name) : NULL;
        if (de->kind == FE_NAME && !b) {
            fe_bind(lc, s, de->name, dim_val(actual), at);
            fe_lookup(s, de->name)->from_type = true;
            continue;
        }
        fe_val want = fe_eval(lc, de, s);
        dl_dim wd;
        if (want.k == V_ERR)
            return false;
        if (!as_dim(&want, &wd)) {
            fe_err(lc, de->loc, "a dimension must be an int or a dimension name, got %s",
                   fe_val_desc(lc, &want));
            return false;
        }
        if (!ir_dim_eq(wd, actual)) {
            char a[160], w[160];
            ir_dim_str(actual, a, sizeof a);
            ir_dim_str(wd, w, sizeof w);
            fe_err(lc, at, "%s has type %s, but dimension %d is %s where the type says %s", what,
                   have, d, a, w);
            if (b && b->from_type)
                fe_note(lc, b->loc, "%s was bound to %s here", de->name, w);
            else
                fe_note(lc, de->loc, "the type is declared here");
            return false;
        }
    }
    return true;
}

/* Binds arguments to the PARAMDEFs of a function or model, Python style. */
static bool bind_params(fe_lctx *lc, const fe_list *params, fe_scope *s, int nargs, fe_arg *args,
                        dl_loc loc, const char *callee)
{
    int npos = 0;
    while (npos < nargs && !args[npos].name)
        npos++;
    if (npos > params->n) {
        fe_err(lc, args[params->n].loc, "%s takes %d argument%s, got %d", callee, params->n,
               params->n == 1 ? "" : "s", npos);
        return false;
    }
    bool ok = true;
    for (int i = npos; i < nargs; i++) {
        bool found = false;
        for (int p = 0; p < params->n; p++)
            if (!strcmp(params->v[p]->name, args[i].name)) {
                found = true;
                if (p < npos) {
                    fe_err(lc, args[i].loc, "argument '%s' of %s is given twice", args[i].name, callee);
                    ok = false;
                }
            }
        if (!found) {
            const char *cands[64];
            int n = 0;
            for (int p = 0; p < params->n && n < 64; p++)
                cands[n++] = params->v[p]->name;
            const char *near = fe_nearest(args[i].name, cands, n);
            fe_err(lc, args[i].loc, "%s has no parameter '%s'%s%s%s", callee, args[i].name,
                   near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
            ok = false;
        }
    }
    if (!ok)
        return false;
    for (int p = 0; p < params->n; p++) {
        const fe_ast *pd = params->v[p];
        fe_val v = {.k = V_NONE};
        dl_loc at = loc;
        bool given = false;
        if (p < npos) {
            v = args[p].v, at = args[p].loc, given = true;
        } else
            for (int i = npos; i < nargs; i++)
                if (!strcmp(args[i].name, pd->name))
                    v = args[i].v, at = args[i].loc, given = true;
        if (!given) {
            if (!pd->b) {
                fe_err(lc, loc, "%s needs argument '%s'", callee, pd->name);
                fe_note(lc, pd->loc, "'%s' is declared here", pd->name);
                return false;
            }
            v = fe_eval(lc, pd->b, s);
            at = pd->b->loc;
        }
        char what[128];
        snprintf(what, sizeof what, "argument '%s' of %s", pd->name, callee);
        if (v.k == V_ERR || (pd->a && !check_type(lc, pd->a, &v, s, what, at)))
            return false;
        fe_bind(lc, s, pd->name, v, at);
    }
    return true;
}

/* ---- statements and functions ---------------------------------------------------------- */

typedef struct frame {
    fe_val result;
    bool   returned;
} frame;

static bool exec_block(fe_lctx *lc, const fe_ast *block, fe_scope *s, frame *fr);

static bool exec_update(fe_lctx *lc, const fe_ast *st, fe_scope *s)
{
    fe_binding *b = fe_lookup(s, st->name);
    if (!b) {
        unknown_name(lc, s, st->name, st->loc);
        return false;
    }
    dl_value *buf = b->v.k == V_TENSOR ? b->v.t : NULL;
    if (!buf || buf->def || !lc->f || buf->index >= lc->f->nargs || lc->f->args[buf->index] != buf ||
        lc->f->arginfo[buf->index].role != DL_ROLE_BUFFER) {
        fe_err(lc, st->loc, "':=' updates a buffer, and '%s' is not one", st->name);
        return false;
    }
    if (!lc->training) {
        fe_err(lc, st->loc, "buffer '%s' can only be updated where 'training' is true (guard it with 'if training')",
               st->name);
        return false;
    }
    fe_val v = fe_eval(lc, st->a, s);
    dl_value *x = fe_as_tensor(lc, v, buf->type.dtype, st->a->loc);
    x = cast_to(lc, x, buf->type.dtype, st->loc);
    if (!x)
        return false;
    return fe_emit(lc, DL_OP_ASSIGN, 2, (dl_value *[]){buf, x}, 0, NULL, 0, st->loc) != NULL;
}

static bool exec_for(fe_lctx *lc, const fe_ast *st, fe_scope *s, frame *fr)
{
    if (st->a->kind == FE_RANGE) {
        fe_val lo = fe_eval(lc, st->a->a, s), hi = fe_eval(lc, st->a->b, s);
        if (lo.k == V_ERR || hi.k == V_ERR)
            return false;
        if (lo.k != V_INT || hi.k != V_INT) {
            fe_err(lc, st->a->loc, "a range needs ints known at compile time");
            return false;
        }
        if (hi.i - lo.i > 100000) {
            fe_err(lc, st->a->loc, "a compile-time loop of more than 100000 iterations");
            return false;
        }
        for (int64_t i = lo.i; i < hi.i && !fr->returned; i++) {
            fe_bind(lc, s, st->name, fe_int(i), st->loc);
            if (!exec_block(lc, st->b, s, fr))
                return false;
        }
        return true;
    }
    fe_val l = fe_eval(lc, st->a, s);
    if (l.k == V_ERR)
        return false;
    if (l.k != V_LIST) {
        fe_err(lc, st->a->loc, "'for' runs over a range a..b or a list, not %s", fe_val_desc(lc, &l));
        return false;
    }
    for (int i = 0; i < l.n && !fr->returned; i++) {
        fe_bind(lc, s, st->name, l.items[i], st->loc);
        if (!exec_block(lc, st->b, s, fr))
            return false;
    }
    return true;
}

static bool exec_stmt(fe_lctx *lc, const fe_ast *st, fe_scope *s, frame *fr)
{
    switch (st->kind) {
    case FE_ASSIGN: {
        fe_val v = fe_eval(lc, st->a, s);
        if (v.k == V_ERR)
            return false;
        if (st->items.n == 1) {
            fe_bind(lc, s, st->items.v[0]->name, v, st->items.v[0]->loc);
            return true;
        }
        if (v.k != V_LIST || v.n != st->items.n) {
            fe_err(lc, st->loc, "%d names to unpack, but the value is %s", st->items.n,
                   fe_val_desc(lc, &v));
            return false;
        }
        for (int i = 0; i < v.n; i++)
            fe_bind(lc, s, st->items.v[i]->name, v.items[i], st->items.v[i]->loc);
        return true;
    }
    case FE_UPDATE: return exec_update(lc, st, s);
    case FE_RETURN: {
        fe_val r = {.k = V_NONE};
        if (st->items.n == 1)
            r = fe_eval(lc, st->items.v[0], s);
        else if (st->items.n > 1) {
            r = (fe_val){.k = V_LIST, .n = st->items.n,
                         .items = SUP_NEWN(lc->arena, fe_val, st->items.n)};
            for (int i = 0; i < st->items.n; i++)
                if ((r.items[i] = fe_eval(lc, st->items.v[i], s)).k == V_ERR)
                    return false;
        }
        if (r.k == V_ERR)
            return false;
        fr->result = r;
        fr->returned = true;
        return true;
    }
    case FE_IF: {
        fe_val c = fe_eval(lc, st->a, s);
        if (c.k == V_ERR)
            return false;
        if (c.k != V_BOOL) {
            fe_err(lc, st->a->loc, "an 'if' condition must be a bool known at compile time, got %s%s",
                   fe_val_desc(lc, &c), c.k == V_TENSOR ? " (for a tensor, use where())" : "");
            return false;
        }
        if (c.i)
            return exec_block(lc, st->b, s, fr);
        if (!st->c)
            return true;
        return st->c->kind == FE_IF ? exec_stmt(lc, st->c, s, fr) : exec_block(lc, st->c, s, fr);
    }
    case FE_FOR: return exec_for(lc, st, s, fr);
    case FE_CHECKPOINT: {
        int saved = lc->checkpoint;
        lc->checkpoint = ++lc->nregions;
        bool ok = exec_block(lc, st->a, s, fr);
        lc->checkpoint = saved;
        return ok;
    }
    case FE_EXPR: return fe_eval(lc, st->a, s).k != V_ERR;
    default: fe_err(lc, st->loc, "%s is not a statement", fe_kind_name(st->kind)); return false;
    }
}

/* Runs every statement; an erroneous one is reported and the next runs, as long as the names it
 * bound are not needed (they are left as errors). */
static bool exec_block(fe_lctx *lc, const fe_ast *block, fe_scope *s, frame *fr)
{
    bool ok = true;
    for (int i = 0; i < block->items.n && !fr->returned; i++) {
        const fe_ast *st = block->items.v[i];
        if (!exec_stmt(lc, st, s, fr)) {
            ok = false;
            for (int k = 0; st->kind == FE_ASSIGN && k < st->items.n; k++)
                fe_bind(lc, s, st->items.v[k]->name, (fe_val){.k = V_ERR}, st->loc);
            if (st->kind == FE_RETURN || st->kind == FE_IF || st->kind == FE_FOR)
                break;
        }
    }
    return ok;
}

fe_val fe_call_fn(fe_lctx *lc, const fe_ast *fn, fe_scope *env, int nargs, fe_arg *args,
                  dl_loc loc)
{
    if (lc->depth >= MAX_DEPTH)
        return fe_err(lc, loc, "calls nest deeper than %d (a recursive function?)", MAX_DEPTH);
    fe_scope *s = fe_scope_new(lc, env);
    char callee[160];
    snprintf(callee, sizeof callee, "'%s'", fn->name);
    if (!bind_params(lc, &fn->items, s, nargs, args, loc, callee))
        return (fe_val){.k = V_ERR};
    const char *member = lc->member;
    lc->member = NULL;
    lc->depth++;
    frame fr = {.result = {.k = V_NONE}};
    bool ok = exec_block(lc, fn->a, s, &fr);
    lc->depth--;
    lc->member = member;
    if (!ok)
        return (fe_val){.k = V_ERR};
    int nret = fn->list2.n;
    if (nret) {
        int got = fr.result.k == V_NONE ? 0 : fr.result.k == V_LIST && nret > 1 ? fr.result.n : 1;
        if (got != nret)
            return fe_err(lc, fn->loc, "'%s' returns %d value%s but its signature says %d", fn->name,
                          got, got == 1 ? "" : "s", nret);
        for (int i = 0; i < nret; i++) {
            fe_val *v = nret == 1 ? &fr.result : &fr.result.items[i];
            char what[160];
            snprintf(what, sizeof what, "result %d of '%s'", i, fn->name);
            if (!check_type(lc, fn->list2.v[i], v, s, what, fn->loc))
                return (fe_val){.k = V_ERR};
        }
    }
    return fr.result;
}

/* ---- models ---------------------------------------------------------------------------- */

static const char *const init_names[] = {"zeros", "ones", "full", "uniform", "normal",
                                         "kaiming_uniform", "xavier_uniform", "trunc_normal"};
static const char *const init_params[] = {"", "", "value", "lo hi", "mean std", "fan_in",
                                          "fan_in fan_out", "std"};
enum { NINITS = sizeof init_names / sizeof *init_names };

/* An initializer is a call of one of init_names with numbers for its parameters. Its canonical
 * text ("uniform(-0.125, 0.125)", the arguments evaluated) goes to *text for the IR. */
static bool check_init(fe_lctx *lc, const fe_ast *init, fe_scope *env, const char **text)
{
    if (init->kind != FE_CALL || init->a->kind != FE_NAME) {
        fe_err(lc, init->loc, "a parameter is initialised by a call such as zeros() or normal(0, 0.02)");
        return false;
    }
    fe_val f = fe_eval(lc, init->a, env);
    if (f.k == V_ERR)
        return false;
    if (f.k != V_INIT) {
        const char *near = fe_nearest(init->a->name, init_names, NINITS);
        fe_err(lc, init->a->loc, "'%s' is not an initializer%s%s%s", init->a->name,
               near ? " (did you mean '" : " (zeros, ones, full, uniform, normal, kaiming_uniform, xavier_uniform, trunc_normal",
               near ? near : "", near ? "'?)" : ")");
        return false;
    }
    /* Bind the arguments like a function's, to check their number, names and kinds. */
    fe_list params = {0};
    char *names = sup_arena_strndup(lc->arena, init_params[f.i], strlen(init_params[f.i]));
    for (char *p = strtok(names, " "); p; p = strtok(NULL, " ")) {
        fe_ast *pd = fe_ast_new(lc->arena, FE_PARAMDEF, init->loc);
        pd->name = p;
        pd->a = fe_ast_new(lc->arena, FE_TYPE, init->loc);
        pd->a->name = "float";
        fe_list_push(lc->arena, &params, pd);
    }
    fe_arg *args = SUP_NEWN(lc->arena, fe_arg, init->items.n + 1);
    for (int i = 0; i < init->items.n; i++) {
        args[i] = (fe_arg){init->items.v[i]->name, fe_eval(lc, init->items.v[i]->a, env),
                           init->items.v[i]->loc};
        if (args[i].v.k == V_DIM)
            args[i].v = fe_int(1);   /* a symbolic fan-in: checked for kind only */
    }
    char callee[64];
    snprintf(callee, sizeof callee, "'%s'", init_names[f.i]);
    fe_scope *s = fe_scope_new(lc, env);
    if (!bind_params(lc, &params, s, init->items.n, args, init->loc, callee))
        return false;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s(", init_names[f.i]);
    for (int i = 0; i < params.n; i++) {
        fe_val v = fe_lookup(s, params.v[i]->name)->v;
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%.9g", i ? ", " : "", v.f);
    }
    snprintf(buf + n, sizeof buf - (size_t)n, ")");
    *text = ir_intern(lc->m, buf, strlen(buf));
    return true;
}

static dl_type *member_type(fe_lctx *lc, const fe_ast *ty, fe_scope *env, dl_type *t)
{
    if (!ir_dtype_parse(ty->name, strlen(ty->name), &t->dtype)) {
        fe_err(lc, ty->loc, "a parameter's type is a dtype with dimensions, not '%s'", ty->name);
        return NULL;
    }
    if (ty->items.n > DL_MAX_RANK) {
        fe_err(lc, ty->loc, "rank above the limit of %d", DL_MAX_RANK);
        return NULL;
    }
    t->rank = ty->items.n;
    for (int i = 0; i < ty->items.n; i++) {
        const fe_ast *de = ty->items.v[i];
        if (de->kind == FE_ELLIPSIS) {
            fe_err(lc, de->loc, "a parameter has a definite shape: no '...'");
            return NULL;
        }
        fe_val v = fe_eval(lc, de, env);
        if (v.k == V_ERR)
            return NULL;
        if (v.k != V_INT || v.i < 0 || v.i > IR_MAX_DIM) {
            fe_err(lc, de->loc, "a parameter's dimension must be a non-negative int known when the model is built, got %s",
                   fe_val_desc(lc, &v));
            return NULL;
        }
        t->dim[i] = ir_dim_const(v.i);
    }
    return t;
}

static const char *join_path(fe_lctx *lc, const char *path, const char *name)
{
    return *path ? sup_arena_printf(lc->arena, "%s.%s", path, name) : name;
}

/* The members of a model, in order; `if` chooses members at compile time. */
static bool add_members(fe_lctx *lc, fe_inst *inst, const fe_list *members)
{
    bool ok = true;
    const char *path = inst->path;
    for (int i = 0; i < members->n; i++) {
        const fe_ast *m = members->v[i];
        if (m->kind == FE_IF) {
            fe_val c = fe_eval(lc, m->a, inst->env);
            if (c.k != V_BOOL) {
                if (c.k != V_ERR)
                    fe_err(lc, m->a->loc, "an 'if' among members needs a bool known when the model is built, got %s",
                           fe_val_desc(lc, &c));
                ok = false;
                continue;
            }
            const fe_ast *branch = c.i ? m->b : m->c;
            if (branch)
                ok &= branch->kind == FE_IF ? add_members(lc, inst, &(fe_list){(fe_ast **)&branch, 1, 1})
                                            : add_members(lc, inst, &branch->items);
            continue;
        }
        if (fe_lookup_here(inst->env, m->name)) {
            fe_err(lc, m->loc, "model '%s' has two members named '%s'", inst->def->name, m->name);
            ok = false;
            continue;
        }
        fe_val v = {.k = V_ERR};
        if (m->kind == FE_PARAM || m->kind == FE_BUFFER) {
            dl_type t;
            const char *init;
            if (member_type(lc, m->a, inst->env, &t) && check_init(lc, m->b, inst->env, &init)) {
                const char *p = join_path(lc, path, m->name);
                dl_role role = m->kind == FE_PARAM && !lc->frozen_file ? DL_ROLE_PARAM : DL_ROLE_BUFFER;
                v = fe_tensor(ir_func_add_arg(lc->f, p, role, p, &t));
                if (lc->frozen_file)
                    init = sup_arena_printf(lc->arena, "load(\"%s\", \"%s\")", lc->frozen_file,
                                            p + strlen(lc->frozen_root) + 1);
                lc->f->arginfo[lc->f->nargs - 1].init = ir_intern(lc->m, init, strlen(init));
            }
        } else if (m->kind == FE_MEMBER) {
            const char *saved = lc->member;
            lc->member = join_path(lc, path, m->name);
            v = fe_eval(lc, m->a, inst->env);
            lc->member = saved;
        } else if (m->kind == FE_FN) {
            v = (fe_val){.k = V_FN, .node = m, .env = inst->env, .inst = inst};
        }
        ok &= v.k != V_ERR;
        fe_bind(lc, inst->env, m->name, v, m->loc);
    }
    return ok;
}

fe_val fe_instantiate(fe_lctx *lc, const fe_ast *def, fe_scope *env, int nargs, fe_arg *args,
                      const char *path, dl_loc loc)
{
    if (!lc->f)
        return fe_err(lc, loc, "a model is built inside a train block or as a member of another model");
    if (lc->depth >= MAX_DEPTH)
        return fe_err(lc, loc, "models nest deeper than %d (a model that contains itself?)", MAX_DEPTH);
    fe_inst *inst = SUP_NEW(lc->arena, fe_inst);
    inst->def = def;
    inst->path = path;
    inst->env = fe_scope_new(lc, env);
    char callee[160];
    snprintf(callee, sizeof callee, "model '%s'", def->name);
    if (!bind_params(lc, &def->items, inst->env, nargs, args, loc, callee))
        return (fe_val){.k = V_ERR};
    /* Hyperparameters are visible to the members but are not members themselves. */
    inst->env = fe_scope_new(lc, inst->env);
    lc->depth++;
    bool ok = add_members(lc, inst, &def->list2);
    lc->depth--;
    if (!ok)
        return (fe_val){.k = V_ERR};
    return (fe_val){.k = V_INSTANCE, .inst = inst};
}

fe_val fe_call(fe_lctx *lc, fe_val callee, int nargs, fe_arg *args, dl_loc loc)
{
    switch (callee.k) {
    case V_ERR: return callee;
    case V_BUILTIN: return fe_call_builtin(lc, (int)callee.i, nargs, args, loc);
    case V_FN: return fe_call_fn(lc, callee.node, callee.env, nargs, args, loc);
    case V_MODELDEF: {
        if (!lc->member && !lc->root_ok)
            return fe_err(lc, loc, "a model is built as a member (name = %s(...)) or by a train block",
                          callee.node->name);
        const char *path = lc->member ? lc->member : "";
        /* One model per member path, and only the outermost call is the root. */
        lc->member = NULL;
        lc->root_ok = false;
        fe_val v = fe_instantiate(lc, callee.node, callee.env, nargs, args, path, loc);
        lc->member = *path ? path : NULL;
        return v;
    }
    case V_INSTANCE: {
        fe_binding *fwd = fe_lookup_here(callee.inst->env, "forward");
        if (!fwd || fwd->v.k != V_FN)
            return fe_err(lc, loc, "model '%s' has no forward function to call",
                          callee.inst->def->name);
        bool memo = callee.inst == lc->memo_inst && nargs == 1 && !args[0].name &&
                    args[0].v.k == V_TENSOR;
        if (memo && lc->memo_arg == args[0].v.t)
            return lc->memo_result;
        fe_val r = fe_call_fn(lc, fwd->v.node, fwd->v.env, nargs, args, loc);
        if (memo && r.k != V_ERR) {
            lc->memo_arg = args[0].v.t;
            lc->memo_result = r;
        }
        return r;
    }
    case V_INIT:
        return fe_err(lc, loc, "initializers such as '%s' are for param and buffer declarations",
                      init_names[callee.i]);
    default: return fe_err(lc, loc, "%s is not callable", fe_val_desc(lc, &callee));
    }
}

/* ---- entry points ---------------------------------------------------------------------- */

void fe_begin_function(fe_lctx *lc, const char *name, dl_loc loc)
{
    lc->f = ir_func_create(lc->m, name, loc);
    lc->rng = NULL;
    lc->nstreams = 0;
    lc->nregions = 0;
    lc->checkpoint = 0;
}

bool fe_is_concrete(const fe_ast *fn)
{
    for (int i = 0; i < fn->items.n; i++) {
        const fe_ast *ty = fn->items.v[i]->a;
        if (!ty || (is_kind(ty->name) && !(ty->items.n && !strcmp(ty->name, "bool"))))
            return false;
        for (int k = 0; k < ty->items.n; k++)
            if (ty->items.v[k]->kind == FE_ELLIPSIS)
                return false;
    }
    return true;
}

bool fe_finish(fe_lctx *lc, int n, const fe_val *results, const dl_role *roles, dl_loc loc)
{
    dl_value **vals = SUP_NEWN(lc->arena, dl_value *, n + 1);
    dl_result_info *info = SUP_NEWN(lc->arena, dl_result_info, n + 1);
    for (int i = 0; i < n; i++) {
        vals[i] = fe_as_tensor(lc, results[i], -1, loc);
        if (!vals[i])
            return false;
        info[i] = (dl_result_info){vals[i]->type, roles ? roles[i] : DL_ROLE_OUTPUT};
    }
    if (!fe_emit(lc, DL_OP_RETURN, n, vals, 0, NULL, 0, loc))
        return false;
    ir_func_set_results(lc->f, n, info);
    return true;
}

bool fe_lower_entry(fe_lctx *lc, const fe_ast *fn, fe_scope *env)
{
    int n = fn->items.n;
    fe_arg *args = SUP_NEWN(lc->arena, fe_arg, n + 1);
    fe_scope *dims = fe_scope_new(lc, env);
    for (int i = 0; i < n; i++) {
        const fe_ast *pd = fn->items.v[i], *ty = pd->a;
        dl_type t = {0};
        if (!ir_dtype_parse(ty->name, strlen(ty->name), &t.dtype)) {
            fe_err(lc, ty->loc, "unknown type '%s'", ty->name);
            return false;
        }
        if (ty->items.n > DL_MAX_RANK) {
            fe_err(lc, ty->loc, "rank above the limit of %d", DL_MAX_RANK);
            return false;
        }
        t.rank = ty->items.n;
        for (int k = 0; k < ty->items.n; k++) {
            const fe_ast *de = ty->items.v[k];
            /* An unbound name is a symbol of the entry point; the rest must evaluate. */
            if (de->kind == FE_NAME && !fe_lookup(dims, de->name)) {
                t.dim[k] = ir_dim_sym(ir_intern(lc->m, de->name, strlen(de->name)));
                continue;
            }
            fe_val v = fe_eval(lc, de, dims);
            if (v.k == V_ERR || !as_dim(&v, &t.dim[k]) || t.dim[k].c < 0) {
                if (v.k != V_ERR)
                    fe_err(lc, de->loc, "a dimension must be an int or a name, got %s", fe_val_desc(lc, &v));
                return false;
            }
        }
        dl_value *arg = ir_func_add_arg(lc->f, pd->name, DL_ROLE_INPUT, NULL, &t);
        args[i] = (fe_arg){NULL, fe_tensor(arg), pd->loc};
    }
    fe_val r = fe_call_fn(lc, fn, env, n, args, fn->loc);
    if (r.k == V_ERR)
        return false;
    if (r.k == V_NONE)
        return fe_finish(lc, 0, NULL, NULL, fn->loc);
    if (r.k == V_LIST && fn->list2.n > 1)
        return fe_finish(lc, r.n, r.items, NULL, fn->loc);
    return fe_finish(lc, 1, &r, NULL, fn->loc);
}

/* ---- the outermost scope ----------------------------------------------------------------- */

void fe_bind_builtins(fe_lctx *lc, fe_scope *s)
{
    static const char *const dtypes[] = {"f32", "f16", "bf16", "f64", "i8", "u8", "i32", "i64", "bool"};
    for (size_t i = 0; i < sizeof dtypes / sizeof *dtypes; i++)
        fe_bind(lc, s, dtypes[i], (fe_val){.k = V_STR, .s = dtypes[i]}, (dl_loc){0});
    for (int i = 0; i < NINITS; i++)
        fe_bind(lc, s, init_names[i], (fe_val){.k = V_INIT, .i = i}, (dl_loc){0});
    for (int b = 0;; b++) {
        const char *name = fe_builtin_name(b);
        if (!name)
            break;
        fe_bind(lc, s, name, (fe_val){.k = V_BUILTIN, .i = b}, (dl_loc){0});
    }
}
