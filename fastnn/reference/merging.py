"""Reference merge kernels: the column copies of Concatenate on 2-D inputs (the inputs side
by side in one output) and of its backward (the output gradient's column blocks, each into
a contiguous array of its own)."""
import numpy as np

from .embedding import _check_buffer

__all__ = ["concat_columns", "split_columns"]


def concat_columns(xs, out=None, n_threads=None):
    """out (n, w_0 + ... + w_{k-1}) = the 2-D arrays ``xs`` (each (n, w_j), one float dtype)
    side by side: columns [w_0 + ... + w_{j-1}, ... + w_j) of out are xs[j]
    (``np.concatenate(xs, axis=1)``). ``out`` must not overlap an input."""
    name = "concat_columns"
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError(f"{name}: xs must be a non-empty list of arrays, got "
                        f"{type(xs).__name__ if not isinstance(xs, (list, tuple)) else 'an empty one'}")
    for j, x in enumerate(xs):
        if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
            raise TypeError(f"{name}: xs[{j}] must be a float32 or float64 numpy array, got "
                            f"{getattr(x, 'dtype', type(x).__name__)}")
        if x.dtype != xs[0].dtype:
            raise TypeError(f"{name}: xs[{j}] has dtype {x.dtype}, xs[0] {xs[0].dtype}")
        if x.ndim != 2 or x.shape[0] != xs[0].shape[0]:
            raise ValueError(f"{name}: xs must be 2-D with the same number of rows, got shapes "
                             f"{[np.shape(a) for a in xs]}")
    shape = (xs[0].shape[0], sum(x.shape[1] for x in xs))
    if out is None:
        out = np.empty(shape, xs[0].dtype)
    _check_buffer(out, "out", xs[0].dtype, shape, name)
    if out.size and any(x.size and np.may_share_memory(out, x) for x in xs):
        raise ValueError(f"{name}: out overlaps an input")
    lo = 0
    for x in xs:
        out[:, lo:lo + x.shape[1]] = x
        lo += x.shape[1]
    return out


def split_columns(dY, widths, outs=None, n_threads=None):
    """The inverse of concat_columns: outs[j] (n, widths[j]) = columns [widths[0] + ... +
    widths[j-1], ... + widths[j]) of the 2-D ``dY``, each a C-contiguous array of dY's dtype
    (new ones when ``outs`` is None). ``widths`` must add up to dY's columns; no out may
    overlap dY. Returns the outputs as a tuple."""
    name = "split_columns"
    if not isinstance(dY, np.ndarray) or dY.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: dY must be a float32 or float64 numpy array, got "
                        f"{getattr(dY, 'dtype', type(dY).__name__)}")
    if dY.ndim != 2:
        raise ValueError(f"{name}: dY must be 2-D, got shape {dY.shape}")
    widths = [int(w) for w in widths]
    if not widths or any(w < 0 for w in widths) or sum(widths) != dY.shape[1]:
        raise ValueError(f"{name}: widths {widths} must be >= 0 and add up to dY's "
                         f"{dY.shape[1]} columns")
    n = dY.shape[0]
    if outs is None:
        outs = [np.empty((n, w), dY.dtype) for w in widths]
    if not isinstance(outs, (list, tuple)) or len(outs) != len(widths):
        raise ValueError(f"{name}: outs must be a list of {len(widths)} arrays, got "
                         f"{len(outs) if isinstance(outs, (list, tuple)) else type(outs).__name__}")
    for j, (o, w) in enumerate(zip(outs, widths)):
        _check_buffer(o, f"outs[{j}]", dY.dtype, (n, w), name)
        if o.size and dY.size and np.may_share_memory(o, dY):
            raise ValueError(f"{name}: outs[{j}] overlaps dY")
    lo = 0
    for o, w in zip(outs, widths):
        o[...] = dY[:, lo:lo + w]
        lo += w
    return tuple(outs)
