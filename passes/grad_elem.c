/* Gradient rules of the elementwise ops (ir/ops.def): casts, the unary functions, the binary
 * arithmetic with NumPy broadcasting (gradients summed back to each operand's shape) and where.
 * Where PyTorch picks a value at a kink (relu at 0, clamp at its bounds, max of equal operands),
 * these pick the same: its derivatives.yaml is the reference. */
#include "passes/autodiff.h"

#include <math.h>
#include <string.h>

static const double pi = 3.14159265358979323846;

static dl_value *num(gd *g, double v, const dl_value *like) { return dc_scalar(&g->c, v, like->type.dtype); }
static dl_value *mul(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_MUL, a, b); }
static dl_value *add(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_ADD, a, b); }
static dl_value *sub(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_SUB, a, b); }
static dl_value *div_(gd *g, dl_value *a, dl_value *b) { return dc_bin(&g->c, DL_OP_DIV, a, b); }
static dl_value *un(gd *g, dl_opcode code, dl_value *x) { return dc_un(&g->c, code, x); }
static dl_value *as(gd *g, dl_value *x, const dl_value *like) { return dc_cast(&g->c, x, like->type.dtype); }

bool grad_none(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    (void)g, (void)op, (void)dy, (void)dx;
    return true;
}

bool grad_cast(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dx[0] = dc_cast(&g->c, dy[0], op->in[0]->type.dtype);
    return true;
}

/* d/dx of the unary function `op` at x (y = op(x)), times dy. */
static dl_value *unary(gd *g, dl_op *op, dl_value *x, dl_value *y, dl_value *d)
{
    switch (op->code) {
    case DL_OP_NEG:     return un(g, DL_OP_NEG, d);
    case DL_OP_ABS:     return mul(g, d, un(g, DL_OP_SIGN, x));
    case DL_OP_EXP:     return mul(g, d, y);
    case DL_OP_LOG:     return div_(g, d, x);
    case DL_OP_LOG1P:   return div_(g, d, add(g, x, num(g, 1, x)));
    case DL_OP_SQRT:    return div_(g, mul(g, d, num(g, 0.5, x)), y);
    case DL_OP_RSQRT:   return mul(g, mul(g, d, num(g, -0.5, x)), mul(g, y, mul(g, y, y)));
    case DL_OP_SIN:     return mul(g, d, un(g, DL_OP_COS, x));
    case DL_OP_COS:     return un(g, DL_OP_NEG, mul(g, d, un(g, DL_OP_SIN, x)));
    case DL_OP_TANH:    return mul(g, d, sub(g, num(g, 1, x), mul(g, y, y)));
    case DL_OP_SIGMOID: return mul(g, d, mul(g, y, sub(g, num(g, 1, x), y)));
    case DL_OP_RELU:
        return dc_where(&g->c, dc_bin(&g->c, DL_OP_GT, y, num(g, 0, y)), d, num(g, 0, d));
    case DL_OP_LEAKY_RELU: {
        double slope = IR_OP_ATTR(float, op, "negative_slope");
        return dc_where(&g->c, dc_bin(&g->c, DL_OP_GT, x, num(g, 0, x)), d,
                        mul(g, d, num(g, slope, d)));
    }
    case DL_OP_GELU: {
        if (!strcmp(IR_OP_ATTR(str, op, "approximate"), "tanh")) {
            /* PyTorch's GeluBackward with approximate='tanh'. */
            const double beta = sqrt(2.0 / pi), kappa = 0.044715;
            dl_value *x2 = mul(g, x, x);
            dl_value *inner = mul(g, num(g, beta, x), add(g, x, mul(g, num(g, kappa, x), mul(g, x2, x))));
            dl_value *t = un(g, DL_OP_TANH, inner);
            dl_value *left = mul(g, num(g, 0.5, x), x);
            dl_value *dleft = mul(g, num(g, 0.5, x), add(g, num(g, 1, x), t));
            dl_value *dright = mul(g, mul(g, left, sub(g, num(g, 1, x), mul(g, t, t))),
                                   mul(g, num(g, beta, x), add(g, num(g, 1, x), mul(g, num(g, 3 * kappa, x), x2))));
            return mul(g, d, add(g, dleft, dright));
        }
        /* Phi(x) + x phi(x). */
        dl_value *cdf = mul(g, num(g, 0.5, x),
                            add(g, num(g, 1, x), un(g, DL_OP_ERF, mul(g, x, num(g, 0.70710678118654752440, x)))));
        dl_value *pdf = mul(g, num(g, 1 / sqrt(2 * pi), x),
                            un(g, DL_OP_EXP, mul(g, mul(g, x, x), num(g, -0.5, x))));
        return mul(g, d, add(g, cdf, mul(g, x, pdf)));
    }
    case DL_OP_SILU: {
        dl_value *s = un(g, DL_OP_SIGMOID, x);
        return mul(g, d, mul(g, s, add(g, num(g, 1, x), mul(g, x, sub(g, num(g, 1, x), s)))));
    }
    case DL_OP_ERF:
        return mul(g, d, mul(g, num(g, 1.12837916709551257390, x), un(g, DL_OP_EXP, un(g, DL_OP_NEG, mul(g, x, x)))));
    case DL_OP_SIGN: case DL_OP_FLOOR: case DL_OP_CEIL: case DL_OP_ROUND:
        return gd_fill(g, &x->type, 0);
    case DL_OP_CLAMP: {
        /* PyTorch: the gradient passes where lo <= x <= hi. */
        dl_value *keep = NULL;
        const dl_attr *lo = ir_attr_find(op->nattr, op->attr, "min");
        const dl_attr *hi = ir_attr_find(op->nattr, op->attr, "max");
        if (lo)
            keep = dc_bin(&g->c, DL_OP_GE, x, num(g, lo->u.f, x));
        if (hi) {
            dl_value *k = dc_bin(&g->c, DL_OP_LE, x, num(g, hi->u.f, x));
            keep = keep ? dc_bin(&g->c, DL_OP_AND, keep, k) : k;
        }
        return keep ? dc_where(&g->c, keep, d, num(g, 0, d)) : d;
    }
    default:
        return NULL;
    }
}

bool grad_unary(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *x = gd_in(g, op, 0);
    dl_value *r = unary(g, op, x, gd_res(g, op, 0), dy[0]);
    if (!r)
        return gd_error(g, op, "no rule for this unary op");
    dx[0] = gd_unbroadcast(g, r, &x->type);
    return true;
}

/* maximum/minimum: the gradient goes to the larger (smaller) operand, half to each on a tie. */
static void extremum(gd *g, dl_value *a, dl_value *b, dl_value *d, bool max, dl_value **da, dl_value **db)
{
    dl_value *eq = dc_bin(&g->c, DL_OP_EQ, a, b);
    dl_value *half = dc_where(&g->c, eq, mul(g, d, num(g, 0.5, d)), d);
    dl_value *a_wins = dc_bin(&g->c, max ? DL_OP_GT : DL_OP_LT, a, b);
    dl_value *b_wins = dc_bin(&g->c, max ? DL_OP_LT : DL_OP_GT, a, b);
    *da = dc_where(&g->c, b_wins, num(g, 0, d), half);
    *db = dc_where(&g->c, a_wins, num(g, 0, d), half);
}

bool grad_binary(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *a = gd_in(g, op, 0), *b = gd_in(g, op, 1), *y = gd_res(g, op, 0), *d = dy[0];
    /* Arithmetic in the result's dtype. */
    dl_value *ca = as(g, a, y), *cb = as(g, b, y);
    dl_value *da = NULL, *db = NULL;
    switch (op->code) {
    case DL_OP_ADD: da = d; db = d; break;
    case DL_OP_SUB: da = d; db = un(g, DL_OP_NEG, d); break;
    case DL_OP_MUL: da = mul(g, d, cb); db = mul(g, d, ca); break;
    case DL_OP_DIV:
        da = div_(g, d, cb);
        db = un(g, DL_OP_NEG, div_(g, mul(g, d, y), cb));
        break;
    case DL_OP_POW: {
        /* PyTorch: 0 where the exponent is 0 (a), and where a == 0 with b >= 0 (b). */
        dl_value *bm1 = sub(g, cb, num(g, 1, cb));
        dl_value *t = mul(g, mul(g, d, cb), dc_bin(&g->c, DL_OP_POW, ca, bm1));
        da = dc_where(&g->c, dc_bin(&g->c, DL_OP_EQ, cb, num(g, 0, cb)), num(g, 0, d), t);
        dl_value *zero_base = dc_bin(&g->c, DL_OP_AND, dc_bin(&g->c, DL_OP_EQ, ca, num(g, 0, ca)),
                                     dc_bin(&g->c, DL_OP_GE, cb, num(g, 0, cb)));
        db = dc_where(&g->c, zero_base, num(g, 0, d), mul(g, d, mul(g, y, un(g, DL_OP_LOG, ca))));
        break;
    }
    case DL_OP_MOD:     /* a - floor(a / b) * b, as torch.remainder */
        da = d;
        db = mul(g, un(g, DL_OP_NEG, d), un(g, DL_OP_FLOOR, div_(g, ca, cb)));
        break;
    case DL_OP_MAXIMUM: extremum(g, ca, cb, d, true, &da, &db); break;
    case DL_OP_MINIMUM: extremum(g, ca, cb, d, false, &da, &db); break;
    default:
        return gd_error(g, op, "no rule for this binary op");
    }
    if (ir_dtype_is_float(a->type.dtype))
        dx[0] = gd_unbroadcast(g, gd_expand_to(g, da, &y->type), &a->type);
    if (ir_dtype_is_float(b->type.dtype))
        dx[1] = gd_unbroadcast(g, gd_expand_to(g, db, &y->type), &b->type);
    return true;
}

bool grad_where(gd *g, dl_op *op, dl_value *const *dy, dl_value **dx)
{
    dl_value *c = gd_in(g, op, 0), *a = gd_in(g, op, 1), *b = gd_in(g, op, 2), *d = dy[0];
    dl_value *zero = num(g, 0, d);
    if (ir_dtype_is_float(a->type.dtype))
        dx[1] = gd_unbroadcast(g, dc_where(&g->c, c, d, zero), &a->type);
    if (ir_dtype_is_float(b->type.dtype))
        dx[2] = gd_unbroadcast(g, dc_where(&g->c, c, zero, d), &b->type);
    return true;
}
