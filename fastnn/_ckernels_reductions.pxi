# Wrappers for csrc/reductions.c (included by _ckernels.pyx).

cdef void _col_sum(const floating[:, ::1] X, floating[::1] out, int nt) noexcept nogil:
    if floating is float:
        col_sum_f32(&X[0, 0], &out[0], X.shape[0], X.shape[1], nt)
    else:
        col_sum_f64(&X[0, 0], &out[0], X.shape[0], X.shape[1], nt)


def col_sum(X, out=None, n_threads=None):
    """out[j] = sum over rows of X[:, j], in a fixed order."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    X = _in(X, k, "X")
    out = np.empty(shape[1], X.dtype) if out is None else _out(out, k, (shape[1],), "out")
    if shape[1] == 0:
        return out
    if shape[0] == 0:
        out[...] = 0
        return out
    if k == 0:
        _col_sum[float](X, out, nt)
    else:
        _col_sum[double](X, out, nt)
    return out


cdef double _sum_squares(const floating[::1] x, int nt) noexcept nogil:
    if floating is float:
        return sum_squares_f32(&x[0], x.shape[0], nt)
    else:
        return sum_squares_f64(&x[0], x.shape[0], nt)


def sum_squares(x, n_threads=None):
    """Sum of squares of all elements, accumulated in float64 in a fixed order."""
    cdef int k = _kind(x, "x"), nt = _nt(n_threads)
    x = np.ascontiguousarray(x).reshape(-1)
    if x.shape[0] == 0:
        return 0.0
    if k == 0:
        return _sum_squares[float](x, nt)
    return _sum_squares[double](x, nt)
