"""Reference dropout family: the counter-based generator of csrc/dropout.c in NumPy, bit for bit.

Random numbers are a pure function of (seed, counter, element index), SplitMix64-style::

    mix64(z):  z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9; z = (z ^ z >> 27) * 0x94d049bb133111eb;
               return z ^ z >> 31                                 (all modulo 2^64)
    key      = mix64(mix64(seed) + counter * G),   G = 0x9e3779b97f4a7c15
    word(i)  = mix64(key + (i + 1) * G)

Keep decisions, two per word: element i (flat, row-major) uses u_i = the low 32 bits of
word(i // 2) when i is even, the high 32 bits when i is odd, and is kept when
u_i >= floor(rate * 2^32) (never when rate >= 1: threshold 2^32). P(keep) is within 2^-32 of
1 - rate.

Standard normals: Box-Muller on the words (2k, 2k + 1) gives elements 2k and 2k + 1:
u1 = 1 - (w_2k >> 12) 2^-52, r = sqrt(-2 ln u1); w_2k+1 >> 12 = (q + f) 2^50 gives the angle
t = (q + f) pi / 2; z_2k = r cos t, z_2k+1 = r sin t. ln, sin and cos are polynomials (see
``_normal_pairs``) evaluated with exactly the operations of csrc/dropout.c, in float64 without
fused multiply-adds, so C and this reference agree bit for bit.
"""
import numpy as np

__all__ = ["random_words", "dropout_apply", "dropout_backward", "gaussian_noise_apply"]

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
        return 1 << 32
    return int(rate * 4294967296.0)


def _keep(seed, counter, rate, n):
    """The keep decisions of elements 0 .. n-1 (bool), two per word (see module doc)."""
    w = _words(_key(seed, counter), np.arange((n + 1) // 2, dtype=np.uint64))
    u = np.empty(2 * w.size, np.uint64)
    u[0::2] = w & np.uint64(0xFFFFFFFF)
    u[1::2] = w >> np.uint64(32)
    return u[:n] >= np.uint64(_threshold(rate))


def _check_mask(mask, shape, name, output=False):
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy uint8 array, got {type(mask).__name__}")
    if mask.dtype != np.uint8 and mask.dtype != np.bool_:
        raise TypeError(f"{name} must be uint8 or bool, got {mask.dtype}")
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {mask.shape}, expected {shape}")
    if output and (not mask.flags.c_contiguous or not mask.flags.writeable):
        raise ValueError(f"{name} must be a writable C-contiguous array")


def random_words(seed, counter, n, out=None, n_threads=None):
    """The first n 64-bit words of the stream (seed, counter)."""
    w = _words(_key(seed, counter), np.arange(n, dtype=np.uint64))
    if out is None:
        return w
    out[...] = w
    return out


def dropout_apply(X, rate, scale, shift, fill, seed, counter, out=None, mask=None, n_threads=None):
    """out = X * scale + shift where element i is kept, fill where dropped (see module doc);
    ``mask`` (optional, uint8 or bool of X's shape) gets 1 where kept, 0 where dropped."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    X = np.asarray(X)
    if mask is not None:
        _check_mask(mask, X.shape, "mask", output=True)
    dt = X.dtype.type
    keep = _keep(seed, counter, rate, X.size)
    x = X.reshape(-1)
    t = x * dt(scale)
    if shift != 0 or fill != 0:
        t = t + dt(shift)
    y = np.where(keep, t, dt(fill)).astype(X.dtype, copy=False)
    if out is None:
        out = np.empty_like(X)
    out.reshape(-1)[...] = y
    if mask is not None:
        mask.reshape(-1)[...] = keep
    return out


def dropout_backward(dY, mask, scale, out=None, n_threads=None):
    """dX = dY * scale where ``mask`` is nonzero, +0 where it is 0 (dropout's backward from the
    mask ``dropout_apply`` stored)."""
    dY = np.asarray(dY)
    if dY.dtype != np.float32 and dY.dtype != np.float64:
        raise TypeError(f"dY must be float32 or float64, got {dY.dtype}")
    _check_mask(mask, dY.shape, "mask")
    y = np.where(mask != 0, dY * dY.dtype.type(scale), dY.dtype.type(0)).astype(dY.dtype, copy=False)
    if out is None:
        out = np.empty_like(dY)
    out[...] = y
    return out


_H = float.fromhex
_LN_COEFFS = [_H(h) for h in (
    "0x1.8618618618618p-5", "0x1.af286bca1af28p-5", "0x1.e1e1e1e1e1e1ep-5", "0x1.1111111111111p-4",
    "0x1.3b13b13b13b14p-4", "0x1.745d1745d1746p-4", "0x1.c71c71c71c71cp-4", "0x1.2492492492492p-3",
    "0x1.999999999999ap-3", "0x1.5555555555555p-2")]           # 1 / (2j + 1), j = 10..1
_COS_COEFFS = [_H(h) for h in (
    "-0x1.6827863b97d97p-53", "0x1.ae7f3e733b81fp-45", "-0x1.93974a8c07c9dp-37",
    "0x1.1eed8eff8d898p-29", "-0x1.27e4fb7789f5cp-22", "0x1.a01a01a01a01ap-16",
    "-0x1.6c16c16c16c17p-10", "0x1.5555555555555p-5", "-0x1.0000000000000p-1")]  # (-1)^j/(2j)!
_SIN_COEFFS = [_H(h) for h in (
    "-0x1.2f49b46814157p-57", "0x1.952c77030ad4ap-49", "-0x1.ae7f3e733b81fp-41",
    "0x1.6124613a86d09p-33", "-0x1.ae64567f544e4p-26", "0x1.71de3a556c734p-19",
    "-0x1.a01a01a01a01ap-13", "0x1.1111111111111p-7", "-0x1.5555555555555p-3")]  # (-1)^j/(2j+1)!
_LN2 = _H("0x1.62e42fefa39efp-1")
_HALF_PI = _H("0x1.921fb54442d18p+0")
_SQRT_HALF = _H("0x1.6a09e667f3bcdp-1")
_EXP_ONE = np.uint64(1023 << 52)


def _horner(coeffs, x2, x0):
    p = np.full_like(x2, x0)
    for c in coeffs[1:]:
        p = p * x2 + c
    return p


def _normal_pairs(wa, wb):
    """Two standard normals per pair of words, as csrc/dropout.c fastnn_normal_pair."""
    u1 = 2.0 - (_EXP_ONE | (wa >> np.uint64(12))).view(np.float64)
    b = u1.view(np.uint64)
    e = (b >> np.uint64(52)).astype(np.int64) - 1022
    m = ((b & np.uint64(0x000FFFFFFFFFFFFF)) | np.uint64(1022 << 52)).view(np.float64)
    lo = m < _SQRT_HALF
    m = np.where(lo, m + m, m)
    e = e - lo
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _horner(_LN_COEFFS, s2, _LN_COEFFS[0])
    p = p * s2 + 1.0
    ln_u1 = e.astype(np.float64) * _LN2 + (s + s) * p
    r = np.sqrt(-2.0 * ln_u1)
    mb = wb >> np.uint64(12)
    q = (mb >> np.uint64(50)).astype(np.int64)
    f = (_EXP_ONE | ((mb & np.uint64(0x3FFFFFFFFFFFF)) << np.uint64(2))).view(np.float64) - 1.0
    hi = f > 0.5
    g = np.where(hi, 1.0 - f, f)
    x = g * _HALF_PI
    x2 = x * x
    c = _horner(_COS_COEFFS, x2, _COS_COEFFS[0]) * x2 + 1.0
    sn = (_horner(_SIN_COEFFS, x2, _SIN_COEFFS[0]) * x2 + 1.0) * x
    ca, sa = np.where(hi, sn, c), np.where(hi, c, sn)
    odd = (q & 1) == 1
    c0, s0 = np.where(odd, sa, ca), np.where(odd, ca, sa)
    sc = np.where((q == 1) | (q == 2), -1.0, 1.0)
    ss = np.where(q >= 2, -1.0, 1.0)
    return r * (sc * c0), r * (ss * s0)


def _normals(seed, counter, n):
    pairs = (n + 1) // 2
    w = _words(_key(seed, counter), np.arange(2 * pairs, dtype=np.uint64))
    z0, z1 = _normal_pairs(w[0::2], w[1::2])
    z = np.empty(2 * pairs)
    z[0::2], z[1::2] = z0, z1
    return z[:n]


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
