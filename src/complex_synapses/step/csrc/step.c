/* The fused optimizer step (chain and Adam or SGD in one pass over memory) as plain
 * C, for the CPU: compiled once per machine by complex_synapses.native and loaded
 * with ctypes, so that a new process steps without tracing or compiling anything.
 * No Python or torch headers: it builds with the C compiler alone.
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
/* Elements a blocked step (step.h) takes at a time: n rows of them are buffered, and at
 * 256 a long chain's rows stay within the L1 cache (n = 32: 35 KiB of float32) where at
 * 512 they spilled from it (n = 16 exact 48 against 57 ms, n = 32 104 against 119 ms on
 * 10M elements, benchmarks/optimizer_step.py; 128 was no better). */
#define CS_BLOCK 256
/* A level's row in a block's buffer: one vector longer than the block, so that the rows
 * do not lie a multiple of 4 KiB apart, where they would share the L1 cache's sets. */
#define CS_ROW (CS_BLOCK + 16)
/* The widest vector register the compiler targets (-march=native): a propagator's row
 * sums one such vector at a time (step.h). A wider GCC vector type than the machine's is
 * not split into registers: on an AVX2 machine (AMD EPYC, Zen 3) 64-byte sums went
 * through the stack piece by piece, and the blocked step of n = 16 (alpha 500, beta 2500)
 * took 235 ms for 10M parameters where 32-byte ones take 68 (benchmarks/optimizer_step.py;
 * each sum's order, and so its value, is the same at every width). */
#if defined(__AVX512F__)
#define CS_VECTOR_BYTES 64
#elif defined(__AVX__)
#define CS_VECTOR_BYTES 32
#else
#define CS_VECTOR_BYTES 16 /* SSE2, NEON */
#endif
#define CS_UNROLLED 10 /* chains up to this long get a step of their own (step.h) */
/* Elements an unrolled step (step.h's step_n) takes at a time where it steps in passes:
 * buffers of the type's values on the stack, in the L1 cache with the levels it steps;
 * at most CS_ROW (its bfloat16 rows are a block's rows, step.h's store_rows). */
#define CS_STRETCH 256
#if CS_STRETCH > CS_ROW
#error "CS_STRETCH must fit a row of CS_ROW elements"
#endif
/* The cases of a switch over the lengths up to 8, each CS_CASE(N) as its switch defines
 * it; 9 and 10 have an unrolled exact step only (CS_EXACT_CASES): Euler's step is O(n)
 * work and fast enough blocked, and each unrolled case costs build time. */
#define CS_UNROLLED_CASES CS_CASE(1) CS_CASE(2) CS_CASE(3) CS_CASE(4) CS_CASE(5) CS_CASE(6) CS_CASE(7) CS_CASE(8)
#define CS_EXACT_CASES CS_EXACT(9) CS_EXACT(10)

/* CS_ONLY names one part of the library to compile, so that the parts build at once, in
 * processes of their own, and link into one library: 32 the float32 kernels (with the
 * two functions below and the bfloat16 rounding and widening), 64 the float64 ones, 16
 * the step of bfloat16 state, 17 that of bfloat16 state and moments (the bfloat16 steps
 * are most of a build's time). Without it, every part. */
#if defined(CS_ONLY) && CS_ONLY != 16 && CS_ONLY != 17 && CS_ONLY != 32 && CS_ONLY != 64
#error "CS_ONLY names a part: 16, 17, 32 or 64"
#endif
#if !defined(CS_ONLY) || CS_ONLY == 32
int cs_max_levels(void) { return CS_MAX_LEVELS; }

int cs_vector_bytes(void) { return CS_VECTOR_BYTES; }

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

/* The counter-based stream of kernels.random_bits (the grid's rounding in the bound, the
 * bfloat16 levels' rounding): element i of level ``level`` of a parameter whose stream
 * has key ``key`` and counter ``step`` draws hash(hash(first + i) ^ step), first =
 * hash(key) + level * 0x3C6EF372. In 32-bit arithmetic, which vectorises: kernels'
 * products are taken modulo 2^32 and its sums wrap there, so every value is the one of
 * its 64-bit expressions masked to 32 bits. */

/* kernels._hash32: two multiply-xorshift rounds. */
static inline uint32_t cs_hash32(uint32_t x) {
    x = x ^ (x >> 16);
    x = x * 0x7FEB352Du;
    x = x ^ (x >> 15);
    x = x * 0x2C1B3C6Du;
    return x ^ (x >> 16);
}

/* The bfloat16 kernels draw two hashes for every two levels and element (CS_DRAW), and
 * are bound by that arithmetic: with GCC on x86-64 they prefer 512-bit vectors where the
 * machine has them (on an AVX-512 machine 1.15-1.35x the float32 step for n = 5 to 16
 * against 1.3-1.9x with 256-bit ones, benchmarks/optimizer_step.py, before the draws were
 * shared), which the float32 and float64 kernels, bound by memory, do not (their n = 10
 * step 5-10% slower with them). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CS_WIDE_BEGIN _Pragma("GCC push_options") _Pragma("GCC target(\"prefer-vector-width=512\")")
#define CS_WIDE_END _Pragma("GCC pop_options")
#else
#define CS_WIDE_BEGIN
#define CS_WIDE_END
#endif

/* The stream's value of element 0 of level ``level``. */
static inline uint32_t cs_stream_first(int64_t key, int level) {
    return cs_hash32((uint32_t)key) + (uint32_t)level * 0x3C6EF372u;
}

/* The stream's 32 random bits for element ``i`` (from ``first``) at counter ``mix``:
 * hash(hash(first + i) ^ mix), with the inner hash's last xorshift and the outer one's
 * first folded into one xor. The inner hash is h = z ^ (z >> 16); as h >> 16 = z >> 16
 * (z has 32 bits), (h ^ mix) ^ ((h ^ mix) >> 16) = z ^ mix ^ (mix >> 16), the last term
 * fixed for the loop: the same bits from 14 operations instead of 18, on the kernels
 * that the stream's arithmetic bounds (the bfloat16 state, the grid's rounding). */
static inline uint32_t cs_stream_bits(uint32_t first, uint32_t i, uint32_t mix) {
    uint32_t x = first + i;
    x = x ^ (x >> 16);
    x = x * 0x7FEB352Du;
    x = x ^ (x >> 15);
    x = x * 0x2C1B3C6Du; /* z: hash(first + i) before its last xorshift */
    x = x ^ (mix ^ (mix >> 16));
    x = x * 0x7FEB352Du;
    x = x ^ (x >> 15);
    x = x * 0x2C1B3C6Du;
    return x ^ (x >> 16);
}

#if !defined(CS_ONLY) || CS_ONLY != 64 /* the bfloat16 values: every float32 part */
CS_WIDE_BEGIN
/* kernels.round_bfloat16_ on elements [start, end) of one level, bit for bit: float32
 * ``src`` rounded stochastically into bfloat16 ``dst`` (its upper 16 bits), 16 random
 * bits of the stream added below them. ``bits`` plus 16 random bits does not carry past
 * 32 bits for any value but a NaN (the largest other, -inf, is 0xFF800000), which is
 * taken apart: a NaN stays a NaN. */

/* float32 ``x`` rounded stochastically into bfloat16 with the random bits in the low
 * 16 of ``r`` (see cs_round_bf16). */
static inline uint16_t cs_to_bf16(float x, uint32_t r) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint16_t)(x != x ? (bits >> 16) | 0x0040u : (bits + (r & 0xFFFFu)) >> 16);
}

/* A rounding takes 16 bits, a draw of the stream has 32: two places share one draw
 * (kernels.bfloat16_draw), an odd place p its low half, place p + 1 its high half, so
 * that a step of bfloat16 levels draws half as many hashes (its arithmetic, which
 * bounds it). CS_DRAW(place) is the place whose draw rounds ``place``, CS_SHIFT(place)
 * where its 16 bits lie in that draw. */
#define CS_DRAW(place) (((place) - 1) | 1)
#define CS_SHIFT(place) (16 * (1 - ((place) & 1)))

/* A bfloat16 value as float32, exactly: its upper 16 bits. */
static inline float cs_from_bf16(uint16_t half) {
    const uint32_t bits = (uint32_t)half << 16;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}
CS_WIDE_END
#endif

#if !defined(CS_ONLY) || CS_ONLY == 32
CS_WIDE_BEGIN

static void cs_round_bf16(int64_t start, int64_t end, const float *src, uint16_t *dst, int64_t key,
                          int64_t step, int level, int64_t offset) {
    const uint32_t first = cs_stream_first(key, CS_DRAW(level)) + (uint32_t)offset, mix = (uint32_t)step;
    const int shift = CS_SHIFT(level);
#pragma GCC ivdep
    for (int64_t i = start; i < end; i++)
        dst[i] = cs_to_bf16(src[i], cs_stream_bits(first, (uint32_t)i, mix) >> shift);
}

/* dst (float32) <- src (bfloat16), exactly: its upper 16 bits, on elements [start, end). */
static void cs_widen_range(int t, int64_t start, int64_t end, const void *args) {
    uint16_t *const *src = ((uint16_t *const *const *)args)[0];
    float *const *dst = ((float *const *const *)args)[1];
    for (int64_t i = start; i < end; i++) dst[t][i] = cs_from_bf16(src[t][i]);
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
CS_WIDE_END
#endif

/* The places of Adam's moments in a parameter's stream, past every level's
 * (state16.MOMENT_PLACES): exp_avg at CS_MOMENT_PLACE, exp_avg_sq at the next. */
#define CS_MOMENT_PLACE (CS_MAX_LEVELS + 1)
#if CS_MOMENT_PLACE % 2 != 1
#error "CS_MOMENT_PLACE must be odd: the two moments share its draw (CS_DRAW)"
#endif

/* step.h once per element type: float32, float64, float32 with its hidden levels
 * stored in bfloat16 (CS_HALF), and with Adam's moments too (CS_HALF_MOMENTS). Each
 * inclusion names its functions by NAME, which step.h undoes at its end; the type's
 * other macros are undone here. */
#if !defined(CS_ONLY) || CS_ONLY != 64
#define REAL float
#define SQRT sqrtf
#define INDEX int32_t /* a grid index: values up to 2^24 are exact in float */
#define FABS fabsf
#define CS_NEGLIGIBLE 0x1p-32f
#if !defined(CS_ONLY) || CS_ONLY == 32
#define NAME(x) cs_##x##_f32
#include "step.h"
#endif
CS_WIDE_BEGIN
#define CS_HALF
#if !defined(CS_ONLY) || CS_ONLY == 16
#define NAME(x) cs_##x##_bf16
#include "step.h"
#endif
#if !defined(CS_ONLY) || CS_ONLY == 17
#define NAME(x) cs_##x##_bf16m
#define CS_HALF_MOMENTS
#include "step.h"
#undef CS_HALF_MOMENTS
#endif
#undef CS_HALF
CS_WIDE_END
#undef REAL
#undef SQRT
#undef INDEX
#undef FABS
#undef CS_NEGLIGIBLE
#endif

#if !defined(CS_ONLY) || CS_ONLY == 64
#define REAL double
#define SQRT sqrt
#define INDEX int64_t
#define FABS fabs
#define CS_NEGLIGIBLE 0x1p-64
#define NAME(x) cs_##x##_f64
#include "step.h"
#endif

#if !defined(CS_ONLY) || CS_ONLY == 16 || CS_ONLY == 17
CS_WIDE_BEGIN

/* The fused step of a chain whose hidden levels are stored in bfloat16 (state16), in
 * one pass over memory: step.h's step (cs_step_any_bf16) with each level widened as it
 * is loaded and rounded as it is stored (cs_to_bf16, from element e's place in the
 * parameter's stream), so that the float32 values rounded are those of
 * state16.run_in_pieces (float32 copies of the levels stepped by cs_step_f32, then
 * rounded by cs_round_bf16): the same result bit for bit, without the passes over
 * memory between them. Tensor t's levels are hidden[t * (n - 1) ..], its stream key[t]
 * at counter step[t]. */
struct cs_step16_args {
    int n;
    float **p, **g;
    uint16_t **hidden;
    const float *coef, *hyper;
    void **m, **v; /* float32, or bfloat16 in cs_step_bf16m_many */
    int exact, adam, maximize;
    const int64_t *key, *step;
};

/* Where the stream of a parameter with key ``key`` starts at each place whose draw
 * rounds its hidden levels 1..n-1 (the odd ones, CS_DRAW) and, with ``moments``, Adam's
 * moments (CS_MOMENT_PLACE); the other entries are not read. */
static void cs_step16_first(uint32_t first[CS_MOMENT_PLACE + 2], int n, int64_t key, int moments) {
    for (int k = 0; k < CS_MOMENT_PLACE + 2; k++) first[k] = 0;
    for (int k = 1; k < n; k += 2) first[k] = cs_stream_first(key, k);
    if (moments) first[CS_MOMENT_PLACE] = cs_stream_first(key, CS_MOMENT_PLACE);
}
CS_WIDE_END
#endif

#if !defined(CS_ONLY) || CS_ONLY == 16
CS_WIDE_BEGIN
static void cs_step16_range(int t, int64_t start, int64_t end, const void *args) {
    const struct cs_step16_args *a = args;
    uint32_t first[CS_MOMENT_PLACE + 2];
    cs_step16_first(first, a->n, a->key[t], 0);
    cs_step_any_bf16(start, end, a->n, a->p[t], a->g[t], a->hidden + (int64_t)t * (a->n - 1), a->coef,
                     a->hyper, a->adam ? a->m[t] : 0, a->adam ? a->v[t] : 0, a->exact, a->adam, a->maximize,
                     first, (uint32_t)a->step[t]);
}

void cs_step_bf16_many(int count, const int64_t *numel, int n, float **p, float **g, uint16_t **hidden,
                       const float *coef, const float *hyper, void **m, void **v, int exact, int adam,
                       int maximize, const int64_t *key, const int64_t *step, int threads, int part,
                       int parts) {
    const struct cs_step16_args a = {n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize, key, step};
    cs_run(count, numel, threads, part, parts, cs_step16_range, &a);
}
CS_WIDE_END
#endif

#if !defined(CS_ONLY) || CS_ONLY == 17
CS_WIDE_BEGIN
/* With Adam's moments m[t], v[t] in bfloat16 too (moments_dtype), read and stored as the
 * levels are, from the stream's places CS_MOMENT_PLACE and the next (state16.run_in_pieces
 * rounds its float32 copies of them there: the same bits). */
static void cs_step16m_range(int t, int64_t start, int64_t end, const void *args) {
    const struct cs_step16_args *a = args;
    uint32_t first[CS_MOMENT_PLACE + 2];
    cs_step16_first(first, a->n, a->key[t], 1);
    cs_step_any_bf16m(start, end, a->n, a->p[t], a->g[t], a->hidden + (int64_t)t * (a->n - 1), a->coef,
                      a->hyper, a->m[t], a->v[t], a->exact, 1, a->maximize, first, (uint32_t)a->step[t]);
}

/* The same with Adam's moments stored in bfloat16 too (``adam`` is 1: the moments are
 * Adam's). */
void cs_step_bf16m_many(int count, const int64_t *numel, int n, float **p, float **g, uint16_t **hidden,
                        const float *coef, const float *hyper, void **m, void **v, int exact, int adam,
                        int maximize, const int64_t *key, const int64_t *step, int threads, int part,
                        int parts) {
    const struct cs_step16_args a = {n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize, key, step};
    cs_run(count, numel, threads, part, parts, cs_step16m_range, &a);
}
CS_WIDE_END
#endif
