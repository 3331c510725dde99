/* LLVM IR for fused elementwise kernels: one loop nest over the output, broadcasting inputs by
 * stride 0, every op of the chain computed in registers (f32 for f32/f16/bf16, f64, i64 for
 * integers, i1 for bools) and rounded to its dtype, one store. */
#ifndef DLC_CODEGEN_CPU_ELEMENTWISE_H
#define DLC_CODEGEN_CPU_ELEMENTWISE_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

/* Adds `void k->name(void **bufs, const int64_t *syms, int64_t *status)` to m. Buffer ids are value->id. */
bool cg_cpu_emit_elementwise(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                             char *err, size_t errlen);

#endif
