# Wrappers for csrc/optimizers.c (included by _ckernels.pyx). Every update works in place on
# a parameter and its state, which must be C-contiguous arrays of one dtype and one size.

cdef object _param_kind(p, g, tuple state, str opt):
    """Check p, g and state arrays: same dtype (float32/64), same size, contiguous, writable."""
    cdef int k = _kind(p, "param")
    _out(p, k, p.shape, "param")
    if _kind(g, "grad") != k or g.size != p.size:
        raise ValueError(f"{opt}: gradient ({g.dtype}, {g.shape}) does not match parameter "
                         f"({p.dtype}, {p.shape})")
    if not g.flags.c_contiguous:
        raise ValueError(f"{opt}: gradient must be C-contiguous")
    for s in state:
        if s is not None:
            _out(s, k, p.shape, f"{opt} state")
    return k


cdef void _sgd_update(floating[::1] p, const floating[::1] g, floating[::1] v, double lr,
                      double momentum, int nesterov, int nt) noexcept nogil:
    cdef floating *vp = NULL
    if v is not None:
        vp = &v[0]
    if floating is float:
        sgd_update_f32(&p[0], &g[0], vp, lr, momentum, nesterov, p.shape[0], nt)
    else:
        sgd_update_f64(&p[0], &g[0], vp, lr, momentum, nesterov, p.shape[0], nt)


def sgd_update(param, grad, velocity, double learning_rate, double momentum=0.0, bint nesterov=False,
               n_threads=None):
    """In place: velocity = momentum * velocity - lr * grad; param += velocity (or, nesterov,
    param += momentum * velocity - lr * grad). velocity None: param -= lr * grad."""
    cdef int k = _param_kind(param, grad, (velocity,), "SGD"), nt = _nt(n_threads)
    if param.size == 0:
        return param
    p, g = param.reshape(-1), grad.reshape(-1)
    v = velocity.reshape(-1) if velocity is not None else None
    if k == 0:
        _sgd_update[float](p, g, v, learning_rate, momentum, nesterov, nt)
    else:
        _sgd_update[double](p, g, v, learning_rate, momentum, nesterov, nt)
    return param
