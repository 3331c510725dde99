/* Programs: reading the main file, its imports (relative to the importing file, each file once,
 * cycles reported) and the embedded standard library into scopes, then lowering what the program
 * offers: its train block, or every function and model whose types are concrete. */
/* realpath() is XSI. */
#define _XOPEN_SOURCE 700
#include "frontend/lower.h"

#include "frontend/parse.h"
#include "frontend/stdlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- programs: files, imports, the standard library ------------------------------------ */

typedef struct loader {
    fe_lctx     *lc;
    const char  *stack[64];      /* files being loaded, for import cycles */
    const char  *canon[64];      /* their canonical paths */
    int          nstack;
    const char  *next_canon;     /* the canonical path of the file load_text reads next */
    const char  *done[256];      /* canonical paths of the files loaded */
    int          ndone;
    const fe_ast *train;
    const char  *train_dir;
    const fe_ast *fns[1024];     /* the user's functions and models, for entry points */
    fe_scope    *fn_env[1024];
    int          nfns;
} loader;

static char *dir_of(fe_lctx *lc, const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? sup_arena_strndup(lc->arena, path, (size_t)(slash - path)) : ".";
}

static bool load_text(loader *ld, const char *name, const char *text, size_t len, fe_scope *scope,
                      bool user, bool main);

static bool load_import(loader *ld, const fe_ast *imp, const char *dir, fe_scope *scope)
{
    fe_lctx *lc = ld->lc;
    const char *path = imp->name[0] == '/' ? imp->name : sup_arena_printf(lc->arena, "%s/%s", dir, imp->name);
    /* One file under two spellings is one file: compare canonical paths. */
    char real[4096];
    if (!realpath(path, real)) {
        fe_err(lc, imp->loc, "cannot import '%s': %s", imp->name, strerror(errno));
        return false;
    }
    const char *canon = sup_arena_strndup(lc->arena, real, strlen(real));
    for (int i = 0; i < ld->nstack; i++)
        if (!strcmp(ld->canon[i], canon)) {
            fe_err(lc, imp->loc, "import cycle: '%s' imports itself through the files it imports", imp->name);
            for (int k = i; k < ld->nstack; k++)
                fe_note(lc, (dl_loc){0}, "'%s' is being imported", ld->stack[k]);
            return false;
        }
    for (int i = 0; i < ld->ndone; i++)
        if (!strcmp(ld->done[i], canon))
            return true;
    size_t n;
    const char *text, *name = fe_read_source(lc->diag, path, &text, &n);
    if (!name) {
        fe_err(lc, imp->loc, "cannot import '%s': %s", imp->name, strerror(errno));
        return false;
    }
    ld->next_canon = canon;
    return load_text(ld, name, text, n, scope, true, false);
}

static bool declare(loader *ld, fe_scope *scope, const fe_ast *d, fe_val v)
{
    fe_binding *prev = fe_lookup_here(scope, d->name);
    if (prev) {
        fe_err(ld->lc, d->loc, "'%s' is defined twice", d->name);
        fe_note(ld->lc, prev->loc, "the first definition is here");
        return false;
    }
    fe_bind(ld->lc, scope, d->name, v, d->loc);
    return true;
}

static bool load_text(loader *ld, const char *name, const char *text, size_t len, fe_scope *scope,
                      bool user, bool main)
{
    fe_lctx *lc = ld->lc;
    if (ld->nstack == 64 || ld->ndone == 256) {
        fe_err(lc, (dl_loc){name, 1, 1}, "imports nest too deep or are too many");
        return false;
    }
    fe_ast *root = fe_parse(lc->arena, lc->diag, name, text, len);
    if (!root)
        return false;
    /* The main file and the standard library are named as given; imports by canonical path. */
    const char *canon = ld->next_canon ? ld->next_canon : name;
    char real[4096];
    if (!ld->next_canon && realpath(name, real))
        canon = sup_arena_strndup(lc->arena, real, strlen(real));
    ld->next_canon = NULL;
    ld->canon[ld->nstack] = canon;
    ld->stack[ld->nstack++] = name;
    ld->done[ld->ndone++] = canon;
    const char *dir = dir_of(lc, name);
    bool ok = true;
    for (int i = 0; i < root->items.n; i++) {
        const fe_ast *d = root->items.v[i];
        switch (d->kind) {
        case FE_IMPORT: ok &= load_import(ld, d, dir, scope); break;
        case FE_CONST: {
            fe_val v = fe_eval(lc, d->a, scope);
            if (v.k == V_TENSOR)
                v = fe_err(lc, d->a->loc, "a const is known at compile time: a number, string, bool or list");
            ok &= v.k != V_ERR && declare(ld, scope, d, v);
            break;
        }
        case FE_FN:
        case FE_MODELDEF:
            ok &= declare(ld, scope, d, (fe_val){.k = d->kind == FE_FN ? V_FN : V_MODELDEF, .node = d,
                                                 .env = scope});
            if (user && ld->nfns < 1024) {
                ld->fns[ld->nfns] = d;
                ld->fn_env[ld->nfns++] = scope;
            }
            break;
        case FE_TRAIN:
            if (!main)
                break;     /* an imported file's train block is its own business */
            if (ld->train) {
                fe_err(lc, d->loc, "a file has one train block");
                fe_note(lc, ld->train->loc, "the first one is here");
                ok = false;
            }
            ld->train = d;
            ld->train_dir = dir;
            break;
        default: break;
        }
    }
    ld->nstack--;
    return ok;
}

/* Lowers what the program offers: the train block, or else every user function and model
 * whose types are concrete. */
static bool lower_program(loader *ld, fe_scope *user)
{
    fe_lctx *lc = ld->lc;
    if (ld->train)
        return fe_lower_train(lc, ld->train, user, ld->train_dir);
    bool ok = true;
    for (int i = 0; i < ld->nfns; i++) {
        const fe_ast *d = ld->fns[i];
        if (d->kind == FE_FN) {
            if (!fe_is_concrete(d))
                continue;
            fe_begin_function(lc, d->name, d->loc);
            ok &= fe_lower_entry(lc, d, ld->fn_env[i]);
            continue;
        }
        /* A model whose hyperparameters all have defaults: its forward with fresh parameters. */
        bool defaults = true;
        for (int k = 0; k < d->items.n; k++)
            defaults &= d->items.v[k]->b != NULL;
        const fe_ast *fwd = NULL;
        for (int k = 0; k < d->list2.n; k++)
            if (d->list2.v[k]->kind == FE_FN && !strcmp(d->list2.v[k]->name, "forward"))
                fwd = d->list2.v[k];
        if (!defaults || !fwd || !fe_is_concrete(fwd))
            continue;
        fe_begin_function(lc, sup_arena_printf(lc->arena, "%s.forward", d->name), d->loc);
        lc->root_ok = true;
        fe_val inst = fe_call(lc, (fe_val){.k = V_MODELDEF, .node = d, .env = ld->fn_env[i]}, 0, NULL, d->loc);
        lc->root_ok = false;
        ok &= inst.k == V_INSTANCE && fe_lower_entry(lc, fwd, inst.inst->env);
    }
    lc->f = NULL;
    return ok;
}

/* The model `def` as the train block builds it (its hyperparameters), or with its defaults. */
static fe_val build_for_entry(loader *ld, const fe_ast *def, fe_scope *env)
{
    fe_lctx *lc = ld->lc;
    const fe_ast *t = ld->train ? ld->train->a : NULL;
    lc->root_ok = true;
    fe_val inst;
    if (t && t->kind == FE_CALL && t->a->kind == FE_NAME && !strcmp(t->a->name, def->name))
        inst = fe_eval(lc, t, env);
    else
        inst = fe_call(lc, (fe_val){.k = V_MODELDEF, .node = def, .env = env}, 0, NULL, def->loc);
    lc->root_ok = false;
    return inst;
}

/* The model call of an entry `Name(args).fn` (`--model "Mlp(hidden=64)"`), parsed as the
 * expression of a train block (the parser's only place for a lone model call); NULL after
 * reporting a syntax error. */
static const fe_ast *entry_call(loader *ld, const char *entry, size_t n)
{
    fe_lctx *lc = ld->lc;
    char *src = sup_arena_printf(lc->arena, "train %.*s {\n}\n", (int)n, entry);
    const char *name = sup_diag_add_source(lc->diag, "<entry>", src, strlen(src));
    size_t len;
    const char *text = name ? sup_diag_source_text(lc->diag, name, &len) : NULL;
    fe_ast *root = text ? fe_parse(lc->arena, lc->diag, name, text, len) : NULL;
    if (!root || root->items.n != 1 || root->items.v[0]->kind != FE_TRAIN ||
        root->items.v[0]->a->kind != FE_CALL || root->items.v[0]->a->a->kind != FE_NAME) {
        if (root)
            fe_err(lc, (dl_loc){0}, "'%.*s' is not a model call such as Name(arg=value, ...)", (int)n, entry);
        return NULL;
    }
    return root->items.v[0]->a;
}

/* Lowers one named entry: a function, Model.fn, or Model(args).fn (the model built with those
 * arguments, evaluated in its file's scope). */
static bool lower_named(loader *ld, const char *entry)
{
    fe_lctx *lc = ld->lc;
    const char *paren = strchr(entry, '(');
    const char *dot = paren ? strrchr(entry, '.') : strchr(entry, '.');
    if (paren && (!dot || dot < paren || dot[-1] != ')')) {
        fe_err(lc, (dl_loc){0}, "an entry with arguments is Model(args).fn, not '%s'", entry);
        return false;
    }
    const fe_ast *call = paren ? entry_call(ld, entry, (size_t)(dot - entry)) : NULL;
    if (paren && !call)
        return false;
    size_t n = paren ? (size_t)(paren - entry) : dot ? (size_t)(dot - entry) : strlen(entry);
    const char *cands[1024];
    for (int i = 0; i < ld->nfns; i++) {
        const fe_ast *d = ld->fns[i];
        cands[i] = d->name;
        if (strlen(d->name) != n || strncmp(d->name, entry, n))
            continue;
        if (d->kind == FE_FN && !dot) {
            if (!fe_is_concrete(d)) {
                fe_err(lc, d->loc, "'%s' cannot be an entry point: its arguments need concrete "
                       "tensor types (no '...', no hyperparameter kinds)", entry);
                return false;
            }
            fe_begin_function(lc, d->name, d->loc);
            bool ok = fe_lower_entry(lc, d, ld->fn_env[i]);
            lc->f = NULL;
            return ok;
        }
        if (d->kind != FE_MODELDEF || !dot)
            continue;
        const fe_ast *fn = NULL;
        for (int k = 0; k < d->list2.n; k++)
            if (d->list2.v[k]->kind == FE_FN && !strcmp(d->list2.v[k]->name, dot + 1))
                fn = d->list2.v[k];
        if (!fn) {
            fe_err(lc, d->loc, "model '%s' has no function '%s'", d->name, dot + 1);
            return false;
        }
        if (!fe_is_concrete(fn)) {
            fe_err(lc, fn->loc, "'%s' cannot be an entry point: its arguments need concrete "
                   "tensor types", entry);
            return false;
        }
        /* Named without its arguments: the IR's function names carry no parentheses. */
        fe_begin_function(lc, call ? sup_arena_printf(lc->arena, "%.*s%s", (int)n, entry, dot) : entry, d->loc);
        fe_val inst;
        if (call) {
            lc->root_ok = true;
            inst = fe_eval(lc, call, ld->fn_env[i]);
            lc->root_ok = false;
        } else {
            inst = build_for_entry(ld, d, ld->fn_env[i]);
        }
        bool ok = inst.k == V_INSTANCE && fe_lower_entry(lc, fn, inst.inst->env);
        lc->f = NULL;
        return ok;
    }
    char want[128];
    snprintf(want, sizeof want, "%.*s", (int)(n < 100 ? n : 100), entry);
    const char *near = fe_nearest(want, cands, ld->nfns);
    fe_err(lc, (dl_loc){0}, "no %s named '%s'%s%s%s", dot || paren ? "model" : "function", want,
           near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    return false;
}

dl_module *fe_compile_text(const char *name, const char *text, size_t len, const char *entry,
                           dl_diag *diag)
{
    dl_module *m = ir_module_create();
    if (!m) {
        sup_diag_error(diag, (dl_loc){0}, "out of memory while compiling '%s'", name);
        return NULL;
    }
    sup_arena arena;
    sup_arena_init(&arena, NULL);
    jmp_buf oom;
    if (setjmp(oom)) {
        sup_arena_reset(&arena);
        ir_module_destroy(m);
        sup_diag_error(diag, (dl_loc){0}, "out of memory while compiling '%s'", name);
        return NULL;
    }
    arena.oom = &oom;
    m->arena.oom = &oom;
    fe_lctx lc = {.arena = &arena, .diag = diag, .m = m};
    fe_scope *builtins = fe_scope_new(&lc, NULL);
    fe_bind_builtins(&lc, builtins);
    fe_scope *std = fe_scope_new(&lc, builtins), *user = fe_scope_new(&lc, std);
    loader ld = {.lc = &lc};
    bool ok = true;
    for (const fe_std_file *sf = fe_std_files; sf->name && ok; sf++) {
        char path[256];
        snprintf(path, sizeof path, "<std>/%s", sf->name);
        const char *sname = sup_diag_add_source(diag, path, sf->text, strlen(sf->text));
        size_t n;
        const char *stext = sname ? sup_diag_source_text(diag, sname, &n) : NULL;
        ok = stext && load_text(&ld, sname, stext, n, std, false, false);
    }
    ld.ndone = 0;
    int errors = sup_diag_error_count(diag);
    ok = ok && load_text(&ld, name, text, len, user, true, true) &&
         sup_diag_error_count(diag) == errors &&
         (entry ? lower_named(&ld, entry) : lower_program(&ld, user));
    ok = ok && sup_diag_error_count(diag) == errors;
    m->arena.oom = NULL;
    sup_arena_reset(&arena);
    if (ok) {
        ok = ir_verify(m, diag);
        if (!ok)
            sup_diag_error(diag, (dl_loc){0}, "the IR lowered from '%s' is broken (a bug in dlc)", name);
    }
    if (!ok) {
        ir_module_destroy(m);
        return NULL;
    }
    return m;
}

dl_module *fe_compile(const char *path, const char *entry, dl_diag *diag)
{
    size_t n;
    const char *text, *name = fe_read_source(diag, path, &text, &n);
    if (!name) {
        sup_diag_error(diag, (dl_loc){0}, "cannot read '%s': %s", path, strerror(errno));
        return NULL;
    }
    return fe_compile_text(name, text, n, entry, diag);
}
