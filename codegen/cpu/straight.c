/* The run-time half of reduce-overhead's straight-line step (see straight.h): the two helpers
 * generated code calls. */
#include "codegen/cpu/straight.h"

typedef struct split_job {
    cg_kernel_fn  *fn;
    void         **bufs;
    const int64_t *syms;
} split_job;

static void split_rows(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    const split_job *j = ctx;
    int64_t status[4] = {CG_STATUS_OK};     /* elementwise kernels meet no bad data */
    j->fn(j->bufs, j->syms, status, begin, end);
}

void cg_straight_split(cg_straight_env *env, cg_kernel_fn *fn, void **bufs, int64_t rows)
{
    split_job j = {fn, bufs, env->syms};
    if (env->pool && rt_pool_threads(env->pool) > 1)
        rt_pool_run(env->pool, rows, split_rows, &j);
    else
        split_rows(&j, 0, INT64_MAX, 0);
}

bool cg_straight_kernel(cg_straight_env *env, int64_t kernel, void **bufs)
{
    return cg_exec_run_kernel(env->exec, (int)kernel, bufs, env->syms, env->err, sizeof env->err);
}
