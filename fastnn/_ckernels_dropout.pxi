# Wrappers for csrc/dropout.c (included by _ckernels.pyx): counter-based random numbers
# and the dropout family. Seeds and counters are reduced modulo 2^64.
from libc.stdint cimport uint64_t

_U64 = (1 << 64) - 1


cdef object _flat_pair(X, out, str name):
    """X as a flat contiguous array (copied if needed) and out as a flat writable view of an
    array of X's shape and dtype (new when None). out may be X itself."""
    cdef int k = _kind(X, name)
    Xc = _in(X, k, name)
    out = np.empty_like(Xc) if out is None else _out(out, k, Xc.shape, "out")
    return k, Xc.reshape(-1), out


def random_words(seed, counter, Py_ssize_t n, out=None, n_threads=None):
    """The first n 64-bit words of the stream (seed, counter):
    word i = mix64(key + (i + 1) * G), key = mix64(mix64(seed) + counter * G)."""
    cdef int nt = _nt(n_threads)
    cdef uint64_t s = int(seed) & _U64, c = int(counter) & _U64
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = np.empty(n, np.uint64) if out is None else out
    if out.dtype != np.uint64 or out.shape != (n,) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"out must be a writable contiguous uint64 array of shape ({n},)")
    cdef uint64_t[::1] o = out
    if n:
        with nogil:
            random_words_u64(s, c, &o[0], n, nt)
    return out


cdef object _mask_out(mask, shape, str name):
    """A keep-mask output: a writable C-contiguous uint8 (or bool) array of X's shape, as a
    flat uint8 view."""
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy uint8 array or None, got {type(mask).__name__}")
    if mask.dtype != np.uint8 and mask.dtype != np.bool_:
        raise TypeError(f"{name} must be uint8 or bool, got {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {mask.shape}, expected {shape}")
    if not mask.flags.c_contiguous or not mask.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return mask.reshape(-1).view(np.uint8)


cdef void _dropout_apply(const floating[::1] X, double rate, double scale, double shift, double fill,
                         uint64_t seed, uint64_t counter, floating[::1] out, uint8_t *mask,
                         int nt) noexcept nogil:
    if floating is float:
        dropout_apply_f32(&X[0], rate, scale, shift, fill, seed, counter, &out[0], mask, X.shape[0], nt)
    else:
        dropout_apply_f64(&X[0], rate, scale, shift, fill, seed, counter, &out[0], mask, X.shape[0], nt)


def dropout_apply(X, double rate, double scale, double shift, double fill, seed, counter, out=None,
                  mask=None, n_threads=None):
    """out = X * scale + shift where element i (flat, row-major index) is kept, fill where
    it is dropped. Element i is kept when u_i >= floor(rate * 2^32) (never when rate >= 1),
    u_i being the low 32 bits of word i // 2 of the stream (seed, counter) for even i, the
    high 32 bits for odd i. Inverted dropout is scale = 1 / (1 - rate), shift = fill = 0.
    ``mask`` (optional, uint8 or bool of X's shape) receives 1 where kept, 0 where dropped,
    for ``dropout_backward``. Any shape; ``out`` may be X."""
    cdef int nt = _nt(n_threads)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    cdef uint64_t s = int(seed) & _U64, c = int(counter) & _U64
    k, x, o = _flat_pair(X, out, "X")
    cdef uint8_t[::1] mv
    cdef uint8_t *mp = NULL
    if mask is not None:
        mv = _mask_out(mask, o.shape, "mask")
        if x.shape[0]:
            mp = &mv[0]
    if x.shape[0] == 0:
        return o
    if k == 0:
        _dropout_apply[float](x, rate, scale, shift, fill, s, c, o.reshape(-1), mp, nt)
    else:
        _dropout_apply[double](x, rate, scale, shift, fill, s, c, o.reshape(-1), mp, nt)
    return o


cdef void _dropout_backward(const floating[::1] dY, const uint8_t[::1] mask, double scale,
                            floating[::1] dX, int nt) noexcept nogil:
    if floating is float:
        dropout_backward_f32(&dY[0], &mask[0], scale, &dX[0], dY.shape[0], nt)
    else:
        dropout_backward_f64(&dY[0], &mask[0], scale, &dX[0], dY.shape[0], nt)


def dropout_backward(dY, mask, double scale, out=None, n_threads=None):
    """dX = dY * scale where ``mask`` (the keep-mask ``dropout_apply`` wrote: uint8 or bool, dY's
    shape) is nonzero, +0 where it is 0: the backward of dropout (and of AlphaDropout, with its
    scale) without generating the mask again. NaN in dY propagates where kept. Any shape;
    ``out`` may be dY."""
    cdef int nt = _nt(n_threads)
    k, dy, o = _flat_pair(dY, out, "dY")
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy uint8 array, got {type(mask).__name__}")
    if mask.dtype != np.uint8 and mask.dtype != np.bool_:
        raise TypeError(f"mask must be uint8 or bool, got {mask.dtype}")
    if mask.shape != o.shape:
        raise ValueError(f"mask has shape {mask.shape}, expected dY's shape {o.shape}")
    m = np.ascontiguousarray(mask).reshape(-1).view(np.uint8)
    if dy.shape[0] == 0:
        return o
    if k == 0:
        _dropout_backward[float](dy, m, scale, o.reshape(-1), nt)
    else:
        _dropout_backward[double](dy, m, scale, o.reshape(-1), nt)
    return o


cdef void _gaussian(const floating[::1] X, double stddev, int mult, uint64_t seed, uint64_t counter,
                    floating[::1] out, int nt) noexcept nogil:
    if floating is float:
        gaussian_noise_apply_f32(&X[0], stddev, mult, seed, counter, &out[0], X.shape[0], nt)
    else:
        gaussian_noise_apply_f64(&X[0], stddev, mult, seed, counter, &out[0], X.shape[0], nt)


def gaussian_noise_apply(X, double stddev, bint multiplicative, seed, counter, out=None, n_threads=None):
    """out = X + stddev * z (additive, GaussianNoise) or X * (1 + stddev * z) (multiplicative,
    GaussianDropout and its backward), z_i ~ N(0, 1) from words 2i and 2i + 1 of the stream
    (seed, counter) by Box-Muller. Any shape; ``out`` may be X."""
    cdef int nt = _nt(n_threads)
    if not stddev >= 0:
        raise ValueError(f"stddev must be >= 0, got {stddev}")
    cdef uint64_t s = int(seed) & _U64, c = int(counter) & _U64
    k, x, o = _flat_pair(X, out, "X")
    if x.shape[0] == 0:
        return o
    if k == 0:
        _gaussian[float](x, stddev, multiplicative, s, c, o.reshape(-1), nt)
    else:
        _gaussian[double](x, stddev, multiplicative, s, c, o.reshape(-1), nt)
    return o
