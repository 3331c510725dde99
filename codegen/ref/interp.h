/* The reference interpreter of the IR: runs a function op by op with plain loops, float64
 * accumulation and PyTorch's semantics. It is the oracle the compiled backends are checked
 * against (tests/goldens hold PyTorch's answers for it), so it favours clarity over speed. */
#ifndef DLC_CODEGEN_REF_INTERP_H
#define DLC_CODEGEN_REF_INTERP_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A tensor with concrete dimensions (every dim has n == 0), row-major, stored in its dtype:
 * f16 and bf16 as their 16-bit patterns, bool as one byte 0 or 1. */
typedef struct cg_tensor {
    dl_type type;
    void   *data;
} cg_tensor;

/* Runs f on args (one per function argument, concrete shapes; the symbolic dimensions of the
 * signature are bound from them and must agree). Fills results[0..f->nresults) with data the
 * caller owns and frees with cg_tensor_free. `assign` ops write their value into the buffer
 * argument's data after the function has run (the update takes effect after the step). False
 * with a message in err: a shape mismatch naming the argument, an integer division by zero, an
 * index out of range; results are then left empty. */
bool cg_ref_run(const dl_func *f, cg_tensor *args, cg_tensor *results, char *err, size_t errlen);
void cg_tensor_free(cg_tensor *t);

/* Runs one op (not assign or return) on concrete operands into `out`, whose types and storage
 * the caller provides: the reference implementation of any op, for backends that have no
 * kernel of their own for it yet. */
bool cg_ref_op(const dl_op *op, const cg_tensor *in, cg_tensor *out, char *err, size_t errlen);

/* Element i (row-major) of t as a double, and storing one (rounded or wrapped to t's dtype,
 * as pass_round_to does). i64 beyond 2^53 is not exact through these. */
double cg_tensor_get(const cg_tensor *t, int64_t i);
void   cg_tensor_set(cg_tensor *t, int64_t i, double v);

#endif
