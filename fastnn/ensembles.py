"""Ensembles (fastnn extras): ``ensemble_predict`` averages several models' outputs, and the
``SnapshotEnsemble`` callback keeps a model's weights at the end of each cycle of a
``CosineDecayRestarts`` learning rate (Huang et al. 2017, "Snapshot Ensembles: Train 1, get
M for free"): one training run gives several models to average."""
import copy
import math

import numpy as np

from .callbacks import Callback
from .optimizers.schedules import CosineDecayRestarts


def ensemble_predict(models, x, batch_size=None):
    """ensemble_predict(models, x, batch_size=None): the mean of the models' predictions
    (probabilities, for classifiers), computed in float64 and returned in the first model's
    output dtype. The models must have outputs of one shape."""
    models = list(models) if not hasattr(models, "predict") else [models]
    if not models:
        raise ValueError("ensemble_predict: no models given")
    shapes = {getattr(m, "name", i): tuple(m.output_shape[1:]) for i, m in enumerate(models)
              if getattr(m, "built", False)}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"ensemble_predict: the models' outputs differ in shape {shapes}; "
                         "an ensemble averages outputs of one shape")
    total, first = None, None
    for m in models:
        p = m.predict(x, batch_size=batch_size, verbose=0)
        if total is None:
            total, first = p.astype(np.float64), p
        elif p.shape != first.shape:
            raise ValueError(f"ensemble_predict: model {m.name!r} predicts shape {p.shape}, "
                             f"the first model {first.shape}")
        else:
            total += p
    return (total / len(models)).astype(first.dtype)


def restart_cycle(schedule, step):
    """The cycle (0, 1, ...) of a CosineDecayRestarts schedule that ``step`` falls in: the
    schedule's own formula (its ``i_restart``), so a snapshot is taken exactly where the
    rate jumps back up."""
    config = schedule.get_config()
    fraction = step / config["first_decay_steps"]
    t_mul = float(config["t_mul"])
    if t_mul == 1.0:
        return math.floor(fraction)
    return math.floor(math.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))


class SnapshotEnsemble(Callback):
    """SnapshotEnsemble(schedule=None, max_snapshots=None)

    fastnn extra: keeps the model's weights at the end of every cycle of a
    ``CosineDecayRestarts`` learning rate (default: the optimizer's own, which must be one),
    i.e. after the last step before the rate restarts. ``snapshots`` (lists of weights, as
    ``get_weights``) and ``snapshot_steps`` (the optimizer's call count at each) are reset
    when training begins; ``max_snapshots`` keeps only the last ones. ``models()`` builds the
    ensemble (copies of the model holding each snapshot's weights); ``predict(x)`` averages
    them with ``ensemble_predict``. Training that stops mid-cycle keeps no snapshot of that
    cycle."""

    def __init__(self, schedule=None, max_snapshots=None):
        super().__init__()
        if schedule is not None and not isinstance(schedule, CosineDecayRestarts):
            raise TypeError(f"SnapshotEnsemble: schedule must be a CosineDecayRestarts, got "
                            f"{type(schedule).__name__}")
        if max_snapshots is not None and (isinstance(max_snapshots, bool)
                                          or not isinstance(max_snapshots, int)
                                          or max_snapshots < 1):
            raise ValueError(f"SnapshotEnsemble: max_snapshots must be an integer >= 1 or None, "
                             f"got {max_snapshots!r}")
        self.schedule, self.max_snapshots = schedule, max_snapshots
        self.snapshots, self.snapshot_steps = [], []

    def on_train_begin(self, logs=None):
        self._schedule = self.schedule or self.model.optimizer.learning_rate_setting
        if not isinstance(self._schedule, CosineDecayRestarts):
            raise ValueError("SnapshotEnsemble: the optimizer's learning rate is not a "
                             "CosineDecayRestarts schedule; pass one as learning_rate (or as "
                             "SnapshotEnsemble(schedule=...))")
        self.snapshots, self.snapshot_steps = [], []

    def on_train_batch_end(self, batch, logs=None):
        # the schedule runs on the optimizer's call count: the next call starts a new cycle
        step = self.model.optimizer.apply_calls
        if restart_cycle(self._schedule, step) > restart_cycle(self._schedule, step - 1):
            self.snapshots.append(self.model.get_weights())
            self.snapshot_steps.append(step)
            if self.max_snapshots is not None:
                del self.snapshots[:-self.max_snapshots], self.snapshot_steps[:-self.max_snapshots]

    def models(self):
        """One model per snapshot: a copy of the trained model with the snapshot's weights."""
        if not self.snapshots:
            raise ValueError("SnapshotEnsemble: no snapshot yet (train through at least one "
                             "whole cycle of the schedule)")
        out = []
        for weights in self.snapshots:
            m = copy.deepcopy(self.model)
            m.set_weights(weights)
            out.append(m)
        return out

    def predict(self, x, batch_size=None):
        """The snapshots' mean prediction (``ensemble_predict`` over ``models()``)."""
        return ensemble_predict(self.models(), x, batch_size=batch_size)
