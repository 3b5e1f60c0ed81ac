/* Matrix products called from C with the bits of np.matmul: the compiled epoch (epoch.c)
 * multiplies without going back to Python, and its results must equal the Python loop's.
 * numpy's matmul (numpy/_core/src/umath/matmul.c.src) picks, from the shapes, gemm, gemv,
 * a dot or its own loop; matmul() below makes the same choice with the same arguments for
 * the layouts fastnn uses (C-contiguous operands or their transposes, a C-contiguous
 * result), on the same BLAS library, which Python finds and binds once (blas_bind): one
 * BLAS, one thread pool in the process.
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <stddef.h>
#include <stdint.h>
#include "fastnn.h"

/* CBLAS's enumerations, as every cblas.h has them */
enum { ROW_MAJOR = 101, COL_MAJOR = 102, NO_TRANS = 111, TRANS = 112, UPPER = 121 };

/* The BLAS functions with 32-bit (LP64) or 64-bit (ILP64) integers; only one set is used. */
typedef void (*gemm32_f)(int, int, int, int32_t, int32_t, int32_t, ...);
typedef struct {
    void *gemm[2], *gemv[2], *dot[2], *syrk[2];  /* [0] float, [1] double */
    int ilp64, bound;
} blas_table;
static blas_table fastnn_blas;

int blas_bind(void *sgemm, void *dgemm, void *sgemv, void *dgemv, void *sdot, void *ddot,
              void *ssyrk, void *dsyrk, int ilp64)
{
    if (!sgemm || !dgemm || !sgemv || !dgemv || !sdot || !ddot || !ssyrk || !dsyrk) return -1;
    blas_table t = {{sgemm, dgemm}, {sgemv, dgemv}, {sdot, ddot}, {ssyrk, dsyrk}, ilp64, 1};
    fastnn_blas = t;
    return 0;
}

int blas_bound(void) { return fastnn_blas.bound; }

#define FASTNN_TEMPLATE "products.c"
#include "template.h"

#else /* template body */


/* Each BLAS call with the integer width of the bound library. */
static void FN(call_gemm)(int ta, int tb, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const REAL *A,
                          ptrdiff_t lda, const REAL *B, ptrdiff_t ldb, REAL *C, ptrdiff_t ldc)
{
    void *f = fastnn_blas.gemm[sizeof(REAL) == 8];
    if (fastnn_blas.ilp64)
        ((void (*)(int, int, int, int64_t, int64_t, int64_t, REAL, const REAL *, int64_t,
                   const REAL *, int64_t, REAL, REAL *, int64_t))f)(
            ROW_MAJOR, ta, tb, m, n, k, (REAL)1, A, lda, B, ldb, (REAL)0, C, ldc);
    else
        ((void (*)(int, int, int, int32_t, int32_t, int32_t, REAL, const REAL *, int32_t,
                   const REAL *, int32_t, REAL, REAL *, int32_t))f)(
            ROW_MAJOR, ta, tb, (int32_t)m, (int32_t)n, (int32_t)k, (REAL)1, A, (int32_t)lda,
            B, (int32_t)ldb, (REAL)0, C, (int32_t)ldc);
}

static void FN(call_gemv)(int order, ptrdiff_t rows, ptrdiff_t cols, const REAL *A,
                          ptrdiff_t lda, const REAL *x, ptrdiff_t incx, REAL *y, ptrdiff_t incy)
{
    void *f = fastnn_blas.gemv[sizeof(REAL) == 8];
    if (fastnn_blas.ilp64)
        ((void (*)(int, int, int64_t, int64_t, REAL, const REAL *, int64_t, const REAL *,
                   int64_t, REAL, REAL *, int64_t))f)(
            order, TRANS, rows, cols, (REAL)1, A, lda, x, incx, (REAL)0, y, incy);
    else
        ((void (*)(int, int, int32_t, int32_t, REAL, const REAL *, int32_t, const REAL *,
                   int32_t, REAL, REAL *, int32_t))f)(
            order, TRANS, (int32_t)rows, (int32_t)cols, (REAL)1, A, (int32_t)lda, x,
            (int32_t)incx, (REAL)0, y, (int32_t)incy);
}

static REAL FN(call_dot)(ptrdiff_t n, const REAL *x, ptrdiff_t incx, const REAL *y,
                         ptrdiff_t incy)
{
    void *f = fastnn_blas.dot[sizeof(REAL) == 8];
    /* numpy's dot: chunks of at most 2^30 elements, their BLAS dots summed in double */
    double sum = 0.0;
    while (n > 0) {
        ptrdiff_t chunk = n < ((ptrdiff_t)1 << 30) ? n : ((ptrdiff_t)1 << 30);
        if (fastnn_blas.ilp64)
            sum += ((REAL (*)(int64_t, const REAL *, int64_t, const REAL *, int64_t))f)(
                chunk, x, incx, y, incy);
        else
            sum += ((REAL (*)(int32_t, const REAL *, int32_t, const REAL *, int32_t))f)(
                (int32_t)chunk, x, (int32_t)incx, y, (int32_t)incy);
        x += chunk * incx;
        y += chunk * incy;
        n -= chunk;
    }
    return (REAL)sum;
}

static void FN(call_syrk)(int trans, ptrdiff_t n, ptrdiff_t k, const REAL *A, ptrdiff_t lda,
                          REAL *C, ptrdiff_t ldc)
{
    void *f = fastnn_blas.syrk[sizeof(REAL) == 8];
    if (fastnn_blas.ilp64)
        ((void (*)(int, int, int, int64_t, int64_t, REAL, const REAL *, int64_t, REAL, REAL *,
                   int64_t))f)(ROW_MAJOR, UPPER, trans, n, k, (REAL)1, A, lda, (REAL)0, C, ldc);
    else
        ((void (*)(int, int, int, int32_t, int32_t, REAL, const REAL *, int32_t, REAL, REAL *,
                   int32_t))f)(ROW_MAJOR, UPPER, trans, (int32_t)n, (int32_t)k, (REAL)1, A,
                               (int32_t)lda, (REAL)0, C, (int32_t)ldc);
}

/* matmul with leading dimensions: A's rows (columns when trans_a) lda apart, B's ldb apart
 * (what a block of rows of a bigger operand has); C is C-contiguous (m, n). The strides
 * numpy would see for such a view pick its path. */
static void FN(matmul_ld)(const REAL *A, int trans_a, ptrdiff_t lda, const REAL *B, int trans_b,
                          ptrdiff_t ldb, REAL *C, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    /* Element strides of the operands as numpy sees them: A[i, j] at i * a_row + j * a_col. */
    ptrdiff_t a_row = trans_a ? 1 : lda, a_col = trans_a ? lda : 1;
    ptrdiff_t b_row = trans_b ? 1 : ldb, b_col = trans_b ? ldb : 1;
    if (m == 1 || n == 1 || k == 1) {  /* numpy's special cases, in its order */
        if (m == 1 && n == 1) {
            C[0] = FN(call_dot)(k, A, a_col, B, b_row);
        } else if (k == 1) {
            /* an outer product by numpy's own loop: 0 + a * b, as it sums */
            for (ptrdiff_t i = 0; i < m; i++)
                for (ptrdiff_t j = 0; j < n; j++) {
                    REAL s = 0;
                    s += A[i * a_row] * B[j * b_col];
                    C[i * n + j] = s;
                }
        } else if (m == 1) {
            /* vector @ matrix: gemv on B, column-major when B is a transpose */
            if (b_row == 1) FN(call_gemv)(COL_MAJOR, k, n, B, b_col, A, a_col, C, 1);
            else FN(call_gemv)(ROW_MAJOR, k, n, B, b_row, A, a_col, C, 1);
        } else {
            /* matrix @ vector (n == 1) */
            if (a_col == 1) FN(call_gemv)(COL_MAJOR, k, m, A, a_row, B, b_row, C, 1);
            else FN(call_gemv)(ROW_MAJOR, k, m, A, a_col, B, b_row, C, 1);
        }
        return;
    }
    int ta = trans_a ? TRANS : NO_TRANS, tb = trans_b ? TRANS : NO_TRANS;
    if (A == B && m == n && a_row == b_col && a_col == b_row && ta != tb) {
        /* a matrix times its own transpose: numpy computes the upper triangle and copies */
        FN(call_syrk)(ta, n, k, A, ta == NO_TRANS ? lda : ldb, C, n);
        for (ptrdiff_t i = 0; i < n; i++)
            for (ptrdiff_t j = i + 1; j < n; j++) C[j * n + i] = C[i * n + j];
        return;
    }
    FN(call_gemm)(ta, tb, m, n, k, A, lda, B, ldb, C, n);
}

void FN(matmul)(const REAL *A, int trans_a, const REAL *B, int trans_b, REAL *C,
                ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    FN(matmul_ld)(A, trans_a, trans_a ? m : k, B, trans_b, trans_b ? k : n, C, m, n, k);
}

void FN(matmul_split)(const REAL *A, int trans_a, const REAL *B, int trans_b, REAL *C,
                      ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t block, int n_threads)
{
    /* about 3 chunks per thread (fastnn/threads.py: _row_chunks), cut at multiples of
     * block, taken by the threads in turn as they come free */
    ptrdiff_t blocks = block > 0 ? (m + block - 1) / block : 0;
    ptrdiff_t per = (blocks + (ptrdiff_t)n_threads * 3 - 1) / ((ptrdiff_t)n_threads * 3);
    per = (per > 1 ? per : 1) * (block > 0 ? block : 1);
    ptrdiff_t chunks = (m + per - 1) / per;
    ptrdiff_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    if (n_threads < 2 || block <= 0 || chunks < 2) {
        FN(matmul_ld)(A, trans_a, lda, B, trans_b, ldb, C, m, n, k);
        return;
    }
#ifdef _OPENMP
    #pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
#endif
    for (ptrdiff_t c = 0; c < chunks; c++) {
        ptrdiff_t r0 = c * per, r1 = r0 + per < m ? r0 + per : m;
        FN(matmul_ld)(A + r0 * (trans_a ? 1 : lda), trans_a, lda, B, trans_b, ldb, C + r0 * n,
                      r1 - r0, n, k);
    }
}

#endif
