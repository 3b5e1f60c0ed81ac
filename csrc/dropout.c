/* The dropout family: Bernoulli masks (Dropout, AlphaDropout, DropConnect) and Gaussian
 * noise (GaussianNoise, GaussianDropout), drawn from a counter-based generator.
 *
 * Random numbers are a pure function of (seed, counter, element index): no generator state
 * is carried between elements, so every element can be computed by any thread, in any
 * order, and the NumPy reference (fastnn/reference/dropout.py) computes the same bits.
 *
 *   key(seed, counter) = mix64(mix64(seed) + counter * G)      one key per layer call
 *   word(key, j)       = mix64(key + (j + 1) * G)              the j-th 64-bit word
 *
 * mix64 is SplitMix64's finalizer (Steele, Lea, Flood 2014) and G = 2^64 / golden ratio:
 * consecutive counters give consecutive SplitMix64 outputs as keys, and each key starts its
 * own SplitMix64 stream over the word index.
 *
 * Keep decisions: two per word, so the hash (two 64-bit multiplies) runs once per two
 * elements. Element i uses u_i = the low 32 bits of word(key, i / 2) when i is even, the high
 * 32 bits when i is odd (on a little-endian machine the words, read as 32-bit integers, are
 * u_0, u_1, u_2, ... in order: the kernel loop is a plain 32-bit compare). Element i is kept
 * when u_i >= floor(rate * 2^32), and never when rate >= 1 (threshold 2^32): an integer
 * comparison, so C and NumPy agree exactly, and P(keep) = 1 - floor(rate * 2^32) / 2^32, which
 * is within 2^-32 of 1 - rate.
 * Standard normals: Box-Muller on the pair of words (2k, 2k + 1), giving elements 2k and
 * 2k + 1 (r cos t and r sin t). The logarithm, sine and cosine are fastnn's own polynomials
 * (below), computed in double with the same operations in the same order as the NumPy
 * reference and no fused multiply-add (this file is compiled with fp-contract=off), so the
 * results are bit-identical, and the loop vectorizes (no libm call).
 *
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include <stdint.h>
#include <string.h>
#include "fastnn.h"
#include "parallel.h"

/* Bit-exact agreement with the NumPy reference needs every product and sum rounded
 * separately: no contraction into fused multiply-adds anywhere in this file. */
#pragma GCC optimize("fp-contract=off")

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

uint64_t fastnn_keep_threshold32(double rate)
{
    /* rate * 2^32 is exact in double; the conversion truncates, as Python's int() */
    if (!(rate > 0)) return 0;
    if (rate >= 1) return (uint64_t)1 << 32;
    return (uint64_t)(rate * 4294967296.0);
}

/* Keep decisions are made a block at a time: the block's words first (a loop of nothing but
 * the hash, which vectorizes with 64-bit lanes, the counter stepping by G instead of a
 * multiply), then the elements, reading the words as 32-bit halves (a 32-bit compare per
 * element, 16 to an AVX-512 register for float32). Measured at 128 x 512 float32 on AVX-512:
 * 9-11 us, against 30 us for one 53-bit word per element. 64 words: 512 bytes, in L1. */
#define FASTNN_KEEP_BLOCK 64
typedef union { uint64_t w[FASTNN_KEEP_BLOCK]; uint32_t h[2 * FASTNN_KEEP_BLOCK]; } fastnn_halves;

/* u_e, ..., u_(e + ne - 1) into b->h[0 .. ne), e even, ne <= 2 * FASTNN_KEEP_BLOCK */
static inline void fastnn_fill_halves(uint64_t key, ptrdiff_t e, ptrdiff_t ne, fastnn_halves *b)
{
    ptrdiff_t nw = (ne + 1) >> 1;
    uint64_t s = key + ((uint64_t)e / 2 + 1) * FASTNN_GOLDEN;
    for (ptrdiff_t j = 0; j < nw; j++) {
        b->w[j] = fastnn_mix64(s);
        s += FASTNN_GOLDEN;
    }
#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
    /* big-endian (or unknown) byte order: put the low half first by hand */
    for (ptrdiff_t j = 0; j < nw; j++) {
        uint64_t w = b->w[j];
        uint32_t lo = (uint32_t)w, hi = (uint32_t)(w >> 32);
        b->h[2 * j] = lo;
        b->h[2 * j + 1] = hi;
    }
#endif
}

void random_words_u64(uint64_t seed, uint64_t counter, uint64_t *out, ptrdiff_t n, int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter);
    FASTNN_SPLIT(n, n, n_threads,
        for (ptrdiff_t i = lo; i < hi; i++) out[i] = fastnn_word(key, (uint64_t)i));
}

/* Coefficients (exact doubles, the same hex literals as fastnn/reference/dropout.py):
 * ln m = 2 s sum_j s^(2j) / (2j + 1), s = (m - 1) / (m + 1), |s| <= 0.1716 (m in [1/sqrt2, sqrt2));
 * cos x = sum_j (-1)^j x^(2j) / (2j)!, sin x = x sum_j (-1)^j x^(2j) / (2j + 1)!, |x| <= pi/4.
 * Truncation errors are below 1e-17: the values are accurate to a few ulps. */
#define FASTNN_LN2 0x1.62e42fefa39efp-1
#define FASTNN_HALF_PI 0x1.921fb54442d18p+0
#define FASTNN_SQRT_HALF 0x1.6a09e667f3bcdp-1

/* Type punning through a union (GCC documents it; a memcpy here becomes a byte-array copy
 * that the vectorizer cannot handle). */
typedef union { double d; uint64_t u; } fastnn_pun;
static inline double fastnn_bits_to_double(uint64_t b) { fastnn_pun p; p.u = b; return p.d; }
static inline uint64_t fastnn_double_to_bits(double d) { fastnn_pun p; p.d = d; return p.u; }
/* cond ? a : b on the bits (cond 0 or 1): branch-free, so the loop vectorizes */
static inline double fastnn_select(uint64_t cond, double a, double b)
{
    uint64_t m = (uint64_t)0 - cond;
    return fastnn_bits_to_double((fastnn_double_to_bits(a) & m) | (fastnn_double_to_bits(b) & ~m));
}

/* Two standard normals from the words (wa, wb):
 *   u1 = 1 - (wa >> 12) 2^-52 in (0, 1],  r = sqrt(-2 ln u1);
 *   wb >> 12 = q 2^50 + f 2^50 (q in 0..3, f in [0, 1)): t = 2 pi u2 = (q + f) pi / 2;
 *   z0 = r cos t, z1 = r sin t. */
static inline void fastnn_normal_pair(uint64_t wa, uint64_t wb, double *z0, double *z1)
{
    /* u1 and its logarithm: u1 = m 2^e, m in [0.5, 1) from the bits, then [1/sqrt2, sqrt2) */
    double u1 = 2.0 - fastnn_bits_to_double(((uint64_t)1023 << 52) | (wa >> 12));
    uint64_t b = fastnn_double_to_bits(u1);
    double m = fastnn_bits_to_double((b & 0x000fffffffffffffULL) | ((uint64_t)1022 << 52));
    uint64_t lo = m < FASTNN_SQRT_HALF;
    m = fastnn_select(lo, m + m, m);
    /* e = exponent field - 1022 - lo, as a double without an int64 -> double conversion
     * (AVX2 has none): 2^52 + field, minus 2^52, is exact */
    double e = fastnn_bits_to_double(0x4330000000000000ULL | (b >> 52)) - 4503599627370496.0;
    e = e - 1022.0 - fastnn_select(lo, 1.0, 0.0);
    double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 0x1.8618618618618p-5;
    p = p * s2 + 0x1.af286bca1af28p-5;
    p = p * s2 + 0x1.e1e1e1e1e1e1ep-5;
    p = p * s2 + 0x1.1111111111111p-4;
    p = p * s2 + 0x1.3b13b13b13b14p-4;
    p = p * s2 + 0x1.745d1745d1746p-4;
    p = p * s2 + 0x1.c71c71c71c71cp-4;
    p = p * s2 + 0x1.2492492492492p-3;
    p = p * s2 + 0x1.999999999999ap-3;
    p = p * s2 + 0x1.5555555555555p-2;
    p = p * s2 + 1.0;
    double ln_u1 = e * FASTNN_LN2 + (s + s) * p;
    double r = sqrt(-2.0 * ln_u1);
    /* the angle: quadrant q, fraction f; reduce to x = g pi/2 with g = min(f, 1 - f) */
    uint64_t mb = wb >> 12;
    uint64_t q = mb >> 50;
    double f = fastnn_bits_to_double(((uint64_t)1023 << 52) | ((mb & 0x3ffffffffffffULL) << 2)) - 1.0;
    uint64_t hi = f > 0.5;
    double g = fastnn_select(hi, 1.0 - f, f);
    double x = g * FASTNN_HALF_PI, x2 = x * x;
    double c = -0x1.6827863b97d97p-53;
    c = c * x2 + 0x1.ae7f3e733b81fp-45;
    c = c * x2 + -0x1.93974a8c07c9dp-37;
    c = c * x2 + 0x1.1eed8eff8d898p-29;
    c = c * x2 + -0x1.27e4fb7789f5cp-22;
    c = c * x2 + 0x1.a01a01a01a01ap-16;
    c = c * x2 + -0x1.6c16c16c16c17p-10;
    c = c * x2 + 0x1.5555555555555p-5;
    c = c * x2 + -0x1.0000000000000p-1;
    c = c * x2 + 1.0;
    double sn = -0x1.2f49b46814157p-57;
    sn = sn * x2 + 0x1.952c77030ad4ap-49;
    sn = sn * x2 + -0x1.ae7f3e733b81fp-41;
    sn = sn * x2 + 0x1.6124613a86d09p-33;
    sn = sn * x2 + -0x1.ae64567f544e4p-26;
    sn = sn * x2 + 0x1.71de3a556c734p-19;
    sn = sn * x2 + -0x1.a01a01a01a01ap-13;
    sn = sn * x2 + 0x1.1111111111111p-7;
    sn = sn * x2 + -0x1.5555555555555p-3;
    sn = sn * x2 + 1.0;
    sn = sn * x;
    double ca = fastnn_select(hi, sn, c), sa = fastnn_select(hi, c, sn);  /* cos, sin of f pi/2 */
    double c0 = fastnn_select(q & 1, sa, ca), s0 = fastnn_select(q & 1, ca, sa);
    double sc = fastnn_select(((q + 1) >> 1) & 1, -1.0, 1.0);   /* -1 for q = 1, 2 */
    double ss = fastnn_select(q >> 1, -1.0, 1.0);                /* -1 for q = 2, 3 */
    *z0 = r * (sc * c0);
    *z1 = r * (ss * s0);
}

#define FASTNN_TEMPLATE "dropout.c"
#include "template.h"

#else /* template body */

/* out = X * scale where element i is kept, +0 where dropped (inverted dropout), over the
 * elements [lo, hi), lo even (a block starts at a word boundary). The select is done on the
 * bits (value & all-ones-or-zero), so NaN in X propagates where kept and gives +0 where
 * dropped, and the loop vectorizes. keep_any is 0 when nothing can be kept (rate >= 1:
 * threshold 2^32, beyond any 32-bit half), else 1. mask (NULL when not wanted) gets 1 where
 * kept, 0 where dropped, in the same pass. */
FASTNN_CLONES
static void FN(dropout_scale_range)(const REAL *X, REAL scale, uint64_t key, uint32_t thr,
                                    RBITS keep_any, REAL *out, uint8_t *mask,
                                    ptrdiff_t lo, ptrdiff_t hi)
{
    fastnn_halves b;
    for (ptrdiff_t e = lo; e < hi; e += 2 * FASTNN_KEEP_BLOCK) {
        ptrdiff_t ne = hi - e < 2 * FASTNN_KEEP_BLOCK ? hi - e : 2 * FASTNN_KEEP_BLOCK;
        fastnn_fill_halves(key, e, ne, &b);
        const REAL *x = X + e;
        REAL *o = out + e;
        if (mask) {   /* two loops rather than a test per element: each vectorizes */
            uint8_t *k = mask + e;
            for (ptrdiff_t i = 0; i < ne; i++) {
                RBITS c = (RBITS)(b.h[i] >= thr) & keep_any, bits;
                REAL v = x[i] * scale;
                memcpy(&bits, &v, sizeof bits);
                bits &= (RBITS)0 - c;
                memcpy(&o[i], &bits, sizeof bits);
                k[i] = (uint8_t)c;
            }
        } else {
            for (ptrdiff_t i = 0; i < ne; i++) {
                RBITS c = (RBITS)(b.h[i] >= thr) & keep_any, bits;
                REAL v = x[i] * scale;
                memcpy(&bits, &v, sizeof bits);
                bits &= (RBITS)0 - c;
                memcpy(&o[i], &bits, sizeof bits);
            }
        }
    }
}

/* out = X * scale + shift where kept, fill where dropped (AlphaDropout's affine form), as
 * above. No fused multiply-add: the reference rounds the product and the sum separately. */
FASTNN_CLONES
static void FN(dropout_affine_range)(const REAL *X, REAL scale, REAL shift, REAL fill,
                                     uint64_t key, uint32_t thr, RBITS keep_any, REAL *out,
                                     uint8_t *mask, ptrdiff_t lo, ptrdiff_t hi)
{
    RBITS fb;
    memcpy(&fb, &fill, sizeof fb);
    fastnn_halves b;
    for (ptrdiff_t e = lo; e < hi; e += 2 * FASTNN_KEEP_BLOCK) {
        ptrdiff_t ne = hi - e < 2 * FASTNN_KEEP_BLOCK ? hi - e : 2 * FASTNN_KEEP_BLOCK;
        fastnn_fill_halves(key, e, ne, &b);
        for (ptrdiff_t i = 0; i < ne; i++) {
            RBITS c = (RBITS)(b.h[i] >= thr) & keep_any, m = (RBITS)0 - c, bits;
            REAL t = X[e + i] * scale;
            REAL v = t + shift;
            memcpy(&bits, &v, sizeof bits);
            bits = (bits & m) | (fb & ~m);
            memcpy(&out[e + i], &bits, sizeof bits);
            if (mask) mask[e + i] = (uint8_t)c;
        }
    }
}

/* Work per element for the parallel threshold (FASTNN_SPLIT: two threads from
 * FASTNN_PARALLEL_MIN = 131072 elements of work). Half a hash per element is now cheap, so
 * unlike the transcendental kernels this needs no extra weight. Measured (2-core AVX-512 box,
 * passive OpenMP wait, float32, forward with mask, 1 -> 2 threads, us): 128x256 7.5 -> 12.4,
 * 128x512 15 -> 17, 192x512 22 -> 20, 256x512 31 -> 24, 512x512 64 -> 41, 1024x512
 * 163 -> 84: the crossover is near 100k elements, so weight 1 (serial at 128x512, parallel from
 * 256x512). dropout_backward (also weight 1): 131072 16 -> 16, 196608 27 -> 21, 1024x512
 * 159 -> 72. */
#define FASTNN_DROPOUT_COST 1

void FN(dropout_apply)(const REAL *X, double rate, double scale, double shift, double fill,
                       uint64_t seed, uint64_t counter, REAL *out, uint8_t *mask, ptrdiff_t n,
                       int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter), thr = fastnn_keep_threshold32(rate);
    RBITS keep_any = thr <= UINT32_MAX;
    uint32_t t32 = keep_any ? (uint32_t)thr : UINT32_MAX;
    /* split over pairs, so every range starts on a word boundary */
    ptrdiff_t pairs = (n + 1) / 2;
    if (shift == 0 && fill == 0) {
        FASTNN_SPLIT(pairs, n * FASTNN_DROPOUT_COST, n_threads,
            FN(dropout_scale_range)(X, (REAL)scale, key, t32, keep_any, out, mask,
                                    2 * lo, 2 * hi < n ? 2 * hi : n));
    } else {
        FASTNN_SPLIT(pairs, n * FASTNN_DROPOUT_COST, n_threads,
            FN(dropout_affine_range)(X, (REAL)scale, (REAL)shift, (REAL)fill, key, t32, keep_any,
                                     out, mask, 2 * lo, 2 * hi < n ? 2 * hi : n));
    }
}

/* dX = dY * scale where mask is nonzero, +0 where it is 0: the backward of dropout_apply
 * (scale only) from the mask it stored, instead of hashing again. NaN in dY propagates
 * where kept. dX may be dY. */
FASTNN_CLONES
static void FN(dropout_backward_range)(const REAL *dY, const uint8_t *mask, REAL scale, REAL *dX,
                                       ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL v = dY[i] * scale;
        RBITS bits, m = (RBITS)0 - (RBITS)(mask[i] != 0);
        memcpy(&bits, &v, sizeof bits);
        bits &= m;
        memcpy(&dX[i], &bits, sizeof bits);
    }
}

void FN(dropout_backward)(const REAL *dY, const uint8_t *mask, double scale, REAL *dX, ptrdiff_t n,
                          int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads, FN(dropout_backward_range)(dY, mask, (REAL)scale, dX, lo, hi));
}

/* Additive: out = X + (REAL)(stddev * z). Multiplicative: out = X * (REAL)(1 + stddev * z).
 * The noise is formed in double, then rounded once to REAL. Pairs [p0, p1): elements 2k, 2k+1
 * (the element n, past the end of an odd-sized array, is not written). */
FASTNN_CLONES
static void FN(gaussian_pairs)(const REAL *X, double stddev, int multiplicative, uint64_t key,
                               REAL *out, ptrdiff_t n, ptrdiff_t p0, ptrdiff_t p1)
{
    ptrdiff_t full = p1 < n / 2 ? p1 : n / 2;   /* pairs with both elements in the array */
    /* one loop per mode, unsigned counters: no branch or int64 conversion inside, so each
     * vectorizes */
    if (multiplicative) {
        for (uint64_t k = (uint64_t)p0; k < (uint64_t)full; k++) {
            double z0, z1;
            fastnn_normal_pair(fastnn_word(key, 2 * k), fastnn_word(key, 2 * k + 1), &z0, &z1);
            out[2 * k] = X[2 * k] * (REAL)(1.0 + stddev * z0);
            out[2 * k + 1] = X[2 * k + 1] * (REAL)(1.0 + stddev * z1);
        }
    } else {
        for (uint64_t k = (uint64_t)p0; k < (uint64_t)full; k++) {
            double z0, z1;
            fastnn_normal_pair(fastnn_word(key, 2 * k), fastnn_word(key, 2 * k + 1), &z0, &z1);
            out[2 * k] = X[2 * k] + (REAL)(stddev * z0);
            out[2 * k + 1] = X[2 * k + 1] + (REAL)(stddev * z1);
        }
    }
    if (p1 > full && full >= p0 && (n & 1)) {   /* the last, unpaired element */
        ptrdiff_t k = n / 2;
        double z0, z1;
        fastnn_normal_pair(fastnn_word(key, 2 * (uint64_t)k), fastnn_word(key, 2 * (uint64_t)k + 1),
                           &z0, &z1);
        double e0 = stddev * z0;
        out[2 * k] = multiplicative ? X[2 * k] * (REAL)(1.0 + e0) : X[2 * k] + (REAL)e0;
    }
}

void FN(gaussian_noise_apply)(const REAL *X, double stddev, int multiplicative, uint64_t seed,
                              uint64_t counter, REAL *out, ptrdiff_t n, int n_threads)
{
    uint64_t key = fastnn_random_key(seed, counter);
    ptrdiff_t pairs = (n + 1) / 2;
    /* ~5x the work of a dropout mask per element: worth a second thread sooner */
    FASTNN_SPLIT(pairs, n * 4, n_threads,
        FN(gaussian_pairs)(X, stddev, multiplicative, key, out, n, lo, hi));
}

#endif /* template body */
