/* The fused step for one element type: included by step.c once per type, with
 * REAL the element type and NAME(x) the function's name. Each line mirrors
 * kernels.py (fused_step_ and the functions it calls), in the same order of
 * operations, so that results agree with the eager and compiled kernels within
 * float rounding. */

/* How a hidden level is read and written: as REAL; or, in step.c's third inclusion
 * (CS_HALF: float32 levels stored in bfloat16), widened on load and rounded
 * stochastically on store from the parameter's stream (level k's element e from 16 bits
 * of the draw at the stream's value first[CS_DRAW(k)] + e, the counter mixed in as
 * ``mix``: cs_round_bf16's; levels 2j - 1 and 2j share a draw). Only
 * the step is compiled there (step_any), not the generic path's stages or the bound. */
#ifdef CS_HALF
#define CS_LEVEL uint16_t
#define CS_LOAD(h, e) cs_from_bf16((h)[e])
#define CS_STORE(h, e, k, x)                                                                       \
    ((h)[e] = cs_to_bf16((x), cs_stream_bits(first[CS_DRAW(k)], (uint32_t)(e), mix) >> CS_SHIFT(k)))
#else
#define CS_LEVEL REAL
#define CS_LOAD(h, e) ((h)[e])
#define CS_STORE(h, e, k, x) ((h)[e] = (x))
#endif

/* How Adam's moments are read and written: as REAL; or, in step.c's fourth inclusion
 * (CS_HALF_MOMENTS, with CS_HALF: float32 moments stored in bfloat16), as the levels are,
 * from the stream's places CS_MOMENT_PLACE + 0 (exp_avg) and + 1 (exp_avg_sq): the low
 * and high halves of the draw at CS_MOMENT_PLACE. */
#ifdef CS_HALF_MOMENTS
#define CS_MOMENT uint16_t
#define CS_MLOAD(x, e) cs_from_bf16((x)[e])
#define CS_MSTORE(x, e, j, val) CS_STORE(x, e, CS_MOMENT_PLACE + (j), val)
#else
#define CS_MOMENT REAL
#define CS_MLOAD(x, e) ((x)[e])
#define CS_MSTORE(x, e, j, val) ((x)[e] = (val))
#endif

/* The next block of a stream asked for ahead of its use. A chain of n levels streams
 * 2n + 5 arrays at once, more than the hardware prefetcher follows from 16 levels up;
 * a prefetch past an array's end is harmless (it does not fault). */
static inline void NAME(prefetch)(const REAL *next) {
    for (int e = 0; e < CS_BLOCK; e += 64 / (int)sizeof(REAL)) __builtin_prefetch(next + e, 1, 3);
}

/* A block of ``len`` elements from element ``b`` on: every level into u[0..n-1] (and
 * the next block of each asked for). */
static inline void NAME(load)(REAL u[][CS_ROW], int n, const REAL *p, CS_LEVEL **hidden, int64_t b,
                              int len) {
    NAME(prefetch)(p + b + CS_BLOCK);
    for (int e = 0; e < len; e++) u[0][e] = p[b + e];
    for (int k = 1; k < n; k++) {
        const CS_LEVEL *restrict in = hidden[k - 1] + b;
        for (int e = 0; e < CS_BLOCK; e += 64 / (int)sizeof(CS_LEVEL)) __builtin_prefetch(in + CS_BLOCK + e, 1, 3);
        for (int e = 0; e < len; e++) u[k][e] = CS_LOAD(in, e);
    }
}

/* Row i of P reaches from column lo[i] to hi[i]: the entries outside are below
 * CS_NEGLIGIBLE of the row's largest and are left out of its sum. They change a level by
 * less than n CS_NEGLIGIBLE times its row's largest entry and the largest level, below
 * the type's rounding: the eager and compiled kernels, which sum every entry, agree
 * within float rounding. A chain whose levels are slower than the step (alpha >> dt)
 * has a propagator close to the identity: a band of a few entries a row, n times a few
 * multiply-adds an element instead of n^2. */
static void NAME(bands)(const REAL *coef, int n, int *lo, int *hi) {
    for (int i = 0; i < n; i++) {
        const REAL *row = coef + (int64_t)i * n;
        REAL big = 0;
        for (int j = 0; j < n; j++) big = FABS(row[j]) > big ? FABS(row[j]) : big;
        const REAL small = big * CS_NEGLIGIBLE;
        lo[i] = i, hi[i] = i;
        for (int j = 0; j < n; j++)
            if (FABS(row[j]) > small) {
                lo[i] = j < lo[i] ? j : lo[i];
                hi[i] = j > hi[i] ? j : hi[i];
            }
    }
}

/* out[i] <- (P u)_i on a block, row i's sum over its band (bands) taken left to right,
 * one vector of CS_VECTOR_BYTES at a time (a GCC vector type: the sum stays in a
 * register, each u_j is one load and each P_ij one broadcast). Rows go in pairs, over
 * the union of their bands (the few entries it adds are as negligible), so that each
 * u_j is loaded once for two sums; and two vectors of a row at a time, so that each P_ij
 * is broadcast once for both and four sums are under way at once (the same terms in the
 * same order: the same values). On an AVX2 machine (AMD EPYC, Zen 3) the step of n = 16
 * and 32 took 12-18% less time so (the two builds loaded in one process, stepping in
 * turns). A block (CS_BLOCK) is a whole number of such pairs of vectors: only a range's
 * last block has elements left, summed one at a time. */
typedef REAL NAME(vec) __attribute__((vector_size(CS_VECTOR_BYTES)));

static inline void NAME(propagate)(REAL *const *out, REAL u[][CS_ROW], int n, const REAL *coef,
                                   const int *lo, const int *hi, int len) {
    enum { TILE = CS_VECTOR_BYTES / sizeof(REAL) };
    int i0 = 0;
    for (; i0 + 1 < n; i0 += 2) { /* two rows at once: each u_j loaded once for both */
        const REAL *ra = coef + (int64_t)i0 * n, *rb = ra + n;
        REAL *restrict oa = out[i0];
        REAL *restrict ob = out[i0 + 1];
        const int j0 = lo[i0] < lo[i0 + 1] ? lo[i0] : lo[i0 + 1];
        const int j1 = hi[i0] > hi[i0 + 1] ? hi[i0] : hi[i0 + 1];
        int e = 0;
        for (; e + 2 * TILE <= len; e += 2 * TILE) { /* two vectors a row (see above) */
            NAME(vec) x, y, a, a2, bsum, b2;
            memcpy(&x, &u[j0][e], sizeof x);
            memcpy(&y, &u[j0][e + TILE], sizeof y);
            a = ra[j0] * x, a2 = ra[j0] * y;
            bsum = rb[j0] * x, b2 = rb[j0] * y;
            for (int j = j0 + 1; j <= j1; j++) {
                memcpy(&x, &u[j][e], sizeof x);
                memcpy(&y, &u[j][e + TILE], sizeof y);
                const REAL pa = ra[j], pb = rb[j];
                a = a + pa * x, a2 = a2 + pa * y;
                bsum = bsum + pb * x, b2 = b2 + pb * y;
            }
            memcpy(oa + e, &a, sizeof a);
            memcpy(oa + e + TILE, &a2, sizeof a2);
            memcpy(ob + e, &bsum, sizeof bsum);
            memcpy(ob + e + TILE, &b2, sizeof b2);
        }
        for (; e < len; e++) { /* a block's last elements, fewer than two vectors: one at a time */
            REAL a = ra[j0] * u[j0][e], bsum = rb[j0] * u[j0][e];
            for (int j = j0 + 1; j <= j1; j++) a = a + ra[j] * u[j][e], bsum = bsum + rb[j] * u[j][e];
            oa[e] = a;
            ob[e] = bsum;
        }
    }
    for (int i = i0; i < n; i++) {
        const REAL *row = coef + (int64_t)i * n;
        REAL *restrict o = out[i];
        const int j0 = lo[i], j1 = hi[i];
        int e = 0;
        for (; e + TILE <= len; e += TILE) {
            NAME(vec) x, acc;
            memcpy(&x, &u[j0][e], sizeof x);
            acc = row[j0] * x;
            for (int j = j0 + 1; j <= j1; j++) {
                memcpy(&x, &u[j][e], sizeof x);
                acc = acc + row[j] * x;
            }
            memcpy(o + e, &acc, sizeof acc);
        }
        for (; e < len; e++) {
            REAL acc = row[j0] * u[j0][e];
            for (int j = j0 + 1; j <= j1; j++) acc = acc + row[j] * u[j][e];
            o[e] = acc;
        }
    }
}

/* Where a block's new level k (k >= 1) is written: straight to memory; in bfloat16 to
 * a row of its own, stored rounded once the block is stepped. */
#ifdef CS_HALF
#define CS_NEW(k, b) (rows[k])
#else
#define CS_NEW(k, b) (hidden[(k) - 1] + (b))
#endif

#ifdef CS_HALF
/* A block's new levels 1..n-1 (rows[k], float32) stored into bfloat16 from element b on,
 * rounded stochastically: levels k and k + 1 from one draw (CS_DRAW). */
static void NAME(store_rows)(REAL rows[][CS_ROW], CS_LEVEL **hidden, int n, int64_t b, int len,
                             const uint32_t *first, const uint32_t mix) {
    for (int k = 1; k < n; k += 2) {
        CS_LEVEL *restrict level = hidden[k - 1] + b;
        const REAL *restrict row = rows[k];
        const uint32_t at = first[k] + (uint32_t)b;
        if (k + 1 < n) {
            CS_LEVEL *restrict next = hidden[k] + b;
            const REAL *restrict row2 = rows[k + 1];
#pragma GCC ivdep
            for (int e = 0; e < len; e++) {
                const uint32_t r = cs_stream_bits(at, (uint32_t)e, mix);
                level[e] = cs_to_bf16(row[e], r);
                next[e] = cs_to_bf16(row2[e], r >> 16);
            }
        } else {
#pragma GCC ivdep
            for (int e = 0; e < len; e++)
                level[e] = cs_to_bf16(row[e], cs_stream_bits(at, (uint32_t)e, mix));
        }
    }
}
#endif

static void NAME(step_blocked)(int64_t start, int64_t end, int n, REAL *restrict p,
                               const REAL *restrict g, CS_LEVEL **hidden, const REAL *coef,
                               const REAL *hyper, CS_MOMENT *restrict m, CS_MOMENT *restrict v,
                               int exact, int adam, int maximize, const uint32_t *first, const uint32_t mix) {
    REAL u[CS_MAX_LEVELS + 1][CS_ROW]; /* u[n] stays 0: u_{n+1} */
    REAL w[CS_BLOCK];
#ifdef CS_HALF
    REAL rows[CS_MAX_LEVELS][CS_ROW];
#endif
    (void)first, (void)mix;
    REAL *out[CS_MAX_LEVELS];
    int lo[CS_MAX_LEVELS], hi[CS_MAX_LEVELS];
    const REAL sign = maximize ? (REAL)-1 : (REAL)1; /* -g exactly: a product by -1 is exact */
    if (exact) NAME(bands)(coef, n, lo, hi);
    for (int e = 0; e < CS_BLOCK; e++) u[n][e] = 0;
    for (int64_t b = start; b < end; b += CS_BLOCK) {
        const int len = (int)(end - b < CS_BLOCK ? end - b : CS_BLOCK);
        NAME(load)(u, n, p, hidden, b, len);
        NAME(prefetch)(g + b + CS_BLOCK);
        if (adam) { /* m and v may be 16-bit: the prefetch takes a REAL pointer, harmlessly */
            NAME(prefetch)((const REAL *)(m + b + CS_BLOCK));
            NAME(prefetch)((const REAL *)(v + b + CS_BLOCK));
        }
        if (exact) { /* u <- P u: u_1 into w, the others straight to memory */
            out[0] = w;
            for (int k = 1; k < n; k++) out[k] = CS_NEW(k, b);
            NAME(propagate)(out, u, n, coef, lo, hi, len);
        } else { /* the original's first half-step: u_1 + b_1 (u_2 - u_1) */
            const REAL b1 = coef[n];
            for (int e = 0; e < len; e++) w[e] = u[0][e] + b1 * (u[1][e] - u[0][e]);
        }
        if (adam) {
            const REAL lr = hyper[0], beta1 = hyper[1], beta2 = hyper[2], eps = hyper[3];
            const REAL l2 = hyper[4], decoupled = hyper[5], bc1 = hyper[6], bc2_sqrt = hyper[7];
            for (int e = 0; e < len; e++) {
                REAL gr = sign * g[b + e];
                REAL x = w[e] * (1 - lr * decoupled);
                gr = gr + l2 * x;
                const REAL m0 = CS_MLOAD(m, b + e), v0 = CS_MLOAD(v, b + e);
                const REAL mo = m0 + (gr - m0) * (1 - beta1);
                const REAL ve = v0 * beta2 + (1 - beta2) * gr * gr;
                CS_MSTORE(m, b + e, 0, mo);
                CS_MSTORE(v, b + e, 1, ve);
                w[e] = x - (lr / bc1) * mo / (SQRT(ve) / bc2_sqrt + eps);
            }
        } else {
            const REAL lr = hyper[0], decay = hyper[1];
            for (int e = 0; e < len; e++) {
                const REAL gr = sign * g[b + e];
                w[e] = w[e] - lr * (gr + decay * w[e]);
            }
        }
        for (int e = 0; e < len; e++) p[b + e] = w[e];
        if (!exact) { /* the Gauss-Seidel sweep over u_2..u_n, each using the updated u_{k-1}
                       * (just written to memory: read back from the cache) */
            const REAL *a = coef, *bb = coef + n;
            const REAL *prev = w;
            for (int k = 1; k < n; k++) {
                REAL *restrict level = CS_NEW(k, b);
                const REAL *restrict before = prev;
                const REAL ak = a[k], bk = bb[k];
                for (int e = 0; e < len; e++)
                    level[e] = u[k][e] + ak * (before[e] - u[k][e]) + bk * (u[k + 1][e] - u[k][e]);
                prev = level;
            }
        }
#ifdef CS_HALF
        NAME(store_rows)(rows, hidden, n, b, len, first, mix);
#endif
    }
}
#undef CS_NEW

/* What the elements of an unrolled step (step_n) share: the chain's coefficients (P
 * for the exact integrator, a and b for Euler's) and the base's constants. */
struct NAME(shared) {
    REAL P[CS_UNROLLED * CS_UNROLLED], a[CS_UNROLLED], bb[CS_UNROLLED];
    REAL sign, lr, beta1, beta2, eps, l2, decoupled, bc1, bc2_sqrt, decay;
};

/* The chain's first half for element e, the weight the base steps from: (P u)_1, the
 * other levels of P u stored (exact); or Euler's u_1 + b_1 (u_2 - u_1). */
static inline __attribute__((always_inline)) REAL NAME(first_half)(const struct NAME(shared) *c, int64_t e,
                                                                    const int n, const int exact,
                                                                    const REAL *restrict p, CS_LEVEL **h,
                                                                    const uint32_t *first, const uint32_t mix) {
    (void)first, (void)mix;
    if (!exact) return p[e] + c->bb[0] * ((n > 1 ? CS_LOAD(h[1], e) : (REAL)0) - p[e]);
    REAL u[CS_UNROLLED], nu[CS_UNROLLED];
    u[0] = p[e];
    for (int k = 1; k < n; k++) u[k] = CS_LOAD(h[k], e);
    for (int i = 0; i < n; i++) {
        REAL acc = c->P[i * n] * u[0];
        for (int j = 1; j < n; j++) acc = acc + c->P[i * n + j] * u[j];
        nu[i] = acc;
    }
    for (int k = 1; k < n; k++) CS_STORE(h[k], e, k, nu[k]);
    return nu[0];
}

/* The base's step of element e from the chain's first half ``w`` into the weight, then
 * (Euler) the Gauss-Seidel sweep over u_2..u_n, each from the updated u_{k-1}. */
static inline __attribute__((always_inline)) void NAME(second_half)(
    const struct NAME(shared) *c, int64_t e, REAL w, const int n, const int exact, const int adam,
    REAL *restrict p, const REAL *restrict g, CS_LEVEL **h, CS_MOMENT *restrict m, CS_MOMENT *restrict v,
    const uint32_t *first, const uint32_t mix) {
    (void)first, (void)mix;
    const REAL gr0 = c->sign * g[e];
    if (adam) {
        const REAL x = w * (1 - c->lr * c->decoupled);
        const REAL gr = gr0 + c->l2 * x;
        const REAL m0 = CS_MLOAD(m, e), v0 = CS_MLOAD(v, e);
        const REAL mo = m0 + (gr - m0) * (1 - c->beta1);
        const REAL ve = v0 * c->beta2 + (1 - c->beta2) * gr * gr;
        CS_MSTORE(m, e, 0, mo);
        CS_MSTORE(v, e, 1, ve);
        w = x - (c->lr / c->bc1) * mo / (SQRT(ve) / c->bc2_sqrt + c->eps);
    } else {
        w = w - c->lr * (gr0 + c->decay * w);
    }
    p[e] = w;
    if (exact) return;
    REAL u[CS_UNROLLED];
    for (int k = 1; k < n; k++) u[k] = CS_LOAD(h[k], e);
    REAL prev = w;
    for (int k = 1; k < n; k++) {
        const REAL nxt = k + 1 < n ? u[k + 1] : (REAL)0;
        const REAL x = u[k] + c->a[k] * (prev - u[k]) + c->bb[k] * (nxt - u[k]);
        CS_STORE(h[k], e, k, x);
        prev = x;
    }
}

/* The longest chain that step_n takes in passes (see step_n): every unrolled length with
 * float levels; with bfloat16 levels up to 7, where the passes paid (n = 5, 6, 7:
 * 0.89-0.92, 0.95, 0.955-0.97 of one pass's time on 10M parameters; n = 8 and 10
 * 1.01-1.04; benchmarks/native_ab.py on the AMD EPYC below). */
#ifdef CS_HALF
#define CS_PASSES_UP_TO 7
#else
#define CS_PASSES_UP_TO CS_UNROLLED
#endif

/* The same step one element at a time, for a chain length ``n`` (at most CS_UNROLLED),
 * integrator and base known when it is inlined: the levels then live in registers and
 * the loop vectorises across elements, about 2.2x faster than the blocked version
 * above, which serves any n up to CS_MAX_LEVELS.
 *
 * With the exact integrator, Adam and five levels or more (to CS_PASSES_UP_TO) it takes
 * CS_STRETCH elements at a time in passes: the propagation into a buffer, then Adam's
 * step from it (and with bfloat16 levels, last, their rounding from float32 rows, as
 * step_blocked rounds them). In one pass each element's work ended in Adam's square
 * root and two divisions, a chain of some 60 cycles behind a hundred or more
 * instructions of propagation: the processor's window of instructions in flight held about two
 * elements' vectors, and the loop ran at that chain's latency. Apart, the propagation's
 * pass has short chains, and Adam's few instructions for its latency. The same
 * operations on the same values: the same bits. On an AMD EPYC (Zen 3, AVX2), float32
 * levels: n = 5 and 10 about 30% faster on data in the core's caches (a C driver of the
 * moment, one thread, 8,192 elements: 4.2-4.3 -> 3.0-3.6 and 12.1 -> 8.6 cycles an
 * element); on 670K parameters (the 2 x 512 network's) n = 5, 8, 10 0.85-0.96 of the one
 * pass's time; on 10M, where memory bounds the step, 0.97-1.0 (benchmarks/native_ab.py).
 * Not taken where it did not pay: Euler's sweep waits for Adam's new weight (n = 3, 5:
 * 13-28% slower on cached data); SGD has no such chain; n = 3 was 2-7% slower where
 * memory bounds it. */
static inline __attribute__((always_inline)) void NAME(step_n)(
    int64_t start, int64_t end, const int n, REAL *restrict p, const REAL *restrict g,
    CS_LEVEL **hidden, const REAL *coef, const REAL *hyper, CS_MOMENT *restrict m,
    CS_MOMENT *restrict v, const int exact, const int adam, const int maximize, const uint32_t *first,
    const uint32_t mix) {
    struct NAME(shared) c;
    CS_LEVEL *h[CS_UNROLLED];
    for (int k = 1; k < n; k++) h[k] = hidden[k - 1];
    if (exact)
        for (int i = 0; i < n * n; i++) c.P[i] = coef[i];
    else
        for (int k = 0; k < n; k++) c.a[k] = coef[k], c.bb[k] = coef[n + k];
    c.sign = maximize ? (REAL)-1 : (REAL)1;
    c.lr = hyper[0];
    c.beta1 = adam ? hyper[1] : 0, c.beta2 = adam ? hyper[2] : 0, c.eps = adam ? hyper[3] : 0;
    c.l2 = adam ? hyper[4] : 0, c.decoupled = adam ? hyper[5] : 0;
    c.bc1 = adam ? hyper[6] : 1, c.bc2_sqrt = adam ? hyper[7] : 1, c.decay = adam ? 0 : hyper[1];
    if (exact && adam && n >= 5 && n <= CS_PASSES_UP_TO) {
        REAL half[CS_STRETCH]; /* the chain's first half: the weight Adam steps from */
#ifdef CS_HALF
        REAL rows[CS_UNROLLED][CS_ROW]; /* the new levels in float32, rounded in a pass of their own */
#endif
        for (int64_t s = start; s < end; s += CS_STRETCH) {
            const int64_t stop = end - s < CS_STRETCH ? end : s + CS_STRETCH;
#ifdef CS_HALF
            /* first_half's propagation, its levels kept in float32 rows. (A helper shared
             * with first_half, its result through a pointer, kept GCC from vectorising
             * n = 10: 5x slower.) */
#pragma GCC ivdep
            for (int64_t e = s; e < stop; e++) {
                REAL u[CS_UNROLLED], nu[CS_UNROLLED];
                u[0] = p[e];
                for (int k = 1; k < n; k++) u[k] = CS_LOAD(h[k], e);
                for (int i = 0; i < n; i++) {
                    REAL acc = c.P[i * n] * u[0];
                    for (int j = 1; j < n; j++) acc = acc + c.P[i * n + j] * u[j];
                    nu[i] = acc;
                }
                half[e - s] = nu[0];
                for (int k = 1; k < n; k++) rows[k][e - s] = nu[k];
            }
#else
#pragma GCC ivdep
            for (int64_t e = s; e < stop; e++) half[e - s] = NAME(first_half)(&c, e, n, exact, p, h, first, mix);
#endif
#pragma GCC ivdep
            for (int64_t e = s; e < stop; e++)
                NAME(second_half)(&c, e, half[e - s], n, exact, adam, p, g, h, m, v, first, mix);
#ifdef CS_HALF
            NAME(store_rows)(rows, hidden, n, s, (int)(stop - s), first, mix);
#endif
        }
        return;
    }
#pragma GCC ivdep
    for (int64_t e = start; e < end; e++) {
        const REAL w = NAME(first_half)(&c, e, n, exact, p, h, first, mix);
        NAME(second_half)(&c, e, w, n, exact, adam, p, g, h, m, v, first, mix);
    }
}
#undef CS_PASSES_UP_TO

/* step_n for the chain length ``n`` where it has one (every n up to 8, and 9 and 10 for
 * the exact integrator): 1 where it stepped, 0 where n has none. */
static inline int NAME(step_unrolled)(int64_t start, int64_t end, int n, REAL *restrict p,
                                      const REAL *restrict g, CS_LEVEL **hidden, const REAL *coef,
                                      const REAL *hyper, CS_MOMENT *restrict m, CS_MOMENT *restrict v,
                                      int exact, int adam, int maximize, const uint32_t *first,
                                      uint32_t mix) {
#define CS_CALL(N, E, A)                                                                           \
    NAME(step_n)(start, end, N, p, g, hidden, coef, hyper, m, v, E, A, maximize, first, mix)
#define CS_CASE(N)                                                                                 \
    case N:                                                                                        \
        if (exact && adam) CS_CALL(N, 1, 1);                                                       \
        else if (exact) CS_CALL(N, 1, 0);                                                          \
        else if (adam) CS_CALL(N, 0, 1);                                                           \
        else CS_CALL(N, 0, 0);                                                                     \
        return 1;
#define CS_EXACT(N)                                                                                \
    case N:                                                                                        \
        if (exact && adam) CS_CALL(N, 1, 1);                                                       \
        else if (exact) CS_CALL(N, 1, 0);                                                          \
        else break;                                                                                \
        return 1;
    switch (n) { /* every (n, integrator, base) its own loop without branches */
        CS_UNROLLED_CASES
        CS_EXACT_CASES
    }
    return 0;
#undef CS_CALL
#undef CS_CASE
#undef CS_EXACT
}

/* The step of elements [start, end): step_n where it has the chain's length, else the
 * blocked step. */
static inline void NAME(step_any)(int64_t start, int64_t end, int n, REAL *restrict p,
                                  const REAL *restrict g, CS_LEVEL **hidden, const REAL *coef,
                                  const REAL *hyper, CS_MOMENT *restrict m, CS_MOMENT *restrict v,
                                  int exact, int adam, int maximize, const uint32_t *first, uint32_t mix) {
    if (!NAME(step_unrolled)(start, end, n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize, first,
                             mix))
        NAME(step_blocked)(start, end, n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize, first, mix);
}

#ifndef CS_HALF
void NAME(step)(int64_t start, int64_t end, int n, REAL *restrict p, const REAL *restrict g,
                REAL **hidden, const REAL *coef, const REAL *hyper, REAL *restrict m,
                REAL *restrict v, int exact, int adam, int maximize) {
    NAME(step_any)(start, end, n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize, 0, 0);
}

/* ``x`` clamped to [-B, B] and rounded onto the grid of ``spacing`` from its stream's 32
 * random bits ``h``: down, or up with probability the remainder. floor(s) is taken as the
 * integer part of s, which is the same for s >= 0 (y >= -B): a conversion vectorises
 * where floor() does not; a NaN, which has no integer part, is kept as floor() keeps it.
 * GCC splits the clamps into paths that each compute (y + B) / spacing, which it if-
 * converts back into a vector loop only where no floating-point trap is assumed: the
 * library is built with -fno-trapping-math (no value changes: IEEE arithmetic, no
 * reassociation), without which loops of this on an AVX2 machine stayed scalar (with
 * AVX-512's masks they did not): bound_at 6.4x faster on an AMD EPYC (Zen 3). */
static inline REAL NAME(round)(REAL x, REAL B, REAL spacing, uint32_t h) {
    REAL y = x < -B ? -B : x;
    y = y > B ? B : y;
    const REAL u = (REAL)((float)(int32_t)(h >> 8) * (1.0f / (float)(1 << 24)));
    const REAL s = (y + B) / spacing;
    const REAL f = (REAL)(INDEX)s;
    REAL z = (f + (REAL)(u < s - f)) * spacing - B;
    z = z > B ? B : z;
    return s == s ? z : s;
}

/* kernels.bound_ on elements [start, end) of one level (index ``level``, 0 the
 * weight): clamp to [-B, B]; with quantize, round stochastically onto the m values of
 * that range from the counter-based stream of kernels.uniform_, bit for bit. */
void NAME(bound)(int64_t start, int64_t end, REAL *restrict x, const REAL *bound, int64_t key,
                 int64_t step, int level, int quantize) {
    const REAL B = bound[0];
    const REAL spacing = (REAL)2 * B / (bound[1] - (REAL)1);
    const uint32_t first = cs_stream_first(key, level), mix = (uint32_t)step;
    if (!quantize) {
        for (int64_t i = start; i < end; i++) {
            const REAL y = x[i] < -B ? -B : x[i];
            x[i] = y > B ? B : y;
        }
        return;
    }
    for (int64_t i = start; i < end; i++)
        x[i] = NAME(round)(x[i], B, spacing, cs_stream_bits(first, (uint32_t)i, mix));
}

/* kernels.chain_pre_ (the generic path, before the base optimizer's own step): the
 * whole propagation u <- P u (exact), or the coupling u_1 + b_1 (u_2 - u_1) (euler). */
void NAME(pre)(int64_t start, int64_t end, int n, REAL *restrict p, REAL **hidden, const REAL *coef,
               int exact) {
    REAL u[CS_MAX_LEVELS + 1][CS_ROW];
    REAL *out[CS_MAX_LEVELS];
    int lo[CS_MAX_LEVELS], hi[CS_MAX_LEVELS];
    if (exact) NAME(bands)(coef, n, lo, hi);
    for (int e = 0; e < CS_BLOCK; e++) u[n][e] = 0;
    for (int64_t b = start; b < end; b += CS_BLOCK) {
        const int len = (int)(end - b < CS_BLOCK ? end - b : CS_BLOCK);
        NAME(load)(u, n, p, hidden, b, len);
        if (!exact) {
            const REAL b1 = coef[n];
            for (int e = 0; e < len; e++) p[b + e] = u[0][e] + b1 * (u[1][e] - u[0][e]);
            continue;
        }
        out[0] = p + b;
        for (int k = 1; k < n; k++) out[k] = hidden[k - 1] + b;
        NAME(propagate)(out, u, n, coef, lo, hi, len);
    }
}

/* kernels.chain_post_ for euler: the sweep over u_2..u_n after the base's step. */
void NAME(post)(int64_t start, int64_t end, int n, REAL *restrict p, REAL **hidden, const REAL *coef) {
    REAL u[CS_MAX_LEVELS + 1][CS_ROW];
    const REAL *a = coef, *bb = coef + n;
    for (int e = 0; e < CS_BLOCK; e++) u[n][e] = 0;
    for (int64_t b = start; b < end; b += CS_BLOCK) {
        const int len = (int)(end - b < CS_BLOCK ? end - b : CS_BLOCK);
        for (int k = 1; k < n; k++) {
            const REAL *restrict in = hidden[k - 1] + b;
            for (int e = 0; e < len; e++) u[k][e] = in[e];
        }
        const REAL *prev = p + b;
        for (int k = 1; k < n; k++) {
            REAL *restrict out = hidden[k - 1] + b;
            const REAL *restrict before = prev;
            const REAL ak = a[k], bk = bb[k];
            for (int e = 0; e < len; e++)
                out[e] = u[k][e] + ak * (before[e] - u[k][e]) + bk * (u[k + 1][e] - u[k][e]);
            prev = out;
        }
    }
}

/* pre and post (the generic path) one element at a time for a chain length ``n`` (at
 * most CS_UNROLLED) known when inlined, as step_n: the levels live in registers and
 * the loop vectorises. Euler's pre reads only u_1 and u_2. */
static inline __attribute__((always_inline)) void NAME(pre_n)(int64_t start, int64_t end, const int n,
                                                               REAL *restrict p, REAL **hidden,
                                                               const REAL *coef, const int exact) {
    REAL P[CS_UNROLLED * CS_UNROLLED];
    REAL *h[CS_UNROLLED];
    for (int k = 1; k < n; k++) h[k] = hidden[k - 1];
    if (!exact) {
        const REAL b1 = coef[n];
        if (n == 1) {
            for (int64_t e = start; e < end; e++) p[e] = p[e] + b1 * ((REAL)0 - p[e]);
        } else {
            const REAL *restrict u2 = h[1];
            for (int64_t e = start; e < end; e++) p[e] = p[e] + b1 * (u2[e] - p[e]);
        }
        return;
    }
    for (int i = 0; i < n * n; i++) P[i] = coef[i];
#pragma GCC ivdep
    for (int64_t e = start; e < end; e++) {
        REAL u[CS_UNROLLED];
        u[0] = p[e];
        for (int k = 1; k < n; k++) u[k] = h[k][e];
        REAL acc = P[0] * u[0];
        for (int j = 1; j < n; j++) acc = acc + P[j] * u[j];
        p[e] = acc;
        for (int i = 1; i < n; i++) {
            acc = P[i * n] * u[0];
            for (int j = 1; j < n; j++) acc = acc + P[i * n + j] * u[j];
            h[i][e] = acc;
        }
    }
}

static inline __attribute__((always_inline)) void NAME(post_n)(int64_t start, int64_t end, const int n,
                                                                const REAL *restrict p, REAL **hidden,
                                                                const REAL *coef) {
    REAL a[CS_UNROLLED], bb[CS_UNROLLED];
    REAL *h[CS_UNROLLED];
    for (int k = 1; k < n; k++) h[k] = hidden[k - 1];
    for (int k = 0; k < n; k++) a[k] = coef[k], bb[k] = coef[n + k];
#pragma GCC ivdep
    for (int64_t e = start; e < end; e++) {
        REAL u[CS_UNROLLED];
        for (int k = 1; k < n; k++) u[k] = h[k][e];
        REAL prev = p[e];
        for (int k = 1; k < n; k++) {
            const REAL nxt = k + 1 < n ? u[k + 1] : (REAL)0;
            const REAL x = u[k] + a[k] * (prev - u[k]) + bb[k] * (nxt - u[k]);
            h[k][e] = x;
            prev = x;
        }
    }
}

/* The calls Python makes: every tensor of a batch in one call (see cs_run for
 * ``threads``, ``part`` and ``parts``). Tensor t's hidden levels u_2..u_n are
 * hidden[t * (n - 1) .. t * (n - 1) + n - 2]. */
struct NAME(step_args) {
    int n;
    REAL **p, **g, **hidden;
    const REAL *coef, *hyper;
    REAL **m, **v;
    int exact, adam, maximize;
};

static void NAME(step_range)(int t, int64_t start, int64_t end, const void *args) {
    const struct NAME(step_args) *a = args;
    NAME(step)(start, end, a->n, a->p[t], a->g[t], a->hidden + (int64_t)t * (a->n - 1), a->coef,
               a->hyper, a->adam ? a->m[t] : 0, a->adam ? a->v[t] : 0, a->exact, a->adam,
               a->maximize);
}

void NAME(step_many)(int count, const int64_t *numel, int n, REAL **p, REAL **g, REAL **hidden,
                     const REAL *coef, const REAL *hyper, REAL **m, REAL **v, int exact, int adam,
                     int maximize, int threads, int part, int parts) {
    const struct NAME(step_args) a = {n, p, g, hidden, coef, hyper, m, v, exact, adam, maximize};
    cs_run(count, numel, threads, part, parts, NAME(step_range), &a);
}

struct NAME(chain_args) {
    int n;
    REAL **p, **hidden;
    const REAL *coef;
    int exact;
};

static void NAME(pre_range)(int t, int64_t start, int64_t end, const void *args) {
    const struct NAME(chain_args) *a = args;
    REAL *p = a->p[t], **hidden = a->hidden + (int64_t)t * (a->n - 1);
#define CS_CASE(N)                                                                                 \
    case N:                                                                                        \
        if (a->exact) NAME(pre_n)(start, end, N, p, hidden, a->coef, 1);                           \
        else NAME(pre_n)(start, end, N, p, hidden, a->coef, 0);                                    \
        return;
#define CS_EXACT(N)                                                                                \
    case N:                                                                                        \
        if (!a->exact) break;                                                                      \
        NAME(pre_n)(start, end, N, p, hidden, a->coef, 1);                                         \
        return;
    switch (a->n) {
        CS_UNROLLED_CASES
        CS_EXACT_CASES
    }
    NAME(pre)(start, end, a->n, p, hidden, a->coef, a->exact);
#undef CS_CASE
#undef CS_EXACT
}

static void NAME(post_range)(int t, int64_t start, int64_t end, const void *args) {
    const struct NAME(chain_args) *a = args;
    REAL *p = a->p[t], **hidden = a->hidden + (int64_t)t * (a->n - 1);
#define CS_CASE(N)                                                                                 \
    case N:                                                                                        \
        NAME(post_n)(start, end, N, p, hidden, a->coef);                                           \
        return;
    switch (a->n) {
        CS_UNROLLED_CASES
    default:
        NAME(post)(start, end, a->n, p, hidden, a->coef);
    }
#undef CS_CASE
}

void NAME(pre_many)(int count, const int64_t *numel, int n, REAL **p, REAL **hidden,
                    const REAL *coef, int exact, int threads, int part, int parts) {
    const struct NAME(chain_args) a = {n, p, hidden, coef, exact};
    cs_run(count, numel, threads, part, parts, NAME(pre_range), &a);
}

void NAME(post_many)(int count, const int64_t *numel, int n, REAL **p, REAL **hidden,
                     const REAL *coef, int threads, int part, int parts) {
    const struct NAME(chain_args) a = {n, p, hidden, coef, 0};
    cs_run(count, numel, threads, part, parts, NAME(post_range), &a);
}

/* Bound: tensor t of the list is level level[t] of a parameter whose stream has key
 * key[t] and counter step[t]; its [B, m] is ``bound``, or with ``rows`` its level's row
 * of ``bound`` (a range per level). */
struct NAME(bound_args) {
    REAL **x;
    const REAL *bound;
    const int64_t *key, *step;
    const int *level;
    int quantize, rows;
};

static void NAME(bound_range)(int t, int64_t start, int64_t end, const void *args) {
    const struct NAME(bound_args) *a = args;
    const REAL *bound = a->bound + (a->rows ? 2 * a->level[t] : 0);
    NAME(bound)(start, end, a->x[t], bound, a->key[t], a->step[t], a->level[t], a->quantize);
}

void NAME(bound_many)(int count, const int64_t *numel, REAL **x, const REAL *bound,
                      const int64_t *key, const int64_t *step, const int *level, int quantize,
                      int rows, int threads, int part, int parts) {
    const struct NAME(bound_args) a = {x, bound, key, step, level, quantize, rows};
    cs_run(count, numel, threads, part, parts, NAME(bound_range), &a);
}

/* NAME(bound) on chosen elements, bit for bit: ``x`` holds k columns of n levels, row by
 * row (level j of column c at x[j k + c]); column c is element index[c] of a parameter
 * whose stream has ``key`` and counter ``step``, and level j's [B, m] is row j of
 * ``bound`` with ``rows``, else its only row. The model lab's coupled copies
 * (lab/coupled.py) follow chosen synapses and draw their numbers. One thread. */
void NAME(bound_at)(int n, int64_t k, REAL *restrict x, const int64_t *restrict index,
                    const REAL *bound, int rows, int64_t key, int64_t step, int quantize) {
    for (int j = 0; j < n; j++) {
        const REAL *row = bound + (rows ? 2 * j : 0);
        REAL *level = x + (int64_t)j * k;
        if (!quantize) {
            NAME(bound)(0, k, level, row, key, step, j, 0);
            continue;
        }
        const REAL B = row[0];
        const REAL spacing = (REAL)2 * B / (row[1] - (REAL)1);
        const uint32_t first = cs_stream_first(key, j), mix = (uint32_t)step;
        for (int64_t c = 0; c < k; c++)  /* as NAME(bound), element index[c] */
            level[c] = NAME(round)(level[c], B, spacing, cs_stream_bits(first, (uint32_t)index[c], mix));
    }
}
#endif /* CS_HALF */

#undef CS_LEVEL
#undef CS_LOAD
#undef CS_STORE
#undef CS_MOMENT
#undef CS_MLOAD
#undef CS_MSTORE
#undef NAME /* step.c's name for this inclusion */
