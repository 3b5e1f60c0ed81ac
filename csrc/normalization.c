/* Normalization kernels: batch normalization (training statistics, normalize-scale-shift,
 * full backward), the per-column affine map used in inference (BatchNormalization with
 * moving statistics, Normalization), and layer normalization forward/backward.
 *
 * Column reductions (batch statistics, dgamma, dbeta) are done per block of columns by one
 * thread, over the rows in order: the result does not depend on the thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include "fastnn.h"
#include "parallel.h"

#define FASTNN_NORM_COLS 256  /* columns per block: the accumulators stay on the stack */

#define FASTNN_TEMPLATE "normalization.c"
#include "template.h"

#else /* template body */

/* Columns [c0, c1): statistics in one pass (sums of x - x[0, j] and its square, in
 * double: shifting by the first row removes the cancellation of the textbook formula when
 * |mean| >> std), then the moving averages, then y = (x - mean) * gamma * invstd + beta in a
 * second pass over the same columns while they are still in cache. */
FASTNN_CLONES
static void FN(bn_train_block)(const REAL *X, const REAL *gamma, const REAL *beta, double eps,
                               double momentum, REAL *moving_mean, REAL *moving_var, REAL *Y,
                               REAL *mean, REAL *invstd, ptrdiff_t n, ptrdiff_t m,
                               ptrdiff_t b0, ptrdiff_t b1)
{
    double s1[FASTNN_NORM_COLS], s2[FASTNN_NORM_COLS];
    REAL k[FASTNN_NORM_COLS], mu[FASTNN_NORM_COLS], sh[FASTNN_NORM_COLS];
    for (ptrdiff_t blk = b0; blk < b1; blk++) {
        ptrdiff_t j0 = blk * FASTNN_NORM_COLS;
        ptrdiff_t j1 = j0 + FASTNN_NORM_COLS < m ? j0 + FASTNN_NORM_COLS : m, w = j1 - j0;
        const REAL *x0 = X + j0;
        for (ptrdiff_t j = 0; j < w; j++) { s1[j] = 0; s2[j] = 0; }
        for (ptrdiff_t i = 1; i < n; i++) {
            const REAL *x = X + i * m + j0;
            for (ptrdiff_t j = 0; j < w; j++) {
                double d = (double)x[j] - (double)x0[j];
                s1[j] += d;
                s2[j] += d * d;
            }
        }
        for (ptrdiff_t j = 0; j < w; j++) {
            double dm = s1[j] / (double)n;
            double var = s2[j] / (double)n - dm * dm;
            if (var < 0) var = 0;
            double mu_d = (double)x0[j] + dm;
            double is = 1.0 / sqrt(var + eps);
            mean[j0 + j] = (REAL)mu_d;
            invstd[j0 + j] = (REAL)is;
            if (moving_mean) {
                moving_mean[j0 + j] = (REAL)((double)moving_mean[j0 + j] * momentum + mu_d * (1.0 - momentum));
                moving_var[j0 + j] = (REAL)((double)moving_var[j0 + j] * momentum + var * (1.0 - momentum));
            }
            mu[j] = (REAL)mu_d;
            k[j] = gamma ? gamma[j0 + j] * (REAL)is : (REAL)is;
            sh[j] = beta ? beta[j0 + j] : (REAL)0;
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL *x = X + i * m + j0;
            REAL *y = Y + i * m + j0;
            for (ptrdiff_t j = 0; j < w; j++) y[j] = (x[j] - mu[j]) * k[j] + sh[j];
        }
    }
}

void FN(batchnorm_forward_train)(const REAL *X, const REAL *gamma, const REAL *beta, double eps,
                                 double momentum, REAL *moving_mean, REAL *moving_var, REAL *Y,
                                 REAL *mean, REAL *invstd, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    ptrdiff_t nb = (m + FASTNN_NORM_COLS - 1) / FASTNN_NORM_COLS;
    FASTNN_SPLIT(nb, n * m, n_threads,
        FN(bn_train_block)(X, gamma, beta, eps, momentum, moving_mean, moving_var, Y, mean,
                           invstd, n, m, lo, hi));
}

/* Columns [c0, c1) of the batch-norm backward. With xhat = (x - mean) * invstd,
 *   dbeta = sum_i dy,  dgamma = sum_i dy * xhat,
 *   dx = gamma * invstd * (dy - dbeta / n - xhat * dgamma / n)
 * (the gradient through the batch mean and variance). */
FASTNN_CLONES
static void FN(bn_backward_block)(const REAL *dY, const REAL *X, const REAL *mean,
                                  const REAL *invstd, const REAL *gamma, REAL *dX, REAL *dgamma,
                                  REAL *dbeta, ptrdiff_t n, ptrdiff_t m, ptrdiff_t b0, ptrdiff_t b1)
{
    double sdy[FASTNN_NORM_COLS], sdx[FASTNN_NORM_COLS];
    REAL mu[FASTNN_NORM_COLS], is[FASTNN_NORM_COLS], k[FASTNN_NORM_COLS];
    REAL a[FASTNN_NORM_COLS], c[FASTNN_NORM_COLS];
    for (ptrdiff_t blk = b0; blk < b1; blk++) {
        ptrdiff_t j0 = blk * FASTNN_NORM_COLS;
        ptrdiff_t j1 = j0 + FASTNN_NORM_COLS < m ? j0 + FASTNN_NORM_COLS : m, w = j1 - j0;
        for (ptrdiff_t j = 0; j < w; j++) {
            sdy[j] = 0; sdx[j] = 0; mu[j] = mean[j0 + j]; is[j] = invstd[j0 + j];
        }
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL *dy = dY + i * m + j0, *x = X + i * m + j0;
            for (ptrdiff_t j = 0; j < w; j++) {
                REAL xh = (x[j] - mu[j]) * is[j];
                sdy[j] += (double)dy[j];
                sdx[j] += (double)dy[j] * (double)xh;
            }
        }
        for (ptrdiff_t j = 0; j < w; j++) {
            if (dgamma) dgamma[j0 + j] = (REAL)sdx[j];
            if (dbeta) dbeta[j0 + j] = (REAL)sdy[j];
            k[j] = gamma ? gamma[j0 + j] * is[j] : is[j];
            a[j] = (REAL)(sdy[j] / (double)n);
            c[j] = (REAL)(sdx[j] / (double)n);
        }
        if (!dX) continue;
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL *dy = dY + i * m + j0, *x = X + i * m + j0;
            REAL *dx = dX + i * m + j0;
            for (ptrdiff_t j = 0; j < w; j++) {
                REAL xh = (x[j] - mu[j]) * is[j];
                dx[j] = k[j] * (dy[j] - a[j] - xh * c[j]);
            }
        }
    }
}

void FN(batchnorm_backward)(const REAL *dY, const REAL *X, const REAL *mean, const REAL *invstd,
                            const REAL *gamma, REAL *dX, REAL *dgamma, REAL *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    ptrdiff_t nb = (m + FASTNN_NORM_COLS - 1) / FASTNN_NORM_COLS;
    FASTNN_SPLIT(nb, n * m, n_threads,
        FN(bn_backward_block)(dY, X, mean, invstd, gamma, dX, dgamma, dbeta, n, m, lo, hi));
}

/* y = (x - shift[j]) * scale[j] + offset[j]; shift and offset may be NULL (zero). */
FASTNN_CLONES
static void FN(col_affine_rows)(const REAL *X, const REAL *shift, const REAL *scale,
                                const REAL *offset, REAL *Y, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *x = X + i * m;
        REAL *y = Y + i * m;
        if (shift && offset) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - shift[j]) * scale[j] + offset[j];
        } else if (shift) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - shift[j]) * scale[j];
        } else if (offset) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = x[j] * scale[j] + offset[j];
        } else {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = x[j] * scale[j];
        }
    }
}

void FN(col_affine)(const REAL *X, const REAL *shift, const REAL *scale, const REAL *offset,
                    REAL *Y, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    FASTNN_SPLIT(n, n * m, n_threads, FN(col_affine_rows)(X, shift, scale, offset, Y, lo, hi, m));
}

/* Layer normalization, rows [lo, hi): mean and variance of each row (two passes over the
 * row, in double), y = (x - mean) * rstd * gamma + beta. */
FASTNN_CLONES
static void FN(ln_forward_rows)(const REAL *X, const REAL *gamma, const REAL *beta, double eps,
                                REAL *Y, REAL *mean, REAL *rstd, ptrdiff_t lo, ptrdiff_t hi,
                                ptrdiff_t m)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *x = X + i * m;
        REAL *y = Y + i * m;
        /* 8 interleaved partial sums (added in a fixed order): vectorizes without
         * reassociating, and the order depends only on m */
        double s8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, v8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        ptrdiff_t m8 = m & ~(ptrdiff_t)7;
        for (ptrdiff_t j = 0; j < m8; j += 8)
            for (int k = 0; k < 8; k++) s8[k] += (double)x[j + k];
        double s = 0, v = 0;
        for (ptrdiff_t j = m8; j < m; j++) s += (double)x[j];
        for (int k = 0; k < 8; k++) s += s8[k];
        double mu = s / (double)m;
        for (ptrdiff_t j = 0; j < m8; j += 8)
            for (int k = 0; k < 8; k++) { double d = (double)x[j + k] - mu; v8[k] += d * d; }
        for (ptrdiff_t j = m8; j < m; j++) { double d = (double)x[j] - mu; v += d * d; }
        for (int k = 0; k < 8; k++) v += v8[k];
        double r = 1.0 / sqrt(v / (double)m + eps);
        REAL mr = (REAL)mu, rr = (REAL)r;
        mean[i] = mr;
        rstd[i] = rr;
        if (gamma && beta) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - mr) * rr * gamma[j] + beta[j];
        } else if (gamma) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - mr) * rr * gamma[j];
        } else if (beta) {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - mr) * rr + beta[j];
        } else {
            for (ptrdiff_t j = 0; j < m; j++) y[j] = (x[j] - mr) * rr;
        }
    }
}

void FN(layernorm_forward)(const REAL *X, const REAL *gamma, const REAL *beta, double eps,
                           REAL *Y, REAL *mean, REAL *rstd, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    FASTNN_SPLIT(n, n * m, n_threads, FN(ln_forward_rows)(X, gamma, beta, eps, Y, mean, rstd, lo, hi, m));
}

/* dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)), g = dy * gamma, per row. */
FASTNN_CLONES
static void FN(ln_backward_rows)(const REAL *dY, const REAL *X, const REAL *gamma, const REAL *mean,
                                 const REAL *rstd, REAL *dX, ptrdiff_t lo, ptrdiff_t hi, ptrdiff_t m)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *dy = dY + i * m, *x = X + i * m;
        REAL *dx = dX + i * m;
        REAL mu = mean[i], r = rstd[i];
        double g8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, x8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        ptrdiff_t m8 = m & ~(ptrdiff_t)7;
        for (ptrdiff_t j = 0; j < m8; j += 8) {
            for (int k = 0; k < 8; k++) {
                REAL g = gamma ? dy[j + k] * gamma[j + k] : dy[j + k];
                REAL xh = (x[j + k] - mu) * r;
                g8[k] += (double)g;
                x8[k] += (double)g * (double)xh;
            }
        }
        double sg = 0, sgx = 0;
        for (ptrdiff_t j = m8; j < m; j++) {
            REAL g = gamma ? dy[j] * gamma[j] : dy[j];
            REAL xh = (x[j] - mu) * r;
            sg += (double)g;
            sgx += (double)g * (double)xh;
        }
        for (int k = 0; k < 8; k++) { sg += g8[k]; sgx += x8[k]; }
        REAL a = (REAL)(sg / (double)m), c = (REAL)(sgx / (double)m);
        for (ptrdiff_t j = 0; j < m; j++) {
            REAL g = gamma ? dy[j] * gamma[j] : dy[j];
            REAL xh = (x[j] - mu) * r;
            dx[j] = r * (g - a - xh * c);
        }
    }
}

/* dgamma[j] = sum_i dy * xhat, dbeta[j] = sum_i dy, columns [c0, c1), rows in order. */
FASTNN_CLONES
static void FN(ln_param_grad_block)(const REAL *dY, const REAL *X, const REAL *mean, const REAL *rstd,
                                    REAL *dgamma, REAL *dbeta, ptrdiff_t n, ptrdiff_t m,
                                    ptrdiff_t b0, ptrdiff_t b1)
{
    double sg[FASTNN_NORM_COLS], sb[FASTNN_NORM_COLS];
    for (ptrdiff_t blk = b0; blk < b1; blk++) {
        ptrdiff_t j0 = blk * FASTNN_NORM_COLS;
        ptrdiff_t j1 = j0 + FASTNN_NORM_COLS < m ? j0 + FASTNN_NORM_COLS : m, w = j1 - j0;
        for (ptrdiff_t j = 0; j < w; j++) { sg[j] = 0; sb[j] = 0; }
        for (ptrdiff_t i = 0; i < n; i++) {
            const REAL *dy = dY + i * m + j0, *x = X + i * m + j0;
            REAL mu = mean[i], r = rstd[i];
            for (ptrdiff_t j = 0; j < w; j++) {
                REAL xh = (x[j] - mu) * r;
                sg[j] += (double)dy[j] * (double)xh;
                sb[j] += (double)dy[j];
            }
        }
        for (ptrdiff_t j = 0; j < w; j++) {
            if (dgamma) dgamma[j0 + j] = (REAL)sg[j];
            if (dbeta) dbeta[j0 + j] = (REAL)sb[j];
        }
    }
}

void FN(layernorm_backward)(const REAL *dY, const REAL *X, const REAL *gamma, const REAL *mean,
                            const REAL *rstd, REAL *dX, REAL *dgamma, REAL *dbeta,
                            ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    if (dX)
        FASTNN_SPLIT(n, n * m, n_threads, FN(ln_backward_rows)(dY, X, gamma, mean, rstd, dX, lo, hi, m));
    if (dgamma || dbeta) {
        ptrdiff_t nb = (m + FASTNN_NORM_COLS - 1) / FASTNN_NORM_COLS;
        FASTNN_SPLIT(nb, n * m, n_threads,
            FN(ln_param_grad_block)(dY, X, mean, rstd, dgamma, dbeta, n, m, lo, hi));
    }
}

#endif /* template body */
