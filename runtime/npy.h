/* The NumPy .npy format: reading and validating the header (versions 1.0 to 3.0). */
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

#endif
