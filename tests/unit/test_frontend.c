/* The frontend through its C entry point: IR ops keep the source line they came from, and
 * failing each allocation in turn ends in a clean error, never a crash or a leak (run under
 * ASan and LeakSanitizer in the test command). */
#include "frontend/frontend.h"
#include "tests/unit/check.h"

static const char *src =
    "model Tiny(d: int = 4) {\n"                                   /* 1 */
    "  param w: f32[d, d] = normal(0, 0.02)\n"                     /* 2 */
    "  fn forward(x: f32[N, d]) -> f32[N, d] {\n"                  /* 3 */
    "    h = x @ w\n"                                              /* 4 */
    "    return relu(h)\n"                                         /* 5 */
    "  }\n"
    "}\n"
    "fn scale(x: f32[N, 3]) -> f32[N, 3] {\n"                      /* 8 */
    "  return x * 2.0\n"                                           /* 9 */
    "}\n";

int main(void)
{
    FILE *sink = fopen("/dev/null", "w");
    dl_diag *diag = sup_diag_create(sink);
    const char *name = sup_diag_add_source(diag, "t.dl", src, strlen(src));
    dl_module *m = fe_compile_text(name, src, strlen(src), NULL, diag);
    CHECK(m != NULL);
    if (m) {
        dl_func *f = ir_func_find(m, "Tiny.forward");
        CHECK(f != NULL);
        int seen = 0;
        for (dl_op *op = f ? f->first : NULL; op; op = op->next) {
            if (op->code == DL_OP_MATMUL) {
                CHECK_EQ_INT(op->loc.line, 4);
                seen++;
            }
            if (op->code == DL_OP_RELU) {
                CHECK_EQ_INT(op->loc.line, 5);
                seen++;
            }
            CHECK(op->loc.file == name);
        }
        CHECK_EQ_INT(seen, 2);
        CHECK(f && f->arginfo[0].init && !strcmp(f->arginfo[0].init, "normal(0, 0.02)"));
        dl_func *g = ir_func_find(m, "scale");
        CHECK(g && g->first->code == DL_OP_CONSTANT && g->first->loc.line == 9);
    }
    ir_module_destroy(m);
    sup_diag_destroy(diag);

    /* Every allocation failing in turn. */
    sup_alloc_fail_after(-1);
    diag = sup_diag_create(sink);
    name = sup_diag_add_source(diag, "t.dl", src, strlen(src));
    sup_alloc_fail_after(-1);
    m = fe_compile_text(name, src, strlen(src), NULL, diag);
    long total = sup_alloc_fail_after(-1);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    CHECK(total > 2);
    for (long n = 0; n < total; n++) {
        diag = sup_diag_create(sink);
        name = diag ? sup_diag_add_source(diag, "t.dl", src, strlen(src)) : NULL;
        sup_alloc_fail_after(n);
        m = name ? fe_compile_text(name, src, strlen(src), NULL, diag) : NULL;
        sup_alloc_fail_after(-1);
        CHECK(m == NULL);
        CHECK(!name || sup_diag_error_count(diag) > 0);
        ir_module_destroy(m);
        sup_diag_destroy(diag);
    }
    fclose(sink);
    return check_result("test_frontend");
}
