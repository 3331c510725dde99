/* Decomposition: composite ops become the primitives that every backend has native kernels
 * for (elementwise chains, reductions over one contiguous run of dimensions, f32 matrix
 * products, gather), as torch.compile's decompositions do before Inductor lowers a graph.
 * Runs before code generation, after autodiff (whose gradient rules want the composite ops),
 * and is not part of the target-independent pipeline that --emit=ir-opt shows.
 *
 * (rules to be written: see decompose.h)
 */
#include "passes/decompose.h"
#include "passes/pass.h"

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
    dl_op *op = ir_op_create(c->f, code, nin, in, nattr, attr, -1, NULL, c->at->loc, NULL);
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
    dl_op *op = ir_op_create(c->f, DL_OP_CONSTANT, 0, NULL, 1, &a, 1, &rt, c->at->loc, NULL);
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

/* ---- the rules --------------------------------------------------------------------------- */

bool dc_reduction(dc *c, dl_op *op, dl_value **res)
{
    (void)c, (void)op, (void)res;
    return false;
}

bool dc_batch_norm(dc *c, dl_op *op, dl_value **res)
{
    (void)c, (void)op, (void)res;
    return false;
}

bool dc_linear(dc *c, dl_op *op, dl_value **res)
{
    (void)c, (void)op, (void)res;
    return false;
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
    case DL_OP_MATMUL: case DL_OP_CONV2D: case DL_OP_CONV_TRANSPOSE2D:
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
