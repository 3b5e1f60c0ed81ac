"""Reference of csrc/products.c: matmul is np.matmul (the C kernel makes np.matmul's BLAS
calls, so the two agree bit for bit)."""
import numpy as np

__all__ = ["matmul"]


def matmul(a, b, out=None, n_threads=None):
    """out = a @ b for 2-D float arrays of one dtype (``n_threads`` is not used: the BLAS has
    its own threads)."""
    for what, v in (("a", a), ("b", b)):
        if not isinstance(v, np.ndarray) or v.ndim != 2 or v.dtype not in (np.float32, np.float64):
            raise TypeError(f"matmul: {what} must be a 2-D float32 or float64 numpy array")
    if b.dtype != a.dtype:
        raise TypeError(f"matmul: b has dtype {b.dtype}, expected that of a")
    m, k = a.shape
    if b.shape[0] != k or (out is not None and out.shape != (m, b.shape[1])):
        raise ValueError(f"matmul: shapes {a.shape} @ {b.shape} -> "
                         f"{None if out is None else out.shape} do not match")
    if 0 in (m, k, b.shape[1]):
        raise ValueError(f"matmul: empty operands {a.shape} @ {b.shape}")
    return np.matmul(a, b, out=out)
