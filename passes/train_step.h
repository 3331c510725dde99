/* The training step: @loss (frontend/train.c) turned into @train_step, the whole step of SPEC
 * section 4 in one function (passes/train_step.c says what it holds). */
#ifndef DLC_PASSES_TRAIN_STEP_H
#define DLC_PASSES_TRAIN_STEP_H

#include "ir/ir.h"
#include "ir/train.h"

/* Rewrites m's @loss into @train_step following m->train. False after reporting an error. */
bool pass_train_step(dl_module *m, dl_diag *diag);

#endif
