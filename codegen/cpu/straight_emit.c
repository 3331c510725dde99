/* The straight-line step as LLVM IR (see straight_emit.h and straight.h). Its entry stores each
 * value's pointer in bufs (arguments are already there): arena + the planned offset, or a view's
 * operand's pointer. Then one call per kernel, in the plan's order, each followed by a check that
 * returns the kernel's index when it failed. */
#include "codegen/cpu/straight_emit.h"

#include "codegen/cpu/cpu.h"
#include "codegen/cpu/straight.h"
#include "codegen/cpu/tune.h"
#include "codegen/memplan.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sgen {
    LLVMContextRef c;
    LLVMModuleRef  m;
    LLVMBuilderRef b;
    LLVMValueRef   fn, env, bufs, arena, syms, status;
    LLVMTypeRef    i8, i64, ptr, voidt;
    LLVMValueRef  *ptrs;         /* per value id: its pointer in this call, or NULL */
    LLVMValueRef   pool;         /* env->pool, loaded once */
    const cg_program *p;
} sgen;

static LLVMValueRef i64c(sgen *g, int64_t v) { return LLVMConstInt(g->i64, (unsigned long long)v, true); }

static int64_t eval_dim(const cg_program *p, dl_dim d, const int64_t *syms)
{
    int64_t v = d.c;
    for (int k = 0; k < d.n; k++)
        v *= syms[cg_program_sym(p, d.sym[k])];
    return v;
}

static int64_t bytes_at(const cg_program *p, const dl_type *t, const int64_t *syms)
{
    int64_t n = ir_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++)
        n *= eval_dim(p, t->dim[d], syms);
    return n;
}

/* A byte offset from base, as a pointer. */
static LLVMValueRef offset(sgen *g, LLVMValueRef base, int64_t bytes, const char *name)
{
    LLVMValueRef idx = i64c(g, bytes);
    return LLVMBuildGEP2(g->b, g->i8, base, &idx, 1, name);
}

/* A field of the environment (every field 8 bytes: see straight.h), loaded. */
static LLVMValueRef env_field(sgen *g, size_t off, const char *name)
{
    return LLVMBuildLoad2(g->b, g->ptr, offset(g, g->env, (int64_t)off, ""), name);
}

static LLVMValueRef declare(sgen *g, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n,
                            LLVMTypeRef *fty)
{
    *fty = LLVMFunctionType(ret, params, n, false);
    LLVMValueRef f = LLVMGetNamedFunction(g->m, name);
    return f ? f : LLVMAddFunction(g->m, name, *fty);
}

/* if (!ok) return kernel; */
static void check(sgen *g, LLVMValueRef ok, int kernel)
{
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(g->c, g->fn, "fail"),
                      next = LLVMAppendBasicBlockInContext(g->c, g->fn, "next");
    LLVMBuildCondBr(g->b, ok, next, fail);
    LLVMPositionBuilderAtEnd(g->b, fail);
    LLVMBuildRet(g->b, i64c(g, kernel));
    LLVMPositionBuilderAtEnd(g->b, next);
}

/* The value pointers, stored in bufs as the executor would store them. */
static void place_values(sgen *g, const cg_memplan *mp)
{
    const dl_func *f = g->p->f;
    char name[32];
    for (int a = 0; a < f->nargs; a++) {
        LLVMValueRef at = LLVMBuildGEP2(g->b, g->ptr, g->bufs, (LLVMValueRef[]){i64c(g, a)}, 1, "");
        snprintf(name, sizeof name, "arg.%d", a);
        g->ptrs[a] = LLVMBuildLoad2(g->b, g->ptr, at, name);
    }
    for (int id = f->nargs; id < mp->nbufs; id++) {
        int root = mp->root[id];
        snprintf(name, sizeof name, "v.%d", id - f->nargs);    /* %N as --emit=ir numbers it */
        if (mp->def[id] >= 0)
            g->ptrs[id] = offset(g, g->arena, mp->offset[id], name);
        else if (root != id)
            g->ptrs[id] = g->ptrs[root];
        if (!g->ptrs[id])
            continue;
        LLVMValueRef at = LLVMBuildGEP2(g->b, g->ptr, g->bufs, (LLVMValueRef[]){i64c(g, id)}, 1, "");
        LLVMBuildStore(g->b, g->ptrs[id], at);
    }
}

/* A compiled kernel called directly, or an elementwise one split across the pool. */
static void call_compiled(sgen *g, const cg_kernel *k, int i, const int64_t *syms)
{
    LLVMTypeRef kp[] = {g->ptr, g->ptr, g->ptr, g->i64, g->i64}, kty;
    LLVMValueRef kfn = declare(g, k->name, g->voidt, kp, 5, &kty);
    if (k->kind == CG_K_ELEMENTWISE) {
        /* exec.c's run_split: all but the last dimension of the output, from 32K elements. */
        const dl_type *t = &k->out[0]->type;
        int64_t rows = 1, inner = t->rank ? eval_dim(g->p, t->dim[t->rank - 1], syms) : 1;
        for (int d = 0; d + 1 < t->rank; d++)
            rows *= eval_dim(g->p, t->dim[d], syms);
        if (rows >= 2 && rows * inner >= ((int64_t)1 << 15)) {
            LLVMTypeRef sp[] = {g->ptr, g->ptr, g->ptr, g->i64}, sty;
            LLVMValueRef split = declare(g, "cg_straight_split", g->voidt, sp, 4, &sty);
            LLVMValueRef args[] = {g->env, kfn, g->bufs, i64c(g, rows)};
            LLVMBuildCall2(g->b, sty, split, args, 4, "");
            return;
        }
    }
    LLVMValueRef args[] = {g->bufs, g->syms, g->status, i64c(g, 0), i64c(g, INT64_MAX)};
    LLVMBuildCall2(g->b, kty, kfn, args, 5, "");
    LLVMValueRef st = LLVMBuildLoad2(g->b, g->i64, g->status, "status");
    check(g, LLVMBuildICmp(g->b, LLVMIntEQ, st, i64c(g, CG_STATUS_OK), "ok"), i);
}

/* A matrix product without an epilogue: cg_gemm_run_strided per batch, sizes and strides as
 * constants, on the kernel's gemm (env->gemm[i]). */
static void call_gemm(sgen *g, const cg_kernel *k, int i, const int64_t *syms)
{
    cg_matmul_call c;
    cg_tune_matmul_call(g->p, k, syms, &c);
    LLVMTypeRef gp[] = {g->ptr, g->ptr, g->i64, g->i64, g->i64, g->ptr, g->i64, g->i64, g->ptr, g->i64, g->i64,
                        g->ptr, g->i64}, gty;
    LLVMValueRef run = declare(g, "cg_gemm_run_strided", g->i8, gp, 13, &gty);
    LLVMValueRef table = env_field(g, offsetof(cg_straight_env, gemm), "gemms");
    LLVMValueRef gemm = LLVMBuildLoad2(g->b, g->ptr, offset(g, table, 8 * (int64_t)i, ""), "gemm");
    const cg_gemm_shape *s = &c.s;
    for (int64_t bi = 0; bi < c.batch; bi++) {
        LLVMValueRef a = offset(g, g->ptrs[c.a->id], 4 * bi * c.a_step, "a"),
                     b = offset(g, g->ptrs[c.b->id], 4 * bi * c.b_step, "b"),
                     cc = offset(g, g->ptrs[c.c->id], 4 * bi * c.c_step, "c");
        LLVMValueRef args[] = {gemm, g->pool, i64c(g, s->M), i64c(g, s->N), i64c(g, s->K), a, i64c(g, s->rsa),
                               i64c(g, s->csa), b, i64c(g, s->rsb), i64c(g, s->csb), cc, i64c(g, s->ldc)};
        LLVMValueRef ok = LLVMBuildCall2(g->b, gty, run, args, 13, "gemm.ok");
        check(g, LLVMBuildICmp(g->b, LLVMIntNE, ok, LLVMConstInt(g->i8, 0, false), "ok"), i);
    }
}

/* Anything else through the executor's driver for it. */
static void call_driver(sgen *g, int i)
{
    LLVMTypeRef dp[] = {g->ptr, g->i64, g->ptr}, dty;
    LLVMValueRef run = declare(g, "cg_straight_kernel", g->i8, dp, 3, &dty);
    LLVMValueRef args[] = {g->env, i64c(g, i), g->bufs};
    LLVMValueRef ok = LLVMBuildCall2(g->b, dty, run, args, 3, "ok");
    check(g, LLVMBuildICmp(g->b, LLVMIntNE, ok, LLVMConstInt(g->i8, 0, false), "ok"), i);
}

/* Batched products past this many calls go through the driver rather than unrolled calls. */
enum { MAX_UNROLLED_BATCH = 64 };

bool cg_straight_emit(cg_jit *j, LLVMModuleRef m, const cg_program *prog, const int64_t *syms, const char *name,
                      char *err, size_t errlen)
{
    cg_memplan *mp = cg_memplan_create(prog);
    int64_t *bytes = mp ? calloc((size_t)mp->nbufs + 1, sizeof *bytes) : NULL;
    sgen g = {.c = cg_jit_context(j), .m = m, .p = prog};
    g.ptrs = bytes ? calloc((size_t)mp->nbufs + 1, sizeof *g.ptrs) : NULL;
    if (!g.ptrs) {
        snprintf(err, errlen, "out of memory");
        free(bytes);
        cg_memplan_destroy(mp);
        return false;
    }
    /* The placement a call with these symbols makes (exec.c's place). */
    for (const dl_op *op = prog->f->first; op; op = op->next)
        for (int r = 0; r < op->nres; r++)
            if (mp->def[op->res[r].id] >= 0)
                bytes[op->res[r].id] = bytes_at(prog, &op->res[r].type, syms);
    cg_memplan_place(mp, bytes);

    g.i8 = LLVMInt8TypeInContext(g.c);
    g.i64 = LLVMInt64TypeInContext(g.c);
    g.ptr = LLVMPointerTypeInContext(g.c, 0);
    g.voidt = LLVMVoidTypeInContext(g.c);
    LLVMTypeRef params[] = {g.ptr, g.ptr, g.ptr};
    g.fn = LLVMAddFunction(m, name, LLVMFunctionType(g.i64, params, 3, false));
    cg_jit_tune(j, g.fn);
    LLVMAddAttributeAtIndex(g.fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(g.c, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
    const char *pnames[] = {"env", "bufs", "arena"};
    for (unsigned i = 0; i < 3; i++)
        LLVMSetValueName2(LLVMGetParam(g.fn, i), pnames[i], strlen(pnames[i]));
    g.env = LLVMGetParam(g.fn, 0), g.bufs = LLVMGetParam(g.fn, 1), g.arena = LLVMGetParam(g.fn, 2);

    /* The symbols, as constants: the kernels read their dimensions from them. */
    LLVMValueRef sv[256];
    for (int s = 0; s < prog->nsyms && s < 256; s++)
        sv[s] = i64c(&g, syms[s]);
    LLVMValueRef sinit = LLVMConstArray2(g.i64, sv, (uint64_t)(prog->nsyms < 256 ? prog->nsyms : 256));
    char sname[200];
    snprintf(sname, sizeof sname, "%s.syms", name);
    g.syms = LLVMAddGlobal(m, LLVMTypeOf(sinit), sname);
    LLVMSetInitializer(g.syms, sinit);
    LLVMSetGlobalConstant(g.syms, true);
    LLVMSetLinkage(g.syms, LLVMPrivateLinkage);

    g.b = LLVMCreateBuilderInContext(g.c);
    LLVMPositionBuilderAtEnd(g.b, LLVMAppendBasicBlockInContext(g.c, g.fn, "entry"));
    g.status = offset(&g, g.env, offsetof(cg_straight_env, status), "status.ptr");
    g.pool = env_field(&g, offsetof(cg_straight_env, pool), "pool");
    place_values(&g, mp);
    for (int i = 0; i < prog->nkernels; i++) {
        const cg_kernel *k = &prog->kernels[i];
        if (k->kind == CG_K_VIEW)
            continue;
        if (k->kind == CG_K_MATMUL && !k->epilogue) {
            cg_matmul_call c;
            cg_tune_matmul_call(prog, k, syms, &c);
            if (c.batch <= MAX_UNROLLED_BATCH && c.s.M > 0 && c.s.N > 0)
                call_gemm(&g, k, i, syms);
            else
                call_driver(&g, i);
        } else if (k->kind != CG_K_MATMUL && k->kind != CG_K_CONV && cg_cpu_compiled(k)) {
            call_compiled(&g, k, i, syms);
        } else {
            call_driver(&g, i);
        }
    }
    LLVMBuildRet(g.b, i64c(&g, -1));
    LLVMDisposeBuilder(g.b);
    free(g.ptrs);
    free(bytes);
    cg_memplan_destroy(mp);
    return true;
}
