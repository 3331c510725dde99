/* Philox4x32-10 (see philox.h). The constants are Random123's; the known-answer vectors of
 * Random123 (kat_vectors) are checked by tests/unit/test_ref_goldens.c. */
#include "support/philox.h"

void sup_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4])
{
    uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
    uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

int64_t sup_dropout_key(uint64_t seed, int64_t micro)
{
    uint32_t w[4];
    sup_philox4x32(seed, 0x64726f70 /* "drop" */, (uint64_t)micro, w);
    return (int64_t)(((uint64_t)w[1] << 32 | w[0]) >> 1);
}
