/* Scalar reference semantics of elementwise ops (see eval.h). */
#include "passes/eval.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static double round_bf16(double v)
{
    float f = (float)v;
    if (isnan(f))
        return v;
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);    /* round to nearest, ties to even */
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

double pass_round_to(dl_dtype t, double v)
{
    switch (t) {
    case DL_F64: return v;
    case DL_F32: return (float)v;
    case DL_F16: return (double)(_Float16)v;
    case DL_BF16: return round_bf16(v);
    case DL_BOOL: return v != 0;
    default: break;
    }
    if (isnan(v))
        return 0;
    /* Integers: truncate toward zero like a C cast, then wrap to the width. */
    int64_t i = v >= 9.2e18 ? INT64_MAX : v <= -9.2e18 ? INT64_MIN : (int64_t)v;
    switch (t) {
    case DL_I8: return (int8_t)(uint8_t)i;
    case DL_U8: return (uint8_t)i;
    case DL_I32: return (int32_t)(uint32_t)i;
    default: return (double)i;
    }
}

static double gelu(double x, bool tanh_approx)
{
    if (tanh_approx)
        return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}

/* NaN-propagating max/min, as torch.maximum/minimum. */
static double fmax_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }
static double fmin_nan(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }

static bool eval_int(dl_opcode code, int64_t a, int64_t b, double *out)
{
    /* Wrapping arithmetic through unsigned, as the backends do. */
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (code) {
    case DL_OP_ADD: *out = (double)(int64_t)(ua + ub); return true;
    case DL_OP_SUB: *out = (double)(int64_t)(ua - ub); return true;
    case DL_OP_MUL: *out = (double)(int64_t)(ua * ub); return true;
    case DL_OP_FLOOR_DIV:
    case DL_OP_DIV:
        if (b == 0 || (a == INT64_MIN && b == -1))
            return false;
        *out = (double)(a / b - ((a % b != 0) && ((a < 0) != (b < 0))));
        return true;
    case DL_OP_MOD:
        if (b == 0 || (a == INT64_MIN && b == -1))
            return false;
        *out = (double)(a % b + ((a % b != 0) && ((a < 0) != (b < 0)) ? b : 0));
        return true;
    case DL_OP_POW: {
        if (b < 0)
            return false;
        uint64_t r = 1, base = ua;
        for (int64_t e = b; e; e >>= 1, base *= base)
            if (e & 1)
                r *= base;
        *out = (double)(int64_t)r;
        return true;
    }
    default: return false;
    }
}

bool pass_eval_elementwise(const dl_op *op, dl_dtype t, const double *x, double *out)
{
    double a = x[0], b = op->nin > 1 ? x[1] : 0, r;
    bool isint = ir_dtype_is_int(t);
    switch (op->code) {
    case DL_OP_CAST: r = a; break;
    case DL_OP_NEG: r = -a; break;
    case DL_OP_ABS: r = fabs(a); break;
    case DL_OP_EXP: r = exp(a); break;
    case DL_OP_LOG: r = log(a); break;
    case DL_OP_LOG1P: r = log1p(a); break;
    case DL_OP_SQRT: r = sqrt(a); break;
    case DL_OP_RSQRT: r = 1 / sqrt(a); break;
    case DL_OP_SIN: r = sin(a); break;
    case DL_OP_COS: r = cos(a); break;
    case DL_OP_TANH: r = tanh(a); break;
    case DL_OP_SIGMOID: r = 1 / (1 + exp(-a)); break;
    case DL_OP_RELU: r = a > 0 ? a : isnan(a) ? a : 0; break;
    case DL_OP_LEAKY_RELU: r = a > 0 ? a : a * IR_OP_ATTR(float, op, "negative_slope"); break;
    case DL_OP_GELU: r = gelu(a, !strcmp(IR_OP_ATTR(str, op, "approximate"), "tanh")); break;
    case DL_OP_SILU: r = a / (1 + exp(-a)); break;
    case DL_OP_ERF: r = erf(a); break;
    case DL_OP_SIGN: r = isnan(a) ? a : (a > 0) - (a < 0); break;
    case DL_OP_FLOOR: r = floor(a); break;
    case DL_OP_CEIL: r = ceil(a); break;
    case DL_OP_ROUND: r = nearbyint(a); break;     /* half to even, as torch.round */
    case DL_OP_CLAMP:
        r = a;
        if (ir_attr_find(op->nattr, op->attr, "min"))
            r = fmax_nan(r, IR_OP_ATTR(float, op, "min"));
        if (ir_attr_find(op->nattr, op->attr, "max"))
            r = fmin_nan(r, IR_OP_ATTR(float, op, "max"));
        break;
    case DL_OP_NOT: r = a == 0; break;
    case DL_OP_AND: r = a != 0 && b != 0; break;
    case DL_OP_OR: r = a != 0 || b != 0; break;
    case DL_OP_EQ: r = a == b; break;
    case DL_OP_NE: r = a != b; break;
    case DL_OP_LT: r = a < b; break;
    case DL_OP_LE: r = a <= b; break;
    case DL_OP_GT: r = a > b; break;
    case DL_OP_GE: r = a >= b; break;
    case DL_OP_WHERE: r = a != 0 ? x[1] : x[2]; break;
    case DL_OP_MAXIMUM: r = fmax_nan(a, b); break;
    case DL_OP_MINIMUM: r = fmin_nan(a, b); break;
    case DL_OP_ADD:
    case DL_OP_SUB:
    case DL_OP_MUL:
    case DL_OP_DIV:
    case DL_OP_POW:
    case DL_OP_FLOOR_DIV:
    case DL_OP_MOD:
        if (isint)
            return eval_int(op->code, (int64_t)a, (int64_t)b, out) &&
                   (*out = pass_round_to(op->res[0].type.dtype, *out), true);
        switch (op->code) {
        case DL_OP_ADD: r = a + b; break;
        case DL_OP_SUB: r = a - b; break;
        case DL_OP_MUL: r = a * b; break;
        case DL_OP_DIV: r = a / b; break;
        case DL_OP_POW: r = pow(a, b); break;
        case DL_OP_FLOOR_DIV: r = floor(a / b); break;
        default: r = b == 0 ? NAN : a - floor(a / b) * b; break;   /* torch.remainder */
        }
        break;
    default: return false;
    }
    *out = pass_round_to(op->res[0].type.dtype, r);
    return true;
}

bool pass_const_values(const dl_value *v, const double **vals, int *n)
{
    if (!v->def || v->def->code != DL_OP_CONSTANT)
        return false;
    const dl_attr *a = ir_attr_find(v->def->nattr, v->def->attr, "value");
    if (!a)
        return false;
    *vals = a->u.floats;
    *n = a->n;
    return true;
}

bool pass_is_splat(const dl_value *v, double d)
{
    const double *vals;
    int n;
    if (!pass_const_values(v, &vals, &n))
        return false;
    for (int i = 0; i < n; i++)
        if (vals[i] != d)
            return false;
    return n > 0;
}
