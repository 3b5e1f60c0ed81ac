# Wrappers for csrc/reductions.c (included by _ckernels.pyx).

cdef void _col_sum(const floating[:, ::1] X, floating[::1] out, int nt) noexcept nogil:
    if floating is float:
        col_sum_f32(&X[0, 0], &out[0], X.shape[0], X.shape[1], nt)
    else:
        col_sum_f64(&X[0, 0], &out[0], X.shape[0], X.shape[1], nt)


def col_sum(X, out=None, n_threads=None):
    """out[j] = sum over rows of X[:, j], in a fixed order."""
    cdef Py_ssize_t r, c
    cdef int tn = _fast_2d(X, &r, &c)
    cdef char *xp
    cdef char *op
    if tn >= 0:
        xp = _fast_ptr(X, tn, 2, r, c, False)
        op = _fast_ptr(out, tn, 1, c, 0, True)
        if xp != NULL and op != NULL:
            if tn == cnp.NPY_FLOAT:
                col_sum_f32(<const float *>xp, <float *>op, r, c, _nt(n_threads))
            else:
                col_sum_f64(<const double *>xp, <double *>op, r, c, _nt(n_threads))
            return out
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


def argmax_hits(y_pred, labels, n_threads=None):
    """The number of rows i of the 2-D float32/float64 ``y_pred`` whose argmax (the first
    maximum; a NaN counts as the maximum, as np.argmax) equals ``labels[i]`` (1-D int64):
    ``int(np.count_nonzero(np.argmax(y_pred, axis=1) == labels))``. Serial (``n_threads``
    is accepted for the kernels' common signature)."""
    cdef Py_ssize_t r, c
    cdef int tn = _fast_2d(y_pred, &r, &c)
    cdef char *pp
    cdef char *lp
    if tn < 0:
        k = _kind(y_pred, "y_pred")
        shape = _shape2(y_pred, "y_pred")
        if shape[1] == 0:
            raise ValueError(f"argmax_hits: y_pred has no columns (shape {shape})")
        y_pred = _in(y_pred, k, "y_pred")
        tn = cnp.NPY_FLOAT if k == 0 else cnp.NPY_DOUBLE
        r, c = shape
    if r == 0:
        return 0
    pp = _fast_ptr(y_pred, tn, 2, r, c, False)
    if pp == NULL:  # strided, unaligned or byte-swapped: a native contiguous copy
        y_pred = np.ascontiguousarray(y_pred, dtype=np.float32 if tn == cnp.NPY_FLOAT
                                      else np.float64)
        pp = _fast_ptr(y_pred, tn, 2, r, c, False)
    lp = _fast_ptr(labels, cnp.NPY_INT64, 1, r, 0, False)
    if lp == NULL:
        labels = np.ascontiguousarray(labels)
        if labels.dtype != np.int64 or labels.shape != (r,):
            raise ValueError(f"argmax_hits: labels must be int64 of shape ({r},), got "
                             f"{labels.dtype} {labels.shape}")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        lp = _fast_ptr(labels, cnp.NPY_INT64, 1, r, 0, False)
    if pp == NULL or lp == NULL:
        raise ValueError("argmax_hits: could not read y_pred and labels as contiguous arrays")
    if tn == cnp.NPY_FLOAT:
        return argmax_hits_f32(<const float *>pp, <const int64_t *>lp, r, c)
    return argmax_hits_f64(<const double *>pp, <const int64_t *>lp, r, c)


def argmax_match_hits(y_pred, y_true, n_threads=None):
    """The number of rows whose argmax (first maximum, a NaN counting as the maximum, as
    np.argmax) in ``y_pred`` is the argmax of the same row of ``y_true``: categorical
    accuracy's hits. Both 2-D float32 or float64 arrays of one shape and dtype. Serial."""
    cdef int k = _kind(y_pred, "y_pred")
    shape = _shape2(y_pred, "y_pred")
    if shape[1] == 0:
        raise ValueError(f"argmax_match_hits: y_pred has no columns (shape {shape})")
    if _kind(y_true, "y_true") != k or np.shape(y_true) != shape:
        raise ValueError(f"argmax_match_hits: y_true must be y_pred's shape {shape} and dtype, "
                         f"got {np.shape(y_true)} {np.asarray(y_true).dtype}")
    p = np.ascontiguousarray(y_pred)
    t = np.ascontiguousarray(y_true)
    cdef Py_ssize_t r = shape[0], c = shape[1]
    if r == 0:
        return 0
    if k == 0:
        return argmax_match_hits_f32(<const float *>cnp.PyArray_DATA(p),
                                     <const float *>cnp.PyArray_DATA(t), r, c)
    return argmax_match_hits_f64(<const double *>cnp.PyArray_DATA(p),
                                 <const double *>cnp.PyArray_DATA(t), r, c)


def threshold_hits(y_pred, y_true, double threshold=0.5, n_threads=None):
    """The number of elements with (y_pred > threshold) == (y_true > 0.5), compared in the
    arrays' dtype (as numpy compares a float32 array with a Python float): binary accuracy's
    hits. Float32 or float64 arrays of one shape and dtype. Serial."""
    cdef int k = _kind(y_pred, "y_pred")
    if _kind(y_true, "y_true") != k or np.shape(y_true) != np.shape(y_pred):
        raise ValueError(f"threshold_hits: y_true must be y_pred's shape {np.shape(y_pred)} and "
                         f"dtype, got {np.shape(y_true)} {np.asarray(y_true).dtype}")
    p = np.ascontiguousarray(y_pred).reshape(-1)
    t = np.ascontiguousarray(y_true).reshape(-1)
    cdef Py_ssize_t n = p.shape[0]
    if n == 0:
        return 0
    if k == 0:
        return threshold_hits_f32(<const float *>cnp.PyArray_DATA(p),
                                  <const float *>cnp.PyArray_DATA(t), threshold, n)
    return threshold_hits_f64(<const double *>cnp.PyArray_DATA(p),
                              <const double *>cnp.PyArray_DATA(t), threshold, n)


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


cdef int _all_finite(const floating[::1] x, int nt) noexcept nogil:
    if floating is float:
        return all_finite_f32(&x[0], x.shape[0], nt)
    else:
        return all_finite_f64(&x[0], x.shape[0], nt)


def all_finite(x, n_threads=None):
    """True when no element of the float32/float64 array ``x`` (any shape) is NaN or +-inf:
    ``bool(np.isfinite(x).all())`` without the boolean temporary."""
    cdef int k = _kind(x, "x"), nt = _nt(n_threads)
    # The order of the elements does not matter, so any contiguous layout (C or Fortran) is
    # read in place; a strided view is copied first (one pass more, but correct; the model's
    # inputs are made C-contiguous before they are checked, so that path is not hot).
    x = x.ravel(order="K")
    if x.shape[0] == 0:
        return True
    if k == 0:
        return bool(_all_finite[float](x, nt))
    return bool(_all_finite[double](x, nt))


from libc.errno cimport errno


def take_rows(src, index, out=None, n_threads=None):
    """out[i] = src[index[i]] for the rows (first axis) of a C-contiguous array of any
    numeric dtype: ``np.take(src, index, axis=0, out=out)``, with every index checked to be
    in [0, len(src)) (a ValueError naming the first bad one) before anything is written.
    ``index``: 1-D int64; ``out``: C-contiguous, writable, dtype of src, shape
    (len(index),) + src.shape[1:], not overlapping src. The mini-batch gather of fit."""
    cdef int nt = _nt(n_threads)
    cdef cnp.ndarray s, ix, o
    cdef Py_ssize_t n, n_index, row_bytes, bad, j
    cdef char *sp
    cdef char *op
    cdef char *ip
    if not isinstance(src, np.ndarray):
        raise TypeError(f"take_rows: src must be a numpy array, got {type(src).__name__}")
    s = <cnp.ndarray>src
    # the C-API tests first (a step gathers two or three batches): the Python-level ones
    # only decide when they do not pass
    if not cnp.PyArray_ISNUMBER(s) and s.dtype.kind not in "biufc":
        raise TypeError(f"take_rows: src must have a numeric dtype, got {s.dtype}")
    if cnp.PyArray_NDIM(s) < 1:
        raise ValueError(f"take_rows: src must have a row axis, got shape {src.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(s):
        raise ValueError("take_rows: src must be C-contiguous (copying it for every batch "
                         "would cost more than the gather): pass np.ascontiguousarray(src)")
    if not isinstance(index, np.ndarray):
        raise TypeError(f"take_rows: index must be an int64 numpy array, got {type(index).__name__}")
    ix = <cnp.ndarray>index
    if not (cnp.PyArray_TYPE(ix) == cnp.NPY_INT64 and cnp.PyArray_ISNOTSWAPPED(ix)) \
            and index.dtype != np.int64:
        raise TypeError(f"take_rows: index must be int64, got {index.dtype}")
    if cnp.PyArray_NDIM(ix) != 1:
        raise ValueError(f"take_rows: index must be 1-D, got shape {index.shape}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(ix) and cnp.PyArray_ISALIGNED(ix)):
        ix = <cnp.ndarray>np.ascontiguousarray(index)
    n = cnp.PyArray_DIM(s, 0)
    n_index = cnp.PyArray_DIM(ix, 0)
    if out is None:
        out = np.empty((n_index,) + src.shape[1:], src.dtype)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"take_rows: out must be a numpy array, got {type(out).__name__}")
    o = <cnp.ndarray>out
    if not (cnp.PyArray_TYPE(o) == cnp.PyArray_TYPE(s) and cnp.PyArray_ISNOTSWAPPED(o)
            and cnp.PyArray_ISNOTSWAPPED(s)) and o.dtype != s.dtype:
        raise TypeError(f"take_rows: out has dtype {o.dtype}, expected {s.dtype} (the dtype of src)")
    if cnp.PyArray_NDIM(o) != cnp.PyArray_NDIM(s) or cnp.PyArray_DIM(o, 0) != n_index:
        raise ValueError(f"take_rows: out has shape {out.shape}, expected {(n_index,) + src.shape[1:]}")
    for j in range(1, cnp.PyArray_NDIM(s)):
        if cnp.PyArray_DIM(o, j) != cnp.PyArray_DIM(s, j):
            raise ValueError(f"take_rows: out has shape {out.shape}, expected {(n_index,) + src.shape[1:]}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(o) or not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError("take_rows: out must be a writable C-contiguous array")
    row_bytes = cnp.PyArray_NBYTES(s) // n if n > 0 else 0
    sp = <char *>cnp.PyArray_DATA(s)
    op = <char *>cnp.PyArray_DATA(o)
    if (n_index > 0 and row_bytes > 0 and op < sp + cnp.PyArray_NBYTES(s)
            and sp < op + cnp.PyArray_NBYTES(o)):
        raise ValueError("take_rows: out overlaps src")
    # The kernel checks the indices, then reads them again while it writes out: indices in
    # out's memory would be overwritten by earlier rows after the check (reads outside src).
    # np.take reads them first, so take a copy (only in this unusual case).
    ip = <char *>cnp.PyArray_DATA(ix)
    if (n_index > 0 and cnp.PyArray_NBYTES(o) > 0 and ip < op + cnp.PyArray_NBYTES(o)
            and op < ip + cnp.PyArray_NBYTES(ix)):
        ix = <cnp.ndarray>ix.copy()
    with nogil:
        bad = take_rows_c(sp, <const int64_t *>cnp.PyArray_DATA(ix), op, n, n_index, row_bytes, nt)
    if bad >= 0:
        raise ValueError(f"take_rows: index[{bad}] = {int(ix[bad])} is out of range for "
                         f"src with {n} rows (must be in [0, {n}))")
    return out


def read_rows(fd, offset, n, index, out, n_threads=None):
    """out[i] = row index[i] of the ``n`` rows stored in the open file ``fd`` from byte
    ``offset`` on, each ``out[0].nbytes`` bytes (a C-order .npy's data after its header):
    ``np.take(np.load(path, mmap_mode="r"), index, axis=0, out=out)`` without mapping the
    file (pread). Every index is checked first (a ValueError naming the first bad one); a
    failed or short read is an OSError. ``index``: 1-D int64; ``out``: writable,
    C-contiguous, of any numeric dtype. The shuffled gather of fit on a memory-mapped file."""
    cdef int nt = _nt(n_threads)
    cdef cnp.ndarray ix, o
    cdef Py_ssize_t n_index, row_bytes, bad, rows = n
    cdef int c_fd = fd, err = 0
    cdef int64_t off = offset
    if not isinstance(out, np.ndarray):
        raise TypeError(f"read_rows: out must be a numpy array, got {type(out).__name__}")
    o = <cnp.ndarray>out
    if o.dtype.kind not in "biufc":
        raise TypeError(f"read_rows: out must have a numeric dtype, got {o.dtype}")
    if cnp.PyArray_NDIM(o) < 1 or not cnp.PyArray_IS_C_CONTIGUOUS(o) or not cnp.PyArray_ISWRITEABLE(o):
        raise ValueError("read_rows: out must be a writable C-contiguous array with a row axis")
    if not isinstance(index, np.ndarray):
        raise TypeError(f"read_rows: index must be an int64 numpy array, got {type(index).__name__}")
    if index.dtype != np.int64 or index.ndim != 1:
        raise TypeError(f"read_rows: index must be 1-D int64, got {index.dtype} of shape {index.shape}")
    if rows < 0 or off < 0:
        raise ValueError(f"read_rows: n and offset must be >= 0, got {n} and {offset}")
    ix = <cnp.ndarray>np.ascontiguousarray(index)
    n_index = cnp.PyArray_DIM(ix, 0)
    if cnp.PyArray_DIM(o, 0) != n_index:
        raise ValueError(f"read_rows: out has {out.shape[0]} rows, index {n_index}")
    row_bytes = cnp.PyArray_NBYTES(o) // n_index if n_index > 0 else 0
    with nogil:
        bad = read_rows_c(c_fd, off, <const int64_t *>cnp.PyArray_DATA(ix), cnp.PyArray_DATA(o),
                          rows, n_index, row_bytes, nt)
        err = errno
    if bad >= 0:
        raise ValueError(f"read_rows: index[{bad}] = {int(ix[bad])} is out of range for "
                         f"a file of {n} rows (must be in [0, {n}))")
    if bad <= -2:
        import os as _os
        row = -2 - bad
        if err == 0:
            raise OSError(f"read_rows: the file ends before row {int(ix[row])} "
                          f"(index[{row}]): is it shorter than its header says?")
        raise OSError(err, f"read_rows: reading row {int(ix[row])} (index[{row}]) failed: "
                           f"{_os.strerror(err)}")
    return out
