/* The builder API, the verifier's checks on hand-broken IR, and print -> parse -> print through
 * the API (the lit suite does the same from text). */
#define _GNU_SOURCE
#include "ir/ir.h"
#include "passes/pass.h"
#include "tests/unit/check.h"

#include <stdlib.h>

static char *print_to_string(const dl_module *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print(f, m);
    fclose(f);
    return buf;
}

/* Builds: forward(x: f32[N, 64], w: f32[64, 10] param) -> f32[N, 10]: relu(x @ w) * 2 */
static dl_module *build(dl_diag *diag)
{
    dl_module *m = ir_module_create();
    dl_func *f = ir_func_create(m, "forward", (dl_loc){0});
    const char *N = ir_intern(m, "N", 1);
    dl_type tx = {DL_F32, 2, {ir_dim_sym(N), ir_dim_const(64)}};
    dl_type tw = {DL_F32, 2, {ir_dim_const(64), ir_dim_const(10)}};
    ir_func_add_arg(f, "x", DL_ROLE_INPUT, NULL, &tx);
    ir_func_add_arg(f, "w", DL_ROLE_PARAM, "fc.weight", &tw);
    dl_value *x = f->args[0], *w = f->args[1];
    dl_op *mm = ir_op_create(f, DL_OP_MATMUL, 2, (dl_value *[]){x, w}, 0, NULL, 1, NULL,
                             (dl_loc){0}, diag);
    ir_op_append(f, mm);
    dl_op *r = ir_op_create(f, DL_OP_RELU, 1, (dl_value *[]){&mm->res[0]}, 0, NULL, 1, NULL,
                            (dl_loc){0}, diag);
    ir_op_append(f, r);
    double two = 2;
    dl_type scalar = {.dtype = DL_F32};
    dl_attr v = {.name = "value", .kind = DL_ATTR_FLOATS, .n = 1, .u.floats = &two};
    dl_op *c = ir_op_create(f, DL_OP_CONSTANT, 0, NULL, 1, &v, 1, &scalar, (dl_loc){0}, diag);
    ir_op_append(f, c);
    dl_op *mul = ir_op_create(f, DL_OP_MUL, 2, (dl_value *[]){&r->res[0], &c->res[0]}, 0, NULL,
                              1, NULL, (dl_loc){0}, diag);
    ir_op_append(f, mul);
    dl_op *ret = ir_op_create(f, DL_OP_RETURN, 1, (dl_value *[]){&mul->res[0]}, 0, NULL, 0, NULL,
                              (dl_loc){0}, diag);
    ir_op_append(f, ret);
    dl_result_info res = {mul->res[0].type, DL_ROLE_OUTPUT};
    ir_func_set_results(f, 1, &res);
    return m;
}

static const char *expected =
    "func @forward(%x: f32[N, 64], %w: f32[64, 10] {role=param, path=\"fc.weight\"}) -> (f32[N, 10]) {\n"
    "  %0 = matmul %x, %w : f32[N, 10]\n"
    "  %1 = relu %0 : f32[N, 10]\n"
    "  %2 = constant {value=[2.0]} : f32\n"
    "  %3 = mul %1, %2 : f32[N, 10]\n"
    "  return %3\n"
    "}\n";

int main(void)
{
    FILE *sink = fopen("/dev/null", "w");
    dl_diag *diag = sup_diag_create(sink);
    dl_module *m = build(diag);
    CHECK(ir_verify(m, diag));
    CHECK_EQ_INT(sup_diag_error_count(diag), 0);
    char *text = print_to_string(m);
    CHECK_EQ_STR(text, expected);

    /* Parse it back: same text. */
    const char *name = sup_diag_add_source(diag, "built.dlir", text, strlen(text));
    dl_module *m2 = ir_parse(name, text, strlen(text), diag);
    CHECK(m2 != NULL);
    if (m2) {
        char *again = print_to_string(m2);
        CHECK_EQ_STR(again, text);
        free(again);
        ir_module_destroy(m2);
    }
    free(text);

    /* Use counts are kept by the builder. */
    dl_func *f = ir_func_find(m, "forward");
    CHECK(f && f->args[0]->nuses == 1 && f->first->res[0].nuses == 1);

    /* A shape error from the builder is a diagnostic and no op. */
    int before = sup_diag_error_count(diag);
    dl_op *bad = ir_op_create(f, DL_OP_MATMUL, 2, (dl_value *[]){f->args[1], f->args[1]}, 0,
                              NULL, 1, NULL, (dl_loc){0}, diag);
    CHECK(bad == NULL);
    CHECK_EQ_INT(sup_diag_error_count(diag), before + 1);

    /* The verifier catches a wrong use count ... */
    f->first->res[0].nuses++;
    CHECK(!ir_verify(m, diag));
    f->first->res[0].nuses--;
    CHECK(ir_verify(m, diag));
    /* ... a use before the definition ... */
    dl_op *relu = f->first->next;
    ir_op_remove(f->first);                 /* matmul: relu now uses a value defined nowhere */
    CHECK(!ir_verify(m, diag));
    ir_module_destroy(m);

    /* ... and a result type that disagrees with inference. */
    m = build(diag);
    f = m->first;
    relu = f->first->next;
    relu->res[0].type.dim[1] = ir_dim_const(11);
    CHECK(!ir_verify(m, diag));
    ir_module_destroy(m);

    /* Passes through the manager: the constant multiply by 2 stays, nothing else changes. */
    m = build(diag);
    dl_pass_opts opts = {.verify_each = true};
    CHECK(pass_run_pipeline(m, "fold,simplify,cse,dce", &opts, diag));
    text = print_to_string(m);
    CHECK_EQ_STR(text, expected);
    free(text);
    CHECK(!pass_run_pipeline(m, "fold,nosuchpass", &opts, diag));
    ir_module_destroy(m);

    sup_diag_destroy(diag);
    fclose(sink);
    return check_result("test_builder");
}
