# Wrappers for csrc/normalization.c (included by _ckernels.pyx): batch normalization,
# the per-column affine map of inference-mode normalization, layer normalization.

cdef inline const floating *_cptr_or_null(const floating[::1] a) noexcept nogil:
    if a is None:
        return NULL
    return &a[0]


cdef inline floating *_ptr_or_null(floating[::1] a) noexcept nogil:
    if a is None:
        return NULL
    return &a[0]


cdef object _vec(a, int kind, Py_ssize_t m, str name, bint writable=False):
    """A per-column (or per-row) vector of length m: None stays None; inputs are made
    contiguous, outputs must already be writable and contiguous."""
    if a is None:
        return None
    if writable:
        return _out(a, kind, (m,), name)
    a = _in(a, kind, name)
    if a.shape != (m,):
        raise ValueError(f"{name} has shape {a.shape}, expected ({m},)")
    return a


cdef void _bn_train(const floating[:, ::1] X, const floating[::1] gamma, const floating[::1] beta,
                    double eps, double momentum, floating[::1] mm, floating[::1] mv,
                    floating[:, ::1] Y, floating[::1] mean, floating[::1] invstd, int nt) noexcept nogil:
    if floating is float:
        batchnorm_forward_train_f32(&X[0, 0], _cptr_or_null(gamma), _cptr_or_null(beta), eps, momentum,
                                    _ptr_or_null(mm), _ptr_or_null(mv), &Y[0, 0], &mean[0], &invstd[0],
                                    X.shape[0], X.shape[1], nt)
    else:
        batchnorm_forward_train_f64(&X[0, 0], _cptr_or_null(gamma), _cptr_or_null(beta), eps, momentum,
                                    _ptr_or_null(mm), _ptr_or_null(mv), &Y[0, 0], &mean[0], &invstd[0],
                                    X.shape[0], X.shape[1], nt)


def batchnorm_forward_train(X, gamma, beta, double epsilon, double momentum, moving_mean=None,
                            moving_variance=None, out=None, mean=None, invstd=None, n_threads=None):
    """Training-mode batch normalization of X (n, m) over its rows.

    mean, var = column mean and biased variance of X; invstd = 1 / sqrt(var + epsilon);
    out = (X - mean) * gamma * invstd + beta (gamma / beta None: 1 / 0). When given,
    moving_mean / moving_variance are updated in place:
    moving = moving * momentum + batch_stat * (1 - momentum). Returns (out, mean, invstd)."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    X = _in(X, k, "X")
    n, m = shape
    if n < 1:
        raise ValueError(f"batch normalization needs at least one row, got X of shape {shape}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    gamma = _vec(gamma, k, m, "gamma")
    beta = _vec(beta, k, m, "beta")
    if (moving_mean is None) != (moving_variance is None):
        raise ValueError("give both moving_mean and moving_variance, or neither")
    moving_mean = _vec(moving_mean, k, m, "moving_mean", True)
    moving_variance = _vec(moving_variance, k, m, "moving_variance", True)
    out = np.empty_like(X) if out is None else _out(out, k, shape, "out")
    mean = np.empty(m, X.dtype) if mean is None else _out(mean, k, (m,), "mean")
    invstd = np.empty(m, X.dtype) if invstd is None else _out(invstd, k, (m,), "invstd")
    if m == 0:
        return out, mean, invstd
    if k == 0:
        _bn_train[float](X, gamma, beta, epsilon, momentum, moving_mean, moving_variance, out, mean, invstd, nt)
    else:
        _bn_train[double](X, gamma, beta, epsilon, momentum, moving_mean, moving_variance, out, mean, invstd, nt)
    return out, mean, invstd


cdef void _bn_backward(const floating[:, ::1] dY, const floating[:, ::1] X, const floating[::1] mean,
                       const floating[::1] invstd, const floating[::1] gamma, floating[:, ::1] dX,
                       floating[::1] dgamma, floating[::1] dbeta, int nt) noexcept nogil:
    cdef floating *dxp = NULL
    if dX is not None:
        dxp = &dX[0, 0]
    if floating is float:
        batchnorm_backward_f32(&dY[0, 0], &X[0, 0], &mean[0], &invstd[0], _cptr_or_null(gamma), dxp,
                               _ptr_or_null(dgamma), _ptr_or_null(dbeta), X.shape[0], X.shape[1], nt)
    else:
        batchnorm_backward_f64(&dY[0, 0], &X[0, 0], &mean[0], &invstd[0], _cptr_or_null(gamma), dxp,
                               _ptr_or_null(dgamma), _ptr_or_null(dbeta), X.shape[0], X.shape[1], nt)


def batchnorm_backward(dY, X, mean, invstd, gamma, out=None, dgamma=None, dbeta=None,
                       need_dx=True, n_threads=None):
    """Gradients of training-mode batch normalization (through the batch statistics):
    dbeta = sum_i dY, dgamma = sum_i dY * xhat (written when given),
    out = gamma * invstd * (dY - dbeta / n - xhat * dgamma / n), xhat = (X - mean) * invstd.
    Returns out (None when need_dx is False)."""
    cdef int k = _kind(dY, "dY"), nt = _nt(n_threads)
    shape = _shape2(dY, "dY")
    dY = _in(dY, k, "dY")
    X = _in(X, k, "X")
    if X.shape != shape:
        raise ValueError(f"X has shape {X.shape}, expected {shape} (the shape of dY)")
    m = shape[1]
    if mean is None or invstd is None:  # the kernel reads both: never a NULL pointer
        raise ValueError("batchnorm_backward needs the batch mean and invstd of the forward pass, got None")
    mean = _vec(mean, k, m, "mean")
    invstd = _vec(invstd, k, m, "invstd")
    gamma = _vec(gamma, k, m, "gamma")
    dgamma = _vec(dgamma, k, m, "dgamma", True)
    dbeta = _vec(dbeta, k, m, "dbeta", True)
    if need_dx:
        out = np.empty_like(dY) if out is None else _out(out, k, shape, "out")
    else:
        out = None
    if m == 0 or shape[0] == 0:
        if dgamma is not None:
            dgamma[...] = 0
        if dbeta is not None:
            dbeta[...] = 0
        return out
    if k == 0:
        _bn_backward[float](dY, X, mean, invstd, gamma, out, dgamma, dbeta, nt)
    else:
        _bn_backward[double](dY, X, mean, invstd, gamma, out, dgamma, dbeta, nt)
    return out


cdef void _col_affine(const floating[:, ::1] X, const floating[::1] shift, const floating[::1] scale,
                      const floating[::1] offset, floating[:, ::1] Y, int nt) noexcept nogil:
    if floating is float:
        col_affine_f32(&X[0, 0], _cptr_or_null(shift), &scale[0], _cptr_or_null(offset), &Y[0, 0],
                       X.shape[0], X.shape[1], nt)
    else:
        col_affine_f64(&X[0, 0], _cptr_or_null(shift), &scale[0], _cptr_or_null(offset), &Y[0, 0],
                       X.shape[0], X.shape[1], nt)


def col_affine(X, shift, scale, offset, out=None, n_threads=None):
    """out = (X - shift) * scale + offset, per column of X (n, m); shift and offset may be
    None (zero). Inference-mode BatchNormalization and Normalization. ``out`` may be X."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    X = _in(X, k, "X")
    m = shape[1]
    if scale is None:
        raise ValueError("col_affine needs a scale vector")
    shift = _vec(shift, k, m, "shift")
    scale = _vec(scale, k, m, "scale")
    offset = _vec(offset, k, m, "offset")
    out = np.empty_like(X) if out is None else _out(out, k, shape, "out")
    if shape[0] == 0 or m == 0:
        return out
    if k == 0:
        _col_affine[float](X, shift, scale, offset, out, nt)
    else:
        _col_affine[double](X, shift, scale, offset, out, nt)
    return out


cdef void _ln_forward(const floating[:, ::1] X, const floating[::1] gamma, const floating[::1] beta,
                      double eps, floating[:, ::1] Y, floating[::1] mean, floating[::1] rstd,
                      int nt) noexcept nogil:
    if floating is float:
        layernorm_forward_f32(&X[0, 0], _cptr_or_null(gamma), _cptr_or_null(beta), eps, &Y[0, 0],
                              &mean[0], &rstd[0], X.shape[0], X.shape[1], nt)
    else:
        layernorm_forward_f64(&X[0, 0], _cptr_or_null(gamma), _cptr_or_null(beta), eps, &Y[0, 0],
                              &mean[0], &rstd[0], X.shape[0], X.shape[1], nt)


def layernorm_forward(X, gamma, beta, double epsilon, out=None, mean=None, rstd=None, n_threads=None):
    """Layer normalization of each row of X (n, m): mean, biased variance over the row,
    rstd = 1 / sqrt(var + epsilon), out = (X - mean) * rstd * gamma + beta (gamma / beta
    None: 1 / 0). Returns (out, mean, rstd), mean and rstd of shape (n,)."""
    cdef int k = _kind(X, "X"), nt = _nt(n_threads)
    shape = _shape2(X, "X")
    X = _in(X, k, "X")
    n, m = shape
    if m < 1:
        raise ValueError(f"layer normalization needs at least one column, got X of shape {shape}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    gamma = _vec(gamma, k, m, "gamma")
    beta = _vec(beta, k, m, "beta")
    out = np.empty_like(X) if out is None else _out(out, k, shape, "out")
    mean = np.empty(n, X.dtype) if mean is None else _out(mean, k, (n,), "mean")
    rstd = np.empty(n, X.dtype) if rstd is None else _out(rstd, k, (n,), "rstd")
    if n == 0:
        return out, mean, rstd
    if k == 0:
        _ln_forward[float](X, gamma, beta, epsilon, out, mean, rstd, nt)
    else:
        _ln_forward[double](X, gamma, beta, epsilon, out, mean, rstd, nt)
    return out, mean, rstd


cdef void _ln_backward(const floating[:, ::1] dY, const floating[:, ::1] X, const floating[::1] gamma,
                       const floating[::1] mean, const floating[::1] rstd, floating[:, ::1] dX,
                       floating[::1] dgamma, floating[::1] dbeta, int nt) noexcept nogil:
    cdef floating *dxp = NULL
    if dX is not None:
        dxp = &dX[0, 0]
    if floating is float:
        layernorm_backward_f32(&dY[0, 0], &X[0, 0], _cptr_or_null(gamma), &mean[0], &rstd[0], dxp,
                               _ptr_or_null(dgamma), _ptr_or_null(dbeta), X.shape[0], X.shape[1], nt)
    else:
        layernorm_backward_f64(&dY[0, 0], &X[0, 0], _cptr_or_null(gamma), &mean[0], &rstd[0], dxp,
                               _ptr_or_null(dgamma), _ptr_or_null(dbeta), X.shape[0], X.shape[1], nt)


def layernorm_backward(dY, X, gamma, mean, rstd, out=None, dgamma=None, dbeta=None, need_dx=True,
                       n_threads=None):
    """Gradients of layer normalization: with xhat = (X - mean) * rstd and g = dY * gamma,
    out = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)) per row; dgamma = sum_i dY * xhat,
    dbeta = sum_i dY (written when given). Returns out (None when need_dx is False)."""
    cdef int k = _kind(dY, "dY"), nt = _nt(n_threads)
    shape = _shape2(dY, "dY")
    dY = _in(dY, k, "dY")
    X = _in(X, k, "X")
    if X.shape != shape:
        raise ValueError(f"X has shape {X.shape}, expected {shape} (the shape of dY)")
    n, m = shape
    gamma = _vec(gamma, k, m, "gamma")
    if mean is None or rstd is None:  # the kernel reads both: never a NULL pointer
        raise ValueError("layernorm_backward needs the row mean and rstd of the forward pass, got None")
    mean = _vec(mean, k, n, "mean")
    rstd = _vec(rstd, k, n, "rstd")
    dgamma = _vec(dgamma, k, m, "dgamma", True)
    dbeta = _vec(dbeta, k, m, "dbeta", True)
    if need_dx:
        out = np.empty_like(dY) if out is None else _out(out, k, shape, "out")
    else:
        out = None
    if n == 0 or m == 0:
        if dgamma is not None:
            dgamma[...] = 0
        if dbeta is not None:
            dbeta[...] = 0
        return out
    if k == 0:
        _ln_backward[float](dY, X, gamma, mean, rstd, out, dgamma, dbeta, nt)
    else:
        _ln_backward[double](dY, X, gamma, mean, rstd, out, dgamma, dbeta, nt)
    return out
