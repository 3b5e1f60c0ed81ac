"""Utilities: to_categorical, normalize, PyDataset, FeatureSpace, MC dropout, the learning-rate range
test, sanity checks before training."""
import numpy as np

from .backend import set_seed as set_random_seed  # noqa: F401  (keras.utils.set_random_seed)
from .diagnostics import sanity_check  # noqa: F401  (fastnn extra)
from .ensembles import SnapshotEnsemble, ensemble_predict  # noqa: F401  (fastnn extras)
from .feature_space import FeatureSpace, load_feature_space  # noqa: F401  (keras.utils.FeatureSpace)
from .lr_finder import find_learning_rate  # noqa: F401  (fastnn extra)
from .plot_model import model_to_dot, plot_model  # noqa: F401  (keras.utils; pydot optional)
from .training.py_dataset import PyDataset  # noqa: F401  (keras.utils.PyDataset)
from .training.trainer import mc_predict  # noqa: F401  (fastnn extra)

Sequence = PyDataset  # Keras 3 keeps keras.utils.Sequence as PyDataset's old name


def to_categorical(x, num_classes=None):
    """to_categorical(x, num_classes=None): integer labels -> one-hot rows (float64, as Keras'
    NumPy path), of shape ``x.shape + (num_classes,)`` (a trailing axis of 1 dropped first);
    ``num_classes`` None or 0 means ``max(x) + 1``, as Keras."""
    x = np.asarray(x)
    shape = x.shape[:-1] if x.ndim > 1 and x.shape[-1] == 1 else x.shape
    x = x.reshape(-1)
    if x.dtype.kind == "f":
        if np.any(x != np.round(x)):
            raise ValueError("to_categorical: labels must be whole numbers")
        x = x.astype(np.int64)
    if x.dtype.kind not in "iub":
        raise TypeError(f"to_categorical: labels must be integers, got {x.dtype}")
    x = x.astype(np.int64)
    if x.size and x.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {x.min()}")
    if num_classes is not None and (isinstance(num_classes, bool)
                                    or not isinstance(num_classes, (int, float, np.number))):
        raise TypeError(f"to_categorical: num_classes must be an integer, got {num_classes!r}")
    if not num_classes:  # None or 0: inferred, as Keras
        if not x.size:
            raise ValueError("to_categorical: no labels to infer num_classes from; pass num_classes")
        n = int(x.max()) + 1
    elif not float(num_classes).is_integer() or num_classes < 1:
        raise ValueError(f"to_categorical: num_classes must be a positive integer, got {num_classes!r}")
    else:
        n = int(num_classes)
    if x.size and x.max() >= n:
        raise ValueError(f"to_categorical: label {x.max()} is out of range for num_classes={n}")
    out = np.zeros((x.shape[0], n), np.float64)
    out[np.arange(x.shape[0]), x] = 1.0
    return out.reshape(tuple(shape) + (n,))


def normalize(x, axis=-1, order=2):
    """normalize(x, axis=-1, order=2): rows scaled to unit L-order norm."""
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)
