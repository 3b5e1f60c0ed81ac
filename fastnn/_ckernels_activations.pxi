# Wrappers for csrc/activations.c (included by _ckernels.pyx).

cdef void _bias_act_forward(floating[:, ::1] Z, const floating[::1] b, int act, double alpha,
                            floating[:, ::1] Y, int nt) noexcept nogil:
    cdef const floating *bp = NULL
    if b is not None:
        bp = &b[0]
    if floating is float:
        bias_act_forward_f32(&Z[0, 0], bp, act, alpha, &Y[0, 0], Z.shape[0], Z.shape[1], nt)
    else:
        bias_act_forward_f64(&Z[0, 0], bp, act, alpha, &Y[0, 0], Z.shape[0], Z.shape[1], nt)


def bias_act_forward(Z, b, int act, double alpha=0.0, out=None, n_threads=None):
    """out = act(Z + b); Z is overwritten with Z + b when b is given. ``out`` may be Z."""
    cdef Py_ssize_t r, c
    cdef int tn = _fast_2d(Z, &r, &c) if 0 <= act < 16 else -1
    cdef char *zp
    cdef char *yp
    cdef char *bp = NULL
    if tn >= 0:
        zp = _fast_ptr(Z, tn, 2, r, c, True)
        yp = _fast_ptr(out, tn, 2, r, c, True)
        if b is not None:
            bp = _fast_ptr(b, tn, 1, c, 0, False)
        if zp != NULL and yp != NULL and (b is None or bp != NULL):
            if tn == cnp.NPY_FLOAT:
                bias_act_forward_f32(<float *>zp, <const float *>bp, act, alpha, <float *>yp, r, c,
                                     _nt(n_threads))
            else:
                bias_act_forward_f64(<double *>zp, <const double *>bp, act, alpha, <double *>yp, r,
                                     c, _nt(n_threads))
            return out
    cdef int k = _kind(Z, "Z"), nt = _nt(n_threads)
    shape = _shape2(Z, "Z")
    _out(Z, k, shape, "Z")
    if b is not None:
        b = _in(b, k, "b")
        if b.shape != (shape[1],):
            raise ValueError(f"bias has shape {b.shape}, expected ({shape[1]},) for Z of shape {shape}")
    if not 0 <= act < FASTNN_N_ACTIVATIONS:
        raise ValueError(f"unknown activation code {act}")
    out = np.empty_like(Z) if out is None else _out(out, k, shape, "out")
    if shape[0] == 0 or shape[1] == 0:
        return out
    if k == 0:
        _bias_act_forward[float](Z, b, act, alpha, out, nt)
    else:
        _bias_act_forward[double](Z, b, act, alpha, out, nt)
    return out


cdef void _act_backward(const floating[:, ::1] dY, const floating[:, ::1] Z, const floating[:, ::1] Y,
                        int act, double alpha, floating[:, ::1] dZ, floating[::1] db,
                        int nt) noexcept nogil:
    cdef floating *dbp = NULL
    cdef const floating *zp = NULL
    if db is not None:
        dbp = &db[0]
    if Z is not None:
        zp = &Z[0, 0]
    if floating is float:
        act_backward_f32(&dY[0, 0], zp, &Y[0, 0], act, alpha, &dZ[0, 0], dbp, dY.shape[0], dY.shape[1], nt)
    else:
        act_backward_f64(&dY[0, 0], zp, &Y[0, 0], act, alpha, &dZ[0, 0], dbp, dY.shape[0], dY.shape[1], nt)


def act_backward(dY, Z, Y, int act, double alpha=0.0, out=None, db=None, n_threads=None):
    """out = dY * act'(Z); db (optional) = column sums of out. Z may be None except for
    gelu, swish and mish. ``out`` may be dY."""
    cdef Py_ssize_t r, c
    cdef int tn = _fast_2d(dY, &r, &c) if 0 <= act < 16 else -1
    cdef char *dyp
    cdef char *yp
    cdef char *op
    cdef char *zp = NULL
    cdef char *dbp = NULL
    if tn >= 0 and (Z is not None or act not in (7, 8, 12)):
        dyp = _fast_ptr(dY, tn, 2, r, c, False)
        yp = _fast_ptr(Y, tn, 2, r, c, False)
        op = _fast_ptr(out, tn, 2, r, c, True)
        if Z is not None:
            zp = _fast_ptr(Z, tn, 2, r, c, False)
        if db is not None:
            dbp = _fast_ptr(db, tn, 1, c, 0, True)
        if (dyp != NULL and yp != NULL and op != NULL and (Z is None or zp != NULL)
                and (db is None or dbp != NULL)):
            if tn == cnp.NPY_FLOAT:
                act_backward_f32(<const float *>dyp, <const float *>zp, <const float *>yp, act,
                                 alpha, <float *>op, <float *>dbp, r, c, _nt(n_threads))
            else:
                act_backward_f64(<const double *>dyp, <const double *>zp, <const double *>yp, act,
                                 alpha, <double *>op, <double *>dbp, r, c, _nt(n_threads))
            return out
    cdef int k = _kind(dY, "dY"), nt = _nt(n_threads)
    shape = _shape2(dY, "dY")
    dY = _in(dY, k, "dY")
    Y = _in(Y, k, "Y")
    if Y.shape != shape:
        raise ValueError(f"Y has shape {Y.shape}, expected {shape}")
    if act in (ACT_GELU, ACT_SWISH, ACT_MISH) and Z is None:
        raise ValueError("gelu, swish and mish need the pre-activation Z")
    if Z is not None:
        Z = _in(Z, k, "Z")
        if Z.shape != shape:
            raise ValueError(f"Z has shape {Z.shape}, expected {shape}")
    if not 0 <= act < FASTNN_N_ACTIVATIONS:
        raise ValueError(f"unknown activation code {act}")
    out = np.empty_like(dY) if out is None else _out(out, k, shape, "out")
    if db is not None:
        _out(db, k, (shape[1],), "db")
    if shape[0] == 0 or shape[1] == 0:
        if db is not None:
            db[...] = 0
        return out
    if k == 0:
        _act_backward[float](dY, Z, Y, act, alpha, out, db, nt)
    else:
        _act_backward[double](dY, Z, Y, act, alpha, out, db, nt)
    return out


cdef void _prelu_forward(const floating[:, ::1] X, const floating[::1] a, floating[:, ::1] Y,
                         int nt) noexcept nogil:
    if floating is float:
        prelu_forward_f32(&X[0, 0], &a[0], &Y[0, 0], X.shape[0], X.shape[1], nt)
    else:
        prelu_forward_f64(&X[0, 0], &a[0], &Y[0, 0], X.shape[0], X.shape[1], nt)


def prelu_forward(X, a, out=None, n_threads=None):
    """out = X if X > 0 else a * X, with one slope per column."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    X = _in(X, k, "X")
    a = _in(a, k, "alpha")
    if a.shape != (shape[1],):
        raise ValueError(f"alpha has shape {a.shape}, expected ({shape[1]},)")
    out = np.empty_like(X) if out is None else _out(out, k, shape, "out")
    if shape[0] == 0 or shape[1] == 0:
        return out
    if k == 0:
        _prelu_forward[float](X, a, out, nt)
    else:
        _prelu_forward[double](X, a, out, nt)
    return out


cdef void _prelu_backward(const floating[:, ::1] dY, const floating[:, ::1] X, const floating[::1] a,
                          floating[:, ::1] dX, floating[::1] da, int nt) noexcept nogil:
    if floating is float:
        prelu_backward_f32(&dY[0, 0], &X[0, 0], &a[0], &dX[0, 0], &da[0], X.shape[0], X.shape[1], nt)
    else:
        prelu_backward_f64(&dY[0, 0], &X[0, 0], &a[0], &dX[0, 0], &da[0], X.shape[0], X.shape[1], nt)


def prelu_backward(dY, X, a, out=None, da=None, n_threads=None):
    """out = dL/dX; da = dL/dalpha (summed over rows)."""
    cdef int k = _kind(dY, "dY"), nt = _nt(n_threads)
    shape = _shape2(dY, "dY")
    dY = _in(dY, k, "dY")
    X = _in(X, k, "X")
    a = _in(a, k, "alpha")
    if X.shape != shape or a.shape != (shape[1],):
        raise ValueError(f"prelu_backward: X {X.shape} and alpha {a.shape} do not match dY {shape}")
    out = np.empty_like(dY) if out is None else _out(out, k, shape, "out")
    da = np.empty(shape[1], dY.dtype) if da is None else _out(da, k, (shape[1],), "da")
    if shape[0] == 0 or shape[1] == 0:
        da[...] = 0
        return out
    if k == 0:
        _prelu_backward[float](dY, X, a, out, da, nt)
    else:
        _prelu_backward[double](dY, X, a, out, da, nt)
    return out


cdef void _maxout_forward(const floating[:, ::1] X, floating[:, ::1] Y, int32_t[:, ::1] arg,
                          Py_ssize_t k, int nt) noexcept nogil:
    if floating is float:
        maxout_forward_f32(&X[0, 0], &Y[0, 0], &arg[0, 0], Y.shape[0], Y.shape[1], k, nt)
    else:
        maxout_forward_f64(&X[0, 0], &Y[0, 0], &arg[0, 0], Y.shape[0], Y.shape[1], k, nt)


def maxout_forward(X, Py_ssize_t pieces, out=None, arg=None, n_threads=None):
    """X (n, units * pieces) -> out (n, units), the max over each unit's pieces; arg the
    winning piece (int32)."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    if pieces < 1 or shape[1] % pieces:
        raise ValueError(f"Maxout: {shape[1]} features are not a multiple of pieces={pieces}")
    X = _in(X, k, "X")
    oshape = (shape[0], shape[1] // pieces)
    out = np.empty(oshape, X.dtype) if out is None else _out(out, k, oshape, "out")
    if arg is None:
        arg = np.empty(oshape, np.int32)
    elif arg.dtype != np.int32 or arg.shape != oshape or not arg.flags.c_contiguous:
        raise ValueError(f"arg must be a C-contiguous int32 array of shape {oshape}")
    if oshape[0] == 0 or oshape[1] == 0:
        return out
    if k == 0:
        _maxout_forward[float](X, out, arg, pieces, nt)
    else:
        _maxout_forward[double](X, out, arg, pieces, nt)
    return out


cdef void _maxout_backward(const floating[:, ::1] dY, const int32_t[:, ::1] arg, floating[:, ::1] dX,
                           Py_ssize_t k, int nt) noexcept nogil:
    if floating is float:
        maxout_backward_f32(&dY[0, 0], &arg[0, 0], &dX[0, 0], dY.shape[0], dY.shape[1], k, nt)
    else:
        maxout_backward_f64(&dY[0, 0], &arg[0, 0], &dX[0, 0], dY.shape[0], dY.shape[1], k, nt)


def maxout_backward(dY, arg, Py_ssize_t pieces, out=None, n_threads=None):
    """out (n, units * pieces): dY routed to each unit's winning piece."""
    cdef int k = _kind(dY, "dY"), nt = _nt(n_threads)
    shape = _shape2(dY, "dY")
    dY = _in(dY, k, "dY")
    arg = np.ascontiguousarray(arg)
    if arg.dtype != np.int32 or arg.shape != shape:
        raise ValueError(f"arg must be int32 of shape {shape}")
    if pieces < 1:
        raise ValueError(f"pieces must be >= 1, got {pieces}")
    if shape[0] and shape[1] and (np.min(arg) < 0 or np.max(arg) >= pieces):
        raise ValueError(f"arg holds a piece index outside [0, {pieces})")
    oshape = (shape[0], shape[1] * pieces)
    out = np.empty(oshape, dY.dtype) if out is None else _out(out, k, oshape, "out")
    if shape[0] == 0 or shape[1] == 0:
        return out
    if k == 0:
        _maxout_backward[float](dY, arg, out, pieces, nt)
    else:
        _maxout_backward[double](dY, arg, out, pieces, nt)
    return out
