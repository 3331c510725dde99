/* The run time of an ahead-of-time library (SPEC section 8, docs/aot.md): what `mlp_create`,
 * `mlp_forward`, `mlp_train_step`, ... do, for any model. The library's generated code is its
 * kernels, a descriptor (cg_aot_desc: the functions' IR as text, the kernels by name, the gemm
 * micro-kernel, the embedded weights) and thin typed wrappers that call these functions. At create
 * the IR is parsed and planned again (cg_aot_plan: the same plan the compiler emitted kernels
 * for), so the library runs exactly what `dlc run` runs, on the same executor (codegen/cpu/exec.c).
 * This file and everything it calls is built without LLVM, as position-independent code with
 * hidden visibility, into the static archive every library links (docs/aot.md, "The runtime"). */
#ifndef DLC_CODEGEN_AOT_MODEL_H
#define DLC_CODEGEN_AOT_MODEL_H

#include "codegen/cpu/exec.h"
#include "ir/ir.h"

#include <stddef.h>
#include <stdint.h>

enum { CG_AOT_VERSION = 2, CG_AOT_MAX_INPUTS = 16, CG_AOT_MAX_SYMS = 16, CG_AOT_MAX_RESULTS = 64 };

/* The status codes of the library API, as the generated header names them (DLC_OK, ...). */
typedef enum {
    CG_AOT_OK,
    CG_AOT_ERR_ARGUMENT,   /* a null pointer, a negative size, an unknown function, a wrong count */
    CG_AOT_ERR_SHAPE,      /* a tensor's shape does not fit the signature */
    CG_AOT_ERR_DTYPE,      /* a tensor's dtype does not fit the signature */
    CG_AOT_ERR_DEVICE,     /* a DLTensor not in CPU memory, or not compact row-major */
    CG_AOT_ERR_FILE,       /* a file cannot be opened, read or written */
    CG_AOT_ERR_FORMAT,     /* a weights or checkpoint file that is invalid or does not fit */
    CG_AOT_ERR_MEMORY,     /* out of memory */
    CG_AOT_ERR_RUNTIME,    /* bad data met while running (an index out of range) */
} cg_aot_status;

/* What the compiler puts in the library (codegen/aot/aot.c emits it as one constant): every
 * field is 8 bytes, so the LLVM struct {i64, ptr, ...} and this one have one layout. */
typedef struct cg_aot_desc {
    int64_t                     version;       /* CG_AOT_VERSION */
    const char                 *name;          /* the C prefix: "mlp" */
    const char                 *ir;            /* @forward and, with a train block, @train_step */
    int64_t                     ir_len;
    const unsigned char        *weights;       /* a safetensors image: the model's tensors (unless
                                                * external) and the run's scalars */
    int64_t                     weights_len;
    int64_t                     external;      /* the model's weights come from the file at create */
    int64_t                     fuse;          /* the plan's fusion (-O0: 0) */
    const char *const          *knames;        /* compiled kernels, by their plan name */
    cg_kernel_fn *const        *kfns;
    int64_t                     nkernels;
    cg_gemm_ukr                *ukr;           /* NULL when no function has matrix products */
    int64_t                     gemm[6];       /* its cg_gemm_params: vec, mr, nr, kc, mc, nc */
    int64_t                     seed;          /* the train block's: dropout keys */
    int64_t                     batches;       /* per epoch, for checkpoint positions; 0: unknown */
    int64_t                     isa;           /* CG_AOT_ISA_* the kernels may use: checked at create */
    const char                 *cpu;           /* the LLVM CPU they were compiled for, for messages */
    /* -O max-autotune and -O reduce-overhead (codegen/aot/special.h) */
    int64_t                     ngemms;        /* gemm variants chosen for the shapes tuned */
    cg_gemm_ukr *const         *gemm_ukrs;     /* per variant: its micro-kernel */
    const int64_t              *gemm_params;   /* per variant: vec, mr, nr, kc, mc, nc */
    int64_t                     ntuned;        /* kernels that run on a variant, */
    const char *const          *tuned;         /* by plan name, */
    const int64_t              *tuned_variant; /* and which */
    int64_t                     nstraight;     /* straight-line steps */
    const char *const          *straight_funcs;  /* per step: its function ("forward", "train_step") */
    cg_straight_fn *const      *straight_fns;
    const int64_t              *straight_syms;   /* per step, CG_AOT_MAX_SYMS: the symbols' values
                                                  * (in the plan's order) it is specialized to */
} cg_aot_desc;

/* Instruction-set extensions a library's kernels may use (x86-64), checked at create so that a
 * library compiled for a newer CPU refuses to start rather than dying on an illegal instruction. */
enum {
    CG_AOT_ISA_SSE42 = 1 << 0, CG_AOT_ISA_AVX = 1 << 1, CG_AOT_ISA_AVX2 = 1 << 2, CG_AOT_ISA_FMA = 1 << 3,
    CG_AOT_ISA_BMI2 = 1 << 4, CG_AOT_ISA_AVX512F = 1 << 5, CG_AOT_ISA_AVX512BW = 1 << 6,
    CG_AOT_ISA_AVX512DQ = 1 << 7, CG_AOT_ISA_AVX512VL = 1 << 8, CG_AOT_ISA_AVX512CD = 1 << 9,
};

/* DLPack's DLTensor (v0.8 and later share this layout), as the generated header declares it. */
typedef struct cg_dltensor {
    void     *data;
    int32_t   device_type, device_id;       /* kDLCPU = 1 */
    int32_t   ndim;
    uint8_t   code, bits;                   /* kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4, kDLBool 6 */
    uint16_t  lanes;
    int64_t  *shape;
    int64_t  *strides;                      /* NULL: compact row-major */
    uint64_t  byte_offset;
} cg_dltensor;

typedef struct cg_aot_model cg_aot_model;

/* An instance: the IR parsed and planned, the model's tensors from `weights` (a safetensors file,
 * memory-mapped and validated; NULL: the embedded ones), the optimizer's state fresh. NULL with
 * a message in err (when err is not NULL). */
cg_aot_model *cg_aot_create(const cg_aot_desc *d, const char *weights, char *err, size_t errlen);
void          cg_aot_destroy(cg_aot_model *m);
/* The message of the last call that failed on m ("" if none). */
const char   *cg_aot_last_error(const cg_aot_model *m);

/* @forward on raw pointers: syms in cg_aot_symbols order, in[i] per cg_aot_inputs, out[i] per
 * result, each row-major in its dtype and large enough. */
int cg_aot_forward(cg_aot_model *m, const int64_t *syms, const void *const *in, void *const *out);
/* One micro-step of @train_step on a batch (in: x, y); *loss gets the loss in its dtype. */
int cg_aot_train_step(cg_aot_model *m, const int64_t *syms, const void *const *in, void *loss);
/* "forward" or "train_step" on DLTensors: the inputs, then the results (shapes and dtypes exact). */
int cg_aot_call(cg_aot_model *m, const char *fn, const cg_dltensor *args, int32_t nargs,
                cg_dltensor *results, int32_t nresults);
/* A checkpoint (everything a resumed run needs, the format `dlc run --resume` reads), written
 * atomically; load takes a checkpoint, or a weights file (the model's tensors only). */
int cg_aot_save(cg_aot_model *m, const char *path);
int cg_aot_load(cg_aot_model *m, const char *path);

/* Shared by the compiler and the run time, so the two agree. */
/* The plan of f with its kernels renamed `PREFIX_FUNC_kN_...` (unique in a library). */
cg_program *cg_aot_plan(const dl_func *f, bool fuse, const char *prefix, sup_arena *a);
/* The arguments a caller passes (role input, but not the training step's RNG key, which the run
 * time draws), in order; and the symbolic dimensions of their types in order of first
 * appearance. Both return the full count and fill at most max. */
int cg_aot_inputs(const dl_func *f, int *out, int max);
int cg_aot_symbols(const dl_func *f, const char **out, int max);
/* Whether argument a of a training step is the model's (weights files hold it), not the run's
 * state (optimizer, counters) nor a frozen model loaded from a file. */
bool cg_aot_is_model(const dl_arg_info *info);

#endif
