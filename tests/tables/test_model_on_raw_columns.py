"""A model on raw table columns (Keras' structured-data guide: ``Model(inputs=
feature_space.get_inputs(), outputs=...)``): it fits, evaluates and predicts from a dict of
raw columns, keeps the FeatureSpace in its file (vocabularies in the JSON, statistics as
.npy), and a fresh process predicts the same bits from the raw columns."""
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.utils import FeatureSpace

from conftest import same_fastnn_env


def table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    cols = {"age": rng.normal(40, 10, n), "city": rng.choice(["paris", "rome", "oslo"], n),
            "rooms": rng.integers(0, 5, n)}
    cols["age"][:12] = np.nan  # missing cells, imputed
    y = ((cols["city"] == "rome") | (np.nan_to_num(cols["age"], nan=40.0) > 45)).astype(int)
    return cols, y


def raw_model(cols, output_mode="concat"):
    fastnn.utils.set_random_seed(0)
    fs = FeatureSpace({"age": FeatureSpace.float_normalized(impute="mean", missing_indicator=True),
                       "city": "string_categorical", "rooms": "integer_categorical"},
                      output_mode=output_mode)
    fs.adapt(cols)
    encoded = fs.get_encoded_features()
    if output_mode == "dict":
        encoded = layers.Concatenate()(list(encoded.values()))
    out = layers.Dense(1, activation="sigmoid")(layers.Dense(16, activation="relu")(encoded))
    model = fastnn.Model(inputs=fs.get_inputs(), outputs=out)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("output_mode", ["concat", "dict"])
def test_a_model_on_raw_columns_learns_and_takes_unseen_categories(output_mode):
    cols, y = table()
    model = raw_model(cols, output_mode)
    assert model.feature_space is not None
    history = model.fit(cols, y, epochs=40, verbose=0, validation_split=0.2)
    assert history.history["val_accuracy"][-1] > 0.85  # a label the columns determine
    logs = model.evaluate(cols, y, verbose=0, return_dict=True)
    assert logs["accuracy"] > 0.85
    p = model.predict({"age": [np.nan, 60.0], "city": ["tokyo", ""], "rooms": [99, 1]}, verbose=0)
    assert p.shape == (2, 1) and np.all(np.isfinite(p))  # unseen / missing: OOV, imputed
    if output_mode == "concat":  # an encoded array is taken as it is
        np.testing.assert_array_equal(model(cols)[:5], model.predict(model.feature_space(cols),
                                                                     verbose=0)[:5])


def test_a_column_missing_at_predict_time_is_named():
    cols, y = table()
    model = raw_model(cols)
    model.fit(cols, y, epochs=1, verbose=0)
    with pytest.raises(KeyError, match=r"\['city'\] missing"):
        model.predict({"age": cols["age"], "rooms": cols["rooms"]}, verbose=0)


def test_saved_model_keeps_its_feature_space_and_a_fresh_process_predicts_the_same_bits(tmp_path):
    cols, y = table()
    model = raw_model(cols)
    model.fit(cols, y, epochs=5, verbose=0)
    expected = model.predict(cols, verbose=0)
    path = tmp_path / "model.fnn"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = json.loads(z.read([n for n in names if n.endswith(".json")][0]))
    fs = meta["model"]["feature_space"]
    assert "paris" in json.dumps(fs["config"])                       # vocabulary: JSON
    assert {s["entry"] for s in fs["state"].values()} <= set(names)  # statistics: .npy
    assert not any(n.endswith((".pkl", ".pickle")) for n in names)
    np.savez(tmp_path / "cols.npz", **cols)
    np.save(tmp_path / "expected.npy", expected)
    code = (
        "import numpy as np, fastnn\n"
        f"m = fastnn.load_model({str(path)!r})\n"
        f"cols = dict(np.load({str(tmp_path / 'cols.npz')!r}))\n"
        f"assert np.array_equal(m.predict(cols, verbose=0), np.load({str(tmp_path / 'expected.npy')!r}))\n"
        "print('same')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         **same_fastnn_env())
    assert run.stdout.strip() == "same", run.stderr
    for copy in (pickle.loads(pickle.dumps(model)),
                 fastnn.models.model_from_json(model.to_json()),
                 fastnn.models.clone_model(model)):
        assert copy.feature_space is not None
        assert copy.predict(cols, verbose=0).shape == expected.shape
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(cols, verbose=0), expected)


def test_raw_inputs_mixed_with_other_inputs_are_refused():
    cols, _ = table()
    fs = FeatureSpace({"age": FeatureSpace.float_normalized(impute="mean"), "city": "string_categorical"})
    fs.adapt(cols)
    other = fastnn.Input(shape=(3,))
    out = layers.Dense(1)(layers.Concatenate()([fs.get_encoded_features(), other]))
    with pytest.raises(NotImplementedError, match="must be the model's only inputs"):
        fastnn.Model(inputs=[*fs.get_inputs().values(), other], outputs=out)
    with pytest.raises(ValueError, match=r"lack the feature space's columns \['city'\]"):
        fastnn.Model(inputs={"age": fs.get_inputs()["age"]}, outputs=layers.Dense(1)(
            fs.get_encoded_features()))


def test_a_dataframe_of_raw_columns_fits_and_predicts():
    pd = pytest.importorskip("pandas")
    cols, y = table()
    model = raw_model(cols)
    frame = pd.DataFrame(cols)
    model.fit(frame, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.predict(frame, verbose=0), model.predict(cols, verbose=0))


def test_a_tampered_feature_space_statistic_is_refused_with_a_clear_error(tmp_path):
    cols, y = table()
    model = raw_model(cols)
    path = tmp_path / "model.fnn"
    model.save(path)
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    meta_name = [n for n in entries if n.endswith(".json")][0]
    meta = json.loads(entries[meta_name])
    stat = next(iter(meta["model"]["feature_space"]["state"].values()))
    stat["dtype"] = "object"  # a pickle in disguise
    entries[meta_name] = json.dumps(meta).encode()
    bad = tmp_path / "bad.fnn"
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="feature space statistic .* dtype 'object' is not allowed"):
        fastnn.load_model(bad)
