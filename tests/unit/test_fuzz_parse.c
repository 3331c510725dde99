/* Mutation fuzzing of the IR reader: thousands of seeded mutants of valid IR (bytes flipped,
 * ranges dropped or doubled, tokens spliced in). Nothing may crash (the sanitizer build turns any
 * memory error into a failure), a failed parse must say why, and whatever parses must verify,
 * survive the passes, and print -> parse -> print to the same text. */
#define _GNU_SOURCE
#include "ir/ir.h"
#include "passes/pass.h"
#include "support/file.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>

static const char *seeds[] = {
    "func @f(%x: f32[N, 8], %w: f32[8, 4] {role=param, path=\"w\"}, %y: i64[N]) -> (f32 {role=loss}, f32[N, 4]) {\n"
    "  %0 = matmul %x, %w : f32[N, 4]\n"
    "  %1 = constant {value=[1.0, 2.0, 3.0, 4.0]} : f32[4]\n"
    "  %2 = add %0, %1\n"
    "  %3 = cross_entropy %2, %y {reduction=\"sum\", label_smoothing=0.1}\n"
    "  %4, %5 = split %2 {sizes=[1, 3], dim=-1}\n"
    "  %6 = reshape %2 {shape=[-1, 2, 2]} : f32[N, 2, 2]\n"
    "  %7 = permute %6 {dims=[2, 0, 1]}\n"
    "  %8 = sum %7 {dim=[0, 2], keepdim=true}\n"
    "  %9 = exp %2 {checkpoint=2}\n"
    "  return %3, %9\n"
    "}\n",
    "func @g(%x: f32[2, 3, 8, 8], %w: f32[4, 3, 3, 3], %b: f32[4], %rm: f32[4] {role=buffer}) -> (f32[2, 4, 2, 2]) {\n"
    "  %0 = conv2d %x, %w, %b {stride=[2, 2], padding=[1, 1]}\n"
    "  %1 = max_pool2d %0 {kernel_size=[2, 2], ceil_mode=true}\n"
    "  %2 = constant {value=[0.0]} : f32[4]\n"
    "  assign %rm, %2\n"
    "  %3 = gelu %1 {approximate=\"tanh\"}\n"
    "  return %3\n"
    "}\n",
};

static const char *tokens[] = {
    "func", "return", "constant", "{value=[", "f32[", "N*N*N*N*N", "-1", "9999999999999999999999",
    "@", "%0", "}", ")", "]", "{", "(", ",", ":", "=", "->", "\"", "// x", "\n", "1e400", "nan",
    "-inf", "bool", "%x", "split", "{dim=", "{checkpoint=0}", "[[", "%%", "i64[0]", "*", "\\",
    "281474976710656", "9223372036854775807", "-9223372036854775807", "[281474976710656, 1]",
    "{dilation=[281474976710656, 1]}", "{stride=[0, 1]}", "{padding=[-1, 1]}", "0", "1", "A*B*C*D",
};

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static char *print_to_string(const dl_module *m, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    ir_print(f, m);
    fclose(f);
    return buf;
}

/* One mutant of `src` into buf (capacity cap); returns its length. */
static size_t mutate(const char *src, size_t n, char *buf, size_t cap)
{
    size_t len = n < cap ? n : cap;
    memcpy(buf, src, len);
    int rounds = 1 + (int)rnd(4);
    for (int r = 0; r < rounds && len > 2; r++) {
        size_t at = rnd((uint32_t)len), span = 1 + rnd(12);
        if (at + span > len)
            span = len - at;
        switch (rnd(4)) {
        case 0: buf[at] = (char)rnd(256); break;
        case 1:
            memmove(buf + at, buf + at + span, len - at - span);
            len -= span;
            break;
        case 2:
            if (len + span < cap) {
                memmove(buf + at + span, buf + at, len - at);
                len += span;
            }
            break;
        default: {
            const char *t = tokens[rnd(sizeof tokens / sizeof *tokens)];
            size_t tl = strlen(t);
            if (len + tl < cap) {
                memmove(buf + at + tl, buf + at, len - at);
                memcpy(buf + at, t, tl);
                len += tl;
            }
        }
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 4000;
    FILE *sink = fopen("/dev/null", "w");
    size_t exlen = 0;
    char *example = sup_read_file("../../examples/mlp.dlir", &exlen);
    CHECK(example != NULL);
    int parsed = 0;
    char buf[8192];
    for (int it = 0; it < iters; it++) {
        const char *src = it % 3 == 2 && example ? example : seeds[it % 2];
        size_t len = mutate(src, strlen(src), buf, sizeof buf);
        dl_diag *diag = sup_diag_create(getenv("FUZZ_SHOW") ? stderr : sink);
        const char *name = sup_diag_add_source(diag, "fuzz.dlir", buf, len);
        dl_module *m = ir_parse(name, buf, len, diag);
        if (!m) {
            CHECK(sup_diag_error_count(diag) > 0);
            sup_diag_destroy(diag);
            continue;
        }
        /* Some invariants (the signature, `return`) are the verifier's to check, as in dlc-opt. */
        if (!ir_verify(m, diag)) {
            CHECK(sup_diag_error_count(diag) > 0);
            if (getenv("FUZZ_SHOW"))
                fprintf(stderr, "---\n%.*s\n", (int)len, buf);
            ir_module_destroy(m);
            sup_diag_destroy(diag);
            continue;
        }
        parsed++;
        size_t n1, n2;
        char *t1 = print_to_string(m, &n1);
        const char *name2 = sup_diag_add_source(diag, "fuzz2.dlir", t1, n1);
        dl_module *m2 = ir_parse(name2, t1, n1, diag);
        CHECK(m2 != NULL);
        if (m2) {
            char *t2 = print_to_string(m2, &n2);
            CHECK_EQ_STR(t2, t1);
            free(t2);
            ir_module_destroy(m2);
        }
        free(t1);
        dl_pass_opts opts = {.verify_each = true};
        CHECK(pass_run_pipeline(m, "fold,simplify,cse,dce", &opts, diag));
        ir_module_destroy(m);
        sup_diag_destroy(diag);
        if (check_failures > 20)
            break;
    }
    printf("%d mutants, %d parsed\n", iters, parsed);
    CHECK(parsed > 0);
    sup_free(example);
    fclose(sink);
    return check_result("test_fuzz_parse");
}
