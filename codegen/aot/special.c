/* A library's specializations for -O max-autotune and -O reduce-overhead (see special.h). */
#include "codegen/aot/special.h"

#include "codegen/aot/model.h"
#include "codegen/cpu/straight_emit.h"
#include "codegen/cpu/tune.h"
#include "runtime/pool.h"

#include <stdlib.h>
#include <string.h>

/* The plans of lib's functions (as the library plans them), each symbol at s->batch. */
static cg_program *plan_at(const cg_aot_special *s, const dl_func *f, const char *prefix, bool fuse, sup_arena *a,
                           int64_t **syms)
{
    cg_program *p = cg_aot_plan(f, fuse, prefix, a);
    *syms = SUP_NEWN(a, int64_t, p->nsyms + 1);
    for (int i = 0; i < p->nsyms; i++)
        (*syms)[i] = s->batch;
    return p;
}

static bool tune(cg_aot_special *s, const dl_module *lib, const char *prefix, const cg_aot_opts *o, FILE *log,
                 char *err, size_t errlen)
{
    int total = 0;
    for (const dl_func *f = lib->first; f; f = f->next)
        total += cg_aot_plan(f, s->fuse, prefix, &s->arena)->nkernels;
    s->tuned = SUP_NEWN(&s->arena, const char *, total + 1);
    s->tuned_var = SUP_NEWN(&s->arena, int, total + 1);
    cg_jit *j = cg_jit_create(NULL, err, errlen);
    rt_pool *pool = j ? rt_pool_create(0, err, errlen) : NULL;
    cg_tuner *t = pool ? cg_tuner_create(j, pool, o->cache_dir, log, err, errlen) : NULL;
    bool ok = t != NULL;
    for (const dl_func *f = lib->first; ok && f; f = f->next) {
        int64_t *syms;
        cg_program *p = plan_at(s, f, prefix, s->fuse, &s->arena, &syms);
        for (int i = 0; ok && i < p->nkernels; i++) {
            cg_gemm_shape shape;
            cg_gemm_params c;
            if (!cg_tune_kernel_shape(p, &p->kernels[i], syms, &shape))
                continue;
            if (!(ok = cg_tuner_choose(t, &shape, &c, err, errlen)))
                break;
            int v = 0;
            while (v < s->nvar && memcmp(&s->var[v], &c, sizeof c))
                v++;
            if (v == CG_AOT_MAX_VARIANTS)
                continue;     /* more than that many choices: this product keeps the defaults */
            if (v == s->nvar)
                s->var[s->nvar++] = c;
            s->tuned[s->ntuned] = p->kernels[i].name;
            s->tuned_var[s->ntuned++] = v;
        }
    }
    cg_tuner_destroy(t);
    rt_pool_destroy(pool);
    cg_jit_destroy(j);
    return ok;
}

bool cg_aot_special_make(cg_aot_special *s, const dl_module *lib, const char *prefix, const cg_aot_opts *o,
                         int64_t batch, FILE *log, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    sup_arena_init(&s->arena, NULL);
    s->batch = batch > 0 ? batch : CG_AOT_SPECIAL_BATCH;
    s->fuse = cg_mode_fuses(o->mode);
    s->straight = cg_mode_straight_line(o->mode);
    if (!cg_mode_autotunes(o->mode))
        return true;
    if (o->cpu) {
        if (log)
            fprintf(log, "dlc: autotune: code for --cpu %s is not timed on this machine: the default gemm "
                    "parameters\n", o->cpu);
        return true;
    }
    return tune(s, lib, prefix, o, log, err, errlen);
}

void cg_aot_special_free(cg_aot_special *s) { sup_arena_reset(&s->arena); }

void cg_aot_special_hash(const cg_aot_special *s, sup_sha256_ctx *h)
{
    sup_sha256_u64(h, (uint64_t)s->batch);
    sup_sha256_u64(h, s->fuse);
    sup_sha256_u64(h, s->straight);
    sup_sha256_u64(h, (uint64_t)s->nvar);
    for (int v = 0; v < s->nvar; v++) {
        const int p[] = {s->var[v].vec, s->var[v].mr, s->var[v].nr, s->var[v].kc, s->var[v].mc, s->var[v].nc};
        for (int i = 0; i < 6; i++)
            sup_sha256_u64(h, (uint64_t)(int64_t)p[i]);
    }
    sup_sha256_u64(h, (uint64_t)s->ntuned);
    for (int k = 0; k < s->ntuned; k++) {
        sup_sha256_str(h, s->tuned[k]);
        sup_sha256_u64(h, (uint64_t)s->tuned_var[k]);
    }
}

/* ---- the descriptor's fields ---------------------------------------------------------------- */

static LLVMValueRef private_const(LLVMModuleRef m, LLVMValueRef init, const char *name)
{
    LLVMValueRef gv = LLVMAddGlobal(m, LLVMTypeOf(init), name);
    LLVMSetInitializer(gv, init);
    LLVMSetGlobalConstant(gv, true);
    LLVMSetLinkage(gv, LLVMPrivateLinkage);
    return gv;
}

static LLVMValueRef string(LLVMModuleRef m, const char *s)
{
    LLVMValueRef init = LLVMConstStringInContext(LLVMGetModuleContext(m), s, (unsigned)strlen(s), false);
    return private_const(m, init, "special.name");
}

/* A constant array of n values of type t, or a null pointer when n is 0. */
static LLVMValueRef array(LLVMModuleRef m, LLVMTypeRef t, LLVMValueRef *vals, int n, const char *name)
{
    if (!n)
        return LLVMConstNull(LLVMPointerTypeInContext(LLVMGetModuleContext(m), 0));
    return private_const(m, LLVMConstArray2(t, vals, (uint64_t)n), name);
}

bool cg_aot_special_emit(const cg_aot_special *s, const dl_module *lib, const char *prefix, cg_jit *j,
                         LLVMModuleRef m, LLVMValueRef vals[10], char *err, size_t errlen)
{
    LLVMContextRef c = LLVMGetModuleContext(m);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(c), ptr = LLVMPointerTypeInContext(c, 0);
    int nfn = 0;
    for (const dl_func *f = lib->first; f; f = f->next)
        nfn++;
    int nval = 6 * s->nvar + nfn * CG_AOT_MAX_SYMS + 3 * s->ntuned + 3 * nfn + 8;
    LLVMValueRef *v = calloc((size_t)nval, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    LLVMValueRef *ukrs = v, *params = ukrs + s->nvar, *names = params + 6 * s->nvar, *vars = names + s->ntuned,
                 *funcs = vars + s->ntuned, *fns = funcs + nfn, *syms = fns + nfn;
    bool ok = true;
    char name[200];
    for (int i = 0; ok && i < s->nvar; i++) {
        cg_gemm_params p = s->var[i];
        snprintf(name, sizeof name, "%s_sgemm_ukr_v%d_%dx%d", prefix, p.vec, p.mr, p.nr);
        if (!LLVMGetNamedFunction(m, name))
            ok = cg_gemm_add_kernel(j, m, &p, name, err, errlen);
        ukrs[i] = LLVMGetNamedFunction(m, name);
        const int64_t pv[] = {p.vec, p.mr, p.nr, p.kc, p.mc, p.nc};
        for (int k = 0; k < 6; k++)
            params[6 * i + k] = LLVMConstInt(i64, (unsigned long long)pv[k], true);
    }
    for (int k = 0; k < s->ntuned; k++) {
        names[k] = string(m, s->tuned[k]);
        vars[k] = LLVMConstInt(i64, (unsigned long long)s->tuned_var[k], true);
    }
    int nstraight = 0;
    sup_arena a;
    sup_arena_init(&a, NULL);
    for (const dl_func *f = lib->first; ok && s->straight && f; f = f->next) {
        int64_t *at;
        cg_program *p = plan_at(s, f, prefix, s->fuse, &a, &at);
        if (p->nsyms > CG_AOT_MAX_SYMS)
            continue;
        snprintf(name, sizeof name, "%s_%s_straight", prefix, f->name);
        ok = cg_straight_emit(j, m, p, at, name, err, errlen);
        funcs[nstraight] = string(m, f->name);
        fns[nstraight] = LLVMGetNamedFunction(m, name);
        for (int i = 0; i < CG_AOT_MAX_SYMS; i++)
            syms[nstraight * CG_AOT_MAX_SYMS + i] = LLVMConstInt(i64, (unsigned long long)(i < p->nsyms ? at[i] : 0), true);
        nstraight++;
    }
    sup_arena_reset(&a);
    vals[0] = LLVMConstInt(i64, (unsigned long long)s->nvar, true);
    vals[1] = array(m, ptr, ukrs, s->nvar, "special.ukrs");
    vals[2] = array(m, i64, params, 6 * s->nvar, "special.params");
    vals[3] = LLVMConstInt(i64, (unsigned long long)s->ntuned, true);
    vals[4] = array(m, ptr, names, s->ntuned, "special.tuned");
    vals[5] = array(m, i64, vars, s->ntuned, "special.variant");
    vals[6] = LLVMConstInt(i64, (unsigned long long)nstraight, true);
    vals[7] = array(m, ptr, funcs, nstraight, "special.funcs");
    vals[8] = array(m, ptr, fns, nstraight, "special.steps");
    vals[9] = array(m, i64, syms, nstraight * CG_AOT_MAX_SYMS, "special.syms");
    free(v);
    return ok;
}
