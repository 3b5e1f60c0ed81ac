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

int split_geometry(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t *per, int *columns)
{
    /* chunks of C's shorter side repack the smaller operand: a chunk of rows packs all of
     * B again, a chunk of columns all of A */
    *columns = m < n;
    ptrdiff_t extent = *columns ? n : m;
    if ((double)m * (double)n * (double)k < (double)EPOCH_SPLIT_MIN_MACS
        || extent < 2 * EPOCH_SPLIT_ALIGN)
        return 0;
    ptrdiff_t p = (extent + EPOCH_SPLIT_CHUNKS - 1) / EPOCH_SPLIT_CHUNKS;
    *per = (p + EPOCH_SPLIT_ALIGN - 1) / EPOCH_SPLIT_ALIGN * EPOCH_SPLIT_ALIGN;
    return 1;
}

/* ---- the split's workers ------------------------------------------------------------
 * matmul_split hands the chunks of one product to fastnn's own worker threads (POSIX
 * threads, started on first use) and the calling thread, through a shared counter. Not
 * OpenMP: a parallel region ends with a barrier, so a worker that another process keeps
 * off its core (or that wakes late) would stall the product until it runs again, for a
 * scheduler time slice (milliseconds): the collapse the split exists to avoid. Here the
 * caller does not wait for a worker's chunk: once the counter runs out it waits for the
 * chunks in flight about as long as one of its own chunks took, then computes every chunk
 * not done itself (the same BLAS call on the same rows or columns: the same bits). (It does
 * wait for a shared `then` a worker has begun: see matmul_split_then.) A worker computes
 * into its own buffer and copies into C under the lock, unless the caller took the chunk
 * over meanwhile (it may have returned, and C moved on). fastnn/threads.py's _Job does the
 * same for the Python loop.
 * A worker late with a chunk the caller took over still reads A and B: whoever frees
 * them first calls matmul_split_quiesce (the compiled epoch, at the end of each epoch). */
#if !defined(_WIN32)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define FASTNN_SPLIT_POOL 1
/* measured on 2 cores: 0, 50 and 200 us within noise of each other in quiet epochs; a
 * little spin costs little under contention, where a worker's wake-up is slow */
#define FASTNN_SPLIT_SPIN_US 50

/* CHUNK_PLACED: in C from a worker, its `then` left to the caller (not shared) */
enum { CHUNK_PENDING = 0, CHUNK_DONE = 1, CHUNK_STOLEN = 2, CHUNK_PLACED = 3 };

struct split_job;
/* chunk i of the job into out (C itself, or a worker's buffer), rows ldo apart */
typedef void (*split_chunk_f)(const struct split_job *, ptrdiff_t i, void *out, ptrdiff_t ldo);

typedef struct split_job {
    split_chunk_f chunk;
    const void *A, *B;
    char *C;
    int ta, tb, columns, helpers;
    ptrdiff_t m, n, k, per, chunks, elsize;
    ptrdiff_t next, finished;     /* atomic: the next chunk to take; chunks in C */
    int refs;                     /* under the pool's lock: the caller, the pool, workers */
    matmul_then_f then;           /* run on each chunk once it is in C, or NULL */
    void *then_arg;
    int then_shared;              /* workers run `then` on their chunks (else the caller) */
    int thens;                    /* atomic: `then` calls running on workers */
    int state[];                  /* per chunk, under the lock: CHUNK_* */
} split_job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int workers;                  /* started */
    unsigned long posted;         /* jobs posted so far */
    split_job *job;               /* the job to help with, or NULL */
} split_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL};
static int split_reading;         /* atomic: workers that may be reading some A and B */

static double split_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* under the lock */
static void split_unref(split_job *job)
{
    if (--job->refs == 0) free(job);
}

/* chunk i's extent: rows (or columns) [i0, i1) */
static void split_bounds(const split_job *job, ptrdiff_t i, ptrdiff_t *i0, ptrdiff_t *i1)
{
    ptrdiff_t extent = job->columns ? job->n : job->m;
    *i0 = i * job->per;
    *i1 = *i0 + job->per < extent ? *i0 + job->per : extent;
}

/* `then` on chunk i's block of C */
static void split_then(const split_job *job, ptrdiff_t i)
{
    ptrdiff_t i0, i1;
    split_bounds(job, i, &i0, &i1);
    if (job->columns) job->then(job->then_arg, 0, job->m, i0, i1);
    else job->then(job->then_arg, i0, i1, 0, job->n);
}

/* where chunk i starts in C */
static char *split_dest(const split_job *job, ptrdiff_t i)
{
    ptrdiff_t i0, i1;
    split_bounds(job, i, &i0, &i1);
    return job->C + (job->columns ? i0 : i0 * job->n) * job->elsize;
}

/* a worker's share: chunks into its buffer, then into C unless taken over */
static void split_help(split_job *job, char **buf, size_t *cap)
{
    for (;;) {
        __atomic_add_fetch(&split_reading, 1, __ATOMIC_ACQ_REL);
        ptrdiff_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
        if (i >= job->chunks) {
            __atomic_sub_fetch(&split_reading, 1, __ATOMIC_RELEASE);
            return;
        }
        ptrdiff_t i0, i1;
        split_bounds(job, i, &i0, &i1);
        ptrdiff_t rows = job->columns ? job->m : i1 - i0, cols = job->columns ? i1 - i0 : job->n;
        size_t need = (size_t)(rows * cols * job->elsize);
        int ready = need <= *cap;
        if (!ready) {
            char *grown = realloc(*buf, need);
            if (grown) {
                *buf = grown;
                *cap = need;
                ready = 1;
            }
        }
        if (ready) job->chunk(job, i, *buf, cols);  /* else the caller computes it */
        __atomic_sub_fetch(&split_reading, 1, __ATOMIC_RELEASE);
        if (!ready) continue;
        int placed = 0;
        pthread_mutex_lock(&split_pool.lock);
        if (job->state[i] != CHUNK_STOLEN) {
            char *dst = split_dest(job, i);
            for (ptrdiff_t r = 0; r < rows; r++)
                memcpy(dst + r * job->n * job->elsize, *buf + r * cols * job->elsize,
                       (size_t)(cols * job->elsize));
            placed = job->then && job->then_shared;
            job->state[i] = job->then && !placed ? CHUNK_PLACED : CHUNK_DONE;
            /* counted before the caller can see the chunk done: it waits for the count */
            if (placed) __atomic_add_fetch(&job->thens, 1, __ATOMIC_ACQ_REL);
            __atomic_add_fetch(&job->finished, 1, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&split_pool.lock);
        if (placed) {
            split_then(job, i);  /* the chunk is still in this core's cache */
            __atomic_sub_fetch(&job->thens, 1, __ATOMIC_RELEASE);
        }
    }
}

/* How long a worker that finished its chunks watches for the next product before it
 * sleeps: a training step's products come tens of microseconds apart, and waking a
 * sleeping thread costs about as much (more in a virtual machine). */
static const double split_spin_seconds = FASTNN_SPLIT_SPIN_US * 1e-6;

static void *split_worker(void *arg)
{
    int index = (int)(intptr_t)arg;
    char *buf = NULL;
    size_t cap = 0;
    unsigned long seen = 0;
    pthread_mutex_lock(&split_pool.lock);
    for (;;) {
        split_job *job = split_pool.job;
        if (!job || split_pool.posted == seen || index >= job->helpers) {
            if (job) seen = split_pool.posted;  /* not one for this worker */
            if (split_spin_seconds > 0) {
                pthread_mutex_unlock(&split_pool.lock);
                double until = split_clock() + split_spin_seconds;
                while (__atomic_load_n(&split_pool.posted, __ATOMIC_RELAXED) == seen
                       && split_clock() < until)
                    ;
                pthread_mutex_lock(&split_pool.lock);
                if (split_pool.posted != seen) continue;
            }
            pthread_cond_wait(&split_pool.wake, &split_pool.lock);
            continue;
        }
        seen = split_pool.posted;
        job->refs++;
        pthread_mutex_unlock(&split_pool.lock);
        split_help(job, &buf, &cap);
        pthread_mutex_lock(&split_pool.lock);
        split_unref(job);
    }
    return NULL;
}

/* A forked child has none of the workers (and a lock held at the fork stays held). */
static void split_after_fork(void)
{
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
    split_pool.lock = lock;
    split_pool.wake = wake;
    split_pool.workers = 0;
    split_pool.job = NULL;
    split_reading = 0;
}

/* under the lock: at least n workers, as far as threads can be started */
static void split_grow(int n)
{
    static int fork_handler;
    if (!fork_handler) fork_handler = pthread_atfork(NULL, NULL, split_after_fork) == 0;
    sigset_t all, old;
    sigfillset(&all);
    /* signals (Ctrl-C) stay with the threads Python runs */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (split_pool.workers < n) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, split_worker,
                                    (void *)(intptr_t)split_pool.workers);
        pthread_attr_destroy(&attr);
        if (failed) break;
        split_pool.workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The product's chunks on the caller and up to n_threads - 1 workers. Returns -1, having
 * done nothing, when there is no memory for the bookkeeping. */
static int split_run(split_chunk_f chunk, const void *A, int ta, const void *B, int tb,
                     void *C, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per,
                     ptrdiff_t chunks, int columns, ptrdiff_t elsize, int n_threads,
                     matmul_then_f then, void *then_arg, int then_shared)
{
    split_job *job = malloc(sizeof(split_job) + (size_t)chunks * sizeof(int));
    if (!job) return -1;
    int helpers = (ptrdiff_t)n_threads - 1 < chunks - 1 ? n_threads - 1 : (int)(chunks - 1);
    split_job init = {chunk, A, B, (char *)C, ta, tb, columns, helpers, m, n, k, per, chunks,
                      elsize, 0, 0, 2, then, then_arg, then_shared, 0};
    memcpy(job, &init, sizeof init);
    memset(job->state, 0, (size_t)chunks * sizeof(int));
    pthread_mutex_lock(&split_pool.lock);
    if (split_pool.workers < helpers) split_grow(helpers);
    if (split_pool.job) split_unref(split_pool.job);
    split_pool.job = job;  /* the pool's reference */
    __atomic_add_fetch(&split_pool.posted, 1, __ATOMIC_RELEASE);  /* spinning workers read it */
    pthread_cond_broadcast(&split_pool.wake);
    pthread_mutex_unlock(&split_pool.lock);

    double t0 = split_clock();
    ptrdiff_t i, mine = 0;
    while ((i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED)) < chunks) {
        chunk(job, i, split_dest(job, i), n);
        if (then) split_then(job, i);
        pthread_mutex_lock(&split_pool.lock);
        job->state[i] = CHUNK_DONE;
        pthread_mutex_unlock(&split_pool.lock);
        __atomic_add_fetch(&job->finished, 1, __ATOMIC_RELEASE);
        mine++;
    }
    /* the chunks in flight on workers: worth waiting for about one chunk's time, no longer */
    double now = split_clock(), per_chunk = mine ? (now - t0) / (double)mine : 0.0;
    double until = now + 1.5 * per_chunk + 5e-5;
    while (__atomic_load_n(&job->finished, __ATOMIC_ACQUIRE) < chunks && split_clock() < until)
        ;
    for (i = 0; i < chunks; i++) {
        pthread_mutex_lock(&split_pool.lock);
        int state = job->state[i];
        if (state == CHUNK_PENDING) job->state[i] = CHUNK_STOLEN;
        pthread_mutex_unlock(&split_pool.lock);
        if (state == CHUNK_PENDING) chunk(job, i, split_dest(job, i), n);
        if (then && state != CHUNK_DONE) split_then(job, i);
    }
    /* a worker's `then` cannot be taken over (it has written part of its block): wait */
    for (int spins = 0; __atomic_load_n(&job->thens, __ATOMIC_ACQUIRE) > 0; spins++)
        if (spins > 1000) sched_yield();
    pthread_mutex_lock(&split_pool.lock);
    if (split_pool.job == job) {  /* the pool's reference too */
        split_pool.job = NULL;
        job->refs--;
    }
    split_unref(job);
    pthread_mutex_unlock(&split_pool.lock);
    return 0;
}

void matmul_split_quiesce(void)
{
    while (__atomic_load_n(&split_reading, __ATOMIC_ACQUIRE) > 0) sched_yield();
}
#else
void matmul_split_quiesce(void) {}
#endif

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

/* matmul with leading dimensions: A's rows (columns when trans_a) lda apart, B's ldb apart,
 * C's rows ldc apart (what a block of rows or columns of bigger operands has). The strides
 * numpy would see for such views pick its path. */
static void FN(matmul_ld)(const REAL *A, int trans_a, ptrdiff_t lda, const REAL *B, int trans_b,
                          ptrdiff_t ldb, REAL *C, ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n,
                          ptrdiff_t k)
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
                    C[i * ldc + j] = s;
                }
        } else if (m == 1) {
            /* vector @ matrix: gemv on B, column-major when B is a transpose */
            if (b_row == 1) FN(call_gemv)(COL_MAJOR, k, n, B, b_col, A, a_col, C, 1);
            else FN(call_gemv)(ROW_MAJOR, k, n, B, b_row, A, a_col, C, 1);
        } else {
            /* matrix @ vector (n == 1): C's column, ldc apart */
            if (a_col == 1) FN(call_gemv)(COL_MAJOR, k, m, A, a_row, B, b_row, C, ldc);
            else FN(call_gemv)(ROW_MAJOR, k, m, A, a_col, B, b_row, C, ldc);
        }
        return;
    }
    int ta = trans_a ? TRANS : NO_TRANS, tb = trans_b ? TRANS : NO_TRANS;
    if (A == B && m == n && a_row == b_col && a_col == b_row && ta != tb) {
        /* a matrix times its own transpose: numpy computes the upper triangle and copies */
        FN(call_syrk)(ta, n, k, A, ta == NO_TRANS ? lda : ldb, C, ldc);
        for (ptrdiff_t i = 0; i < n; i++)
            for (ptrdiff_t j = i + 1; j < n; j++) C[j * ldc + i] = C[i * ldc + j];
        return;
    }
    FN(call_gemm)(ta, tb, m, n, k, A, lda, B, ldb, C, ldc);
}

void FN(matmul)(const REAL *A, int trans_a, const REAL *B, int trans_b, REAL *C,
                ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    FN(matmul_ld)(A, trans_a, trans_a ? m : k, B, trans_b, trans_b ? k : n, C, n, m, n, k);
}

#ifdef FASTNN_SPLIT_POOL
/* chunk i of a split product into out, rows ldo apart */
static void FN(split_chunk)(const split_job *job, ptrdiff_t i, void *out, ptrdiff_t ldo)
{
    ptrdiff_t i0, i1, m = job->m, n = job->n, k = job->k;
    const REAL *A = (const REAL *)job->A, *B = (const REAL *)job->B;
    ptrdiff_t lda = job->ta ? m : k, ldb = job->tb ? k : n;
    split_bounds(job, i, &i0, &i1);
    if (job->columns)
        FN(matmul_ld)(A, job->ta, lda, B + i0 * (job->tb ? ldb : 1), job->tb, ldb, (REAL *)out,
                      ldo, m, i1 - i0, k);
    else
        FN(matmul_ld)(A + i0 * (job->ta ? 1 : lda), job->ta, lda, B, job->tb, ldb, (REAL *)out,
                      ldo, i1 - i0, n, k);
}
#endif

void FN(matmul_split_then)(const REAL *A, int trans_a, const REAL *B, int trans_b, REAL *C,
                           ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per, int columns,
                           int n_threads, matmul_then_f then, void *then_arg, int then_shared)
{
    /* chunks of `per` rows (columns) of C: their bits, whoever computes them */
    ptrdiff_t extent = columns ? n : m;
    if (per < 1) per = extent;
    ptrdiff_t chunks = (extent + per - 1) / per;
#ifdef FASTNN_SPLIT_POOL
    if (n_threads >= 2 && chunks >= 2
        && split_run(FN(split_chunk), A, trans_a, B, trans_b, C, m, n, k, per, chunks,
                     columns, sizeof(REAL), n_threads, then, then_arg, then_shared) == 0)
        return;
#endif
    ptrdiff_t lda = trans_a ? m : k, ldb = trans_b ? k : n;
    for (ptrdiff_t i0 = 0; i0 < extent; i0 += per) {
        ptrdiff_t w = per < extent - i0 ? per : extent - i0;
        if (columns) {
            FN(matmul_ld)(A, trans_a, lda, B + i0 * (trans_b ? ldb : 1), trans_b, ldb, C + i0,
                          n, m, w, k);
            if (then) then(then_arg, 0, m, i0, i0 + w);
        } else {
            FN(matmul_ld)(A + i0 * (trans_a ? 1 : lda), trans_a, lda, B, trans_b, ldb,
                          C + i0 * n, n, w, n, k);
            if (then) then(then_arg, i0, i0 + w, 0, n);
        }
    }
}

void FN(matmul_split)(const REAL *A, int trans_a, const REAL *B, int trans_b, REAL *C,
                      ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, ptrdiff_t per, int columns,
                      int n_threads)
{
    FN(matmul_split_then)(A, trans_a, B, trans_b, C, m, n, k, per, columns, n_threads, NULL,
                          NULL, 0);
}

#endif
