"""Discretization, CategoryEncoding, Hashing and HashedCrossing (Keras 3 semantics, NumPy)."""
import numpy as np

from .base import (PreprocessingLayer, check_output_mode, check_positive_int, encode_categorical,
                   encoded_shape, missing_mask)
from .hashes import fingerprint64, fingerprint_cat64_array, siphash64
from .lookup import _batches, _salt_pair, _unique_inverse

# tf.sparse.cross_hashed's default hash_key, the seed HashedCrossing's fingerprints fold into
_CROSS_HASH_KEY = 0xDECAFCAFFE


# ---- Discretization: Keras' approximate-quantile summary ---------------------------------
# A summary is a 2 x k float32 array: row 0 holds values, row 1 the weight (count of data)
# each stands for. Batches are summarized, merged and compressed; the boundaries are the
# interpolated quantiles of the final summary. This is Keras' algorithm (same arithmetic,
# so the same boundaries), written anew.
def _summarize(values, epsilon):
    values = np.sort(np.reshape(values, -1))
    step = max(values.size * epsilon, 1)  # values.size / (1 / epsilon)
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.ones_like(picked) * step])


def _compress(summary, epsilon):
    if summary.shape[1] * epsilon < 1:
        return summary
    percents = epsilon + np.arange(0.0, 1.0, epsilon)
    cum = summary[1].cumsum()
    frac = cum / cum[-1]
    values = np.interp(percents, frac, summary[0])
    cum = np.interp(percents, frac, cum)
    weights = cum - np.concatenate((np.array([0]), cum[:-1]))
    return np.stack((values, weights)).astype("float32")


def _merge(a, b, epsilon):
    merged = np.concatenate((a, b), axis=1)
    return _compress(np.take(merged, np.argsort(merged[0]), axis=1), epsilon)


class Discretization(PreprocessingLayer):
    """Discretization(bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
    sparse=False, dtype=None, name=None)

    Buckets floats by ``bin_boundaries`` (bins ``(-inf, b0), [b0, b1), ..., [bn, inf)``:
    ``np.digitize``), or by ``num_bins`` quantile boundaries learned by ``adapt(data)``
    with Keras' approximate-quantile summary (``epsilon`` its tolerance), which gives the
    boundaries Keras gives. ``output_mode``: "int" (bin indices, int32), "one_hot",
    "multi_hot", "count" (float arrays of width ``len(bin_boundaries) + 1``). Inputs are
    compared in the layer's float dtype (float32 by default), as Keras.

    Missing values: adapt() ignores NaN (fastnn; Keras would sort them in); a NaN input falls
    in the last bin (``np.digitize``'s and Keras' behaviour): impute before, or use
    FeatureSpace, which refuses or imputes NaN.
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        owner = f"Discretization {self.name!r}"
        self.output_mode = check_output_mode(owner, output_mode)
        if sparse:
            raise ValueError(f"{owner}: sparse=True is not supported (dense NumPy outputs)")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(f"{owner}: set num_bins or bin_boundaries, not both (got "
                             f"num_bins={num_bins}, bin_boundaries={bin_boundaries})")
        if num_bins is None and bin_boundaries is None:
            raise ValueError(f"{owner}: set either num_bins or bin_boundaries")
        if num_bins is not None:
            num_bins = check_positive_int(owner, "num_bins", num_bins, minimum=0)
        if bin_boundaries is not None:
            bin_boundaries = self._checked_boundaries(bin_boundaries)
        if not (isinstance(epsilon, (int, float, np.floating)) and 0 < epsilon < 1):
            raise ValueError(f"{owner}: epsilon must be in (0, 1), got {epsilon!r}")
        self.bin_boundaries = bin_boundaries
        self.num_bins = num_bins
        self.epsilon = float(epsilon)
        self.sparse = False
        self._summary = None

    def _checked_boundaries(self, b):
        b = [float(v) for v in np.asarray(b, np.float64).reshape(-1)]
        if any(not np.isfinite(v) for v in b) or any(x > y for x, y in zip(b, b[1:])):
            raise ValueError(f"Discretization {self.name!r}: bin_boundaries must be finite and "
                             f"sorted, got {b}")
        return b

    def output_dtype(self, output_mode):
        return self._out_dtype or "int32" if output_mode == "int" else self.dtype

    def adapt(self, data, batch_size=None, steps=None):
        """adapt(data, batch_size=None, steps=None): learn ``num_bins - 1`` boundaries from
        the quantiles of ``data`` (an array, or an iterable of batches; NaN ignored)."""
        owner = f"Discretization {self.name!r}"
        if self.num_bins is None:
            raise ValueError(f"{owner}: cannot adapt a layer made with bin_boundaries; use "
                             "num_bins instead")
        summary = np.array([[], []], dtype="float32")
        seen = 0
        for batch in _batches(data, steps, owner):
            values = np.asarray(batch, dtype=np.float64).reshape(-1)
            values = values[~np.isnan(values)].astype("float32")
            if values.size == 0:
                continue
            seen += values.size
            summary = _merge(_summarize(values, self.epsilon), summary, self.epsilon)
        if not seen:
            raise ValueError(f"{owner}.adapt: no data (empty, or every value is NaN)")
        self._summary = summary
        self.bin_boundaries = _compress(summary, 1.0 / self.num_bins)[0, :-1].tolist()

    def _depth(self):
        if self.bin_boundaries is None:
            return self.num_bins
        return len(self.bin_boundaries) + 1

    def _output_shape(self, shape):
        return encoded_shape(shape, self.output_mode, self._depth())

    def _transform(self, values):
        if self.bin_boundaries is None:
            raise ValueError(f"Discretization {self.name!r}: pass bin_boundaries or call "
                             "adapt(data) before using the layer")
        if values.dtype.kind not in "biuf":
            try:
                values = values.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"Discretization {self.name!r} takes numbers, got dtype "
                                f"{values.dtype}") from None
        x = values.astype(self.dtype)
        idx = np.digitize(x, np.asarray(self.bin_boundaries, self.dtype)).astype(np.int64)
        if self.output_mode == "int":
            return idx.astype(self.output_dtype("int"))
        return encode_categorical(idx, self.output_mode, self._depth(), self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(bin_boundaries=self.bin_boundaries, num_bins=self.num_bins,
                      epsilon=self.epsilon, output_mode=self.output_mode, sparse=False)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("bin_boundaries") is not None and config.get("num_bins") is not None:
            boundaries = config.pop("bin_boundaries")  # an adapted layer, as Keras restores it
            layer = cls(**config)
            layer.bin_boundaries = layer._checked_boundaries(boundaries)
            return layer
        return cls(**config)


class CategoryEncoding(PreprocessingLayer):
    """CategoryEncoding(num_tokens=None, output_mode="multi_hot", sparse=False)

    Integer codes in ``[0, num_tokens)`` to "one_hot", "multi_hot" or "count" float arrays of
    width ``num_tokens``; ``layer(x, count_weights=w)`` weights the counts. A value outside
    the range is an error naming it (as Keras documents)."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"CategoryEncoding {self.name!r}"
        self.output_mode = check_output_mode(owner, output_mode, ("one_hot", "multi_hot", "count"))
        if num_tokens is None:
            raise ValueError(f"{owner}: num_tokens must be set; if the number of tokens is not "
                             "known beforehand, use IntegerLookup")
        self.num_tokens = check_positive_int(owner, "num_tokens", num_tokens)
        if sparse:
            raise ValueError(f"{owner}: sparse=True is not supported (dense NumPy outputs)")
        self.sparse = False

    def _output_shape(self, shape):
        return encoded_shape(shape, self.output_mode, self.num_tokens)

    def _transform(self, values, count_weights=None):
        owner = f"CategoryEncoding {self.name!r}"
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(f"{owner}: count_weights is only used when output_mode='count'")
        if values.dtype.kind == "f":
            if np.any(np.isnan(values)) or np.any(values != np.round(values)):
                raise ValueError(f"{owner}: inputs must be integers, got non-integral or NaN "
                                 "values")
        elif values.dtype.kind not in "biu":
            raise TypeError(f"{owner}: inputs must be integers, got dtype {values.dtype}")
        idx = values.astype(np.int64)
        bad = (idx < 0) | (idx >= self.num_tokens)
        if bad.any():
            raise ValueError(f"{owner}: inputs must be in the range 0 <= value < num_tokens="
                             f"{self.num_tokens}; got {idx[bad][:5].tolist()}")
        if count_weights is not None:
            count_weights = np.asarray(count_weights, self.dtype)
        return encode_categorical(idx, self.output_mode, self.num_tokens, self.dtype,
                                  count_weights)

    def get_config(self):
        config = super().get_config()
        config.update(num_tokens=self.num_tokens, output_mode=self.output_mode, sparse=False)
        return config


def _as_strings(values):
    """Elements as the strings Keras hashes: str kept, bytes decoded, integers (and floats,
    truncated to integers first, as Keras) in decimal; missing values as the empty string."""
    flat = values.reshape(-1)
    if values.dtype.kind in "biu":
        return [str(int(v)) for v in flat.tolist()]
    missing = missing_mask(flat)
    out = []
    for v, miss in zip(flat.tolist(), missing):
        if miss:
            out.append("")
        elif isinstance(v, str):
            out.append(v)
        elif isinstance(v, bytes):
            out.append(v.decode("utf-8"))
        elif isinstance(v, (float, np.floating)):
            out.append(str(int(v)))
        else:
            out.append(str(v))
    return out


class Hashing(PreprocessingLayer):
    """Hashing(num_bins, mask_value=None, salt=None, output_mode="int", sparse=False)

    Hashes strings or integers into ``num_bins`` bins: FarmHash Fingerprint64 of the value's
    string (integers in decimal) modulo the number of bins, or SipHash-2-4 keyed by ``salt``
    (an integer, meaning ``[salt, salt]``, or a pair). These are the hashes TensorFlow uses,
    so the bins equal Keras'. ``mask_value`` maps to bin 0 and the others hash into
    ``num_bins - 1`` bins shifted by one. ``output_mode``: "int" (int64), "one_hot",
    "multi_hot", "count". fastnn: a missing value (None, NaN) hashes as the empty string.
    """

    def __init__(self, num_bins, mask_value=None, salt=None, output_mode="int", sparse=False,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"Hashing {self.name!r}"
        self.num_bins = check_positive_int(owner, "num_bins", num_bins)
        self.output_mode = check_output_mode(owner, output_mode)
        if sparse:
            raise ValueError(f"{owner}: sparse=True is not supported (dense NumPy outputs)")
        self.sparse = False
        self.mask_value = mask_value
        self.salt = _salt_pair(owner, salt)
        self.strong_hash = self.salt is not None

    def _output_shape(self, shape):
        return encoded_shape(shape, self.output_mode, self.num_bins)

    def hash_indices(self, values):
        """The int64 bin of every element of ``values`` (an array); each distinct value is
        converted and hashed once."""
        bins = self.num_bins
        flat = values.reshape(-1)
        if flat.dtype.kind in "biu":
            uniq, inverse = np.unique(flat, return_inverse=True)
        else:
            uniq, inverse = _unique_inverse(flat.tolist())
            uniq = np.array(uniq + [None], dtype=object)[:-1]  # 1-D even for tuples
        mask = None
        if self.mask_value is not None and bins > 1:
            bins -= 1
            mask = np.array([v == self.mask_value for v in uniq.tolist()], bool)
        strings = _as_strings(uniq)
        if self.salt is None:
            hashed = [fingerprint64(s.encode()) % bins for s in strings]
        else:
            hashed = [siphash64(s.encode(), self.salt) % bins for s in strings]
        idx = np.array(hashed, np.int64)
        if mask is not None:
            idx += 1
            idx[mask] = 0
        return idx[inverse.reshape(-1)].reshape(values.shape)

    def _transform(self, values):
        idx = self.hash_indices(values)
        if self.output_mode == "int":
            return idx.astype(self.output_dtype("int"))
        return encode_categorical(idx, self.output_mode, self.num_bins, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(num_bins=self.num_bins, salt=self.salt, mask_value=self.mask_value,
                      output_mode=self.output_mode, sparse=False)
        return config


class HashedCrossing(PreprocessingLayer):
    """HashedCrossing(num_bins, output_mode="int", sparse=False)

    Crosses two or more categorical features (``layer((a, b, ...))``, each a 1-D array or
    an (n, 1) column of strings or integers) into ``num_bins`` bins with TensorFlow's
    ``sparse.cross_hashed`` arithmetic (integers as themselves, strings by FarmHash
    Fingerprint64, folded with FingerprintCat64 from its default key), so bins equal Keras'.
    ``output_mode``: "int" (int64) or "one_hot"."""

    def __init__(self, num_bins, output_mode="int", sparse=False, **kwargs):
        super().__init__(**kwargs)
        owner = f"HashedCrossing {self.name!r}"
        self.num_bins = check_positive_int(owner, "num_bins", num_bins)
        self.output_mode = check_output_mode(owner, output_mode, ("int", "one_hot"))
        if sparse:
            raise ValueError(f"{owner}: sparse=True is not supported (dense NumPy outputs)")
        self.sparse = False

    def __call__(self, x, training=False):
        owner = f"HashedCrossing {self.name!r}"
        from .base import as_array, is_symbolic
        if not isinstance(x, (list, tuple)) or len(x) < 2:
            raise ValueError(f"{owner}: expects a tuple of at least two features, got "
                             f"{type(x).__name__}")
        if any(is_symbolic(t) for t in x):
            raise NotImplementedError(f"{owner}: crossing symbolic tensors is not supported; "
                                      "use FeatureSpace(crosses=...)")
        return self._transform([as_array(t, owner) for t in x])

    def _output_shape(self, shape):
        return encoded_shape(shape, self.output_mode, self.num_bins)

    def cross_indices(self, features):
        owner = f"HashedCrossing {self.name!r}"
        shape = features[0].shape
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise ValueError(f"{owner}: each feature must be 1-D or of shape (n, 1), got {shape}")
        for f in features:
            if f.shape != shape:
                raise ValueError(f"{owner}: all features must have the same shape, got "
                                 f"{[g.shape for g in features]}")
        columns = []
        for f in features:
            if f.dtype.kind in "iub":
                columns.append(f.reshape(-1).astype(np.int64).view(np.uint64))
            elif f.dtype.kind in "OUS":
                strings = _as_strings(f)
                cache = {}
                columns.append(np.array(
                    [cache[s] if s in cache else cache.setdefault(s, fingerprint64(s.encode()))
                     for s in strings], np.uint64))
            else:
                raise TypeError(f"{owner}: features must be integers or strings, got dtype "
                                f"{f.dtype}")
        h = np.full(columns[0].shape, _CROSS_HASH_KEY, np.uint64)
        for col in columns:
            h = fingerprint_cat64_array(h, col)
        return (h % np.uint64(self.num_bins)).astype(np.int64).reshape(shape)

    def _transform(self, features):
        idx = self.cross_indices(features)
        if self.output_mode == "int":
            return idx.astype(self.output_dtype("int"))
        return encode_categorical(idx, "one_hot", self.num_bins, self.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(num_bins=self.num_bins, output_mode=self.output_mode, sparse=False)
        return config
