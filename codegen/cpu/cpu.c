/* The CPU backend (see cpu.h): compiling a plan's kernels into one LLVM module and JIT-loading
 * them; running the plan is codegen/cpu/exec.c's. */
#include "codegen/cpu/cpu.h"

#include "codegen/cpu/attention.h"
#include "codegen/cpu/conv.h"
#include "codegen/cpu/copy.h"
#include "codegen/cpu/elementwise.h"
#include "codegen/cpu/emit.h"
#include "codegen/cpu/exec.h"
#include "codegen/cpu/gemm.h"
#include "codegen/cpu/index.h"
#include "codegen/cpu/reduce.h"
#include "codegen/cpu/jit.h"
#include "codegen/cpu/straight.h"
#include "codegen/cpu/straight_emit.h"
#include "codegen/cpu/tune.h"
#include "codegen/program.h"
#include "support/alloc.h"
#include "support/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cg_cpu {
    sup_arena      arena;
    cg_program    *prog;
    cg_jit        *jit;
    cg_gemm       *gemm;         /* matrix products, compiled once */
    cg_exec       *exec;
    double         seconds;      /* compile time */
    sup_cache_outcome cache;     /* where the code came from */
    /* -O reduce-overhead and max-autotune: specialized at the first call (docs/modes.md) */
    cg_mode        mode;
    char          *cache_dir;
    FILE          *log;
    uint8_t        key[SUP_SHA256_BYTES];   /* the object's, when keyed */
    bool           keyed, specialized;
    int64_t        calls;
    cg_tuner      *tuner;
    cg_straight_stats straight;
};

bool cg_cpu_compiled(const cg_kernel *k)
{
    return k->kind == CG_K_ELEMENTWISE || k->kind == CG_K_REDUCE || k->kind == CG_K_COPY ||
           k->kind == CG_K_INDEX || k->kind == CG_K_ATTENTION || k->epilogue;
}

static bool emit_kernel(cg_jit *j, LLVMModuleRef m, const cg_program *prog, const cg_kernel *k,
                        const cg_memplan *mp, char *err, size_t errlen)
{
    switch (k->kind) {
    case CG_K_ELEMENTWISE: return cg_cpu_emit_elementwise(j, m, prog, k, mp, err, errlen);
    case CG_K_REDUCE: return cg_cpu_emit_reduce(j, m, prog, k, err, errlen);
    case CG_K_COPY: return cg_cpu_emit_copy(j, m, prog, k, err, errlen);
    case CG_K_INDEX: return cg_cpu_emit_index(j, m, prog, k, err, errlen);
    case CG_K_ATTENTION: return cg_cpu_emit_attention(j, m, prog, k, err, errlen);
    case CG_K_MATMUL:
    case CG_K_CONV: {
        if (!k->epilogue)
            return true;
        cg_kernel e = *k->epilogue;
        e.name = k->name;       /* the product's compiled code is its epilogue */
        return cg_cpu_emit_elementwise(j, m, prog, &e, mp, err, errlen);
    }
    default: return true;
    }
}

bool cg_cpu_emit_kernels(cg_jit *j, LLVMModuleRef m, const cg_program *prog, char *err, size_t errlen)
{
    /* The plan the executor will follow (it depends on the program alone): kernels that write in
     * place are compiled knowing it. */
    cg_memplan *mp = cg_memplan_create(prog);
    if (!mp) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    bool ok = true;
    for (int i = 0; i < prog->nkernels && ok; i++)
        ok = emit_kernel(j, m, prog, &prog->kernels[i], mp, err, errlen);
    cg_memplan_destroy(mp);
    return ok;
}

/* Builds the module of `prog`'s compiled kernels into *out. */
static bool build_module(cg_jit *j, const cg_program *prog, LLVMModuleRef *out, char *err, size_t errlen)
{
    LLVMModuleRef m = cg_jit_module(j, prog->f->name);
    if (!cg_cpu_emit_kernels(j, m, prog, err, errlen)) {
        LLVMDisposeModule(m);
        return false;
    }
    if (!cg_jit_optimize(j, m, err, errlen)) {
        LLVMDisposeModule(m);
        return false;
    }
    *out = m;
    return true;
}

static bool define_helpers(cg_jit *j, char *err, size_t errlen)
{
    return cg_jit_define(j, "cg_cpu_ifloordiv", (void *)cg_cpu_ifloordiv, err, errlen) &&
           cg_jit_define(j, "cg_cpu_imod", (void *)cg_cpu_imod, err, errlen) &&
           cg_jit_define(j, "cg_cpu_ipow", (void *)cg_cpu_ipow, err, errlen) &&
           /* what reduce-overhead's straight-line step calls */
           cg_jit_define(j, "cg_straight_split", (void *)cg_straight_split, err, errlen) &&
           cg_jit_define(j, "cg_straight_kernel", (void *)cg_straight_kernel, err, errlen) &&
           cg_jit_define(j, "cg_gemm_run_strided", (void *)cg_gemm_run_strided, err, errlen);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cg_cpu_stats(const cg_cpu *p, double *seconds, int *elementwise, int *matmul, int *reduce,
                  int *reference)
{
    *seconds = p->seconds;
    *elementwise = *matmul = *reduce = *reference = 0;
    for (int i = 0; i < p->prog->nkernels; i++) {
        cg_kernel_kind k = p->prog->kernels[i].kind;
        if (k != CG_K_VIEW)
            ++*(k == CG_K_ELEMENTWISE ? elementwise : k == CG_K_MATMUL || k == CG_K_CONV || k == CG_K_ATTENTION ? matmul :
                   k == CG_K_REDUCE || k == CG_K_COPY || k == CG_K_INDEX || k == CG_K_SCATTER ? reduce : reference);
    }
}

/* Whether the plan multiplies matrices (or convolves): only then is the micro-kernel compiled. */
static bool needs_gemm(const cg_program *prog)
{
    bool needed = false;
    for (int i = 0; i < prog->nkernels; i++)
        needed |= prog->kernels[i].kind == CG_K_MATMUL || prog->kernels[i].kind == CG_K_CONV;
    return needed;
}

/* The name of the micro-kernel in a plan's object: one per JIT, which is the plan's own. */
#define GEMM_UKR "dlc_sgemm_ukr"

/* The compile-cache key of p's object: everything the object depends on. The plan and the
 * code emitted for it are functions of the function's printed IR (canonical: print -> parse ->
 * print is the identity) and the fuse flag, given dlc's build (sup_cache_key_begin); the
 * machine code also depends on LLVM and the target (cg_jit_hash) and the micro-kernel on its
 * parameters. */
static void object_key(const cg_cpu *p, const char *text, size_t len, bool fuse, const cg_gemm_params *gp,
                       uint8_t key[SUP_SHA256_BYTES])
{
    sup_sha256_ctx h;
    sup_cache_key_begin(&h, "jit object");
    cg_jit_hash(p->jit, &h);
    sup_sha256_u64(&h, fuse);
    sup_sha256_u64(&h, gp != NULL);
    if (gp) {
        const int v[] = {gp->vec, gp->mr, gp->nr, gp->kc, gp->mc, gp->nc};
        for (size_t i = 0; i < sizeof v / sizeof *v; i++)
            sup_sha256_u64(&h, (uint64_t)(int64_t)v[i]);
    }
    sup_sha256_field(&h, text, len);
    sup_sha256_final(&h, key);
}

/* f as text (malloc'd), or NULL when memory is short. Printing numbers f's values afresh, so it
 * comes before planning, which numbers them its own way. */
static char *func_text(const dl_func *f, size_t *len)
{
    char *text = NULL;
    FILE *mem = open_memstream(&text, len);
    if (!mem)
        return NULL;
    ir_print_func(mem, f);
    if (fclose(mem)) {
        free(text);
        return NULL;
    }
    return text;
}

/* The plan's object, made by LLVM: the kernels and (with gp) the micro-kernel, optimized. */
static bool build_object(cg_cpu *p, cg_gemm_params *gp, void **obj, size_t *len, char *err, size_t errlen)
{
    LLVMModuleRef m = cg_jit_module(p->jit, p->prog->f->name);
    bool ok = cg_cpu_emit_kernels(p->jit, m, p->prog, err, errlen) &&
              (!gp || cg_gemm_add_kernel(p->jit, m, gp, GEMM_UKR, err, errlen)) &&
              cg_jit_optimize(p->jit, m, err, errlen) &&
              cg_jit_emit_object(p->jit, m, true, obj, len, err, errlen);
    LLVMDisposeModule(m);
    return ok;
}

/* A fresh JIT for p holding `obj` (the helpers kernels call, then the object), with the kernel
 * table and the gemm looked up in it. */
static bool load_object(cg_cpu *p, const void *obj, size_t len, const cg_gemm_params *gp, cg_kernel_fn **fns,
                        char *err, size_t errlen)
{
    if (!cg_jit_add_object(p->jit, obj, len, err, errlen))
        return false;
    for (int i = 0; i < p->prog->nkernels; i++)
        if (cg_cpu_compiled(&p->prog->kernels[i]) &&
            !(fns[i] = (cg_kernel_fn *)cg_jit_lookup(p->jit, p->prog->kernels[i].name, err, errlen)))
            return false;
    if (!gp)
        return true;
    cg_gemm_ukr *ukr = (cg_gemm_ukr *)cg_jit_lookup(p->jit, GEMM_UKR, err, errlen);
    return ukr && (p->gemm = cg_gemm_from_kernel(gp, ukr, err, errlen));
}

cg_cpu *cg_cpu_compile(const dl_func *f, bool fuse, char *err, size_t errlen)
{
    return cg_cpu_compile_cached(f, fuse, NULL, err, errlen);
}

cg_cpu *cg_cpu_compile_cached(const dl_func *f, bool fuse, const char *cache_dir, char *err, size_t errlen)
{
    cg_cpu_opts o = {fuse ? CG_MODE_DEFAULT : CG_MODE_O0, cache_dir, NULL};
    return cg_cpu_compile_opts(f, &o, err, errlen);
}

cg_cpu *cg_cpu_compile_opts(const dl_func *f, const cg_cpu_opts *o, char *err, size_t errlen)
{
    double t0 = now();
    bool fuse = cg_mode_fuses(o->mode);
    const char *cache_dir = o->cache_dir;
    cg_cpu *p = calloc(1, sizeof *p);
    if (!p || (cache_dir && !(p->cache_dir = strdup(cache_dir)))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->mode = o->mode;
    p->log = o->log;
    size_t tlen = 0;
    char *text = cache_dir ? func_text(f, &tlen) : NULL;
    sup_arena_init(&p->arena, NULL);
    p->prog = cg_program_build(f, fuse, &p->arena);
    cg_kernel_fn **fns = calloc((size_t)p->prog->nkernels + 1, sizeof *fns);
    if (!fns)
        snprintf(err, errlen, "out of memory");
    p->jit = fns ? cg_jit_create(NULL, err, errlen) : NULL;
    cg_gemm_params params, *gp = NULL;
    bool ok = p->jit && define_helpers(p->jit, err, errlen);
    if (ok && needs_gemm(p->prog)) {
        params = cg_gemm_default_params(p->jit);
        ok = cg_gemm_fix_params(gp = &params, err, errlen);
    }
    uint8_t key[SUP_SHA256_BYTES];
    bool keyed = ok && text;
    if (keyed) {
        object_key(p, text, tlen, fuse, gp, key);
        memcpy(p->key, key, sizeof key);
    }
    p->keyed = keyed;
    free(text);
    void *obj = NULL;
    size_t len = 0;
    p->cache = cache_dir ? SUP_CACHE_MISS : SUP_CACHE_OFF;
    if (keyed && sup_cache_get(cache_dir, key, &obj, &len)) {
        /* An entry that validates but does not load (it cannot happen short of a bug) is
         * compiled again in a fresh JIT, as a miss, and replaced. */
        if (load_object(p, obj, len, gp, fns, err, errlen)) {
            p->cache = SUP_CACHE_HIT;
        } else {
            cg_jit_destroy(p->jit);
            ok = (p->jit = cg_jit_create(NULL, err, errlen)) && define_helpers(p->jit, err, errlen);
        }
        sup_free(obj);
        obj = NULL;
    }
    if (ok && p->cache != SUP_CACHE_HIT) {
        ok = build_object(p, gp, &obj, &len, err, errlen) && load_object(p, obj, len, gp, fns, err, errlen);
        if (ok && keyed)
            sup_cache_put(cache_dir, key, obj, len);
        sup_free(obj);
    }
    ok = ok && (p->exec = cg_exec_create(p->prog, fns, p->gemm, NULL, err, errlen));
    free(fns);
    if (!ok) {
        cg_cpu_destroy(p);
        return NULL;
    }
    p->seconds = now() - t0;
    return p;
}

sup_cache_outcome cg_cpu_cache_outcome(const cg_cpu *p) { return p->cache; }

bool cg_cpu_profile(cg_cpu *p) { return cg_exec_profile(p->exec); }

const cg_exec *cg_cpu_exec(const cg_cpu *p) { return p->exec; }

void cg_cpu_profile_report(const cg_cpu *p, FILE *out, int top) { cg_exec_profile_report(p->exec, out, top); }

void cg_cpu_destroy(cg_cpu *p)
{
    if (!p)
        return;
    cg_exec_destroy(p->exec);
    cg_tuner_destroy(p->tuner);
    cg_gemm_destroy(p->gemm);
    cg_jit_destroy(p->jit);
    sup_arena_reset(&p->arena);
    free(p->cache_dir);
    free(p);
}

/* ---- -O max-autotune and -O reduce-overhead: specializing at the first call ------------------- */

/* The straight-line step for syms: its object from the compile cache (keyed by the plan's object
 * and the symbols), else made by LLVM and stored; loaded into p's JIT, where the kernels are. */
static bool straight_line(cg_cpu *p, const int64_t *syms, char *err, size_t errlen)
{
    char name[200];
    snprintf(name, sizeof name, "%s_straight", p->prog->f->name);
    uint8_t key[SUP_SHA256_BYTES];
    if (p->keyed) {
        sup_sha256_ctx h;
        sup_cache_key_begin(&h, "jit straight");
        sup_sha256_field(&h, p->key, sizeof p->key);
        for (int s = 0; s < p->prog->nsyms; s++)
            sup_sha256_u64(&h, (uint64_t)syms[s]);
        sup_sha256_final(&h, key);
    }
    void *obj = NULL;
    size_t len = 0;
    bool ok = true;
    p->straight.cache = p->keyed ? SUP_CACHE_MISS : SUP_CACHE_OFF;
    if (p->keyed && sup_cache_get(p->cache_dir, key, &obj, &len)) {
        p->straight.cache = SUP_CACHE_HIT;
        ok = cg_jit_add_object(p->jit, obj, len, err, errlen);
    } else {
        LLVMModuleRef m = cg_jit_module(p->jit, name);
        ok = cg_straight_emit(p->jit, m, p->prog, syms, name, err, errlen) && cg_jit_optimize(p->jit, m, err, errlen) &&
             cg_jit_emit_object(p->jit, m, true, &obj, &len, err, errlen) && cg_jit_add_object(p->jit, obj, len, err, errlen);
        LLVMDisposeModule(m);
        if (ok && p->keyed)
            sup_cache_put(p->cache_dir, key, obj, len);
    }
    sup_free(obj);
    cg_straight_fn *fn = ok ? (cg_straight_fn *)cg_jit_lookup(p->jit, name, err, errlen) : NULL;
    return fn && cg_exec_set_straight(p->exec, syms, fn, err, errlen);
}

static bool specialize(cg_cpu *p, const cg_tensor *args, char *err, size_t errlen)
{
    double t0 = now();
    int64_t syms[256];
    if (!cg_exec_bind(p->exec, args, syms, err, errlen))
        return false;
    bool tune = cg_mode_autotunes(p->mode) && needs_gemm(p->prog);
    if (tune && !p->tuner &&
        !(p->tuner = cg_tuner_create(p->jit, cg_exec_pool(p->exec), p->cache_dir, p->log, err, errlen)))
        return false;
    if (tune && !cg_tuner_tune_exec(p->tuner, p->exec, p->prog, syms, err, errlen))
        return false;
    double t1 = now();
    p->straight.tune_seconds = t1 - t0;
    if (cg_mode_straight_line(p->mode)) {
        if (!straight_line(p, syms, err, errlen))
            return false;
        p->straight.made = true;
        p->straight.seconds = now() - t1;
        if (p->log) {
            fprintf(p->log, "dlc: straight-line step of @%s for", p->prog->f->name);
            for (int s = 0; s < p->prog->nsyms; s++)
                fprintf(p->log, " %s=%lld", p->prog->syms[s], (long long)syms[s]);
            fprintf(p->log, "%s: %.3f ms (cache %s)\n", p->prog->nsyms ? "" : " its static shapes",
                    1e3 * p->straight.seconds, sup_cache_outcome_name(p->straight.cache));
        }
    }
    p->specialized = true;
    return true;
}

const cg_straight_stats *cg_cpu_straight_stats(const cg_cpu *p) { return &p->straight; }

void cg_cpu_mode_summary(const cg_cpu *p, FILE *out)
{
    if (p && p->straight.made)
        fprintf(out, "dlc: @%s: %lld of %lld calls ran the straight-line step\n", p->prog->f->name,
                (long long)cg_exec_straight_runs(p->exec), (long long)p->calls);
}

bool cg_cpu_run(cg_cpu *p, cg_tensor *args, cg_tensor *results, char *err, size_t errlen)
{
    if (!p->specialized && (cg_mode_autotunes(p->mode) || cg_mode_straight_line(p->mode)) &&
        !specialize(p, args, err, errlen))
        return false;
    p->calls++;
    return cg_exec_run(p->exec, args, results, NULL, err, errlen);
}

char *cg_cpu_text(const dl_func *f, bool fuse, bool assembly, char *err, size_t errlen)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    cg_program *prog = cg_program_build(f, fuse, &a);
    cg_jit *j = cg_jit_create(NULL, err, errlen);
    LLVMModuleRef m;
    char *text = NULL;
    if (j && build_module(j, prog, &m, err, errlen)) {
        text = assembly ? cg_jit_print_asm(j, m, err, errlen) : cg_jit_print_ir(m);
        LLVMDisposeModule(m);
    }
    cg_jit_destroy(j);
    /* A header naming each kernel and the IR ops it came from (%N as --emit=ir numbers them). */
    char *out = NULL;
    size_t len = 0;
    FILE *mem = text ? open_memstream(&out, &len) : NULL;
    if (mem) {
        static const char *const kinds[] = {
            [CG_K_ELEMENTWISE] = "elementwise", [CG_K_MATMUL] = "matmul", [CG_K_REDUCE] = "reduce",
            [CG_K_CONV] = "conv", [CG_K_COPY] = "copy", [CG_K_VIEW] = "view", [CG_K_INDEX] = "index",
            [CG_K_ATTENTION] = "attention", [CG_K_SCATTER] = "scatter", [CG_K_REF] = "reference"};
        int id = 0;
        for (dl_op *op = f->first; op; op = op->next)
            for (int r = 0; r < op->nres; r++)
                op->res[r].id = id++;
        for (int i = 0; i < prog->nkernels; i++) {
            const cg_kernel *k = &prog->kernels[i];
            fprintf(mem, "; %s (%s):", k->name, kinds[k->kind]);
            for (int o = 0; o < k->nops; o++)
                fprintf(mem, " %%%d = %s%s", k->ops[o]->nres ? k->ops[o]->res[0].id : -1,
                        ir_op_info(k->ops[o]->code)->name, o + 1 < k->nops ? "," : "");
            fputc('\n', mem);
        }
        fputs(text, mem);
        fclose(mem);
        free(text);
        text = out;
    }
    sup_arena_reset(&a);
    return text;
}
