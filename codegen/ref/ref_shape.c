/* Shape and data-movement ops in the reference interpreter (reshape to one_hot, embedding,
 * scatter_add). They move bytes, never values through doubles, so i64 data is copied exactly;
 * scatter_add sums floats in doubles and integers in int64. */
#include "codegen/ref/ref_internal.h"

#include <stdlib.h>
#include <string.h>

static void cpy(ref_t *o, int64_t oi, const ref_t *x, int64_t xi)
{
    int es = ref_esize(x);
    memcpy((char *)o->data + oi * es, (const char *)x->data + xi * es, (size_t)es);
}

static void permute(const ref_t *x, const int *perm, ref_t *out)
{
    int64_t st[DL_MAX_RANK];
    ref_strides(x, st);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t rem = i, off = 0;
        for (int k = out->rank - 1; k >= 0; k--) {
            off += (rem % out->dim[k]) * st[perm[k]];
            rem /= out->dim[k];
        }
        cpy(out, i, x, off);
    }
}

/* concat (stack when `stack`, each operand one slice of the new dimension) and split. */
static void join(int n, ref_t *const *parts, int d, ref_t *whole, bool stack, bool split_)
{
    int64_t outer, len, inner, pos = 0;
    ref_around(whole, d, &outer, &len, &inner);
    int es = ref_esize(whole);
    for (int k = 0; k < n; k++) {
        int64_t lk = stack ? 1 : parts[k]->dim[d];
        for (int64_t o = 0; o < outer; o++) {
            char *w = (char *)whole->data + ((o * len + pos) * inner) * es;
            char *p = (char *)parts[k]->data + (o * lk * inner) * es;
            size_t bytes = (size_t)(lk * inner * es);
            if (split_)
                memcpy(p, w, bytes);
            else
                memcpy(w, p, bytes);
        }
        pos += lk;
    }
}

static void slice(const dl_op *op, const ref_t *x, ref_t *out)
{
    int d = ref_norm_dim(RATTR(int, "dim"), x->rank);
    int64_t n = x->dim[d], start = RATTR(int, "start"), step = RATTR(int, "step");
    if (start < 0)
        start += n;
    start = start < 0 ? 0 : start > n ? n : start;
    int64_t outer, len, inner;
    ref_around(x, d, &outer, &len, &inner);
    int64_t m = out->dim[d];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < m; j++)
            for (int64_t i = 0; i < inner; i++)
                cpy(out, (o * m + j) * inner + i, x, (o * len + start + j * step) * inner + i);
}

static void pad(const dl_op *op, const ref_t *x, ref_t *out)
{
    const dl_attr *p = RFIND("pad");
    double value = RATTR(float, "value");
    int64_t lo[DL_MAX_RANK] = {0}, ost[DL_MAX_RANK];
    for (int k = 0; k < p->n / 2; k++)
        lo[x->rank - 1 - k] = p->u.ints[2 * k];
    for (int64_t i = 0; i < out->n; i++)
        ref_set(out, i, value);
    ref_strides(out, ost);
    for (int64_t i = 0; i < x->n; i++) {
        int64_t rem = i, off = 0;
        bool inside = true;
        for (int k = x->rank - 1; k >= 0; k--) {
            int64_t c = rem % x->dim[k] + lo[k];
            rem /= x->dim[k];
            inside &= c >= 0 && c < out->dim[k];
            off += c * ost[k];
        }
        if (inside)
            cpy(out, off, x, i);
    }
}

static bool index_ok(ref_ctx *c, const dl_op *op, int64_t v, int64_t n)
{
    if (v >= 0 && v < n)
        return true;
    return ref_fail(c, op, "index %lld is out of range for a dimension of size %lld",
                    (long long)v, (long long)n);
}

static bool gather(ref_ctx *c, const dl_op *op, const ref_t *x, const ref_t *idx, ref_t *out)
{
    int d = ref_norm_dim(RATTR(int, "dim"), x->rank);
    int64_t st[DL_MAX_RANK];
    ref_strides(x, st);
    for (int64_t i = 0; i < out->n; i++) {
        int64_t v = ref_geti(idx, i), rem = i, off = 0;
        if (!index_ok(c, op, v, x->rank ? x->dim[d] : 1))
            return false;
        for (int k = out->rank - 1; k >= 0; k--) {
            off += (k == d ? v : rem % out->dim[k]) * st[k];
            rem /= out->dim[k];
        }
        cpy(out, i, x, off);
    }
    return true;
}

static bool index_select(ref_ctx *c, const dl_op *op, const ref_t *x, const ref_t *idx, ref_t *out)
{
    if (x->rank == 0) {
        if (!index_ok(c, op, ref_geti(idx, 0), 1))
            return false;
        cpy(out, 0, x, 0);
        return true;
    }
    int d = ref_norm_dim(RATTR(int, "dim"), x->rank);
    int64_t outer, len, inner, m = out->dim[d];
    ref_around(x, d, &outer, &len, &inner);
    for (int64_t j = 0; j < m; j++) {
        int64_t v = ref_geti(idx, j);
        if (!index_ok(c, op, v, len))
            return false;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++)
                cpy(out, (o * m + j) * inner + i, x, (o * len + v) * inner + i);
    }
    return true;
}

/* out = x; out[... index[i] ...] += src[i] along dim for every position i of the index. */
static bool scatter_add(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0], *idx = in[1], *src = in[2];
    int d = ref_norm_dim(RATTR(int, "dim"), x->rank);
    bool fl = ir_dtype_is_float(x->dt);
    double *acc = fl ? malloc((size_t)(x->n ? x->n : 1) * sizeof *acc) : NULL;
    if (fl && !acc)
        return ref_fail(c, op, "out of memory");
    memcpy(out->data, x->data, (size_t)(x->n * ref_esize(x)));
    for (int64_t i = 0; fl && i < x->n; i++)
        acc[i] = ref_get(x, i);
    int64_t xst[DL_MAX_RANK], sst[DL_MAX_RANK];
    ref_strides(x, xst);
    ref_strides(src, sst);
    bool ok = true;
    for (int64_t i = 0; ok && i < idx->n; i++) {
        int64_t v = ref_geti(idx, i), rem = i, xo = 0, so = 0;
        if (!(ok = index_ok(c, op, v, x->rank ? x->dim[d] : 1)))
            break;
        for (int k = idx->rank - 1; k >= 0; k--) {
            int64_t at = rem % idx->dim[k];
            rem /= idx->dim[k];
            xo += (k == d ? v : at) * xst[k];
            so += at * sst[k];
        }
        if (fl)
            acc[xo] += ref_get(src, so);
        else
            ref_seti(out, xo, (int64_t)((uint64_t)ref_geti(out, xo) + (uint64_t)ref_geti(src, so)));
    }
    for (int64_t i = 0; ok && fl && i < x->n; i++)
        ref_set(out, i, acc[i]);
    free(acc);
    return ok;
}

static bool one_hot(ref_ctx *c, const dl_op *op, const ref_t *x, ref_t *out)
{
    int64_t k = RATTR(int, "num_classes");
    for (int64_t i = 0; i < x->n; i++) {
        int64_t v = ref_geti(x, i);
        if (!index_ok(c, op, v, k))
            return false;
        ref_set(out, i * k + v, 1);     /* the rest is zero from allocation */
    }
    return true;
}

static bool embedding(ref_ctx *c, const dl_op *op, const ref_t *idx, const ref_t *w, ref_t *out)
{
    int64_t v = w->dim[0], d = w->dim[1];
    for (int64_t i = 0; i < idx->n; i++) {
        int64_t r = ref_geti(idx, i);
        if (!index_ok(c, op, r, v))
            return false;
        for (int64_t j = 0; j < d; j++)
            cpy(out, i * d + j, w, r * d + j);
    }
    return true;
}

bool ref_shape(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    const ref_t *x = in[0];
    int perm[DL_MAX_RANK];
    switch (op->code) {
    case DL_OP_RESHAPE:
    case DL_OP_FLATTEN:
    case DL_OP_SQUEEZE:
    case DL_OP_UNSQUEEZE:
        memcpy(out->data, x->data, (size_t)(x->n * ref_esize(x)));
        return true;
    case DL_OP_TRANSPOSE: {
        for (int k = 0; k < x->rank; k++)
            perm[k] = k;
        if (x->rank) {
            int a = ref_norm_dim(RATTR(int, "dim0"), x->rank);
            int b = ref_norm_dim(RATTR(int, "dim1"), x->rank);
            perm[a] = b, perm[b] = a;
        }
        permute(x, perm, out);
        return true;
    }
    case DL_OP_PERMUTE: {
        const dl_attr *p = RFIND("dims");
        for (int k = 0; k < p->n; k++)
            perm[k] = ref_norm_dim(p->u.ints[k], x->rank);
        permute(x, perm, out);
        return true;
    }
    case DL_OP_EXPAND:
    case DL_OP_BROADCAST_TO:
        for (int64_t i = 0; i < out->n; i++)
            cpy(out, i, x, ref_bcast_off(x, out->rank, out->dim, i));
        return true;
    case DL_OP_CONCAT:
        join(op->nin, in, ref_norm_dim(RATTR(int, "dim"), x->rank), out, false, false);
        return true;
    case DL_OP_STACK:
        join(op->nin, in, ref_norm_dim(RATTR(int, "dim"), x->rank + 1), out, true, false);
        return true;
    case DL_OP_SPLIT: {
        ref_t *parts[64];
        for (int k = 0; k < op->nres; k++)
            parts[k] = &out[k];
        join(op->nres, parts, ref_norm_dim(RATTR(int, "dim"), x->rank), in[0], false, true);
        return true;
    }
    case DL_OP_SLICE: slice(op, x, out); return true;
    case DL_OP_PAD: pad(op, x, out); return true;
    case DL_OP_GATHER: return gather(c, op, x, in[1], out);
    case DL_OP_INDEX_SELECT: return index_select(c, op, x, in[1], out);
    case DL_OP_ONE_HOT: return one_hot(c, op, x, out);
    case DL_OP_EMBEDDING: return embedding(c, op, x, in[1], out);
    case DL_OP_SCATTER_ADD: return scatter_add(c, op, in, out);
    default: return ref_fail(c, op, "not a shape op");
    }
}
