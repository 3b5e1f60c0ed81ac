/* Merge layers' column copies: Concatenate's forward on 2-D inputs (k row-major inputs
 * side by side in one output) and its backward (the output gradient's column blocks, each
 * into a contiguous array of its own). Pure copies: the same bits as NumPy's, for any
 * thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <string.h>
#include "fastnn.h"
#include "parallel.h"

/* Below this many bytes a block is copied by a loop the compiler unrolls and vectorizes:
 * a call to memcpy per row costs more than a narrow block (one column of a wide-and-deep
 * input, a 4-unit branch). */
#define FASTNN_MERGE_MEMCPY_MIN 64

#define FASTNN_TEMPLATE "merging.c"
#include "template.h"

#else /* template body */

/* dst[0..w) = src[0..w) */
static inline void FN(copy_block)(REAL *restrict dst, const REAL *restrict src, ptrdiff_t w)
{
    if (w * (ptrdiff_t)sizeof(REAL) >= FASTNN_MERGE_MEMCPY_MIN) {
        memcpy(dst, src, sizeof(REAL) * (size_t)w);
    } else {
        for (ptrdiff_t c = 0; c < w; c++) dst[c] = src[c];
    }
}

/* Rows [lo, hi): each output row written once, front to back, from the k inputs' rows. */
FASTNN_CLONES
static void FN(concat_columns_rows)(const REAL *const *xs, const ptrdiff_t *widths, ptrdiff_t k,
                                    REAL *out, ptrdiff_t total, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        REAL *o = out + i * total;
        for (ptrdiff_t j = 0; j < k; j++) {
            const ptrdiff_t w = widths[j];
            FN(copy_block)(o, xs[j] + i * w, w);
            o += w;
        }
    }
}

void FN(concat_columns)(const REAL *const *xs, const ptrdiff_t *widths, ptrdiff_t k, REAL *out,
                        ptrdiff_t n, int n_threads)
{
    ptrdiff_t total = 0;
    for (ptrdiff_t j = 0; j < k; j++) total += widths[j];
    /* a copy is bound by memory bandwidth: as take_rows, only copies of more than
     * FASTNN_PARALLEL_MIN 8-byte words (1 MB) are split between threads */
    FASTNN_SPLIT(n, n * total * (ptrdiff_t)sizeof(REAL) / 8, n_threads,
        FN(concat_columns_rows)(xs, widths, k, out, total, lo, hi));
}

/* Rows [lo, hi) of dY read once, front to back, into the k outputs' rows. */
FASTNN_CLONES
static void FN(split_columns_rows)(const REAL *dY, const ptrdiff_t *widths, ptrdiff_t k,
                                   REAL *const *outs, ptrdiff_t total, ptrdiff_t lo, ptrdiff_t hi)
{
    for (ptrdiff_t i = lo; i < hi; i++) {
        const REAL *g = dY + i * total;
        for (ptrdiff_t j = 0; j < k; j++) {
            const ptrdiff_t w = widths[j];
            FN(copy_block)(outs[j] + i * w, g, w);
            g += w;
        }
    }
}

void FN(split_columns)(const REAL *dY, const ptrdiff_t *widths, ptrdiff_t k, REAL *const *outs,
                       ptrdiff_t n, int n_threads)
{
    ptrdiff_t total = 0;
    for (ptrdiff_t j = 0; j < k; j++) total += widths[j];
    FASTNN_SPLIT(n, n * total * (ptrdiff_t)sizeof(REAL) / 8, n_threads,
        FN(split_columns_rows)(dY, widths, k, outs, total, lo, hi));
}

#endif /* template body */
