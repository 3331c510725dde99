/* `dlc run FILE.dl`: the train block run (SPEC section 4). The training step is one compiled
 * function (passes/train_step.c); this loop only feeds it batches, reads the loss, validates,
 * reports, checkpoints and saves. docs/training.md describes the behaviour. */
#ifndef DLC_CODEGEN_TRAIN_H
#define DLC_CODEGEN_TRAIN_H

#include "codegen/mode.h"
#include "ir/ir.h"
#include "ir/train.h"

#include <stdint.h>

typedef struct cg_train_opts {
    int64_t     epochs, steps;     /* > 0: override the train block; steps count optimizer steps */
    bool        seed_set;
    uint64_t    seed;
    const char *resume;            /* a checkpoint to continue from, or NULL */
    const char *log;               /* JSON lines, one object per step and per epoch, or NULL */
    const char *weights;           /* initial parameters (safetensors), or NULL: initializers */
    bool        quiet;             /* no progress output */
    cg_mode     mode;              /* -O: the pipeline and code generation */
    const char *print_after;       /* --print-after=PASS,...: print the IR after these passes */
    bool        time;              /* --time-passes */
    int64_t     interrupt_after;   /* > 0: act as if Ctrl-C came after this many batches (tests) */
    bool        profile;           /* time every kernel; print the busiest at the end */
    const char *cache_dir;         /* the compile cache (support/cache.h), or NULL: none */
    bool        report;            /* --report: print the step's memory plan on stdout at the end */
} cg_train_opts;

/* Builds the training step of m (which must hold a train block: m->train) and runs the block.
 * False after reporting an error; an interrupted run (SIGINT) saves a checkpoint and returns
 * false with *interrupted set. */
bool cg_train_run(dl_module *m, const cg_train_opts *o, bool *interrupted, dl_diag *diag);

/* Settings of the language whose passes come later are refused rather than ignored: false after
 * reporting the first. */
bool cg_train_supported(const dl_train *t, dl_diag *diag);
/* Batches per epoch and optimizer steps of the run t describes (the data is read to count the
 * training samples). False after reporting an error. */
bool cg_train_length(const dl_train *t, int64_t *batches, int64_t *total, dl_diag *diag);

#endif
