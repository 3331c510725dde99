/* What the backends' kernels take (decompose.h): predicates the decompose and fuse passes
 * and the code generators' planner share, in a file of its own so that the run time of AOT
 * libraries, which plans but never decomposes, carries it without the pass. */
#include "passes/decompose.h"

bool dc_matmul_native(const dl_type *a, const dl_type *b)
{
    if (a->dtype != DL_F32 || a->rank < 2 || b->rank < 2)
        return false;
    if (b->rank == 2)
        return true;
    if (a->rank != b->rank)
        return false;
    for (int d = 0; d + 2 < a->rank; d++)
        if (!ir_dim_eq(a->dim[d], b->dim[d]))
            return false;
    return true;
}

const dl_op *dc_swap_last2(const dl_op *op)
{
    if (!op || (op->code != DL_OP_TRANSPOSE && op->code != DL_OP_PERMUTE))
        return NULL;
    int r = op->in[0]->type.rank;
    if (r < 2)
        return NULL;
    int64_t perm[DL_MAX_RANK];
    for (int d = 0; d < r; d++)
        perm[d] = d;
    if (op->code == DL_OP_PERMUTE) {
        const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dims");
        for (int d = 0; d < r; d++)
            perm[d] = (a->u.ints[d] % r + r) % r;
    } else {
        int64_t d0 = (IR_OP_ATTR(int, op, "dim0") % r + r) % r, d1 = (IR_OP_ATTR(int, op, "dim1") % r + r) % r;
        perm[d0] = d1, perm[d1] = d0;
    }
    for (int d = 0; d + 2 < r; d++)
        if (perm[d] != d)
            return NULL;
    return perm[r - 2] == r - 1 && perm[r - 1] == r - 2 ? op : NULL;
}

bool dc_fusible(const dl_op *op)
{
    return ((ir_op_info(op->code)->props & P_ELEM) && op->nres == 1) || op->code == DL_OP_EXPAND ||
           op->code == DL_OP_BROADCAST_TO || op->code == DL_OP_CONSTANT || op->code == DL_OP_DROPOUT;
}

bool dc_reduce_run(const dl_op *op, int *first, int *end)
{
    if (op->nin < 1 || !(ir_op_info(op->code)->props & P_REDUCE || op->code == DL_OP_SOFTMAX ||
                          op->code == DL_OP_LOG_SOFTMAX || op->code == DL_OP_LAYER_NORM))
        return false;
    const dl_type *x = &op->in[0]->type;
    int r = x->rank;
    bool mask[DL_MAX_RANK] = {0};
    switch (op->code) {
    case DL_OP_SUM: case DL_OP_MEAN: case DL_OP_MAX: case DL_OP_MIN: case DL_OP_PROD:
    case DL_OP_LOGSUMEXP: case DL_OP_VAR: case DL_OP_STD: case DL_OP_ARGMAX: case DL_OP_ARGMIN: {
        const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dim");
        int n = !a ? 0 : a->kind == DL_ATTR_INT ? 1 : a->n;
        for (int d = 0; d < r; d++)
            mask[d] = !a;
        for (int k = 0; k < n; k++) {
            int64_t d = a->kind == DL_ATTR_INT ? a->u.i : a->u.ints[k];
            d = d < 0 ? d + r : d;
            if (d >= 0 && d < r)
                mask[d] = true;
        }
        break;
    }
    case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX: {
        int64_t d = IR_OP_ATTR(int, op, "dim");
        d = d < 0 ? d + r : d;
        if (d >= 0 && d < r)
            mask[d] = true;
        break;
    }
    case DL_OP_LAYER_NORM:
        for (int d = r - ir_attr_find(op->nattr, op->attr, "normalized_shape")->n; d < r; d++)
            mask[d] = d >= 0;
        break;
    default: return false;
    }
    int f = 0;
    while (f < r && !mask[f])
        f++;
    int e = f;
    while (e < r && mask[e])
        e++;
    for (int d = e; d < r; d++)
        if (mask[d])
            return false;
    *first = f, *end = e;
    return true;
}

/* An op a native reduction kernel takes: one contiguous run of reduced dimensions, a float
 * input, or an integer one for sum, prod, max, min, argmax and argmin. */
bool dc_reduce_native(const dl_op *op)
{
    int first, end;
    if (!dc_reduce_run(op, &first, &end))
        return false;
    dl_dtype t = op->in[0]->type.dtype;
    if (ir_dtype_is_float(t))
        return true;
    return t != DL_BOOL && (op->code == DL_OP_SUM || op->code == DL_OP_PROD || op->code == DL_OP_MAX ||
                            op->code == DL_OP_MIN || op->code == DL_OP_ARGMAX || op->code == DL_OP_ARGMIN);
}

int dc_reduce_operand(const dl_type *x, int first, int end, const dl_type *v)
{
    bool one = true;
    for (int d = 0; d < v->rank; d++)
        one &= v->dim[d].n == 0 && v->dim[d].c == 1;
    if (one)
        return DC_READ_ONE;
    if (v->rank != x->rank)
        return -1;
    bool full = true, kept = true;
    for (int d = 0; d < x->rank; d++) {
        bool eq = ir_dim_eq(v->dim[d], x->dim[d]), is1 = v->dim[d].n == 0 && v->dim[d].c == 1;
        full &= eq;
        kept &= d >= first && d < end ? is1 : eq;
    }
    return full ? DC_READ_FULL : kept ? DC_READ_KEPT : -1;
}
