/* The standard library (the .dl files of lang/std), embedded in the binary at build time. */
#ifndef DLC_FRONTEND_STDLIB_H
#define DLC_FRONTEND_STDLIB_H

typedef struct fe_std_file {
    const char *name;    /* "nn.dl" */
    const char *text;    /* NUL-terminated */
} fe_std_file;

extern const fe_std_file fe_std_files[];   /* ends with {0, 0} */

#endif
