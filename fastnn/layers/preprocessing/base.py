"""What the structured-data preprocessing layers share: the non-trainable layer base class
(called on NumPy arrays and lists, strings included, returning NumPy arrays), the
categorical encoder behind every ``output_mode``, and the detection of missing values."""
import numpy as np

from .. import base as _layer_base
from ..base import Layer, is_symbolic, _check_initialized

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def check_output_mode(layer_name, output_mode, allowed=OUTPUT_MODES):
    if output_mode == "binary":  # Keras' deprecated name
        output_mode = "multi_hot"
    if output_mode not in allowed:
        raise ValueError(f"{layer_name}: invalid output_mode {output_mode!r}; expected one of "
                         f"{list(allowed)}")
    return output_mode


def check_positive_int(layer_name, what, value, allow_none=False, minimum=1):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{layer_name}: {what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def encode_categorical(indices, output_mode, depth, dtype, count_weights=None):
    """Keras' ``encode_categorical_inputs`` on a NumPy int64 array of indices in
    ``[0, depth)``; an index of -1 is dropped (a masked value outside ``"int"`` mode).

    ``"one_hot"``: a trailing axis of size 1 is replaced by ``depth`` (else one is appended);
    ``"multi_hot"`` / ``"count"``: the last axis is the sample (a 1-D input is one sample, as
    Keras), replaced by ``depth``."""
    if output_mode == "int":
        return indices.astype(dtype, copy=False)
    if indices.ndim == 0:
        indices = indices.reshape(1)
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices.reshape(indices.shape[:-1])
        out = np.zeros(indices.shape + (depth,), dtype)
        flat = out.reshape(-1, depth)
        idx = indices.reshape(-1)
        keep = idx >= 0
        flat[np.nonzero(keep)[0], idx[keep]] = 1
        return out
    lead = indices.shape[:-1]
    rows = indices.reshape(-1, indices.shape[-1])
    out = np.zeros((rows.shape[0], depth), dtype)
    r = np.repeat(np.arange(rows.shape[0]), rows.shape[1])
    idx = rows.reshape(-1)
    keep = idx >= 0
    if output_mode == "multi_hot":
        out[r[keep], idx[keep]] = 1
    else:
        w = 1 if count_weights is None else np.broadcast_to(
            np.asarray(count_weights, dtype), indices.shape).reshape(-1)[keep]
        np.add.at(out, (r[keep], idx[keep]), w)
    return out.reshape(lead + (depth,))


def is_missing_scalar(v):
    """None, a float NaN, an empty string, or pandas' NA / NaT (recognized without
    importing pandas)."""
    if v is None:
        return True
    if isinstance(v, (float, np.floating)):
        return v != v
    if isinstance(v, (str, bytes)):
        return len(v) == 0
    return type(v).__name__ in ("NAType", "NaTType")


def missing_mask(values):
    """True where ``values`` (a NumPy array) holds a missing value: None, NaN, or an empty
    string (what a CSV reader gives for an empty cell)."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "U":
        return values == ""
    if values.dtype.kind == "S":
        return values == b""
    if values.dtype.kind == "O":
        try:  # element comparisons in NumPy's loop: much faster than a Python generator
            with np.errstate(invalid="ignore"):
                out = (np.equal(values, None) | np.not_equal(values, values)  # NaN, NaT
                       | np.equal(values, "") | np.equal(values, b""))
            if out.dtype == bool:
                return out
        except (TypeError, ValueError):  # an element whose comparison is not a bool (pd.NA)
            pass
        flat = values.reshape(-1)
        out = np.fromiter((is_missing_scalar(v) for v in flat), bool, count=flat.size)
        return out.reshape(values.shape)
    return np.zeros(values.shape, bool)


def as_array(data, layer_name):
    """``data`` (a NumPy array, a list, a scalar, a pandas Series) as a NumPy array; lists
    of strings become object arrays (no fixed-width truncation surprises)."""
    if is_symbolic(data):
        raise TypeError(f"{layer_name}: expected data, got a symbolic tensor")
    if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):  # pandas
        data = data.to_numpy()
    if isinstance(data, np.ndarray):
        return data
    arr = np.asarray(data, dtype=object) if _has_strings(data) else np.asarray(data)
    if arr.dtype.kind == "O" and arr.ndim == 0 and isinstance(data, (list, tuple)):
        raise ValueError(f"{layer_name}: ragged lists are not supported; pad the rows first")
    return arr


def _has_strings(data):
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (str, bytes)):
            return True
        if isinstance(x, (list, tuple)):
            stack.extend(x[:64])  # a sample of a big list decides
    return False


class PreprocessingLayer(Layer):
    """Base class of the structured-data preprocessing layers: not trainable, called on
    NumPy arrays or lists (strings as ``str``/object arrays, integers, floats with NaN as
    missing), returning NumPy arrays. In a model (numeric inputs only) the layer runs as the
    first layers do and passes no gradient down (there is nothing below it to train).

    Subclasses implement ``_transform(array) -> array`` and ``_output_shape(shape)``."""

    def __init__(self, name=None, dtype=None, **kwargs):
        kwargs.pop("trainable", None)
        self._out_dtype = None
        if dtype is not None and np.dtype(dtype).kind in "iu":
            # Keras lets int-mode preprocessing layers have an integer dtype: it is their
            # output's dtype; the layer itself (its dtype in a model) stays float
            self._out_dtype = np.dtype(dtype).name
            dtype = None
        super().__init__(trainable=False, name=name, dtype=dtype, **kwargs)

    @property
    def trainable(self):
        return False

    @trainable.setter
    def trainable(self, value):
        pass  # nothing to train, whatever a model or a user sets

    def output_dtype(self, output_mode):
        if output_mode == "int":
            return self._out_dtype or "int64"
        return self.dtype

    def __call__(self, x, training=False, **kwargs):
        _check_initialized(self)
        if is_symbolic(x):
            return _layer_base.symbolic_call(self, x)
        return self._transform(as_array(x, f"{type(self).__name__} {self.name!r}"), **kwargs)

    def compute_output_shape(self, input_shape):
        return tuple(self._output_shape(tuple(input_shape)))

    def forward(self, x, training=False):
        return np.asarray(self._transform(x), dtype=self.dtype)

    def backward(self, dy, need_dx=True):
        if need_dx:
            raise ValueError(f"{type(self).__name__} {self.name!r} is not differentiable: put "
                             "preprocessing layers first in a model (nothing below them trains)")
        return None

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        if self._out_dtype is not None:
            config["dtype"] = self._out_dtype
        return config


def encoded_shape(shape, output_mode, depth):
    """Output shape of ``encode_categorical`` for an input of ``shape`` (None allowed)."""
    shape = tuple(shape)
    if output_mode == "int":
        return shape
    if not shape:
        return (depth,)
    if output_mode == "one_hot":
        if len(shape) > 1 and shape[-1] == 1:
            return shape[:-1] + (depth,)
        return shape + (depth,)
    return shape[:-1] + (depth,)


