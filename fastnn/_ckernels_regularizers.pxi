# Wrappers for csrc/regularizers.c (included by _ckernels.pyx): L1/L2 penalty + gradient,
# norm constraints and NonNeg (in place).


cdef double _l1_l2(const floating[::1] w, double l1, double l2, double scale, floating[::1] g,
                   int nt) noexcept nogil:
    cdef floating *gp = NULL
    if g is not None:
        gp = &g[0]
    if floating is float:
        return l1_l2_penalty_f32(&w[0], l1, l2, scale, gp, w.shape[0], nt)
    else:
        return l1_l2_penalty_f64(&w[0], l1, l2, scale, gp, w.shape[0], nt)


def l1_l2_penalty(w, double l1, double l2, double scale=1.0, grad=None, n_threads=None):
    """Returns scale * (l1 * sum|w| + l2 * sum w^2) (summed in float64, fixed order) and, when
    ``grad`` is given, adds scale * (l1 * sign(w) + 2 * l2 * w) to it in the same pass."""
    cdef int k = _kind(w, "w"), nt = _nt(n_threads)
    if not (l1 >= 0 and l2 >= 0):
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
    wf = _in(w, k, "w").reshape(-1)
    g = None
    if grad is not None:
        _out(grad, k, w.shape, "grad")
        g = grad.reshape(-1)
    if wf.shape[0] == 0:
        return 0.0
    if k == 0:
        r = _l1_l2[float](wf, l1, l2, scale, g, nt)
    else:
        r = _l1_l2[double](wf, l1, l2, scale, g, nt)
    return r


cdef void _norm_constraint(floating[::1] W, double lo, double hi, double rate, int unit,
                           Py_ssize_t P, Py_ssize_t R, Py_ssize_t Q, int nt) noexcept nogil:
    if floating is float:
        norm_constraint_f32(&W[0], lo, hi, rate, unit, P, R, Q, nt)
    else:
        norm_constraint_f64(&W[0], lo, hi, rate, unit, P, R, Q, nt)


def norm_constraint(W, double min_value, double max_value, double rate, bint unit, int axis,
                    n_threads=None):
    """In place, for each slice of W along ``axis`` (axis=0 of a (in, out) kernel: each
    output unit's column): norm = sqrt(sum w^2) over the axis,
    W *= (rate * clip(norm, min_value, max_value) + (1 - rate) * norm) / (1e-7 + norm), or
    W /= (1e-7 + norm) when ``unit``. Returns W."""
    cdef int k = _kind(W, "W"), nt = _nt(n_threads)
    _out(W, k, W.shape, "W")
    nd = W.ndim
    if nd == 0:
        raise ValueError("norm constraints need an array with at least one axis")
    if not -nd <= axis < nd:
        raise ValueError(f"axis {axis} is out of range for a weight of shape {W.shape}")
    if axis < 0:
        axis += nd
    P = int(np.prod(W.shape[:axis], dtype=np.int64))
    R = W.shape[axis]
    Q = int(np.prod(W.shape[axis + 1:], dtype=np.int64))
    if W.size == 0:
        return W
    if k == 0:
        _norm_constraint[float](W.reshape(-1), min_value, max_value, rate, unit, P, R, Q, nt)
    else:
        _norm_constraint[double](W.reshape(-1), min_value, max_value, rate, unit, P, R, Q, nt)
    return W


cdef void _non_neg(floating[::1] W, int nt) noexcept nogil:
    if floating is float:
        non_neg_f32(&W[0], W.shape[0], nt)
    else:
        non_neg_f64(&W[0], W.shape[0], nt)


def non_neg(W, n_threads=None):
    """In place: negative entries of W set to zero. Returns W."""
    cdef int k = _kind(W, "W"), nt = _nt(n_threads)
    _out(W, k, W.shape, "W")
    if W.size == 0:
        return W
    if k == 0:
        _non_neg[float](W.reshape(-1), nt)
    else:
        _non_neg[double](W.reshape(-1), nt)
    return W
