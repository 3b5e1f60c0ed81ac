"""StringLookup, IntegerLookup and CategoryEncoding: Keras 3's docstring examples (expected
values copied from keras/src/layers/preprocessing/{string,integer}_lookup.py and
category_encoding.py), OOV and mask behaviour, adapt ordering, missing values, configs."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import layers

VOCAB = ["a", "b", "c", "d"]
IVOCAB = [12, 36, 1138, 42]


# ---- StringLookup: Keras docstring examples ----------------------------------------------
def test_string_lookup_known_vocabulary_keras_example():
    # "Creating a lookup layer with a known vocabulary"
    out = layers.StringLookup(vocabulary=VOCAB)([["a", "c", "d"], ["d", "z", "b"]])
    np.testing.assert_array_equal(out, [[1, 3, 4], [4, 0, 2]])
    assert out.dtype == np.int64


def test_string_lookup_adapt_orders_by_count_then_descending_token_keras_example():
    # "Creating a lookup layer with an adapted vocabulary"
    data = [["a", "c", "d"], ["d", "z", "b"]]
    layer = layers.StringLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(layer(data), [[5, 3, 1], [1, 2, 4]])
    assert layer.vocabulary_size() == 6
    assert layer.get_vocabulary(include_special_tokens=False) == ["d", "z", "c", "b", "a"]


def test_string_lookup_multiple_oov_indices_use_farmhash_buckets_keras_example():
    # "Lookups with multiple OOV indices": 'm' -> 0, 'z' -> 1 (TF's to_hash_bucket_fast)
    out = layers.StringLookup(vocabulary=VOCAB, num_oov_indices=2)([["a", "c", "d"],
                                                                     ["m", "z", "b"]])
    np.testing.assert_array_equal(out, [[2, 4, 5], [0, 1, 3]])


def test_string_lookup_one_hot_multi_hot_count_keras_examples():
    one = layers.StringLookup(vocabulary=VOCAB, output_mode="one_hot")(["a", "b", "c", "d", "z"])
    np.testing.assert_array_equal(one, [[0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0],
                                        [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]])
    data = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
    multi = layers.StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(data)
    np.testing.assert_array_equal(multi, [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    count = layers.StringLookup(vocabulary=VOCAB, output_mode="count")(data)
    np.testing.assert_array_equal(count, [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    assert one.dtype == multi.dtype == count.dtype == np.float32


def test_string_lookup_tf_idf_keras_examples():
    data = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.set_vocabulary(VOCAB, idf_weights=[0.25, 0.75, 0.6, 0.4])
    # the OOV weight is the mean of the given ones: 0.5
    np.testing.assert_allclose(layer(data), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]],
                               rtol=1e-6)
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.set_vocabulary(["[UNK]"] + VOCAB, idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(layer(data), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]],
                               rtol=1e-6)


def test_string_lookup_tf_idf_adapt_uses_keras_idf_formula():
    # idf = log(1 + num_documents / (1 + document count)), OOV gets the mean
    data = [["a", "b"], ["a", "a"], ["c", "a"]]
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.adapt(data)
    assert layer.get_vocabulary() == ["[UNK]", "a", "c", "b"]
    idf = np.log(1 + 3 / (1 + np.array([3, 1, 1])))
    expected = np.concatenate([[idf.mean()], idf])
    np.testing.assert_allclose(layer.idf_weights, expected, rtol=1e-6)
    np.testing.assert_allclose(layer([["a", "a"]])[0], [0, 2 * idf[0], 0, 0], rtol=1e-6)


def test_string_lookup_invert_keras_examples():
    out = layers.StringLookup(vocabulary=VOCAB, invert=True)([[1, 3, 4], [4, 0, 2]])
    assert out.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]
    forward = layers.StringLookup(vocabulary=VOCAB)
    inverse = layers.StringLookup(vocabulary=VOCAB, invert=True)
    back = inverse(forward([["a", "c", "d"], ["d", "z", "b"]]))
    assert back.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]


def test_string_lookup_mask_token_is_index_zero_and_dropped_in_multi_hot():
    layer = layers.StringLookup(vocabulary=VOCAB, mask_token="")
    # index 0 is the mask, 1 the OOV, tokens from 2
    np.testing.assert_array_equal(layer([["a", "", "z"]]), [[2, 0, 1]])
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b", "c", "d"]
    multi = layers.StringLookup(vocabulary=VOCAB, mask_token="", output_mode="multi_hot")
    np.testing.assert_array_equal(multi([["a", ""]]), [[0, 0, 1, 0, 0, 0]])


def test_string_lookup_missing_values_map_to_oov_and_are_not_learned():
    layer = layers.StringLookup()
    layer.adapt(np.array(["x", None, "y", "", np.nan, "x"], dtype=object))
    assert layer.get_vocabulary() == ["[UNK]", "x", "y"]
    out = layer(np.array(["y", None, "", np.nan, "never seen", "x"], dtype=object))
    np.testing.assert_array_equal(out, [2, 0, 0, 0, 0, 1])


def test_string_lookup_max_tokens_keeps_the_most_frequent():
    layer = layers.StringLookup(max_tokens=3)
    layer.adapt(["b", "a", "a", "c", "c", "c", "d"])
    assert layer.get_vocabulary() == ["[UNK]", "c", "a"]
    np.testing.assert_array_equal(layer(["d", "c", "a", "b"]), [0, 1, 2, 0])


def test_string_lookup_accepts_bytes_and_pandas_like_objects():
    layer = layers.StringLookup(vocabulary=VOCAB)
    np.testing.assert_array_equal(layer(np.array([b"a", b"d"])), [1, 4])


def test_string_lookup_zero_oov_indices_refuses_unknown_values_with_their_names():
    layer = layers.StringLookup(vocabulary=VOCAB, num_oov_indices=0)
    np.testing.assert_array_equal(layer(["a", "d"]), [0, 3])
    with pytest.raises(ValueError, match="out-of-vocabulary values \\['zz'\\]"):
        layer(["a", "zz"])


def test_string_lookup_errors_name_the_problem():
    with pytest.raises(ValueError, match="no vocabulary"):
        layers.StringLookup()(["a"])
    with pytest.raises(ValueError, match="repeated"):
        layers.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="output_mode"):
        layers.StringLookup(output_mode="bogus")
    with pytest.raises(ValueError, match="invert"):
        layers.StringLookup(invert=True, output_mode="one_hot")
    with pytest.raises(ValueError, match="Cannot adapt"):
        layers.StringLookup(vocabulary=VOCAB).adapt(["a"])
    with pytest.raises(ValueError, match="max_tokens"):
        layers.StringLookup(vocabulary=VOCAB, max_tokens=3)


# ---- IntegerLookup: Keras docstring examples ---------------------------------------------
def test_integer_lookup_known_vocabulary_and_adapt_keras_examples():
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(layers.IntegerLookup(vocabulary=IVOCAB)(data),
                                  [[1, 3, 4], [4, 0, 2]])
    layer = layers.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    np.testing.assert_array_equal(layer(data), [[5, 2, 1], [1, 3, 4]])


def test_integer_lookup_multiple_oov_indices_floormod_and_farmhash_keras_examples():
    data = np.array([[12, 1138, 42], [37, 1000, 36]])
    np.testing.assert_array_equal(layers.IntegerLookup(vocabulary=IVOCAB, num_oov_indices=2)(data),
                                  [[2, 4, 5], [1, 0, 3]])
    oov = np.array([100, 300, 700, 1100, 1700, 2000])
    floormod = layers.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4)
    farmhash = layers.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4,
                                    oov_method="farmhash")
    np.testing.assert_array_equal(floormod(oov), [0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(farmhash(oov), [3, 3, 2, 2, 0, 1])


def test_integer_lookup_output_modes_keras_examples():
    one = layers.IntegerLookup(vocabulary=IVOCAB, output_mode="one_hot")(
        np.array([12, 36, 1138, 42, 7]))
    np.testing.assert_array_equal(one, np.eye(5)[[1, 2, 3, 4, 0]])
    data = np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])
    np.testing.assert_array_equal(
        layers.IntegerLookup(vocabulary=IVOCAB, output_mode="multi_hot")(data),
        [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]])
    np.testing.assert_array_equal(
        layers.IntegerLookup(vocabulary=IVOCAB, output_mode="count")(data),
        [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]])
    tfidf = layers.IntegerLookup(output_mode="tf_idf", vocabulary=[-1] + IVOCAB,
                                 idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(tfidf(data), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]],
                               rtol=1e-6)


def test_integer_lookup_invert_keras_example():
    out = layers.IntegerLookup(vocabulary=IVOCAB, invert=True)(np.array([[1, 3, 4], [4, 0, 2]]))
    np.testing.assert_array_equal(out, [[12, 1138, 42], [42, -1, 36]])


def test_integer_lookup_takes_whole_floats_nan_as_missing_and_numeric_strings():
    layer = layers.IntegerLookup()
    layer.adapt(np.array([3.0, 5.0, np.nan, 3.0]))
    assert layer.get_vocabulary() == [-1, 3, 5]
    np.testing.assert_array_equal(layer(np.array([5.0, np.nan, 9.0])), [2, 0, 0])
    np.testing.assert_array_equal(layer(np.array(["3", None, " 5", "3.0"], dtype=object)),
                                  [1, 0, 2, 1])
    with pytest.raises(ValueError, match="must hold integers"):
        layer(np.array([1.5]))
    with pytest.raises(ValueError, match="use StringLookup"):
        layer(np.array(["cat"], dtype=object))


# ---- CategoryEncoding: Keras docstring examples ------------------------------------------
def test_category_encoding_keras_examples():
    one = layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")([3, 2, 0, 1])
    np.testing.assert_array_equal(one, [[0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]])
    data = [[0, 1], [0, 0], [1, 2], [3, 1]]
    multi = layers.CategoryEncoding(num_tokens=4, output_mode="multi_hot")(data)
    np.testing.assert_array_equal(multi, [[1, 1, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 0, 1]])
    w = np.array([[.1, .2], [.1, .1], [.2, .3], [.4, .2]])
    count = layers.CategoryEncoding(num_tokens=4, output_mode="count")(data, count_weights=w)
    np.testing.assert_allclose(count, [[.1, .2, 0, 0], [.2, 0, 0, 0], [0, .2, .3, 0],
                                       [0, .2, 0, .4]], rtol=1e-6)


def test_category_encoding_refuses_out_of_range_values():
    with pytest.raises(ValueError, match="0 <= value < num_tokens=4; got \\[4\\]"):
        layers.CategoryEncoding(num_tokens=4)([[0, 4]])
    with pytest.raises(ValueError, match="count_weights"):
        layers.CategoryEncoding(num_tokens=4, output_mode="one_hot")([1], count_weights=[1.0])


# ---- configs and models -----------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda: layers.StringLookup(max_tokens=10, num_oov_indices=2, mask_token="", salt=7),
    lambda: layers.IntegerLookup(num_oov_indices=3, oov_method="farmhash", output_mode="count"),
    lambda: layers.StringLookup(output_mode="tf_idf"),
])
def test_adapted_lookup_round_trips_through_json_config(make):
    layer = make()
    data = [["a", "b", "c"], ["a", "x", "e"]] if isinstance(layer, layers.StringLookup) \
        else [[1, 2, 3], [1, 9, 5]]
    layer.adapt(data)
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer).from_config(config)
    probe = [["a", "zz", "q"], ["e", "b", "x"]] if isinstance(layer, layers.StringLookup) \
        else [[1, 77, 78], [5, 2, 9]]
    np.testing.assert_array_equal(clone(probe), layer(probe))
    assert clone.get_vocabulary() == layer.get_vocabulary()
    clone.adapt(data)  # adapted, not "given a vocabulary": may adapt again


def test_integer_lookup_first_in_a_sequential_model_trains_and_saves(tmp_path):
    fastnn.set_seed(0)
    x = np.array([[3.0], [5.0], [7.0], [3.0], [9.0]] * 8)
    y = (x[:, 0] > 4).astype(np.float32)
    lookup = layers.IntegerLookup(vocabulary=[3, 5, 7], output_mode="one_hot")
    model = fastnn.Sequential([fastnn.Input(shape=(1,)), lookup,
                               layers.Dense(1, activation="sigmoid")])
    assert model.output_shape == (None, 1)
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=2, verbose=0)
    before = model.predict(x, verbose=0)
    model.save(tmp_path / "m.fnn")
    again = fastnn.models.load_model(tmp_path / "m.fnn")
    np.testing.assert_array_equal(again.predict(x, verbose=0), before)
    assert again.layers[0].get_vocabulary() == lookup.get_vocabulary()


def test_preprocessing_layers_are_registered_and_not_trainable():
    for name in ("StringLookup", "IntegerLookup", "CategoryEncoding", "Discretization", "Hashing",
                 "HashedCrossing"):
        assert layers.get(name).__name__ == name
    layer = layers.StringLookup(vocabulary=VOCAB)
    layer.trainable = True
    assert layer.trainable is False and layer.trainable_weights == []


def test_pandas_missing_markers_are_missing_values():
    pd = pytest.importorskip("pandas")
    layer = layers.StringLookup(vocabulary=VOCAB)
    col = pd.Series(["a", None, "d"], dtype="string")  # None becomes pd.NA
    np.testing.assert_array_equal(layer(col), [1, 0, 4])
    ints = layers.IntegerLookup(vocabulary=[7, 8])
    np.testing.assert_array_equal(ints(pd.Series([8, None, 7], dtype="Int64")), [2, 0, 1])
