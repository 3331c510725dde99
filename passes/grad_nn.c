/* STUB */
#include "passes/autodiff.h"

bool grad_reduce(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_matmul(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_softmax(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_layer_norm(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_dropout(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_sdpa(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_loss(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

