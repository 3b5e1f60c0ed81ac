/* Weight regularizers and constraints: the L1/L2 penalty with its gradient added in the same
 * pass, and the norm constraints (MaxNorm, UnitNorm, MinMaxNorm) and NonNeg, applied in
 * place after an optimizer step. Sums are over fixed blocks combined in order, so results
 * do not depend on the thread count. Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include <stdlib.h>
#include "fastnn.h"
#include "parallel.h"

#define FASTNN_REG_BLOCK 4096   /* elements per partial sum of the penalty */
#define FASTNN_CONS_COLS 256    /* columns per block of the norm constraints */
#define FASTNN_CONS_EPS 1e-7    /* Keras' epsilon in the norm constraints */

#define FASTNN_TEMPLATE "regularizers.c"
#include "template.h"

#else /* template body */

/* One block: sum|w| and sum w^2 in double; grad += c1 * sign(w) + c2 * w when grad given. */
FASTNN_CLONES
static void FN(l1_l2_block)(const REAL *w, REAL c1, REAL c2, REAL *grad, ptrdiff_t lo,
                            ptrdiff_t hi, double *s1, double *s2)
{
    /* 8 interleaved partial sums, added in a fixed order: vectorizes, same bits any run */
    double a8[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t i8 = lo + ((hi - lo) & ~(ptrdiff_t)7);
    for (ptrdiff_t i = lo; i < i8; i += 8) {
        for (int k = 0; k < 8; k++) {
            double v = (double)w[i + k];
            a8[k] += fabs(v);
            b8[k] += v * v;
        }
    }
    double a = 0, b = 0;
    for (ptrdiff_t i = i8; i < hi; i++) {
        double v = (double)w[i];
        a += fabs(v);
        b += v * v;
    }
    for (int k = 0; k < 8; k++) { a += a8[k]; b += b8[k]; }
    if (grad) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL v = w[i];
            REAL s = (REAL)((v > 0) - (v < 0));
            grad[i] += c1 * s + c2 * v;
        }
    }
    *s1 = a;
    *s2 = b;
}

double FN(l1_l2_penalty)(const REAL *w, double l1, double l2, double scale, REAL *grad,
                         ptrdiff_t n, int n_threads)
{
    ptrdiff_t nb = (n + FASTNN_REG_BLOCK - 1) / FASTNN_REG_BLOCK;
    double stack[128];
    double *part = nb <= 64 ? stack : (double *)malloc(sizeof(double) * 2 * nb);
    if (!part) return NAN;
    REAL c1 = (REAL)(scale * l1), c2 = (REAL)(2.0 * scale * l2);
    FASTNN_SPLIT(nb, n, n_threads,
        for (ptrdiff_t blk = lo; blk < hi; blk++) {
            ptrdiff_t r0 = blk * FASTNN_REG_BLOCK;
            ptrdiff_t r1 = r0 + FASTNN_REG_BLOCK < n ? r0 + FASTNN_REG_BLOCK : n;
            FN(l1_l2_block)(w, c1, c2, grad, r0, r1, &part[2 * blk], &part[2 * blk + 1]);
        });
    double s1 = 0, s2 = 0;
    for (ptrdiff_t b = 0; b < nb; b++) { s1 += part[2 * b]; s2 += part[2 * b + 1]; }
    if (part != stack) free(part);
    return scale * (l1 * s1 + l2 * s2);
}

/* W viewed as (P, R, Q): the norm is taken over R for each (p, q). Work items are
 * (p, block of up to 256 q's); each is done by one thread, rows in order. The factor
 *   (rate * clip(norm, lo, hi) + (1 - rate) * norm) / (eps + norm)
 * is formed in double and rounded once. unit: factor = 1 / (eps + norm) (UnitNorm). */
static void FN(norm_constraint_items)(REAL *W, double min_value, double max_value, double rate,
                                      int unit, ptrdiff_t R, ptrdiff_t Q, ptrdiff_t nqb,
                                      ptrdiff_t t0, ptrdiff_t t1)
{
    double acc[FASTNN_CONS_COLS];
    REAL f[FASTNN_CONS_COLS];
    for (ptrdiff_t t = t0; t < t1; t++) {
        ptrdiff_t p = t / nqb, q0 = (t % nqb) * FASTNN_CONS_COLS;
        ptrdiff_t q1 = q0 + FASTNN_CONS_COLS < Q ? q0 + FASTNN_CONS_COLS : Q, w = q1 - q0;
        REAL *base = W + p * R * Q + q0;
        for (ptrdiff_t q = 0; q < w; q++) acc[q] = 0;
        for (ptrdiff_t k = 0; k < R; k++) {
            const REAL *row = base + k * Q;
            for (ptrdiff_t q = 0; q < w; q++) acc[q] += (double)row[q] * (double)row[q];
        }
        for (ptrdiff_t q = 0; q < w; q++) {
            double norm = sqrt(acc[q]), desired;
            if (unit) {
                desired = 1.0;
            } else {
                desired = norm < min_value ? min_value : (norm > max_value ? max_value : norm);
                desired = rate * desired + (1.0 - rate) * norm;
            }
            f[q] = (REAL)(desired / (FASTNN_CONS_EPS + norm));
        }
        for (ptrdiff_t k = 0; k < R; k++) {
            REAL *row = base + k * Q;
            for (ptrdiff_t q = 0; q < w; q++) row[q] *= f[q];
        }
    }
}

void FN(norm_constraint)(REAL *W, double min_value, double max_value, double rate, int unit,
                         ptrdiff_t P, ptrdiff_t R, ptrdiff_t Q, int n_threads)
{
    ptrdiff_t nqb = (Q + FASTNN_CONS_COLS - 1) / FASTNN_CONS_COLS;
    FASTNN_SPLIT(P * nqb, P * R * Q, n_threads,
        FN(norm_constraint_items)(W, min_value, max_value, rate, unit, R, Q, nqb, lo, hi));
}

FASTNN_CLONES
static void FN(non_neg_range)(REAL *W, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) W[i] = W[i] < 0 ? (REAL)0 : W[i];
}

void FN(non_neg)(REAL *W, ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads, FN(non_neg_range)(W, lo, hi));
}

#endif /* template body */
