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
