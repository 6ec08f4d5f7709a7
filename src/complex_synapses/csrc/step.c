/* The fused optimizer step (chain and Adam or SGD in one pass over memory) as plain
 * C, for the CPU: compiled once per machine by complex_synapses.native and loaded
 * with ctypes, so that a new process steps without tracing or compiling anything.
 * No Python or torch headers: it builds in about a second. */
#include <math.h>
#include <stdint.h>

#define CS_MAX_LEVELS 32
#define CS_BLOCK 256
#define CS_UNROLLED 8 /* chains up to this long get a step of their own (step.h) */

int cs_max_levels(void) { return CS_MAX_LEVELS; }

#define CS_MASK32 0xFFFFFFFFull

/* kernels._hash32: two multiply-xorshift rounds on a value below 2^32. */
static inline uint64_t cs_hash32(uint64_t x) {
    x = x ^ (x >> 16);
    x = (x * 0x7FEB352Dull) & CS_MASK32;
    x = x ^ (x >> 15);
    x = (x * 0x2C1B3C6Dull) & CS_MASK32;
    return x ^ (x >> 16);
}

#define REAL float
#define SQRT sqrtf
#define FLOOR floorf
#define NAME(x) cs_##x##_f32
#include "step.h"
#undef REAL
#undef SQRT
#undef FLOOR
#undef NAME

#define REAL double
#define SQRT sqrt
#define FLOOR floor
#define NAME(x) cs_##x##_f64
#include "step.h"
