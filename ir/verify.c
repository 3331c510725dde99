/* The verifier: the IR's invariants, checked after parsing and after every pass in tests and
 * debug builds. Types (every result is what inference says), SSA (one definition, defined
 * before every use in the same function, hence no cycles), use counts, attributes against the
 * op table, one `return` at the end matching the signature, `assign` only to buffers. */
#include "ir/ir.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct vctx {
    dl_diag       *diag;
    const dl_func *f;
    bool           ok;
} vctx;

static void verr(vctx *v, dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void verr(vctx *v, dl_loc loc, const char *fmt, ...)
{
    char buf[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sup_diag_error(v->diag, loc, "in @%s: %s", v->f->name, buf);
    v->ok = false;
}

static bool is_arg_of(const dl_func *f, const dl_value *val)
{
    return !val->def && val->index >= 0 && val->index < f->nargs && f->args[val->index] == val;
}

static void check_types(vctx *v, const dl_op *op)
{
    const dl_op_info *info = ir_op_info(op->code);
    const dl_type *in[256];
    dl_type out[64];
    char err[512];
    if (op->nin > 256 || op->nres > 64) {
        verr(v, op->loc, "'%s' has too many operands or results", info->name);
        return;
    }
    for (int i = 0; i < op->nin; i++)
        in[i] = &op->in[i]->type;
    if (op->code == DL_OP_CONSTANT && op->nres == 1)
        out[0] = op->res[0].type;
    int n = op->nres;
    if (!ir_infer(op->code, op->nin, in, op->nattr, op->attr, out, &n, err, sizeof err)) {
        verr(v, op->loc, "%s", err);
        return;
    }
    for (int i = 0; i < op->nres; i++)
        if (!ir_type_eq(&out[i], &op->res[i].type)) {
            char a[1400], b[1400];
            ir_type_str(&op->res[i].type, a, sizeof a);
            ir_type_str(&out[i], b, sizeof b);
            verr(v, op->loc, "'%s' result %d has type %s but inference gives %s", info->name, i, a, b);
        }
}

static void check_return(vctx *v, const dl_op *op)
{
    const dl_func *f = v->f;
    if (op->next)
        verr(v, op->loc, "'return' must be the last op");
    if (op->nin != f->nresults) {
        verr(v, op->loc, "'return' has %d operands but the function has %d results", op->nin,
             f->nresults);
        return;
    }
    for (int i = 0; i < op->nin; i++)
        if (!ir_type_eq(&op->in[i]->type, &f->results[i].type)) {
            char a[1400], b[1400];
            ir_type_str(&op->in[i]->type, a, sizeof a);
            ir_type_str(&f->results[i].type, b, sizeof b);
            verr(v, op->loc, "'return' operand %d has type %s but the function returns %s", i, a, b);
        }
}

static void verify_func(vctx *v, const dl_func *f)
{
    static _Atomic unsigned epoch;
    unsigned mark = ++epoch;
    v->f = f;
    for (int i = 0; i < f->nargs; i++) {
        if (f->args[i]->def || f->args[i]->index != i)
            verr(v, f->loc, "argument %d is malformed", i);
        for (int j = 0; j < i; j++)
            if (f->arginfo[i].name == f->arginfo[j].name)
                verr(v, f->loc, "two arguments are named '%%%s'", f->arginfo[i].name);
        if (f->arginfo[i].role > DL_ROLE_BUFFER)
            verr(v, f->loc, "argument '%%%s' has a result role", f->arginfo[i].name);
    }
    for (int i = 0; i < f->nresults; i++)
        if (f->results[i].role < DL_ROLE_OUTPUT)
            verr(v, f->loc, "result %d has an argument role", i);

    /* Positions: each op's results get its index (from 1), its mark says "in this list". */
    int pos = 0;
    for (dl_op *op = f->first; op; op = op->next) {
        pos++;
        op->mark = mark;
        for (int i = 0; i < op->nres; i++)
            op->res[i].id = pos;
        if (op->func != f)
            verr(v, op->loc, "op %d does not point back to its function", pos);
        if ((op->prev ? op->prev->next : f->first) != op)
            verr(v, op->loc, "op %d is badly linked", pos);
    }
    if (!f->last || f->last->code != DL_OP_RETURN)
        verr(v, f->last ? f->last->loc : f->loc, "the function does not end with 'return'");

    pos = 0;
    bool ssa_ok = true;
    for (dl_op *op = f->first; op; op = op->next) {
        pos++;
        const dl_op_info *info = ir_op_info(op->code);
        for (int i = 0; i < op->nin; i++) {
            const dl_value *val = op->in[i];
            if (!val) {
                verr(v, op->loc, "'%s' operand %d is missing", info->name, i);
                ssa_ok = false;
                continue;
            }
            if (val->repl)
                verr(v, op->loc, "'%s' operand %d was replaced but still used", info->name, i);
            if (val->def) {
                const dl_op *d = val->def;
                bool here = d->mark == mark && d->func == f && val->index < d->nres &&
                            &d->res[val->index] == val;
                if (!here) {
                    verr(v, op->loc, "'%s' operand %d is defined outside the function", info->name, i);
                    ssa_ok = false;
                } else if (val->id >= pos) {
                    verr(v, op->loc, "'%s' operand %d is used before it is defined", info->name, i);
                    ssa_ok = false;
                }
            } else if (!is_arg_of(f, val)) {
                verr(v, op->loc, "'%s' operand %d is an argument of another function", info->name, i);
                ssa_ok = false;
            }
        }
        if (info->nres >= 0 && op->nres != info->nres)
            verr(v, op->loc, "'%s' has %d results, not %d", info->name, op->nres, info->nres);
        for (int i = 0; i < op->nres; i++)
            if (op->res[i].def != op || op->res[i].index != i)
                verr(v, op->loc, "'%s' result %d does not point back to it", info->name, i);
        if (op->code == DL_OP_RETURN)
            check_return(v, op);
        if (op->code == DL_OP_ASSIGN && op->nin == 2 &&
            (!is_arg_of(f, op->in[0]) || (f->arginfo[op->in[0]->index].role != DL_ROLE_BUFFER &&
                                          f->arginfo[op->in[0]->index].role != DL_ROLE_PARAM)))
            verr(v, op->loc, "'assign' must write a function argument with role=buffer or role=param");
        if (ssa_ok)
            check_types(v, op);
    }

    /* Fusion groups: each a run of consecutive ops, numbered upwards down the function. */
    int last_group = 0;
    for (dl_op *op = f->first; op; op = op->next) {
        if (!op->group || (op->prev && op->prev->group == op->group))
            continue;
        if (op->group <= last_group)
            verr(v, op->loc, "'%s' is in fusion group %d, which is not consecutive or not numbered in order",
                 ir_op_info(op->code)->name, op->group);
        if (ir_op_info(op->code)->props & P_TERM || op->code == DL_OP_ASSIGN)
            verr(v, op->loc, "'%s' cannot be in a fusion group", ir_op_info(op->code)->name);
        last_group = op->group > last_group ? op->group : last_group;
    }

    /* Use counts: recount into `id`, then compare. */
    for (int i = 0; i < f->nargs; i++)
        f->args[i]->id = 0;
    for (dl_op *op = f->first; op; op = op->next)
        for (int i = 0; i < op->nres; i++)
            op->res[i].id = 0;
    if (!ssa_ok)
        return;
    for (dl_op *op = f->first; op; op = op->next)
        for (int i = 0; i < op->nin; i++)
            op->in[i]->id++;
    for (int i = 0; i < f->nargs; i++)
        if (f->args[i]->id != f->args[i]->nuses)
            verr(v, f->loc, "argument '%%%s' is used %d times but counts %d", f->arginfo[i].name,
                 f->args[i]->id, f->args[i]->nuses);
    for (dl_op *op = f->first; op; op = op->next)
        for (int i = 0; i < op->nres; i++)
            if (op->res[i].id != op->res[i].nuses)
                verr(v, op->loc, "'%s' result %d is used %d times but counts %d",
                     ir_op_info(op->code)->name, i, op->res[i].id, op->res[i].nuses);
}

bool ir_verify(dl_module *m, dl_diag *diag)
{
    vctx v = {diag, NULL, true};
    for (const dl_func *f = m->first; f; f = f->next) {
        for (const dl_func *g = m->first; g != f; g = g->next)
            if (g->name == f->name) {
                v.f = f;
                verr(&v, f->loc, "two functions are named '@%s'", f->name);
            }
        verify_func(&v, f);
    }
    return v.ok;
}
