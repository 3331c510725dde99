/* The CPU backend's LLVM plumbing: one target machine for the host (or a named CPU), modules
 * built in its context, LLVM's O3 pipeline run *with* that target machine (without it nothing
 * vectorizes), ORC LLJIT to run them (as IR modules, or as the object files the compile cache keeps),
 * and textual LLVM IR / assembly for --emit. */
#ifndef DLC_CODEGEN_CPU_JIT_H
#define DLC_CODEGEN_CPU_JIT_H

#include "support/sha256.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include <stdbool.h>
#include <stddef.h>

typedef struct cg_jit cg_jit;

/* A JIT for `cpu` (NULL: this machine). NULL with a message in err. */
cg_jit *cg_jit_create(const char *cpu, char *err, size_t errlen);
void    cg_jit_destroy(cg_jit *j);

LLVMContextRef       cg_jit_context(cg_jit *j);
LLVMTargetMachineRef cg_jit_target(cg_jit *j);
/* A new module in the JIT's context, with its triple and data layout set. */
LLVMModuleRef cg_jit_module(cg_jit *j, const char *name);
/* Marks `fn` as code for the JIT's CPU (target-cpu, target-features, 512-bit vectors where the
 * CPU has them: LLVM otherwise prefers 256 on many AVX-512 parts). */
void cg_jit_tune(cg_jit *j, LLVMValueRef fn);

/* Verifies and optimizes `m` with default<O3>. */
bool cg_jit_optimize(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen);
/* Hands `m` to the JIT (it takes ownership) and looks up symbols in it. */
bool  cg_jit_add(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen);
void *cg_jit_lookup(cg_jit *j, const char *name, char *err, size_t errlen);
/* Makes a function of this process callable from JIT'd code under `name`. */
bool cg_jit_define(cg_jit *j, const char *name, void *addr, char *err, size_t errlen);

/* m as a relocatable, position-independent object file for the JIT's CPU, in memory: *data is
 * sup_malloc'd (the caller sup_frees), *len its size. `for_jit`: for cg_jit_add_object, in the
 * code model ORC gives the IR modules it compiles (large on x86-64: the code of a fused
 * attention ran 25% slower in the small one); else for linking into a library (small). */
bool  cg_jit_emit_object(cg_jit *j, LLVMModuleRef m, bool for_jit, void **data, size_t *len, char *err,
                         size_t errlen);
/* Links an object file made by cg_jit_emit_object for the JIT (perhaps by another process, read
 * back from the compile cache) into the JIT; its symbols are then found by cg_jit_lookup. The
 * bytes are copied. */
bool  cg_jit_add_object(cg_jit *j, const void *data, size_t len, char *err, size_t errlen);
/* Adds to a compile-cache key what code made by j depends on besides the module: LLVM's
 * version, the target triple, the CPU and its features. */
void  cg_jit_hash(cg_jit *j, sup_sha256_ctx *s);

/* The module as text: LLVM IR or this CPU's assembly (malloc'd, caller frees). */
char *cg_jit_print_ir(LLVMModuleRef m);
char *cg_jit_print_asm(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen);

#endif
