"""Adagrad."""
import numpy as np

from .. import backend
from .base import Optimizer


class Adagrad(Optimizer):
    """Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
    weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adagrad")

    Keras 3's rule (slot ``"accumulator"``, starting at initial_accumulator_value); epsilon
    is inside the square root::

        acc = acc + g^2
        w = w - lr * g / sqrt(acc + epsilon)
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not initial_accumulator_value >= 0:
            raise ValueError(f"Adagrad: initial_accumulator_value must be >= 0, got "
                             f"{initial_accumulator_value}")
        if not epsilon >= 0:
            raise ValueError(f"Adagrad: epsilon must be >= 0, got {epsilon}")
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def build_variable(self, var):
        return {"accumulator": np.full_like(var.value, self.initial_accumulator_value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.adagrad_update(var.value, grad, state["accumulator"], lr, self.epsilon,
                                   weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
