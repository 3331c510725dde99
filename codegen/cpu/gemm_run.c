/* sgemm for the CPU backend (see gemm.h), the run-time half: the BLIS loop nest in C around the
 * micro-kernel that gemm.c generates (JIT-compiled, or compiled into an AOT library). Loops,
 * outermost first: jc over N by NC (a packed B block, shared by the threads), pc over K by KC,
 * then (ic over M by MC) x (column groups of the B block) split across the pool, each thread
 * packing its own A block; inside, jr over NR slivers of B and ir over MR slivers of A call the
 * micro-kernel. No LLVM here. */
#include "codegen/cpu/gemm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALIGN = 64 };

typedef struct thread_scratch {
    _Alignas(ALIGN) float *a;     /* this thread's packed A block, MC x KC */
    int64_t pass, ic;             /* which block a holds, so consecutive items reuse it */
} thread_scratch;

struct cg_gemm {
    cg_gemm_params  p;
    cg_gemm_ukr    *ukr;
    pthread_mutex_t lock;         /* one run at a time owns the buffers below */
    float          *b;            /* the packed B block, KC x NC */
    thread_scratch *ts;
    int             nts;
    int64_t         pass;
    pthread_mutex_t scratch_lock; /* cg_gemm_scratch_acquire's caller owns scratch */
    void           *scratch;
    size_t          scratch_bytes;
};

cg_gemm *cg_gemm_from_kernel(const cg_gemm_params *p, cg_gemm_ukr *ukr, char *err, size_t errlen)
{
    cg_gemm *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->p = *p;
    g->ukr = ukr;
    pthread_mutex_init(&g->lock, NULL);
    pthread_mutex_init(&g->scratch_lock, NULL);
    return g;
}

void cg_gemm_destroy(cg_gemm *g)
{
    if (!g)
        return;
    for (int t = 0; t < g->nts; t++)
        free(g->ts[t].a);
    free(g->ts);
    free(g->b);
    free(g->scratch);
    pthread_mutex_destroy(&g->lock);
    pthread_mutex_destroy(&g->scratch_lock);
    free(g);
}

const cg_gemm_params *cg_gemm_get_params(const cg_gemm *g) { return &g->p; }
cg_gemm_ukr *cg_gemm_get_kernel(const cg_gemm *g) { return g->ukr; }

void *cg_gemm_scratch_acquire(cg_gemm *g, size_t bytes)
{
    pthread_mutex_lock(&g->scratch_lock);
    if (bytes == 0)
        bytes = 1;
    if (bytes > g->scratch_bytes) {
        free(g->scratch);
        g->scratch_bytes = 0;
        size_t rounded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
        if (!(g->scratch = aligned_alloc(ALIGN, rounded))) {
            pthread_mutex_unlock(&g->scratch_lock);
            return NULL;
        }
        g->scratch_bytes = rounded;
    }
    return g->scratch;
}

void cg_gemm_scratch_release(cg_gemm *g) { pthread_mutex_unlock(&g->scratch_lock); }

/* ---- packing and the loop nest ------------------------------------------------------------- */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* B[0:kc, 0:nc] (element (k, j) at B[k * rs + j * cs]) into NR-wide slivers [s][k][NR],
 * zero-padded past nc. Row-major B copies rows; a transposed one (rs == 1) walks its columns. */
static void pack_b(const float *B, int64_t rs, int64_t cs, int64_t kc, int64_t nc, int nr, float *dst,
                   int64_t s0, int64_t s1)
{
    for (int64_t s = s0; s < s1; s++) {
        int64_t j0 = s * nr, w = min64(nr, nc - j0);
        float *d = dst + s * nr * kc;
        if (cs == 1) {
            for (int64_t k = 0; k < kc; k++, d += nr) {
                memcpy(d, B + k * rs + j0, (size_t)w * sizeof *d);
                for (int64_t j = w; j < nr; j++)
                    d[j] = 0;
            }
            continue;
        }
        for (int64_t j = 0; j < nr; j++) {
            const float *src = B + (j0 + j) * cs;
            for (int64_t k = 0; k < kc; k++)
                d[k * nr + j] = j < w ? src[k * rs] : 0;
        }
    }
}

/* A[0:mc, 0:kc] (element (i, k) at A[i * rs + k * cs]) into MR-tall slivers [s][k][MR],
 * zero-padded past mc. */
static void pack_a(const float *A, int64_t rs, int64_t cs, int64_t mc, int64_t kc, int mr, float *dst)
{
    for (int64_t i0 = 0; i0 < mc; i0 += mr, dst += mr * kc) {
        int64_t h = min64(mr, mc - i0);
        if (rs == 1 && cs != 1) {
            for (int64_t k = 0; k < kc; k++) {
                const float *src = A + i0 + k * cs;
                for (int64_t r = 0; r < mr; r++)
                    dst[k * mr + r] = r < h ? src[r] : 0;
            }
            continue;
        }
        for (int64_t r = 0; r < h; r++) {
            const float *src = A + (i0 + r) * rs;
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + r] = src[k * cs];
        }
        for (int64_t r = h; r < mr; r++)
            for (int64_t k = 0; k < kc; k++)
                dst[k * mr + r] = 0;
    }
}

/* One (jc, pc) step's worth of work, shared by the pool's threads. */
typedef struct step {
    cg_gemm     *g;
    const float *A, *B;
    float       *C;
    int64_t      M, rsa, csa, rsb, csb, ldc;
    int64_t      kc, nc, pc, jc;
    int64_t      n_ic, n_jg, slivers;   /* items = n_ic x n_jg; slivers of NR in the B block */
    int64_t      add, pass;
    const cg_gemm_epilogue *epi;        /* run per finished A block (ic) on the last step */
} step;

static void pack_b_task(void *ctx, int64_t s0, int64_t s1, int thread)
{
    (void)thread;
    step *st = ctx;
    pack_b(st->B + st->pc * st->rsb + st->jc * st->csb, st->rsb, st->csb, st->kc, st->nc, st->g->p.nr,
           st->g->b, s0, s1);
}

/* Items are (A block ic, group of B slivers jg), ic-major, so a thread's consecutive items mostly
 * share the A block it has already packed. */
static void compute_task(void *ctx, int64_t it0, int64_t it1, int thread)
{
    step *st = ctx;
    cg_gemm *g = st->g;
    const cg_gemm_params *p = &g->p;
    thread_scratch *ts = &g->ts[thread];
    for (int64_t it = it0; it < it1; it++) {
        int64_t ic = it / st->n_jg, jg = it % st->n_jg;
        int64_t i0 = ic * p->mc, mc = min64(p->mc, st->M - i0);
        if (ts->pass != st->pass || ts->ic != ic) {
            pack_a(st->A + i0 * st->rsa + st->pc * st->csa, st->rsa, st->csa, mc, st->kc, p->mr, ts->a);
            ts->pass = st->pass;
            ts->ic = ic;
        }
        int64_t s0 = st->slivers * jg / st->n_jg, s1 = st->slivers * (jg + 1) / st->n_jg;
        for (int64_t s = s0; s < s1; s++) {
            int64_t j = s * p->nr, n = min64(p->nr, st->nc - j);
            const float *b = g->b + s * p->nr * st->kc;
            float *c = st->C + i0 * st->ldc + st->jc + j;
            for (int64_t i = 0; i < mc; i += p->mr)
                g->ukr(st->kc, ts->a + i * st->kc, b, c + i * st->ldc, st->ldc,
                       min64(p->mr, mc - i), n, st->add);
        }
        if (st->epi)
            st->epi->fn(st->epi->ctx, st->epi->row0 + i0, st->epi->row0 + i0 + mc);
    }
}

/* The epilogue over rows [r0, r1) split across the pool, after the product. */
static void epilogue_task(void *ctx, int64_t r0, int64_t r1, int thread)
{
    (void)thread;
    const cg_gemm_epilogue *epi = ctx;
    epi->fn(epi->ctx, epi->row0 + r0, epi->row0 + r1);
}

/* The buffers are sized for the parameters' full blocks on first use, so they never regrow. */
static bool reserve(cg_gemm *g, int threads)
{
    size_t bbytes = (size_t)g->p.kc * (size_t)g->p.nc * sizeof(float);
    size_t abytes = (size_t)g->p.kc * (size_t)g->p.mc * sizeof(float);
    if (!g->b && !(g->b = aligned_alloc(ALIGN, (bbytes + ALIGN - 1) / ALIGN * ALIGN)))
        return false;
    if (g->nts < threads) {
        thread_scratch *ts = aligned_alloc(ALIGN, sizeof *ts * (size_t)threads);
        if (!ts)
            return false;
        memset(ts, 0, sizeof *ts * (size_t)threads);
        if (g->nts)
            memcpy(ts, g->ts, sizeof *ts * (size_t)g->nts);
        free(g->ts);
        g->ts = ts;
        for (int t = g->nts; t < threads; t++) {
            if (!(ts[t].a = aligned_alloc(ALIGN, (abytes + ALIGN - 1) / ALIGN * ALIGN)))
                return false;
            g->nts = t + 1;
        }
    }
    return true;
}

/* Runs fn on [0, n) on the pool, or inline when it would not pay to wake the workers. */
static void run_on(rt_pool *pool, bool parallel, int64_t n, rt_pool_fn *fn, void *ctx)
{
    if (parallel)
        rt_pool_run(pool, n, fn, ctx);
    else
        fn(ctx, 0, n, 0);
}

bool cg_gemm_run(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc)
{
    return cg_gemm_run_strided(g, pool, M, N, K, A, lda, 1, B, ldb, 1, C, ldc);
}

bool cg_gemm_run_strided(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                         int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                         int64_t ldc)
{
    return cg_gemm_run_epilogue(g, pool, M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, NULL);
}

bool cg_gemm_run_epilogue(cg_gemm *g, rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                          int64_t rsa, int64_t csa, const float *B, int64_t rsb, int64_t csb, float *C,
                          int64_t ldc, const cg_gemm_epilogue *epi)
{
    if (M <= 0 || N <= 0)
        return true;
    if (K <= 0) {
        for (int64_t i = 0; i < M; i++)
            memset(C + i * ldc, 0, (size_t)N * sizeof *C);
        if (epi)
            epi->fn(epi->ctx, epi->row0, epi->row0 + M);
        return true;
    }
    const cg_gemm_params *p = &g->p;
    int threads = pool ? rt_pool_threads(pool) : 1;
    /* Below ~2 MFLOP, waking a second thread costs more than it saves. */
    bool parallel = threads > 1 && (double)M * (double)N * (double)K >= 1e6;
    pthread_mutex_lock(&g->lock);
    if (!reserve(g, threads)) {
        pthread_mutex_unlock(&g->lock);
        return false;
    }
    step st = {.g = g, .A = A, .B = B, .C = C, .M = M, .rsa = rsa, .csa = csa, .rsb = rsb, .csb = csb,
               .ldc = ldc};
    st.n_ic = cdiv(M, p->mc);
    for (int64_t jc = 0; jc < N; jc += p->nc) {
        st.jc = jc;
        st.nc = min64(p->nc, N - jc);
        st.slivers = cdiv(st.nc, p->nr);
        /* Enough items for every thread to have a few, splitting B's columns when M is short. */
        st.n_jg = 1;
        if (parallel && st.n_ic < 4 * threads)
            st.n_jg = min64(st.slivers, cdiv(4 * threads, st.n_ic));
        for (int64_t pc = 0; pc < K; pc += p->kc) {
            st.pc = pc;
            st.kc = min64(p->kc, K - pc);
            st.add = pc > 0;
            st.pass = ++g->pass;
            /* The rows of an A block are final after its last step when it covers all of N. */
            st.epi = epi && jc + st.nc >= N && jc == 0 && st.n_jg == 1 && pc + st.kc >= K ? epi : NULL;
            run_on(pool, parallel, st.slivers, pack_b_task, &st);
            run_on(pool, parallel, st.n_ic * st.n_jg, compute_task, &st);
        }
    }
    pthread_mutex_unlock(&g->lock);
    if (epi && (N > p->nc || st.n_jg > 1))
        run_on(pool, parallel && M > 1, M, epilogue_task, (void *)epi);
    return true;
}
