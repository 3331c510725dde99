/* Whole-file reading (see file.h). */
#include "support/file.h"

#include "support/alloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

char *sup_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = sup_malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 == cap) {
            char *nb = sup_realloc(buf, cap *= 2);
            if (!nb)
                sup_free(buf);
            buf = nb;
        }
    }
    int err = ferror(f) ? errno : buf ? 0 : ENOMEM;
    if (f != stdin)
        fclose(f);
    if (err) {
        sup_free(buf);
        errno = err;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
