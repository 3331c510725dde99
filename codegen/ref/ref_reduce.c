/* Reductions, softmax, matmul and the metrics in the reference interpreter. Every sum runs in
 * float64 (int64 for integer sum and prod, as torch accumulates them), whatever the dtype. */
#include "codegen/ref/ref_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The offsets in x of the first element of each output position (bases) and of each element
 * of one reduced block relative to it (roffs); the caller frees both. */
typedef struct plan {
    int64_t *bases, nbase;
    int64_t *roffs, nr;
} plan;

static bool make_plan(ref_ctx *c, const dl_op *op, const ref_t *x, plan *p)
{
    bool mask[DL_MAX_RANK] = {0};
    const dl_attr *a = RFIND("dim");
    if (!a)
        for (int i = 0; i < x->rank; i++)
            mask[i] = true;
    else if (a->kind == DL_ATTR_INT)
        mask[ref_norm_dim(a->u.i, x->rank)] = true;
    else
        for (int k = 0; k < a->n; k++)
            mask[ref_norm_dim(a->u.ints[k], x->rank)] = true;
    int64_t st[DL_MAX_RANK];
    ref_strides(x, st);
    p->nbase = p->nr = 1;
    for (int i = 0; i < x->rank; i++) {
        if (mask[i])
            p->nr *= x->dim[i];
        else
            p->nbase *= x->dim[i];
    }
    p->bases = malloc((size_t)(p->nbase ? p->nbase : 1) * sizeof(int64_t));
    p->roffs = malloc((size_t)(p->nr ? p->nr : 1) * sizeof(int64_t));
    if (!p->bases || !p->roffs) {
        free(p->bases), free(p->roffs);
        return ref_fail(c, op, "out of memory");
    }
    /* Row-major enumeration of the kept (resp. reduced) dimensions. */
    for (int pass = 0; pass < 2; pass++) {
        int64_t *dst = pass ? p->roffs : p->bases, cnt = pass ? p->nr : p->nbase;
        for (int64_t j = 0; j < cnt; j++) {
            int64_t rem = j, off = 0;
            for (int i = x->rank - 1; i >= 0; i--) {
                if (mask[i] != (pass == 1))
                    continue;
                off += (rem % x->dim[i]) * st[i];
                rem /= x->dim[i];
            }
            dst[j] = off;
        }
    }
    return true;
}

static double reduce_one(dl_opcode code, const ref_t *x, int64_t base, const plan *p,
                         int64_t correction)
{
    int64_t n = p->nr;
    double acc = 0;
    switch (code) {
    case DL_OP_SUM:
    case DL_OP_MEAN:
        for (int64_t r = 0; r < n; r++)
            acc += ref_get(x, base + p->roffs[r]);
        return code == DL_OP_MEAN ? acc / (double)n : acc;
    case DL_OP_PROD:
        acc = 1;
        for (int64_t r = 0; r < n; r++)
            acc *= ref_get(x, base + p->roffs[r]);
        return acc;
    case DL_OP_MAX:
    case DL_OP_MIN:
        acc = ref_get(x, base);
        for (int64_t r = 0; r < n; r++) {
            double v = ref_get(x, base + p->roffs[r]);
            if (isnan(v))
                return v;
            if (code == DL_OP_MAX ? v > acc : v < acc)
                acc = v;
        }
        return acc;
    case DL_OP_VAR:
    case DL_OP_STD: {
        double mean = 0;
        for (int64_t r = 0; r < n; r++)
            mean += ref_get(x, base + p->roffs[r]);
        mean /= (double)n;
        for (int64_t r = 0; r < n; r++) {
            double d = ref_get(x, base + p->roffs[r]) - mean;
            acc += d * d;
        }
        /* torch divides by max(0, N - correction). */
        double den = (double)(n - correction > 0 ? n - correction : 0);
        acc /= den;
        return code == DL_OP_STD ? sqrt(acc) : acc;
    }
    case DL_OP_LOGSUMEXP: {
        double m = -INFINITY;
        for (int64_t r = 0; r < n; r++)
            m = fmax(m, ref_get(x, base + p->roffs[r]));
        double shift = isinf(m) ? 0 : m;     /* torch leaves infinite maxima unshifted */
        for (int64_t r = 0; r < n; r++)
            acc += exp(ref_get(x, base + p->roffs[r]) - shift);
        return log(acc) + shift;
    }
    default: return NAN;
    }
}

/* Integer sum and prod wrap in int64; max and min compare exactly. */
static int64_t reduce_int(dl_opcode code, const ref_t *x, int64_t base, const plan *p)
{
    uint64_t acc = code == DL_OP_PROD;
    int64_t best = ref_geti(x, base);
    for (int64_t r = 0; r < p->nr; r++) {
        int64_t v = ref_geti(x, base + p->roffs[r]);
        if (code == DL_OP_SUM)
            acc += (uint64_t)v;
        else if (code == DL_OP_PROD)
            acc *= (uint64_t)v;
        else if (code == DL_OP_MAX ? v > best : v < best)
            best = v;
    }
    return code == DL_OP_SUM || code == DL_OP_PROD ? (int64_t)acc : best;
}

/* The first index of the maximum (minimum); NaN counts as the maximum, as in torch. */
static int64_t arg_one(dl_opcode code, const ref_t *x, int64_t base, const plan *p)
{
    int64_t best = 0;
    double bv = ref_get(x, base);
    for (int64_t r = 1; r < p->nr && !isnan(bv); r++) {
        double v = ref_get(x, base + p->roffs[r]);
        if (isnan(v) || (code == DL_OP_ARGMAX ? v > bv : v < bv))
            best = r, bv = v;
    }
    return best;
}

static bool reduce(ref_ctx *c, const dl_op *op, const ref_t *x, ref_t *out)
{
    plan p;
    if (!make_plan(c, op, x, &p))
        return false;
    bool isint = ir_dtype_is_int(x->dt) || x->dt == DL_BOOL;
    int64_t corr = op->code == DL_OP_VAR || op->code == DL_OP_STD ? RATTR(int, "correction") : 0;
    for (int64_t o = 0; o < p.nbase; o++) {
        int64_t b = p.bases[o];
        if (op->code == DL_OP_ARGMAX || op->code == DL_OP_ARGMIN)
            ref_seti(out, o, arg_one(op->code, x, b, &p));
        else if (isint && op->code != DL_OP_MEAN && p.nr > 0)
            ref_seti(out, o, reduce_int(op->code, x, b, &p));
        else
            ref_set(out, o, reduce_one(op->code, x, b, &p, corr));
    }
    free(p.bases);
    free(p.roffs);
    return true;
}

static void softmax(const dl_op *op, const ref_t *x, ref_t *out)
{
    int64_t outer, len, inner;
    ref_around(x, ref_norm_dim(RATTR(int, "dim"), x->rank), &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t b = o * len * inner + i;
            double m = -INFINITY, s = 0;
            for (int64_t k = 0; k < len; k++)
                m = fmax(m, ref_get(x, b + k * inner));
            for (int64_t k = 0; k < len; k++)
                s += exp(ref_get(x, b + k * inner) - m);
            for (int64_t k = 0; k < len; k++) {
                double v = ref_get(x, b + k * inner) - m;
                ref_set(out, b + k * inner, op->code == DL_OP_SOFTMAX ? exp(v) / s : v - log(s));
            }
        }
}

static void matmul(const ref_t *a, const ref_t *b, ref_t *out)
{
    int ra = a->rank, rb = b->rank;
    int64_t n = ra > 1 ? a->dim[ra - 2] : 1, k = a->dim[ra - 1], m = rb > 1 ? b->dim[rb - 1] : 1;
    ref_t ab = *a, bb = *b;       /* the batch dimensions only */
    ab.rank = ra > 2 ? ra - 2 : 0;
    bb.rank = rb > 2 ? rb - 2 : 0;
    int nbd = out->rank - (ra > 1) - (rb > 1);
    int64_t nb = 1;
    for (int i = 0; i < nbd; i++)
        nb *= out->dim[i];
    bool isint = ir_dtype_is_int(a->dt);
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t oa = ref_bcast_off(&ab, nbd, out->dim, bi) * n * k;
        int64_t ob = ref_bcast_off(&bb, nbd, out->dim, bi) * k * m;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++) {
                double acc = 0;
                uint64_t iacc = 0;
                for (int64_t p = 0; p < k; p++) {
                    if (isint)
                        iacc += (uint64_t)ref_geti(a, oa + i * k + p) *
                                (uint64_t)ref_geti(b, ob + p * m + j);
                    else
                        acc += ref_get(a, oa + i * k + p) * ref_get(b, ob + p * m + j);
                }
                int64_t o = (bi * n + i) * m + j;
                if (isint)
                    ref_seti(out, o, (int64_t)iacc);
                else
                    ref_set(out, o, acc);
            }
    }
}

/* accuracy is top-k accuracy with k = 1: a row is right when fewer than k classes come
 * before the label's in a stable descending sort (ties go to the lower index, like argmax). */
static bool topk_accuracy(ref_ctx *c, const dl_op *op, const ref_t *x, const ref_t *y, ref_t *out)
{
    int64_t n = x->dim[0], nc = x->dim[1];
    int64_t k = op->code == DL_OP_TOP_K_ACCURACY ? RATTR(int, "k") : 1;
    if (k > nc)
        return ref_fail(c, op, "k = %lld is more than the %lld classes", (long long)k,
                        (long long)nc);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t lab = ref_geti(y, i);
        if (lab < 0 || lab >= nc)
            return ref_fail(c, op, "label %lld of row %lld is not in [0, %lld)", (long long)lab,
                            (long long)i, (long long)nc);
        double v = ref_get(x, i * nc + lab);
        int64_t before = 0;
        for (int64_t j = 0; j < nc; j++) {
            double u = ref_get(x, i * nc + j);
            before += u > v || (u == v && j < lab);
        }
        right += before < k;
    }
    ref_set(out, 0, (double)right / (double)n);
    return true;
}

bool ref_reduce(ref_ctx *c, const dl_op *op, ref_t *const *in, ref_t *out)
{
    switch (op->code) {
    case DL_OP_MATMUL: matmul(in[0], in[1], out); return true;
    case DL_OP_SOFTMAX:
    case DL_OP_LOG_SOFTMAX: softmax(op, in[0], out); return true;
    case DL_OP_ACCURACY:
    case DL_OP_TOP_K_ACCURACY: return topk_accuracy(c, op, in[0], in[1], out);
    default: return reduce(c, op, in[0], out);
    }
}
