"""Losses with Keras 3 names and semantics (mean over the last axis, then over the batch).

Each loss runs as one fused C kernel that returns the loss and writes its gradient in the
same pass. Cross-entropy after a softmax output takes the fused, stable path: the gradient
with respect to the logits is ``p - t``, so no probability is ever divided by or logged at 0.
"""
import numpy as np

from . import backend
from .reference.losses import LOSS_CODES


class Loss:
    """Base class. ``loss(y_true, y_pred)`` returns the batch mean (Keras' default
    "sum_over_batch_size" reduction)."""

    #: True when, after a softmax output, the loss gives the gradient w.r.t. the logits.
    fuses_softmax = False

    def __init__(self, name=None, reduction="sum_over_batch_size"):
        if reduction not in ("sum_over_batch_size", "sum", "mean", None, "none"):
            raise ValueError(f"{type(self).__name__}: unknown reduction {reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    # -- what the model uses ------------------------------------------------------------
    def prepare_targets(self, y, output_shape, dtype):
        """Validate and convert targets once per fit/evaluate (not per step)."""
        _check_output_rank(self.name, output_shape)
        y = _as_array(y, self.name)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{self.name}: targets must be numeric, got dtype {y.dtype}")
        y = y.astype(dtype, copy=False)
        out_dim = output_shape[-1]
        if y.ndim == 1 and out_dim == 1:
            y = y.reshape(-1, 1)
        if y.ndim != 2 or y.shape[1] != out_dim:
            raise ValueError(f"{self.name}: targets of shape {y.shape} do not match the model's "
                             f"output shape (batch, {out_dim})")
        if not backend.ops.all_finite(y):
            raise ValueError(f"{self.name}: targets contain NaN or inf")
        return np.ascontiguousarray(y)

    def compute(self, y_pred, y_true, grad_out=None, fused=False, row_loss=None):
        """Sum over the batch of the per-sample loss; grad_out (optional) receives the gradient
        of the batch mean with respect to y_pred (or to the logits when ``fused``), row_loss
        (optional, float64 (n,)) each sample's loss, from the same single kernel call."""
        n = y_pred.shape[0]
        return backend.ops.elementwise_loss(y_pred, y_true, self._code, self._param,
                                            1.0 / max(n, 1), grad_out, row_loss)

    _param = 1.0

    # -- what users call ----------------------------------------------------------------
    def __call__(self, y_true, y_pred, sample_weight=None):
        """Keras semantics: the loss of each sample is reduced over the last (output) axis, so
        1-D ``y_pred`` is one sample; then ``reduction``: "sum_over_batch_size"/"mean" (sum
        of the possibly weighted per-sample losses / number of samples), "sum", or
        None/"none" (the per-sample losses). ``sample_weight``: one weight per sample."""
        y_pred = np.asarray(y_pred)
        if y_pred.dtype not in (np.float32, np.float64):
            y_pred = y_pred.astype(backend.floatx())
        unbatched = y_pred.ndim == 1
        if unbatched:
            y_pred, y_true = y_pred[None], np.asarray(y_true)[None]
        y_true = self.prepare_targets(y_true, y_pred.shape, y_pred.dtype)
        y_pred = np.ascontiguousarray(y_pred)
        n = y_pred.shape[0]
        if sample_weight is None and self.reduction not in (None, "none"):
            total = self.compute(y_pred, y_true)
            return total if self.reduction == "sum" else total / max(n, 1)
        values = np.empty(n, np.float64)  # per-sample losses, from the same kernel call
        self.compute(y_pred, y_true, row_loss=values)
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.size not in (1, n):
                raise ValueError(f"{self.name}: sample_weight of shape {w.shape} does not match "
                                 f"{n} samples")
            values = values * w.reshape(-1)
        if self.reduction in (None, "none"):
            return values[0] if unbatched else values
        total = float(values.sum())
        return total if self.reduction == "sum" else total / max(n, 1)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_ONE_UNIT_HINT = ("; a 1-unit output is a binary classifier: use loss='binary_crossentropy' "
                   "(with a sigmoid), or give the last Dense one unit per class")


def _as_array(y, name):
    try:
        y = np.asarray(y)
        if y.dtype.kind == "O" and y.ndim:  # numbers in an object array (pandas df.values)
            try:
                y = y.astype(np.float64)
            except (TypeError, ValueError):
                pass
        return y
    except ValueError as e:  # e.g. nested lists of rows of different lengths
        raise ValueError(f"{name}: targets could not be made into one array (rows of "
                         f"different lengths?): {e}") from None


def _check_output_rank(name, output_shape):
    if len(output_shape) > 2:  # y_pred (batch, units) is what the loss kernels take
        raise ValueError(f"{name}: the model outputs shape {tuple(output_shape)}; fastnn trains "
                         "models whose output is (batch, units) only: end the model with "
                         "Flatten() (and Dense), and give targets of shape (batch, units)")


def _smoothing(value, name):
    value = float(value)
    if not 0.0 <= value <= 1.0:  # beyond 1 the smoothed targets leave [0, 1]
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {value}")
    return value


def _snake(name):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class MeanSquaredError(Loss):
    """MeanSquaredError(): mean((y_pred - y_true)^2)."""
    _code = LOSS_CODES["mse"]

    def __init__(self, name="mean_squared_error", **kwargs):
        super().__init__(name=name, **kwargs)


class MeanAbsoluteError(Loss):
    """MeanAbsoluteError(): mean(|y_pred - y_true|)."""
    _code = LOSS_CODES["mae"]

    def __init__(self, name="mean_absolute_error", **kwargs):
        super().__init__(name=name, **kwargs)


class Huber(Loss):
    """Huber(delta=1.0): quadratic within delta, linear beyond."""
    _code = LOSS_CODES["huber"]

    def __init__(self, delta=1.0, name="huber_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if not delta > 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = self._param = float(delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class BinaryCrossentropy(Loss):
    """BinaryCrossentropy(from_logits=False, label_smoothing=0.0): on probabilities (clipped
    to [1e-7, 1 - 1e-7], as Keras) or, with from_logits, on logits (stable form)."""

    def __init__(self, from_logits=False, label_smoothing=0.0, name="binary_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, name)
        self._code = LOSS_CODES["bce_logits" if from_logits else "bce"]

    def prepare_targets(self, y, output_shape, dtype):
        y = super().prepare_targets(y, output_shape, dtype)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(Loss):
    """CategoricalCrossentropy(from_logits=False, label_smoothing=0.0): one-hot (or soft)
    targets. After a softmax output layer the gradient is the fused ``p - t``."""
    fuses_softmax = True

    def __init__(self, from_logits=False, label_smoothing=0.0, name="categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _smoothing(label_smoothing, name)

    def prepare_targets(self, y, output_shape, dtype):
        y_arr = _as_array(y, self.name)
        if output_shape[-1] == 1:
            if y_arr.ndim == 1:
                raise ValueError(f"{self.name}: targets of shape {y_arr.shape} for an output of 1 "
                                 f"unit{_ONE_UNIT_HINT}")
            import warnings
            warnings.warn(f"{self.name} on an output of 1 unit: the softmax/cross-entropy of one "
                          f"unit is constant, so the model cannot learn{_ONE_UNIT_HINT}",
                          UserWarning, stacklevel=3)
        if y_arr.ndim == 1 or (y_arr.ndim == 2 and y_arr.shape[1] == 1 and output_shape[-1] > 1):
            raise ValueError(
                f"{self.name}: targets of shape {y_arr.shape} look like class labels, but this loss "
                f"needs one-hot targets of shape (batch, {output_shape[-1]}); use "
                "loss='sparse_categorical_crossentropy' or fastnn.utils.to_categorical(y)")
        y = super().prepare_targets(y, output_shape, dtype)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[1]
        return y

    def compute(self, y_pred, y_true, grad_out=None, fused=False, row_loss=None):
        n = y_pred.shape[0]
        if fused or self.from_logits:
            return backend.ops.softmax_cross_entropy(y_pred, y_true, self.from_logits,
                                                     1.0 / max(n, 1), grad_out, row_loss)
        return backend.ops.elementwise_loss(y_pred, y_true, LOSS_CODES["cce"], 1.0,
                                            1.0 / max(n, 1), grad_out, row_loss)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class SparseCategoricalCrossentropy(Loss):
    """SparseCategoricalCrossentropy(from_logits=False): integer class labels. After a softmax
    output layer the gradient is the fused ``p - onehot(label)``."""
    fuses_softmax = True

    def __init__(self, from_logits=False, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)

    def prepare_targets(self, y, output_shape, dtype):
        _check_output_rank(self.name, output_shape)
        y = _as_array(y, self.name)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        n_classes = output_shape[-1]
        if y.ndim != 1:
            raise ValueError(f"{self.name}: targets must be class labels of shape (batch,), got "
                             f"shape {y.shape}; for one-hot targets use 'categorical_crossentropy'")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)):
                raise ValueError(f"{self.name}: labels contain NaN or inf")
            if np.any(y != np.round(y)):
                raise ValueError(f"{self.name}: labels must be whole numbers, got non-integer values")
        elif y.dtype.kind not in "biu":
            raise TypeError(f"{self.name}: labels must be integers, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{self.name}: labels must be in [0, {n_classes}) for an output of "
                             f"{n_classes} units; got min {y.min()}, max {y.max()}"
                             + _ONE_UNIT_HINT * (n_classes == 1))
        return np.ascontiguousarray(y, dtype=np.int64)

    def compute(self, y_pred, y_true, grad_out=None, fused=False, row_loss=None):
        n = y_pred.shape[0]
        if fused or self.from_logits:
            return backend.ops.sparse_softmax_cross_entropy(y_pred, y_true, self.from_logits,
                                                            1.0 / max(n, 1), grad_out, row_loss)
        onehot = np.zeros_like(y_pred)
        onehot[np.arange(n), y_true] = 1
        return backend.ops.elementwise_loss(y_pred, onehot, LOSS_CODES["cce"], 1.0,
                                            1.0 / max(n, 1), grad_out, row_loss)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class KLDivergence(Loss):
    """KLDivergence(): sum(t * log(t / p)) over the last axis, both clipped to [1e-7, 1]."""
    _code = LOSS_CODES["kld"]

    def __init__(self, name="kl_divergence", **kwargs):
        super().__init__(name=name, **kwargs)


class Hinge(Loss):
    """Hinge(): mean(max(1 - t * p, 0)); targets in {0, 1} are mapped to {-1, 1}, as Keras."""
    _code = LOSS_CODES["hinge"]

    def __init__(self, name="hinge", **kwargs):
        super().__init__(name=name, **kwargs)

    def prepare_targets(self, y, output_shape, dtype):
        y = super().prepare_targets(y, output_shape, dtype)
        if np.all((y == 0) | (y == 1)):
            y = 2 * y - 1
        return y


_BY_NAME = {
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "huber": Huber, "huber_loss": Huber,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "kl_divergence": KLDivergence, "kld": KLDivergence, "kullback_leibler_divergence": KLDivergence,
    "hinge": Hinge,
}
for _cls in (MeanSquaredError, MeanAbsoluteError, Huber, BinaryCrossentropy, CategoricalCrossentropy,
             SparseCategoricalCrossentropy, KLDivergence, Hinge):
    _BY_NAME[_cls.__name__] = _cls


def _function(cls, name):
    def fn(y_true, y_pred, **kwargs):
        return cls(reduction=None, **kwargs)(y_true, y_pred)
    fn.__name__ = name
    fn.__doc__ = (f"{name}(y_true, y_pred): the {cls.__name__} of each sample, as Keras' loss "
                  "functions (an array of shape y_pred.shape[:-1]).")
    fn._fastnn_loss = cls
    return fn


mean_squared_error = mse = _function(MeanSquaredError, "mean_squared_error")
mean_absolute_error = mae = _function(MeanAbsoluteError, "mean_absolute_error")
huber = _function(Huber, "huber")
binary_crossentropy = _function(BinaryCrossentropy, "binary_crossentropy")
categorical_crossentropy = _function(CategoricalCrossentropy, "categorical_crossentropy")
sparse_categorical_crossentropy = _function(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")
kl_divergence = kld = _function(KLDivergence, "kl_divergence")
hinge = _function(Hinge, "hinge")


def _check_trainable(loss):
    # A Keras-style subclass implementing only call(y_true, y_pred) (HOML ch. 12's HuberLoss):
    # fastnn needs the gradient too, which only its own kernels (compute) provide.
    if type(loss).compute is Loss.compute and not hasattr(loss, "_code"):
        raise TypeError(f"{type(loss).__name__}: fastnn cannot train with a Loss subclass that only "
                        "defines call(): it has no automatic differentiation. Subclass one of "
                        "fastnn's losses (e.g. Huber) or implement compute(y_pred, y_true, "
                        "grad_out, fused) returning the summed loss and writing its gradient")
    return loss


def get(identifier):
    """Resolve a name, a Loss, a class, a config dict or one of this module's functions."""
    if isinstance(identifier, Loss):
        return _check_trainable(identifier)
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown loss {identifier!r}. Known: "
                             f"{sorted(k for k in _BY_NAME if k[0].islower())}")
        return _BY_NAME[identifier]()
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        if identifier.get("class_name") not in _BY_NAME:
            raise ValueError(f"Unknown loss {identifier.get('class_name')!r} in {identifier!r}: "
                             "expected {'class_name': <a fastnn loss>, 'config': {...}}")
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    if callable(identifier) and hasattr(identifier, "_fastnn_loss"):
        return identifier._fastnn_loss()
    if identifier is None:
        raise ValueError("compile() needs a loss, e.g. loss='sparse_categorical_crossentropy'")
    raise TypeError(f"Could not interpret loss {identifier!r}: fastnn needs one of its own losses "
                    "(a name, a fastnn.losses class or function); it has no automatic "
                    "differentiation, so a custom Python loss function cannot be trained")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
