/* Embedding lookups: the checked conversion of codes to row numbers fused with the row
 * gather (forward), and the scatter-add of the output gradient into the table (backward).
 * Both give the same bits for any thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <string.h>
#include "fastnn.h"
#include "parallel.h"

#define FASTNN_TEMPLATE "embedding.c"
#include "template.h"

#else /* template body */

/* 1 when the code c names a row of a table of `rows` rows: an integer in [0, rows). NaN
 * fails both comparisons; the comparisons run in double, where every float32 and every
 * row count below 2^53 is exact. */
static inline int FN(code_ok)(REAL c, double rows, int64_t *k)
{
    double d = (double)c;
    int in_range = (d >= 0.0) & (d < rows);
    /* the cast is only defined in range: clamp first, then see whether it was exact */
    int64_t r = in_range ? (int64_t)d : 0;
    *k = r;
    return in_range & ((double)r == d);
}

ptrdiff_t FN(embedding_forward)(const REAL *codes, const REAL *W, REAL *out, int64_t *index,
                                ptrdiff_t n, ptrdiff_t rows, ptrdiff_t cols, int n_threads)
{
    /* Codes reach the model as floats (fit converts every input to the model's dtype), so
     * each one is checked to be a row number before anything is gathered: a bad one
     * returns its position and out is not written. Branch-free pass; the position is
     * looked for only when some code is bad. */
    const double lim = (double)rows;
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        int64_t k;
        bad |= !FN(code_ok)(codes[i], lim, &k);
        index[i] = k;
    }
    if (bad) {
        for (ptrdiff_t i = 0; i < n; i++) {
            int64_t k;
            if (!FN(code_ok)(codes[i], lim, &k)) return i;
        }
    }
    /* the gather of fit's mini-batches: fixed-size copies for short rows, prefetch for
     * long ones, parallel only where it pays (see reductions.c) */
    return take_rows(W, index, out, rows, n, cols * (ptrdiff_t)sizeof(REAL), n_threads);
}

/* Rows [lo, hi) of dW: zeroed, then every dY row whose index falls in the range added,
 * in the order of the indices. */
FASTNN_CLONES
static void FN(embedding_backward_rows)(const REAL *dY, const int64_t *index, REAL *dW,
                                        ptrdiff_t n, ptrdiff_t cols, ptrdiff_t lo, ptrdiff_t hi)
{
    memset(dW + lo * cols, 0, sizeof(REAL) * (size_t)((hi - lo) * cols));
    for (ptrdiff_t i = 0; i < n; i++) {
        const int64_t r = index[i];
        if (r < lo || r >= hi) continue;
        REAL *w = dW + r * cols;
        const REAL *g = dY + i * cols;
        for (ptrdiff_t j = 0; j < cols; j++) w[j] += g[j];
    }
}

ptrdiff_t FN(embedding_backward)(const REAL *dY, const int64_t *index, REAL *dW, ptrdiff_t n,
                                 ptrdiff_t rows, ptrdiff_t cols, int n_threads)
{
    uint64_t bad = 0;
    for (ptrdiff_t i = 0; i < n; i++) bad |= (uint64_t)index[i] >= (uint64_t)rows;
    if (bad) {
        for (ptrdiff_t i = 0; i < n; i++)
            if (index[i] < 0 || index[i] >= rows) return i;
    }
    /* Threads own contiguous ranges of the table's rows, not of the indices: each scans
     * every index and adds only the rows that land in its range. So each element of dW
     * receives its additions in the order of i whatever the thread count (the same bits
     * as one thread, and as np.add.at), threads never write the same row, and a category
     * that fills the whole batch costs one thread n row additions (a skewed batch
     * balances badly, but stays exact). The work counts the zeroing of the table, which
     * is the whole cost when the table is much larger than the batch. */
    FASTNN_SPLIT(rows, (n + rows) * cols, n_threads,
        FN(embedding_backward_rows)(dY, index, dW, n, cols, lo, hi));
    return -1;
}

#endif /* template body */
