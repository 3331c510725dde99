/* Convolutions and pooling for the CPU backend, as C run by cg_cpu_run (like the matrix
 * products): conv2d as im2col and one gemm per (image, group), conv_transpose2d as one gemm per
 * (image, group) and col2im, max/avg/adaptive-average pooling as direct loops over the (n, c)
 * planes. All f32, split across the runtime's thread pool, with exactly the reference's
 * semantics (padding, dilation, groups, ceil_mode, count_include_pad, NaN in max pooling); sums
 * are f32, so results agree with the float64 reference to rounding. */
#ifndef DLC_CODEGEN_CPU_CONV_H
#define DLC_CODEGEN_CPU_CONV_H

#include "codegen/cpu/gemm.h"
#include "codegen/ref/interp.h"
#include "ir/ir.h"
#include "runtime/pool.h"

#include <stdbool.h>
#include <stddef.h>

/* Runs `op` (conv2d, conv_transpose2d, conv2d_grad_weight, max_pool2d, max_pool2d_grad, avg_pool2d
 * or adaptive_avg_pool2d, every
 * operand f32: the plan's CG_K_CONV kernels) on concrete operands into `out` (types and storage from the
 * caller, as for cg_ref_op). g runs the matrix products; pool may be NULL (the calling thread
 * alone). False with a message in err when scratch memory cannot be allocated. */
bool cg_conv_run(cg_gemm *g, rt_pool *pool, const dl_op *op, const cg_tensor *in, cg_tensor *out,
                 char *err, size_t errlen);

/* The matrix product that dominates op's run at these operand types (conv2d: one block of
 * im2col columns; conv_transpose2d and conv2d_grad_weight likewise), for max-autotune to time
 * its candidates on; false for pooling and empty convolutions, which multiply nothing. */
bool cg_conv_gemm_shape(const dl_op *op, const cg_tensor *in, const cg_tensor *out, cg_gemm_shape *s);

#endif
