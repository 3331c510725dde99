/* (to be written) */
#include "codegen/cpu/attention.h"

#include <stdio.h>

bool cg_cpu_emit_attention(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                    char *err, size_t errlen)
{
    (void)j, (void)m, (void)p, (void)k;
    snprintf(err, errlen, "no attention kernel yet");
    return false;
}
