"""Metrics (Keras 3 names): stateful running means over an epoch.

``update_state(y_true, y_pred)`` takes targets as the loss prepared them (class labels for
sparse losses, arrays of the output's shape otherwise).
"""
import re

import numpy as np

from . import backend


class Metric:
    """Base class: a running, count-weighted mean of per-sample values."""

    #: compares y_true and y_pred element by element (they must have as many values)
    _elementwise = False

    def __init__(self, name=None):
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0

    def values(self, y_true, y_pred):
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{self.name}: fastnn metrics do not take sample_weight")
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if y_true.ndim and y_pred.ndim and len(y_true) != len(y_pred):
            # NumPy would broadcast one label against every row (a made-up result)
            raise ValueError(f"{self.name}: y_true has {len(y_true)} rows (shape {y_true.shape}) "
                             f"but y_pred has {len(y_pred)} (shape {y_pred.shape})")
        if self._elementwise and y_true.size != y_pred.size:
            raise ValueError(f"{self.name}: targets of shape {y_true.shape} do not match outputs of "
                             f"shape {y_pred.shape}: this metric compares them element by element "
                             "(with class labels, use 'sparse_categorical_accuracy' or 'accuracy')")
        v = self.values(y_true, y_pred)
        self.total += float(np.sum(v))
        self.count += int(np.size(v))

    def result(self):
        return self.total / self.count if self.count else 0.0

    def __call__(self, y_true, y_pred, sample_weight=None):
        """As a Keras Metric object: update the state with this batch and return the result
        so far (the module's lowercase functions are the stateless per-sample form)."""
        self.update_state(np.asarray(y_true), np.asarray(y_pred), sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name}


class SparseCategoricalAccuracy(Metric):
    """Fraction of rows whose argmax equals the integer label."""

    def __init__(self, name="sparse_categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.argmax(y_pred, axis=-1) == np.asarray(y_true).reshape(-1)

    def update_state(self, y_true, y_pred, sample_weight=None):
        # fit's case, once per step: int64 labels (n,) and outputs (n, classes) as the
        # trainer holds them; the hits are counted by one kernel pass (backend.ops.
        # argmax_hits: the same count as values() gives, ties and NaN included, so the
        # same total) instead of an argmax array, a comparison array and their sum
        if sample_weight is None and type(self).values is SparseCategoricalAccuracy.values \
                and type(y_true) is np.ndarray and type(y_pred) is np.ndarray \
                and y_true.ndim == 1 and y_pred.ndim == 2 and y_pred.shape[1] \
                and len(y_true) == len(y_pred) and y_true.dtype == np.int64 \
                and y_pred.dtype.kind == "f" and y_pred.dtype.itemsize in (4, 8):
            self.total += float(backend.ops.argmax_hits(y_pred, y_true))
            self.count += len(y_pred)
            return
        super().update_state(y_true, y_pred, sample_weight)


class CategoricalAccuracy(Metric):
    """Fraction of rows whose argmax equals the one-hot target's argmax."""

    def __init__(self, name="categorical_accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.argmax(y_pred, axis=-1) == np.argmax(y_true, axis=-1)


class BinaryAccuracy(Metric):
    """BinaryAccuracy(threshold=0.5): fraction of outputs on the right side of threshold."""

    _elementwise = True

    def __init__(self, name="binary_accuracy", threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def values(self, y_true, y_pred):
        y_true = np.asarray(y_true).reshape(np.shape(y_pred))
        return (y_pred > self.threshold) == (y_true > 0.5)

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class TopKCategoricalAccuracy(Metric):
    """TopKCategoricalAccuracy(k=5): the target class is among the k largest outputs."""

    def __init__(self, k=5, name="top_k_categorical_accuracy"):
        self.k = k
        super().__init__(name)

    def values(self, y_true, y_pred):
        labels = np.argmax(y_true, axis=-1) if np.ndim(y_true) == 2 else np.asarray(y_true)
        k = min(self.k, y_pred.shape[-1])
        top = np.argpartition(-y_pred, k - 1, axis=-1)[:, :k]
        return np.any(top == labels[:, None], axis=1)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """SparseTopKCategoricalAccuracy(k=5): the integer label is among the k largest outputs."""

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy"):
        super().__init__(k, name)

    def values(self, y_true, y_pred):
        return super().values(np.asarray(y_true).reshape(-1), y_pred)


class _Confusion(Metric):
    """Precision and Recall (Keras semantics): every output element is a binary decision,
    ``y_pred > thresholds`` (0.5 by default) against ``y_true`` cast to bool; the counts
    accumulate until reset, and the ratio is 0 while its denominator is 0."""

    _direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None):
        if top_k is not None or class_id is not None:
            raise NotImplementedError(f"{type(self).__name__}: top_k and class_id are not "
                                      "supported by fastnn")
        if thresholds is not None and not isinstance(thresholds, (int, float)):
            raise NotImplementedError(f"{type(self).__name__}: only one threshold is supported, "
                                      f"got {thresholds!r}")
        self.thresholds = 0.5 if thresholds is None else float(thresholds)
        super().__init__(name)

    def reset_state(self):
        self.tp = self.fp = self.fn = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{self.name}: fastnn metrics do not take sample_weight")
        y_pred = np.asarray(y_pred)
        y_true = np.asarray(y_true)
        if y_true.size != y_pred.size:
            raise ValueError(f"{self.name}: targets of shape {y_true.shape} do not match outputs of "
                             f"shape {y_pred.shape} (with class labels, use one-hot targets)")
        t = y_true.reshape(y_pred.shape).astype(bool)
        p = y_pred > self.thresholds
        self.tp += int(np.count_nonzero(p & t))
        self.fp += int(np.count_nonzero(p & ~t))
        self.fn += int(np.count_nonzero(~p & t))

    def get_config(self):
        return {"name": self.name, "thresholds": self.thresholds}


class Precision(_Confusion):
    """Precision(thresholds=None, name="precision"): true positives / predicted positives."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="precision"):
        super().__init__(thresholds, top_k, class_id, name)

    def result(self):
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0


class Recall(_Confusion):
    """Recall(thresholds=None, name="recall"): true positives / actual positives."""

    def __init__(self, thresholds=None, top_k=None, class_id=None, name="recall"):
        super().__init__(thresholds, top_k, class_id, name)

    def result(self):
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0


class AUC(Metric):
    """AUC(num_thresholds=200, curve="ROC", summation_method="interpolation", name=None,
    thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False)

    Keras' approximate area under the ROC or precision-recall curve: confusion counts at
    ``num_thresholds`` thresholds (evenly spaced in [0, 1], plus -1e-7 and 1 + 1e-7; a
    prediction is positive when ``y_pred > threshold``), accumulated until reset, then a
    Riemann sum (trapezoids for "interpolation"; for PR, Davis & Goadrich's interpolation,
    as Keras). Every output element is one binary decision (multi_label=False).
    """

    _direction = "up"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        if multi_label or label_weights is not None:
            raise NotImplementedError("AUC: multi_label and label_weights are not supported by fastnn")
        curve, summation_method = str(curve).upper(), str(summation_method).lower()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'AUC: curve must be "ROC" or "PR", got {curve!r}')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError("AUC: summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}")
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if int(num_thresholds) <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            inner = [(i + 1) / (int(num_thresholds) - 1) for i in range(int(num_thresholds) - 2)]
        self._thresholds = np.array([-1e-7] + inner + [1.0 + 1e-7])
        self.num_thresholds = len(self._thresholds)
        self.curve, self.summation_method = curve, summation_method
        self.from_logits = bool(from_logits)
        self._explicit_thresholds = None if thresholds is None else inner
        super().__init__(name or "auc")

    def reset_state(self):
        self.tp, self.fp, self.tn, self.fn = (np.zeros(self.num_thresholds) for _ in range(4))

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{self.name}: fastnn metrics do not take sample_weight")
        y_pred = np.asarray(y_pred, np.float64).reshape(-1)
        y_true = np.asarray(y_true)
        if y_true.size != y_pred.size:
            raise ValueError(f"{self.name}: targets of shape {y_true.shape} do not match outputs "
                             f"of {y_pred.size} values (with class labels, use one-hot targets)")
        if self.from_logits:
            y_pred = 1.0 / (1.0 + np.exp(-y_pred))
        t = y_true.reshape(-1).astype(bool)
        # k = how many thresholds each prediction exceeds: positive at threshold j iff k > j
        k = np.searchsorted(self._thresholds, y_pred, side="left")
        above = lambda mask: np.cumsum(np.bincount(k[mask], minlength=self.num_thresholds + 1)[::-1])[::-1][1:]
        tp, fp = above(t), above(~t)
        self.tp += tp
        self.fp += fp
        self.fn += t.sum() - tp
        self.tn += (~t).sum() - fp

    def result(self):
        def ratio(a, b):
            return np.divide(a, b, out=np.zeros_like(a), where=b != 0)
        tp, fp, fn = self.tp, self.fp, self.fn
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            dp = p[:-1] - p[1:]
            slope = ratio(dtp, np.maximum(dp, 0))
            intercept = tp[1:] - slope * p[1:]
            both = (p[:-1] > 0) & (p[1:] > 0)
            p_ratio = np.where(both, ratio(p[:-1], np.maximum(p[1:], 0)), 1.0)
            return float(np.sum(ratio(slope * (dtp + intercept * np.log(p_ratio)),
                                      np.maximum(tp[1:] + fn[1:], 0))))
        recall = ratio(tp, tp + fn)
        if self.curve == "ROC":
            x, y = ratio(fp, fp + self.tn), recall
        else:
            x, y = recall, ratio(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return float(np.sum((x[:-1] - x[1:]) * heights))

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds,
                "curve": self.curve, "summation_method": self.summation_method,
                "thresholds": self._explicit_thresholds, "from_logits": self.from_logits}


class MeanSquaredError(Metric):
    """Mean of (y_pred - y_true)^2 over the last axis."""

    _elementwise = True

    def __init__(self, name="mean_squared_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean((y_pred - np.asarray(y_true).reshape(np.shape(y_pred))) ** 2, axis=-1)


class RootMeanSquaredError(MeanSquaredError):
    """RootMeanSquaredError(name="root_mean_squared_error"): the square root of the mean
    squared error accumulated since the last reset (Keras semantics: the root of the running
    mean over all samples, not a mean of per-batch roots)."""

    _direction = "down"

    def __init__(self, name="root_mean_squared_error"):
        super().__init__(name)

    def result(self):
        return float(np.sqrt(super().result()))


class MeanAbsoluteError(Metric):
    """Mean of |y_pred - y_true| over the last axis."""

    _elementwise = True

    def __init__(self, name="mean_absolute_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.mean(np.abs(y_pred - np.asarray(y_true).reshape(np.shape(y_pred))), axis=-1)


class MeanAbsolutePercentageError(Metric):
    """100 * mean(|y_true - y_pred| / max(|y_true|, 1e-7)) over the last axis (Keras)."""

    _elementwise = True

    def __init__(self, name="mean_absolute_percentage_error"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        y_true = np.asarray(y_true).reshape(np.shape(y_pred))
        return 100.0 * np.mean(np.abs(y_true - y_pred) / np.maximum(np.abs(y_true), 1e-7), axis=-1)


class Accuracy(Metric):
    """Exact equality of y_pred and y_true (Keras' Accuracy class; the string "accuracy" in
    compile() picks binary/categorical/sparse accuracy from the loss instead)."""

    _elementwise = True

    def __init__(self, name="accuracy"):
        super().__init__(name)

    def values(self, y_true, y_pred):
        return np.asarray(y_true).reshape(np.shape(y_pred)) == y_pred


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy, "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "MSE": MeanSquaredError, "MAE": MeanAbsoluteError,
    "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
}
# As Keras 3, every metric class is also known by its class name and its snake-case name:
# metrics=["RootMeanSquaredError"] or ["root_mean_squared_error"].
for _cls in (SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy,
             TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
             RootMeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError, Precision, Recall,
             AUC):
    _BY_NAME[_cls.__name__] = _cls
    _BY_NAME[re.sub(r"([a-z])([A-Z])", r"\1_\2",  # Keras' to_snake_case: AUC -> auc
                    re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", _cls.__name__)).lower()] = _cls


def _function(cls, name):
    """Keras' metric functions: fn(y_true, y_pred) -> the value of each sample (float array);
    in compile(metrics=[fn]) they stand for their metric class, named after the function."""
    def fn(y_true, y_pred, **kwargs):
        y_pred = np.asarray(y_pred)
        return np.asarray(cls(**kwargs).values(np.asarray(y_true), y_pred), dtype=backend.floatx())
    fn.__name__ = name
    fn.__doc__ = f"{name}(y_true, y_pred): the {cls.__name__} of each sample."
    fn._fastnn_metric = cls
    return fn


sparse_categorical_accuracy = _function(SparseCategoricalAccuracy, "sparse_categorical_accuracy")
categorical_accuracy = _function(CategoricalAccuracy, "categorical_accuracy")
binary_accuracy = _function(BinaryAccuracy, "binary_accuracy")
top_k_categorical_accuracy = _function(TopKCategoricalAccuracy, "top_k_categorical_accuracy")
sparse_top_k_categorical_accuracy = _function(SparseTopKCategoricalAccuracy,
                                              "sparse_top_k_categorical_accuracy")
mse = mean_squared_error = _function(MeanSquaredError, "mean_squared_error")
mae = mean_absolute_error = _function(MeanAbsoluteError, "mean_absolute_error")
mape = mean_absolute_percentage_error = _function(MeanAbsolutePercentageError,
                                                  "mean_absolute_percentage_error")


def get(identifier, loss=None, output_dim=None):
    """Resolve a metric. "accuracy"/"acc" picks the variant Keras would from the loss."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and hasattr(identifier, "_fastnn_metric"):  # metrics=[fn]
        return identifier._fastnn_metric(name=identifier.__name__)
    if isinstance(identifier, str) and identifier.lower() in ("accuracy", "acc"):  # as Keras
        from . import losses
        if isinstance(loss, losses.SparseCategoricalCrossentropy):
            cls = SparseCategoricalAccuracy
        elif isinstance(loss, losses.CategoricalCrossentropy):
            cls = CategoricalAccuracy
        elif isinstance(loss, losses.BinaryCrossentropy) or output_dim == 1:
            cls = BinaryAccuracy
        else:
            cls = CategoricalAccuracy
        return cls(name=identifier)
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            known = sorted(k for k in _BY_NAME if k.islower()) + ["accuracy"]
            raise ValueError(f"Unknown metric {identifier!r}. Known: {known} (and the class "
                             "names, e.g. 'RootMeanSquaredError')")
        m = _BY_NAME[identifier]()
        m.name = identifier
        return m
    raise TypeError(f"Could not interpret metric {identifier!r}")
