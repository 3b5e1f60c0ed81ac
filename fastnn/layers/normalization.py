"""Normalization layers: BatchNormalization, LayerNormalization, Normalization (Keras 3).

All three work on the last axis (the features of a dense activation, the channels of a
channels-last input): the input is viewed as a (rows, features) matrix and one C kernel does
each pass (``batchnorm_forward_train``, ``batchnorm_backward``, ``col_affine``,
``layernorm_forward``, ``layernorm_backward``).

The ``training`` argument of ``forward`` is True / False as in Keras, or ``"mc"`` (MC
dropout, ``model.predict(x, mc_samples=N)``): the dropout family samples, and the
normalization layers run in inference mode.
"""
import numpy as np

from .. import backend, constraints, initializers, regularizers
from .base import Layer
from ..training import arguments


def batch_statistics_mode(training):
    """True when a batch-statistics layer should use the batch (Keras ``training=True``);
    False for inference and for MC-dropout sampling (``training="mc"``)."""
    if isinstance(training, str):
        if training != "mc":
            raise ValueError(f"training must be True, False or 'mc', got {training!r}")
        return False
    return bool(training)


def _last_axis(axis, ndim, layer):
    ax = int(axis)
    if not -ndim <= ax < ndim:
        raise ValueError(f"{layer}: axis {axis} is out of range for inputs of rank {ndim}")
    ax %= ndim
    if ax == 0:
        raise ValueError(f"{layer}: axis {axis} is the batch axis")
    if ax != ndim - 1:
        raise NotImplementedError(f"{layer}: fastnn normalizes over the last axis only (axis=-1, "
                                  f"channels last), got axis={axis} for inputs of rank {ndim}")
    return ax


class BatchNormalization(Layer):
    """BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
    beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
    moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
    beta_constraint=None, gamma_constraint=None, synchronized=False)

    Training mode (``training=True`` and the layer trainable): each feature is normalized
    with the batch mean and biased variance, ``y = gamma * (x - mean) / sqrt(var + epsilon)
    + beta``, and the moving statistics are updated as Keras does:
    ``moving = moving * momentum + batch_stat * (1 - momentum)`` (the biased variance). The
    backward pass is the full gradient through the batch mean and variance.

    Inference mode (``training=False``, ``"mc"``, or a frozen layer): the moving statistics,
    deterministically (the same output for a row whatever the batch it comes in). As in
    Keras 3, ``layer.trainable = False`` makes the layer run in inference mode.

    Weights, in Keras' order: gamma (if scale), beta (if center), moving_mean and
    moving_variance (non-trainable; reported by ``layer.variables`` / ``non_trainable_weights``).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        if synchronized:
            raise ValueError("BatchNormalization: synchronized=True is only supported with the "
                             "TensorFlow backend (fastnn trains on one process)")
        if renorm:
            raise NotImplementedError("BatchNormalization: renorm is not supported by fastnn")
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"BatchNormalization {self.name!r}: momentum must be in [0, 1], got {momentum}")
        if not float(epsilon) > 0:
            raise ValueError(f"BatchNormalization {self.name!r}: epsilon must be > 0, got {epsilon}")
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"BatchNormalization {self.name!r} needs inputs of rank >= 2, "
                             f"got shape {input_shape}")
        _last_axis(self.axis, len(input_shape), f"BatchNormalization {self.name!r}")
        m = (int(input_shape[-1]),)
        if self.scale:
            self.gamma = self.add_weight(m, self.gamma_initializer, "gamma",
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(m, self.beta_initializer, "beta",
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.moving_mean = self.add_weight(m, self.moving_mean_initializer, "moving_mean",
                                           trainable=False)
        self.moving_variance = self.add_weight(m, self.moving_variance_initializer,
                                               "moving_variance", trainable=False)
        self.built = True

    def _inference_scale(self):
        """gamma / sqrt(moving_variance + epsilon), into a buffer (no allocation per call)."""
        s = self._buffer("inf_scale", self.moving_variance.shape)
        np.add(self.moving_variance.value, self.epsilon, out=s)
        np.sqrt(s, out=s)
        if self.gamma is not None:
            np.divide(self.gamma.value, s, out=s)
        else:
            np.reciprocal(s, out=s)
        return s

    def forward(self, x, training=False):
        shape = x.shape
        m = shape[-1]
        x2 = x.reshape(-1, m)
        y = self._buffer("y", x2.shape)
        ops = backend.ops
        gamma = self.gamma.value if self.gamma is not None else None
        beta = self.beta.value if self.beta is not None else None
        self._batch_mode = batch_statistics_mode(training) and self.trainable
        if self._batch_mode:
            mean = self._buffer("mean", (m,))
            invstd = self._buffer("invstd", (m,))
            ops.batchnorm_forward_train(x2, gamma, beta, self.epsilon, self.momentum,
                                        self.moving_mean.value, self.moving_variance.value,
                                        y, mean, invstd)
            self._mean, self._invstd = mean, invstd
        else:
            ops.col_affine(x2, self.moving_mean.value, self._inference_scale(), beta, y)
        self._x = x2
        return y.reshape(shape)

    def backward(self, dy, need_dx=True):
        x2 = self._x
        dy2 = dy.reshape(x2.shape)
        trainable = self.trainable
        dgamma = self.gamma.grad if (self.gamma is not None and trainable) else None
        dbeta = self.beta.grad if (self.beta is not None and trainable) else None
        dx = self._backward_out("dx", dy2, x2.shape) if need_dx else None
        ops = backend.ops
        if self._batch_mode:
            ops.batchnorm_backward(dy2, x2, self._mean, self._invstd,
                                   self.gamma.value if self.gamma is not None else None,
                                   dx, dgamma, dbeta, need_dx)
        else:
            # Inference mode is a fixed per-feature affine map: dx = dy * scale. The weight
            # gradients are only needed if a trainable layer runs in inference mode (a user
            # calling backward after training=False).
            s = self._inference_scale()
            if dgamma is not None or dbeta is not None:
                if dbeta is not None:
                    ops.col_sum(dy2, dbeta)
                if dgamma is not None:
                    xhat = (x2 - self.moving_mean.value) / np.sqrt(self.moving_variance.value + self.epsilon)
                    ops.col_sum(np.ascontiguousarray(dy2 * xhat, dtype=x2.dtype), dgamma)
            if need_dx:
                ops.col_affine(dy2, None, s, None, dx)
        return dx.reshape(dy.shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
            scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
            moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=constraints.serialize(self.beta_constraint),
            gamma_constraint=constraints.serialize(self.gamma_constraint))
        return config


class LayerNormalization(Layer):
    """LayerNormalization(axis=-1, epsilon=1e-3, center=True, scale=True,
    beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
    gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)

    Each sample is normalized over ``axis`` with its own mean and biased variance:
    ``y = gamma * (x - mean) / sqrt(var + epsilon) + beta`` (same in training and inference).
    ``axis`` is an int or a list of trailing axes (e.g. ``[1, 2]`` for (batch, a, b)
    inputs); gamma and beta have the shape of those axes. Weights: gamma, beta.
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, rms_scaling=False, **kwargs):
        super().__init__(**kwargs)
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling is deprecated in Keras and "
                                      "not supported by fastnn")
        if isinstance(axis, (list, tuple)):
            self.axis = [int(a) for a in axis]
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
            self.axis = int(axis)
        else:
            raise TypeError(f"LayerNormalization: axis must be an int or a list of ints, got {axis!r}")
        if not float(epsilon) > 0:
            raise ValueError(f"LayerNormalization {self.name!r}: epsilon must be > 0, got {epsilon}")
        self.epsilon = float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)
        self.gamma = self.beta = None

    def _axes(self, ndim):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        out = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"LayerNormalization {self.name!r}: axis {a} is out of range for "
                                 f"inputs of rank {ndim}")
            out.append(a % ndim)
        out = sorted(out)
        if len(set(out)) != len(out):
            raise ValueError(f"LayerNormalization {self.name!r}: duplicate axes in {self.axis}")
        if 0 in out:
            raise ValueError(f"LayerNormalization {self.name!r}: cannot normalize over the batch axis")
        if out != list(range(out[0], ndim)):
            raise NotImplementedError(
                f"LayerNormalization {self.name!r}: fastnn normalizes over trailing axes only, "
                f"got axis={self.axis} for inputs of rank {ndim}")
        return out

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"LayerNormalization {self.name!r} needs inputs of rank >= 2, "
                             f"got shape {input_shape}")
        axes = self._axes(len(input_shape))
        shape = tuple(int(input_shape[a]) for a in axes)
        self._norm_size = int(np.prod(shape))
        if self.scale:
            self.gamma = self.add_weight(shape, self.gamma_initializer, "gamma",
                                         regularizer=self.gamma_regularizer,
                                         constraint=self.gamma_constraint)
        if self.center:
            self.beta = self.add_weight(shape, self.beta_initializer, "beta",
                                        regularizer=self.beta_regularizer,
                                        constraint=self.beta_constraint)
        self.built = True

    def forward(self, x, training=False):
        m = self._norm_size
        x2 = x.reshape(-1, m)
        n = x2.shape[0]
        y = self._buffer("y", x2.shape)
        mean, rstd = self._buffer("mean", (n,)), self._buffer("rstd", (n,))
        backend.ops.layernorm_forward(
            x2, self.gamma.value.reshape(-1) if self.gamma is not None else None,
            self.beta.value.reshape(-1) if self.beta is not None else None, self.epsilon,
            y, mean, rstd)
        self._x, self._mean, self._rstd = x2, mean, rstd
        return y.reshape(x.shape)

    def backward(self, dy, need_dx=True):
        x2 = self._x
        trainable = self.trainable
        dgamma = self.gamma.grad.reshape(-1) if (self.gamma is not None and trainable) else None
        dbeta = self.beta.grad.reshape(-1) if (self.beta is not None and trainable) else None
        dx = self._buffer("dx", x2.shape) if need_dx else None
        backend.ops.layernorm_backward(
            dy.reshape(x2.shape), x2, self.gamma.value.reshape(-1) if self.gamma is not None else None,
            self._mean, self._rstd, dx, dgamma, dbeta, need_dx)
        return dx.reshape(dy.shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config.update(
            axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
            beta_initializer=initializers.serialize(self.beta_initializer),
            gamma_initializer=initializers.serialize(self.gamma_initializer),
            beta_regularizer=regularizers.serialize(self.beta_regularizer),
            gamma_regularizer=regularizers.serialize(self.gamma_regularizer),
            beta_constraint=constraints.serialize(self.beta_constraint),
            gamma_constraint=constraints.serialize(self.gamma_constraint))
        return config


_KERAS_EPSILON = 1e-7  # keras.config.epsilon(): the floor of Normalization's standard deviation


class Normalization(Layer):
    """Normalization(axis=-1, mean=None, variance=None, invert=False)

    Standardizes features: ``(x - mean) / max(sqrt(variance), 1e-7)`` (``invert=True``:
    ``mean + x * max(sqrt(variance), 1e-7)``), with one mean and variance per index of
    ``axis`` (``-1``: per feature, or per channel for channels-last inputs; ``None``: one
    scalar for everything). The statistics are given as ``mean=``/``variance=`` or computed by
    ``layer.adapt(data)`` (a NumPy array, or an iterable of batches) before training; adapted
    statistics are non-trainable weights ``mean``, ``variance`` and ``count`` (as Keras).
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        self.invert = bool(invert)
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: when setting values directly, both mean and variance "
                             f"must be set, got mean={mean} and variance={variance}")
        if mean is not None and np.shape(mean) != np.shape(variance):
            raise ValueError(f"Normalization: mean and variance must have the same shape, got "
                             f"{np.shape(mean)} and {np.shape(variance)}")
        if variance is not None and np.any(np.asarray(variance) < 0):
            raise ValueError("Normalization: variance must be >= 0")
        if mean is not None and not (np.all(np.isfinite(np.asarray(mean, np.float64)))
                                     and np.all(np.isfinite(np.asarray(variance, np.float64)))):
            raise ValueError(f"Normalization: mean and variance must be finite, got mean={mean} "
                             f"and variance={variance}")
        self.input_mean = mean
        self.input_variance = variance
        self.adapt_mean = self.adapt_variance = self.count = None

    def _keep_axes(self, ndim):
        keep = []
        for a in self.axis:
            if not -ndim <= a < ndim:
                raise ValueError(f"Normalization {self.name!r}: axis {a} is out of range for "
                                 f"inputs of rank {ndim}")
            keep.append(a % ndim)
        keep = sorted(set(keep))
        if 0 in keep:
            raise NotImplementedError(f"Normalization {self.name!r}: a statistic per batch index "
                                      "(axis including 0) is not supported by fastnn")
        if keep and keep != list(range(keep[0], ndim)):
            raise NotImplementedError(
                f"Normalization {self.name!r}: fastnn keeps trailing axes only (e.g. axis=-1), "
                f"got axis={self.axis} for inputs of rank {ndim}")
        return keep

    def build(self, input_shape):
        ndim = len(input_shape)
        if ndim < 2:
            raise ValueError(f"Normalization {self.name!r} needs inputs of rank >= 2 (batch, ...), "
                             f"got shape {input_shape}")
        keep = self._keep_axes(ndim)
        self._stat_shape = tuple(int(input_shape[d]) for d in keep)
        # Inputs are viewed as (rows, width): width is the kept axes' size, or the last axis
        # (statistics broadcast along it) when every axis is reduced.
        self._width = int(np.prod(self._stat_shape)) if keep else int(input_shape[-1])
        if self.input_mean is None:
            # Keras' scalar weights (count; mean and variance with axis=None) are stored with
            # shape (1,): Layer.add_weight makes every weight at least 1-D.
            wshape = self._stat_shape or (1,)
            self.adapt_mean = self.add_weight(wshape, "zeros", "mean", trainable=False)
            self.adapt_variance = self.add_weight(wshape, "ones", "variance", trainable=False)
            self.count = self.add_weight((1,), "zeros", "count", trainable=False, dtype="int64")
        else:
            try:
                self._fixed_mean = np.broadcast_to(np.asarray(self.input_mean, np.float64),
                                                   self._stat_shape)
                self._fixed_var = np.broadcast_to(np.asarray(self.input_variance, np.float64),
                                                  self._stat_shape)
            except ValueError:
                raise ValueError(f"Normalization {self.name!r}: mean of shape "
                                 f"{np.shape(self.input_mean)} does not broadcast to the "
                                 f"statistics shape {self._stat_shape} of inputs {input_shape}") from None
        self.built = True

    def adapt(self, data, batch_size=None, steps=None):
        """adapt(data, batch_size=None, steps=None): compute the mean and (biased) variance
        of ``data`` over every axis but ``axis``: a NumPy array (or nested lists of rows), or
        an iterable of batches (combined exactly, as Keras; ``steps`` takes only the first
        ``steps`` of them). ``batch_size`` changes nothing: the statistics are exact."""
        arguments.positive_int_or_none(steps, "steps", "Normalization.adapt")
        if isinstance(data, np.ndarray) or np.isscalar(data):
            batches = [np.asarray(data)]
        elif isinstance(data, list) and all(not isinstance(b, (np.ndarray, tuple)) and np.ndim(b) < 2
                                            for b in data):
            batches = [np.asarray(data)]  # rows as nested lists, not a list of 1-D "batches"
        elif hasattr(data, "__iter__"):
            import itertools
            batches = (np.asarray(b[0] if isinstance(b, tuple) else b)
                       for b in itertools.islice(data, steps))
        else:
            raise TypeError(f"Normalization.adapt: expected a NumPy array or an iterable of "
                            f"batches, got {type(data).__name__}")
        total_mean = total_var = None
        total = 0
        for b in batches:
            if b.dtype.kind not in "biuf":
                raise TypeError(f"Normalization.adapt: data must be numeric, got dtype {b.dtype}")
            if b.ndim < 2:
                raise ValueError(f"Normalization.adapt: data must have a batch axis, got shape {b.shape}")
            if not self.built:
                self._maybe_build((None,) + tuple(b.shape[1:]))
            elif tuple(b.shape[1:]) != tuple(self.input_shape[1:]):
                raise ValueError(f"Normalization {self.name!r} was built for inputs of shape "
                                 f"{self.input_shape}, adapt() got data of shape {b.shape}")
            if self.adapt_mean is None:
                raise ValueError(f"Normalization {self.name!r} was given mean and variance: "
                                 "adapt() cannot change them")
            if not np.all(np.isfinite(b)):
                raise ValueError("Normalization.adapt: data contains NaN or inf")
            b = b.astype(np.float64).reshape(-1, *self._stat_shape) if self._stat_shape \
                else b.astype(np.float64).reshape(-1)
            count = b.shape[0]
            if count == 0:
                continue
            mean, var = b.mean(axis=0), b.var(axis=0)
            if total_mean is None:
                total_mean, total_var, total = mean, var, count
                continue
            w = count / (total + count)
            new_mean = total_mean * (1 - w) + mean * w
            total_var = (total_var + (total_mean - new_mean) ** 2) * (1 - w) \
                + (var + (mean - new_mean) ** 2) * w
            total_mean, total = new_mean, total + count
        if total_mean is None:
            raise ValueError("Normalization.adapt: no data (empty array or no batches)")
        self.adapt_mean.assign(np.reshape(total_mean, self.adapt_mean.shape))
        self.adapt_variance.assign(np.reshape(total_var, self.adapt_variance.shape))

    def _stats(self):
        if self.adapt_mean is not None:
            return self.adapt_mean.value, self.adapt_variance.value
        return self._fixed_mean, self._fixed_var

    def _affine(self):
        """(shift, scale, offset) vectors of width ``_width`` for col_affine, in buffers."""
        mean, var = self._stats()
        w = self._width
        mu = self._buffer("mu", (w,))
        mu[...] = np.reshape(mean, -1) if mean.size > 1 else mean.reshape(())
        s = self._buffer("scale", (w,))
        s[...] = np.reshape(var, -1) if var.size > 1 else var.reshape(())
        np.sqrt(s, out=s)
        np.maximum(s, _KERAS_EPSILON, out=s)
        if self.invert:
            return None, s, mu
        np.reciprocal(s, out=s)
        return mu, s, None

    def forward(self, x, training=False):
        x2 = x.reshape(-1, self._width)
        y = self._buffer("y", x2.shape)
        shift, scale, offset = self._affine()
        backend.ops.col_affine(x2, shift, scale, offset, y)
        self._scale = scale
        return y.reshape(x.shape)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dy2 = dy.reshape(-1, self._width)
        dx = self._buffer("dx", dy2.shape)
        backend.ops.col_affine(dy2, None, self._scale, None, dx)
        return dx.reshape(dy.shape)

    def get_config(self):
        config = super().get_config()
        config.update(axis=list(self.axis) if len(self.axis) != 1 else self.axis[0],
                      invert=self.invert,
                      mean=None if self.input_mean is None else np.asarray(self.input_mean).tolist(),
                      variance=None if self.input_variance is None
                      else np.asarray(self.input_variance).tolist())
        if not self.axis:
            config["axis"] = None
        return config
