"""The rules for the arguments of fit / evaluate / predict (and the constructors that take
the same kinds of values), stated once: types, ranges, defaults, and the messages users see.

Each checker returns the value to use (defaults filled in) or raises with the argument's
name, the method, and the bad value described without printing a whole array.
"""
import numpy as np

_ARRAY_HINTS = {
    "fit": "the arguments after the data are batch_size, epochs, ...: pass validation data as "
           "validation_data=(x_val, y_val)",
    "evaluate": "the arguments after the data are evaluate(x, y, batch_size, verbose, "
                "sample_weight, ...): pass weights as sample_weight=",
    "predict": "predict(x) takes the inputs only, no targets: predict(x, batch_size=...)",
}


def describe(value, method="fit"):
    """A short description of a bad argument for an error message (never a whole array),
    with a hint for the positional mistake that puts an array there in ``method``."""
    if isinstance(value, np.ndarray) and value.ndim:
        hint = f" ({_ARRAY_HINTS[method]})" if method in _ARRAY_HINTS else ""
        return f"an array of shape {value.shape}{hint}"
    return repr(value)


def is_int(value):
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def positive_int(value, what, low=1):
    """An integer >= ``low`` (1: "a positive integer"); ``what`` names the argument and its
    owner for the message, e.g. "Dense 'dense': units"."""
    if not is_int(value) or value < low:
        rule = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{what} must be {rule}, got {value!r}")
    return int(value)


def batch_size(value, method="fit", default=32):
    """A positive integer; None means Keras' default of 32."""
    if value is None:
        return default
    if not is_int(value) or value < 1:
        raise ValueError(f"batch_size must be a positive integer, got {describe(value, method)}")
    return int(value)


def positive_int_or_none(value, name, method="fit"):
    """None, or a positive integer (steps_per_epoch, validation_batch_size, steps...)."""
    if value is None:
        return None
    if not is_int(value) or value < 1:
        prefix = "" if method == "fit" else f"{method}: "
        raise ValueError(f"{prefix}{name} must be a positive integer or None, got "
                         f"{describe(value, method)}")
    return int(value)


def nonnegative_int(value, name, method="fit"):
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {describe(value, method)}")
    return int(value)


def verbosity(value):
    """'auto' (1, as Keras), 0, 1 or 2."""
    if value == "auto":
        return 1
    if not isinstance(value, (int, np.integer)):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {value!r}")
    return int(value)


def validation_split(value):
    """A fraction in [0, 1); None or 0 mean no split (Keras: falsy)."""
    value = 0.0 if value is None or value is False else value
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
        raise TypeError(f"validation_split must be a number in [0, 1), got {value!r}")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {value}")
    return float(value)


def validation_freq(value):
    """Keras 3: validate every N epochs, or on the listed (1-based) epochs. Returns a
    function epoch_index -> bool."""
    listed = isinstance(value, (list, tuple))
    epochs = value if listed else [value]
    if not epochs or not all(is_int(e) and e >= 1 for e in epochs):
        raise ValueError("validation_freq must be a positive integer (validate every N epochs) "
                         f"or a list of epoch numbers (1-based), got {value!r}")
    if listed:
        chosen = {int(e) for e in epochs}
        return lambda epoch: epoch + 1 in chosen
    every = int(value)
    return lambda epoch: (epoch + 1) % every == 0


def rows_for_steps(steps, batch_size, n, what):
    """The rows ``steps`` batches of ``batch_size`` cover (all ``n`` when steps is None),
    as Keras runs only ``steps`` batches of array data."""
    if steps is None:
        return n
    if not is_int(steps) or steps < 1:
        raise ValueError(f"{what}: steps must be a positive integer or None, got {steps!r}")
    return min(n, int(steps) * int(batch_size))
