/* The syntax tree of a .dl file, as the Bison parser (frontend/parser.y) builds it. Every node
 * keeps its source location. Nodes live in the compilation's arena and are never freed one by
 * one. The checker (frontend/lower.c) walks this tree, evaluating what is known at compile time
 * and emitting IR for the rest. */
#ifndef DLC_FRONTEND_AST_H
#define DLC_FRONTEND_AST_H

#include "support/alloc.h"
#include "support/diag.h"

#include <stdint.h>
#include <stdio.h>

#define FE_AST_KINDS(X)                                                                      \
    /* expressions */                                                                        \
    X(INT) X(FLOAT) X(STR) X(BOOL) X(NAME) X(MODEL) X(TRAINING)                             \
    X(LIST)      /* [a, b, c]: a tensor literal or a list */                                 \
    X(REPEAT)    /* [expr; count]: an array of submodules */                                 \
    X(UNARY)     /* op a */                                                                  \
    X(BINARY)    /* a op b */                                                                \
    X(CALL)      /* a(items): items are ARGs */                                              \
    X(ARG)       /* name = a, or a (name NULL) */                                            \
    X(INDEX)     /* a[items]: items are expressions, SLICEs or ELLIPSIS */                   \
    X(SLICE)     /* a:b:c, each may be NULL */                                               \
    X(ELLIPSIS)  /* ... */                                                                   \
    X(FIELD)     /* a.name */                                                                \
    X(CAST)      /* a as name */                                                             \
    X(RANGE)     /* a..b */                                                                  \
    X(TYPE)      /* name or name[items]: items are dimension expressions or ELLIPSIS */     \
    /* statements */                                                                         \
    X(ASSIGN)    /* items = a: items are NAMEs */                                            \
    X(UPDATE)    /* name := a */                                                             \
    X(RETURN)    /* return items */                                                          \
    X(IF)        /* if a { b } else c: b a BLOCK, c a BLOCK, an IF or NULL */                \
    X(FOR)       /* for name in a { b } */                                                   \
    X(CHECKPOINT) /* checkpoint { a } */                                                     \
    X(EXPR)      /* a, evaluated for its effect */                                           \
    X(BLOCK)     /* items */                                                                 \
    /* declarations */                                                                       \
    X(IMPORT)    /* import "s" */                                                            \
    X(CONST)     /* const name = a */                                                        \
    X(PARAMDEF)  /* name: a (a TYPE) = b (default or NULL); in fn and model headers */       \
    X(FN)        /* fn name(items: PARAMDEFs) -> list2 (TYPEs) a (BLOCK) */                  \
    X(MODELDEF)  /* model name(items: PARAMDEFs) { list2: members } */                       \
    X(PARAM)     /* param name: a = b (an initializer call) */                               \
    X(BUFFER)    /* buffer name: a = b */                                                    \
    X(MEMBER)    /* name = a: a submodule or an array of them */                             \
    X(TRAIN)     /* train a { items: ASSIGNs } */                                            \
    X(FILE)      /* items: declarations */

typedef enum {
#define X(k) FE_##k,
    FE_AST_KINDS(X)
#undef X
    FE_NKINDS
} fe_kind;

/* Operators of UNARY and BINARY nodes. */
typedef enum {
    FE_OP_NEG, FE_OP_NOT,
    FE_OP_OR, FE_OP_AND, FE_OP_EQ, FE_OP_NE, FE_OP_LT, FE_OP_LE, FE_OP_GT, FE_OP_GE,
    FE_OP_ADD, FE_OP_SUB, FE_OP_MUL, FE_OP_DIV, FE_OP_FLOORDIV, FE_OP_MOD, FE_OP_MATMUL,
    FE_OP_POW,
} fe_op;

typedef struct fe_ast fe_ast;

typedef struct fe_list {
    fe_ast **v;
    int      n, cap;
} fe_list;

struct fe_ast {
    fe_kind     kind;
    dl_loc      loc;
    fe_op       op;
    const char *name;      /* identifiers, field names, strings (unescaped) */
    int64_t     i;         /* INT, BOOL */
    double      f;         /* FLOAT */
    fe_ast     *a, *b, *c;
    fe_list     items, list2;
};

fe_ast     *fe_ast_new(sup_arena *a, fe_kind kind, dl_loc loc);
void        fe_list_push(sup_arena *a, fe_list *l, fe_ast *n);
const char *fe_kind_name(fe_kind k);
const char *fe_op_text(fe_op op);

/* --emit=ast: an indented tree, one node a line, with locations. */
void fe_ast_print(FILE *out, const fe_ast *n);

#endif
