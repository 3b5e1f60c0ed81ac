"""Weight constraints (Keras 3), applied in place to a variable after each optimizer step."""
import numpy as np

_EPS = 1e-7  # Keras' epsilon in the norm constraints


class Constraint:
    """Base class: ``c(w)`` returns the projected weights; ``apply_(w)`` projects in place."""

    def __call__(self, w):
        w = np.array(w, copy=True)
        self.apply_(w)
        return w

    def apply_(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _norms(w, axis):
    return np.sqrt(np.sum(np.square(w, dtype=np.float64), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """MaxNorm(max_value=2, axis=0): each column (an output unit's incoming weights, axis=0)
    is rescaled so its L2 norm is at most max_value."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = float(max_value), axis

    def apply_(self, w):
        norms = _norms(w, self.axis)
        desired = np.clip(norms, 0, self.max_value)
        w *= (desired / (_EPS + norms)).astype(w.dtype)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """NonNeg(): negative weights set to zero."""

    def apply_(self, w):
        np.maximum(w, 0, out=w)


class UnitNorm(Constraint):
    """UnitNorm(axis=0): each column rescaled to unit L2 norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def apply_(self, w):
        w /= (_EPS + _norms(w, self.axis)).astype(w.dtype)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0): column norms pulled into
    [min_value, max_value] at the given rate."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def apply_(self, w):
        norms = _norms(w, self.axis)
        desired = self.rate * np.clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        w *= (desired / (_EPS + norms)).astype(w.dtype)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
_BY_NAME = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
            "min_max_norm": MinMaxNorm, "MaxNorm": MaxNorm, "NonNeg": NonNeg,
            "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm}


def get(identifier):
    """Resolve None, a name, a config dict or a Constraint."""
    if identifier is None or isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _BY_NAME:
            raise ValueError(f"Unknown constraint {identifier!r}. Known: {sorted(set(_BY_NAME) - set(c.__name__ for c in _BY_NAME.values()))}")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        return _BY_NAME[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise TypeError(f"Could not interpret constraint {identifier!r}")


def serialize(c):
    if c is None:
        return None
    return {"class_name": type(c).__name__, "config": c.get_config()}
