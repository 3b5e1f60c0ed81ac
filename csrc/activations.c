/* Activations: fused bias + activation forward, activation backward (+ bias gradient),
 * PReLU and Maxout. This file is a template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include "fastnn.h"
#include "parallel.h"

int fastnn_have_openmp(void) { return FASTNN_HAVE_OPENMP; }

/* per-element cost of an activation, for the parallel threshold (see fastnn.h) */
static inline ptrdiff_t fastnn_act_cost(int act)
{
    switch (act) {
    case ACT_LINEAR: case ACT_RELU: case ACT_LEAKY_RELU: case ACT_SOFTSIGN: case ACT_HARD_SIGMOID:
        return 1;
    default:
        return FASTNN_TRANSCENDENTAL_COST;
    }
}

#define FASTNN_TEMPLATE "activations.c"
#include "template.h"

#else /* template body: REAL, FN(), M() (math function for REAL) are defined */

/* One loop per activation so each inner loop is branch-free and vectorizable.
 * x is the pre-activation; when b is given it is also written back to Z. */
#define FASTNN_ACT_LOOP(EXPR)                                                         \
    if (b) {                                                                          \
        for (ptrdiff_t j = 0; j < m; j++) { REAL x = z[j] + b[j]; z[j] = x; y[j] = (EXPR); } \
    } else {                                                                          \
        for (ptrdiff_t j = 0; j < m; j++) { REAL x = z[j]; y[j] = (EXPR); }           \
    }

static inline REAL FN(sigmoid1)(REAL x) {
    /* stable on both tails: exp of a non-positive number only */
    if (x >= 0) { REAL e = M(exp)(-x); return 1 / (1 + e); }
    REAL e = M(exp)(x);
    return e / (1 + e);
}
static inline REAL FN(softplus1)(REAL x) {
    return (x > 0 ? x : 0) + M(log1p)(M(exp)(-M(fabs)(x)));
}
#define GELU_C ((REAL)0.7978845608028654)  /* sqrt(2/pi) */
#define GELU_K ((REAL)0.044715)
#define INV_SQRT2 ((REAL)0.7071067811865476)
#define INV_SQRT_2PI ((REAL)0.3989422804014327)

FASTNN_CLONES
static void FN(bias_act_rows)(REAL *Z, const REAL *b, int act, REAL alpha, REAL *Y,
                              ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    const REAL sa = (REAL)(FASTNN_SELU_SCALE * FASTNN_SELU_ALPHA), ss = (REAL)FASTNN_SELU_SCALE;
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL *z = Z + i * m, *y = Y + i * m;
        switch (act) {
        case ACT_LINEAR: FASTNN_ACT_LOOP(x); break;
        /* x < 0 ? 0 : x, not x > 0 ? x : 0: NaN propagates, as np.maximum and Keras */
        case ACT_RELU: FASTNN_ACT_LOOP(x < 0 ? 0 : x); break;
        case ACT_LEAKY_RELU: FASTNN_ACT_LOOP(x > 0 ? x : alpha * x); break;
        case ACT_ELU: FASTNN_ACT_LOOP(x > 0 ? x : alpha * M(expm1)(x)); break;
        case ACT_SELU: FASTNN_ACT_LOOP(x > 0 ? ss * x : sa * M(expm1)(x)); break;
        case ACT_SIGMOID: FASTNN_ACT_LOOP(FN(sigmoid1)(x)); break;
        case ACT_TANH: FASTNN_ACT_LOOP(M(tanh)(x)); break;
        case ACT_GELU:
            if (alpha != 0) {
                FASTNN_ACT_LOOP((REAL)0.5 * x * (1 + M(tanh)(GELU_C * (x + GELU_K * x * x * x))));
            } else {
                FASTNN_ACT_LOOP((REAL)0.5 * x * (1 + M(erf)(x * INV_SQRT2)));
            }
            break;
        case ACT_SWISH: FASTNN_ACT_LOOP(x * FN(sigmoid1)(x)); break;
        case ACT_SOFTPLUS: FASTNN_ACT_LOOP(FN(softplus1)(x)); break;
        case ACT_SOFTSIGN: FASTNN_ACT_LOOP(x / (1 + M(fabs)(x))); break;
        case ACT_HARD_SIGMOID:
            FASTNN_ACT_LOOP(x <= -3 ? 0 : (x >= 3 ? 1 : x / 6 + (REAL)0.5)); break;
        case ACT_MISH: FASTNN_ACT_LOOP(x * M(tanh)(FN(softplus1)(x))); break;
        case ACT_EXPONENTIAL: FASTNN_ACT_LOOP(M(exp)(x)); break;
        case ACT_SOFTMAX:
        case ACT_LOG_SOFTMAX: {
            REAL mx = -INFINITY;
            FASTNN_ACT_LOOP(x);
            for (ptrdiff_t j = 0; j < m; j++) mx = y[j] > mx ? y[j] : mx;
            REAL s = 0;
            if (act == ACT_SOFTMAX) {
                for (ptrdiff_t j = 0; j < m; j++) { REAL e = M(exp)(y[j] - mx); y[j] = e; s += e; }
                REAL inv = 1 / s;
                for (ptrdiff_t j = 0; j < m; j++) y[j] *= inv;
            } else {
                for (ptrdiff_t j = 0; j < m; j++) s += M(exp)(y[j] - mx);
                /* (y - max) - log(s), as the reference: y - (max + log(s)) rounds log(s) at
                 * the magnitude of max (ulp 0.008 at 1e5 in float32) into every output */
                REAL ls = M(log)(s);
                for (ptrdiff_t j = 0; j < m; j++) y[j] = (y[j] - mx) - ls;
            }
            break;
        }
        default: break;
        }
    }
}

void FN(bias_act_forward)(REAL *Z, const REAL *b, int act, double alpha, REAL *Y,
                          ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    FASTNN_SPLIT(n, n * m * fastnn_act_cost(act), n_threads,
                 FN(bias_act_rows)(Z, b, act, (REAL)alpha, Y, lo, hi, m));
}

static inline REAL FN(gelu_grad1)(REAL x, REAL approximate)
{
    if (approximate != 0) {
        REAL t = M(tanh)(GELU_C * (x + GELU_K * x * x * x));
        /* where tanh has saturated, 1 - t^2 is exactly 0 and the second term is 0: selected,
         * because in float32 1 + 3 k x^2 overflows for |x| > 5e19 and 0 * inf is NaN */
        REAL u = 1 - t * t;
        REAL d = (REAL)0.5 * x * u * GELU_C * (1 + 3 * GELU_K * x * x);
        return (REAL)0.5 * (1 + t) + (u == 0 ? (REAL)0 : d);
    }
    return (REAL)0.5 * (1 + M(erf)(x * INV_SQRT2)) + x * INV_SQRT_2PI * M(exp)((REAL)-0.5 * x * x);
}
static inline REAL FN(swish_grad1)(REAL x) { REAL s = FN(sigmoid1)(x); return s * (1 + x * (1 - s)); }
static inline REAL FN(mish_grad1)(REAL x)
{
    REAL t = M(tanh)(FN(softplus1)(x));
    return t + x * (1 - t * t) * FN(sigmoid1)(x);
}

/* Elementwise derivative loop over one row. g is dY, yv the output, x the pre-activation
 * (read only by the activations that cannot be differentiated from the output: gelu,
 * swish, mish). */
#define FASTNN_GRAD_LOOP(EXPR)                                                        \
    for (ptrdiff_t j = 0; j < m; j++) {                                               \
        REAL g = dy[j], yv = y[j], x = z[j]; (void)yv; (void)x;                       \
        dz[j] = (EXPR);                                                               \
    }

FASTNN_CLONES
static void FN(act_backward_rows)(const REAL *dY, const REAL *Z, const REAL *Y, int act, REAL alpha,
                                  REAL *dZ, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    const REAL sa = (REAL)(FASTNN_SELU_SCALE * FASTNN_SELU_ALPHA), ss = (REAL)FASTNN_SELU_SCALE;
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *dy = dY + i * m, *y = Y + i * m, *z = Z + i * m;
        REAL *dz = dZ + i * m;
        switch (act) {
        case ACT_LINEAR: FASTNN_GRAD_LOOP(g); break;
        case ACT_RELU: FASTNN_GRAD_LOOP(yv > 0 ? g : 0); break;
        case ACT_LEAKY_RELU: FASTNN_GRAD_LOOP(yv > 0 ? g : alpha * g); break;
        case ACT_ELU: FASTNN_GRAD_LOOP(yv > 0 ? g : g * (yv + alpha)); break;
        case ACT_SELU: FASTNN_GRAD_LOOP(yv > 0 ? ss * g : g * (yv + sa)); break;
        case ACT_SIGMOID: FASTNN_GRAD_LOOP(g * yv * (1 - yv)); break;
        case ACT_TANH: FASTNN_GRAD_LOOP(g * (1 - yv * yv)); break;
        case ACT_GELU: FASTNN_GRAD_LOOP(g * FN(gelu_grad1)(x, alpha)); break;
        case ACT_SWISH: FASTNN_GRAD_LOOP(g * FN(swish_grad1)(x)); break;
        case ACT_SOFTPLUS: FASTNN_GRAD_LOOP(g * -M(expm1)(-yv)); break;
        case ACT_SOFTSIGN: FASTNN_GRAD_LOOP(g * (1 - M(fabs)(yv)) * (1 - M(fabs)(yv))); break;
        case ACT_HARD_SIGMOID: FASTNN_GRAD_LOOP(yv > 0 && yv < 1 ? g / 6 : 0); break;
        case ACT_MISH: FASTNN_GRAD_LOOP(g * FN(mish_grad1)(x)); break;
        case ACT_EXPONENTIAL: FASTNN_GRAD_LOOP(g * yv); break;
        default: break;
        }
    }
}

FASTNN_CLONES
static void FN(softmax_backward_rows)(const REAL *dY, const REAL *Y, int act, REAL *dZ,
                                      ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *dy = dY + i * m, *y = Y + i * m;
        REAL *dz = dZ + i * m;
        REAL s = 0;
        if (act == ACT_SOFTMAX) {
            for (ptrdiff_t j = 0; j < m; j++) s += dy[j] * y[j];
            for (ptrdiff_t j = 0; j < m; j++) dz[j] = y[j] * (dy[j] - s);
        } else {
            for (ptrdiff_t j = 0; j < m; j++) s += dy[j];
            for (ptrdiff_t j = 0; j < m; j++) dz[j] = dy[j] - M(exp)(y[j]) * s;
        }
    }
}

void FN(act_backward)(const REAL *dY, const REAL *Z, const REAL *Y, int act, double alpha,
                      REAL *dZ, REAL *db, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    /* Rows stream through memory in order (a column split strided it: 3-5x slower); the
     * bias gradient is a second, cache-warm pass with a fixed-order reduction. */
    if (!Z) Z = Y;
    if (act == ACT_SOFTMAX || act == ACT_LOG_SOFTMAX) {
        FASTNN_SPLIT(n, n * m * fastnn_act_cost(act), n_threads,
                     FN(softmax_backward_rows)(dY, Y, act, dZ, lo, hi, m));
    } else {
        FASTNN_SPLIT(n, n * m * fastnn_act_cost(act), n_threads,
                     FN(act_backward_rows)(dY, Z, Y, act, (REAL)alpha, dZ, lo, hi, m));
    }
    if (db) PUBLIC(col_sum)(dZ, db, n, m, n_threads);
}

FASTNN_CLONES
static void FN(prelu_rows)(const REAL *X, const REAL *a, REAL *Y, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *x = X + i * m; REAL *y = Y + i * m;
        for (ptrdiff_t j = 0; j < m; j++) y[j] = x[j] > 0 ? x[j] : a[j] * x[j];
    }
}

void FN(prelu_forward)(const REAL *X, const REAL *a, REAL *Y, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    FASTNN_SPLIT(n, n * m, n_threads, FN(prelu_rows)(X, a, Y, lo, hi, m));
}

FASTNN_CLONES
static void FN(prelu_backward_block)(const REAL *dY, const REAL *X, const REAL *a, REAL *dX, REAL *da,
                                     ptrdiff_t n, ptrdiff_t m, ptrdiff_t c0, ptrdiff_t c1)
{
    for (ptrdiff_t j = c0; j < c1; j++) da[j] = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const REAL *dy = dY + i * m, *x = X + i * m;
        REAL *dx = dX + i * m;
        for (ptrdiff_t j = c0; j < c1; j++) {
            REAL g = dy[j], xv = x[j];
            da[j] += xv > 0 ? 0 : g * xv;
            dx[j] = xv > 0 ? g : a[j] * g;
        }
    }
}

void FN(prelu_backward)(const REAL *dY, const REAL *X, const REAL *a, REAL *dX, REAL *da,
                        ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    FASTNN_SPLIT(m, n * m, n_threads, FN(prelu_backward_block)(dY, X, a, dX, da, n, m, lo, hi));
}

static void FN(maxout_rows)(const REAL *X, REAL *Y, int32_t *arg, ptrdiff_t lo, ptrdiff_t hi,
                            ptrdiff_t m, ptrdiff_t k)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        for (ptrdiff_t j = 0; j < m; j++) {
            const REAL *x = X + (i * m + j) * k;
            int32_t best = 0;
            REAL v = x[0];
            /* NumPy's max / argmax: the first NaN wins (!(x <= v) is x > v or x NaN) */
            for (ptrdiff_t p = 1; p < k && v == v; p++)
                if (!(x[p] <= v)) { v = x[p]; best = (int32_t)p; }
            Y[i * m + j] = v;
            arg[i * m + j] = best;
        }
    }
}

void FN(maxout_forward)(const REAL *X, REAL *Y, int32_t *arg, ptrdiff_t n, ptrdiff_t m, ptrdiff_t k,
                        int n_threads)
{
    FASTNN_SPLIT(n, n * m * k, n_threads, FN(maxout_rows)(X, Y, arg, lo, hi, m, k));
}

static void FN(maxout_back_rows)(const REAL *dY, const int32_t *arg, REAL *dX, ptrdiff_t lo,
                                 ptrdiff_t hi, ptrdiff_t m, ptrdiff_t k)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        for (ptrdiff_t j = 0; j < m; j++) {
            REAL *dx = dX + (i * m + j) * k;
            for (ptrdiff_t p = 0; p < k; p++) dx[p] = 0;
            dx[arg[i * m + j]] = dY[i * m + j];
        }
    }
}

void FN(maxout_backward)(const REAL *dY, const int32_t *arg, REAL *dX, ptrdiff_t n, ptrdiff_t m,
                         ptrdiff_t k, int n_threads)
{
    FASTNN_SPLIT(n, n * m * k, n_threads, FN(maxout_back_rows)(dY, arg, dX, lo, hi, m, k));
}

#undef FASTNN_ACT_LOOP
#undef FASTNN_GRAD_LOOP
#undef GELU_C
#undef GELU_K
#undef INV_SQRT2
#undef INV_SQRT_2PI
#endif /* template body */
