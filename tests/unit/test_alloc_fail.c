/* Fails the Nth allocation for every N until a run completes, through parsing, verifying and
 * the pass pipeline: each run must end in success or a clean "out of memory" error, never a
 * crash, and (under ASan/LSan) never a leak. */
#include "ir/ir.h"
#include "passes/pass.h"
#include "tests/unit/check.h"

static const char *src =
    "func @f(%x: f32[N, 8], %w: f32[8, 8] {role=param}) -> (f32[N, 8], f32) {\n"
    "  %0 = matmul %x, %w\n"
    "  %1 = constant {value=[0.0]} : f32\n"
    "  %2 = add %0, %1\n"
    "  %3 = relu %2\n"
    "  %4 = relu %2\n"
    "  %5 = mul %3, %4\n"
    "  %6 = reshape %5 {shape=[-1, 2, 4]}\n"
    "  %7 = reshape %6 {shape=[N, 8]}\n"
    "  %8 = constant {value=[1.0, 2.0]} : f32[2]\n"
    "  %9 = constant {value=[3.0]} : f32\n"
    "  %10 = mul %8, %9\n"
    "  %11 = sum %10\n"
    "  return %7, %11\n"
    "}\n";

/* One complete run; true if it succeeded. */
static bool run_once(FILE *sink, bool *clean)
{
    *clean = true;
    dl_diag *diag = sup_diag_create(sink);
    if (!diag)
        return false;
    const char *name = sup_diag_add_source(diag, "t.dlir", src, strlen(src));
    bool ok = false;
    if (name) {
        dl_module *m = ir_parse(name, src, strlen(src), diag);
        dl_pass_opts opts = {.verify_each = true};
        ok = m && ir_verify(m, diag) && pass_run_pipeline(m, "fold,simplify,cse,dce", &opts, diag);
        ir_module_destroy(m);
    }
    /* A failure must have said why (or been the diag context itself failing to allocate). */
    if (!ok && name && sup_diag_error_count(diag) == 0)
        *clean = false;
    sup_diag_destroy(diag);
    return ok;
}

int main(void)
{
    FILE *sink = fopen("/dev/null", "w");
    bool clean;
    sup_alloc_fail_after(-1);
    CHECK(run_once(sink, &clean));
    long total = sup_alloc_fail_after(-1);
    CHECK(total > 3);
    int failures = 0;
    for (long n = 0; n < total + 2; n++) {
        sup_alloc_fail_after(n);
        bool ok = run_once(sink, &clean);
        sup_alloc_fail_after(-1);
        CHECK(clean);
        if (!ok)
            failures++;
        if (ok && n < total)
            fprintf(stderr, "run with %ld allocations allowed succeeded (of %ld)\n", n, total);
    }
    CHECK(failures >= total);
    fclose(sink);
    return check_result("test_alloc_fail");
}
