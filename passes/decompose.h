/* What the decompose pass's rule files share: a cursor that builds new ops in front of the op
 * being rewritten (with its location and checkpoint region), and short constructors for the
 * ops and attributes rules use. A construction that fails shape inference is a bug in a rule
 * and asserts. */
#ifndef DLC_PASSES_DECOMPOSE_H
#define DLC_PASSES_DECOMPOSE_H

#include "ir/ir.h"

typedef struct dc {
    dl_func *f;
    dl_op   *at;          /* the op being rewritten: new ops go in front of it */
    const dl_op *origin;  /* whose source location new ops get (NULL: at's) */
} dc;

/* Attributes; names and strings are interned in the module. */
dl_attr dc_int(dc *c, const char *name, int64_t v);
dl_attr dc_ints(dc *c, const char *name, int n, const int64_t *v);
dl_attr dc_float(dc *c, const char *name, double v);
dl_attr dc_bool(dc *c, const char *name, bool v);
dl_attr dc_str(dc *c, const char *name, const char *v);
dl_attr dc_dtype(dc *c, const char *name, dl_dtype v);
dl_attr dc_shape(dc *c, const char *name, const dl_type *like);   /* like's dimensions */

/* One op, its result type inferred; returns its first result. */
dl_value *dc_op(dc *c, dl_opcode code, int nin, dl_value *const *in, int nattr, const dl_attr *attr);
dl_value *dc_un(dc *c, dl_opcode code, dl_value *x);
dl_value *dc_bin(dc *c, dl_opcode code, dl_value *a, dl_value *b);
dl_value *dc_where(dc *c, dl_value *cond, dl_value *a, dl_value *b);
dl_value *dc_scalar(dc *c, double v, dl_dtype t);                   /* a rank-0 constant */
/* A constant of type t holding v[0..n) (copied), n == 1 being a splat. */
dl_value *dc_constant(dc *c, const dl_type *t, int n, const double *v);
dl_value *dc_cast(dc *c, dl_value *x, dl_dtype t);                  /* x itself if already t */
dl_value *dc_reshape(dc *c, dl_value *x, const dl_type *like);      /* to like's dimensions */
/* sum, mean, max, ... over dims[0..n) (n < 0: every dimension). */
dl_value *dc_reduce(dc *c, dl_opcode code, dl_value *x, int n, const int64_t *dims, bool keepdim);
/* The product of dims[0..n) as a rank-0 value of dtype t: a constant when they are static,
 * else computed at run time (one i64 sum over each symbol, N elements for N). */
dl_value *dc_numel(dc *c, int n, const dl_dim *dims, dl_dtype t);

/* The matrix products the backends' kernels take, which dc_linear brings every other to: f32,
 * both operands of rank >= 2 (the left one's leading dimensions fold into the rows) with a
 * matrix on the right, or equal batch dimensions on both sides. */
bool dc_matmul_native(const dl_type *a, const dl_type *b);
/* op when it is a transpose or permute that swaps the last two dimensions only, else NULL. */
const dl_op *dc_swap_last2(const dl_op *op);
/* An op an elementwise kernel computes: P_ELEM with one result, expand and broadcast_to (the
 * kernel's loop broadcasts), a constant (a leaf), dropout (its mask a function of the position). */
bool dc_fusible(const dl_op *op);
/* The dimensions [*first, *end) of op's input that a reduction, softmax or layer_norm runs over,
 * when they are one contiguous run (false otherwise, or for other ops). */
bool dc_reduce_run(const dl_op *op, int *first, int *end);
/* An op the reduction kernel takes: one contiguous run of reduced dimensions, a float input, or
 * an integer one for sum, prod, max, min, argmax and argmin. */
bool dc_reduce_native(const dl_op *op);
/* How a reduction's fused producer reads operand type v, for a reduction over dimensions
 * [first, end) of x: at the element's position (the same shape), its one element, or at the
 * reduced position (v is x with the reduced dimensions 1: a kept mean, a row's maximum); -1
 * when none of these (the producer is not fused). */
enum { DC_READ_FULL, DC_READ_ONE, DC_READ_KEPT };
int  dc_reduce_operand(const dl_type *x, int first, int end, const dl_type *v);

/* The rules: each returns false when `op` stays as it is, else fills res[0..op->nres) with
 * values of exactly op's result types. */
bool dc_reduction(dc *c, dl_op *op, dl_value **res);     /* decompose.c */
bool dc_batch_norm(dc *c, dl_op *op, dl_value **res);    /* decompose.c */
bool dc_linear(dc *c, dl_op *op, dl_value **res);        /* decompose.c: matmul, conv dtypes */
bool dc_loss(dc *c, dl_op *op, dl_value **res);          /* decompose_loss.c: losses, metrics */

#endif
