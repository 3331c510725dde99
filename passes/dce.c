/* Dead code elimination: an op without effects whose results nobody uses goes. Walking
 * backwards removes whole dead chains in one sweep, since removing an op releases its operands. */
#include "passes/pass.h"

bool pass_dce(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)opts;
    (void)diag;
    for (dl_func *f = m->first; f; f = f->next) {
        for (dl_op *op = f->last, *prev; op; op = prev) {
            prev = op->prev;
            if (ir_op_info(op->code)->props & P_EFFECT)
                continue;
            bool used = false;
            for (int i = 0; i < op->nres; i++)
                used |= op->res[i].nuses > 0;
            if (!used)
                ir_op_remove(op);
        }
    }
    return true;
}
