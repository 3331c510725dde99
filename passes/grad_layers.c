/* STUB: gradient rules of gathers, convolutions, pooling and batch_norm */
#include "passes/autodiff.h"

bool grad_gather(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_index_select(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_embedding(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_conv2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_conv_transpose2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_max_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_avg_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_adaptive_avg_pool2d(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

bool grad_batch_norm(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)dy;
    (void)dx;
    return gd_error(g, op, "no gradient rule yet");
}

