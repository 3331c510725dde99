/* Strided copies (see copy.h): out[c0, ..., cr-1] = in[base + sum(c_d * stride_d)], the strides
 * and base from the op: a permutation of the input's strides (transpose, permute), or the input's
 * strides with one of them scaled by the step and an offset of start (slice). */
#include "codegen/cpu/copy.h"

#include "codegen/cpu/emit.h"

#include <stdio.h>

static int norm(int64_t d, int rank) { return (int)(d < 0 ? d + rank : d); }

bool cg_cpu_emit_copy(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                      char *err, size_t errlen)
{
    const dl_op *op = k->ops[0];
    const dl_value *in = op->in[0], *out = &op->res[0];
    const dl_type *it = &in->type, *ot = &out->type;
    int r = ot->rank;
    if (r == 0 || r != it->rank) {
        snprintf(err, errlen, "'%s' is not a strided copy (a bug in dlc)", ir_op_info(op->code)->name);
        return false;
    }
    cg_em e;
    LLVMValueRef fn = cg_em_begin(&e, j, m, p, k->name), bufs = LLVMGetParam(fn, 0);
    LLVMValueRef src = cg_em_buffer(&e, bufs, in), dst = cg_em_buffer(&e, bufs, out);
    /* The input's row-major strides. */
    LLVMValueRef s[DL_MAX_RANK], acc = cg_em_i64(&e, 1);
    for (int d = r - 1; d >= 0; d--) {
        s[d] = acc;
        acc = LLVMBuildMul(e.b, acc, cg_em_dim(&e, it->dim[d]), "");
    }
    /* Each output dimension's stride into the input, and where the copy starts. */
    LLVMValueRef st[DL_MAX_RANK], base = cg_em_i64(&e, 0);
    int perm[DL_MAX_RANK];
    for (int d = 0; d < r; d++) {
        perm[d] = d;
        st[d] = s[d];
    }
    if (op->code == DL_OP_TRANSPOSE) {
        int a = norm(IR_OP_ATTR(int, op, "dim0"), r), b = norm(IR_OP_ATTR(int, op, "dim1"), r);
        perm[a] = b, perm[b] = a;
    } else if (op->code == DL_OP_PERMUTE) {
        const dl_attr *dims = ir_attr_find(op->nattr, op->attr, "dims");
        for (int d = 0; d < r; d++)
            perm[d] = norm(dims->u.ints[d], r);
    }
    for (int d = 0; d < r; d++)
        st[d] = s[perm[d]];
    if (op->code == DL_OP_SLICE) {
        int dd = norm(IR_OP_ATTR(int, op, "dim"), r);
        int64_t start = IR_OP_ATTR(int, op, "start"), step = IR_OP_ATTR(int, op, "step");
        /* A symbolic dimension is only ever sliced whole (the shape rule), so start is 0 there;
         * Python's clamping of start needs the constant size. */
        if (!it->dim[dd].n) {
            int64_t n = it->dim[dd].c;
            if (start < 0)
                start += n;
            start = start < 0 ? 0 : start > n ? n : start;
        }
        st[dd] = LLVMBuildMul(e.b, s[dd], cg_em_i64(&e, step), "");
        base = LLVMBuildMul(e.b, s[dd], cg_em_i64(&e, start), "");
    }
    LLVMValueRef od[DL_MAX_RANK], rows = cg_em_i64(&e, 1);
    for (int d = 0; d < r; d++)
        od[d] = cg_em_dim(&e, ot->dim[d]);
    for (int d = 0; d + 1 < r; d++)
        rows = LLVMBuildMul(e.b, rows, od[d], "");
    cg_loop lr = cg_em_loop_begin(&e, fn, rows, "row");
    LLVMValueRef off = base, rem = lr.i;
    for (int d = r - 2; d >= 0; d--) {
        LLVMValueRef coord = LLVMBuildSRem(e.b, rem, od[d], "");
        rem = LLVMBuildSDiv(e.b, rem, od[d], "");
        off = LLVMBuildAdd(e.b, off, LLVMBuildMul(e.b, coord, st[d], ""), "");
    }
    LLVMValueRef orow = LLVMBuildMul(e.b, lr.i, od[r - 1], "");
    cg_loop li = cg_em_loop_begin(&e, fn, od[r - 1], "col");
    LLVMValueRef x = cg_em_load(&e, src, it->dtype, LLVMBuildAdd(e.b, off, LLVMBuildMul(e.b, li.i, st[r - 1], ""), ""));
    cg_em_store(&e, dst, ot->dtype, LLVMBuildAdd(e.b, orow, li.i, ""), x);
    cg_em_loop_end(&e, &li, od[r - 1]);
    cg_em_loop_end(&e, &lr, rows);
    LLVMBuildRetVoid(e.b);
    cg_em_end(&e);
    return true;
}
