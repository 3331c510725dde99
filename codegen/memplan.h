/* Memory planning for a planned function (codegen/program.h), after ggml-alloc: every value a
 * kernel writes to memory gets a slot in one arena, from the kernel that writes it to the last
 * kernel that reads it (the end of the function for results and buffer updates); a slot is free
 * again after its last reader, and an elementwise kernel writes over an input that dies there when
 * the two have one shape (in place). Fused intermediates live in registers and get no slot;
 * views share their operand's; arguments are the caller's. Lifetimes are fixed when the plan is
 * made; offsets depend on the sizes, so they are placed again when the symbols change, without
 * allocating. `dlc run --report` prints the decisions (cg_memplan_print). */
#ifndef DLC_CODEGEN_MEMPLAN_H
#define DLC_CODEGEN_MEMPLAN_H

#include "codegen/program.h"

#include <stdint.h>
#include <stdio.h>

enum { CG_MEM_ALIGN = 64 };

typedef struct cg_memplan {
    const cg_program *prog;
    int      nbufs;           /* value ids, as cg_program_nbuffers numbers them */
    int     *def, *last;      /* per value: the kernel that writes it and the last that reads it
                               * (nkernels: live to the end); def -1: no slot of its own */
    int     *root;            /* per value: the value whose storage it is (itself, or a view's operand's) */
    int     *inplace;         /* per value: the input whose slot it takes over, or -1 */
    bool    *taken;           /* per value: some output took its slot over in place */
    int64_t *size, *offset;   /* per value with a slot: bytes (aligned) and place in the arena */
    int64_t  peak;            /* the arena's size for the last placement */
    int      peak_kernel;     /* the kernel at which the peak is reached */
    /* scratch for placement: free blocks [off, off + len), sorted by offset */
    int64_t *free_off, *free_len;
    int      nfree;
} cg_memplan;

/* The lifetimes of prog's values (the kernels' outputs have storage; fused intermediates and the
 * transposes a matrix product reads through have none). NULL when memory is short. */
cg_memplan *cg_memplan_create(const cg_program *prog);
void        cg_memplan_destroy(cg_memplan *mp);

/* Places every slot for the sizes in bytes `bytes[id]` (values with a slot): offsets and peak.
 * Allocates nothing. */
void        cg_memplan_place(cg_memplan *mp, const int64_t *bytes);

/* The decisions: per kernel, the slots written (offset, bytes, in place of which input) and freed,
 * then the peak and what lives at it. Values are named %N as --emit=ir numbers op results. */
void        cg_memplan_print(FILE *out, const cg_memplan *mp);

#endif
