"""The small dataset shipped inside the package: the 8x8 handwritten digits (1,797 images,
10 classes; the UCI "Optical Recognition of Handwritten Digits" test set, as scikit-learn
ships it), stored as a compressed .npz of uint8 pixels 0..16 and labels."""
import os

import numpy as np

_DIGITS = os.path.join(os.path.dirname(__file__), "data", "digits.npz")


def load_digits(test_fraction=0.2, seed=0, scale=True):
    """Return ``(x_train, y_train), (x_test, y_test)``: float32 pixels scaled to [0, 1]
    (``scale=True``), int64 labels, split reproducibly by ``seed``."""
    with np.load(_DIGITS, allow_pickle=False) as f:
        x, y = f["x"].astype(np.float32), f["y"].astype(np.int64)
    if scale:
        x /= 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def __getattr__(name):
    # keras.datasets.mnist / fashion_mnist / california_housing ...: fastnn downloads nothing
    if not name.startswith("_"):
        raise AttributeError(
            f"fastnn.datasets has no {name}: fastnn ships only load_digits() and downloads "
            "nothing; load other data as NumPy arrays (e.g. with scikit-learn's fetch_* "
            "functions) and pass them to fit")
    raise AttributeError(f"module 'fastnn.datasets' has no attribute {name!r}")
