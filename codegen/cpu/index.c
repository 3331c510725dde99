/* Kernels that read through an index tensor (see index.h). Every index is checked before any
 * data moves, in a pass that vectorizes (an OR of unsigned comparisons, which catch negative
 * indices too); only when one fails does a second pass find the first, which is the one the
 * reference reports, and the kernel returns. The loops that move data then have no branches:
 * index_select and embedding copy contiguous rows, gather loads through the index, one_hot
 * compares each class with the column. Data moves as storage bits, never through a conversion. */
#include "codegen/cpu/index.h"

#include "codegen/cpu/emit.h"

#include <stdio.h>
#include <string.h>

static int norm(int64_t d, int rank) { return (int)(d < 0 ? d + rank : d); }

/* The integer type as wide as an element of t. */
static LLVMTypeRef bits(cg_em *e, dl_dtype t)
{
    switch (ir_dtype_size(t)) {
    case 8: return e->i64;
    case 4: return e->i32;
    case 2: return e->i16;
    default: return e->i8;
    }
}

/* Marks a load as reading the kernel's inputs, or a store as writing none of them. The result
 * is a buffer of its own, but LLVM cannot know it: it would assume each store may change what
 * the next load reads, and keep the copies scalar (a row of known length unrolls into scalar
 * moves; a gather through the index cannot be checked at run time at all). */
static void tag(cg_em *e, LLVMValueRef inst, bool store)
{
    LLVMMetadataRef domain_name = LLVMMDStringInContext2(e->c, "dlc.kernel", 10);
    LLVMMetadataRef domain = LLVMMDNodeInContext2(e->c, &domain_name, 1);
    LLVMMetadataRef scope_ops[2] = {LLVMMDStringInContext2(e->c, "dlc.inputs", 10), domain};
    LLVMMetadataRef scope = LLVMMDNodeInContext2(e->c, scope_ops, 2);
    LLVMMetadataRef list = LLVMMDNodeInContext2(e->c, &scope, 1);
    const char *kind = store ? "noalias" : "alias.scope";
    LLVMSetMetadata(inst, LLVMGetMDKindIDInContext(e->c, kind, (unsigned)strlen(kind)),
                    LLVMMetadataAsValue(e->c, list));
}

static void copy_elem(cg_em *e, LLVMTypeRef t, LLVMValueRef dst, LLVMValueRef di, LLVMValueRef src,
                      LLVMValueRef si)
{
    LLVMValueRef x = LLVMBuildLoad2(e->b, t, LLVMBuildGEP2(e->b, t, src, &si, 1, ""), "x");
    tag(e, x, false);
    tag(e, LLVMBuildStore(e->b, x, LLVMBuildGEP2(e->b, t, dst, &di, 1, "")), true);
}

/* An index (i8, u8, i32 or i64) as i64, loaded as an input. */
static LLVMValueRef load_index(cg_em *e, LLVMValueRef idx, dl_dtype it, LLVMValueRef i)
{
    LLVMTypeRef st = cg_em_storage_type(e, it);
    LLVMValueRef v = LLVMBuildLoad2(e->b, st, LLVMBuildGEP2(e->b, st, idx, &i, 1, ""), "");
    tag(e, v, false);
    if (it == DL_I64)
        return v;
    return it == DL_U8 ? LLVMBuildZExt(e->b, v, e->i64, "v") : LLVMBuildSExt(e->b, v, e->i64, "v");
}

/* The product of t's dimensions [from, to) at run time (1 when the range is empty). */
static LLVMValueRef extent(cg_em *e, const dl_type *t, int from, int to)
{
    LLVMValueRef n = cg_em_i64(e, 1);
    for (int d = from; d < to; d++)
        n = LLVMBuildMul(e->b, n, cg_em_dim(e, t->dim[d]), "");
    return n;
}

/* A stack slot in fn's entry block, where the optimizer turns it into a register. */
static LLVMValueRef entry_slot(cg_em *e, LLVMValueRef fn, LLVMTypeRef t, const char *name)
{
    LLVMBuilderRef b = LLVMCreateBuilderInContext(e->c);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef slot = LLVMBuildAlloca(b, t, name);
    LLVMDisposeBuilder(b);
    return slot;
}

/* Checks the n indices idx[0, n) (of dtype it) against [0, bound) and leaves the builder where
 * the kernel goes on when all are in range; otherwise the kernel records the first bad one and
 * returns. */
static void check(cg_em *e, LLVMValueRef fn, LLVMValueRef idx, dl_dtype it, LLVMValueRef n,
                  LLVMValueRef bound)
{
    LLVMValueRef any = entry_slot(e, fn, e->i1, "anybad");
    LLVMBuildStore(e->b, LLVMConstInt(e->i1, 0, 0), any);
    cg_loop l = cg_em_loop_begin(e, fn, n, "check");
    LLVMValueRef bad = LLVMBuildICmp(e->b, LLVMIntUGE, load_index(e, idx, it, l.i), bound, "bad");
    LLVMBuildStore(e->b, LLVMBuildOr(e->b, LLVMBuildLoad2(e->b, e->i1, any, ""), bad, ""), any);
    cg_em_loop_end(e, &l, n);
    LLVMBasicBlockRef find = LLVMAppendBasicBlockInContext(e->c, fn, "find");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(e->c, fn, "checked");
    LLVMBuildCondBr(e->b, LLVMBuildLoad2(e->b, e->i1, any, "anybad"), find, ok);

    LLVMPositionBuilderAtEnd(e->b, find);
    cg_loop f = cg_em_loop_begin(e, fn, n, "first");
    LLVMValueRef v = load_index(e, idx, it, f.i);
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(e->c, fn, "fail");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(e->c, fn, "next");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntUGE, v, bound, ""), fail, next);
    LLVMPositionBuilderAtEnd(e->b, fail);
    cg_em_fail(e, 0, v, bound);
    LLVMBuildRetVoid(e->b);
    LLVMPositionBuilderAtEnd(e->b, next);
    cg_em_loop_end(e, &f, n);
    LLVMBuildRetVoid(e->b);     /* not reached: the first pass saw a bad index */

    LLVMPositionBuilderAtEnd(e->b, ok);
}

/* src viewed as outer x len x inner, dst as outer x m x inner: dst[o, j, :] = src[o, idx[j], :],
 * one contiguous run of `inner` elements per (o, j). index_select around its dimension, and
 * embedding with outer 1 and a row of the weight per index. */
static void copy_rows(cg_em *e, LLVMValueRef fn, LLVMTypeRef t, LLVMValueRef src, LLVMValueRef dst,
                      LLVMValueRef idx, dl_dtype it, LLVMValueRef outer, LLVMValueRef len,
                      LLVMValueRef m, LLVMValueRef inner)
{
    check(e, fn, idx, it, m, len);
    cg_loop lo = cg_em_loop_begin(e, fn, outer, "outer");
    cg_loop lj = cg_em_loop_begin(e, fn, m, "pick");
    LLVMValueRef v = load_index(e, idx, it, lj.i);
    LLVMValueRef from = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, lo.i, len, ""), v, "");
    LLVMValueRef to = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, lo.i, m, ""), lj.i, "");
    from = LLVMBuildMul(e->b, from, inner, "from");
    to = LLVMBuildMul(e->b, to, inner, "to");
    cg_loop li = cg_em_loop_begin(e, fn, inner, "inner");
    copy_elem(e, t, dst, LLVMBuildAdd(e->b, to, li.i, ""), src, LLVMBuildAdd(e->b, from, li.i, ""));
    cg_em_loop_end(e, &li, inner);
    cg_em_loop_end(e, &lj, m);
    cg_em_loop_end(e, &lo, outer);
}

/* index_select: x around dim d, with m the index's length (a 0-d index is one). A scalar x is
 * one element of a dimension of size 1. */
static void emit_index_select(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    const dl_value *x = op->in[0], *ix = op->in[1];
    const dl_type *xt = &x->type;
    int r = xt->rank, d = r ? norm(IR_OP_ATTR(int, op, "dim"), r) : 0;
    LLVMValueRef src = cg_em_buffer(e, bufs, x), idx = cg_em_buffer(e, bufs, ix);
    LLVMValueRef dst = cg_em_buffer(e, bufs, &op->res[0]);
    LLVMValueRef len = r ? cg_em_dim(e, xt->dim[d]) : cg_em_i64(e, 1);
    copy_rows(e, fn, bits(e, xt->dtype), src, dst, idx, ix->type.dtype, extent(e, xt, 0, d), len,
              extent(e, &ix->type, 0, ix->type.rank), extent(e, xt, d + 1, r));
}

/* embedding: one row of the weight [V, D] per index, the indices of any shape. */
static void emit_embedding(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    const dl_value *ix = op->in[0], *w = op->in[1];
    LLVMValueRef idx = cg_em_buffer(e, bufs, ix), src = cg_em_buffer(e, bufs, w);
    LLVMValueRef dst = cg_em_buffer(e, bufs, &op->res[0]);
    copy_rows(e, fn, bits(e, w->type.dtype), src, dst, idx, ix->type.dtype, cg_em_i64(e, 1),
              cg_em_dim(e, w->type.dim[0]), extent(e, &ix->type, 0, ix->type.rank),
              cg_em_dim(e, w->type.dim[1]));
}

/* gather: out[c] = x[c with c_d replaced by idx[c]], the index of the result's shape (no larger
 * than x outside d, so x's strides address it). Rows of the result outside, its last dimension
 * inside: a contiguous run of x when d is another dimension, a load through the index when it
 * is the last. */
static void emit_gather(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    const dl_value *x = op->in[0], *ix = op->in[1], *out = &op->res[0];
    const dl_type *xt = &x->type, *ot = &out->type;
    dl_dtype it = ix->type.dtype;
    int r = xt->rank, d = r ? norm(IR_OP_ATTR(int, op, "dim"), r) : 0;
    LLVMValueRef src = cg_em_buffer(e, bufs, x), idx = cg_em_buffer(e, bufs, ix);
    LLVMValueRef dst = cg_em_buffer(e, bufs, out), zero = cg_em_i64(e, 0);
    LLVMTypeRef t = bits(e, xt->dtype);
    check(e, fn, idx, it, extent(e, ot, 0, r), r ? cg_em_dim(e, xt->dim[d]) : cg_em_i64(e, 1));
    if (r == 0) {
        copy_elem(e, t, dst, zero, src, zero);
        return;
    }
    LLVMValueRef xs[DL_MAX_RANK], od[DL_MAX_RANK], acc = cg_em_i64(e, 1);
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = acc;
        acc = LLVMBuildMul(e->b, acc, cg_em_dim(e, xt->dim[k]), "");
        od[k] = cg_em_dim(e, ot->dim[k]);
    }
    LLVMValueRef rows = extent(e, ot, 0, r - 1);
    cg_loop lr = cg_em_loop_begin(e, fn, rows, "row");
    LLVMValueRef base = zero, rem = lr.i;
    for (int k = r - 2; k >= 0; k--) {
        LLVMValueRef c = LLVMBuildSRem(e->b, rem, od[k], "");
        rem = LLVMBuildSDiv(e->b, rem, od[k], "");
        if (k != d)
            base = LLVMBuildAdd(e->b, base, LLVMBuildMul(e->b, c, xs[k], ""), "");
    }
    LLVMValueRef orow = LLVMBuildMul(e->b, lr.i, od[r - 1], "orow");
    cg_loop lc = cg_em_loop_begin(e, fn, od[r - 1], "col");
    LLVMValueRef o = LLVMBuildAdd(e->b, orow, lc.i, "");
    LLVMValueRef v = load_index(e, idx, it, o);
    LLVMValueRef at = LLVMBuildAdd(e->b, base, LLVMBuildMul(e->b, v, xs[d], ""), "");
    if (d != r - 1)
        at = LLVMBuildAdd(e->b, at, lc.i, "at");
    copy_elem(e, t, dst, o, src, at);
    cg_em_loop_end(e, &lc, od[r - 1]);
    cg_em_loop_end(e, &lr, rows);
}

/* one_hot: out[i, c] = (c == x[i]) in the result's dtype, each row written whole. */
static void emit_one_hot(cg_em *e, LLVMValueRef fn, const dl_op *op, LLVMValueRef bufs)
{
    const dl_value *x = op->in[0], *out = &op->res[0];
    dl_dtype dt = out->type.dtype;
    LLVMValueRef idx = cg_em_buffer(e, bufs, x), dst = cg_em_buffer(e, bufs, out);
    LLVMValueRef k = cg_em_i64(e, IR_OP_ATTR(int, op, "num_classes"));
    LLVMValueRef n = extent(e, &x->type, 0, x->type.rank);
    check(e, fn, idx, x->type.dtype, n, k);
    cg_loop li = cg_em_loop_begin(e, fn, n, "row");
    LLVMValueRef v = load_index(e, idx, x->type.dtype, li.i);
    LLVMValueRef row = LLVMBuildMul(e->b, li.i, k, "orow");
    cg_loop lc = cg_em_loop_begin(e, fn, k, "class");
    LLVMValueRef hot = LLVMBuildICmp(e->b, LLVMIntEQ, lc.i, v, "hot");
    cg_em_store(e, dst, dt, LLVMBuildAdd(e->b, row, lc.i, ""), cg_em_convert(e, hot, DL_BOOL, dt));
    cg_em_loop_end(e, &lc, k);
    cg_em_loop_end(e, &li, n);
}

bool cg_cpu_emit_index(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                       char *err, size_t errlen)
{
    const dl_op *op = k->ops[0];
    void (*emit)(cg_em *, LLVMValueRef, const dl_op *, LLVMValueRef) =
        op->code == DL_OP_GATHER ? emit_gather : op->code == DL_OP_INDEX_SELECT ? emit_index_select
        : op->code == DL_OP_EMBEDDING ? emit_embedding : op->code == DL_OP_ONE_HOT ? emit_one_hot : NULL;
    if (k->nops != 1 || !emit) {
        snprintf(err, errlen, "'%s' is not an index op (a bug in dlc)", ir_op_info(op->code)->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name);
    emit(&e, fn, op, LLVMGetParam(fn, 0));
    LLVMBuildRetVoid(e.b);
    cg_em_end(&e);
    return true;
}
