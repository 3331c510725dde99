/* libFuzzer target for the .dl frontend: lexer, parser, checker and lowering (fe_compile_text),
 * then, for whatever compiles, the verifier, the standard passes and the printer. Any crash,
 * sanitizer report, internal compiler error (SUP_ASSERT exits, which libFuzzer reports as
 * "fuzz target exited"), module that fails to verify or pipeline that fails is a bug.
 *
 * The source is named /nonexistent-dlc-fuzz/fuzz.dl, so relative imports and data paths resolve
 * into a folder that does not exist and fail cleanly. Inputs with a string literal starting with
 * '/' (an absolute import or data path: the only way to name a real file; no escape yields '/')
 * are rejected, so the fuzzer never reads /dev/zero, /dev/stdin or the like. See docs/testing.md. */
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "support/diag.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static FILE *sink;

static bool names_absolute_path(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == '"' && data[i + 1] == '/')
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16 || names_absolute_path(data, size))
        return -1; /* not added to the corpus */
    if (!sink)
        sink = fopen("/dev/null", "w");
    FILE *out = getenv("FUZZ_SHOW") ? stderr : sink;
    dl_diag *diag = sup_diag_create(out);
    if (!diag)
        return 0;
    /* Registered like fe_compile does, so diagnostics can quote the source. */
    const char *name = sup_diag_add_source(diag, "/nonexistent-dlc-fuzz/fuzz.dl", (const char *)data, size);
    size_t len;
    const char *text = name ? sup_diag_source_text(diag, name, &len) : NULL;
    if (!text) {
        sup_diag_destroy(diag);
        return 0;
    }
    dl_module *m = fe_compile_text(name, text, len, NULL, diag);
    if (m) {
        if (!ir_verify(m, diag)) {
            fprintf(stderr, "fuzz_frontend: the lowered module does not verify\n");
            abort();
        }
        dl_pass_opts popts = {.verify_each = true, .print_to = out};
        if (!pass_run_pipeline(m, "fold,simplify,cse,dce", &popts, diag)) {
            fprintf(stderr, "fuzz_frontend: the pass pipeline failed on a lowered module\n");
            abort();
        }
        ir_print(out, m);
        ir_module_destroy(m);
    }
    sup_diag_destroy(diag);
    return 0;
}
