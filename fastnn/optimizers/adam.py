"""The Adam family: Adam (with AMSGrad), AdamW, Adamax and Nadam, Keras 3's rules."""
import numpy as np

from .. import backend
from .base import Optimizer


def _check_betas(name, beta_1, beta_2, epsilon):
    for key, b in (("beta_1", beta_1), ("beta_2", beta_2)):
        if not 0 <= b < 1:
            raise ValueError(f"{name}: {key} must be in [0, 1), got {b}")
    if not epsilon >= 0:
        raise ValueError(f"{name}: epsilon must be >= 0, got {epsilon}")
    return float(beta_1), float(beta_2), float(epsilon)


class Adam(Optimizer):
    """Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
    weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adam")

    Keras 3's rule at step t = iterations + 1 (slots ``"momentum"``, ``"velocity"`` and, with
    amsgrad, ``"velocity_hat"``); epsilon is Keras' "epsilon hat", outside the bias
    correction::

        m = m + (g - m) * (1 - beta_1)
        v = v + (g^2 - v) * (1 - beta_2)
        v_hat = max(v_hat, v)                                  (amsgrad)
        alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        w = w - m * alpha / (sqrt(v or v_hat) + epsilon)
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas(type(self).__name__, beta_1, beta_2,
                                                              epsilon)
        self.amsgrad = bool(amsgrad)

    def build_variable(self, var):
        state = {"momentum": np.zeros_like(var.value), "velocity": np.zeros_like(var.value)}
        if self.amsgrad:
            state["velocity_hat"] = np.zeros_like(var.value)
        return state

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.adam_update(var.value, grad, state["momentum"], state["velocity"],
                                state.get("velocity_hat"), lr, self.beta_1, self.beta_2,
                                self.epsilon, self.iterations + 1, weight_decay, grad_scale,
                                clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW(learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
    amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adamw")

    Adam with decoupled weight decay (Loshchilov & Hutter), as Keras 3: before the Adam
    update, ``w = w - w * weight_decay * lr`` (fused into the same C pass). This is also
    ``torch.optim.AdamW``'s rule.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="adamw", **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a number (AdamW without weight decay is "
                             "Adam), got None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)


class Adamax(Optimizer):
    """Adamax(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
    clipnorm=None, clipvalue=None, global_clipnorm=None, name="adamax")

    Keras 3's rule at step t (slots ``"momentum"`` and ``"norm"``)::

        m = m + (g - m) * (1 - beta_1)
        u = max(beta_2 * u, |g|)
        w = w - lr * m / ((1 - beta_1^t) * (u + epsilon))
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="adamax", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Adamax", beta_1, beta_2, epsilon)

    def build_variable(self, var):
        return {"momentum": np.zeros_like(var.value), "norm": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.adamax_update(var.value, grad, state["momentum"], state["norm"], lr,
                                  self.beta_1, self.beta_2, self.epsilon, self.iterations + 1,
                                  weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Nadam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None,
    clipnorm=None, clipvalue=None, global_clipnorm=None, name="nadam")

    Keras 3's rule (Dozat's momentum schedule) at step t (slots ``"momentum"``,
    ``"velocity"``)::

        u_t = beta_1 * (1 - 0.5 * 0.96^t),  u_product = u_1 * ... * u_t
        m = m + (g - m) * (1 - beta_1);  v = v + (g^2 - v) * (1 - beta_2)
        m_hat = u_{t+1} * m / (1 - u_product * u_{t+1}) + (1 - u_t) * g / (1 - u_product)
        w = w - m_hat * lr / (sqrt(v / (1 - beta_2^t)) + epsilon)

    ``u_product`` is a function of ``iterations`` alone, so it is recomputed (not stored)
    whenever ``iterations`` is set, e.g. when a saved model is restored. This equals
    ``torch.optim.NAdam(momentum_decay=1.0)``.
    """

    fuses_clip_and_decay = True
    elementwise = True

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 name="nadam", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = _check_betas("Nadam", beta_1, beta_2, epsilon)
        self._u_product, self._u_step = 1.0, 0

    def _u(self, t):
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _u_product_at(self, step):
        """u_1 * ... * u_step: the kept product when it is at ``step``, else recomputed (the
        step count was set from outside), multiplied in the same order either way."""
        if self._u_step == step:
            return self._u_product
        product = 1.0
        for s in range(1, step + 1):
            product *= self._u(s)
        return product

    def _prepare_step(self):
        t = self.iterations + 1
        self._u_product = self._u_product_at(t - 1) * self._u(t)
        self._u_step = t

    def build_variable(self, var):
        return {"momentum": np.zeros_like(var.value), "velocity": np.zeros_like(var.value)}

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        backend.ops.nadam_update(var.value, grad, state["momentum"], state["velocity"], lr,
                                 self.beta_1, self.beta_2, self.epsilon, self.iterations + 1,
                                 self._u_product, weight_decay, grad_scale, clipvalue)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
