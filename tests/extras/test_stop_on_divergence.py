"""callbacks.StopOnDivergence stops a run whose loss blows up and marks it in the logs."""
import math

import pytest

import fastnn
from fastnn import callbacks, layers


def model_with(lr, seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)), layers.Dense(32, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return model


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = fastnn.datasets.load_digits()
    return x[:640], y[:640]


def test_a_run_with_a_huge_learning_rate_stops_in_its_first_epoch_marked_diverged(digits):
    x, y = digits
    stop = callbacks.StopOnDivergence(factor=3.0)
    history = model_with(50.0).fit(x, y, epochs=10, batch_size=32, verbose=0, callbacks=[stop])
    assert stop.diverged and stop.stopped_epoch == 0
    assert history.epoch == [0]
    assert history.history["diverged"] == [1.0]
    assert "first value" in stop.reason or "nan" in stop.reason.lower()


def test_a_healthy_run_trains_all_its_epochs_with_diverged_zero(digits):
    x, y = digits
    stop = callbacks.StopOnDivergence()
    history = model_with(0.1).fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[stop])
    assert not stop.diverged and stop.stopped_epoch is None and stop.reason is None
    assert history.history["diverged"] == [0.0, 0.0, 0.0]
    assert stop.first_value == pytest.approx(math.log(10), rel=0.3)


class FakeModel:
    stop_training = False


def feed(stop, batch_losses):
    stop.set_model(FakeModel())
    stop.on_train_begin()
    stop.on_epoch_begin(0)
    for i, loss in enumerate(batch_losses):
        stop.on_train_batch_end(i, {"loss": loss})
        if stop.model.stop_training:
            return i
    return None


def test_the_rule_is_factor_times_the_first_value():
    assert feed(callbacks.StopOnDivergence(factor=3.0), [2.0, 5.9, 6.0, 1.0]) is None
    assert feed(callbacks.StopOnDivergence(factor=3.0), [2.0, 5.9, 6.01, 1.0]) == 2


def test_nan_and_inf_losses_count_as_divergence():
    assert feed(callbacks.StopOnDivergence(), [2.0, float("nan")]) == 1
    assert feed(callbacks.StopOnDivergence(), [float("inf")]) == 0


def test_a_validation_monitor_is_checked_at_epoch_ends_only(digits):
    x, y = digits
    stop = callbacks.StopOnDivergence(monitor="val_loss")
    assert feed(stop, [1.0, 100.0]) is None  # batch logs ignored
    for epoch, val in enumerate([2.0, 3.0, 7.0, 1.0]):
        logs = {"val_loss": val}
        stop.on_epoch_begin(epoch)
        stop.on_epoch_end(epoch, logs)
        if stop.model.stop_training:
            break
    assert stop.stopped_epoch == 2 and logs["diverged"] == 1.0


def test_a_missing_monitor_is_a_warning_naming_the_available_keys():
    stop = callbacks.StopOnDivergence(monitor="val_loss")
    stop.set_model(FakeModel())
    stop.on_train_begin()
    with pytest.warns(UserWarning, match="val_loss.*available: loss"):
        stop.on_epoch_end(0, {"loss": 1.0})


@pytest.mark.parametrize("kwargs", [{"factor": 1.0}, {"factor": -2}, {"factor": float("nan")},
                                    {"factor": "3"}, {"monitor": ""}, {"monitor": None}])
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="StopOnDivergence"):
        callbacks.StopOnDivergence(**kwargs)
