/* The CPU backend's LLVM plumbing (see jit.h), with the LLVM 19 C API. */
#include "codegen/cpu/jit.h"

#include "support/alloc.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cg_jit {
    LLVMOrcThreadSafeContextRef tsc;
    LLVMContextRef              ctx;
    LLVMTargetMachineRef        tm;
    LLVMTargetMachineRef        jit_tm;   /* tm with the JIT's code model: objects for this JIT */
    LLVMOrcLLJITRef             jit;
    char                       *triple, *cpu, *features, *layout;
    bool                        avx512;
};

static pthread_once_t targets_once = PTHREAD_ONCE_INIT;

static void init_targets(void)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
}

static bool take_error(LLVMErrorRef e, const char *what, char *err, size_t errlen)
{
    if (!e)
        return true;
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, errlen, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
    return false;
}

cg_jit *cg_jit_create(const char *cpu, char *err, size_t errlen)
{
    pthread_once(&targets_once, init_targets);
    cg_jit *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    j->triple = LLVMGetDefaultTargetTriple();
    j->cpu = cpu ? strdup(cpu) : LLVMGetHostCPUName();
    j->features = cpu ? strdup("") : LLVMGetHostCPUFeatures();
    j->avx512 = strstr(j->features, "+avx512f") != NULL;
    LLVMTargetRef target;
    char *msg = NULL;
    if (LLVMGetTargetFromTriple(j->triple, &target, &msg)) {
        snprintf(err, errlen, "no LLVM target for %s: %s", j->triple, msg);
        LLVMDisposeMessage(msg);
        cg_jit_destroy(j);
        return NULL;
    }
    j->tm = LLVMCreateTargetMachine(target, j->triple, j->cpu, j->features,
                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(j->tm);
    j->layout = LLVMCopyStringRepOfTargetData(td);
    LLVMDisposeTargetData(td);
    /* The JIT compiles for the same CPU as the target machine the passes ran with, in the code
     * model ORC uses (large on x86-64), and objects made for it (cg_jit_emit_object) alike. */
    j->jit_tm = LLVMCreateTargetMachine(target, j->triple, j->cpu, j->features, LLVMCodeGenLevelAggressive,
                                        LLVMRelocPIC, LLVMCodeModelJITDefault);
    LLVMOrcJITTargetMachineBuilderRef jtmb =
        LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(
            LLVMCreateTargetMachine(target, j->triple, j->cpu, j->features,
                                    LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelJITDefault));
    LLVMOrcLLJITBuilderRef b = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(b, jtmb);
    if (!take_error(LLVMOrcCreateLLJIT(&j->jit, b), "creating the JIT", err, errlen)) {
        cg_jit_destroy(j);
        return NULL;
    }
    /* libc and libm (expf, ...) resolve from the process. */
    LLVMOrcDefinitionGeneratorRef gen;
    if (!take_error(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
                        &gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL),
                    "searching the process's symbols", err, errlen)) {
        cg_jit_destroy(j);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
    j->tsc = LLVMOrcCreateNewThreadSafeContext();
    j->ctx = LLVMOrcThreadSafeContextGetContext(j->tsc);
    return j;
}

void cg_jit_destroy(cg_jit *j)
{
    if (!j)
        return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e)
            LLVMConsumeError(e);
    }
    if (j->tsc)
        LLVMOrcDisposeThreadSafeContext(j->tsc);
    if (j->tm)
        LLVMDisposeTargetMachine(j->tm);
    if (j->jit_tm)
        LLVMDisposeTargetMachine(j->jit_tm);
    LLVMDisposeMessage(j->triple);
    free(j->cpu);
    free(j->features);
    LLVMDisposeMessage(j->layout);
    free(j);
}

LLVMContextRef cg_jit_context(cg_jit *j) { return j->ctx; }
LLVMTargetMachineRef cg_jit_target(cg_jit *j) { return j->tm; }

LLVMModuleRef cg_jit_module(cg_jit *j, const char *name)
{
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext(name, j->ctx);
    LLVMSetTarget(m, j->triple);
    LLVMSetDataLayout(m, j->layout);
    return m;
}

static void add_string_attr(LLVMContextRef ctx, LLVMValueRef fn, const char *k, const char *v)
{
    LLVMAttributeRef a = LLVMCreateStringAttribute(ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, a);
}

void cg_jit_tune(cg_jit *j, LLVMValueRef fn)
{
    add_string_attr(j->ctx, fn, "target-cpu", j->cpu);
    if (*j->features)
        add_string_attr(j->ctx, fn, "target-features", j->features);
    if (j->avx512)
        add_string_attr(j->ctx, fn, "prefer-vector-width", "512");
}

bool cg_jit_optimize(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen)
{
    char *msg = NULL;
    if (LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        snprintf(err, errlen, "the generated LLVM IR is invalid (a bug in dlc): %s", msg);
        LLVMDisposeMessage(msg);
        return false;
    }
    LLVMDisposeMessage(msg);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m, "default<O3>", j->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    return take_error(e, "optimizing", err, errlen);
}

bool cg_jit_add(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen)
{
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(m, j->tsc);
    LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
    if (e)
        LLVMOrcDisposeThreadSafeModule(tsm);
    return take_error(e, "adding a module to the JIT", err, errlen);
}

void *cg_jit_lookup(cg_jit *j, const char *name, char *err, size_t errlen)
{
    LLVMOrcExecutorAddress addr = 0;
    if (!take_error(LLVMOrcLLJITLookup(j->jit, &addr, name), "looking up a kernel", err, errlen))
        return NULL;
    return (void *)(uintptr_t)addr;
}

bool cg_jit_define(cg_jit *j, const char *name, void *addr, char *err, size_t errlen)
{
    LLVMOrcCSymbolMapPair pair = {
        LLVMOrcLLJITMangleAndIntern(j->jit, name),
        {(LLVMOrcExecutorAddress)(uintptr_t)addr,
         {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}};
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(&pair, 1);
    return take_error(LLVMOrcJITDylibDefine(LLVMOrcLLJITGetMainJITDylib(j->jit), mu),
                      "defining a runtime symbol", err, errlen);
}

char *cg_jit_print_ir(LLVMModuleRef m)
{
    char *s = LLVMPrintModuleToString(m), *copy = strdup(s);
    LLVMDisposeMessage(s);
    return copy;
}

char *cg_jit_print_asm(cg_jit *j, LLVMModuleRef m, char *err, size_t errlen)
{
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    /* The error message comes before the buffer in this call (TOOLCHAIN.md). */
    if (LLVMTargetMachineEmitToMemoryBuffer(j->tm, m, LLVMAssemblyFile, &msg, &buf)) {
        snprintf(err, errlen, "emitting assembly: %s", msg);
        LLVMDisposeMessage(msg);
        return NULL;
    }
    size_t n = LLVMGetBufferSize(buf);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, LLVMGetBufferStart(buf), n);
        s[n] = 0;
    }
    LLVMDisposeMemoryBuffer(buf);
    return s;
}

bool cg_jit_emit_object(cg_jit *j, LLVMModuleRef m, bool for_jit, void **data, size_t *len, char *err,
                        size_t errlen)
{
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(for_jit ? j->jit_tm : j->tm, m, LLVMObjectFile, &msg, &buf)) {
        snprintf(err, errlen, "emitting an object: %s", msg);
        LLVMDisposeMessage(msg);
        return false;
    }
    size_t n = LLVMGetBufferSize(buf);
    void *copy = sup_malloc(n ? n : 1);
    if (copy)
        memcpy(copy, LLVMGetBufferStart(buf), n);
    else
        snprintf(err, errlen, "out of memory");
    LLVMDisposeMemoryBuffer(buf);
    *data = copy;
    *len = n;
    return copy != NULL;
}

bool cg_jit_add_object(cg_jit *j, const void *data, size_t len, char *err, size_t errlen)
{
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, len, "dlc-object");
    /* The JIT owns buf from here, whatever the outcome. */
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), buf);
    return take_error(e, "adding an object to the JIT", err, errlen);
}

void cg_jit_hash(cg_jit *j, sup_sha256_ctx *s)
{
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    sup_sha256_u64(s, (uint64_t)major << 32 | (uint64_t)minor << 16 | patch);
    sup_sha256_str(s, j->triple);
    sup_sha256_str(s, j->cpu);
    sup_sha256_str(s, j->features);
    sup_sha256_str(s, j->layout);
}
