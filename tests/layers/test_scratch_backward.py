"""Backward passes that write over the model's scratch dy (Layer._backward_out) must give
the same bits as writing into the layer's own buffers, and must leave a caller's dy alone."""
import numpy as np
import pytest

import fastnn
from fastnn import datasets, layers
from fastnn.layers.base import Layer


def _model(kind):
    fastnn.set_seed(11)
    hidden = {
        "dense": [layers.Dense(48, activation="relu"), layers.Dense(32, activation="gelu"),
                  layers.Dense(24, activation="tanh")],
        "activations": [layers.Dense(48), layers.Activation("relu"), layers.Dense(32),
                        layers.Activation("swish"), layers.Dense(24), layers.Activation("softmax"),
                        layers.Dense(16), layers.ReLU(), layers.Dense(16), layers.ELU(),
                        layers.LeakyReLU()],
        "bn_dropout": [layers.Dense(48), layers.BatchNormalization(), layers.Activation("relu"),
                       layers.Dropout(0.3), layers.Dense(32, activation="selu"),
                       layers.AlphaDropout(0.1), layers.Flatten(),
                       layers.Dropout(0.2, noise_shape=(None, 1)), layers.GaussianDropout(0.1),
                       layers.GaussianNoise(0.1), layers.LayerNormalization()],
    }[kind]
    m = fastnn.Sequential([layers.Input(shape=(64,))] + hidden + [layers.Dense(10, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("kind", ["dense", "activations", "bn_dropout"])
def test_in_place_backward_gives_the_same_training(kind, monkeypatch):
    (x, y), _ = datasets.load_digits()
    x, y = x[:600], y[:600]
    runs = []
    for scratch in (True, False):
        if not scratch:
            monkeypatch.setattr(Layer, "_backward_out",
                                lambda self, key, dy, shape: self._buffer(key, shape))
        m = _model(kind)
        fastnn.set_seed(5)
        m.fit(x, y, epochs=2, batch_size=64, verbose=0)
        runs.append(m.get_weights())
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_the_fit_loop_really_writes_in_place():
    (x, y), _ = datasets.load_digits()
    m = _model("activations")
    m.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0)
    act = m.layers[1]
    assert act._scratch_dy and "dx" not in act._buffers  # wrote over its dy
    dense = m.layers[0]
    assert "dz" not in dense._buffers or dense.fused_output_grad


@pytest.mark.parametrize("layer", [layers.Activation("relu"), layers.Dense(8, activation="tanh")])
def test_a_callers_dy_is_left_alone(layer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)).astype(np.float32)
    layer(x)  # builds it
    layer.forward(x, training=True)
    dy = rng.standard_normal((5, 8)).astype(np.float32)
    before = dy.copy()
    layer.backward(dy)
    assert np.array_equal(dy, before)
