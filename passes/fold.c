/* Constant folding: an elementwise op whose operands are all constants becomes a constant, and
 * so does a reshape-like op (reshape, flatten, squeeze, unsqueeze, expand, broadcast_to) of a
 * constant. Splats stay splats, whatever their shape (symbolic too); other results are folded
 * up to FOLD_LIMIT elements so the IR does not balloon. */
#include "passes/eval.h"
#include "passes/pass.h"

enum { FOLD_LIMIT = 1 << 16 };

static bool is_reshape_like(dl_opcode c)
{
    return c == DL_OP_RESHAPE || c == DL_OP_FLATTEN || c == DL_OP_SQUEEZE || c == DL_OP_UNSQUEEZE;
}

/* For output element `lin` of shape `out`, the element of `in` that broadcasting reads. */
static int64_t broadcast_index(const dl_type *out, const dl_type *in, int64_t lin)
{
    int64_t idx = 0, stride = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t n = out->dim[d].c, k = lin % n;
        lin /= n;
        int di = in->rank - out->rank + d;
        if (di < 0)
            continue;
        int64_t m = in->dim[di].c;
        idx += (m == 1 ? 0 : k) * stride;
        stride *= m;
    }
    return idx;
}

/* Folds `op` into a new constant inserted before it; NULL when it does not fold. */
static dl_value *fold_op(dl_func *f, dl_op *op, const dl_pass_opts *opts)
{
    const dl_op_info *info = ir_op_info(op->code);
    bool elem = info->props & P_ELEM, shape = is_reshape_like(op->code) ||
                op->code == DL_OP_EXPAND || op->code == DL_OP_BROADCAST_TO;
    if ((!elem && !shape) || op->nres != 1 || op->nin > 3)
        return NULL;
    const double *vals[3];
    int nvals[3];
    bool all_splat = true;
    for (int i = 0; i < op->nin; i++) {
        if (!pass_const_values(op->in[i], &vals[i], &nvals[i]))
            return NULL;
        all_splat &= nvals[i] == 1;
    }
    const dl_type *rt = &op->res[0].type;
    int64_t n = 1;
    if (!all_splat) {
        dl_dim numel;
        if (!ir_type_is_static(rt) || !ir_type_numel(rt, &numel) || numel.c > FOLD_LIMIT)
            return NULL;
        n = numel.c;
    }
    double *out = SUP_NEWN(&f->module->arena, double, n ? n : 1);
    if (shape) {
        for (int64_t k = 0; k < n; k++)
            out[k] = vals[0][all_splat ? 0 : is_reshape_like(op->code) ? k :
                             broadcast_index(rt, &op->in[0]->type, k)];
    } else {
        /* `where` computes in the dtype of its branches; the others in their first operand's. */
        dl_dtype t = op->in[op->code == DL_OP_WHERE ? 1 : 0]->type.dtype;
        double *tmp = SUP_NEWN(opts->scratch, double, 3);
        for (int64_t k = 0; k < n; k++) {
            for (int i = 0; i < op->nin; i++)
                tmp[i] = vals[i][nvals[i] == 1 ? 0 : broadcast_index(rt, &op->in[i]->type, k)];
            if (!pass_eval_elementwise(op, t, tmp, &out[k]))
                return NULL;
        }
    }
    dl_attr value = {.name = "value", .kind = DL_ATTR_FLOATS, .n = (int)(n ? n : 1),
                     .u.floats = out};
    if (n == 0)
        value.n = 0;
    dl_op *c = ir_op_create(f, DL_OP_CONSTANT, 0, NULL, 1, &value, 1, rt, op->loc, NULL);
    SUP_ASSERT(c);
    c->checkpoint = op->checkpoint;
    ir_op_insert_before(op, c);
    return &c->res[0];
}

bool pass_fold(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)diag;
    for (dl_func *f = m->first; f; f = f->next) {
        for (dl_op *op = f->first, *next; op; op = next) {
            next = op->next;
            ir_op_resolve_operands(op);
            dl_value *v = fold_op(f, op, opts);
            if (v) {
                op->res[0].repl = v;
                ir_op_remove(op);
            }
        }
    }
    return true;
}
