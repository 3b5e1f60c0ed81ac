"""Reference embedding kernels: the lookup of table rows by integer code (with every code
checked) and its gradient, the scatter-add of the output gradient into the table."""
import numpy as np

__all__ = ["embedding_forward", "embedding_backward"]


def _position(shape, flat):
    """``[i, j]`` for the element at C-order position ``flat`` of an array of ``shape``."""
    return "[" + ", ".join(str(int(i)) for i in np.unravel_index(flat, shape)) + "]"


def _code_repr(value):
    """A code as numpy prints it: the shortest digits that give its value back in its dtype
    (float32 1e30 is "1e+30", not float64's 1.0000000150474662e+30)."""
    return str(value)


def _check_table(W, name):
    if not isinstance(W, np.ndarray):
        raise TypeError(f"{name}: W must be a numpy array, got {type(W).__name__}")
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: W must be float32 or float64, got {W.dtype}")
    if W.ndim != 2:
        raise ValueError(f"{name}: W must be 2-D (rows, cols), got shape {W.shape}")


def _check_buffer(a, what, dtype, shape, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: {what} has dtype {a.dtype}, expected {np.dtype(dtype)}")
    if a.shape != shape:
        raise ValueError(f"{name}: {what} has shape {a.shape}, expected {shape}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name}: {what} must be a writable C-contiguous array")


def embedding_forward(codes, W, out=None, index=None, n_threads=None):
    """out[...] = W[codes[...]]: the row of the table ``W`` (rows, cols) named by each code.

    ``codes``: an array of any shape holding row numbers, either of an integer dtype or of
    W's float dtype holding integral values (fit hands a model its inputs as floats).
    ``out``: codes.shape + (cols,), W's dtype; ``index`` (optional): codes.shape, int64,
    receives the codes as row numbers (what embedding_backward takes). Every code is
    checked to be an integer in [0, rows) before out is written: a ValueError names the
    first bad one (C order) and its position; NaN, -1, rows and 2.5 are all refused."""
    name = "embedding_forward"
    _check_table(W, name)
    if not isinstance(codes, np.ndarray):
        raise TypeError(f"{name}: codes must be a numpy array, got {type(codes).__name__}")
    if codes.dtype.kind not in "iu" and codes.dtype != W.dtype:
        raise TypeError(f"{name}: codes must have an integer dtype or W's dtype ({W.dtype}), "
                        f"got {codes.dtype}")
    rows, cols = W.shape
    shape = codes.shape + (cols,)
    if out is None:
        out = np.empty(shape, W.dtype)
    _check_buffer(out, "out", W.dtype, shape, name)
    if index is None:
        index = np.empty(codes.shape, np.int64)
    _check_buffer(index, "index", np.int64, codes.shape, name)
    if out.size and W.size and np.may_share_memory(out, W):
        raise ValueError(f"{name}: out overlaps W")
    # float codes compared in float64, where every float32 and every row count is exact
    c = codes.astype(np.float64) if codes.dtype.kind == "f" else codes
    with np.errstate(invalid="ignore"):  # NaN compares False: it is flagged as bad
        ok = (c >= 0) & (c < rows)
        if c.dtype.kind == "f":
            ok &= np.floor(c) == c
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        value = codes.reshape(-1)[i]
        raise ValueError(f"{name}: codes{_position(codes.shape, i)} = {_code_repr(value)} is "
                         f"not a row of W: codes must be integers in [0, {rows})")
    index[...] = codes
    np.take(W, index, axis=0, out=out)
    return out


def embedding_backward(dY, index, rows, out=None, n_threads=None):
    """out (rows, cols) = the gradient of embedding_forward with respect to W: zeros, then
    ``out[index[...]] += dY[...]`` in C order of the indices (``np.add.at``: a row named k
    times gets its k gradient rows added, in order). ``dY``: index.shape + (cols,)."""
    name = "embedding_backward"
    if not isinstance(dY, np.ndarray) or dY.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: dY must be a float32 or float64 numpy array, got "
                        f"{getattr(dY, 'dtype', type(dY).__name__)}")
    if not isinstance(index, np.ndarray) or index.dtype != np.int64:
        raise TypeError(f"{name}: index must be an int64 numpy array, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if dY.ndim != index.ndim + 1 or dY.shape[:-1] != index.shape:
        raise ValueError(f"{name}: dY has shape {dY.shape}, expected index.shape + (cols,) = "
                         f"{index.shape} + (cols,)")
    rows = int(rows)
    if rows < 0:
        raise ValueError(f"{name}: rows must be >= 0, got {rows}")
    shape = (rows, dY.shape[-1])
    if out is None:
        out = np.empty(shape, dY.dtype)
    _check_buffer(out, "out", dY.dtype, shape, name)
    if out.size and (np.may_share_memory(out, dY) or np.may_share_memory(out, index)):
        # out is zeroed first: the gradient or the indices in it would be lost
        raise ValueError(f"{name}: out overlaps dY or index")
    bad = np.flatnonzero((index < 0) | (index >= rows))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: index{_position(index.shape, i)} = {int(index.reshape(-1)[i])} "
                         f"is out of range for a table of {rows} rows (must be in [0, {rows}))")
    out[...] = 0
    np.add.at(out, index.reshape(-1), dY.reshape(-1, shape[1]))
    return out
