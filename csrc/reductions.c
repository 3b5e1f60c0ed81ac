/* Reductions: column sums (bias gradients), sums of squares (gradient norms), the
 * finiteness check of inputs, and the row gathers of shuffled mini-batches (from memory,
 * and from a file without mapping it).
 * Fixed-order sums: results do not depend on the thread count.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <errno.h>
#include <string.h>
#if !defined(_WIN32)
#include <unistd.h>
#endif
#include "fastnn.h"
#include "parallel.h"

/* Elements per block of all_finite: the check stops at the first block with a non-finite
 * value, and the blocks are what the threads share out. */
#define FASTNN_FINITE_BLOCK 16384

/* Software prefetch in the gather: rows ahead, and the smallest row it pays for. */
#define FASTNN_PREFETCH_ROWS 4
#define FASTNN_PREFETCH_MIN_ROW 256
#if defined(__GNUC__) || defined(__clang__)
#define FASTNN_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define FASTNN_PREFETCH(p) ((void)(p))
#endif

/* Copy rows [lo, hi) of the gather; row sizes of one float / double / int64 get a
 * fixed-size copy (one load and store), since a memcpy call per 4-byte row costs more than
 * the copy. */
static void take_rows_range(const char *src, const int64_t *index, char *out,
                            ptrdiff_t row_bytes, ptrdiff_t lo, ptrdiff_t hi)
{
    if (row_bytes == 8) {
        for (ptrdiff_t i = lo; i < hi; i++) memcpy(out + i * 8, src + index[i] * 8, 8);
    } else if (row_bytes == 4) {
        for (ptrdiff_t i = lo; i < hi; i++) memcpy(out + i * 4, src + index[i] * 4, 4);
    } else if (row_bytes < FASTNN_PREFETCH_MIN_ROW) {
        for (ptrdiff_t i = lo; i < hi; i++)
            memcpy(out + i * row_bytes, src + index[i] * row_bytes, (size_t)row_bytes);
    } else {
        /* Rows at random places in a big array: each starts a new stream the hardware
         * prefetcher has yet to detect. Asking for row i + D while row i is copied keeps
         * more misses in flight (measured 44 -> 41 us for 128 rows of 784 float32 out of
         * 60000; D = 2 and 4 equal, 1 less). */
        for (ptrdiff_t i = lo + 1; i < lo + FASTNN_PREFETCH_ROWS && i < hi; i++) {
            const char *p = src + index[i] * row_bytes;
            for (ptrdiff_t b = 0; b < row_bytes; b += 64) FASTNN_PREFETCH(p + b);
        }
        for (ptrdiff_t i = lo; i < hi; i++) {
            if (i + FASTNN_PREFETCH_ROWS < hi) {
                const char *p = src + index[i + FASTNN_PREFETCH_ROWS] * row_bytes;
                for (ptrdiff_t b = 0; b < row_bytes; b += 64) FASTNN_PREFETCH(p + b);
            }
            memcpy(out + i * row_bytes, src + index[i] * row_bytes, (size_t)row_bytes);
        }
    }
}

ptrdiff_t take_rows(const void *src, const int64_t *index, void *out, ptrdiff_t n,
                    ptrdiff_t n_index, ptrdiff_t row_bytes, int n_threads)
{
    /* Every index is checked before anything is written: a bad one leaves out untouched and
     * nothing outside src is ever read. Branch-free first pass (negative indices wrap to
     * huge unsigned values); the position is looked for only when one is bad. */
    uint64_t bad = 0;
    for (ptrdiff_t i = 0; i < n_index; i++) bad |= (uint64_t)index[i] >= (uint64_t)n;
    if (bad) {
        for (ptrdiff_t i = 0; i < n_index; i++)
            if (index[i] < 0 || index[i] >= n) return i;
    }
    if (row_bytes == 0) return -1;
    /* Random rows make this bound by memory latency: on the 2-core box a second thread did
     * not speed up a 128 x 784 float64 gather (0.8 MB: 7% slower) nor a 2048 x 784 float32
     * one (6.4 MB: within noise). So the work counts 8-byte words: only gathers above
     * 1 MB (FASTNN_PARALLEL_MIN words) go parallel, where a thread wake-up is < 5%. */
    FASTNN_SPLIT(n_index, n_index * row_bytes / 8, n_threads,
        take_rows_range((const char *)src, index, (char *)out, row_bytes, lo, hi));
    return -1;
}

ptrdiff_t read_rows(int fd, int64_t offset, const int64_t *index, void *out, ptrdiff_t n,
                    ptrdiff_t n_index, ptrdiff_t row_bytes, int n_threads)
{
    (void)n_threads;  /* one thread: the copies out of the page cache are short */
    for (ptrdiff_t i = 0; i < n_index; i++)
        if (index[i] < 0 || index[i] >= n) return i;
#if defined(_WIN32)
    if (n_index > 0 && row_bytes > 0) { errno = ENOSYS; return -2; }
    return -1;
#else
    /* Reading through a memory map would map each row's page (2 MiB with transparent huge
     * pages) into the process, and dropping them again costs a page fault per row (measured
     * 3 us); pread copies the row out of the page cache and maps nothing. Runs of
     * consecutive rows (an unshuffled batch) are one read. */
    char *dst = (char *)out;
    for (ptrdiff_t i = 0; i < n_index;) {
        ptrdiff_t run = 1;
        while (i + run < n_index && index[i + run] == index[i] + run) run++;
        size_t want = (size_t)(run * row_bytes), done = 0;
        off_t at = (off_t)(offset + index[i] * (int64_t)row_bytes);
        while (done < want) {
            ssize_t got = pread(fd, dst + i * row_bytes + done, want - done, at + (off_t)done);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                if (got == 0) errno = 0;  /* the file ends before the rows it should hold */
                return -2 - (i + (ptrdiff_t)(done / (size_t)row_bytes));
            }
            done += (size_t)got;
        }
        i += run;
    }
    return -1;
#endif
}

#define FASTNN_TEMPLATE "reductions.c"
#include "template.h"

#else /* template body */

/* The column of a row's first maximum, a NaN counting as the maximum (its first one wins),
 * as np.argmax. */
static inline ptrdiff_t FN(row_argmax)(const REAL *p, ptrdiff_t m)
{
    ptrdiff_t best = 0;
    REAL top = p[0];
    if (top != top) return 0;
    for (ptrdiff_t j = 1; j < m; j++) {  /* scan for a larger value or the first NaN */
        REAL v = p[j];
        if (v != v) return j;
        if (v > top) {
            top = v;
            best = j;
        }
    }
    return best;
}

/* Rows whose argmax sits at the row's label: the hits of sparse categorical accuracy,
 * counted in one pass over the outputs without the argmax and comparison arrays. Serial: a
 * batch of outputs is a few hundred values. */
int64_t FN(argmax_hits)(const REAL *P, const int64_t *labels, ptrdiff_t n, ptrdiff_t m)
{
    int64_t hits = 0;
    for (ptrdiff_t i = 0; i < n; i++) hits += FN(row_argmax)(P + i * m, m) == labels[i];
    return hits;
}

/* Rows whose argmax is the target row's argmax: categorical accuracy's hits. */
int64_t FN(argmax_match_hits)(const REAL *P, const REAL *T, ptrdiff_t n, ptrdiff_t m)
{
    int64_t hits = 0;
    for (ptrdiff_t i = 0; i < n; i++)
        hits += FN(row_argmax)(P + i * m, m) == FN(row_argmax)(T + i * m, m);
    return hits;
}

/* Elements with (P > threshold) == (T > 0.5), both compared in REAL (numpy compares a
 * float32 array with a Python float in float32): binary accuracy's hits. */
int64_t FN(threshold_hits)(const REAL *P, const REAL *T, double threshold, ptrdiff_t n)
{
    const REAL t = (REAL)threshold, half = (REAL)0.5;
    int64_t hits = 0;
    for (ptrdiff_t i = 0; i < n; i++) hits += (P[i] > t) == (T[i] > half);
    return hits;
}

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

/* 1 when the block [lo, hi) has no NaN or inf. Branch-free on the bits (exponent all
 * ones), so the loop vectorizes (integer ops: no -ffast-math needed to reassociate). */
FASTNN_CLONES
static int FN(finite_range)(const REAL *x, ptrdiff_t lo, ptrdiff_t hi)
{
    const REAL inf = (REAL)INFINITY;
    RBITS expo, bad = 0;
    memcpy(&expo, &inf, sizeof expo);
    for (ptrdiff_t i = lo; i < hi; i++) {
        RBITS b;
        memcpy(&b, &x[i], sizeof b);
        bad |= (RBITS)((b & expo) == expo);
    }
    return bad == 0;
}

int FN(all_finite)(const REAL *x, ptrdiff_t n, int n_threads)
{
    /* Fixed blocks shared out to threads; each stops at its first bad block, or when another
     * thread has found one (the answer is an OR: the same for any thread count). */
    const ptrdiff_t nblk = (n + FASTNN_FINITE_BLOCK - 1) / FASTNN_FINITE_BLOCK;
    int found = 0;
    FASTNN_SPLIT(nblk, n, n_threads,
        for (ptrdiff_t blk = lo; blk < hi; blk++) {
            int stop;
            _Pragma("omp atomic read")
            stop = found;
            if (stop) break;
            ptrdiff_t r0 = blk * FASTNN_FINITE_BLOCK;
            ptrdiff_t r1 = r0 + FASTNN_FINITE_BLOCK < n ? r0 + FASTNN_FINITE_BLOCK : n;
            if (!FN(finite_range)(x, r0, r1)) {
                _Pragma("omp atomic write")
                found = 1;
                break;
            }
        });
    return !found;
}

#endif /* template body */
