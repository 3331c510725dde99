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

static bool native_copy(const dl_op *op)
{
    if (op->code == DL_OP_CONCAT || op->code == DL_OP_STACK || op->code == DL_OP_SPLIT)
        return op->nin <= 64;
    if (op->code == DL_OP_PAD)
        return true;
    return (op->code == DL_OP_TRANSPOSE || op->code == DL_OP_PERMUTE || op->code == DL_OP_SLICE) &&
           op->res[0].type.rank > 0;
}

static cg_kernel_kind kind_of(const dl_op *op)
{
    return cg_program_is_view(op) ? CG_K_VIEW : native_copy(op) ? CG_K_COPY
         : dc_fusible(op) ? CG_K_ELEMENTWISE
         : native_matmul(op) ? CG_K_MATMUL
         : dc_reduce_native(op) ? CG_K_REDUCE : native_conv(op) ? CG_K_CONV
         : native_index(op) ? CG_K_INDEX
         : native_attention(op) ? CG_K_ATTENTION
         : native_scatter(op) ? CG_K_SCATTER : CG_K_REF;
}

static bool in_kernel(const cg_kernel *k, const dl_op *op)
{
    for (int o = 0; o < k->nops; o++)
        if (k->ops[o] == op)
            return true;
    return false;
}

/* Values read from memory: operands not made inside the kernel, each once. */
static void find_inputs(cg_kernel *k, sup_arena *a)
{
    k->in = SUP_NEWN(a, const dl_value *, 64);
    for (int o = 0; o < k->nops; o++)
        for (int j = 0; j < k->ops[o]->nin; j++) {
            const dl_value *v = k->ops[o]->in[j];
            bool seen = v->def && in_kernel(k, v->def);
            for (int q = 0; q < k->nin && !seen; q++)
                seen = k->in[q] == v;
            if (!seen && k->nin < 64)
                k->in[k->nin++] = v;
        }
}

/* Values written to memory: see cg_kernel.out. `used_after[id]` says a later kernel (or the
 * results, or an assign) reads value id. */
static void find_outputs(cg_kernel *k, const bool *used_after, sup_arena *a)
{
    int n = 0;
    for (int o = 0; o < k->nops; o++)
        n += k->ops[o]->nres;
    k->out = SUP_NEWN(a, const dl_value *, (size_t)n + 1);
    for (int o = 0; o < k->nops; o++)
        for (int r = 0; r < k->ops[o]->nres; r++) {
            const dl_value *v = &k->ops[o]->res[r];
            if (used_after[v->id] || o == k->nops - 1 || ((k->kind == CG_K_MATMUL || k->kind == CG_K_CONV) && o == k->matmul))
                k->out[k->nout++] = v;
        }
}

static cg_kernel *new_kernel(cg_program *p, int *cap, sup_arena *a)
{
    if (p->nkernels == *cap) {
        int ncap = *cap ? *cap * 2 : 16;
        p->kernels = sup_arena_grow(a, p->kernels, sizeof *p->kernels * (size_t)*cap,
                                    sizeof *p->kernels * (size_t)ncap);
        *cap = ncap;
    }
    cg_kernel *k = &p->kernels[p->nkernels++];
    *k = (cg_kernel){0};
    return k;
}

cg_program *cg_program_build(const dl_func *f, bool fuse, sup_arena *a)
{
    cg_program *p = SUP_NEW(a, cg_program);
    p->f = f;
    int nbufs = cg_program_nbuffers(f);
    for (int i = 0; i < f->nargs; i++)
        add_syms(p, &f->args[i]->type, a);
    int cap = 0;
    for (dl_op *op = f->first; op; op = op->next) {
        for (int r = 0; r < op->nres; r++)
            add_syms(p, &op->res[r].type, a);
        if (op->code == DL_OP_RETURN || op->code == DL_OP_ASSIGN)
            continue;
        /* A fusion group: its ops are consecutive (the verifier checks). */
        int n = 1;
        if (fuse && op->group)
            while (op->next && op->next->group == op->group && n < (1 << 20))
                op = op->next, n++;
        dl_op *first = op;
        for (int k = 1; k < n; k++)
            first = first->prev;
        cg_kernel *k = new_kernel(p, &cap, a);
        k->nops = n;
        k->ops = SUP_NEWN(a, dl_op *, (size_t)n);
        k->kind = CG_K_ELEMENTWISE;
        for (int o = 0; o < n; o++, first = first->next) {
            k->ops[o] = first;
            bool anchor = native_matmul(first) || (o == 0 && native_conv(first));
            if (n == 1 || anchor)
                k->kind = kind_of(first);
            if (n > 1 && anchor)
                k->matmul = o;
            if (n > 1 && o == n - 1 && dc_reduce_native(first))
                k->kind = CG_K_REDUCE;      /* a reduction and its producers */
        }
    }
    /* Which values later kernels, the results and buffer updates read. */
    bool *used_after = SUP_NEWN(a, bool, (size_t)nbufs + 1);
    for (int i = 0; i < p->nkernels; i++) {
        const cg_kernel *k = &p->kernels[i];
        for (int o = 0; o < k->nops; o++)
            for (int j = 0; j < k->ops[o]->nin; j++) {
                const dl_value *v = k->ops[o]->in[j];
                if (v->def && !in_kernel(k, v->def))
                    used_after[v->id] = true;
            }
    }
    for (const dl_op *op = f->first; op; op = op->next)
        if (op->code == DL_OP_RETURN || op->code == DL_OP_ASSIGN)
            for (int j = 0; j < op->nin; j++)
                used_after[op->in[j]->id] = true;
    /* Inputs, outputs, epilogues and names, now that the groups are final. */
    for (int i = 0; i < p->nkernels; i++) {
        cg_kernel *k = &p->kernels[i];
        find_inputs(k, a);
        find_outputs(k, used_after, a);
        if ((k->kind == CG_K_MATMUL || k->kind == CG_K_CONV) && k->matmul + 1 < k->nops) {
            cg_kernel *e = k->epilogue = SUP_NEW(a, cg_kernel);
            *e = (cg_kernel){.kind = CG_K_ELEMENTWISE, .nops = k->nops - k->matmul - 1,
                             .ops = k->ops + k->matmul + 1};
            find_inputs(e, a);
            e->out = SUP_NEWN(a, const dl_value *, (size_t)k->nout);
            for (int q = 0; q < k->nout; q++)
                if (in_kernel(e, k->out[q]->def))
                    e->out[e->nout++] = k->out[q];
        }
        char name[256];
        int n = snprintf(name, sizeof name, "k%d", i);
        for (int o = 0; o < k->nops; o++)
            if ((size_t)n < sizeof name - 40)
                n += snprintf(name + n, sizeof name - (size_t)n, "_%s", ir_op_info(k->ops[o]->code)->name);
        k->name = sup_arena_strndup(a, name, strlen(name));
    }
    return p;
}
