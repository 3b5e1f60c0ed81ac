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
#include <stdlib.h>
#include "parallel.h"

/* state values below REAL_MIN_NORMAL * this are stored as 0 (see FLUSH) */
#define FASTNN_TINY_STATE_SCALE 16777216.0

/* Nadam's momentum schedule, one formula for the update below and for the compiled epoch's
 * running product (epoch.c): Python's `beta_1 * (1.0 - 0.5 * 0.96 ** t)` calls the same
 * libm pow on the same doubles, so the bits are Python's. A fused multiply-add (a
 * -march=native build) changes nothing: 0.5 * pow(...) is exact, and no product is added. */
double nadam_u(double beta_1, int64_t t)
{
    return beta_1 * (1.0 - 0.5 * pow(0.96, (double)t));
}

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
    double u_t = nadam_u(beta_1, step), u_t1 = nadam_u(beta_1, step + 1);
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

/* ---- Lion ------------------------------------------------------------------------ */
/* sign keeping NaN, as numpy.sign / Keras' ops.sign */
static inline REAL FN(sign_keep_nan)(REAL x)
{
    return x != x ? x : (REAL)((x > 0) - (x < 0));
}

FASTNN_CLONES
static void FN(lion_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict m, REAL lr,
                           REAL b1, REAL one_b1, REAL b2, REAL one_b2, REAL dec, REAL gs,
                           REAL cv, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        REAL c = m[i] * b1 + gi * one_b1;
        p[i] = DECAYED(i) - lr * FN(sign_keep_nan)(c);
        m[i] = FLUSH(m[i] * b2 + gi * one_b2);
    }
}

void FN(lion_update)(REAL *p, const REAL *g, REAL *m, double lr, double beta_1, double beta_2,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(lion_range)(p, g, m, (REAL)lr, (REAL)beta_1, (REAL)(1.0 - beta_1),
                                (REAL)beta_2, (REAL)(1.0 - beta_2), (REAL)decay, (REAL)gscale,
                                (REAL)clipvalue, lo, hi));
}

/* ---- Adadelta -------------------------------------------------------------------- */
FASTNN_CLONES
static void FN(adadelta_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict ag,
                               REAL *restrict ad, REAL lr, REAL rho, REAL one_rho, REAL eps,
                               REAL dec, REAL gs, REAL cv, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        REAL agi = FLUSH(rho * ag[i] + one_rho * (gi * gi));
        REAL delta = -((M(sqrt)(ad[i] + eps) * gi) / M(sqrt)(agi + eps));
        ag[i] = agi;
        ad[i] = FLUSH(rho * ad[i] + one_rho * (delta * delta));
        p[i] = DECAYED(i) + lr * delta;
    }
}

void FN(adadelta_update)(REAL *p, const REAL *g, REAL *acc_grad, REAL *acc_delta, double lr,
                         double rho, double epsilon, double decay, double gscale,
                         double clipvalue, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(adadelta_range)(p, g, acc_grad, acc_delta, (REAL)lr, (REAL)rho,
                                    (REAL)(1.0 - rho), (REAL)epsilon, (REAL)decay, (REAL)gscale,
                                    (REAL)clipvalue, lo, hi));
}

/* ---- FTRL ------------------------------------------------------------------------ */
/* One loop per power: n^0.5 is sqrt (the default learning_rate_power = -0.5: exact and
 * fast), n^0 is 1, anything else pow. */
#define FTRL_LOOP(POW)                                                                  \
    for (ptrdiff_t i = lo; i < hi; i++) {                                               \
        REAL gi = GRAD(i);                                                              \
        REAL pi = DECAYED(i);                                                           \
        REAL a = acc[i];                                                                \
        REAL na = a + gi * gi;                                                          \
        REAL na_p = POW(na), a_p = POW(a);                                              \
        REAL lin = lin_[i] + ((gi + shrink2 * pi) - ((na_p - a_p) / lr) * pi);          \
        REAL quad = na_p / lr + l2x2;                                                   \
        lin_[i] = lin;                                                                  \
        acc[i] = na;                                                                    \
        p[i] = (FN(clip_keep_nan)(lin, l1) - lin) / quad;                               \
    }
#define FTRL_SQRT(x) M(sqrt)(x)
#define FTRL_ONE(x) ((void)(x), (REAL)1)
#define FTRL_POW(x) M(pow)(x, power)

FASTNN_CLONES
static void FN(ftrl_range)(REAL *restrict p, const REAL *restrict g, REAL *restrict acc,
                           REAL *restrict lin_, REAL lr, REAL power, int mode, REAL l1,
                           REAL l2x2, REAL shrink2, REAL dec, REAL gs, REAL cv,
                           ptrdiff_t lo, ptrdiff_t hi)
{
    if (mode == 1) {
        FTRL_LOOP(FTRL_SQRT)
    } else if (mode == 2) {
        FTRL_LOOP(FTRL_ONE)
    } else {
        FTRL_LOOP(FTRL_POW)
    }
}
#undef FTRL_LOOP
#undef FTRL_SQRT
#undef FTRL_ONE
#undef FTRL_POW

void FN(ftrl_update)(REAL *p, const REAL *g, REAL *acc, REAL *linear, double lr,
                     double lr_power, double l1, double l2, double l2_shrinkage, double beta,
                     double decay, double gscale, double clipvalue, ptrdiff_t n, int n_threads)
{
    int mode = lr_power == -0.5 ? 1 : (lr_power == 0.0 ? 2 : 0);
    /* Keras: quadratic = n^-lr_power / lr + 2 * (l2 + beta / (2 lr)) */
    double l2x2 = 2.0 * (l2 + beta / (2.0 * lr));
    FASTNN_SPLIT(n, n, n_threads,
                 FN(ftrl_range)(p, g, acc, linear, (REAL)lr, (REAL)(-lr_power), mode, (REAL)l1,
                                (REAL)l2x2, (REAL)(2.0 * l2_shrinkage), (REAL)decay,
                                (REAL)gscale, (REAL)clipvalue, lo, hi));
}

/* ---- Lamb ------------------------------------------------------------------------ */
/* Lamb scales each variable's Adam-like step by ||w|| / ||step||: two passes. The first
 * updates m, v and the decayed p and sums w^2 and step^2 over fixed blocks (in double,
 * the same partial sums for any thread count); the second recomputes the step from the
 * stored m, v (the same bits) and applies it. */
#define OPT_BLOCK 4096

/* out = the sum over i in [lo, hi) of the double EXPR (written with i), in 8 interleaved
 * partial sums added in a fixed order: the loop vectorizes without reassociating anything,
 * and the order depends on [lo, hi) only (the same bits for any thread count). */
#define SUM8(lo_, hi_, EXPR, out)                                                      \
    do {                                                                               \
        double a_[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                       \
        ptrdiff_t i_ = (lo_);                                                          \
        for (; i_ + 8 <= (hi_); i_ += 8)                                               \
            for (int k_ = 0; k_ < 8; k_++) {                                           \
                ptrdiff_t i = i_ + k_;                                                 \
                a_[k_] += (EXPR);                                                      \
            }                                                                          \
        double s_ = ((a_[0] + a_[1]) + (a_[2] + a_[3])) + ((a_[4] + a_[5]) + (a_[6] + a_[7])); \
        for (; i_ < (hi_); i_++) {                                                     \
            ptrdiff_t i = i_;                                                          \
            s_ += (EXPR);                                                              \
        }                                                                              \
        out = s_;                                                                      \
    } while (0)
#define SQ(x) ((double)(x) * (double)(x))

static inline REAL FN(lamb_step)(REAL mi, REAL vi, REAL bc1, REAL bc2, REAL eps)
{
    return (mi / bc1) / (M(sqrt)(vi / bc2) + eps);
}

FASTNN_CLONES
static void FN(lamb_pass1)(REAL *restrict p, const REAL *restrict g, REAL *restrict m,
                           REAL *restrict v, REAL one_b1, REAL one_b2, REAL bc1, REAL bc2,
                           REAL eps, REAL dec, REAL gs, REAL cv, ptrdiff_t lo, ptrdiff_t hi,
                           double *sw, double *su)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        p[i] = DECAYED(i);
        m[i] = FLUSH(m[i] + (gi - m[i]) * one_b1);
        v[i] = FLUSH(v[i] + (gi * gi - v[i]) * one_b2);
    }
    /* the block is in cache: the sums read it again, the step recomputed from m, v */
    SUM8(lo, hi, SQ(p[i]), *sw);
    SUM8(lo, hi, SQ(FN(lamb_step)(m[i], v[i], bc1, bc2, eps)), *su);
}

FASTNN_CLONES
static void FN(lamb_pass2)(REAL *restrict p, const REAL *restrict m, const REAL *restrict v,
                           REAL scale, REAL bc1, REAL bc2, REAL eps, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++)
        p[i] = p[i] - scale * FN(lamb_step)(m[i], v[i], bc1, bc2, eps);
}

int FN(lamb_update)(REAL *p, const REAL *g, REAL *m, REAL *v, double lr, double beta_1,
                    double beta_2, double epsilon, int64_t step, double decay, double gscale,
                    double clipvalue, ptrdiff_t n, int n_threads)
{
    double t = (double)step;
    REAL bc1 = (REAL)(1.0 - pow(beta_1, t)), bc2 = (REAL)(1.0 - pow(beta_2, t));
    REAL one_b1 = (REAL)(1.0 - beta_1), one_b2 = (REAL)(1.0 - beta_2), eps = (REAL)epsilon;
    REAL dec = (REAL)decay, gs = (REAL)gscale, cv = (REAL)clipvalue;
    ptrdiff_t nb = (n + OPT_BLOCK - 1) / OPT_BLOCK;
    double stack[2 * 64];
    double *part = nb <= 64 ? stack : (double *)malloc(sizeof(double) * 2 * nb);
    if (!part)
        return -1;
    FASTNN_SPLIT(nb, n, n_threads,
        for (ptrdiff_t b = lo; b < hi; b++) {
            ptrdiff_t e = (b + 1) * OPT_BLOCK < n ? (b + 1) * OPT_BLOCK : n;
            FN(lamb_pass1)(p, g, m, v, one_b1, one_b2, bc1, bc2, eps, dec, gs, cv,
                           b * OPT_BLOCK, e, &part[2 * b], &part[2 * b + 1]);
        });
    double sw = 0.0, su = 0.0;
    for (ptrdiff_t b = 0; b < nb; b++) {
        sw += part[2 * b];
        su += part[2 * b + 1];
    }
    if (part != stack)
        free(part);
    double w_norm = sqrt(sw), g_norm = sqrt(su);
    /* Keras: ratio = w_norm / g_norm if both > 0, else 1 (a NaN norm compares false: 1) */
    REAL ratio = (w_norm > 0 && g_norm > 0) ? (REAL)(w_norm / g_norm) : (REAL)1;
    REAL scale = ratio * (REAL)lr;
    FASTNN_SPLIT(n, n, n_threads, FN(lamb_pass2)(p, m, v, scale, bc1, bc2, eps, lo, hi));
    return 0;
}

/* ---- Adafactor ------------------------------------------------------------------- */
/* Keras 3's Adafactor on n_mats matrices of rows x cols (a variable of rank >= 2: its last
 * two axes are factored, the leading ones are a batch of matrices); r is (n_mats, rows), c
 * (n_mats, cols). With v != NULL the variable is not factored (rank < 2: v has its size,
 * n_mats * rows * cols elements, r and c unused). rms(p) and rms(u) are over the whole
 * variable. Row sums run in parallel over rows, column sums over columns, each summed in
 * a fixed order in double (the same bits for any thread count); the per-element u is
 * recomputed in each pass from the stored statistics (the same bits each time). */
static inline REAL FN(max_keep_nan)(REAL a, REAL b)  /* a if a > b or a is NaN */
{
    return ((a > b) | (a != a)) ? a : b;
}

FASTNN_CLONES
static void FN(adafactor_plain_pass1)(REAL *restrict p, const REAL *restrict g,
                                      REAL *restrict v, REAL b2t, REAL one_b2t, REAL eps1,
                                      REAL dec, REAL gs, REAL cv, ptrdiff_t lo, ptrdiff_t hi,
                                      double *sw, double *su)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        p[i] = DECAYED(i);
        v[i] = b2t * v[i] + one_b2t * (gi * gi + eps1);
    }
    SUM8(lo, hi, SQ(p[i]), *sw);
    SUM8(lo, hi, SQ(GRAD(i) / M(sqrt)(v[i])), *su);
}

FASTNN_CLONES
static void FN(adafactor_plain_pass2)(REAL *restrict p, const REAL *restrict g,
                                      const REAL *restrict v, REAL alpha, REAL den, REAL gs,
                                      REAL cv, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL gi = GRAD(i);
        p[i] = p[i] - alpha * ((gi / M(sqrt)(v[i])) / den);
    }
}

/* rows [lo, hi) of all matrices (row index over n_mats * rows): decay p, new r, row w^2 */
FASTNN_CLONES
static void FN(adafactor_rows)(REAL *restrict p, const REAL *restrict g, REAL *restrict r,
                               ptrdiff_t cols, REAL b2t, REAL one_b2t, REAL eps1, REAL dec,
                               REAL gs, REAL cv, double *restrict row_w2,
                               ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t row = lo; row < hi; row++) {
        double sg, w2;
        ptrdiff_t base = row * cols, end = base + cols;
        for (ptrdiff_t i = base; i < end; i++)
            p[i] = DECAYED(i);
        SUM8(base, end, (double)(GRAD(i) * GRAD(i) + eps1), sg);
        SUM8(base, end, SQ(p[i]), w2);
        r[row] = b2t * r[row] + one_b2t * (REAL)(sg / (double)cols);
        row_w2[row] = w2;
    }
}

/* columns [lo, hi) of every matrix: new c (column means of g^2 + eps1, rows summed in order) */
FASTNN_CLONES
static void FN(adafactor_cols)(const REAL *restrict g, REAL *restrict c, ptrdiff_t n_mats,
                               ptrdiff_t rows, ptrdiff_t cols, REAL b2t, REAL one_b2t,
                               REAL eps1, REAL gs, REAL cv, double *restrict col_sum,
                               ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t k = 0; k < n_mats; k++) {
        double *cs = col_sum + k * cols;
        for (ptrdiff_t j = lo; j < hi; j++)
            cs[j] = 0.0;
        for (ptrdiff_t row = 0; row < rows; row++) {
            ptrdiff_t base = (k * rows + row) * cols;
            for (ptrdiff_t j = lo; j < hi; j++) {
                REAL gi = GRAD(base + j);
                cs[j] += (double)(gi * gi + eps1);
            }
        }
        for (ptrdiff_t j = lo; j < hi; j++)
            c[k * cols + j] = b2t * c[k * cols + j] + one_b2t * (REAL)(cs[j] / (double)rows);
    }
}

/* rows [lo, hi): row sums of u^2 (apply == 0), or p -= alpha * (u / den) (apply == 1) */
FASTNN_CLONES
static void FN(adafactor_apply)(REAL *restrict p, const REAL *restrict g, const REAL *restrict r,
                                const REAL *restrict c, const REAL *restrict r_mean,
                                ptrdiff_t rows, ptrdiff_t cols, REAL alpha, REAL den, REAL gs,
                                REAL cv, int apply, double *restrict row_u2,
                                ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t row = lo; row < hi; row++) {
        ptrdiff_t k = row / rows;
        REAL f = r[row] / r_mean[k];
        const REAL *ck = c + k * cols;
        ptrdiff_t base = row * cols;
        if (apply) {
            for (ptrdiff_t j = 0; j < cols; j++) {
                REAL gi = GRAD(base + j);
                p[base + j] = p[base + j] - alpha * ((gi / M(sqrt)(f * ck[j])) / den);
            }
        } else {
            SUM8(0, cols, SQ(GRAD(base + i) / M(sqrt)(f * ck[i])), row_u2[row]);
        }
    }
}

int FN(adafactor_update)(REAL *p, const REAL *g, REAL *r, REAL *c, REAL *v, double lr,
                         double beta_2_decay, double epsilon_1, double epsilon_2,
                         double clip_threshold, int64_t step, double decay, double gscale,
                         double clipvalue, ptrdiff_t n_mats, ptrdiff_t rows, ptrdiff_t cols,
                         int n_threads)
{
    double t = (double)step;
    double rho = fmin(lr, 1.0 / sqrt(t));  /* Keras: rho_t = min(lr, 1 / sqrt(t)) */
    double b2t_d = 1.0 - pow(t, beta_2_decay);
    REAL b2t = (REAL)b2t_d, one_b2t = (REAL)(1.0 - b2t_d), eps1 = (REAL)epsilon_1;
    REAL dec = (REAL)decay, gs = (REAL)gscale, cv = (REAL)clipvalue;
    ptrdiff_t n = n_mats * rows * cols, nrows = n_mats * rows;
    double sw = 0.0, su = 0.0;
    if (v) {
        ptrdiff_t nb = (n + OPT_BLOCK - 1) / OPT_BLOCK;
        double stack[2 * 64];
        double *part = nb <= 64 ? stack : (double *)malloc(sizeof(double) * 2 * nb);
        if (!part)
            return -1;
        FASTNN_SPLIT(nb, n, n_threads,
            for (ptrdiff_t b = lo; b < hi; b++) {
                ptrdiff_t e = (b + 1) * OPT_BLOCK < n ? (b + 1) * OPT_BLOCK : n;
                FN(adafactor_plain_pass1)(p, g, v, b2t, one_b2t, eps1, dec, gs, cv,
                                          b * OPT_BLOCK, e, &part[2 * b], &part[2 * b + 1]);
            });
        for (ptrdiff_t b = 0; b < nb; b++) {
            sw += part[2 * b];
            su += part[2 * b + 1];
        }
        if (part != stack)
            free(part);
    } else {
        /* scratch: per-row sums (nrows), column sums (n_mats * cols), row means of r */
        double *scratch = (double *)malloc(sizeof(double) * (nrows + n_mats * cols));
        REAL *r_mean = (REAL *)malloc(sizeof(REAL) * n_mats);
        if (!scratch || !r_mean) {
            free(scratch);
            free(r_mean);
            return -1;
        }
        double *row_part = scratch, *col_sum = scratch + nrows;
        FASTNN_SPLIT(nrows, n, n_threads,
                     FN(adafactor_rows)(p, g, r, cols, b2t, one_b2t, eps1, dec, gs, cv,
                                        row_part, lo, hi));
        for (ptrdiff_t i = 0; i < nrows; i++)
            sw += row_part[i];
        FASTNN_SPLIT(cols, n, n_threads,
                     FN(adafactor_cols)(g, c, n_mats, rows, cols, b2t, one_b2t, eps1, gs, cv,
                                        col_sum, lo, hi));
        for (ptrdiff_t k = 0; k < n_mats; k++) {
            double s = 0.0;
            for (ptrdiff_t i = 0; i < rows; i++)
                s += (double)r[k * rows + i];
            r_mean[k] = (REAL)(s / (double)rows);
        }
        FASTNN_SPLIT(nrows, n, n_threads,
                     FN(adafactor_apply)(p, g, r, c, r_mean, rows, cols, 0, 1, gs, cv, 0,
                                         row_part, lo, hi));
        for (ptrdiff_t i = 0; i < nrows; i++)
            su += row_part[i];
        free(scratch);
        /* the final pass below needs r_mean: freed after it */
        double rms_p = sqrt(sw / (double)n), rms_u = sqrt(su / (double)n);
        REAL alpha = (REAL)FN(max_keep_nan)((REAL)rms_p, (REAL)epsilon_2) * (REAL)rho;
        REAL den = FN(max_keep_nan)((REAL)(rms_u / clip_threshold), (REAL)1);
        FASTNN_SPLIT(nrows, n, n_threads,
                     FN(adafactor_apply)(p, g, r, c, r_mean, rows, cols, alpha, den, gs, cv, 1,
                                         NULL, lo, hi));
        free(r_mean);
        return 0;
    }
    double rms_p = sqrt(sw / (double)n), rms_u = sqrt(su / (double)n);
    REAL alpha = (REAL)FN(max_keep_nan)((REAL)rms_p, (REAL)epsilon_2) * (REAL)rho;
    REAL den = FN(max_keep_nan)((REAL)(rms_u / clip_threshold), (REAL)1);
    FASTNN_SPLIT(n, n, n_threads,
                 FN(adafactor_plain_pass2)(p, g, v, alpha, den, gs, cv, lo, hi));
    return 0;
}

/* ---- moving average of the weights (use_ema) ------------------------------------ */
/* Keras 3: average = momentum * average + (1 - momentum) * value, (1 - momentum) taken in
 * the variable's dtype. Not flushed: an average of weights is not a decaying state. */
FASTNN_CLONES
static void FN(ema_range)(REAL *restrict avg, const REAL *restrict x, REAL mo, REAL one_mo,
                          ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++)
        avg[i] = mo * avg[i] + one_mo * x[i];
}

void FN(ema_update)(REAL *average, const REAL *value, double momentum, ptrdiff_t n,
                    int n_threads)
{
    REAL mo = (REAL)momentum;
    FASTNN_SPLIT(n, n, n_threads, FN(ema_range)(average, value, mo, (REAL)1 - mo, lo, hi));
}

#undef GRAD
#undef DECAYED
#undef FLUSH
#undef OPT_BLOCK
#undef SUM8
#undef SQ

#endif /* template body */
