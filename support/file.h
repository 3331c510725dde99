/* Whole-file reading for the tools and readers. */
#ifndef DLC_SUPPORT_FILE_H
#define DLC_SUPPORT_FILE_H

#include <stddef.h>

/* Reads all of `path` ("-": standard input) into a NUL-terminated buffer the caller frees with
 * sup_free; *len is the length without the NUL. NULL with errno set on failure. */
char *sup_read_file(const char *path, size_t *len);

#endif
