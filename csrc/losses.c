/* Losses: each kernel returns the sum over rows of the per-row loss (Keras: the mean over
 * the last axis) and writes dP = scale * d(sum)/dP in the same pass. Sums go through
 * fixed row blocks added in order, so the value does not depend on the thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include <stdlib.h>
#include "fastnn.h"
#include "parallel.h"

/* Keras' epsilon for clipping probabilities before a log. */
#define FASTNN_EPS 1e-7

#define FASTNN_TEMPLATE "losses.c"
#include "template.h"

#else /* template body */

static double FN(elementwise_loss_rows)(const REAL *P, const REAL *T, int loss, REAL param, REAL scale,
                                        REAL *dP, double *rl, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t m)
{
    const REAL eps = (REAL)FASTNN_EPS, inv_m = (REAL)1 / (REAL)m, g_m = scale * inv_m;
    double total = 0;
    for (ptrdiff_t i = r0; i < r1; i++) {
        const REAL *p = P + i * m, *t = T + i * m;
        REAL *dp = dP ? dP + i * m : NULL;
        REAL row = 0;
        switch (loss) {
        case LOSS_MSE:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL e = p[j] - t[j]; row += e * e; if (dp) dp[j] = 2 * e * g_m;
            }
            break;
        case LOSS_MAE:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL e = p[j] - t[j]; row += M(fabs)(e);
                /* sign(e) with sign(NaN) = NaN, as np.sign: e * 0 is 0 or NaN */
                if (dp) dp[j] = (e > 0 ? g_m : (e < 0 ? -g_m : e * 0));
            }
            break;
        case LOSS_HUBER:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL e = p[j] - t[j], a = M(fabs)(e);
                if (a <= param) { row += (REAL)0.5 * e * e; if (dp) dp[j] = e * g_m; }
                else { row += param * (a - (REAL)0.5 * param); if (dp) dp[j] = (e > 0 ? param : (e < 0 ? -param : param * e)) * g_m; }
            }
            break;
        case LOSS_BCE:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL pv = p[j], pc = pv < eps ? eps : (pv > 1 - eps ? 1 - eps : pv);
                row -= t[j] * M(log)(pc) + (1 - t[j]) * M(log)(1 - pc);
                /* the clip has zero gradient outside [eps, 1 - eps], as in Keras */
                if (dp) dp[j] = (pv == pc) ? (pc - t[j]) / (pc * (1 - pc)) * g_m : 0;
            }
            break;
        case LOSS_BCE_LOGITS:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL z = p[j], az = M(fabs)(z);
                row += (z > 0 ? z : 0) - z * t[j] + M(log1p)(M(exp)(-az));
                if (dp) {
                    REAL e = M(exp)(-az), s = z >= 0 ? 1 / (1 + e) : e / (1 + e);
                    dp[j] = (s - t[j]) * g_m;
                }
            }
            break;
        case LOSS_CCE: {
            /* Keras: p / sum(p), clipped, then -sum t log p (no mean over the last axis) */
            REAL s = 0, st = 0;
            for (ptrdiff_t j = 0; j < m; j++) { s += p[j]; st += t[j]; }
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL q = p[j] / s, qc = q < eps ? eps : (q > 1 - eps ? 1 - eps : q);
                row -= t[j] * M(log)(qc);
                if (dp) dp[j] = (-t[j] / (p[j] > 0 ? p[j] : eps * s) + st / s) * scale;
            }
            break;
        }
        case LOSS_KLD:
            /* sum over the last axis, as Keras */
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL tc = t[j] < eps ? eps : (t[j] > 1 ? 1 : t[j]);
                REAL pv = p[j], pc = pv < eps ? eps : (pv > 1 ? 1 : pv);
                row += tc * M(log)(tc / pc);
                if (dp) dp[j] = (pv == pc) ? -tc / pc * scale : 0;
            }
            break;
        case LOSS_HINGE:
            for (ptrdiff_t j = 0; j < m; j++) {
                REAL h = 1 - t[j] * p[j];
                row += h > 0 ? h : 0;
                if (dp) dp[j] = h > 0 ? -t[j] * g_m : 0;
            }
            break;
        default: return NAN;
        }
        double value = (loss == LOSS_CCE || loss == LOSS_KLD) ? (double)row : (double)(row * inv_m);
        if (rl) rl[i] = value;
        total += value;
    }
    return total;
}

double FN(elementwise_loss)(const REAL *P, const REAL *T, int loss, double param, double scale,
                            REAL *dP, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    double r;
    FASTNN_BLOCK_SUM(n, m, n_threads,
        FN(elementwise_loss_rows)(P, T, loss, (REAL)param, (REAL)scale, dP, row_loss, r0, r1, m), r);
    return r;
}

/* One row of softmax cross-entropy. tj(j) gives the target of column j. */
#define FASTNN_SOFTMAX_XENT_ROW(TJ, TSUM)                                             \
    const REAL *z = Z + i * m;                                                        \
    REAL *dz = dZ ? dZ + i * m : NULL;                                                \
    REAL st = (TSUM);                                                                 \
    if (from_logits) {                                                                \
        REAL mx = z[0];                                                               \
        for (ptrdiff_t j = 1; j < m; j++) mx = z[j] > mx ? z[j] : mx;                 \
        REAL s = 0;                                                                   \
        for (ptrdiff_t j = 0; j < m; j++) s += M(exp)(z[j] - mx);                     \
        /* log p = (z - max) - log(s), shifted first as the reference: max + log(s)   \
         * would round log(s) at the magnitude of the logits */                       \
        REAL ls = M(log)(s), row = 0;                                                 \
        for (ptrdiff_t j = 0; j < m; j++) {                                           \
            REAL t = (TJ), lp = (z[j] - mx) - ls;                                     \
            row -= t * lp;                                                            \
            if (dz) dz[j] = (M(exp)(lp) * st - t) * sc;                               \
        }                                                                             \
        if (rl) rl[i] = row;                                                          \
        total += row;                                                                 \
    } else {                                                                          \
        REAL s = 0, row = 0;                                                          \
        for (ptrdiff_t j = 0; j < m; j++) s += z[j];                                  \
        for (ptrdiff_t j = 0; j < m; j++) {                                           \
            REAL t = (TJ), q = z[j] / s;                                              \
            q = q < eps ? eps : (q > 1 - eps ? 1 - eps : q);                          \
            row -= t * M(log)(q);                                                     \
            if (dz) dz[j] = (z[j] / s * st - t) * sc;                                 \
        }                                                                             \
        if (rl) rl[i] = row;                                                          \
        total += row;                                                                 \
    }

static double FN(softmax_xent_rows)(const REAL *Z, const REAL *T, int from_logits, REAL sc,
                                    REAL *dZ, double *rl, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t m)
{
    const REAL eps = (REAL)FASTNN_EPS;
    double total = 0;
    for (ptrdiff_t i = r0; i < r1; i++) {
        const REAL *tr = T + i * m;
        REAL tsum = 0;
        for (ptrdiff_t j = 0; j < m; j++) tsum += tr[j];
        FASTNN_SOFTMAX_XENT_ROW(tr[j], tsum)
    }
    return total;
}

double FN(softmax_cross_entropy)(const REAL *Z, const REAL *T, int from_logits, double scale,
                                 REAL *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    double r;
    /* exp and log per element: weigh the work (the macro uses m only for that) */
    FASTNN_BLOCK_SUM(n, m * FASTNN_TRANSCENDENTAL_COST, n_threads,
        FN(softmax_xent_rows)(Z, T, from_logits, (REAL)scale, dZ, row_loss, r0, r1, m), r);
    return r;
}

static double FN(sparse_softmax_xent_rows)(const REAL *Z, const int64_t *labels, int from_logits,
                                           REAL sc, REAL *dZ, double *rl, ptrdiff_t r0, ptrdiff_t r1,
                                           ptrdiff_t m)
{
    const REAL eps = (REAL)FASTNN_EPS;
    double total = 0;
    for (ptrdiff_t i = r0; i < r1; i++) {
        int64_t l = labels[i];
        /* the wrapper validates labels; an out-of-range one gives NaN, never a stray read */
        if (l < 0 || l >= m) { total = NAN; if (rl) rl[i] = NAN; continue; }
        FASTNN_SOFTMAX_XENT_ROW((REAL)(j == l), 1)
    }
    return total;
}

double FN(sparse_softmax_cross_entropy)(const REAL *Z, const int64_t *labels, int from_logits,
                                        double scale, REAL *dZ, double *row_loss, ptrdiff_t n, ptrdiff_t m,
                                        int n_threads)
{
    double r;
    FASTNN_BLOCK_SUM(n, m * FASTNN_TRANSCENDENTAL_COST, n_threads,
        FN(sparse_softmax_xent_rows)(Z, labels, from_logits, (REAL)scale, dZ, row_loss, r0, r1, m), r);
    return r;
}

#undef FASTNN_SOFTMAX_XENT_ROW
#endif /* template body */
