/* The reference interpreter's driver (see interp.h): binds the symbolic dimensions of the
 * signature from the arguments, gives every value concrete storage, runs the ops in order
 * through the family files (ref_elem.c, ref_reduce.c, ref_shape.c, ref_nn.c, ref_loss.c), and
 * copies out the results. Element access goes through doubles rounded with pass_round_to. */
#include "codegen/ref/interp.h"
#include "codegen/ref/ref_internal.h"
#include "passes/eval.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- element access ------------------------------------------------------------------- */

bool ref_fail(ref_ctx *c, const dl_op *op, const char *fmt, ...)
{
    int n = op ? snprintf(c->err, c->errlen, "'%s': ", ir_op_info(op->code)->name) : 0;
    if (n < 0 || (size_t)n >= c->errlen)
        return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return false;
}

int ref_esize(const ref_t *t) { return ir_dtype_size(t->dt); }

double ref_get(const ref_t *t, int64_t i)
{
    switch (t->dt) {
    case DL_F32: return ((const float *)t->data)[i];
    case DL_F64: return ((const double *)t->data)[i];
    case DL_F16: {
        _Float16 h;
        memcpy(&h, (const uint16_t *)t->data + i, 2);
        return h;
    }
    case DL_BF16: {
        uint32_t u = (uint32_t)((const uint16_t *)t->data)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case DL_BOOL: return ((const uint8_t *)t->data)[i] != 0;
    default: return (double)ref_geti(t, i);
    }
}

void ref_set(ref_t *t, int64_t i, double v)
{
    v = pass_round_to(t->dt, v);
    switch (t->dt) {
    case DL_F32: ((float *)t->data)[i] = (float)v; return;
    case DL_F64: ((double *)t->data)[i] = v; return;
    case DL_F16: {
        _Float16 h = (_Float16)v;
        memcpy((uint16_t *)t->data + i, &h, 2);
        return;
    }
    case DL_BF16: {
        float f = (float)v;      /* already a bf16 value: the low half is zero (or a NaN's) */
        uint32_t u;
        memcpy(&u, &f, 4);
        ((uint16_t *)t->data)[i] = (uint16_t)(u >> 16) | (isnan(f) ? 0x40 : 0);
        return;
    }
    case DL_BOOL: ((uint8_t *)t->data)[i] = v != 0; return;
    default: ref_seti(t, i, (int64_t)v); return;
    }
}

int64_t ref_geti(const ref_t *t, int64_t i)
{
    switch (t->dt) {
    case DL_I8: return ((const int8_t *)t->data)[i];
    case DL_U8: return ((const uint8_t *)t->data)[i];
    case DL_I32: return ((const int32_t *)t->data)[i];
    case DL_I64: return ((const int64_t *)t->data)[i];
    case DL_BOOL: return ((const uint8_t *)t->data)[i] != 0;
    default: return (int64_t)ref_get(t, i);
    }
}

void ref_seti(ref_t *t, int64_t i, int64_t v)
{
    switch (t->dt) {
    case DL_I8: ((int8_t *)t->data)[i] = (int8_t)(uint8_t)v; return;
    case DL_U8: ((uint8_t *)t->data)[i] = (uint8_t)v; return;
    case DL_I32: ((int32_t *)t->data)[i] = (int32_t)(uint32_t)v; return;
    case DL_I64: ((int64_t *)t->data)[i] = v; return;
    default: ref_set(t, i, (double)v); return;
    }
}

void ref_strides(const ref_t *t, int64_t st[DL_MAX_RANK])
{
    int64_t s = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= t->dim[i];
    }
}

int64_t ref_bcast_off(const ref_t *x, int rank, const int64_t *dim, int64_t i)
{
    int64_t off = 0, s = 1;
    for (int k = rank - 1; k >= 0; k--) {
        int64_t idx = i % dim[k];
        i /= dim[k];
        int kx = x->rank - rank + k;
        if (kx < 0)
            break;
        if (x->dim[kx] != 1)
            off += idx * s;
        s *= x->dim[kx];
    }
    return off;
}

int ref_norm_dim(int64_t d, int rank)
{
    return (int)(d < 0 ? d + (rank ? rank : 1) : d);
}

void ref_around(const ref_t *x, int d, int64_t *outer, int64_t *len, int64_t *inner)
{
    *outer = *inner = 1;
    *len = x->rank ? x->dim[d] : 1;
    for (int i = 0; i < x->rank; i++) {
        if (i < d)
            *outer *= x->dim[i];
        else if (i > d)
            *inner *= x->dim[i];
    }
}

/* ---- binding the symbolic dimensions ---------------------------------------------------- */

enum { MAX_SYMS = 64 };
typedef struct binding {
    int         n;
    const char *sym[MAX_SYMS];
    int64_t     val[MAX_SYMS];
} binding;

static int find_sym(const binding *b, const char *s)
{
    for (int i = 0; i < b->n; i++)
        if (b->sym[i] == s)
            return i;
    return -1;
}

/* The value of d under b; false when one of its symbols is unbound. */
static bool eval_dim(const binding *b, dl_dim d, int64_t *out)
{
    int64_t v = d.c;
    for (int i = 0; i < d.n; i++) {
        int k = find_sym(b, d.sym[i]);
        if (k < 0)
            return false;
        v *= b->val[k];
    }
    *out = v;
    return true;
}

/* Binds what each argument dimension with one unbound symbol determines, until nothing new
 * is learnt; then every dimension must agree with the argument. */
static bool bind_args(ref_ctx *c, const dl_func *f, const cg_tensor *args, binding *b)
{
    for (int a = 0; a < f->nargs; a++) {
        const dl_type *want = &f->args[a]->type, *got = &args[a].type;
        char w[128], g[128];
        ir_type_str(want, w, sizeof w);
        ir_type_str(got, g, sizeof g);
        if (want->dtype != got->dtype || want->rank != got->rank)
            return ref_fail(c, NULL, "argument %%%s: expected %s, got %s", f->arginfo[a].name, w, g);
        for (int i = 0; i < got->rank; i++)
            if (got->dim[i].n || got->dim[i].c < 0)
                return ref_fail(c, NULL, "argument %%%s: %s is not a concrete shape",
                                f->arginfo[a].name, g);
    }
    for (bool progress = true; progress;) {
        progress = false;
        for (int a = 0; a < f->nargs; a++)
            for (int i = 0; i < f->args[a]->type.rank; i++) {
                dl_dim d = f->args[a]->type.dim[i];
                int64_t known = d.c, got = args[a].type.dim[i].c;
                const char *unbound = NULL;
                int nunbound = 0;
                for (int k = 0; k < d.n; k++) {
                    int s = find_sym(b, d.sym[k]);
                    if (s >= 0)
                        known *= b->val[s];
                    else
                        unbound = d.sym[k], nunbound++;
                }
                if (nunbound != 1 || known == 0 || got % known || b->n == MAX_SYMS)
                    continue;
                b->sym[b->n] = unbound;
                b->val[b->n++] = got / known;
                progress = true;
            }
    }
    for (int a = 0; a < f->nargs; a++) {
        const dl_type *want = &f->args[a]->type;
        for (int i = 0; i < want->rank; i++) {
            int64_t v;
            if (!eval_dim(b, want->dim[i], &v) || v != args[a].type.dim[i].c) {
                char w[128], g[128];
                ir_type_str(want, w, sizeof w);
                ir_type_str(&args[a].type, g, sizeof g);
                return ref_fail(c, NULL, "argument %%%s: shape %s does not match %s (dimension %d)",
                                f->arginfo[a].name, g, w, i);
            }
        }
    }
    return true;
}

/* ---- storage ----------------------------------------------------------------------------- */

typedef struct slot {
    const dl_value *v;
    ref_t           t;
    bool            owned;
} slot;

typedef struct interp {
    ref_ctx  c;
    binding  b;
    slot    *slots;
    int      nslots, cap;
} interp;

static ref_t *lookup(interp *in, const dl_value *v)
{
    for (int i = in->nslots - 1; i >= 0; i--)
        if (in->slots[i].v == v)
            return &in->slots[i].t;
    return NULL;
}

static bool concrete(interp *in, const dl_op *op, const dl_type *ty, ref_t *t)
{
    memset(t, 0, sizeof *t);
    t->dt = ty->dtype;
    t->rank = ty->rank;
    t->n = 1;
    for (int i = 0; i < ty->rank; i++) {
        if (!eval_dim(&in->b, ty->dim[i], &t->dim[i]))
            return ref_fail(&in->c, op, "dimension %d of a result has an unbound symbol", i);
        t->n *= t->dim[i];
    }
    return true;
}

static bool add_slot(interp *in, const dl_value *v, ref_t t, bool owned)
{
    if (in->nslots == in->cap) {
        int cap = in->cap ? 2 * in->cap : 64;
        slot *s = realloc(in->slots, (size_t)cap * sizeof *s);
        if (!s)
            return ref_fail(&in->c, NULL, "out of memory");
        in->slots = s;
        in->cap = cap;
    }
    in->slots[in->nslots++] = (slot){v, t, owned};
    return true;
}

static bool alloc_data(interp *in, ref_t *t)
{
    size_t bytes = (size_t)t->n * (size_t)ir_dtype_size(t->dt);
    t->data = calloc(bytes ? bytes : 1, 1);
    return t->data ? true : ref_fail(&in->c, NULL, "out of memory (%zu bytes)", bytes);
}

/* ---- running ------------------------------------------------------------------------------ */

static bool run_constant(interp *in, const dl_op *op, ref_t *out)
{
    const dl_attr *v = RFIND("value");
    for (int64_t i = 0; i < out->n; i++)
        ref_set(out, i, v->n == 1 ? v->u.floats[0] : v->u.floats[i]);
    (void)in;
    return true;
}

static bool dispatch(interp *in, const dl_op *op, ref_t *const *args, ref_t *out)
{
    switch (op->code) {
    case DL_OP_CONSTANT: return run_constant(in, op, out);
    case DL_OP_SUM: case DL_OP_MEAN: case DL_OP_MAX: case DL_OP_MIN: case DL_OP_PROD:
    case DL_OP_VAR: case DL_OP_STD: case DL_OP_LOGSUMEXP: case DL_OP_ARGMAX: case DL_OP_ARGMIN:
    case DL_OP_MATMUL: case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX:
    case DL_OP_ACCURACY: case DL_OP_TOP_K_ACCURACY:
        return ref_reduce(&in->c, op, args, out);
    case DL_OP_RESHAPE: case DL_OP_TRANSPOSE: case DL_OP_PERMUTE: case DL_OP_EXPAND:
    case DL_OP_BROADCAST_TO: case DL_OP_CONCAT: case DL_OP_STACK: case DL_OP_SPLIT:
    case DL_OP_SLICE: case DL_OP_SQUEEZE: case DL_OP_UNSQUEEZE: case DL_OP_FLATTEN: case DL_OP_PAD:
    case DL_OP_GATHER: case DL_OP_INDEX_SELECT: case DL_OP_ONE_HOT: case DL_OP_EMBEDDING:
    case DL_OP_SCATTER_ADD:
        return ref_shape(&in->c, op, args, out);
    case DL_OP_CONV2D: case DL_OP_CONV_TRANSPOSE2D: case DL_OP_MAX_POOL2D: case DL_OP_AVG_POOL2D:
    case DL_OP_ADAPTIVE_AVG_POOL2D: case DL_OP_LAYER_NORM: case DL_OP_BATCH_NORM:
    case DL_OP_DROPOUT: case DL_OP_SDPA: case DL_OP_MAX_POOL2D_GRAD: case DL_OP_AVG_POOL2D_GRAD:
    case DL_OP_ADAPTIVE_AVG_POOL2D_GRAD: case DL_OP_CONV2D_GRAD_WEIGHT:
        return ref_nn(&in->c, op, args, out);
    case DL_OP_MSE_LOSS: case DL_OP_L1_LOSS: case DL_OP_HUBER_LOSS: case DL_OP_SMOOTH_L1_LOSS:
    case DL_OP_CROSS_ENTROPY: case DL_OP_NLL_LOSS: case DL_OP_BCE: case DL_OP_BCE_WITH_LOGITS:
    case DL_OP_KL_DIV: case DL_OP_TRIPLET_MARGIN_LOSS:
        return ref_loss(&in->c, op, args, out);
    default:
        if (ir_op_info(op->code)->props & P_ELEM)
            return ref_elem(&in->c, op, args, out);
        return ref_fail(&in->c, op, "not supported by the reference interpreter");
    }
}

typedef struct pending { void *dst; const void *src; size_t bytes; } pending;

static bool run_ops(interp *in, const dl_func *f, cg_tensor *results, pending *asg, int *nasg)
{
    for (const dl_op *op = f->first; op; op = op->next) {
        /* Copies of the operand headers: the slot array may move as results are added. */
        ref_t argv[64], *args[64];
        if (op->nin > 64)
            return ref_fail(&in->c, op, "more than 64 operands");
        for (int i = 0; i < op->nin; i++) {
            const ref_t *t = lookup(in, op->in[i]);
            if (!t)
                return ref_fail(&in->c, op, "operand %d has no value", i);
            argv[i] = *t;
            args[i] = &argv[i];
        }
        if (op->code == DL_OP_ASSIGN) {
            asg[(*nasg)++] = (pending){args[0]->data, args[1]->data,
                                       (size_t)args[1]->n * (size_t)ir_dtype_size(args[1]->dt)};
            continue;
        }
        if (op->code == DL_OP_RETURN) {
            for (int i = 0; i < op->nin; i++) {
                const ref_t *t = args[i];
                size_t bytes = (size_t)t->n * (size_t)ir_dtype_size(t->dt);
                results[i].type = (dl_type){.dtype = t->dt, .rank = t->rank};
                for (int k = 0; k < t->rank; k++)
                    results[i].type.dim[k] = ir_dim_const(t->dim[k]);
                if (!(results[i].data = malloc(bytes ? bytes : 1)))
                    return ref_fail(&in->c, op, "out of memory");
                memcpy(results[i].data, t->data, bytes);
            }
            return true;
        }
        ref_t out[64];
        if (op->nres > 64)
            return ref_fail(&in->c, op, "more than 64 results");
        for (int r = 0; r < op->nres; r++) {
            if (!concrete(in, op, &op->res[r].type, &out[r]) || !alloc_data(in, &out[r]))
                return false;
            if (!add_slot(in, &op->res[r], out[r], true)) {
                free(out[r].data);
                return false;
            }
        }
        /* The slots hold the storage now: the family functions write through copies of the
         * ref_t headers, which point at the same data. */
        if (!dispatch(in, op, args, out))
            return false;
    }
    return ref_fail(&in->c, NULL, "function @%s has no return", f->name);
}

bool cg_ref_run(const dl_func *f, cg_tensor *args, cg_tensor *results, char *err, size_t errlen)
{
    interp in = {.c = {err, errlen}};
    int nassign = 0;
    for (const dl_op *op = f->first; op; op = op->next)
        nassign += op->code == DL_OP_ASSIGN;
    pending *asg = calloc((size_t)nassign + 1, sizeof *asg);
    for (int i = 0; i < f->nresults; i++)
        results[i] = (cg_tensor){0};
    bool ok = asg && bind_args(&in.c, f, args, &in.b);
    if (!asg)
        ref_fail(&in.c, NULL, "out of memory");
    for (int a = 0; ok && a < f->nargs; a++) {
        ref_t t;
        ok = concrete(&in, NULL, &f->args[a]->type, &t);
        t.data = args[a].data;
        ok = ok && add_slot(&in, f->args[a], t, false);
    }
    nassign = 0;
    ok = ok && run_ops(&in, f, results, asg, &nassign);
    for (int i = 0; ok && i < nassign; i++)
        memmove(asg[i].dst, asg[i].src, asg[i].bytes);
    if (!ok)
        for (int i = 0; i < f->nresults; i++)
            cg_tensor_free(&results[i]);
    for (int i = 0; i < in.nslots; i++)
        if (in.slots[i].owned)
            free(in.slots[i].t.data);
    free(in.slots);
    free(asg);
    return ok;
}

static ref_t ref_of(const cg_tensor *t)
{
    ref_t r = {.dt = t->type.dtype, .rank = t->type.rank, .n = 1, .data = t->data};
    for (int k = 0; k < t->type.rank; k++) {
        r.dim[k] = t->type.dim[k].c;
        r.n *= r.dim[k];
    }
    return r;
}

bool cg_ref_op(const dl_op *op, const cg_tensor *in, cg_tensor *out, char *err, size_t errlen)
{
    interp it = {.c = {err, errlen}};
    ref_t argv[64], *args[64], res[64];
    if (op->nin > 64 || op->nres > 64)
        return ref_fail(&it.c, op, "more than 64 operands or results");
    for (int i = 0; i < op->nin; i++) {
        argv[i] = ref_of(&in[i]);
        args[i] = &argv[i];
    }
    for (int r = 0; r < op->nres; r++)
        res[r] = ref_of(&out[r]);
    return dispatch(&it, op, args, res);
}

void cg_tensor_free(cg_tensor *t)
{
    free(t->data);
    t->data = NULL;
}

double cg_tensor_get(const cg_tensor *t, int64_t i)
{
    ref_t r = {.dt = t->type.dtype, .data = t->data};
    return ref_get(&r, i);
}

void cg_tensor_set(cg_tensor *t, int64_t i, double v)
{
    ref_t r = {.dt = t->type.dtype, .data = t->data};
    ref_set(&r, i, v);
}
