/* The C header of an AOT library (`libmlp.h`, `--emit=header`): the opaque handle, the status
 * codes, DLPack's DLTensor, and each entry with its arguments' shapes and dtypes in comments.
 * The prototypes match the wrappers codegen/aot/aot.c emits. */
#ifndef DLC_CODEGEN_AOT_HEADER_H
#define DLC_CODEGEN_AOT_HEADER_H

#include "codegen/aot/aot.h"
#include "ir/ir.h"

#include <stdio.h>

/* Writes the header of the library with `prefix` whose functions are lib's (@forward and maybe
 * @train_step, as the library carries them). */
void cg_aot_header(FILE *out, const dl_module *lib, const char *prefix, const cg_aot_opts *o);

#endif
