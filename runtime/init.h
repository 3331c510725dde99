/* Parameter initialisation: the initializers of the language (`uniform(-0.5, 0.5)`,
 * `normal(0, 0.02)`, `kaiming_uniform(64)`, ...) as IR arguments carry them, drawn from
 * Philox4x32-10 keyed by the seed, with the counter derived from the parameter's path. A
 * parameter's values therefore depend only on (seed, path, initializer), not on the order in which
 * parameters are created or on the backend. `load(...)` is the caller's (safetensors). */
#ifndef DLC_RUNTIME_INIT_H
#define DLC_RUNTIME_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fills out[0..n) per `spec`. False with a message for an unknown or malformed spec. Follows
 * torch.nn.init: kaiming_uniform(fan_in) is uniform(+-sqrt(6 / fan_in)) (gain sqrt(2), a = 0),
 * xavier_uniform(fan_in, fan_out) uniform(+-sqrt(6 / (fan_in + fan_out))), trunc_normal(std)
 * normal(0, std) redrawn outside [-2, 2] (absolute bounds, as torch's defaults). */
bool rt_init_fill(const char *spec, uint64_t seed, const char *path, double *out, int64_t n,
                  char *err, size_t errlen);

/* Whether `spec` is a load("file", "name") initializer; if so its two strings (caller's buffers). */
bool rt_init_is_load(const char *spec, char *file, size_t filelen, char *name, size_t namelen);

#endif
