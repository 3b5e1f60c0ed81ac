"""pickle, cloudpickle and copy.deepcopy of models go through fastnn's saving format (as Keras
3's Model.__reduce__): a copy resumes training bit for bit as save/load does, carries no scratch
buffers, and copying never touches fastnn's global random generator."""
import copy
import io
import os
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers, saving
from fastnn.datasets import load_digits
from fastnn.saving import InvalidModelFileError


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = load_digits()
    return x[:256], y[:256]


def dropout_model(seed=0, hidden=32, compiled=True):
    """Adam (state per variable) and Dropout (its own random stream): what a copy must keep."""
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        layers.Input(shape=(64,)),
        layers.Dense(hidden, activation="relu", name="hidden"),
        layers.Dropout(0.3),
        layers.Dense(10, activation="softmax", name="out"),
    ])
    if compiled:
        model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def assert_same_optimizer_state(a, b):
    assert a.optimizer.iterations == b.optimizer.iterations
    for va, vb in zip(a.weights, b.weights):
        sa, sb = a.optimizer.state_of(va), b.optimizer.state_of(vb)
        assert sorted(sa) == sorted(sb)
        for k in sa:
            assert np.array_equal(sa[k], sb[k]), k


def pickle_round_trip(model):
    return pickle.loads(pickle.dumps(model))


def cloudpickle_round_trip(model):
    cloudpickle = pytest.importorskip("cloudpickle")
    return cloudpickle.loads(cloudpickle.dumps(model))


COPIERS = {"pickle": pickle_round_trip, "cloudpickle": cloudpickle_round_trip,
           "deepcopy": copy.deepcopy}


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_copy_resumes_training_as_the_uninterrupted_model(digits, copier):
    x, y = digits
    straight = dropout_model(seed=3)
    straight.fit(x, y, epochs=4, batch_size=32, verbose=0)

    first = dropout_model(seed=3)
    first.fit(x, y, epochs=2, batch_size=32, verbose=0)
    resumed = copier(first)
    assert resumed is not first and resumed.optimizer is not first.optimizer
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=32, verbose=0)
    assert_same_weights(straight, resumed)
    assert_same_optimizer_state(straight, resumed)


@pytest.mark.parametrize("copier", COPIERS.values(), ids=COPIERS.keys())
def test_copy_and_original_continue_alike(digits, copier):
    """The issue's deepcopy case: two more epochs of the original and of its copy (from the
    same global random state) give the same weights, Adam state included."""
    x, y = digits
    model = dropout_model(seed=1)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    state = fastnn.backend.rng().bit_generator.state
    twin = copier(model)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    fastnn.backend.rng().bit_generator.state = state
    twin.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert_same_weights(model, twin)
    assert_same_optimizer_state(model, twin)


def test_copy_continues_the_layers_own_random_streams(digits):
    x, _ = digits
    model = dropout_model()
    model(x, training=True)  # advance the dropout layer's stream
    twin = copy.deepcopy(model)
    np.testing.assert_array_equal(twin(x, training=True), model(x, training=True))


def test_pickling_and_unpickling_leave_the_global_generator_alone(digits):
    x, y = digits
    model = dropout_model()
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    fastnn.set_seed(99)
    expected = np.random.default_rng(99).random(3)
    clone = pickle.loads(pickle.dumps(model))  # load_model would rewind it to the save's state
    copy.deepcopy(model)
    assert clone.optimizer.iterations == model.optimizer.iterations
    np.testing.assert_array_equal(fastnn.backend.rng().random(3), expected)


def test_pickle_is_the_size_of_the_saved_file_without_buffers(tmp_path, digits):
    x, y = digits
    model = dropout_model(hidden=1000)
    model.fit(x, y, epochs=1, batch_size=128, verbose=0)  # fills the scratch buffers
    model.save(tmp_path / "m.keras")
    size = os.path.getsize(tmp_path / "m.keras")
    assert len(pickle.dumps(model)) < size * 1.01 + 4096


def test_uncompiled_and_unbuilt_models_round_trip(digits):
    x, _ = digits
    built = dropout_model(compiled=False)
    again = pickle_round_trip(built)
    assert again.optimizer is None and again.get_config() == built.get_config()
    assert_same_weights(built, again)
    np.testing.assert_array_equal(again.predict(x, verbose=0), built.predict(x, verbose=0))

    bare = fastnn.Sequential([layers.Dense(4), layers.ReLU()])  # no weights yet: config only
    again = copy.deepcopy(bare)
    assert not again.built and again.get_config() == bare.get_config()
    assert again.predict(np.ones((2, 7)), verbose=0).shape == (2, 4)

    bare.compile(optimizer=optimizers.SGD(0.1, momentum=0.5), loss="mse")
    again = pickle_round_trip(bare)
    assert again.compiled and not again.built
    assert again.optimizer.get_config() == bare.optimizer.get_config()
    again.fit(np.ones((8, 3)), np.ones((8, 4)), epochs=1, verbose=0)


@saving.register_keras_serializable()
class Twice(layers.Layer):
    """A registered custom layer with a weight and a config argument."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight((input_shape[-1],), "ones", "w")

    def call(self, x, training=False):
        return x * self.w.value * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layer_unpickles_where_it_is_not_registered():
    """A joblib worker has imported the layer's module but maybe not registered it: the
    pickle names the class itself."""
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(3,)), Twice(3.0, name="twice"),
                               layers.Dense(2)])
    model.layers[0].w.assign([1.0, 2.0, 3.0])
    data = pickle.dumps(model)
    registered = layers._REGISTRY.pop("Twice")
    try:
        again = pickle.loads(data)
    finally:
        layers._REGISTRY["Twice"] = registered
    assert isinstance(again.layers[0], Twice) and again.layers[0].factor == 3.0
    np.testing.assert_array_equal(again.predict(np.ones((1, 3)), verbose=0),
                                  model.predict(np.ones((1, 3)), verbose=0))


def test_a_model_the_format_cannot_hold_is_refused_with_the_reason():
    dense = layers.Dense(4)
    shared = fastnn.Sequential([layers.Input(shape=(4,)), dense, dense])
    with pytest.raises(TypeError, match="cannot pickle or copy.*same layer object"):
        pickle.dumps(shared)
    with pytest.raises(TypeError, match="cannot pickle or copy"):
        copy.deepcopy(shared)


def test_pickled_bytes_are_checked_like_a_file():
    """A tampered pickle gets load_model's checks (the pickle itself is trusted code, as any)."""
    with pytest.raises(InvalidModelFileError, match="unpickling a fastnn model: not a fastnn"):
        saving._unpickle_model(b"not a model" * 10)
    func, (data, classes) = dropout_model().__reduce__()
    entries = io.BytesIO()
    with saving.zipfile.ZipFile(io.BytesIO(data)) as src, \
            saving.zipfile.ZipFile(entries, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("payload.pkl", b"extra")
    with pytest.raises(InvalidModelFileError, match="payload.pkl"):
        func(entries.getvalue(), classes)
    with pytest.raises(TypeError, match="bytes"):
        func("a string", classes)


def build_classifier(X, y):
    model = fastnn.Sequential([layers.Input(shape=(X.shape[1],)),
                               layers.Dense(16, activation="relu"),
                               layers.Dense(y.shape[1], activation="softmax")])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="categorical_crossentropy")
    return model


def test_sklearn_wrapper_with_warm_start_fits_again_after_pickling(digits):
    pytest.importorskip("sklearn")
    joblib = pytest.importorskip("joblib")
    from fastnn.wrappers import SKLearnClassifier
    x, y = digits
    clf = SKLearnClassifier(build_classifier, warm_start=True, random_state=0,
                            fit_kwargs={"epochs": 1, "batch_size": 64, "verbose": 0})
    clf.fit(x, y)
    buf = io.BytesIO()
    joblib.dump(clf, buf)
    buf.seek(0)
    again = joblib.load(buf)
    clf.fit(x, y)
    again.fit(x, y)  # warm start from the unpickled model: AttributeError before
    assert again.model_.optimizer.iterations == 2 * 4
    assert_same_weights(clf.model_, again.model_)
