/* --emit=dot (see dot.h): one cluster per function, inside it one cluster per kernel. Ops are
 * numbered by their place in the function (node fF_nI), arguments by theirs (fF_aI); the ops no
 * kernel holds (return, assign) stand outside the kernels' clusters. */
#include "codegen/dot.h"

#include "codegen/program.h"
#include "support/alloc.h"

#include <stdlib.h>
#include <string.h>

/* An op and its place in its function, sorted by address for lookup. */
typedef struct placed {
    const dl_op *op;
    int          pos;
} placed;

static int by_op(const void *a, const void *b)
{
    const dl_op *x = ((const placed *)a)->op, *y = ((const placed *)b)->op;
    return x < y ? -1 : x > y;
}

static int pos_of(const placed *ops, int n, const dl_op *op)
{
    placed key = {op, 0};
    const placed *p = bsearch(&key, ops, (size_t)n, sizeof *ops, by_op);
    return p ? p->pos : -1;
}

/* A label's text, with DOT's quoted-string escapes. */
static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void put_type(FILE *out, const dl_type *t)
{
    char buf[1400];
    ir_type_str(t, buf, sizeof buf);
    put_escaped(out, buf);
}

static const char *kind_name(cg_kernel_kind k)
{
    static const char *const names[] = {
        [CG_K_ELEMENTWISE] = "elementwise", [CG_K_MATMUL] = "matmul", [CG_K_REDUCE] = "reduce",
        [CG_K_CONV] = "conv", [CG_K_COPY] = "copy", [CG_K_VIEW] = "view", [CG_K_INDEX] = "index",
        [CG_K_ATTENTION] = "attention", [CG_K_SCATTER] = "scatter", [CG_K_REF] = "reference"};
    _Static_assert(sizeof names / sizeof *names == CG_K_REF + 1, "a name per kernel kind");
    return names[k];
}

/* Matrix products and convolutions blue, elementwise groups yellow, reductions red, the rest grey. */
static const char *kind_color(cg_kernel_kind k)
{
    switch (k) {
    case CG_K_MATMUL: case CG_K_CONV: case CG_K_ATTENTION: return "#dbe8f7";
    case CG_K_ELEMENTWISE: return "#fbf3d0";
    case CG_K_REDUCE: return "#f7dede";
    default: return "#ececec";
    }
}

static void put_op(FILE *out, int fi, int pos, const dl_op *op, const char *indent)
{
    const dl_func *f = op->func;
    fprintf(out, "%sf%d_n%d [label=\"", indent, fi, pos);
    if (op->nres)
        fprintf(out, "%%%d ", op->res[0].id - f->nargs);
    fputs(ir_op_info(op->code)->name, out);
    for (int r = 0; r < op->nres; r++) {
        fputs("\\n", out);
        put_type(out, &op->res[r].type);
    }
    if (op->loc.file && op->loc.line > 0) {
        const char *slash = op->loc.file[0] == '<' ? NULL : strrchr(op->loc.file, '/');
        fputs("\\n", out);
        put_escaped(out, slash ? slash + 1 : op->loc.file);
        fprintf(out, ":%d", op->loc.line);
    }
    if (op->checkpoint)
        fprintf(out, "\\ncheckpoint %d", op->checkpoint);
    fputs(op->nres ? "\"];\n" : "\", shape=ellipse];\n", out);
}

/* Whether kernel k's own ops read v from memory: a matrix product's result, which the gemm
 * stores and the epilogue reads back block by block. Other values a group makes and uses stay
 * in registers between its ops (even when stored too, for a later kernel). */
static bool stored(const cg_program *prog, int k, const dl_value *v)
{
    const cg_kernel *kn = &prog->kernels[k];
    return (kn->kind == CG_K_MATMUL || kn->kind == CG_K_CONV) && v->def == kn->ops[kn->matmul];
}

/* One function: its arguments, its kernels as clusters, the other ops, then every use as an
 * edge, dashed when both ends are in one kernel (the value is never stored between them). */
static bool print_func(FILE *out, const dl_func *f, int fi, bool fuse)
{
    sup_arena a;
    sup_arena_init(&a, NULL);
    const cg_program *prog = cg_program_build(f, fuse, &a);
    int nops = 0;
    for (const dl_op *op = f->first; op; op = op->next)
        nops++;
    placed *ops = sup_malloc(sizeof *ops * ((size_t)nops + 1));
    int *kernel = sup_malloc(sizeof *kernel * ((size_t)nops + 1));
    bool ok = prog && ops && kernel;
    if (ok) {
        int n = 0;
        for (const dl_op *op = f->first; op; op = op->next, n++)
            ops[n] = (placed){op, n}, kernel[n] = -1;
        qsort(ops, (size_t)nops, sizeof *ops, by_op);
        cg_program_nbuffers(f);
        fprintf(out, "  subgraph cluster_f%d {\n    label=\"@", fi);
        put_escaped(out, f->name);
        fputs("\";\n", out);
        for (int i = 0; i < f->nargs; i++) {
            fprintf(out, "    f%d_a%d [shape=ellipse, label=\"%%", fi, i);
            put_escaped(out, f->arginfo[i].name);
            fputs("\\n", out);
            put_type(out, &f->args[i]->type);
            fprintf(out, "\\n%s\"];\n", ir_role_name(f->arginfo[i].role));
        }
        for (int k = 0; k < prog->nkernels; k++) {
            const cg_kernel *kn = &prog->kernels[k];
            fprintf(out, "    subgraph cluster_f%d_k%d {\n      label=\"%s (%s)\";\n"
                         "      style=\"rounded,filled\"; fillcolor=\"%s\";\n",
                    fi, k, kn->name, kind_name(kn->kind), kind_color(kn->kind));
            for (int o = 0; o < kn->nops; o++) {
                int pos = pos_of(ops, nops, kn->ops[o]);
                kernel[pos] = k;
                put_op(out, fi, pos, kn->ops[o], "      ");
            }
            fputs("    }\n", out);
        }
        n = 0;
        for (const dl_op *op = f->first; op; op = op->next, n++)
            if (kernel[n] < 0)
                put_op(out, fi, n, op, "    ");
        n = 0;
        for (const dl_op *op = f->first; op; op = op->next, n++)
            for (int i = 0; i < op->nin; i++) {
                const dl_value *v = op->in[i];
                int from = v->def ? pos_of(ops, nops, v->def) : -1;
                if (from >= 0)
                    fprintf(out, "    f%d_n%d -> f%d_n%d", fi, from, fi, n);
                else
                    fprintf(out, "    f%d_a%d -> f%d_n%d", fi, v->index, fi, n);
                fputs(from >= 0 && kernel[n] >= 0 && kernel[from] == kernel[n] && !stored(prog, kernel[n], v)
                          ? " [style=dashed];\n" : ";\n", out);
            }
        fputs("  }\n", out);
    }
    sup_free(ops);
    sup_free(kernel);
    sup_arena_reset(&a);
    return ok;
}

bool cg_dot_print(FILE *out, const dl_module *m, bool fuse)
{
    fputs("digraph dlc {\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n", out);
    bool ok = true;
    int fi = 0;
    for (const dl_func *f = m->first; f && ok; f = f->next, fi++)
        ok = print_func(out, f, fi, fuse);
    fputs("}\n", out);
    return ok;
}
