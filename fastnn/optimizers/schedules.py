"""Learning-rate schedules: callables from the step number (``optimizer.iterations``) to a
learning rate, with Keras 3 names, arguments and formulas, plus fastnn's ``OneCycle``.

Each is evaluated in float64 on the Python side once per optimizer step (the result is a
plain float passed to the C update), and round-trips through ``get_config`` /
``from_config`` and ``serialize`` / ``deserialize``.
"""
import math


class LearningRateSchedule:
    """Base class: ``schedule(step)`` returns the learning rate at that step. Subclass it
    and implement ``__call__`` and ``get_config``."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def _positive(cls, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or not math.isfinite(value):
        raise ValueError(f"{cls}: {key} must be a finite number > 0, got {value!r}")
    return value


def _nonneg(cls, key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
            or not math.isfinite(value):
        raise ValueError(f"{cls}: {key} must be a finite number >= 0, got {value!r}")
    return value


def _step(step):
    return float(step)


class _RateDecay(LearningRateSchedule):
    """What ExponentialDecay and InverseTimeDecay share: their arguments and the progress
    ``step / decay_steps`` (floored with ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        cls = type(self).__name__
        self.initial_learning_rate = _nonneg(cls, "initial_learning_rate", initial_learning_rate)
        self.decay_steps = _positive(cls, "decay_steps", decay_steps)
        self.decay_rate = _nonneg(cls, "decay_rate", decay_rate)
        self.staircase = bool(staircase)
        self.name = name or cls

    def _progress(self, step):
        p = _step(step) / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class ExponentialDecay(_RateDecay):
    """ExponentialDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False,
    name="ExponentialDecay")

    ``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase`` the
    exponent is ``floor(step / decay_steps)``.
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class PiecewiseConstantDecay(LearningRateSchedule):
    """PiecewiseConstantDecay(boundaries, values, name="PiecewiseConstant")

    Step decay: ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after the last boundary.
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        boundaries, values = list(boundaries), list(values)
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: values must have one more element than "
                             f"boundaries, got {len(values)} values and {len(boundaries)} "
                             "boundaries")
        if any(b2 < b1 for b1, b2 in zip(boundaries, boundaries[1:])):
            raise ValueError(f"PiecewiseConstantDecay: boundaries must be increasing, got "
                             f"{boundaries}")
        self.boundaries, self.values, self.name = boundaries, values, name

    def __call__(self, step):
        step = _step(step)
        for b, v in zip(self.boundaries, self.values):
            if step <= b:
                return v
        return self.values[-1]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values),
                "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """PolynomialDecay(initial_learning_rate, decay_steps, end_learning_rate=0.0001,
    power=1.0, cycle=False, name="PolynomialDecay")

    ``(initial - end) * (1 - step / decay_steps) ** power + end`` with step capped at
    decay_steps; with ``cycle``, decay_steps is multiplied by ``ceil(step / decay_steps)``
    (1 at step 0) instead of capping.
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = _nonneg("PolynomialDecay", "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _positive("PolynomialDecay", "decay_steps", decay_steps)
        self.end_learning_rate = _nonneg("PolynomialDecay", "end_learning_rate",
                                         end_learning_rate)
        self.power = power
        self.cycle = bool(cycle)
        self.name = name

    def __call__(self, step):
        step = _step(step)
        decay_steps = float(self.decay_steps)
        if self.cycle:
            multiplier = 1.0 if step == 0 else math.ceil(step / decay_steps)
            decay_steps *= multiplier
        else:
            step = min(step, decay_steps)
        p = step / decay_steps
        return ((self.initial_learning_rate - self.end_learning_rate) * (1 - p) ** self.power
                + self.end_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(_RateDecay):
    """InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate, staircase=False,
    name="InverseTimeDecay")

    Power scheduling: ``initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (``floor(step / decay_steps)`` with ``staircase``).
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


class CosineDecay(LearningRateSchedule):
    """CosineDecay(initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
    warmup_target=None, warmup_steps=0)

    Without warmup: ``initial * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)``
    with s = min(step, decay_steps). With ``warmup_target``: a linear ramp from
    initial_learning_rate to warmup_target over warmup_steps, then the cosine decay from
    warmup_target over decay_steps (step capped at warmup_steps + decay_steps).
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = _nonneg("CosineDecay", "initial_learning_rate",
                                             initial_learning_rate)
        self.decay_steps = _positive("CosineDecay", "decay_steps", decay_steps)
        self.alpha = alpha
        self.name = name
        self.warmup_target = (None if warmup_target is None
                              else _nonneg("CosineDecay", "warmup_target", warmup_target))
        self.warmup_steps = _nonneg("CosineDecay", "warmup_steps", warmup_steps)

    def _decay(self, step, decay_from):
        fraction = step / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return decay_from * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step):
        step = _step(step)
        if self.warmup_target is None:
            return self._decay(min(step, float(self.decay_steps)), self.initial_learning_rate)
        step = min(step, float(self.decay_steps + self.warmup_steps))
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return ((self.warmup_target - self.initial_learning_rate) * fraction
                    + self.initial_learning_rate)
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """CosineDecayRestarts(initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
    alpha=0.0, name="SGDRDecay")

    SGDR (Loshchilov & Hutter): cosine decay over first_decay_steps, then restarts; each
    period is t_mul times longer and starts m_mul times lower.
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        self.initial_learning_rate = _nonneg("CosineDecayRestarts", "initial_learning_rate",
                                             initial_learning_rate)
        self.first_decay_steps = _positive("CosineDecayRestarts", "first_decay_steps",
                                           first_decay_steps)
        self._t_mul = _positive("CosineDecayRestarts", "t_mul", t_mul)
        self._m_mul = _nonneg("CosineDecayRestarts", "m_mul", m_mul)
        self.alpha = alpha
        self.name = name

    def __call__(self, step):
        fraction = _step(step) / self.first_decay_steps
        t_mul = float(self._t_mul)
        if t_mul == 1.0:
            i_restart = math.floor(fraction)
            fraction -= i_restart
        else:
            i_restart = math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            sum_r = (1.0 - t_mul ** i_restart) / (1.0 - t_mul)
            fraction = (fraction - sum_r) / t_mul ** i_restart
        m_fac = self._m_mul ** i_restart
        cosine = 0.5 * m_fac * (1.0 + math.cos(math.pi * fraction))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


class OneCycle(LearningRateSchedule):
    """OneCycle(max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0,
    final_div_factor=1e4, anneal_strategy="cos", three_phase=False, name="OneCycle")

    fastnn extra (Keras has none): Smith's 1cycle policy, step for step the schedule of
    ``torch.optim.lr_scheduler.OneCycleLR``. The rate starts at
    ``max_learning_rate / div_factor``, rises to ``max_learning_rate`` at step
    ``pct_start * total_steps - 1``, then anneals to ``initial / final_div_factor`` at step
    ``total_steps - 1`` (``three_phase``: back down to the initial rate at step
    ``2 * pct_start * total_steps - 2`` first, then to the minimum). ``anneal_strategy`` is
    ``"cos"`` or ``"linear"``. Past ``total_steps - 1`` the rate stays at the minimum.
    """

    def __init__(self, max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0,
                 final_div_factor=1e4, anneal_strategy="cos", three_phase=False, name="OneCycle"):
        self.max_learning_rate = _positive("OneCycle", "max_learning_rate", max_learning_rate)
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 2:
            raise ValueError(f"OneCycle: total_steps must be an integer >= 2, got {total_steps!r}")
        if not 0 < pct_start < 1:
            raise ValueError(f"OneCycle: pct_start must be in (0, 1), got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycle: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.div_factor = _positive("OneCycle", "div_factor", div_factor)
        self.final_div_factor = _positive("OneCycle", "final_div_factor", final_div_factor)
        self.anneal_strategy = anneal_strategy
        self.three_phase = bool(three_phase)
        self.name = name
        initial = max_learning_rate / div_factor
        minimum = initial / final_div_factor
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self._phases = [(up, initial, max_learning_rate),
                            (float(2 * pct_start * total_steps) - 2, max_learning_rate, initial),
                            (total_steps - 1.0, initial, minimum)]
        else:
            self._phases = [(up, initial, max_learning_rate),
                            (total_steps - 1.0, max_learning_rate, minimum)]

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def __call__(self, step):
        step = min(_step(step), self.total_steps - 1.0)
        start_step = 0.0
        for i, (end_step, lr_start, lr_end) in enumerate(self._phases):
            if step <= end_step or i == len(self._phases) - 1:
                span = end_step - start_step
                pct = (step - start_step) / span if span > 0 else 1.0
                return self._anneal(lr_start, lr_end, pct)
            start_step = end_step
        raise AssertionError("unreachable")

    def get_config(self):
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor,
                "anneal_strategy": self.anneal_strategy, "three_phase": self.three_phase,
                "name": self.name}


_REGISTRY = {cls.__name__: cls for cls in (
    ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay, InverseTimeDecay, CosineDecay,
    CosineDecayRestarts, OneCycle)}

__all__ = ["LearningRateSchedule", "serialize", "deserialize"] + sorted(_REGISTRY)


def serialize(schedule):
    """{"class_name": ..., "config": ...} for a schedule (Keras' format)."""
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    """The schedule described by ``serialize()``'s output."""
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown learning-rate schedule {config['class_name']!r}; known: "
                         f"{sorted(_REGISTRY)}")
    return cls.from_config(config.get("config", {}))
