"""Reference optimizer updates: in place, Keras 3's rules written out plainly.

Each function mirrors its C kernel (csrc/optimizers.c) operation for operation, in the
parameter's dtype, with step-dependent scalars computed once in float64. Common keyword
arguments, in Keras 3's Optimizer.apply order:

- ``grad_scale`` then ``clipvalue``: g <- clip(grad_scale * g, -clipvalue, clipvalue)
  (the clipnorm / global_clipnorm factor is computed by the optimizer; None: no clip);
- ``weight_decay``: decoupled decay p <- p - p * (weight_decay * learning_rate);
- then the optimizer's rule. The gradient array is never written; NaN propagates.

Decaying state (momenta, second moments, RMSprop's averages) is flushed to 0 where its
magnitude falls below 2^24 times the dtype's smallest normal number (``_flush``): a state
whose gradient is always exactly zero would otherwise sit at a subnormal fixed point forever,
and before that its products with the step's scalars are subnormal; subnormal arithmetic is
10-100x slower in the C kernels. Keras does not flush; the difference is below 2e-31
(float32) / 4e-301 (float64).
"""
import math

import numpy as np

__all__ = ["sgd_update", "adam_update", "adamax_update", "nadam_update", "rmsprop_update",
           "adagrad_update", "lion_update", "adadelta_update", "ftrl_update", "lamb_update",
           "adafactor_update", "ema_update"]


def _prologue(name, param, grad, state, learning_rate, weight_decay, grad_scale, clipvalue):
    """Validate like the C wrapper; return (dtype scalar type, clipped gradient, decay)."""
    for a, what in [(param, "param"), (grad, "grad")] + [(s, "state") for s in state]:
        if a is not None and (not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64)):
            raise TypeError(f"{name}: {what} must be a float32 or float64 array, got "
                            f"{getattr(a, 'dtype', type(a).__name__)}")
    if grad.dtype != param.dtype or grad.size != param.size:
        raise ValueError(f"{name}: gradient ({grad.dtype}, {grad.shape}) does not match parameter "
                         f"({param.dtype}, {param.shape})")
    for s in state:
        if s is not None and (s.dtype != param.dtype or s.shape != param.shape):
            raise ValueError(f"{name} state ({s.dtype}, {s.shape}) does not match parameter "
                             f"({param.dtype}, {param.shape})")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if clipvalue is not None and not clipvalue >= 0:
        raise ValueError(f"clipvalue must be >= 0, got {clipvalue}")
    dt = param.dtype.type
    g = grad.reshape(param.shape) * dt(grad_scale)
    if clipvalue is not None:
        c = dt(clipvalue)
        # np.clip keeps NaN, as the C kernel does
        np.clip(g, -c, c, out=g)
    return dt, g, dt(weight_decay * learning_rate)


# State values below this times the smallest normal number are stored as 0 (csrc/optimizers.c
# says why: products of tinier states with the step's scalars are subnormal, and slow).
TINY_STATE_SCALE = 2.0 ** 24


def _flush(a):
    """In place: values with magnitude below 2^24 x the smallest normal number become 0 (NaN kept)."""
    a[np.abs(a) < np.finfo(a.dtype).tiny * a.dtype.type(TINY_STATE_SCALE)] = 0
    return a


def _decayed(param, decay):
    # computed even for decay 0, as the C loop does (p - p * 0 is p for every finite p)
    return param - param * decay


def _check_step(step):
    if step < 1:
        raise ValueError(f"step must be >= 1 (iterations + 1), got {step}")
    return float(step)


def sgd_update(param, grad, velocity, learning_rate, momentum=0.0, nesterov=False,
               weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place: velocity = momentum * velocity - lr * grad; param += velocity (or, nesterov,
    param += momentum * velocity - lr * grad). velocity None: param -= lr * grad."""
    dt, g, dec = _prologue("SGD", param, grad, (velocity,), learning_rate, weight_decay,
                           grad_scale, clipvalue)
    lr, mom = dt(learning_rate), dt(momentum)
    p = _decayed(param, dec)
    if velocity is None:
        param[...] = p - g * lr
        return param
    velocity[...] = velocity * mom - g * lr
    _flush(velocity)
    if nesterov:
        param[...] = p + (velocity * mom - g * lr)
    else:
        param[...] = p + velocity
    return param


def adam_update(param, grad, momentum, velocity, velocity_hat, learning_rate, beta_1, beta_2,
                epsilon, step, weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adam at 1-based ``step``: m += (g - m)(1 - beta_1);
    v += (g^2 - v)(1 - beta_2); velocity_hat = max(velocity_hat, v) when given (amsgrad);
    param -= m * alpha / (sqrt(v or velocity_hat) + epsilon),
    alpha = lr * sqrt(1 - beta_2^step) / (1 - beta_1^step)."""
    dt, g, dec = _prologue("Adam", param, grad, (momentum, velocity, velocity_hat),
                           learning_rate, weight_decay, grad_scale, clipvalue)
    if momentum is None or velocity is None:
        raise ValueError("Adam: momentum and velocity state are required")
    t = _check_step(step)
    alpha = dt(learning_rate * math.sqrt(1.0 - beta_2 ** t) / (1.0 - beta_1 ** t))
    p = _decayed(param, dec)
    momentum += (g - momentum) * dt(1.0 - beta_1)
    velocity += (g * g - velocity) * dt(1.0 - beta_2)
    _flush(momentum), _flush(velocity)
    v = velocity
    if velocity_hat is not None:
        np.maximum(velocity_hat, velocity, out=velocity_hat)
        v = velocity_hat
    param[...] = p - (momentum * alpha) / (np.sqrt(v) + dt(epsilon))
    return param


def adamax_update(param, grad, momentum, norm, learning_rate, beta_1, beta_2, epsilon, step,
                  weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adamax at 1-based ``step``: m += (g - m)(1 - beta_1);
    norm = max(beta_2 * norm, |g|); param -= lr * m / ((1 - beta_1^step) * (norm + epsilon))."""
    dt, g, dec = _prologue("Adamax", param, grad, (momentum, norm), learning_rate, weight_decay,
                           grad_scale, clipvalue)
    if momentum is None or norm is None:
        raise ValueError("Adamax: momentum and norm state are required")
    t = _check_step(step)
    bc1 = dt(1.0 - beta_1 ** t)
    p = _decayed(param, dec)
    momentum += (g - momentum) * dt(1.0 - beta_1)
    np.maximum(norm * dt(beta_2), np.abs(g), out=norm)
    _flush(momentum), _flush(norm)
    param[...] = p - (dt(learning_rate) * momentum) / (bc1 * (norm + dt(epsilon)))
    return param


def nadam_update(param, grad, momentum, velocity, learning_rate, beta_1, beta_2, epsilon, step,
                 u_product, weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Nadam at 1-based ``step``; ``u_product`` = u_1 * ... * u_step with
    u_t = beta_1 * (1 - 0.5 * 0.96^t). m, v as Adam;
    m_hat = u_{t+1} m / (1 - u_product u_{t+1}) + (1 - u_t) g / (1 - u_product);
    param -= m_hat * lr / (sqrt(v / (1 - beta_2^step)) + epsilon)."""
    dt, g, dec = _prologue("Nadam", param, grad, (momentum, velocity), learning_rate,
                           weight_decay, grad_scale, clipvalue)
    if momentum is None or velocity is None:
        raise ValueError("Nadam: momentum and velocity state are required")
    t = _check_step(step)
    u_t = beta_1 * (1.0 - 0.5 * 0.96 ** t)
    u_t1 = beta_1 * (1.0 - 0.5 * 0.96 ** (t + 1.0))
    c_m = dt(u_t1 / (1.0 - u_product * u_t1))
    c_g = dt((1.0 - u_t) / (1.0 - u_product))
    bc2 = dt(1.0 - beta_2 ** t)
    p = _decayed(param, dec)
    momentum += (g - momentum) * dt(1.0 - beta_1)
    velocity += (g * g - velocity) * dt(1.0 - beta_2)
    _flush(momentum), _flush(velocity)
    m_hat = momentum * c_m + g * c_g
    param[...] = p - (m_hat * dt(learning_rate)) / (np.sqrt(velocity / bc2) + dt(epsilon))
    return param


def rmsprop_update(param, grad, velocity, momentum_buffer, average_gradient, learning_rate, rho,
                   momentum, epsilon, weight_decay=0.0, grad_scale=1.0, clipvalue=None,
                   n_threads=None):
    """In place, Keras 3 RMSprop: v = rho v + (1 - rho) g^2; average_gradient (centered, when
    given) = rho a + (1 - rho) g; inc = lr g / sqrt(v - a^2 + epsilon) (or sqrt(v + epsilon));
    momentum_buffer (when given) = momentum * buffer + inc, subtracted instead of inc."""
    dt, g, dec = _prologue("RMSprop", param, grad, (velocity, momentum_buffer, average_gradient),
                           learning_rate, weight_decay, grad_scale, clipvalue)
    if velocity is None:
        raise ValueError("RMSprop: velocity state is required")
    rho_, one_rho, eps = dt(rho), dt(1.0 - rho), dt(epsilon)
    p = _decayed(param, dec)
    velocity[...] = rho_ * velocity + one_rho * (g * g)
    _flush(velocity)
    if average_gradient is not None:
        average_gradient[...] = rho_ * average_gradient + one_rho * g
        _flush(average_gradient)
        den = velocity - average_gradient * average_gradient + eps
    else:
        den = velocity + eps
    inc = (dt(learning_rate) * g) / np.sqrt(den)
    if momentum_buffer is not None:
        momentum_buffer[...] = dt(momentum) * momentum_buffer + inc
        _flush(momentum_buffer)
        inc = momentum_buffer
    param[...] = p - inc
    return param


def adagrad_update(param, grad, accumulator, learning_rate, epsilon, weight_decay=0.0,
                   grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adagrad: accumulator += g^2; param -= lr g / sqrt(accumulator + epsilon)."""
    dt, g, dec = _prologue("Adagrad", param, grad, (accumulator,), learning_rate, weight_decay,
                           grad_scale, clipvalue)
    if accumulator is None:
        raise ValueError("Adagrad: accumulator state is required")
    p = _decayed(param, dec)
    accumulator += g * g
    param[...] = p - (dt(learning_rate) * g) / np.sqrt(accumulator + dt(epsilon))
    return param


def lion_update(param, grad, momentum, learning_rate, beta_1, beta_2, weight_decay=0.0,
                grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Lion: param -= lr * sign(beta_1 m + (1 - beta_1) g);
    momentum = beta_2 m + (1 - beta_2) g."""
    dt, g, dec = _prologue("Lion", param, grad, (momentum,), learning_rate, weight_decay,
                           grad_scale, clipvalue)
    if momentum is None:
        raise ValueError("Lion: momentum state is required")
    p = _decayed(param, dec)
    c = momentum * dt(beta_1) + g * dt(1.0 - beta_1)
    param[...] = p - dt(learning_rate) * np.sign(c)
    momentum[...] = momentum * dt(beta_2) + g * dt(1.0 - beta_2)
    _flush(momentum)
    return param


def adadelta_update(param, grad, accumulated_grad, accumulated_delta_var, learning_rate, rho,
                    epsilon, weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Adadelta: accumulated_grad = rho a + (1 - rho) g^2;
    delta = -sqrt(accumulated_delta_var + eps) g / sqrt(accumulated_grad + eps);
    accumulated_delta_var = rho d + (1 - rho) delta^2; param += lr * delta."""
    dt, g, dec = _prologue("Adadelta", param, grad, (accumulated_grad, accumulated_delta_var),
                           learning_rate, weight_decay, grad_scale, clipvalue)
    if accumulated_grad is None or accumulated_delta_var is None:
        raise ValueError("Adadelta: accumulated_grad and accumulated_delta_var state are required")
    rho_, one_rho, eps = dt(rho), dt(1.0 - rho), dt(epsilon)
    p = _decayed(param, dec)
    accumulated_grad[...] = rho_ * accumulated_grad + one_rho * (g * g)
    _flush(accumulated_grad)
    delta = -((np.sqrt(accumulated_delta_var + eps) * g) / np.sqrt(accumulated_grad + eps))
    accumulated_delta_var[...] = rho_ * accumulated_delta_var + one_rho * (delta * delta)
    _flush(accumulated_delta_var)
    param[...] = p + dt(learning_rate) * delta
    return param


def ftrl_update(param, grad, accumulator, linear, learning_rate, learning_rate_power,
                l1_regularization_strength, l2_regularization_strength,
                l2_shrinkage_regularization_strength, beta, weight_decay=0.0, grad_scale=1.0,
                clipvalue=None, n_threads=None):
    """In place, Keras 3 FTRL: new = accumulator + g^2;
    linear += g + 2 l2_shrinkage param - (new^-power - accumulator^-power) / lr * param;
    param = (clip(linear, -l1, l1) - linear) / (new^-power / lr + 2 (l2 + beta / (2 lr)));
    accumulator = new. (x^0.5 is computed as sqrt, x^0 as 1, as the C kernel does.)"""
    dt, g, dec = _prologue("Ftrl", param, grad, (accumulator, linear), learning_rate,
                           weight_decay, grad_scale, clipvalue)
    if accumulator is None or linear is None:
        raise ValueError("Ftrl: accumulator and linear state are required")
    if learning_rate_power == -0.5:
        power = np.sqrt
    elif learning_rate_power == 0.0:
        def power(x):
            return np.ones_like(x)
    else:
        def power(x):
            return np.power(x, dt(-learning_rate_power))
    lr = dt(learning_rate)
    try:  # Keras: quadratic = new^-power / lr + 2 * (l2 + beta / (2 lr))
        l2x2 = dt(2.0 * (l2_regularization_strength + beta / (2.0 * learning_rate)))
    except ZeroDivisionError:  # lr = 0: IEEE division, as in C (NaN weights, as Keras)
        l2x2 = dt(math.nan if beta == 0 else math.copysign(math.inf, beta))
    p = _decayed(param, dec)
    new = accumulator + g * g
    new_p, old_p = power(new), power(accumulator)
    with np.errstate(divide="ignore", invalid="ignore"):
        linear += (g + dt(2.0 * l2_shrinkage_regularization_strength) * p) - \
            ((new_p - old_p) / lr) * p
        quadratic = new_p / lr + l2x2
        l1 = dt(l1_regularization_strength)
        param[...] = (np.clip(linear, -l1, l1) - linear) / quadratic
    accumulator[...] = new
    return param


def _sum_sq(x):
    # float64 accumulation, as the C kernels (the order differs: last-bit differences only)
    x = x.astype(np.float64, copy=False).reshape(-1)
    return float(np.dot(x, x))


def lamb_update(param, grad, momentum, velocity, learning_rate, beta_1, beta_2, epsilon, step,
                weight_decay=0.0, grad_scale=1.0, clipvalue=None, n_threads=None):
    """In place, Keras 3 Lamb at 1-based ``step``: m, v as Adam;
    u = (m / (1 - beta_1^step)) / (sqrt(v / (1 - beta_2^step)) + epsilon);
    param -= ratio * lr * u, ratio = ||param|| / ||u|| (1 when either norm is 0)."""
    dt, g, dec = _prologue("Lamb", param, grad, (momentum, velocity), learning_rate,
                           weight_decay, grad_scale, clipvalue)
    if momentum is None or velocity is None:
        raise ValueError("Lamb: momentum and velocity state are required")
    t = _check_step(step)
    bc1, bc2 = dt(1.0 - beta_1 ** t), dt(1.0 - beta_2 ** t)
    p = _decayed(param, dec)
    momentum += (g - momentum) * dt(1.0 - beta_1)
    velocity += (g * g - velocity) * dt(1.0 - beta_2)
    _flush(momentum), _flush(velocity)
    u = (momentum / bc1) / (np.sqrt(velocity / bc2) + dt(epsilon))
    w_norm, u_norm = math.sqrt(_sum_sq(p)), math.sqrt(_sum_sq(u))
    ratio = dt(w_norm / u_norm) if w_norm > 0 and u_norm > 0 else dt(1.0)
    param[...] = p - (ratio * dt(learning_rate)) * u
    return param


def _max_keep_nan(a, b):
    return a if (a > b or a != a) else b


def adafactor_update(param, grad, r, c, velocity, learning_rate, beta_2_decay, epsilon_1,
                     epsilon_2, clip_threshold, step, weight_decay=0.0, grad_scale=1.0,
                     clipvalue=None, n_threads=None):
    """In place, Keras 3 Adafactor at 1-based ``step``. A parameter of rank >= 2 is factored
    over its last two axes: ``r`` (shape[:-1]) and ``c`` (shape[:-2] + shape[-1:]) are its
    row and column second moments and ``velocity`` is None; a parameter of rank < 2 passes
    ``velocity`` (its shape) and r = c = None. With G = g^2 + epsilon_1,
    b = 1 - step^beta_2_decay: r = b r + (1 - b) mean(G, -1); c = b c + (1 - b) mean(G, -2);
    v = (r / mean(r, -1))[..., None] * c[..., None, :] (or v = b v + (1 - b) G);
    u = g / sqrt(v); param -= max(epsilon_2, rms(param)) * min(lr, 1 / sqrt(step)) *
    u / max(1, rms(u) / clip_threshold)."""
    factored = param.ndim >= 2
    dt, g, dec = _prologue("Adafactor", param, grad, () if factored else (velocity,),
                           learning_rate, weight_decay, grad_scale, clipvalue)
    if factored:
        if velocity is not None or r is None or c is None:
            raise ValueError("Adafactor: a parameter of rank >= 2 takes r and c, not velocity")
        for s, shape, what in ((r, param.shape[:-1], "r"),
                               (c, param.shape[:-2] + param.shape[-1:], "c")):
            if not isinstance(s, np.ndarray) or s.dtype != param.dtype or s.shape != shape:
                raise ValueError(f"Adafactor state {what} must be a {param.dtype} array of "
                                 f"shape {shape}, got {getattr(s, 'shape', None)}")
    elif velocity is None or r is not None or c is not None:
        raise ValueError("Adafactor: a parameter of rank < 2 takes velocity, not r and c")
    t = _check_step(step)
    if param.size == 0:
        return param
    rho = min(learning_rate, 1.0 / math.sqrt(t))
    b_ = 1.0 - t ** beta_2_decay
    b, one_b = dt(b_), dt(1.0 - b_)
    p = _decayed(param, dec)
    G = g * g + dt(epsilon_1)
    if factored:
        G64 = G.astype(np.float64)
        r[...] = b * r + one_b * (G64.sum(axis=-1) / param.shape[-1]).astype(dt)
        c[...] = b * c + one_b * (G64.sum(axis=-2) / param.shape[-2]).astype(dt)
        r_mean = (r.astype(np.float64).sum(axis=-1) / param.shape[-2]).astype(dt)
        v = (r / r_mean[..., None])[..., None] * c[..., None, :]
    else:
        velocity[...] = b * velocity + one_b * G
        v = velocity
    u = g / np.sqrt(v)
    n = param.size
    rms_p, rms_u = math.sqrt(_sum_sq(p) / n), math.sqrt(_sum_sq(u) / n)
    alpha = _max_keep_nan(dt(rms_p), dt(epsilon_2)) * dt(rho)
    den = _max_keep_nan(dt(rms_u / clip_threshold), dt(1.0))
    param[...] = p - alpha * (u / den)
    return param


def ema_update(average, value, momentum, n_threads=None):
    """In place, Keras 3's use_ema: average = momentum * average + (1 - momentum) * value,
    with (1 - momentum) computed in the arrays' dtype. Returns ``average``."""
    for a, what in ((average, "average"), (value, "value")):
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise TypeError(f"ema_update: {what} must be a float32 or float64 array, got "
                            f"{getattr(a, 'dtype', type(a).__name__)}")
    if value.dtype != average.dtype or value.size != average.size:
        raise ValueError(f"ema_update: value ({value.dtype}, {value.shape}) does not match "
                         f"average ({average.dtype}, {average.shape})")
    dt = average.dtype.type
    m = dt(momentum)
    average[...] = m * average + (dt(1) - m) * value.reshape(average.shape)
    return average
