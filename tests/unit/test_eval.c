/* The scalar reference semantics used by constant folding, against values PyTorch gives. */
#include "passes/eval.h"
#include "tests/unit/check.h"

#include <math.h>

static dl_module *m;
static dl_func *f;

/* Evaluates op `code` (with optional attributes) on scalars of dtype t. */
static double ev(dl_opcode code, dl_dtype t, int nin, const double *x, int nattr,
                 const dl_attr *attr, bool *ok)
{
    dl_type st = {.dtype = t}, bt = {.dtype = DL_BOOL};
    dl_value args[3];
    dl_value *in[3];
    for (int i = 0; i < nin; i++) {
        args[i] = (dl_value){.type = (code == DL_OP_WHERE && i == 0) || code == DL_OP_NOT ||
                                             code == DL_OP_AND || code == DL_OP_OR ? bt : st};
        in[i] = &args[i];
    }
    dl_op *op = ir_op_create(f, code, nin, in, nattr, attr, -1, NULL, (dl_loc){0}, NULL);
    double out = NAN;
    *ok = op && pass_eval_elementwise(op, t, x, &out);
    return out;
}

static double ev1(dl_opcode code, dl_dtype t, double a)
{
    bool ok;
    double r = ev(code, t, 1, &a, 0, NULL, &ok);
    CHECK(ok);
    return r;
}

static double ev2(dl_opcode code, dl_dtype t, double a, double b, bool *ok)
{
    return ev(code, t, 2, (double[]){a, b}, 0, NULL, ok);
}

int main(void)
{
    m = ir_module_create();
    f = ir_func_create(m, "f", (dl_loc){0});
    bool ok;

    CHECK_NEAR(ev1(DL_OP_SIGMOID, DL_F64, 0.5), 0.6224593312018546, 1e-15);
    CHECK_NEAR(ev1(DL_OP_GELU, DL_F64, 1.0), 0.8413447460685429, 1e-15);
    dl_attr tanh_approx = {.name = "approximate", .kind = DL_ATTR_STR, .u.s = "tanh"};
    CHECK_NEAR(ev(DL_OP_GELU, DL_F64, 1, (double[]){1.0}, 1, &tanh_approx, &ok),
               0.8411919906082768, 1e-15);
    CHECK_NEAR(ev1(DL_OP_SILU, DL_F64, -1.5), -0.2736382857095345, 1e-15);
    CHECK_EQ_INT(ev1(DL_OP_ROUND, DL_F32, 2.5), 2);          /* half to even */
    CHECK_EQ_INT(ev1(DL_OP_ROUND, DL_F32, -3.5), -4);
    CHECK(isnan(ev1(DL_OP_RELU, DL_F32, NAN)));              /* NaN propagates */
    CHECK_EQ_INT(ev1(DL_OP_SIGN, DL_F32, -0.25), -1);
    dl_attr slope = {.name = "negative_slope", .kind = DL_ATTR_FLOAT, .u.f = 0.2};
    CHECK_NEAR(ev(DL_OP_LEAKY_RELU, DL_F64, 1, (double[]){-2}, 1, &slope, &ok), -0.4, 1e-15);
    dl_attr clamp[] = {{.name = "min", .kind = DL_ATTR_FLOAT, .u.f = -1},
                       {.name = "max", .kind = DL_ATTR_FLOAT, .u.f = 1}};
    CHECK_EQ_INT(ev(DL_OP_CLAMP, DL_F32, 1, (double[]){5}, 2, clamp, &ok), 1);
    CHECK_EQ_INT(ev(DL_OP_CLAMP, DL_F32, 1, (double[]){-5}, 2, clamp, &ok), -1);

    /* torch.remainder and floor_divide follow the divisor's sign (Python's rules). */
    CHECK_NEAR(ev2(DL_OP_MOD, DL_F32, -7, 3, &ok), 2, 0);
    CHECK_NEAR(ev2(DL_OP_MOD, DL_I64, -7, 3, &ok), 2, 0);
    CHECK_NEAR(ev2(DL_OP_MOD, DL_I64, 7, -3, &ok), -2, 0);
    CHECK_NEAR(ev2(DL_OP_FLOOR_DIV, DL_I64, -7, 2, &ok), -4, 0);
    CHECK_NEAR(ev2(DL_OP_FLOOR_DIV, DL_F32, -7, 2, &ok), -4, 0);
    ev2(DL_OP_FLOOR_DIV, DL_I64, 1, 0, &ok);
    CHECK(!ok);                                              /* not folded: an error at run time */
    ev2(DL_OP_POW, DL_I32, 2, -1, &ok);
    CHECK(!ok);
    CHECK_NEAR(ev2(DL_OP_POW, DL_I32, 3, 4, &ok), 81, 0);
    CHECK(isnan(ev2(DL_OP_MAXIMUM, DL_F32, NAN, 1, &ok)));
    CHECK_NEAR(ev2(DL_OP_MINIMUM, DL_F32, -1, 1, &ok), -1, 0);

    /* Integer results wrap to their width; floats round to theirs. */
    CHECK_NEAR(ev2(DL_OP_ADD, DL_I8, 100, 100, &ok), -56, 0);
    CHECK_NEAR(ev2(DL_OP_MUL, DL_U8, 16, 17, &ok), 16, 0);
    CHECK_NEAR(ev2(DL_OP_ADD, DL_I32, 2147483647, 1, &ok), -2147483648.0, 0);
    CHECK_NEAR(pass_round_to(DL_F32, 0.1), 0.100000001490116119384765625, 0);
    CHECK_NEAR(pass_round_to(DL_BF16, 1.00390625), 1.0, 0);  /* tie: to even */
    CHECK_NEAR(pass_round_to(DL_BF16, 1.01171875), 1.015625, 0);
    CHECK_NEAR(pass_round_to(DL_F16, 65519), 65504, 0);
    CHECK(isinf(pass_round_to(DL_F16, 65520)));
    CHECK_NEAR(pass_round_to(DL_I8, 300.7), 44, 0);          /* truncate, then wrap */

    CHECK_EQ_INT(ev2(DL_OP_LT, DL_F32, 1, 2, &ok), 1);
    CHECK_EQ_INT(ev(DL_OP_WHERE, DL_F32, 3, (double[]){0, 5, 6}, 0, NULL, &ok), 6);

    ir_module_destroy(m);
    return check_result("test_eval");
}
