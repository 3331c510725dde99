/* Philox4x32-10, the counter-based RNG shared by every backend (Salmon et al., SC'11, as in
 * Random123 and cuRAND): a pure function of (key, counter), so dropout draws the same numbers on
 * CPU and GPU, in any order, with no state to carry. docs/ir.md (dropout) says how it is used. */
#ifndef DLC_SUPPORT_PHILOX_H
#define DLC_SUPPORT_PHILOX_H

#include <stdint.h>

/* Four 32-bit words for counter (counter_hi, counter_lo) under `key`. Words of the counter, low
 * first: lo & 0xffffffff, lo >> 32, hi & 0xffffffff, hi >> 32; of the key: key & 0xffffffff,
 * key >> 32. */
void sup_philox4x32(uint64_t key, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]);

/* The RNG key of training micro-step `micro` (dropout's masks): `dlc run` and AOT libraries
 * draw the same masks for the same (seed, step). Non-negative. */
int64_t sup_dropout_key(uint64_t seed, int64_t micro);

#endif
