/* The frontend's entry points (frontend.h): reading source files, --emit=tokens and ast, and
 * fe_compile, which hands the parsed files to the checker (frontend/lower.c). */
#include "frontend/frontend.h"
#include "frontend/parse.h"
#include "support/file.h"

#include <errno.h>
#include <string.h>

const char *fe_read_source(dl_diag *diag, const char *path, const char **text, size_t *len)
{
    char *buf = sup_read_file(path, len);
    if (!buf)
        return NULL;
    const char *name = sup_diag_add_source(diag, path, buf, *len);
    sup_free(buf);
    if (!name) {
        errno = ENOMEM;
        return NULL;
    }
    *text = sup_diag_source_text(diag, name, len);
    return name;
}

/* fe_read_source, reporting a failure. */
static const char *load(const char *path, dl_diag *diag, const char **text, size_t *len)
{
    const char *name = fe_read_source(diag, path, text, len);
    if (!name)
        sup_diag_error(diag, (dl_loc){0}, "cannot read '%s': %s", path, strerror(errno));
    return name;
}

bool fe_emit_tokens(const char *path, FILE *out, dl_diag *diag)
{
    const char *text;
    size_t len;
    const char *name = load(path, diag, &text, &len);
    return name && fe_print_tokens(out, diag, name, text, len);
}

bool fe_emit_ast(const char *path, FILE *out, dl_diag *diag)
{
    const char *text;
    size_t len;
    const char *name = load(path, diag, &text, &len);
    if (!name)
        return false;
    sup_arena arena;
    sup_arena_init(&arena, NULL);
    fe_ast *root = fe_parse(&arena, diag, name, text, len);
    if (root)
        fe_ast_print(out, root);
    sup_arena_reset(&arena);
    return root != NULL;
}
