"""Greedy layer-wise unsupervised pretraining with (denoising) autoencoders.

Bengio et al. (2007) and Vincent et al. (2008): train the first hidden layer as an
autoencoder of the unlabelled inputs, then the second as an autoencoder of the first's codes,
and so on; the trained encoders initialize a deep network that is then fine-tuned on the
(few) labelled rows::

    encoders = fastnn.pretrain.autoencoder_stack(x_unlabelled, units=[128, 64], noise=0.2)
    model = fastnn.Sequential(encoders + [fastnn.layers.Dense(10, activation="softmax")])

With ``tied_weights=True`` each decoder uses the transpose of its encoder's kernel (plus its
own bias); the decoder's kernel gradient is added to the encoder's, so one matrix is learned.
"""
import numpy as np

from . import activations, backend, optimizers, threads
from .layers.base import Layer
from .layers.core import Dense, InputLayer
from .models import Sequential

__all__ = ["autoencoder_stack"]


class _Corruption(Layer):
    """Input corruption for denoising autoencoders, active only in training mode:
    ``"mask"`` zeroes each input with probability ``rate`` (no rescaling, as Vincent et al.),
    ``"gaussian"`` adds N(0, rate^2) noise. Draws from fastnn's global generator into
    preallocated buffers (reproducible under ``fastnn.set_seed``, no per-step allocation)."""

    def __init__(self, rate, kind="mask", **kwargs):
        super().__init__(**kwargs)
        if kind not in ("mask", "gaussian"):
            raise ValueError(f"noise_type must be 'mask' or 'gaussian', got {kind!r}")
        if not (np.isfinite(rate) and rate >= 0) or (kind == "mask" and rate >= 1):
            raise ValueError(f"noise must be in [0, 1) for masking noise or >= 0 for gaussian "
                             f"noise, got {rate!r}")
        self.rate, self.kind = float(rate), kind

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        draw = self._buffer("draw", x.shape)
        y = self._buffer("y", x.shape)
        rng = backend.rng()
        if self.kind == "mask":
            rng.random(out=draw, dtype=draw.dtype)
            keep = self._buffer("keep", x.shape, np.bool_)
            np.greater_equal(draw, self.rate, out=keep)
            np.multiply(x, keep, out=y)
            self._mask = keep
        else:
            rng.standard_normal(out=draw, dtype=draw.dtype)
            draw *= draw.dtype.type(self.rate)
            np.add(x, draw, out=y)
            self._mask = None
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._mask is None:
            return dy
        dx = self._buffer("dx", dy.shape)
        np.multiply(dy, self._mask, out=dx)
        return dx


class _TiedDecoder(Layer):
    """A decoder ``activation(h @ encoder.kernel.T + bias)`` that owns only its bias. Its
    gradient with respect to the shared kernel, ``dz.T @ h``, is left in ``self.kernel_grad``
    for the encoder's wrapper to add (the encoder's own backward runs after this one and
    overwrites the kernel's gradient buffer)."""

    def __init__(self, encoder, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.activation = activations.get(activation)
        self.kernel_grad = None

    def build(self, input_shape):
        in_dim = self.encoder.kernel.shape[0]
        self.bias = self.add_weight((in_dim,), "zeros", "bias")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.encoder.kernel.shape[0],)

    def forward(self, x, training=False):
        n, d = x.shape[0], self.encoder.kernel.shape[0]
        act = self.activation
        z = self._buffer("z", (n, d))
        threads.matmul(x, self.encoder.kernel.value.T, z)
        y = self._buffer("y", (n, d)) if act.needs_preactivation else z
        backend.ops.bias_act_forward(z, self.bias.value, act.code, act.alpha, y)
        self._x, self._z, self._y = x, z, y
        return y

    def backward(self, dy, need_dx=True):
        x, act = self._x, self.activation
        n, d = dy.shape
        dz = self._buffer("dz", (n, d))
        db = self.bias.grad if self.trainable else None
        backend.ops.act_backward(dy, self._z if act.needs_preactivation else None, self._y,
                                 act.code, act.alpha, dz, db)
        kernel = self.encoder.kernel
        if self.encoder.trainable:
            if self.kernel_grad is None or self.kernel_grad.shape != kernel.shape:
                self.kernel_grad = np.empty_like(kernel.value)
            threads.matmul(dz.T, x, self.kernel_grad)
        if not need_dx:
            return None
        dx = self._buffer("dx", x.shape)
        threads.matmul(dz, kernel.value, dx)
        return dx


class _TiedEncoder(Layer):
    """Wraps an encoder Dense inside the autoencoder: same variables and forward; its backward
    adds the tied decoder's kernel gradient after the Dense wrote its own."""

    def __init__(self, dense, decoder_holder, **kwargs):
        super().__init__(name=dense.name + "_tied", **kwargs)
        self.dense = dense
        self._holder = decoder_holder  # [decoder], set once the decoder exists

    @property
    def trainable(self):
        return self.dense.trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    def build(self, input_shape):
        self.dense._maybe_build(input_shape)
        self._variables = self.dense._variables  # the same Variable objects

    def compute_output_shape(self, input_shape):
        return self.dense.compute_output_shape(input_shape)

    def forward(self, x, training=False):
        return self.dense.forward(x, training)

    def backward(self, dy, need_dx=True):
        dx = self.dense.backward(dy, need_dx)
        decoder = self._holder[0]
        if self.dense.trainable and decoder.kernel_grad is not None:
            self.dense.kernel.grad += decoder.kernel_grad
        return dx


def _fresh_optimizer(optimizer):
    """A new optimizer for each autoencoder (state must not leak between layers)."""
    if isinstance(optimizer, optimizers.Optimizer):
        return type(optimizer).from_config(optimizer.get_config())
    if callable(optimizer) and not isinstance(optimizer, (str, dict, type)):
        return optimizer()
    return optimizers.get(optimizer)


def _per_layer(value, k, n, name):
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"autoencoder_stack: {name} has {len(value)} entries for {n} layers")
        return value[k]
    return value


def autoencoder_stack(x, units, activation="relu", epochs=10, batch_size=32, optimizer="adam",
                      loss="mse", noise=0.0, noise_type="mask", tied_weights=False,
                      decoder_activation=None, kernel_initializer="glorot_uniform",
                      shuffle=True, verbose=0, return_history=False):
    """autoencoder_stack(x, units, activation="relu", epochs=10, batch_size=32,
    optimizer="adam", loss="mse", noise=0.0, noise_type="mask", tied_weights=False,
    decoder_activation=None, kernel_initializer="glorot_uniform", shuffle=True, verbose=0,
    return_history=False)

    Greedy layer-wise pretraining: for each entry of ``units``, train a one-hidden-layer
    autoencoder ``Dense(units[k], activation)`` -> decoder on the previous layer's codes of
    ``x`` (unlabelled rows, shape (n, features)), then encode the data for the next layer.

    - ``noise`` > 0 makes it a denoising autoencoder: the encoder sees corrupted inputs
      (``noise_type="mask"``: each input zeroed with probability ``noise``; ``"gaussian"``:
      N(0, noise^2) added) and the decoder must reconstruct the clean ones.
    - ``tied_weights=True``: the decoder's kernel is the encoder's kernel transposed.
    - ``decoder_activation``: the reconstruction's activation (linear by default; "sigmoid"
      with ``loss="binary_crossentropy"`` suits inputs in [0, 1]).
    - ``optimizer``: a name, an Optimizer (copied for each layer) or a factory callable.
    - ``activation``, ``noise``, ``epochs``, ``decoder_activation`` and ``loss`` may also be
      lists with one entry per layer.

    Returns the list of trained encoder ``Dense`` layers (built, trainable), ready to stack
    under a new head: ``Sequential(encoders + [Dense(10, activation="softmax")])``; with
    ``return_history=True`` also the list of each autoencoder's ``History.history``.
    Uses fastnn's global generator (``fastnn.set_seed``) for initialization, shuffling and
    noise.
    """
    if isinstance(units, (int, np.integer)):
        units = [units]
    units = list(units)
    if not units or not all(isinstance(u, (int, np.integer)) and u > 0 for u in units):
        raise ValueError(f"autoencoder_stack: units must be a non-empty list of positive integers, "
                         f"got {units!r}")
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.dtype.kind not in "biuf":
        raise ValueError(f"autoencoder_stack: x must be a non-empty numeric array of shape "
                         f"(samples, features), got shape {x.shape} and dtype {x.dtype}")
    dtype = backend.floatx()
    h = np.ascontiguousarray(x, dtype=dtype)
    if not np.isfinite(h).all():
        raise ValueError("autoencoder_stack: x contains NaN or inf")
    n_layers = len(units)
    encoders, histories = [], []
    for k, u in enumerate(units):
        d_in = h.shape[1]
        rate = _per_layer(noise, k, n_layers, "noise")
        encoder = Dense(int(u), activation=_per_layer(activation, k, n_layers, "activation"),
                        kernel_initializer=kernel_initializer)
        dec_act = _per_layer(decoder_activation, k, n_layers, "decoder_activation")
        stack = [InputLayer(shape=(d_in,))]
        if rate:
            stack.append(_Corruption(rate, noise_type))
        if tied_weights:
            holder = []
            stack.append(_TiedEncoder(encoder, holder))
            decoder = _TiedDecoder(encoder, activation=dec_act)
            holder.append(decoder)
        else:
            stack.append(encoder)
            decoder = Dense(d_in, activation=dec_act, kernel_initializer=kernel_initializer)
        stack.append(decoder)
        autoencoder = Sequential(stack, name=f"autoencoder_{k}")
        autoencoder.compile(optimizer=_fresh_optimizer(optimizer),
                            loss=_per_layer(loss, k, n_layers, "loss"))
        history = autoencoder.fit(h, h, epochs=_per_layer(epochs, k, n_layers, "epochs"),
                                  batch_size=batch_size, shuffle=shuffle, verbose=verbose)
        histories.append(history.history)
        # Codes of the clean data (inference mode: no corruption) feed the next layer.
        h = Sequential([InputLayer(shape=(d_in,)), encoder]).predict(h, batch_size=1024, verbose=0)
        encoders.append(encoder)
    return (encoders, histories) if return_history else encoders
