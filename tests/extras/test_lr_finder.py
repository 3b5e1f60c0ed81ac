"""The learning-rate range test (fastnn.utils.find_learning_rate): a sensible curve, and the
model comes back exactly as it was, so training afterwards is unchanged bit for bit."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import datasets, layers, optimizers
from fastnn.optimizers import schedules
from fastnn.utils import find_learning_rate


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = datasets.load_digits()
    return x[:800], y[:800]


def _model(optimizer, seed=3):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(32), layers.BatchNormalization(),
                           layers.Activation("relu"), layers.Dropout(0.2),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("make_opt", [
    lambda: optimizers.Adam(1e-3),
    lambda: optimizers.Nadam(schedules.ExponentialDecay(1e-2, 50, 0.5)),
    lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: optimizers.Adagrad(0.05)])
@pytest.mark.parametrize("trained_before", [False, True])
def test_training_after_the_test_is_unchanged(digits, make_opt, trained_before):
    x, y = digits
    runs = []
    for with_test in (True, False):
        m = _model(make_opt())
        if trained_before:
            m.fit(x, y, epochs=1, batch_size=64, verbose=0)
        if with_test:
            r = find_learning_rate(m, x, y, steps=30, max_lr=100.0)
            assert len(r["learning_rates"]) >= 2
        h = m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        runs.append((m.get_weights(), m.optimizer.iterations, float(m.optimizer.learning_rate),
                     h.history))
    (wa, ia, la, ha), (wb, ib, lb, hb) = runs
    assert ia == ib and la == lb and ha == hb
    for a, b in zip(wa, wb):
        assert np.array_equal(a, b)


def test_the_curve(digits):
    x, y = digits
    m = _model(optimizers.SGD())
    r = find_learning_rate(m, x, y, min_lr=1e-4, max_lr=1e3, steps=120, batch_size=32)
    lrs, losses = r["learning_rates"], r["losses"]
    assert r["diverged"] and 2 <= len(lrs) < 120  # 1e3 blows SGD up before the last step
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, (1e3 / 1e-4) ** (1 / 119), rtol=1e-9)  # geometric
    assert lrs[0] == pytest.approx(1e-4)
    finite = losses[np.isfinite(losses)]
    assert finite.min() < 0.7 * finite[0]  # it learned before blowing up
    assert 1e-4 <= r["best"] <= lrs[-1] and r["suggested"] == pytest.approx(r["best"] / 10)
    assert r["losses"][int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))] == finite.min()
    assert len(r["raw_losses"]) == len(lrs)


def test_the_suggested_rate_trains(digits):
    x, y = digits
    m = _model(optimizers.SGD())
    r = find_learning_rate(m, x, y, min_lr=1e-4, max_lr=1e2, steps=100)
    before = m.evaluate(x, y, verbose=0)[0]
    m.optimizer.learning_rate = r["suggested"]
    m.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert m.evaluate(x, y, verbose=0)[0] < 0.5 * before


def test_the_model_is_restored_when_a_step_fails(digits, monkeypatch):
    x, y = digits
    m = _model(optimizers.Adam())
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    before = m.get_weights()
    real, calls = type(m).train_on_batch, []

    def failing(self, *a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, *a, **k)
    monkeypatch.setattr(type(m), "train_on_batch", failing)
    with pytest.raises(KeyboardInterrupt):
        find_learning_rate(m, x, y, steps=20)
    for a, b in zip(before, m.get_weights()):
        assert np.array_equal(a, b)
    assert m.optimizer.iterations == math.ceil(800 / 64)


def test_bad_arguments(digits):
    x, y = digits
    m = _model(optimizers.Adam())
    fresh = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(10)])
    with pytest.raises(RuntimeError, match="compile"):
        find_learning_rate(fresh, x, y)
    for kwargs, match in [({"min_lr": 1.0, "max_lr": 0.1}, "below"), ({"min_lr": 0}, "min_lr"),
                          ({"max_lr": float("nan")}, "max_lr"), ({"steps": 1}, "steps"),
                          ({"batch_size": 0}, "batch_size"), ({"stop_factor": 1}, "stop_factor"),
                          ({"smoothing": 0}, "smoothing")]:
        with pytest.raises(ValueError, match=match):
            find_learning_rate(m, x, y, **kwargs)
    with pytest.raises(ValueError, match="samples"):
        find_learning_rate(m, x, y[:-1])
