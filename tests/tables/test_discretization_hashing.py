"""Discretization, Hashing, HashedCrossing and the hashes behind them: Keras 3's docstring
examples (keras/src/layers/preprocessing/{discretization,hashing,hashed_crossing}.py),
reference hash values from independent implementations, configs, errors."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.layers.preprocessing.hashes import (fingerprint64, fingerprint_cat64,
                                              fingerprint_cat64_array, siphash64)

KERAS_INPUT = np.array([[-1.5, 1.0, 3.4, .5], [0.0, 3.0, 1.3, 0.0]])


# ---- the hashes -------------------------------------------------------------------------
@pytest.mark.parametrize("data, expected", [
    # Google's FarmHash C++ (pyfarmhash 0.5.1, farmhash.fingerprint64): every length class
    (b"", 0x9ae16a3b2f90404f),
    (b"a", 0xb3454265b6df75e3),
    (b"abc", 0x24a5b3a074e7f369),
    (b"hello w", 0x19113ca5b97a6099),
    (b"0123456789abcde", 0x7c87406315b167cc),
    (b"x" * 20, 0x7241ce1f8ef74dc4),
    (bytes(range(40)), 0x08f45b937b49468c),
    (bytes(range(100)), 0x3cff0f886d8d6195),
    (bytes(range(256)), 0x496fbe15ed0e171f),
])
def test_fingerprint64_equals_farmhash_reference_values(data, expected):
    assert fingerprint64(data) == expected


def test_siphash64_equals_the_reference_vectors_of_the_siphash_paper():
    # Aumasson & Bernstein, "SipHash: a fast short-input PRF", appendix A: key 00..0f,
    # message 00..0e -> a129ca6149be45e5; the empty message -> 726fdb47dd0e0e31
    key = (0x0706050403020100, 0x0f0e0d0c0b0a0908)
    assert siphash64(bytes(range(15)), key) == 0xa129ca6149be45e5
    assert siphash64(b"", key) == 0x726fdb47dd0e0e31


# ---- Discretization ---------------------------------------------------------------------
def test_discretization_with_bin_boundaries_keras_example():
    out = layers.Discretization(bin_boundaries=[0., 1., 2.])(KERAS_INPUT)
    np.testing.assert_array_equal(out, [[0, 2, 3, 1], [1, 3, 2, 1]])
    assert out.dtype == np.int32


def test_discretization_adapt_quantiles_keras_example():
    layer = layers.Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(KERAS_INPUT)
    np.testing.assert_array_equal(layer(KERAS_INPUT), [[0, 2, 3, 2], [1, 3, 3, 1]])
    assert len(layer.bin_boundaries) == 3


def test_discretization_adapt_on_many_values_gives_the_quantiles():
    x = np.arange(1000, dtype=np.float64)
    layer = layers.Discretization(num_bins=4)
    layer.adapt(x)
    np.testing.assert_allclose(layer.bin_boundaries, [249.5, 499.5, 749.5], atol=1.5)
    counts = np.bincount(layer(x), minlength=4)  # approximate quantiles (epsilon=0.01)
    assert np.abs(counts - 250).max() <= 2 and counts.sum() == 1000


def test_discretization_adapt_on_batches_ignores_nan():
    x = np.arange(100, dtype=np.float64)
    whole = layers.Discretization(num_bins=5)
    whole.adapt(x)
    batched = layers.Discretization(num_bins=5)
    batched.adapt([np.append(x[:50], np.nan), x[50:]])
    np.testing.assert_allclose(batched.bin_boundaries, whole.bin_boundaries, atol=1.0)
    with pytest.raises(ValueError, match="no data"):
        layers.Discretization(num_bins=3).adapt(np.array([np.nan]))


def test_discretization_output_modes():
    layer = layers.Discretization(bin_boundaries=[0., 1.], output_mode="one_hot")
    np.testing.assert_array_equal(layer(np.array([[-1.0], [0.5], [3.0]])),
                                  [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    count = layers.Discretization(bin_boundaries=[0., 1.], output_mode="count")
    np.testing.assert_array_equal(count(np.array([[-1.0, 2.0, 3.0]])), [[1, 0, 2]])


def test_discretization_config_round_trip_keeps_adapted_boundaries():
    layer = layers.Discretization(num_bins=4, epsilon=0.01)
    layer.adapt(KERAS_INPUT)
    clone = layers.Discretization.from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.bin_boundaries == layer.bin_boundaries
    np.testing.assert_array_equal(clone(KERAS_INPUT), layer(KERAS_INPUT))


def test_discretization_errors():
    with pytest.raises(ValueError, match="not both"):
        layers.Discretization(bin_boundaries=[0.], num_bins=2)
    with pytest.raises(ValueError, match="either num_bins or bin_boundaries"):
        layers.Discretization()
    with pytest.raises(ValueError, match="adapt"):
        layers.Discretization(num_bins=3)(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="use num_bins"):
        layers.Discretization(bin_boundaries=[0.]).adapt(np.zeros(3))
    with pytest.raises(ValueError, match="sorted"):
        layers.Discretization(bin_boundaries=[1., 0.])


def test_discretization_first_in_a_graph_model():
    inp = fastnn.Input(shape=(2,))
    codes = layers.Discretization(bin_boundaries=[0., 1.], output_mode="multi_hot")(inp)
    assert codes.shape == (None, 3)
    model = fastnn.Model(inp, layers.Dense(1)(codes))
    x = np.array([[-1.0, 0.5], [2.0, 2.0]])
    w = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.array([[1, 1, 0], [0, 0, 1]]) @ w[0] + w[1], rtol=1e-6)


# ---- Hashing ----------------------------------------------------------------------------
def test_hashing_farmhash_keras_example():
    out = layers.Hashing(num_bins=3)([["A"], ["B"], ["C"], ["D"], ["E"]])
    np.testing.assert_array_equal(out, [[1], [0], [1], [1], [2]])
    assert out.dtype == np.int64


def test_hashing_mask_value_keras_example():
    out = layers.Hashing(num_bins=3, mask_value="")([["A"], ["B"], [""], ["C"], ["D"]])
    np.testing.assert_array_equal(out, [[1], [1], [0], [2], [2]])


def test_hashing_siphash_salt_keras_examples():
    inp = [["A"], ["B"], ["C"], ["D"], ["E"]]
    np.testing.assert_array_equal(layers.Hashing(num_bins=3, salt=[133, 137])(inp),
                                  [[1], [2], [1], [0], [2]])
    np.testing.assert_array_equal(layers.Hashing(num_bins=3, salt=133)(inp),
                                  [[0], [0], [2], [1], [0]])


def test_hashing_integers_hash_as_their_decimal_strings():
    # Keras converts integers with tf.as_string (and floats to int64 first) before hashing
    ints = layers.Hashing(num_bins=7)(np.array([3, -12, 105]))
    strs = layers.Hashing(num_bins=7)(np.array(["3", "-12", "105"], dtype=object))
    floats = layers.Hashing(num_bins=7)(np.array([3.0, -12.0, 105.0]))
    np.testing.assert_array_equal(ints, strs)
    np.testing.assert_array_equal(floats, strs)
    np.testing.assert_array_equal(ints, [fingerprint64(s.encode()) % 7 for s in ("3", "-12", "105")])


def test_hashing_one_hot_and_config_round_trip():
    layer = layers.Hashing(num_bins=4, output_mode="one_hot", salt=5)
    x = np.array([["a"], ["b"], ["c"]], dtype=object)
    out = layer(x)
    assert out.shape == (3, 4) and out.sum() == 3
    clone = layers.Hashing.from_config(json.loads(json.dumps(layer.get_config())))
    np.testing.assert_array_equal(clone(x), out)
    with pytest.raises(ValueError, match="num_bins"):
        layers.Hashing(num_bins=0)
    with pytest.raises(ValueError, match="salt"):
        layers.Hashing(num_bins=3, salt="pepper")


# ---- HashedCrossing ---------------------------------------------------------------------
def test_hashed_crossing_keras_examples():
    feat1 = np.array(["A", "B", "A", "B", "A"])
    feat2 = np.array([101, 101, 101, 102, 102])
    np.testing.assert_array_equal(layers.HashedCrossing(num_bins=5)((feat1, feat2)),
                                  [1, 4, 1, 1, 3])
    one = layers.HashedCrossing(num_bins=5, output_mode="one_hot")((feat1, feat2))
    np.testing.assert_array_equal(one, [[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 1, 0, 0, 0],
                                        [0, 1, 0, 0, 0], [0, 0, 0, 1, 0]])


def test_hashed_crossing_errors():
    with pytest.raises(ValueError, match="at least two"):
        layers.HashedCrossing(num_bins=5)(np.array([1, 2]))
    with pytest.raises(ValueError, match="same shape"):
        layers.HashedCrossing(num_bins=5)((np.array([1, 2]), np.array([1, 2, 3])))
    with pytest.raises(TypeError, match="integers or strings"):
        layers.HashedCrossing(num_bins=5)((np.array([1.5, 2.0]), np.array([1, 2])))


def test_vectorized_fingerprint_cat64_equals_the_scalar_one():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 2 ** 63, 500, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(-2 ** 62, 2 ** 62, 500).view(np.uint64)  # negative codes: two's complement
    got = fingerprint_cat64_array(a, b)
    assert [int(v) for v in got] == [fingerprint_cat64(int(x), int(y)) for x, y in zip(a, b)]
