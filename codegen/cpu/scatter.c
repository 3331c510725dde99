/* scatter_add in C (see scatter.h). */
#include "codegen/cpu/scatter.h"

#include <stdio.h>
#include <string.h>

static int64_t index_at(const cg_tensor *idx, int64_t i)
{
    return idx->type.dtype == DL_I64 ? ((const int64_t *)idx->data)[i] : ((const int32_t *)idx->data)[i];
}

bool cg_scatter_run(const dl_op *op, const cg_tensor *in, cg_tensor *out, char *err, size_t errlen)
{
    const dl_type *xt = &in[0].type, *it = &in[1].type, *st = &in[2].type;
    int rank = xt->rank, d = (int)ir_attr_int(op->nattr, op->attr, op->code, "dim");
    if (d < 0)
        d += rank;
    int64_t xn = 1, n = 1, xst[DL_MAX_RANK], sst[DL_MAX_RANK];
    for (int k = rank - 1; k >= 0; k--) {
        xst[k] = xn;
        xn *= xt->dim[k].c;
    }
    for (int k = st->rank - 1, s = 1; k >= 0; k--) {
        sst[k] = s;
        s *= (int)st->dim[k].c;
    }
    for (int k = 0; k < it->rank; k++)
        n *= it->dim[k].c;
    float *y = out->data;
    const float *src = in[2].data;
    if (y != in[0].data)
        memcpy(y, in[0].data, sizeof *y * (size_t)xn);
    int64_t size = rank ? xt->dim[d].c : 1;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = index_at(&in[1], i), rem = i, xo = 0, so = 0;
        if (v < 0 || v >= size) {     /* as the reference: no negative indices */
            snprintf(err, errlen, "'%s': index %lld is out of range for a dimension of size %lld",
                     ir_op_info(op->code)->name, (long long)v, (long long)size);
            return false;
        }
        for (int k = it->rank - 1; k >= 0; k--) {
            int64_t at = rem % it->dim[k].c;
            rem /= it->dim[k].c;
            xo += (k == d ? v : at) * xst[k];
            so += at * sst[k];
        }
        y[xo] += src[so];
    }
    return true;
}
