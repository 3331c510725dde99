/* Convolutions and pooling for the CPU backend, as C run by cg_cpu_run (like the matrix
 * products): conv2d, conv_transpose2d and conv2d_grad_weight run the gemm's micro-kernel over
 * im2col columns packed straight into its layout, one pool run per op over images; max/avg/
 * adaptive-average pooling and max_pool2d_grad are direct loops over the (n, c) planes. All f32,
 * split across the runtime's thread pool, with exactly the reference's semantics (padding,
 * dilation, groups, ceil_mode, count_include_pad, NaN in max pooling); sums are f32, so results
 * agree with the float64 reference to rounding. Scratch memory lives in the gemm and only grows:
 * after a first call with the largest shapes, calls allocate nothing. */
#ifndef DLC_CODEGEN_CPU_CONV_H
#define DLC_CODEGEN_CPU_CONV_H

#include "codegen/cpu/gemm.h"
#include "codegen/ref/interp.h"
#include "ir/ir.h"
#include "runtime/pool.h"

#include <stdbool.h>
#include <stddef.h>

/* Runs `op` (conv2d, conv_transpose2d, conv2d_grad_weight, max_pool2d, max_pool2d_grad,
 * avg_pool2d or adaptive_avg_pool2d, every operand f32: the plan's CG_K_CONV kernels) on concrete
 * operands into `out` (types and storage from the caller, as for cg_ref_op). g runs the matrix
 * products and holds the scratch; pool may be NULL (the calling thread alone). False with a
 * message in err when scratch memory cannot be allocated.
 *
 * epi (NULL: none) is an epilogue on the output's rows in an elementwise kernel's row space: the
 * output [N, C, H, W] viewed as N*C*H rows of W elements, epi->fn(epi->ctx, r0, r1) with r0 and
 * r1 offset by epi->row0. Every row is passed exactly once, after it is final. For conv2d and
 * conv_transpose2d that is as soon as the work item that computed it is done, on the thread that
 * computed it (the rows still in its cache): for each image n and group g, the group's channels
 * [n*C + g*C/groups, n*C + (g+1)*C/groups) times H as one range when an item covers whole
 * images (the usual case), else per channel the item's block of output rows. Calls for
 * different items may run at the same time on different threads. The other ops call it once
 * with all rows when they are done. */
bool cg_conv_run(cg_gemm *g, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                 const cg_gemm_epilogue *epi, char *err, size_t errlen);

/* The matrix product one work item of op runs at these operand types (conv2d and
 * conv_transpose2d: the weights against a block of columns; conv2d_grad_weight: one image's
 * columns against its gradient), for max-autotune to time its candidates on: the loops run the
 * chosen gemm's micro-kernel and blocking depth. False for pooling and empty convolutions, which
 * multiply nothing. */
bool cg_conv_gemm_shape(const dl_op *op, const cg_tensor *in, const cg_tensor *out, cg_gemm_shape *s);

#endif
