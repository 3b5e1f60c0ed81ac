"""The Optimizer base class: learning rate (float, schedule or callable), iteration count,
per-variable state allocated once, gradient clipping, weight decay and constraints.

Subclasses implement ``build_variable(var)`` (return a dict of state arrays) and
``update(var, grad, state, lr)`` (one in-place C kernel call). The order of one step is
Keras 3's: clip gradients, apply weight decay, update, apply constraints, count the step.
"""
import numpy as np

from .. import backend
from .schedules import LearningRateSchedule


class Optimizer:
    """Optimizer(learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
    global_clipnorm=None, name=None)"""

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        for k in ("use_ema", "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                  "gradient_accumulation_steps"):
            if kwargs.pop(k, None) not in (None, False):
                raise NotImplementedError(f"{type(self).__name__}: {k} is not supported by fastnn")
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("Only one of clipnorm and global_clipnorm can be set")
        for key, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                       ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if v is not None and not (np.isfinite(v) and v >= 0):
                raise ValueError(f"{type(self).__name__}: {key} must be a finite number >= 0, got {v}")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.learning_rate = learning_rate
        self.iterations = 0
        self._state = {}  # id(variable) -> dict of state arrays

    # -- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The current learning rate as a float (a schedule is evaluated at ``iterations``)."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule) or callable(lr):
            return float(lr(self.iterations))
        return lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
            return
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"learning_rate must be a number, a schedule or a callable, got {value!r}")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"learning_rate must be a finite number >= 0, got {value}")
        self._learning_rate = value

    lr = learning_rate

    # -- state --------------------------------------------------------------------------
    def build(self, variables):
        """Allocate state for each variable not seen before (idempotent)."""
        for v in variables:
            if id(v) not in self._state:
                self._state[id(v)] = self.build_variable(v)

    def build_variable(self, var):
        return {}

    def state_of(self, var):
        return self._state.get(id(var))

    # -- one step -----------------------------------------------------------------------
    def apply(self, variables):
        """One optimizer step on ``variables`` using each one's ``.grad``."""
        if len(self._state) < len(variables):
            self.build(variables)
        lr = self.learning_rate
        self._clip(variables)
        if self.weight_decay:
            wd = float(self.weight_decay) * lr
            for v in variables:
                v.value -= v.value * v.value.dtype.type(wd)
        for v in variables:
            self.update(v, v.grad, self._state[id(v)], lr)
        for v in variables:
            if v.constraint is not None:
                v.constraint.apply_(v.value)
        self.iterations += 1

    def _clip(self, variables):
        ops = backend.ops
        if self.clipnorm is not None:
            for v in variables:
                norm = np.sqrt(ops.sum_squares(v.grad))
                if norm > self.clipnorm:
                    v.grad *= v.grad.dtype.type(self.clipnorm / norm)
        if self.global_clipnorm is not None:
            norm = np.sqrt(sum(ops.sum_squares(v.grad) for v in variables))
            if norm > self.global_clipnorm:
                scale = self.global_clipnorm / norm
                for v in variables:
                    v.grad *= v.grad.dtype.type(scale)
        if self.clipvalue is not None:
            for v in variables:
                np.clip(v.grad, -self.clipvalue, self.clipvalue, out=v.grad)

    def update(self, var, grad, state, lr):
        raise NotImplementedError

    # -- config -------------------------------------------------------------------------
    def get_config(self):
        from . import schedules
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            lr = float(lr(self.iterations))
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        from . import schedules
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)
