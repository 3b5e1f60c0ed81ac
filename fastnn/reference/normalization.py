"""Reference normalization kernels: batch normalization (training statistics, backward),
the per-column affine map of inference mode, layer normalization. Statistics in float64."""
import numpy as np

__all__ = ["batchnorm_forward_train", "batchnorm_backward", "col_affine", "layernorm_forward",
           "layernorm_backward"]


def _check(X, m, eps=None, **vectors):
    """The same argument errors as the C wrappers: float dtype, vector lengths, epsilon."""
    if X.dtype not in (np.float32, np.float64):
        raise TypeError(f"X must be float32 or float64, got {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {X.shape}")
    for name, v in vectors.items():
        if v is not None and np.shape(v) != (m,):
            raise ValueError(f"{name} has shape {np.shape(v)}, expected ({m},)")
    if eps is not None and not eps > 0:
        raise ValueError(f"epsilon must be > 0, got {eps}")


def _put(out, value, like):
    if out is None:
        return np.asarray(value).astype(like.dtype)
    out[...] = value
    return out


def batchnorm_forward_train(X, gamma, beta, epsilon, momentum, moving_mean=None,
                            moving_variance=None, out=None, mean=None, invstd=None, n_threads=None):
    """Batch statistics of X (n, m) per column (biased variance), normalize-scale-shift, and
    the moving averages (moving = moving * momentum + batch * (1 - momentum)).
    Returns (out, mean, invstd)."""
    _check(X, X.shape[-1], epsilon, gamma=gamma, beta=beta, moving_mean=moving_mean,
           moving_variance=moving_variance)
    if X.shape[0] < 1:
        raise ValueError(f"batch normalization needs at least one row, got X of shape {X.shape}")
    x64 = X.astype(np.float64)
    mu = x64.mean(axis=0)
    var = ((x64 - mu) ** 2).mean(axis=0)
    inv = 1.0 / np.sqrt(var + epsilon)
    if moving_mean is not None:
        moving_mean[...] = moving_mean.astype(np.float64) * momentum + mu * (1.0 - momentum)
        moving_variance[...] = moving_variance.astype(np.float64) * momentum + var * (1.0 - momentum)
    mean = _put(mean, mu, X)
    invstd = _put(invstd, inv, X)
    k = invstd * gamma if gamma is not None else invstd
    y = (X - mean) * k
    if beta is not None:
        y = y + beta
    return _put(out, y, X), mean, invstd


def batchnorm_backward(dY, X, mean, invstd, gamma, out=None, dgamma=None, dbeta=None,
                       need_dx=True, n_threads=None):
    """dbeta = sum dY, dgamma = sum dY * xhat; dX = gamma * invstd * (dY - dbeta / n -
    xhat * dgamma / n): the gradient through the batch mean and variance."""
    if mean is None or invstd is None:
        raise ValueError("batchnorm_backward needs the batch mean and invstd of the forward pass, got None")
    _check(dY, dY.shape[-1], None, mean=mean, invstd=invstd, gamma=gamma)
    n = dY.shape[0]
    xhat = (X.astype(np.float64) - mean) * invstd
    d64 = dY.astype(np.float64)
    sdy = d64.sum(axis=0)
    sdx = (d64 * xhat).sum(axis=0)
    if dgamma is not None:
        dgamma[...] = sdx
    if dbeta is not None:
        dbeta[...] = sdy
    if not need_dx:
        return None
    k = invstd.astype(np.float64) * (gamma if gamma is not None else 1.0)
    dx = k * (d64 - sdy / n - xhat * (sdx / n))
    return _put(out, dx, dY)


def col_affine(X, shift, scale, offset, out=None, n_threads=None):
    """out = (X - shift) * scale + offset per column; shift / offset None mean zero."""
    if scale is None:
        raise ValueError("col_affine needs a scale vector")
    _check(X, X.shape[-1], None, shift=shift, scale=scale, offset=offset)
    y = X - shift if shift is not None else X
    y = y * scale
    if offset is not None:
        y = y + offset
    return _put(out, y, X)


def layernorm_forward(X, gamma, beta, epsilon, out=None, mean=None, rstd=None, n_threads=None):
    """Per row: mean, biased variance, rstd = 1 / sqrt(var + epsilon),
    out = (X - mean) * rstd * gamma + beta. Returns (out, mean, rstd)."""
    _check(X, X.shape[-1], epsilon, gamma=gamma, beta=beta)
    if X.shape[1] < 1:
        raise ValueError(f"layer normalization needs at least one column, got X of shape {X.shape}")
    x64 = X.astype(np.float64)
    mu = x64.mean(axis=1)
    var = ((x64 - mu[:, None]) ** 2).mean(axis=1)
    mean = _put(mean, mu, X)
    rstd = _put(rstd, 1.0 / np.sqrt(var + epsilon), X)
    y = (X - mean[:, None]) * rstd[:, None]
    if gamma is not None:
        y = y * gamma
    if beta is not None:
        y = y + beta
    return _put(out, y, X), mean, rstd


def layernorm_backward(dY, X, gamma, mean, rstd, out=None, dgamma=None, dbeta=None, need_dx=True,
                       n_threads=None):
    """dX = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)), g = dY * gamma;
    dgamma = sum_i dY * xhat, dbeta = sum_i dY."""
    if mean is None or rstd is None:
        raise ValueError("layernorm_backward needs the row mean and rstd of the forward pass, got None")
    d64 = dY.astype(np.float64)
    xhat = (X.astype(np.float64) - mean[:, None]) * rstd[:, None].astype(np.float64)
    if dgamma is not None:
        dgamma[...] = (d64 * xhat).sum(axis=0)
    if dbeta is not None:
        dbeta[...] = d64.sum(axis=0)
    if not need_dx:
        return None
    g = d64 * gamma if gamma is not None else d64
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True)
                          - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return _put(out, dx, dY)
