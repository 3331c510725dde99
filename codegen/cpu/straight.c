/* The run-time half of reduce-overhead's straight-line step (see straight.h): the two helpers
 * generated code calls. */
#include "codegen/cpu/straight.h"

void cg_straight_split(cg_straight_env *env, cg_kernel_fn *fn, void **bufs, int64_t rows)
{
    cg_rows_job j = {fn, bufs, env->syms};
    if (env->pool && rt_pool_threads(env->pool) > 1)
        rt_pool_run(env->pool, rows, cg_rows_run, &j);
    else
        cg_rows_run(&j, 0, INT64_MAX, 0);
}

bool cg_straight_kernel(cg_straight_env *env, int64_t kernel, void **bufs)
{
    return cg_exec_run_kernel(env->exec, (int)kernel, bufs, env->syms, env->err, sizeof env->err);
}
