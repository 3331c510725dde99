/* --emit=dot: the module after the code-generation pipeline as a Graphviz graph, each function
 * planned into kernels (codegen/program.h) and each kernel, the fused group, drawn as a cluster
 * labelled with its name and kind. Nodes are the arguments and ops, edges the values: solid when
 * the value goes through memory, dashed when it stays in registers inside a group. */
#ifndef DLC_CODEGEN_DOT_H
#define DLC_CODEGEN_DOT_H

#include "ir/ir.h"

#include <stdio.h>

/* Plans every function of m as code generation does (`fuse` false for -O0) and draws it. False
 * when memory is short. */
bool cg_dot_print(FILE *out, const dl_module *m, bool fuse);

#endif
