/* --report (SPEC section 1): after a function is planned into kernels (codegen/program.h), a
 * table of them, each with the ops fused into it (their %N and source lines), its FLOPs and the
 * bytes it moves, then the totals and the memory plan's peak (codegen/memplan.h). LLVM-free: the
 * numbers come from the plan and the IR alone, so `dlc run`, `dlc -o` and an AOT library can all
 * print it. How FLOPs are counted is in docs/codegen.md ("--report"). */
#ifndef DLC_CODEGEN_REPORT_H
#define DLC_CODEGEN_REPORT_H

#include "codegen/memplan.h"
#include "codegen/program.h"

#include <stdint.h>
#include <stdio.h>

struct cg_exec;

/* The report of mp's function as it ran: `syms` holds the values of mp->prog->syms at the call
 * the plan was last placed for (cg_exec_syms), the numbers are exact for them; the memory plan
 * (cg_memplan_print) follows the table. */
void cg_report_print(FILE *out, const cg_memplan *mp, const int64_t *syms);
/* The same for the function an executor (codegen/cpu/exec.h) ran, at its last call's shapes;
 * nothing when it has not run. */
void cg_report_exec(FILE *out, const struct cg_exec *e);

/* The report of prog with its symbols unbound (`dlc FILE.dl -o libNAME.so --report`): FLOPs and
 * bytes are polynomials in the symbols (`802816*N + 1024`); the memory plan is placed with every
 * symbol = 1, and says so. False when memory is short (nothing more is printed). */
bool cg_report_print_symbolic(FILE *out, const cg_program *prog);

/* What the table counts for one kernel of prog with the symbols bound to `syms` (NULL: every
 * symbol = 1): FLOPs, and bytes read (each input once) plus written (each output once). */
void cg_report_kernel_cost(const cg_program *prog, int kernel, const int64_t *syms, int64_t *flops,
                           int64_t *bytes);

#endif
