"""Lamb (You et al., 2019): Adam with a per-variable trust ratio, for large batches."""
import numpy as np

from .. import backend
from .adam import _check_betas
from .base import Optimizer


class Lamb(Optimizer):
    """Lamb(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
    clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
    ema_overwrite_frequency=None, gradient_accumulation_steps=None, name="lamb")

    Keras 3's rule at step t (slots ``"momentum"``, ``"velocity"``); the norms are over the
    whole variable, so a C call makes two passes (moments and norms, then the step)::

        m = m + (g - m) * (1 - beta_1);  v = v + (g^2 - v) * (1 - beta_2)
        u = (m / (1 - beta_1^t)) / (sqrt(v / (1 - beta_2^t)) + epsilon)
        ratio = ||w|| / ||u||  (1 when either norm is 0)
        w = w - ratio * lr * u
    """

    fuses_clip_and_decay = True
    elementwise = False  # the trust ratio is per variable: packed runs are not one variable

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="lamb", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Lamb", beta_1, beta_2, epsilon)

    def build_variable(self, var):
        return {"momentum": np.zeros_like(var.value), "velocity": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.lamb_update(var.value, grad, state["momentum"], state["velocity"], lr,
                                self.beta_1, self.beta_2, self.epsilon, self.iterations + 1,
                                weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
