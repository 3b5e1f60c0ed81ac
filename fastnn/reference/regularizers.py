"""Reference regularizer and constraint kernels: the L1/L2 penalty and its gradient, the
norm constraints (MaxNorm, UnitNorm, MinMaxNorm) and NonNeg, as Keras 3 defines them."""
import numpy as np

__all__ = ["l1_l2_penalty", "norm_constraint", "non_neg"]

_EPS = 1e-7  # Keras' epsilon in the norm constraints


def l1_l2_penalty(w, l1, l2, scale=1.0, grad=None, n_threads=None):
    """Returns scale * (l1 * sum|w| + l2 * sum w^2); adds scale * (l1 sign(w) + 2 l2 w) to
    ``grad`` when given."""
    if not (l1 >= 0 and l2 >= 0):
        raise ValueError(f"l1 and l2 must be >= 0, got l1={l1}, l2={l2}")
    w64 = np.asarray(w, dtype=np.float64).ravel()
    if grad is not None:
        dt = grad.dtype.type
        grad += dt(scale * l1) * np.sign(w) + dt(2.0 * scale * l2) * w
    return float(scale * (l1 * np.abs(w64).sum() + l2 * np.dot(w64, w64)))


def norm_constraint(W, min_value, max_value, rate, unit, axis, n_threads=None):
    """In place: W *= (rate * clip(norm, min, max) + (1 - rate) * norm) / (eps + norm) with
    norm = sqrt(sum of squares along axis), or W /= (eps + norm) when unit."""
    if W.ndim == 0:
        raise ValueError("norm constraints need an array with at least one axis")
    if not -W.ndim <= axis < W.ndim:
        raise ValueError(f"axis {axis} is out of range for a weight of shape {W.shape}")
    norms = np.sqrt(np.sum(np.square(W, dtype=np.float64), axis=axis, keepdims=True))
    if unit:
        desired = 1.0
    else:
        desired = rate * np.clip(norms, min_value, max_value) + (1 - rate) * norms
    W *= (desired / (_EPS + norms)).astype(W.dtype)
    return W


def non_neg(W, n_threads=None):
    """In place: negative entries set to zero."""
    W[W < 0] = 0
    return W
