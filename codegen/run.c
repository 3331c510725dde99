/* dlc run --entry (see run.h): reading the inputs and weights, checking them against the
 * signature, running the entry, writing the results. */
#include "codegen/run.h"

#include "codegen/cpu/exec.h"
#include "codegen/report.h"

#include "codegen/cpu/cpu.h"
#include "codegen/ref/interp.h"
#include "passes/autodiff.h"
#include "runtime/init.h"
#include "runtime/npy.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int64_t numel(const dl_type *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= t->dim[i].c;
    return n;
}

static const char *type_text(const dl_type *t, char *buf, size_t n)
{
    ir_type_str(t, buf, n);
    return buf;
}

/* Converts `src` (any dtype) into a new tensor of dtype `to`. Floats to integers are refused:
 * they would lose data silently. */
static bool convert(cg_tensor *src, dl_dtype to, cg_tensor *dst, const char *what, dl_diag *diag)
{
    dl_dtype from = src->type.dtype;
    if (ir_dtype_is_float(from) && !ir_dtype_is_float(to)) {
        sup_diag_error(diag, (dl_loc){0}, "%s holds %s values but needs %s", what,
                       ir_dtype_name(from), ir_dtype_name(to));
        return false;
    }
    dst->type = src->type;
    dst->type.dtype = to;
    int64_t n = numel(&src->type);
    dst->data = sup_malloc((size_t)(n ? n : 1) * (size_t)ir_dtype_size(to));
    if (!dst->data) {
        sup_diag_error(diag, (dl_loc){0}, "out of memory reading %s", what);
        return false;
    }
    for (int64_t i = 0; i < n; i++)
        cg_tensor_set(dst, i, cg_tensor_get(src, i));
    return true;
}

static bool load_input(const dl_func *f, int a, const cg_run_opts *o, cg_tensor *out, dl_diag *diag)
{
    const char *name = f->arginfo[a].name;
    const dl_type *want = &f->args[a]->type;
    char tb[256], hb[256];
    const cg_run_input *in = NULL;
    for (int i = 0; i < o->ninputs; i++)
        if (!strcmp(o->inputs[i].name, name))
            in = &o->inputs[i];
    if (!in) {
        sup_diag_error(diag, (dl_loc){0}, "missing --input %s=FILE.npy for argument '%s' of @%s (%s)",
                       name, name, f->name, type_text(want, tb, sizeof tb));
        return false;
    }
    rt_npy h;
    void *data;
    char err[512];
    if (!rt_npy_read(in->path, &h, &data, err, sizeof err)) {
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
        return false;
    }
    cg_tensor raw = {.type = {.rank = h.rank}, .data = data};
    if (!ir_dtype_from_npy(h.descr, &raw.type.dtype) || h.rank > DL_MAX_RANK) {
        sup_diag_error(diag, (dl_loc){0}, "%s: dtype '%s' is not one dlc reads", in->path, h.descr);
        sup_free(data);
        return false;
    }
    for (int i = 0; i < h.rank; i++)
        raw.type.dim[i] = ir_dim_const(h.shape[i]);
    bool ok = raw.type.rank == want->rank;
    for (int i = 0; ok && i < want->rank; i++)
        ok = want->dim[i].n || want->dim[i].c == raw.type.dim[i].c;
    if (!ok) {
        sup_diag_error(diag, (dl_loc){0}, "%s holds %s, which does not fit argument '%s' (%s)",
                       in->path, type_text(&raw.type, hb, sizeof hb), name,
                       type_text(want, tb, sizeof tb));
        sup_free(data);
        return false;
    }
    char what[600];
    snprintf(what, sizeof what, "%s (argument '%s')", in->path, name);
    ok = convert(&raw, want->dtype, out, what, diag);
    sup_free(data);
    return ok;
}

/* A parameter or buffer from a safetensors file, by name; its shape must be the argument's. */
static bool load_tensor(const char *file, const char *tname, const dl_type *want, const char *path,
                        cg_tensor *out, dl_diag *diag)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    rt_safetensors st;
    char err[512], tb[256], hb[256];
    bool ok = rt_st_read_header(&a, file, &st, err, sizeof err);
    const rt_st_tensor *t = ok ? rt_st_find(&st, tname) : NULL;
    if (!ok)
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
    else if (!t)
        sup_diag_error(diag, (dl_loc){0}, "%s has no tensor '%s' for '%s'", file, tname, path);
    cg_tensor raw = {0};
    if (t) {
        raw.type.rank = t->rank;
        ok = ir_dtype_from_safetensors(t->dtype, &raw.type.dtype) && t->rank <= DL_MAX_RANK;
        if (!ok)
            sup_diag_error(diag, (dl_loc){0}, "%s: tensor '%s' has dtype %s, which dlc does not read",
                           file, tname, t->dtype);
    }
    if (t && ok) {
        for (int i = 0; i < t->rank; i++)
            raw.type.dim[i] = ir_dim_const(t->shape[i]);
        bool same = raw.type.rank == want->rank && numel(&raw.type) == numel(want);
        for (int i = 0; same && i < want->rank; i++)     /* not memcmp: a dl_dim has padding and unused slots */
            same = ir_dim_eq(raw.type.dim[i], want->dim[i]);
        if (!same) {
            dl_type shown = raw.type;
            shown.dtype = want->dtype;
            sup_diag_error(diag, (dl_loc){0}, "%s: tensor '%s' is %s but '%s' is %s", file, tname,
                           type_text(&shown, hb, sizeof hb), path, type_text(want, tb, sizeof tb));
            ok = false;
        }
    }
    if (t && ok) {
        raw.data = sup_malloc(t->end - t->begin ? t->end - t->begin : 1);
        ok = raw.data && rt_st_read_tensor(file, &st, t, raw.data, err, sizeof err);
        if (!ok)
            sup_diag_error(diag, (dl_loc){0}, "%s", raw.data ? err : "out of memory");
        char what[600];
        snprintf(what, sizeof what, "%s ('%s')", file, tname);
        ok = ok && convert(&raw, want->dtype, out, what, diag);
        sup_free(raw.data);
    }
    sup_arena_reset(&a);
    return t && ok;
}

bool cg_run_init(const dl_func *f, int a, const char *weights, uint64_t seed, cg_tensor *out,
                 dl_diag *diag)
{
    const dl_arg_info *info = &f->arginfo[a];
    const dl_type *want = &f->args[a]->type;
    const char *path = info->path ? info->path : info->name;
    if (weights)
        return load_tensor(weights, path, want, path, out, diag);
    char file[1024], tname[512], err[512];
    if (info->init && rt_init_is_load(info->init, file, sizeof file, tname, sizeof tname))
        return load_tensor(file, tname, want, path, out, diag);
    int64_t n = numel(want);
    double *vals = sup_malloc(sizeof(double) * (size_t)(n ? n : 1));
    out->type = *want;
    out->data = sup_malloc((size_t)(n ? n : 1) * (size_t)ir_dtype_size(want->dtype));
    bool ok = vals && out->data;
    if (!ok)
        sup_diag_error(diag, (dl_loc){0}, "out of memory initialising '%s'", path);
    else if (!info->init || !rt_init_fill(info->init, seed, path, vals, n, err, sizeof err)) {
        sup_diag_error(diag, (dl_loc){0}, "%s", info->init ? err : "a parameter without an initializer");
        ok = false;
    }
    for (int64_t i = 0; ok && i < n; i++)
        cg_tensor_set(out, i, vals[i]);
    sup_free(vals);
    return ok;
}

static bool write_result(const char *dir, const char *name, cg_tensor *r, dl_diag *diag)
{
    cg_tensor f32 = {0};
    const char *descr = ir_dtype_npy(r->type.dtype);
    if (!descr) {     /* bf16: npy has no such dtype, so the result is written as f32 */
        if (!convert(r, DL_F32, &f32, "a bf16 result", diag))
            return false;
        r = &f32;
        descr = "<f4";
    }
    int64_t shape[DL_MAX_RANK];
    for (int k = 0; k < r->type.rank; k++)
        shape[k] = r->type.dim[k].c;
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    bool ok = rt_npy_write(path, descr, r->type.rank, shape, r->data, err, sizeof err);
    if (!ok)
        sup_diag_error(diag, (dl_loc){0}, "%s", err);
    sup_free(f32.data);
    return ok;
}

bool cg_run_entry(const dl_func *f, const cg_run_opts *o, dl_diag *diag)
{
    /* Every --input must name an argument. */
    for (int i = 0; i < o->ninputs; i++) {
        bool found = false;
        for (int a = 0; a < f->nargs; a++)
            found |= f->arginfo[a].role == DL_ROLE_INPUT && !strcmp(f->arginfo[a].name, o->inputs[i].name);
        if (!found) {
            sup_diag_error(diag, (dl_loc){0}, "@%s has no input argument named '%s'", f->name,
                           o->inputs[i].name);
            return false;
        }
    }
    if (o->grad && (f->nresults == 0 || f->results[0].type.rank != 0 ||
                    !ir_dtype_is_float(f->results[0].type.dtype))) {
        sup_diag_error(diag, f->loc, "--grad: @%s must return a floating-point scalar first", f->name);
        return false;
    }
    size_t nargs = (size_t)f->nargs + 1, nres = (size_t)f->nresults + 1;
    cg_tensor *args = sup_malloc(nargs * sizeof *args), *res = sup_malloc(nres * sizeof *res);
    bool ok = args && res;
    if (ok) {
        memset(args, 0, nargs * sizeof *args);
        memset(res, 0, nres * sizeof *res);
    } else
        sup_diag_error(diag, (dl_loc){0}, "out of memory");
    for (int a = 0; ok && a < f->nargs; a++)
        ok = f->arginfo[a].role == DL_ROLE_INPUT ? load_input(f, a, o, &args[a], diag)
                                                 : cg_run_init(f, a, o->weights, o->seed, &args[a], diag);
    char err[512] = "";
    if (ok && o->reference)
        ok = cg_ref_run(f, args, res, err, sizeof err);
    else if (ok) {
        cg_cpu_opts co = {o->mode, o->cache_dir, o->time || o->report ? stderr : NULL};
        cg_cpu *p = cg_cpu_compile_opts(f, &co, err, sizeof err);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ok = p && cg_cpu_run(p, args, res, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (p && o->time) {
            double s;
            int ne, nm, nd, nr;
            cg_cpu_stats(p, &s, &ne, &nm, &nd, &nr);
            fprintf(stderr, "dlc: cpu codegen %8.3f ms (%d elementwise, %d matmul/conv, %d reduce/copy, %d reference kernels; "
                    "cache %s)\n"
                    "dlc: run         %8.3f ms\n", 1e3 * s, ne, nm, nd, nr, sup_cache_outcome_name(cg_cpu_cache_outcome(p)),
                    1e3 * (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_nsec - t0.tv_nsec));
        }
        if (p && ok && o->report)
            cg_report_exec(stdout, cg_cpu_exec(p));
        cg_cpu_destroy(p);
    }
    if (args && res && !ok && err[0])
        sup_diag_error(diag, (dl_loc){0}, "@%s: %s", f->name, err);
    if (ok && mkdir(o->output_dir, 0777) && errno != EEXIST) {
        sup_diag_error(diag, (dl_loc){0}, "cannot create '%s': %s", o->output_dir, strerror(errno));
        ok = false;
    }
    /* With --grad the last results are the gradients, one per differentiated argument. */
    int ngrads = 0;
    for (int a = 0; o->grad && a < f->nargs; a++)
        ngrads += pass_grad_wants(f, a);
    int nplain = f->nresults - ngrads;
    for (int i = 0; ok && i < nplain; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d", i);
        ok = write_result(o->output_dir, name, &res[i], diag);
    }
    for (int a = 0, i = nplain; ok && o->grad && a < f->nargs; a++)
        if (pass_grad_wants(f, a)) {
            const dl_arg_info *info = &f->arginfo[a];
            char name[600];
            snprintf(name, sizeof name, "grad_%s", info->path ? info->path : info->name);
            ok = write_result(o->output_dir, name, &res[i++], diag);
        }
    for (int a = 0; args && a < f->nargs; a++)
        sup_free(args[a].data);
    for (int i = 0; res && i < f->nresults; i++)
        cg_tensor_free(&res[i]);
    sup_free(args);
    sup_free(res);
    return ok;
}
