/* The safetensors format (weights, checkpoints, data): reading and validating the header.
 * Layout: u64 N (little-endian), N bytes of JSON, the data. Every size and offset is checked
 * against the file's real length before anyone uses it, as the reference implementation does. */
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
const rt_st_tensor *rt_st_find(const rt_safetensors *st, const char *name);

#endif
