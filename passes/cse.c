/* Common subexpression elimination: two ops with the same opcode, operands (in either order
 * for commutative ops), attributes, checkpoint region and, for constants, type and values,
 * compute the same thing; the later one is replaced by the earlier. Ops with effects (assign,
 * return) are never merged. One forward walk with a hash table in the scratch arena. */
#include "passes/pass.h"

#include <string.h>

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/* Operand i in canonical order: commutative ops sort their two operands by address. */
static const dl_value *operand(const dl_op *op, int i)
{
    if ((ir_op_info(op->code)->props & P_COMM) && op->nin == 2 &&
        (uintptr_t)op->in[0] > (uintptr_t)op->in[1])
        return op->in[1 - i];
    return op->in[i];
}

static uint64_t hash_op(const dl_op *op)
{
    uint64_t h = mix((uint64_t)op->code, (uint64_t)op->nin);
    h = mix(h, (uint64_t)op->checkpoint);
    for (int i = 0; i < op->nin; i++)
        h = mix(h, (uint64_t)(uintptr_t)operand(op, i));
    for (int i = 0; i < op->nattr; i++) {
        const dl_attr *a = &op->attr[i];
        h = mix(h, (uint64_t)(uintptr_t)a->name);
        if (a->kind == DL_ATTR_INT || a->kind == DL_ATTR_BOOL)
            h = mix(h, (uint64_t)a->u.i);
        h = mix(h, (uint64_t)a->n);
    }
    return h;
}

static bool same_op(const dl_op *a, const dl_op *b)
{
    if (a->code != b->code || a->nin != b->nin || a->nres != b->nres || a->nattr != b->nattr ||
        a->checkpoint != b->checkpoint)
        return false;
    for (int i = 0; i < a->nin; i++)
        if (operand(a, i) != operand(b, i))
            return false;
    for (int i = 0; i < a->nattr; i++)
        if (!ir_attr_eq(&a->attr[i], &b->attr[i]))
            return false;
    /* Same operands and attributes give the same types, except for constants. */
    for (int i = 0; i < a->nres; i++)
        if (!ir_type_eq(&a->res[i].type, &b->res[i].type))
            return false;
    return true;
}

static int count_ops(const dl_func *f)
{
    int n = 0;
    for (const dl_op *op = f->first; op; op = op->next)
        n++;
    return n;
}

bool pass_cse(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)diag;
    for (dl_func *f = m->first; f; f = f->next) {
        size_t cap = 16;
        while (cap < 2 * (size_t)count_ops(f))
            cap *= 2;
        dl_op **table = SUP_NEWN(opts->scratch, dl_op *, cap);
        for (dl_op *op = f->first, *next; op; op = next) {
            next = op->next;
            ir_op_resolve_operands(op);
            if (ir_op_info(op->code)->props & P_EFFECT)
                continue;
            size_t h = (size_t)hash_op(op) & (cap - 1);
            while (table[h] && !same_op(table[h], op))
                h = (h + 1) & (cap - 1);
            if (!table[h]) {
                table[h] = op;
                continue;
            }
            for (int i = 0; i < op->nres; i++)
                op->res[i].repl = &table[h]->res[i];
            ir_op_remove(op);
        }
    }
    return true;
}
