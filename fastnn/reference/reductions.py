"""Reference reductions: column sums (bias gradients), sums of squares (norms), the
finiteness check and the mini-batch row gathers (from memory and from a file)."""
import os

import numpy as np

__all__ = ["col_sum", "sum_squares", "all_finite", "take_rows", "read_rows", "argmax_hits",
           "argmax_match_hits", "threshold_hits"]


def col_sum(X, out=None, n_threads=None):
    """out[j] = sum over rows of X[:, j]."""
    if out is None:
        out = np.empty(X.shape[1], X.dtype)
    out[...] = X.astype(np.float64).sum(axis=0)
    return out


def argmax_hits(y_pred, labels, n_threads=None):
    """The number of rows i of the 2-D ``y_pred`` whose argmax (first maximum, NaN counting
    as the maximum) equals ``labels[i]``."""
    y_pred = np.asarray(y_pred)
    if y_pred.ndim != 2 or y_pred.shape[1] == 0:
        raise ValueError(f"argmax_hits: y_pred must be 2-D with columns, got shape {y_pred.shape}")
    labels = np.asarray(labels)
    if labels.dtype != np.int64 or labels.shape != (len(y_pred),):
        raise ValueError(f"argmax_hits: labels must be int64 of shape ({len(y_pred)},), got "
                         f"{labels.dtype} {labels.shape}")
    return int(np.count_nonzero(np.argmax(y_pred, axis=1) == labels))


def _same(y_pred, y_true, name):
    y_pred, y_true = np.asarray(y_pred), np.asarray(y_true)
    if y_pred.dtype not in (np.float32, np.float64):
        raise TypeError(f"y_pred must be float32 or float64, got {y_pred.dtype}")
    if y_true.dtype != y_pred.dtype or y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: y_true must be y_pred's shape {y_pred.shape} and dtype, got "
                         f"{y_true.shape} {y_true.dtype}")
    return y_pred, y_true


def argmax_match_hits(y_pred, y_true, n_threads=None):
    """The number of rows whose np.argmax in ``y_pred`` is that of the row of ``y_true``
    (categorical accuracy's hits)."""
    y_pred, y_true = _same(y_pred, y_true, "argmax_match_hits")
    if y_pred.ndim != 2 or y_pred.shape[1] == 0:
        raise ValueError(f"argmax_match_hits: y_pred must be 2-D with columns, got shape "
                         f"{y_pred.shape}")
    return int(np.count_nonzero(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


def threshold_hits(y_pred, y_true, threshold=0.5, n_threads=None):
    """The number of elements with (y_pred > threshold) == (y_true > 0.5), compared in the
    arrays' dtype (binary accuracy's hits)."""
    y_pred, y_true = _same(y_pred, y_true, "threshold_hits")
    t = y_pred.dtype.type(threshold)
    return int(np.count_nonzero((y_pred > t) == (y_true > y_pred.dtype.type(0.5))))


def sum_squares(x, n_threads=None):
    """Sum of the squares of every element, in float64."""
    x = np.asarray(x, dtype=np.float64).ravel()
    return float(np.dot(x, x))


def all_finite(x, n_threads=None):
    """True when no element of the float32/float64 array ``x`` is NaN or +-inf."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    return bool(np.isfinite(x).all())


def take_rows(src, index, out=None, n_threads=None):
    """out[i] = src[index[i]] along the first axis, every index checked to be in
    [0, len(src)); the same arguments and errors as the C kernel."""
    if not isinstance(src, np.ndarray):
        raise TypeError(f"take_rows: src must be a numpy array, got {type(src).__name__}")
    if src.dtype.kind not in "biufc":
        raise TypeError(f"take_rows: src must have a numeric dtype, got {src.dtype}")
    if src.ndim < 1:
        raise ValueError(f"take_rows: src must have a row axis, got shape {src.shape}")
    if not src.flags.c_contiguous:
        raise ValueError("take_rows: src must be C-contiguous (copying it for every batch "
                         "would cost more than the gather): pass np.ascontiguousarray(src)")
    if not isinstance(index, np.ndarray):
        raise TypeError(f"take_rows: index must be an int64 numpy array, got {type(index).__name__}")
    if index.dtype != np.int64:
        raise TypeError(f"take_rows: index must be int64, got {index.dtype}")
    if index.ndim != 1:
        raise ValueError(f"take_rows: index must be 1-D, got shape {index.shape}")
    n = src.shape[0]
    shape = (len(index),) + src.shape[1:]
    if out is None:
        out = np.empty(shape, src.dtype)
    elif not isinstance(out, np.ndarray):
        raise TypeError(f"take_rows: out must be a numpy array, got {type(out).__name__}")
    if out.dtype != src.dtype:
        raise TypeError(f"take_rows: out has dtype {out.dtype}, expected {src.dtype} (the dtype of src)")
    if out.shape != shape:
        raise ValueError(f"take_rows: out has shape {out.shape}, expected {shape}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("take_rows: out must be a writable C-contiguous array")
    if len(index) and out.nbytes and src.nbytes and np.may_share_memory(src, out):
        raise ValueError("take_rows: out overlaps src")
    bad = np.flatnonzero((index < 0) | (index >= n))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"take_rows: index[{i}] = {int(index[i])} is out of range for "
                         f"src with {n} rows (must be in [0, {n}))")
    np.take(src, index, axis=0, out=out)
    return out


def read_rows(fd, offset, n, index, out, n_threads=None):
    """out[i] = row index[i] of the ``n`` rows stored in the open file ``fd`` from byte
    ``offset`` on (os.preadv, one call a row); the same arguments and errors as the C kernel."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"read_rows: out must be a numpy array, got {type(out).__name__}")
    if out.dtype.kind not in "biufc":
        raise TypeError(f"read_rows: out must have a numeric dtype, got {out.dtype}")
    if out.ndim < 1 or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("read_rows: out must be a writable C-contiguous array with a row axis")
    if not isinstance(index, np.ndarray):
        raise TypeError(f"read_rows: index must be an int64 numpy array, got {type(index).__name__}")
    if index.dtype != np.int64 or index.ndim != 1:
        raise TypeError(f"read_rows: index must be 1-D int64, got {index.dtype} of shape {index.shape}")
    if n < 0 or offset < 0:
        raise ValueError(f"read_rows: n and offset must be >= 0, got {n} and {offset}")
    if out.shape[0] != len(index):
        raise ValueError(f"read_rows: out has {out.shape[0]} rows, index {len(index)}")
    bad = np.flatnonzero((index < 0) | (index >= n))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"read_rows: index[{i}] = {int(index[i])} is out of range for "
                         f"a file of {n} rows (must be in [0, {n}))")
    if not len(index):
        return out
    row_bytes = out.nbytes // len(index)
    flat = out.reshape(len(index), -1).view(np.uint8)
    for i, r in enumerate(index.tolist()):
        got = os.preadv(fd, [flat[i]], offset + r * row_bytes)
        if got < row_bytes:
            raise OSError(f"read_rows: the file ends before row {r} (index[{i}]): is it "
                          "shorter than its header says?")
    return out
