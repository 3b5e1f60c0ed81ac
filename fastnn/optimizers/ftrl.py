"""FTRL-Proximal ("Follow The Regularized Leader", McMahan et al., 2013)."""
import numpy as np

from .. import backend
from .base import Optimizer


class Ftrl(Optimizer):
    """Ftrl(learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
    l1_regularization_strength=0.0, l2_regularization_strength=0.0,
    l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None, clipnorm=None,
    clipvalue=None, global_clipnorm=None, use_ema=False, ema_momentum=0.99,
    ema_overwrite_frequency=None, gradient_accumulation_steps=None, name="ftrl")

    Keras 3's rule (slots ``"accumulator"``, starting at initial_accumulator_value, and
    ``"linear"``); with p = -learning_rate_power::

        n_new = n + g^2
        z = z + (g + 2 * l2_shrinkage * w) - (n_new^p - n^p) / lr * w
        w = (clip(z, -l1, l1) - z) / (n_new^p / lr + 2 * (l2 + beta / (2 * lr)))
        n = n_new

    so an element whose |z| stays below l1 is exactly 0 (sparse models).
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="ftrl", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        checks = (("initial_accumulator_value", initial_accumulator_value, "positive or zero"),
                  ("l1_regularization_strength", l1_regularization_strength, "positive or zero"),
                  ("l2_regularization_strength", l2_regularization_strength, "positive or zero"),
                  ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength,
                   "positive or zero"))
        for key, value, what in checks:
            if not value >= 0:
                raise ValueError(f"Ftrl: {key} needs to be {what}, got {value}")
        if not learning_rate_power <= 0:
            raise ValueError(f"Ftrl: learning_rate_power needs to be negative or zero, got "
                             f"{learning_rate_power}")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def build_variable(self, var):
        return {"accumulator": np.full_like(var.value, self.initial_accumulator_value),
                "linear": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.ftrl_update(var.value, grad, state["accumulator"], state["linear"], lr,
                                self.learning_rate_power, self.l1_regularization_strength,
                                self.l2_regularization_strength,
                                self.l2_shrinkage_regularization_strength, self.beta,
                                weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
