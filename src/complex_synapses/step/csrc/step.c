/* The fused optimizer step (chain and Adam or SGD in one pass over memory) as plain
 * C, for the CPU: compiled once per machine by complex_synapses.native and loaded
 * with ctypes, so that a new process steps without tracing or compiling anything.
 * No Python or torch headers: it builds in about a second.
 *
 * Built with -fopenmp where the compiler takes it: the library then names
 * libgomp.so.1, which the dynamic linker resolves to the copy torch has already
 * loaded, so a step runs on torch's own OpenMP threads. Those threads spin for a
 * while after each of torch's parallel operations (the backward pass just before the
 * step); a thread pool of our own would have to wait for them to yield the cores. */
#include <math.h>
#include <string.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CS_MAX_LEVELS 32
#define CS_BLOCK 512
/* A level's row in a block's buffer: one vector longer than the block, so that the rows
 * do not lie a multiple of 4 KiB apart, where they would share the L1 cache's sets. */
#define CS_ROW (CS_BLOCK + 16)
#define CS_VECTOR_BYTES 64 /* one AVX-512 register; two AVX2 ones elsewhere (step.h) */
#define CS_UNROLLED 10 /* chains up to this long get a step of their own (step.h) */
/* The cases of a switch over the lengths up to 8, each CS_CASE(N) as its switch defines
 * it; 9 and 10 have an unrolled exact step only (CS_EXACT_CASES): Euler's step is O(n)
 * work and fast enough blocked, and each unrolled case costs build time. */
#define CS_UNROLLED_CASES CS_CASE(1) CS_CASE(2) CS_CASE(3) CS_CASE(4) CS_CASE(5) CS_CASE(6) CS_CASE(7) CS_CASE(8)
#define CS_EXACT_CASES CS_EXACT(9) CS_EXACT(10)

/* CS_ONLY=32 or 64 compiles one element type (and, with 32, the two functions below),
 * so that the two halves build at once, in two processes, and link into one library. */
#if !defined(CS_ONLY) || CS_ONLY == 32
int cs_max_levels(void) { return CS_MAX_LEVELS; }

int cs_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
#endif

/* A function of one tensor's elements [start, end): tensor t of a call's list. */
typedef void (*cs_range_fn)(int t, int64_t start, int64_t end, const void *args);

/* Piece ``part`` of ``parts`` equal pieces of the tensors' elements laid end to end
 * (tensor t holds numel[t]): fn on each tensor's range within it. Pieces are cut at
 * multiples of 64 elements, so that no two threads write one cache line. */
static void cs_piece(int count, const int64_t *numel, int part, int parts, cs_range_fn fn,
                     const void *args) {
    int64_t total = 0;
    for (int t = 0; t < count; t++) total += numel[t];
    const int64_t lo = part == 0 ? 0 : (total * part / parts) & ~(int64_t)63;
    const int64_t hi = part == parts - 1 ? total : (total * (part + 1) / parts) & ~(int64_t)63;
    int64_t off = 0;
    for (int t = 0; t < count && off < hi; t++) {
        const int64_t start = lo > off ? lo - off : 0;
        const int64_t end = hi - off < numel[t] ? hi - off : numel[t];
        if (start < end) fn(t, start, end, args);
        off += numel[t];
    }
}

/* Piece ``part`` of ``parts`` where parts > 0 (the caller runs the pieces on threads
 * of its own); else every element, on ``threads`` OpenMP threads where the library
 * has OpenMP and threads > 1, on the calling thread otherwise. The elements are
 * independent: the result does not depend on the cut. */
static void cs_run(int count, const int64_t *numel, int threads, int part, int parts, cs_range_fn fn,
                   const void *args) {
    if (parts > 0) {
        cs_piece(count, numel, part, parts, fn, args);
        return;
    }
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        cs_piece(count, numel, omp_get_thread_num(), omp_get_num_threads(), fn, args);
        return;
    }
#endif
    (void)threads;
    cs_piece(count, numel, 0, 1, fn, args);
}

#define CS_MASK32 0xFFFFFFFFull

/* kernels._hash32: two multiply-xorshift rounds on a value below 2^32. */
static inline uint64_t cs_hash32(uint64_t x) {
    x = x ^ (x >> 16);
    x = (x * 0x7FEB352Dull) & CS_MASK32;
    x = x ^ (x >> 15);
    x = (x * 0x2C1B3C6Dull) & CS_MASK32;
    return x ^ (x >> 16);
}

#if !defined(CS_ONLY) || CS_ONLY == 32
/* kernels.round_bfloat16_ on elements [start, end) of one level, bit for bit: float32
 * ``src`` rounded stochastically into bfloat16 ``dst`` (its upper 16 bits), 16 random
 * bits added below them from the stream of kernels.random_bits. A NaN stays a NaN. */
static void cs_round_bf16(int64_t start, int64_t end, const float *src, uint16_t *dst, int64_t key,
                          int64_t step, int level, int64_t offset) {
    const uint64_t base = (cs_hash32((uint64_t)key & CS_MASK32) + (uint64_t)level * 0x3C6EF372u);
    const uint64_t mix = (uint64_t)step & CS_MASK32;
    for (int64_t i = start; i < end; i++) {
        uint32_t bits;
        memcpy(&bits, src + i, sizeof bits);
        const uint64_t h = cs_hash32(cs_hash32(((uint64_t)(i + offset) + base) & CS_MASK32) ^ mix);
        const uint32_t up = (uint32_t)(((uint64_t)bits + (h & 0xFFFFu)) & 0xFFFF0000u);
        dst[i] = src[i] != src[i] ? (uint16_t)((bits >> 16) | 0x0040u) : (uint16_t)(up >> 16);
    }
}

/* dst (float32) <- src (bfloat16), exactly: its upper 16 bits, on elements [start, end). */
static void cs_widen_range(int t, int64_t start, int64_t end, const void *args) {
    uint16_t *const *src = ((uint16_t *const *const *)args)[0];
    float *const *dst = ((float *const *const *)args)[1];
    for (int64_t i = start; i < end; i++) {
        const uint32_t bits = (uint32_t)src[t][i] << 16;
        memcpy(dst[t] + i, &bits, sizeof bits);
    }
}

void cs_widen_bf16_many(int count, const int64_t *numel, uint16_t **src, float **dst, int threads,
                        int part, int parts) {
    const void *args[2] = {src, dst};
    cs_run(count, numel, threads, part, parts, cs_widen_range, args);
}

/* Tensor t of the list: level level[t] of a parameter whose stream is key[t], step[t],
 * from its element offset[t] on. */
struct cs_round_args {
    float **src;
    uint16_t **dst;
    const int64_t *key, *step;
    const int *level;
    const int64_t *offset;
};

static void cs_round_range(int t, int64_t start, int64_t end, const void *args) {
    const struct cs_round_args *a = args;
    cs_round_bf16(start, end, a->src[t], a->dst[t], a->key[t], a->step[t], a->level[t], a->offset[t]);
}

void cs_round_bf16_many(int count, const int64_t *numel, float **src, uint16_t **dst,
                        const int64_t *key, const int64_t *step, const int *level,
                        const int64_t *offset, int threads, int part, int parts) {
    const struct cs_round_args a = {src, dst, key, step, level, offset};
    cs_run(count, numel, threads, part, parts, cs_round_range, &a);
}
#endif

#if !defined(CS_ONLY) || CS_ONLY == 32
#define REAL float
#define SQRT sqrtf
#define FLOOR floorf
#define FABS fabsf
#define CS_NEGLIGIBLE 0x1p-32f
#define NAME(x) cs_##x##_f32
#include "step.h"
#undef REAL
#undef SQRT
#undef FLOOR
#undef FABS
#undef CS_NEGLIGIBLE
#undef NAME
#endif

#if !defined(CS_ONLY) || CS_ONLY == 64
#define REAL double
#define SQRT sqrt
#define FLOOR floor
#define FABS fabs
#define CS_NEGLIGIBLE 0x1p-64
#define NAME(x) cs_##x##_f64
#include "step.h"
#endif
