"""Weight and activity regularizers (Keras 3 names and formulas).

The penalty is added to the reported loss and its gradient to the weights' gradients before
each optimizer step; for ``L1``/``L2``/``L1L2`` both come from one C pass over the weights
(``backend.ops.l1_l2_penalty``: the penalty summed in float64 in a fixed order, and
``grad += l1 * sign(w) + 2 * l2 * w`` in the same loop).

Activity regularizers (``Dense(activity_regularizer=...)``) follow Keras 3: the penalty of a
layer's output is divided by the batch size, added to the loss in training and evaluation,
and its gradient is added to the gradient flowing into the layer's output.
"""
import math

import numpy as np

from . import backend


class Regularizer:
    """Base class: ``reg(w)`` is the penalty; ``add_gradient(w, grad, scale=1.0)`` adds
    ``scale * d penalty / dw`` to ``grad``. A user regularizer implements both;
    ``penalty_and_gradient`` (one call per step) combines them."""

    def __call__(self, w):
        raise NotImplementedError

    def add_gradient(self, w, grad, scale=1.0):
        raise NotImplementedError(
            f"{type(self).__name__} has no add_gradient(w, grad, scale=1.0): fastnn needs the "
            "penalty's gradient to train with it")

    def penalty_and_gradient(self, w, grad, scale=1.0):
        """Returns scale * penalty(w) and adds scale * its gradient to ``grad``."""
        if scale == 1.0:  # user regularizers may implement add_gradient(w, grad) only
            self.add_gradient(w, grad)
        else:
            self.add_gradient(w, grad, scale)
        return scale * float(self(w))

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _factor(name, v, cls):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{cls}: {name} must be a number >= 0, got {v!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{cls}: {name} must be a finite number >= 0, got {v}")
    return v


class L1L2(Regularizer):
    """L1L2(l1=0.0, l2=0.0): penalty ``l1 * sum(|w|) + l2 * sum(w ** 2)``; gradient
    ``l1 * sign(w) + 2 * l2 * w`` (sign(0) = 0)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _factor("l1", l1, type(self).__name__)
        self.l2 = _factor("l2", l2, type(self).__name__)

    def __call__(self, w):
        w = np.asarray(w)
        if w.dtype not in (np.float32, np.float64):
            w = w.astype(np.float64)
        return backend.ops.l1_l2_penalty(w, self.l1, self.l2)

    def add_gradient(self, w, grad, scale=1.0):
        backend.ops.l1_l2_penalty(w, self.l1, self.l2, scale, grad)

    def penalty_and_gradient(self, w, grad, scale=1.0):
        return backend.ops.l1_l2_penalty(w, self.l1, self.l2, scale, grad)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """L1(l1=0.01): penalty ``l1 * sum(|w|)``."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """L2(l2=0.01): penalty ``l2 * sum(w ** 2)``."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """Resolve None, a name ('l1', 'l2', 'l1_l2'), a config dict or a Regularizer."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown regularizer {identifier!r}. Known: l1, l2, l1_l2")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _BY_NAME:
            raise ValueError(f"Unknown regularizer class {name!r}. Known: L1, L2, L1L2")
        return _BY_NAME[name].from_config(identifier.get("config", {}))
    raise TypeError(f"Could not interpret regularizer {identifier!r}")


def serialize(reg):
    if reg is None:
        return None
    return {"class_name": type(reg).__name__, "config": reg.get_config()}


# ---- activity regularization (used by Dense and DropConnectDense) -------------------------
def activity_penalty(reg, y):
    """Keras 3: the regularizer's penalty of the layer output ``y``, divided by the batch size."""
    n = y.shape[0] if y.ndim else 1
    return float(reg(y)) / max(n, 1)


def add_activity_gradient(layer, dy, y, fused_activation=None):
    """``dy`` plus the gradient of ``activity_penalty(reg, y)`` (in one of the layer's buffers).

    ``fused_activation``: when ``dy`` is already the gradient with respect to the
    pre-activation (softmax + cross-entropy fused), the penalty's gradient is carried through
    that activation's derivative first."""
    y2 = y.reshape(y.shape[0], -1)
    g = layer._buffer("activity_grad", y2.shape)
    g[...] = 0
    reg, inv_n = layer.activity_regularizer, 1.0 / max(y2.shape[0], 1)
    if isinstance(reg, L1L2):
        reg.add_gradient(y2, g, inv_n)  # scaled inside the C pass
    else:  # a user regularizer: add_gradient(w, grad) into zeros, then scale
        reg.add_gradient(y2, g)
        g *= g.dtype.type(inv_n)
    if fused_activation is not None:
        act = fused_activation
        backend.ops.act_backward(g, None, y2, act.code, act.alpha, g)
    out = layer._buffer("activity_dy", y2.shape)
    np.add(dy.reshape(y2.shape), g, out=out)
    return out.reshape(dy.shape)
