/* How a compiled function is described, for every backend (CPU now, CUDA and the AOT library
 * later): each IR value lives in a buffer (the function's arguments first, then one per op
 * result); kernels run in order, each a fused group of ops reading and writing buffers.
 * Dimensions may be symbolic: the symbols are bound from the arguments' shapes at each call and
 * passed to the kernels as an array of int64, in the order of `syms`. */
#ifndef DLC_CODEGEN_PROGRAM_H
#define DLC_CODEGEN_PROGRAM_H

#include "ir/ir.h"

typedef enum {
    CG_K_ELEMENTWISE,   /* elementwise ops of one shape, fused: one loop nest, a store per output */
    CG_K_MATMUL,        /* an f32 matrix product: [..., M, K] @ [K, N], or equal batches; the
                         * transposes it reads its operands through come first in ops, its
                         * elementwise epilogue (if any) after it */
    CG_K_REDUCE,        /* a reduction over one contiguous run of dimensions, softmax, layer_norm;
                         * elementwise ops before it in ops are its producers, computed as it
                         * reads each element */
    CG_K_CONV,          /* an f32 conv2d, conv_transpose2d, 2-D pooling or one of their gradient ops
                         * conv2d_grad_weight and max_pool2d_grad (codegen/cpu/conv.c); a
                         * convolution first in ops, its elementwise epilogue (if any) after it */
    CG_K_COPY,          /* transpose, permute, slice: a strided copy */
    CG_K_VIEW,          /* reshape, flatten, squeeze, unsqueeze: the result is the input's buffer */
    CG_K_INDEX,         /* gather, index_select, embedding, one_hot: reads through an index tensor */
    CG_K_ATTENTION,     /* scaled_dot_product_attention, fused: scores never reach memory */
    CG_K_SCATTER,       /* an f32 scatter_add, in C (codegen/cpu/scatter.c) */
    CG_K_REF,           /* one op on the reference implementation (no native kernel yet) */
} cg_kernel_kind;

typedef struct cg_kernel cg_kernel;
struct cg_kernel {
    cg_kernel_kind kind;
    const char    *name;       /* k3_add_relu: index and ops, for readable generated code */
    int            nops;
    dl_op        **ops;        /* in order */
    int            nin;
    const dl_value **in;       /* values read from buffers (fused intermediates are not) */
    int            nout;
    const dl_value **out;      /* values written to buffers: those used after the kernel (by
                                * another kernel, the results or an assign), the last op's, and
                                * a matrix product's (the gemm writes it) */
    int            matmul;     /* CG_K_MATMUL, CG_K_CONV: the index in ops of the product (of
                                * the convolution: 0) */
    cg_kernel     *epilogue;   /* CG_K_MATMUL, CG_K_CONV: the elementwise ops after the product
                                * as an elementwise kernel of their own (reading the product),
                                * run on each block of rows the gemm (each image's rows the
                                * convolution) finishes; NULL: none */
};

typedef struct cg_program {
    const dl_func *f;
    int            nsyms;
    const char   **syms;       /* interned symbol names */
    int            nkernels;
    cg_kernel     *kernels;
} cg_program;

/* Plans `f`: with `fuse`, one kernel per fusion group the fuse pass marked (passes/fuse.c) and
 * one per other op; without it (-O0), one kernel per op. Buffers are numbered through
 * value->id: arguments 0..nargs-1, then op results in order (cg_program_nbuffers). */
cg_program *cg_program_build(const dl_func *f, bool fuse, sup_arena *arena);
int         cg_program_nbuffers(const dl_func *f);
/* Whether op's result is its first operand's buffer relabelled (row-major data unchanged). */
bool        cg_program_is_view(const dl_op *op);
/* The symbol index of `name` in p->syms, or -1. */
int         cg_program_sym(const cg_program *p, const char *name);

#endif
