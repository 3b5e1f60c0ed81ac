"""Utilities: to_categorical, normalize, MC dropout, the learning-rate range test, sanity
checks before training."""
import numpy as np

from .backend import set_seed as set_random_seed  # keras.utils.set_random_seed
from .diagnostics import sanity_check  # noqa: F401  (fastnn extra)
from .lr_finder import find_learning_rate  # noqa: F401  (fastnn extra)


def to_categorical(x, num_classes=None):
    """to_categorical(x, num_classes=None): integer labels -> one-hot rows (float64, as Keras'
    NumPy path), of shape ``x.shape + (num_classes,)`` (a trailing axis of 1 dropped first);
    ``num_classes`` None or 0 means ``max(x) + 1``, as Keras."""
    x = np.asarray(x)
    shape = x.shape[:-1] if x.ndim > 1 and x.shape[-1] == 1 else x.shape
    x = x.reshape(-1)
    if x.dtype.kind == "f":
        if np.any(x != np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: labels must be integers, got {x.dtype}")
    x = x.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {x.min()}")
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, (int, float, np.number))):
        raise TypeError(f"to_categorical: num_classes must be an integer, got {num_classes!r}")
    if not num_classes:  # None or 0: inferred, as Keras
        if not x.size:
            raise ValueError("to_categorical: no labels to infer num_classes from; pass num_classes")
        n = int(x.max()) + 1
    elif not float(num_classes).is_integer() or num_classes < 1:
        raise ValueError(f"to_categorical: num_classes must be a positive integer, got {num_classes!r}")
    else:
        n = int(num_classes)
    if x.size and x.max() >= n:
        raise ValueError(f"to_categorical: label {x.max()} is out of range for num_classes={n}")
    out = np.zeros((x.shape[0], n), np.float64)
    out[np.arange(x.shape[0]), x] = 1.0
    return out.reshape(tuple(shape) + (n,))


def normalize(x, axis=-1, order=2):
    """normalize(x, axis=-1, order=2): rows scaled to unit L-order norm."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def mc_predict(model, x, n, batch_size=None):
    """mc_predict(model, x, n, batch_size=None) -> (mean, std): Monte Carlo dropout.

    Runs ``n`` stochastic forward passes over ``x`` (each a batched pass, ``batch_size``
    rows at a time, default 32 as ``predict``) in which only the dropout-family layers
    sample (a new mask per pass and batch) and BatchNormalization uses its moving statistics,
    then returns the per-output mean and standard deviation (population, ddof=0) over the
    passes, accumulated in float64 (Welford) and returned in the model's dtype. Also
    available as ``model.predict(x, mc_samples=n)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"mc_predict: the number of samples must be a positive integer, got {n!r}")
    x = model._prepare_x(x)
    model._ensure_built(x)
    batch_size = 32 if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise ValueError(f"mc_predict: batch_size must be a positive integer, got {batch_size}")
    shape = (len(x),) + tuple(model.output_shape[1:])
    mean = np.zeros(shape, np.float64)
    m2 = np.zeros(shape, np.float64)
    d = np.empty((min(batch_size, len(x)),) + shape[1:], np.float64)
    for k in range(1, int(n) + 1):
        for lo in range(0, len(x), batch_size):
            hi = min(lo + batch_size, len(x))
            out = model._forward(x[lo:hi], "mc")
            dk, mk = d[:hi - lo], mean[lo:hi]
            np.subtract(out, mk, out=dk)          # delta = x - mean_old
            mk += dk / k                          # mean_new
            m2[lo:hi] += dk * (out - mk)          # += delta * (x - mean_new)
    std = np.sqrt(m2 / n)
    return mean.astype(model._out_dtype), std.astype(model._out_dtype)
