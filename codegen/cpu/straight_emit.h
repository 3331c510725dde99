/* -O reduce-overhead: generating the straight-line step of a plan specialized to its symbols'
 * values (what it does: codegen/cpu/straight.h). dlc run JIT-compiles it at the first call
 * (codegen/cpu/cpu.c); an AOT library carries one per function, made at compile time for the
 * batch size it is tuned for (codegen/aot/aot.c). */
#ifndef DLC_CODEGEN_CPU_STRAIGHT_EMIT_H
#define DLC_CODEGEN_CPU_STRAIGHT_EMIT_H

#include "codegen/cpu/jit.h"
#include "codegen/program.h"

#include <stddef.h>
#include <stdint.h>

/* Adds `int64_t name(cg_straight_env *env, void **bufs, char *arena)` to m: prog's kernels in
 * order with the memory plan's offsets placed for syms (prog->syms' order) as constants. The
 * compiled kernels are called by their plan names, declared when m does not define them (the
 * JIT links them from the plan's object); the run-time helpers (cg_straight_split,
 * cg_straight_kernel, cg_gemm_run_strided) are external. False with a message in err. */
bool cg_straight_emit(cg_jit *j, LLVMModuleRef m, const cg_program *prog, const int64_t *syms,
                      const char *name, char *err, size_t errlen);

#endif
