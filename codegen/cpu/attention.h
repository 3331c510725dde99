/* scaled_dot_product_attention as one fused LLVM IR kernel, FlashAttention-style: each block of
 * query rows streams over the keys with an online softmax (a running maximum, a running sum and
 * an accumulator rescaled when the maximum grows), so the L x S score matrix never reaches
 * memory. Batch dimensions broadcast, an optional bool or float mask, causal, any float dtype
 * (f32 arithmetic for f32, f16 and bf16, f64 for f64), symbolic dimensions. */
#ifndef DLC_CODEGEN_CPU_ATTENTION_H
#define DLC_CODEGEN_CPU_ATTENTION_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

/* Adds `void k->name(void **bufs, const int64_t *syms, int64_t *status)` computing k->ops[0],
 * an sdpa op, to m. */
bool cg_cpu_emit_attention(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                           char *err, size_t errlen);

#endif
