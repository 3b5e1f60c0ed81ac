"""Weight constraints (Keras 3 names and formulas), applied in place to a variable after each
optimizer step by one C pass (``backend.ops.norm_constraint`` / ``backend.ops.non_neg``).

The norm constraints work on the L2 norm along ``axis`` (``axis=0`` of a Dense kernel of
shape (input_dim, units): each output unit's incoming weights), with Keras' epsilon 1e-7:
``w * desired / (1e-7 + norm)``. The factor is computed in float64 and rounded once to the
weight's dtype, so a MaxNorm column ends within a few ulps of ``max_value``.
"""
import math

import numpy as np

from . import backend


class Constraint:
    """Base class: ``c(w)`` returns the projected weights; ``apply_(w)`` projects in place
    (what the optimizer calls)."""

    def __call__(self, w):
        w = np.array(w, copy=True)
        if w.dtype not in (np.float32, np.float64):
            w = w.astype(np.float64)
        self.apply_(w)
        return w

    def apply_(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _axis(axis, cls):
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise NotImplementedError(f"{cls}: fastnn supports one axis, got axis={axis}")
        axis = axis[0]
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise ValueError(f"{cls}: axis must be an integer, got {axis!r}")
    return int(axis)


def _number(name, v, cls):
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{cls}: {name} must be a number, got {v!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{cls}: {name} must be a finite number >= 0, got {v}")
    return v


class MaxNorm(Constraint):
    """MaxNorm(max_value=2, axis=0): each slice along ``axis`` (a column of a Dense kernel) is
    rescaled so its L2 norm is at most ``max_value``: ``w * clip(norm, 0, max_value) /
    (1e-7 + norm)``."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number("max_value", max_value, "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def apply_(self, w):
        backend.ops.norm_constraint(w, 0.0, self.max_value, 1.0, False, self.axis)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """NonNeg(): negative weights set to zero."""

    def apply_(self, w):
        backend.ops.non_neg(w)


class UnitNorm(Constraint):
    """UnitNorm(axis=0): each slice along ``axis`` rescaled to unit L2 norm:
    ``w / (1e-7 + norm)``."""

    def __init__(self, axis=0):
        self.axis = _axis(axis, "UnitNorm")

    def apply_(self, w):
        backend.ops.norm_constraint(w, 1.0, 1.0, 1.0, True, self.axis)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """MinMaxNorm(min_value=0.0, max_value=1.0, rate=1.0, axis=0): norms pulled into
    [min_value, max_value] at the given rate: ``w * (rate * clip(norm, min_value, max_value)
    + (1 - rate) * norm) / (1e-7 + norm)``."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number("min_value", min_value, "MinMaxNorm")
        self.max_value = _number("max_value", max_value, "MinMaxNorm")
        if self.min_value > self.max_value:
            raise ValueError(f"MinMaxNorm: min_value ({min_value}) must be <= max_value ({max_value})")
        self.rate = _number("rate", rate, "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")

    def apply_(self, w):
        backend.ops.norm_constraint(w, self.min_value, self.max_value, self.rate, False, self.axis)

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
            raise ValueError(f"Unknown constraint {identifier!r}. Known: max_norm, non_neg, "
                             "unit_norm, min_max_norm")
        return _BY_NAME[identifier]()
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        if name not in _BY_NAME:
            raise ValueError(f"Unknown constraint class {name!r}. Known: MaxNorm, NonNeg, "
                             "UnitNorm, MinMaxNorm")
        return _BY_NAME[name].from_config(identifier.get("config", {}))
    raise TypeError(f"Could not interpret constraint {identifier!r}")


def serialize(c):
    if c is None:
        return None
    return {"class_name": type(c).__name__, "config": c.get_config()}
