/* The training data loader: the train block's data sources (csv, npy, mnist, safetensors, text)
 * read into memory with every size checked, the seeded train/validation split, and the batcher
 * whose background thread prefetches shuffled batches. Sample types are those frontend/train.c
 * (data_types) gives the compiled step. docs/training.md ("Data") describes the algorithms. */
#ifndef DLC_RUNTIME_DATA_H
#define DLC_RUNTIME_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RT_DATA_MAX_RANK = 8 };

typedef enum { RT_DATA_CSV, RT_DATA_NPY, RT_DATA_MNIST, RT_DATA_SAFETENSORS, RT_DATA_TEXT } rt_data_kind;

/* What to load; the strings are borrowed for the call only. */
typedef struct rt_data_spec {
    rt_data_kind kind;
    const char  *path;            /* csv, safetensors or text file; mnist folder; npy x file */
    const char  *path_y;          /* npy: the y file */
    const char  *x_name, *y_name; /* safetensors: the two tensors */
    int          label;           /* csv: the label column, negative counts from the end (-1: last) */
    double       scale;           /* csv: features are multiplied by it (1: unchanged, not 0!) */
    bool         header;          /* csv: the first line is a header and is skipped */
    int64_t      context;         /* text: window length, > 0 */
} rt_data_spec;

/* A loaded data set: n samples, each an x and a y of fixed dtype and shape. */
typedef struct rt_dataset {
    int64_t n;
    char    x_dtype[8], y_dtype[8];           /* safetensors dtype names: "F32", "I64", ... */
    int     x_rank, y_rank;                   /* per sample (y of csv and mnist: 0, a scalar) */
    int64_t x_shape[RT_DATA_MAX_RANK], y_shape[RT_DATA_MAX_RANK];
    size_t  x_bytes, y_bytes;                 /* per sample */
    int     nvocab;                           /* text: the vocabulary's size; else 0 */
    unsigned char vocab[256];                 /* text: token -> byte, ascending */
    /* Private, owned by the data set and freed by rt_data_free. */
    unsigned char *x_data, *y_data;           /* n * x_bytes, n * y_bytes (not text) */
    unsigned char *tokens;                    /* text: the whole file, one token per byte */
    int64_t        ntokens, context;
} rt_dataset;

/* Loads the source `s` describes into *out (which the caller then owns: rt_data_free). False with
 * "path: offset N: reason", "path:LINE:COL: reason" or "path: reason" in err, *out then zeroed
 * and holding nothing. Every reader checks each size and offset against the data it really has. */
bool rt_data_load(const rt_data_spec *s, rt_dataset *out, char *err, size_t errlen);
void rt_data_free(rt_dataset *d);

/* Copies sample i (0 <= i < d->n) into x (d->x_bytes) and y (d->y_bytes). Thread-safe: it only
 * reads d. */
void rt_data_sample(const rt_dataset *d, int64_t i, void *x, void *y);

/* The one permutation behind the split and the shuffles, kept simple so that a Python script can
 * reproduce it bit for bit:
 *     for i = n-1 down to 1:
 *         w = philox4x32_10(key = seed, counter_hi = stream, counter_lo = i)   (sup_philox4x32)
 *         r = w[0] | w[1] << 32
 *         j = r % (i + 1)
 *         swap v[i], v[j]
 * The split uses stream RT_DATA_SPLIT_STREAM; epoch e's shuffle uses stream e. */
#define RT_DATA_SPLIT_STREAM 0xffffffffu
void rt_data_shuffle(int64_t *v, int64_t n, uint64_t seed, uint64_t stream);

/* The train/validation split of samples 0..n-1: p = 0..n-1 shuffled by rt_data_shuffle(p, n, seed,
 * RT_DATA_SPLIT_STREAM); the last nvalid = floor(frac * n + 0.5) of p (at least 1 when frac > 0)
 * are validation, the others training; each list sorted ascending. 0 <= frac < 1 and at least one
 * training sample must remain. *train and *valid are sup_malloc'd (never NULL on success, even when
 * empty) and the caller frees them with sup_free. False with a message in err. */
bool rt_data_split(int64_t n, double frac, uint64_t seed, int64_t **train, int64_t *ntrain,
                   int64_t **valid, int64_t *nvalid, char *err, size_t errlen);

/* Batches for one epoch over the samples idx[0..n). The epoch's order is idx, shuffled by
 * rt_data_shuffle(order, n, seed, epoch) when `shuffle`; batch k holds order[k*batch ..
 * min((k+1)*batch, n)), so the last one may be partial (PyTorch's DataLoader, drop_last=False).
 * Batches start at `first` (0 <= first <= nbatches), so a resumed run sees the tail of the same
 * sequence. A background thread fills up to `prefetch` (clamped to 1..64) batches ahead into a ring of
 * buffers owned by the batcher. The batcher copies idx; d must outlive it. NULL with a message in
 * err on failure (bad arguments, an index out of range, out of memory, no thread). */
typedef struct rt_batcher rt_batcher;

typedef struct rt_batch {
    int64_t index;      /* the batch's number in the epoch */
    int64_t n;          /* samples in it: batch, or fewer for the last */
    void   *x, *y;      /* n * x_bytes and n * y_bytes, owned by the batcher */
} rt_batch;

rt_batcher *rt_batcher_create(const rt_dataset *d, const int64_t *idx, int64_t n, int64_t batch,
                              bool shuffle, uint64_t seed, int64_t epoch, int64_t first,
                              int prefetch, char *err, size_t errlen);
/* The next batch, false at the end of the epoch. out's buffers stay valid (and are not written)
 * until the next call or rt_batcher_destroy. */
bool rt_batcher_next(rt_batcher *b, rt_batch *out);
/* Stops and joins the thread, also mid-epoch, and frees everything. NULL is fine. */
void rt_batcher_destroy(rt_batcher *b);
/* ceil(n / batch): the batches of an epoch of n samples. */
int64_t rt_batcher_nbatches(int64_t n, int64_t batch);

#endif
