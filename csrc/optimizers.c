/* Optimizer updates: one in-place pass over a parameter, its gradient and its state.
 * Each follows Keras 3's update rule step for step (see the Python class docstrings).
 * Template compiled once per dtype (see the end). */
#ifndef REAL

#include <math.h>
#include "fastnn.h"
#include "parallel.h"

#define REAL float
#define FN(name) name##_f32
#define M(fn) fn##f
#include "optimizers.c"
#undef REAL
#undef FN
#undef M

#define REAL double
#define FN(name) name##_f64
#define M(fn) fn
#include "optimizers.c"
#undef REAL
#undef FN
#undef M

#else /* template body */

FASTNN_CLONES
static void FN(sgd_range)(REAL *p, const REAL *g, REAL *v, REAL lr, REAL mom, int nesterov,
                          ptrdiff_t lo, ptrdiff_t hi)
{
    if (!v) {
        for (ptrdiff_t i = lo; i < hi; i++) p[i] -= lr * g[i];
    } else if (nesterov) {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL m = mom * v[i] - lr * g[i];
            v[i] = m;
            p[i] += mom * m - lr * g[i];
        }
    } else {
        for (ptrdiff_t i = lo; i < hi; i++) {
            REAL m = mom * v[i] - lr * g[i];
            v[i] = m;
            p[i] += m;
        }
    }
}

void FN(sgd_update)(REAL *p, const REAL *g, REAL *v, double lr, double momentum, int nesterov,
                    ptrdiff_t n, int n_threads)
{
    FASTNN_SPLIT(n, n, n_threads,
                 FN(sgd_range)(p, g, v, (REAL)lr, (REAL)momentum, nesterov, lo, hi));
}

#endif /* template body */
