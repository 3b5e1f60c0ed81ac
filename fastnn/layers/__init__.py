"""Layers, Keras 3 names and signatures (see shared API.md)."""
from .activation_layers import ELU, LeakyReLU, Maxout, PReLU, ReLU, Softmax
from .base import Layer, Variable
from .core import Activation, Dense, Flatten, Input, InputLayer, Rescaling, Reshape
from .dropout import AlphaDropout, DropConnectDense, Dropout, GaussianDropout, GaussianNoise
from .embedding import Embedding
from .merging import (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract, add,
                      average, concatenate, maximum, minimum, multiply, subtract)
from .normalization import BatchNormalization, LayerNormalization, Normalization
from .preprocessing import (CategoryEncoding, Discretization, HashedCrossing, Hashing, IntegerLookup,
                            StringLookup)

_REGISTRY = {}


def register(cls=None, name=None):
    """Make a layer class known by name to ``from_config`` and ``load_model``:
    ``register(MyLayer)``, or as a decorator ``@register`` / ``@register(name="MyLayer")``.
    The class needs a ``get_config()`` returning its constructor arguments."""
    if cls is None:
        return lambda c: register(c, name)
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register: expected a fastnn Layer subclass, got {cls!r}")
    _REGISTRY[name or cls.__name__] = cls
    return cls


for _cls in (InputLayer, Dense, Activation, Flatten, Reshape, Rescaling, ReLU, LeakyReLU, PReLU,
             ELU, Softmax, Maxout):
    register(_cls)
for _cls in (Dropout, AlphaDropout, GaussianDropout, GaussianNoise, DropConnectDense,
             BatchNormalization, LayerNormalization, Normalization):
    register(_cls)
for _cls in (Add, Average, Concatenate, Maximum, Minimum, Multiply, Subtract):
    register(_cls)
for _cls in (StringLookup, IntegerLookup, CategoryEncoding, Discretization, Hashing, HashedCrossing):
    register(_cls)
register(Embedding)


def __getattr__(name):
    # keras.layers.Conv2D, Concatenate, LSTM, ...: say what fastnn is rather than only "no attribute"
    if name[:1].isupper():
        raise AttributeError(
            f"fastnn.layers has no {name}: fastnn trains multilayer perceptrons (Sequential stacks "
            f"or graphs of these layers: {', '.join(sorted(n for n in _REGISTRY if n != 'InputLayer'))}; "
            "no convolutional or recurrent layers)")
    raise AttributeError(f"module 'fastnn.layers' has no attribute {name!r}")


def get(class_name):
    if class_name not in _REGISTRY:
        raise ValueError(f"Unknown layer class {class_name!r}; register custom layers with "
                         "fastnn.layers.register(cls)")
    return _REGISTRY[class_name]
