/* dlc: the compiler driver. Argument parsing and nothing else: `dlc check FILE`,
 * `dlc FILE --emit=KIND`; the work is in frontend/, passes/ and (later) codegen/. */
#include "dlc/dlc.h"
#include "frontend/frontend.h"
#include "passes/pass.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: dlc check FILE.dl                 parse, resolve names, infer shapes\n"
          "       dlc FILE.dl --emit=KIND            print a stage: tokens, ast, ir, ir-opt, dot\n"
          "options:\n"
          "  --entry NAME          only this function (\"name\" or \"Model.fn\")\n"

          "  -O0 | -O default      compile mode (ir-opt: -O0 runs no passes)\n"
          "  --time-passes, --version, --help\n",
          out);
}

int main(int argc, char **argv)
{
    const char *input = NULL, *emit = NULL, *mode = "default", *entry = NULL;
    bool check = false, time_passes = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return DLC_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("dlc %d.%d.%d\n", DLC_VERSION_MAJOR, DLC_VERSION_MINOR, DLC_VERSION_PATCH);
            return DLC_EXIT_OK;
        } else if (i == 1 && !strcmp(a, "check")) {
            check = true;
        } else if (!strncmp(a, "--emit=", 7)) {
            emit = a + 7;
        } else if (!strcmp(a, "--entry") && i + 1 < argc) {
            entry = argv[++i];
        } else if (!strcmp(a, "-O0")) {
            mode = "0";
        } else if (!strcmp(a, "-O") && i + 1 < argc) {
            mode = argv[++i];
        } else if (!strcmp(a, "--time-passes")) {
            time_passes = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dlc: error: unknown option '%s'\n", a);
            usage(stderr);
            return DLC_EXIT_USAGE;
        } else if (input) {
            fprintf(stderr, "dlc: error: more than one input file ('%s', '%s')\n", input, a);
            return DLC_EXIT_USAGE;
        } else
            input = a;
    }
    static const char *const kinds[] = {"tokens", "ast", "ir", "ir-opt", "dot"};
    bool known = !emit;
    for (size_t k = 0; emit && k < sizeof kinds / sizeof *kinds; k++)
        known |= !strcmp(emit, kinds[k]);
    if (!input || !known || (!check && !emit) || (strcmp(mode, "0") && strcmp(mode, "default"))) {
        if (emit && !known)
            fprintf(stderr, "dlc: error: unknown --emit kind '%s' (tokens, ast, ir, ir-opt, dot)\n", emit);
        else if (input && !check && !emit)
            fputs("dlc: error: code generation comes in a later version; use 'dlc check' or --emit\n",
                  stderr);
        else
            usage(stderr);
        return DLC_EXIT_USAGE;
    }

    dl_diag *diag = sup_diag_create(stderr);
    if (!diag)
        return DLC_EXIT_USER;
    bool ok;
    if (emit && !strcmp(emit, "tokens")) {
        ok = fe_emit_tokens(input, stdout, diag);
    } else if (emit && !strcmp(emit, "ast")) {
        ok = fe_emit_ast(input, stdout, diag);
    } else {
        dl_module *m = fe_compile(input, entry, diag);
        ok = m != NULL;
        if (ok && emit && !strcmp(emit, "ir-opt") && strcmp(mode, "0")) {
            dl_pass_opts popts = {.time_passes = time_passes};
            ok = pass_run_pipeline(m, "fold,simplify,cse,dce", &popts, diag);
        }
        if (ok && emit && !strcmp(emit, "dot"))
            ir_print_dot(stdout, m);
        else if (ok && emit)
            ir_print(stdout, m);
        ir_module_destroy(m);
    }
    sup_diag_destroy(diag);
    return ok ? DLC_EXIT_OK : DLC_EXIT_USER;
}
