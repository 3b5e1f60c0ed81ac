"""integration.OptunaPruningCallback reports every epoch to an Optuna trial and prunes."""
import pytest

import fastnn
from fastnn import layers
from fastnn.integration import OptunaPruningCallback

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)


def fit_with(trial, epochs=4, monitor="val_loss"):
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    (x, y), _ = fastnn.datasets.load_digits()
    return model.fit(x[:300], y[:300], epochs=epochs, validation_split=0.2, verbose=0,
                     callbacks=[OptunaPruningCallback(trial, monitor)])


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_every_epoch_is_reported_with_its_value_and_step():
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    histories = []
    study.optimize(lambda t: histories.append(fit_with(t)) or histories[-1].history["val_loss"][-1],
                   n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.intermediate_values == dict(enumerate(histories[0].history["val_loss"]))


def test_should_prune_raises_trial_pruned_out_of_fit_after_the_first_epoch():
    study = optuna.create_study(pruner=AlwaysPrune())
    study.optimize(lambda t: fit_with(t).history["val_loss"][-1], n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]


def test_a_median_pruner_prunes_a_trial_worse_than_the_median():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1,
                                                                   n_warmup_steps=0))
    study.optimize(lambda t: fit_with(t).history["val_loss"][-1], n_trials=1)
    worse = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"epoch 0 \(val_loss=100.0\)"):
        OptunaPruningCallback(worse).on_epoch_end(0, {"val_loss": 100.0})
    better = study.ask()
    OptunaPruningCallback(better).on_epoch_end(0, {"val_loss": 0.0})  # no exception


def test_a_missing_monitor_warns_and_reports_nothing():
    study = optuna.create_study()
    trial = study.ask()
    with pytest.warns(UserWarning, match="'val_acc' is not in the epoch logs"):
        OptunaPruningCallback(trial, "val_acc").on_epoch_end(0, {"val_loss": 1.0})
    assert study.trials[0].intermediate_values == {}


def test_bad_arguments_are_clear_errors():
    with pytest.raises(TypeError, match="optuna Trial"):
        OptunaPruningCallback(object())
    with pytest.raises(ValueError, match="monitor"):
        OptunaPruningCallback(optuna.create_study().ask(), monitor="")


def test_missing_optuna_is_an_import_error_naming_the_extra(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_optuna(name, *args, **kwargs):
        if name == "optuna":
            raise ImportError("No module named 'optuna'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_optuna)
    with pytest.raises(ImportError, match=r"pip install fastnn\[search\]"):
        OptunaPruningCallback(object())
