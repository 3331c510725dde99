/* The IR's textual form, reading side: a hand-written lexer and recursive-descent parser for
 * the syntax ir/print.c writes (docs/ir.md). Syntax errors stop the parse with one
 * `file:line:col: error:`; errors in an op's meaning (shapes, unknown values) are reported and
 * the parse goes on, so one run shows them all. */
#include "ir/ir.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_EOF, T_ERROR, T_IDENT, T_LOCAL /* %x */, T_GLOBAL /* @f */, T_INT, T_FLOAT, T_STRING,
    T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_LBRACE, T_RBRACE, T_COMMA, T_COLON, T_EQUAL,
    T_ARROW, T_STAR,
} tok_kind;

typedef struct tok {
    tok_kind    kind;
    const char *p;        /* the token's text (for LOCAL/GLOBAL without the sigil) */
    size_t      n;
    dl_loc      loc;
    int64_t     i;
    double      f;
    const char *bad;      /* T_ERROR: what is wrong with it, when more than "invalid" */
} tok;

typedef struct parser {
    const char *src, *end, *cur;
    int         line, col;
    const char *file;
    tok         t;
    dl_module  *m;
    dl_diag    *diag;
    bool        failed;   /* a syntax error: stop */
    bool        bad;      /* any error */
    /* Names of the current function: interned name -> value (NULL entry: a poisoned value). */
    const char **names;
    dl_value   **vals;
    bool        *poison;
    int          nnames, capnames;
} parser;

/* ---- lexer ----------------------------------------------------------------------------- */

static void advance_char(parser *ps)
{
    if (*ps->cur == '\n') {
        ps->line++;
        ps->col = 1;
    } else
        ps->col++;
    ps->cur++;
}

static const char unterminated[] = "an unterminated string";

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.';
}

static void next(parser *ps)
{
    /* Where the previous token ended: end of file is reported there, on a line that exists
     * (after a final newline there is none to show). */
    dl_loc prev_end = {ps->file, ps->line, ps->col};
    /* Whitespace and // comments. */
    for (;;) {
        while (ps->cur < ps->end && (*ps->cur == ' ' || *ps->cur == '\t' || *ps->cur == '\n' ||
                                     *ps->cur == '\r'))
            advance_char(ps);
        if (ps->end - ps->cur >= 2 && ps->cur[0] == '/' && ps->cur[1] == '/') {
            while (ps->cur < ps->end && *ps->cur != '\n')
                advance_char(ps);
            continue;
        }
        break;
    }
    tok *t = &ps->t;
    *t = (tok){.p = ps->cur, .loc = {ps->file, ps->line, ps->col}};
    if (ps->cur >= ps->end) {
        t->kind = T_EOF;
        t->loc = prev_end;
        return;
    }
    char c = *ps->cur;
    static const char punct[] = "()[]{},:=*";
    static const tok_kind punct_kind[] = {T_LPAREN, T_RPAREN, T_LBRACK, T_RBRACK, T_LBRACE,
                                          T_RBRACE, T_COMMA,  T_COLON,  T_EQUAL,  T_STAR};
    const char *pp = strchr(punct, c);
    if (c && pp) {
        t->kind = punct_kind[pp - punct];
        t->n = 1;
        advance_char(ps);
        return;
    }
    if (c == '-' && ps->end - ps->cur >= 2 && ps->cur[1] == '>') {
        t->kind = T_ARROW;
        t->n = 2;
        advance_char(ps);
        advance_char(ps);
        return;
    }
    if (c == '%' || c == '@') {
        advance_char(ps);
        t->p = ps->cur;
        while (ps->cur < ps->end && is_ident(*ps->cur))
            advance_char(ps);
        t->n = (size_t)(ps->cur - t->p);
        t->kind = t->n ? (c == '%' ? T_LOCAL : T_GLOBAL) : T_ERROR;
        if (!t->n) {            /* a sigil with no name: show the sigil in the message */
            t->p--;
            t->n = 1;
        }
        return;
    }
    if ((c >= '0' && c <= '9') || (c == '-' && ps->end - ps->cur >= 2 &&
                                   ((ps->cur[1] >= '0' && ps->cur[1] <= '9') || ps->cur[1] == 'i'))) {
        const char *s = ps->cur;
        if (c == '-' && !strncmp(s, "-inf", 4) && (s + 4 >= ps->end || !is_ident(s[4]))) {
            t->kind = T_FLOAT;
            t->f = -INFINITY;
            t->n = 4;
            for (int i = 0; i < 4; i++)
                advance_char(ps);
            return;
        }
        const char *e = s + (c == '-');
        bool isfloat = false;
        while (e < ps->end && ((*e >= '0' && *e <= '9') || *e == '.' || *e == 'e' || *e == 'E' ||
                               ((*e == '-' || *e == '+') && (e[-1] == 'e' || e[-1] == 'E')))) {
            isfloat |= *e == '.' || *e == 'e' || *e == 'E';
            e++;
        }
        /* strtod/strtoll need a terminator: copy the (short) literal out. */
        char buf[64];
        size_t n = (size_t)(e - s);
        t->n = n;
        while (ps->cur < e)
            advance_char(ps);
        if (n >= sizeof buf) {
            t->kind = T_ERROR;
            t->bad = "a number too long";
            return;
        }
        memcpy(buf, s, n);
        buf[n] = 0;
        char *endp;
        errno = 0;
        if (isfloat) {
            t->kind = T_FLOAT;
            t->f = strtod(buf, &endp);
        } else {
            t->kind = T_INT;
            t->i = strtoll(buf, &endp, 10);
        }
        /* strtod reports underflow too, for subnormals the printer writes (5e-324): only
         * overflow is out of range. */
        bool range = errno == ERANGE && (!isfloat || isinf(t->f));
        if (*endp || range)
            t->kind = T_ERROR;
        if (!*endp && range)
            t->bad = "an out-of-range number";
        return;
    }
    if (is_ident(c) && c != '.') {
        while (ps->cur < ps->end && is_ident(*ps->cur))
            advance_char(ps);
        t->n = (size_t)(ps->cur - t->p);
        t->kind = T_IDENT;
        if ((t->n == 3 && !memcmp(t->p, "inf", 3)) || (t->n == 3 && !memcmp(t->p, "nan", 3))) {
            t->kind = T_FLOAT;
            t->f = t->p[0] == 'i' ? INFINITY : NAN;
        }
        return;
    }
    if (c == '"') {
        advance_char(ps);
        t->p = ps->cur;
        while (ps->cur < ps->end && *ps->cur != '"' && *ps->cur != '\n') {
            if (*ps->cur == '\\' && ps->cur + 1 < ps->end)
                advance_char(ps);
            advance_char(ps);
        }
        if (ps->cur >= ps->end || *ps->cur != '"') {
            t->kind = T_ERROR;
            t->bad = unterminated;
            t->n = (size_t)(ps->cur - t->p);
            return;
        }
        t->n = (size_t)(ps->cur - t->p);
        t->kind = T_STRING;
        advance_char(ps);
        return;
    }
    t->kind = T_ERROR;
    t->n = 1;
    advance_char(ps);
}

/* ---- errors ---------------------------------------------------------------------------- */

static const char *tok_desc(const tok *t, char *buf, size_t n)
{
    switch (t->kind) {
    case T_EOF: return "end of file";
    case T_ERROR:
        if (t->bad == unterminated)     /* its text runs on to the end of the line */
            return t->bad;
        if (t->bad)
            snprintf(buf, n, "%s '%.*s'", t->bad, (int)(t->n > 20 ? 20 : t->n), t->p);
        else if (t->n && ((unsigned char)*t->p < 0x20 || (unsigned char)*t->p >= 0x7f))
            snprintf(buf, n, "invalid byte 0x%02x", (unsigned char)*t->p);   /* not printable */
        else
            snprintf(buf, n, "invalid token '%.*s'", (int)(t->n > 20 ? 20 : t->n), t->p);
        return buf;
    case T_STRING: return "a string";
    case T_LOCAL: snprintf(buf, n, "'%%%.*s'", (int)t->n, t->p); return buf;
    case T_GLOBAL: snprintf(buf, n, "'@%.*s'", (int)t->n, t->p); return buf;
    default: snprintf(buf, n, "'%.*s'", (int)(t->n > 40 ? 40 : t->n), t->p); return buf;
    }
}

static bool syntax(parser *ps, const char *what)
{
    if (!ps->failed) {
        char buf[80];
        sup_diag_error(ps->diag, ps->t.loc, "expected %s, found %s", what,
                       tok_desc(&ps->t, buf, sizeof buf));
    }
    ps->failed = ps->bad = true;
    return false;
}

static bool accept(parser *ps, tok_kind k)
{
    if (ps->t.kind != k)
        return false;
    next(ps);
    return true;
}

static bool expect(parser *ps, tok_kind k, const char *what)
{
    return accept(ps, k) || syntax(ps, what);
}

static bool is_word(const tok *t, const char *w)
{
    return t->kind == T_IDENT && t->n == strlen(w) && !memcmp(t->p, w, t->n);
}

/* ---- names ----------------------------------------------------------------------------- */

/* The current function's names: an open-addressing table keyed by the interned name pointer.
 * A NULL value with `poison` set stands for the results of an op that failed to build, so its
 * users do not report a second error. */

static size_t name_slot(const parser *ps, const char *name)
{
    size_t mask = (size_t)ps->capnames - 1, h = ((uintptr_t)name >> 4) * 0x9e3779b97f4a7c15ull;
    for (h &= mask; ps->names[h] && ps->names[h] != name; h = (h + 1) & mask)
        ;
    return h;
}

static int name_find(parser *ps, const char *name)
{
    if (!ps->capnames)
        return -1;
    size_t h = name_slot(ps, name);
    return ps->names[h] ? (int)h : -1;
}

static void names_reset(parser *ps)
{
    ps->names = NULL;
    ps->vals = NULL;
    ps->poison = NULL;
    ps->nnames = ps->capnames = 0;
}

static void name_define(parser *ps, const char *name, dl_value *v, bool poison, dl_loc loc)
{
    if (name_find(ps, name) >= 0) {
        sup_diag_error(ps->diag, loc, "redefinition of value '%%%s'", name);
        ps->bad = true;
        return;
    }
    if (2 * (ps->nnames + 1) > ps->capnames) {
        /* Rehash into a table twice the size (the old one stays in the arena). */
        parser old = *ps;
        ps->capnames = old.capnames ? old.capnames * 2 : 64;
        ps->names = ir_alloc(ps->m, sizeof *ps->names * (size_t)ps->capnames);
        ps->vals = ir_alloc(ps->m, sizeof *ps->vals * (size_t)ps->capnames);
        ps->poison = ir_alloc(ps->m, sizeof *ps->poison * (size_t)ps->capnames);
        for (int i = 0; i < old.capnames; i++)
            if (old.names[i]) {
                size_t h = name_slot(ps, old.names[i]);
                ps->names[h] = old.names[i];
                ps->vals[h] = old.vals[i];
                ps->poison[h] = old.poison[i];
            }
    }
    size_t h = name_slot(ps, name);
    ps->names[h] = name;
    ps->vals[h] = v;
    ps->poison[h] = poison;
    ps->nnames++;
}

/* ---- types ----------------------------------------------------------------------------- */

/* dim := factor ('*' factor)*, factor := INT | NAME. `allow_neg`: -1 alone (attributes). */
static bool parse_dim(parser *ps, dl_dim *d, bool allow_neg)
{
    *d = ir_dim_const(1);
    do {
        if (ps->t.kind == T_INT) {
            if (ps->t.i < 0 && !(allow_neg && ps->t.i == -1 && d->c == 1 && d->n == 0))
                return syntax(ps, "a dimension (a size, a symbol or a product of them)");
            if (ps->t.i > IR_MAX_DIM) {
                sup_diag_error(ps->diag, ps->t.loc, "dimension %lld is above the limit of 2^48",
                               (long long)ps->t.i);
                ps->failed = ps->bad = true;
                return false;
            }
            if (!ir_dim_mul(*d, ir_dim_const(ps->t.i), d) || d->c > IR_MAX_DIM) {
                sup_diag_error(ps->diag, ps->t.loc, "dimension is above the limit of 2^48");
                ps->failed = ps->bad = true;
                return false;
            }
        } else if (ps->t.kind == T_IDENT) {
            dl_dim s = ir_dim_sym(ir_intern(ps->m, ps->t.p, ps->t.n));
            if (!ir_dim_mul(*d, s, d)) {
                sup_diag_error(ps->diag, ps->t.loc, "a dimension can be a product of at most %d symbols",
                               DL_DIM_MAXSYM);
                ps->failed = ps->bad = true;
                return false;
            }
        } else
            return syntax(ps, "a dimension (a size, a symbol or a product of them)");
        next(ps);
        if (d->c == -1 && ps->t.kind == T_STAR)
            return syntax(ps, "',' or ']' after -1");
    } while (accept(ps, T_STAR));
    return true;
}

static bool parse_type(parser *ps, dl_type *t)
{
    if (ps->t.kind != T_IDENT || !ir_dtype_parse(ps->t.p, ps->t.n, &t->dtype))
        return syntax(ps, "a type (f32, f16, bf16, f64, i8, u8, i32, i64 or bool)");
    next(ps);
    t->rank = 0;
    if (!accept(ps, T_LBRACK))
        return true;
    if (accept(ps, T_RBRACK))
        return syntax(ps, "a dimension (write a scalar as the bare dtype)");
    do {
        if (t->rank == DL_MAX_RANK) {
            sup_diag_error(ps->diag, ps->t.loc, "rank above the limit of %d", DL_MAX_RANK);
            ps->failed = ps->bad = true;
            return false;
        }
        if (!parse_dim(ps, &t->dim[t->rank++], false))
            return false;
    } while (accept(ps, T_COMMA));
    return expect(ps, T_RBRACK, "',' or ']'");
}

/* ---- attributes ------------------------------------------------------------------------ */

static bool parse_number(parser *ps, double *out)
{
    if (ps->t.kind == T_INT)
        *out = (double)ps->t.i;
    else if (ps->t.kind == T_FLOAT)
        *out = ps->t.f;
    else
        return syntax(ps, "a number");
    next(ps);
    return true;
}

static const char *unescape(parser *ps, const char *p, size_t n)
{
    char *d = ir_alloc(ps->m, n + 1), *o = d;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            i++;
            *o++ = p[i] == 'n' ? '\n' : p[i];
        } else
            *o++ = p[i];
    }
    return ir_intern(ps->m, d, (size_t)(o - d));
}

/* A bracketed list of elements of `kind` into a. */
static bool parse_list(parser *ps, dl_attr *a)
{
    if (!expect(ps, T_LBRACK, "'['"))
        return false;
    int cap = 8;
    size_t esz = a->kind == DL_ATTR_INTS ? sizeof(int64_t) : a->kind == DL_ATTR_FLOATS ? sizeof(double) : sizeof(dl_dim);
    void *arr = ir_alloc(ps->m, esz * (size_t)cap);
    a->n = 0;
    if (!accept(ps, T_RBRACK)) {
        do {
            if (a->n == cap) {
                arr = sup_arena_grow(&ps->m->arena, arr, esz * (size_t)cap, esz * (size_t)cap * 2);
                cap *= 2;
            }
            if (a->kind == DL_ATTR_INTS) {
                if (ps->t.kind != T_INT)
                    return syntax(ps, "an integer");
                ((int64_t *)arr)[a->n++] = ps->t.i;
                next(ps);
            } else if (a->kind == DL_ATTR_FLOATS) {
                if (!parse_number(ps, &((double *)arr)[a->n++]))
                    return false;
            } else if (!parse_dim(ps, &((dl_dim *)arr)[a->n++], true))
                return false;
        } while (accept(ps, T_COMMA));
        if (!expect(ps, T_RBRACK, "',' or ']'"))
            return false;
    }
    if (a->kind == DL_ATTR_INTS)
        a->u.ints = arr;
    else if (a->kind == DL_ATTR_FLOATS)
        a->u.floats = arr;
    else
        a->u.dims = arr;
    return true;
}

static bool parse_attr_value(parser *ps, dl_attr *a)
{
    switch (a->kind) {
    case DL_ATTR_INT:
        if (ps->t.kind != T_INT)
            return syntax(ps, "an integer");
        a->u.i = ps->t.i;
        next(ps);
        return true;
    case DL_ATTR_FLOAT: return parse_number(ps, &a->u.f);
    case DL_ATTR_BOOL:
        if (!is_word(&ps->t, "true") && !is_word(&ps->t, "false"))
            return syntax(ps, "true or false");
        a->u.b = ps->t.p[0] == 't';
        next(ps);
        return true;
    case DL_ATTR_STR:
        if (ps->t.kind != T_STRING)
            return syntax(ps, "a string");
        a->u.s = unescape(ps, ps->t.p, ps->t.n);
        next(ps);
        return true;
    case DL_ATTR_DTYPE:
        if (ps->t.kind != T_IDENT || !ir_dtype_parse(ps->t.p, ps->t.n, &a->u.dt))
            return syntax(ps, "a dtype");
        next(ps);
        return true;
    default: return parse_list(ps, a);
    }
}

/* `{name=value, ...}` of an op; `checkpoint=N` is the op's region marker, `group=N` its fusion
 * group. */
static bool parse_op_attrs(parser *ps, dl_opcode code, dl_attr **attrs, int *nattr, int *ckpt, int *group)
{
    int cap = 0;
    *attrs = NULL;
    *nattr = 0;
    if (accept(ps, T_RBRACE))
        return true;
    do {
        if (ps->t.kind != T_IDENT)
            return syntax(ps, "an attribute name");
        tok name = ps->t;
        next(ps);
        if (!expect(ps, T_EQUAL, "'='"))
            return false;
        if (name.n == 10 && !memcmp(name.p, "checkpoint", 10)) {
            if (ps->t.kind != T_INT || ps->t.i <= 0 || ps->t.i > 1000000)
                return syntax(ps, "a checkpoint region number (a positive integer)");
            *ckpt = (int)ps->t.i;
            next(ps);
            continue;
        }
        if (name.n == 5 && !memcmp(name.p, "group", 5)) {
            if (ps->t.kind != T_INT || ps->t.i <= 0 || ps->t.i > 100000000)
                return syntax(ps, "a fusion group number (a positive integer)");
            *group = (int)ps->t.i;
            next(ps);
            continue;
        }
        const dl_attr_spec *s = ir_attr_spec(code, name.p, name.n);
        if (!s) {
            sup_diag_error(ps->diag, name.loc, "'%s' has no attribute '%.*s'", ir_op_info(code)->name,
                           (int)name.n, name.p);
            ps->failed = ps->bad = true;
            return false;
        }
        if (*nattr == cap) {
            int ncap = cap ? cap * 2 : 4;
            *attrs = sup_arena_grow(&ps->m->arena, *attrs, sizeof **attrs * (size_t)cap,
                                    sizeof **attrs * (size_t)ncap);
            cap = ncap;
        }
        dl_attr *a = &(*attrs)[(*nattr)++];
        a->name = ir_intern(ps->m, name.p, name.n);
        a->kind = s->kind;
        if (!parse_attr_value(ps, a))
            return false;
    } while (accept(ps, T_COMMA));
    return expect(ps, T_RBRACE, "',' or '}'");
}

/* ---- ops and functions ----------------------------------------------------------------- */

enum { MAX_RES = 64 };

static bool parse_op(parser *ps, dl_func *f)
{
    tok resname[MAX_RES];
    int nres = 0;
    if (ps->t.kind == T_LOCAL) {
        do {
            if (ps->t.kind != T_LOCAL)
                return syntax(ps, "a result name");
            if (nres == MAX_RES) {
                sup_diag_error(ps->diag, ps->t.loc, "more than %d results", MAX_RES);
                ps->failed = ps->bad = true;
                return false;
            }
            resname[nres++] = ps->t;
            next(ps);
        } while (accept(ps, T_COMMA));
        if (!expect(ps, T_EQUAL, "'='"))
            return false;
    }
    if (ps->t.kind != T_IDENT)
        return syntax(ps, "an op name");
    tok optok = ps->t;
    dl_opcode code;
    if (!ir_op_lookup(optok.p, optok.n, &code)) {
        sup_diag_error(ps->diag, optok.loc, "unknown op '%.*s'", (int)optok.n, optok.p);
        ps->failed = ps->bad = true;
        return false;
    }
    next(ps);

    /* Operands. */
    int nin = 0, capin = 0;
    dl_value **in = NULL;
    bool poisoned = false;
    if (ps->t.kind == T_LOCAL) {
        do {
            if (ps->t.kind != T_LOCAL)
                return syntax(ps, "an operand");
            const char *name = ir_intern(ps->m, ps->t.p, ps->t.n);
            int k = name_find(ps, name);
            if (k < 0) {
                sup_diag_error(ps->diag, ps->t.loc, "use of undefined value '%%%s'", name);
                ps->bad = true;
                poisoned = true;
            } else
                poisoned |= ps->poison[k];
            if (nin == capin) {
                int ncap = capin ? capin * 2 : 4;
                in = sup_arena_grow(&ps->m->arena, in, sizeof *in * (size_t)capin,
                                    sizeof *in * (size_t)ncap);
                capin = ncap;
            }
            in[nin++] = k >= 0 ? ps->vals[k] : NULL;
            next(ps);
        } while (accept(ps, T_COMMA));
    }

    dl_attr *attrs = NULL;
    int nattr = 0, ckpt = 0, group = 0;
    if (accept(ps, T_LBRACE) && !parse_op_attrs(ps, code, &attrs, &nattr, &ckpt, &group))
        return false;

    dl_type types[MAX_RES];
    int ntypes = 0;
    dl_loc typeloc = ps->t.loc;
    if (accept(ps, T_COLON)) {
        typeloc = ps->t.loc;
        do {
            if (ntypes == MAX_RES)
                return syntax(ps, "fewer result types");
            if (!parse_type(ps, &types[ntypes++]))
                return false;
        } while (accept(ps, T_COMMA));
        if (ntypes != nres) {
            sup_diag_error(ps->diag, typeloc, "%d result type%s for %d result%s", ntypes,
                           ntypes == 1 ? "" : "s", nres, nres == 1 ? "" : "s");
            ps->bad = true;
            poisoned = true;
        }
    } else if (code == DL_OP_CONSTANT) {
        return syntax(ps, "':' and the constant's type");
    }

    dl_op *op = NULL;
    if (!poisoned) {
        /* A constant's value attribute must be present before its type is checked. */
        if (code == DL_OP_CONSTANT && !ir_attr_find(nattr, attrs, "value")) {
            sup_diag_error(ps->diag, optok.loc, "'constant' needs attribute 'value'");
            ps->bad = true;
        } else
            op = ir_op_create(f, code, nin, in, nattr, attrs, nres, ntypes ? &types[0] : NULL,
                              optok.loc, ps->diag);
        if (!op)
            ps->bad = true;
    }
    if (op) {
        op->checkpoint = ckpt;
        op->group = group;
        ir_op_append(f, op);
        if (op->nres != nres) {
            sup_diag_error(ps->diag, optok.loc, "'%s' has %d result%s, but %d %s named",
                           ir_op_info(code)->name, op->nres, op->nres == 1 ? "" : "s", nres,
                           nres == 1 ? "is" : "are");
            ps->bad = true;
        }
        for (int i = 0; i < ntypes && i < op->nres; i++)
            if (!ir_type_eq(&types[i], &op->res[i].type)) {
                char a[1400], b[1400];
                ir_type_str(&types[i], a, sizeof a);
                ir_type_str(&op->res[i].type, b, sizeof b);
                sup_diag_error(ps->diag, typeloc, "result type %s does not match the inferred type %s",
                               a, b);
                ps->bad = true;
            }
    }
    for (int i = 0; i < nres; i++) {
        bool ok = op && i < op->nres;
        name_define(ps, ir_intern(ps->m, resname[i].p, resname[i].n), ok ? &op->res[i] : NULL,
                    !ok, resname[i].loc);
    }
    return true;
}

/* `{role=..., path="..."}` after an argument or result type. */
static bool parse_role_attrs(parser *ps, bool is_arg, dl_role *role, const char **path,
                             const char **init)
{
    do {
        if (ps->t.kind != T_IDENT)
            return syntax(ps, is_arg ? "'role', 'path' or 'init'" : "'role'");
        tok name = ps->t;
        next(ps);
        if (!expect(ps, T_EQUAL, "'='"))
            return false;
        if (is_word(&name, "role")) {
            if (ps->t.kind != T_IDENT || !ir_role_parse(ps->t.p, ps->t.n, role) ||
                (is_arg != (*role == DL_ROLE_INPUT || *role == DL_ROLE_PARAM || *role == DL_ROLE_BUFFER)))
                return syntax(ps, is_arg ? "an argument role (input, param, buffer)" :
                                           "a result role (output, loss, metric)");
            next(ps);
        } else if (is_arg && (is_word(&name, "path") || is_word(&name, "init"))) {
            if (ps->t.kind != T_STRING)
                return syntax(ps, "a string");
            *(name.p[0] == 'p' ? path : init) = unescape(ps, ps->t.p, ps->t.n);
            next(ps);
        } else {
            ps->t = name;
            return syntax(ps, is_arg ? "'role', 'path' or 'init'" : "'role'");
        }
    } while (accept(ps, T_COMMA));
    return expect(ps, T_RBRACE, "',' or '}'");
}

static bool parse_func(parser *ps)
{
    dl_loc floc = ps->t.loc;
    if (!is_word(&ps->t, "func"))
        return syntax(ps, "'func'");
    next(ps);
    if (ps->t.kind != T_GLOBAL)
        return syntax(ps, "a function name ('@name')");
    const char *fname = ir_intern(ps->m, ps->t.p, ps->t.n);
    if (ir_func_find(ps->m, fname)) {
        sup_diag_error(ps->diag, ps->t.loc, "redefinition of function '@%s'", fname);
        ps->bad = true;
    }
    dl_func *f = ir_func_create(ps->m, fname, floc);
    next(ps);
    names_reset(ps);
    if (!expect(ps, T_LPAREN, "'('"))
        return false;
    /* Arguments: all are added before any op refers to them (ir_func_add_arg moves them). */
    tok argtok[256];
    if (!accept(ps, T_RPAREN)) {
        do {
            if (ps->t.kind != T_LOCAL)
                return syntax(ps, "an argument ('%name')");
            if (f->nargs == 256) {
                sup_diag_error(ps->diag, ps->t.loc, "more than 256 arguments");
                ps->failed = ps->bad = true;
                return false;
            }
            tok name = ps->t;
            if (!((name.p[0] >= 'a' && name.p[0] <= 'z') || (name.p[0] >= 'A' && name.p[0] <= 'Z') ||
                  name.p[0] == '_'))
                return syntax(ps, "an argument name that starts with a letter or '_'");
            next(ps);
            dl_type t;
            if (!expect(ps, T_COLON, "':'") || !parse_type(ps, &t))
                return false;
            dl_role role = DL_ROLE_INPUT;
            const char *path = NULL, *init = NULL;
            if (accept(ps, T_LBRACE) && !parse_role_attrs(ps, true, &role, &path, &init))
                return false;
            argtok[f->nargs] = name;
            ir_func_add_arg(f, ir_intern(ps->m, name.p, name.n), role, path, &t);
            f->arginfo[f->nargs - 1].init = init;
        } while (accept(ps, T_COMMA));
        if (!expect(ps, T_RPAREN, "',' or ')'"))
            return false;
    }
    for (int i = 0; i < f->nargs; i++)
        name_define(ps, f->arginfo[i].name, f->args[i], false, argtok[i].loc);
    if (!expect(ps, T_ARROW, "'->'") || !expect(ps, T_LPAREN, "'('"))
        return false;
    dl_result_info res[256];
    int nres = 0;
    if (!accept(ps, T_RPAREN)) {
        do {
            if (nres == 256)
                return syntax(ps, "fewer results");
            dl_result_info *r = &res[nres++];
            r->role = DL_ROLE_OUTPUT;
            if (!parse_type(ps, &r->type))
                return false;
            if (accept(ps, T_LBRACE) && !parse_role_attrs(ps, false, &r->role, NULL, NULL))
                return false;
        } while (accept(ps, T_COMMA));
        if (!expect(ps, T_RPAREN, "',' or ')'"))
            return false;
    }
    ir_func_set_results(f, nres, res);
    dl_loc open = ps->t.loc;
    if (!expect(ps, T_LBRACE, "'{'"))
        return false;
    while (ps->t.kind != T_RBRACE) {
        if (ps->t.kind == T_EOF) {
            syntax(ps, "'}'");
            sup_diag_note(ps->diag, open, "to close the function '@%s' opened here", fname);
            return false;
        }
        if (!parse_op(ps, f))
            return false;
    }
    next(ps);
    return true;
}

/* The parse proper; ir_parse wraps it with the out-of-memory landing. */
static bool parse_module(dl_module *m, const char *name, const char *text, size_t len,
                         dl_diag *diag)
{
    parser ps = {.src = text, .end = text + len, .cur = text, .line = 1, .col = 1, .file = name,
                 .m = m, .diag = diag};
    next(&ps);
    while (ps.t.kind != T_EOF && !ps.failed)
        parse_func(&ps);
    return !ps.bad;
}

dl_module *ir_parse(const char *name, const char *text, size_t len, dl_diag *diag)
{
    static const dl_loc nowhere;
    dl_module *m = ir_module_create();
    if (!m) {
        sup_diag_error(diag, nowhere, "out of memory while reading '%s'", name);
        return NULL;
    }
    /* Every allocation of the parse is in the module: on exhaustion drop it whole. */
    jmp_buf oom;
    if (setjmp(oom)) {
        ir_module_destroy(m);
        sup_diag_error(diag, nowhere, "out of memory while reading '%s'", name);
        return NULL;
    }
    m->arena.oom = &oom;
    bool ok = parse_module(m, name, text, len, diag);
    m->arena.oom = NULL;
    if (!ok) {
        ir_module_destroy(m);
        return NULL;
    }
    return m;
}
