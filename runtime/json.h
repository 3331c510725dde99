/* A small JSON reader for the headers of the formats dlc reads (safetensors) and the logs it
 * writes. The tree lives in the caller's arena; every error names the byte offset. */
#ifndef DLC_RUNTIME_JSON_H
#define DLC_RUNTIME_JSON_H

#include "support/alloc.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum { RT_JSON_NULL, RT_JSON_BOOL, RT_JSON_NUMBER, RT_JSON_STRING, RT_JSON_ARRAY,
               RT_JSON_OBJECT } rt_json_kind;

typedef struct rt_json rt_json;
struct rt_json {
    rt_json_kind kind;
    bool         b;
    double       num;
    const char  *str;      /* STRING (NUL-terminated, UTF-8); for object members, the key */
    size_t       len;      /* STRING length */
    int          n;        /* ARRAY and OBJECT: element count */
    rt_json    **items;    /* ARRAY elements; OBJECT values */
    const char **keys;     /* OBJECT keys */
};

/* Parses text[0..len). NULL on error, with a message "offset N: reason" in err. */
rt_json *rt_json_parse(sup_arena *arena, const char *text, size_t len, char *err, size_t errlen);
/* The member `key` of an object, or NULL. */
const rt_json *rt_json_get(const rt_json *obj, const char *key);

#endif
