/* Ahead-of-time compilation (see aot.h). One LLVM module holds everything the library needs
 * besides the run time: each function's kernels (the plan cg_aot_plan makes, which the library
 * makes again at create), the gemm micro-kernel, a constant cg_aot_desc with the IR text and the
 * weights, and the exported wrappers. Everything but the wrappers has internal linkage, so two
 * libraries in one process never clash; the run time is linked from the archive dlc carries. */
#include "codegen/aot/aot.h"

#include "codegen/aot/header.h"
#include "codegen/aot/model.h"
#include "codegen/aot/special.h"
#include "codegen/cpu/cpu.h"
#include "codegen/report.h"
#include "codegen/run.h"
#include "codegen/train.h"
#include "ir/train.h"
#include "passes/pass.h"
#include "passes/train_step.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "support/cache.h"
#include "support/file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* The run-time archive (libdlc_aotrt.a), carried inside dlc by codegen/aot/runtime_blob.S. */
extern const unsigned char dlc_aot_runtime_start[], dlc_aot_runtime_end[];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* --cpu: LLVM 19's x86-64 processors (X86.td). LLVM itself only warns about an unknown name and
 * then fails deep in code generation, so names are checked here first. */
static bool known_cpu(const char *cpu)
{
    static const char *const names[] = {
        "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "generic", "nocona", "core2", "penryn", "bonnell",
        "atom", "silvermont", "slm", "goldmont", "goldmont-plus", "tremont", "nehalem", "corei7", "westmere",
        "sandybridge", "corei7-avx", "ivybridge", "core-avx-i", "haswell", "core-avx2", "broadwell", "skylake",
        "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "rocketlake",
        "icelake-server", "tigerlake", "sapphirerapids", "alderlake", "raptorlake", "meteorlake", "arrowlake",
        "arrowlake-s", "lunarlake", "gracemont", "pantherlake", "sierraforest", "grandridge", "graniterapids",
        "graniterapids-d", "emeraldrapids", "clearwaterforest", "knl", "knm", "k8", "opteron", "athlon64",
        "athlon-fx", "k8-sse3", "opteron-sse3", "athlon64-sse3", "amdfam10", "barcelona", "btver1", "btver2",
        "bdver1", "bdver2", "bdver3", "bdver4", "znver1", "znver2", "znver3", "znver4", "znver5", NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(names[i], cpu))
            return true;
    return false;
}

/* The extensions the kernels may use (model.h CG_AOT_ISA_*): this machine's features, or the
 * x86-64 level --cpu's processor has (LLVM's C API does not expand a CPU name into features). */
static int64_t required_isa(const char *cpu)
{
    const int64_t v3 = CG_AOT_ISA_SSE42 | CG_AOT_ISA_AVX | CG_AOT_ISA_AVX2 | CG_AOT_ISA_FMA | CG_AOT_ISA_BMI2,
                  v4 = v3 | CG_AOT_ISA_AVX512F | CG_AOT_ISA_AVX512BW | CG_AOT_ISA_AVX512DQ | CG_AOT_ISA_AVX512VL |
                       CG_AOT_ISA_AVX512CD;
    if (!cpu) {
        static const struct { const char *feature; int64_t bit; } map[] = {
            {"+sse4.2", CG_AOT_ISA_SSE42}, {"+avx,", CG_AOT_ISA_AVX}, {"+avx2", CG_AOT_ISA_AVX2},
            {"+fma", CG_AOT_ISA_FMA}, {"+bmi2", CG_AOT_ISA_BMI2}, {"+avx512f", CG_AOT_ISA_AVX512F},
            {"+avx512bw", CG_AOT_ISA_AVX512BW}, {"+avx512dq", CG_AOT_ISA_AVX512DQ},
            {"+avx512vl", CG_AOT_ISA_AVX512VL}, {"+avx512cd", CG_AOT_ISA_AVX512CD}};
        char *f = LLVMGetHostCPUFeatures();
        size_t n = strlen(f);
        char *padded = malloc(n + 2);     /* "+avx," must not match "+avx2" or "+avx512f" */
        int64_t isa = 0;
        if (padded) {
            snprintf(padded, n + 2, "%s,", f);
            for (size_t i = 0; i < sizeof map / sizeof *map; i++)
                if (strstr(padded, map[i].feature))
                    isa |= map[i].bit;
        }
        free(padded);
        LLVMDisposeMessage(f);
        return isa;
    }
    static const char *const level4[] = {"x86-64-v4", "skylake-avx512", "skx", "cascadelake", "cooperlake",
        "cannonlake", "icelake-client", "rocketlake", "icelake-server", "tigerlake", "sapphirerapids",
        "graniterapids", "graniterapids-d", "emeraldrapids", "znver4", "znver5", NULL};
    static const char *const level3[] = {"x86-64-v3", "haswell", "core-avx2", "broadwell", "skylake",
        "alderlake", "raptorlake", "meteorlake", "arrowlake", "arrowlake-s", "lunarlake", "gracemont",
        "pantherlake", "sierraforest", "grandridge", "clearwaterforest", "znver1", "znver2", "znver3",
        "bdver4", NULL};
    for (int i = 0; level4[i]; i++)
        if (!strcmp(cpu, level4[i]))
            return v4;
    for (int i = 0; level3[i]; i++)
        if (!strcmp(cpu, level3[i]))
            return v3;
    return 0;     /* older or rarer processors: nothing is checked */
}

/* ---- the functions -------------------------------------------------------------------------- */

/* The C prefix: the model's name in lower case. */
static bool prefix_of(const char *model, char *out, size_t n, dl_diag *diag)
{
    size_t k = 0;
    for (; model && model[k] && k + 1 < n; k++)
        out[k] = (char)tolower((unsigned char)model[k]);
    out[k] = 0;
    static const char *const keywords[] = {"auto", "break", "case", "char", "const", "continue", "default",
        "do", "double", "else", "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long",
        "register", "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
        "typedef", "union", "unsigned", "void", "volatile", "while", "bool", NULL};
    for (int i = 0; keywords[i] && k + 1 < n; i++)
        if (!strcmp(out, keywords[i])) {
            out[k++] = '_';     /* a model Int: int_create, ... */
            out[k] = 0;
        }
    if (!k) {
        sup_diag_error(diag, (dl_loc){0}, "the file has no train block: name the model to compile with "
                       "--model NAME");
        return false;
    }
    return true;
}

/* The training step built and everything optimized as `dlc run` does; @forward is the model on
 * a batch with training = false. */
static bool prepare(dl_module *m, const cg_aot_opts *o, dl_diag *diag)
{
    dl_pass_opts popts = {.time_passes = o->time, .print_after = o->print_after};
    if (m->train) {
        if (o->seed_set)
            m->train->seed = o->seed;
        if (!cg_train_supported(m->train, diag) || !pass_train_step(m, diag))
            return false;
    }
    if (!ir_func_find(m, "forward")) {
        sup_diag_error(diag, (dl_loc){0}, "nothing to compile: the module has no @forward");
        return false;
    }
    return cg_mode_optimize(m, o->mode, true, &popts, diag);
}

/* @forward and @train_step as text, parsed again: the library plans what it parses, so the
 * compiler plans the parsed module too. */
static dl_module *library_ir(dl_module *m, char **text, size_t *len, dl_diag *diag)
{
    FILE *out = open_memstream(text, len);
    if (!out) {
        sup_diag_error(diag, (dl_loc){0}, "out of memory");
        return NULL;
    }
    const char *names[] = {"forward", "train_step"};
    for (int i = 0; i < 2; i++) {
        const dl_func *f = ir_func_find(m, names[i]);
        if (f)
            ir_print_func(out, f);
    }
    fclose(out);
    dl_module *lib = ir_parse("library", *text, *len, diag);
    if (!lib) {
        sup_diag_error(diag, (dl_loc){0}, "the library's IR does not parse again (a bug in dlc)");
        return NULL;
    }
    /* The C entries take every input, dimension and result as a parameter. */
    for (const dl_func *f = lib->first; f; f = f->next) {
        int in[CG_AOT_MAX_INPUTS];
        const char *syms[CG_AOT_MAX_SYMS];
        int ni = cg_aot_inputs(f, in, CG_AOT_MAX_INPUTS), ns = cg_aot_symbols(f, syms, CG_AOT_MAX_SYMS);
        if (ni > CG_AOT_MAX_INPUTS || ns > CG_AOT_MAX_SYMS || f->nresults > CG_AOT_MAX_RESULTS) {
            sup_diag_error(diag, (dl_loc){0}, "@%s has %d inputs, %d symbolic dimensions and %d results: a library "
                           "takes at most %d, %d and %d", f->name, ni, ns, f->nresults, CG_AOT_MAX_INPUTS,
                           CG_AOT_MAX_SYMS, CG_AOT_MAX_RESULTS);
            ir_module_destroy(lib);
            return NULL;
        }
    }
    return lib;
}

/* The state function: the training step when there is one, else @forward. */
static const dl_func *state_func(const dl_module *lib)
{
    const dl_func *s = ir_func_find(lib, "train_step");
    return s ? s : ir_func_find(lib, "forward");
}

/* ---- the weights ---------------------------------------------------------------------------- */

/* Writes the safetensors image the library embeds to `path`: the model's tensors (from
 * --weights or the initializers; none with --external-weights), frozen models, and the run's
 * scalars with train.total set. The optimizer's state starts from its initializers at create. */
static bool write_weights(const dl_module *lib, const cg_aot_opts *o, uint64_t seed, int64_t total,
                          const char *path, dl_diag *diag)
{
    const dl_func *f = state_func(lib);
    char err[600];
    rt_st_writer *w = rt_st_writer_begin(path, err, sizeof err);
    if (!w) {
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
        return false;
    }
    cg_tensor *vals = sup_malloc(sizeof *vals * (size_t)(f->nargs + 1));
    bool ok = vals != NULL;
    if (vals)
        memset(vals, 0, sizeof *vals * (size_t)(f->nargs + 1));
    for (int a = 0; ok && a < f->nargs; a++) {
        const dl_arg_info *info = &f->arginfo[a];
        const char *p = info->path ? info->path : info->name;
        bool model = cg_aot_is_model(info);
        bool run = !model && info->role != DL_ROLE_INPUT && strncmp(p, "optim.", 6) && strncmp(p, "grad_acc.", 9);
        if (!(model && !o->external) && !run)
            continue;
        ok = cg_run_init(f, a, model ? o->weights : NULL, seed, &vals[a], diag);
        if (ok && !strcmp(p, "train.total"))
            cg_tensor_set(&vals[a], 0, (double)total);
        int64_t shape[DL_MAX_RANK];
        for (int d = 0; ok && d < vals[a].type.rank; d++)
            shape[d] = vals[a].type.dim[d].c;
        if (ok)
            rt_st_writer_add(w, p, ir_dtype_safetensors(vals[a].type.dtype), vals[a].type.rank, shape, vals[a].data);
    }
    rt_st_writer_add_metadata(w, "format", "dlc library weights 1");
    if (ok && !rt_st_writer_finish(w, err, sizeof err)) {
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
        ok = false;
    } else if (!ok) {
        rt_st_writer_abort(w);
    }
    for (int a = 0; vals && a < f->nargs; a++)
        sup_free(vals[a].data);
    sup_free(vals);
    return ok;
}

/* ---- the module ------------------------------------------------------------------------------ */

typedef struct gen {
    cg_jit        *j;
    LLVMContextRef c;
    LLVMModuleRef  m;
    LLVMTypeRef    i64, i32, ptr, voidt;
    const char    *prefix;
    LLVMValueRef   desc;
} gen;

static LLVMValueRef const_bytes(gen *g, const char *name, const void *data, size_t n, unsigned align)
{
    LLVMValueRef init = LLVMConstStringInContext(g->c, data, (unsigned)n, false);   /* NUL-terminated */
    LLVMValueRef gv = LLVMAddGlobal(g->m, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    LLVMSetAlignment(gv, align);
    return gv;
}

static LLVMValueRef const_array(gen *g, const char *name, LLVMValueRef *vals, unsigned n)
{
    LLVMValueRef init = LLVMConstArray2(g->ptr, vals, n);
    LLVMValueRef gv = LLVMAddGlobal(g->m, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    return gv;
}

static LLVMValueRef i64c(gen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, true); }

/* The kernels of every function, and the micro-kernel when some function multiplies matrices. */
static bool emit_kernels(gen *g, const dl_module *lib, bool fuse, sup_arena *a, cg_gemm_params *gp,
                         bool *has_gemm, LLVMValueRef *names, LLVMValueRef *fns, int *nk, int max,
                         char *err, size_t errlen)
{
    *has_gemm = false;
    *nk = 0;
    for (const dl_func *f = lib->first; f; f = f->next) {
        cg_program *p = cg_aot_plan(f, fuse, g->prefix, a);
        if (!cg_cpu_emit_kernels(g->j, g->m, p, err, errlen))
            return false;
        for (int i = 0; i < p->nkernels; i++) {
            const cg_kernel *k = &p->kernels[i];
            *has_gemm |= k->kind == CG_K_MATMUL || k->kind == CG_K_CONV;
            if (!cg_cpu_compiled(k))
                continue;
            if (*nk == max) {
                snprintf(err, errlen, "more than %d kernels", max);
                return false;
            }
            char gname[64];
            snprintf(gname, sizeof gname, "kname.%d", *nk);
            names[*nk] = const_bytes(g, gname, k->name, strlen(k->name), 1);
            fns[(*nk)++] = LLVMGetNamedFunction(g->m, k->name);
        }
    }
    if (*has_gemm) {
        char name[160];
        snprintf(name, sizeof name, "%s_sgemm_ukr", g->prefix);
        *gp = cg_gemm_default_params(g->j);
        return cg_gemm_add_kernel(g->j, g->m, gp, name, err, errlen);
    }
    return true;
}

/* The descriptor, laid out as cg_aot_desc. */
static void emit_desc(gen *g, const char *ir, size_t ir_len, const void *weights, size_t wlen, const cg_aot_opts *o,
                      LLVMValueRef names, LLVMValueRef fns, int nk, bool has_gemm, const cg_gemm_params *gp,
                      uint64_t seed, int64_t batches, LLVMValueRef special[10])
{
    LLVMTypeRef arr6 = LLVMArrayType2(g->i64, 6);
    LLVMTypeRef fields[] = {g->i64, g->ptr, g->ptr, g->i64, g->ptr, g->i64, g->i64, g->i64,
                            g->ptr, g->ptr, g->i64, g->ptr, arr6, g->i64, g->i64, g->i64, g->ptr,
                            /* special.h */
                            g->i64, g->ptr, g->ptr, g->i64, g->ptr, g->ptr, g->i64, g->ptr, g->ptr, g->ptr};
    char *host = o->cpu ? NULL : LLVMGetHostCPUName();
    const char *cpu = o->cpu ? o->cpu : host;
    LLVMTypeRef st = LLVMStructTypeInContext(g->c, fields, sizeof fields / sizeof *fields, false);
    LLVMValueRef gemm[6] = {i64c(g, gp->vec), i64c(g, gp->mr), i64c(g, gp->nr), i64c(g, gp->kc),
                            i64c(g, gp->mc), i64c(g, gp->nc)};
    char ukr[160];
    snprintf(ukr, sizeof ukr, "%s_sgemm_ukr", g->prefix);
    LLVMValueRef vals[] = {
        i64c(g, CG_AOT_VERSION),
        const_bytes(g, "name", g->prefix, strlen(g->prefix), 1),
        const_bytes(g, "ir", ir, ir_len, 1),
        i64c(g, (int64_t)ir_len),
        const_bytes(g, "weights", weights, wlen, 64),
        i64c(g, (int64_t)wlen),
        i64c(g, o->external),
        i64c(g, cg_mode_fuses(o->mode)),
        names,
        fns,
        i64c(g, nk),
        has_gemm ? LLVMGetNamedFunction(g->m, ukr) : LLVMConstNull(g->ptr),
        LLVMConstArray2(g->i64, gemm, 6),
        i64c(g, (int64_t)seed),
        i64c(g, batches),
        i64c(g, required_isa(o->cpu)),
        const_bytes(g, "cpu", cpu, strlen(cpu), 1),
        special[0], special[1], special[2], special[3], special[4], special[5], special[6], special[7],
        special[8], special[9],
    };
    LLVMDisposeMessage(host);
    char name[160];
    snprintf(name, sizeof name, "%s_dlc_desc", g->prefix);
    g->desc = LLVMAddGlobal(g->m, st, name);
    LLVMSetInitializer(g->desc, LLVMConstNamedStruct(st, vals, sizeof vals / sizeof *vals));
    LLVMSetGlobalConstant(g->desc, true);
    LLVMSetLinkage(g->desc, LLVMPrivateLinkage);
}

static LLVMValueRef declare(gen *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n,
                            LLVMTypeRef *fty)
{
    *fty = LLVMFunctionType(ret, params, n, false);
    LLVMValueRef f = LLVMGetNamedFunction(g->m, name);
    return f ? f : LLVMAddFunction(g->m, name, *fty);
}

/* PREFIX_NAME(params...) { return callee(args...); } with the descriptor as `desc_first`. */
static LLVMValueRef begin_wrapper(gen *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n,
                                  LLVMBuilderRef b)
{
    char full[160];
    snprintf(full, sizeof full, "%s_%s", g->prefix, name);
    LLVMValueRef fn = LLVMAddFunction(g->m, full, LLVMFunctionType(ret, params, n, false));
    LLVMSetVisibility(fn, LLVMDefaultVisibility);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(g->c, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(g->c, fn, "entry"));
    return fn;
}

/* A wrapper that forwards its parameters unchanged, the descriptor first when `with_desc`. */
static void simple_wrapper(gen *g, LLVMBuilderRef b, const char *name, const char *callee, LLVMTypeRef ret,
                           LLVMTypeRef *params, unsigned n, bool with_desc)
{
    LLVMValueRef fn = begin_wrapper(g, name, ret, params, n, b);
    LLVMTypeRef cparams[8], fty;
    LLVMValueRef args[8];
    unsigned k = 0;
    if (with_desc) {
        cparams[k] = g->ptr;
        args[k++] = g->desc;
    }
    for (unsigned i = 0; i < n; i++) {
        cparams[k] = params[i];
        args[k++] = LLVMGetParam(fn, i);
    }
    LLVMValueRef cf = declare(g, callee, ret, cparams, k, &fty);
    LLVMValueRef r = LLVMBuildCall2(b, fty, cf, args, k, "");
    if (ret == g->voidt)
        LLVMBuildRetVoid(b);
    else
        LLVMBuildRet(b, r);
}

/* A stack array of `n` values of type t holding params [first, first + n) of fn. */
static LLVMValueRef pack(gen *g, LLVMBuilderRef b, LLVMValueRef fn, LLVMTypeRef t, unsigned first, unsigned n,
                         const char *name)
{
    if (!n)
        return LLVMConstNull(g->ptr);
    LLVMTypeRef at = LLVMArrayType2(t, n);
    LLVMValueRef arr = LLVMBuildAlloca(b, at, name);
    for (unsigned i = 0; i < n; i++) {
        LLVMValueRef idx[] = {LLVMConstInt(g->i32, 0, false), LLVMConstInt(g->i32, i, false)};
        LLVMBuildStore(b, LLVMGetParam(fn, first + i), LLVMBuildGEP2(b, at, arr, idx, 2, ""));
    }
    return arr;
}

/* PREFIX_forward(m, syms..., inputs..., results...) and PREFIX_train_step(m, syms..., inputs...,
 * loss): the pointers packed into arrays for the run time. */
static void typed_wrapper(gen *g, LLVMBuilderRef b, const dl_func *f, bool train)
{
    int in[CG_AOT_MAX_INPUTS];
    const char *syms[CG_AOT_MAX_SYMS];
    unsigned ni = (unsigned)cg_aot_inputs(f, in, CG_AOT_MAX_INPUTS);
    unsigned ns = (unsigned)cg_aot_symbols(f, syms, CG_AOT_MAX_SYMS);
    unsigned nr = train ? 1 : (unsigned)f->nresults;
    LLVMTypeRef params[1 + CG_AOT_MAX_SYMS + CG_AOT_MAX_INPUTS + 64];
    unsigned n = 0;
    params[n++] = g->ptr;
    for (unsigned i = 0; i < ns; i++)
        params[n++] = g->i64;
    for (unsigned i = 0; i < ni + nr; i++)
        params[n++] = g->ptr;
    LLVMValueRef fn = begin_wrapper(g, train ? "train_step" : "forward", g->i32, params, n, b);
    LLVMValueRef args[4] = {LLVMGetParam(fn, 0), pack(g, b, fn, g->i64, 1, ns, "syms"),
                            pack(g, b, fn, g->ptr, 1 + ns, ni, "inputs"),
                            train ? LLVMGetParam(fn, 1 + ns + ni) : pack(g, b, fn, g->ptr, 1 + ns + ni, nr, "results")};
    LLVMTypeRef cp[4] = {g->ptr, g->ptr, g->ptr, g->ptr}, fty;
    LLVMValueRef cf = declare(g, train ? "cg_aot_train_step" : "cg_aot_forward", g->i32, cp, 4, &fty);
    LLVMBuildRet(b, LLVMBuildCall2(b, fty, cf, args, 4, ""));
}

static void emit_wrappers(gen *g, const dl_module *lib)
{
    LLVMBuilderRef b = LLVMCreateBuilderInContext(g->c);
    LLVMTypeRef p3[] = {g->ptr, g->ptr, g->i64};
    simple_wrapper(g, b, "create", "cg_aot_create", g->ptr, p3, 3, true);
    simple_wrapper(g, b, "destroy", "cg_aot_destroy", g->voidt, p3, 1, false);
    simple_wrapper(g, b, "last_error", "cg_aot_last_error", g->ptr, p3, 1, false);
    typed_wrapper(g, b, ir_func_find(lib, "forward"), false);
    LLVMTypeRef pc[] = {g->ptr, g->ptr, g->ptr, g->i32, g->ptr, g->i32};
    simple_wrapper(g, b, "call", "cg_aot_call", g->i32, pc, 6, false);
    const dl_func *step = ir_func_find(lib, "train_step");
    if (step) {
        typed_wrapper(g, b, step, true);
        simple_wrapper(g, b, "save", "cg_aot_save", g->i32, p3, 2, false);
        simple_wrapper(g, b, "load", "cg_aot_load", g->i32, p3, 2, false);
    }
    LLVMDisposeBuilder(b);
}

/* Everything defined here but the wrappers gets internal linkage. */
static void internalize(gen *g)
{
    size_t plen = strlen(g->prefix);
    static const char *const api[] = {"create", "destroy", "last_error", "forward", "call", "train_step",
                                      "save", "load", NULL};
    for (LLVMValueRef f = LLVMGetFirstFunction(g->m); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f))
            continue;
        size_t n;
        const char *name = LLVMGetValueName2(f, &n);
        bool exported = false;
        for (int i = 0; api[i] && !exported; i++)
            exported = n == plen + 1 + strlen(api[i]) && !strncmp(name, g->prefix, plen) && name[plen] == '_' &&
                       !strcmp(name + plen + 1, api[i]);
        if (!exported)
            LLVMSetLinkage(f, LLVMInternalLinkage);
    }
    for (LLVMValueRef v = LLVMGetFirstGlobal(g->m); v; v = LLVMGetNextGlobal(v))
        if (!LLVMIsDeclaration(v) && LLVMGetLinkage(v) == LLVMExternalLinkage)
            LLVMSetLinkage(v, LLVMInternalLinkage);
}

static bool write_file(const char *path, const void *data, size_t n, dl_diag *diag)
{
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, n, f) == n;
    if (f && fclose(f))
        ok = false;
    if (!ok)
        sup_diag_error(diag, (dl_loc){0}, "cannot write '%s': %s", path, strerror(errno));
    return ok;
}

/* The compile-cache key of the object: everything in it comes from the library's IR text, the
 * weights image, the options below and the target (sup_cache_key_begin covers dlc's build). */
static void object_key(gen *g, const char *ir, size_t ir_len, const void *weights, size_t wlen,
                       const cg_aot_opts *o, uint64_t seed, int64_t batches, const cg_aot_special *sp,
                       uint8_t key[SUP_SHA256_BYTES])
{
    sup_sha256_ctx h;
    sup_cache_key_begin(&h, "aot object");
    cg_jit_hash(g->j, &h);
    sup_sha256_str(&h, o->cpu);
    cg_gemm_params gp = cg_gemm_default_params(g->j);
    const int v[] = {gp.vec, gp.mr, gp.nr, gp.kc, gp.mc, gp.nc};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        sup_sha256_u64(&h, (uint64_t)(int64_t)v[i]);
    sup_sha256_str(&h, g->prefix);
    sup_sha256_u64(&h, o->external);
    sup_sha256_u64(&h, (uint64_t)o->mode);
    sup_sha256_u64(&h, seed);
    sup_sha256_u64(&h, (uint64_t)batches);
    sup_sha256_field(&h, ir, ir_len);
    sup_sha256_field(&h, weights, wlen);
    cg_aot_special_hash(sp, &h);
    sup_sha256_final(&h, key);
}

/* The object LLVM makes of the library's module, in memory (sup_malloc'd). */
static bool emit_object(gen *g, const dl_module *lib, const char *ir, size_t ir_len, const void *weights,
                        size_t wlen, const cg_aot_opts *o, uint64_t seed, int64_t batches, const cg_aot_special *sp,
                        void **obj, size_t *olen, char *err, size_t errlen)
{
    g->c = cg_jit_context(g->j);
    g->m = cg_jit_module(g->j, g->prefix);
    g->i64 = LLVMInt64TypeInContext(g->c);
    g->i32 = LLVMInt32TypeInContext(g->c);
    g->ptr = LLVMPointerTypeInContext(g->c, 0);
    g->voidt = LLVMVoidTypeInContext(g->c);
    sup_arena a;
    sup_arena_init(&a, NULL);
    enum { MAXK = 1 << 16 };
    LLVMValueRef *names = sup_malloc(sizeof *names * MAXK), *fns = sup_malloc(sizeof *fns * MAXK);
    cg_gemm_params gp = {0};
    bool has_gemm = false;
    int nk = 0;
    bool ok = names && fns;
    if (!ok)
        snprintf(err, errlen, "out of memory");
    ok = ok && emit_kernels(g, lib, cg_mode_fuses(o->mode), &a, &gp, &has_gemm, names, fns, &nk, MAXK, err, errlen);
    LLVMValueRef special[10];
    ok = ok && cg_aot_special_emit(sp, lib, g->prefix, g->j, g->m, special, err, errlen);
    if (ok) {
        emit_desc(g, ir, ir_len, weights, wlen, o, const_array(g, "knames", names, (unsigned)nk),
                  const_array(g, "kfns", fns, (unsigned)nk), nk, has_gemm, &gp, seed, batches, special);
        emit_wrappers(g, lib);
        internalize(g);
        ok = cg_jit_optimize(g->j, g->m, err, errlen) && cg_jit_emit_object(g->j, g->m, false, obj, olen, err, errlen);
    }
    sup_free(names);
    sup_free(fns);
    LLVMDisposeModule(g->m);
    sup_arena_reset(&a);
    return ok;
}

/* ---- linking --------------------------------------------------------------------------------- */

static bool run_tool(char *const argv[], dl_diag *diag)
{
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
    if (rc) {
        sup_diag_error(diag, (dl_loc){0}, "cannot run '%s': %s (AOT output needs the system linker: "
                       "on Debian, apt-get install gcc binutils)", argv[0], strerror(rc));
        return false;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        sup_diag_error(diag, (dl_loc){0}, "'%s' failed (the command: %s ... -o %s)", argv[0], argv[0],
                       argv[2] ? argv[2] : "");
        return false;
    }
    return true;
}

/* The library or relocatable object at `out` from obj and the run-time archive, written under a
 * temporary name beside it and renamed into place. */
static bool link_output(const char *obj, const char *tmpdir, const char *out, dl_diag *diag)
{
    char rt[4096], tmp[4096], soname[512];
    snprintf(rt, sizeof rt, "%s/libdlc_aotrt.a", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.dlc-tmp", out);
    if (!write_file(rt, dlc_aot_runtime_start, (size_t)(dlc_aot_runtime_end - dlc_aot_runtime_start), diag))
        return false;
    const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
    snprintf(soname, sizeof soname, "-Wl,-soname,%s", base);
    const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
    bool ok;
    if (ends_with(out, ".so")) {
        char *argv[] = {(char *)cc, "-o", tmp, "-shared", (char *)obj, rt, "-lm", "-lpthread", soname,
                        "-Wl,--no-undefined", "-Wl,--exclude-libs,ALL", "-Wl,-z,noexecstack",
                        "-Wl,--as-needed", NULL};
        ok = run_tool(argv, diag);
    } else {
        char *ld[] = {"ld", "-r", "-o", tmp, (char *)obj, rt, NULL};
        char *oc[] = {"objcopy", "--localize-hidden", tmp, NULL};
        ok = run_tool(ld, diag) && run_tool(oc, diag);
    }
    if (ok && rename(tmp, out)) {
        sup_diag_error(diag, (dl_loc){0}, "cannot write '%s': %s", out, strerror(errno));
        ok = false;
    }
    if (!ok)
        unlink(tmp);
    unlink(rt);
    return ok;
}

/* ---- the compile cache ----------------------------------------------------------------------- */

/* Adds to h which `tool` runs: its path on PATH, size and modification time (an upgraded
 * toolchain gets new entries). */
static void hash_tool(sup_sha256_ctx *h, const char *tool)
{
    char path[4096] = "";
    const char *dirs = strchr(tool, '/') ? "" : getenv("PATH");
    if (!dirs || !*dirs)
        snprintf(path, sizeof path, "%s", tool);
    for (const char *d = dirs; d && *d && !*path; d = strchr(d, ':') ? strchr(d, ':') + 1 : NULL) {
        int n = (int)strcspn(d, ":");
        snprintf(path, sizeof path, "%.*s/%s", n, d, tool);
        if (access(path, X_OK))
            path[0] = 0;
    }
    struct stat st;
    sup_sha256_str(h, path);
    if (*path && !stat(path, &st)) {
        sup_sha256_u64(h, (uint64_t)st.st_size);
        sup_sha256_u64(h, (uint64_t)st.st_mtim.tv_sec);
        sup_sha256_u64(h, (uint64_t)st.st_mtim.tv_nsec);
    }
}

/* The key of the output: the object's (object_key), linked by link_output's tools into a
 * library or a relocatable object named like `out` (the soname). */
static void output_key(const uint8_t objkey[SUP_SHA256_BYTES], const char *out, uint8_t key[SUP_SHA256_BYTES])
{
    sup_sha256_ctx h;
    sup_cache_key_begin(&h, "aot output");
    sup_sha256_field(&h, objkey, SUP_SHA256_BYTES);
    bool so = ends_with(out, ".so");
    sup_sha256_u64(&h, so);
    sup_sha256_str(&h, strrchr(out, '/') ? strrchr(out, '/') + 1 : out);
    if (so) {
        hash_tool(&h, getenv("CC") && *getenv("CC") ? getenv("CC") : "cc");
        hash_tool(&h, "ld");
    } else {
        hash_tool(&h, "ld");
        hash_tool(&h, "objcopy");
    }
    sup_sha256_final(&h, key);
}

/* A cached output written to `out` as the linker writes it: whole (renamed into place), a
 * library executable as the linker makes it. */
static bool write_output(const char *out, const void *data, size_t n, dl_diag *diag)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.dlc-tmp", out);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, ends_with(out, ".so") ? 0777 : 0666);
    bool ok = fd >= 0;
    for (const char *p = data; ok && n;) {
        ssize_t put = write(fd, p, n);
        ok = put > 0 || (put < 0 && errno == EINTR);
        p += put > 0 ? put : 0;
        n -= put > 0 ? (size_t)put : 0;
    }
    if (fd >= 0 && close(fd))
        ok = false;
    if (ok && rename(tmp, out))
        ok = false;
    if (!ok) {
        sup_diag_error(diag, (dl_loc){0}, "cannot write '%s': %s", out, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

typedef struct produced {
    sup_cache_outcome object, output;   /* where model.o and the output came from */
    double            llvm, link;       /* seconds */
} produced;

/* o->output, from the compile cache when it holds it; else model.o (from the cache, or made by
 * LLVM) written to objpath and linked. What LLVM and the linker make is stored. */
static bool produce(const dl_module *lib, const char *prefix, const char *ir, size_t ir_len, const void *weights,
                    size_t wlen, const cg_aot_opts *o, uint64_t seed, int64_t batches, const cg_aot_special *sp,
                    const char *tmpdir, const char *objpath, produced *r, dl_diag *diag)
{
    char err[1024];
    double t0 = now();
    if (wlen >= ((size_t)1 << 31) || ir_len >= ((size_t)1 << 31)) {
        sup_diag_error(diag, (dl_loc){0}, "the weights are over 2 GiB: compile with --external-weights");
        return false;
    }
    gen g = {.prefix = prefix};
    if (!(g.j = cg_jit_create(o->cpu, err, sizeof err))) {
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
        return false;
    }
    const char *dir = o->cache_dir;
    uint8_t okey[SUP_SHA256_BYTES], lkey[SUP_SHA256_BYTES];
    void *bytes = NULL;
    size_t n = 0;
    r->object = r->output = dir ? SUP_CACHE_MISS : SUP_CACHE_OFF;
    if (dir) {
        object_key(&g, ir, ir_len, weights, wlen, o, seed, batches, sp, okey);
        output_key(okey, o->output, lkey);
    }
    bool ok = true;
    if (dir && sup_cache_get(dir, lkey, &bytes, &n)) {
        r->object = r->output = SUP_CACHE_HIT;
        r->llvm = now() - t0;
        ok = write_output(o->output, bytes, n, diag);
    } else {
        if (dir && sup_cache_get(dir, okey, &bytes, &n)) {
            r->object = SUP_CACHE_HIT;
        } else if (!(ok = emit_object(&g, lib, ir, ir_len, weights, wlen, o, seed, batches, sp, &bytes, &n, err,
                                      sizeof err))) {
            sup_diag_error(diag, (dl_loc){0}, "%s", err);
        } else if (dir) {
            sup_cache_put(dir, okey, bytes, n);
        }
        double t1 = now();
        r->llvm = t1 - t0;
        ok = ok && write_file(objpath, bytes, n, diag) && link_output(objpath, tmpdir, o->output, diag);
        sup_free(bytes);
        bytes = NULL;
        if (ok && dir && (bytes = sup_read_file(o->output, &n)))
            sup_cache_put(dir, lkey, bytes, n);
        r->link = now() - t1;
    }
    sup_free(bytes);
    cg_jit_destroy(g.j);
    return ok;
}

/* out's header: libmlp.so -> libmlp.h, mlp.o -> mlp.h. */
static char *header_path(const char *out)
{
    size_t n = strlen(out);
    const char *dot = strrchr(out, '.');
    size_t stem = dot && !strchr(dot, '/') ? (size_t)(dot - out) : n;
    char *p = malloc(stem + 3);
    if (p)
        snprintf(p, stem + 3, "%.*s.h", (int)stem, out);
    return p;
}

static bool write_header(const dl_module *lib, const char *prefix, const cg_aot_opts *o, const char *path,
                         dl_diag *diag)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.dlc-tmp", path);
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL;
    if (f) {
        cg_aot_header(f, lib, prefix, o);
        ok = !ferror(f);
        ok &= fclose(f) == 0;
    }
    if (ok && rename(tmp, path))
        ok = false;
    if (!ok) {
        sup_diag_error(diag, (dl_loc){0}, "cannot write '%s': %s", path, strerror(errno));
        unlink(tmp);
    }
    return ok;
}

/* ---- the driver ------------------------------------------------------------------------------ */

bool cg_aot_emit_header(dl_module *m, const cg_aot_opts *o, FILE *out, dl_diag *diag)
{
    char prefix[128], *text = NULL;
    size_t len = 0;
    if (!prefix_of(o->model, prefix, sizeof prefix, diag) || !prepare(m, o, diag))
        return false;
    dl_module *lib = library_ir(m, &text, &len, diag);
    if (lib)
        cg_aot_header(out, lib, prefix, o);
    free(text);
    if (lib)
        ir_module_destroy(lib);
    return lib != NULL;
}

/* --report: @forward's and @train_step's kernels as the library plans them, planned from m, whose
 * ops still carry their source lines (the parsed copy's point into its own text). */
static bool report(const dl_module *m, const char *prefix, const cg_aot_opts *o)
{
    static const char *const names[] = {"forward", "train_step"};
    sup_arena a;
    sup_arena_init(&a, NULL);
    bool ok = true;
    for (int i = 0; i < 2 && ok; i++) {
        const dl_func *f = ir_func_find(m, names[i]);
        if (f)
            ok = cg_report_print_symbolic(stdout, cg_aot_plan(f, cg_mode_fuses(o->mode), prefix, &a));
    }
    sup_arena_reset(&a);
    return ok;
}

bool cg_aot_compile(dl_module *m, const cg_aot_opts *o, dl_diag *diag)
{
    bool so = ends_with(o->output, ".so"), obj = ends_with(o->output, ".o"), h = ends_with(o->output, ".h");
    if (!so && !obj && !h) {
        sup_diag_error(diag, (dl_loc){0}, "-o %s: the output must end in .so, .o or .h", o->output);
        return false;
    }
    if (o->cpu && !known_cpu(o->cpu)) {
        sup_diag_error(diag, (dl_loc){0}, "--cpu %s: not an x86-64 processor LLVM knows (x86-64, x86-64-v2, "
                       "x86-64-v3, x86-64-v4, haswell, skylake-avx512, icelake-server, sapphirerapids, znver4, "
                       "...: `llc-19 -mcpu=help` lists them)", o->cpu);
        return false;
    }
    char prefix[128];
    if (!prefix_of(o->model, prefix, sizeof prefix, diag) || !prepare(m, o, diag))
        return false;
    double t0 = now();
    char *text = NULL;
    size_t len = 0;
    dl_module *lib = library_ir(m, &text, &len, diag);
    char *hpath = header_path(o->output);
    bool ok = lib && hpath && (!h || write_header(lib, prefix, o, o->output, diag));
    char tmpdir[4096] = "", wpath[4200] = "", opath[4200] = "";
    if (ok && !h) {
        const char *base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(tmpdir, sizeof tmpdir, "%s/dlc-aot-XXXXXX", base);
        if (!mkdtemp(tmpdir)) {
            sup_diag_error(diag, (dl_loc){0}, "cannot make a temporary directory in %s: %s", base, strerror(errno));
            ok = false;
            tmpdir[0] = 0;
        }
        snprintf(wpath, sizeof wpath, "%s/weights.safetensors", tmpdir);
        snprintf(opath, sizeof opath, "%s/model.o", tmpdir);
    }
    int64_t batches = 0, total = 1;
    if (ok && !h && m->train)
        ok = cg_train_length(m->train, &batches, &total, diag);
    uint64_t seed = m->train ? m->train->seed : (o->seed_set ? o->seed : 0);
    size_t wlen = 0;
    char *wimage = NULL;
    if (ok && !h) {
        ok = write_weights(lib, o, seed, total, wpath, diag);
        if (ok && !(wimage = sup_read_file(wpath, &wlen))) {
            sup_diag_error(diag, (dl_loc){0}, "cannot read back '%s'", wpath);
            ok = false;
        }
    }
    /* -O max-autotune and reduce-overhead: specialized to the train block's batch (special.h). */
    cg_aot_special sp;
    char serr[1024];
    double t1 = now();
    bool special = ok && !h;
    if (special && !(ok = cg_aot_special_make(&sp, lib, prefix, o, m->train ? m->train->batch : 0,
                                              o->time || o->report ? stderr : NULL, serr, sizeof serr)))
        sup_diag_error(diag, (dl_loc){0}, "%s", serr);
    double t2 = now();
    produced r = {0};
    ok = ok && (h || produce(lib, prefix, text, len, wimage, wlen, o, seed, batches, &sp, tmpdir, opath, &r, diag));
    if (special)
        cg_aot_special_free(&sp);
    ok = ok && (h || write_header(lib, prefix, o, hpath, diag));     /* only beside a new library */
    if (ok && o->report && !report(m, prefix, o)) {
        sup_diag_error(diag, (dl_loc){0}, "out of memory");
        ok = false;
    }
    if (o->time) {
        fprintf(stderr, "dlc: aot: weights %8.3f ms, ", 1e3 * (t1 - t0));
        if (cg_mode_autotunes(o->mode))
            fprintf(stderr, "autotune %8.3f ms, ", 1e3 * (t2 - t1));
        fprintf(stderr, "llvm %8.3f ms (cache %s), link %8.3f ms (cache %s)\n", 1e3 * r.llvm,
                sup_cache_outcome_name(r.object), 1e3 * r.link, sup_cache_outcome_name(r.output));
    }
    if (*tmpdir) {
        unlink(wpath);
        unlink(opath);
        rmdir(tmpdir);
    }
    sup_free(wimage);
    free(hpath);
    free(text);
    if (lib)
        ir_module_destroy(lib);
    return ok;
}
