/* libFuzzer target for the IR reader (ir_parse): whatever parses and verifies must survive the
 * standard passes (verifying after each), and print -> parse -> print must give the same text.
 * Any crash, sanitizer report, internal compiler error or broken invariant is a bug. The
 * coverage-guided counterpart of tests/unit/test_fuzz_parse.c. See docs/testing.md. */
#define _GNU_SOURCE
#include "ir/ir.h"
#include "passes/pass.h"
#include "support/diag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

static char *print_to_string(const dl_module *m, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        abort();
    ir_print(f, m);
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return -1;
    if (!sink)
        sink = fopen("/dev/null", "w");
    FILE *out = getenv("FUZZ_SHOW") ? stderr : sink;
    dl_diag *diag = sup_diag_create(out);
    if (!diag)
        return 0;
    const char *name = sup_diag_add_source(diag, "fuzz.dlir", (const char *)data, size);
    size_t len;
    const char *text = name ? sup_diag_source_text(diag, name, &len) : NULL;
    dl_module *m = text ? ir_parse(name, text, len, diag) : NULL;
    if (!m) {
        if (text && sup_diag_error_count(diag) == 0) {
            fprintf(stderr, "fuzz_ir: ir_parse failed without saying why\n");
            abort();
        }
        sup_diag_destroy(diag);
        return 0;
    }
    /* Some invariants (the signature, `return`) are the verifier's to check, as in dlc-opt. */
    if (!ir_verify(m, diag)) {
        ir_module_destroy(m);
        sup_diag_destroy(diag);
        return 0;
    }
    size_t n1, n2;
    char *t1 = print_to_string(m, &n1);
    const char *name2 = sup_diag_add_source(diag, "fuzz2.dlir", t1, n1);
    dl_module *m2 = name2 ? ir_parse(name2, t1, n1, diag) : NULL;
    if (name2 && !m2) {
        fprintf(stderr, "fuzz_ir: the printed module does not parse:\n%s", t1);
        abort();
    }
    if (m2) {
        char *t2 = print_to_string(m2, &n2);
        if (n1 != n2 || memcmp(t1, t2, n1)) {
            fprintf(stderr, "fuzz_ir: print -> parse -> print differs:\n%s---\n%s", t1, t2);
            abort();
        }
        free(t2);
        ir_module_destroy(m2);
    }
    free(t1);
    dl_pass_opts popts = {.verify_each = true, .print_to = out};
    if (!pass_run_pipeline(m, "fold,simplify,cse,dce", &popts, diag)) {
        fprintf(stderr, "fuzz_ir: the pass pipeline failed on a verified module\n");
        abort();
    }
    ir_print(out, m);
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return 0;
}
