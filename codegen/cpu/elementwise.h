/* LLVM IR for fused elementwise kernels: one loop nest over the outputs' shape, broadcasting
 * inputs by stride 0, every op of the group computed in registers (f32 for f32/f16/bf16, f64,
 * i64 for integers, i1 for bools) and rounded to its dtype, one store per output. */
#ifndef DLC_CODEGEN_CPU_ELEMENTWISE_H
#define DLC_CODEGEN_CPU_ELEMENTWISE_H

#include "codegen/cpu/jit.h"
#include "codegen/memplan.h"
#include "codegen/program.h"

/* Adds `void k->name(void **bufs, const int64_t *syms, int64_t *status, int64_t begin, int64_t
 * end)` to m. Buffer ids are value->id. With the plan mp, an input whose slot an output takes
 * over in place is read through the output's pointer (the same address), so LLVM sees each
 * element read before it is written and vectorizes without a run-time overlap check. */
bool cg_cpu_emit_elementwise(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                             const cg_memplan *mp, char *err, size_t errlen);

struct cg_em;
/* The value of ops[nops - 1] at linear position `at` of the ops' common shape, every op computed
 * in registers as the kernel above computes it: inval[j] is the value (compute type) of in[j],
 * each operand the ops do not make; `name` prefixes constants' globals. NULL with a message in
 * err. A reduction reads its fused producers through this (codegen/cpu/reduce.c). */
LLVMValueRef cg_cpu_elementwise_value(struct cg_em *e, dl_op *const *ops, int nops, LLVMValueRef at, int nin,
                                      const dl_value *const *in, const LLVMValueRef *inval, const char *name,
                                      char *err, size_t errlen);

#endif
