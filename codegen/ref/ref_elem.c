/* Elementwise ops in the reference interpreter: broadcasting here, the scalar semantics in
 * passes/eval.c (the same code constant folding uses, so the two cannot drift apart). */
#include "codegen/ref/ref_internal.h"
#include "passes/eval.h"

bool ref_elem(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    /* `where` computes in the dtype of its branches; comparisons in that of their operands. */
    dl_dtype dt = op->code == DL_OP_WHERE ? in[1]->dt : in[0]->dt;
    for (int64_t i = 0; i < out->n; i++) {
        double x[3], r;
        for (int k = 0; k < op->nin; k++)
            x[k] = ref_get(in[k], ref_bcast_off(in[k], out->rank, out->dim, i));
        if (!pass_eval_elementwise(op, dt, x, &r))
            return ref_fail(c, op, "undefined at element %lld (%g, %g): integer division by zero "
                            "or a negative integer power", (long long)i, x[0], op->nin > 1 ? x[1] : 0);
        ref_set(out, i, r);
    }
    return true;
}
