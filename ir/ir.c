/* The IR's core: dtypes, dimensions, the op table, modules and the builder. */
#include "ir/ir.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes ---------------------------------------------------------------------------- */

static const char *const dtype_names[] = {
#define X(e, s, n, npy, st) s,
    DL_DTYPES(X)
#undef X
};
static const int dtype_sizes[] = {
#define X(e, s, n, npy, st) n,
    DL_DTYPES(X)
#undef X
};
static const char *const dtype_npy[] = {
#define X(e, s, n, npy, st) npy,
    DL_DTYPES(X)
#undef X
};
static const char *const dtype_st[] = {
#define X(e, s, n, npy, st) st,
    DL_DTYPES(X)
#undef X
};

const char *ir_dtype_name(dl_dtype t) { return dtype_names[t]; }
int ir_dtype_size(dl_dtype t) { return dtype_sizes[t]; }
bool ir_dtype_is_float(dl_dtype t) { return t == DL_F32 || t == DL_F16 || t == DL_BF16 || t == DL_F64; }
bool ir_dtype_is_int(dl_dtype t) { return t == DL_I8 || t == DL_U8 || t == DL_I32 || t == DL_I64; }

bool ir_dtype_parse(const char *s, size_t n, dl_dtype *out)
{
    for (int i = 0; i < DL_NDTYPES; i++)
        if (strlen(dtype_names[i]) == n && !memcmp(dtype_names[i], s, n)) {
            *out = (dl_dtype)i;
            return true;
        }
    return false;
}

const char *ir_dtype_npy(dl_dtype t) { return dtype_npy[t]; }
const char *ir_dtype_safetensors(dl_dtype t) { return dtype_st[t]; }

static bool find_name(const char *const *names, const char *s, dl_dtype *out)
{
    for (int i = 0; i < DL_NDTYPES; i++)
        if (names[i] && !strcmp(names[i], s)) {
            *out = (dl_dtype)i;
            return true;
        }
    return false;
}

bool ir_dtype_from_npy(const char *descr, dl_dtype *out) { return find_name(dtype_npy, descr, out); }
bool ir_dtype_from_safetensors(const char *name, dl_dtype *out) { return find_name(dtype_st, name, out); }

static const char *const role_names[] = {"input", "param", "buffer", "output", "loss", "metric"};
_Static_assert(sizeof role_names / sizeof *role_names == DL_NROLES, "one name per role");

const char *ir_role_name(dl_role r) { return role_names[r]; }

bool ir_role_parse(const char *s, size_t n, dl_role *out)
{
    for (int i = 0; i < DL_NROLES; i++)
        if (strlen(role_names[i]) == n && !memcmp(role_names[i], s, n)) {
            *out = (dl_role)i;
            return true;
        }
    return false;
}

/* ---- dimensions ------------------------------------------------------------------------ */

dl_dim ir_dim_const(int64_t c) { return (dl_dim){.c = c}; }
dl_dim ir_dim_sym(const char *s) { return (dl_dim){.c = 1, .n = 1, .sym = {s}}; }
bool ir_dim_is_const(dl_dim d) { return d.n == 0; }

bool ir_dim_eq(dl_dim a, dl_dim b)
{
    if (a.c != b.c || a.n != b.n)
        return false;
    for (int i = 0; i < a.n; i++)
        if (a.sym[i] != b.sym[i])
            return false;
    return true;
}

/* Symbols are ordered by their text so that N*T and T*N print and compare alike. */
static int sym_cmp(const char *a, const char *b) { return a == b ? 0 : strcmp(a, b); }

bool ir_dim_mul(dl_dim a, dl_dim b, dl_dim *out)
{
    dl_dim r = {0};     /* unused symbol slots zero, as every dl_dim keeps them */
    if (__builtin_mul_overflow(a.c, b.c, &r.c))
        return false;
    r.n = 0;
    if (r.c == 0) {
        *out = r;
        return true;
    }
    if (a.n + b.n > DL_DIM_MAXSYM)
        return false;
    int i = 0, j = 0;
    while (i < a.n || j < b.n) {
        if (j >= b.n || (i < a.n && sym_cmp(a.sym[i], b.sym[j]) <= 0))
            r.sym[r.n++] = a.sym[i++];
        else
            r.sym[r.n++] = b.sym[j++];
    }
    *out = r;
    return true;
}

bool ir_dim_div(dl_dim a, dl_dim b, dl_dim *out)
{
    if (b.c == 0 || a.c % b.c != 0)
        return false;
    dl_dim r = {.c = a.c / b.c};
    bool used[DL_DIM_MAXSYM] = {0};
    for (int j = 0; j < b.n; j++) {
        int k = -1;
        for (int i = 0; i < a.n; i++)
            if (!used[i] && a.sym[i] == b.sym[j]) {
                k = i;
                break;
            }
        if (k < 0)
            return false;
        used[k] = true;
    }
    for (int i = 0; i < a.n; i++)
        if (!used[i])
            r.sym[r.n++] = a.sym[i];
    *out = r;
    return true;
}

int ir_dim_str(dl_dim d, char *buf, size_t n)
{
    if (d.n == 0)
        return snprintf(buf, n, "%" PRId64, d.c);
    int len = 0;
    if (d.c != 1)
        len += snprintf(buf, n, "%" PRId64 "*", d.c);
    for (int i = 0; i < d.n; i++)
        len += snprintf(buf + ((size_t)len < n ? (size_t)len : n), (size_t)len < n ? n - (size_t)len : 0,
                        "%s%s", i ? "*" : "", d.sym[i]);
    return len;
}

bool ir_type_eq(const dl_type *a, const dl_type *b)
{
    if (a->dtype != b->dtype || a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (!ir_dim_eq(a->dim[i], b->dim[i]))
            return false;
    return true;
}

bool ir_type_is_static(const dl_type *t)
{
    for (int i = 0; i < t->rank; i++)
        if (t->dim[i].n)
            return false;
    return true;
}

bool ir_type_numel(const dl_type *t, dl_dim *out)
{
    dl_dim r = ir_dim_const(1);
    for (int i = 0; i < t->rank; i++)
        if (!ir_dim_mul(r, t->dim[i], &r))
            return false;
    *out = r;
    return true;
}

int ir_type_str(const dl_type *t, char *buf, size_t n)
{
    size_t len = (size_t)snprintf(buf, n, "%s", ir_dtype_name(t->dtype));
    if (t->rank == 0)
        return (int)len;
    /* A rank-0 tensor prints as the bare dtype; rank >= 1 as dtype[d0, d1, ...]. */
    for (int i = 0; i < t->rank; i++) {
        len += (size_t)snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, i ? ", " : "[");
        len += (size_t)ir_dim_str(t->dim[i], buf + (len < n ? len : n), len < n ? n - len : 0);
    }
    len += (size_t)snprintf(buf + (len < n ? len : n), len < n ? n - len : 0, "]");
    return (int)len;
}

/* ---- the op table ---------------------------------------------------------------------- */

typedef struct op_row {
    const char *name;
    int         min_in, max_in, nres;
    unsigned    props, nodiff;
    const char *attrs;
} op_row;

static const op_row op_rows[] = {
#define OP(id, name, rule, grad, nodiff, min_in, max_in, nres, props, attrs) \
    {name, min_in, max_in, nres, props, nodiff, attrs},
#include "ir/ops.def"
#undef OP
};
_Static_assert(sizeof op_rows / sizeof *op_rows == DL_NOPS, "one row per op");

enum { MAX_SPECS = 512, SPEC_TEXT = 8192 };
static dl_op_info   op_info[DL_NOPS];
static dl_attr_spec specs[MAX_SPECS];
static char         spec_text[SPEC_TEXT];
static pthread_once_t op_once = PTHREAD_ONCE_INIT;

static bool kind_parse(const char *s, size_t n, dl_attr_kind *k)
{
    static const char *const names[] = {"int", "float", "bool", "str", "ints", "floats", "shape",
                                        "dtype"};
    for (int i = 0; i < 8; i++)
        if (strlen(names[i]) == n && !memcmp(names[i], s, n)) {
            *k = (dl_attr_kind)i;
            return true;
        }
    return false;
}

/* Parses the attribute strings of ops.def once. A malformed row is a bug in the table. */
static void build_op_info(void)
{
    int nspec = 0;
    size_t ntext = 0;
    for (int op = 0; op < DL_NOPS; op++) {
        const op_row *r = &op_rows[op];
        dl_op_info *info = &op_info[op];
        *info = (dl_op_info){r->name, r->min_in, r->max_in, r->nres, r->props, r->nodiff, 0,
                             &specs[nspec]};
        SUP_ASSERT(strlen(r->attrs) + 1 + ntext <= SPEC_TEXT);
        char *text = spec_text + ntext;
        strcpy(text, r->attrs);
        ntext += strlen(r->attrs) + 1;
        for (char *p = text; *p;) {
            while (*p == ' ')
                p++;
            if (!*p)
                break;
            SUP_ASSERT(nspec < MAX_SPECS);
            dl_attr_spec *s = &specs[nspec++];
            info->nattr++;
            /* Default values may hold spaces inside brackets ("[1, 1]"). */
            char *end = p;
            for (int depth = 0; *end && (depth || *end != ' '); end++)
                depth += (*end == '[') - (*end == ']');
            bool more = *end != 0;
            char *colon = memchr(p, ':', (size_t)(end - p));
            SUP_ASSERT(colon);
            *colon = 0;
            s->name = p;
            char *k = colon + 1, *kend = k;
            while (kend < end && *kend != '{' && *kend != '=' && *kend != '?')
                kend++;
            SUP_ASSERT(kind_parse(k, (size_t)(kend - k), &s->kind));
            char *q = kend;
            if (*q == '{') {
                char *close = memchr(q, '}', (size_t)(end - q));
                SUP_ASSERT(close);
                *close = 0;
                s->choices = q + 1;
                q = close + 1;
            }
            s->required = true;
            if (q < end && *q == '?') {
                s->required = false;
                q++;
            } else if (q < end && *q == '=') {
                s->required = false;
                s->def = q + 1;
            }
            *kend = 0;
            *end = 0;
            p = more ? end + 1 : end;
        }
    }
}

const dl_op_info *ir_op_info(dl_opcode op)
{
    pthread_once(&op_once, build_op_info);
    return &op_info[op];
}

bool ir_op_lookup(const char *name, size_t n, dl_opcode *out)
{
    for (int i = 0; i < DL_NOPS; i++)
        if (strlen(op_rows[i].name) == n && !memcmp(op_rows[i].name, name, n)) {
            *out = (dl_opcode)i;
            return true;
        }
    return false;
}

const dl_attr_spec *ir_attr_spec(dl_opcode op, const char *name, size_t n)
{
    const dl_op_info *info = ir_op_info(op);
    for (int i = 0; i < info->nattr; i++)
        if (strlen(info->attr[i].name) == n && !memcmp(info->attr[i].name, name, n))
            return &info->attr[i];
    return NULL;
}

/* ---- attributes ------------------------------------------------------------------------ */

const dl_attr *ir_attr_find(int nattr, const dl_attr *attr, const char *name)
{
    for (int i = 0; i < nattr; i++)
        if (!strcmp(attr[i].name, name))
            return &attr[i];
    return NULL;
}

/* The default of an attribute as text. Asking for a required attribute that is absent, or for
 * one that does not exist, is a bug: the verifier rejects such ops before anyone asks. */
static const char *default_text(dl_opcode code, const char *name)
{
    const dl_attr_spec *s = ir_attr_spec(code, name, strlen(name));
    if (!s || !s->def)
        sup_ice(__FILE__, __LINE__, "op '%s' has no attribute '%s' with a default",
                ir_op_info(code)->name, name);
    return s->def;
}

int64_t ir_attr_int(int nattr, const dl_attr *attr, dl_opcode code, const char *name)
{
    const dl_attr *a = ir_attr_find(nattr, attr, name);
    return a ? a->u.i : strtoll(default_text(code, name), NULL, 10);
}

double ir_attr_float(int nattr, const dl_attr *attr, dl_opcode code, const char *name)
{
    const dl_attr *a = ir_attr_find(nattr, attr, name);
    return a ? a->u.f : strtod(default_text(code, name), NULL);
}

bool ir_attr_bool(int nattr, const dl_attr *attr, dl_opcode code, const char *name)
{
    const dl_attr *a = ir_attr_find(nattr, attr, name);
    return a ? a->u.b : !strcmp(default_text(code, name), "true");
}

const char *ir_attr_str(int nattr, const dl_attr *attr, dl_opcode code, const char *name)
{
    const dl_attr *a = ir_attr_find(nattr, attr, name);
    return a ? a->u.s : default_text(code, name);
}

void ir_attr_pair(const dl_op *op, const char *name, int64_t def, int64_t out[2])
{
    const dl_attr *a = ir_attr_find(op->nattr, op->attr, name);
    if (!a || a->n == 0)
        out[0] = out[1] = def;
    else
        out[0] = a->u.ints[0], out[1] = a->u.ints[a->n > 1];
}

bool ir_attr_eq(const dl_attr *a, const dl_attr *b)
{
    if (a->kind != b->kind || strcmp(a->name, b->name) || a->n != b->n)
        return false;
    switch (a->kind) {
    case DL_ATTR_INT: return a->u.i == b->u.i;
    case DL_ATTR_FLOAT: return memcmp(&a->u.f, &b->u.f, sizeof(double)) == 0;
    case DL_ATTR_BOOL: return a->u.b == b->u.b;
    case DL_ATTR_STR: return !strcmp(a->u.s, b->u.s);
    case DL_ATTR_DTYPE: return a->u.dt == b->u.dt;
    case DL_ATTR_INTS: return !memcmp(a->u.ints, b->u.ints, sizeof(int64_t) * (size_t)a->n);
    case DL_ATTR_FLOATS: return !memcmp(a->u.floats, b->u.floats, sizeof(double) * (size_t)a->n);
    case DL_ATTR_SHAPE:
        for (int i = 0; i < a->n; i++)
            if (!ir_dim_eq(a->u.dims[i], b->u.dims[i]))
                return false;
        return true;
    }
    return false;
}

/* ---- modules --------------------------------------------------------------------------- */

dl_module *ir_module_create(void)
{
    dl_module *m = sup_malloc(sizeof *m);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    sup_arena_init(&m->arena, NULL);
    return m;
}

void ir_module_destroy(dl_module *m)
{
    if (!m)
        return;
    sup_arena_reset(&m->arena);
    sup_free(m);
}

void *ir_alloc(dl_module *m, size_t n)
{
    void *p = sup_arena_alloc(&m->arena, n);
    if (!p)
        sup_ice(__FILE__, __LINE__, "out of memory (%zu bytes) with no handler set", n);
    return p;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;       /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

const char *ir_intern(dl_module *m, const char *s, size_t n)
{
    if (m->nstrs * 2 >= m->capstrs) {
        int ncap = m->capstrs ? m->capstrs * 2 : 256;
        const char **t = ir_alloc(m, sizeof *t * (size_t)ncap);
        for (int i = 0; i < m->capstrs; i++)
            if (m->strs[i]) {
                uint64_t h = hash_str(m->strs[i], strlen(m->strs[i])) & (uint64_t)(ncap - 1);
                while (t[h])
                    h = (h + 1) & (uint64_t)(ncap - 1);
                t[h] = m->strs[i];
            }
        m->strs = t;
        m->capstrs = ncap;
    }
    uint64_t mask = (uint64_t)(m->capstrs - 1), h = hash_str(s, n) & mask;
    for (; m->strs[h]; h = (h + 1) & mask)
        if (strlen(m->strs[h]) == n && !memcmp(m->strs[h], s, n))
            return m->strs[h];
    char *d = ir_alloc(m, n + 1);
    memcpy(d, s, n);
    m->strs[h] = d;
    m->nstrs++;
    return d;
}

dl_func *ir_func_find(const dl_module *m, const char *name)
{
    for (dl_func *f = m->first; f; f = f->next)
        if (!strcmp(f->name, name))
            return f;
    return NULL;
}

/* ---- building -------------------------------------------------------------------------- */

dl_func *ir_func_create(dl_module *m, const char *name, dl_loc loc)
{
    dl_func *f = ir_alloc(m, sizeof *f);
    f->name = ir_intern(m, name, strlen(name));
    f->loc = loc;
    f->module = m;
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

dl_value *ir_func_add_arg(dl_func *f, const char *name, dl_role role, const char *path,
                          const dl_type *type)
{
    dl_module *m = f->module;
    /* Arguments are few: the arrays grow by copying (the old ones stay in the arena); the
     * values themselves never move. */
    dl_value **args = ir_alloc(m, sizeof *args * (size_t)(f->nargs + 1));
    dl_arg_info *info = ir_alloc(m, sizeof *info * (size_t)(f->nargs + 1));
    if (f->nargs) {
        memcpy(args, f->args, sizeof *args * (size_t)f->nargs);
        memcpy(info, f->arginfo, sizeof *info * (size_t)f->nargs);
    }
    f->args = args;
    f->arginfo = info;
    int i = f->nargs++;
    args[i] = ir_alloc(m, sizeof **args);
    *args[i] = (dl_value){.type = *type, .index = i};
    info[i] = (dl_arg_info){.name = ir_intern(m, name, strlen(name)), .role = role,
                            .path = path ? ir_intern(m, path, strlen(path)) : NULL};
    return args[i];
}

void ir_func_set_results(dl_func *f, int n, const dl_result_info *r)
{
    f->results = ir_alloc(f->module, sizeof *r * (size_t)(n ? n : 1));
    memcpy(f->results, r, sizeof *r * (size_t)n);
    f->nresults = n;
}

void ir_func_add_results(dl_func *f, int n, dl_value *const *vals, dl_role role)
{
    dl_op *ret = f->last;
    SUP_ASSERT(ret && ret->code == DL_OP_RETURN);
    int nres = ret->nin + n;
    dl_value **all = ir_alloc(f->module, sizeof *all * (size_t)(nres ? nres : 1));
    dl_result_info *info = ir_alloc(f->module, sizeof *info * (size_t)(nres ? nres : 1));
    for (int i = 0; i < nres; i++) {
        all[i] = i < ret->nin ? ret->in[i] : vals[i - ret->nin];
        info[i] = i < ret->nin ? f->results[i] : (dl_result_info){all[i]->type, role};
    }
    dl_op *nret = ir_op_create(f, DL_OP_RETURN, nres, all, 0, NULL, 0, NULL, ret->loc, NULL);
    SUP_ASSERT(nret);
    ir_op_insert_before(ret, nret);
    ir_op_remove(ret);
    ir_func_set_results(f, nres, info);
}

static dl_attr copy_attr(dl_module *m, const dl_attr *a)
{
    dl_attr c = *a;
    c.name = ir_intern(m, a->name, strlen(a->name));
    size_t n = (size_t)a->n;
    switch (a->kind) {
    case DL_ATTR_STR: c.u.s = ir_intern(m, a->u.s, strlen(a->u.s)); break;
    case DL_ATTR_INTS:
        c.u.ints = ir_alloc(m, sizeof(int64_t) * (n ? n : 1));
        memcpy(c.u.ints, a->u.ints, sizeof(int64_t) * n);
        break;
    case DL_ATTR_FLOATS:
        c.u.floats = ir_alloc(m, sizeof(double) * (n ? n : 1));
        memcpy(c.u.floats, a->u.floats, sizeof(double) * n);
        break;
    case DL_ATTR_SHAPE:
        c.u.dims = ir_alloc(m, sizeof(dl_dim) * (n ? n : 1));
        memcpy(c.u.dims, a->u.dims, sizeof(dl_dim) * n);
        break;
    default: break;
    }
    return c;
}

dl_op *ir_op_create(dl_func *f, dl_opcode code, int nin, dl_value *const *in, int nattr,
                    const dl_attr *attr, int nres, const dl_type *restype, dl_loc loc,
                    dl_diag *diag)
{
    dl_module *m = f->module;
    const dl_op_info *info = ir_op_info(code);
    dl_type out[64];
    int n = nres;
    /* A constant's type is given, not inferred: its rule checks the values against it. */
    if (code == DL_OP_CONSTANT) {
        SUP_ASSERT(restype);
        out[0] = *restype;
    }
    const dl_type *types[256];
    if (nin > 256) {
        sup_diag_error(diag, loc, "'%s' takes at most 256 operands here, not %d", info->name, nin);
        return NULL;
    }
    for (int i = 0; i < nin; i++)
        types[i] = &in[i]->type;
    char err[512];
    if (!ir_infer(code, nin, types, nattr, attr, out, &n, err, sizeof err)) {
        sup_diag_error(diag, loc, "%s", err);
        return NULL;
    }
    dl_op *op = ir_alloc(m, sizeof *op);
    op->code = code;
    op->loc = loc;
    op->func = f;
    op->nin = nin;
    op->in = ir_alloc(m, sizeof *op->in * (size_t)(nin ? nin : 1));
    for (int i = 0; i < nin; i++) {
        op->in[i] = in[i];
        in[i]->nuses++;
    }
    op->nres = n;
    op->res = ir_alloc(m, sizeof *op->res * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++)
        op->res[i] = (dl_value){.type = out[i], .def = op, .index = i};
    op->attr = ir_alloc(m, sizeof *op->attr * (size_t)(nattr ? nattr : 1));
    /* Canonical order: the order of the op's specs, so printing is deterministic. */
    for (int s = 0; s < info->nattr; s++)
        for (int i = 0; i < nattr; i++)
            if (!strcmp(attr[i].name, info->attr[s].name))
                op->attr[op->nattr++] = copy_attr(m, &attr[i]);
    return op;
}

void ir_op_append(dl_func *f, dl_op *op)
{
    op->func = f;
    op->prev = f->last;
    op->next = NULL;
    if (f->last)
        f->last->next = op;
    else
        f->first = op;
    f->last = op;
}

void ir_op_insert_before(dl_op *before, dl_op *op)
{
    dl_func *f = before->func;
    op->func = f;
    op->next = before;
    op->prev = before->prev;
    if (before->prev)
        before->prev->next = op;
    else
        f->first = op;
    before->prev = op;
}

/* Takes op out of its function's list (its operands keep their uses). */
static void unlink_op(dl_op *op)
{
    dl_func *f = op->func;
    if (op->prev)
        op->prev->next = op->next;
    else
        f->first = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        f->last = op->prev;
    op->prev = op->next = NULL;
}

void ir_op_remove(dl_op *op)
{
    for (int i = 0; i < op->nin; i++)
        op->in[i]->nuses--;
    unlink_op(op);
}

void ir_op_move_before(dl_op *before, dl_op *op)
{
    if (op == before)
        return;
    unlink_op(op);
    ir_op_insert_before(before, op);
}

void ir_op_set_operand(dl_op *op, int i, dl_value *v)
{
    op->in[i]->nuses--;
    op->in[i] = v;
    v->nuses++;
}

dl_value *ir_value_resolve(dl_value *v)
{
    while (v->repl)
        v = v->repl;
    return v;
}

void ir_op_resolve_operands(dl_op *op)
{
    for (int i = 0; i < op->nin; i++)
        if (op->in[i]->repl)
            ir_op_set_operand(op, i, ir_value_resolve(op->in[i]));
}

void ir_func_replace_uses(dl_func *f, dl_value *from, dl_value *to)
{
    for (dl_op *op = f->first; op; op = op->next)
        for (int i = 0; i < op->nin; i++)
            if (op->in[i] == from)
                ir_op_set_operand(op, i, to);
}
