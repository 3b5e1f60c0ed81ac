"""SGD, with optional momentum and Nesterov momentum."""
import numpy as np

from .. import backend
from .base import Optimizer


class SGD(Optimizer):
    """SGD(learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
    clipvalue=None, global_clipnorm=None, name="SGD")

    Keras 3's rule, one fused C pass per variable (state slot ``"momentum"``)::

        momentum == 0:  w = w - lr * g
        otherwise:      v = momentum * v - lr * g
                        w = w + v                        (plain)
                        w = w + momentum * v - lr * g    (nesterov)
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build_variable(self, var):
        return {"momentum": np.zeros_like(var.value)} if self.momentum else {}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.sgd_update(var.value, grad, state.get("momentum"), lr, self.momentum,
                               self.nesterov, weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
