"""get_weights / set_weights and to_json through the public API: Keras 3's forms (a list,
an object array of arrays), values the variable's dtype cannot hold, and all-or-nothing
updates."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers


def _seeded_clf(seed=0):
    keras.set_seed(seed)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_set_weights_refuses_values_that_overflow_the_variables_dtype():
    # 1e300 is finite in float64 but inf in a float32 variable: it used to pass the check
    # (made before the cast) and give inf weights and NaN predictions
    m = _seeded_clf()
    w = m.get_weights()
    bad = [a.astype(np.float64) for a in w]
    bad[0][0, 0] = 1e300
    with pytest.raises(ValueError, match="non-finite"):
        m.set_weights(bad)
    with pytest.raises(ValueError, match="non-finite"):
        m.layers[0].kernel.assign(bad[0])
    np.testing.assert_array_equal(m.get_weights()[0], w[0])


@pytest.mark.parametrize("make", [lambda a: a.astype(str), lambda a: a.astype(complex)])
def test_set_weights_of_non_real_dtype_is_a_type_error(make):
    m = _seeded_clf()
    w = m.get_weights()
    bad = list(w)
    bad[0] = make(w[0])
    with pytest.raises(TypeError, match=r"dtype \S+ to variable 'dense\w*/kernel'"):
        m.set_weights(bad)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])
    # object arrays of numbers (e.g. from pandas) are numbers
    bad[0] = w[0].astype(object)
    m.set_weights(bad)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])


def test_set_weights_needs_a_list():
    with pytest.raises(TypeError, match="set_weights expects a list of arrays, got None"):
        _seeded_clf().set_weights(None)


def test_a_failed_set_weights_changes_nothing():
    # all arrays are checked before any is copied: a bad last array left the model half-set
    m = _seeded_clf()
    w = m.get_weights()
    new = [a + 1 for a in w]
    new[-1] = np.full_like(w[-1], np.nan)
    for target in (m, m.layers[0]):
        arrays = new if target is m else new[:1] + [np.full_like(w[1], np.inf)]
        with pytest.raises(ValueError, match="non-finite"):
            target.set_weights(arrays)
        for a, b in zip(w, m.get_weights()):
            np.testing.assert_array_equal(a, b)


def test_to_json_with_numpy_scalars_in_layer_arguments():
    # input_shape=X.shape[1:] of a NumPy shape array, units/rates as NumPy scalars: to_json
    # failed with "Object of type int64 is not JSON serializable" (save() handled them)
    m = keras.Sequential([layers.Dense(np.int64(2), input_shape=(np.int64(4),)),
                          layers.Dropout(np.float32(0.5), seed=np.int64(1))])
    assert m.input_shape == (None, 4) and type(m.input_shape[1]) is int
    again = keras.models.model_from_json(m.to_json())
    assert again.input_shape == (None, 4) and again.layers[0].units == 2


def test_set_weights_takes_an_object_array_of_arrays(tmp_path):
    # np.save(path, np.array(model.get_weights(), dtype=object)) then
    # model.set_weights(np.load(path, allow_pickle=True)) works in Keras (it zips the arrays);
    # fastnn refused every ndarray ("set_weights expects a list of arrays, got ndarray")
    src, dst = _seeded_clf(seed=1), _seeded_clf(seed=2)
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
