# Wrappers for csrc/losses.c (included by _ckernels.pyx). Every loss also fills ``row_loss``
# (float64, one value per row) when it is given: per-sample weights need it.

cdef object _row_loss(row_loss, Py_ssize_t n):
    if row_loss is None:
        return None
    if row_loss.dtype != np.float64 or row_loss.shape != (n,) or not row_loss.flags.c_contiguous \
            or not row_loss.flags.writeable:
        raise ValueError(f"row_loss must be a writable C-contiguous float64 array of shape ({n},)")
    return row_loss


cdef inline double *_rl_ptr(double[::1] rl) noexcept nogil:
    return &rl[0] if rl is not None else NULL


cdef double _elementwise_loss(const floating[:, ::1] P, const floating[:, ::1] T, int loss,
                              double param, double scale, floating[:, ::1] dP, double[::1] rl,
                              int nt) noexcept nogil:
    cdef floating *dp = NULL
    if dP is not None:
        dp = &dP[0, 0]
    if floating is float:
        return elementwise_loss_f32(&P[0, 0], &T[0, 0], loss, param, scale, dp, _rl_ptr(rl),
                                    P.shape[0], P.shape[1], nt)
    else:
        return elementwise_loss_f64(&P[0, 0], &T[0, 0], loss, param, scale, dp, _rl_ptr(rl),
                                    P.shape[0], P.shape[1], nt)


def elementwise_loss(P, T, int loss, double param=1.0, double scale=1.0, out=None, row_loss=None,
                     n_threads=None):
    """Sum over rows of the per-row loss; out (optional) = scale * its gradient w.r.t. P;
    row_loss (optional, float64 (n,)) = each row's loss."""
    cdef int k = _kind(P, "y_pred"), nt = _nt(n_threads)
    shape = _shape2(P, "y_pred")
    P = _in(P, k, "y_pred")
    T = _in(T, k, "y_true")
    if T.shape != shape:
        raise ValueError(f"y_true has shape {T.shape} but y_pred has shape {shape}")
    if not 0 <= loss < FASTNN_N_LOSSES:
        raise ValueError(f"unknown loss code {loss}")
    if out is not None:
        _out(out, k, shape, "out")
    row_loss = _row_loss(row_loss, shape[0])
    if shape[0] == 0 or shape[1] == 0:
        if row_loss is not None:
            row_loss[...] = 0
        return 0.0
    if k == 0:
        return _elementwise_loss[float](P, T, loss, param, scale, out, row_loss, nt)
    return _elementwise_loss[double](P, T, loss, param, scale, out, row_loss, nt)


cdef double _softmax_cross_entropy(const floating[:, ::1] Z, const floating[:, ::1] T, int from_logits,
                                   double scale, floating[:, ::1] dZ, double[::1] rl,
                                   int nt) noexcept nogil:
    cdef floating *dz = NULL
    if dZ is not None:
        dz = &dZ[0, 0]
    if floating is float:
        return softmax_cross_entropy_f32(&Z[0, 0], &T[0, 0], from_logits, scale, dz, _rl_ptr(rl),
                                         Z.shape[0], Z.shape[1], nt)
    else:
        return softmax_cross_entropy_f64(&Z[0, 0], &T[0, 0], from_logits, scale, dz, _rl_ptr(rl),
                                         Z.shape[0], Z.shape[1], nt)


def softmax_cross_entropy(Z, T, bint from_logits, double scale=1.0, out=None, row_loss=None,
                          n_threads=None):
    """Fused softmax + categorical cross-entropy: returns the summed loss, out (optional) =
    scale * (softmax(Z) * sum(T) - T), the gradient w.r.t. the logits; row_loss (optional,
    float64 (n,)) = each row's loss."""
    cdef int k = _kind(Z, "y_pred"), nt = _nt(n_threads)
    shape = _shape2(Z, "y_pred")
    Z = _in(Z, k, "y_pred")
    T = _in(T, k, "y_true")
    if T.shape != shape:
        raise ValueError(f"y_true has shape {T.shape} but y_pred has shape {shape}")
    if out is not None:
        _out(out, k, shape, "out")
    row_loss = _row_loss(row_loss, shape[0])
    if shape[0] == 0 or shape[1] == 0:
        if row_loss is not None:
            row_loss[...] = 0
        return 0.0
    if k == 0:
        return _softmax_cross_entropy[float](Z, T, from_logits, scale, out, row_loss, nt)
    return _softmax_cross_entropy[double](Z, T, from_logits, scale, out, row_loss, nt)


cdef double _sparse_softmax_cross_entropy(const floating[:, ::1] Z, const int64_t[::1] labels,
                                          int from_logits, double scale, floating[:, ::1] dZ,
                                          double[::1] rl, int nt) noexcept nogil:
    cdef floating *dz = NULL
    if dZ is not None:
        dz = &dZ[0, 0]
    if floating is float:
        return sparse_softmax_cross_entropy_f32(&Z[0, 0], &labels[0], from_logits, scale, dz,
                                                _rl_ptr(rl), Z.shape[0], Z.shape[1], nt)
    else:
        return sparse_softmax_cross_entropy_f64(&Z[0, 0], &labels[0], from_logits, scale, dz,
                                                _rl_ptr(rl), Z.shape[0], Z.shape[1], nt)


def sparse_softmax_cross_entropy(Z, labels, bint from_logits, double scale=1.0, out=None,
                                 row_loss=None, n_threads=None):
    """As softmax_cross_entropy with int64 class labels (n,). An out-of-range label makes the
    loss NaN (the model validates labels before training)."""
    cdef Py_ssize_t r, c
    cdef int tn = _fast_2d(Z, &r, &c)
    cdef char *zp
    cdef char *lp
    cdef char *dp = NULL
    cdef char *rp = NULL
    if tn >= 0:
        zp = _fast_ptr(Z, tn, 2, r, c, False)
        lp = _fast_ptr(labels, cnp.NPY_INT64, 1, r, 0, False)
        if out is not None:
            dp = _fast_ptr(out, tn, 2, r, c, True)
        if row_loss is not None:
            rp = _fast_ptr(row_loss, cnp.NPY_DOUBLE, 1, r, 0, True)
        if (zp != NULL and lp != NULL and (out is None or dp != NULL)
                and (row_loss is None or rp != NULL)):
            if tn == cnp.NPY_FLOAT:
                return sparse_softmax_cross_entropy_f32(
                    <const float *>zp, <const int64_t *>lp, from_logits, scale, <float *>dp,
                    <double *>rp, r, c, _nt(n_threads))
            return sparse_softmax_cross_entropy_f64(
                <const double *>zp, <const int64_t *>lp, from_logits, scale, <double *>dp,
                <double *>rp, r, c, _nt(n_threads))
    cdef int k = _kind(Z, "y_pred"), nt = _nt(n_threads)
    shape = _shape2(Z, "y_pred")
    Z = _in(Z, k, "y_pred")
    labels = np.ascontiguousarray(labels)
    if labels.dtype != np.int64:
        raise TypeError(f"labels must be int64, got {labels.dtype}")
    if labels.shape != (shape[0],):
        raise ValueError(f"labels have shape {labels.shape}, expected ({shape[0]},)")
    if out is not None:
        _out(out, k, shape, "out")
    row_loss = _row_loss(row_loss, shape[0])
    if shape[0] == 0 or shape[1] == 0:
        if row_loss is not None:
            row_loss[...] = 0
        return 0.0
    if k == 0:
        return _sparse_softmax_cross_entropy[float](Z, labels, from_logits, scale, out, row_loss, nt)
    return _sparse_softmax_cross_entropy[double](Z, labels, from_logits, scale, out, row_loss, nt)
