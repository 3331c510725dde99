/* The checker and lowerer: it runs the program at compile time. Numbers, strings, lists,
 * dimensions, functions and model instances are compile-time values; tensors are IR values, and
 * every operation on them emits IR into the function being built. Functions are inlined at each
 * call, which specialises them to their arguments' shapes; `if` and `for` run here. Shared by
 * lower.c (values, scopes, statements, expressions, models), call.c (primitives) and train.c
 * (the train block). */
#ifndef DLC_FRONTEND_LOWER_H
#define DLC_FRONTEND_LOWER_H

#include "frontend/ast.h"
#include "frontend/frontend.h"
#include "ir/ir.h"

typedef enum {
    V_ERR,        /* an error was reported: everything built on it is quietly an error too */
    V_NONE, V_INT, V_FLOAT, V_BOOL, V_STR,
    V_DIM,        /* a symbolic dimension (a constant one is a V_INT) */
    V_LIST,
    V_TENSOR,     /* an IR value */
    V_FN,         /* a function, maybe bound to a model instance */
    V_MODELDEF,   /* a model definition: calling it makes an instance */
    V_INSTANCE,
    V_BUILTIN,    /* a primitive (frontend/builtins.def) */
    V_INIT,       /* an initializer name (zeros, normal, ...), only for param and buffer */
} fe_vkind;

typedef struct fe_scope fe_scope;
typedef struct fe_inst fe_inst;
typedef struct fe_val fe_val;

struct fe_val {
    fe_vkind      k;
    int64_t       i;        /* INT, BOOL, BUILTIN, INIT */
    double        f;
    const char   *s;
    dl_dim        dim;
    int           n;        /* LIST */
    fe_val       *items;
    dl_value     *t;        /* TENSOR */
    const fe_ast *node;     /* FN, MODELDEF */
    fe_scope     *env;      /* FN: where it was defined */
    fe_inst      *inst;     /* INSTANCE; FN: the instance it is bound to */
};

typedef struct fe_binding {
    const char        *name;
    fe_val             v;
    dl_loc             loc;       /* where it was bound (for notes) */
    bool               from_type; /* a dimension name bound by a type annotation */
    struct fe_binding *next;
} fe_binding;

struct fe_scope {
    fe_scope   *parent;
    fe_binding *first;
};

struct fe_inst {
    const fe_ast *def;
    fe_scope     *env;      /* hyperparameters and members */
    const char   *path;     /* "" for the root, "fc1", "blocks.3.attn" */
};

typedef struct fe_lctx {
    sup_arena  *arena;
    dl_diag    *diag;
    dl_module  *m;
    fe_scope   *globals;
    dl_func    *f;          /* the IR function being built, or NULL */
    bool        training;
    int         checkpoint; /* the open checkpoint region, 0 outside */
    int         nregions;
    int         depth;      /* call depth, bounded */
    int         edepth;     /* expression nesting, bounded */
    dl_value   *rng;        /* the RNG key argument, made when dropout first needs it */
    int         nstreams;
    const char *member;     /* the path of the member being initialised */
    bool        root_ok;    /* a model built now is the root (the train block's model) */
    /* Building a frozen model (train block: name = load(Model(), "file")): its parameters become
     * buffers that start as the tensors of this file, named by their path below `frozen_root`. */
    const char *frozen_file;
    const char *frozen_root;
    /* In a train block, model(x) in the loss and in the metrics is one forward pass. */
    fe_inst    *memo_inst;
    dl_value   *memo_arg;
    fe_val      memo_result;
} fe_lctx;

/* Errors. fe_err reports and returns an error value. */
fe_val fe_err(fe_lctx *lc, dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void   fe_note(fe_lctx *lc, dl_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
const char *fe_nearest(const char *name, const char *const *candidates, int n);

/* Values. */
fe_val      fe_int(int64_t i);
fe_val      fe_tensor(dl_value *t);
const char *fe_val_desc(fe_lctx *lc, const fe_val *v);   /* "f32[N, 64]", "int 3", "list" */
bool        fe_is_number(const fe_val *v);
double      fe_number(const fe_val *v);

/* Scopes. */
fe_scope   *fe_scope_new(fe_lctx *lc, fe_scope *parent);
fe_binding *fe_lookup(fe_scope *s, const char *name);
fe_binding *fe_lookup_here(fe_scope *s, const char *name);   /* this scope only */
void        fe_bind(fe_lctx *lc, fe_scope *s, const char *name, fe_val v, dl_loc loc);

/* Expressions and calls. */
fe_val fe_eval(fe_lctx *lc, const fe_ast *e, fe_scope *s);
/* A compile-time value or a tensor of dtype `dtype` (or a float/int default) as an IR value. */
dl_value *fe_as_tensor(fe_lctx *lc, fe_val v, int dtype, dl_loc loc);
/* Emits an IR op; reports shape errors at `loc`. NULL after an error. */
dl_op *fe_emit(fe_lctx *lc, dl_opcode code, int nin, dl_value *const *in, int nattr,
               const dl_attr *attr, int nres, dl_loc loc);

typedef struct fe_arg {
    const char *name;       /* NULL: positional */
    fe_val      v;
    dl_loc      loc;
} fe_arg;

fe_val fe_call(fe_lctx *lc, fe_val callee, int nargs, fe_arg *args, dl_loc loc);
const char *fe_builtin_name(int builtin);   /* NULL past the last */
fe_val fe_call_builtin(fe_lctx *lc, int builtin, int nargs, fe_arg *args, dl_loc loc);

/* Model instances: creates the IR arguments for every parameter and buffer. */
fe_val fe_instantiate(fe_lctx *lc, const fe_ast *def, fe_scope *env, int nargs, fe_arg *args,
                      const char *path, dl_loc loc);
/* Calls a function (entry or not) on arguments; results: one value or a LIST. */
fe_val fe_call_fn(fe_lctx *lc, const fe_ast *fn, fe_scope *env, int nargs, fe_arg *args,
                  dl_loc loc);

/* Starts a new IR function as lc->f (and resets the per-function state). */
void fe_begin_function(fe_lctx *lc, const char *name, dl_loc loc);

/* The outermost scope: dtype names, initializers, primitives. */
void fe_bind_builtins(fe_lctx *lc, fe_scope *s);

/* Whether every argument of `fn` has a tensor type of known rank (no `...`): such a function
 * can be an entry point. */
bool fe_is_concrete(const fe_ast *fn);
/* Into lc->f (already created, maybe holding a model's parameters): one argument per parameter
 * of `fn` from its annotation (unbound dimension names become symbols), the call, the return.
 * False after errors. */
bool fe_lower_entry(fe_lctx *lc, const fe_ast *fn, fe_scope *env);
/* Ends lc->f: returns `results` (tensors) with the given roles. */
bool fe_finish(fe_lctx *lc, int n, const fe_val *results, const dl_role *roles, dl_loc loc);

/* The train block: checks its settings and lowers its model's forward and its loss. `dir` is
 * the directory relative paths in the file are resolved against. */
bool fe_lower_train(fe_lctx *lc, const fe_ast *train, fe_scope *scope, const char *dir);

#endif
