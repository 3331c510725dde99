/* The NumPy .npy format: reading and validating the header (versions 1.0 to 3.0), reading the
 * data (into C order), and writing version 1.0 files atomically. */
#ifndef DLC_RUNTIME_NPY_H
#define DLC_RUNTIME_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { RT_NPY_MAX_RANK = 8 };

typedef struct rt_npy {
    char     descr[8];        /* "<f4", "|b1", ... */
    int      elem_size;
    bool     fortran_order;
    int      rank;
    int64_t  shape[RT_NPY_MAX_RANK];
    uint64_t data_offset;     /* where the data starts */
    uint64_t file_size;
} rt_npy;

/* Reads the header of `path` and checks the data fills the rest of the file exactly. False
 * with "path: offset N: reason" or "path: reason" in err. */
bool rt_npy_read_header(const char *path, rt_npy *out, char *err, size_t errlen);

/* Reads the header and the data of `path`. *data is malloc'd (the caller frees it; at least one
 * byte even for no elements) and holds the elements in C (row-major) order: a Fortran-order file
 * is transposed. hdr->fortran_order still tells what the file held. */
bool rt_npy_read(const char *path, rt_npy *hdr, void **data, char *err, size_t errlen);

/* Writes a version 1.0 file with `descr` (one of the descrs rt_npy_read_header accepts) and C
 * order, its header padded to 64 bytes. Atomic: written to PATH.tmp.PID, synced, renamed over
 * PATH, so a reader never sees half a file. */
bool rt_npy_write(const char *path, const char *descr, int rank, const int64_t *shape,
                  const void *data, char *err, size_t errlen);

#endif
