"""fastnn.utils.FeatureSpace: Keras 3's docstring and keras.io guide patterns
(keras/src/layers/preprocessing/feature_space.py), concat width and order, missing values,
configs, state, saving, symbolic tensors, and the errors."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.saving import InvalidModelFileError
from fastnn.utils import FeatureSpace, load_feature_space

# The "Basic usage with a dict of input data" example of Keras' FeatureSpace docstring.
RAW = {"float_values": [0.0, 0.1, 0.2, 0.3],
       "string_values": ["zero", "one", "two", "three"],
       "int_values": [0, 1, 2, 3]}


def keras_docstring_space():
    return FeatureSpace(features={"float_values": "float_normalized",
                                  "string_values": "string_categorical",
                                  "int_values": "integer_categorical"},
                        crosses=[("string_values", "int_values")], output_mode="concat")


def table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.normal(40, 12, n)
    age[[2, 7]] = np.nan
    city = rng.choice(["paris", "lyon", "nice"], n).astype(object)
    city[[3, 9]] = [None, ""]
    return {"age": age, "city": city, "rooms": rng.integers(1, 5, n),
            "income": rng.lognormal(3, 1, n), "label": rng.integers(0, 2, n)}


def table_space():
    return FeatureSpace({"age": FeatureSpace.float_normalized(impute="median",
                                                              missing_indicator=True),
                         "city": "string_categorical",
                         "rooms": "integer_categorical",
                         "income": FeatureSpace.float_discretized(num_bins=4)},
                        crosses=[FeatureSpace.cross(("city", "rooms"), crossing_dim=8)])


# ---- Keras' examples ----------------------------------------------------------------------
def test_keras_docstring_example_concat_order_width_and_values():
    fs = keras_docstring_space()
    fs.adapt(RAW)
    out = fs(RAW)
    # sorted features (float_values 1, int_values 4+1 OOV, string_values 4+1), then the cross (32)
    assert out.shape == (4, 1 + 5 + 5 + 32) and out.dtype == np.float32
    assert fs.encoded_width == 43
    assert list(fs.feature_slices()) == ["float_values", "int_values", "string_values",
                                         "string_values_X_int_values"]
    x = np.array(RAW["float_values"])
    np.testing.assert_allclose(out[:, 0], (x - x.mean()) / x.std(), rtol=1e-5)
    # ties in the adapted vocabularies: descending token order (Keras' lexsort(...)[::-1])
    assert fs.preprocessors["string_values"].get_vocabulary() == ["[UNK]", "zero", "two",
                                                                  "three", "one"]
    assert fs.preprocessors["int_values"].get_vocabulary() == [-1, 3, 2, 1, 0]
    s_idx = np.array([1, 4, 2, 3])  # zero, one, two, three
    i_idx = np.array([4, 3, 2, 1])  # 0, 1, 2, 3
    np.testing.assert_array_equal(out[:, 1:6], np.eye(5)[i_idx])
    np.testing.assert_array_equal(out[:, 6:11], np.eye(5)[s_idx])
    cross = fs.crossers["string_values_X_int_values"]((s_idx, i_idx))
    np.testing.assert_array_equal(out[:, 11:], np.eye(32)[cross])


def test_keras_docstring_example_dict_of_integer_codes():
    fs = FeatureSpace(features={
        "string_values": FeatureSpace.string_categorical(output_mode="int"),
        "int_values": FeatureSpace.integer_categorical(output_mode="int")},
        crosses=[FeatureSpace.cross(feature_names=("string_values", "int_values"),
                                    crossing_dim=32, output_mode="int")],
        output_mode="dict")
    fs.adapt(RAW)
    out = fs(RAW)
    assert list(out) == ["int_values", "string_values", "string_values_X_int_values"]
    np.testing.assert_array_equal(out["string_values"][:, 0], [1, 4, 2, 3])
    np.testing.assert_array_equal(out["int_values"][:, 0], [4, 3, 2, 1])
    assert out["string_values_X_int_values"].shape == (4, 1)
    assert out["string_values_X_int_values"].max() < 32


def test_keras_docstring_example_custom_preprocessing_layer():
    fs = FeatureSpace(features={"text": FeatureSpace.feature(
        preprocessor=layers.StringLookup(output_mode="tf_idf"), dtype="string",
        output_mode="float")}, output_mode="concat")
    data = {"text": ["1st string", "2nd string", "1st string"]}
    fs.adapt(data)
    out = fs(data)
    assert out.shape == (3, 3) and fs.encoded_width == 3
    idf_first = np.log(1 + 3 / (1 + 2))
    assert out[0, 1] == pytest.approx(idf_first, rel=1e-6)


def test_unbatched_dict_of_scalars_is_one_row():
    fs = keras_docstring_space()
    fs.adapt(RAW)
    one = fs({"float_values": 0.2, "string_values": "two", "int_values": 2})
    np.testing.assert_array_equal(one, fs(RAW)[2])


def test_keras_guide_model_pattern_trains_on_the_encoded_tensor():
    # keras.io "Structured data classification with FeatureSpace": Dense layers on
    # get_encoded_features(), training model from the encoded tensor
    data = table()
    fs = table_space()
    fs.adapt(data)
    inputs = fs.get_inputs()
    assert list(inputs) == ["age", "city", "rooms", "income"]
    assert all(t._feature_space is fs and t.shape == (None, 1) for t in inputs.values())
    assert inputs["city"].dtype == "string"
    encoded = fs.get_encoded_features()
    assert encoded.shape == (None, fs.encoded_width) and encoded._feature_space is fs
    assert fs.get_encoded_features() is encoded
    fastnn.set_seed(1)
    h = layers.Dense(8, activation="relu")(encoded)
    out = layers.Dense(1, activation="sigmoid")(layers.Dropout(0.5)(h))
    model = fastnn.Model(inputs=encoded, outputs=out)
    model.compile("adam", "binary_crossentropy")
    model.fit(fs(data), data["label"], epochs=2, verbose=0)
    assert model.predict(fs(data), verbose=0).shape == (60, 1)


# ---- missing values and unseen categories -----------------------------------------------
def test_float_imputation_and_missing_indicator():
    data = table()
    fs = table_space()
    fs.adapt(data)
    out = fs(data)
    sl = fs.feature_slices()["age"]
    assert sl.stop - sl.start == 2
    age = data["age"]
    observed = age[~np.isnan(age)]
    median = np.median(observed)
    assert fs.features["age"].impute_value == median
    norm = fs.preprocessors["age"]
    mean, var = norm.adapt_mean.numpy()[0], norm.adapt_variance.numpy()[0]
    np.testing.assert_allclose(mean, observed.mean(), rtol=1e-6)  # adapted on observed values
    filled = np.where(np.isnan(age), median, age).astype(np.float32)
    np.testing.assert_allclose(out[:, sl.start], (filled - mean) / np.sqrt(var), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_array_equal(out[:, sl.start + 1], np.isnan(age).astype(np.float32))


def test_mean_imputation_fills_with_the_observed_mean():
    fs = FeatureSpace({"x": FeatureSpace.float(impute="mean")})
    fs.adapt({"x": [1.0, None, 3.0, ""]})
    np.testing.assert_array_equal(fs({"x": [np.nan, 5.0]})[:, 0], [2.0, 5.0])


def test_nan_in_a_float_feature_without_imputation_names_the_column_and_count():
    fs = FeatureSpace({"x": "float_normalized", "y": "float"})
    with pytest.raises(ValueError, match=r"float feature 'x' has 2 missing value\(s\).*in 4 rows"):
        fs.adapt({"x": [1.0, np.nan, None, 2.0], "y": [1.0, 2.0, 3.0, 4.0]})
    fs.adapt({"x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(ValueError, match=r"float feature 'y' has 1 missing value\(s\)"):
        fs({"x": [1.0], "y": [np.nan]})


def test_categorical_unseen_and_missing_values_go_to_oov():
    data = table()
    fs = table_space()
    fs.adapt(data)
    seen = [c for c in data["city"] if c]  # None and "" are missing: never learned
    counts = {c: seen.count(c) for c in set(seen)}
    expected = sorted(counts, key=lambda c: (counts[c], c), reverse=True)
    assert fs.preprocessors["city"].get_vocabulary() == ["[UNK]"] + expected
    probe = {"age": [30.0, 30.0, 30.0], "city": ["berlin", None, "paris"],
             "rooms": [99, 2, np.nan], "income": [10.0, 10.0, 10.0]}
    out = fs(probe)
    city = out[:, fs.feature_slices()["city"]]
    rooms = out[:, fs.feature_slices()["rooms"]]
    assert city[0, 0] == 1 and city[1, 0] == 1 and city[2, 0] == 0
    assert rooms[0, 0] == 1 and rooms[2, 0] == 1 and rooms[1, 0] == 0


def test_string_float_cells_are_parsed_and_junk_is_refused():
    fs = FeatureSpace({"x": "float"})
    np.testing.assert_array_equal(fs({"x": np.array(["1.5", " 2 "], dtype=object)})[:, 0],
                                  [1.5, 2.0])
    with pytest.raises(ValueError, match="float feature 'x' holds the non-numeric value 'abc'"):
        fs({"x": ["abc"]})


# ---- errors ---------------------------------------------------------------------------------
def test_missing_column_is_named():
    fs = keras_docstring_space()
    fs.adapt(RAW)
    with pytest.raises(KeyError, match="int_values"):
        fs({"float_values": [0.0], "string_values": ["zero"]})


def test_call_before_adapt_is_an_error_unless_nothing_needs_adapting():
    fs = keras_docstring_space()
    with pytest.raises(ValueError, match="call adapt"):
        fs(RAW)
    with pytest.raises(ValueError, match="call adapt"):
        fs.get_encoded_features()
    plain = FeatureSpace({"a": "float", "b": FeatureSpace.float_rescaled(scale=2.0)})
    np.testing.assert_array_equal(plain({"a": [1.0], "b": [3.0]}), [[1.0, 6.0]])


def test_unknown_feature_type_and_bad_arguments():
    with pytest.raises(ValueError, match="invalid feature type 'floaty' for feature 'a'"):
        FeatureSpace({"a": "floaty"})
    with pytest.raises(ValueError, match="unknown feature"):
        FeatureSpace({"a": "string_categorical"}, crosses=[("a", "b")])
    with pytest.raises(ValueError, match="float feature 'a'"):
        FeatureSpace({"a": "float", "b": "string_categorical"}, crosses=[("a", "b")])
    with pytest.raises(ValueError, match="output_mode"):
        FeatureSpace({"a": "float"}, output_mode="tensor")
    with pytest.raises(ValueError, match="missing_indicator=True needs impute"):
        FeatureSpace.float(missing_indicator=True)
    with pytest.raises(ValueError, match="applies to float features"):
        FeatureSpace.feature("string", layers.StringLookup(), "one_hot", impute="mean")
    with pytest.raises(TypeError, match="dict of columns"):
        FeatureSpace({"a": "float"})([1.0, 2.0])


def test_concat_of_integer_codes_is_refused():
    fs = FeatureSpace({"s": FeatureSpace.string_categorical(output_mode="int")})
    fs.adapt({"s": ["a", "b"]})
    with pytest.raises(ValueError, match="cannot concatenate feature 's'"):
        fs({"s": ["a"]})


def test_columns_of_different_lengths_are_refused():
    fs = FeatureSpace({"a": "float", "b": "float"})
    with pytest.raises(ValueError, match="different lengths"):
        fs({"a": [1.0, 2.0], "b": [1.0]})


# ---- pandas ---------------------------------------------------------------------------------
def test_dataframe_input_equals_dict_input():
    pd = pytest.importorskip("pandas")
    data = table()
    fs = table_space()
    fs.adapt(pd.DataFrame(data))
    np.testing.assert_array_equal(fs(pd.DataFrame(data)), fs(data))


# ---- configs, state, saving -----------------------------------------------------------------
def test_config_and_state_round_trip_give_the_same_bits():
    data = table()
    fs = table_space()
    fs.adapt(data)
    config = json.loads(json.dumps(fs.get_config()))
    state = fs.get_state()
    assert set(state) == {"age/impute_value", "age/mean", "age/variance", "age/count"}
    assert all(isinstance(v, np.ndarray) for v in state.values())
    clone = FeatureSpace.from_config(config, state=state)
    np.testing.assert_array_equal(clone(data), fs(data))
    assert clone.encoded_width == fs.encoded_width


def test_from_config_without_state_refuses_to_guess_statistics():
    data = table()
    fs = table_space()
    fs.adapt(data)
    clone = FeatureSpace.from_config(fs.get_config())
    with pytest.raises(ValueError, match="without its state.*age"):
        clone(data)
    clone.set_state(fs.get_state())
    np.testing.assert_array_equal(clone(data), fs(data))


def test_save_and_load_give_identical_outputs(tmp_path):
    data = table()
    fs = table_space()
    fs.adapt(data)
    path = tmp_path / "fs.fnn"
    fs.save(path)
    for loaded in (load_feature_space(path), fastnn.saving.load_model(path)):
        assert isinstance(loaded, FeatureSpace)
        np.testing.assert_array_equal(loaded(data), fs(data))


def test_saved_feature_space_loads_in_a_fresh_process(tmp_path):
    data = table()
    fs = table_space()
    fs.adapt(data)
    fs.save(tmp_path / "fs.fnn")
    np.savez(tmp_path / "data.npz", **{k: np.asarray(v) for k, v in data.items() if k != "city"},
             city=np.array([c if c is not None else "" for c in data["city"]]))
    script = (
        "import numpy as np, sys\n"
        "from fastnn.utils import load_feature_space\n"
        "d = dict(np.load(sys.argv[1] + '/data.npz'))\n"
        "np.save(sys.argv[1] + '/out.npy', load_feature_space(sys.argv[1] + '/fs.fnn')(d))\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, cwd=root,
                   env={**os.environ, "PYTHONPATH": root})
    data["city"] = np.array([c if c is not None else "" for c in data["city"]])
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), fs(data))


def test_feature_space_file_is_refused_where_a_model_is_expected(tmp_path):
    fs = keras_docstring_space()
    fs.adapt(RAW)
    fs.save(tmp_path / "fs.fnn")
    model = fastnn.Sequential([fastnn.Input(shape=(2,)), layers.Dense(1)])
    with pytest.raises(InvalidModelFileError, match="holds a FeatureSpace"):
        model.load_weights(tmp_path / "fs.fnn")
    model.save(tmp_path / "m.fnn")
    with pytest.raises(InvalidModelFileError, match="unknown kind 'model'"):
        load_feature_space(tmp_path / "m.fnn")


def test_threads_calling_one_feature_space_get_their_own_results():
    from concurrent.futures import ThreadPoolExecutor
    fs = table_space()
    fs.adapt(table(n=400))
    tables = [table(n=300 + 50 * i, seed=i) for i in range(8)]
    expected = [fs(t) for t in tables]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(fs, tables * 3))
    for i, out in enumerate(got):
        np.testing.assert_array_equal(out, expected[i % 8])


def test_discretized_feature_adapts_on_batches_of_32_rows_as_keras():
    # Keras' FeatureSpace.adapt turns a dict of columns into a tf.data pipeline batched by 32
    # and Discretization merges one quantile summary per batch (update_state)
    x = np.random.default_rng(5).normal(size=200)
    fs = FeatureSpace({"x": FeatureSpace.float_discretized(num_bins=6, output_mode="int")},
                      output_mode="dict")
    fs.adapt({"x": x})
    by_batch = layers.Discretization(num_bins=6)
    by_batch.adapt([x[i:i + 32] for i in range(0, 200, 32)])
    assert fs.preprocessors["x"].bin_boundaries == by_batch.bin_boundaries
    np.testing.assert_array_equal(fs({"x": x})["x"][:, 0], by_batch(x))
