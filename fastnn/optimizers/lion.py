"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms")."""
import numpy as np

from .. import backend
from .base import Optimizer


class Lion(Optimizer):
    """Lion(learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, clipnorm=None,
    clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
    ema_overwrite_frequency=None, gradient_accumulation_steps=None, name="lion")

    Keras 3's rule, one fused C pass per variable (slot ``"momentum"``); the step has the
    same size lr for every element, so Lion wants a learning rate 3-10x smaller than
    AdamW's (and a weight decay 3-10x larger)::

        w = w - lr * sign(beta_1 * m + (1 - beta_1) * g)
        m = beta_2 * m + (1 - beta_2) * g
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="lion", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not 0 < beta_1 <= 1:  # Keras: beta_1 = 0 would be SignSGD
            raise ValueError(f"Lion: beta_1 must be in (0, 1] (0 degenerates to SignSGD), "
                             f"got {beta_1}")
        if not 0 <= beta_2 <= 1:
            raise ValueError(f"Lion: beta_2 must be in [0, 1], got {beta_2}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def build_variable(self, var):
        return {"momentum": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.lion_update(var.value, grad, state["momentum"], lr, self.beta_1, self.beta_2,
                                weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
