/* scatter_add for the CPU backend, as C run by the executor (like conv.c): out = x, then each
 * src element added at its index along `dim`, in f32 as PyTorch's CPU kernel sums (the
 * reference sums in doubles). It writes only `out`, so a training step's embedding and
 * cross-entropy gradients allocate nothing per call. */
#ifndef DLC_CODEGEN_CPU_SCATTER_H
#define DLC_CODEGEN_CPU_SCATTER_H

#include "codegen/ref/interp.h"
#include "ir/ir.h"

#include <stdbool.h>
#include <stddef.h>

/* Runs an f32 scatter_add (the plan's CG_K_SCATTER kernels: f32 base and source, i64 or i32
 * index) on concrete operands into out (types and storage from the caller). False with the
 * reference's message when an index is out of range (out is then partly written). */
bool cg_scatter_run(const dl_op *op, const cg_tensor *in, cg_tensor *out, char *err, size_t errlen);

#endif
