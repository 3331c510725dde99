/* STUB */
#include "passes/autodiff.h"

bool grad_none(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_cast(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_unary(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_binary(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_where(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

