/* The driver of the .dl reader: runs the Flex scanner and the Bison parser over one text. */
#include "frontend/parse.h"

#include "parser.h"
#include "lexer.h"

#include <string.h>

fe_ast *fe_parse(sup_arena *arena, dl_diag *diag, const char *file, const char *text, size_t len)
{
    fe_pctx pc = {.arena = arena, .diag = diag, .file = file};
    yyscan_t sc;
    if (fe_yylex_init_extra(&pc, &sc))
        return NULL;
    /* If the arena runs out mid-parse, free the scanner before unwinding further. */
    jmp_buf *outer = arena->oom, here;
    if (outer && setjmp(here)) {
        fe_yylex_destroy(sc);
        arena->oom = outer;
        longjmp(*outer, 1);
    }
    if (outer)
        arena->oom = &here;
    fe_yy_scan_bytes(text, (int)len, sc);
    int rc = fe_yyparse(sc, &pc);
    fe_yylex_destroy(sc);
    arena->oom = outer;
    return rc || pc.errors ? NULL : pc.root;
}

bool fe_print_tokens(FILE *out, dl_diag *diag, const char *file, const char *text, size_t len)
{
    sup_arena arena;
    sup_arena_init(&arena, NULL);
    fe_pctx pc = {.arena = &arena, .diag = diag, .file = file};
    yyscan_t sc;
    if (fe_yylex_init_extra(&pc, &sc))
        return false;
    fe_yy_scan_bytes(text, (int)len, sc);
    FE_YYSTYPE val;
    FE_YYLTYPE loc = {1, 1, 1, 1};
    for (int t; (t = fe_yylex(&val, &loc, sc)) != FE_YYEOF;) {
        fprintf(out, "%d:%d %s", loc.first_line, loc.first_column, fe_token_name(t));
        if (t == IDENT || t == STRING)
            fprintf(out, " '%s'", val.str);
        else if (t == INT)
            fprintf(out, " %lld", (long long)val.i);
        else if (t == FLOAT) {
            char buf[40];
            snprintf(buf, sizeof buf, "%.17g", val.f);
            fprintf(out, " %s%s", buf, strpbrk(buf, ".eEn") ? "" : ".0");
        }
        fputc('\n', out);
    }
    fe_yylex_destroy(sc);
    sup_arena_reset(&arena);
    return pc.errors == 0;
}
