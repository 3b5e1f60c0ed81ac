"""Optimizers (Keras 3 names, defaults and update rules), each a C kernel per variable."""
from . import schedules
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, Adamax, AdamW, Nadam
from .base import Optimizer
from .ftrl import Ftrl
from .lamb import Lamb
from .lion import Lion
from .rmsprop import RMSprop
from .sgd import SGD

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "adamax": Adamax, "nadam": Nadam,
            "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta, "adafactor": Adafactor,
            "ftrl": Ftrl, "lamb": Lamb, "lion": Lion}

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adamax", "Nadam", "RMSprop", "Adagrad",
           "Adadelta", "Adafactor", "Ftrl", "Lamb", "Lion", "schedules", "get", "serialize",
           "deserialize"]


def get(identifier):
    """Resolve a name ('sgd', 'adam', ...), an Optimizer, or a config dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _BY_NAME:
            raise ValueError(f"Unknown optimizer {identifier!r}. Known: {sorted(_BY_NAME)}")
        return _BY_NAME[key]()
    if isinstance(identifier, dict):
        if not isinstance(identifier.get("class_name"), str):
            raise ValueError(f"Could not interpret optimizer {identifier!r}: a dict must be "
                             "{'class_name': 'Adam', 'config': {...}}")
        return get(identifier["class_name"]).__class__.from_config(identifier.get("config", {}))
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    raise TypeError(f"Could not interpret optimizer {identifier!r}")


def serialize(opt):
    """{"class_name": ..., "config": ...} for an optimizer (Keras' format)."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config):
    """The optimizer described by ``serialize()``'s output."""
    return get(config)
