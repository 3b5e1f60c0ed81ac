"""A model's ``_user_metadata`` (a dict of JSON values; what ``fastnn train`` keeps beside the
model: class names, columns) is saved in the model file and set again on load."""
import copy
import json
import zipfile

import pytest

import fastnn
from fastnn import layers


def small_model():
    return fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])


def test_user_metadata_round_trips_through_save_load_and_deepcopy(tmp_path):
    model = small_model()
    meta = {"classes": ["no", "yes"], "nested": {"n": 3, "x": 0.1, "none": None}}
    model._user_metadata = meta
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load_model(tmp_path / "m.fnn")
    assert loaded._user_metadata == meta
    assert copy.deepcopy(model)._user_metadata == meta
    plain = small_model()
    plain.save(tmp_path / "p.fnn")
    assert getattr(fastnn.load_model(tmp_path / "p.fnn"), "_user_metadata", None) is None


def test_user_metadata_that_is_not_a_dict_is_refused_on_save_and_load(tmp_path):
    model = small_model()
    model._user_metadata = ["not", "a", "dict"]
    with pytest.raises(TypeError, match="_user_metadata must be a dict"):
        model.save(tmp_path / "m.fnn")
    model._user_metadata = {"ok": 1}
    model.save(tmp_path / "m.fnn")
    # a file whose user_metadata is not a JSON object: refused, naming it
    with zipfile.ZipFile(tmp_path / "m.fnn") as zf:
        entries = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    meta = json.loads(entries["fastnn.json"])
    meta["user_metadata"] = [1, 2]
    entries["fastnn.json"] = json.dumps(meta).encode()
    with zipfile.ZipFile(tmp_path / "bad.fnn", "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(fastnn.saving.InvalidModelFileError, match="user_metadata is malformed"):
        fastnn.load_model(tmp_path / "bad.fnn")
