/* The run time of an AOT library (see model.h): an instance's functions and tensors, argument
 * checking, weights and checkpoints. Every entry checks what it is given and returns a status
 * with a message in the instance; nothing the caller passes may crash it. */
#include "codegen/aot/model.h"

#include "runtime/init.h"
#include "runtime/safetensors.h"
#include "support/alloc.h"
#include "support/diag.h"
#include "support/philox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct entry {
    dl_func    *f;
    cg_program *prog;
    cg_exec    *exec;
    cg_tensor  *args;             /* per argument; state tensors are shared between entries */
    int         ninputs, inputs[CG_AOT_MAX_INPUTS];
    int         nsyms;
    const char *syms[CG_AOT_MAX_SYMS];
    int         rng;              /* the RNG key argument, or -1 */
    void       *outs[CG_AOT_MAX_RESULTS];  /* the results' storage when all are static (the
                                            * training step's scalars): no allocation per call */
} entry;

struct cg_aot_model {
    const cg_aot_desc *d;
    sup_arena          arena;     /* the plans */
    dl_module         *ir;
    cg_gemm           *gemm;
    cg_gemm          **variants;  /* max-autotune: per d->gemm_params row */
    rt_pool           *pool;
    entry              fwd, step; /* step.f is NULL without a train block */
    entry             *state;     /* the entry whose arguments own the tensors: step, else fwd */
    int64_t            micro;     /* micro-steps taken: dropout keys, checkpoint positions */
    char               error[1024];
};

static int fail(cg_aot_model *m, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(cg_aot_model *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->error, sizeof m->error, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- shared with the compiler ------------------------------------------------------------ */

cg_program *cg_aot_plan(const dl_func *f, bool fuse, const char *prefix, sup_arena *a)
{
    cg_program *p = cg_program_build(f, fuse, a);
    for (int i = 0; i < p->nkernels; i++)
        p->kernels[i].name = sup_arena_printf(a, "%s_%s_%s", prefix, f->name, p->kernels[i].name);
    return p;
}

/* The training step's dropout key (passes/train_step.c names it). */
static bool is_rng(const dl_func *f, int a)
{
    return !strcmp(f->name, "train_step") && !strcmp(f->arginfo[a].name, "rng");
}

int cg_aot_inputs(const dl_func *f, int *out, int max)
{
    int n = 0;
    for (int a = 0; a < f->nargs; a++)
        if (f->arginfo[a].role == DL_ROLE_INPUT && !is_rng(f, a)) {
            if (n < max)
                out[n] = a;
            n++;
        }
    return n;
}

int cg_aot_symbols(const dl_func *f, const char **out, int max)
{
    const char *all[DL_MAX_RANK * DL_DIM_MAXSYM * 4];
    int n = 0;
    for (int a = 0; a < f->nargs; a++) {
        const dl_type *t = &f->args[a]->type;
        for (int d = 0; f->arginfo[a].role == DL_ROLE_INPUT && !is_rng(f, a) && d < t->rank; d++)
            for (int k = 0; k < t->dim[d].n; k++) {
                bool seen = false;
                for (int s = 0; s < n; s++)
                    seen |= !strcmp(all[s], t->dim[d].sym[k]);
                if (!seen && n < (int)(sizeof all / sizeof *all))
                    all[n++] = t->dim[d].sym[k];
            }
    }
    for (int s = 0; s < n && s < max; s++)
        out[s] = all[s];
    return n;
}

bool cg_aot_is_model(const dl_arg_info *info)
{
    const char *p = info->path;
    return info->role != DL_ROLE_INPUT && p && strncmp(p, "optim.", 6) && strncmp(p, "train.", 6) &&
           strncmp(p, "grad_acc.", 9) && !(info->init && !strncmp(info->init, "load(", 5));
}

/* ---- types and tensors ------------------------------------------------------------------- */

static const char *path_of(const dl_arg_info *info) { return info->path ? info->path : info->name; }

/* t with its symbols' values (at most 2^62 bytes: larger is refused before anything is read). */
static bool concrete(const entry *e, const dl_type *t, const int64_t *syms, dl_type *out)
{
    *out = *t;
    int64_t bytes = ir_dtype_size(t->dtype);
    for (int d = 0; d < t->rank; d++) {
        int64_t v = t->dim[d].c;
        for (int k = 0; k < t->dim[d].n; k++) {
            int s = 0;
            while (s < e->nsyms && strcmp(e->syms[s], t->dim[d].sym[k]))
                s++;
            if (s == e->nsyms || __builtin_mul_overflow(v, syms[s], &v))
                return false;
        }
        if (__builtin_mul_overflow(bytes, v, &bytes) || bytes > ((int64_t)1 << 62))
            return false;
        out->dim[d] = ir_dim_const(v);
    }
    return true;
}

static int64_t numel(const dl_type *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= t->dim[d].c;
    return n;
}

/* ---- create ------------------------------------------------------------------------------ */

/* -O max-autotune: the products and convolutions tuned get their gemm; -O reduce-overhead: the
 * straight-line step for the shapes it was made for (codegen/aot/special.h). */
static int specialize(cg_aot_model *m, entry *e, const char *name)
{
    const cg_aot_desc *d = m->d;
    for (int64_t t = 0; t < d->ntuned; t++)
        for (int i = 0; i < e->prog->nkernels; i++)
            if (!strcmp(e->prog->kernels[i].name, d->tuned[t]) && d->tuned_variant[t] >= 0 &&
                d->tuned_variant[t] < d->ngemms && m->variants)
                cg_exec_set_gemm(e->exec, i, m->variants[d->tuned_variant[t]]);
    for (int64_t s = 0; s < d->nstraight; s++) {
        char err[256];
        if (strcmp(d->straight_funcs[s], name) || e->prog->nsyms > CG_AOT_MAX_SYMS)
            continue;
        if (!cg_exec_set_straight(e->exec, d->straight_syms + s * CG_AOT_MAX_SYMS, d->straight_fns[s], err,
                                  sizeof err))
            return fail(m, CG_AOT_ERR_MEMORY, "%s", err);
    }
    return CG_AOT_OK;
}

static int make_entry(cg_aot_model *m, entry *e, const char *name)
{
    e->rng = -1;
    e->f = ir_func_find(m->ir, name);
    if (!e->f)
        return CG_AOT_OK;
    e->ninputs = cg_aot_inputs(e->f, e->inputs, CG_AOT_MAX_INPUTS);
    e->nsyms = cg_aot_symbols(e->f, e->syms, CG_AOT_MAX_SYMS);
    for (int a = 0; a < e->f->nargs; a++)
        if (e->f->arginfo[a].role == DL_ROLE_INPUT && is_rng(e->f, a))
            e->rng = a;
    if (e->ninputs > CG_AOT_MAX_INPUTS || e->nsyms > CG_AOT_MAX_SYMS)
        return fail(m, CG_AOT_ERR_FORMAT, "@%s has too many inputs or dimensions", name);
    e->prog = cg_aot_plan(e->f, m->d->fuse != 0, m->d->name, &m->arena);
    cg_kernel_fn **fns = calloc((size_t)e->prog->nkernels + 1, sizeof *fns);
    e->args = calloc((size_t)e->f->nargs + 1, sizeof *e->args);
    if (!fns || !e->args) {
        free(fns);
        return fail(m, CG_AOT_ERR_MEMORY, "out of memory");
    }
    for (int i = 0; i < e->prog->nkernels; i++) {
        const char *kn = e->prog->kernels[i].name;
        for (int64_t k = 0; k < m->d->nkernels && !fns[i]; k++)
            if (!strcmp(m->d->knames[k], kn))
                fns[i] = m->d->kfns[k];
    }
    bool fixed = e->f->nresults <= CG_AOT_MAX_RESULTS;
    const dl_op *ret = e->f->last;
    for (int r = 0; fixed && r < e->f->nresults; r++)
        fixed = ir_type_is_static(&ret->in[r]->type);
    for (int r = 0; fixed && r < e->f->nresults; r++) {
        const dl_type *t = &ret->in[r]->type;
        int64_t n = ir_dtype_size(t->dtype);
        for (int d = 0; d < t->rank; d++)
            n *= t->dim[d].c;
        if (!(e->outs[r] = calloc(1, (size_t)(n ? n : 1)))) {
            free(fns);
            return fail(m, CG_AOT_ERR_MEMORY, "out of memory");
        }
    }
    char err[512];
    e->exec = cg_exec_create(e->prog, fns, m->gemm, m->pool, err, sizeof err);
    free(fns);
    if (!e->exec)
        return fail(m, CG_AOT_ERR_MEMORY, "@%s: %s (is the library intact?)", name, err);
    return specialize(m, e, name);
}

/* A safetensors image: the embedded one, or a file mapped into memory. */
typedef struct image {
    const unsigned char *data;
    uint64_t             size;
    void                *map;
    sup_arena            arena;
    rt_safetensors       st;
} image;

static int open_image(cg_aot_model *m, const char *path, image *im)
{
    memset(im, 0, sizeof *im);
    sup_arena_init(&im->arena, NULL);
    if (!path) {
        im->data = m->d->weights;
        im->size = (uint64_t)m->d->weights_len;
        path = "the embedded weights";
    } else {
        int fd = open(path, O_RDONLY);
        struct stat sb;
        if (fd < 0)
            return fail(m, CG_AOT_ERR_FILE, "%s: %s", path, strerror(errno));
        if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
            close(fd);
            return fail(m, CG_AOT_ERR_FILE, "%s: not a regular file", path);
        }
        im->size = (uint64_t)sb.st_size;
        im->map = im->size ? mmap(NULL, im->size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        close(fd);
        if (im->map == MAP_FAILED) {
            im->map = NULL;
            return fail(m, CG_AOT_ERR_FILE, "%s: %s", path, strerror(errno));
        }
        im->data = im->map;
    }
    char err[600];
    if (!rt_st_parse(&im->arena, path, im->data, im->size, &im->st, err, sizeof err))
        return fail(m, CG_AOT_ERR_FORMAT, "%s", err);
    return CG_AOT_OK;
}

static void close_image(image *im)
{
    if (im->map)
        munmap(im->map, im->size);
    sup_arena_reset(&im->arena);
}

/* Copies tensor `name` of the image into t, which must have its dtype and shape. */
static int read_tensor(cg_aot_model *m, const image *im, const char *file, const char *name, cg_tensor *t)
{
    const rt_st_tensor *s = rt_st_find(&im->st, name);
    if (!s)
        return fail(m, CG_AOT_ERR_FORMAT, "%s: no tensor '%s'", file, name);
    bool ok = !strcmp(s->dtype, ir_dtype_safetensors(t->type.dtype)) && s->rank == t->type.rank;
    for (int d = 0; ok && d < s->rank; d++)
        ok = s->shape[d] == t->type.dim[d].c;
    if (!ok) {
        char want[128], got[160] = "";
        ir_type_str(&t->type, want, sizeof want);
        int n = snprintf(got, sizeof got, "%s[", s->dtype);
        for (int d = 0; d < s->rank && n < (int)sizeof got - 24; d++)
            n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", d ? ", " : "", (long long)s->shape[d]);
        snprintf(got + n, sizeof got - (size_t)n, "]");
        return fail(m, CG_AOT_ERR_FORMAT, "%s: tensor '%s' is %s, the model wants %s", file, name, got, want);
    }
    memcpy(t->data, im->data + im->st.data_start + s->begin, s->end - s->begin);
    return CG_AOT_OK;
}

/* Fills the state tensors: the model's from `weights` (or the embedded image), the others from
 * the embedded image when it has them (the run's scalars, frozen models), else their
 * initializers (the optimizer's zeros). */
static int init_state(cg_aot_model *m, const char *weights)
{
    image emb, user = {0};
    sup_arena_init(&user.arena, NULL);
    int rc = open_image(m, NULL, &emb);
    if (rc == CG_AOT_OK && weights)
        rc = open_image(m, weights, &user);
    if (rc == CG_AOT_OK && !weights && m->d->external)
        rc = fail(m, CG_AOT_ERR_ARGUMENT, "this library was compiled with --external-weights: "
                  "name the weights file");
    const dl_func *f = m->state->f;
    for (int a = 0; rc == CG_AOT_OK && a < f->nargs; a++) {
        const dl_arg_info *info = &f->arginfo[a];
        if (info->role == DL_ROLE_INPUT)
            continue;
        cg_tensor *t = &m->state->args[a];
        const char *path = path_of(info);
        if (cg_aot_is_model(info)) {
            rc = read_tensor(m, weights ? &user : &emb, weights ? weights : "the embedded weights", path, t);
        } else if (rt_st_find(&emb.st, path)) {
            rc = read_tensor(m, &emb, "the embedded weights", path, t);
        } else {
            int64_t n = numel(&t->type);
            double *vals = sup_malloc(sizeof *vals * (size_t)(n ? n : 1));
            char err[512];
            if (!vals)
                rc = fail(m, CG_AOT_ERR_MEMORY, "out of memory");
            else if (!info->init || !rt_init_fill(info->init, (uint64_t)m->d->seed, path, vals, n, err, sizeof err))
                rc = fail(m, CG_AOT_ERR_FORMAT, "'%s': %s", path, info->init ? err : "no initial value");
            for (int64_t i = 0; rc == CG_AOT_OK && i < n; i++)
                cg_tensor_set(t, i, vals[i]);
            sup_free(vals);
        }
    }
    close_image(&emb);
    close_image(&user);
    return rc;
}

/* The state entry's tensors, and the other entry's arguments pointing at them by path. */
static int alloc_state(cg_aot_model *m)
{
    entry *s = m->state;
    for (int a = 0; a < s->f->nargs; a++) {
        if (s->f->arginfo[a].role == DL_ROLE_INPUT)
            continue;
        const dl_type *t = &s->f->args[a]->type;
        if (!ir_type_is_static(t))
            return fail(m, CG_AOT_ERR_FORMAT, "'%s' has a symbolic shape", path_of(&s->f->arginfo[a]));
        s->args[a].type = *t;
        size_t bytes = (size_t)(numel(t) * ir_dtype_size(t->dtype));
        if (!(s->args[a].data = sup_malloc(bytes ? bytes : 1)))
            return fail(m, CG_AOT_ERR_MEMORY, "out of memory");
    }
    entry *o = m->state == &m->step ? &m->fwd : NULL;
    for (int a = 0; o && a < o->f->nargs; a++) {
        const dl_arg_info *info = &o->f->arginfo[a];
        if (info->role == DL_ROLE_INPUT)
            continue;
        int k = -1;
        for (int b = 0; b < s->f->nargs && k < 0; b++)
            if (s->f->arginfo[b].role != DL_ROLE_INPUT && !strcmp(path_of(&s->f->arginfo[b]), path_of(info)))
                k = b;
        if (k < 0)
            return fail(m, CG_AOT_ERR_FORMAT, "@forward's '%s' is not in the training step", path_of(info));
        o->args[a] = s->args[k];
    }
    return CG_AOT_OK;
}

static int setup(cg_aot_model *m, const char *weights)
{
    const cg_aot_desc *d = m->d;
    char *text = NULL;
    size_t len = 0;
    FILE *msgs = open_memstream(&text, &len);
    dl_diag *diag = msgs ? sup_diag_create(msgs) : NULL;
    if (diag)
        m->ir = ir_parse("library", d->ir, (size_t)d->ir_len, diag);
    sup_diag_destroy(diag);
    if (msgs)
        fclose(msgs);
    if (!m->ir) {
        int rc = fail(m, diag ? CG_AOT_ERR_FORMAT : CG_AOT_ERR_MEMORY, "the library's IR does not parse: %s",
                      text ? text : "out of memory");
        free(text);
        return rc;
    }
    free(text);
    char err[512];
    if (d->ukr) {
        cg_gemm_params p = {(int)d->gemm[0], (int)d->gemm[1], (int)d->gemm[2], (int)d->gemm[3],
                            (int)d->gemm[4], (int)d->gemm[5]};
        if (!(m->gemm = cg_gemm_from_kernel(&p, d->ukr, err, sizeof err)) ||
            !(m->pool = rt_pool_create(0, err, sizeof err)))
            return fail(m, CG_AOT_ERR_MEMORY, "%s", err);
        if (d->ngemms && !(m->variants = calloc((size_t)d->ngemms, sizeof *m->variants)))
            return fail(m, CG_AOT_ERR_MEMORY, "out of memory");
        for (int64_t v = 0; v < d->ngemms; v++) {
            const int64_t *q = d->gemm_params + 6 * v;
            cg_gemm_params vp = {(int)q[0], (int)q[1], (int)q[2], (int)q[3], (int)q[4], (int)q[5]};
            if (!(m->variants[v] = cg_gemm_from_kernel(&vp, d->gemm_ukrs[v], err, sizeof err)))
                return fail(m, CG_AOT_ERR_MEMORY, "%s", err);
        }
    }
    int rc = make_entry(m, &m->fwd, "forward");
    if (rc == CG_AOT_OK)
        rc = make_entry(m, &m->step, "train_step");
    if (rc == CG_AOT_OK && !m->fwd.f)
        return fail(m, CG_AOT_ERR_FORMAT, "the library has no @forward");
    m->state = m->step.f ? &m->step : &m->fwd;
    if (rc == CG_AOT_OK)
        rc = alloc_state(m);
    return rc == CG_AOT_OK ? init_state(m, weights) : rc;
}

/* The first extension the kernels may use that this CPU lacks, or NULL. */
static const char *missing_isa(int64_t isa)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
#define NEED(bit, name) if ((isa & (bit)) && !__builtin_cpu_supports(name)) return name
    NEED(CG_AOT_ISA_SSE42, "sse4.2");
    NEED(CG_AOT_ISA_AVX, "avx");
    NEED(CG_AOT_ISA_AVX2, "avx2");
    NEED(CG_AOT_ISA_FMA, "fma");
    NEED(CG_AOT_ISA_BMI2, "bmi2");
    NEED(CG_AOT_ISA_AVX512F, "avx512f");
    NEED(CG_AOT_ISA_AVX512BW, "avx512bw");
    NEED(CG_AOT_ISA_AVX512DQ, "avx512dq");
    NEED(CG_AOT_ISA_AVX512VL, "avx512vl");
    NEED(CG_AOT_ISA_AVX512CD, "avx512cd");
#undef NEED
#endif
    (void)isa;
    return NULL;
}

cg_aot_model *cg_aot_create(const cg_aot_desc *d, const char *weights, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    if (!d || d->version != CG_AOT_VERSION) {
        if (err)
            snprintf(err, errlen, "the library was made by another version of dlc");
        return NULL;
    }
    const char *missing = missing_isa(d->isa);
    if (missing) {
        if (err)
            snprintf(err, errlen, "the library was compiled for %s, whose instructions this CPU lacks (%s): "
                     "compile it with --cpu x86-64-v3 or for this machine", d->cpu, missing);
        return NULL;
    }
    cg_aot_model *m = calloc(1, sizeof *m);
    if (!m) {
        if (err)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->d = d;
    sup_arena_init(&m->arena, NULL);
    if (setup(m, weights) != CG_AOT_OK) {
        if (err)
            snprintf(err, errlen, "%s", m->error);
        cg_aot_destroy(m);
        return NULL;
    }
    return m;
}

void cg_aot_destroy(cg_aot_model *m)
{
    if (!m)
        return;
    if (m->state)
        for (int a = 0; a < m->state->f->nargs; a++)
            if (m->state->f->arginfo[a].role != DL_ROLE_INPUT)
                sup_free(m->state->args[a].data);
    entry *es[] = {&m->fwd, &m->step};
    for (int i = 0; i < 2; i++) {
        cg_exec_destroy(es[i]->exec);
        free(es[i]->args);
        for (int r = 0; r < CG_AOT_MAX_RESULTS; r++)
            free(es[i]->outs[r]);
    }
    cg_gemm_destroy(m->gemm);
    for (int64_t v = 0; m->variants && v < m->d->ngemms; v++)
        cg_gemm_destroy(m->variants[v]);
    free(m->variants);
    rt_pool_destroy(m->pool);
    if (m->ir)
        ir_module_destroy(m->ir);
    sup_arena_reset(&m->arena);
    free(m);
}

const char *cg_aot_last_error(const cg_aot_model *m)
{
    return m ? m->error : "no instance (a null handle)";
}

/* ---- running ----------------------------------------------------------------------------- */

/* Runs e with its inputs' types (concrete) and data set; outs as cg_exec_run takes them. */
static int run(cg_aot_model *m, entry *e, cg_tensor *results, void *const *outs)
{
    int64_t key = sup_dropout_key((uint64_t)m->d->seed, m->micro);
    if (e->rng >= 0)
        e->args[e->rng] = (cg_tensor){.type = e->f->args[e->rng]->type, .data = &key};
    char err[600];
    if (!cg_exec_run(e->exec, e->args, results, outs, err, sizeof err))
        return fail(m, strstr(err, "out of memory") ? CG_AOT_ERR_MEMORY : CG_AOT_ERR_RUNTIME, "@%s: %s",
                    e->f->name, err);
    if (e == &m->step)
        m->micro++;
    return CG_AOT_OK;
}

/* Points e's inputs at in[] with the shapes syms give. */
static int bind_typed(cg_aot_model *m, entry *e, const int64_t *syms, const void *const *in)
{
    if (e->nsyms && !syms)
        return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: no dimensions given", e->f->name);
    for (int s = 0; s < e->nsyms; s++)
        if (syms[s] < 0)
            return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: %s is %lld: a dimension cannot be negative", e->f->name,
                        e->syms[s], (long long)syms[s]);
    for (int i = 0; i < e->ninputs; i++) {
        int a = e->inputs[i];
        if (!in[i])
            return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: '%s' is a null pointer", e->f->name, e->f->arginfo[a].name);
        if (!concrete(e, &e->f->args[a]->type, syms, &e->args[a].type))
            return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: '%s' would be larger than memory", e->f->name,
                        e->f->arginfo[a].name);
        e->args[a].data = (void *)in[i];
    }
    return CG_AOT_OK;
}

static int check_model(const cg_aot_model *m)
{
    return m ? CG_AOT_OK : CG_AOT_ERR_ARGUMENT;
}

int cg_aot_forward(cg_aot_model *m, const int64_t *syms, const void *const *in, void *const *out)
{
    if (check_model(m))
        return CG_AOT_ERR_ARGUMENT;
    m->error[0] = 0;
    entry *e = &m->fwd;
    if ((e->ninputs && !in) || (e->f->nresults && !out))
        return fail(m, CG_AOT_ERR_ARGUMENT, "@forward: no %s array", !out ? "result" : "input");
    int rc = bind_typed(m, e, syms, in);
    for (int r = 0; rc == CG_AOT_OK && r < e->f->nresults; r++)
        if (!out[r])
            rc = fail(m, CG_AOT_ERR_ARGUMENT, "@forward: result %d is a null pointer", r);
    cg_tensor res[CG_AOT_MAX_RESULTS];
    if (rc == CG_AOT_OK && e->f->nresults > CG_AOT_MAX_RESULTS)
        rc = fail(m, CG_AOT_ERR_ARGUMENT, "@forward has more than %d results", CG_AOT_MAX_RESULTS);
    return rc == CG_AOT_OK ? run(m, e, res, out) : rc;
}

int cg_aot_train_step(cg_aot_model *m, const int64_t *syms, const void *const *in, void *loss)
{
    if (check_model(m))
        return CG_AOT_ERR_ARGUMENT;
    m->error[0] = 0;
    entry *e = &m->step;
    if (!e->f)
        return fail(m, CG_AOT_ERR_ARGUMENT, "the library has no training step (its file has no train block)");
    if (e->ninputs && !in)
        return fail(m, CG_AOT_ERR_ARGUMENT, "@train_step: no input array");
    int rc = bind_typed(m, e, syms, in);
    if (rc == CG_AOT_OK && !loss)
        rc = fail(m, CG_AOT_ERR_ARGUMENT, "@train_step: loss is a null pointer");
    cg_tensor res[CG_AOT_MAX_RESULTS];
    if (rc == CG_AOT_OK && (e->f->nresults > CG_AOT_MAX_RESULTS || !e->outs[0]))
        rc = fail(m, CG_AOT_ERR_ARGUMENT, "@train_step's results are not %d scalars", CG_AOT_MAX_RESULTS);
    if (rc == CG_AOT_OK)
        rc = run(m, e, res, e->outs);
    if (rc == CG_AOT_OK)
        memcpy(loss, e->outs[0], (size_t)ir_dtype_size(res[0].type.dtype));
    return rc;
}

/* ---- DLPack ------------------------------------------------------------------------------ */

static bool dl_dtype_of(const cg_dltensor *t, dl_dtype *out)
{
    static const struct { uint8_t code, bits; dl_dtype dt; } map[] = {
        {2, 32, DL_F32}, {2, 16, DL_F16}, {4, 16, DL_BF16}, {2, 64, DL_F64}, {0, 8, DL_I8},
        {1, 8, DL_U8}, {0, 32, DL_I32}, {0, 64, DL_I64}, {6, 8, DL_BOOL}, {1, 1, DL_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (map[i].code == t->code && map[i].bits == t->bits && t->lanes == 1) {
            *out = map[i].dt;
            return true;
        }
    return false;
}

/* Checks a DLTensor against type `want` (symbols bound from shapes as they come when bind):
 * CPU, dtype, rank, shape, compact strides. */
static int check_dl(cg_aot_model *m, entry *e, const char *what, const cg_dltensor *t, const dl_type *want,
                    int64_t *syms, bool *bound, bool bind)
{
    const char *fn = e->f->name;
    if (t->device_type != 1)
        return fail(m, CG_AOT_ERR_DEVICE, "@%s: %s is on device type %d, not the CPU (1)", fn, what, t->device_type);
    dl_dtype dt;
    char w[128];
    ir_type_str(want, w, sizeof w);
    if (!dl_dtype_of(t, &dt) || dt != want->dtype)
        return fail(m, CG_AOT_ERR_DTYPE, "@%s: %s has DLPack dtype (code %d, bits %d, lanes %d), expected %s",
                    fn, what, t->code, t->bits, t->lanes, w);
    if (t->ndim != want->rank || (t->ndim > 0 && !t->shape))
        return fail(m, CG_AOT_ERR_SHAPE, "@%s: %s has %d dimensions, expected %s", fn, what, t->ndim, w);
    for (int d = 0; d < t->ndim; d++) {
        int64_t n = t->shape[d];
        dl_dim wd = want->dim[d];
        if (n < 0)
            return fail(m, CG_AOT_ERR_SHAPE, "@%s: %s has a negative dimension", fn, what);
        if (bind && wd.n == 1 && wd.c > 0 && n % wd.c == 0) {
            int s = 0;
            while (s < e->nsyms && strcmp(e->syms[s], wd.sym[0]))
                s++;
            if (s < e->nsyms && !bound[s]) {
                syms[s] = n / wd.c;
                bound[s] = true;
                continue;
            }
        }
        int64_t v = wd.c;
        bool known = true;
        for (int k = 0; k < wd.n && known; k++) {
            int s = 0;
            while (s < e->nsyms && strcmp(e->syms[s], wd.sym[k]))
                s++;
            known = s < e->nsyms && bound[s] && !__builtin_mul_overflow(v, syms[s], &v);
        }
        if (!known || v != n) {
            char g[160];
            int k = snprintf(g, sizeof g, "[");
            for (int i = 0; i < t->ndim && k < (int)sizeof g - 24; i++)
                k += snprintf(g + k, sizeof g - (size_t)k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
            snprintf(g + k, sizeof g - (size_t)k, "]");
            return fail(m, CG_AOT_ERR_SHAPE, "@%s: %s has shape %s, expected %s", fn, what, g, w);
        }
    }
    /* Compact row-major strides (a dimension of size 1 may have any stride). */
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0 && t->strides; d--) {
        if (t->shape[d] != 1 && t->strides[d] != expect)
            return fail(m, CG_AOT_ERR_DEVICE, "@%s: %s is not compact row-major (strides)", fn, what);
        expect *= t->shape[d];
    }
    if (!t->data)
        return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: %s has no data", fn, what);
    return CG_AOT_OK;
}

int cg_aot_call(cg_aot_model *m, const char *fn, const cg_dltensor *args, int32_t nargs,
                cg_dltensor *results, int32_t nresults)
{
    if (check_model(m))
        return CG_AOT_ERR_ARGUMENT;
    m->error[0] = 0;
    if (!fn)
        return fail(m, CG_AOT_ERR_ARGUMENT, "no function named (null)");
    entry *e = !strcmp(fn, "forward") ? &m->fwd : !strcmp(fn, "train_step") && m->step.f ? &m->step : NULL;
    if (!e)
        return fail(m, CG_AOT_ERR_ARGUMENT, "no function '%s' (the library has %s)", fn,
                    m->step.f ? "forward and train_step" : "forward");
    if (nargs != e->ninputs || nresults != e->f->nresults)
        return fail(m, CG_AOT_ERR_ARGUMENT, "@%s takes %d inputs and %d results, not %d and %d", fn,
                    e->ninputs, e->f->nresults, nargs, nresults);
    if ((nargs && !args) || (nresults && !results))
        return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: the %s array is a null pointer", fn, nargs && !args ? "input" : "result");
    if (nresults > CG_AOT_MAX_RESULTS)
        return fail(m, CG_AOT_ERR_ARGUMENT, "@%s has more than %d results", fn, CG_AOT_MAX_RESULTS);
    int64_t syms[CG_AOT_MAX_SYMS] = {0};
    bool bound[CG_AOT_MAX_SYMS] = {0};
    char what[96];
    for (int i = 0; i < nargs; i++) {
        int a = e->inputs[i];
        snprintf(what, sizeof what, "input %d ('%s')", i, e->f->arginfo[a].name);
        int rc = check_dl(m, e, what, &args[i], &e->f->args[a]->type, syms, bound, true);
        if (rc)
            return rc;
    }
    for (int i = 0; i < nargs; i++) {
        int a = e->inputs[i];
        if (!concrete(e, &e->f->args[a]->type, syms, &e->args[a].type))
            return fail(m, CG_AOT_ERR_ARGUMENT, "@%s: '%s' would be larger than memory", fn, e->f->arginfo[a].name);
        e->args[a].data = (char *)args[i].data + args[i].byte_offset;
    }
    void *outs[CG_AOT_MAX_RESULTS];
    const dl_op *ret = e->f->last;
    for (int r = 0; r < nresults; r++) {
        snprintf(what, sizeof what, "result %d", r);
        int rc = check_dl(m, e, what, &results[r], &ret->in[r]->type, syms, bound, false);
        if (rc)
            return rc;
        outs[r] = (char *)results[r].data + results[r].byte_offset;
    }
    cg_tensor res[CG_AOT_MAX_RESULTS];
    return run(m, e, res, outs);
}

/* ---- checkpoints ------------------------------------------------------------------------- */

int cg_aot_save(cg_aot_model *m, const char *path)
{
    if (check_model(m))
        return CG_AOT_ERR_ARGUMENT;
    m->error[0] = 0;
    if (!path)
        return fail(m, CG_AOT_ERR_ARGUMENT, "save: the path is a null pointer");
    char err[600];
    rt_st_writer *w = rt_st_writer_begin(path, err, sizeof err);
    if (!w)
        return fail(m, CG_AOT_ERR_FILE, "%s", err);
    const entry *s = m->state;
    int64_t shape[DL_MAX_RANK];
    for (int a = 0; a < s->f->nargs; a++) {
        const cg_tensor *t = &s->args[a];
        if (s->f->arginfo[a].role == DL_ROLE_INPUT)
            continue;
        for (int d = 0; d < t->type.rank; d++)
            shape[d] = t->type.dim[d].c;
        rt_st_writer_add(w, path_of(&s->f->arginfo[a]), ir_dtype_safetensors(t->type.dtype), t->type.rank,
                         shape, t->data);
    }
    /* The position as `dlc run` keeps it: epoch, batch, micro-steps. */
    int64_t nb = m->d->batches > 0 ? m->d->batches : 1;
    int64_t pos[3] = {m->micro / nb, m->micro % nb, m->micro}, n3 = 3, n2 = 2;
    double plateau[2] = {1e300, 0};
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)m->d->seed);
    rt_st_writer_add(w, "run.position", "I64", 1, &n3, pos);
    rt_st_writer_add(w, "run.plateau", "F64", 1, &n2, plateau);
    rt_st_writer_add_metadata(w, "format", "dlc checkpoint 1");
    rt_st_writer_add_metadata(w, "seed", seed);
    if (!rt_st_writer_finish(w, err, sizeof err))
        return fail(m, CG_AOT_ERR_FILE, "%s", err);
    return CG_AOT_OK;
}

/* Reads every tensor of the file that this instance has into scratch copies first, so a file
 * that does not fit leaves the instance as it was. */
int cg_aot_load(cg_aot_model *m, const char *path)
{
    if (check_model(m))
        return CG_AOT_ERR_ARGUMENT;
    m->error[0] = 0;
    if (!path)
        return fail(m, CG_AOT_ERR_ARGUMENT, "load: the path is a null pointer");
    image im;
    int rc = open_image(m, path, &im);
    const rt_st_tensor *pos = rc ? NULL : rt_st_find(&im.st, "run.position");
    bool checkpoint = pos != NULL;
    const entry *s = m->state;
    cg_tensor *tmp = calloc((size_t)s->f->nargs + 1, sizeof *tmp);
    if (!rc && !tmp)
        rc = fail(m, CG_AOT_ERR_MEMORY, "out of memory");
    for (int a = 0; !rc && a < s->f->nargs; a++) {
        const dl_arg_info *info = &s->f->arginfo[a];
        if (info->role == DL_ROLE_INPUT || !(checkpoint || cg_aot_is_model(info)))
            continue;
        tmp[a].type = s->args[a].type;
        size_t bytes = (size_t)(numel(&tmp[a].type) * ir_dtype_size(tmp[a].type.dtype));
        if (!(tmp[a].data = sup_malloc(bytes ? bytes : 1)))
            rc = fail(m, CG_AOT_ERR_MEMORY, "out of memory");
        else
            rc = read_tensor(m, &im, path, path_of(info), &tmp[a]);
    }
    int64_t p[3] = {0, 0, 0};
    if (!rc && checkpoint) {
        if (strcmp(pos->dtype, "I64") || pos->rank != 1 || pos->shape[0] != 3)
            rc = fail(m, CG_AOT_ERR_FORMAT, "%s: run.position is not I64[3]", path);
        else
            memcpy(p, im.data + im.st.data_start + pos->begin, sizeof p);
        if (!rc && p[2] < 0)
            rc = fail(m, CG_AOT_ERR_FORMAT, "%s: its position is invalid", path);
    }
    for (int a = 0; tmp && a < s->f->nargs; a++) {
        if (!rc && tmp[a].data)
            memcpy(s->args[a].data, tmp[a].data,
                   (size_t)(numel(&tmp[a].type) * ir_dtype_size(tmp[a].type.dtype)));
        sup_free(tmp[a].data);
    }
    free(tmp);
    if (!rc && checkpoint)
        m->micro = p[2];
    close_image(&im);
    return rc;
}
