"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax, and Maxout."""
import numpy as np

from .. import activations, backend, constraints, initializers, regularizers, threads
from .base import Layer
from .core import Activation


class ReLU(Activation):
    """ReLU(max_value=None, negative_slope=0.0, threshold=0.0).

    fastnn runs the default form (and negative_slope > 0, a leaky ReLU) in C; max_value and
    threshold are not supported and raise, rather than silently differing from Keras.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        if max_value is not None or threshold != 0.0:
            raise NotImplementedError("ReLU: max_value and threshold are not supported by fastnn")
        if negative_slope < 0:
            raise ValueError(f"ReLU: negative_slope must be >= 0, got {negative_slope}")
        act = (activations.Activation("leaky_relu", negative_slope) if negative_slope
               else activations.Activation("relu"))
        super().__init__(act, **kwargs)
        self.negative_slope = float(negative_slope)

    def get_config(self):
        config = Layer.get_config(self)
        config["negative_slope"] = self.negative_slope
        return config


class LeakyReLU(Activation):
    """LeakyReLU(negative_slope=0.3): x if x > 0 else negative_slope * x (``alpha`` is the
    Keras 2 name and is accepted too)."""

    def __init__(self, negative_slope=0.3, alpha=None, **kwargs):
        if alpha is not None:
            negative_slope = alpha
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"LeakyReLU: negative_slope must be >= 0, got {negative_slope}")
        super().__init__(activations.Activation("leaky_relu", negative_slope), **kwargs)
        self.negative_slope = float(negative_slope)

    def get_config(self):
        config = Layer.get_config(self)
        config["negative_slope"] = self.negative_slope
        return config


class ELU(Activation):
    """ELU(alpha=1.0): x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, **kwargs):
        if alpha <= 0:
            raise ValueError(f"ELU: alpha must be > 0 (its backward pass uses the output), got {alpha}")
        super().__init__(activations.Activation("elu", alpha), **kwargs)
        self.alpha = float(alpha)

    def get_config(self):
        config = Layer.get_config(self)
        config["alpha"] = self.alpha
        return config


class Softmax(Activation):
    """Softmax(axis=-1): softmax over the last axis."""

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise ValueError("fastnn's Softmax layer works over the last axis (axis=-1)")
        super().__init__("softmax", **kwargs)

    def get_config(self):
        return Layer.get_config(self)


class PReLU(Layer):
    """PReLU(alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
    shared_axes=None): a leaky ReLU whose slope is learned, one per unit (Keras initializes
    the slopes to zero, so it starts as a ReLU)."""

    def __init__(self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        if shared_axes is not None:
            raise NotImplementedError("PReLU: shared_axes is not supported by fastnn (one slope per unit)")
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)

    def build(self, input_shape):
        self.alpha = self.add_weight((int(np.prod(input_shape[1:])),), self.alpha_initializer, "alpha",
                                     regularizer=self.alpha_regularizer, constraint=self.alpha_constraint)
        self.built = True

    def forward(self, x, training=False):
        shape = x.shape
        x2 = x.reshape(shape[0], -1)
        y = self._buffer("y", x2.shape)
        backend.ops.prelu_forward(x2, self.alpha.value, y)
        self._x = x2
        return y.reshape(shape)

    def backward(self, dy, need_dx=True):
        dy2 = dy.reshape(self._x.shape)
        dx = self._buffer("dx", self._x.shape)
        da = self.alpha.grad if self.trainable else self._buffer("da", self.alpha.shape)
        backend.ops.prelu_backward(dy2, self._x, self.alpha.value, dx, da)
        return dx.reshape(dy.shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config.update(alpha_initializer=initializers.serialize(self.alpha_initializer),
                      alpha_regularizer=regularizers.serialize(self.alpha_regularizer),
                      alpha_constraint=constraints.serialize(self.alpha_constraint))
        return config


class Maxout(Layer):
    """Maxout(units, pieces=2, kernel_initializer="glorot_uniform", bias_initializer="zeros",
    kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None)

    fastnn extra (Keras has no Maxout). Goodfellow et al.'s maxout unit: an affine map to
    ``units * pieces`` features, then the max over each unit's ``pieces``. The kernel has shape
    (input_dim, units * pieces); unit j uses columns j * pieces ... (j + 1) * pieces - 1.
    """

    def __init__(self, units, pieces=2, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0 or int(pieces) <= 0:
            raise ValueError(f"Maxout {self.name!r}: units and pieces must be positive, got {units}, {pieces}")
        self.units, self.pieces = int(units), int(pieces)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"Maxout {self.name!r} needs 2-D inputs (batch, features), got {input_shape}")
        width = self.units * self.pieces
        self.kernel = self.add_weight((int(input_shape[-1]), width), self.kernel_initializer, "kernel",
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.bias = self.add_weight((width,), self.bias_initializer, "bias",
                                    regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def forward(self, x, training=False):
        n = x.shape[0]
        z = self._buffer("z", (n, self.units * self.pieces))
        threads.matmul(x, self.kernel.value, z)
        backend.ops.bias_act_forward(z, self.bias.value, 0, 0.0, z)
        y = self._buffer("y", (n, self.units))
        arg = self._buffer("arg", (n, self.units), np.int32)
        backend.ops.maxout_forward(z, self.pieces, y, arg)
        self._x, self._arg = x, arg
        return y

    def backward(self, dy, need_dx=True):
        x = self._x
        dz = self._buffer("dz", (x.shape[0], self.units * self.pieces))
        backend.ops.maxout_backward(dy, self._arg, self.pieces, dz)
        if self.trainable:
            backend.ops.col_sum(dz, self.bias.grad)
            threads.matmul(x.T, dz, self.kernel.grad)
        if not need_dx:
            return None
        dx = self._buffer("dx", x.shape)
        threads.matmul(dz, self.kernel.value.T, dx)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, pieces=self.pieces,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer),
                      kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                      bias_regularizer=regularizers.serialize(self.bias_regularizer),
                      kernel_constraint=constraints.serialize(self.kernel_constraint),
                      bias_constraint=constraints.serialize(self.bias_constraint))
        return config
