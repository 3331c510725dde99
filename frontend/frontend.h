/* The frontend's entry points: read a .dl file and its imports, check it, lower it to IR. */
#ifndef DLC_FRONTEND_FRONTEND_H
#define DLC_FRONTEND_FRONTEND_H

#include "frontend/ast.h"
#include "ir/ir.h"

/* Reads, parses and checks `path` and everything it imports, then lowers it to a module. With
 * `entry` NULL: the train block's model (@forward) and its training loss (@loss), or else every
 * function and model forward whose argument types are concrete. With `entry` "name" or
 * "Model.fn": that function alone (a model's hyperparameters are the train block's when it
 * trains that model, else their defaults); "Model(args).fn": the model built with those
 * arguments (the function is named "Model.fn"). NULL after reporting errors; the module belongs to
 * the caller. */
dl_module *fe_compile(const char *path, const char *entry, dl_diag *diag);

/* The same for a source held in memory; `name` is what diagnostics call it, and imports are
 * resolved relative to its directory. */
dl_module *fe_compile_text(const char *name, const char *text, size_t len, const char *entry,
                           dl_diag *diag);

/* --emit=ast: parses `path` alone (no imports) and prints its tree. False after errors. */
bool fe_emit_ast(const char *path, FILE *out, dl_diag *diag);
/* --emit=tokens. */
bool fe_emit_tokens(const char *path, FILE *out, dl_diag *diag);

#endif
