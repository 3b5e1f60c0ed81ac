# Wrappers for csrc/embedding.c (included by _ckernels.pyx after _ckernels_reductions.pxi,
# whose numpy cimport and take_rows declaration they use).

cdef Py_ssize_t _embedding_forward(const floating *codes, const floating *W, floating *out,
                                   int64_t *index, Py_ssize_t n, Py_ssize_t rows,
                                   Py_ssize_t cols, int nt) noexcept nogil:
    if floating is float:
        return embedding_forward_f32(codes, W, out, index, n, rows, cols, nt)
    else:
        return embedding_forward_f64(codes, W, out, index, n, rows, cols, nt)


cdef Py_ssize_t _embedding_backward(const floating *dY, const int64_t *index, floating *dW,
                                    Py_ssize_t n, Py_ssize_t rows, Py_ssize_t cols,
                                    int nt) noexcept nogil:
    if floating is float:
        return embedding_backward_f32(dY, index, dW, n, rows, cols, nt)
    else:
        return embedding_backward_f64(dY, index, dW, n, rows, cols, nt)


cdef str _emb_position(tuple shape, Py_ssize_t flat):
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


cdef object _emb_buffer(a, str what, dtype, tuple shape, str name):
    """An output buffer of the embedding kernels, checked as the reference checks it."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: {what} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if a.shape != shape:
        raise ValueError(f"{name}: {what} has shape {a.shape}, expected {shape}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name}: {what} must be a writable C-contiguous array")
    return a


cdef bint _emb_overlap(cnp.ndarray a, cnp.ndarray b):
    cdef char *ap = <char *>cnp.PyArray_DATA(a)
    cdef char *bp = <char *>cnp.PyArray_DATA(b)
    return (cnp.PyArray_NBYTES(a) > 0 and cnp.PyArray_NBYTES(b) > 0
            and ap < bp + cnp.PyArray_NBYTES(b) and bp < ap + cnp.PyArray_NBYTES(a))


def embedding_forward(codes, W, out=None, index=None, n_threads=None):
    """out[...] = W[codes[...]]: the row of the table ``W`` (rows, cols) named by each code.

    ``codes``: an array of any shape holding row numbers, either of an integer dtype or of
    W's float dtype holding integral values (fit hands a model its inputs as floats).
    ``out``: codes.shape + (cols,), W's dtype; ``index`` (optional): codes.shape, int64,
    receives the codes as row numbers (what embedding_backward takes). Every code is
    checked to be an integer in [0, rows) before out is written: a ValueError names the
    first bad one (C order) and its position; NaN, -1, rows and 2.5 are all refused."""
    cdef int k, nt = _nt(n_threads)
    cdef Py_ssize_t rows, cols, n, bad
    cdef cnp.ndarray c, w, o, ix
    cdef char *wp
    cdef char *op
    if not isinstance(W, np.ndarray):
        raise TypeError(f"embedding_forward: W must be a numpy array, got {type(W).__name__}")
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"embedding_forward: W must be float32 or float64, got {W.dtype}")
    k = _kind(W, "W")
    if W.ndim != 2:
        raise ValueError(f"embedding_forward: W must be 2-D (rows, cols), got shape {W.shape}")
    if not isinstance(codes, np.ndarray):
        raise TypeError(f"embedding_forward: codes must be a numpy array, got {type(codes).__name__}")
    if codes.dtype.kind not in "iu" and codes.dtype != W.dtype:
        raise TypeError(f"embedding_forward: codes must have an integer dtype or W's dtype "
                        f"({W.dtype}), got {codes.dtype}")
    w = <cnp.ndarray>np.ascontiguousarray(W)
    rows, cols = w.shape[0], w.shape[1]
    shape = codes.shape + (cols,)
    if out is None:
        out = np.empty(shape, w.dtype)
    o = <cnp.ndarray>_emb_buffer(out, "out", w.dtype, shape, "embedding_forward")
    if index is None:
        index = np.empty(codes.shape, np.int64)
    ix = <cnp.ndarray>_emb_buffer(index, "index", np.int64, codes.shape, "embedding_forward")
    wp = <char *>cnp.PyArray_DATA(w)
    op = <char *>cnp.PyArray_DATA(o)
    if _emb_overlap(o, w):
        raise ValueError("embedding_forward: out overlaps W")
    c = <cnp.ndarray>np.ascontiguousarray(codes)
    n = cnp.PyArray_SIZE(c)
    if c.dtype.kind in "iu":
        # integer codes need no conversion check, only the range (numpy compares any
        # integer dtype with rows exactly); then the plain gather
        flags = (c < 0) | (c >= rows)
        bad = int(np.argmax(flags.reshape(-1))) if n and flags.any() else -1
        if bad < 0:
            np.copyto(ix, c, casting="unsafe")
            with nogil:
                take_rows_c(wp, <const int64_t *>cnp.PyArray_DATA(ix), op, rows, n,
                            cols * cnp.PyArray_ITEMSIZE(w), nt)
    elif k == 0:
        with nogil:
            bad = _embedding_forward[float](<const float *>cnp.PyArray_DATA(c), <const float *>wp,
                                            <float *>op, <int64_t *>cnp.PyArray_DATA(ix), n,
                                            rows, cols, nt)
    else:
        with nogil:
            bad = _embedding_forward[double](<const double *>cnp.PyArray_DATA(c),
                                             <const double *>wp, <double *>op,
                                             <int64_t *>cnp.PyArray_DATA(ix), n, rows, cols, nt)
    if bad >= 0:
        value = c.reshape(-1)[bad]
        value = str(value)  # a numpy scalar: the shortest digits of its own dtype
        raise ValueError(f"embedding_forward: codes{_emb_position(codes.shape, bad)} = {value} is "
                         f"not a row of W: codes must be integers in [0, {rows})")
    return out


def embedding_backward(dY, index, rows, out=None, n_threads=None):
    """out (rows, cols) = the gradient of embedding_forward with respect to W: zeros, then
    ``out[index[...]] += dY[...]`` in C order of the indices (``np.add.at``: a row named k
    times gets its k gradient rows added, in order). ``dY``: index.shape + (cols,).
    Threads own ranges of the table's rows, so the result has the same bits for any
    thread count."""
    cdef int k, nt = _nt(n_threads)
    cdef Py_ssize_t n, cols, bad, r
    cdef cnp.ndarray g, ix, o
    if not isinstance(dY, np.ndarray) or dY.dtype not in (np.float32, np.float64):
        raise TypeError(f"embedding_backward: dY must be a float32 or float64 numpy array, got "
                        f"{getattr(dY, 'dtype', type(dY).__name__)}")
    k = _kind(dY, "dY")
    if not isinstance(index, np.ndarray) or index.dtype != np.int64:
        raise TypeError(f"embedding_backward: index must be an int64 numpy array, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if dY.ndim != index.ndim + 1 or dY.shape[:-1] != index.shape:
        raise ValueError(f"embedding_backward: dY has shape {dY.shape}, expected index.shape + "
                         f"(cols,) = {index.shape} + (cols,)")
    r = int(rows)
    if r < 0:
        raise ValueError(f"embedding_backward: rows must be >= 0, got {r}")
    cols = dY.shape[dY.ndim - 1]
    if out is None:
        out = np.empty((r, cols), dY.dtype)
    o = <cnp.ndarray>_emb_buffer(out, "out", dY.dtype, (r, cols), "embedding_backward")
    g = <cnp.ndarray>np.ascontiguousarray(dY)
    ix = <cnp.ndarray>np.ascontiguousarray(index)
    if _emb_overlap(o, g) or _emb_overlap(o, ix):
        # out is zeroed first: the gradient or the indices in it would be lost
        raise ValueError("embedding_backward: out overlaps dY or index")
    n = cnp.PyArray_SIZE(ix)
    with nogil:
        if k == 0:
            bad = _embedding_backward[float](<const float *>cnp.PyArray_DATA(g),
                                             <const int64_t *>cnp.PyArray_DATA(ix),
                                             <float *>cnp.PyArray_DATA(o), n, r, cols, nt)
        else:
            bad = _embedding_backward[double](<const double *>cnp.PyArray_DATA(g),
                                              <const int64_t *>cnp.PyArray_DATA(ix),
                                              <double *>cnp.PyArray_DATA(o), n, r, cols, nt)
    if bad >= 0:
        raise ValueError(f"embedding_backward: index{_emb_position(index.shape, bad)} = "
                         f"{int(ix.reshape(-1)[bad])} is out of range for a table of {r} rows "
                         f"(must be in [0, {r}))")
    return out
