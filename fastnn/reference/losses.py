"""Reference loss kernels. Each returns the sum over rows of the per-row loss and writes
``out = scale * d(sum)/dP`` (the caller passes scale = 1 / batch size for Keras' mean)."""
import numpy as np

__all__ = ["elementwise_loss", "softmax_cross_entropy", "sparse_softmax_cross_entropy"]

# The codes of csrc/fastnn.h's enum fastnn_loss (LOSS_<NAME> for each name here), the one
# Python copy of them: tests/kernels/test_header_constants.py holds it to the header.
LOSS_CODES = {"mse": 0, "mae": 1, "huber": 2, "bce": 3, "bce_logits": 4, "cce": 5,
              "kld": 6, "hinge": 7}
MSE, MAE, HUBER, BCE, BCE_LOGITS, CCE, KLD, HINGE = (LOSS_CODES[n] for n in (
    "mse", "mae", "huber", "bce", "bce_logits", "cce", "kld", "hinge"))
EPSILON = 1e-7  # Keras' clipping epsilon


def _eps_bounds(dtype):
    """(epsilon, 1 - epsilon) rounded to the input's dtype, as Keras (and the C kernel) clip:
    in float32 1 - 1e-7 is 0.99999988, so a saturated sigmoid output p = 1 costs
    -log(1.19e-7) = 15.94, not the -log(1e-7) = 16.12 of float64 bounds."""
    dt = np.dtype(dtype).type if np.dtype(dtype).kind == "f" else np.float64
    return float(dt(EPSILON)), float(dt(1) - dt(EPSILON))


def _empty(row_loss):
    if row_loss is not None:
        row_loss[...] = 0
    return 0.0


def elementwise_loss(P, T, loss, param=1.0, scale=1.0, out=None, row_loss=None, n_threads=None):
    """Per-row loss (the mean over the last axis; the sum for cce and kld, as Keras), summed
    over rows; ``row_loss`` (float64 (n,), optional) receives each row's. ``param`` is Huber's
    delta."""
    if P.size == 0:  # nothing to sum (the C wrapper's rule; a mean over 0 columns is NaN)
        return _empty(row_loss)
    p = P.astype(np.float64)
    t = T.astype(np.float64)
    m = p.shape[1]
    eps, one_eps = _eps_bounds(P.dtype)
    if loss == MSE:
        # squared in the input's dtype, as the C kernel and Keras: a float32 error beyond
        # 1.8e19 squares to inf there, and TerminateOnNaN must see the same on both backends
        with np.errstate(over="ignore"):
            row = np.square(np.asarray(P - T), dtype=P.dtype).astype(np.float64).mean(axis=1)
        g = 2 * (p - t) / m
    elif loss == MAE:
        row = np.abs(p - t).mean(axis=1)
        g = np.sign(p - t) / m
    elif loss == HUBER:
        e = p - t
        a = np.abs(e)
        row = np.where(a <= param, 0.5 * e * e, param * (a - 0.5 * param)).mean(axis=1)
        g = np.where(a <= param, e, param * np.sign(e)) / m
    elif loss == BCE:
        pc = np.clip(p, eps, one_eps)
        row = -(t * np.log(pc) + (1 - t) * np.log(1 - pc)).mean(axis=1)
        g = np.where(p == pc, (pc - t) / (pc * (1 - pc)), 0.0) / m
    elif loss == BCE_LOGITS:
        row = (np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))).mean(axis=1)
        g = (1 / (1 + np.exp(-p)) - t) / m
    elif loss == CCE:
        s = p.sum(axis=1, keepdims=True)
        q = np.clip(p / s, eps, one_eps)
        row = -(t * np.log(q)).sum(axis=1)
        g = -t / np.where(p > 0, p, eps * s) + t.sum(axis=1, keepdims=True) / s
    elif loss == KLD:
        tc = np.clip(t, eps, 1)
        pc = np.clip(p, eps, 1)
        row = (tc * np.log(tc / pc)).sum(axis=1)
        g = np.where(p == pc, -tc / pc, 0.0)
    elif loss == HINGE:
        h = 1 - t * p
        row = np.maximum(h, 0).mean(axis=1)
        g = np.where(h > 0, -t, 0.0) / m
    else:
        raise ValueError(f"unknown loss code {loss}")
    if out is not None:
        out[...] = scale * g
    if row_loss is not None:
        row_loss[...] = row
    return float(row.sum())


def _softmax_xent(z, t, from_logits, scale, out, row_loss, bounds=(EPSILON, 1 - EPSILON)):
    st = t.sum(axis=1, keepdims=True)
    if from_logits:
        s = z - z.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        p = np.exp(logp)
        rows = -(t * logp).sum(axis=1)
    else:
        p = z / z.sum(axis=1, keepdims=True)
        rows = -(t * np.log(np.clip(p, *bounds))).sum(axis=1)
    if out is not None:
        out[...] = scale * (p * st - t)
    if row_loss is not None:
        row_loss[...] = rows
    return float(rows.sum())


def softmax_cross_entropy(Z, T, from_logits, scale=1.0, out=None, row_loss=None, n_threads=None):
    """Categorical cross-entropy of softmax outputs, fused: Z holds logits (from_logits) or
    probabilities; ``out`` = scale * (softmax(Z) * sum(T) - T), the gradient with respect to
    the logits, which never divides by a probability; ``row_loss`` (optional) each row's loss."""
    if Z.size == 0:  # as the C wrapper (max over 0 columns would raise)
        return _empty(row_loss)
    return _softmax_xent(Z.astype(np.float64), T.astype(np.float64), from_logits, scale, out,
                         row_loss, _eps_bounds(Z.dtype))


def sparse_softmax_cross_entropy(Z, labels, from_logits, scale=1.0, out=None, row_loss=None,
                                 n_threads=None):
    """As softmax_cross_entropy with integer class labels (n,) instead of one-hot targets."""
    if Z.size == 0:  # as the C wrapper
        return _empty(row_loss)
    z = Z.astype(np.float64)
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= z.shape[1])
    t = np.zeros_like(z)
    t[np.arange(z.shape[0]), np.where(bad, 0, labels)] = 1.0
    total = _softmax_xent(z, t, from_logits, scale, out, row_loss, _eps_bounds(Z.dtype))
    if bad.any():  # as C: NaN for those rows and the sum (the model validates labels first)
        if row_loss is not None:
            row_loss[bad] = np.nan
        return float("nan")
    return total
