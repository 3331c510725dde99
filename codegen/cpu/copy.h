/* LLVM IR for data movement: transpose, permute and slice as one strided copy (each output
 * dimension walks the input with its own stride); concat, stack and split as a copy per piece. */
#ifndef DLC_CODEGEN_CPU_COPY_H
#define DLC_CODEGEN_CPU_COPY_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

bool cg_cpu_emit_copy(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                      char *err, size_t errlen);

#endif
