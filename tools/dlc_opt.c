/* dlc-opt: reads textual IR, runs the named passes, prints the IR. The tool lit tests drive.
 * Argument parsing and nothing else; the work is in ir/ and passes/. */
#include "dlc/dlc.h"
#include "ir/ir.h"
#include "passes/pass.h"
#include "support/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: dlc-opt FILE.dlir [options]   (FILE '-' reads standard input)\n"
          "  --pass=a,b,c          run these passes in order (--list-passes names them)\n"
          "  --list-passes         list the passes with one-line summaries\n"
          "  --print-after=a,b     print the IR after each of these passes\n"
          "  --print-after-all     print the IR after every pass\n"
          "  --verify-diagnostics  check diagnostics against expected-error {{...}} annotations\n"
          "  --verify-each         run the verifier after every pass (always on in debug builds)\n"
          "  --time-passes         report each pass's time on stderr\n"
          "  -o FILE               write the IR to FILE instead of standard output\n"
          "  --version, --help\n",
          out);
}

static bool flag_value(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) || arg[n] != '=')
        return false;
    *value = arg + n + 1;
    return true;
}

int main(int argc, char **argv)
{
    const char *input = NULL, *pipeline = "", *output = NULL;
    bool verify_diags = false;
    dl_pass_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return DLC_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("dlc-opt %s (LLVM %s)\n", DLC_VERSION, DLC_LLVM_VERSION);
            return DLC_EXIT_OK;
        } else if (!strcmp(a, "--list-passes")) {
            puts("Passes:");
            pass_list(stdout);
            return DLC_EXIT_OK;
        } else if (flag_value(a, "--pass", &v) || flag_value(a, "--passes", &v)) {
            pipeline = v;
        } else if (flag_value(a, "--print-after", &v)) {
            opts.print_after = v;
        } else if (!strcmp(a, "--print-after-all")) {
            opts.print_after_all = true;
        } else if (!strcmp(a, "--verify-diagnostics")) {
            verify_diags = true;
        } else if (!strcmp(a, "--verify-each")) {
            opts.verify_each = true;
        } else if (!strcmp(a, "--time-passes")) {
            opts.time_passes = true;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            output = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "dlc-opt: error: unknown option '%s'\n", a);
            usage(stderr);
            return DLC_EXIT_USAGE;
        } else if (input) {
            fprintf(stderr, "dlc-opt: error: more than one input file ('%s', '%s')\n", input, a);
            return DLC_EXIT_USAGE;
        } else
            input = a;
    }
    if (!input) {
        usage(stderr);
        return DLC_EXIT_USAGE;
    }
    /* Check the pipeline's names before reading anything. */
    for (const char *p = pipeline; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (!pass_lookup(p, n)) {
            fprintf(stderr, "dlc-opt: error: unknown pass '%.*s' (--list-passes lists them)\n",
                    (int)n, p);
            return DLC_EXIT_USAGE;
        }
        p = comma ? comma + 1 : p + n;
    }

    size_t len;
    char *text = sup_read_file(input, &len);
    if (!text) {
        fprintf(stderr, "dlc-opt: error: cannot read '%s': %s\n", input, strerror(errno));
        return DLC_EXIT_USER;
    }
    dl_diag *diag = sup_diag_create(stderr);
    const char *name = diag ? sup_diag_add_source(diag, strcmp(input, "-") ? input : "<stdin>",
                                                   text, len) : NULL;
    if (!name) {
        fputs("dlc-opt: error: out of memory\n", stderr);
        sup_free(text);
        sup_diag_destroy(diag);
        return DLC_EXIT_USER;
    }
    sup_diag_set_verify(diag, verify_diags);

    dl_module *m = ir_parse(name, text, len, diag);
    sup_free(text);
    bool ok = m && ir_verify(m, diag) && pass_run_pipeline(m, pipeline, &opts, diag);
    int rc = ok ? DLC_EXIT_OK : DLC_EXIT_USER;
    if (verify_diags)
        rc = sup_diag_verify(diag) ? DLC_EXIT_USER : DLC_EXIT_OK;
    else if (ok) {
        FILE *out = output ? fopen(output, "w") : stdout;
        if (!out) {
            fprintf(stderr, "dlc-opt: error: cannot write '%s': %s\n", output, strerror(errno));
            rc = DLC_EXIT_USER;
        } else {
            ir_print(out, m);
            if ((output && fclose(out)) || (!output && fflush(out))) {
                fprintf(stderr, "dlc-opt: error: writing the IR failed: %s\n", strerror(errno));
                rc = DLC_EXIT_USER;
            }
        }
    }
    ir_module_destroy(m);
    sup_diag_destroy(diag);
    return rc;
}
