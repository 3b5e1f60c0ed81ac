"""Figures for watching training (fastnn extra; matplotlib is optional: pip install
fastnn[plot]). Every function returns a ``matplotlib.figure.Figure`` made without pyplot
(no global figure state, works headless), which notebooks display and
``fig.savefig("x.png")`` writes:

- ``history(history)``: loss and metrics per epoch, training vs validation;
- ``lr_range(result)``: the learning-rate range test's curve and its suggestion;
- ``activations(model, x)``: per-layer histograms of the activations on ``x``;
- ``monitor(history)``: callbacks.TrainingMonitor's per-layer curves;
- ``search(results, x=..., y=..., score=...)``: a score over two hyperparameters.
"""
import math

import numpy as np

INSTALL_HINT = "fastnn.plot needs matplotlib, which is not installed: pip install fastnn[plot]"

# keys fit adds that are not curves to compare between training and validation
_NOT_CURVES = ("learning_rate", "diverged")


def _figure(figsize):
    try:
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return Figure(figsize=figsize, layout="constrained")


def _history_dict(history, who):
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"{who}: expected a History (what fit returns) or its .history dict, "
                        f"got {type(history).__name__}")
    return h


def _grid(n):
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def history(history, keys=None, figsize=None):
    """history(history, keys=None, figsize=None) -> Figure

    One panel per quantity (``loss`` first, then each metric, or the ``keys`` given), its
    training curve solid and its ``val_`` curve dashed, against the epoch (from 1).
    ``history`` is what fit returns or its ``.history`` dict; TrainingMonitor's per-layer
    keys are left to ``monitor()``.
    """
    h = _history_dict(history, "plot.history")
    names = [k for k in h if not k.startswith("val_") and "/" not in k and k not in _NOT_CURVES]
    names += [k[4:] for k in h if k.startswith("val_") and k[4:] not in h]  # val only
    if keys is not None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in keys if k not in h and f"val_{k}" not in h]
        if missing:
            raise KeyError(f"plot.history: {missing} not in the history (it has {sorted(h)})")
        names = keys
    if not names:
        raise ValueError(f"plot.history: nothing to plot (the history has {sorted(h)})")
    names.sort(key=lambda k: k != "loss")
    rows, cols = _grid(len(names))
    fig = _figure(figsize or (4.2 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        for key, style, label in ((name, "-", "training"), (f"val_{name}", "--", "validation")):
            if key in h:
                values = np.asarray(h[key], dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, style, marker="o", markersize=3,
                        label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return fig


def lr_range(result, figsize=(6, 4)):
    """lr_range(result, figsize=(6, 4)) -> Figure

    The learning-rate range test (``fastnn.utils.find_learning_rate``'s dict): the smoothed
    loss (and the raw one, faint) against the learning rate on a log axis, the rate at the
    lowest loss (``best``) and the ``suggested`` rate marked with vertical lines.
    """
    if not isinstance(result, dict) or not {"learning_rates", "losses", "suggested"} <= set(result):
        raise TypeError("plot.lr_range: expected the dict find_learning_rate returns (with "
                        f"learning_rates, losses, suggested), got {type(result).__name__}")
    rates = np.asarray(result["learning_rates"], dtype=float)
    losses = np.asarray(result["losses"], dtype=float)
    fig = _figure(figsize)
    ax = fig.subplots()
    if "raw_losses" in result:
        ax.plot(rates, np.asarray(result["raw_losses"], dtype=float), color="0.75", lw=0.8,
                label="loss per step")
    ax.plot(rates, losses, color="C0", label="smoothed loss")
    if result.get("best") is not None:
        ax.axvline(result["best"], color="C3", ls=":", label=f"lowest loss at {result['best']:.2g}")
    ax.axvline(result["suggested"], color="C2", ls="--",
               label=f"suggested {result['suggested']:.2g}")
    ax.set_xscale("log")
    finite = losses[np.isfinite(losses)]
    if finite.size:  # the blown-up tail would flatten the interesting part
        low, first = finite.min(), finite[0]
        ax.set_ylim(low - 0.05 * abs(low), max(first, low) * 1.5 + 1e-12)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def layer_outputs(model, x, training=False):
    """[(layer name, output array)] of one forward pass of ``model`` on ``x``, layer by
    layer, in the model's own work buffers' stead (copies; the model is not changed:
    ``training=False`` by default, so no dropout and no batch statistics)."""
    from .layers.base import buffer_set
    from .models import Sequential
    from .training.trainer import prepare_inputs
    if not isinstance(model, Sequential):
        raise TypeError(f"plot: layer-by-layer outputs need a Sequential model, got "
                        f"{type(model).__name__}")
    h = prepare_inputs(model, x)
    out = []
    with buffer_set({}):  # fresh work arrays: a concurrent fit's buffers are not touched
        for layer in model.layers:
            if h.dtype != np.dtype(layer.dtype):
                h = h.astype(layer.dtype)
            h = layer.forward(h, training)
            out.append((layer.name, np.array(h, copy=True)))
    return out


def activations(model, x, layers=None, bins=50, value_range=None, figsize=None):
    """activations(model, x, layers=None, bins=50, value_range=None, figsize=None) -> Figure

    A histogram of each layer's outputs on ``x`` (one inference-mode forward pass), titled
    with their mean and standard deviation: the classic picture of activations that
    shrink to 0 or pile up at the bounds of tanh/sigmoid layer after layer.
    ``layers``: names or indices of the layers to show (default: all). ``value_range``:
    ``(low, high)`` shared by every histogram (e.g. ``(-1, 1)`` for tanh), so that a
    collapse toward 0 shows as a spike instead of being rescaled away; values outside it
    are clipped into the edge bins.
    """
    if value_range is not None:
        if len(value_range) != 2 or not float(value_range[0]) < float(value_range[1]):
            raise ValueError(f"plot.activations: value_range must be (low, high) with low < "
                             f"high, got {value_range!r}")
        value_range = (float(value_range[0]), float(value_range[1]))
    outs = layer_outputs(model, x)
    if layers is not None:
        names = [l.name for l in model.layers]
        chosen = []
        for key in layers:
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                if not -len(names) <= key < len(names):
                    raise IndexError(f"plot.activations: layer index {key} out of range for "
                                     f"{len(names)} layers")
                chosen.append(outs[key])
            elif key in names:
                chosen.append(outs[names.index(key)])
            else:
                raise KeyError(f"plot.activations: no layer {key!r} (layers: {names})")
        outs = chosen
    if not outs:
        raise ValueError("plot.activations: no layer to show")
    rows, cols = _grid(len(outs))
    if len(outs) > 3:
        cols = min(len(outs), 5)
        rows = math.ceil(len(outs) / cols)
    fig = _figure(figsize or (2.8 * cols, 2.4 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (name, out) in zip(axes, outs):
        values = np.asarray(out, dtype=np.float64).ravel()
        finite = values[np.isfinite(values)]
        if value_range is not None:
            ax.hist(np.clip(finite, *value_range), bins=bins, range=value_range, color="C0")
            ax.set_xlim(*value_range)
        else:
            ax.hist(finite, bins=bins, color="C0")
        ax.set_title(f"{name}\nmean {finite.mean():.3g}, std {finite.std():.3g}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in axes[len(outs):]:
        ax.set_visible(False)
    return fig


_LOG_STATS = ("grad_norm", "update_ratio")


def monitor(history, figsize=None):
    """monitor(history, figsize=None) -> Figure

    TrainingMonitor's numbers (``<layer>/<stat>`` keys of a History, its dict, or the
    monitor's own ``.history``): one panel per statistic, one line per layer, against
    the epoch; gradient norms and update ratios on a log axis (the 1e-3 rule of thumb for
    the update ratio drawn as a dotted line).
    """
    from .callbacks import MONITOR_STATS
    h = _history_dict(history, "plot.monitor")
    stats = [s for s in MONITOR_STATS if any(k.endswith("/" + s) for k in h)]
    if not stats:
        raise ValueError("plot.monitor: the history has no TrainingMonitor keys "
                         "('<layer>/activation_std', ...): train with "
                         "callbacks=[fastnn.callbacks.TrainingMonitor()]")
    rows, cols = _grid(len(stats))
    fig = _figure(figsize or (4.4 * cols, 3.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, stat in zip(axes, stats):
        for key, values in h.items():
            if key.endswith("/" + stat):
                values = np.asarray(values, dtype=float)
                ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3,
                        label=key[:-len(stat) - 1])
        if stat in _LOG_STATS:
            ax.set_yscale("log")
        if stat == "update_ratio":
            ax.axhline(1e-3, color="0.5", ls=":", lw=1)
        ax.set_title(stat.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes[len(stats):]:
        ax.set_visible(False)
    return fig


def _columns(results, names):
    """results (a list of dicts, a dict of sequences, or a pandas DataFrame) -> arrays."""
    if hasattr(results, "to_dict") and hasattr(results, "columns"):  # a DataFrame
        results = {c: list(results[c]) for c in results.columns}
    if isinstance(results, dict):
        missing = [n for n in names if n not in results]
        if missing:
            raise KeyError(f"plot.search: {missing} not in the results (columns: {sorted(results)})")
        cols = {n: results[n] for n in names}
    else:
        rows = list(results)
        bad = [i for i, r in enumerate(rows) if not isinstance(r, dict)
               or any(n not in r for n in names)]
        if bad:
            raise KeyError(f"plot.search: result {bad[0]} lacks one of {names} (each result must "
                           f"be a dict holding them)")
        cols = {n: [r[n] for r in rows] for n in names}
    try:
        out = {n: np.asarray(v, dtype=float) for n, v in cols.items()}
    except (TypeError, ValueError):
        raise TypeError(f"plot.search: the columns {names} must hold numbers") from None
    if len({len(v) for v in out.values()}) != 1:
        raise ValueError("plot.search: the columns have different lengths")
    return out


def search(results, x, y, score, mode="min", log=(True, True), figsize=(6, 4.5)):
    """search(results, x, y, score, mode="min", log=(True, True), figsize=(6, 4.5)) -> Figure

    A hyperparameter search's results as a scatter: ``x`` against ``y`` (column names, e.g.
    "learning_rate" and "l2", on log axes by default; ``log`` per axis), colored by
    ``score``; the best result (lowest with ``mode="min"``, highest with "max") circled and
    named in the title; runs whose score is not finite (diverged) drawn as grey crosses.
    ``results``: a list of dicts, a dict of columns, or a pandas DataFrame.
    """
    if mode not in ("min", "max"):
        raise ValueError(f"plot.search: mode must be 'min' or 'max', got {mode!r}")
    if isinstance(log, bool):
        log = (log, log)
    cols = _columns(results, [x, y, score])
    xs, ys, ss = cols[x], cols[y], cols[score]
    if not len(xs):
        raise ValueError("plot.search: no results to plot")
    if any(flag and np.any(v <= 0) for flag, v in zip(log, (xs, ys))):
        raise ValueError("plot.search: a log axis needs values > 0 (pass log=(False, ...))")
    fig = _figure(figsize)
    ax = fig.subplots()
    ok = np.isfinite(ss)
    if np.any(~ok):
        ax.scatter(xs[~ok], ys[~ok], marker="x", color="0.6", label="diverged / no score")
    if np.any(ok):
        cmap = "viridis_r" if mode == "min" else "viridis"
        points = ax.scatter(xs[ok], ys[ok], c=ss[ok], cmap=cmap, s=36, edgecolors="k",
                            linewidths=0.3)
        fig.colorbar(points, ax=ax, label=score)
        i = np.flatnonzero(ok)[np.argmin(ss[ok]) if mode == "min" else np.argmax(ss[ok])]
        ax.scatter([xs[i]], [ys[i]], s=180, facecolors="none", edgecolors="C3", linewidths=2,
                   label="best")
        ax.set_title(f"best {score} {ss[i]:.4g} at {x}={xs[i]:.3g}, {y}={ys[i]:.3g}", fontsize=9)
    if log[0]:
        ax.set_xscale("log")
    if log[1]:
        ax.set_yscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
