/* Reductions: column sums (bias gradients) and sums of squares (gradient norms).
 * Fixed-order sums: results do not depend on the thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include "fastnn.h"
#include "parallel.h"

#define FASTNN_TEMPLATE "reductions.c"
#include "template.h"

#else /* template body */

FASTNN_CLONES
static void FN(col_sum_rows)(const REAL *X, REAL *out, ptrdiff_t r0, ptrdiff_t r1, ptrdiff_t m)
{
    for (ptrdiff_t j = 0; j < m; j++) out[j] = 0;
    for (ptrdiff_t i = r0; i < r1; i++) {
        const REAL *x = X + i * m;
        for (ptrdiff_t j = 0; j < m; j++) out[j] += x[j];
    }
}

void FN(col_sum)(const REAL *X, REAL *out, ptrdiff_t n, ptrdiff_t m, int n_threads)
{
    /* Partial sums over fixed blocks of rows (rows stream through memory in order), then
     * the blocks added in order: the same bits for any thread count. */
    const ptrdiff_t nb = (n + FASTNN_BLOCK_ROWS - 1) / FASTNN_BLOCK_ROWS;
    if (nb <= 1) {
        FN(col_sum_rows)(X, out, 0, n, m);
        return;
    }
    REAL *part = (REAL *)malloc(sizeof(REAL) * (size_t)nb * (size_t)m);
    if (!part) {  /* out of memory: the serial sum is correct too, only in another order */
        FN(col_sum_rows)(X, out, 0, n, m);
        return;
    }
    FASTNN_SPLIT(nb, n * m, n_threads,
        for (ptrdiff_t blk = lo; blk < hi; blk++) {
            ptrdiff_t r0 = blk * FASTNN_BLOCK_ROWS;
            ptrdiff_t r1 = r0 + FASTNN_BLOCK_ROWS < n ? r0 + FASTNN_BLOCK_ROWS : n;
            FN(col_sum_rows)(X, part + blk * m, r0, r1, m);
        });
    for (ptrdiff_t j = 0; j < m; j++) out[j] = part[j];
    for (ptrdiff_t blk = 1; blk < nb; blk++) {
        const REAL *pb = part + blk * m;
        for (ptrdiff_t j = 0; j < m; j++) out[j] += pb[j];
    }
    free(part);
}

/* Eight independent accumulators: one running sum is bound by the add latency (about
 * 7 GB/s); eight vectorize and run at memory speed. The order is fixed, so the result
 * still does not depend on the thread count. */
FASTNN_CLONES
static double FN(sum_squares_range)(const REAL *x, ptrdiff_t lo, ptrdiff_t hi)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    ptrdiff_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += (double)x[i + k] * (double)x[i + k];
    double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < hi; i++) s += (double)x[i] * (double)x[i];
    return s;
}

double FN(sum_squares)(const REAL *x, ptrdiff_t n, int n_threads)
{
    /* fixed 4096-element blocks: the same partial sums whatever the thread count */
    double r;
    ptrdiff_t nblk = (n + 4095) / 4096;
    FASTNN_BLOCK_SUM(nblk, 4096, n_threads,
        FN(sum_squares_range)(x, r0 * 4096, (r1 * 4096 < n ? r1 * 4096 : n)), r);
    return r;
}

#endif /* template body */
