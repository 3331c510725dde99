/* Native kernels for the ops that read through an index tensor: gather, index_select, embedding
 * and one_hot, for every data dtype and integer indices. Indices are checked against their
 * dimension before any data moves; a bad one is reported through the kernel's status words. */
#ifndef DLC_CODEGEN_CPU_INDEX_H
#define DLC_CODEGEN_CPU_INDEX_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

/* Adds k->name(bufs, syms, status) to m for k, a CG_K_INDEX kernel (one op). */
bool cg_cpu_emit_index(cg_jit *j, LLVMModuleRef m, const cg_program *p, const cg_kernel *k,
                       char *err, size_t errlen);

#endif
