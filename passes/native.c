/* What the backends' matrix-product kernels take (decompose.h): a predicate the decompose pass
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
