"""Core layers: Input, Dense, Activation, Flatten, Rescaling, Reshape."""
import numpy as np

from .. import activations, backend, constraints, initializers, regularizers, threads
from .base import Layer
from ..training import arguments


class InputLayer(Layer):
    """InputLayer(shape=None, batch_size=None, dtype=None, name=None): declares the input shape
    of a Sequential model, or the input of a graph (``fastnn.Input(shape=...)`` returns one:
    layers called on it record the nodes of a functional Model)."""

    _symbolic = True

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, input_shape=None,
                 batch_shape=None, **kwargs):
        shape = shape if shape is not None else input_shape
        if isinstance(shape, int):
            shape = (shape,)
        if batch_shape is not None:  # Keras 3: Input(batch_shape=(None, 784))
            batch_shape = tuple(batch_shape)
            if len(batch_shape) < 2 or (shape is not None and tuple(shape) != batch_shape[1:]):
                raise ValueError(f"Input: batch_shape={batch_shape} must be (batch size or None, "
                                 f"features...) and agree with shape={shape}")
            shape = batch_shape[1:]
            batch_size = batch_shape[0] if batch_size is None else batch_size
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(784,))")
        shape = tuple(shape)
        if any(d is None or int(d) <= 0 for d in shape):
            raise ValueError(f"Input shape must be positive integers (without the batch size), got {shape}")
        # Keras declares inputs of integer codes as Input(..., dtype="int64") (for an
        # Embedding). fastnn hands every layer its inputs in the model's float dtype, so an
        # integer or bool dtype is only recorded (the Embedding checks the codes it gets).
        code_dtype = None
        if dtype is not None:
            try:
                code_dtype = np.dtype(dtype)
            except TypeError:  # not a dtype: Layer's own check names it
                pass
            if code_dtype is not None and code_dtype.kind not in "iub":
                code_dtype = None
        if code_dtype is not None:
            dtype = None
        super().__init__(name=name, dtype=dtype, input_shape=shape, **kwargs)
        if code_dtype is not None:
            self.dtype = code_dtype.name
        self.shape = (batch_size,) + tuple(int(d) for d in shape)
        self.batch_size = batch_size

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    def get_config(self):
        config = super().get_config()
        config.pop("input_shape", None)
        config.update(shape=list(self.shape[1:]), batch_size=self.batch_size)
        return config


def Input(shape=None, batch_size=None, dtype=None, name=None, **kwargs):
    """Input(shape, batch_size=None, dtype=None, name=None): the input of a Sequential model,
    as ``Sequential([Input(shape=(784,)), Dense(10)])``, or of a graph: ``inp = Input(shape=
    (8,)); out = Dense(1)(Dense(30)(inp)); Model(inp, out)`` (see fastnn.functional)."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name, **kwargs)


class Dense(Layer):
    """Dense(units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
    bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
    activity_regularizer=None, kernel_constraint=None, bias_constraint=None)

    ``y = activation(x @ kernel + bias)``, kernel of shape (input_dim, units). The bias add and
    the activation run as one fused C pass after the BLAS product; the backward pass computes
    the activation derivative and the bias gradient in one pass too. Inputs of rank > 2 are
    applied on the last axis.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = arguments.positive_int(units, f"Dense {self.name!r}: units")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        # Set by the model when the loss hands this layer the gradient with respect to its
        # pre-activation directly (softmax + cross-entropy: p - t).
        self.fused_output_grad = False

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Dense {self.name!r} needs inputs of rank >= 2 (batch, features), "
                             f"got shape {input_shape}")
        in_dim = int(input_shape[-1])
        self.kernel = self.add_weight((in_dim, self.units), self.kernel_initializer, "kernel",
                                      regularizer=self.kernel_regularizer,
                                      constraint=self.kernel_constraint)
        self.bias = (self.add_weight((self.units,), self.bias_initializer, "bias",
                                     regularizer=self.bias_regularizer,
                                     constraint=self.bias_constraint)
                     if self.use_bias else None)
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        lead = None
        if x.ndim != 2:
            lead = x.shape[:-1]
            x = x.reshape(-1, x.shape[-1])
        shape = (x.shape[0], self.units)
        act = self.activation
        z = self._buffer("z", shape)
        w = self._w_used = self._kernel_for(training)
        threads.matmul(x, w, z)
        # Activations differentiable from their output run in place; gelu/swish/mish keep z.
        y = self._buffer("y", shape) if act.needs_preactivation else z
        backend.ops.bias_act_forward(z, self.bias.value if self.use_bias else None,
                                     act.code, act.alpha, y)
        self._x, self._z, self._y = x, z, y
        if self.activity_regularizer is not None:  # Keras 3: penalty(output) / batch size
            self._activity_loss = regularizers.activity_penalty(self.activity_regularizer, y)
        return y if lead is None or len(lead) == 1 else y.reshape(lead + (self.units,))

    def backward(self, dy, need_dx=True):
        x, y = self._x, self._y
        if dy.ndim != 2:
            dy = dy.reshape(x.shape[0], self.units)
        if self.activity_regularizer is not None:
            dy = regularizers.add_activity_gradient(
                self, dy, y, self.activation if self.fused_output_grad else None)
        trainable = self.trainable
        db = self.bias.grad if (self.use_bias and trainable) else None
        if self.fused_output_grad:
            dz = dy  # already the gradient with respect to the pre-activation
            if db is not None:
                backend.ops.col_sum(dz, db)
        else:
            act = self.activation
            dz = self._backward_out("dz", dy, y.shape)
            backend.ops.act_backward(dy, self._z if act.needs_preactivation else None, y,
                                     act.code, act.alpha, dz, db)
        if trainable:
            threads.matmul(x.T, dz, self.kernel.grad)
            self._kernel_grad_done(self.kernel.grad)
        if not need_dx:
            return None
        dx = self._buffer("dx", x.shape)
        threads.matmul(dz, self._w_used.T, dx)
        return dx

    # Hooks for layers that transform the kernel per step (DropConnectDense): the kernel the
    # forward pass multiplies by, and a last touch to the kernel gradient.
    def _kernel_for(self, training):
        return self.kernel.value

    def _kernel_grad_done(self, grad):
        pass

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, activation=activations.serialize(self.activation),
            use_bias=self.use_bias,
            kernel_initializer=initializers.serialize(self.kernel_initializer),
            bias_initializer=initializers.serialize(self.bias_initializer),
            kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
            bias_regularizer=regularizers.serialize(self.bias_regularizer),
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            kernel_constraint=constraints.serialize(self.kernel_constraint),
            bias_constraint=constraints.serialize(self.bias_constraint))
        return config


class Activation(Layer):
    """Activation(activation): applies an activation function by name or function.

    The activation layers (ReLU, LeakyReLU, ELU, Softmax) are this with fixed parameters.
    """

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False):
        lead = x.shape
        x2 = x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x
        act = self.activation
        y = self._buffer("y", x2.shape)
        backend.ops.bias_act_forward(x2, None, act.code, act.alpha, y)  # x is not written
        self._x, self._y = x2, y
        return y.reshape(lead)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        act = self.activation
        dy2 = dy.reshape(self._y.shape)
        dx = self._backward_out("dx", dy2, self._y.shape)
        backend.ops.act_backward(dy2, self._x if act.needs_preactivation else None, self._y,
                                 act.code, act.alpha, dx)
        return dx.reshape(dy.shape)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Flatten(Layer):
    """Flatten(): (batch, d1, d2, ...) -> (batch, d1 * d2 * ...)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None


class Rescaling(Layer):
    """Rescaling(scale, offset=0.0): ``y = x * scale + offset`` (Keras' preprocessing layer,
    e.g. ``Rescaling(1 / 255)`` for pixels). ``scale`` and ``offset`` are numbers or arrays
    that broadcast to one sample's shape."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = np.asarray(scale, np.float64), np.asarray(offset, np.float64)
        if not (np.all(np.isfinite(self.scale)) and np.all(np.isfinite(self.offset))):
            raise ValueError(f"Rescaling {self.name!r}: scale and offset must be finite, got "
                             f"scale={scale!r}, offset={offset!r}")

    def build(self, input_shape):
        for what, v in (("scale", self.scale), ("offset", self.offset)):
            try:
                np.broadcast_shapes(v.shape, tuple(input_shape[1:]))
            except ValueError:
                raise ValueError(f"Rescaling {self.name!r}: {what} of shape {v.shape} does not "
                                 f"broadcast to inputs of shape {tuple(input_shape)}") from None
        # in the layer's dtype once, so the per-step products allocate nothing
        self._scale = self.scale.astype(self.dtype)
        self._offset = self.offset.astype(self.dtype)
        self.built = True

    def forward(self, x, training=False):
        y = self._buffer("y", x.shape)
        np.multiply(x, self._scale, out=y)
        np.add(y, self._offset, out=y)
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self._buffer("dx", dy.shape)
        np.multiply(dy, self._scale, out=dx)
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale.tolist(), offset=self.offset.tolist())
        return config


class Reshape(Layer):
    """Reshape(target_shape): reshape each sample (the batch axis is kept); one -1 allowed."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        if isinstance(target_shape, (int, np.integer)):  # Reshape(4) as Reshape((4,))
            target_shape = (target_shape,)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape {self.name!r}: at most one -1 in target_shape {target_shape}")

    def compute_output_shape(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        shape = list(self.target_shape)
        known = int(np.prod([d for d in shape if d != -1]))
        if -1 in shape:
            if known == 0 or size % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape {input_shape[1:]} to {self.target_shape}")
            shape[shape.index(-1)] = size // known
        elif known != size:
            raise ValueError(f"Reshape {self.name!r}: cannot reshape input of shape {tuple(input_shape[1:])} "
                             f"({size} values) to {self.target_shape} ({known} values)")
        return (input_shape[0],) + tuple(shape)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape((x.shape[0],) + self.output_shape[1:])

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = list(self.target_shape)
        return config
