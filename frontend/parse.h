/* The .dl reader: the Flex lexer (lexer.l) and the Bison parser (parser.y) share this context.
 * fe_parse turns one source text into a FILE node, reporting syntax errors (several per file:
 * the parser resynchronises at the end of a statement). */
#ifndef DLC_FRONTEND_PARSE_H
#define DLC_FRONTEND_PARSE_H

#include "frontend/ast.h"

#include <stdbool.h>

typedef struct fe_pctx {
    sup_arena  *arena;
    dl_diag    *diag;
    const char *file;      /* as registered with the diag context */
    int         depth;     /* open ( and [: newlines inside them are not statement ends */
    int         last;      /* the last token returned, for the newline rule */
    bool        at_eof;
    fe_ast     *root;
    int         errors;
} fe_pctx;

/* Reads `path` and registers it with `diag`, which keeps the only copy: returns the registered
 * name with *text and *len pointing into it, or NULL with errno set (ENOMEM when registering
 * failed). Reports nothing: the caller knows what the file was for. */
const char *fe_read_source(dl_diag *diag, const char *path, const char **text, size_t *len);

/* Parses `text` (registered with `diag` under the name `file`); NULL after syntax errors. */
fe_ast *fe_parse(sup_arena *arena, dl_diag *diag, const char *file, const char *text, size_t len);

/* --emit=tokens: one token a line, `line:col KIND 'text'`. False after a lexical error. */
bool fe_print_tokens(FILE *out, dl_diag *diag, const char *file, const char *text, size_t len);

#endif
