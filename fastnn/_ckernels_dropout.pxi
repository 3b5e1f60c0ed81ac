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


cdef void _dropout_apply(const floating[::1] X, double rate, double scale, double shift, double fill,
                         uint64_t seed, uint64_t counter, floating[::1] out, int nt) noexcept nogil:
    if floating is float:
        dropout_apply_f32(&X[0], rate, scale, shift, fill, seed, counter, &out[0], X.shape[0], nt)
    else:
        dropout_apply_f64(&X[0], rate, scale, shift, fill, seed, counter, &out[0], X.shape[0], nt)


def dropout_apply(X, double rate, double scale, double shift, double fill, seed, counter, out=None,
                  n_threads=None):
    """out = X * scale + shift where element i (flat, row-major index) is kept, fill where
    it is dropped; element i is kept when (word i >> 11) >= floor(rate * 2^53) in the stream
    (seed, counter). Inverted dropout is scale = 1 / (1 - rate), shift = fill = 0, and its
    backward is the same call on dY. Any shape; ``out`` may be X."""
    cdef int nt = _nt(n_threads)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    cdef uint64_t s = int(seed) & _U64, c = int(counter) & _U64
    k, x, o = _flat_pair(X, out, "X")
    if x.shape[0] == 0:
        return o
    if k == 0:
        _dropout_apply[float](x, rate, scale, shift, fill, s, c, o.reshape(-1), nt)
    else:
        _dropout_apply[double](x, rate, scale, shift, fill, s, c, o.reshape(-1), nt)
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
