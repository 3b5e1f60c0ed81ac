# Wrappers for csrc/optimizers.c (included by _ckernels.pyx). Every update works in place on
# a parameter and its state, which must be writable C-contiguous arrays of the parameter's
# dtype and shape; the gradient may be any layout of the same dtype and size (copied to
# contiguous if needed) and is never written.
#
# Common keyword arguments (Keras 3 Optimizer.apply, fused into the one pass):
#   weight_decay: decoupled decay, p -= p * weight_decay * learning_rate before the rule;
#   grad_scale:   the gradient is multiplied by this first (clipnorm / global_clipnorm);
#   clipvalue:    then clipped elementwise to [-clipvalue, clipvalue] (inf: no clipping).
from libc.math cimport INFINITY


cdef object _param_kind(p, g, tuple state, str opt):
    """Check p, g and state arrays: same dtype (float32/64), same size; p and state
    contiguous and writable. Returns (kind, flat p, flat contiguous g)."""
    cdef int k = _kind(p, f"{opt}: param")
    _out(p, k, p.shape, f"{opt}: param")
    if _kind(g, f"{opt}: grad") != k or g.size != p.size:
        raise ValueError(f"{opt}: gradient ({g.dtype}, {g.shape}) does not match parameter "
                         f"({p.dtype}, {p.shape})")
    for s in state:
        if s is not None:
            _out(s, k, p.shape, f"{opt} state")
    return k


cdef inline object _flat(a):
    return None if a is None else a.reshape(-1)


cdef inline object _gflat(g):
    return np.ascontiguousarray(g).reshape(-1)


cdef inline floating *_ptr(floating[::1] a) noexcept nogil:
    if a is None:
        return NULL
    return &a[0]


cdef double _decay(double weight_decay, double lr) except? -1:
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return weight_decay * lr


cdef double _clipv(clipvalue) except? -1:
    if clipvalue is None:
        return INFINITY
    if not clipvalue >= 0:
        raise ValueError(f"clipvalue must be >= 0, got {clipvalue}")
    return clipvalue


cdef int64_t _step(step) except -1:
    if step < 1:
        raise ValueError(f"step must be >= 1 (iterations + 1), got {step}")
    return step


# ---- SGD ------------------------------------------------------------------------------
cdef void _sgd_update(floating[::1] p, const floating[::1] g, floating[::1] v, double lr,
                      double momentum, int nesterov, double dec, double gs, double cv,
                      int nt) noexcept nogil:
    if floating is float:
        sgd_update_f32(&p[0], &g[0], _ptr(v), lr, momentum, nesterov, dec, gs, cv, p.shape[0], nt)
    else:
        sgd_update_f64(&p[0], &g[0], _ptr(v), lr, momentum, nesterov, dec, gs, cv, p.shape[0], nt)


def sgd_update(param, grad, velocity, double learning_rate, double momentum=0.0, bint nesterov=False,
               double weight_decay=0.0, double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place: velocity = momentum * velocity - lr * grad; param += velocity (or, nesterov,
    param += momentum * velocity - lr * grad). velocity None: param -= lr * grad."""
    cdef int k = _param_kind(param, grad, (velocity,), "SGD"), nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if param.size == 0:
        return param
    p, g, v = param.reshape(-1), _gflat(grad), _flat(velocity)
    if k == 0:
        _sgd_update[float](p, g, v, learning_rate, momentum, nesterov, dec, grad_scale, cv, nt)
    else:
        _sgd_update[double](p, g, v, learning_rate, momentum, nesterov, dec, grad_scale, cv, nt)
    return param


# ---- Adam / AdamW -----------------------------------------------------------------------
cdef void _adam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                       floating[::1] vh, double lr, double b1, double b2, double eps, int64_t t,
                       double dec, double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        adam_update_f32(&p[0], &g[0], &m[0], &v[0], _ptr(vh), lr, b1, b2, eps, t, dec, gs, cv,
                        p.shape[0], nt)
    else:
        adam_update_f64(&p[0], &g[0], &m[0], &v[0], _ptr(vh), lr, b1, b2, eps, t, dec, gs, cv,
                        p.shape[0], nt)


def adam_update(param, grad, momentum, velocity, velocity_hat, double learning_rate,
                double beta_1, double beta_2, double epsilon, step, double weight_decay=0.0,
                double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adam at 1-based ``step``: m += (g - m)(1 - beta_1);
    v += (g^2 - v)(1 - beta_2); velocity_hat = max(velocity_hat, v) when given (amsgrad);
    param -= m * alpha / (sqrt(v or velocity_hat) + epsilon),
    alpha = lr * sqrt(1 - beta_2^step) / (1 - beta_1^step)."""
    cdef Py_ssize_t n
    cdef int tn = _fast_1d(param, &n)
    cdef char *pp
    cdef char *gp
    cdef char *mp
    cdef char *vp
    cdef char *hp = NULL
    cdef int64_t ft
    cdef double fdec, fcv
    if tn >= 0:  # the packed 1-D runs of fastnn's optimizers (see _ckernels.pyx: fast path)
        pp = _fast_ptr(param, tn, 1, n, 0, True)
        gp = _fast_ptr(grad, tn, 1, n, 0, False)
        mp = _fast_ptr(momentum, tn, 1, n, 0, True)
        vp = _fast_ptr(velocity, tn, 1, n, 0, True)
        if velocity_hat is not None:
            hp = _fast_ptr(velocity_hat, tn, 1, n, 0, True)
        if (pp != NULL and gp != NULL and mp != NULL and vp != NULL
                and (velocity_hat is None or hp != NULL)):
            ft = _step(step)
            fdec = _decay(weight_decay, learning_rate)
            fcv = _clipv(clipvalue)
            if tn == cnp.NPY_FLOAT:
                adam_update_f32(<float *>pp, <const float *>gp, <float *>mp, <float *>vp,
                                <float *>hp, learning_rate, beta_1, beta_2, epsilon, ft, fdec,
                                grad_scale, fcv, n, _nt(n_threads))
            else:
                adam_update_f64(<double *>pp, <const double *>gp, <double *>mp, <double *>vp,
                                <double *>hp, learning_rate, beta_1, beta_2, epsilon, ft, fdec,
                                grad_scale, fcv, n, _nt(n_threads))
            return param
    cdef int k = _param_kind(param, grad, (momentum, velocity, velocity_hat), "Adam")
    cdef int nt = _nt(n_threads)
    cdef int64_t t = _step(step)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if momentum is None or velocity is None:
        raise ValueError("Adam: momentum and velocity state are required")
    if param.size == 0:
        return param
    p, g, m, v, vh = (param.reshape(-1), _gflat(grad), momentum.reshape(-1),
                      velocity.reshape(-1), _flat(velocity_hat))
    if k == 0:
        _adam_update[float](p, g, m, v, vh, learning_rate, beta_1, beta_2, epsilon, t, dec,
                            grad_scale, cv, nt)
    else:
        _adam_update[double](p, g, m, v, vh, learning_rate, beta_1, beta_2, epsilon, t, dec,
                             grad_scale, cv, nt)
    return param


# ---- Adamax -----------------------------------------------------------------------------
cdef void _adamax_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] u,
                         double lr, double b1, double b2, double eps, int64_t t, double dec,
                         double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        adamax_update_f32(&p[0], &g[0], &m[0], &u[0], lr, b1, b2, eps, t, dec, gs, cv, p.shape[0], nt)
    else:
        adamax_update_f64(&p[0], &g[0], &m[0], &u[0], lr, b1, b2, eps, t, dec, gs, cv, p.shape[0], nt)


def adamax_update(param, grad, momentum, norm, double learning_rate, double beta_1, double beta_2,
                  double epsilon, step, double weight_decay=0.0, double grad_scale=1.0,
                  clipvalue=None, n_threads=None):
    """In place, Keras 3 Adamax at 1-based ``step``: m += (g - m)(1 - beta_1);
    norm = max(beta_2 * norm, |g|); param -= lr * m / ((1 - beta_1^step) * (norm + epsilon))."""
    cdef int k = _param_kind(param, grad, (momentum, norm), "Adamax"), nt = _nt(n_threads)
    cdef int64_t t = _step(step)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if momentum is None or norm is None:
        raise ValueError("Adamax: momentum and norm state are required")
    if param.size == 0:
        return param
    p, g, m, u = param.reshape(-1), _gflat(grad), momentum.reshape(-1), norm.reshape(-1)
    if k == 0:
        _adamax_update[float](p, g, m, u, learning_rate, beta_1, beta_2, epsilon, t, dec,
                              grad_scale, cv, nt)
    else:
        _adamax_update[double](p, g, m, u, learning_rate, beta_1, beta_2, epsilon, t, dec,
                               grad_scale, cv, nt)
    return param


# ---- Nadam ------------------------------------------------------------------------------
cdef void _nadam_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                        double lr, double b1, double b2, double eps, int64_t t, double up,
                        double dec, double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        nadam_update_f32(&p[0], &g[0], &m[0], &v[0], lr, b1, b2, eps, t, up, dec, gs, cv,
                         p.shape[0], nt)
    else:
        nadam_update_f64(&p[0], &g[0], &m[0], &v[0], lr, b1, b2, eps, t, up, dec, gs, cv,
                         p.shape[0], nt)


def nadam_update(param, grad, momentum, velocity, double learning_rate, double beta_1,
                 double beta_2, double epsilon, step, double u_product, double weight_decay=0.0,
                 double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Nadam at 1-based ``step``; ``u_product`` = u_1 * ... * u_step with
    u_t = beta_1 * (1 - 0.5 * 0.96^t). m, v as Adam;
    m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product);
    param -= m_hat * lr / (sqrt(v / (1 - beta_2^step)) + epsilon)."""
    cdef int k = _param_kind(param, grad, (momentum, velocity), "Nadam"), nt = _nt(n_threads)
    cdef int64_t t = _step(step)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if momentum is None or velocity is None:
        raise ValueError("Nadam: momentum and velocity state are required")
    if param.size == 0:
        return param
    p, g, m, v = param.reshape(-1), _gflat(grad), momentum.reshape(-1), velocity.reshape(-1)
    if k == 0:
        _nadam_update[float](p, g, m, v, learning_rate, beta_1, beta_2, epsilon, t, u_product,
                             dec, grad_scale, cv, nt)
    else:
        _nadam_update[double](p, g, m, v, learning_rate, beta_1, beta_2, epsilon, t, u_product,
                              dec, grad_scale, cv, nt)
    return param


# ---- RMSprop ----------------------------------------------------------------------------
cdef void _rmsprop_update(floating[::1] p, const floating[::1] g, floating[::1] v,
                          floating[::1] mom, floating[::1] avg, double lr, double rho,
                          double momentum, double eps, double dec, double gs, double cv,
                          int nt) noexcept nogil:
    if floating is float:
        rmsprop_update_f32(&p[0], &g[0], &v[0], _ptr(mom), _ptr(avg), lr, rho, momentum, eps,
                           dec, gs, cv, p.shape[0], nt)
    else:
        rmsprop_update_f64(&p[0], &g[0], &v[0], _ptr(mom), _ptr(avg), lr, rho, momentum, eps,
                           dec, gs, cv, p.shape[0], nt)


def rmsprop_update(param, grad, velocity, momentum_buffer, average_gradient,
                   double learning_rate, double rho, double momentum, double epsilon,
                   double weight_decay=0.0, double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 RMSprop: v = rho v + (1 - rho) g^2; average_gradient (centered, when
    given) = rho a + (1 - rho) g; inc = lr g / sqrt(v - a^2 + epsilon) (or sqrt(v + epsilon));
    momentum_buffer (when given) = momentum * buffer + inc, subtracted instead of inc."""
    cdef int k = _param_kind(param, grad, (velocity, momentum_buffer, average_gradient),
                             "RMSprop")
    cdef int nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if velocity is None:
        raise ValueError("RMSprop: velocity state is required")
    if param.size == 0:
        return param
    p, g, v = param.reshape(-1), _gflat(grad), velocity.reshape(-1)
    mb, a = _flat(momentum_buffer), _flat(average_gradient)
    if k == 0:
        _rmsprop_update[float](p, g, v, mb, a, learning_rate, rho, momentum, epsilon, dec,
                               grad_scale, cv, nt)
    else:
        _rmsprop_update[double](p, g, v, mb, a, learning_rate, rho, momentum, epsilon, dec,
                                grad_scale, cv, nt)
    return param


# ---- Adagrad ----------------------------------------------------------------------------
cdef void _adagrad_update(floating[::1] p, const floating[::1] g, floating[::1] acc, double lr,
                          double eps, double dec, double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        adagrad_update_f32(&p[0], &g[0], &acc[0], lr, eps, dec, gs, cv, p.shape[0], nt)
    else:
        adagrad_update_f64(&p[0], &g[0], &acc[0], lr, eps, dec, gs, cv, p.shape[0], nt)


def adagrad_update(param, grad, accumulator, double learning_rate, double epsilon,
                   double weight_decay=0.0, double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adagrad: accumulator += g^2; param -= lr g / sqrt(accumulator + epsilon)."""
    cdef int k = _param_kind(param, grad, (accumulator,), "Adagrad"), nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if accumulator is None:
        raise ValueError("Adagrad: accumulator state is required")
    if param.size == 0:
        return param
    p, g, acc = param.reshape(-1), _gflat(grad), accumulator.reshape(-1)
    if k == 0:
        _adagrad_update[float](p, g, acc, learning_rate, epsilon, dec, grad_scale, cv, nt)
    else:
        _adagrad_update[double](p, g, acc, learning_rate, epsilon, dec, grad_scale, cv, nt)
    return param


# ---- Lion -------------------------------------------------------------------------------
cdef void _lion_update(floating[::1] p, const floating[::1] g, floating[::1] m, double lr,
                       double b1, double b2, double dec, double gs, double cv,
                       int nt) noexcept nogil:
    if floating is float:
        lion_update_f32(&p[0], &g[0], &m[0], lr, b1, b2, dec, gs, cv, p.shape[0], nt)
    else:
        lion_update_f64(&p[0], &g[0], &m[0], lr, b1, b2, dec, gs, cv, p.shape[0], nt)


def lion_update(param, grad, momentum, double learning_rate, double beta_1, double beta_2,
                double weight_decay=0.0, double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Lion: param -= lr * sign(beta_1 m + (1 - beta_1) g);
    momentum = beta_2 m + (1 - beta_2) g."""
    cdef int k = _param_kind(param, grad, (momentum,), "Lion"), nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if momentum is None:
        raise ValueError("Lion: momentum state is required")
    if param.size == 0:
        return param
    p, g, m = param.reshape(-1), _gflat(grad), momentum.reshape(-1)
    if k == 0:
        _lion_update[float](p, g, m, learning_rate, beta_1, beta_2, dec, grad_scale, cv, nt)
    else:
        _lion_update[double](p, g, m, learning_rate, beta_1, beta_2, dec, grad_scale, cv, nt)
    return param


# ---- Adadelta ---------------------------------------------------------------------------
cdef void _adadelta_update(floating[::1] p, const floating[::1] g, floating[::1] ag,
                           floating[::1] ad, double lr, double rho, double eps, double dec,
                           double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        adadelta_update_f32(&p[0], &g[0], &ag[0], &ad[0], lr, rho, eps, dec, gs, cv, p.shape[0], nt)
    else:
        adadelta_update_f64(&p[0], &g[0], &ag[0], &ad[0], lr, rho, eps, dec, gs, cv, p.shape[0], nt)


def adadelta_update(param, grad, accumulated_grad, accumulated_delta_var, double learning_rate,
                    double rho, double epsilon, double weight_decay=0.0, double grad_scale=1.0,
                    clipvalue=None, n_threads=None):
    """In place, Keras 3 Adadelta: accumulated_grad = rho a + (1 - rho) g^2;
    delta = -sqrt(accumulated_delta_var + eps) g / sqrt(accumulated_grad + eps);
    accumulated_delta_var = rho d + (1 - rho) delta^2; param += lr * delta."""
    cdef int k = _param_kind(param, grad, (accumulated_grad, accumulated_delta_var), "Adadelta")
    cdef int nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if accumulated_grad is None or accumulated_delta_var is None:
        raise ValueError("Adadelta: accumulated_grad and accumulated_delta_var state are required")
    if param.size == 0:
        return param
    p, g = param.reshape(-1), _gflat(grad)
    ag, ad = accumulated_grad.reshape(-1), accumulated_delta_var.reshape(-1)
    if k == 0:
        _adadelta_update[float](p, g, ag, ad, learning_rate, rho, epsilon, dec, grad_scale, cv, nt)
    else:
        _adadelta_update[double](p, g, ag, ad, learning_rate, rho, epsilon, dec, grad_scale, cv, nt)
    return param


# ---- FTRL -------------------------------------------------------------------------------
cdef void _ftrl_update(floating[::1] p, const floating[::1] g, floating[::1] acc,
                       floating[::1] lin, double lr, double pw, double l1, double l2,
                       double l2s, double beta, double dec, double gs, double cv,
                       int nt) noexcept nogil:
    if floating is float:
        ftrl_update_f32(&p[0], &g[0], &acc[0], &lin[0], lr, pw, l1, l2, l2s, beta, dec, gs, cv,
                        p.shape[0], nt)
    else:
        ftrl_update_f64(&p[0], &g[0], &acc[0], &lin[0], lr, pw, l1, l2, l2s, beta, dec, gs, cv,
                        p.shape[0], nt)


def ftrl_update(param, grad, accumulator, linear, double learning_rate, double learning_rate_power,
                double l1_regularization_strength, double l2_regularization_strength,
                double l2_shrinkage_regularization_strength, double beta, double weight_decay=0.0,
                double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 FTRL: new = accumulator + g^2;
    linear += g + 2 l2_shrinkage param - (new^-power - accumulator^-power) / lr * param;
    param = (clip(linear, -l1, l1) - linear) / (new^-power / lr + 2 (l2 + beta / (2 lr)));
    accumulator = new."""
    cdef int k = _param_kind(param, grad, (accumulator, linear), "Ftrl"), nt = _nt(n_threads)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    if accumulator is None or linear is None:
        raise ValueError("Ftrl: accumulator and linear state are required")
    if param.size == 0:
        return param
    p, g, acc, lin = param.reshape(-1), _gflat(grad), accumulator.reshape(-1), linear.reshape(-1)
    if k == 0:
        _ftrl_update[float](p, g, acc, lin, learning_rate, learning_rate_power,
                            l1_regularization_strength, l2_regularization_strength,
                            l2_shrinkage_regularization_strength, beta, dec, grad_scale, cv, nt)
    else:
        _ftrl_update[double](p, g, acc, lin, learning_rate, learning_rate_power,
                             l1_regularization_strength, l2_regularization_strength,
                             l2_shrinkage_regularization_strength, beta, dec, grad_scale, cv, nt)
    return param


# ---- Lamb -------------------------------------------------------------------------------
cdef int _lamb_update(floating[::1] p, const floating[::1] g, floating[::1] m, floating[::1] v,
                      double lr, double b1, double b2, double eps, int64_t t, double dec,
                      double gs, double cv, int nt) noexcept nogil:
    if floating is float:
        return lamb_update_f32(&p[0], &g[0], &m[0], &v[0], lr, b1, b2, eps, t, dec, gs, cv,
                               p.shape[0], nt)
    else:
        return lamb_update_f64(&p[0], &g[0], &m[0], &v[0], lr, b1, b2, eps, t, dec, gs, cv,
                               p.shape[0], nt)


def lamb_update(param, grad, momentum, velocity, double learning_rate, double beta_1,
                double beta_2, double epsilon, step, double weight_decay=0.0,
                double grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Lamb at 1-based ``step``: m, v as Adam;
    u = (m / (1 - beta_1^step)) / (sqrt(v / (1 - beta_2^step)) + epsilon);
    param -= ratio * lr * u, ratio = ||param|| / ||u|| (1 when either norm is 0)."""
    cdef int k = _param_kind(param, grad, (momentum, velocity), "Lamb"), nt = _nt(n_threads)
    cdef int64_t t = _step(step)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    cdef int rc
    if momentum is None or velocity is None:
        raise ValueError("Lamb: momentum and velocity state are required")
    if param.size == 0:
        return param
    p, g, m, v = param.reshape(-1), _gflat(grad), momentum.reshape(-1), velocity.reshape(-1)
    if k == 0:
        rc = _lamb_update[float](p, g, m, v, learning_rate, beta_1, beta_2, epsilon, t, dec,
                                 grad_scale, cv, nt)
    else:
        rc = _lamb_update[double](p, g, m, v, learning_rate, beta_1, beta_2, epsilon, t, dec,
                                  grad_scale, cv, nt)
    if rc != 0:
        raise MemoryError("Lamb: out of memory for the norm partial sums")
    return param


# ---- Adafactor --------------------------------------------------------------------------
cdef int _adafactor_update(floating[::1] p, const floating[::1] g, floating[::1] r,
                           floating[::1] c, floating[::1] v, double lr, double decay2,
                           double eps1, double eps2, double clip, int64_t t, double dec,
                           double gs, double cv, Py_ssize_t n_mats, Py_ssize_t rows,
                           Py_ssize_t cols, int nt) noexcept nogil:
    if floating is float:
        return adafactor_update_f32(&p[0], &g[0], _ptr(r), _ptr(c), _ptr(v), lr, decay2, eps1,
                                    eps2, clip, t, dec, gs, cv, n_mats, rows, cols, nt)
    else:
        return adafactor_update_f64(&p[0], &g[0], _ptr(r), _ptr(c), _ptr(v), lr, decay2, eps1,
                                    eps2, clip, t, dec, gs, cv, n_mats, rows, cols, nt)


def adafactor_update(param, grad, r, c, velocity, double learning_rate, double beta_2_decay,
                     double epsilon_1, double epsilon_2, double clip_threshold, step,
                     double weight_decay=0.0, double grad_scale=1.0, clipvalue=None,
                     n_threads=None):
    """In place, Keras 3 Adafactor at 1-based ``step``. A parameter of rank >= 2 is factored
    over its last two axes: ``r`` (shape[:-1]) and ``c`` (shape[:-2] + shape[-1:]) are its
    row and column second moments and ``velocity`` is None; a parameter of rank < 2 passes
    ``velocity`` (its shape) and r = c = None. With G = g^2 + epsilon_1,
    b = 1 - step^beta_2_decay: r = b r + (1 - b) mean(G, -1); c = b c + (1 - b) mean(G, -2);
    v = (r / mean(r, -1))[..., None] * c[..., None, :] (or v = b v + (1 - b) G);
    u = g / sqrt(v); param -= max(epsilon_2, rms(param)) * min(lr, 1 / sqrt(step)) *
    u / max(1, rms(u) / clip_threshold)."""
    cdef int k = _param_kind(param, grad, (velocity,), "Adafactor"), nt = _nt(n_threads)
    cdef int64_t t = _step(step)
    cdef double dec = _decay(weight_decay, learning_rate), cv = _clipv(clipvalue)
    cdef Py_ssize_t n_mats = 1, rows = 1, cols = param.size
    cdef int rc
    if param.ndim >= 2:
        if velocity is not None or r is None or c is None:
            raise ValueError("Adafactor: a parameter of rank >= 2 takes r and c, not velocity")
        _out(r, k, param.shape[:-1], "Adafactor state r")
        _out(c, k, param.shape[:-2] + param.shape[-1:], "Adafactor state c")
        shape = param.shape
        rows = shape[len(shape) - 2]
        cols = shape[len(shape) - 1]
        n_mats = param.size // (rows * cols) if rows * cols else 0
    elif velocity is None or r is not None or c is not None:
        raise ValueError("Adafactor: a parameter of rank < 2 takes velocity, not r and c")
    if param.size == 0:
        return param
    p, g = param.reshape(-1), _gflat(grad)
    rf, cf, vf = _flat(r), _flat(c), _flat(velocity)
    if k == 0:
        rc = _adafactor_update[float](p, g, rf, cf, vf, learning_rate, beta_2_decay, epsilon_1,
                                      epsilon_2, clip_threshold, t, dec, grad_scale, cv,
                                      n_mats, rows, cols, nt)
    else:
        rc = _adafactor_update[double](p, g, rf, cf, vf, learning_rate, beta_2_decay, epsilon_1,
                                       epsilon_2, clip_threshold, t, dec, grad_scale, cv,
                                       n_mats, rows, cols, nt)
    if rc != 0:
        raise MemoryError("Adafactor: out of memory for the row and column sums")
    return param


# ---- moving average of the weights ------------------------------------------------------
cdef void _ema_update(floating[::1] a, const floating[::1] x, double mo, int nt) noexcept nogil:
    if floating is float:
        ema_update_f32(&a[0], &x[0], mo, a.shape[0], nt)
    else:
        ema_update_f64(&a[0], &x[0], mo, a.shape[0], nt)


def ema_update(average, value, double momentum, n_threads=None):
    """In place, Keras 3's use_ema: average = momentum * average + (1 - momentum) * value,
    with (1 - momentum) computed in the arrays' dtype. Returns ``average``."""
    cdef int k = _kind(average, "average"), nt = _nt(n_threads)
    _out(average, k, average.shape, "average")
    if _kind(value, "value") != k or value.size != average.size:
        raise ValueError(f"ema_update: value ({value.dtype}, {value.shape}) does not match "
                         f"average ({average.dtype}, {average.shape})")
    if average.size == 0:
        return average
    a, x = average.reshape(-1), _gflat(value)
    if k == 0:
        _ema_update[float](a, x, momentum, nt)
    else:
        _ema_update[double](a, x, momentum, nt)
    return average
