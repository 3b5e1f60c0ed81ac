/* Optimizer updates: one in-place pass over a parameter, its gradient and its state.
 * Each follows Keras 3's update rule step for step (see the Python class docstrings and
 * fastnn/reference/optimizers.py, the specification).
 *
 * Every kernel also does, per element and in this order (Keras 3's Optimizer.apply order):
 *   g <- clip(gscale * g, -clipvalue, clipvalue)   gradient clipping; the norm-based scale
 *                                                 (clipnorm / global_clipnorm) is computed by
 *                                                 the caller with sum_squares; gscale = 1 and
 *                                                 clipvalue = inf are exact no-ops
 *   p <- p - p * decay                            decoupled weight decay, decay = wd * lr
 *   then the optimizer's own rule.
 * Decaying state values (momenta, second moments) below the smallest normal number are
 * stored as 0 (see FLUSH below). The gradient buffer is never written. NaN in g propagates to p and to the state (the
 * clip and max below keep NaN, as NumPy/Keras do): nothing is silently replaced.
 * Each element's result depends only on its own inputs, so any thread count gives the
 * same bits. Step-dependent scalars (bias corrections) are computed once in double.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

/* No fused multiply-add contraction here: every operation rounds exactly as the NumPy
 * reference's does, so C and reference trajectories agree to the last bit (or nearly)
 * over thousands of steps. The loops are memory-bound, so this costs nothing. */
#pragma GCC optimize("fp-contract=off")

#include <float.h>
#include <math.h>
#include "fastnn.h"
#include "parallel.h"

/* state values below REAL_MIN_NORMAL * this are stored as 0 (see FLUSH) */
#define FASTNN_TINY_STATE_SCALE 16777216.0

#define FASTNN_TEMPLATE "optimizers.c"
#include "template.h"

#else /* template body */

/* clip keeping NaN (a comparison with NaN is false, so NaN falls through) */
static inline REAL FN(clip_keep_nan)(REAL x, REAL c)
{
    return x > c ? c : (x < -c ? -c : x);
}

static inline REAL FN(flush_tiny)(REAL x)
{
    /* NaN compares false: kept */
    return M(fabs)(x) < (REAL)REAL_MIN_NORMAL * (REAL)FASTNN_TINY_STATE_SCALE ? (REAL)0 : x;
}

/* max that propagates NaN from either side, like numpy.maximum */
static inline REAL FN(max_nan)(REAL a, REAL b)
{
    return ((a > b) | (a != a)) ? a : b;  /* '|', not '||': no branch, so loops vectorize */
}

/* the gradient element after clipping, and the parameter after weight decay */
#define GRAD(i) FN(clip_keep_nan)(gs * g[i], cv)
/* decay = 0 gives p - p * 0 = p exactly for every finite p: no branch, which keeps the
 * longer loops (amsgrad) within what GCC if-converts and vectorizes */
#define DECAYED(i) (p[i] - p[i] * dec)
/* Decaying state values below 2^24 times the smallest normal number (float32: 2e-31) are
 * stored as 0. Without this, a state whose gradient is always exactly zero (dead ReLU units,
 * constant input pixels) decays into the subnormal range and stays there: 0.9 * (smallest
 * subnormal) rounds back to itself. And well before that, products of a tiny state with the
 * step's scalars (m * alpha, (0 - m) * (1 - beta_1)) are subnormal: with the flush at the
 * smallest normal number only, Adam on an MLP with many dead units still took 6 ms instead
 * of 0.2 ms a step (measured). 2^24 leaves room for factors down to 6e-8. Subnormal
 * arithmetic is 10-100x slower on x86. The NumPy reference does the same flush, so results
 * agree; the updates these states would make are below 1e-30 relative.
 * (Not flush-to-zero in MXCSR: FTZ turns Keras' m + (0 - m) * (1 - beta_1) into a fixed
 * point at a *normal* value, since the product underflows to 0; and it would make C and
 * reference differ. The cost left is a few subnormal intermediates per element, once, in
 * the steps before its state is flushed.) */
#define FLUSH(x) FN(flush_tiny)(x)

/* ---- SGD ------------------------------------------------------------------------- */
FASTNN_CLONES
static void FN(sgd_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict v, REAL lr,
                          REAL mom, int nesterov, REAL dec, REAL gs, REAL cv,
                          ptrdiff_t lo, ptrdiff_t hi)
{
    if (!v) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL gi = GRAD(i);
            p[i] = DECAYED(i) - gi * lr;
        }
    } else if (nesterov) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL gi = GRAD(i);
            REAL m = FLUSH(v[i] * mom - gi * lr);
            v[i] = m;
            p[i] = DECAYED(i) + (m * mom - gi * lr);
        }
    } else {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL gi = GRAD(i);
            REAL m = FLUSH(v[i] * mom - gi * lr);
            v[i] = m;
            p[i] = DECAYED(i) + m;
        }
    }
}

void FN(sgd_update)(REAL *p, const REAL *g, REAL *v, double lr, double momentum, int nesterov,
                    double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(sgd_range)(p, g, v, (REAL)lr, (REAL)momentum, nesterov, (REAL)decay,
                               (REAL)gscale, (REAL)clipvalue, lo, hi));
}

/* ---- Adam / AdamW (AdamW is Adam with decay != 0) --------------------------------- */
FASTNN_CLONES
static void FN(adam_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict m,
                           REAL *restrict v, REAL *restrict vhat, REAL alpha, REAL one_b1,
                           REAL one_b2, REAL eps, REAL dec, REAL gs, REAL cv,
                           ptrdiff_t lo, ptrdiff_t hi)
{
    if (!vhat) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL gi = GRAD(i);
            REAL mi = FLUSH(m[i] + (gi - m[i]) * one_b1);
            REAL vi = FLUSH(v[i] + (gi * gi - v[i]) * one_b2);
            m[i] = mi;
            v[i] = vi;
            p[i] = DECAYED(i) - (mi * alpha) / (M(sqrt)(vi) + eps);
        }
    } else {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL gi = GRAD(i);
            REAL mi = FLUSH(m[i] + (gi - m[i]) * one_b1);
            REAL vi = FLUSH(v[i] + (gi * gi - v[i]) * one_b2);
            REAL vh = FN(max_nan)(vhat[i], vi);
            m[i] = mi;
            v[i] = vi;
            vhat[i] = vh;
            p[i] = DECAYED(i) - (mi * alpha) / (M(sqrt)(vh) + eps);
        }
    }
}

void FN(adam_update)(REAL *p, const REAL *g, REAL *m, REAL *v, REAL *vhat, double lr,
                     double beta_1, double beta_2, double epsilon, int64_t step, double decay,
                     double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    double t = (double)step;
    double alpha = lr * sqrt(1.0 - pow(beta_2, t)) / (1.0 - pow(beta_1, t));
    FASTNN_SPLIT(n, n, n_threads,
                 FN(adam_range)(p, g, m, v, vhat, (REAL)alpha, (REAL)(1.0 - beta_1),
                                (REAL)(1.0 - beta_2), (REAL)epsilon, (REAL)decay, (REAL)gscale,
                                (REAL)clipvalue, lo, hi));
}

/* ---- Adamax ---------------------------------------------------------------------- */
FASTNN_CLONES
static void FN(adamax_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict m,
                             REAL *restrict u, REAL lr, REAL one_b1, REAL b2, REAL bc1,
                             REAL eps, REAL dec, REAL gs, REAL cv, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        REAL mi = FLUSH(m[i] + (gi - m[i]) * one_b1);
        REAL ui = FLUSH(FN(max_nan)(u[i] * b2, M(fabs)(gi)));
        m[i] = mi;
        u[i] = ui;
        p[i] = DECAYED(i) - (lr * mi) / (bc1 * (ui + eps));
    }
}

void FN(adamax_update)(REAL *p, const REAL *g, REAL *m, REAL *u, double lr, double beta_1,
                       double beta_2, double epsilon, int64_t step, double decay, double gscale,
                       double clipvalue, ptrdiff_t n, int n_threads)
{
    double bc1 = 1.0 - pow(beta_1, (double)step);
    FASTNN_SPLIT(n, n, n_threads,
                 FN(adamax_range)(p, g, m, u, (REAL)lr, (REAL)(1.0 - beta_1), (REAL)beta_2,
                                  (REAL)bc1, (REAL)epsilon, (REAL)decay, (REAL)gscale,
                                  (REAL)clipvalue, lo, hi));
}

/* ---- Nadam ----------------------------------------------------------------------- */
FASTNN_CLONES
static void FN(nadam_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict m,
                            REAL *restrict v, REAL lr, REAL one_b1, REAL one_b2, REAL c_m,
                            REAL c_g, REAL bc2, REAL eps, REAL dec, REAL gs, REAL cv,
                            ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        REAL mi = FLUSH(m[i] + (gi - m[i]) * one_b1);
        REAL vi = FLUSH(v[i] + (gi * gi - v[i]) * one_b2);
        m[i] = mi;
        v[i] = vi;
        REAL m_hat = mi * c_m + gi * c_g;
        p[i] = DECAYED(i) - (m_hat * lr) / (M(sqrt)(vi / bc2) + eps);
    }
}

void FN(nadam_update)(REAL *p, const REAL *g, REAL *m, REAL *v, double lr, double beta_1,
                      double beta_2, double epsilon, int64_t step, double u_product,
                      double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    /* u_product is the momentum-schedule product through this step, u_1 * ... * u_t */
    double t = (double)step;
    double u_t = beta_1 * (1.0 - 0.5 * pow(0.96, t));
    double u_t1 = beta_1 * (1.0 - 0.5 * pow(0.96, t + 1.0));
    double c_m = u_t1 / (1.0 - u_product * u_t1);
    double c_g = (1.0 - u_t) / (1.0 - u_product);
    double bc2 = 1.0 - pow(beta_2, t);
    FASTNN_SPLIT(n, n, n_threads,
                 FN(nadam_range)(p, g, m, v, (REAL)lr, (REAL)(1.0 - beta_1), (REAL)(1.0 - beta_2),
                                 (REAL)c_m, (REAL)c_g, (REAL)bc2, (REAL)epsilon, (REAL)decay,
                                 (REAL)gscale, (REAL)clipvalue, lo, hi));
}

/* ---- RMSprop --------------------------------------------------------------------- */
/* One loop per (centered, momentum) combination: a branch inside the loop would keep GCC
 * from vectorizing it. */
#define RMSPROP_LOOP(DEN, MOM)                                                         \
    for (ptrdiff_t i = lo; i < hi; i++) {                                              \
        REAL gi = GRAD(i);                                                             \
        REAL vi = FLUSH(rho * v[i] + one_rho * (gi * gi));                             \
        v[i] = vi;                                                                     \
        REAL den;                                                                      \
        DEN;                                                                           \
        REAL inc = (lr * gi) / M(sqrt)(den);                                           \
        MOM;                                                                           \
        p[i] = DECAYED(i) - inc;                                                       \
    }
/* ai * ai is 0 whether or not a subnormal ai is flushed, so den uses ai unflushed: the
 * same bits, and one select fewer keeps the loop vectorized */
#define RMS_CENTERED REAL ai = rho * avg[i] + one_rho * gi; avg[i] = FLUSH(ai); den = vi - ai * ai + eps
#define RMS_PLAIN den = vi + eps
#define RMS_MOMENTUM inc = FLUSH(momentum * mom[i] + inc); mom[i] = inc
#define RMS_NO_MOMENTUM (void)0

FASTNN_CLONES
static void FN(rmsprop_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict v,
                              REAL *restrict mom, REAL *restrict avg, REAL lr, REAL rho,
                              REAL one_rho, REAL momentum, REAL eps, REAL dec, REAL gs, REAL cv,
                              ptrdiff_t lo, ptrdiff_t hi)
{
    if (avg && mom) {
        RMSPROP_LOOP(RMS_CENTERED, RMS_MOMENTUM)
    } else if (avg) {
        RMSPROP_LOOP(RMS_CENTERED, RMS_NO_MOMENTUM)
    } else if (mom) {
        RMSPROP_LOOP(RMS_PLAIN, RMS_MOMENTUM)
    } else {
        RMSPROP_LOOP(RMS_PLAIN, RMS_NO_MOMENTUM)
    }
}
#undef RMSPROP_LOOP
#undef RMS_CENTERED
#undef RMS_PLAIN
#undef RMS_MOMENTUM
#undef RMS_NO_MOMENTUM

void FN(rmsprop_update)(REAL *p, const REAL *g, REAL *v, REAL *mom, REAL *avg, double lr,
                        double rho, double momentum, double epsilon, double decay, double gscale,
                        double clipvalue, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(rmsprop_range)(p, g, v, mom, avg, (REAL)lr, (REAL)rho, (REAL)(1.0 - rho),
                                   (REAL)momentum, (REAL)epsilon, (REAL)decay, (REAL)gscale,
                                   (REAL)clipvalue, lo, hi));
}

/* ---- Adagrad --------------------------------------------------------------------- */
FASTNN_CLONES
static void FN(adagrad_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict acc,
                              REAL lr, REAL eps, REAL dec, REAL gs, REAL cv,
                              ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        REAL ai = acc[i] + gi * gi;
        acc[i] = ai;
        p[i] = DECAYED(i) - (lr * gi) / M(sqrt)(ai + eps);
    }
}

void FN(adagrad_update)(REAL *p, const REAL *g, REAL *acc, double lr, double epsilon,
                        double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(adagrad_range)(p, g, acc, (REAL)lr, (REAL)epsilon, (REAL)decay,
                                   (REAL)gscale, (REAL)clipvalue, lo, hi));
}

#undef GRAD
#undef DECAYED
#undef FLUSH

#endif /* template body */
