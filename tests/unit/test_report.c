/* --report's counting (codegen/report.c): the FLOPs of every op kind with a rule of its own and
 * the bytes a kernel moves, for bound symbols, and the same as polynomials in the symbols. Each
 * op is a kernel of its own (-O0), so the numbers are the rules' alone; they are worked out by
 * hand in the comments. */
#include "codegen/report.h"
#include "tests/unit/check.h"

#include <stdlib.h>

/* Whether some line of text, its runs of spaces made one, ends with `want`. */
static bool has_row(const char *text, const char *want)
{
    char line[4096];
    for (const char *s = text; *s;) {
        size_t n = 0;
        for (; *s && *s != '\n'; s++)
            if (n + 1 < sizeof line && !(*s == ' ' && n && line[n - 1] == ' '))
                line[n++] = *s;
        line[n] = 0;
        s += *s == '\n';
        size_t w = strlen(want);
        if (n >= w && !strcmp(line + n - w, want))
            return true;
    }
    return false;
}

static const char *src =
    "func @f(%x: f32[N, 3, 8, 8], %w: f32[4, 3, 3, 3], %b: f32[4], %q: f32[2, 5, 16], %k: f32[2, 7, 16],\n"
    "        %v: f32[2, 7, 8], %a: f32[2, 6, 5], %c: f32[5, 3])\n"
    "    -> (f32[N, 4, 4, 4], f32[N, 3, 8, 8], f32[4, 3, 3, 3], f32[N, 3, 4, 4], f32[2, 5, 8], f32[2, 6, 3],\n"
    "        f32[2, 6, 5], f32[2, 6, 5], f32[2, 5], f32[2, 6, 5]) {\n"
    "  %0 = conv2d %x, %w, %b {stride=[2], padding=[1]}\n"
    "  %1 = conv_transpose2d %0, %w {stride=[2], padding=[1], output_padding=[1]}\n"
    "  %2 = conv2d_grad_weight %x, %0 {stride=[2], padding=[1], weight_shape=[4, 3, 3, 3]}\n"
    "  %3 = max_pool2d %x {kernel_size=[2]}\n"
    "  %4 = scaled_dot_product_attention %q, %k, %v\n"
    "  %5 = matmul %a, %c\n"
    "  %6 = softmax %a\n"
    "  %7 = layer_norm %a {normalized_shape=[5]}\n"
    "  %8 = sum %a {dim=[1]}\n"
    "  %9 = exp %a\n"
    "  return %0, %1, %2, %3, %4, %5, %6, %7, %8, %9\n"
    "}\n";

int main(void)
{
    FILE *sink = fopen("/dev/null", "w");
    dl_diag *diag = sup_diag_create(sink);
    const char *name = sup_diag_add_source(diag, "report.dlir", src, strlen(src));
    dl_module *m = ir_parse(name, src, strlen(src), diag);
    CHECK(m != NULL);
    if (!m)
        return check_result("test_report");
    sup_arena a;
    sup_arena_init(&a, NULL);
    const cg_program *p = cg_program_build(m->first, false, &a);
    CHECK_EQ_INT(p->nkernels, 10);
    CHECK_EQ_INT(p->nsyms, 1);
    const int64_t n2[] = {2};
    static const int64_t want[][2] = {
        /* conv2d: 2*N*Cout*Hout*Wout*Cin*kh*kw = 2*2*4*4*4*3*3*3; reads x, w, b, writes [2,4,4,4] */
        {6912, 4 * (384 + 108 + 4 + 128)},
        /* conv_transpose2d: 2*numel(input)*(Cout/groups)*kh*kw = 2*128*3*3*3 */
        {6912, 4 * (128 + 108 + 384)},
        /* conv2d_grad_weight: as the forward conv, 2*numel(dy)*Cin*kh*kw */
        {6912, 4 * (384 + 128 + 108)},
        /* max_pool2d 2x2: one per window element, 2*3*4*4 * 4 */
        {384, 4 * (384 + 96)},
        /* attention: 2*B*L*S*(E + Ev) = 2*2*5*7*(16 + 8) */
        {3360, 4 * (160 + 224 + 112 + 80)},
        /* matmul [2, 6, 5] @ [5, 3]: 2*M*N*K = 2*(2*6)*3*5 */
        {360, 4 * (60 + 15 + 36)},
        /* softmax: 5 per element; layer_norm without affine operands: 5 per element */
        {300, 4 * 120},
        {300, 4 * 120},
        /* sum: one per input element; exp: one per output element */
        {60, 4 * (60 + 10)},
        {60, 4 * 120},
    };
    for (int i = 0; i < p->nkernels && i < 10; i++) {
        int64_t flops, bytes;
        cg_report_kernel_cost(p, i, n2, &flops, &bytes);
        if (flops != want[i][0] || bytes != want[i][1])
            fprintf(stderr, "kernel %s\n", p->kernels[i].name);
        CHECK_EQ_INT(flops, want[i][0]);
        CHECK_EQ_INT(bytes, want[i][1]);
    }

    /* Unbound: polynomials in N. The convolutions 3456*N each, the pool 192*N, the rest constants
     * (3360 + 360 + 300 + 300 + 60 + 60 = 4440); conv2d reads 768*N bytes of x, 432 of w and 16
     * of b and writes 256*N. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(cg_report_print_symbolic(out, p));
    fclose(out);
    CHECK(strstr(text, "report of @f, FLOPs and bytes in N\n") != NULL);
    CHECK(has_row(text, " 0 k0_conv2d conv 3456*N 1024*N + 448 %0 conv2d report.dlir:5 3456*N"));
    CHECK(has_row(text, "%3 max_pool2d report.dlir:8 192*N"));
    CHECK(has_row(text, "%4 scaled_dot_product_attention report.dlir:9 3360"));
    CHECK(strstr(text, "total: 10 kernels, 10560*N + 4440 FLOPs, ") != NULL);
    CHECK(strstr(text, "the memory plan with every symbol = 1") != NULL);
    CHECK(strstr(text, "\npeak ") != NULL);
    if (check_failures)
        fputs(text, stderr);
    free(text);
    sup_arena_reset(&a);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    fclose(sink);
    return check_result("test_report");
}
