"""Activation functions, by name (``Dense(activation="relu")``) or as functions on arrays
(``fastnn.activations.relu(x)``), with Keras 3 semantics and defaults."""
import numpy as np

from . import backend
from .reference.activations import ACTIVATION_CODES, NEEDS_PREACTIVATION

_ALIASES = {"silu": "swish", None: "linear"}


class Activation:
    """A resolved activation: kernel code plus its parameter (alpha / approximate)."""

    def __init__(self, name, alpha=0.0):
        self.name = name
        self.code = ACTIVATION_CODES[name]
        self.alpha = float(alpha)
        self.needs_preactivation = self.code in NEEDS_PREACTIVATION

    def __call__(self, x):
        shape = np.shape(x)  # the result has the input's shape, as in Keras (1-D, scalars too)
        x = _as_float_2d(x)
        z = np.array(x.reshape(-1, x.shape[-1]), copy=True)
        return backend.ops.bias_act_forward(z, None, self.code, self.alpha, z).reshape(shape)

    def __repr__(self):
        return f"<activation {self.name}>"


def _as_float_2d(x):
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(backend.floatx())
    if x.ndim == 0:
        x = x.reshape(1, 1)
    elif x.ndim == 1:
        x = x.reshape(1, -1)
    return x


# Keras 3 defaults: the string "leaky_relu" means negative_slope=0.2, elu alpha=1.
_DEFAULT_ALPHA = {"leaky_relu": 0.2, "elu": 1.0}


def get(identifier):
    """Resolve a name, None, an Activation, or one of this module's functions."""
    if isinstance(identifier, Activation):
        return identifier
    if callable(identifier) and getattr(identifier, "_fastnn_activation", None):
        return Activation(identifier._fastnn_activation, _DEFAULT_ALPHA.get(identifier._fastnn_activation, 0.0))
    if isinstance(identifier, dict) and set(identifier) == {"name", "alpha"}:  # serialize()'s
        return Activation(get(identifier["name"]).name, identifier["alpha"])
    if isinstance(getattr(identifier, "activation", None), Activation) and hasattr(identifier, "weights"):
        # An activation layer as Dense's activation (HOML: Dense(50, activation=LeakyReLU(0.2))):
        # Keras calls the layer; fastnn uses the activation it stands for.
        return identifier.activation
    if identifier is None or isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in ACTIVATION_CODES:
            raise ValueError(
                f"Unknown activation {identifier!r}. Known: {sorted(ACTIVATION_CODES) + ['silu']}")
        return Activation(name, _DEFAULT_ALPHA.get(name, 0.0))
    if hasattr(identifier, "weights"):
        raise TypeError(f"Could not use the layer {identifier!r} as an activation: only weightless "
                        "activation layers (ReLU, LeakyReLU, ELU, Softmax, Activation) can be; add "
                        "it as a layer of its own after the Dense layer instead")
    raise TypeError(f"Could not interpret activation {identifier!r}: give a name such as 'relu' "
                    "or a fastnn.activations function (fastnn differentiates its activations "
                    "in C, so an arbitrary Python function cannot be used)")


def serialize(activation):
    """The name, or {"name", "alpha"} when the parameter is not the name's default (e.g. from
    Dense(activation=LeakyReLU(negative_slope=0.1))), so a saved model keeps it."""
    if activation.alpha != _DEFAULT_ALPHA.get(activation.name, 0.0):
        return {"name": activation.name, "alpha": activation.alpha}
    return activation.name


def _make(name, doc):
    def fn(x):
        return get(name)(x)
    fn.__name__ = name
    fn.__doc__ = doc
    fn._fastnn_activation = name
    return fn


linear = _make("linear", "linear(x): x.")
relu = _make("relu", "relu(x): max(x, 0).")
sigmoid = _make("sigmoid", "sigmoid(x): 1 / (1 + exp(-x)).")
tanh = _make("tanh", "tanh(x).")
selu = _make("selu", "selu(x): scale * (x if x > 0 else alpha * (exp(x) - 1)), Klambauer et al.")
swish = _make("swish", "swish(x) = silu(x) = x * sigmoid(x).")
silu = swish
softplus = _make("softplus", "softplus(x): log(1 + exp(x)).")
softsign = _make("softsign", "softsign(x): x / (1 + |x|).")
hard_sigmoid = _make("hard_sigmoid", "hard_sigmoid(x): relu6(x + 3) / 6 (Keras 3).")
mish = _make("mish", "mish(x): x * tanh(softplus(x)).")
exponential = _make("exponential", "exponential(x): exp(x).")


def leaky_relu(x, negative_slope=0.2):
    """leaky_relu(x, negative_slope=0.2): x if x > 0 else negative_slope * x."""
    return Activation("leaky_relu", negative_slope)(x)


def elu(x, alpha=1.0):
    """elu(x, alpha=1.0): x if x > 0 else alpha * (exp(x) - 1)."""
    return Activation("elu", alpha)(x)


def gelu(x, approximate=False):
    """gelu(x, approximate=False): x * Phi(x); the tanh approximation when approximate."""
    return Activation("gelu", 1.0 if approximate else 0.0)(x)


def softmax(x, axis=-1):
    """softmax(x, axis=-1), over the last axis."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError("fastnn's softmax works over the last axis (axis=-1)")
    return get("softmax")(x)


def log_softmax(x, axis=-1):
    """log_softmax(x, axis=-1), over the last axis."""
    if axis not in (-1, np.ndim(x) - 1):
        raise ValueError("fastnn's log_softmax works over the last axis (axis=-1)")
    return get("log_softmax")(x)


for _f, _n in ((leaky_relu, "leaky_relu"), (elu, "elu"), (gelu, "gelu"), (softmax, "softmax"),
               (log_softmax, "log_softmax")):
    _f._fastnn_activation = _n
