"""EarlyStopping and ModelCheckpoint: Keras 3's rules on scripted metric sequences, and in
real fit() runs (restore_best_weights, save_best_only with model.save / load_model)."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers


class _StubModel:
    """Just what the callbacks touch: weights, stop_training, compiled_metrics, save."""

    def __init__(self):
        self.w = 0
        self.stop_training = False
        self.compiled_metrics = []
        self.saved = []

    def get_weights(self):
        return [np.array(self.w)]

    def set_weights(self, weights):
        self.w = int(weights[0])

    def save(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))


def _drive(cb, values, key="val_loss"):
    """Run epochs with the given monitored values; the model's weight is the epoch number.
    Returns the epoch at which training stopped (or None)."""
    model = _StubModel()
    cb.set_model(model)
    cb.on_train_begin()
    stopped = None
    for epoch, v in enumerate(values):
        cb.on_epoch_begin(epoch)
        model.w = epoch
        cb.on_epoch_end(epoch, {key: v, "loss": 1.0})
        if model.stop_training:
            stopped = epoch
            break
    cb.on_train_end()
    return stopped, model


def test_early_stopping_patience_and_restore_best_weights():
    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    stopped, model = _drive(es, [1.0, 0.8, 0.9, 0.85, 0.7])
    assert stopped == 3 and es.stopped_epoch == 3
    assert es.best == 0.8 and es.best_epoch == 1
    assert model.w == 1  # weights of the best epoch restored


def test_early_stopping_patience_zero_and_restore_when_not_stopped():
    es = callbacks.EarlyStopping(patience=0)
    assert _drive(es, [1.0, 1.1])[0] == 1
    es = callbacks.EarlyStopping(patience=5, restore_best_weights=True)
    stopped, model = _drive(es, [1.0, 0.5, 0.6, 0.7])
    assert stopped is None and model.w == 1  # Keras 3 restores at train end regardless


def test_early_stopping_min_delta_mode_baseline_and_start_epoch():
    # improvements smaller than min_delta do not count (Keras: the wait grows first, then
    # an improvement resets it and returns before the patience check)
    es = callbacks.EarlyStopping(min_delta=0.1, patience=2)
    assert _drive(es, [1.0, 0.95, 0.92, 0.5])[0] == 2
    es = callbacks.EarlyStopping(min_delta=0.1, patience=1)
    assert _drive(es, [1.0, 0.85, 0.84, 0.83])[0] == 2
    # mode="max" (and auto for accuracy)
    for mode in ("max", "auto"):
        es = callbacks.EarlyStopping(monitor="val_accuracy", mode=mode, patience=1)
        assert _drive(es, [0.5, 0.6, 0.55, 0.58], key="val_accuracy")[0] == 2
    es = callbacks.EarlyStopping(monitor="val_accuracy", mode="min", patience=1)
    assert _drive(es, [0.5, 0.6, 0.55, 0.58], key="val_accuracy")[0] == 1
    # a baseline that is not beaten keeps the wait from resetting: one epoch earlier here
    assert _drive(callbacks.EarlyStopping(patience=2), [1.0, 1.1, 1.2, 1.3])[0] == 2
    assert _drive(callbacks.EarlyStopping(patience=2, baseline=0.1), [1.0, 1.1, 1.2, 1.3])[0] == 1
    # epochs before start_from_epoch are ignored
    es = callbacks.EarlyStopping(patience=0, start_from_epoch=3)
    assert _drive(es, [1.0, 2.0, 3.0, 4.0, 5.0])[0] == 4


def test_early_stopping_unknown_direction_and_missing_metric():
    es = callbacks.EarlyStopping(monitor="val_something")
    with pytest.raises(ValueError, match="mode='max'"):
        _drive(es, [1.0], key="val_something")
    es = callbacks.EarlyStopping(monitor="val_loss")
    with pytest.warns(UserWarning, match="not available"):
        assert _drive(es, [1.0, 2.0], key="other")[0] is None


def test_restore_best_weights_in_a_real_fit():
    """Validation targets anti-correlated with the training ones: val_loss worsens while the
    training loss improves, so training stops and the best (earliest) weights come back."""
    fastnn.set_seed(3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 5)).astype(np.float32)
    w = rng.standard_normal((5, 1)).astype(np.float32)
    y = x @ w
    model = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(1)])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="mse")
    seen = []
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append((logs["val_loss"], model.get_weights())))
    es = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    history = model.fit(x, y, epochs=30, batch_size=16, verbose=0,
                        validation_data=(x[:32], -y[:32]), callbacks=[record, es])
    best = int(np.argmin([v for v, _ in seen]))
    assert es.stopped_epoch > 0 and len(history.epoch) == es.stopped_epoch + 1 < 30
    assert es.best_epoch == best
    for a, b in zip(model.get_weights(), seen[best][1]):
        np.testing.assert_array_equal(a, b)


def test_model_checkpoint_rules_with_a_recording_model():
    ck = callbacks.ModelCheckpoint("ckpt-{epoch:02d}-{val_loss:.2f}.keras", save_best_only=True)
    _, model = _drive(ck, [1.0, 1.2, 0.5, 0.7])
    assert model.saved == [("model", "ckpt-01-1.00.keras"), ("model", "ckpt-03-0.50.keras")]
    ck = callbacks.ModelCheckpoint("w.weights", save_weights_only=True)
    _, model = _drive(ck, [1.0, 1.2])
    assert model.saved == [("weights", "w.weights")] * 2
    ck = callbacks.ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True,
                                   initial_value_threshold=0.55)
    _, model = _drive(ck, [0.5, 0.6, 0.58], key="val_accuracy")
    assert model.saved == [("model", "best.keras")]
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("x.keras", save_freq="batch")


def test_model_checkpoint_saves_the_best_model_in_a_real_fit(tmp_path):
    fastnn.set_seed(4)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((96, 4)).astype(np.float32)
    y = (x[:, :1] * 2).astype(np.float32)
    model = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(8, activation="relu"),
                               layers.BatchNormalization(), layers.Dense(1)])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="mse")
    seen = []
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append((logs["val_loss"], model.get_weights())))
    path = os.path.join(tmp_path, "sub", "best.keras")
    every = os.path.join(tmp_path, "e{epoch}.weights.npz")
    model.fit(x, y, epochs=5, batch_size=16, verbose=0, validation_data=(x[:40], -y[:40]),
              callbacks=[record, callbacks.ModelCheckpoint(path, save_best_only=True),
                         callbacks.ModelCheckpoint(every, save_weights_only=True)])
    assert sorted(os.listdir(tmp_path)) == sorted(["sub"] + [f"e{i}.weights.npz" for i in range(1, 6)])
    best = int(np.argmin([v for v, _ in seen]))
    loaded = fastnn.load_model(path)
    for a, b in zip(loaded.get_weights(), seen[best][1]):
        np.testing.assert_array_equal(a, b)
    model.load_weights(os.path.join(tmp_path, "e5.weights.npz"))
    for a, b in zip(model.get_weights(), seen[-1][1]):
        np.testing.assert_array_equal(a, b)
