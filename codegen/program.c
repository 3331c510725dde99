/* Planning a function into kernels (see program.h). */
#include "codegen/program.h"
#include "passes/decompose.h"

#include <stdio.h>
#include <string.h>

int cg_program_nbuffers(const dl_func *f)
{
    int id = 0;
    for (int i = 0; i < f->nargs; i++)
        f->args[i]->id = id++;
    for (dl_op *op = f->first; op; op = op->next)
        for (int r = 0; r < op->nres; r++)
            op->res[r].id = id++;
    return id;
}

int cg_program_sym(const cg_program *p, const char *name)
{
    for (int i = 0; i < p->nsyms; i++)
        if (p->syms[i] == name)
            return i;
    return -1;
}

static void add_syms(cg_program *p, const dl_type *t, sup_arena *a)
{
    for (int d = 0; d < t->rank; d++)
        for (int k = 0; k < t->dim[d].n; k++)
            if (cg_program_sym(p, t->dim[d].sym[k]) < 0) {
                p->syms = sup_arena_grow(a, p->syms, sizeof *p->syms * (size_t)p->nsyms,
                                         sizeof *p->syms * (size_t)(p->nsyms + 1));
                p->syms[p->nsyms++] = t->dim[d].sym[k];
            }
}

/* A matmul a native kernel takes (the decompose pass brings the others to this form). */
static bool native_matmul(const dl_op *op)
{
    return op->code == DL_OP_MATMUL && dc_matmul_native(&op->in[0]->type, &op->in[1]->type);
}

bool cg_program_reduce_run(const dl_op *op, int *first, int *end)
{
    if (op->nin < 1 || !(ir_op_info(op->code)->props & P_REDUCE || op->code == DL_OP_SOFTMAX ||
                          op->code == DL_OP_LOG_SOFTMAX || op->code == DL_OP_LAYER_NORM))
        return false;
    const dl_type *x = &op->in[0]->type;
    int r = x->rank;
    bool mask[DL_MAX_RANK] = {0};
    switch (op->code) {
    case DL_OP_SUM: case DL_OP_MEAN: case DL_OP_MAX: case DL_OP_MIN: case DL_OP_PROD:
    case DL_OP_LOGSUMEXP: case DL_OP_VAR: case DL_OP_STD: case DL_OP_ARGMAX: case DL_OP_ARGMIN: {
        const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dim");
        int n = !a ? 0 : a->kind == DL_ATTR_INT ? 1 : a->n;
        for (int d = 0; d < r; d++)
            mask[d] = !a;
        for (int k = 0; k < n; k++) {
            int64_t d = a->kind == DL_ATTR_INT ? a->u.i : a->u.ints[k];
            d = d < 0 ? d + r : d;
            if (d >= 0 && d < r)
                mask[d] = true;
        }
        break;
    }
    case DL_OP_SOFTMAX: case DL_OP_LOG_SOFTMAX: {
        int64_t d = IR_OP_ATTR(int, op, "dim");
        d = d < 0 ? d + r : d;
        if (d >= 0 && d < r)
            mask[d] = true;
        break;
    }
    case DL_OP_LAYER_NORM:
        for (int d = r - ir_attr_find(op->nattr, op->attr, "normalized_shape")->n; d < r; d++)
            mask[d] = d >= 0;
        break;
    default: return false;
    }
    int f = 0;
    while (f < r && !mask[f])
        f++;
    int e = f;
    while (e < r && mask[e])
        e++;
    for (int d = e; d < r; d++)
        if (mask[d])
            return false;
    *first = f, *end = e;
    return true;
}

/* An op a native reduction kernel takes: one contiguous run of reduced dimensions, a float
 * input, or an integer one for sum, prod, max, min, argmax and argmin. */
static bool native_reduce(const dl_op *op)
{
    int first, end;
    if (!cg_program_reduce_run(op, &first, &end))
        return false;
    dl_dtype t = op->in[0]->type.dtype;
    if (ir_dtype_is_float(t))
        return true;
    return t != DL_BOOL && (op->code == DL_OP_SUM || op->code == DL_OP_PROD || op->code == DL_OP_MAX ||
                            op->code == DL_OP_MIN || op->code == DL_OP_ARGMAX || op->code == DL_OP_ARGMIN);
}

/* A convolution or 2-D pooling the conv kernels take (codegen/cpu/conv.c): every operand f32. */
static bool native_scatter(const dl_op *op)
{
    return op->code == DL_OP_SCATTER_ADD && op->in[0]->type.dtype == DL_F32 && op->in[2]->type.dtype == DL_F32 &&
           (op->in[1]->type.dtype == DL_I64 || op->in[1]->type.dtype == DL_I32);
}

static bool native_conv(const dl_op *op)
{
    switch (op->code) {
    case DL_OP_CONV2D: case DL_OP_CONV_TRANSPOSE2D: case DL_OP_CONV2D_GRAD_WEIGHT:
    case DL_OP_MAX_POOL2D: case DL_OP_MAX_POOL2D_GRAD: case DL_OP_AVG_POOL2D:
    case DL_OP_ADAPTIVE_AVG_POOL2D:
        break;
    default:
        return false;
    }
    for (int i = 0; i < op->nin; i++)
        if (op->in[i]->type.dtype != DL_F32)
            return false;
    return op->res[0].type.dtype == DL_F32;
}

/* gather, index_select, embedding and one_hot (codegen/cpu/index.c): data of any dtype, indices
 * of any integer dtype (i64 and i32 as PyTorch takes them; i8 and u8 as the shape rules do). */
static bool native_index(const dl_op *op)
{
    const dl_value *idx = op->code == DL_OP_GATHER || op->code == DL_OP_INDEX_SELECT ? op->in[1]
                        : op->code == DL_OP_EMBEDDING || op->code == DL_OP_ONE_HOT ? op->in[0] : NULL;
    return idx && ir_dtype_is_int(idx->type.dtype);
}

/* scaled_dot_product_attention on float operands (codegen/cpu/attention.c): every form the
 * shape rule admits (f32, f64, f16, bf16; a bool or same-dtype float mask; broadcast batches),
 * with head dimensions E and Ev up to 1024 when constant (the kernel keeps about 128 rows of
 * each on the stack); symbolic ones are taken on trust. */
static bool native_attention(const dl_op *op)
{
    if (op->code != DL_OP_SDPA || op->nres != 1 || op->nin < 3 || op->nin > 4 ||
        !ir_dtype_is_float(op->in[0]->type.dtype) || op->res[0].type.rank < 2)
        return false;
    for (int i = 0; i < 3; i++)
        if (op->in[i]->type.dtype != op->in[0]->type.dtype || op->in[i]->type.rank < 2)
            return false;
    const dl_type *q = &op->in[0]->type, *v = &op->in[2]->type;
    dl_dim e = q->dim[q->rank - 1], ev = v->dim[v->rank - 1];
    if ((e.n == 0 && e.c > 1024) || (ev.n == 0 && ev.c > 1024))
        return false;
    return op->nin == 3 || op->in[3]->type.dtype == DL_BOOL || op->in[3]->type.dtype == op->in[0]->type.dtype;
}

bool cg_program_is_view(const dl_op *op)
{
    return op->code == DL_OP_RESHAPE || op->code == DL_OP_FLATTEN || op->code == DL_OP_SQUEEZE ||
           op->code == DL_OP_UNSQUEEZE;
}

/* expand and broadcast_to are the identity with broadcasting: elementwise kernels do them. A
 * constant is a leaf the kernel computes in place; dropout draws its mask from the position. */
static bool fusible(const dl_op *op)
{
    return ((ir_op_info(op->code)->props & P_ELEM) && op->nres == 1) || op->code == DL_OP_EXPAND ||
           op->code == DL_OP_BROADCAST_TO || op->code == DL_OP_CONSTANT || op->code == DL_OP_DROPOUT;
}

static bool native_copy(const dl_op *op)
{
    if (op->code == DL_OP_CONCAT || op->code == DL_OP_STACK || op->code == DL_OP_SPLIT)
        return op->nin <= 64;
    if (op->code == DL_OP_PAD)
        return true;
    return (op->code == DL_OP_TRANSPOSE || op->code == DL_OP_PERMUTE || op->code == DL_OP_SLICE) &&
           op->res[0].type.rank > 0;
}

static bool is_splat(const dl_op *op)
{
    return op->code == DL_OP_CONSTANT && ir_attr_find(op->nattr, op->attr, "value")->n == 1;
}

static bool uses(const dl_op *op, const dl_op *def)
{
    for (int i = 0; i < op->nin; i++)
        if (op->in[i] == &def->res[0])
            return true;
    return false;
}

/* Whether `op` can join the chain ending in `last`: it uses last's result, which nothing else
 * uses, and computes the same shape. A splat constant (one value everywhere) is a leaf: it joins
 * when the op after it uses it and extends the chain (the frontend puts constants just before
 * their use), and that op may broadcast it from any shape. */
static bool extends(const dl_op *last, const dl_op *op)
{
    if (!last || !fusible(op) || last->res[0].nuses != 1)
        return false;
    if (is_splat(op))
        return op->res[0].nuses == 1 && op->next && uses(op->next, op) && extends(last, op->next);
    if (is_splat(last))
        return uses(op, last);
    return uses(op, last) && ir_type_eq(&last->res[0].type, &op->res[0].type) &&
           last->res[0].type.rank == op->res[0].type.rank;
}

const dl_op *cg_program_swap_last2(const dl_op *op)
{
    if (!op || (op->code != DL_OP_TRANSPOSE && op->code != DL_OP_PERMUTE))
        return NULL;
    int r = op->in[0]->type.rank;
    if (r < 2)
        return NULL;
    int64_t perm[DL_MAX_RANK];
    for (int d = 0; d < r; d++)
        perm[d] = d;
    if (op->code == DL_OP_PERMUTE) {
        const dl_attr *a = ir_attr_find(op->nattr, op->attr, "dims");
        for (int d = 0; d < r; d++)
            perm[d] = (a->u.ints[d] % r + r) % r;
    } else {
        int64_t d0 = (IR_OP_ATTR(int, op, "dim0") % r + r) % r, d1 = (IR_OP_ATTR(int, op, "dim1") % r + r) % r;
        perm[d0] = d1, perm[d1] = d0;
    }
    for (int d = 0; d + 2 < r; d++)
        if (perm[d] != d)
            return NULL;
    return perm[r - 2] == r - 1 && perm[r - 1] == r - 2 ? op : NULL;
}

/* A matrix product reads a transposed operand where it lies (the gemm's packing takes any
 * strides): the transpose's copy kernel goes, and the transpose joins the matmul's kernel, ahead
 * of it. Only a transpose used by this product alone, and, for the left operand, one the rows
 * can be walked through (a matrix, or equal batches on both sides). */
static void absorb_transposes(cg_program *p, cg_kernel *k, sup_arena *a)
{
    const dl_op *mm = k->ops[0];
    for (int i = 0; i < 2; i++) {
        const dl_op *t = cg_program_swap_last2(mm->in[i]->def);
        if (!t || mm->in[i]->nuses != 1 || (i == 0 && mm->in[0]->type.rank > 2 && mm->in[1]->type.rank == 2))
            continue;
        int at = -1;
        for (int q = 0; q < p->nkernels - 1; q++)
            if (p->kernels[q].kind == CG_K_COPY && p->kernels[q].nops == 1 && p->kernels[q].ops[0] == t)
                at = q;
        if (at < 0)
            continue;
        memmove(&p->kernels[at], &p->kernels[at + 1], sizeof *p->kernels * (size_t)(p->nkernels - 1 - at));
        k = &p->kernels[--p->nkernels - 1];
        dl_op **ops = SUP_NEWN(a, dl_op *, (size_t)k->nops + 1);
        ops[0] = (dl_op *)t;
        memcpy(ops + 1, k->ops, sizeof *ops * (size_t)k->nops);
        k->ops = ops;
        k->nops++;
    }
}

cg_program *cg_program_build(const dl_func *f, bool fuse, sup_arena *a)
{
    cg_program *p = SUP_NEW(a, cg_program);
    p->f = f;
    cg_program_nbuffers(f);
    for (int i = 0; i < f->nargs; i++)
        add_syms(p, &f->args[i]->type, a);
    int cap = 0;
    for (dl_op *op = f->first; op; op = op->next) {
        for (int r = 0; r < op->nres; r++)
            add_syms(p, &op->res[r].type, a);
        if (op->code == DL_OP_RETURN || op->code == DL_OP_ASSIGN)
            continue;
        cg_kernel *last = p->nkernels ? &p->kernels[p->nkernels - 1] : NULL;
        /* Chains stay under 30 ops, so their distinct inputs (at most 2 new per op, 3 for the
         * first) fit the 64 slots below; a constant joins with room for the op that uses it. */
        if (fuse && last && last->kind == CG_K_ELEMENTWISE && last->nops < 30 - (op->code == DL_OP_CONSTANT) &&
            extends(last->ops[last->nops - 1], op)) {
            last->ops = sup_arena_grow(a, last->ops, sizeof *last->ops * (size_t)last->nops,
                                       sizeof *last->ops * (size_t)(last->nops + 1));
            last->ops[last->nops++] = op;
            continue;
        }
        if (p->nkernels == cap) {
            int ncap = cap ? cap * 2 : 16;
            p->kernels = sup_arena_grow(a, p->kernels, sizeof *p->kernels * (size_t)cap,
                                        sizeof *p->kernels * (size_t)ncap);
            cap = ncap;
        }
        cg_kernel *k = &p->kernels[p->nkernels++];
        *k = (cg_kernel){.kind = cg_program_is_view(op) ? CG_K_VIEW : native_copy(op) ? CG_K_COPY
                                 : fusible(op) ? CG_K_ELEMENTWISE
                                 : native_matmul(op) ? CG_K_MATMUL
                                 : native_reduce(op) ? CG_K_REDUCE : native_conv(op) ? CG_K_CONV
                                 : native_index(op) ? CG_K_INDEX
                                 : native_attention(op) ? CG_K_ATTENTION
                                 : native_scatter(op) ? CG_K_SCATTER : CG_K_REF,
                         .nops = 1};
        k->ops = SUP_NEWN(a, dl_op *, 1);
        k->ops[0] = op;
        if (fuse && k->kind == CG_K_MATMUL)
            absorb_transposes(p, k, a);
    }
    /* Inputs and names, now that the groups are final. */
    for (int i = 0; i < p->nkernels; i++) {
        cg_kernel *k = &p->kernels[i];
        k->in = SUP_NEWN(a, const dl_value *, 64);
        char name[256];
        int n = snprintf(name, sizeof name, "k%d", i);
        for (int o = 0; o < k->nops; o++) {
            const dl_op *op = k->ops[o];
            if ((size_t)n < sizeof name - 40)
                n += snprintf(name + n, sizeof name - (size_t)n, "_%s", ir_op_info(op->code)->name);
            for (int j = 0; j < op->nin; j++) {
                const dl_value *v = op->in[j];
                bool inside = false, seen = false;
                for (int q = 0; q < o; q++)
                    inside |= v == &k->ops[q]->res[0];
                for (int q = 0; q < k->nin; q++)
                    seen |= k->in[q] == v;
                if (!inside && !seen && k->nin < 64)
                    k->in[k->nin++] = v;
            }
        }
        k->name = sup_arena_strndup(a, name, strlen(name));
    }
    return p;
}
