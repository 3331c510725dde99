/* LLVM IR for reductions (sum, mean, max, min, prod, logsumexp, var, std, argmax, argmin over
 * one contiguous run of dimensions), softmax, log_softmax and layer_norm: the input viewed as
 * outer x len x inner, reduced over len. Floats accumulate in double like the reference. */
#ifndef DLC_CODEGEN_CPU_REDUCE_H
#define DLC_CODEGEN_CPU_REDUCE_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

/* Adds `void k->name(void **bufs, const int64_t *syms, int64_t *status)` to m for a CG_K_REDUCE kernel. */
bool cg_cpu_emit_reduce(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                        char *err, size_t errlen);

#endif
