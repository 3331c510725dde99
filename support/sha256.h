/* SHA-256 (FIPS 180-4), for the compile cache's keys and entry checksums (support/cache.h).
 * A cryptographic hash because a key stands for everything a compiled object depends on: two
 * different inputs that collided would silently run the wrong code, and with 256 bits that does
 * not happen by accident (nor by design: the inputs are the user's own models). */
#ifndef DLC_SUPPORT_SHA256_H
#define DLC_SUPPORT_SHA256_H

#include <stddef.h>
#include <stdint.h>

enum { SUP_SHA256_BYTES = 32 };

typedef struct sup_sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;             /* message length so far */
    uint8_t  block[64];          /* the partial block */
    size_t   nblock;
} sup_sha256_ctx;

void sup_sha256_init(sup_sha256_ctx *s);
void sup_sha256_update(sup_sha256_ctx *s, const void *data, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void sup_sha256_final(sup_sha256_ctx *s, uint8_t out[SUP_SHA256_BYTES]);
void sup_sha256(const void *data, size_t n, uint8_t out[SUP_SHA256_BYTES]);

/* Fields of a key, each written with its length first, so that no two sequences of fields give
 * the same bytes ("ab", "c" vs "a", "bc"). */
void sup_sha256_field(sup_sha256_ctx *s, const void *data, size_t n);
void sup_sha256_str(sup_sha256_ctx *s, const char *str);      /* NULL hashes apart from "" */
void sup_sha256_u64(sup_sha256_ctx *s, uint64_t v);

/* out gets 2 * SUP_SHA256_BYTES lower-case hex digits and a NUL. */
void sup_sha256_hex(const uint8_t digest[SUP_SHA256_BYTES], char out[2 * SUP_SHA256_BYTES + 1]);

#endif
