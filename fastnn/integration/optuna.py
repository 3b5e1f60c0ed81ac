"""Optuna pruning for fastnn's fit (fastnn extra; optuna is optional: pip install
fastnn[search])."""
import math
import warnings

from ..callbacks import Callback

INSTALL_HINT = ("OptunaPruningCallback needs optuna, which is not installed: pip install "
                "fastnn[search] (or pip install optuna)")


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return optuna


class OptunaPruningCallback(Callback):
    """OptunaPruningCallback(trial, monitor="val_loss")

    At the end of every epoch reports ``logs[monitor]`` to the Optuna ``trial``
    (``trial.report(value, step=epoch)``) and raises ``optuna.TrialPruned`` out of fit when
    ``trial.should_prune()``: the study's pruner (median, successive halving, ...) stops
    unpromising trials early. The study's direction says whether lower or higher is better.
    A monitor missing from the logs is a warning naming the available keys (the epoch is
    not reported), as Optuna's own Keras callback does. A NaN value is reported as is
    (Optuna's pruners prune NaN trials).

        def objective(trial):
            lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
            model = build(lr)
            model.fit(x, y, validation_split=0.2, epochs=20, verbose=0,
                      callbacks=[OptunaPruningCallback(trial, "val_loss")])
            return model.evaluate(x_val, y_val, verbose=0)[0]
    """

    def __init__(self, trial, monitor="val_loss"):
        super().__init__()
        optuna = _optuna()
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"OptunaPruningCallback: monitor must be a log key such as "
                             f"'val_loss', got {monitor!r}")
        if not (hasattr(trial, "report") and hasattr(trial, "should_prune")):
            raise TypeError(f"OptunaPruningCallback: trial must be an optuna Trial (with report "
                            f"and should_prune), got {type(trial).__name__}")
        self._optuna = optuna
        self.trial = trial
        self.monitor = monitor

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"OptunaPruningCallback: the metric {self.monitor!r} is not in the "
                          f"epoch logs (available: {', '.join(sorted(logs))}); this epoch is "
                          "not reported", stacklevel=2)
            return
        value = float(value)
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            shown = value if math.isfinite(value) else str(value)
            raise self._optuna.TrialPruned(f"Trial was pruned at epoch {epoch} "
                                           f"({self.monitor}={shown}).")
