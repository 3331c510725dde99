/* What the CPU backend's kernel emitters share: the LLVM types of one kernel being built, loads
 * and stores of every dtype (f16 through half, bf16 through its bits), rounding to a dtype,
 * conversions, intrinsic and libm calls, dimensions read from the symbol array, counted loops. */
#ifndef DLC_CODEGEN_CPU_EMIT_H
#define DLC_CODEGEN_CPU_EMIT_H

#include "codegen/cpu/exec.h"
#include "codegen/cpu/jit.h"
#include "codegen/program.h"

typedef struct cg_em {
    LLVMContextRef c;
    LLVMModuleRef  m;
    LLVMBuilderRef b;
    LLVMTypeRef    i1, i8, i16, i32, i64, f16, f32, f64, ptr;
    LLVMValueRef   syms;               /* const int64_t *syms */
    LLVMValueRef   status;             /* int64_t status[4], see cg_em_fail */
    LLVMValueRef   begin, end;         /* the part of its outer loop a call runs (elementwise) */
    const cg_program *p;
} cg_em;

/* Sets up e for a kernel `void name(void **bufs, const int64_t *syms, int64_t *status,
 * int64_t begin, int64_t end)` in m, positioned at its entry block; returns the function.
 * status[0] is 0 on entry; a kernel that meets bad data (an index out of range) records it with
 * cg_em_fail and goes on without touching memory out of bounds; the caller reports it after the
 * kernel returns. Elementwise kernels run the rows [begin, end) of their output (the caller
 * splits the rows across threads); the other kinds run whole and ignore both. */
LLVMValueRef cg_em_begin(cg_em *e, cg_jit *j, LLVMModuleRef m, const cg_program *p, const char *name);
void         cg_em_end(cg_em *e);
/* What a kernel reports in status[0..3]: the kind, the offending value, the size it had to be
 * below, and the position in the kernel of the op that met it. */
void         cg_em_fail(cg_em *e, int64_t op_index, LLVMValueRef value, LLVMValueRef size);

LLVMTypeRef  cg_em_storage_type(cg_em *e, dl_dtype t);
LLVMTypeRef  cg_em_compute_type(cg_em *e, dl_dtype t);  /* f32 (f32/f16/bf16), f64, i64, i1 */
LLVMValueRef cg_em_i64(cg_em *e, int64_t v);
LLVMValueRef cg_em_intrinsic(cg_em *e, const char *name, LLVMTypeRef t, int n, LLVMValueRef *args);
LLVMValueRef cg_em_intrinsic1(cg_em *e, const char *name, LLVMValueRef a);
LLVMValueRef cg_em_libm(cg_em *e, const char *name, LLVMValueRef a);      /* tanhf or tanh, ... */
/* tanh, erf and log1p: for f32, straight-line IR (within 1.5 ulp) that loops vectorize; for
 * f64, libm. */
LLVMValueRef cg_em_exp(cg_em *e, LLVMValueRef x);
LLVMValueRef cg_em_tanh(cg_em *e, LLVMValueRef x);
LLVMValueRef cg_em_erf(cg_em *e, LLVMValueRef x);
LLVMValueRef cg_em_log1p(cg_em *e, LLVMValueRef x);
LLVMValueRef cg_em_helper(cg_em *e, const char *name, LLVMValueRef a, LLVMValueRef b); /* i64 (i64, i64) */
LLVMValueRef cg_em_load(cg_em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx);   /* to compute type */
void         cg_em_store(cg_em *e, LLVMValueRef base, dl_dtype t, LLVMValueRef idx, LLVMValueRef v);
LLVMValueRef cg_em_round(cg_em *e, LLVMValueRef v, dl_dtype t);       /* as storing and reloading */
LLVMValueRef cg_em_convert(cg_em *e, LLVMValueRef v, dl_dtype from, dl_dtype to);
/* The buffer pointer of value v (bufs[v->id]), named after it. */
LLVMValueRef cg_em_buffer(cg_em *e, LLVMValueRef bufs, const dl_value *v);
/* A dimension's run-time value: its constant times its symbols. */
LLVMValueRef cg_em_dim(cg_em *e, dl_dim d);

/* for (i = 0; i < n; i++) { ... }: loop_begin leaves the builder in the body with l.i the index. */
typedef struct cg_loop { LLVMBasicBlockRef body, done; LLVMValueRef i; } cg_loop;
cg_loop cg_em_loop_begin(cg_em *e, LLVMValueRef fn, LLVMValueRef n, const char *name);
/* A loop over [lo, hi) (cg_em_loop_end with hi). */
cg_loop cg_em_loop_range(cg_em *e, LLVMValueRef fn, LLVMValueRef lo, LLVMValueRef hi, const char *name);
void    cg_em_loop_end(cg_em *e, cg_loop *l, LLVMValueRef n);

#endif
