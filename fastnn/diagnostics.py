"""Sanity checks before a long training run (fastnn extra; the checks of Karpathy's "A Recipe
for Training Neural Networks" and of Geron's chapter 11 on vanishing/exploding gradients):

    report = fastnn.utils.sanity_check(model, x_train, y_train)
    print(report["problems"])   # [] when everything looks right

1. The initial loss of a classifier should be close to the loss of a uniform guess, log(C)
   for C classes (log 2 for a binary one): much higher means the initialization makes
   confident wrong predictions.
2. Per layer, on one batch: the standard deviation of the activations and the norm of the
   kernel gradients. Activations that shrink or grow layer after layer, or gradients that
   differ by orders of magnitude between the first and last layer, are the vanishing /
   exploding gradient problem (fix: He / LeCun initialization, non-saturating activations,
   batch normalization, gradient clipping). ReLU-like layers whose units are all zero on the
   batch are dead.
3. The model must be able to overfit a handful of samples: if the loss on 20 samples does not
   fall to less than half its start within 1,000 steps, something is broken (labels, loss,
   a far too low learning rate, a frozen model).

The model comes back exactly as it was (see fastnn.training.state.TrainingState).
"""
import math

import numpy as np

from .training.state import TrainingState
from .training.trainer import prepare_inputs
from .training import arguments


def _uniform_guess_loss(model):
    """log(C) for a softmax classifier with C outputs, log 2 for a binary one, else None."""
    name = type(model.loss).__name__
    units = model.output_shape[-1]
    if name in ("SparseCategoricalCrossentropy", "CategoricalCrossentropy") and units > 1:
        return math.log(units)
    if name == "BinaryCrossentropy":
        return math.log(2.0)
    return None


def sanity_check(model, x, y, batch_size=256, overfit_samples=20, overfit_steps=1000, seed=0):
    """sanity_check(model, x, y, batch_size=256, overfit_samples=20, overfit_steps=1000,
    seed=0) -> dict

    Runs the checks of the module docstring on a compiled model and returns a dict:
    ``initial_loss`` and ``uniform_guess_loss`` (None when not a classifier), ``layers`` (one
    dict per layer: ``name``, ``activation_std``, ``dead_fraction`` (units zero on the whole
    batch), ``kernel_grad_norm`` or None), ``overfit_loss_start`` / ``overfit_loss_end``
    (training on ``overfit_samples`` samples for ``overfit_steps`` full-batch steps), and
    ``problems``: a list of plain-language findings (empty when all looks right). The model,
    its optimizer and the random generators are restored afterwards.
    """
    if not getattr(model, "compiled", False):
        raise RuntimeError("sanity_check: compile the model first (the checks use its loss "
                           "and optimizer)")
    for name, value in (("batch_size", batch_size), ("overfit_samples", overfit_samples),
                        ("overfit_steps", overfit_steps)):
        arguments.positive_int(value, f"sanity_check: {name}")
    x = prepare_inputs(model, x)
    y = np.asarray(y)
    if len(y) != len(x):
        raise ValueError(f"sanity_check: x has {len(x)} samples but y has {len(y)}")
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(x))[:batch_size]
    xb, yb = x[idx], y[idx]
    snapshot = TrainingState(model)
    problems = []
    try:
        initial = float(np.ravel(model.test_on_batch(xb, yb))[0])
        guess = _uniform_guess_loss(model)
        if not math.isfinite(initial):
            problems.append(f"the initial loss is {initial}: check the inputs, targets and loss")
        elif guess is not None and initial > 2 * guess + 0.5:
            problems.append(f"the initial loss {initial:.3g} is far above a uniform guess's "
                            f"{guess:.3g}: the initial weights make confident wrong predictions "
                            "(smaller initial weights, e.g. glorot/he/lecun, or zero output bias)")
        layers = _layer_statistics(model, xb, yb)
        problems += _gradient_findings(layers)
        sub = rng.permutation(len(x))[:overfit_samples]
        xs, ys = x[sub], y[sub]
        start = float(np.ravel(model.test_on_batch(xs, ys))[0])
        for _ in range(overfit_steps):
            model.train_on_batch(xs, ys)
        end = float(np.ravel(model.test_on_batch(xs, ys))[0])
        if not math.isfinite(end):
            problems.append(f"overfitting {len(sub)} samples diverged (loss {end}): the learning "
                            "rate is too high")
        elif model.trainable_weights and not end < 0.5 * start:
            problems.append(f"the model cannot overfit {len(sub)} samples: loss {start:.3g} -> "
                            f"{end:.3g} after {overfit_steps} steps (check labels vs. loss, the "
                            "learning rate, frozen layers)")
        elif not model.trainable_weights:
            problems.append("the model has no trainable weights: training cannot change it")
    finally:
        snapshot.restore()
    return {"initial_loss": initial, "uniform_guess_loss": guess, "layers": layers,
            "overfit_loss_start": start, "overfit_loss_end": end, "problems": problems}


def _layer_statistics(model, xb, yb):
    """Activations of every layer on one training-mode forward pass, and the kernel gradient
    norms of one backward pass (computed by a train step whose update is skipped)."""
    stats = []
    h = xb
    for layer in model.layers:
        if h.dtype != layer.dtype:
            h = h.astype(layer.dtype)
        h = layer.forward(h, True)
        flat = np.asarray(h, np.float64).reshape(len(h), -1)
        stats.append({"name": layer.name, "activation_std": float(flat.std()),
                      "dead_fraction": float(np.mean(np.all(flat == 0, axis=0))),
                      "kernel_grad_norm": None})
    opt = model.optimizer
    opt.apply = lambda *args, **kwargs: None  # gradients only: no update
    try:
        model.train_on_batch(xb, yb)
    finally:
        del opt.apply
    for s, layer in zip(stats, model.layers):
        kernel = getattr(layer, "kernel", None)
        grad = getattr(kernel, "grad", None) if layer.trainable else None
        if grad is not None:
            s["kernel_grad_norm"] = float(np.sqrt(np.sum(np.square(grad, dtype=np.float64))))
    return stats


def _gradient_findings(stats):
    out = []
    for s in stats:
        if s["dead_fraction"] >= 0.5:
            out.append(f"layer {s['name']!r}: {s['dead_fraction']:.0%} of its units output 0 for "
                       "the whole batch (dead ReLUs: lower learning rate, LeakyReLU/ELU, or He "
                       "initialization)")
    norms = [(s["name"], s["kernel_grad_norm"]) for s in stats if s["kernel_grad_norm"] is not None]
    if len(norms) >= 2:
        (first, g0), (last, g1) = norms[0], norms[-1]
        if not (math.isfinite(g0) and math.isfinite(g1)):
            out.append("a kernel gradient is not finite on the first batch (exploding "
                       "gradients: gradient clipping, lower learning rate)")
        elif g1 > 0 and g0 / g1 < 1e-3:
            out.append(f"the first layer's kernel gradient ({first!r}, norm {g0:.2g}) is over "
                       f"1000x smaller than the last one's ({last!r}, {g1:.2g}): vanishing "
                       "gradients (He/LeCun initialization, ReLU/ELU/SELU, batch normalization)")
        elif g1 > 0 and g0 / g1 > 1e3:
            out.append(f"the first layer's kernel gradient ({first!r}, norm {g0:.2g}) is over "
                       f"1000x larger than the last one's ({last!r}, {g1:.2g}): exploding "
                       "gradients (gradient clipping, smaller initial weights, batch normalization)")
    return out
