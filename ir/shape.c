/* Shape inference: one rule per family of ops (named in ir/ops.def). A rule reads the operand
 * types and attributes and writes the result types, or a message that names the shapes involved.
 * Semantics follow PyTorch; where dlc is stricter (no implicit dtype promotion, symbolic
 * dimensions that must stay products) the message says what to do. */
#include "ir/ir.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct rule_ctx {
    dl_opcode             code;
    const char           *name;
    int                   nin;
    const dl_type *const *in;
    int                   nattr;
    const dl_attr        *attr;
    dl_type              *out;
    int                  *nres;
    char                 *err;
    size_t                errlen;
    char                  tbuf[4][160];
    int                   tnext;
} rule_ctx;

static bool fail(rule_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(rule_ctx *c, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "'%s': ", c->name);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < c->errlen)
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

/* A type as text for a message; four can be live at once. */
static const char *T(rule_ctx *c, const dl_type *t)
{
    char *b = c->tbuf[c->tnext++ & 3];
    ir_type_str(t, b, sizeof c->tbuf[0]);
    return b;
}

static const char *D(rule_ctx *c, dl_dim d)
{
    char *b = c->tbuf[c->tnext++ & 3];
    ir_dim_str(d, b, sizeof c->tbuf[0]);
    return b;
}

#define AINT(name)   ir_attr_int(c->nattr, c->attr, c->code, (name))
#define AFLOAT(name) ir_attr_float(c->nattr, c->attr, c->code, (name))
#define ABOOL(name)  ir_attr_bool(c->nattr, c->attr, c->code, (name))
#define ASTR(name)   ir_attr_str(c->nattr, c->attr, c->code, (name))
#define AFIND(name)  ir_attr_find(c->nattr, c->attr, (name))

static bool is_one(dl_dim d) { return d.n == 0 && d.c == 1; }

/* Python-style dimension index: -1 is the last of `rank`. A scalar takes 0 and -1, as if it had
 * rank 1 (PyTorch's maybe_wrap_dim). */
static bool norm_dim(rule_ctx *c, int64_t d, int rank, const dl_type *t, int *out)
{
    if (rank == 0 ? d != 0 && d != -1 : d < -rank || d >= rank)
        return fail(c, "dimension %" PRId64 " is out of range for %s (rank %d)", d, T(c, t), rank);
    *out = (int)(d < 0 ? d + rank : d);
    if (rank == 0)
        *out = 0;
    return true;
}

static bool want_float(rule_ctx *c, const dl_type *t)
{
    if (!ir_dtype_is_float(t->dtype))
        return fail(c, "needs a floating-point operand, got %s (insert a cast)", T(c, t));
    return true;
}

static bool want_int(rule_ctx *c, const dl_type *t, const char *what)
{
    if (!ir_dtype_is_int(t->dtype))
        return fail(c, "%s must have an integer dtype, got %s", what, T(c, t));
    return true;
}

static bool want_numeric(rule_ctx *c, const dl_type *t)
{
    if (t->dtype == DL_BOOL)
        return fail(c, "does not take bool operands, got %s (insert a cast)", T(c, t));
    if ((ir_op_info(c->code)->props & P_FLOAT) && !want_float(c, t))
        return false;
    return true;
}

static bool same_dtype(rule_ctx *c, const dl_type *a, const dl_type *b)
{
    if (a->dtype != b->dtype)
        return fail(c, "operand dtypes differ: %s and %s (insert a cast)", T(c, a), T(c, b));
    return true;
}

static bool same_type(rule_ctx *c, const dl_type *a, const dl_type *b, const char *what)
{
    if (!ir_type_eq(a, b))
        return fail(c, "%s must have the same type: %s and %s", what, T(c, a), T(c, b));
    return true;
}

static bool want_rank(rule_ctx *c, const dl_type *t, int lo, int hi, const char *what)
{
    if (t->rank < lo || t->rank > hi) {
        if (lo == hi)
            return fail(c, "%s must have rank %d, got %s", what, lo, T(c, t));
        return fail(c, "%s must have rank %d to %d, got %s", what, lo, hi, T(c, t));
    }
    return true;
}

static bool want_const_dim(rule_ctx *c, const dl_type *t, int i, const char *why)
{
    if (t->dim[i].n)
        return fail(c, "dimension %d of %s must be a constant %s", i, T(c, t), why);
    return true;
}

/* NumPy broadcasting of a and b's shapes into out (dtype left alone). */
static bool broadcast(rule_ctx *c, const dl_type *a, const dl_type *b, dl_type *out)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        dl_dim da = ia >= 0 ? a->dim[ia] : ir_dim_const(1);
        dl_dim db = ib >= 0 ? b->dim[ib] : ir_dim_const(1);
        if (ir_dim_eq(da, db) || is_one(db))
            out->dim[i] = da;
        else if (is_one(da))
            out->dim[i] = db;
        else
            return fail(c, "shapes %s and %s cannot be broadcast together (%s vs %s)", T(c, a),
                        T(c, b), D(c, da), D(c, db));
    }
    return true;
}

static bool dim_add(dl_dim a, dl_dim b, dl_dim *out)
{
    if (a.c == 0) {
        *out = b;
        return true;
    }
    if (b.c == 0) {
        *out = a;
        return true;
    }
    dl_dim sa = a, sb = b;
    sa.c = sb.c = 1;
    if (!ir_dim_eq(sa, sb))
        return false;
    *out = a;
    out->c = a.c + b.c;
    return true;
}

/* A 2-element spatial attribute (kernel, stride, ...); one element means both. */
static bool pair_attr(rule_ctx *c, const char *name, int64_t def, int64_t out[2])
{
    const dl_attr *a = AFIND(name);
    if (!a) {
        const dl_attr_spec *s = ir_attr_spec(c->code, name, strlen(name));
        if (s && s->def) {
            /* Defaults of pair attributes are "[v, v]". */
            long long v = 0;
            sscanf(s->def, "[%lld", &v);
            out[0] = out[1] = v;
        } else
            out[0] = out[1] = def;
        return true;
    }
    if (a->n == 1)
        out[0] = out[1] = a->u.ints[0];
    else if (a->n == 2)
        out[0] = a->u.ints[0], out[1] = a->u.ints[1];
    else
        return fail(c, "'%s' must have 1 or 2 elements, got %d", name, a->n);
    return true;
}

/* ---- the rules ------------------------------------------------------------------------- */

static bool rule_constant(rule_ctx *c)
{
    /* The result type is given (out[0] holds it); check the values fit it. */
    const dl_attr *v = AFIND("value");
    dl_dtype t = c->out[0].dtype;
    dl_dim numel;
    if (!ir_type_numel(&c->out[0], &numel))
        return fail(c, "the element count of %s is too large or a product of more than 4 symbols",
                    T(c, &c->out[0]));
    /* Integer and bool constants hold exactly what their dtype can (i64 up to 2^63). */
    static const double lo[] = {[DL_I8] = -128, [DL_U8] = 0, [DL_I32] = -2147483648.0,
                                [DL_I64] = -9223372036854775808.0, [DL_BOOL] = 0};
    static const double hi[] = {[DL_I8] = 127, [DL_U8] = 255, [DL_I32] = 2147483647.0,
                                [DL_I64] = 9223372036854775807.0, [DL_BOOL] = 1};
    if (!ir_dtype_is_float(t))
        for (int i = 0; i < v->n; i++) {
            double x = v->u.floats[i];
            if (!(x >= lo[t] && x <= hi[t]) || x >= 9223372036854775808.0 || x != trunc(x))
                return fail(c, "value %.17g does not fit %s", x, ir_dtype_name(t));
        }
    if (v->n == 1)
        return true;
    if (numel.n)
        return fail(c, "a constant of symbolic type %s must be a splat (one value), got %d values",
                    T(c, &c->out[0]), v->n);
    if (numel.c != v->n)
        return fail(c, "%d values do not fill %s (%" PRId64 " elements)", v->n, T(c, &c->out[0]),
                    numel.c);
    return true;
}

static bool rule_cast(rule_ctx *c)
{
    c->out[0] = *c->in[0];
    c->out[0].dtype = AFIND("dtype")->u.dt;
    return true;
}

static bool rule_assign(rule_ctx *c) { return same_type(c, c->in[0], c->in[1], "buffer and value"); }

static bool rule_return(rule_ctx *c)
{
    (void)c;
    return true;
}

static bool rule_unary(rule_ctx *c)
{
    if (!want_numeric(c, c->in[0]))
        return false;
    c->out[0] = *c->in[0];
    if (c->code == DL_OP_CLAMP && AFIND("min") && AFIND("max") && AFLOAT("min") > AFLOAT("max"))
        return fail(c, "min %g is greater than max %g", AFLOAT("min"), AFLOAT("max"));
    return true;
}

static bool rule_logical(rule_ctx *c)
{
    for (int i = 0; i < c->nin; i++)
        if (c->in[i]->dtype != DL_BOOL)
            return fail(c, "needs bool operands, got %s", T(c, c->in[i]));
    c->out[0] = *c->in[0];
    return c->nin == 1 || broadcast(c, c->in[0], c->in[1], &c->out[0]);
}

static bool rule_binary(rule_ctx *c)
{
    if (!want_numeric(c, c->in[0]) || !want_numeric(c, c->in[1]) ||
        !same_dtype(c, c->in[0], c->in[1]))
        return false;
    c->out[0].dtype = c->in[0]->dtype;
    return broadcast(c, c->in[0], c->in[1], &c->out[0]);
}

static bool rule_compare(rule_ctx *c)
{
    if (!same_dtype(c, c->in[0], c->in[1]))
        return false;
    c->out[0].dtype = DL_BOOL;
    return broadcast(c, c->in[0], c->in[1], &c->out[0]);
}

static bool rule_where(rule_ctx *c)
{
    if (c->in[0]->dtype != DL_BOOL)
        return fail(c, "the condition must be bool, got %s", T(c, c->in[0]));
    if (!same_dtype(c, c->in[1], c->in[2]))
        return false;
    /* broadcast() fills only the shape; ab's dtype is set because a message may print it. */
    dl_type ab = {.dtype = c->in[1]->dtype};
    if (!broadcast(c, c->in[1], c->in[2], &ab) || !broadcast(c, c->in[0], &ab, &c->out[0]))
        return false;
    c->out[0].dtype = c->in[1]->dtype;
    return true;
}

/* Which dimensions `dim` (ints, absent = all) names, as a mask over x's rank. */
static bool reduce_mask(rule_ctx *c, const dl_type *x, bool mask[DL_MAX_RANK])
{
    const dl_attr *a = AFIND("dim");
    memset(mask, 0, sizeof(bool) * DL_MAX_RANK);
    if (!a) {
        for (int i = 0; i < x->rank; i++)
            mask[i] = true;
        return true;
    }
    int n = a->kind == DL_ATTR_INT ? 1 : a->n;
    if (n == 0)
        return fail(c, "the list of dimensions is empty (leave 'dim' out to reduce over all)");
    for (int k = 0; k < n; k++) {
        int d;
        if (!norm_dim(c, a->kind == DL_ATTR_INT ? a->u.i : a->u.ints[k], x->rank, x, &d))
            return false;
        if (mask[d] && x->rank)
            return fail(c, "dimension %d appears twice in 'dim'", d);
        mask[d] = true;
    }
    return true;
}

static void reduce_shape(const dl_type *x, const bool mask[DL_MAX_RANK], bool keep, dl_type *out)
{
    out->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!mask[i])
            out->dim[out->rank++] = x->dim[i];
        else if (keep)
            out->dim[out->rank++] = ir_dim_const(1);
    }
}

/* max, min, argmax and argmin have no value over nothing: PyTorch refuses zero-size dimensions. */
static bool want_nonempty(rule_ctx *c, const dl_type *x, const bool mask[DL_MAX_RANK])
{
    bool all = !AFIND("dim");
    for (int i = 0; i < x->rank; i++)
        if ((all || mask[i]) && x->dim[i].n == 0 && x->dim[i].c == 0)
            return fail(c, "cannot reduce over dimension %d of %s: it is empty", i, T(c, x));
    return true;
}

static bool rule_reduce(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    bool mask[DL_MAX_RANK];
    if (!want_numeric(c, x) || !reduce_mask(c, x, mask))
        return false;
    if ((c->code == DL_OP_MAX || c->code == DL_OP_MIN) && !want_nonempty(c, x, mask))
        return false;
    c->out[0].dtype = x->dtype;
    /* torch.sum and torch.prod accumulate integers in int64 (overflow would be likely). */
    if ((c->code == DL_OP_SUM || c->code == DL_OP_PROD) && ir_dtype_is_int(x->dtype))
        c->out[0].dtype = DL_I64;
    reduce_shape(x, mask, ABOOL("keepdim"), &c->out[0]);
    return true;
}

static bool rule_argreduce(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    bool mask[DL_MAX_RANK];
    if (!want_numeric(c, x) || !reduce_mask(c, x, mask) || !want_nonempty(c, x, mask))
        return false;
    c->out[0].dtype = DL_I64;
    reduce_shape(x, mask, ABOOL("keepdim"), &c->out[0]);
    return true;
}

static bool rule_reshape(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *s = AFIND("shape");
    if (s->n > DL_MAX_RANK)
        return fail(c, "rank %d is above the limit of %d", s->n, DL_MAX_RANK);
    dl_dim total, known = ir_dim_const(1);
    if (!ir_type_numel(x, &total))
        return fail(c, "the element count of %s is too large or a product of more than 4 symbols", T(c, x));
    int infer = -1;
    for (int i = 0; i < s->n; i++) {
        dl_dim d = s->u.dims[i];
        if (d.n == 0 && d.c == -1) {
            if (infer >= 0)
                return fail(c, "only one dimension can be -1");
            infer = i;
            continue;
        }
        if (d.c < 0)
            return fail(c, "invalid dimension %s in the new shape", D(c, d));
        if (!ir_dim_mul(known, d, &known))
            return fail(c, "the element count of the new shape is too large or a product of more than 4 symbols");
    }
    c->out[0].dtype = x->dtype;
    c->out[0].rank = s->n;
    for (int i = 0; i < s->n; i++)
        c->out[0].dim[i] = s->u.dims[i];
    if (infer >= 0) {
        if (!ir_dim_div(total, known, &c->out[0].dim[infer]))
            return fail(c, "cannot reshape %s (%s elements) into a shape with %s elements and a -1",
                        T(c, x), D(c, total), D(c, known));
    } else if (!ir_dim_eq(total, known))
        return fail(c, "cannot reshape %s (%s elements) into %s elements", T(c, x), D(c, total),
                    D(c, known));
    return true;
}

static bool rule_transpose(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    int a, b;
    if (!norm_dim(c, AINT("dim0"), x->rank, x, &a) || !norm_dim(c, AINT("dim1"), x->rank, x, &b))
        return false;
    c->out[0] = *x;
    if (x->rank) {
        c->out[0].dim[a] = x->dim[b];
        c->out[0].dim[b] = x->dim[a];
    }
    return true;
}

static bool rule_permute(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *p = AFIND("dims");
    if (p->n != x->rank)
        return fail(c, "'dims' has %d entries but %s has rank %d", p->n, T(c, x), x->rank);
    bool seen[DL_MAX_RANK] = {0};
    c->out[0] = *x;
    for (int i = 0; i < p->n; i++) {
        int d;
        if (!norm_dim(c, p->u.ints[i], x->rank, x, &d))
            return false;
        if (seen[d])
            return fail(c, "'dims' is not a permutation: %d appears twice", d);
        seen[d] = true;
        c->out[0].dim[i] = x->dim[d];
    }
    return true;
}

static bool rule_expand(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *s = AFIND("shape");
    if (s->n < x->rank || s->n > DL_MAX_RANK)
        return fail(c, "cannot expand %s to rank %d", T(c, x), s->n);
    c->out[0].dtype = x->dtype;
    c->out[0].rank = s->n;
    for (int i = 0; i < s->n; i++) {
        int ix = x->rank - s->n + i;
        dl_dim want = s->u.dims[i];
        bool keep = want.n == 0 && want.c == -1;
        if (ix < 0) {
            if (keep || want.c < 0)
                return fail(c, "a new leading dimension cannot be %s", D(c, want));
            c->out[0].dim[i] = want;
        } else if (keep || ir_dim_eq(x->dim[ix], want)) {
            c->out[0].dim[i] = x->dim[ix];
        } else if (is_one(x->dim[ix]) && want.c >= 0) {
            c->out[0].dim[i] = want;
        } else
            return fail(c, "cannot expand %s to [%s...]: dimension %d is %s, not 1", T(c, x),
                        D(c, want), ix, D(c, x->dim[ix]));
    }
    return true;
}

static bool rule_concat(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    int d;
    if (x->rank == 0)
        return fail(c, "cannot concatenate scalars (use stack)");
    if (!norm_dim(c, AINT("dim"), x->rank, x, &d))
        return false;
    c->out[0] = *x;
    for (int k = 1; k < c->nin; k++) {
        const dl_type *y = c->in[k];
        if (!same_dtype(c, x, y))
            return false;
        if (y->rank != x->rank)
            return fail(c, "operands have different ranks: %s and %s", T(c, x), T(c, y));
        for (int i = 0; i < x->rank; i++)
            if (i != d && !ir_dim_eq(x->dim[i], y->dim[i]))
                return fail(c, "shapes %s and %s differ outside dimension %d", T(c, x), T(c, y), d);
        if (!dim_add(c->out[0].dim[d], y->dim[d], &c->out[0].dim[d]))
            return fail(c, "the sum %s + %s along dimension %d is not a product of symbols",
                        D(c, c->out[0].dim[d]), D(c, y->dim[d]), d);
    }
    return true;
}

/* x with a new dimension `n` at the position the `dim` attribute names (stack, unsqueeze). */
static bool insert_dim(rule_ctx *c, const dl_type *x, dl_dim n)
{
    int d;
    if (x->rank >= DL_MAX_RANK)
        return fail(c, "the result would exceed rank %d", DL_MAX_RANK);
    if (!norm_dim(c, AINT("dim"), x->rank + 1, x, &d))
        return false;
    c->out[0].dtype = x->dtype;
    c->out[0].rank = x->rank + 1;
    for (int i = 0, j = 0; i <= x->rank; i++)
        c->out[0].dim[i] = i == d ? n : x->dim[j++];
    return true;
}

static bool rule_stack(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    for (int k = 1; k < c->nin; k++)
        if (!same_type(c, x, c->in[k], "stacked operands"))
            return false;
    return insert_dim(c, x, ir_dim_const(c->nin));
}

static bool rule_split(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *s = AFIND("sizes");
    int d;
    if (x->rank == 0)
        return fail(c, "cannot split a scalar");
    if (!norm_dim(c, AINT("dim"), x->rank, x, &d) ||
        !want_const_dim(c, x, d, "to split along it"))
        return false;
    if (s->n < 1 || s->n > 64)
        return fail(c, "'sizes' must have 1 to 64 entries, got %d", s->n);
    if (*c->nres >= 0 && *c->nres != s->n)
        return fail(c, "'sizes' has %d entr%s but there %s %d result%s", s->n,
                    s->n == 1 ? "y" : "ies", *c->nres == 1 ? "is" : "are", *c->nres,
                    *c->nres == 1 ? "" : "s");
    int64_t sum = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->u.ints[i] < 0)
            return fail(c, "split size %" PRId64 " is negative", s->u.ints[i]);
        sum += s->u.ints[i];
        c->out[i] = *x;
        c->out[i].dim[d] = ir_dim_const(s->u.ints[i]);
    }
    if (sum != x->dim[d].c)
        return fail(c, "sizes add up to %" PRId64 " but dimension %d of %s is %" PRId64, sum, d,
                    T(c, x), x->dim[d].c);
    *c->nres = s->n;
    return true;
}

static bool rule_slice(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    int d;
    if (!norm_dim(c, AINT("dim"), x->rank, x, &d))
        return false;
    if (x->rank == 0)
        return fail(c, "cannot slice a scalar");
    int64_t start = AINT("start"), step = AINT("step");
    const dl_attr *e = AFIND("end");
    if (step <= 0)
        return fail(c, "step must be positive, got %" PRId64, step);
    c->out[0] = *x;
    if (x->dim[d].n) {
        if (start == 0 && !e && step == 1)
            return true;
        return fail(c, "cannot slice symbolic dimension %s of %s (only the whole of it)",
                    D(c, x->dim[d]), T(c, x));
    }
    int64_t n = x->dim[d].c, end = e ? e->u.i : n;
    /* Python's rules: negative counts from the end, then clamp to [0, n]. */
    if (start < 0)
        start += n;
    if (end < 0)
        end += n;
    start = start < 0 ? 0 : start > n ? n : start;
    end = end < 0 ? 0 : end > n ? n : end;
    c->out[0].dim[d] = ir_dim_const(end > start ? (end - start - 1) / step + 1 : 0);
    return true;
}

static bool rule_squeeze(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    bool mask[DL_MAX_RANK];
    if (!reduce_mask(c, x, mask))
        return false;
    c->out[0].dtype = x->dtype;
    c->out[0].rank = 0;
    /* As in PyTorch, a named dimension that is not 1 is left alone. */
    for (int i = 0; i < x->rank; i++)
        if (!(mask[i] && is_one(x->dim[i])))
            c->out[0].dim[c->out[0].rank++] = x->dim[i];
    return true;
}

static bool rule_unsqueeze(rule_ctx *c)
{
    return insert_dim(c, c->in[0], ir_dim_const(1));
}

static bool rule_flatten(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    c->out[0].dtype = x->dtype;
    if (x->rank == 0) {
        c->out[0].rank = 1;
        c->out[0].dim[0] = ir_dim_const(1);
        return true;
    }
    int s, e;
    if (!norm_dim(c, AINT("start_dim"), x->rank, x, &s) ||
        !norm_dim(c, AINT("end_dim"), x->rank, x, &e))
        return false;
    if (s > e)
        return fail(c, "start_dim %d comes after end_dim %d", s, e);
    dl_dim p = ir_dim_const(1);
    for (int i = s; i <= e; i++)
        if (!ir_dim_mul(p, x->dim[i], &p))
            return fail(c, "flattening %s gives a dimension too large or a product of more than 4 symbols", T(c, x));
    c->out[0].rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i == s)
            c->out[0].dim[c->out[0].rank++] = p;
        else if (i < s || i > e)
            c->out[0].dim[c->out[0].rank++] = x->dim[i];
    }
    return true;
}

static bool rule_pad(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *p = AFIND("pad");
    if (p->n % 2 || p->n / 2 > x->rank)
        return fail(c, "'pad' needs pairs for at most %d dimensions, got %d values", x->rank, p->n);
    c->out[0] = *x;
    /* PyTorch lets a dimension shrink to nothing only when no pad is positive (then padding
     * is pure slicing). */
    bool grows = false;
    for (int k = 0; k < p->n; k++)
        grows |= p->u.ints[k] > 0;
    /* Pairs run from the last dimension backwards, as in torch.nn.functional.pad. */
    for (int k = 0; k < p->n / 2; k++) {
        int d = x->rank - 1 - k;
        int64_t lo = p->u.ints[2 * k], hi = p->u.ints[2 * k + 1];
        if (lo == 0 && hi == 0)
            continue;
        if (!want_const_dim(c, x, d, "to pad it"))
            return false;
        int64_t n = x->dim[d].c + lo + hi;
        if (n < 0 || (n == 0 && grows))
            return fail(c, "padding makes dimension %d of %s %s (%" PRId64 ")", d, T(c, x),
                        n < 0 ? "negative" : "empty", n);
        c->out[0].dim[d] = ir_dim_const(n);
    }
    return true;
}

static bool rule_gather(rule_ctx *c)
{
    const dl_type *x = c->in[0], *idx = c->in[1];
    int d;
    if (!want_int(c, idx, "the index") || !norm_dim(c, AINT("dim"), x->rank, x, &d))
        return false;
    if (idx->rank != x->rank)
        return fail(c, "the index %s must have the rank of the input %s", T(c, idx), T(c, x));
    for (int i = 0; i < x->rank; i++)
        if (i != d && !ir_dim_eq(idx->dim[i], x->dim[i]) &&
            !(idx->dim[i].n == 0 && x->dim[i].n == 0 && idx->dim[i].c <= x->dim[i].c))
            return fail(c, "index %s is larger than input %s in dimension %d", T(c, idx), T(c, x), i);
    c->out[0] = *idx;
    c->out[0].dtype = x->dtype;
    return true;
}

/* a no larger than b: equal, or both constants. */
static bool dim_le(dl_dim a, dl_dim b)
{
    return ir_dim_eq(a, b) || (a.n == 0 && b.n == 0 && a.c <= b.c);
}

/* torch.Tensor.scatter_add: the index walks src (it may be smaller) and stays inside the input
 * outside `dim`. */
static bool rule_scatter_add(rule_ctx *c)
{
    const dl_type *x = c->in[0], *idx = c->in[1], *src = c->in[2];
    int d;
    if (!want_numeric(c, x) || !same_dtype(c, x, src) || !want_int(c, idx, "the index") ||
        !norm_dim(c, AINT("dim"), x->rank, x, &d))
        return false;
    if (idx->rank != x->rank || src->rank != x->rank)
        return fail(c, "the index %s and the source %s must have the rank of the input %s",
                    T(c, idx), T(c, src), T(c, x));
    for (int i = 0; i < x->rank; i++) {
        if (!dim_le(idx->dim[i], src->dim[i]))
            return fail(c, "index %s is larger than the source %s in dimension %d", T(c, idx),
                        T(c, src), i);
        if (i != d && !dim_le(idx->dim[i], x->dim[i]))
            return fail(c, "index %s is larger than the input %s in dimension %d", T(c, idx),
                        T(c, x), i);
    }
    c->out[0] = *x;
    return true;
}

static bool rule_index_select(rule_ctx *c)
{
    const dl_type *x = c->in[0], *idx = c->in[1];
    int d;
    if (!want_int(c, idx, "the index") || !want_rank(c, idx, 0, 1, "the index") ||
        !norm_dim(c, AINT("dim"), x->rank, x, &d))
        return false;
    /* As in PyTorch: a 0-d index picks one entry and keeps the dimension; a scalar input
     * takes an index of one element and stays a scalar. */
    dl_dim n = idx->rank ? idx->dim[0] : ir_dim_const(1);
    c->out[0] = *x;
    if (x->rank == 0) {
        if (!is_one(n))
            return fail(c, "a scalar takes an index of one element, got %s", T(c, idx));
        return true;
    }
    c->out[0].dim[d] = n;
    return true;
}

static bool rule_one_hot(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    int64_t k = AINT("num_classes");
    if (!want_int(c, x, "the input"))
        return false;
    if (k <= 0)
        return fail(c, "num_classes must be positive, got %" PRId64, k);
    if (x->rank >= DL_MAX_RANK)
        return fail(c, "the result would exceed rank %d", DL_MAX_RANK);
    c->out[0] = *x;
    c->out[0].dtype = AFIND("dtype") ? AFIND("dtype")->u.dt : DL_I64;
    c->out[0].dim[c->out[0].rank++] = ir_dim_const(k);
    return true;
}

static bool rule_matmul(rule_ctx *c)
{
    const dl_type *a = c->in[0], *b = c->in[1];
    if (!want_numeric(c, a) || !want_numeric(c, b) || !same_dtype(c, a, b))
        return false;
    if (a->rank == 0 || b->rank == 0)
        return fail(c, "operands must have rank 1 or more, got %s and %s", T(c, a), T(c, b));
    /* torch.matmul: a vector is a matrix with a dimension prepended (a) or appended (b) that
     * is dropped again; leading (batch) dimensions broadcast. */
    dl_type A = *a, B = *b;
    if (a->rank == 1) {
        A.rank = 2;
        A.dim[0] = ir_dim_const(1);
        A.dim[1] = a->dim[0];
    }
    if (b->rank == 1) {
        B.rank = 2;
        B.dim[0] = b->dim[0];
        B.dim[1] = ir_dim_const(1);
    }
    dl_dim k1 = A.dim[A.rank - 1], k2 = B.dim[B.rank - 2];
    if (!ir_dim_eq(k1, k2))
        return fail(c, "inner dimensions differ: %s @ %s (%s vs %s)", T(c, a), T(c, b), D(c, k1),
                    D(c, k2));
    dl_type ba = A, bb = B, batch;
    ba.rank -= 2;
    bb.rank -= 2;
    if (!broadcast(c, &ba, &bb, &batch))
        return false;
    dl_type *o = &c->out[0];
    *o = batch;
    o->dtype = a->dtype;
    if (a->rank > 1)
        o->dim[o->rank++] = A.dim[A.rank - 2];
    if (b->rank > 1)
        o->dim[o->rank++] = B.dim[B.rank - 1];
    return true;
}

/* Output size of a window sliding over n (convolution and pooling arithmetic of PyTorch). */
/* Sizes and attributes are at most 2^48 (IR_MAX_DIM), so products are done in 128 bits. */
static int64_t window_out(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode)
{
    /* With ceil_mode a window may hang over the far edge, even of an input smaller than the
     * kernel (PyTorch's pooling_output_shape): round up before giving up. */
    __int128 span = (__int128)n + 2 * p - (__int128)d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
    if (span < 0)
        return 0;
    int64_t o = (int64_t)(span / s + 1);
    /* With ceil_mode the last window must start inside the input or its left padding. */
    if (ceil_mode && (__int128)(o - 1) * s >= (__int128)n + p)
        o--;
    return o;
}

static bool conv_common(rule_ctx *c, const dl_type **x, const dl_type **w, int64_t groups)
{
    *x = c->in[0];
    *w = c->in[1];
    if (!want_rank(c, *x, 4, 4, "the input (N, C, H, W)") ||
        !want_rank(c, *w, 4, 4, "the weight") || !want_float(c, *x) || !same_dtype(c, *x, *w))
        return false;
    for (int i = 1; i < 4; i++)
        if (!want_const_dim(c, *x, i, "for a convolution") ||
            !want_const_dim(c, *w, i, "for a convolution"))
            return false;
    if (!want_const_dim(c, *w, 0, "for a convolution"))
        return false;
    if (groups <= 0)
        return fail(c, "groups must be positive, got %" PRId64, groups);
    return true;
}

static bool check_bias(rule_ctx *c, const dl_type *x, dl_dim channels)
{
    if (c->nin < 3)
        return true;
    const dl_type *b = c->in[2];
    if (!same_dtype(c, x, b))
        return false;
    if (b->rank != 1 || !ir_dim_eq(b->dim[0], channels))
        return fail(c, "the bias %s must be [%s]", T(c, b), D(c, channels));
    return true;
}

static bool rule_conv2d(rule_ctx *c)
{
    const dl_type *x, *w;
    int64_t g = AINT("groups"), s[2], p[2], d[2];
    if (!conv_common(c, &x, &w, g) || !pair_attr(c, "stride", 1, s) ||
        !pair_attr(c, "padding", 0, p) || !pair_attr(c, "dilation", 1, d))
        return false;
    int64_t C = x->dim[1].c, O = w->dim[0].c;
    if (C % g || O % g)
        return fail(c, "channels in (%" PRId64 ") and out (%" PRId64 ") must divide by groups %" PRId64,
                    C, O, g);
    if (w->dim[1].c != C / g)
        return fail(c, "weight %s expects %" PRId64 " input channels per group, input %s has %" PRId64
                    " in %" PRId64 " groups", T(c, w), w->dim[1].c, T(c, x), C, g);
    dl_type *o = &c->out[0];
    *o = *x;
    o->dim[1] = ir_dim_const(O);
    for (int i = 0; i < 2; i++) {
        if (s[i] <= 0 || d[i] <= 0 || p[i] < 0)
            return fail(c, "stride and dilation must be positive and padding not negative");
        int64_t k = w->dim[2 + i].c, n = x->dim[2 + i].c;
        if ((__int128)n + 2 * p[i] < (__int128)d[i] * (k - 1) + 1)
            return fail(c, "kernel %s is larger than the padded input %s", T(c, w), T(c, x));
        o->dim[2 + i] = ir_dim_const(window_out(n, k, s[i], p[i], d[i], false));
    }
    return check_bias(c, x, o->dim[1]);
}

static bool rule_conv_transpose2d(rule_ctx *c)
{
    const dl_type *x, *w;
    int64_t g = AINT("groups"), s[2], p[2], op[2], d[2];
    if (!conv_common(c, &x, &w, g) || !pair_attr(c, "stride", 1, s) ||
        !pair_attr(c, "padding", 0, p) || !pair_attr(c, "output_padding", 0, op) ||
        !pair_attr(c, "dilation", 1, d))
        return false;
    int64_t C = x->dim[1].c;
    if (w->dim[0].c != C)
        return fail(c, "weight %s must have %" PRId64 " input channels (from %s)", T(c, w), C, T(c, x));
    if (C % g)
        return fail(c, "input channels %" PRId64 " must divide by groups %" PRId64, C, g);
    if ((__int128)w->dim[1].c * g > IR_MAX_DIM)
        return fail(c, "%" PRId64 " output channels per group in %" PRId64 " groups is too many",
                    w->dim[1].c, g);
    dl_type *o = &c->out[0];
    *o = *x;
    o->dim[1] = ir_dim_const(w->dim[1].c * g);
    for (int i = 0; i < 2; i++) {
        if (s[i] <= 0 || d[i] <= 0 || p[i] < 0 || op[i] < 0)
            return fail(c, "stride and dilation must be positive, paddings not negative");
        if (op[i] >= s[i] && op[i] >= d[i])
            return fail(c, "output_padding %" PRId64 " must be smaller than stride or dilation",
                        op[i]);
        int64_t k = w->dim[2 + i].c, n = x->dim[2 + i].c;
        __int128 m128 = (__int128)(n - 1) * s[i] - 2 * p[i] + (__int128)d[i] * (k - 1) + op[i] + 1;
        if (m128 > IR_MAX_DIM)
            return fail(c, "the output would be larger than 2^48");
        int64_t m = (int64_t)m128;
        if (m <= 0)
            return fail(c, "the output would be empty (size %" PRId64 ")", m);
        o->dim[2 + i] = ir_dim_const(m);
    }
    return check_bias(c, x, o->dim[1]);
}

/* The weight gradient of conv2d: weight_shape must be a weight conv2d takes with x and the
 * attributes, and dy the type of that convolution's result. */
static bool rule_conv2d_grad_weight(rule_ctx *c)
{
    const dl_type *x = c->in[0], *dy = c->in[1];
    const dl_attr *ws = AFIND("weight_shape");
    if (ws->n != 4)
        return fail(c, "weight_shape must have 4 elements (out channels, in channels per group, "
                    "kernel height and width), got %d", ws->n);
    dl_type w = {.dtype = x->dtype, .rank = 4};
    for (int i = 0; i < 4; i++) {
        if (ws->u.ints[i] <= 0)
            return fail(c, "weight_shape must be positive, got %" PRId64 " in dimension %d",
                        ws->u.ints[i], i);
        w.dim[i] = ir_dim_const(ws->u.ints[i]);
    }
    const dl_type *in[2] = {x, &w};
    dl_type y;
    rule_ctx conv = *c;
    conv.in = in, conv.nin = 2, conv.out = &y;
    if (!rule_conv2d(&conv) || !same_dtype(c, x, dy))
        return false;
    if (!ir_type_eq(dy, &y))
        return fail(c, "the gradient %s must have the type %s of conv2d's result on %s", T(c, dy),
                    T(c, &y), T(c, x));
    c->out[0] = w;
    return true;
}

/* The result type of max_pool2d or avg_pool2d (or of the forward pass a gradient op undoes)
 * on x. */
static bool pool_type(rule_ctx *c, const dl_type *x, dl_type *o)
{
    int64_t k[2], s[2], p[2], d[2] = {1, 1};
    if (!want_rank(c, x, 3, 4, "the input ([N,] C, H, W)") || !want_numeric(c, x) ||
        !pair_attr(c, "kernel_size", 1, k) || !pair_attr(c, "padding", 0, p))
        return false;
    if (AFIND("stride")) {
        if (!pair_attr(c, "stride", 1, s))
            return false;
    } else
        s[0] = k[0], s[1] = k[1];
    if ((c->code == DL_OP_MAX_POOL2D || c->code == DL_OP_MAX_POOL2D_GRAD) &&
        !pair_attr(c, "dilation", 1, d))
        return false;
    bool ceil_mode = ABOOL("ceil_mode");
    *o = *x;
    for (int i = 0; i < 2; i++) {
        int h = x->rank - 2 + i;
        if (!want_const_dim(c, x, h, "for pooling"))
            return false;
        if (k[i] <= 0 || s[i] <= 0 || d[i] <= 0)
            return fail(c, "kernel size, stride and dilation must be positive");
        if (p[i] < 0 || p[i] > k[i] / 2)
            return fail(c, "padding %" PRId64 " must be at most half the kernel size %" PRId64,
                        p[i], k[i]);
        int64_t m = window_out(x->dim[h].c, k[i], s[i], p[i], d[i], ceil_mode);
        if (m <= 0)
            return fail(c, "the window is larger than the input %s", T(c, x));
        o->dim[h] = ir_dim_const(m);
    }
    return true;
}

static bool rule_pool2d(rule_ctx *c) { return pool_type(c, c->in[0], &c->out[0]); }

static bool adaptive_pool_type(rule_ctx *c, const dl_type *x, dl_type *o)
{
    int64_t sz[2];
    if (!want_rank(c, x, 3, 4, "the input ([N,] C, H, W)") || !want_float(c, x) ||
        !pair_attr(c, "output_size", 1, sz))
        return false;
    if (sz[0] <= 0 || sz[1] <= 0)
        return fail(c, "output_size must be positive");
    *o = *x;
    o->dim[x->rank - 2] = ir_dim_const(sz[0]);
    o->dim[x->rank - 1] = ir_dim_const(sz[1]);
    return true;
}

static bool rule_adaptive_pool2d(rule_ctx *c) { return adaptive_pool_type(c, c->in[0], &c->out[0]); }

/* The gradient ops of pooling: (dy, x) with dy of the pooled type of x; the result is x's. */
static bool pool_grad_result(rule_ctx *c, const dl_type *pooled)
{
    const dl_type *dy = c->in[0], *x = c->in[1];
    if (!same_dtype(c, dy, x))
        return false;
    if (!ir_type_eq(dy, pooled))
        return fail(c, "the gradient %s must have the pooled type %s of the input %s", T(c, dy),
                    T(c, pooled), T(c, x));
    c->out[0] = *x;
    return true;
}

static bool rule_pool2d_grad(rule_ctx *c)
{
    dl_type y;
    return pool_type(c, c->in[1], &y) && pool_grad_result(c, &y);
}

static bool rule_adaptive_pool2d_grad(rule_ctx *c)
{
    dl_type y;
    return adaptive_pool_type(c, c->in[1], &y) && pool_grad_result(c, &y);
}

static bool rule_softmax(rule_ctx *c)
{
    int d;
    if (!want_float(c, c->in[0]) || !norm_dim(c, AINT("dim"), c->in[0]->rank, c->in[0], &d))
        return false;
    c->out[0] = *c->in[0];
    return true;
}

static bool rule_layer_norm(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    const dl_attr *ns = AFIND("normalized_shape");
    if (!want_float(c, x))
        return false;
    if (x->rank == 0)
        return fail(c, "cannot normalize a scalar");
    if (ns->n < 1 || ns->n > x->rank)
        return fail(c, "normalized_shape must name 1 to %d trailing dimensions of %s", x->rank,
                    T(c, x));
    /* Filled in whole first: the message prints it. */
    dl_type want = {.dtype = x->dtype, .rank = ns->n};
    for (int i = 0; i < ns->n; i++)
        want.dim[i] = ns->u.dims[i];
    for (int i = 0; i < ns->n; i++) {
        if (!ir_dim_eq(ns->u.dims[i], x->dim[x->rank - ns->n + i]))
            return fail(c, "normalized_shape %s does not match the trailing dimensions of %s",
                        T(c, &want), T(c, x));
    }
    for (int k = 1; k < c->nin; k++)
        if (!same_type(c, c->in[k], &want, k == 1 ? "weight and normalized_shape" :
                                                    "bias and normalized_shape"))
            return false;
    c->out[0] = *x;
    return true;
}

static bool rule_batch_norm(rule_ctx *c)
{
    const dl_type *x = c->in[0];
    static const char *const what[] = {"", "the weight", "the bias", "running_mean",
                                       "running_var"};
    if (!want_float(c, x) || !want_rank(c, x, 2, DL_MAX_RANK, "the input (N, C, ...)"))
        return false;
    dl_type ch = {.dtype = x->dtype, .rank = 1, .dim = {x->dim[1]}};
    for (int k = 1; k < 5; k++)
        if (!same_type(c, c->in[k], &ch, what[k]))
            return false;
    /* Batch statistics need two values per channel (PyTorch refuses one). */
    bool single = true;
    for (int i = 0; i < x->rank; i++)
        single &= i == 1 || is_one(x->dim[i]);
    if (ABOOL("training") && single)
        return fail(c, "training needs more than one value per channel, got %s", T(c, x));
    c->out[0] = *x;
    c->out[1] = ch;
    c->out[2] = ch;
    return true;
}

static bool rule_embedding(rule_ctx *c)
{
    const dl_type *idx = c->in[0], *w = c->in[1];
    if (!want_int(c, idx, "the indices") || !want_rank(c, w, 2, 2, "the weight (V, D)"))
        return false;
    if (idx->rank >= DL_MAX_RANK)
        return fail(c, "the result would exceed rank %d", DL_MAX_RANK);
    c->out[0] = *idx;
    c->out[0].dtype = w->dtype;
    c->out[0].dim[c->out[0].rank++] = w->dim[1];
    return true;
}

static bool rule_dropout(rule_ctx *c)
{
    double p = AFLOAT("p");
    if (!want_float(c, c->in[0]))
        return false;
    if (c->in[1]->dtype != DL_I64 || c->in[1]->rank != 0)
        return fail(c, "the RNG key must be an i64 scalar, got %s", T(c, c->in[1]));
    if (!(p >= 0 && p < 1))
        return fail(c, "p must be in [0, 1), got %g", p);
    c->out[0] = *c->in[0];
    return true;
}

static bool rule_sdpa(rule_ctx *c)
{
    const dl_type *q = c->in[0], *k = c->in[1], *v = c->in[2];
    for (int i = 0; i < 3; i++)
        if (!want_rank(c, c->in[i], 2, DL_MAX_RANK, i == 0 ? "q" : i == 1 ? "k" : "v") ||
            !same_dtype(c, q, c->in[i]))
            return false;
    if (!want_float(c, q))
        return false;
    int rq = q->rank, rk = k->rank, rv = v->rank;
    if (!ir_dim_eq(q->dim[rq - 1], k->dim[rk - 1]))
        return fail(c, "q %s and k %s differ in the last dimension", T(c, q), T(c, k));
    if (!ir_dim_eq(k->dim[rk - 2], v->dim[rv - 2]))
        return fail(c, "k %s and v %s differ in sequence length", T(c, k), T(c, v));
    /* broadcast() fills only the shape; the dtype is set because messages print these. */
    dl_type bq = *q, bk = *k, bv = *v, b1 = {.dtype = q->dtype}, batch = {.dtype = q->dtype};
    bq.rank -= 2, bk.rank -= 2, bv.rank -= 2;
    if (!broadcast(c, &bq, &bk, &b1) || !broadcast(c, &b1, &bv, &batch))
        return false;
    dl_type *o = &c->out[0];
    *o = batch;
    o->dtype = q->dtype;
    o->dim[o->rank++] = q->dim[rq - 2];
    o->dim[o->rank++] = v->dim[rv - 1];
    if (c->nin == 4) {
        const dl_type *m = c->in[3];
        if (ABOOL("causal"))
            return fail(c, "takes either a mask or causal=true, not both");
        if (m->dtype != DL_BOOL && m->dtype != q->dtype)
            return fail(c, "the mask %s must be bool or %s", T(c, m), ir_dtype_name(q->dtype));
        dl_type scores = batch, tmp = {0};
        scores.dim[scores.rank++] = q->dim[rq - 2];
        scores.dim[scores.rank++] = k->dim[rk - 2];
        tmp.dtype = scores.dtype;
        if (!broadcast(c, m, &scores, &tmp) || !ir_type_eq(&tmp, &scores))
            return fail(c, "the mask %s does not broadcast to the scores %s", T(c, m), T(c, &scores));
    }
    return true;
}

/* The result of a loss: a scalar, or `per` for reduction="none". */
static void loss_result(rule_ctx *c, const dl_type *per)
{
    if (!strcmp(ASTR("reduction"), "none"))
        c->out[0] = *per;
    else
        c->out[0] = (dl_type){.dtype = per->dtype};
}

static bool rule_pair_loss(rule_ctx *c)
{
    if (!want_float(c, c->in[0]) || !same_type(c, c->in[0], c->in[1], "input and target"))
        return false;
    loss_result(c, c->in[0]);
    return true;
}

static bool rule_class_loss(rule_ctx *c)
{
    const dl_type *x = c->in[0], *y = c->in[1];
    if (!want_float(c, x) || !want_rank(c, x, 1, DL_MAX_RANK, "the logits"))
        return false;
    /* Class dimension: 0 for unbatched [C], else 1 ([N, C, d1, ...]). */
    int cd = x->rank == 1 ? 0 : 1;
    dl_type per = {.dtype = x->dtype};
    for (int i = 0; i < x->rank; i++)
        if (i != cd)
            per.dim[per.rank++] = x->dim[i];
    if (c->code == DL_OP_CROSS_ENTROPY && ir_dtype_is_float(y->dtype)) {
        if (!same_type(c, x, y, "logits and class probabilities"))
            return false;
    } else {
        if (!want_int(c, y, "class labels"))
            return false;
        dl_type want = per;
        want.dtype = y->dtype;
        if (!ir_type_eq(y, &want))
            return fail(c, "labels %s do not match logits %s (want %s)", T(c, y), T(c, x),
                        T(c, &want));
    }
    loss_result(c, &per);
    return true;
}

static bool rule_triplet(rule_ctx *c)
{
    const dl_type *a = c->in[0];
    if (!want_float(c, a) || !want_rank(c, a, 1, 2, "the anchor") ||
        !same_type(c, a, c->in[1], "anchor and positive") ||
        !same_type(c, a, c->in[2], "anchor and negative"))
        return false;
    dl_type per = {.dtype = a->dtype, .rank = a->rank - 1, .dim = {a->dim[0]}};
    loss_result(c, &per);
    return true;
}

static bool rule_metric(rule_ctx *c)
{
    const dl_type *x = c->in[0], *y = c->in[1];
    if (!want_rank(c, x, 2, 2, "the logits (N, C)") || !want_numeric(c, x) ||
        !want_int(c, y, "the labels"))
        return false;
    if (y->rank != 1 || !ir_dim_eq(y->dim[0], x->dim[0]))
        return fail(c, "labels %s do not match logits %s", T(c, y), T(c, x));
    if (c->code == DL_OP_TOP_K_ACCURACY) {
        int64_t k = AINT("k");
        if (k <= 0 || (x->dim[1].n == 0 && k > x->dim[1].c))
            return fail(c, "k = %" PRId64 " is not between 1 and the %s classes", k,
                        D(c, x->dim[1]));
    }
    c->out[0] = (dl_type){.dtype = DL_F32};
    return true;
}

/* ---- dispatch -------------------------------------------------------------------------- */

typedef bool (*rule_fn)(rule_ctx *);
static const rule_fn rules[] = {
#define OP(id, name, rule, grad, nodiff, min_in, max_in, nres, props, attrs) rule,
#include "ir/ops.def"
#undef OP
};
_Static_assert(sizeof rules / sizeof *rules == DL_NOPS, "one shape rule per op");

/* Attributes against the op's specs: known names, right kinds, choices, required ones. */
static bool check_attrs(rule_ctx *c)
{
    const dl_op_info *info = ir_op_info(c->code);
    for (int i = 0; i < c->nattr; i++) {
        const dl_attr *a = &c->attr[i];
        const dl_attr_spec *s = ir_attr_spec(c->code, a->name, strlen(a->name));
        if (!s)
            return fail(c, "has no attribute '%s'", a->name);
        if (ir_attr_find(i, c->attr, a->name))
            return fail(c, "attribute '%s' is given twice", a->name);
        if (s->kind != a->kind)
            return fail(c, "attribute '%s' has the wrong kind", a->name);
        /* Sizes, strides and paddings feed size arithmetic: keep them far from overflow. Slice
         * bounds are clamped instead, so PyTorch's `end=2**63-1` idiom works. */
        if (c->code != DL_OP_SLICE && (a->kind == DL_ATTR_INT || a->kind == DL_ATTR_INTS)) {
            for (int k = 0; k < (a->kind == DL_ATTR_INT ? 1 : a->n); k++) {
                int64_t v = a->kind == DL_ATTR_INT ? a->u.i : a->u.ints[k];
                if (v > IR_MAX_DIM || v < -IR_MAX_DIM)
                    return fail(c, "attribute '%s' value %" PRId64 " is out of range", a->name, v);
            }
        }
        if (s->choices) {
            size_t n = strlen(a->u.s);
            bool ok = false;
            for (const char *p = s->choices; *p;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                ok |= len == n && !memcmp(p, a->u.s, n);
                p += len + (bar != NULL);
            }
            if (!ok)
                return fail(c, "attribute '%s' must be one of %s, not \"%s\"", a->name,
                            s->choices, a->u.s);
        }
    }
    for (int s = 0; s < info->nattr; s++)
        if (info->attr[s].required && !ir_attr_find(c->nattr, c->attr, info->attr[s].name))
            return fail(c, "needs attribute '%s'", info->attr[s].name);
    return true;
}

bool ir_infer(dl_opcode code, int nin, const dl_type *const *in, int nattr, const dl_attr *attr,
              dl_type *out, int *nres, char *err, size_t errlen)
{
    const dl_op_info *info = ir_op_info(code);
    rule_ctx c = {code, info->name, nin, in, nattr, attr, out, nres, err, errlen, {{0}}, 0};
    if (nin < info->min_in || (info->max_in >= 0 && nin > info->max_in)) {
        if (info->min_in == info->max_in)
            return fail(&c, "takes %d operand%s, got %d", info->min_in,
                        info->min_in == 1 ? "" : "s", nin);
        if (info->max_in < 0)
            return fail(&c, "takes at least %d operand%s, got %d", info->min_in,
                        info->min_in == 1 ? "" : "s", nin);
        return fail(&c, "takes %d to %d operands, got %d", info->min_in, info->max_in, nin);
    }
    if (info->nres >= 0) {
        if (*nres >= 0 && *nres != info->nres)
            return fail(&c, "has %d result%s, not %d", info->nres, info->nres == 1 ? "" : "s",
                        *nres);
        *nres = info->nres;
    }
    if (!check_attrs(&c))
        return false;
    return rules[code](&c);
}
