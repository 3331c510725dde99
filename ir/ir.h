/* The tensor IR: modules of functions, each a list of operations in SSA form over typed tensor
 * values (dtype + shape, dimensions possibly symbolic). Everything the frontend produces and every
 * pass and backend consumes is this. The op table is ir/ops.def; the textual form is printed by
 * ir/print.c and read by ir/parse.c; ir/verify.c checks the invariants listed in docs/ir.md. */
#ifndef DLC_IR_IR_H
#define DLC_IR_IR_H

#include "support/alloc.h"
#include "support/diag.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- dtypes ---------------------------------------------------------------------------- */

/* Each dtype: its name, its size, its NumPy descriptor (bf16 has none) and its safetensors name. */
#define DL_DTYPES(X) \
    X(F32, "f32", 4, "<f4", "F32") X(F16, "f16", 2, "<f2", "F16") X(BF16, "bf16", 2, NULL, "BF16") \
    X(F64, "f64", 8, "<f8", "F64") X(I8, "i8", 1, "|i1", "I8") X(U8, "u8", 1, "|u1", "U8") \
    X(I32, "i32", 4, "<i4", "I32") X(I64, "i64", 8, "<i8", "I64") X(BOOL, "bool", 1, "|b1", "BOOL")

typedef enum {
#define X(e, s, n, npy, st) DL_##e,
    DL_DTYPES(X)
#undef X
    DL_NDTYPES
} dl_dtype;

const char *ir_dtype_name(dl_dtype t);
int         ir_dtype_size(dl_dtype t);
bool        ir_dtype_is_float(dl_dtype t);
bool        ir_dtype_is_int(dl_dtype t);       /* i8 u8 i32 i64, not bool */
bool        ir_dtype_parse(const char *s, size_t n, dl_dtype *out);
/* The file formats' names of a dtype: NumPy's descriptor (NULL for bf16) and safetensors'. */
const char *ir_dtype_npy(dl_dtype t);
bool        ir_dtype_from_npy(const char *descr, dl_dtype *out);
const char *ir_dtype_safetensors(dl_dtype t);
bool        ir_dtype_from_safetensors(const char *name, dl_dtype *out);

/* ---- dimensions and shapes ------------------------------------------------------------- */

enum { DL_MAX_RANK = 8, DL_DIM_MAXSYM = 4 };
/* The largest dimension (2^48): products of two stay far from int64 overflow. */
#define IR_MAX_DIM ((int64_t)1 << 48)

/* A dimension is c * sym[0] * ... * sym[n-1]: a constant (n == 0) or a product of symbolic
 * dimensions with a constant factor (N, 4*N, N*T). Symbols are interned strings of the module
 * (compare pointers) kept sorted, so equal dimensions are equal field by field. In attributes
 * c == -1 with n == 0 means "infer this one" (reshape) or "keep this one" (expand). */
typedef struct dl_dim {
    int64_t     c;
    int         n;
    const char *sym[DL_DIM_MAXSYM];
} dl_dim;

typedef struct dl_type {
    dl_dtype dtype;
    int      rank;
    dl_dim   dim[DL_MAX_RANK];
} dl_type;

dl_dim ir_dim_const(int64_t c);
dl_dim ir_dim_sym(const char *interned);
bool   ir_dim_is_const(dl_dim d);
bool   ir_dim_eq(dl_dim a, dl_dim b);
bool   ir_dim_mul(dl_dim a, dl_dim b, dl_dim *out);         /* false: too many symbols, overflow */
bool   ir_dim_div(dl_dim a, dl_dim b, dl_dim *out);         /* false: not an exact quotient */
int    ir_dim_str(dl_dim d, char *buf, size_t n);           /* "64", "N", "4*N*T" */
bool   ir_type_eq(const dl_type *a, const dl_type *b);
bool   ir_type_is_static(const dl_type *t);
bool   ir_type_numel(const dl_type *t, dl_dim *out);        /* false: too many symbols */
int    ir_type_str(const dl_type *t, char *buf, size_t n);  /* "f32[N, 64]", "f32" */

/* ---- attributes ------------------------------------------------------------------------ */

typedef enum {
    DL_ATTR_INT, DL_ATTR_FLOAT, DL_ATTR_BOOL, DL_ATTR_STR,
    DL_ATTR_INTS, DL_ATTR_FLOATS, DL_ATTR_SHAPE, DL_ATTR_DTYPE,
} dl_attr_kind;

typedef struct dl_attr {
    const char  *name;       /* interned in the module */
    dl_attr_kind kind;
    int          n;          /* element count of INTS, FLOATS, SHAPE */
    union {
        int64_t     i;
        double      f;
        bool        b;
        const char *s;
        dl_dtype    dt;
        int64_t    *ints;
        double     *floats;
        dl_dim     *dims;
    } u;
} dl_attr;

/* ---- ops ------------------------------------------------------------------------------- */

typedef enum {
#define OP(id, name, rule, grad, nodiff, min_in, max_in, nres, props, attrs) DL_OP_##id,
#include "ir/ops.def"
#undef OP
    DL_NOPS
} dl_opcode;

/* Op properties (ops.def). */
enum {
    P_ELEM   = 1 << 0,  /* elementwise: out[i] depends on in[i] only (with broadcasting) */
    P_DIFF   = 1 << 1,  /* differentiable in its floating-point operands */
    P_FUSE   = 1 << 2,  /* may join a fused group */
    P_INPL   = 1 << 3,  /* may write its result over its first operand */
    P_EFFECT = 1 << 4,  /* has an effect beyond its results: never removed or merged */
    P_COMM   = 1 << 5,  /* commutative in its two operands */
    P_REDUCE = 1 << 6,  /* reduces over `dim` */
    P_FLOAT  = 1 << 7,  /* floating-point operands only */
    P_TERM   = 1 << 8,  /* ends a function */
    P_NOGRAD = 1 << 9,  /* differentiable, but with no gradient rule yet: autodiff refuses to go
                         * through it rather than treat it as a constant */
};
/* Operands an op never differentiates in (ops.def's fifth column): bit i for operand i. */
#define ND(i)  (1u << (i))
#define ND_ALL (~0u)

typedef struct dl_attr_spec {
    const char  *name;
    dl_attr_kind kind;
    bool         required;
    const char  *def;        /* default as text, or NULL (optional, no default) */
    const char  *choices;    /* STR: "a|b|c", or NULL for any string */
} dl_attr_spec;

typedef struct dl_op_info {
    const char *name;
    int         min_in, max_in;   /* max_in -1: any number */
    int         nres;             /* -1: decided by the attributes (split) */
    unsigned    props;
    unsigned    nodiff;           /* ND(i): operand i has no gradient (indices, labels, masks) */
    int         nattr;
    const dl_attr_spec *attr;
} dl_op_info;

const dl_op_info *ir_op_info(dl_opcode op);
bool              ir_op_lookup(const char *name, size_t n, dl_opcode *out);
const dl_attr_spec *ir_attr_spec(dl_opcode op, const char *name, size_t n);

/* ---- values, ops, functions, modules --------------------------------------------------- */

typedef struct dl_op dl_op;
typedef struct dl_func dl_func;
typedef struct dl_module dl_module;

/* What a function argument or result is for: later passes (autodiff, the optimizer, the memory
 * planner, the AOT header) key on these. */
typedef enum { DL_ROLE_INPUT, DL_ROLE_PARAM, DL_ROLE_BUFFER, DL_ROLE_OUTPUT, DL_ROLE_LOSS,
               DL_ROLE_METRIC, DL_NROLES } dl_role;
const char *ir_role_name(dl_role r);
bool        ir_role_parse(const char *s, size_t n, dl_role *out);

typedef struct dl_value {
    dl_type          type;
    dl_op           *def;      /* NULL for a function argument */
    int              index;    /* result index in def, or argument index */
    int              nuses;    /* operand slots that name this value */
    struct dl_value *repl;     /* set by passes: uses are to be redirected here */
    int              id;       /* scratch number, e.g. for printing */
} dl_value;

struct dl_op {
    dl_opcode  code;
    int        nin;
    dl_value **in;
    int        nres;
    dl_value  *res;            /* array of nres values */
    int        nattr;
    dl_attr   *attr;           /* in the order of the op's attribute specs */
    int        checkpoint;     /* > 0: inside `checkpoint { }` region number N, recomputed */
    int        group;          /* > 0: in fusion group N (passes/fuse.c): one kernel, its ops
                                * consecutive; 0: a kernel of its own */
    unsigned   mark;           /* scratch for walks (the verifier's epoch) */
    dl_loc     loc;
    dl_op     *prev, *next;
    dl_func   *func;
};

typedef struct dl_arg_info {
    const char *name;          /* SSA name, without '%' */
    dl_role     role;          /* INPUT, PARAM or BUFFER */
    const char *path;          /* parameter/buffer path ("fc1.weight") or NULL */
    const char *init;          /* how a parameter/buffer starts: "uniform(-0.125, 0.125)", or NULL */
} dl_arg_info;

typedef struct dl_result_info {
    dl_type type;
    dl_role role;              /* OUTPUT, LOSS or METRIC */
} dl_result_info;

struct dl_func {
    const char     *name;
    dl_loc          loc;
    int             nargs;
    dl_value      **args;          /* each allocated alone: pointers to them stay valid */
    dl_arg_info    *arginfo;
    int             nresults;
    dl_result_info *results;
    dl_op          *first, *last;
    dl_module      *module;
    dl_func        *next;
};

struct dl_module {
    sup_arena   arena;         /* owns everything in the module */
    dl_func    *first, *last;
    const char **strs;         /* interned strings: open-addressing table */
    int          nstrs, capstrs;
    struct dl_train *train;    /* the train block (ir/train.h) when the frontend lowered one */
};

/* Creates an empty module, or NULL when memory is short. When the module's memory runs out,
 * the arena longjmps to m->arena.oom if an entry point set it (the parser and the pass manager
 * do, and report "out of memory"); with none set it is a fatal error. */
dl_module  *ir_module_create(void);
void        ir_module_destroy(dl_module *m);
void       *ir_alloc(dl_module *m, size_t n);             /* zeroed, owned by the module */
const char *ir_intern(dl_module *m, const char *s, size_t n);
dl_func    *ir_func_find(const dl_module *m, const char *name);

/* ---- building ------------------------------------------------------------------------- */

dl_func  *ir_func_create(dl_module *m, const char *name, dl_loc loc);
dl_value *ir_func_add_arg(dl_func *f, const char *name, dl_role role, const char *path,
                          const dl_type *type);
void      ir_func_set_results(dl_func *f, int n, const dl_result_info *r);
/* Appends vals[0..n) to f's return and its results (with `role`): autodiff's gradients, the
 * training step's learning rate. */
void      ir_func_add_results(dl_func *f, int n, dl_value *const *vals, dl_role role);

/* Shape inference. Fills out[0..nres) from the operand types and attributes of `code`, or
 * writes a message naming the shapes involved into err and returns false. `nres` is how many
 * results the caller expects (used by split; -1 to let the op decide). */
bool ir_infer(dl_opcode code, int nin, const dl_type *const *in, int nattr, const dl_attr *attr,
              dl_type *out, int *nres, char *err, size_t errlen);

/* Creates an op (not yet in a function), copying operands and attributes. Result types come
 * from inference, except for ops whose type cannot be inferred (constant), which take
 * `restype`. Attributes are put in spec order. On an inference error reports it at `loc` and
 * returns NULL. */
dl_op *ir_op_create(dl_func *f, dl_opcode code, int nin, dl_value *const *in, int nattr,
                    const dl_attr *attr, int nres, const dl_type *restype, dl_loc loc,
                    dl_diag *diag);
void   ir_op_append(dl_func *f, dl_op *op);
void   ir_op_insert_before(dl_op *before, dl_op *op);
void   ir_op_remove(dl_op *op);              /* unlink, dropping its operand uses */
void   ir_op_move_before(dl_op *before, dl_op *op);   /* relink op just before `before` */
void   ir_op_set_operand(dl_op *op, int i, dl_value *v);

/* Redirect uses: value->repl chains (set by passes) are followed by ir_value_resolve, and
 * ir_op_resolve_operands rewrites one op's operands through them. */
dl_value *ir_value_resolve(dl_value *v);
void      ir_op_resolve_operands(dl_op *op);
void      ir_func_replace_uses(dl_func *f, dl_value *from, dl_value *to);

/* Attribute access by name; absent attributes answer the spec's default. */
const dl_attr *ir_attr_find(int nattr, const dl_attr *attr, const char *name);
int64_t        ir_attr_int(int nattr, const dl_attr *attr, dl_opcode code, const char *name);
double         ir_attr_float(int nattr, const dl_attr *attr, dl_opcode code, const char *name);
bool           ir_attr_bool(int nattr, const dl_attr *attr, dl_opcode code, const char *name);
const char    *ir_attr_str(int nattr, const dl_attr *attr, dl_opcode code, const char *name);
bool           ir_attr_eq(const dl_attr *a, const dl_attr *b);
/* A 2-element spatial attribute of op (stride, padding, ...): one element means both, absent
 * means `def`. */
void           ir_attr_pair(const dl_op *op, const char *name, int64_t def, int64_t out[2]);
#define IR_OP_ATTR(kind, op, name) ir_attr_##kind((op)->nattr, (op)->attr, (op)->code, (name))

/* Checks every invariant of docs/ir.md; reports each violation and returns false if any. */
bool ir_verify(dl_module *m, dl_diag *diag);

/* Textual form. ir_print writes the canonical text; ir_parse reads it (`name` must have been
 * registered with the diag context) and returns NULL after reporting errors. */
void       ir_print(FILE *out, const dl_module *m);
void       ir_print_func(FILE *out, const dl_func *f);
dl_module *ir_parse(const char *name, const char *text, size_t len, dl_diag *diag);

#endif
