"""Adadelta (Zeiler, 2012)."""
import numpy as np

from .. import backend
from .base import Optimizer


class Adadelta(Optimizer):
    """Adadelta(learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, clipnorm=None,
    clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
    ema_overwrite_frequency=None, gradient_accumulation_steps=None, name="adadelta")

    Keras 3's rule (slots ``"accumulated_grad"`` and ``"accumulated_delta_var"``); epsilon
    is inside both square roots, and the learning rate scales the step (1.0 is the paper's
    form)::

        a = rho * a + (1 - rho) * g^2
        delta = -sqrt(d + epsilon) * g / sqrt(a + epsilon)
        d = rho * d + (1 - rho) * delta^2
        w = w + lr * delta

    This equals ``torch.optim.Adadelta``.
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="adadelta", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not 0 <= rho <= 1:
            raise ValueError(f"Adadelta: rho must be in [0, 1], got {rho}")
        if not epsilon >= 0:
            raise ValueError(f"Adadelta: epsilon must be >= 0, got {epsilon}")
        self.rho, self.epsilon = float(rho), float(epsilon)

    def build_variable(self, var):
        return {"accumulated_grad": np.zeros_like(var.value),
                "accumulated_delta_var": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.adadelta_update(var.value, grad, state["accumulated_grad"],
                                    state["accumulated_delta_var"], lr, self.rho, self.epsilon,
                                    weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
