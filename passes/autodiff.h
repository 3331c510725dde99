/* Reverse-mode automatic differentiation over the IR. autodiff.c walks a function backwards from
 * a scalar result, calling each op's gradient rule (named in ir/ops.def, written in
 * passes/grad_*.c), summing the contributions each value receives, and recomputing the ops of
 * `checkpoint { }` regions in the backward part instead of keeping their activations. */
#ifndef DLC_PASSES_AUTODIFF_H
#define DLC_PASSES_AUTODIFF_H

#include "passes/decompose.h"

/* What a gradient rule builds with: new ops go in front of c.at (the function's return, so the
 * backward part follows the forward one), with the dc_* constructors of decompose.h. */
typedef struct gd {
    dc          c;
    sup_arena  *scratch;
    /* Recomputed values of checkpoint regions: fwd[v->id] when set (autodiff.c). */
    dl_value  **fwd;
    int         nfwd;
    dl_diag    *diag;
    bool        failed;      /* a rule reported an error (e.g. an unsupported case) */
} gd;

/* A gradient rule: dy[r] is the gradient of op's result r (NULL when nothing depends on it, so
 * zero); the rule sets dx[i] to the gradient of operand i (same type as the operand) or leaves
 * it NULL (zero, or an operand ND() in ops.def). Forward values are read through gd_fwd, never
 * directly, so that checkpoint regions are recomputed. Returns false after reporting an error
 * through gd_error. */
typedef bool (*gd_rule)(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx);

#define OP(id, name, rule, grad, nodiff, min_in, max_in, nres, props, attrs) \
    bool grad(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx);
#include "ir/ops.def"
#undef OP

/* The forward value v as the backward part must read it: v itself, or its recomputation when v
 * is made inside a checkpoint region. */
dl_value *gd_fwd(gd *g, dl_value *v);
/* op's operand i / result r through gd_fwd. */
dl_value *gd_in(gd *g, const dl_op *op, int i);
dl_value *gd_res(gd *g, const dl_op *op, int r);
/* grad, of a value broadcast (NumPy rules) to grad's shape, summed back to `to`'s shape and cast
 * to its dtype. */
dl_value *gd_unbroadcast(gd *g, dl_value *grad, const dl_type *to);
/* A value of `like`'s type filled with v. */
dl_value *gd_fill(gd *g, const dl_type *like, double v);
/* grad reshaped (a view) or broadcast to exactly `to`'s shape. */
dl_value *gd_expand_to(gd *g, dl_value *x, const dl_type *to);
bool      gd_error(gd *g, const dl_op *op, const char *fmt, ...);
/* The rule of a composite op (a loss, batch_norm): op is rebuilt in the backward part from its
 * decomposition into primitives (`decompose`, one of decompose.h's rules), and that small graph
 * is differentiated with the primitives' rules, as JAX differentiates through a function. */
bool      gd_decomposed(gd *g, dl_op *op, bool (*decompose)(dc *, dl_op *, dl_value **),
                        dl_value *const *dy, dl_value **dx);

/* Appends to f, in front of its return, the gradient of result `result` (a floating-point
 * scalar) with respect to every argument with wrt[a] set; grads[a] receives each (a zero
 * constant when the result does not depend on it), NULL where wrt[a] is false. The function's
 * return and signature are unchanged: callers add the gradients where they need them. False
 * after reporting an error. */
bool pass_grad_build(dl_func *f, int result, const bool *wrt, dl_value **grads,
                     sup_arena *scratch, dl_diag *diag);

/* The arguments autodiff differentiates with respect to by default: parameters and
 * floating-point inputs (not buffers, not integer inputs). */
bool pass_grad_wants(const dl_func *f, int arg);

#endif
