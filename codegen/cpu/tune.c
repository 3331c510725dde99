/* max-autotune's gemm search (see tune.h): candidates, timing, the records in the compile cache,
 * and the micro-kernels compiled once per JIT. */
#include "codegen/cpu/tune.h"

#include "codegen/cpu/conv.h"
#include "support/alloc.h"
#include "support/cache.h"

#include <llvm-c/Core.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the gemm calls of a plan --------------------------------------------------------------- */

static int64_t eval_dim(const cg_program *prog, dl_dim d, const int64_t *syms)
{
    int64_t v = d.c;
    for (int k = 0; k < d.n; k++)
        v *= syms[cg_program_sym(prog, d.sym[k])];
    return v;
}

/* Follows exec.c's run_matmul: change the two together. */
void cg_tune_matmul_call(const cg_program *prog, const cg_kernel *k, const int64_t *syms, cg_matmul_call *c)
{
    const dl_op *op = k->ops[k->matmul];
    const dl_type *at = &op->in[0]->type, *bt = &op->in[1]->type;
    int ra = at->rank, rb = bt->rank;
    int64_t M = eval_dim(prog, at->dim[ra - 2], syms), K = eval_dim(prog, at->dim[ra - 1], syms);
    int64_t N = eval_dim(prog, bt->dim[rb - 1], syms), batch = 1;
    for (int d = 0; d + 2 < ra; d++)
        batch *= eval_dim(prog, at->dim[d], syms);
    *c = (cg_matmul_call){.s = {M, N, K, K, 1, N, 1, N}, .a = op->in[0], .b = op->in[1], .c = &op->res[0]};
    for (int o = 0; o < k->matmul; o++) {
        const dl_op *t = k->ops[o];
        if (&t->res[0] == op->in[0])
            c->a = t->in[0], c->s.rsa = 1, c->s.csa = M;
        if (&t->res[0] == op->in[1])
            c->b = t->in[0], c->s.rsb = 1, c->s.csb = K;
    }
    if (rb == 2) {
        c->s.M = batch * M;
        c->batch = 1;
    } else {
        c->batch = batch;
        c->a_step = M * K, c->b_step = K * N, c->c_step = M * N;
    }
}

bool cg_tune_kernel_shape(const cg_program *prog, const cg_kernel *k, const int64_t *syms, cg_gemm_shape *s)
{
    if (k->kind == CG_K_MATMUL) {
        cg_matmul_call c;
        cg_tune_matmul_call(prog, k, syms, &c);
        *s = c.s;
    } else if (k->kind == CG_K_CONV && k->ops[0]->nin <= 4 && k->ops[0]->nres == 1) {
        const dl_op *op = k->ops[0];
        cg_tensor in[4] = {0}, out = {.type = op->res[0].type};
        for (int a = 0; a < op->nin; a++)
            in[a].type = op->in[a]->type;
        cg_tensor *all[5] = {&in[0], &in[1], &in[2], &in[3], &out};
        for (int t = 0; t < 5; t++)
            for (int d = 0; d < all[t]->type.rank; d++)
                all[t]->type.dim[d] = ir_dim_const(eval_dim(prog, all[t]->type.dim[d], syms));
        if (!cg_conv_gemm_shape(op, in, &out, s))
            return false;
    } else {
        return false;
    }
    return s->M > 0 && s->N > 0 && s->K > 0;
}

/* ---- the tuner ------------------------------------------------------------------------------ */

enum { MAX_UKRS = 32 };

typedef struct ukr_entry {
    int          vec, mr, nr;
    cg_gemm_ukr *fn;
} ukr_entry;

typedef struct gemm_entry {
    cg_gemm_params p;
    cg_gemm       *g;
} gemm_entry;

typedef struct choice {
    cg_gemm_shape  s;
    cg_gemm_params p;
} choice;

struct cg_tuner {
    cg_jit        *j;
    rt_pool       *pool;
    char          *cache_dir;
    FILE          *log;
    bool           quick;       /* DLC_AUTOTUNE=quick: two candidates, one run each (tests) */
    cg_gemm_params defaults;
    ukr_entry      ukrs[MAX_UKRS];
    int            nukrs;
    gemm_entry    *gemms;
    int            ngemms;
    choice        *choices;     /* shapes decided by this tuner */
    int            nchoices;
    int            searched, cached;
};

cg_tuner *cg_tuner_create(cg_jit *j, rt_pool *pool, const char *cache_dir, FILE *log, char *err, size_t errlen)
{
    cg_tuner *t = calloc(1, sizeof *t);
    if (!t || (cache_dir && !(t->cache_dir = strdup(cache_dir)))) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->j = j;
    t->pool = pool;
    t->log = log;
    const char *mode = getenv("DLC_AUTOTUNE");
    t->quick = mode && !strcmp(mode, "quick");
    t->defaults = cg_gemm_default_params(j);
    if (!cg_gemm_fix_params(&t->defaults, err, errlen)) {
        cg_tuner_destroy(t);
        return NULL;
    }
    return t;
}

void cg_tuner_destroy(cg_tuner *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->ngemms; i++)
        cg_gemm_destroy(t->gemms[i].g);
    free(t->gemms);
    free(t->choices);
    free(t->cache_dir);
    free(t);
}

void cg_tuner_counts(const cg_tuner *t, int *searched, int *cached)
{
    *searched = t->searched;
    *cached = t->cached;
}

/* The micro-kernel for p's register block: made once per tuner, its object from the compile
 * cache when there. */
static cg_gemm_ukr *ukr_for(cg_tuner *t, const cg_gemm_params *p, char *err, size_t errlen)
{
    for (int i = 0; i < t->nukrs; i++)
        if (t->ukrs[i].vec == p->vec && t->ukrs[i].mr == p->mr && t->ukrs[i].nr == p->nr)
            return t->ukrs[i].fn;
    if (t->nukrs == MAX_UKRS) {
        snprintf(err, errlen, "too many gemm micro-kernels");
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "dlc_sgemm_ukr_v%d_%dx%d", p->vec, p->mr, p->nr);
    uint8_t key[SUP_SHA256_BYTES];
    sup_sha256_ctx h;
    sup_cache_key_begin(&h, "gemm kernel");
    cg_jit_hash(t->j, &h);
    sup_sha256_str(&h, name);
    sup_sha256_final(&h, key);
    void *obj = NULL;
    size_t len = 0;
    bool ok;
    if (t->cache_dir && sup_cache_get(t->cache_dir, key, &obj, &len)) {
        ok = cg_jit_add_object(t->j, obj, len, err, errlen);
    } else {
        LLVMModuleRef m = cg_jit_module(t->j, name);
        cg_gemm_params q = *p;
        ok = cg_gemm_add_kernel(t->j, m, &q, name, err, errlen) && cg_jit_optimize(t->j, m, err, errlen) &&
             cg_jit_emit_object(t->j, m, true, &obj, &len, err, errlen) &&
             cg_jit_add_object(t->j, obj, len, err, errlen);
        LLVMDisposeModule(m);
        if (ok && t->cache_dir)
            sup_cache_put(t->cache_dir, key, obj, len);
    }
    sup_free(obj);
    cg_gemm_ukr *fn = ok ? (cg_gemm_ukr *)cg_jit_lookup(t->j, name, err, errlen) : NULL;
    if (fn)
        t->ukrs[t->nukrs++] = (ukr_entry){p->vec, p->mr, p->nr, fn};
    return fn;
}

static bool same_params(const cg_gemm_params *a, const cg_gemm_params *b)
{
    return a->vec == b->vec && a->mr == b->mr && a->nr == b->nr && a->kc == b->kc && a->mc == b->mc &&
           a->nc == b->nc;
}

cg_gemm *cg_tuner_gemm(cg_tuner *t, const cg_gemm_params *p, char *err, size_t errlen)
{
    for (int i = 0; i < t->ngemms; i++)
        if (same_params(&t->gemms[i].p, p))
            return t->gemms[i].g;
    cg_gemm_ukr *ukr = ukr_for(t, p, err, errlen);
    gemm_entry *grown = ukr ? realloc(t->gemms, sizeof *grown * (size_t)(t->ngemms + 1)) : NULL;
    if (ukr && !grown)
        snprintf(err, errlen, "out of memory");
    if (!grown)
        return NULL;
    t->gemms = grown;
    cg_gemm *g = cg_gemm_from_kernel(p, ukr, err, errlen);
    if (g)
        t->gemms[t->ngemms++] = (gemm_entry){*p, g};
    return g;
}

/* ---- candidates and timing ------------------------------------------------------------------ */

/* Register blocks (mr, nr) per vector width, the default first: at most about 28 vector
 * accumulators of the 32 AVX-512 registers (12 of AVX2's and SSE's 16), tall and narrow
 * blocks for products with few columns, short and wide ones for few rows. */
static int blocks_for(int vec, int (*out)[2])
{
    static const int b16[][2] = {{6, 64}, {14, 32}, {12, 32}, {8, 48}, {4, 96}, {12, 16}, {24, 16}};
    static const int b8[][2] = {{6, 16}, {4, 24}, {3, 32}, {12, 8}, {8, 8}, {4, 16}};
    static const int b4[][2] = {{4, 8}, {6, 8}, {4, 12}, {3, 16}, {8, 4}};
    const int (*b)[2] = vec == 16 ? b16 : vec == 8 ? b8 : b4;
    int n = vec == 16 ? (int)(sizeof b16 / sizeof *b16) : vec == 8 ? (int)(sizeof b8 / sizeof *b8)
                                                                  : (int)(sizeof b4 / sizeof *b4);
    memcpy(out, b, sizeof *b * (size_t)n);
    return n;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct scratch {
    float *a, *b, *c;
} scratch;

static int64_t extent(int64_t rows, int64_t cols, int64_t rs, int64_t cs)
{
    return (rows - 1) * rs + (cols - 1) * cs + 1;
}

static float *random_floats(int64_t n, uint32_t seed)
{
    float *p = aligned_alloc(64, (size_t)(n + 15) / 16 * 64);
    for (int64_t i = 0; p && i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / (float)(1 << 24) - 0.5f;
    }
    return p;
}

static int qcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median seconds of a run of s on g, after one to warm the caches and the packing buffers:
 * 7 runs of a short product, 5 of a longer one, 3 past 20 ms (1 in quick mode). */
static bool measure(cg_tuner *t, cg_gemm *g, const cg_gemm_shape *s, const scratch *x, double *sec)
{
    double t0 = now();
    if (!cg_gemm_run_strided(g, t->pool, s->M, s->N, s->K, x->a, s->rsa, s->csa, x->b, s->rsb, s->csb, x->c, s->ldc))
        return false;
    double w = now() - t0, runs[7];
    int reps = t->quick ? 1 : w < 2e-3 ? 7 : w < 20e-3 ? 5 : 3;
    for (int r = 0; r < reps; r++) {
        t0 = now();
        cg_gemm_run_strided(g, t->pool, s->M, s->N, s->K, x->a, s->rsa, s->csa, x->b, s->rsb, s->csb, x->c, s->ldc);
        runs[r] = now() - t0;
    }
    qsort(runs, (size_t)reps, sizeof *runs, qcmp);
    *sec = runs[reps / 2];
    return true;
}

static void print_shape(FILE *f, const cg_gemm_shape *s)
{
    fprintf(f, "%lldx%lldx%lld", (long long)s->M, (long long)s->N, (long long)s->K);
    if (s->csa != 1 || s->csb != 1)
        fprintf(f, " (%s)", s->csa != 1 && s->csb != 1 ? "A, B transposed" : s->csa != 1 ? "A transposed" : "B transposed");
}

static void print_params(FILE *f, const cg_gemm_params *p)
{
    fprintf(f, "%dx%d kc %d mc %d nc %d", p->mr, p->nr, p->kc, p->mc, p->nc);
}

/* One candidate timed; *best replaced when it is more than 5% faster (the default, timed first,
 * keeps near-ties: timings vary by a few percent from run to run, and a product timed alone, its
 * operands in cache, gains less inside a model than here). */
static bool try_candidate(cg_tuner *t, cg_gemm_params c, const cg_gemm_shape *s, const scratch *x, bool label_block,
                          cg_gemm_params *best, double *best_sec, char *err, size_t errlen)
{
    if (!cg_gemm_fix_params(&c, err, errlen))
        return false;
    cg_gemm *g = cg_tuner_gemm(t, &c, err, errlen);
    double sec;
    if (!g || !measure(t, g, s, x, &sec)) {
        if (g)
            snprintf(err, errlen, "out of memory timing a matrix product");
        return false;
    }
    if (t->log) {
        if (label_block)
            fprintf(t->log, " %dx%d %.3g", c.mr, c.nr, 1e3 * sec);
        else
            fprintf(t->log, " kc %d mc %d nc %d %.3g", c.kc, c.mc, c.nc, 1e3 * sec);
    }
    if (*best_sec < 0 || sec < 0.95 * *best_sec) {
        *best = c;
        *best_sec = sec;
    }
    return true;
}

/* Stage 1: the register blocks at the default blocking; stage 2: the fastest block with kc, mc
 * and nc halved or doubled where the shape makes the change matter. */
static bool search(cg_tuner *t, const cg_gemm_shape *s, cg_gemm_params *best, char *err, size_t errlen)
{
    scratch x = {random_floats(extent(s->M, s->K, s->rsa, s->csa), 1),
                 random_floats(extent(s->K, s->N, s->rsb, s->csb), 2),
                 random_floats(extent(s->M, s->N, s->ldc, 1), 3)};
    bool ok = x.a && x.b && x.c;
    if (!ok)
        snprintf(err, errlen, "out of memory timing a matrix product");
    double t0 = now(), best_sec = -1;
    int blocks[16][2], nb = blocks_for(t->defaults.vec, blocks);
    if (t->quick)
        nb = 2;
    if (ok && t->log) {
        fprintf(t->log, "dlc: autotune gemm ");
        print_shape(t->log, s);
        fprintf(t->log, " on %d threads, ms:", t->pool ? rt_pool_threads(t->pool) : 1);
    }
    for (int i = 0; ok && i < nb; i++) {
        cg_gemm_params c = t->defaults;
        c.mr = blocks[i][0], c.nr = blocks[i][1];
        ok = try_candidate(t, c, s, &x, true, best, &best_sec, err, errlen);
    }
    cg_gemm_params base = *best;
    const struct { int kc, mc, nc; bool matters; } vary[] = {
        {base.kc / 2, base.mc, base.nc, s->K > base.kc / 2},
        {base.kc * 2, base.mc, base.nc, s->K > base.kc},
        {base.kc, base.mc / 2, base.nc, s->M > base.mc / 2},
        {base.kc, base.mc * 2, base.nc, s->M > base.mc},
        {base.kc, base.mc, base.nc * 2, s->N > base.nc},
    };
    for (size_t i = 0; ok && !t->quick && i < sizeof vary / sizeof *vary; i++) {
        cg_gemm_params c = base;
        c.kc = vary[i].kc, c.mc = vary[i].mc, c.nc = vary[i].nc;
        if (vary[i].matters)
            ok = try_candidate(t, c, s, &x, false, best, &best_sec, err, errlen);
    }
    if (ok && t->log) {
        fprintf(t->log, "; chosen ");
        print_params(t->log, best);
        fprintf(t->log, " (searched in %.0f ms, cache %s)\n", 1e3 * (now() - t0), t->cache_dir ? "miss" : "off");
    }
    free(x.a);
    free(x.b);
    free(x.c);
    return ok;
}

/* ---- the records ---------------------------------------------------------------------------- */

/* A record: "DLCTUNE1", then vec, mr, nr, kc, mc, nc as little-endian int64 (x86-64 only). */
enum { RECORD_BYTES = 8 + 6 * 8 };

static void record_key(const cg_tuner *t, const cg_gemm_shape *s, uint8_t key[SUP_SHA256_BYTES])
{
    sup_sha256_ctx h;
    sup_cache_key_begin(&h, "gemm tune");
    cg_jit_hash(t->j, &h);     /* LLVM's version, the target, the CPU's name and features */
    const int64_t v[] = {s->M, s->N, s->K, s->rsa, s->csa, s->rsb, s->csb, s->ldc,
                         t->pool ? rt_pool_threads(t->pool) : 1};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        sup_sha256_u64(&h, (uint64_t)v[i]);
    sup_sha256_str(&h, t->quick ? "quick 1" : "full 1");     /* the search space */
    sup_sha256_final(&h, key);
}

/* The record's parameters when it is one and they are valid here. */
static bool read_record(const cg_tuner *t, const void *data, size_t len, cg_gemm_params *p)
{
    if (len != RECORD_BYTES || memcmp(data, "DLCTUNE1", 8))
        return false;
    int64_t v[6];
    memcpy(v, (const char *)data + 8, sizeof v);
    for (int i = 0; i < 6; i++)
        if (v[i] < 1 || v[i] > (1 << 20))
            return false;
    *p = (cg_gemm_params){(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5]};
    cg_gemm_params fixed = *p;
    char err[160];
    return p->vec == t->defaults.vec && cg_gemm_fix_params(&fixed, err, sizeof err) && same_params(&fixed, p);
}

bool cg_tuner_choose(cg_tuner *t, const cg_gemm_shape *s, cg_gemm_params *out, char *err, size_t errlen)
{
    for (int i = 0; i < t->nchoices; i++)
        if (!memcmp(&t->choices[i].s, s, sizeof *s)) {
            *out = t->choices[i].p;
            return true;
        }
    uint8_t key[SUP_SHA256_BYTES];
    record_key(t, s, key);
    void *data = NULL;
    size_t len = 0;
    bool hit = t->cache_dir && sup_cache_get(t->cache_dir, key, &data, &len) && read_record(t, data, len, out);
    sup_free(data);
    if (hit) {
        t->cached++;
        if (t->log) {
            fprintf(t->log, "dlc: autotune gemm ");
            print_shape(t->log, s);
            fprintf(t->log, " on %d threads: ", t->pool ? rt_pool_threads(t->pool) : 1);
            print_params(t->log, out);
            fprintf(t->log, " (cache hit)\n");
        }
    } else {
        if (!search(t, s, out, err, errlen))
            return false;
        t->searched++;
        if (t->cache_dir) {
            unsigned char rec[RECORD_BYTES];
            const int64_t v[6] = {out->vec, out->mr, out->nr, out->kc, out->mc, out->nc};
            memcpy(rec, "DLCTUNE1", 8);
            memcpy(rec + 8, v, sizeof v);
            sup_cache_put(t->cache_dir, key, rec, sizeof rec);
        }
    }
    choice *grown = realloc(t->choices, sizeof *grown * (size_t)(t->nchoices + 1));
    if (grown) {
        t->choices = grown;
        t->choices[t->nchoices++] = (choice){*s, *out};
    }
    return true;
}

bool cg_tuner_tune_exec(cg_tuner *t, cg_exec *e, const cg_program *prog, const int64_t *syms, char *err,
                        size_t errlen)
{
    for (int i = 0; i < prog->nkernels; i++) {
        cg_gemm_shape s;
        cg_gemm_params p;
        cg_gemm *g;
        if (!cg_tune_kernel_shape(prog, &prog->kernels[i], syms, &s))
            continue;
        if (!cg_tuner_choose(t, &s, &p, err, errlen) || !(g = cg_tuner_gemm(t, &p, err, errlen)))
            return false;
        cg_exec_set_gemm(e, i, g);
    }
    return true;
}
