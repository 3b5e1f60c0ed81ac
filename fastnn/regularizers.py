"""Weight regularizers (Keras 3): the penalty is added to the reported loss and its gradient
to the weights' gradients before each optimizer step."""
import numpy as np

from . import backend


class Regularizer:
    """Base class: ``reg(w)`` is the penalty; ``add_gradient(w, grad)`` adds d penalty / dw."""

    def __call__(self, w):
        raise NotImplementedError

    def add_gradient(self, w, grad):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """L1L2(l1=0.0, l2=0.0): penalty l1 * sum|w| + l2 * sum(w^2)."""

    def __init__(self, l1=0.0, l2=0.0):
        for name, v in (("l1", l1), ("l2", l2)):
            if not np.isfinite(v) or v < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a finite number >= 0, got {v}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, w):
        w = np.asarray(w)
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            total += self.l2 * backend.ops.sum_squares(w)
        return total

    def add_gradient(self, w, grad):
        if self.l2:
            grad += (2.0 * self.l2) * w
        if self.l1:
            grad += self.l1 * np.sign(w)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """L1(l1=0.01): penalty l1 * sum|w|."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """L2(l2=0.01): penalty l2 * sum(w^2)."""

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
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise TypeError(f"Could not interpret regularizer {identifier!r}")


def serialize(reg):
    if reg is None:
        return None
    return {"class_name": type(reg).__name__, "config": reg.get_config()}
