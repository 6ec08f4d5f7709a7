/* The fused optimizer step (chain and Adam or SGD in one pass over memory) as plain
 * C, for the CPU: compiled once per machine by complex_synapses.native and loaded
 * with ctypes, so that a new process steps without tracing or compiling anything.
 * No Python or torch headers: it builds in about a second. */
#include <math.h>
#include <stdint.h>

#define CS_MAX_LEVELS 32
#define CS_BLOCK 256

int cs_max_levels(void) { return CS_MAX_LEVELS; }

#define REAL float
#define SQRT sqrtf
#define NAME(x) cs_##x##_f32
#include "step.h"
#undef REAL
#undef SQRT
#undef NAME

#define REAL double
#define SQRT sqrt
#define NAME(x) cs_##x##_f64
#include "step.h"
