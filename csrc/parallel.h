/* Row and column splitting for the kernels: the only place with OpenMP pragmas for
 * the simple "each thread takes a contiguous range" pattern. Ranges depend only on
 * (n, number of threads), and every kernel's result per element depends only on its own
 * row or column, so results are identical for any thread count. */
#ifndef FASTNN_PARALLEL_H
#define FASTNN_PARALLEL_H

#include <math.h>
#include <stdlib.h>
#include "fastnn.h"

#ifdef _OPENMP
/* Run CALL(lo, hi) over [0, n) split into one contiguous range per thread. */
#define FASTNN_SPLIT(n, work, n_threads, CALL)                                        \
    do {                                                                              \
        ptrdiff_t n_ = (n);                                                           \
        int nt_ = (n_threads);                                                        \
        if (nt_ > 1 && (work) >= FASTNN_PARALLEL_MIN && n_ > 1) {                     \
            if (nt_ > n_) nt_ = (int)n_;                                              \
            _Pragma("omp parallel num_threads(nt_)")                                  \
            {                                                                         \
                int t_ = omp_get_thread_num(), T_ = omp_get_num_threads();            \
                ptrdiff_t lo = n_ * t_ / T_, hi = n_ * (t_ + 1) / T_;                 \
                CALL;                                                                 \
            }                                                                         \
        } else {                                                                      \
            ptrdiff_t lo = 0, hi = n_;                                                \
            CALL;                                                                     \
        }                                                                             \
    } while (0)
#else
#define FASTNN_SPLIT(n, work, n_threads, CALL)                                        \
    do {                                                                              \
        ptrdiff_t lo = 0, hi = (n);                                                   \
        (void)(n_threads);                                                            \
        CALL;                                                                         \
    } while (0)
#endif

/* result = sum of ROWS_CALL (a double, computed for rows [r0, r1)) over fixed blocks of
 * FASTNN_BLOCK_ROWS rows; blocks run in parallel and are added in order. */
#define FASTNN_BLOCK_SUM(n, m, n_threads, ROWS_CALL, result)                          \
    do {                                                                              \
        ptrdiff_t nb_ = ((n) + FASTNN_BLOCK_ROWS - 1) / FASTNN_BLOCK_ROWS;            \
        double stack_[64];                                                            \
        double *part_ = nb_ <= 64 ? stack_ : (double *)malloc(sizeof(double) * nb_);  \
        if (!part_) { result = NAN; break; }                                          \
        FASTNN_SPLIT(nb_, (n) * (m), n_threads,                                       \
            for (ptrdiff_t blk = lo; blk < hi; blk++) {                               \
                ptrdiff_t r0 = blk * FASTNN_BLOCK_ROWS;                               \
                ptrdiff_t r1 = r0 + FASTNN_BLOCK_ROWS < (n) ? r0 + FASTNN_BLOCK_ROWS : (n); \
                part_[blk] = ROWS_CALL;                                               \
            });                                                                       \
        double s_ = 0;                                                                \
        for (ptrdiff_t b_ = 0; b_ < nb_; b_++) s_ += part_[b_];                       \
        if (part_ != stack_) free(part_);                                             \
        result = s_;                                                                  \
    } while (0)

#endif
