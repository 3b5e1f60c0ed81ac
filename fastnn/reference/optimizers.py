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
           "adagrad_update"]


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
