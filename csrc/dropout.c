/* The dropout family: Bernoulli masks (Dropout, AlphaDropout, DropConnect) and Gaussian
 * noise (GaussianNoise, GaussianDropout), drawn from a counter-based generator.
 *
 * Random numbers are a pure function of (seed, counter, element index): no generator state
 * is carried between elements, so every element can be computed by any thread, in any
 * order, and the NumPy reference (fastnn/reference/dropout.py) computes the same bits.
 *
 *   key(seed, counter) = mix64(mix64(seed) + counter * G)      one key per layer call
 *   word(key, i)       = mix64(key + (i + 1) * G)              the i-th 64-bit word
 *
 * mix64 is SplitMix64's finalizer (Steele, Lea, Flood 2014) and G = 2^64 / golden ratio:
 * consecutive counters give consecutive SplitMix64 outputs as keys, and each key starts its
 * own SplitMix64 stream over the element index.
 *
 * A unit is kept when the top 53 bits of its word are >= floor(rate * 2^53): an integer
 * comparison, so C and NumPy agree exactly (P(keep) = 1 - rate to within 2^-53).
 * Standard normals use Box-Muller on two words: z = sqrt(-2 log u1) cos(2 pi u2), computed
 * in double with libm; the reference calls the same libm through Python's math module.
 *
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fastnn.h"
#include "parallel.h"

#define FASTNN_GOLDEN 0x9e3779b97f4a7c15ULL

static inline uint64_t fastnn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t fastnn_random_key(uint64_t seed, uint64_t counter)
{
    return fastnn_mix64(fastnn_mix64(seed) + counter * FASTNN_GOLDEN);
}

static inline uint64_t fastnn_word(uint64_t key, uint64_t i)
{
    return fastnn_mix64(key + (i + 1) * FASTNN_GOLDEN);
}

uint64_t fastnn_keep_threshold(double rate)
{
    /* rate * 2^53 is exact in double; the conversion truncates, as Python's int() */
    if (!(rate > 0)) return 0;
    if (rate >= 1) return (uint64_t)1 << 53;
    return (uint64_t)(rate * 9007199254740992.0);
}

void random_words_u64(uint64_t seed, uint64_t counter, uint64_t *out, ptrdiff_t n, int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter);
    FASTNN_SPLIT(n, n, n_threads,
        for (ptrdiff_t i = lo; i < hi; i++) out[i] = fastnn_word(key, (uint64_t)i));
}

/* z = sqrt(-2 log u1) cos(2 pi u2) from words 2i and 2i + 1; u1 in (0, 1], u2 in [0, 1). */
static inline double fastnn_normal(uint64_t key, uint64_t i)
{
    const double two_pi = 6.283185307179586;
    double u1 = (double)((fastnn_word(key, 2 * i) >> 11) + 1) * 0x1.0p-53;
    double u2 = (double)(fastnn_word(key, 2 * i + 1) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1));
    double c = cos(two_pi * u2);
    return r * c;
}

/* RBITS: an unsigned integer as wide as REAL, for branch-free selects on the bits. */
#define REAL float
#define RBITS uint32_t
#define FN(name) name##_f32
#include "dropout.c"
#undef REAL
#undef RBITS
#undef FN

#define REAL double
#define RBITS uint64_t
#define FN(name) name##_f64
#include "dropout.c"
#undef REAL
#undef RBITS
#undef FN

#else /* template body */

/* out = X * scale where kept, +0 where dropped: inverted dropout, and its backward (the same
 * operation on dY). The hot path of the family: integer hash, compare, and a select done on
 * the bits (value & all-ones-or-zero mask), which compilers vectorize where a ?: on floats
 * stays a mispredicted branch (2x faster measured). */
FASTNN_CLONES
static void FN(dropout_scale_range)(const REAL *X, REAL scale, uint64_t key, uint64_t thr,
                                    REAL *out, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        uint64_t w = fastnn_word(key, (uint64_t)i) >> 11;
        REAL v = X[i] * scale;
        RBITS b, m = (RBITS)0 - (RBITS)(w >= thr);
        memcpy(&b, &v, sizeof b);
        b &= m;
        memcpy(&out[i], &b, sizeof b);
    }
}

/* out = X * scale + shift where kept, fill where dropped (AlphaDropout's affine form).
 * No fused multiply-add: the reference rounds the product and the sum separately. */
__attribute__((optimize("fp-contract=off")))
static void FN(dropout_affine_range)(const REAL *X, REAL scale, REAL shift, REAL fill,
                                     uint64_t key, uint64_t thr, REAL *out,
                                     ptrdiff_t lo, ptrdiff_t hi)
{
    RBITS fb;
    memcpy(&fb, &fill, sizeof fb);
    for (ptrdiff_t i = lo; i < hi; i++) {
        uint64_t w = fastnn_word(key, (uint64_t)i) >> 11;
        REAL t = X[i] * scale;
        REAL v = t + shift;
        RBITS b, m = (RBITS)0 - (RBITS)(w >= thr);
        memcpy(&b, &v, sizeof b);
        b = (b & m) | (fb & ~m);
        memcpy(&out[i], &b, sizeof b);
    }
}

void FN(dropout_apply)(const REAL *X, double rate, double scale, double shift, double fill,
                       uint64_t seed, uint64_t counter, REAL *out, ptrdiff_t n, int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter), thr = fastnn_keep_threshold(rate);
    if (shift == 0 && fill == 0) {
        FASTNN_SPLIT(n, n, n_threads,
            FN(dropout_scale_range)(X, (REAL)scale, key, thr, out, lo, hi));
    } else {
        FASTNN_SPLIT(n, n, n_threads,
            FN(dropout_affine_range)(X, (REAL)scale, (REAL)shift, (REAL)fill, key, thr, out, lo, hi));
    }
}

/* Additive: out = X + (REAL)(stddev * z). Multiplicative: out = X * (REAL)(1 + stddev * z).
 * The noise is formed in double, then rounded once to REAL. */
__attribute__((optimize("fp-contract=off")))
static void FN(gaussian_range)(const REAL *X, double stddev, int multiplicative, uint64_t key,
                               REAL *out, ptrdiff_t lo, ptrdiff_t hi)
{
    if (multiplicative) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            double e = stddev * fastnn_normal(key, (uint64_t)i);
            out[i] = X[i] * (REAL)(1.0 + e);
        }
    } else {
        for (ptrdiff_t i = lo; i < hi; i++) {
            double e = stddev * fastnn_normal(key, (uint64_t)i);
            out[i] = X[i] + (REAL)e;
        }
    }
}

void FN(gaussian_noise_apply)(const REAL *X, double stddev, int multiplicative, uint64_t seed,
                              uint64_t counter, REAL *out, ptrdiff_t n, int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter);
    /* log + cos per element: worth a second thread at a tenth of the usual size */
    FASTNN_SPLIT(n, n * 16, n_threads,
        FN(gaussian_range)(X, stddev, multiplicative, key, out, lo, hi));
}

#endif /* template body */
