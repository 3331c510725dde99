/* Algebraic simplification: rewrites that make the graph smaller without changing any result
 * bit for bit (NaN and infinity included, so no x*0 -> 0 or x-x -> 0):
 *   x+0, 0+x, x-0, x*1, 1*x, x/1, x**1 -> x;   x**2 -> x*x
 *   neg(neg x), not(not x) -> x;   maximum(x, x), minimum(x, x), where(c, x, x) -> x
 *   cast to the same dtype -> x;   a widening round trip cast(cast(x, wide), dtype(x)) -> x
 *   reshape-like ops that keep the type -> x; a chain of them -> one reshape
 *   transpose/permute that keep the order -> x; a chain of them -> one permute
 *   expand/broadcast_to/slice/concat that keep the value -> x
 *   (a @ b)^T -> b^T @ a^T, the transposes swapping the last two dimensions, when nothing else
 *   uses a @ b: the gemm reads transposed operands where they lie, so the copy goes (a weight's
 *   gradient x^T @ g transposed back is g^T @ x); each element is the same sum over k
 * Each rewrite only applies when the result type equals the replacement's type. Dimension
 * attributes are put in canonical form first (non-negative, sorted where order does not
 * matter, transpose with dim0 < dim1) so that CSE sees `dim=-1` and `dim=1` as the same. */
#include "passes/decompose.h"
#include "passes/eval.h"
#include "passes/pass.h"

#include <stdlib.h>
#include <string.h>

static bool same_type(const dl_value *a, const dl_value *b) { return ir_type_eq(&a->type, &b->type); }

static bool is_reshape_like(dl_opcode c)
{
    return c == DL_OP_RESHAPE || c == DL_OP_FLATTEN || c == DL_OP_SQUEEZE || c == DL_OP_UNSQUEEZE;
}

/* Does every value of dtype `from` survive a trip through dtype `via`? */
static bool widens(dl_dtype from, dl_dtype via)
{
    switch (from) {
    case DL_F16:
    case DL_BF16: return via == DL_F32 || via == DL_F64 || via == from;
    case DL_F32: return via == DL_F64;
    case DL_I8: return via == DL_I32 || via == DL_I64 || via == DL_F32 || via == DL_F64;
    case DL_U8: return via == DL_I32 || via == DL_I64 || via == DL_F32 || via == DL_F64 ||
                       via == DL_F16 || via == DL_BF16;
    case DL_I32: return via == DL_I64 || via == DL_F64;
    case DL_BOOL: return via != DL_BOOL;
    default: return false;
    }
}

/* The permutation a transpose or permute applies (result dim i = input dim perm[i]). */
static void perm_of(const dl_op *op, int perm[DL_MAX_RANK])
{
    int r = op->in[0]->type.rank;
    for (int i = 0; i < r; i++)
        perm[i] = i;
    if (op->code == DL_OP_PERMUTE) {
        const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dims");
        for (int i = 0; i < r; i++)
            perm[i] = (int)((a->u.ints[i] % r + r) % r);
    } else if (r > 0) {
        int64_t d0 = IR_OP_ATTR(int, op, "dim0"), d1 = IR_OP_ATTR(int, op, "dim1");
        int a = (int)((d0 % r + r) % r), b = (int)((d1 % r + r) % r);
        perm[a] = b;
        perm[b] = a;
    }
}

static bool is_perm_op(dl_opcode c) { return c == DL_OP_TRANSPOSE || c == DL_OP_PERMUTE; }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Rewrites dimension attributes in place to their canonical form (the type does not change). */
static void canonicalize_dims(dl_op *op)
{
    static const char *const names[] = {"dim", "dim0", "dim1", "dims", "start_dim", "end_dim"};
    if (op->nin < 1)
        return;
    int rank = op->in[0]->type.rank;
    if (op->code == DL_OP_UNSQUEEZE || op->code == DL_OP_STACK)
        rank++;
    if (rank == 0)
        return;
    for (int i = 0; i < op->nattr; i++) {
        dl_attr *a = &op->attr[i];
        bool is_dim = false;
        for (size_t k = 0; k < sizeof names / sizeof *names; k++)
            is_dim |= !strcmp(a->name, names[k]);
        if (!is_dim)
            continue;
        if (a->kind == DL_ATTR_INT && a->u.i < 0)
            a->u.i += rank;
        if (a->kind != DL_ATTR_INTS)
            continue;
        for (int k = 0; k < a->n; k++)
            if (a->u.ints[k] < 0)
                a->u.ints[k] += rank;
        if (op->code != DL_OP_PERMUTE)    /* a set of dimensions, not an order */
            qsort(a->u.ints, (size_t)a->n, sizeof(int64_t), cmp_i64);
    }
    if (op->code == DL_OP_TRANSPOSE) {
        dl_attr *d0 = (dl_attr *)ir_attr_find(op->nattr, op->attr, "dim0");
        dl_attr *d1 = (dl_attr *)ir_attr_find(op->nattr, op->attr, "dim1");
        if (d0 && d1 && d0->u.i > d1->u.i) {
            int64_t t = d0->u.i;
            d0->u.i = d1->u.i;
            d1->u.i = t;
        }
    }
}

/* A new op of `code` on `in`, inserted before `at`. */
static dl_value *emit(dl_op *at, dl_opcode code, int nin, dl_value *const *in, int nattr,
                      const dl_attr *attr)
{
    dl_op *op = ir_op_create(at->func, code, nin, in, nattr, attr, 1, NULL, at->loc, NULL);
    SUP_ASSERT(op);
    op->checkpoint = at->checkpoint;
    ir_op_insert_before(at, op);
    return &op->res[0];
}

/* v with its last two dimensions swapped: a transpose's input, or a new transpose before `at`. */
static dl_value *swapped(dl_op *at, dl_value *v)
{
    if (dc_swap_last2(v->def))
        return v->def->in[0];
    int r = v->type.rank;
    dl_attr a[2] = {{.name = "dim0", .kind = DL_ATTR_INT, .u.i = r - 2}, {.name = "dim1", .kind = DL_ATTR_INT, .u.i = r - 1}};
    return emit(at, DL_OP_TRANSPOSE, 1, &v, 2, a);
}

/* The value `op` simplifies to, or NULL. */
static dl_value *simplify_op(dl_op *op)
{
    dl_value *x = op->nin > 0 ? op->in[0] : NULL, *y = op->nin > 1 ? op->in[1] : NULL;
    dl_value *r = op->nres == 1 ? &op->res[0] : NULL;
    dl_op *xd = x ? x->def : NULL;
    if (!r)
        return NULL;
    switch (op->code) {
    case DL_OP_ADD:
        if (pass_is_splat(y, 0) && same_type(x, r))
            return x;
        if (pass_is_splat(x, 0) && same_type(y, r))
            return y;
        return NULL;
    case DL_OP_SUB: return pass_is_splat(y, 0) && same_type(x, r) ? x : NULL;
    case DL_OP_MUL:
        if (pass_is_splat(y, 1) && same_type(x, r))
            return x;
        if (pass_is_splat(x, 1) && same_type(y, r))
            return y;
        return NULL;
    case DL_OP_DIV: return pass_is_splat(y, 1) && same_type(x, r) ? x : NULL;
    case DL_OP_POW:
        if (pass_is_splat(y, 1) && same_type(x, r))
            return x;
        if (pass_is_splat(y, 2) && same_type(x, r))
            return emit(op, DL_OP_MUL, 2, (dl_value *[]){x, x}, 0, NULL);
        return NULL;
    case DL_OP_NEG:
    case DL_OP_NOT: return xd && xd->code == op->code ? xd->in[0] : NULL;
    case DL_OP_MAXIMUM:
    case DL_OP_MINIMUM: return x == y ? x : NULL;
    case DL_OP_WHERE: return op->in[1] == op->in[2] && same_type(op->in[1], r) ? op->in[1] : NULL;
    case DL_OP_CAST:
        if (same_type(x, r))
            return x;
        if (xd && xd->code == DL_OP_CAST && same_type(xd->in[0], r) &&
            widens(r->type.dtype, x->type.dtype))
            return xd->in[0];
        return NULL;
    case DL_OP_RESHAPE:
    case DL_OP_FLATTEN:
    case DL_OP_SQUEEZE:
    case DL_OP_UNSQUEEZE: {
        if (same_type(x, r))
            return x;
        if (!xd || !is_reshape_like(xd->code))
            return NULL;
        dl_value *src = xd->in[0];
        if (same_type(src, r))
            return src;
        dl_attr shape = {.name = "shape", .kind = DL_ATTR_SHAPE, .n = r->type.rank,
                         .u.dims = r->type.dim};
        return emit(op, DL_OP_RESHAPE, 1, &src, 1, &shape);
    }
    case DL_OP_TRANSPOSE:
    case DL_OP_PERMUTE: {
        if (dc_swap_last2(op) && xd && xd->code == DL_OP_MATMUL && x->nuses == 1 && xd->in[0]->type.rank >= 2 &&
            xd->in[0]->type.rank == xd->in[1]->type.rank) {
            dl_value *bt = swapped(op, xd->in[1]), *at = swapped(op, xd->in[0]);
            dl_value *mm = emit(op, DL_OP_MATMUL, 2, (dl_value *[]){bt, at}, 0, NULL);
            return same_type(mm, r) ? mm : NULL;
        }
        int p[DL_MAX_RANK], q[DL_MAX_RANK], rank = x->type.rank;
        perm_of(op, p);
        dl_value *src = x;
        if (xd && is_perm_op(xd->code)) {
            /* result[i] = x[p[i]] = src[q[p[i]]]. */
            perm_of(xd, q);
            for (int i = 0; i < rank; i++)
                p[i] = q[p[i]];
            src = xd->in[0];
        }
        bool ident = true;
        for (int i = 0; i < rank; i++)
            ident &= p[i] == i;
        if (ident)
            return same_type(src, r) ? src : NULL;
        if (src == x)
            return NULL;
        int64_t dims[DL_MAX_RANK];
        for (int i = 0; i < rank; i++)
            dims[i] = p[i];
        dl_attr a = {.name = "dims", .kind = DL_ATTR_INTS, .n = rank, .u.ints = dims};
        return emit(op, DL_OP_PERMUTE, 1, &src, 1, &a);
    }
    case DL_OP_EXPAND:
    case DL_OP_BROADCAST_TO:
    case DL_OP_SLICE:
    case DL_OP_CONCAT:
        return op->nin == 1 && same_type(x, r) ? x : NULL;
    default: return NULL;
    }
}

bool pass_simplify(dl_module *m, const dl_pass_opts *opts, dl_diag *diag)
{
    (void)opts;
    (void)diag;
    for (dl_func *f = m->first; f; f = f->next) {
        for (dl_op *op = f->first, *next; op; op = next) {
            ir_op_resolve_operands(op);
            canonicalize_dims(op);
            dl_value *v = simplify_op(op);
            next = op->next;
            if (v) {
                /* A new op inserted before `op` is itself visited no more: it is already in
                 * simplest form for the rules above. */
                op->res[0].repl = v;
                ir_op_remove(op);
            }
        }
    }
    return true;
}
