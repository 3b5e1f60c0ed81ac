"""Layers through the public API: mixed dtypes autocast as in Keras 3, user layers that
change the width or skip Layer.__init__, Input's shape arguments, and clear errors for bad
shapes and structures."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers


def _xy(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, size=n)


@pytest.mark.parametrize("middle", [
    lambda: layers.Dropout(0.3, seed=1), lambda: layers.BatchNormalization(),
    lambda: layers.Activation("tanh"), lambda: layers.LayerNormalization(),
    lambda: layers.ReLU(), lambda: layers.PReLU(), lambda: layers.Dense(5)])
def test_mixed_dtype_layers_autocast_as_keras(middle):
    # Keras autocasts each layer's inputs to the layer's dtype: a float64 Dense next to a
    # default (float32) layer trained before with a deep "out has dtype float32, expected
    # float64" from the kernels
    x, y = _xy()
    model = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(8, dtype="float64"),
                              middle(), layers.Dense(3, activation="softmax", dtype="float64")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y))
    assert np.all(np.isfinite(h.history["loss"])) and np.all(np.isfinite(h.history["val_loss"]))
    after = model.get_weights()
    assert all(a.dtype == b.dtype for a, b in zip(before, after))
    assert not np.array_equal(before[0], after[0])  # the float64 first layer was trained
    p = model.predict(x, verbose=0)
    assert p.dtype == np.float64 and np.allclose(p.sum(axis=1), 1)
    assert np.isfinite(model.evaluate(x, y, verbose=0)[0])
    assert np.isfinite(model.train_on_batch(x, y)[0])


def test_mixed_dtype_float32_output_gradient_matches_a_float64_model():
    # the casts are exact for the gradient path: a float32 head on float64 layers trains like
    # the same model cast by hand (same initial weights, SGD, one full-batch step)
    x, y = _xy(n=16)
    def make(last_dtype):
        m = keras.Sequential([layers.Input(shape=(4,)),
                              layers.Dense(6, activation="tanh", dtype="float64"),
                              layers.Dense(3, activation="softmax", dtype=last_dtype)])
        m.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
        return m
    mixed, ref = make("float32"), make("float64")
    ref.set_weights(mixed.get_weights())
    mixed.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert mixed.predict(x, verbose=0).dtype == np.float32  # the last layer's dtype, as Keras
    assert all(a.dtype == np.float32 for a in mixed.predict(x, verbose=0, mc_samples=2))
    for a, b in zip(mixed.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _clf():
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    return m


class _FirstTwo(layers.Layer):
    # a Keras-style user layer that changes the width and defines no compute_output_shape:
    # Keras infers its output shape by running call; fastnn assumed the input shape, built the
    # next Dense for 4 inputs and failed in matmul ("mismatch in its core dimension 0")
    def call(self, x):
        return x[:, :2] * 2.0


def test_user_layer_output_shape_is_inferred_from_call():
    x, _ = _xy()
    y = x[:, :1] * 3
    m = keras.Sequential([layers.Input(shape=(4,)), _FirstTwo(), layers.Dense(1)])
    assert m.layers[0].output_shape == (None, 2) and m.layers[1].kernel.shape == (2, 1)
    m.compile(keras.optimizers.SGD(0.05), "mse")
    h = m.fit(x, y, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert m.predict(x, verbose=0).shape == (len(x), 1)
    unbuilt = keras.Sequential([_FirstTwo(), layers.Dense(3)])  # built on first call
    assert unbuilt.predict(x, verbose=0).shape == (len(x), 3)


def test_input_batch_shape_and_integer_input_shape():
    x, _ = _xy()
    # Keras 3: Input(batch_shape=(None, 4)); was "Input needs a shape"
    m = keras.Sequential([layers.Input(batch_shape=(None, 4)), layers.Dense(2)])
    assert m.predict(x, verbose=0).shape == (len(x), 2)
    # input_shape=4 like Input(shape=4) (was TypeError: 'int' object is not iterable)
    m = keras.Sequential([layers.Dense(2, input_shape=4)])
    assert m.predict(x, verbose=0).shape == (len(x), 2)
    with pytest.raises(ValueError, match="batch_shape"):
        layers.Input(shape=(4,), batch_shape=(None, 3))


def test_user_layer_that_skips_super_init_is_named():
    class NoSuper(layers.Layer):
        def __init__(self, factor):
            self.factor = factor

        def call(self, x):
            return x * self.factor
    with pytest.raises(RuntimeError, match=r"NoSuper.*super\(\).__init__\(\)"):
        keras.Sequential([layers.Input(shape=(4,)), NoSuper(2.0)])
    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        NoSuper(2.0)(np.ones((2, 4)))


def test_small_structure_mistakes_are_named():
    class AsList(layers.Layer):  # returns a list (Keras layers return tensors)
        def call(self, x):
            return (x * 2).tolist()
    x, y = _xy()
    m = keras.Sequential([layers.Input(shape=(4,)), AsList(), layers.Dense(1)])
    assert m.predict(x, verbose=0).shape == (len(x), 1)
    with pytest.raises(TypeError, match=r"got the class Dense \(add \(\)"):
        keras.Sequential([layers.Input(shape=(4,)), layers.Dense])
    with pytest.raises(ValueError, match="one output: metrics must be a list"):
        _clf().compile("sgd", "sparse_categorical_crossentropy", metrics={"out": ["accuracy"]})


@pytest.mark.parametrize("shape", [784, (None, 0), (None, -3), (None, 2.5)])
def test_build_with_a_bad_shape_is_named(shape):
    # (None, 0) built a Dense on 0 inputs; -3 gave NumPy's "negative dimensions"; 784 failed
    # in tuple()
    with pytest.raises(ValueError, match=r"build\(\): input_shape must be"):
        keras.Sequential([layers.Dense(2)]).build(shape)
