/* Running a planned function over compiled kernels (see exec.h). Values live in one arena laid
 * out by the memory plan (codegen/memplan.c): placed again only when the symbols change, grown
 * only when a placement needs more, so a call with the shapes of an earlier one allocates
 * nothing but what reference and convolution kernels take for scratch. */
#include "codegen/cpu/exec.h"

#include "codegen/cpu/conv.h"
#include "codegen/cpu/scatter.h"
#include "codegen/cpu/straight.h"
#include "codegen/memplan.h"
#include "runtime/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct cg_exec {
    const cg_program *prog;
    cg_kernel_fn    **fns;          /* per kernel; NULL for the kinds run in C */
    int               nbufs;
    cg_gemm          *gemm;         /* matrix products (borrowed) */
    rt_pool          *pool;         /* the threads kernels split their work across */
    bool              own_pool;
    cg_memplan       *mp;
    void            **bufs;         /* per value: where it lives in this call */
    int64_t          *bytes;        /* per value with a slot: its size in this call */
    int64_t           placed[256];  /* the symbols the plan was last placed for */
    bool              is_placed;
    char             *arena;
    int64_t           arena_bytes;
    int64_t           arena_grows;  /* how often the arena was (re)allocated */
    /* --profile: per kernel, seconds and calls; buffer bytes of the last call; calls in all. */
    double           *ktime;
    int64_t          *kcalls;
    int64_t           buffer_bytes, runs;
    /* max-autotune: per kernel, the gemm that runs it (gemm unless tuned) */
    cg_gemm         **kgemm;
    /* reduce-overhead: the straight-line step, the symbols it is for, its environment */
    cg_straight_fn   *straight;
    int64_t           straight_syms[256];
    cg_straight_env  *env;
    int64_t           straight_runs;
};

cg_exec *cg_exec_create(const cg_program *prog, cg_kernel_fn *const *fns, cg_gemm *gemm, rt_pool *pool,
                        char *err, size_t errlen)
{
    cg_exec *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->prog = prog;
    p->gemm = gemm;
    p->nbufs = cg_program_nbuffers(prog->f);
    p->fns = calloc((size_t)prog->nkernels + 1, sizeof *p->fns);
    p->bufs = calloc((size_t)p->nbufs + 1, sizeof *p->bufs);
    p->bytes = calloc((size_t)p->nbufs + 1, sizeof *p->bytes);
    p->kgemm = calloc((size_t)prog->nkernels + 1, sizeof *p->kgemm);
    if (!p->fns || !p->bufs || !p->bytes || !p->kgemm) {
        snprintf(err, errlen, "out of memory");
        cg_exec_destroy(p);
        return NULL;
    }
    bool split = false;
    for (int i = 0; i < prog->nkernels; i++) {
        const cg_kernel *k = &prog->kernels[i];
        p->fns[i] = fns[i];
        p->kgemm[i] = gemm;
        split |= k->kind == CG_K_MATMUL || k->kind == CG_K_CONV;
        if (!fns[i] && (k->kind == CG_K_ELEMENTWISE || k->kind == CG_K_REDUCE || k->kind == CG_K_COPY ||
                        k->kind == CG_K_INDEX || k->kind == CG_K_ATTENTION || k->epilogue)) {
            snprintf(err, errlen, "kernel %s has no code", k->name);
            cg_exec_destroy(p);
            return NULL;
        }
    }
    if (!(p->mp = cg_memplan_create(prog))) {
        snprintf(err, errlen, "out of memory");
        cg_exec_destroy(p);
        return NULL;
    }
    if (split && !gemm) {
        snprintf(err, errlen, "matrix products without a gemm kernel");
        cg_exec_destroy(p);
        return NULL;
    }
    /* Starting threads is not free: only plans with matrix products or convolutions get them. */
    p->pool = pool;
    p->own_pool = split && !pool;
    if (p->own_pool && !(p->pool = rt_pool_create(0, err, errlen))) {
        cg_exec_destroy(p);
        return NULL;
    }
    return p;
}

void cg_exec_destroy(cg_exec *p)
{
    if (!p)
        return;
    if (p->own_pool)
        rt_pool_destroy(p->pool);
    free(p->fns);
    free(p->bufs);
    free(p->bytes);
    free(p->arena);
    cg_memplan_destroy(p->mp);
    free(p->ktime);
    free(p->kcalls);
    free(p->kgemm);
    free(p->env);
    free(p);
}

bool cg_exec_profile(cg_exec *p)
{
    if (!p->ktime) {
        p->ktime = calloc((size_t)p->prog->nkernels + 1, sizeof *p->ktime);
        p->kcalls = calloc((size_t)p->prog->nkernels + 1, sizeof *p->kcalls);
    }
    return p->ktime && p->kcalls;
}

void cg_exec_profile_report(const cg_exec *p, FILE *out, int top)
{
    if (!p->ktime)
        return;
    static const char *const kinds[] = {
        [CG_K_ELEMENTWISE] = "elementwise", [CG_K_MATMUL] = "matmul", [CG_K_REDUCE] = "reduce",
        [CG_K_CONV] = "conv", [CG_K_COPY] = "copy", [CG_K_VIEW] = "view", [CG_K_INDEX] = "index",
        [CG_K_ATTENTION] = "attention", [CG_K_SCATTER] = "scatter", [CG_K_REF] = "reference"};
    int n = p->prog->nkernels, *order = malloc(sizeof *order * (size_t)(n + 1));
    if (!order)
        return;
    double total = 0, kind_time[CG_K_REF + 1] = {0};
    for (int i = 0; i < n; i++) {
        order[i] = i;
        total += p->ktime[i];
        kind_time[p->prog->kernels[i].kind] += p->ktime[i];
    }
    for (int i = 1; i < n; i++)        /* by time, descending (a few hundred kernels) */
        for (int j = i; j > 0 && p->ktime[order[j]] > p->ktime[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    fprintf(out, "dlc: profile of @%s: %lld calls, %.1f ms in %d kernels, %.1f MiB of buffers per call\n",
            p->prog->f->name, (long long)p->runs, 1e3 * total, n, (double)p->buffer_bytes / (1 << 20));
    fprintf(out, "  by kind:");
    for (int k = 0; k <= CG_K_REF; k++)
        if (kind_time[k] > 0)
            fprintf(out, " %s %.1f%%", kinds[k], 100 * kind_time[k] / (total > 0 ? total : 1));
    fprintf(out, "\n  %10s %6s %8s  kernel (kind): ops\n", "ms", "%", "calls");
    for (int r = 0; r < n && r < top; r++) {
        const cg_kernel *k = &p->prog->kernels[order[r]];
        fprintf(out, "  %10.2f %5.1f%% %8lld  %s (%s):", 1e3 * p->ktime[order[r]],
                100 * p->ktime[order[r]] / (total > 0 ? total : 1), (long long)p->kcalls[order[r]],
                k->name, kinds[k->kind]);
        for (int o = 0; o < k->nops && o < 8; o++)
            fprintf(out, " %s", ir_op_info(k->ops[o]->code)->name);
        fprintf(out, "%s\n", k->nops > 8 ? " ..." : "");
    }
    free(order);
}

/* Binds the symbols from the arguments' shapes, checking that every mention agrees. */
static bool bind_syms(const cg_exec *p, const cg_tensor *args, int64_t *syms, char *err, size_t errlen)
{
    const cg_program *prog = p->prog;
    bool bound[256] = {0};
    for (int a = 0; a < p->prog->f->nargs; a++) {
        const dl_type *want = &p->prog->f->args[a]->type, *got = &args[a].type;
        char w[256], g[256];
        ir_type_str(want, w, sizeof w);
        ir_type_str(got, g, sizeof g);
        if (want->rank != got->rank || want->dtype != got->dtype) {
            snprintf(err, errlen, "argument %%%s is %s, expected %s", p->prog->f->arginfo[a].name, g, w);
            return false;
        }
        for (int d = 0; d < want->rank; d++) {
            dl_dim wd = want->dim[d];
            int64_t n = got->dim[d].c;
            if (wd.n == 1 && wd.c != 0 && n % wd.c == 0) {
                int s = cg_program_sym(prog, wd.sym[0]);
                int64_t v = n / wd.c;
                if (s >= 0 && s < 256 && !bound[s]) {
                    syms[s] = v;
                    bound[s] = true;
                    continue;
                }
            }
            /* A constant, a product of symbols, or a symbol bound before: check it. */
            int64_t expect = wd.c;
            bool known = true;
            for (int k = 0; k < wd.n; k++) {
                int s = cg_program_sym(prog, wd.sym[k]);
                known &= s >= 0 && s < 256 && bound[s];
                if (known)
                    expect *= syms[s];
            }
            if (!known || expect != n) {
                snprintf(err, errlen, "argument %%%s is %s, expected %s%s", p->prog->f->arginfo[a].name, g, w,
                         known ? "" : " (its dimensions do not determine the symbols)");
                return false;
            }
        }
    }
    return true;
}

static int64_t eval_dim(const cg_exec *p, dl_dim d, const int64_t *syms)
{
    int64_t v = d.c;
    for (int k = 0; k < d.n; k++)
        v *= syms[cg_program_sym(p->prog, d.sym[k])];
    return v;
}

static cg_tensor concrete(const cg_exec *p, const dl_value *v, void *data, const int64_t *syms)
{
    cg_tensor t = {.type = v->type, .data = data};
    for (int d = 0; d < t.type.rank; d++)
        t.type.dim[d] = ir_dim_const(eval_dim(p, v->type.dim[d], syms));
    return t;
}

static size_t bytes_of(const cg_tensor *t)
{
    size_t n = (size_t)ir_dtype_size(t->type.dtype);
    for (int d = 0; d < t->type.rank; d++)
        n *= (size_t)t->type.dim[d].c;
    return n;
}

/* The epilogue of a matrix product or convolution on rows it has finished. */
static void run_epilogue(void *job, int64_t r0, int64_t r1) { cg_rows_run(job, r0, r1, 0); }

/* [..., M, K] @ [K, N] as one product of (...*M) rows; equal batches one product each. An
 * operand produced by a transpose in the kernel is read through the transpose's input, its
 * last two strides swapped. The epilogue, compiled as fn, runs on each block of finished rows. */
static bool run_matmul(cg_exec *p, const cg_kernel *k, cg_kernel_fn *fn, void **bufs, const int64_t *syms)
{
    cg_gemm *gemm = p->kgemm[k - p->prog->kernels];     /* max-autotune's choice for this kernel */
    const dl_op *op = k->ops[k->matmul];
    const dl_type *at = &op->in[0]->type, *bt = &op->in[1]->type;
    int ra = at->rank, rb = bt->rank;
    int64_t M = eval_dim(p, at->dim[ra - 2], syms), K = eval_dim(p, at->dim[ra - 1], syms);
    int64_t N = eval_dim(p, bt->dim[rb - 1], syms), batch = 1;
    for (int d = 0; d + 2 < ra; d++)
        batch *= eval_dim(p, at->dim[d], syms);
    const float *A = bufs[op->in[0]->id], *B = bufs[op->in[1]->id];
    int64_t rsa = K, csa = 1, rsb = N, csb = 1;
    for (int o = 0; o < k->matmul; o++) {
        const dl_op *t = k->ops[o];
        if (&t->res[0] == op->in[0])
            A = bufs[t->in[0]->id], rsa = 1, csa = M;
        if (&t->res[0] == op->in[1])
            B = bufs[t->in[0]->id], rsb = 1, csb = K;
    }
    float *C = bufs[op->res[0].id];
    cg_rows_job job = {fn, bufs, syms};
    cg_gemm_epilogue epi = {run_epilogue, &job, 0};
    if (rb == 2)
        return cg_gemm_run_epilogue(gemm, p->pool, batch * M, N, K, A, rsa, csa, B, rsb, csb, C, N,
                                    fn ? &epi : NULL);
    for (int64_t i = 0; i < batch; i++) {
        epi.row0 = i * M;
        if (!cg_gemm_run_epilogue(gemm, p->pool, M, N, K, A + i * M * K, rsa, csa, B + i * K * N, rsb, csb,
                                  C + i * M * N, N, fn ? &epi : NULL))
            return false;
    }
    return true;
}

void cg_rows_run(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const cg_rows_job *j = ctx;
    int64_t status[4] = {CG_STATUS_OK};     /* elementwise kernels meet no bad data */
    j->fn(j->bufs, j->syms, status, begin, end);
}

/* An elementwise kernel's output rows (all but its last dimension) split across the pool when
 * there is one and the output is large enough to pay for the hand-off. */
static bool run_split(cg_exec *p, const cg_kernel *k, cg_kernel_fn *fn, void **bufs, const int64_t *syms)
{
    if (!p->pool || rt_pool_threads(p->pool) < 2 || k->kind != CG_K_ELEMENTWISE)
        return false;
    cg_tensor out = concrete(p, k->out[0], NULL, syms);
    int r = out.type.rank;
    int64_t rows = 1, inner = r ? out.type.dim[r - 1].c : 1;
    for (int d = 0; d + 1 < r; d++)
        rows *= out.type.dim[d].c;
    if (rows < 2 || rows * inner < ((int64_t)1 << 15))
        return false;
    cg_rows_job j = {fn, bufs, syms};
    rt_pool_run(p->pool, rows, cg_rows_run, &j);
    return true;
}

/* Runs kernel i of the plan over the buffers. False with a message in err. */
static bool run_kernel(cg_exec *p, int i, void **bufs, const int64_t *syms, char *err, size_t errlen)
{
    const cg_kernel *k = &p->prog->kernels[i];
    if (k->kind == CG_K_MATMUL) {
        if (run_matmul(p, k, p->fns[i], bufs, syms))
            return true;
        snprintf(err, errlen, "out of memory in a matrix product");
        return false;
    }
    if (p->fns[i] && k->kind != CG_K_CONV) {
        if (run_split(p, k, p->fns[i], bufs, syms))
            return true;
        int64_t status[4] = {CG_STATUS_OK};
        p->fns[i](bufs, syms, status, 0, INT64_MAX);
        if (status[0] != CG_STATUS_INDEX)
            return true;
        int at = status[3] >= 0 && status[3] < k->nops ? (int)status[3] : 0;
        snprintf(err, errlen, "'%s': index %lld is out of range for a dimension of size %lld",
                 ir_op_info(k->ops[at]->code)->name, (long long)status[1], (long long)status[2]);
        return false;
    }
    if (k->kind == CG_K_VIEW)
        return true;
    const dl_op *op = k->ops[0];
    cg_tensor in[256], out[64];
    if (op->nin > 256 || op->nres > 64) {
        snprintf(err, errlen, "too many operands");
        return false;
    }
    for (int a = 0; a < op->nin; a++)
        in[a] = concrete(p, op->in[a], bufs[op->in[a]->id], syms);
    for (int r = 0; r < op->nres; r++)
        out[r] = concrete(p, &op->res[r], bufs[op->res[r].id], syms);
    if (k->kind == CG_K_CONV) {
        cg_rows_job job = {p->fns[i], bufs, syms};
        cg_gemm_epilogue epi = {run_epilogue, &job, 0};
        return cg_conv_run(p->kgemm[i], p->pool, op, in, out, p->fns[i] ? &epi : NULL, err, errlen);
    }
    if (k->kind == CG_K_SCATTER)
        return cg_scatter_run(op, in, out, err, errlen);
    return cg_ref_op(op, in, out, err, errlen);
}

/* Sizes for these symbols; the plan placed again when they changed; the arena grown to fit. */
static bool place(cg_exec *p, const int64_t *syms)
{
    const dl_func *f = p->prog->f;
    int nsyms = p->prog->nsyms;
    if (p->is_placed && !memcmp(p->placed, syms, sizeof *syms * (size_t)nsyms))
        return true;
    for (dl_op *op = f->first; op; op = op->next)
        for (int r = 0; r < op->nres; r++)
            if (p->mp->def[op->res[r].id] >= 0) {
                cg_tensor t = concrete(p, &op->res[r], NULL, syms);
                p->bytes[op->res[r].id] = (int64_t)bytes_of(&t);
            }
    cg_memplan_place(p->mp, p->bytes);
    if (p->mp->peak > p->arena_bytes) {
        free(p->arena);
        p->arena_bytes = 0;
        if (!(p->arena = aligned_alloc(CG_MEM_ALIGN, (size_t)p->mp->peak)))
            return p->is_placed = false;
        p->arena_bytes = p->mp->peak;
        p->arena_grows++;
    }
    memcpy(p->placed, syms, sizeof *syms * (size_t)nsyms);
    return p->is_placed = true;
}

const cg_memplan *cg_exec_memplan(const cg_exec *p) { return p->mp; }
const int64_t *cg_exec_syms(const cg_exec *p) { return p->is_placed ? p->placed : NULL; }
int64_t cg_exec_arena_grows(const cg_exec *p) { return p->arena_grows; }

/* ---- -O max-autotune and -O reduce-overhead (docs/modes.md) ---------------------------- */

bool cg_exec_bind(const cg_exec *p, const cg_tensor *args, int64_t *syms, char *err, size_t errlen)
{
    if (p->prog->nsyms > 256) {
        snprintf(err, errlen, "more than 256 symbolic dimensions");
        return false;
    }
    return bind_syms(p, args, syms, err, errlen);
}

void cg_exec_set_gemm(cg_exec *p, int kernel, cg_gemm *g) { p->kgemm[kernel] = g ? g : p->gemm; }
cg_gemm *cg_exec_gemm(const cg_exec *p, int kernel) { return p->kgemm[kernel]; }
rt_pool *cg_exec_pool(const cg_exec *p) { return p->pool; }
int64_t cg_exec_straight_runs(const cg_exec *p) { return p->straight_runs; }

bool cg_exec_run_kernel(cg_exec *p, int kernel, void **bufs, const int64_t *syms, char *err, size_t errlen)
{
    return run_kernel(p, kernel, bufs, syms, err, errlen);
}

bool cg_exec_set_straight(cg_exec *p, const int64_t *syms, cg_straight_fn *fn, char *err, size_t errlen)
{
    if (!p->env && !(p->env = calloc(1, sizeof *p->env))) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(p->straight_syms, syms, sizeof *syms * (size_t)p->prog->nsyms);
    *p->env = (cg_straight_env){.exec = p, .pool = p->pool, .gemm = p->kgemm, .syms = p->straight_syms};
    p->straight = fn;
    return true;
}

/* The straight-line step over the arena; a failing kernel's message as run_kernel gives it. */
static bool run_straight(cg_exec *p, void **bufs, char *err, size_t errlen)
{
    cg_straight_env *env = p->env;
    env->status[0] = CG_STATUS_OK;
    env->err[0] = 0;
    int64_t bad = p->straight(env, bufs, p->arena);
    p->straight_runs++;
    if (bad < 0)
        return true;
    const cg_kernel *k = &p->prog->kernels[bad];
    if (env->status[0] == CG_STATUS_INDEX) {
        int at = env->status[3] >= 0 && env->status[3] < k->nops ? (int)env->status[3] : 0;
        snprintf(err, errlen, "'%s': index %lld is out of range for a dimension of size %lld",
                 ir_op_info(k->ops[at]->code)->name, (long long)env->status[1], (long long)env->status[2]);
    } else {
        snprintf(err, errlen, "%s", env->err[0] ? env->err : "out of memory in a matrix product");
    }
    return false;
}

/* ---- running a call ------------------------------------------------------------------------ */

bool cg_exec_run(cg_exec *p, const cg_tensor *args, cg_tensor *results, void *const *outs, char *err,
                 size_t errlen)
{
    int64_t syms[256] = {0};
    if (p->prog->nsyms > 256) {
        snprintf(err, errlen, "more than 256 symbolic dimensions");
        return false;
    }
    if (!bind_syms(p, args, syms, err, errlen))
        return false;
    const dl_func *f = p->prog->f;
    cg_program_nbuffers(f);
    if (!place(p, syms)) {
        snprintf(err, errlen, "out of memory (an arena of %lld bytes)", (long long)p->mp->peak);
        return false;
    }
    void **bufs = p->bufs;
    for (int a = 0; a < f->nargs; a++)
        bufs[a] = args[a].data;
    /* reduce-overhead: the step specialized to these symbols fills bufs and runs the kernels. */
    bool straight = p->straight && !p->ktime && !memcmp(syms, p->straight_syms, sizeof *syms * (size_t)p->prog->nsyms);
    /* Op results: a slot in the arena, a view's operand's storage, or none (fused, unwritten). */
    for (int id = f->nargs; !straight && id < p->nbufs; id++) {
        int root = p->mp->root[id];
        bufs[id] = p->mp->def[id] >= 0 ? p->arena + p->mp->offset[id] : root != id ? bufs[root] : NULL;
    }
#ifdef DLC_VERIFY_EACH
    /* Every kernel writes all of its output: in test builds the arena holds NaN patterns, so
     * one that read before writing would show in the results. */
    if (p->arena)
        memset(p->arena, 0xff, (size_t)p->mp->peak);
#endif
    bool ok = true;
    int64_t bytes = p->mp->peak;
    p->buffer_bytes = bytes;
    p->runs++;
    if (straight)
        ok = run_straight(p, bufs, err, errlen);
    for (int i = 0; ok && !straight && i < p->prog->nkernels; i++) {
        struct timespec t0, t1;
        if (p->ktime)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        ok = run_kernel(p, i, bufs, syms, err, errlen);
        if (p->ktime) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            p->ktime[i] += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
            p->kcalls[i]++;
        }
    }
    /* Results are copied out before buffer updates land (they take effect after the step). */
    const dl_op *ret = f->last;
    for (int i = 0; ok && i < ret->nin; i++) {
        results[i] = concrete(p, ret->in[i], outs ? outs[i] : NULL, syms);
        size_t n = bytes_of(&results[i]);
        ok = outs || (results[i].data = malloc(n ? n : 1)) != NULL;
        if (ok)
            memcpy(results[i].data, bufs[ret->in[i]->id], n);
    }
    for (const dl_op *op = f->first; ok && op; op = op->next)
        if (op->code == DL_OP_ASSIGN) {
            cg_tensor t = concrete(p, op->in[1], NULL, syms);
            memmove(bufs[op->in[0]->id], bufs[op->in[1]->id], bytes_of(&t));
        }
    return ok;
}


int64_t cg_cpu_ifloordiv(int64_t a, int64_t b)
{
    if (b == 0 || (a == INT64_MIN && b == -1))
        return 0;    /* undefined: the reference reports it; compiled code must not trap */
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

int64_t cg_cpu_imod(int64_t a, int64_t b)
{
    if (b == 0 || (a == INT64_MIN && b == -1))
        return 0;
    return a % b + ((a % b != 0) && ((a < 0) != (b < 0)) ? b : 0);
}

int64_t cg_cpu_ipow(int64_t a, int64_t b)
{
    if (b < 0)
        return 0;
    uint64_t r = 1, base = (uint64_t)a;
    for (; b; b >>= 1, base *= base)
        if (b & 1)
            r *= base;
    return (int64_t)r;
}
