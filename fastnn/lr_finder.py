"""The learning-rate range test (fastnn extra; Smith, "Cyclical Learning Rates", 2017; the
recipe of Geron's "Hands-On Machine Learning", ch. 11): train for a few hundred steps while
the learning rate grows exponentially from tiny to huge, record the loss at each step, and
pick a rate about ten times below the one where the loss was lowest, before it shot up.

    result = fastnn.utils.find_learning_rate(model, x_train, y_train)
    model.optimizer.learning_rate = result["suggested"]

The model comes back exactly as it was: weights, optimizer state and step count, the learning
rate (float or schedule), dropout counters and every random generator fastnn uses are
restored, so a fit after the test trains exactly as it would have without it.
"""
import math

import numpy as np

from .training.state import TrainingState
from .training.trainer import prepare_inputs
from .training import arguments


def find_learning_rate(model, x, y, min_lr=1e-6, max_lr=10.0, steps=100, batch_size=32,
                       stop_factor=4.0, smoothing=0.05, seed=0, sample_weight=None):
    """find_learning_rate(model, x, y, min_lr=1e-6, max_lr=10.0, steps=100, batch_size=32,
    stop_factor=4.0, smoothing=0.05, seed=0, sample_weight=None) -> dict

    Learning-rate range test on a compiled model: ``steps`` optimizer steps on shuffled
    batches of (x, y) with the learning rate growing exponentially from ``min_lr`` to
    ``max_lr``, stopping early once the smoothed loss (exponential moving average, weight
    ``smoothing`` on the newest loss, bias-corrected) exceeds ``stop_factor`` times its
    minimum or stops being finite. The model is then restored exactly (see the module
    docstring); the batches come from their own generator seeded with ``seed``.

    Returns a dict: ``learning_rates`` and ``losses`` (smoothed) and ``raw_losses`` per step
    taken, ``best`` (the rate at the lowest smoothed loss), ``suggested`` (``best / 10``: the
    rule of thumb, as the loss is lowest just before it blows up), and ``diverged`` (whether
    the test stopped early). Plot ``losses`` against ``learning_rates`` on a log x-axis to
    see the curve.
    """
    if not getattr(model, "compiled", False):
        raise RuntimeError("find_learning_rate: compile the model first (the test uses its "
                           "optimizer and loss)")
    for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not math.isfinite(value) or value <= 0:
            raise ValueError(f"find_learning_rate: {name} must be a finite number > 0, got {value!r}")
    if not min_lr < max_lr:
        raise ValueError(f"find_learning_rate: min_lr ({min_lr}) must be below max_lr ({max_lr})")
    arguments.positive_int(steps, "find_learning_rate: steps", low=2)
    arguments.positive_int(batch_size, "find_learning_rate: batch_size")
    if not (isinstance(stop_factor, (int, float)) and stop_factor > 1):
        raise ValueError(f"find_learning_rate: stop_factor must be a number > 1, got {stop_factor!r}")
    if not (isinstance(smoothing, (int, float)) and 0 < smoothing <= 1):
        raise ValueError(f"find_learning_rate: smoothing must be in (0, 1], got {smoothing!r}")
    x = prepare_inputs(model, x)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"find_learning_rate: x has {len(x)} samples but y has {len(y)}")
    w = None if sample_weight is None else np.asarray(sample_weight)
    if w is not None and len(w) != len(x):
        raise ValueError(f"find_learning_rate: x has {len(x)} samples but sample_weight has {len(w)}")
    snapshot = TrainingState(model)
    rng = np.random.default_rng(seed)
    ratio = math.log(max_lr / min_lr)
    rates, raw, smooth = [], [], []
    avg, best_loss, diverged = 0.0, math.inf, False
    order = rng.permutation(len(x))
    pos = 0
    try:
        for step in range(steps):
            lr = min_lr * math.exp(ratio * step / (steps - 1))
            model.optimizer.replace_learning_rate(lr)
            if pos + batch_size > len(x):
                order, pos = rng.permutation(len(x)), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            out = model.train_on_batch(x[idx], y[idx],
                                       sample_weight=None if w is None else w[idx])
            loss = float(out[0] if isinstance(out, (list, tuple)) else out)
            rates.append(lr)
            raw.append(loss)
            if not math.isfinite(loss):
                diverged = True
                smooth.append(math.inf)
                break
            avg = (1 - smoothing) * avg + smoothing * loss
            s = avg / (1 - (1 - smoothing) ** (step + 1))
            smooth.append(s)
            best_loss = min(best_loss, s)
            if step > 0 and s > stop_factor * best_loss:
                diverged = True
                break
    finally:
        snapshot.restore()
    finite = [i for i, s in enumerate(smooth) if math.isfinite(s)]
    best = rates[min(finite, key=lambda i: smooth[i])] if finite else min_lr
    return {"learning_rates": np.array(rates), "losses": np.array(smooth),
            "raw_losses": np.array(raw), "best": best, "suggested": best / 10,
            "diverged": diverged}
