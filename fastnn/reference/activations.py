"""Reference activation kernels: fused bias + activation, its backward, PReLU, Maxout."""
import numpy as np
from math import erf as _erf_scalar

__all__ = ["bias_act_forward", "act_backward", "prelu_forward", "prelu_backward",
           "maxout_forward", "maxout_backward"]

# The codes of csrc/fastnn.h's enum fastnn_activation (ACT_<NAME> for each name here), the
# one Python copy of them: tests/kernels/test_header_constants.py holds it to the header.
ACTIVATION_CODES = {
    "linear": 0, "relu": 1, "leaky_relu": 2, "elu": 3, "selu": 4, "sigmoid": 5, "tanh": 6,
    "gelu": 7, "swish": 8, "softplus": 9, "softsign": 10, "hard_sigmoid": 11, "mish": 12,
    "exponential": 13, "softmax": 14, "log_softmax": 15,
}
(LINEAR, RELU, LEAKY_RELU, ELU, SELU, SIGMOID, TANH, GELU, SWISH, SOFTPLUS, SOFTSIGN, HARD_SIGMOID,
 MISH, EXPONENTIAL, SOFTMAX, LOG_SOFTMAX) = (ACTIVATION_CODES[n] for n in (
    "linear", "relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "gelu", "swish", "softplus",
    "softsign", "hard_sigmoid", "mish", "exponential", "softmax", "log_softmax"))
# The activations whose derivative cannot be computed from the output alone: for these the
# caller keeps the pre-activation Z; for all others Z may be the output buffer itself.
NEEDS_PREACTIVATION = {GELU, SWISH, MISH}

# FASTNN_SELU_ALPHA / FASTNN_SELU_SCALE of csrc/fastnn.h (checked by the same test); the
# layers read them from here.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
_GELU_C = np.sqrt(2.0 / np.pi)
_erf = np.vectorize(_erf_scalar, otypes=[np.float64])


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _apply(x, act, alpha):
    if act == LINEAR:
        return x.copy()
    if act == RELU:
        return np.maximum(x, 0)
    if act == LEAKY_RELU:
        return np.where(x > 0, x, alpha * x)
    if act == ELU:
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))
    if act == SELU:
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))
    if act == SIGMOID:
        return _sigmoid(x)
    if act == TANH:
        return np.tanh(x)
    if act == GELU:
        if alpha:
            return 0.5 * x * (1 + np.tanh(_GELU_C * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1 + _erf(x / np.sqrt(2.0)))
    if act == SWISH:
        return x * _sigmoid(x)
    if act == SOFTPLUS:
        return _softplus(x)
    if act == SOFTSIGN:
        return x / (1 + np.abs(x))
    if act == HARD_SIGMOID:
        return np.clip(x / 6 + 0.5, 0, 1)
    if act == MISH:
        return x * np.tanh(_softplus(x))
    if act == EXPONENTIAL:
        return np.exp(x)
    if act in (SOFTMAX, LOG_SOFTMAX):
        s = x - x.max(axis=1, keepdims=True)
        lse = np.log(np.exp(s).sum(axis=1, keepdims=True))
        return np.exp(s - lse) if act == SOFTMAX else s - lse
    raise ValueError(f"unknown activation code {act}")


def _derivative(x, y, act, alpha):
    """d act(x) / dx elementwise, for the elementwise activations."""
    if act == LINEAR:
        return np.ones_like(y)
    if act == RELU:
        return (y > 0).astype(y.dtype)
    if act == LEAKY_RELU:
        return np.where(y > 0, 1, alpha)
    if act == ELU:
        return np.where(y > 0, 1, y + alpha)
    if act == SELU:
        return np.where(y > 0, SELU_SCALE, y + SELU_SCALE * SELU_ALPHA)
    if act == SIGMOID:
        return y * (1 - y)
    if act == TANH:
        return 1 - y * y
    if act == GELU:
        if alpha:
            t = np.tanh(_GELU_C * (x + 0.044715 * x ** 3))
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _GELU_C * (1 + 3 * 0.044715 * x * x)
        return 0.5 * (1 + _erf(x / np.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    if act == SWISH:
        s = _sigmoid(x)
        return s * (1 + x * (1 - s))
    if act == SOFTPLUS:
        return -np.expm1(-y)
    if act == SOFTSIGN:
        return (1 - np.abs(y)) ** 2
    if act == HARD_SIGMOID:
        return np.where((y > 0) & (y < 1), 1.0 / 6.0, 0.0)
    if act == MISH:
        t = np.tanh(_softplus(x))
        return t + x * (1 - t * t) * _sigmoid(x)
    if act == EXPONENTIAL:
        return y
    raise ValueError(f"unknown activation code {act}")


def bias_act_forward(Z, b, act, alpha=0.0, out=None, n_threads=None):
    """out = act(Z + b). When b is given, Z is overwritten with Z + b (the pre-activation).

    ``out`` may be ``Z`` itself. ``alpha`` is the slope of leaky_relu, the alpha of elu and,
    for gelu, 1 for the tanh approximation and 0 for the exact erf form.
    """
    if b is not None:
        Z += b
    y = _apply(Z.astype(np.float64), act, alpha).astype(Z.dtype)
    if out is None:
        out = np.empty_like(Z)
    out[...] = y
    return out


def act_backward(dY, Z, Y, act, alpha=0.0, out=None, db=None, n_threads=None):
    """out = dY * act'(Z) (row-wise Jacobian product for softmax / log_softmax).

    Z is read only by gelu, swish and mish; for all other activations the derivative comes
    from the output Y, and Z may be None or Y itself. ``db``, if given, receives the column
    sums of the result (the bias gradient). ``out`` may be ``dY``.
    """
    dy = dY.astype(np.float64)
    y = Y.astype(np.float64)
    if act == SOFTMAX:
        r = y * (dy - (dy * y).sum(axis=1, keepdims=True))
    elif act == LOG_SOFTMAX:
        r = dy - np.exp(y) * dy.sum(axis=1, keepdims=True)
    elif act in (RELU, HARD_SIGMOID):
        # a select, not dy times a 0/1 mask: where the unit is off the gradient is 0 even for
        # an infinite or NaN dy (as the C kernel, PyTorch and JAX)
        r = np.where(y > 0, dy, 0.0) if act == RELU else np.where((y > 0) & (y < 1), dy / 6, 0.0)
    else:
        x = (Y if Z is None else Z).astype(np.float64)
        r = dy * _derivative(x, y, act, alpha)
    if out is None:
        out = np.empty_like(dY)
    out[...] = r
    if db is not None:
        db[...] = r.sum(axis=0)
    return out


def prelu_forward(X, a, out=None, n_threads=None):
    """out = X if X > 0 else a * X, one slope per column."""
    if out is None:
        out = np.empty_like(X)
    out[...] = np.where(X > 0, X, a * X)
    return out


def prelu_backward(dY, X, a, out=None, da=None, n_threads=None):
    """out = dL/dX; da receives dL/da (summed over rows)."""
    if out is None:
        out = np.empty_like(dY)
    if da is not None:
        da[...] = np.where(X > 0, 0, dY * X).sum(axis=0)
    out[...] = np.where(X > 0, dY, a * dY)
    return out


def maxout_forward(X, pieces, out=None, arg=None, n_threads=None):
    """X (n, units * pieces), unit j's pieces contiguous; out (n, units) = max over pieces,
    arg (n, units) int32 = index of the winning piece (the first on ties)."""
    n = X.shape[0]
    if pieces < 1 or X.shape[1] % pieces:
        raise ValueError(f"Maxout: {X.shape[1]} features are not a multiple of pieces={pieces}")
    g = X.reshape(n, X.shape[1] // pieces, pieces)  # not -1: ambiguous for an empty batch
    if out is None:
        out = np.empty((n, g.shape[1]), X.dtype)
    if arg is None:
        arg = np.empty((n, g.shape[1]), np.int32)
    arg[...] = g.argmax(axis=2)
    out[...] = g.max(axis=2)
    return out


def maxout_backward(dY, arg, pieces, out=None, n_threads=None):
    """out (n, units * pieces): dY routed to the winning piece, zero elsewhere."""
    n, units = dY.shape
    if out is None:
        out = np.empty((n, units * pieces), dY.dtype)
    g = np.zeros((n, units, pieces), dY.dtype)
    np.put_along_axis(g, arg[:, :, None].astype(np.intp), dY[:, :, None], axis=2)
    out[...] = g.reshape(n, units * pieces)
    return out
