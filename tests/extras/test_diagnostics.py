"""fastnn.utils.sanity_check: finds the classic problems (bad initial loss, vanishing
gradients, dead ReLUs, a model that cannot overfit), stays quiet on a healthy model, and
leaves the model exactly as it was."""
import numpy as np
import pytest

import fastnn
from fastnn import datasets, initializers, layers, optimizers
from fastnn.utils import sanity_check


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = datasets.load_digits()
    return x[:500], y[:500]


def _model(hidden, optimizer=None, seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(64,))] + hidden + [layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizer or optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return m


def test_a_healthy_model_passes_and_is_left_as_it_was(digits):
    x, y = digits
    m = _model([layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                layers.BatchNormalization(), layers.Dropout(0.2),
                layers.Dense(32, activation="relu", kernel_initializer="he_normal")])
    m.fit(x, y, epochs=1, verbose=0)
    before, it = m.get_weights(), m.optimizer.iterations
    report = sanity_check(m, x, y)
    assert report["problems"] == []
    assert report["uniform_guess_loss"] == pytest.approx(np.log(10))
    assert report["overfit_loss_end"] < 0.5 * report["overfit_loss_start"]
    assert [s["name"] for s in report["layers"]] == [layer.name for layer in m.layers]
    assert report["layers"][0]["kernel_grad_norm"] > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.optimizer.iterations == it


def test_confident_wrong_initial_predictions(digits):
    x, y = digits
    m = _model([layers.Dense(64, activation="relu",
                             kernel_initializer=initializers.RandomNormal(stddev=3.0))])
    report = sanity_check(m, x, y, overfit_steps=5)
    assert any("initial loss" in p for p in report["problems"])


def test_vanishing_gradients(digits):
    x, y = digits
    tiny = initializers.RandomNormal(stddev=0.05)
    m = _model([layers.Dense(32, activation="sigmoid", kernel_initializer=tiny) for _ in range(8)])
    report = sanity_check(m, x, y, overfit_steps=5)
    assert any("vanishing" in p for p in report["problems"])


def test_dead_relus(digits):
    x, y = digits
    m = _model([layers.Dense(32, activation="relu", bias_initializer=initializers.Constant(-100.0))])
    report = sanity_check(m, x, y, overfit_steps=5)
    assert any("dead" in p and m.layers[0].name in p for p in report["problems"])
    assert report["layers"][0]["dead_fraction"] == 1.0


def test_a_model_that_cannot_learn(digits):
    x, y = digits
    m = _model([layers.Dense(32, activation="relu")], optimizer=optimizers.SGD(0.0))
    report = sanity_check(m, x, y, overfit_steps=20)
    assert any("cannot overfit" in p for p in report["problems"])


def test_bad_arguments(digits):
    x, y = digits
    fresh = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(10)])
    with pytest.raises(RuntimeError, match="compile"):
        sanity_check(fresh, x, y)
    m = _model([layers.Dense(8)])
    with pytest.raises(ValueError, match="overfit_steps"):
        sanity_check(m, x, y, overfit_steps=0)
    with pytest.raises(ValueError, match="samples"):
        sanity_check(m, x, y[:-1])
