/* What the files of the reference interpreter share: concrete tensors, element access through
 * doubles (rounded to the dtype on store), index helpers, and one entry point per op family. */
#ifndef DLC_CODEGEN_REF_INTERNAL_H
#define DLC_CODEGEN_REF_INTERNAL_H

#include "ir/ir.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ref_t {
    dl_dtype dt;
    int      rank;
    int64_t  dim[DL_MAX_RANK];
    int64_t  n;          /* element count */
    void    *data;
} ref_t;

typedef struct ref_ctx {
    char  *err;
    size_t errlen;
} ref_ctx;

bool ref_fail(ref_ctx *c, const dl_op *op, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

double  ref_get(const ref_t *t, int64_t i);
void    ref_set(ref_t *t, int64_t i, double v);     /* rounds or wraps to t's dtype */
int64_t ref_geti(const ref_t *t, int64_t i);        /* integer dtypes, exact for i64 */
void    ref_seti(ref_t *t, int64_t i, int64_t v);
int     ref_esize(const ref_t *t);
/* Row-major strides of t. */
void    ref_strides(const ref_t *t, int64_t st[DL_MAX_RANK]);
/* The offset in x of element i of a tensor of shape (rank, dim) that x broadcasts to. */
int64_t ref_bcast_off(const ref_t *x, int rank, const int64_t *dim, int64_t i);
/* Normalises a possibly negative dimension. */
int     ref_norm_dim(int64_t d, int rank);

/* Splits x around dimension d: outer * len * inner with element (o, k, i) at
 * (o * len + k) * inner + i. */
void ref_around(const ref_t *x, int d, int64_t *outer, int64_t *len, int64_t *inner);

/* One per family; out[] is allocated with the result shapes before the call. */
bool ref_elem(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out);
bool ref_reduce(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out);
bool ref_shape(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out);
bool ref_nn(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out);
bool ref_loss(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out);

#define RATTR(kind, name) ir_attr_##kind(op->nattr, op->attr, op->code, (name))
#define RFIND(name) ir_attr_find(op->nattr, op->attr, (name))

#endif
