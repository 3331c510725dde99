/* Scalar reference semantics of the elementwise ops (PyTorch's), used by constant folding and
 * by the tests as the oracle. Values travel as doubles; integer dtypes compute in int64 and wrap
 * to their width, float dtypes round to theirs. Constant tensors are dl_op CONSTANTs whose
 * `value` holds one element (a splat) or all of them in row-major order. */
#ifndef DLC_PASSES_EVAL_H
#define DLC_PASSES_EVAL_H

#include "ir/ir.h"

/* Rounds (floats) or wraps (integers) v to what dtype t can hold. */
double pass_round_to(dl_dtype t, double v);

/* Evaluates elementwise op `op` on one element per operand (x[0..op->nin)), whose dtype is
 * `in_dtype` (the dtype of the data operands; `where` takes the dtype of its branches).
 * False when the op is not elementwise or the result is undefined here (integer division by
 * zero, a negative integer power), so a folder leaves such ops alone. */
bool pass_eval_elementwise(const dl_op *op, dl_dtype in_dtype, const double *x, double *out);

/* The constant behind v, if v is defined by a CONSTANT: its values and their count (1 for a
 * splat). */
bool pass_const_values(const dl_value *v, const double **vals, int *n);
/* True when v is a constant whose every element equals d. */
bool pass_is_splat(const dl_value *v, double d);

#endif
