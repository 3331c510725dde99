/* STUB */
#include "passes/autodiff.h"

bool grad_reshape(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_transpose(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_permute(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_expand(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_concat(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_stack(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_split(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_slice(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_pad(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

