/* Syntax tree construction and printing (see ast.h). */
#include "frontend/ast.h"

#include <inttypes.h>

static const char *const kind_names[] = {
#define X(k) #k,
    FE_AST_KINDS(X)
#undef X
};
_Static_assert(sizeof kind_names / sizeof *kind_names == FE_NKINDS, "one name per kind");

static const char *const op_texts[] = {"-", "!", "||", "&&", "==", "!=", "<", "<=", ">", ">=",
                                       "+", "-", "*", "/", "//", "%", "@", "**"};
_Static_assert(sizeof op_texts / sizeof *op_texts == FE_OP_POW + 1, "one text per operator");

const char *fe_kind_name(fe_kind k) { return kind_names[k]; }
const char *fe_op_text(fe_op op) { return op_texts[op]; }

fe_ast *fe_ast_new(sup_arena *a, fe_kind kind, dl_loc loc)
{
    fe_ast *n = SUP_NEW(a, fe_ast);
    n->kind = kind;
    n->loc = loc;
    return n;
}

void fe_list_push(sup_arena *a, fe_list *l, fe_ast *n)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        l->v = sup_arena_grow(a, l->v, sizeof *l->v * (size_t)l->cap, sizeof *l->v * (size_t)cap);
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static void print_node(FILE *out, const fe_ast *n, int depth, const char *role)
{
    if (depth > 2000) {
        fputs("...\n", out);    /* a chain so deep is not worth printing whole */
        return;
    }
    fprintf(out, "%*s", 2 * depth, "");
    if (role)
        fprintf(out, "%s: ", role);
    if (!n) {
        fputs("(none)\n", out);
        return;
    }
    fprintf(out, "%s", kind_names[n->kind]);
    switch (n->kind) {
    case FE_INT: fprintf(out, " %" PRId64, n->i); break;
    case FE_FLOAT: fprintf(out, " %g", n->f); break;
    case FE_BOOL: fputs(n->i ? " true" : " false", out); break;
    case FE_STR: fprintf(out, " \"%s\"", n->name); break;
    case FE_UNARY:
    case FE_BINARY: fprintf(out, " '%s'", op_texts[n->op]); break;
    default:
        if (n->name)
            fprintf(out, " %s", n->name);
    }
    fprintf(out, " @%d:%d\n", n->loc.line, n->loc.col);
    if (n->a)
        print_node(out, n->a, depth + 1, NULL);
    if (n->b)
        print_node(out, n->b, depth + 1, NULL);
    if (n->c)
        print_node(out, n->c, depth + 1, NULL);
    for (int i = 0; i < n->items.n; i++)
        print_node(out, n->items.v[i], depth + 1, NULL);
    for (int i = 0; i < n->list2.n; i++)
        print_node(out, n->list2.v[i], depth + 1, n->kind == FE_FN ? "returns" : "member");
}

void fe_ast_print(FILE *out, const fe_ast *n) { print_node(out, n, 0, NULL); }
