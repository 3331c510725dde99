/* Decomposition: composite ops become the primitives that every backend has native kernels
 * for (elementwise chains, reductions over one contiguous run of dimensions, f32 matrix
 * products, gather), as torch.compile's decompositions do before Inductor lowers a graph.
 * Runs before code generation, after autodiff (whose gradient rules want the composite ops),
 * and is not part of the target-independent pipeline that --emit=ir-opt shows.
 *
 * The rules here: reductions over several runs of dimensions become chains of one-run
 * reductions (var, std and logsumexp their two-pass definitions over such chains); batch_norm
 * becomes its batch statistics and one elementwise chain; matmuls the f32 kernel does not take
 * become ones it takes (f16 and bf16 through f32, vectors as matrices, broadcast batches made
 * explicit), or for f64 and integers a product and a sum over K; f16 and bf16 convolutions and
 * pooling run in f32. f64 convolutions and pooling stay on the reference interpreter (there is
 * no f64 kernel). Losses and metrics: decompose_loss.c.
 */
#include "passes/decompose.h"
#include "passes/pass.h"

#include <math.h>
#include <string.h>

/* ---- constructors ---------------------------------------------------------------------- */

static const char *intern(dc *c, const char *s) { return ir_intern(c->f->module, s, strlen(s)); }

dl_attr dc_int(dc *c, const char *name, int64_t v)
{
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_INT, .u.i = v};
}

dl_attr dc_ints(dc *c, const char *name, int n, const int64_t *v)
{
    int64_t *copy = ir_alloc(c->f->module, sizeof *copy * (size_t)(n ? n : 1));
    memcpy(copy, v, sizeof *copy * (size_t)n);
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_INTS, .n = n, .u.ints = copy};
}

dl_attr dc_float(dc *c, const char *name, double v)
{
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_FLOAT, .u.f = v};
}

dl_attr dc_bool(dc *c, const char *name, bool v)
{
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_BOOL, .u.b = v};
}

dl_attr dc_str(dc *c, const char *name, const char *v)
{
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_STR, .u.s = intern(c, v)};
}

dl_attr dc_dtype(dc *c, const char *name, dl_dtype v)
{
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_DTYPE, .u.dt = v};
}

dl_attr dc_shape(dc *c, const char *name, const dl_type *like)
{
    dl_dim *d = ir_alloc(c->f->module, sizeof *d * (size_t)(like->rank ? like->rank : 1));
    memcpy(d, like->dim, sizeof *d * (size_t)like->rank);
    return (dl_attr){.name = intern(c, name), .kind = DL_ATTR_SHAPE, .n = like->rank, .u.dims = d};
}

dl_value *dc_op(dc *c, dl_opcode code, int nin, dl_value *const *in, int nattr, const dl_attr *attr)
{
    dl_op *op = ir_op_create(c->f, code, nin, in, nattr, attr, -1, NULL, (c->origin ? c->origin : c->at)->loc, NULL);
    SUP_ASSERT(op);
    op->checkpoint = c->at->checkpoint;
    ir_op_insert_before(c->at, op);
    return &op->res[0];
}

dl_value *dc_un(dc *c, dl_opcode code, dl_value *x) { return dc_op(c, code, 1, &x, 0, NULL); }

dl_value *dc_bin(dc *c, dl_opcode code, dl_value *a, dl_value *b)
{
    return dc_op(c, code, 2, (dl_value *[]){a, b}, 0, NULL);
}

dl_value *dc_where(dc *c, dl_value *cond, dl_value *a, dl_value *b)
{
    return dc_op(c, DL_OP_WHERE, 3, (dl_value *[]){cond, a, b}, 0, NULL);
}

dl_value *dc_scalar(dc *c, double v, dl_dtype t)
{
    double *val = ir_alloc(c->f->module, sizeof *val);
    *val = v;
    dl_attr a = {.name = intern(c, "value"), .kind = DL_ATTR_FLOATS, .n = 1, .u.floats = val};
    dl_type rt = {.dtype = t, .rank = 0};
    dl_op *op = ir_op_create(c->f, DL_OP_CONSTANT, 0, NULL, 1, &a, 1, &rt, (c->origin ? c->origin : c->at)->loc, NULL);
    SUP_ASSERT(op);
    op->checkpoint = c->at->checkpoint;
    ir_op_insert_before(c->at, op);
    return &op->res[0];
}

dl_value *dc_constant(dc *c, const dl_type *t, int n, const double *v)
{
    double *val = ir_alloc(c->f->module, sizeof *val * (size_t)(n ? n : 1));
    memcpy(val, v, sizeof *val * (size_t)n);
    dl_attr a = {.name = intern(c, "value"), .kind = DL_ATTR_FLOATS, .n = n, .u.floats = val};
    dl_op *op = ir_op_create(c->f, DL_OP_CONSTANT, 0, NULL, 1, &a, 1, t, (c->origin ? c->origin : c->at)->loc, NULL);
    SUP_ASSERT(op);
    op->checkpoint = c->at->checkpoint;
    ir_op_insert_before(c->at, op);
    return &op->res[0];
}

dl_value *dc_cast(dc *c, dl_value *x, dl_dtype t)
{
    if (x->type.dtype == t)
        return x;
    dl_attr a = dc_dtype(c, "dtype", t);
    return dc_op(c, DL_OP_CAST, 1, &x, 1, &a);
}

dl_value *dc_reshape(dc *c, dl_value *x, const dl_type *like)
{
    dl_attr a = dc_shape(c, "shape", like);
    return dc_op(c, DL_OP_RESHAPE, 1, &x, 1, &a);
}

dl_value *dc_reduce(dc *c, dl_opcode code, dl_value *x, int n, const int64_t *dims, bool keepdim)
{
    dl_attr a[2];
    int na = 0;
    if (n >= 0)
        a[na++] = dc_ints(c, "dim", n, dims);
    a[na++] = dc_bool(c, "keepdim", keepdim);
    return dc_op(c, code, 1, &x, na, a);
}

static dl_type shape_type(dl_dtype t, int rank, const dl_dim *dims)
{
    dl_type r = {.dtype = t, .rank = rank};
    memcpy(r.dim, dims, sizeof *dims * (size_t)rank);
    return r;
}

/* Counting a symbolic dimension costs one integer sum over it (N elements, not the tensor's):
 * the IR has no op that reads a dimension. Repeated symbols (N*N) are counted once. */
dl_value *dc_numel(dc *c, int n, const dl_dim *dims, dl_dtype t)
{
    double k = 1;
    const char *syms[DL_MAX_RANK * DL_DIM_MAXSYM];
    dl_value *cnts[DL_MAX_RANK * DL_DIM_MAXSYM];
    int nsyms = 0;
    dl_value *v = NULL;
    for (int i = 0; i < n; i++) {
        k *= (double)dims[i].c;
        for (int s = 0; s < dims[i].n; s++) {
            int j = 0;
            while (j < nsyms && syms[j] != dims[i].sym[s])
                j++;
            if (j == nsyms) {
                dl_type one = shape_type(DL_I64, 1, (dl_dim[]){ir_dim_sym(dims[i].sym[s])});
                dl_attr a = dc_shape(c, "shape", &one);
                dl_value *one1 = dc_scalar(c, 1, DL_I64);
                dl_value *ones = dc_op(c, DL_OP_BROADCAST_TO, 1, &one1, 1, &a);
                syms[nsyms] = dims[i].sym[s];
                cnts[nsyms++] = dc_reduce(c, DL_OP_SUM, ones, -1, NULL, false);
            }
            v = v ? dc_bin(c, DL_OP_MUL, v, cnts[j]) : cnts[j];
        }
    }
    if (!v)
        return dc_scalar(c, k, t);
    if (k != 1)
        v = dc_bin(c, DL_OP_MUL, v, dc_scalar(c, k, DL_I64));
    return dc_cast(c, v, t);
}

/* ---- the rules --------------------------------------------------------------------------- */

/* The dtype a rule computes in: f16 and bf16 in f32, rounding once at the end as the
 * reference (which computes in double) does; chains of reductions would otherwise round
 * every partial result to 8 or 11 bits. */
static dl_dtype work_dtype(dl_dtype t) { return t == DL_F16 || t == DL_BF16 ? DL_F32 : t; }

static bool dim_is_one(dl_dim d) { return d.n == 0 && d.c == 1; }

static bool static_numel(int n, const dl_dim *dims, double *k)
{
    *k = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i].n)
            return false;
        *k *= (double)dims[i].c;
    }
    return true;
}

/* -- reductions over several runs of dimensions -- */

/* Which dimensions of its operand `op` reduces. */
static void reduced_dims(const dl_op *op, bool mask[DL_MAX_RANK])
{
    int r = op->in[0]->type.rank;
    const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dim");
    int n = !a ? 0 : a->kind == DL_ATTR_INT ? 1 : a->n;
    for (int d = 0; d < DL_MAX_RANK; d++)
        mask[d] = !a && d < r;
    for (int k = 0; k < n; k++) {
        int64_t d = a->kind == DL_ATTR_INT ? a->u.i : a->u.ints[k];
        d = d < 0 ? d + r : d;
        if (d >= 0 && d < r)
            mask[d] = true;
    }
}

/* The runs of set dimensions in mask, innermost first: [first[k], end[k]). */
static int dim_runs(int rank, const bool *mask, int *first, int *end)
{
    int n = 0;
    for (int d = rank - 1; d >= 0;) {
        if (!mask[d]) {
            d--;
            continue;
        }
        end[n] = d + 1;
        while (d >= 0 && mask[d])
            d--;
        first[n++] = d + 1;
    }
    return n;
}

/* `code` over each run in turn, keeping the dimensions. sum, max, min and prod nest as they
 * are; mean too, since every group it averages has the same size. */
static dl_value *reduce_runs(dc *c, dl_opcode code, dl_value *x, int n, const int *first,
                             const int *end)
{
    for (int k = 0; k < n; k++) {
        int64_t dims[DL_MAX_RANK];
        for (int d = first[k]; d < end[k]; d++)
            dims[d - first[k]] = d;
        x = dc_reduce(c, code, x, end[k] - first[k], dims, true);
    }
    return x;
}

/* A reduction whose dimensions are not one contiguous run (the native kernels take one)
 * becomes a chain of reductions over runs, innermost first; var, std and logsumexp become
 * their two-pass definitions over such chains. */
bool dc_reduction(dc *c, dl_op *op, dl_value **res)
{
    dl_value *x = op->in[0];
    const dl_type *xt = &x->type, *rt = &op->res[0].type;
    bool mask[DL_MAX_RANK];
    int first[DL_MAX_RANK], end[DL_MAX_RANK];
    reduced_dims(op, mask);
    int nruns = dim_runs(xt->rank, mask, first, end);
    if (nruns <= 1)
        return false;
    /* A kept dimension of size 1 between reduced ones can be reduced too: fewer runs. */
    bool runs_mask[DL_MAX_RANK];
    memcpy(runs_mask, mask, sizeof runs_mask);
    for (int d = first[nruns - 1]; d < end[0]; d++)
        runs_mask[d] |= dim_is_one(xt->dim[d]);
    nruns = dim_runs(xt->rank, runs_mask, first, end);
    dl_opcode code = op->code;
    dl_dtype ct = code == DL_OP_MAX || code == DL_OP_MIN ? xt->dtype : work_dtype(xt->dtype);
    dl_value *xc = dc_cast(c, x, ct), *r;
    switch (code) {
    case DL_OP_VAR:
    case DL_OP_STD: {
        /* Two passes as the reference; torch divides by max(0, count - correction). */
        dl_value *d = dc_bin(c, DL_OP_SUB, xc, reduce_runs(c, DL_OP_MEAN, xc, nruns, first, end));
        dl_value *sq = dc_bin(c, DL_OP_MUL, d, d);
        int64_t corr = IR_OP_ATTR(int, op, "correction");
        if (corr == 0)
            r = reduce_runs(c, DL_OP_MEAN, sq, nruns, first, end);
        else {
            dl_dim dims[DL_MAX_RANK];
            int n = 0;
            for (int i = 0; i < xt->rank; i++)
                if (mask[i])
                    dims[n++] = xt->dim[i];
            double k;
            dl_value *den;
            if (static_numel(n, dims, &k))
                den = dc_scalar(c, k > (double)corr ? k - (double)corr : 0, ct);
            else {
                den = dc_numel(c, n, dims, ct);
                den = dc_bin(c, DL_OP_SUB, den, dc_scalar(c, (double)corr, ct));
                den = dc_bin(c, DL_OP_MAXIMUM, den, dc_scalar(c, 0, ct));
            }
            r = dc_bin(c, DL_OP_DIV, reduce_runs(c, DL_OP_SUM, sq, nruns, first, end), den);
        }
        if (code == DL_OP_STD)
            r = dc_un(c, DL_OP_SQRT, r);
        break;
    }
    case DL_OP_LOGSUMEXP: {
        /* Shifted by the maximum, except an infinite one (all -inf, or a +inf): the
         * reference, like torch, leaves those unshifted. */
        dl_value *m = reduce_runs(c, DL_OP_MAX, xc, nruns, first, end);
        dl_value *inf = dc_un(c, DL_OP_ABS, m);
        inf = dc_bin(c, DL_OP_EQ, inf, dc_scalar(c, INFINITY, ct));
        dl_value *shift = dc_where(c, inf, dc_scalar(c, 0, ct), m);
        dl_value *e = dc_un(c, DL_OP_EXP, dc_bin(c, DL_OP_SUB, xc, shift));
        r = dc_un(c, DL_OP_LOG, reduce_runs(c, DL_OP_SUM, e, nruns, first, end));
        r = dc_bin(c, DL_OP_ADD, r, shift);
        break;
    }
    default: r = reduce_runs(c, code, xc, nruns, first, end); break;
    }
    r = dc_cast(c, r, rt->dtype);
    res[0] = ir_type_eq(&r->type, rt) ? r : dc_reshape(c, r, rt);
    return true;
}

/* -- batch_norm -- */

/* v [C] (or [1, C, 1]) as like's [C, 1, ...], which broadcasts against x [N, C, ...]. */
static dl_value *per_channel(dc *c, dl_value *v, const dl_type *like)
{
    return ir_type_eq(&v->type, like) ? v : dc_reshape(c, v, like);
}

/* Training takes the batch statistics over x viewed as [N, C, S]: means over dimension 2 then
 * 0 (one run each). It normalises with the biased variance and updates running_var with the
 * unbiased one, dividing by count - 1 even where that is 0 (N = S = 1 at run time), as the
 * reference does. The normalisation itself is one elementwise chain over x (which fuses with
 * what follows, a relu say), its per-channel operands built first. */
bool dc_batch_norm(dc *c, dl_op *op, dl_value **res)
{
    dl_value *x = op->in[0];
    const dl_type *xt = &x->type;
    dl_dtype t = xt->dtype, ct = work_dtype(t);
    dl_dim S = ir_dim_const(1);
    for (int d = 2; d < xt->rank; d++)
        if (!ir_dim_mul(S, xt->dim[d], &S))
            return false;     /* too many symbols to name S: left to the reference */
    dl_type tc = {.dtype = ct, .rank = xt->rank - 1, .dim = {xt->dim[1]}};
    for (int d = 1; d < tc.rank; d++)
        tc.dim[d] = ir_dim_const(1);
    dl_value *xc = dc_cast(c, x, ct), *p[4], *mean, *var;
    for (int i = 0; i < 4; i++)
        p[i] = dc_cast(c, op->in[1 + i], ct);
    if (IR_OP_ATTR(bool, op, "training")) {
        dl_type t3 = shape_type(ct, 3, (dl_dim[]){xt->dim[0], xt->dim[1], S});
        dl_value *x3 = dc_reshape(c, xc, &t3);
        /* Runs {2} then {0}; only {0} when S is 1. */
        int skip = dim_is_one(S), first[2] = {2, 0}, end[2] = {3, 1};
        mean = reduce_runs(c, DL_OP_MEAN, x3, 2 - skip, first + skip, end + skip);
        dl_value *d = dc_bin(c, DL_OP_SUB, x3, mean);
        dl_value *ss = reduce_runs(c, DL_OP_SUM, dc_bin(c, DL_OP_MUL, d, d), 2 - skip, first + skip,
                                   end + skip);
        dl_dim nd[2] = {xt->dim[0], S};
        double k;
        dl_value *cnt, *cnt1;
        if (static_numel(2, nd, &k)) {
            cnt = dc_scalar(c, k, ct);
            cnt1 = dc_scalar(c, k - 1, ct);
        } else {
            cnt = dc_numel(c, 2, nd, ct);
            cnt1 = dc_bin(c, DL_OP_SUB, cnt, dc_scalar(c, 1, ct));
        }
        var = dc_bin(c, DL_OP_DIV, ss, cnt);
        dl_value *unbiased = dc_bin(c, DL_OP_DIV, ss, cnt1);
        double mom = IR_OP_ATTR(float, op, "momentum");
        dl_value *keep = dc_scalar(c, 1 - mom, ct), *take = dc_scalar(c, mom, ct);
        dl_value *stat[2] = {mean, unbiased};
        for (int i = 0; i < 2; i++) {
            dl_value *now = dc_reshape(c, stat[i], &p[2 + i]->type);
            dl_value *old = dc_bin(c, DL_OP_MUL, p[2 + i], keep);
            dl_value *upd = dc_bin(c, DL_OP_ADD, old, dc_bin(c, DL_OP_MUL, now, take));
            res[1 + i] = dc_cast(c, upd, t);
        }
    } else {
        mean = p[2];
        var = p[3];
        res[1] = op->in[3];
        res[2] = op->in[4];
    }
    dl_value *eps = dc_scalar(c, IR_OP_ATTR(float, op, "eps"), ct);
    dl_value *inv = dc_un(c, DL_OP_RSQRT, dc_bin(c, DL_OP_ADD, var, eps));
    dl_value *m = per_channel(c, mean, &tc), *s = per_channel(c, inv, &tc);
    dl_value *w = per_channel(c, p[0], &tc), *b = per_channel(c, p[1], &tc);
    dl_value *y = dc_bin(c, DL_OP_MUL, dc_bin(c, DL_OP_SUB, xc, m), s);
    y = dc_bin(c, DL_OP_ADD, dc_bin(c, DL_OP_MUL, y, w), b);
    res[0] = dc_cast(c, y, t);
    return true;
}

/* -- matrix products, convolutions, pooling -- */

/* f32 matrices (rank >= 2) whose batch dimensions broadcast: a right operand with only unit
 * batch dimensions drops them (the kernel folds the left one's batch into rows); otherwise
 * both operands are broadcast to the common batch shape. */
static dl_value *batched_matmul(dc *c, dl_value *a, dl_value *b)
{
    const dl_type *at = &a->type, *bt = &b->type;
    bool unit = true;
    for (int d = 0; d + 2 < bt->rank; d++)
        unit &= dim_is_one(bt->dim[d]);
    if (unit && bt->rank > 2)
        return dc_bin(c, DL_OP_MATMUL, a, dc_reshape(c, b, &(dl_type){.rank = 2,
                      .dim = {bt->dim[bt->rank - 2], bt->dim[bt->rank - 1]}}));
    int nb = (at->rank > bt->rank ? at->rank : bt->rank) - 2;
    dl_type ta = {.dtype = at->dtype, .rank = nb + 2}, tb = ta;
    for (int i = 0; i < nb; i++) {
        int ia = at->rank - 2 - nb + i, ib = bt->rank - 2 - nb + i;
        dl_dim da = ia >= 0 ? at->dim[ia] : ir_dim_const(1);
        dl_dim db = ib >= 0 ? bt->dim[ib] : ir_dim_const(1);
        ta.dim[i] = tb.dim[i] = dim_is_one(da) ? db : da;
    }
    for (int i = 0; i < 2; i++) {
        ta.dim[nb + i] = at->dim[at->rank - 2 + i];
        tb.dim[nb + i] = bt->dim[bt->rank - 2 + i];
    }
    dl_attr sa = dc_shape(c, "shape", &ta), sb = dc_shape(c, "shape", &tb);
    if (!ir_type_eq(at, &ta))
        a = dc_op(c, DL_OP_BROADCAST_TO, 1, &a, 1, &sa);
    if (!ir_type_eq(bt, &tb))
        b = dc_op(c, DL_OP_BROADCAST_TO, 1, &b, 1, &sb);
    return dc_bin(c, DL_OP_MATMUL, a, b);
}

/* a [.., M, K] @ b [.., K, N] as sum over K of a[.., M, K, 1] * b[.., 1, K, N], batch
 * dimensions broadcasting in the product. Integers multiply and add in i64, wrapping as the
 * reference does, and are truncated to their dtype at the end: exact. */
static dl_value *matmul_by_sum(dc *c, dl_value *a, dl_value *b)
{
    dl_dtype ct = ir_dtype_is_int(a->type.dtype) ? DL_I64 : a->type.dtype;
    dl_attr last = dc_int(c, "dim", -1), third = dc_int(c, "dim", -3);
    dl_value *a4 = dc_op(c, DL_OP_UNSQUEEZE, 1, (dl_value *[]){dc_cast(c, a, ct)}, 1, &last);
    dl_value *b4 = dc_op(c, DL_OP_UNSQUEEZE, 1, (dl_value *[]){dc_cast(c, b, ct)}, 1, &third);
    dl_value *p = dc_bin(c, DL_OP_MUL, a4, b4);
    int64_t k = p->type.rank - 2;
    return dc_cast(c, dc_reduce(c, DL_OP_SUM, p, 1, &k, false), a->type.dtype);
}

/* f16 and bf16 convolutions and pooling run in f32 (f64 ones stay on the reference). */
static bool window_in_f32(dc *c, dl_op *op, dl_value **res)
{
    dl_dtype t = op->res[0].type.dtype;
    if (t != DL_F16 && t != DL_BF16)
        return false;
    dl_value *in[3];
    for (int i = 0; i < op->nin && i < 3; i++)
        in[i] = dc_cast(c, op->in[i], work_dtype(op->in[i]->type.dtype));
    res[0] = dc_cast(c, dc_op(c, op->code, op->nin, in, op->nattr, op->attr), t);
    return true;
}

/* Every matmul the native kernel does not take becomes one it takes: f16 and bf16 through
 * f32 (rounded once, as the reference's double), vectors as matrices, broadcast batches made
 * explicit; f64 and integers as a product and a sum over K. */
bool dc_linear(dc *c, dl_op *op, dl_value **res)
{
    if (op->code != DL_OP_MATMUL)
        return op->nin <= 3 && window_in_f32(c, op, res);
    dl_value *a = op->in[0], *b = op->in[1];
    const dl_type *rt = &op->res[0].type;
    dl_dtype t = a->type.dtype;
    if (t == DL_F16 || t == DL_BF16) {
        /* The f32 matmul is rewritten in turn where the kernel does not take its shape. */
        a = dc_cast(c, a, DL_F32);
        b = dc_cast(c, b, DL_F32);
        res[0] = dc_cast(c, dc_bin(c, DL_OP_MATMUL, a, b), t);
        return true;
    }
    if (dc_matmul_native(&a->type, &b->type))
        return false;
    if (a->type.rank == 1)
        a = dc_reshape(c, a, &(dl_type){.rank = 2, .dim = {ir_dim_const(1), a->type.dim[0]}});
    if (b->type.rank == 1)
        b = dc_reshape(c, b, &(dl_type){.rank = 2, .dim = {b->type.dim[0], ir_dim_const(1)}});
    dl_value *r = t == DL_F32 ? batched_matmul(c, a, b) : matmul_by_sum(c, a, b);
    res[0] = ir_type_eq(&r->type, rt) ? r : dc_reshape(c, r, rt);
    return true;
}

/* ---- the pass ---------------------------------------------------------------------------- */

static bool rewrite(dc *c, dl_op *op, dl_value **res)
{
    switch (op->code) {
    case DL_OP_SUM: case DL_OP_MEAN: case DL_OP_MAX: case DL_OP_MIN: case DL_OP_PROD:
    case DL_OP_VAR: case DL_OP_STD: case DL_OP_LOGSUMEXP:
        return dc_reduction(c, op, res);
    case DL_OP_BATCH_NORM:
        return dc_batch_norm(c, op, res);
    case DL_OP_MATMUL: case DL_OP_CONV2D: case DL_OP_CONV_TRANSPOSE2D: case DL_OP_MAX_POOL2D:
    case DL_OP_AVG_POOL2D: case DL_OP_ADAPTIVE_AVG_POOL2D:
        return dc_linear(c, op, res);
    default:
        return dc_loss(c, op, res);
    }
}

bool pass_decompose(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)opts, (void)diag;
    for (dl_func *f = m->first; f; f = f->next)
        for (dl_op *op = f->first, *next; op; op = next) {
            next = op->next;
            ir_op_resolve_operands(op);
            dc c = {.f = f, .at = op};
            dl_op *before = op->prev;
            dl_value *res[8] = {0};
            if (op->nres > 8 || !rewrite(&c, op, res))
                continue;
            for (int r = 0; r < op->nres; r++) {
                SUP_ASSERT(res[r] && ir_type_eq(&res[r]->type, &op->res[r].type));
                op->res[r].repl = res[r];
            }
            /* Rules may build ops that decompose further (a loss into a non-contiguous
             * reduction): the walk goes on from the first op just built. */
            next = before ? before->next : f->first;
            ir_op_remove(op);
        }
    return true;
}
