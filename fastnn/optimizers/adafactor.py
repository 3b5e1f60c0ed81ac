"""Adafactor (Shazeer & Stern, 2018): factored second moments, memory O(rows + cols)."""
import numpy as np

from .. import backend
from .base import Optimizer


class Adafactor(Optimizer):
    """Adafactor(learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
    clip_threshold=1.0, relative_step=True, weight_decay=None, clipnorm=None, clipvalue=None,
    global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
    gradient_accumulation_steps=None, name="adafactor")

    Keras 3's rule at step t. A variable of rank >= 2 (a Dense kernel) keeps row and column
    statistics of its last two axes, slots ``"r"`` (shape[:-1]) and ``"c"`` (shape[:-2] +
    shape[-1:]); one of rank < 2 keeps the full ``"velocity"``. With G = g^2 + epsilon_1 and
    beta = 1 - t^beta_2_decay::

        r = beta * r + (1 - beta) * mean(G, axis=-1)
        c = beta * c + (1 - beta) * mean(G, axis=-2)
        v = (r / mean(r))[:, None] * c[None, :]        (rank < 2: v = beta v + (1 - beta) G)
        u = g / sqrt(v);  u = u / max(1, rms(u) / clip_threshold)
        w = w - max(epsilon_2, rms(w)) * min(lr, 1 / sqrt(t)) * u

    Keras keeps v for a factored variable too, but only ever recomputes it from r and c:
    fastnn does not store it (the point of Adafactor is the memory it saves). Keras'
    ``relative_step`` caps the rate at 1/sqrt(t), which the rule above does in every case,
    so it is kept for the config only. Unlike the other optimizers, this one's state is not
    flushed below the smallest normal number: epsilon_1 keeps it away from zero.
    """

    fuses_clip_and_decay = True
    elementwise = False  # rms(w), rms(u) and the row/column statistics are per variable

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
                 clip_threshold=1.0, relative_step=True, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="adafactor", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        for key, value in (("epsilon_1", epsilon_1), ("epsilon_2", epsilon_2)):
            if not value >= 0:
                raise ValueError(f"Adafactor: {key} must be >= 0, got {value}")
        if not clip_threshold > 0:
            raise ValueError(f"Adafactor: clip_threshold must be > 0, got {clip_threshold}")
        self.beta_2_decay = float(beta_2_decay)
        self.epsilon_1, self.epsilon_2 = float(epsilon_1), float(epsilon_2)
        self.clip_threshold = float(clip_threshold)
        self.relative_step = bool(relative_step)

    def build_variable(self, var):
        value = var.value
        if value.ndim >= 2:
            return {"r": np.zeros(value.shape[:-1], value.dtype),
                    "c": np.zeros(value.shape[:-2] + value.shape[-1:], value.dtype)}
        return {"velocity": np.zeros_like(value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.adafactor_update(var.value, grad, state.get("r"), state.get("c"),
                                     state.get("velocity"), lr, self.beta_2_decay, self.epsilon_1,
                                     self.epsilon_2, self.clip_threshold, self.iterations + 1,
                                     weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1, "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold, "relative_step": self.relative_step}
