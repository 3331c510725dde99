/* The training loop of `dlc run FILE.dl` (codegen/train.h). The module's @loss becomes
 * @train_step (passes/train_step.c), which is compiled with @evaluate (validation, no dropout,
 * batch norm on running statistics) by the CPU backend. Parameters, buffers and the optimizer's
 * state live in the step's argument tensors and are updated in place by its `assign`s;
 * @evaluate reads the same tensors. The loop feeds batches from the prefetching batcher
 * (runtime/data.c), keeps the position (epoch, batch, micro-step) that makes --resume exact,
 * and reports through codegen/progress.c.
 *
 * Determinism: batches depend on (seed, epoch) only, dropout's key on (seed, micro-step), the
 * rest is in the checkpointed tensors, so a resumed run repeats an uninterrupted one exactly. */
#include "codegen/train.h"

#include "codegen/cpu/cpu.h"
#include "codegen/cpu/exec.h"
#include "codegen/progress.h"
#include "codegen/report.h"
#include "codegen/run.h"
#include "ir/train.h"
#include "passes/pass.h"
#include "passes/train_step.h"
#include "runtime/data.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "support/philox.h"

#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct compiled {
    dl_func   *f;
    cg_cpu    *p;
    cg_tensor *args;
    int        ix, iy, irng;        /* argument indices of x, y and the RNG key, or -1 */
} compiled;

typedef struct trainer {
    dl_module     *m;
    dl_train      *t;
    const cg_train_opts *o;
    dl_diag       *diag;
    compiled       step, eval;
    rt_dataset     data, vdata;
    bool           has_vdata;
    int64_t       *tidx, ntrain, *vidx, nvalid;
    const rt_dataset *vset;         /* validation samples come from here ... */
    /* Where the run is: the epoch, the next batch in it, micro-steps taken in all. */
    int64_t        epoch, batch, micro;
    double         plateau_best;
    int64_t        plateau_bad;
    const char    *ckpt;            /* the checkpoint's path */
    cg_progress   *prog;
} trainer;

static bool fail(trainer *tr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(trainer *tr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sup_diag_vreport(tr->diag, DL_SEV_ERROR, (dl_loc){0}, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- state ------------------------------------------------------------------------------ */

static bool is_state(const dl_arg_info *info)
{
    return info->path && (!strncmp(info->path, "optim.", 6) || !strncmp(info->path, "train.", 6) ||
                          !strncmp(info->path, "grad_acc.", 9));
}

/* Whether argument `info` of the step belongs to the trained model (what `save` writes): not the
 * batch, not the run's own state, not a frozen model loaded from a file. */
static bool is_model(const dl_arg_info *info)
{
    return info->role != DL_ROLE_INPUT && !is_state(info) && info->path &&
           !(info->init && !strncmp(info->init, "load(", 5));
}

static int find_arg(const dl_func *f, const char *name)
{
    for (int a = 0; a < f->nargs; a++)
        if (!strcmp(f->arginfo[a].name, name))
            return a;
    return -1;
}

/* The step's parameters and buffers, from --weights, initializers or the run's own state
 * (zeros, ones); then the evaluation's arguments alias them by path. */
static bool init_state(trainer *tr)
{
    dl_func *f = tr->step.f;
    for (int a = 0; a < f->nargs; a++) {
        const dl_arg_info *info = &f->arginfo[a];
        if (info->role == DL_ROLE_INPUT)
            continue;
        /* The model's parameters and buffers from --weights; the run's state and frozen models
         * (load()) from their initializers. */
        const char *file = is_model(info) ? tr->o->weights : NULL;
        if (!cg_run_init(f, a, file, tr->t->seed, &tr->step.args[a], tr->diag))
            return false;
    }
    dl_func *e = tr->eval.f;
    for (int a = 0; a < e->nargs; a++) {
        const dl_arg_info *info = &e->arginfo[a];
        if (info->role == DL_ROLE_INPUT)
            continue;
        int k = -1;
        for (int b = 0; b < f->nargs && k < 0; b++)
            if (f->arginfo[b].path && info->path && !strcmp(f->arginfo[b].path, info->path))
                k = b;
        if (k < 0)
            return fail(tr, "@evaluate's '%s' has no counterpart in the training step", info->name);
        tr->eval.args[a] = tr->step.args[k];    /* shares the data */
    }
    return true;
}

static void set_scalar(trainer *tr, const char *path, double v)
{
    int a = find_arg(tr->step.f, path);
    if (a >= 0)
        cg_tensor_set(&tr->step.args[a], 0, v);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

static void type_shape(const dl_type *t, int64_t *shape)
{
    for (int i = 0; i < t->rank; i++)
        shape[i] = t->dim[i].c;
}

/* Writes the step's parameters and buffers (only the model's, or all of them for a checkpoint,
 * with the position) to `path`, atomically (rt_st_writer: temporary file, fsync, rename). */
static bool write_state(trainer *tr, const char *path, bool checkpoint)
{
    char err[600];
    rt_st_writer *w = rt_st_writer_begin(path, err, sizeof err);
    if (!w)
        return fail(tr, "%s", err);
    dl_func *f = tr->step.f;
    int64_t shape[DL_MAX_RANK];
    for (int a = 0; a < f->nargs; a++) {
        const dl_arg_info *info = &f->arginfo[a];
        if (checkpoint ? info->role == DL_ROLE_INPUT : !is_model(info))
            continue;
        const cg_tensor *t = &tr->step.args[a];
        type_shape(&t->type, shape);
        rt_st_writer_add(w, info->path ? info->path : info->name, ir_dtype_safetensors(t->type.dtype),
                         t->type.rank, shape, t->data);
    }
    int64_t pos[3] = {tr->epoch, tr->batch, tr->micro};
    double plateau[2] = {tr->plateau_best, (double)tr->plateau_bad};
    int64_t n3 = 3, n2 = 2;
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)tr->t->seed);
    if (checkpoint) {
        rt_st_writer_add(w, "run.position", "I64", 1, &n3, pos);
        rt_st_writer_add(w, "run.plateau", "F64", 1, &n2, plateau);
        rt_st_writer_add_metadata(w, "format", "dlc checkpoint 1");
        rt_st_writer_add_metadata(w, "seed", seed);
    }
    if (!rt_st_writer_finish(w, err, sizeof err))
        return fail(tr, "%s", err);
    return true;
}

static bool read_exact(trainer *tr, const char *path, const rt_safetensors *st, const char *name,
                       const char *dtype, int64_t numel, void *dst)
{
    const rt_st_tensor *t = rt_st_find(st, name);
    int64_t n = 1;
    for (int i = 0; t && i < t->rank; i++)
        n *= t->shape[i];
    if (!t || strcmp(t->dtype, dtype) || n != numel) {
        return fail(tr, "%s: not a checkpoint of this training run: tensor '%s' is %s", path, name,
                    t ? "of another dtype or size" : "missing");
    }
    char err[600];
    if (!rt_st_read_tensor(path, st, t, dst, err, sizeof err))
        return fail(tr, "%s", err);
    return true;
}

static bool load_checkpoint(trainer *tr, const char *path)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    char err[600];
    bool ok = rt_st_read_header(&a, path, &st, err, sizeof err);
    if (!ok)
        fail(tr, "%s", err);
    dl_func *f = tr->step.f;
    for (int i = 0; ok && i < f->nargs; i++) {
        const dl_arg_info *info = &f->arginfo[i];
        if (info->role == DL_ROLE_INPUT)
            continue;
        cg_tensor *t = &tr->step.args[i];
        int64_t n = 1;
        for (int k = 0; k < t->type.rank; k++)
            n *= t->type.dim[k].c;
        ok = read_exact(tr, path, &st, info->path ? info->path : info->name,
                        ir_dtype_safetensors(t->type.dtype), n, t->data);
    }
    int64_t pos[3];
    double plateau[2];
    ok = ok && read_exact(tr, path, &st, "run.position", "I64", 3, pos) &&
         read_exact(tr, path, &st, "run.plateau", "F64", 2, plateau);
    if (ok && (pos[0] < 0 || pos[1] < 0 || pos[2] < 0 || !(plateau[1] >= 0))) {
        fail(tr, "%s: not a checkpoint of this training run: its position is invalid", path);
        ok = false;
    }
    if (ok) {
        tr->epoch = pos[0];
        tr->batch = pos[1];
        tr->micro = pos[2];
        tr->plateau_best = plateau[0];
        tr->plateau_bad = (int64_t)plateau[1];
    }
    sup_arena_reset(&a);
    return ok;
}

/* ---- running the compiled functions ------------------------------------------------------- */

static bool compile(trainer *tr, compiled *c, const char *name)
{
    c->f = ir_func_find(tr->m, name);
    SUP_ASSERT(c->f);
    char err[600];
    cg_cpu_opts co = {tr->o->mode, tr->o->cache_dir, tr->o->time || tr->o->report ? stderr : NULL};
    c->p = cg_cpu_compile_opts(c->f, &co, err, sizeof err);
    if (!c->p)
        return fail(tr, "@%s: %s", name, err);
    if (tr->o->time) {
        double s;
        int ne, nm, nd, nr;
        cg_cpu_stats(c->p, &s, &ne, &nm, &nd, &nr);
        fprintf(stderr, "dlc: cpu codegen %8.3f ms @%s (%d kernels; cache %s)\n", 1e3 * s, name, ne + nm + nd + nr,
                sup_cache_outcome_name(cg_cpu_cache_outcome(c->p)));
    }
    c->args = sup_malloc(sizeof *c->args * (size_t)(c->f->nargs + 1));
    if (!c->args)
        return fail(tr, "out of memory");
    memset(c->args, 0, sizeof *c->args * (size_t)(c->f->nargs + 1));
    if (tr->o->profile && !cg_cpu_profile(c->p))
        return fail(tr, "out of memory");
    c->ix = find_arg(c->f, "x");
    c->iy = find_arg(c->f, "y");
    c->irng = find_arg(c->f, "rng");
    return true;
}

/* Points x and y at a batch of n samples. */
static void feed(compiled *c, const rt_batch *b, int64_t *key)
{
    if (c->ix >= 0) {
        c->args[c->ix].type = c->f->args[c->ix]->type;
        c->args[c->ix].type.dim[0] = ir_dim_const(b->n);
        c->args[c->ix].data = b->x;
    }
    if (c->iy >= 0) {
        c->args[c->iy].type = c->f->args[c->iy]->type;
        c->args[c->iy].type.dim[0] = ir_dim_const(b->n);
        c->args[c->iy].data = b->y;
    }
    if (c->irng >= 0) {
        c->args[c->irng].type = c->f->args[c->irng]->type;
        c->args[c->irng].data = key;
    }
}

/* Runs c on the batch; results[0..nresults) as f64. */
static bool run(trainer *tr, compiled *c, const rt_batch *b, int64_t key, double *out)
{
    feed(c, b, &key);
    cg_tensor res[72];
    char err[600];
    SUP_ASSERT(c->f->nresults <= 72);
    if (!cg_cpu_run(c->p, c->args, res, err, sizeof err))
        return fail(tr, "@%s: %s", c->f->name, err);
    for (int i = 0; i < c->f->nresults; i++) {
        out[i] = cg_tensor_get(&res[i], 0);
        cg_tensor_free(&res[i]);
    }
    return true;
}

/* Loss and metrics of @evaluate over the validation samples, averaged per sample. */
static bool validate(trainer *tr, double *avg)
{
    int n = tr->eval.f->nresults;
    for (int i = 0; i < n; i++)
        avg[i] = 0;
    char err[600];
    rt_batcher *b = rt_batcher_create(tr->vset, tr->vidx, tr->nvalid, tr->t->batch, false, 0, 0, 0, 2,
                                      err, sizeof err);
    if (!b)
        return fail(tr, "%s", err);
    rt_batch batch;
    double r[72];
    int64_t seen = 0;
    bool ok = true;
    while (ok && rt_batcher_next(b, &batch)) {
        ok = run(tr, &tr->eval, &batch, 0, r);
        for (int i = 0; ok && i < n; i++)
            avg[i] += r[i] * (double)batch.n;
        seen += batch.n;
    }
    rt_batcher_destroy(b);
    for (int i = 0; i < n && seen; i++)
        avg[i] /= (double)seen;
    return ok;
}

/* ReduceLROnPlateau (mode min, threshold 1e-4 relative, no cooldown) on the validation loss. */
static void plateau(trainer *tr, double loss)
{
    if (tr->t->sched.kind != DL_SCHED_PLATEAU)
        return;
    if (loss < tr->plateau_best * (1 - 1e-4)) {
        tr->plateau_best = loss;
        tr->plateau_bad = 0;
    } else if (++tr->plateau_bad > tr->t->sched.patience) {
        int a = find_arg(tr->step.f, "train.lr_scale");
        cg_tensor_set(&tr->step.args[a], 0, cg_tensor_get(&tr->step.args[a], 0) * tr->t->sched.factor);
        tr->plateau_bad = 0;
    }
}

/* ---- data -------------------------------------------------------------------------------- */

static rt_data_spec spec_of(const dl_train_data *d)
{
    static const rt_data_kind kinds[] = {
        [DL_DATA_CSV] = RT_DATA_CSV, [DL_DATA_NPY] = RT_DATA_NPY, [DL_DATA_MNIST] = RT_DATA_MNIST,
        [DL_DATA_SAFETENSORS] = RT_DATA_SAFETENSORS, [DL_DATA_TEXT] = RT_DATA_TEXT};
    return (rt_data_spec){kinds[d->kind], d->path, d->path_y, d->x_name, d->y_name, d->label,
                          d->scale, d->header, d->context};
}

static bool load_data(trainer *tr)
{
    char err[600];
    rt_data_spec s = spec_of(&tr->t->data);
    if (!rt_data_load(&s, &tr->data, err, sizeof err))
        return fail(tr, "%s", err);
    tr->vset = &tr->data;
    if (tr->t->has_valid_data) {
        rt_data_spec v = spec_of(&tr->t->valid_data);
        if (!rt_data_load(&v, &tr->vdata, err, sizeof err))
            return fail(tr, "%s", err);
        tr->has_vdata = true;
        tr->vset = &tr->vdata;
        tr->tidx = sup_malloc(sizeof *tr->tidx * (size_t)(tr->data.n + 1));
        tr->vidx = sup_malloc(sizeof *tr->vidx * (size_t)(tr->vdata.n + 1));
        if (!tr->tidx || !tr->vidx)
            return fail(tr, "out of memory");
        for (int64_t i = 0; i < tr->data.n; i++)
            tr->tidx[i] = i;
        for (int64_t i = 0; i < tr->vdata.n; i++)
            tr->vidx[i] = i;
        tr->ntrain = tr->data.n;
        tr->nvalid = tr->vdata.n;
        return true;
    }
    if (!rt_data_split(tr->data.n, tr->t->valid, tr->t->seed, &tr->tidx, &tr->ntrain, &tr->vidx,
                       &tr->nvalid, err, sizeof err))
        return fail(tr, "%s", err);
    if (tr->ntrain == 0)
        return fail(tr, "%s: no training samples left after holding out the validation set",
                    tr->t->data.path);
    return true;
}

static void free_data(trainer *tr)
{
    rt_data_free(&tr->data);
    if (tr->has_vdata)
        rt_data_free(&tr->vdata);
    sup_free(tr->tidx);
    sup_free(tr->vidx);
}

/* The samples of `d` must be what the step was compiled for (the frontend typed the batch from
 * the same files; a validation source must match the training one). */
static bool check_samples(trainer *tr, const rt_dataset *d, const char *path)
{
    const dl_func *f = tr->step.f;
    int idx[2] = {tr->step.ix, tr->step.iy};
    const char *dt[2] = {d->x_dtype, d->y_dtype};
    const int64_t *shape[2] = {d->x_shape, d->y_shape};
    int rank[2] = {d->x_rank, d->y_rank};
    for (int k = 0; k < 2; k++) {
        if (idx[k] < 0)
            continue;
        const dl_type *t = &f->args[idx[k]]->type;
        bool ok = !strcmp(ir_dtype_safetensors(t->dtype), dt[k]) && t->rank == rank[k] + 1;
        for (int i = 0; ok && i < rank[k]; i++)
            ok = ir_dim_is_const(t->dim[i + 1]) && t->dim[i + 1].c == shape[k][i];
        if (!ok) {
            char tb[128];
            ir_type_str(t, tb, sizeof tb);
            return fail(tr, "%s: its samples do not fit the batch the model was compiled for (%s)", path, tb);
        }
    }
    return true;
}

/* ---- the loop ---------------------------------------------------------------------------- */

/* Batches per epoch and optimizer steps in the run (the schedule's length); with epochs every
 * batch runs, a last incomplete accumulation included (its gradients are never applied, as in a
 * PyTorch loop). */
static void run_length(const dl_train *t, int64_t ntrain, int64_t *nb, int64_t *total)
{
    *nb = (ntrain + t->batch - 1) / t->batch;
    *total = t->steps ? t->steps : t->epochs * *nb / t->accumulate;
    if (*total < 1)
        *total = 1;
}

static bool train_loop(trainer *tr, bool *interrupted)
{
    const dl_train *t = tr->t;
    int64_t nb, total;
    run_length(t, tr->ntrain, &nb, &total);
    int64_t micro_total = t->steps ? total * t->accumulate : t->epochs * nb;
    int64_t epochs = t->steps ? (micro_total + nb - 1) / nb : t->epochs;
    set_scalar(tr, "train.total", (double)total);
    int nres = tr->step.f->nresults, nmet = t->nmetrics;
    double r[72], v[72];
    char err[600];
    tr->prog = cg_progress_create(tr->o->quiet, tr->o->log, tr->o->resume != NULL, epochs, nb, nmet,
                                  t->metric_names, err, sizeof err);
    if (!tr->prog)
        return fail(tr, "%s", err);
    bool ok = true;
    int64_t done = 0;
    while (ok && tr->epoch < epochs && tr->micro < micro_total) {
        rt_batcher *b = rt_batcher_create(&tr->data, tr->tidx, tr->ntrain, t->batch, t->shuffle,
                                          t->seed, tr->epoch, tr->batch, 4, err, sizeof err);
        if (!b)
            return fail(tr, "%s", err);
        cg_progress_epoch_begin(tr->prog, tr->epoch, tr->batch);
        rt_batch batch;
        while (ok && tr->micro < micro_total && rt_batcher_next(b, &batch)) {
            ok = run(tr, &tr->step, &batch, sup_dropout_key(t->seed, tr->micro), r);
            if (!ok)
                break;
            tr->micro++;
            tr->batch = batch.index + 1;
            int64_t opt_step = tr->micro / t->accumulate;
            cg_progress_step(tr->prog, tr->epoch, tr->batch, opt_step, batch.n, r[0], r + 1,
                             r[nres - 2], r[nres - 1]);
            if (tr->o->interrupt_after && ++done == tr->o->interrupt_after)
                stop_requested = 1;
            if (stop_requested)
                break;
        }
        rt_batcher_destroy(b);
        if (!ok)
            break;
        if (stop_requested) {
            *interrupted = true;
            ok = write_state(tr, tr->ckpt, true);
            cg_progress_finish(tr->prog);
            fprintf(stderr, "dlc: interrupted at epoch %lld, batch %lld; checkpoint saved to %s "
                    "(continue with --resume %s)\n", (long long)tr->epoch + 1, (long long)tr->batch,
                    tr->ckpt, tr->ckpt);
            return false;
        }
        if (tr->batch < nb && tr->micro >= micro_total)
            break;       /* --steps ended inside the epoch */
        /* The epoch is over: validate, adapt, report, checkpoint. */
        ok = tr->nvalid == 0 || validate(tr, v);
        if (ok && tr->nvalid)
            plateau(tr, v[0]);
        if (ok)
            cg_progress_epoch_end(tr->prog, tr->epoch, tr->nvalid ? v : NULL);
        tr->epoch++;
        tr->batch = 0;
        if (ok && t->checkpoint_every && tr->epoch % t->checkpoint_every == 0)
            ok = write_state(tr, tr->ckpt, true);
    }
    cg_progress_finish(tr->prog);
    return ok;
}

bool cg_train_length(const dl_train *t, int64_t *batches, int64_t *total, dl_diag *diag)
{
    trainer tr = {.t = (dl_train *)t, .diag = diag};   /* load_data only reads it */
    bool ok = load_data(&tr);
    if (ok)
        run_length(t, tr.ntrain, batches, total);
    free_data(&tr);
    return ok;
}

bool cg_train_supported(const dl_train *t, dl_diag *diag)
{
    bool mixed = strcmp(t->precision, "fp32") != 0;
    const char *later = mixed ? "mixed precision" : t->quantize ? "quantization-aware training"
                      : t->auto_checkpoint ? "automatic recomputation under a memory budget" : NULL;
    if (later)
        sup_diag_error(diag, mixed ? t->precision_at : t->quantize ? t->quantize_at : t->checkpoint_at,
                       "%s is not supported by this version of 'dlc run' yet; remove the setting "
                       "to train in fp32 with every activation kept", later);
    return !later;
}

bool cg_train_run(dl_module *m, const cg_train_opts *o, bool *interrupted, dl_diag *diag)
{
    *interrupted = false;
    dl_train *t = m->train;
    if (!t) {
        sup_diag_error(diag, (dl_loc){0}, "the file has no train block (run one function with --entry NAME)");
        return false;
    }
    if (!cg_train_supported(t, diag))
        return false;
    if (o->epochs > 0) {
        t->epochs = o->epochs;
        t->steps = 0;
    }
    if (o->steps > 0)
        t->steps = o->steps;
    if (o->seed_set)
        t->seed = o->seed;
    trainer tr = {.m = m, .t = t, .o = o, .diag = diag, .plateau_best = 1e300};
    /* Until the memory planner gives each step one arena, buffers are allocated per call: keep
     * glibc from returning them to the kernel after every step (fresh pages fault in again). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    /* The step, then the same optimizations as every compiled function. */
    dl_pass_opts popts = {.time_passes = o->time, .print_after = o->print_after};
    bool ok = pass_train_step(m, diag) && cg_mode_optimize(m, o->mode, true, &popts, diag);
    ok = ok && load_data(&tr) && compile(&tr, &tr.step, "train_step") && compile(&tr, &tr.eval, "evaluate");
    ok = ok && check_samples(&tr, &tr.data, t->data.path) &&
         (!tr.has_vdata || check_samples(&tr, &tr.vdata, t->valid_data.path));
    ok = ok && init_state(&tr);
    if (ok) {
        const char *base = t->save ? t->save : "model.safetensors";
        size_t n = strlen(base);
        if (n > 12 && !strcmp(base + n - 12, ".safetensors"))
            n -= 12;
        tr.ckpt = sup_arena_printf(&m->arena, "%.*s.checkpoint.safetensors", (int)n, base);
    }
    if (ok && o->resume)
        ok = load_checkpoint(&tr, o->resume);
    struct sigaction sa = {.sa_handler = on_sigint}, old;
    sigemptyset(&sa.sa_mask);
    stop_requested = 0;
    sigaction(SIGINT, &sa, &old);
    ok = ok && train_loop(&tr, interrupted);
    sigaction(SIGINT, &old, NULL);
    if (ok && t->checkpoint_every)
        ok = write_state(&tr, tr.ckpt, true);
    if (ok && t->save) {
        ok = write_state(&tr, t->save, false);
        if (ok && !o->quiet)
            fprintf(stderr, "dlc: saved %s\n", t->save);
    }
    if (ok && o->report && tr.step.p) {      /* the step, then evaluation when it ran */
        cg_report_exec(stdout, cg_cpu_exec(tr.step.p));
        if (tr.eval.p)
            cg_report_exec(stdout, cg_cpu_exec(tr.eval.p));
    }
    if (o->time) {
        cg_cpu_mode_summary(tr.step.p, stderr);
        cg_cpu_mode_summary(tr.eval.p, stderr);
    }
    if (o->profile && tr.step.p) {
        cg_cpu_profile_report(tr.step.p, stderr, 15);
        cg_cpu_profile_report(tr.eval.p, stderr, 5);
    }
    cg_progress_destroy(tr.prog);
    for (int a = 0; tr.step.args && a < tr.step.f->nargs; a++)
        if (tr.step.f->arginfo[a].role != DL_ROLE_INPUT)
            sup_free(tr.step.args[a].data);
    sup_free(tr.step.args);
    sup_free(tr.eval.args);
    cg_cpu_destroy(tr.step.p);
    cg_cpu_destroy(tr.eval.p);
    free_data(&tr);
    return ok;
}
