/* The train block as data (SPEC section 4): what the frontend read from it, for the passes that
 * build the training step (optimizer, schedule, clipping, accumulation: passes/train_step.c)
 * and the runtime loop (data, epochs, saving: codegen/train.c). Every string and array lives
 * in the module's arena; values the block leaves out hold PyTorch's defaults. */
#ifndef DLC_IR_TRAIN_H
#define DLC_IR_TRAIN_H

#include "support/diag.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { DL_DATA_CSV, DL_DATA_NPY, DL_DATA_MNIST, DL_DATA_SAFETENSORS, DL_DATA_TEXT } dl_data_kind;

/* A data source; paths are resolved against the .dl file's directory. */
typedef struct dl_train_data {
    dl_data_kind kind;
    const char  *path;        /* csv, safetensors and text files, the mnist folder, npy's x */
    const char  *path_y;      /* npy's y */
    const char  *x_name, *y_name;    /* safetensors tensors */
    int          label;       /* csv label column; negative counts from the end */
    double       scale;       /* csv: x is multiplied by it */
    bool         header;      /* csv: the first line holds names */
    int64_t      context;     /* text: window length */
    dl_loc       loc;
} dl_train_data;

typedef enum { DL_OPT_SGD, DL_OPT_ADAM, DL_OPT_ADAMW, DL_OPT_RMSPROP, DL_OPT_ADAGRAD } dl_opt_kind;

typedef struct dl_train_opt {
    dl_opt_kind  kind;
    double       lr, weight_decay, eps;
    double       momentum, dampening;          /* sgd, rmsprop (momentum) */
    bool         nesterov;                     /* sgd */
    double       beta1, beta2;                 /* adam, adamw */
    bool         amsgrad;                      /* adam, adamw */
    double       alpha;                        /* rmsprop */
    bool         centered;                     /* rmsprop */
    double       lr_decay;                     /* adagrad */
    int          nno_decay;                    /* parameter path patterns (fnmatch) with no decay */
    const char **no_decay;
} dl_train_opt;

typedef enum { DL_SCHED_CONSTANT, DL_SCHED_STEP, DL_SCHED_MULTISTEP, DL_SCHED_EXPONENTIAL,
               DL_SCHED_COSINE, DL_SCHED_ONE_CYCLE, DL_SCHED_CYCLIC, DL_SCHED_PLATEAU } dl_sched_kind;

typedef struct dl_train_sched {
    dl_sched_kind kind;
    int64_t       every;          /* step */
    double        gamma;          /* step, multistep, exponential */
    int           nmilestones;    /* multistep */
    int64_t      *milestones;
    int64_t       warmup;         /* cosine */
    double        min_lr;         /* cosine */
    double        max_lr, pct_start;          /* one_cycle */
    double        lo, hi;                     /* cyclic */
    int64_t       period;                     /* cyclic: steps per full cycle */
    int64_t       patience;                   /* plateau: epochs without improvement */
    double        factor;                     /* plateau */
} dl_train_sched;

typedef struct dl_train {
    dl_train_data  data;
    bool           has_valid_data;   /* valid = a data source ... */
    dl_train_data  valid_data;
    double         valid;            /* ... or a held-out fraction (0: none) */
    int64_t        batch, epochs, steps;      /* steps 0: epochs decide */
    bool           shuffle;
    int64_t        accumulate;
    double         clip_grad;        /* 0: no clipping */
    const char    *precision;        /* "fp32", "bf16", "fp16" */
    const char    *quantize;         /* "qat", or NULL */
    bool           auto_checkpoint;  /* checkpoint = auto */
    dl_loc         precision_at, quantize_at, checkpoint_at;   /* where those are set */
    uint64_t       seed;
    const char    *save;             /* resolved path, or NULL */
    int64_t        checkpoint_every; /* epochs; 0: only at the end and on Ctrl-C */
    dl_train_opt   opt;
    dl_train_sched sched;
    int            nmetrics;
    const char   **metric_names;     /* "accuracy", ... in the order of @loss's metric results */
    const char    *model;            /* the trained model's name */
} dl_train;

#endif
