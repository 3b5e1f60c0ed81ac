"""Review of the public-API fuzzing fixes (b628f07..): regressions found in them."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers


def _clf(seed=0):
    keras.set_seed(seed)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _xy(n=24):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("steps", [None, 1])
@pytest.mark.parametrize("bad", [2.0, np.ones(5), np.ones((24, 3))])
def test_evaluate_sample_weight_of_the_wrong_shape_is_named_with_or_without_steps(steps, bad):
    # evaluate(steps=) sliced sample_weight before checking it: a scalar failed with NumPy's
    # 'too many indices for array', and 5 weights for 24 rows were taken when steps*batch <= 5
    x, y = _xy()
    with pytest.raises(ValueError, match=r"sample_weight has shape .*expected \(24,\)"):
        _clf().evaluate(x, y, batch_size=4, verbose=0, sample_weight=bad, steps=steps)


def test_evaluate_steps_weighs_the_rows_it_scores():
    x, y = _xy()
    w = np.linspace(0.0, 2.0, 24)
    m = _clf()
    assert m.evaluate(x, y, batch_size=4, verbose=0, sample_weight=w, steps=2) == pytest.approx(
        m.evaluate(x[:8], y[:8], batch_size=4, verbose=0, sample_weight=w[:8]))


@pytest.mark.parametrize("key", [float("nan"), float("inf"), np.float64(-np.inf)])
def test_non_finite_class_weight_keys_are_named(key):
    # the key check did int(k) first: NaN gave "cannot convert float NaN to integer", inf an
    # OverflowError (neither ValueError nor TypeError naming class_weight)
    x, y = _xy()
    with pytest.raises(ValueError, match="class_weight keys must be class indices"):
        _clf().fit(x, y, class_weight={key: 1.0, 0: 2.0}, verbose=0)


def test_array_as_batch_size_hint_fits_the_method():
    # 60aa305's hint named fit's arguments (epochs, validation_data=) for evaluate and predict
    # too: predict(x, y) was told to pass validation_data, which predict does not take
    x, y = _xy(n=50)
    m = _clf()
    with pytest.raises(ValueError, match=r"array of shape \(50,\).*predict\(x\).*no targets") as info:
        m.predict(x, y, verbose=0)
    assert "validation_data" not in str(info.value) and "epochs" not in str(info.value)
    with pytest.raises(ValueError, match=r"array of shape \(50, 4\).*evaluate\(x, y, batch_size") as info:
        m.evaluate(x, y, x, verbose=0)
    assert "validation_data" not in str(info.value) and "epochs" not in str(info.value)
    with pytest.raises(ValueError, match=r"array of shape \(50, 4\).*validation_data=\(x_val, y_val\)"):
        m.fit(x, y, x, y, verbose=0)


def test_class_weight_with_labels_in_an_object_array():
    # 4d21d29 accepts object arrays of numbers (pandas df.values) as targets, but e255cb6 took
    # class_weight's classes from the targets as given with np.round: "loop of ufunc does not
    # support argument 0 of type int which has no callable rint method"
    x, y = _xy()
    m, ref = _clf(), _clf()
    ref.set_weights(m.get_weights())
    m.fit(x, y.astype(object), class_weight={0: 2.0}, shuffle=False, verbose=0)
    ref.fit(x, y, class_weight={0: 2.0}, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_set_weights_takes_an_object_array_of_arrays(tmp_path):
    # np.save(path, np.array(model.get_weights(), dtype=object)) then
    # model.set_weights(np.load(path, allow_pickle=True)) works in Keras (it zips the arrays);
    # 8150192 refused every ndarray ("set_weights expects a list of arrays, got ndarray")
    src, dst = _clf(seed=1), _clf(seed=2)
    arr = np.empty(len(src.get_weights()), dtype=object)
    arr[:] = src.get_weights()
    np.save(tmp_path / "w.npy", arr)
    loaded = np.load(tmp_path / "w.npy", allow_pickle=True)
    dst.set_weights(loaded)
    dst.layers[0].set_weights(loaded)
    for a, b in zip(src.get_weights(), dst.get_weights()):
        np.testing.assert_array_equal(a, b)
    # one numeric array in place of the list is still named
    with pytest.raises(TypeError, match="set_weights expects a list of arrays"):
        dst.layers[0].set_weights(src.get_weights()[0])


def test_to_categorical_follows_keras_numpy_path():
    """Keras 3's NumPy path: float64 output, num_classes None or 0 inferred, trailing 1 dropped."""
    import numpy as np
    import pytest
    from fastnn.utils import to_categorical
    out = to_categorical([0, 2, 1])
    assert out.dtype == np.float64 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, np.eye(3)[[0, 2, 1]])
    assert to_categorical([1, 2], 0).shape == (2, 3)
    assert to_categorical(np.array([[0], [3]])).shape == (2, 4)
    assert to_categorical(np.zeros((2, 2, 1), int), 3).shape == (2, 2, 3)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        to_categorical([0, 1], "3")
    with pytest.raises(ValueError, match="positive integer"):
        to_categorical([0, 1], 2.5)


def test_steps_per_epoch_beyond_the_data_ends_the_epoch_with_a_warning_as_keras():
    """Keras 3's EpochIterator: with steps_per_epoch, an epoch that reaches the end of the
    data stops there with a warning, and the next epoch starts a new pass."""
    import warnings
    import numpy as np
    import pytest
    import fastnn
    from fastnn import layers
    x = np.arange(40, dtype="float32")[:, None]
    y = np.zeros((40, 1), "float32")

    def model():
        m = fastnn.Sequential([layers.Input(shape=(1,)), layers.Dense(1)])
        m.compile("sgd", "mse")
        return m
    m = model()
    with pytest.warns(UserWarning, match="data ran out after 1 of steps_per_epoch=3"):
        m.fit(x, y, batch_size=10, steps_per_epoch=3, epochs=3, shuffle=False, verbose=0)
    assert m.optimizer.iterations == 3 + 1 + 3  # 4 batches a pass: epoch 2 has one left
    m = model()
    with pytest.warns(UserWarning, match="data ran out after 4 of steps_per_epoch=6") as rec:
        m.fit(x, y, batch_size=10, steps_per_epoch=6, epochs=2, verbose=0)
    assert m.optimizer.iterations == 8 and len(rec) == 2
    m = model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole number of passes: no warning
        m.fit(x, y, batch_size=10, steps_per_epoch=2, epochs=4, verbose=0)
    assert m.optimizer.iterations == 8
