"""The dropout family (Keras 3 names): Dropout, AlphaDropout, GaussianDropout, GaussianNoise,
and DropConnectDense (fastnn extra).

Randomness comes from a counter-based generator in C (``backend.ops.dropout_apply`` and
``gaussian_noise_apply``): the noise of element i in a layer's k-th sampling call is a pure
function of (layer seed, k, i). So masks are the same whatever the thread count and the NumPy
reference reproduces them bit for bit. Dropout, AlphaDropout and DropConnectDense store the
keep-mask (one byte per element, written by the forward kernel in the same pass) for the
backward pass, which is then one multiply-and-select (``dropout_backward``) instead of a
second run of the generator; GaussianDropout regenerates its noise in backward.

Each layer has a ``seed`` (Keras' argument; when None one is drawn from fastnn's global
generator when the layer is built, so ``fastnn.set_seed`` makes training reproducible) and a
call counter, advanced on every sampling call: each training step and each
``model(x, training=True)`` draws a new mask.

``training`` is True / False as in Keras, or ``"mc"`` (``model.predict(x, mc_samples=N)``):
these layers sample in both True and "mc" (MC dropout); BatchNormalization does not.
"""
import math

import numpy as np

from .. import backend
from ..reference.activations import SELU_ALPHA as _SELU_ALPHA, SELU_SCALE as _SELU_SCALE
from .base import Layer
from .core import Dense


def _check_rate(rate, layer, allow_one):
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: rate must be a number in [0, 1], got {rate!r}") from None
    hi_ok = r <= 1 if allow_one else r < 1
    if not (r >= 0 and hi_ok):
        raise ValueError(f"{layer}: rate must be in [0, {'1]' if allow_one else '1)'}, got {rate}")
    return r


class _Stochastic(Layer):
    """Shared seed / counter handling of the dropout family."""

    # Saved with the model (fastnn.saving) so resumed training draws the same masks.
    _saved_attributes = ("_seed_value", "_calls")

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"{type(self).__name__}: seed must be an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._seed_value = self.seed
        self._calls = 0          # sampling calls so far: the counter of the next mask
        self._counter = None     # counter of the mask used by the last forward (None: identity)
        self._keep = None        # the last forward's keep-mask (uint8), when it stored one

    def _draw_seed(self):
        if self._seed_value is None:
            self._seed_value = int(backend.rng().integers(0, 2 ** 63))
        return self._seed_value

    def build(self, input_shape):
        self._draw_seed()
        self.built = True

    def _next_counter(self):
        self._draw_seed()
        c = self._calls
        self._calls += 1
        return c

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


class Dropout(_Stochastic):
    """Dropout(rate, noise_shape=None, seed=None)

    Inverted dropout: in training, each element is zeroed with probability ``rate`` and the
    kept ones are scaled by ``1 / (1 - rate)``, so the expected output is the input; at
    inference the layer is the identity. ``noise_shape`` (as Keras) gives the mask's shape,
    broadcast to the input's (None entries take the input's size), e.g. ``(None, 1)`` drops
    whole rows.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(rate, type(self).__name__, allow_one=True)
        if noise_shape is not None:
            if isinstance(noise_shape, str) or not hasattr(noise_shape, "__iter__"):
                raise ValueError(f"{type(self).__name__}: noise_shape must be a tuple of integers or "
                                 f"None, got {noise_shape!r}")
            noise_shape = tuple(noise_shape)
            for d in noise_shape:
                if d is not None and (not isinstance(d, (int, np.integer)) or d <= 0):
                    raise ValueError(f"{type(self).__name__}: noise_shape entries must be positive "
                                     f"integers or None, got {noise_shape}")
        self.noise_shape = noise_shape

    # Kept elements: x * scale + shift; dropped: fill. Dropout: shift = fill = 0.
    def _affine(self):
        return (1.0 / (1.0 - self.rate) if self.rate < 1 else 0.0), 0.0, 0.0

    def _concrete_noise_shape(self, shape):
        ns = self.noise_shape
        if len(ns) != len(shape):
            raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape {ns} does not have "
                             f"the rank of the input shape {shape}")
        out = tuple(shape[i] if d is None else int(d) for i, d in enumerate(ns))
        for d, s in zip(out, shape):
            if d != 1 and d != s:
                raise ValueError(f"{type(self).__name__} {self.name!r}: noise_shape {ns} does not "
                                 f"broadcast to the input shape {shape}")
        return out

    def forward(self, x, training=False):
        self._keep = None
        if not training or self.rate == 0:
            self._counter = None
            return x
        c = self._counter = self._next_counter()
        scale, shift, fill = self._affine()
        ops = backend.ops
        y = self._buffer("y", x.shape)
        if self.noise_shape is None:
            # The keep-mask for backward, except in MC-dropout inference (training="mc"),
            # which has no backward pass.
            keep = None if training == "mc" else self._buffer("keep", x.shape, np.uint8)
            ops.dropout_apply(x, self.rate, scale, shift, fill, self._seed_value, c, y, keep)
            self._keep = keep
            return y
        # A mask of noise_shape broadcast over the input: mult = scale or 0, add = shift or fill.
        ns = self._concrete_noise_shape(x.shape)
        mult = self._buffer("mask_mult", ns)
        mult[...] = 1
        ops.dropout_apply(mult, self.rate, scale, 0.0, 0.0, self._seed_value, c, mult)
        np.multiply(x, mult, out=y)
        if shift or fill:
            add = self._buffer("mask_add", ns)
            add[...] = 0
            ops.dropout_apply(add, self.rate, 1.0, shift, fill, self._seed_value, c, add)
            np.add(y, add, out=y)
        self._mult = mult
        return y

    def _backward_scale(self):
        return self._affine()[0]

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._counter is None:
            return dy
        dx = self._backward_out("dx", dy, dy.shape)
        if self.noise_shape is None:
            if self._keep is not None:
                backend.ops.dropout_backward(dy, self._keep, self._backward_scale(), dx)
            else:  # no stored mask (forward ran without one): the same mask, generated again
                backend.ops.dropout_apply(dy, self.rate, self._backward_scale(), 0.0, 0.0,
                                          self._seed_value, self._counter, dx)
        else:
            np.multiply(dy, self._mult, out=dx)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate,
                      noise_shape=list(self.noise_shape) if self.noise_shape is not None else None)
        return config


class AlphaDropout(Dropout):
    """AlphaDropout(rate, noise_shape=None, seed=None)

    Dropout for self-normalizing (SELU) networks, Keras 3's formula: dropped elements are set
    to SELU's negative saturation ``alpha_p = -alpha * scale``, then an affine map ``a * x + b``
    with ``a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5`` and ``b = -a * alpha_p * rate``
    keeps zero mean and unit variance. Identity at inference. ``rate`` must be < 1.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        _check_rate(rate, "AlphaDropout", allow_one=False)
        super().__init__(rate, noise_shape=noise_shape, seed=seed, **kwargs)

    def _affine(self):
        r = self.rate
        alpha_p = -_SELU_ALPHA * _SELU_SCALE
        a = ((1 - r) * (1 + r * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * r
        return a, b, a * alpha_p + b


class GaussianDropout(_Stochastic):
    """GaussianDropout(rate, seed=None)

    Multiplicative Gaussian noise: in training ``y = x * n`` with ``n ~ N(1, rate / (1 -
    rate))`` per element; identity at inference. ``rate`` must be < 1.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _check_rate(rate, "GaussianDropout", allow_one=False)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._counter = None
            return x
        c = self._counter = self._next_counter()
        y = self._buffer("y", x.shape)
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        backend.ops.gaussian_noise_apply(x, stddev, True, self._seed_value, c, y)
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._counter is None:
            return dy
        dx = self._buffer("dx", dy.shape)
        stddev = math.sqrt(self.rate / (1.0 - self.rate))
        backend.ops.gaussian_noise_apply(dy, stddev, True, self._seed_value, self._counter, dx)
        return dx

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        return config


class GaussianNoise(_Stochastic):
    """GaussianNoise(stddev, seed=None)

    Additive zero-mean Gaussian noise in training (data augmentation, regularization):
    ``y = x + N(0, stddev ** 2)``; identity at inference. As Keras, ``stddev`` is in [0, 1].
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        try:
            s = float(stddev)
        except (TypeError, ValueError):
            raise ValueError(f"GaussianNoise: stddev must be a number in [0, 1], got {stddev!r}") from None
        if not 0 <= s <= 1:
            raise ValueError(f"GaussianNoise: stddev must be in [0, 1], got {stddev}")
        self.stddev = s

    def forward(self, x, training=False):
        if not training or self.stddev == 0:
            self._counter = None
            return x
        c = self._counter = self._next_counter()
        y = self._buffer("y", x.shape)
        backend.ops.gaussian_noise_apply(x, self.stddev, False, self._seed_value, c, y)
        return y

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None

    def get_config(self):
        config = super().get_config()
        config["stddev"] = self.stddev
        return config


class DropConnectDense(Dense):
    """DropConnectDense(units, rate=0.5, activation=None, use_bias=True, ..., seed=None)

    fastnn extra (Keras has no DropConnect): a Dense layer whose *weights* are dropped
    (Wan et al., 2013) rather than its outputs. In training, every kernel entry is zeroed with
    probability ``rate`` and the kept ones scaled by ``1 / (1 - rate)`` (inverted, like
    Dropout), one mask per batch; at inference the layer is a plain Dense with the full
    kernel. The bias is not dropped. Takes every Dense argument; the weights are Dense's
    (kernel, bias), so ``DropConnectDense`` weights load into a ``Dense`` and back.
    """

    _saved_attributes = ("_seed_value", "_calls")  # see _Stochastic

    def __init__(self, units, rate=0.5, seed=None, **kwargs):
        super().__init__(units, **kwargs)
        self.rate = _check_rate(rate, "DropConnectDense", allow_one=False)
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"DropConnectDense: seed must be an integer or None, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._seed_value = self.seed
        self._calls = 0
        self._counter = None
        self._keep = None

    def build(self, input_shape):
        super().build(input_shape)
        if self._seed_value is None:
            self._seed_value = int(backend.rng().integers(0, 2 ** 63))

    def _kernel_for(self, training):
        """A fresh mask over the kernel each training call (inverted scaling); the kernel
        itself at inference."""
        w = self.kernel.value
        self._counter = None
        self._keep = None
        if training and self.rate > 0:
            self._counter = self._calls
            self._calls += 1
            w_eff = self._buffer("w_eff", w.shape)
            keep = None if training == "mc" else self._buffer("w_keep", w.shape, np.uint8)
            backend.ops.dropout_apply(w, self.rate, 1.0 / (1.0 - self.rate), 0.0, 0.0,
                                      self._seed_value, self._counter, w_eff, keep)
            self._keep = keep
            w = w_eff
        return w

    def _kernel_grad_done(self, grad):
        if self._counter is None:
            return
        # d(loss)/d(kernel) through the same mask: the stored one, else generated again
        if self._keep is not None:
            backend.ops.dropout_backward(grad, self._keep, 1.0 / (1.0 - self.rate), grad)
        else:
            backend.ops.dropout_apply(grad, self.rate, 1.0 / (1.0 - self.rate), 0.0, 0.0,
                                      self._seed_value, self._counter, grad)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config
