/* The CPU backend's LLVM plumbing end to end: a loop built through the C API is optimized with
 * the host target machine (and vectorizes: 512-bit vectors where the CPU has AVX-512), JIT-run,
 * and gives the right numbers; a process function is callable from JIT'd code. */
#include "codegen/cpu/jit.h"
#include "tests/unit/check.h"

#include <stdint.h>
#include <stdlib.h>

static float host_scale(float x) { return 3 * x; }

/* void saxpy(float *y, const float *x, float a, i64 n) { for i: y[i] += a * host_scale(x[i]) } */
static LLVMModuleRef build(cg_jit *j, bool call_host)
{
    LLVMContextRef c = cg_jit_context(j);
    LLVMModuleRef m = cg_jit_module(j, "t");
    LLVMTypeRef f32 = LLVMFloatTypeInContext(c), i64 = LLVMInt64TypeInContext(c),
                ptr = LLVMPointerTypeInContext(c, 0), vt = LLVMVoidTypeInContext(c);
    LLVMTypeRef params[] = {ptr, ptr, f32, i64};
    LLVMValueRef fn = LLVMAddFunction(m, "saxpy", LLVMFunctionType(vt, params, 4, 0));
    cg_jit_tune(j, fn);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned k = 1; k <= 2; k++)
        LLVMAddAttributeAtIndex(fn, k, LLVMCreateEnumAttribute(c, noalias, 0));
    LLVMTypeRef hs_t = LLVMFunctionType(f32, &f32, 1, 0);
    LLVMValueRef hs = call_host ? LLVMAddFunction(m, "host_scale", hs_t) : NULL;
    LLVMBuilderRef b = LLVMCreateBuilderInContext(c);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c, fn, "entry"),
                      loop = LLVMAppendBasicBlockInContext(c, fn, "loop"),
                      done = LLVMAppendBasicBlockInContext(c, fn, "done");
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef n = LLVMGetParam(fn, 3);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSGT, n, LLVMConstInt(i64, 0, 0), ""), loop, done);
    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef i = LLVMBuildPhi(b, i64, "i");
    LLVMValueRef px = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 1), &i, 1, "px");
    LLVMValueRef py = LLVMBuildGEP2(b, f32, LLVMGetParam(fn, 0), &i, 1, "py");
    LLVMValueRef x = LLVMBuildLoad2(b, f32, px, "x");
    if (hs)
        x = LLVMBuildCall2(b, hs_t, hs, &x, 1, "sx");
    LLVMValueRef y = LLVMBuildFAdd(b, LLVMBuildLoad2(b, f32, py, "y"),
                                   LLVMBuildFMul(b, LLVMGetParam(fn, 2), x, ""), "r");
    LLVMBuildStore(b, y, py);
    LLVMValueRef next = LLVMBuildAdd(b, i, LLVMConstInt(i64, 1, 0), "next");
    LLVMValueRef zero = LLVMConstInt(i64, 0, 0);
    LLVMAddIncoming(i, &zero, &entry, 1);
    LLVMAddIncoming(i, &next, &loop, 1);
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, next, n, ""), loop, done);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return m;
}

int main(void)
{
    char err[512];
    cg_jit *j = cg_jit_create(NULL, err, sizeof err);
    CHECK(j != NULL);
    if (!j) {
        fprintf(stderr, "%s\n", err);
        return check_result("test_jit");
    }
    LLVMModuleRef m = build(j, false);
    CHECK(cg_jit_optimize(j, m, err, sizeof err));
    char *ir = cg_jit_print_ir(m);
    char *as = cg_jit_print_asm(j, m, err, sizeof err);
    CHECK(ir && as);
    /* Vectorized: wide vector types in the IR, and zmm registers on an AVX-512 machine. */
    CHECK(strstr(ir, "x float>") != NULL);
    if (__builtin_cpu_supports("avx512f"))
        CHECK(strstr(as, "zmm") != NULL);
    free(ir);
    free(as);
    CHECK(cg_jit_add(j, m, err, sizeof err));
    void (*saxpy)(float *, const float *, float, int64_t) =
        (void (*)(float *, const float *, float, int64_t))cg_jit_lookup(j, "saxpy", err, sizeof err);
    CHECK(saxpy != NULL);
    float x[1000], y[1000];
    for (int i = 0; i < 1000; i++)
        x[i] = (float)i, y[i] = 1;
    if (saxpy)
        saxpy(y, x, 2, 1000);
    CHECK_NEAR(y[999], 1 + 2 * 999, 0);
    CHECK_NEAR(y[0], 1, 0);

    /* A module calling a function of this process, registered by name. */
    cg_jit *j2 = cg_jit_create(NULL, err, sizeof err);
    CHECK(j2 && cg_jit_define(j2, "host_scale", (void *)host_scale, err, sizeof err));
    LLVMModuleRef m2 = build(j2, true);
    CHECK(cg_jit_optimize(j2, m2, err, sizeof err) && cg_jit_add(j2, m2, err, sizeof err));
    void (*f2)(float *, const float *, float, int64_t) =
        (void (*)(float *, const float *, float, int64_t))cg_jit_lookup(j2, "saxpy", err, sizeof err);
    CHECK(f2 != NULL);
    for (int i = 0; i < 1000; i++)
        y[i] = 0;
    if (f2)
        f2(y, x, 1, 1000);
    CHECK_NEAR(y[10], 30, 0);
    cg_jit_destroy(j2);
    cg_jit_destroy(j);
    return check_result("test_jit");
}
