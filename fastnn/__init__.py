"""fastnn: train deep multilayer perceptrons on the CPU, fast, with a Keras-compatible API.

    import fastnn as keras
    model = keras.Sequential([keras.Input(shape=(64,)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10)

The hot loops are C kernels (csrc/) behind Cython wrappers; every kernel has a NumPy
reference (fastnn.reference) and ``FASTNN_BACKEND=numpy`` runs everything on it.
"""
__version__ = "0.1.0"

from . import backend
from . import (activations, callbacks, constraints, datasets, initializers, layers, losses,
               metrics, optimizers, regularizers, utils)
from . import models
from .backend import (floatx, get_num_threads, have_openmp, set_backend, set_floatx,
                      set_num_threads, set_seed)
from .layers import Input
from .models import Model, Sequential, clone_model, load_model
from . import functional  # noqa: F401  (Model(inputs, outputs); layers called on Input)
from . import pretrain, saving
from . import config

__all__ = ["Sequential", "Model", "Input", "models", "layers", "activations", "initializers", "losses",
           "metrics", "optimizers", "regularizers", "constraints", "callbacks", "utils",
           "set_seed", "set_num_threads", "get_num_threads", "set_backend", "floatx",
           "set_floatx", "config", "clone_model", "load_model", "saving", "pretrain", "wrappers"]


def __getattr__(name):
    # fastnn.wrappers imports scikit-learn: only when it is used
    if name == "wrappers":
        import importlib
        return importlib.import_module(".wrappers", __name__)
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")
