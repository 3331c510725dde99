/* (to be written) */
#include "codegen/cpu/index.h"

#include <stdio.h>

bool cg_cpu_emit_index(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                    char *err, size_t errlen)
{
    (void)j, (void)m, (void)p, (void)k;
    snprintf(err, errlen, "no index kernel yet");
    return false;
}
