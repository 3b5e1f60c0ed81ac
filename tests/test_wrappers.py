"""scikit-learn wrappers (Keras 3's keras.wrappers): fastnn models in GridSearchCV,
cross_val_score and Pipeline."""
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import fastnn  # noqa: E402
from fastnn import datasets, layers, optimizers  # noqa: E402
from fastnn.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer  # noqa: E402


def build_classifier(X, y, units=32, learning_rate=1e-2):
    model = fastnn.Sequential([layers.Input(shape=(X.shape[1],)),
                               layers.Dense(units, activation="relu"),
                               layers.Dense(y.shape[1], activation="softmax")])
    model.compile(optimizer=optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def build_regressor(X, y, units=16):
    model = fastnn.Sequential([layers.Input(shape=(X.shape[1],)),
                               layers.Dense(units, activation="tanh"), layers.Dense(y.shape[1])])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="mse")
    return model


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = datasets.load_digits()
    return x[:600], y[:600]


def test_classifier_fits_predicts_labels_and_scores(digits):
    x, y = digits
    names = np.array(list("abcdefghij"))[y]  # any labels, mapped back by predict
    fastnn.set_seed(0)
    clf = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 15, "verbose": 0})
    clf.fit(x, names)
    assert list(clf.classes_) == list("abcdefghij") and clf.n_features_in_ == 64
    pred = clf.predict(x)
    assert pred.dtype == names.dtype and set(pred) <= set(clf.classes_)
    proba = clf.predict_proba(x)
    assert proba.shape == (600, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert clf.score(x, names) == pytest.approx(np.mean(pred == names))
    assert clf.score(x, names) > 0.9
    assert len(clf.history_["loss"]) == 15


def test_grid_search_picks_among_model_kwargs(digits):
    x, y = digits
    fastnn.set_seed(0)
    search = GridSearchCV(SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 5, "verbose": 0}),
                          {"model_kwargs": [{"units": 4, "learning_rate": 1e-4},
                                            {"units": 32, "learning_rate": 1e-2}]}, cv=3)
    search.fit(x, y)
    # a 4-unit network at a 1e-4 learning rate learns almost nothing in 5 epochs
    assert search.best_params_["model_kwargs"]["units"] == 32
    assert search.best_estimator_.score(x, y) > 0.8


def test_model_instance_is_cloned_fresh_for_each_fit(digits):
    x, y = digits
    fastnn.set_seed(1)
    base = build_classifier(x, np.zeros((1, 10)))
    before = base.get_weights()
    clf = SKLearnClassifier(base, fit_kwargs={"epochs": 2, "verbose": 0}).fit(x, y)
    assert clf.model_ is not base
    for a, b in zip(before, base.get_weights()):  # the given model is untouched
        assert np.array_equal(a, b)
    scores = cross_val_score(SKLearnClassifier(base, fit_kwargs={"epochs": 3, "verbose": 0}), x, y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.5)


def test_warm_start_continues_training(digits):
    x, y = digits
    fastnn.set_seed(2)
    clf = SKLearnClassifier(build_classifier, warm_start=True, fit_kwargs={"epochs": 1, "verbose": 0})
    clf.fit(x, y)
    first = clf.model_
    clf.fit(x, y)
    assert clf.model_ is first and first.optimizer.iterations == 2 * int(np.ceil(600 / 32))


def test_regressor_shapes_and_pipeline():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 5)) * 10 + 3
    y = x @ rng.standard_normal(5) * 0.1
    fastnn.set_seed(0)
    reg = make_pipeline(StandardScaler(), SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 30, "verbose": 0}))
    reg.fit(x, y)
    assert reg.predict(x).shape == (400,)
    assert reg.score(x, y) > 0.9
    y2 = np.stack([y, -y], axis=1)
    r2 = SKLearnRegressor(build_regressor, fit_kwargs={"epochs": 2, "verbose": 0}).fit(x, y2)
    assert r2.predict(x).shape == (400, 2)


def test_transformer_returns_model_outputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((100, 6)).astype(np.float32)

    def build_ae(X, y):
        m = fastnn.Sequential([layers.Input(shape=(6,)), layers.Dense(3)])
        m.compile(optimizer="adam", loss="mse")
        return m
    t = SKLearnTransformer(build_ae, fit_kwargs={"epochs": 1, "verbose": 0}).fit(x, x[:, :3])
    out = t.transform(x)
    assert out.shape == (100, 3)
    np.testing.assert_array_equal(out, t.model_.predict(x, verbose=0))


def test_clear_errors(digits):
    x, y = digits
    with pytest.raises(ValueError, match="one class"):
        SKLearnClassifier(build_classifier).fit(x[:10], np.zeros(10))
    with pytest.raises(ValueError, match="multiclass"):
        SKLearnClassifier(build_classifier).fit(x[:10], np.linspace(0, 1, 10))
    with pytest.raises(TypeError, match="compiled fastnn model"):
        SKLearnClassifier(lambda X, y: None).fit(x, y)
    uncompiled = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(10, activation="softmax")])
    with pytest.raises(ValueError, match="compiled"):
        SKLearnClassifier(uncompiled).fit(x, y)
    clf = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 1, "verbose": 0})
    with pytest.raises(sklearn.exceptions.NotFittedError):
        clf.predict(x)
    clf.fit(x, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(x[:, :10])
