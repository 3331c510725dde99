/* What a training run shows: a progress bar redrawn on a terminal (epoch, step, loss, metrics,
 * samples/s, ETA) or one plain line per epoch otherwise, and `--log FILE.jsonl`, one JSON object
 * per step and per epoch. Output goes to stderr; nothing with quiet (the log still is written). */
#ifndef DLC_CODEGEN_PROGRESS_H
#define DLC_CODEGEN_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cg_progress cg_progress;

/* `names` are the metrics' names (borrowed); `log` is opened for appending when `append`. NULL
 * with a message when the log cannot be opened. */
cg_progress *cg_progress_create(bool quiet, const char *log, bool append, int64_t epochs,
                                int64_t nbatches, int nmetrics, const char *const *names,
                                char *err, size_t errlen);
void cg_progress_epoch_begin(cg_progress *p, int64_t epoch, int64_t first_batch);
/* A step done: `batch` batches of the epoch are done, `step` optimizer steps in all; n samples. */
void cg_progress_step(cg_progress *p, int64_t epoch, int64_t batch, int64_t step, int64_t n,
                      double loss, const double *metrics, double lr, double grad_norm);
/* The epoch's end; `valid` holds the validation loss and metrics, or is NULL. */
void cg_progress_epoch_end(cg_progress *p, int64_t epoch, const double *valid);
void cg_progress_finish(cg_progress *p);      /* ends a bar's line */
void cg_progress_destroy(cg_progress *p);     /* closes the log; NULL is fine */

#endif
