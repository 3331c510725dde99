/* The safetensors format (weights, checkpoints, data): the header reader, tensor data reads, and
 * the writer behind `save` and checkpoints. Layout: u64 N (little-endian), N bytes of JSON, the
 * data. Every size and offset is checked against the file's real length before anyone uses it, as
 * the reference implementation does; files are written byte for byte as it writes them, atomically. */
#ifndef DLC_RUNTIME_SAFETENSORS_H
#define DLC_RUNTIME_SAFETENSORS_H

#include "support/alloc.h"

#include <stdbool.h>
#include <stdint.h>

enum { RT_ST_MAX_RANK = 8 };

typedef struct rt_st_tensor {
    const char *name;
    const char *dtype;        /* "F32", "BF16", "I64", ... as in the file */
    int         elem_size;    /* bytes per element */
    int         rank;
    int64_t     shape[RT_ST_MAX_RANK];
    uint64_t    begin, end;   /* byte offsets relative to the data section */
} rt_st_tensor;

typedef struct rt_safetensors {
    int           n;
    rt_st_tensor *tensors;    /* in file order (by offset) */
    uint64_t      data_start; /* 8 + N */
    uint64_t      file_size;
} rt_safetensors;

/* Reads and validates the header of `path`. False with "path: offset N: reason" or
 * "path: reason" in err. Allocations are in `arena`. */
bool rt_st_read_header(sup_arena *arena, const char *path, rt_safetensors *out, char *err,
                       size_t errlen);
/* The same for a whole file image held in memory (embedded in a library, or mapped): tensor t's
 * data is at image + out->data_start + t->begin. `name` is what messages call it. */
bool rt_st_parse(sup_arena *arena, const char *name, const void *image, uint64_t size,
                 rt_safetensors *out, char *err, size_t errlen);
const rt_st_tensor *rt_st_find(const rt_safetensors *st, const char *name);

/* Reads tensor `t` of `st` (a header read from `path`) into dst, which holds t->end - t->begin
 * bytes. The file is checked again because it may have changed since its header was read. */
bool rt_st_read_tensor(const char *path, const rt_safetensors *st, const rt_st_tensor *t,
                       void *dst, char *err, size_t errlen);
/* Reads the whole data section of `path` in one go: tensor t lives at result + t->begin. The
 * caller owns the result and frees it with sup_free. NULL with a message in err on failure. */
void *rt_st_read_data(const char *path, const rt_safetensors *st, char *err, size_t errlen);

/* The writer. Tensors and metadata are collected in memory and written by finish, laid out as
 * the reference writer lays them out: `__metadata__` first (keys in the order added), tensors by
 * dtype in descending order of the reference's dtype enum (its alignment order) then by name,
 * data_offsets contiguous from 0, the header padded with spaces to a multiple of 8.
 * The file appears atomically: a temporary file in the same directory is written, fsynced and
 * renamed over `path`, then the directory is fsynced; if anything fails `path` is untouched.
 *
 *     rt_st_writer *w = rt_st_writer_begin("out.safetensors", err, sizeof err);
 *     rt_st_writer_add(w, "fc.weight", "F32", 2, shape, data);   // data borrowed until finish
 *     if (!rt_st_writer_finish(w, err, sizeof err)) ...           // frees w either way
 *
 * The first error of add/add_metadata (bad dtype, duplicate name, out of memory) sticks: later
 * calls do nothing and finish reports it. */
typedef struct rt_st_writer rt_st_writer;

rt_st_writer *rt_st_writer_begin(const char *path, char *err, size_t errlen);
/* `dtype` is a safetensors dtype name ("F32", "BF16", ...); rank 0 is a scalar; `data` holds
 * numel * element size bytes, little-endian, C order, and must stay valid until finish. */
bool rt_st_writer_add(rt_st_writer *w, const char *name, const char *dtype, int rank,
                      const int64_t *shape, const void *data);
bool rt_st_writer_add_metadata(rt_st_writer *w, const char *key, const char *value);
/* Writes the file and frees w. False with "path: reason" in err. */
bool rt_st_writer_finish(rt_st_writer *w, char *err, size_t errlen);
/* Frees w without writing anything. */
void rt_st_writer_abort(rt_st_writer *w);

#endif
