"""FeatureSpace: Keras 3's one-stop preprocessing of tabular columns (``keras.utils.
FeatureSpace``), in NumPy, with missing-value handling and a pickle-free saved form.

    fs = FeatureSpace({"age": FeatureSpace.float_normalized(impute="median"),
                       "city": "string_categorical", "zip": "integer_hashed"},
                      crosses=[("city", "zip")], output_mode="concat")
    fs.adapt({"age": ages, "city": cities, "zip": zips})      # or a pandas DataFrame
    x = fs({"age": ages, "city": cities, "zip": zips})          # float32, (n, fs.encoded_width)

Encoding, as Keras: every feature is preprocessed on a column of shape (n, 1) (float:
unchanged; float_rescaled: Rescaling; float_normalized: Normalization; float_discretized:
Discretization; *_categorical: StringLookup / IntegerLookup; *_hashed: Hashing), crosses hash
the preprocessed integer codes of their features (HashedCrossing), and features whose
``output_mode`` is "one_hot" are one-hot encoded (width: the vocabulary size, the number of
bins or hash bins, ``crossing_dim``). ``output_mode="concat"`` returns one float32 array with
the features in sorted name order, then the crosses in sorted name order (Keras' order);
``"dict"`` returns {name: array}.

Missing values (fastnn extras): in a categorical or hashed feature, None / NaN / "" is an
out-of-vocabulary value (hashed features: hashed as ""). A float feature refuses missing
values (an error naming the column and the count) unless it was declared with
``impute="mean"`` or ``"median"`` (the statistic of the adapt data's observed values; the
preprocessor is adapted on the observed values too); ``missing_indicator=True`` appends a
0/1 column (1 where the value was missing) after the feature's encoding.

Saving: ``get_config()`` is JSON-able (feature specs, preprocessor configs with their
vocabularies and bin boundaries, crosses) and ``get_state()`` a dict of named NumPy arrays
(imputation values, Normalization statistics); ``FeatureSpace.from_config(config,
state=state)`` rebuilds an adapted FeatureSpace giving the same bits. ``fs.save(path)`` writes
both in fastnn's zip format (JSON + .npy, never pickle); ``fastnn.utils.load_feature_space(path)``
or ``fastnn.saving.load_model(path)`` (as Keras' ``keras.saving.load_model``) reads it back.

Models (the keras.io "structured data" guide's pattern): ``fs.get_inputs()`` returns {name:
symbolic input} and ``fs.get_encoded_features()`` one symbolic tensor of shape (None,
encoded_width) to build layers on; both carry ``._feature_space``. ``Model(inputs=
fs.get_inputs(), outputs=...)`` runs the FeatureSpace on the raw columns before the graph
(and saves it with the model); the encoded tensor is an ``Input`` of that width, so
``Model(inputs=fs.get_encoded_features(), outputs=...)`` trains on ``fs(data)``.
"""
import numpy as np

from . import backend, saving
from .layers.base import buffer_set
from .layers.core import InputLayer, Rescaling
from .layers.normalization import Normalization
from .layers.preprocessing import (CategoryEncoding, Discretization, HashedCrossing, Hashing,
                                   IntegerLookup, StringLookup)
from .layers.preprocessing.base import encode_categorical

__all__ = ["FeatureSpace", "Feature", "Cross", "MissingColumnError", "load_feature_space"]

_FEATURE_MODES = ("int", "one_hot", "float")
_IMPUTE = (None, "mean", "median")
_STATE_KINDS = "feature_space"
_ADAPT_BATCH = 32  # tf.data's batch in Keras' FeatureSpace.adapt of a dict of columns


class MissingColumnError(KeyError, ValueError):
    """A column a FeatureSpace needs is not in the data (a KeyError and a ValueError)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class Cross:
    """Cross(feature_names, crossing_dim, output_mode="one_hot"): the hashed cross of the
    named features' integer codes into ``crossing_dim`` bins; named ``"a_X_b"``."""

    def __init__(self, feature_names, crossing_dim, output_mode="one_hot"):
        if output_mode not in ("int", "one_hot"):
            raise ValueError(f"Cross: invalid output_mode {output_mode!r}; expected 'int' or "
                             "'one_hot'")
        names = tuple(feature_names)
        if len(names) < 2 or not all(isinstance(n, str) for n in names):
            raise ValueError(f"Cross: feature_names must be two or more feature names, got "
                             f"{feature_names!r}")
        if isinstance(crossing_dim, bool) or not isinstance(crossing_dim, (int, np.integer)) \
                or crossing_dim < 1:
            raise ValueError(f"Cross: crossing_dim must be a positive integer, got "
                             f"{crossing_dim!r}")
        self.feature_names = names
        self.crossing_dim = int(crossing_dim)
        self.output_mode = output_mode

    @property
    def name(self):
        return "_X_".join(self.feature_names)

    def get_config(self):
        return {"feature_names": list(self.feature_names), "crossing_dim": self.crossing_dim,
                "output_mode": self.output_mode}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<Cross {self.name} dim={self.crossing_dim} output_mode={self.output_mode}>"


class Feature:
    """Feature(dtype, preprocessor, output_mode, impute=None, missing_indicator=False): how
    one column is preprocessed (see the FeatureSpace constructors). ``dtype``: "float32",
    "int32"/"int64" or "string"; ``preprocessor``: a fastnn preprocessing layer (None: the
    values as they are); ``output_mode``: "float", "int" or "one_hot". ``impute`` and
    ``missing_indicator`` (fastnn extras) apply to float features."""

    def __init__(self, dtype, preprocessor, output_mode, impute=None, missing_indicator=False):
        if output_mode not in _FEATURE_MODES:
            raise ValueError(f"Feature: invalid output_mode {output_mode!r}; expected one of "
                             f"{list(_FEATURE_MODES)}")
        if dtype not in ("float32", "float64", "int32", "int64", "string"):
            raise ValueError(f"Feature: dtype must be 'float32', 'int32', 'int64' or 'string', "
                             f"got {dtype!r}")
        if impute not in _IMPUTE:
            raise ValueError(f"Feature: impute must be None, 'mean' or 'median', got {impute!r}")
        if impute is not None and not dtype.startswith("float"):
            raise ValueError(f"Feature: impute={impute!r} applies to float features; a missing "
                             f"categorical value ({dtype}) is already an out-of-vocabulary value")
        if missing_indicator and impute is None:
            raise ValueError("Feature: missing_indicator=True needs impute='mean' or 'median' "
                             "(without imputation a missing value is an error)")
        if isinstance(preprocessor, dict):
            preprocessor = _layer_from_config(preprocessor)
        self.dtype = dtype
        self.preprocessor = preprocessor
        self.output_mode = output_mode
        self.impute = impute
        self.missing_indicator = bool(missing_indicator)
        self.impute_value = None

    def get_config(self):
        pre = self.preprocessor
        return {"dtype": self.dtype,
                "preprocessor": None if pre is None else
                {"class_name": type(pre).__name__, "config": pre.get_config()},
                "output_mode": self.output_mode, "impute": self.impute,
                "missing_indicator": self.missing_indicator}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        pre = type(self.preprocessor).__name__ if self.preprocessor is not None else "None"
        return f"<Feature dtype={self.dtype} preprocessor={pre} output_mode={self.output_mode}>"


def _layer_from_config(spec):
    from . import layers
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"FeatureSpace: a preprocessor config must be {{'class_name', "
                         f"'config'}}, got {spec!r:.200}")
    return layers.get(spec["class_name"]).from_config(dict(spec.get("config") or {}))


def _is_dataframe(data):
    return hasattr(data, "columns") and hasattr(data, "iloc") and hasattr(data, "dtypes")


def _column_array(values):
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, (list, tuple)) and any(isinstance(v, (str, bytes)) or v is None
                                                 for v in values[:1000]):
        arr = np.empty(len(values), object)
        arr[:] = list(values)
        return arr
    return np.asarray(values)


def _float_column(values, name):
    """A column as float64 with NaN where a value is missing (None, NaN, empty string);
    numeric strings (a CSV's cells) are parsed; anything else is an error naming the column."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    flat = values.reshape(-1)
    out = np.empty(flat.size, np.float64)
    for i, v in enumerate(flat.tolist()):
        if v is None or type(v).__name__ in ("NAType", "NaTType"):
            out[i] = np.nan
        elif isinstance(v, (str, bytes)):
            s = v.decode() if isinstance(v, bytes) else v
            s = s.strip()
            if not s:
                out[i] = np.nan
                continue
            try:
                out[i] = float(s)
            except ValueError:
                raise ValueError(f"FeatureSpace: float feature {name!r} holds the non-numeric "
                                 f"value {v!r} (row {i}); declare it as a categorical feature "
                                 "or clean the column") from None
        else:
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"FeatureSpace: float feature {name!r} holds the non-numeric "
                                 f"value {v!r} (row {i})") from None
    return out.reshape(values.shape)


class FeatureSpace:
    """FeatureSpace(features, output_mode="concat", crosses=None, crossing_dim=32,
    hashing_dim=32, num_discretization_bins=32, name=None)

    ``features``: {column name: spec}, a spec being a string ("float", "float_rescaled",
    "float_normalized", "float_discretized", "integer_categorical", "string_categorical",
    "integer_hashed", "string_hashed") or what a constructor below returns
    (``FeatureSpace.float_normalized(impute="mean")``, ...). ``crosses``: a list of tuples of
    feature names (crossed into ``crossing_dim`` bins) or of ``FeatureSpace.cross(...)``.
    ``hashing_dim`` and ``num_discretization_bins`` size the string-given hashed and
    discretized features. See the module docstring for the encoding, missing values, saving
    and models.
    """

    # ---- feature constructors (Keras' static methods; impute/missing_indicator: fastnn) --
    @classmethod
    def cross(cls, feature_names, crossing_dim, output_mode="one_hot"):
        """The hashed cross of ``feature_names`` into ``crossing_dim`` bins."""
        return Cross(feature_names, crossing_dim, output_mode=output_mode)

    @classmethod
    def feature(cls, dtype, preprocessor, output_mode, impute=None, missing_indicator=False):
        """A custom feature: ``preprocessor`` (a fastnn preprocessing layer, adapted with the
        FeatureSpace if it has ``adapt``) applied to the column of ``dtype``."""
        return Feature(dtype, preprocessor, output_mode, impute, missing_indicator)

    @classmethod
    def float(cls, name=None, impute=None, missing_indicator=False):
        """The value as it is (float32)."""
        return Feature("float32", None, "float", impute, missing_indicator)

    @classmethod
    def float_rescaled(cls, scale=1.0, offset=0.0, name=None, impute=None,
                       missing_indicator=False):
        """``value * scale + offset``."""
        pre = Rescaling(scale=scale, offset=offset, name=_pre_name(name, "float_rescaled"))
        return Feature("float32", pre, "float", impute, missing_indicator)

    @classmethod
    def float_normalized(cls, name=None, impute=None, missing_indicator=False):
        """Standardized with the adapt data's mean and variance (Normalization)."""
        pre = Normalization(axis=-1, name=_pre_name(name, "float_normalized"))
        return Feature("float32", pre, "float", impute, missing_indicator)

    @classmethod
    def float_discretized(cls, num_bins, bin_boundaries=None, output_mode="one_hot", name=None,
                          impute=None, missing_indicator=False):
        """Bucketed into ``num_bins`` quantile bins learned by adapt (or by the given
        ``bin_boundaries``, then ``num_bins`` must be ``len(bin_boundaries) + 1`` or None)."""
        if bin_boundaries is not None:
            if num_bins is not None and num_bins != len(bin_boundaries) + 1:
                raise ValueError(f"FeatureSpace.float_discretized: num_bins={num_bins} but "
                                 f"{len(bin_boundaries)} bin_boundaries make "
                                 f"{len(bin_boundaries) + 1} bins")
            pre = Discretization(bin_boundaries=bin_boundaries,
                                 name=_pre_name(name, "float_discretized"))
        else:
            pre = Discretization(num_bins=num_bins, name=_pre_name(name, "float_discretized"))
        return Feature("float32", pre, output_mode, impute, missing_indicator)

    @classmethod
    def integer_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                            name=None):
        """Integer categories looked up in a learned vocabulary (IntegerLookup)."""
        pre = IntegerLookup(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                            name=_pre_name(name, "integer_categorical"))
        return Feature("int32", pre, output_mode)

    @classmethod
    def string_categorical(cls, max_tokens=None, num_oov_indices=1, output_mode="one_hot",
                           name=None):
        """String categories looked up in a learned vocabulary (StringLookup)."""
        pre = StringLookup(max_tokens=max_tokens, num_oov_indices=num_oov_indices,
                           name=_pre_name(name, "string_categorical"))
        return Feature("string", pre, output_mode)

    @classmethod
    def string_hashed(cls, num_bins, output_mode="one_hot", name=None):
        """Strings hashed into ``num_bins`` bins (Hashing)."""
        return Feature("string", Hashing(num_bins=num_bins, name=_pre_name(name, "string_hashed")),
                       output_mode)

    @classmethod
    def integer_hashed(cls, num_bins, output_mode="one_hot", name=None):
        """Integers hashed into ``num_bins`` bins (Hashing)."""
        return Feature("int32", Hashing(num_bins=num_bins, name=_pre_name(name, "integer_hashed")),
                       output_mode)

    # ---- construction ----------------------------------------------------------------------
    def __init__(self, features, output_mode="concat", crosses=None, crossing_dim=32,
                 hashing_dim=32, num_discretization_bins=32, name=None):
        if not features or not isinstance(features, dict):
            raise ValueError("FeatureSpace: features must be a non-empty dict {column name: "
                             f"spec}}, got {features!r:.100}")
        if output_mode not in ("concat", "dict"):
            raise ValueError(f"FeatureSpace: invalid output_mode {output_mode!r}; expected "
                             "'concat' or 'dict'")
        self.name = name or backend.unique_name("feature_space")
        self.output_mode = output_mode
        self.crossing_dim = crossing_dim
        self.hashing_dim = hashing_dim
        self.num_discretization_bins = num_discretization_bins
        self.features = {}
        for fname, spec in features.items():
            if not isinstance(fname, str) or not fname:
                raise ValueError(f"FeatureSpace: feature names must be non-empty strings, got "
                                 f"{fname!r}")
            self.features[fname] = self._standardize_feature(fname, spec)
        self.crosses = []
        for cross in crosses or []:
            if isinstance(cross, dict):
                cross = Cross.from_config(cross)
            if not isinstance(cross, Cross):
                if not crossing_dim:
                    raise ValueError("FeatureSpace: crosses need crossing_dim (the number of "
                                     "bins of the crossed space)")
                cross = Cross(cross, crossing_dim)
            unknown = [n for n in cross.feature_names if n not in self.features]
            if unknown:
                raise ValueError(f"FeatureSpace: cross {cross.feature_names} names unknown "
                                 f"feature(s) {unknown}; known: {sorted(self.features)}")
            for n in cross.feature_names:
                if self.features[n].preprocessor is None \
                        or isinstance(self.features[n].preprocessor, (Normalization, Rescaling)):
                    raise ValueError(f"FeatureSpace: cross {cross.name!r} uses the float feature "
                                     f"{n!r}; only categorical, hashed or discretized features "
                                     "(integer codes) can be crossed")
            self.crosses.append(cross)
        if len({c.name for c in self.crosses}) != len(self.crosses):
            raise ValueError("FeatureSpace: the same cross is given twice")
        clash = [c.name for c in self.crosses if c.name in self.features]
        if clash:
            raise ValueError(f"FeatureSpace: cross name(s) {clash} collide with feature names")
        self.crossers = {c.name: HashedCrossing(c.crossing_dim, name=c.name) for c in self.crosses}
        self._is_adapted = False
        self._missing_state = set()
        self._encoded = None
        self._inputs = None

    def _standardize_feature(self, name, spec):
        if isinstance(spec, Feature):
            return spec
        if isinstance(spec, dict):
            return Feature.from_config(spec)
        builders = {
            "float": lambda: self.float(name=name),
            "float_normalized": lambda: self.float_normalized(name=name),
            "float_rescaled": lambda: self.float_rescaled(name=name),
            "float_discretized": lambda: self.float_discretized(
                num_bins=self.num_discretization_bins, name=name),
            "integer_categorical": lambda: self.integer_categorical(name=name),
            "string_categorical": lambda: self.string_categorical(name=name),
            "integer_hashed": lambda: self.integer_hashed(self.hashing_dim, name=name),
            "string_hashed": lambda: self.string_hashed(self.hashing_dim, name=name),
        }
        if not isinstance(spec, str) or spec not in builders:
            raise ValueError(f"FeatureSpace: invalid feature type {spec!r} for feature {name!r}; "
                             f"expected one of {sorted(builders)} or a FeatureSpace.<type>(...) "
                             "feature")
        return builders[spec]()

    @property
    def preprocessors(self):
        """{feature name: its preprocessing layer (None for a plain float feature)}."""
        return {n: f.preprocessor for n, f in self.features.items()}

    # ---- data in --------------------------------------------------------------------------
    def _columns(self, data, what):
        """{feature name: 1-D array} from a dict of columns or a DataFrame; a column missing
        is an error naming it; the columns must have one length."""
        if _is_dataframe(data):
            present = {str(c) for c in data.columns}
            get = lambda n: data[n]  # noqa: E731
        elif isinstance(data, dict):
            present = set(data)
            get = data.__getitem__
        else:
            raise TypeError(f"FeatureSpace {self.name!r}.{what}: expected a dict of columns "
                            f"{{name: array}} or a pandas DataFrame, got {type(data).__name__}")
        missing = [n for n in self.features if n not in present]
        if missing:
            raise MissingColumnError(f"FeatureSpace {self.name!r}.{what}: column(s) {missing} "
                                     f"missing from the data (it has "
                                     f"{sorted(map(str, present))[:20]})")
        cols, scalar, n_rows = {}, False, None
        for n in self.features:
            arr = _column_array(get(n))
            if arr.ndim == 0:
                arr, scalar = arr.reshape(1), True
            elif arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr.reshape(-1)
            elif arr.ndim != 1:
                raise ValueError(f"FeatureSpace {self.name!r}.{what}: column {n!r} must be 1-D "
                                 f"(one value per row), got shape {arr.shape}")
            if n_rows is None:
                n_rows = arr.shape[0]
            elif arr.shape[0] != n_rows:
                lengths = {k: len(v) for k, v in cols.items()}
                lengths[n] = arr.shape[0]
                raise ValueError(f"FeatureSpace {self.name!r}.{what}: columns have different "
                                 f"lengths: {lengths}")
            cols[n] = arr
        return cols, scalar

    def _float_values(self, name, column, adapting=False):
        """(float64 values with missing ones imputed, missing mask) of a float feature."""
        feat = self.features[name]
        x = _float_column(column, name)
        if np.isinf(x).any():
            raise ValueError(f"FeatureSpace {self.name!r}: float feature {name!r} holds "
                             f"{int(np.isinf(x).sum())} infinite value(s)")
        miss = np.isnan(x)
        if miss.any():
            if feat.impute is None:
                raise ValueError(
                    f"FeatureSpace {self.name!r}: float feature {name!r} has {int(miss.sum())} "
                    f"missing value(s) (None, NaN or empty) in {x.size} rows and no imputation; "
                    f"declare it with impute='mean' or 'median' (e.g. "
                    f"FeatureSpace.float_normalized(impute='mean', missing_indicator=True)) or "
                    "drop those rows")
            if not adapting:
                x = np.where(miss, feat.impute_value, x)
        return x, miss

    # ---- adapt -------------------------------------------------------------------------------
    def _adaptable(self, feat):
        pre = feat.preprocessor
        if pre is None or not hasattr(pre, "adapt"):
            return False
        if isinstance(pre, Normalization):
            return pre.input_mean is None
        if isinstance(pre, (StringLookup, IntegerLookup)):
            return not pre._has_input_vocabulary
        if isinstance(pre, Discretization):
            return pre.num_bins is not None
        return True

    def _needs_adapt(self):
        return any(self._adaptable(f) or f.impute is not None for f in self.features.values())

    def adapt(self, data, verbose=0):
        """adapt(data): learn every preprocessor's state (vocabularies, bin boundaries,
        statistics, imputation values) from ``data``, a dict {column: 1-D array or list} or a
        pandas DataFrame (extra columns, e.g. the target, are ignored). ``verbose`` is
        accepted for Keras compatibility."""
        cols, _ = self._columns(data, "adapt")
        for name, feat in self.features.items():
            col = cols[name]
            if col.shape[0] == 0:
                raise ValueError(f"FeatureSpace {self.name!r}.adapt: no rows")
            if feat.dtype.startswith("float"):
                x, miss = self._float_values(name, col, adapting=True)
                observed = x[~miss]
                if observed.size == 0:
                    raise ValueError(f"FeatureSpace {self.name!r}.adapt: float feature {name!r} "
                                     "has no observed (non-missing) value")
                if feat.impute is not None:
                    stat = observed.mean() if feat.impute == "mean" else np.median(observed)
                    feat.impute_value = float(stat)
                if isinstance(feat.preprocessor, Discretization) and self._adaptable(feat):
                    # Keras' FeatureSpace.adapt batches a dict of columns by 32 rows and
                    # Discretization merges one quantile summary per batch: the same batches
                    # give the same boundaries
                    obs = observed.astype(np.float32)
                    feat.preprocessor.adapt([obs[i:i + _ADAPT_BATCH].reshape(-1, 1)
                                             for i in range(0, obs.size, _ADAPT_BATCH)])
                elif self._adaptable(feat):
                    feat.preprocessor.adapt(observed.astype(np.float32).reshape(-1, 1))
            elif self._adaptable(feat):
                feat.preprocessor.adapt(col.reshape(-1, 1))
        self._is_adapted = True
        self._missing_state = set()
        self._encoded = None

    def _check_ready(self):
        if self._missing_state:
            raise ValueError(f"FeatureSpace {self.name!r} was rebuilt from a config without its "
                             f"state (statistics of {sorted(self._missing_state)}): pass "
                             "state=feature_space.get_state() to from_config, or call set_state")
        if not self._is_adapted:
            if self._needs_adapt():
                raise ValueError(f"FeatureSpace {self.name!r}: call adapt(data) before using it "
                                 "(its vocabularies, bins and statistics come from the data)")
            self._is_adapted = True

    # ---- encoding ----------------------------------------------------------------------------
    def _cardinality(self, name, pre):
        if isinstance(pre, (StringLookup, IntegerLookup)):
            return pre.vocabulary_size()
        if isinstance(pre, CategoryEncoding):
            return pre.num_tokens
        if isinstance(pre, Discretization):
            return pre.num_bins if pre.num_bins is not None else len(pre.bin_boundaries) + 1
        if isinstance(pre, (Hashing, HashedCrossing)):
            return pre.num_bins
        raise ValueError(f"FeatureSpace: feature {name!r} has output_mode='one_hot' but the "
                         f"size of its preprocessor's ({type(pre).__name__}) output space is not "
                         "known, so it cannot be one-hot encoded; use output_mode='int'")

    def _preprocess(self, name, column):
        """(preprocessed values of shape (n, k), missing mask or None) of one feature."""
        feat = self.features[name]
        pre = feat.preprocessor
        miss = None
        if feat.dtype.startswith("float"):
            x, miss = self._float_values(name, column)
            col = x.astype(np.float32).reshape(-1, 1)
        else:
            col = column.reshape(-1, 1)
        out = col if pre is None else np.asarray(pre(col))
        if out.ndim == 1:
            out = out.reshape(-1, 1)
        return out, (miss if feat.missing_indicator else None)

    def _encode(self, name, values, spec, pre, out=None):
        """The encoding of one feature or cross, written into ``out`` (a float32 block of
        the concat output) when given: one-hot columns are set in place, so a wide
        vocabulary costs no (n, width) temporary."""
        if spec.output_mode == "one_hot":
            if values.dtype.kind not in "iu":
                raise ValueError(f"FeatureSpace: feature {name!r} has output_mode='one_hot', so "
                                 f"its preprocessor must return integers, got {values.dtype}")
            depth = self._cardinality(name, pre)
            if out is None:
                return encode_categorical(values.astype(np.int64), "multi_hot", depth, np.float32)
            idx = values.reshape(values.shape[0], -1).astype(np.int64)
            rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
            keep = (idx >= 0) & (idx < depth)
            out[rows[keep], idx[keep]] = 1
            return out
        if spec.output_mode == "float":
            if out is None:
                return values.astype(np.float32, copy=False)
            if values.shape[1] != out.shape[1]:
                raise ValueError(f"FeatureSpace: feature {name!r}'s preprocessor returned "
                                 f"{values.shape[1]} columns, expected {out.shape[1]}")
            out[...] = values
            return out
        if out is not None:
            raise ValueError(f"FeatureSpace: cannot concatenate feature {name!r}: it is not "
                             f"encoded (output_mode='int' gives integer codes); use "
                             "output_mode='one_hot' or FeatureSpace(output_mode='dict')")
        return values

    def _order(self):
        return sorted(self.features) + sorted(self.crossers)

    def __call__(self, data):
        """Encode ``data`` (a dict of columns or a DataFrame; a dict of scalars is one row):
        a float32 array (n, encoded_width) in "concat" mode, else {name: array}."""
        self._check_ready()
        cols, scalar = self._columns(data, "__call__")
        with buffer_set({}):  # the preprocessors' work arrays: this call's own (threads)
            pre = {name: self._preprocess(name, cols[name]) for name in self.features}
        codes = {name: values for name, (values, _) in pre.items()}
        for cross in self.crosses:
            for n in cross.feature_names:
                v = codes[n]
                if v.dtype.kind not in "iu" or v.shape[1] != 1:
                    raise ValueError(f"FeatureSpace: cross {cross.name!r} needs one integer code "
                                     f"per row from feature {n!r}, got {v.dtype} of width "
                                     f"{v.shape[1]}")
            crosser = self.crossers[cross.name]
            codes[cross.name] = crosser.cross_indices(
                [codes[n].astype(np.int64) for n in cross.feature_names])
        specs = {**self.features, **{c.name: c for c in self.crosses}}
        pres = {**self.preprocessors, **self.crossers}
        misses = {name: miss for name, (_, miss) in pre.items() if miss is not None}
        if self.output_mode == "dict":
            result = {}
            for n in self._order():
                enc = self._encode(n, codes[n], specs[n], pres[n])
                if n in misses:
                    enc = np.concatenate([enc, misses[n].reshape(-1, 1).astype(enc.dtype)], axis=1)
                result[n] = enc
            if scalar:
                result = {n: v[0] for n, v in result.items()}
            return result
        rows = next(iter(codes.values())).shape[0]
        slices = self.feature_slices()
        out = np.zeros((rows, slices[self._order()[-1]].stop), np.float32)
        for n, sl in slices.items():
            block = out[:, sl]
            if n in misses:
                block[:, -1] = misses[n]
                block = block[:, :-1]
            self._encode(n, codes[n], specs[n], pres[n], out=block)
        return out[0] if scalar else out

    def _width(self, name):
        if name in self.crossers:
            cross = next(c for c in self.crosses if c.name == name)
            return cross.crossing_dim if cross.output_mode == "one_hot" else 1
        feat = self.features[name]
        pre = feat.preprocessor
        if feat.output_mode == "one_hot":
            w = self._cardinality(name, pre)
        elif pre is None or feat.output_mode == "int":
            w = 1
        else:
            w = int(pre.compute_output_shape((None, 1))[-1])
        return w + int(feat.missing_indicator)

    @property
    def encoded_width(self):
        """The width of the "concat" output (needs the FeatureSpace adapted)."""
        self._check_ready()
        return int(sum(self._width(n) for n in self._order()))

    def feature_slices(self):
        """{feature or cross name: slice of its columns in the "concat" output}, in order."""
        self._check_ready()
        out, start = {}, 0
        for n in self._order():
            w = self._width(n)
            out[n] = slice(start, start + w)
            start += w
        return out

    # ---- symbolic tensors (models) -------------------------------------------------------
    def get_inputs(self):
        """{feature name: symbolic input of shape (None, 1)} (Keras' ``get_inputs``), each
        tagged with ``._feature_space`` (this object). They stand for the raw columns:
        ``Model(inputs=fs.get_inputs(), outputs=...)`` runs the FeatureSpace on the raw data
        first; build the layers on ``get_encoded_features()``."""
        self._check_ready()
        if self._inputs is None:
            self._inputs = {n: FeatureInput(self, n, f.dtype) for n, f in self.features.items()}
        return dict(self._inputs)

    def get_encoded_features(self):
        """The encoded features as one symbolic tensor of shape (None, encoded_width)
        ("concat" mode; "dict" mode: {name: tensor of that feature's width}), to call layers
        on, as in Keras' guide::

            x = fs.get_encoded_features()
            out = layers.Dense(1, activation="sigmoid")(layers.Dense(32, activation="relu")(x))

        The tensor is an ``Input`` of that width carrying ``._feature_space``:
        ``Model(inputs=fs.get_inputs(), outputs=out)`` takes raw columns,
        ``Model(inputs=x, outputs=out)`` the encoded ``fs(data)``."""
        self._check_ready()
        if self._encoded is None:
            if self.output_mode == "concat":
                t = InputLayer(shape=(self.encoded_width,), name=f"{self.name}_encoded")
                t._feature_space = self
                self._encoded = t
            else:
                self._encoded = {}
                for n in self._order():
                    t = InputLayer(shape=(self._width(n),), name=f"{self.name}_{n}")
                    t._feature_space = self
                    self._encoded[n] = t
        return self._encoded

    # ---- saving ------------------------------------------------------------------------------
    def get_config(self):
        """A JSON-able dict: the feature specs (preprocessor configs with vocabularies and bin
        boundaries), crosses, options and whether it is adapted. Numeric statistics are in
        ``get_state()``."""
        return {"name": self.name, "output_mode": self.output_mode,
                "crossing_dim": self.crossing_dim, "hashing_dim": self.hashing_dim,
                "num_discretization_bins": self.num_discretization_bins,
                "features": {n: f.get_config() for n, f in self.features.items()},
                "crosses": [c.get_config() for c in self.crosses],
                "adapted": bool(self._is_adapted)}

    def _state_names(self, name, feat):
        names = []
        if feat.impute is not None:
            names.append(f"{name}/impute_value")
        pre = feat.preprocessor
        if pre is not None and isinstance(pre, Normalization) and pre.input_mean is None:
            names += [f"{name}/{v}" for v in ("mean", "variance", "count")]
        elif pre is not None and getattr(pre, "weights", None):
            names += [f"{name}/{v.name}" for v in pre.weights]
        return names

    def get_state(self):
        """{name: NumPy array}: imputation values and the preprocessors' weights
        (Normalization's mean, variance, count), named "<feature>/<statistic>"."""
        state = {}
        if self._missing_state:
            self._check_ready()
        for name, feat in self.features.items():
            if feat.impute is not None and feat.impute_value is not None:
                state[f"{name}/impute_value"] = np.array([feat.impute_value], np.float64)
            pre = feat.preprocessor
            if pre is not None and getattr(pre, "built", False):
                for v in pre.weights:
                    state[f"{name}/{v.name}"] = v.numpy()
        return state

    def set_state(self, state):
        """Restore what ``get_state()`` returned (after ``from_config``)."""
        state = dict(state)
        for name, feat in self.features.items():
            needed = self._state_names(name, feat)
            have = [k for k in needed if k in state]
            if not have:
                continue
            lacking = [k for k in needed if k not in state]
            if lacking:
                raise ValueError(f"FeatureSpace {self.name!r}.set_state: missing {lacking}")
            if feat.impute is not None:
                v = np.asarray(state[f"{name}/impute_value"], np.float64).reshape(-1)
                if v.size != 1 or not np.isfinite(v[0]):
                    raise ValueError(f"FeatureSpace {self.name!r}.set_state: "
                                     f"{name}/impute_value must be one finite number")
                feat.impute_value = float(v[0])
            pre = feat.preprocessor
            if pre is not None and len(needed) > int(feat.impute is not None):
                pre._maybe_build((None, 1))
                by_name = {v.name: v for v in pre.weights}
                values = [np.asarray(state[f"{name}/{vn}"]) for vn in by_name]
                pre.set_weights(values)
            self._missing_state.discard(name)

    @classmethod
    def from_config(cls, config, state=None):
        """Rebuild a FeatureSpace from ``get_config()``; with ``state`` (``get_state()``) an
        adapted one gives the same outputs bit for bit."""
        config = dict(config)
        adapted = bool(config.pop("adapted", False))
        fs = cls(**config)
        if adapted:
            fs._is_adapted = True
            fs._missing_state = {n for n, f in fs.features.items() if fs._state_names(n, f)}
            if state is not None:
                fs.set_state(state)
        return fs

    def save(self, filepath):
        """Save to ``filepath`` (fastnn's zip of JSON + .npy, written atomically; no pickle).
        Reload with ``fastnn.utils.load_feature_space(filepath)`` or
        ``fastnn.saving.load_model(filepath)``."""
        from . import __version__
        self._check_ready()
        state = self.get_state()
        manifest, arrays = [], []
        for i, (key, arr) in enumerate(sorted(state.items())):
            entry = f"s{i:05d}.npy"
            manifest.append({"name": key, "entry": entry, "shape": list(arr.shape),
                             "dtype": arr.dtype.name})
            arrays.append((entry, arr))
        meta = {"format": saving.FORMAT_NAME, "kind": _STATE_KINDS,
                "format_version": saving.FORMAT_VERSION, "fastnn_version": __version__,
                "feature_space": self.get_config(), "state": manifest}
        raw = saving._encode_metadata(meta)
        saving._atomic_write(filepath, lambda f: saving._write_archive(f, raw, arrays))

    def __repr__(self):
        return (f"<FeatureSpace {self.name} features={list(self.features)} "
                f"crosses={[c.name for c in self.crosses]} output_mode={self.output_mode}>")


def _pre_name(name, kind):
    return f"{name}_preprocessor" if name else None


class FeatureInput:
    """The symbolic raw input of one feature (shape (None, 1), the feature's dtype), from
    ``FeatureSpace.get_inputs()``; ``._feature_space`` is the FeatureSpace and ``.name`` the
    column. It stands for raw data: build layers on ``get_encoded_features()``."""

    _symbolic = True

    def __init__(self, feature_space, name, dtype):
        self._feature_space = feature_space
        self.name = name
        self.dtype = dtype
        self.shape = (None, 1)
        self.layer = None
        self.inputs = []

    @property
    def ndim(self):
        return 2

    def __repr__(self):
        return f"<FeatureInput name={self.name} shape={self.shape} dtype={self.dtype}>"


def _from_archive(archive):
    """The FeatureSpace in an opened fastnn archive of kind "feature_space"."""
    meta = archive.meta
    config, manifest = meta.get("feature_space"), meta.get("state")
    if not isinstance(config, dict) or not isinstance(manifest, list):
        raise archive.error("the feature space's config or state manifest is missing or malformed")
    specs = []
    for item in manifest:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise archive.error("a state manifest entry is malformed")
        entry, shape, dtype = archive.array_spec(item, f"state {item['name']!r:.80}")
        specs.append((entry, shape, dtype, f"state {item['name']!r:.80}"))
    archive.check_budget(specs)
    state = {item["name"]: archive.read_array(entry, shape, dtype, what)
             for item, (entry, shape, dtype, what) in zip(manifest, specs)}
    try:
        return FeatureSpace.from_config(config, state=state)
    except (TypeError, ValueError, KeyError) as err:
        raise archive.error(f"cannot rebuild the feature space: {err}") from None


def _register():
    from . import saving
    FeatureSpace._from_archive = staticmethod(_from_archive)
    saving.ARCHIVE_CLASSES[_STATE_KINDS] = FeatureSpace


_register()


def load_feature_space(filepath):
    """load_feature_space(filepath): the FeatureSpace saved by ``FeatureSpace.save``
    (adapted, giving the same outputs bit for bit). Never unpickles; a corrupted or hostile
    file raises InvalidModelFileError (a ValueError) naming the problem."""
    with saving._Archive(filepath, "load_feature_space", kinds=(_STATE_KINDS,)) as archive:
        return _from_archive(archive)


