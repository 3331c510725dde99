/* dlc: the compiler driver. Argument parsing and nothing else: `dlc check FILE`,
 * `dlc FILE --emit=KIND`, `dlc run FILE --entry NAME ...`; the work is in frontend/, passes/ and
 * codegen/. */
#include "codegen/aot/aot.h"
#include "codegen/cpu/cpu.h"
#include "codegen/dot.h"
#include "codegen/run.h"
#include "codegen/train.h"
#include "dlc/dlc.h"
#include "frontend/frontend.h"
#include "passes/pass.h"
#include "support/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: dlc check FILE.dl                 parse, resolve names, infer shapes\n"
          "       dlc FILE.dl --emit=KIND            print a stage: tokens, ast, ir, ir-opt, dot,\n"
          "                                          llvm, asm (the CPU kernels)\n"
          "       dlc FILE.dl -o libNAME.so          compile ahead of time: a shared library and its\n"
          "                                          header libNAME.h (-o NAME.o: an object file;\n"
          "                                          -o NAME.h: the header alone)\n"
          "       dlc run FILE.dl                     train: run the file's train block\n"
          "       dlc run FILE.dl --entry NAME --input ARG=FILE.npy ... --output DIR\n"
          "                                          run one function on .npy inputs\n"
          "       dlc run FILE.dl ... --grad          also the gradients of its scalar first result\n"
          "                                          (DIR/grad_ARG.npy, DIR/grad_PATH.npy)\n"
          "options:\n"
          "  --entry NAME          only this function (\"name\", \"Model.fn\" or \"Model(args).fn\")\n"
          "  --weights FILE        parameters from a safetensors file, by state_dict path (training:\n"
          "                        the initial parameters; -o: the weights the library embeds)\n"
          "  --external-weights    (-o) embed no weights: the library reads them at create\n"
          "  --cpu NAME            (-o) the LLVM CPU to compile for (default this machine's;\n"
          "                        x86-64-v3 gives a portable library)\n"
          "  --model NAME[(ARGS)]  (-o) the model to export, inference only, with these arguments\n"
          "                        (default: the one the train block trains, with its training step)\n"
          "  --epochs N, --steps N (run) train this long instead (steps: optimizer steps)\n"
          "  --resume CKPT         (run) continue exactly from a checkpoint\n"
          "  --log FILE.jsonl      (run) one JSON object per step and per epoch\n"
          "  --threads N           (run) worker threads (default: the CPUs this process may use)\n"
          "  --quiet               (run) no progress output\n"
          "  --profile             (run) time every kernel; print the busiest at the end\n"
          "  --report              (run, -o) print each kernel: its fused ops and their source\n"
          "                        lines, FLOPs, bytes moved; the totals; the memory plan and its\n"
          "                        peak (-o: FLOPs and bytes in the symbols, the plan at 1)\n"
          "  --interrupt-after N   (run) stop as Ctrl-C does after N batches (for tests)\n"
          "  --seed N              seed of freshly initialised parameters (default the train block's, or 0)\n"
          "  --target cpu|ref|auto (run) the CPU backend (auto: the same here), or the reference\n"
          "                        interpreter\n"
          "  -O0 | -O MODE         compile mode: default, reduce-overhead, max-autotune (-O0: no\n"
          "                        passes, one kernel per op); docs/modes.md\n"
          "  --print-after=PASS[,PASS...]  print the IR after each run of these passes\n"
          "  --cache-dir DIR       (run, -o) the compile cache: compiled code is kept there and reused\n"
          "                        when the same model is compiled again (default $XDG_CACHE_HOME/dlc,\n"
          "                        else ~/.cache/dlc)\n"
          "  --no-cache            (run, -o) neither read nor write the compile cache\n"
          "  --time-passes, --version, --help\n",
          out);
}

enum { MAX_INPUTS = 256 };

/* -o OUT and --emit=header: the train block's model with its training step, or with --model
 * another model of the file, inference only. */
static bool compile_aot(cg_aot_opts *o, dl_diag *diag)
{
    dl_module *m = fe_compile(o->source, NULL, diag);
    /* --model "Name(args)": the prefix is Name's. */
    const char *paren = o->model ? strchr(o->model, '(') : NULL;
    char name[256];
    snprintf(name, sizeof name, "%.*s", paren ? (int)(paren - o->model) : 255, o->model ? o->model : "");
    if (m && o->model && (paren || !m->train || strcmp(o->model, m->train->model))) {
        ir_module_destroy(m);
        char entry[1024];
        snprintf(entry, sizeof entry, "%s.forward", o->model);
        m = fe_compile(o->source, entry, diag);
        if (m && m->first)
            m->first->name = ir_intern(m, "forward", 7);
        o->model = name;
    } else if (m && !o->model && m->train) {
        o->model = m->train->model;
    }
    bool ok = m && (o->output ? cg_aot_compile(m, o, diag) : cg_aot_emit_header(m, o, stdout, diag));
    if (m)
        ir_module_destroy(m);
    return ok;
}

int main(int argc, char **argv)
{
    const char *input = NULL, *emit = NULL, *mode_name = "default", *entry = NULL;
    const char *output = NULL, *weights = NULL, *target = "auto", *aot_out = NULL, *cpu = NULL;
    const char *model = NULL, *cache_dir = NULL, *print_after = NULL;
    bool external = false, no_cache = false;
    bool check = false, run = false, time_passes = false, grad = false, quiet = false, profile = false;
    bool report = false;
    bool seed_set = false;
    const char *resume = NULL, *log = NULL;
    long long epochs = 0, steps = 0, threads = 0, interrupt_after = 0;
    cg_run_input inputs[MAX_INPUTS];
    int ninputs = 0;
    unsigned long long seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return DLC_EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            printf("dlc %d.%d.%d\n", DLC_VERSION_MAJOR, DLC_VERSION_MINOR, DLC_VERSION_PATCH);
            return DLC_EXIT_OK;
        } else if (i == 1 && !strcmp(a, "check")) {
            check = true;
        } else if (i == 1 && !strcmp(a, "run")) {
            run = true;
        } else if (!strncmp(a, "--emit=", 7)) {
            emit = a + 7;
        } else if (!strcmp(a, "--entry") && has_value) {
            entry = argv[++i];
        } else if (!strcmp(a, "--input") && has_value) {
            char *arg = argv[++i], *eq = strchr(arg, '=');
            if (!eq || eq == arg || !eq[1] || ninputs == MAX_INPUTS) {
                fprintf(stderr, "dlc: error: --input takes ARG=FILE.npy, not '%s'\n", arg);
                return DLC_EXIT_USAGE;
            }
            *eq = 0;
            inputs[ninputs++] = (cg_run_input){arg, eq + 1};
        } else if (!strcmp(a, "-o") && has_value) {
            aot_out = argv[++i];
        } else if (!strcmp(a, "--cpu") && has_value) {
            cpu = argv[++i];
        } else if (!strcmp(a, "--model") && has_value) {
            model = argv[++i];
        } else if (!strcmp(a, "--external-weights")) {
            external = true;
        } else if (!strcmp(a, "--output") && has_value) {
            output = argv[++i];
        } else if (!strcmp(a, "--weights") && has_value) {
            weights = argv[++i];
        } else if (!strcmp(a, "--seed") && has_value) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            seed_set = true;
            if (*end || !*argv[i] || argv[i][0] == '-') {
                fprintf(stderr, "dlc: error: --seed takes a non-negative integer, not '%s'\n", argv[i]);
                return DLC_EXIT_USAGE;
            }
        } else if ((!strcmp(a, "--epochs") || !strcmp(a, "--steps") || !strcmp(a, "--threads") ||
                    !strcmp(a, "--interrupt-after")) && has_value) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || !*argv[i] || v < 1 || v > (1LL << 40)) {
                fprintf(stderr, "dlc: error: %s takes a positive integer, not '%s'\n", a, argv[i]);
                return DLC_EXIT_USAGE;
            }
            *(!strcmp(a, "--epochs") ? &epochs : !strcmp(a, "--steps") ? &steps :
              !strcmp(a, "--threads") ? &threads : &interrupt_after) = v;
        } else if (!strcmp(a, "--resume") && has_value) {
            resume = argv[++i];
        } else if (!strcmp(a, "--log") && has_value) {
            log = argv[++i];
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if (!strcmp(a, "--report")) {
            report = true;
        } else if (!strcmp(a, "--target") && has_value) {
            target = argv[++i];
        } else if (!strcmp(a, "-O0")) {
            mode_name = "0";
        } else if (!strcmp(a, "-O") && has_value) {
            mode_name = argv[++i];
        } else if (!strncmp(a, "--print-after=", 14) && a[14]) {
            print_after = a + 14;
        } else if (!strcmp(a, "--grad")) {
            grad = true;
        } else if (!strcmp(a, "--cache-dir") && has_value) {
            cache_dir = argv[++i];
        } else if (!strcmp(a, "--no-cache")) {
            no_cache = true;
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
    static const char *const kinds[] = {"tokens", "ast", "ir", "ir-opt", "dot", "llvm", "asm", "header"};
    bool known = !emit;
    for (size_t k = 0; emit && k < sizeof kinds / sizeof *kinds; k++)
        known |= !strcmp(emit, kinds[k]);
    const char *problem = NULL;
    cg_mode mode = CG_MODE_DEFAULT;
    if (!input)
        problem = "no input file";
    else if (!known)
        problem = "unknown --emit kind (tokens, ast, ir, ir-opt, dot, llvm, asm, header)";
    else if (!strcmp(target, "cuda"))
        problem = "--target cuda: the CUDA backend comes in a later version";
    else if (strcmp(target, "cpu") && strcmp(target, "ref") && strcmp(target, "auto"))
        problem = "unknown --target (cpu, ref, auto)";
    else if (!cg_mode_parse(mode_name, &mode))
        problem = "unknown compile mode (-O0, or -O default, reduce-overhead or max-autotune)";
    else if (run && entry && !output)
        problem = "dlc run --entry needs --output DIR";
    else if (run && !entry && (output || ninputs || grad))
        problem = "--input, --output and --grad go with 'dlc run --entry NAME'";
    else if (run && !entry && !strcmp(target, "ref"))
        problem = "training runs on the CPU backend (--target cpu)";
    else if ((epochs || steps || resume || log || quiet || interrupt_after || profile) && !(run && !entry))
        problem = "--epochs, --steps, --resume, --log, --quiet and --profile go with 'dlc run FILE' (training)";
    else if (report && ((!run && !aot_out) || !strcmp(target, "ref")))
        problem = "--report goes with 'dlc run' on the CPU backend, or with -o";
    else if (!run && !check && !emit && !aot_out)
        problem = "nothing to do: compile with -o libNAME.so, or use 'dlc check', --emit or 'dlc run'";
    else if (aot_out && (run || check || emit))
        problem = "-o goes with 'dlc FILE.dl' alone (not run, check or --emit)";
    else if ((cpu || external || model) && !aot_out && !(emit && !strcmp(emit, "header")))
        problem = "--cpu, --external-weights and --model go with -o";
    else if (aot_out && (entry || (strcmp(target, "auto") && strcmp(target, "cpu"))))
        problem = "-o compiles the model for the CPU (no --entry; --target cpu)";
    else if (external && weights)
        problem = "--weights and --external-weights exclude each other (with --external-weights the "
                  "library reads the weights file named at _create)";
    else if (!run && !aot_out && (ninputs || output || weights))
        problem = "--input, --output and --weights go with 'dlc run' (--weights also with -o)";
    else if (!run && (ninputs || output))
        problem = "--input and --output go with 'dlc run'";
    else if (cache_dir && (no_cache || !*cache_dir))
        problem = no_cache ? "--cache-dir and --no-cache exclude each other" : "--cache-dir takes a directory";
    if (problem) {
        fprintf(stderr, "dlc: error: %s\n", problem);
        if (!input)
            usage(stderr);
        return DLC_EXIT_USAGE;
    }

    dl_diag *diag = sup_diag_create(stderr);
    char *cache = sup_cache_dir(cache_dir, no_cache);
    if (!diag) {
        free(cache);
        return DLC_EXIT_USER;
    }
    bool ok;
    if (emit && !strcmp(emit, "tokens")) {
        ok = fe_emit_tokens(input, stdout, diag);
    } else if (emit && !strcmp(emit, "ast")) {
        ok = fe_emit_ast(input, stdout, diag);
    } else if (aot_out || (emit && !strcmp(emit, "header"))) {
        cg_aot_opts ao = {aot_out, model, input, cpu, weights, external, mode, print_after, seed_set,
                          seed, time_passes, cache, report};
        ok = compile_aot(&ao, diag);
    } else {
        dl_module *m = fe_compile(input, entry, diag);
        ok = m != NULL;
        if (ok && grad) {
            dl_pass_opts popts = {.time_passes = time_passes, .print_after = print_after};
            ok = pass_run_pipeline(m, "autodiff", &popts, diag);
        }
        bool native = emit && (!strcmp(emit, "llvm") || !strcmp(emit, "asm"));
        bool training = run && !entry;
        if (threads) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", threads);
            setenv("DLC_NUM_THREADS", buf, 1);
        }
        /* Code generation works on primitives: composite ops are decomposed and fused (the
         * reference interpreter, the oracle, runs them as written after the graph passes). */
        dl_pass_opts popts = {.time_passes = time_passes, .print_after = print_after};
        bool codegen = native || (run && strcmp(target, "ref")) || (emit && !strcmp(emit, "dot"));
        if (ok && !training && (run || codegen || (emit && !strcmp(emit, "ir-opt"))))
            ok = cg_mode_optimize(m, mode, !training && codegen, &popts, diag);
        if (ok && emit && !strcmp(emit, "dot"))
            ok = cg_dot_print(stdout, m, cg_mode_fuses(mode));
        else if (ok && native) {
            for (const dl_func *f = m->first; f && ok; f = f->next) {
                char err[512];
                char *text = cg_cpu_text(f, cg_mode_fuses(mode), !strcmp(emit, "asm"), err, sizeof err);
                if (!text) {
                    sup_diag_error(diag, (dl_loc){0}, "@%s: %s", f->name, err);
                    ok = false;
                    break;
                }
                printf("; ---- @%s ----\n%s", f->name, text);
                free(text);
            }
        } else if (ok && emit)
            ir_print(stdout, m);
        if (ok && run && !entry) {
            cg_train_opts to = {epochs, steps, seed_set, seed, resume, log, weights, quiet,
                                mode, print_after, time_passes, interrupt_after, profile, cache, report};
            bool interrupted = false;
            ok = cg_train_run(m, &to, &interrupted, diag);
            if (interrupted) {
                ir_module_destroy(m);
                sup_diag_destroy(diag);
                free(cache);
                return DLC_EXIT_INTERRUPTED;
            }
        } else if (ok && run) {
            cg_run_opts ro = {ninputs, inputs, output, weights, seed, !strcmp(target, "ref"),
                              mode, print_after, time_passes, grad, cache, report};
            ok = cg_run_entry(m->first, &ro, diag);
        }
        ir_module_destroy(m);
    }
    sup_diag_destroy(diag);
    free(cache);
    return ok ? DLC_EXIT_OK : DLC_EXIT_USER;
}
