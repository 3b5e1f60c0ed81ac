"""Models with several outputs (Keras 3's multi-output functional models).

Hands-On ML's Wide & Deep network with an auxiliary output is the pattern::

    model = fastnn.Model(inputs=[inp_wide, inp_deep], outputs=[main, aux])
    model.compile(loss=("mse", "mse"), loss_weights=(0.9, 0.1), optimizer="adam",
                  metrics=["RootMeanSquaredError"])
    model.fit((x_wide, x_deep), (y, y), epochs=20)

``Heads`` resolves compile's per-output arguments (one loss for every output, a list in the
outputs' order, or a dict by output name; the same for ``loss_weights`` and ``metrics``) and
prepares the targets. The trainer then minimises sum_i loss_weight_i * loss_i: each output's
gradient is its loss's gradient scaled by its weight. Logs are Keras': ``loss`` (the weighted
sum, plus regularization), ``<output>_loss`` (each output's own, unweighted) and
``<output>_<metric>``. A flat list of metrics is applied to every output, as Keras 2 and
Hands-On ML do (Keras 3 asks for a list per output, which works too).
"""
import copy
import math

from .. import losses, metrics as metrics_module


class OutputMetric:
    """A metric of one output: ``update_state`` takes the targets and outputs of all of them
    and passes this output's on; its name is ``<output>_<metric>`` (Keras)."""

    def __init__(self, metric, index, output_name):
        self.metric, self.index = metric, index
        self.name = f"{output_name}_{metric.name}"

    def update_state(self, y_true, y_pred):
        self.metric.update_state(y_true[self.index], y_pred[self.index])

    def result(self):
        return self.metric.result()

    def reset_state(self):
        self.metric.reset_state()


class Heads:
    """The per-output training settings of a model with several outputs: ``names``,
    ``losses`` (a Loss or None: that output is not trained), ``weights`` (floats) and
    ``metric_specs`` (a list per output, as given)."""

    def __init__(self, names, losses_, weights, metric_specs):
        self.names, self.losses, self.weights = names, losses_, weights
        self.metric_specs = metric_specs
        self.fused = [False] * len(names)

    @classmethod
    def from_compile(cls, model_name, names, loss, loss_weights, metrics):
        per_loss = _per_output(loss, names, "loss", model_name, missing=None)
        if all(v is None for v in per_loss):
            raise ValueError(f"compile: model {model_name!r} needs a loss for at least one of "
                             f"its outputs {names}")
        resolved = [None if v is None else losses.get(v) for v in per_loss]
        weights = _per_output(loss_weights, names, "loss_weights", model_name, missing=1.0)
        for name, w in zip(names, weights):
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"compile: loss_weights for output {name!r} must be a finite "
                                 f"number >= 0, got {w!r}")
        return cls(list(names), resolved, [float(w) for w in weights],
                   _metric_lists(metrics, names, model_name))

    def make_metrics(self, output_shapes):
        """One OutputMetric per (output, metric), in output order then the order given."""
        made = []
        for i, (name, specs) in enumerate(zip(self.names, self.metric_specs)):
            for spec in specs:
                # an object given once for every output needs its own state per output
                spec = copy.deepcopy(spec) if isinstance(spec, metrics_module.Metric) else spec
                made.append(OutputMetric(metrics_module.get(spec, self.losses[i],
                                                            output_shapes[i][-1]), i, name))
        return made

    def prepare_targets(self, y, output_shapes, dtypes, n, what, name="y", x_name="x"):
        """The targets as a list in the outputs' order, each prepared by its output's loss
        (an output without a loss takes its targets unchecked, or None)."""
        if isinstance(y, dict):
            unknown = [k for k in y if k not in self.names]
            missing = [k for k, loss in zip(self.names, self.losses) if loss is not None and k not in y]
            if unknown or missing:
                raise ValueError(f"{what}: {name} is a dict; the model's outputs are {self.names}"
                                 + (f"; no targets for {missing}" if missing else "")
                                 + (f"; unknown output name(s) {unknown}" if unknown else ""))
            parts = [y.get(k) for k in self.names]
        elif isinstance(y, (list, tuple)) and len(y) == len(self.names):
            parts = list(y)
        else:
            got = f"a {type(y).__name__} of {len(y)}" if isinstance(y, (list, tuple)) else type(y).__name__
            raise ValueError(f"{what}: the model has {len(self.names)} outputs {self.names}: {name} "
                             f"must be a list (or tuple) of {len(self.names)} target arrays in that "
                             f"order, or a dict {{output name: targets}}; got {got}")
        out = []
        for k, loss, part, shape, dtype in zip(self.names, self.losses, parts, output_shapes, dtypes):
            if loss is None:  # not trained: its targets are not needed
                out.append(None)
                continue
            if part is None:
                raise ValueError(f"{what}: no targets for output {k!r}")
            try:
                part = loss.prepare_targets(part, shape, dtype)
            except (TypeError, ValueError) as e:
                raise type(e)(f"output {k!r}: {e}") from e
            if len(part) != n:
                raise ValueError(f"{x_name} has {n} samples but {name} for output {k!r} has "
                                 f"{len(part)}")
            out.append(part)
        return out

    def compile_config(self):
        return {"loss": list(self.losses), "loss_weights": list(self.weights),
                "metrics": [list(m) for m in self.metric_specs]}


def _per_output(value, names, what, model_name, missing):
    """One value per output from a single value (every output), a list/tuple in the outputs'
    order, or a dict by output name (outputs it does not name get ``missing``)."""
    if isinstance(value, dict):
        unknown = [k for k in value if k not in names]
        if unknown:
            raise ValueError(f"compile: {what} names {unknown}, which are not outputs of model "
                             f"{model_name!r}; its outputs are {names}")
        return [value.get(k, missing) for k in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"compile: model {model_name!r} has {len(names)} outputs {names} but "
                             f"{what} has {len(value)} entries; give one per output (or a dict "
                             "by output name)")
        return list(value)
    if value is None:
        return [missing] * len(names)
    return [value] * len(names)  # one loss (or weight) for every output, as Keras


def _metric_lists(metrics, names, model_name):
    if metrics is None:
        return [[] for _ in names]
    if isinstance(metrics, dict):
        unknown = [k for k in metrics if k not in names]
        if unknown:
            raise ValueError(f"compile: metrics names {unknown}, which are not outputs of model "
                             f"{model_name!r}; its outputs are {names}")
        return [_as_list(metrics.get(k)) for k in names]
    if isinstance(metrics, (list, tuple)) and metrics and all(
            isinstance(m, (list, tuple)) or m is None for m in metrics):
        if len(metrics) != len(names):
            raise ValueError(f"compile: model {model_name!r} has {len(names)} outputs {names} but "
                             f"metrics has {len(metrics)} lists; give one list per output")
        return [_as_list(m) for m in metrics]
    if isinstance(metrics, (list, tuple)) and any(isinstance(m, (list, tuple)) for m in metrics):
        raise ValueError("compile: metrics mixes lists and single metrics; give either one list "
                         "for every output or one list per output")
    return [_as_list(metrics) for _ in names]  # a flat list: every output (Keras 2, HOML)


def _as_list(m):
    if m is None:
        return []
    return list(m) if isinstance(m, (list, tuple)) else [m]
