"""Reference reductions: column sums (bias gradients) and sums of squares (norms)."""
import numpy as np

__all__ = ["col_sum", "sum_squares"]


def col_sum(X, out=None, n_threads=None):
    """out[j] = sum over rows of X[:, j]."""
    if out is None:
        out = np.empty(X.shape[1], X.dtype)
    out[...] = X.astype(np.float64).sum(axis=0)
    return out


def sum_squares(x, n_threads=None):
    """Sum of the squares of every element, in float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(np.dot(x, x))
