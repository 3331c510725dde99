/* --report (see report.h): per kernel its ops, FLOPs and bytes, as polynomials in the function's
 * symbols, so one code path serves the run (symbols bound: every polynomial is a constant) and
 * the AOT compile (symbols free: `802816*N + 1024`). FLOPs are counted as PyTorch's flop
 * counter and Inductor count them; docs/codegen.md lists the rules and the constants. */
#include "codegen/report.h"

#include "codegen/cpu/exec.h"
#include "support/alloc.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- polynomials in the symbols --------------------------------------------------------------- */

/* A term c * sym[0] * ... * sym[n-1], symbols sorted by name (repeats allowed); a polynomial is
 * a sum of terms with distinct symbol lists. Bounds far past what a model needs (a matmul of
 * rank-8 operands with four symbols per dimension is degree 36); past them, or past int64, the
 * polynomial is marked `lost` and printed as "?". */
enum { MAXDEG = 40, MAXTERMS = 32 };

typedef struct term {
    int64_t     c;
    int         n;
    const char *sym[MAXDEG];
} term;

typedef struct poly {
    int  n;
    bool lost;
    term t[MAXTERMS];
} poly;

/* How dimensions are read: bound to values (`syms`, in the order of prog->syms), or kept. */
typedef struct rctx {
    const cg_program *prog;
    const int64_t    *syms;
} rctx;

static term term_const(int64_t c) { return (term){.c = c}; }

static bool term_mul(term *a, const term *b)
{
    if (__builtin_mul_overflow(a->c, b->c, &a->c) || a->n + b->n > MAXDEG)
        return false;
    for (int k = 0; k < b->n; k++) {
        int at = a->n++;
        while (at > 0 && strcmp(a->sym[at - 1], b->sym[k]) > 0) {
            a->sym[at] = a->sym[at - 1];
            at--;
        }
        a->sym[at] = b->sym[k];
    }
    return true;
}

static bool same_syms(const term *a, const term *b)
{
    if (a->n != b->n)
        return false;
    for (int k = 0; k < a->n; k++)
        if (strcmp(a->sym[k], b->sym[k]))
            return false;
    return true;
}

static void poly_add(poly *p, const term *t)
{
    if (p->lost || t->c == 0)
        return;
    for (int i = 0; i < p->n; i++)
        if (same_syms(&p->t[i], t)) {
            p->lost |= __builtin_add_overflow(p->t[i].c, t->c, &p->t[i].c);
            return;
        }
    if (p->n == MAXTERMS) {
        p->lost = true;
        return;
    }
    p->t[p->n++] = *t;
}

static void poly_add_poly(poly *p, const poly *q)
{
    p->lost |= q->lost;
    for (int i = 0; i < q->n; i++)
        poly_add(p, &q->t[i]);
}

/* p's value with every remaining symbol = 1 (a bound polynomial has none left); -1 when lost. */
static int64_t poly_at_ones(const poly *p)
{
    int64_t v = 0;
    for (int i = 0; i < p->n && !p->lost; i++)
        if (__builtin_add_overflow(v, p->t[i].c, &v))
            return -1;
    return p->lost ? -1 : v;
}

/* Highest degree first, then by the symbols' names: `4*N*T + 8*N + 64`. */
static int term_order(const void *pa, const void *pb)
{
    const term *a = pa, *b = pb;
    if (a->n != b->n)
        return b->n - a->n;
    for (int k = 0; k < a->n; k++) {
        int c = strcmp(a->sym[k], b->sym[k]);
        if (c)
            return c;
    }
    return 0;
}

static void poly_str(const poly *p, char *buf, size_t len)
{
    if (p->lost) {
        snprintf(buf, len, "?");
        return;
    }
    poly s = *p;
    qsort(s.t, (size_t)s.n, sizeof *s.t, term_order);
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < s.n && at < len; i++) {
        const term *t = &s.t[i];
        at += (size_t)snprintf(buf + at, len - at, "%s", i ? " + " : "");
        if (t->c != 1 || t->n == 0)
            at += at < len ? (size_t)snprintf(buf + at, len - at, "%" PRId64 "%s", t->c, t->n ? "*" : "") : 0;
        for (int k = 0; k < t->n && at < len; k++)
            at += (size_t)snprintf(buf + at, len - at, "%s%s", k ? "*" : "", t->sym[k]);
    }
    if (s.n == 0)
        snprintf(buf, len, "0");
}

/* ---- what an op costs ------------------------------------------------------------------------ */

/* A dimension as a term: its symbols' values multiplied in when they are bound. */
static term dim_term(const rctx *x, dl_dim d, bool *ok)
{
    term t = term_const(d.c);
    for (int k = 0; k < d.n; k++) {
        int s = cg_program_sym(x->prog, d.sym[k]);
        if (x->syms && s >= 0) {
            *ok &= !__builtin_mul_overflow(t.c, x->syms[s], &t.c);
        } else {
            term one = {.c = 1, .n = 1, .sym = {d.sym[k]}};
            *ok &= term_mul(&t, &one);
        }
    }
    return t;
}

/* The product of dimensions [first, end) of t, times c. */
static term dims_term(const rctx *x, const dl_type *t, int first, int end, int64_t c, bool *ok)
{
    term r = term_const(c);
    for (int d = first; d < end; d++) {
        term f = dim_term(x, t->dim[d], ok);
        *ok &= term_mul(&r, &f);
    }
    return r;
}

static term numel(const rctx *x, const dl_type *t, int64_t c, bool *ok)
{
    return dims_term(x, t, 0, t->rank, c, ok);
}

static int64_t window(const dl_op *op)
{
    int64_t k[2];
    ir_attr_pair(op, "kernel_size", 1, k);
    return k[0] * k[1];
}

/* The per-element constants of the composite ops (docs/codegen.md): softmax and log_softmax are
 * a max, a subtraction, an exponential, a sum and a division (a log and a subtraction) per
 * element; a norm is a mean, a centring, a square, a sum and a scaling per element, plus one per
 * affine operand (weight, bias). */
enum { SOFTMAX_FLOPS = 5, NORM_FLOPS = 5 };

/* The losses and metrics the decompose pass leaves whole count as reductions. */
static bool is_loss_or_metric(dl_opcode c)
{
    switch (c) {
    case DL_OP_MSE_LOSS: case DL_OP_L1_LOSS: case DL_OP_HUBER_LOSS: case DL_OP_SMOOTH_L1_LOSS:
    case DL_OP_CROSS_ENTROPY: case DL_OP_NLL_LOSS: case DL_OP_BCE: case DL_OP_BCE_WITH_LOGITS:
    case DL_OP_KL_DIV: case DL_OP_TRIPLET_MARGIN_LOSS: case DL_OP_ACCURACY: case DL_OP_TOP_K_ACCURACY:
        return true;
    default:
        return false;
    }
}

/* Adds op's FLOPs to p. */
static void op_flops(const rctx *x, const dl_op *op, poly *p)
{
    bool ok = true;
    const dl_type *out = op->nres ? &op->res[0].type : NULL, *in0 = op->nin ? &op->in[0]->type : NULL;
    unsigned props = ir_op_info(op->code)->props;
    term t = term_const(0);
    switch (op->code) {
    case DL_OP_MATMUL: {        /* 2*M*N*K over the batch: two per output element and K */
        t = numel(x, out, 2, &ok);
        term k = dim_term(x, in0->dim[in0->rank - 1], &ok);
        ok &= term_mul(&t, &k);
        break;
    }
    case DL_OP_CONV2D:          /* 2*N*Cout*Hout*Wout * Cin/groups*kh*kw; the bias is not counted */
    case DL_OP_CONV_TRANSPOSE2D: {  /* the same with input and output exchanged: 2*numel(x)*Cout/g*kh*kw */
        const dl_type *w = &op->in[1]->type;
        t = op->code == DL_OP_CONV2D ? numel(x, out, 2, &ok) : numel(x, in0, 2, &ok);
        term k = dims_term(x, w, 1, w->rank, 1, &ok);
        ok &= term_mul(&t, &k);
        break;
    }
    case DL_OP_CONV2D_GRAD_WEIGHT: {    /* as the forward conv: 2*numel(dy) * Cin/groups*kh*kw */
        const dl_attr *ws = ir_attr_find(op->nattr, op->attr, "weight_shape");
        t = numel(x, &op->in[1]->type, 2, &ok);
        for (int d = 1; ws && d < ws->n; d++) {
            term k = term_const(ws->u.ints[d]);
            ok &= term_mul(&t, &k);
        }
        break;
    }
    case DL_OP_SDPA: {          /* the two products, as PyTorch counts it: 2*B*L*S*(E + Ev) */
        const dl_type *k = &op->in[1]->type, *v = &op->in[2]->type;
        term rows = dims_term(x, out, 0, out->rank - 1, 2, &ok), s = dim_term(x, k->dim[k->rank - 2], &ok);
        ok &= term_mul(&rows, &s);
        term qk = rows, pv = rows;
        term e = dim_term(x, in0->dim[in0->rank - 1], &ok), ev = dim_term(x, v->dim[v->rank - 1], &ok);
        ok &= term_mul(&qk, &e) && term_mul(&pv, &ev);
        poly_add(p, &qk);
        t = pv;
        break;
    }
    case DL_OP_MAX_POOL2D: case DL_OP_AVG_POOL2D:       /* one per window element */
        t = numel(x, out, window(op), &ok);
        break;
    case DL_OP_MAX_POOL2D_GRAD: case DL_OP_AVG_POOL2D_GRAD:
        t = numel(x, in0, window(op), &ok);
        break;
    case DL_OP_ADAPTIVE_AVG_POOL2D:     /* one per input element */
        t = numel(x, in0, 1, &ok);
        break;
    case DL_OP_ADAPTIVE_AVG_POOL2D_GRAD:
        t = numel(x, out, 1, &ok);
        break;
    case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX:
        t = numel(x, in0, SOFTMAX_FLOPS, &ok);
        break;
    case DL_OP_LAYER_NORM:
        t = numel(x, in0, NORM_FLOPS + op->nin - 1, &ok);
        break;
    case DL_OP_BATCH_NORM:
        t = numel(x, in0, NORM_FLOPS + 2, &ok);
        break;
    case DL_OP_SCATTER_ADD:     /* one addition per source element */
        t = numel(x, &op->in[2]->type, 1, &ok);
        break;
    case DL_OP_CONSTANT: case DL_OP_EXPAND: case DL_OP_BROADCAST_TO:
        break;                  /* no arithmetic: data, or an index computation */
    default:
        if (props & P_ELEM || op->code == DL_OP_DROPOUT)
            t = numel(x, out, 1, &ok);      /* one per output element, transcendentals too */
        else if (props & P_REDUCE || is_loss_or_metric(op->code))
            t = numel(x, in0, 1, &ok);      /* reductions, losses, metrics: one per input element */
        break;                  /* copies, views, gathers, concatenations: none */
    }
    if (!ok)
        p->lost = true;
    poly_add(p, &t);
}

static void value_bytes(const rctx *x, const dl_value *v, poly *p)
{
    bool ok = true;
    term t = numel(x, &v->type, ir_dtype_size(v->type.dtype), &ok);
    if (!ok)
        p->lost = true;
    poly_add(p, &t);
}

/* Kernel k's FLOPs and bytes: each input read once, each output written once (program.h says
 * which values a kernel writes). A view moves nothing: its result is its operand's buffer. */
static void kernel_cost(const rctx *x, const cg_kernel *k, poly *flops, poly *bytes)
{
    memset(flops, 0, sizeof *flops);
    memset(bytes, 0, sizeof *bytes);
    if (k->kind == CG_K_VIEW)
        return;
    for (int o = 0; o < k->nops; o++)
        op_flops(x, k->ops[o], flops);
    for (int i = 0; i < k->nin; i++)
        value_bytes(x, k->in[i], bytes);
    for (int i = 0; i < k->nout; i++)
        value_bytes(x, k->out[i], bytes);
}

void cg_report_kernel_cost(const cg_program *prog, int kernel, const int64_t *syms, int64_t *flops,
                           int64_t *bytes)
{
    rctx x = {prog, syms};
    poly *pf = sup_malloc(sizeof *pf), *pb = sup_malloc(sizeof *pb);
    *flops = *bytes = -1;
    if (pf && pb) {
        kernel_cost(&x, &prog->kernels[kernel], pf, pb);
        *flops = poly_at_ones(pf);
        *bytes = poly_at_ones(pb);
    }
    sup_free(pf);
    sup_free(pb);
}

/* ---- the table ---------------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [CG_K_ELEMENTWISE] = "elementwise", [CG_K_MATMUL] = "matmul", [CG_K_REDUCE] = "reduce",
    [CG_K_CONV] = "conv", [CG_K_COPY] = "copy", [CG_K_VIEW] = "view", [CG_K_INDEX] = "index",
    [CG_K_ATTENTION] = "attention", [CG_K_SCATTER] = "scatter", [CG_K_REF] = "reference"};
_Static_assert(sizeof kind_names / sizeof *kind_names == CG_K_REF + 1, "a name per kernel kind");

/* "%3" as the IR printer numbers op results (value ids less the arguments), "%3..%5" for several. */
static void op_id(const dl_func *f, const dl_op *op, char *buf, size_t len)
{
    if (op->nres == 0)
        snprintf(buf, len, "-");
    else if (op->nres == 1)
        snprintf(buf, len, "%%%d", op->res[0].id - f->nargs);
    else
        snprintf(buf, len, "%%%d..%%%d", op->res[0].id - f->nargs, op->res[op->nres - 1].id - f->nargs);
}

/* file:line, the file without its directories (the standard library's `<std>/nn.dl` whole); "-"
 * for an op with no source (one the compiler made from nothing). */
static void op_loc(const dl_op *op, char *buf, size_t len)
{
    const char *file = op->loc.file;
    if (!file || op->loc.line <= 0) {
        snprintf(buf, len, "-");
        return;
    }
    const char *slash = file[0] == '<' ? NULL : strrchr(file, '/');
    snprintf(buf, len, "%s:%d", slash ? slash + 1 : file, op->loc.line);
}

typedef struct widths {
    int name, kind, flops, bytes, id, op, loc, opflops;
} widths;

/* The polynomials a table needs: a kernel's FLOPs and bytes, an op's FLOPs, the totals. */
typedef struct scratch {
    poly kf, kb, of, tf, tb;
} scratch;

static int imax(int a, int b) { return a > b ? a : b; }

/* Kernel i's rows, one per op with its own FLOPs (the kernel's columns on the first), or with
 * `measure` only the widths they need. Leaves the kernel's FLOPs and bytes in s->kf, s->kb. */
static void print_kernel(FILE *out, const rctx *x, int i, widths *w, bool measure, scratch *s)
{
    const cg_kernel *k = &x->prog->kernels[i];
    const dl_func *f = x->prog->f;
    char fs[1024], bs[1024], ofs[1024], id[64], loc[512];
    kernel_cost(x, k, &s->kf, &s->kb);
    poly_str(&s->kf, fs, sizeof fs);
    poly_str(&s->kb, bs, sizeof bs);
    if (measure) {
        w->name = imax(w->name, (int)strlen(k->name));
        w->kind = imax(w->kind, (int)strlen(kind_names[k->kind]));
        w->flops = imax(w->flops, (int)strlen(fs));
        w->bytes = imax(w->bytes, (int)strlen(bs));
    }
    for (int o = 0; o < k->nops; o++) {
        const dl_op *op = k->ops[o];
        const char *name = ir_op_info(op->code)->name;
        op_id(f, op, id, sizeof id);
        op_loc(op, loc, sizeof loc);
        memset(&s->of, 0, sizeof s->of);
        if (k->kind != CG_K_VIEW)
            op_flops(x, op, &s->of);
        poly_str(&s->of, ofs, sizeof ofs);
        if (measure) {
            w->id = imax(w->id, (int)strlen(id));
            w->op = imax(w->op, (int)strlen(name));
            w->loc = imax(w->loc, (int)strlen(loc));
            w->opflops = imax(w->opflops, (int)strlen(ofs));
            continue;
        }
        if (o == 0)
            fprintf(out, "  %4d  %-*s  %-*s  %*s  %*s", i, w->name, k->name, w->kind, kind_names[k->kind], w->flops,
                    fs, w->bytes, bs);
        else
            fprintf(out, "  %4s  %-*s  %-*s  %*s  %*s", "", w->name, "", w->kind, "", w->flops, "", w->bytes, "");
        fprintf(out, "  %-*s %-*s %-*s %*s\n", w->id, id, w->op, name, w->loc, loc, w->opflops, ofs);
    }
}

/* The table and the totals; `note` ends the header line. */
static bool print_table(FILE *out, const rctx *x, const char *note)
{
    const cg_program *prog = x->prog;
    scratch *s = sup_malloc(sizeof *s);
    if (!s)
        return false;
    cg_program_nbuffers(prog->f);
    memset(&s->tf, 0, sizeof s->tf);
    memset(&s->tb, 0, sizeof s->tb);
    fprintf(out, "report of @%s%s\n", prog->f->name, note);
    widths w = {(int)strlen("kernel"), (int)strlen("kind"), (int)strlen("FLOPs"), (int)strlen("bytes"), 0, 0, 0, 0};
    for (int i = 0; i < prog->nkernels; i++)
        print_kernel(out, x, i, &w, true, s);
    fprintf(out, "  %4s  %-*s  %-*s  %*s  %*s  ops: id, op, source, FLOPs\n", "#", w.name, "kernel", w.kind, "kind",
            w.flops, "FLOPs", w.bytes, "bytes");
    for (int i = 0; i < prog->nkernels; i++) {
        print_kernel(out, x, i, &w, false, s);
        poly_add_poly(&s->tf, &s->kf);
        poly_add_poly(&s->tb, &s->kb);
    }
    char fs[1024], bs[1024];
    poly_str(&s->tf, fs, sizeof fs);
    poly_str(&s->tb, bs, sizeof bs);
    int64_t f1 = poly_at_ones(&s->tf), b1 = poly_at_ones(&s->tb);
    char ai[64] = "?";
    if (f1 >= 0 && b1 > 0)
        snprintf(ai, sizeof ai, "%.2f", (double)f1 / (double)b1);
    fprintf(out, "total: %d kernels, %s FLOPs, %s bytes, %s FLOPs/byte%s\n", prog->nkernels, fs, bs, ai,
            prog->nsyms && !x->syms ? " (at every symbol = 1)" : "");
    sup_free(s);
    return true;
}

void cg_report_print(FILE *out, const cg_memplan *mp, const int64_t *syms)
{
    const cg_program *prog = mp->prog;
    char note[1024] = "";
    size_t at = 0;
    for (int s = 0; s < prog->nsyms && at < sizeof note; s++)
        at += (size_t)snprintf(note + at, sizeof note - at, "%s%s=%" PRId64, s ? ", " : " with ", prog->syms[s],
                               syms[s]);
    rctx x = {prog, syms};
    if (print_table(out, &x, note))
        cg_memplan_print(out, mp);
}

void cg_report_exec(FILE *out, const cg_exec *e)
{
    if (e && cg_exec_syms(e))
        cg_report_print(out, cg_exec_memplan(e), cg_exec_syms(e));
}

bool cg_report_print_symbolic(FILE *out, const cg_program *prog)
{
    char note[1024] = "";
    size_t at = 0;
    for (int s = 0; s < prog->nsyms && at < sizeof note; s++)
        at += (size_t)snprintf(note + at, sizeof note - at, "%s%s", s ? ", " : ", FLOPs and bytes in ",
                               prog->syms[s]);
    rctx x = {prog, NULL};
    if (!print_table(out, &x, note))
        return false;
    /* The memory plan as the library makes it, placed for every symbol = 1. */
    const dl_func *f = prog->f;
    int n = cg_program_nbuffers(f);
    int64_t *bytes = sup_malloc(sizeof *bytes * ((size_t)n + 1));
    cg_memplan *mp = bytes ? cg_memplan_create(prog) : NULL;
    if (mp) {
        for (const dl_op *op = f->first; op; op = op->next)
            for (int r = 0; r < op->nres; r++) {
                const dl_type *t = &op->res[r].type;
                int64_t b = ir_dtype_size(t->dtype);
                for (int d = 0; d < t->rank; d++)
                    b *= t->dim[d].c;
                bytes[op->res[r].id] = b;
            }
        cg_memplan_place(mp, bytes);
        if (prog->nsyms)
            fprintf(out, "the memory plan with every symbol = 1 (the library places it again for each call's shapes):\n");
        cg_memplan_print(out, mp);
    }
    cg_memplan_destroy(mp);
    sup_free(bytes);
    return mp != NULL;
}
