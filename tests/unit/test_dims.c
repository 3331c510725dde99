/* Symbolic dimensions: products, exact quotients, printing, type equality. */
#include "ir/ir.h"
#include "tests/unit/check.h"

static const char *dim_text(dl_dim d)
{
    static char buf[4][64];
    static int k;
    char *b = buf[k++ & 3];
    ir_dim_str(d, b, 64);
    return b;
}

int main(void)
{
    dl_module *m = ir_module_create();
    const char *N = ir_intern(m, "N", 1), *T = ir_intern(m, "T", 1), *B = ir_intern(m, "B", 1);
    CHECK(N == ir_intern(m, "N", 1));
    CHECK(N != T);

    dl_dim d;
    CHECK(ir_dim_mul(ir_dim_sym(T), ir_dim_sym(N), &d));
    CHECK_EQ_STR(dim_text(d), "N*T");                 /* symbols sorted */
    dl_dim e;
    CHECK(ir_dim_mul(ir_dim_sym(N), ir_dim_sym(T), &e));
    CHECK(ir_dim_eq(d, e));
    CHECK(ir_dim_mul(d, ir_dim_const(4), &d));
    CHECK_EQ_STR(dim_text(d), "4*N*T");
    CHECK(ir_dim_div(d, ir_dim_sym(N), &e));
    CHECK_EQ_STR(dim_text(e), "4*T");
    CHECK(ir_dim_div(d, ir_dim_const(2), &e));
    CHECK_EQ_STR(dim_text(e), "2*N*T");
    CHECK(!ir_dim_div(d, ir_dim_sym(B), &e));         /* B does not divide 4*N*T */
    CHECK(!ir_dim_div(d, ir_dim_const(3), &e));
    CHECK(ir_dim_mul(d, ir_dim_const(0), &e));
    CHECK(ir_dim_eq(e, ir_dim_const(0)));             /* 0 * anything is 0 */

    /* Products are bounded: a fifth symbol does not fit. */
    dl_dim big = ir_dim_const(1);
    const char *syms[] = {"A", "B", "C", "D", "E"};
    bool ok = true;
    for (int i = 0; i < 5; i++)
        ok = ok && ir_dim_mul(big, ir_dim_sym(ir_intern(m, syms[i], 1)), &big);
    CHECK(!ok);

    dl_type t = {.dtype = DL_F32, .rank = 2, .dim = {ir_dim_sym(N), ir_dim_const(64)}};
    char buf[128];
    ir_type_str(&t, buf, sizeof buf);
    CHECK_EQ_STR(buf, "f32[N, 64]");
    CHECK(!ir_type_is_static(&t));
    CHECK(ir_type_numel(&t, &d));
    CHECK_EQ_STR(dim_text(d), "64*N");
    dl_type s = {.dtype = DL_BF16};
    ir_type_str(&s, buf, sizeof buf);
    CHECK_EQ_STR(buf, "bf16");
    CHECK(ir_type_is_static(&s));
    dl_type u = t;
    CHECK(ir_type_eq(&t, &u));
    u.dtype = DL_F16;
    CHECK(!ir_type_eq(&t, &u));

    dl_dtype dt;
    CHECK(ir_dtype_parse("bf16", 4, &dt) && dt == DL_BF16);
    CHECK(!ir_dtype_parse("f31", 3, &dt));
    CHECK_EQ_INT(ir_dtype_size(DL_I64), 8);
    CHECK(ir_dtype_is_float(DL_F16) && !ir_dtype_is_float(DL_I32) && !ir_dtype_is_int(DL_BOOL));

    ir_module_destroy(m);
    return check_result("test_dims");
}
