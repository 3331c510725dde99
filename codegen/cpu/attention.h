/* (filled in by the attention kernels' author) */
#ifndef DLC_CODEGEN_CPU_ATTENTION_H
#define DLC_CODEGEN_CPU_ATTENTION_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

bool cg_cpu_emit_attention(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                    char *err, size_t errlen);

#endif
