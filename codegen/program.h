/* How a compiled function is described, for every backend (CPU now, CUDA and the AOT library
 * later): each IR value lives in a buffer (the function's arguments first, then one per op
 * result); kernels run in order, each a fused group of ops reading and writing buffers.
 * Dimensions may be symbolic: the symbols are bound from the arguments' shapes at each call and
 * passed to the kernels as an array of int64, in the order of `syms`. */
#ifndef DLC_CODEGEN_PROGRAM_H
#define DLC_CODEGEN_PROGRAM_H

#include "ir/ir.h"

typedef enum {
    CG_K_ELEMENTWISE,   /* a chain of elementwise ops, fused: one loop nest, one store */
    CG_K_MATMUL,        /* an f32 matrix product: [..., M, K] @ [K, N], or equal batches; the
                         * transposes it reads its operands through come first in ops */
    CG_K_REDUCE,        /* a reduction over one contiguous run of dimensions, softmax, layer_norm */
    CG_K_CONV,          /* an f32 conv2d, conv_transpose2d, 2-D pooling or one of their gradient ops
                         * conv2d_grad_weight and max_pool2d_grad (codegen/cpu/conv.c) */
    CG_K_COPY,          /* transpose, permute, slice: a strided copy */
    CG_K_VIEW,          /* reshape, flatten, squeeze, unsqueeze: the result is the input's buffer */
    CG_K_INDEX,         /* gather, index_select, embedding, one_hot: reads through an index tensor */
    CG_K_ATTENTION,     /* scaled_dot_product_attention, fused: scores never reach memory */
    CG_K_SCATTER,       /* an f32 scatter_add, in C (codegen/cpu/scatter.c) */
    CG_K_REF,           /* one op on the reference implementation (no native kernel yet) */
} cg_kernel_kind;

typedef struct cg_kernel {
    cg_kernel_kind kind;
    const char    *name;       /* k3_add_relu: index and ops, for readable generated code */
    int            nops;
    dl_op        **ops;        /* in order; the last one's results are the kernel's outputs */
    int            nin;
    const dl_value **in;       /* values read from buffers (fused intermediates are not) */
} cg_kernel;

typedef struct cg_program {
    const dl_func *f;
    int            nsyms;
    const char   **syms;       /* interned symbol names */
    int            nkernels;
    cg_kernel     *kernels;
} cg_program;

/* Plans `f`: with `fuse`, chains of elementwise ops whose intermediates have one use and the
 * final shape become one kernel; without it (-O0), one kernel per op. Buffers are numbered
 * through value->id: arguments 0..nargs-1, then op results in order (cg_program_nbuffers). */
cg_program *cg_program_build(const dl_func *f, bool fuse, sup_arena *arena);
int         cg_program_nbuffers(const dl_func *f);
/* The dimensions [*first, *end) of op's input that a reduction, softmax or layer_norm runs over,
 * when they are one contiguous run (false otherwise, or for other ops). */
bool        cg_program_reduce_run(const dl_op *op, int *first, int *end);
/* Whether op's result is its first operand's buffer relabelled (row-major data unchanged). */
bool        cg_program_is_view(const dl_op *op);
/* op when it is a transpose or permute that swaps the last two dimensions only, else NULL. */
const dl_op *cg_program_swap_last2(const dl_op *op);
/* The symbol index of `name` in p->syms, or -1. */
int         cg_program_sym(const cg_program *p, const char *name);

#endif
