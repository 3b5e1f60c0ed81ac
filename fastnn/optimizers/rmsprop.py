"""RMSprop (plain, with momentum, centered): compile()'s default optimizer."""
import numpy as np

from .. import backend
from .base import Optimizer


class RMSprop(Optimizer):
    """RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
    weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="rmsprop")

    Keras 3's rule (slots ``"velocity"``, ``"momentum"`` when momentum > 0,
    ``"average_gradient"`` when centered); epsilon is inside the square root::

        v = rho * v + (1 - rho) * g^2
        a = rho * a + (1 - rho) * g                            (centered)
        inc = lr * g / sqrt(v - a^2 + epsilon)   or   lr * g / sqrt(v + epsilon)
        mom = momentum * mom + inc;  w = w - mom              (momentum > 0)
        w = w - inc                                            (otherwise)
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not 0 <= rho <= 1:
            raise ValueError(f"RMSprop: rho must be in [0, 1], got {rho}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"RMSprop: momentum must be in [0, 1], got {momentum}")
        if not epsilon >= 0:
            raise ValueError(f"RMSprop: epsilon must be >= 0, got {epsilon}")
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def build_variable(self, var):
        state = {"velocity": np.zeros_like(var.value)}
        if self.momentum > 0:
            state["momentum"] = np.zeros_like(var.value)
        if self.centered:
            state["average_gradient"] = np.zeros_like(var.value)
        return state

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.rmsprop_update(var.value, grad, state["velocity"], state.get("momentum"),
                                   state.get("average_gradient"), lr, self.rho, self.momentum,
                                   self.epsilon, weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
