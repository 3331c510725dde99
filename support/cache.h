/* The compile cache's store on disk (docs/codegen.md, "The compile cache"): one file per key,
 * DIR/<64 hex digits of the key>.dlcache, a 96-byte header (magic, format version, the key, the
 * payload's length and SHA-256) and the payload, an object file the backends made. Entries are
 * written to a temporary file in DIR and renamed into place, so readers and concurrent writers
 * only ever see whole entries; every read is validated, and an entry that does not validate is a
 * miss (the next store replaces it). The cache is an optimization: nothing here ever fails a
 * compile. The keys are the backends' (codegen/cpu/cpu.c, codegen/aot/aot.c). */
#ifndef DLC_SUPPORT_CACHE_H
#define DLC_SUPPORT_CACHE_H

#include "support/sha256.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bumped whenever the header or the meaning of a payload changes. */
enum { SUP_CACHE_FORMAT = 1 };

typedef enum { SUP_CACHE_OFF, SUP_CACHE_MISS, SUP_CACHE_HIT } sup_cache_outcome;

/* "off", "miss" or "hit", for --time-passes. */
const char *sup_cache_outcome_name(sup_cache_outcome o);

/* The cache directory to use: `dir` when given (--cache-dir), else $XDG_CACHE_HOME/dlc (an
 * absolute XDG_CACHE_HOME only, as the XDG spec says), else $HOME/.cache/dlc. NULL when
 * `disabled` (--no-cache), when no directory can be named, or when out of memory; else malloc'd
 * (the caller frees). */
char *sup_cache_dir(const char *dir, bool disabled);

/* Starts a key in s: the domain ("jit object", ...), the cache format, dlc's version and the
 * build of the running program (its GNU build ID, which changes whenever any of dlc's code
 * does, so an entry never outlives the code that made it). */
void sup_cache_key_begin(sup_sha256_ctx *s, const char *domain);

/* The entry for key in dir. True with *data (sup_malloc'd, the caller sup_frees) and *len on a
 * valid entry; false when there is none or it is unreadable, truncated, corrupt or another key's. */
bool sup_cache_get(const char *dir, const uint8_t key[SUP_SHA256_BYTES], void **data, size_t *len);

/* Stores data as key's entry (creating dir and its parents as needed), atomically. False when
 * it cannot; the first such failure in a process prints one warning on stderr. */
bool sup_cache_put(const char *dir, const uint8_t key[SUP_SHA256_BYTES], const void *data, size_t len);

/* DIR/<hex key>.dlcache into buf (false when it does not fit): tests and tools name entries. */
bool sup_cache_entry_path(const char *dir, const uint8_t key[SUP_SHA256_BYTES], char *buf, size_t n);

#endif
