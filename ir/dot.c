/* --emit=dot: the IR as a Graphviz graph, one cluster per function, one node per argument and
 * op (labelled with the op, its result types and its checkpoint region), one edge per use. */
#include "ir/ir.h"

#include <stdio.h>

static void type_label(FILE *out, const dl_type *t)
{
    char buf[1400];
    ir_type_str(t, buf, sizeof buf);
    fputs(buf, out);
}

void ir_print_dot(FILE *out, const dl_module *m)
{
    fputs("digraph dlc {\n  node [shape=box, fontname=\"monospace\", fontsize=10];\n", out);
    int fi = 0;
    for (const dl_func *f = m->first; f; f = f->next, fi++) {
        fprintf(out, "  subgraph cluster_%d {\n    label=\"@%s\";\n", fi, f->name);
        for (int i = 0; i < f->nargs; i++) {
            fprintf(out, "    f%d_a%d [shape=ellipse, label=\"%%%s\\n", fi, i, f->arginfo[i].name);
            type_label(out, &f->args[i]->type);
            fprintf(out, "\\n%s\"];\n", ir_role_name(f->arginfo[i].role));
        }
        int k = 0;
        for (dl_op *op = f->first; op; op = op->next, k++) {
            for (int r = 0; r < op->nres; r++)
                op->res[r].id = k;
            fprintf(out, "    f%d_o%d [label=\"%s", fi, k, ir_op_info(op->code)->name);
            for (int r = 0; r < op->nres; r++) {
                fputs("\\n", out);
                type_label(out, &op->res[r].type);
            }
            if (op->checkpoint)
                fprintf(out, "\\ncheckpoint %d\", style=dashed];\n", op->checkpoint);
            else
                fputs("\"];\n", out);
            for (int i = 0; i < op->nin; i++) {
                const dl_value *v = op->in[i];
                if (v->def)
                    fprintf(out, "    f%d_o%d -> f%d_o%d;\n", fi, v->id, fi, k);
                else
                    fprintf(out, "    f%d_a%d -> f%d_o%d;\n", fi, v->index, fi, k);
            }
        }
        fputs("  }\n", out);
    }
    fputs("}\n", out);
}
