"""Reference dropout family: the counter-based generator of csrc/dropout.c in NumPy, bit for bit.

Random numbers are a pure function of (seed, counter, element index), SplitMix64-style::

    mix64(z):  z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb;
               return z ^ z >> 31                                 (all modulo 2^64)
    key      = mix64(mix64(seed) + counter * G),   G = 0x9e3779b97f4a7c15
    word(i)  = mix64(key + (i + 1) * G)

Element i (flat, row-major) is kept when (word(i) >> 11) >= floor(rate * 2^53). A standard
normal uses words 2i and 2i + 1 (Box-Muller in double, through Python's math module, which
calls the same libm as the C code).
"""
import math

import numpy as np

__all__ = ["random_words", "dropout_apply", "gaussian_noise_apply"]

_U64 = (1 << 64) - 1
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z):
    """SplitMix64's finalizer on a uint64 array (numpy's uint64 arithmetic wraps mod 2^64)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _key(seed, counter):
    s = np.array([int(seed) & _U64], np.uint64)
    c = np.array([int(counter) & _U64], np.uint64)
    return _mix64(_mix64(s) + c * _G)[0]


def _words(key, index):
    return _mix64(np.uint64(key) + (index + np.uint64(1)) * _G)


def _threshold(rate):
    if not rate > 0:
        return 0
    if rate >= 1:
        return 1 << 53
    return int(rate * 9007199254740992.0)


def random_words(seed, counter, n, out=None, n_threads=None):
    """The first n 64-bit words of the stream (seed, counter)."""
    w = _words(_key(seed, counter), np.arange(n, dtype=np.uint64))
    if out is None:
        return w
    out[...] = w
    return out


def dropout_apply(X, rate, scale, shift, fill, seed, counter, out=None, n_threads=None):
    """out = X * scale + shift where element i is kept, fill where dropped (see module doc)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    X = np.asarray(X)
    dt = X.dtype.type
    keep = (_words(_key(seed, counter), np.arange(X.size, dtype=np.uint64)) >> np.uint64(11)) \
        >= np.uint64(_threshold(rate))
    x = X.reshape(-1)
    t = x * dt(scale)
    if shift != 0 or fill != 0:
        t = t + dt(shift)
    y = np.where(keep, t, dt(fill)).astype(X.dtype, copy=False)
    if out is None:
        out = np.empty_like(X)
    out.reshape(-1)[...] = y
    return out


_log = np.vectorize(math.log, otypes=[np.float64])
_cos = np.vectorize(math.cos, otypes=[np.float64])


def _normals(seed, counter, n):
    w = _words(_key(seed, counter), np.arange(2 * n, dtype=np.uint64))
    u1 = ((w[0::2] >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
    u2 = (w[1::2] >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return np.sqrt(-2.0 * _log(u1)) * _cos(6.283185307179586 * u2)


def gaussian_noise_apply(X, stddev, multiplicative, seed, counter, out=None, n_threads=None):
    """out = X + stddev * z, or X * (1 + stddev * z) when multiplicative; z ~ N(0, 1)."""
    if not stddev >= 0:
        raise ValueError(f"stddev must be >= 0, got {stddev}")
    X = np.asarray(X)
    x = X.reshape(-1)
    e = stddev * _normals(seed, counter, x.size)
    if multiplicative:
        y = x * (1.0 + e).astype(X.dtype)
    else:
        y = x + e.astype(X.dtype)
    if out is None:
        out = np.empty_like(X)
    out.reshape(-1)[...] = y
    return out
