"""Utilities: to_categorical, normalize, and data helpers."""
import numpy as np


def to_categorical(x, num_classes=None):
    """to_categorical(x, num_classes=None): integer labels -> one-hot float32 rows."""
    x = np.asarray(x)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.dtype.kind == "f":
        if np.any(x != np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: labels must be integers, got {x.dtype}")
    x = x.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {x.min()}")
    n = int(x.max()) + 1 if num_classes is None else int(num_classes)
    if x.size and x.max() >= n:
        raise ValueError(f"to_categorical: label {x.max()} is out of range for num_classes={n}")
    out = np.zeros((x.shape[0], n), np.float32)
    out[np.arange(x.shape[0]), x] = 1.0
    return out


def normalize(x, axis=-1, order=2):
    """normalize(x, axis=-1, order=2): rows scaled to unit L-order norm."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)
