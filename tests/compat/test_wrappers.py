"""scikit-learn wrappers (Keras 3's keras.wrappers): fastnn models in GridSearchCV,
cross_val_score and Pipeline."""
import threading
import time

import joblib
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
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


def test_random_state_gives_the_same_search_scores_for_any_n_jobs_and_backend(digits):
    x, y = digits
    x, y = x[:300], y[:300]
    # a real 2x2 grid; log loss rather than accuracy, so that "equal" means equal weights
    grid = {"model_kwargs": [{"units": 8}, {"units": 16}],
            "fit_kwargs": [{"epochs": 2, "verbose": 0}, {"epochs": 2, "batch_size": 64, "verbose": 0}]}

    def scores(n_jobs, joblib_backend):
        search = GridSearchCV(SKLearnClassifier(build_classifier, random_state=0), grid, cv=2,
                              scoring="neg_log_loss", n_jobs=n_jobs, refit=False)
        with joblib.parallel_backend(joblib_backend):
            search.fit(x, y)
        return search.cv_results_["mean_test_score"]
    fastnn.set_seed(5)  # the global stream must not matter
    serial = scores(1, "loky")
    assert len(set(serial)) == 4
    np.testing.assert_array_equal(scores(2, "loky"), serial)
    np.testing.assert_array_equal(scores(2, "threading"), serial)


def test_same_random_state_same_predictions_and_different_states_differ(digits):
    x, y = digits

    def proba(random_state):
        clf = SKLearnClassifier(build_classifier, random_state=random_state,
                                fit_kwargs={"epochs": 2, "verbose": 0})
        return clf.fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(proba(0), proba(0))
    assert not np.array_equal(proba(0), proba(1))
    # a RandomState: the same sequence of seeds from the same state, a new seed for each fit
    np.testing.assert_array_equal(proba(np.random.RandomState(7)), proba(np.random.RandomState(7)))
    clf = SKLearnClassifier(build_classifier, random_state=np.random.RandomState(7),
                            fit_kwargs={"epochs": 2, "verbose": 0})
    assert not np.array_equal(clf.fit(x, y).predict_proba(x), clf.fit(x, y).predict_proba(x))


def test_random_state_none_draws_from_fastnn_global_generator(digits):
    x, y = digits

    def weights():
        clf = SKLearnClassifier(build_classifier, fit_kwargs={"epochs": 1, "verbose": 0})
        assert clf.random_state is None  # the default: today's behaviour
        return clf.fit(x, y).model_.get_weights()
    fastnn.set_seed(3)
    first = weights()
    second = weights()  # the global stream moved on
    fastnn.set_seed(3)
    again = weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def test_seeded_fit_leaves_global_random_state_as_it_was(digits):
    x, y = digits
    fastnn.set_seed(4)
    gen = fastnn.backend.rng()
    state, np_state = gen.bit_generator.state, np.random.get_state()
    SKLearnClassifier(build_classifier, random_state=0, fit_kwargs={"epochs": 1, "verbose": 0}).fit(x, y)
    assert fastnn.backend.rng() is gen and gen.bit_generator.state == state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    with pytest.raises(RuntimeError):  # restored on the way out of a failing fit too
        SKLearnClassifier(build_classifier, random_state=0,
                          fit_kwargs={"epochs": 1, "verbose": 0, "callbacks": [_Boom()]}).fit(x, y)
    assert fastnn.backend.rng() is gen and gen.bit_generator.state == state


class _Boom(fastnn.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        raise RuntimeError("boom")


def test_seeded_fits_in_threads_do_not_draw_from_each_others_stream():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 5)), np.arange(64) % 2

    def slow_build(X, y):
        model = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(8, activation="relu")])
        time.sleep(0.1)  # the other thread's fit seeds the generator here, if it may
        model.add(layers.Dense(2, activation="softmax"))
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        return model

    def weights():
        clf = SKLearnClassifier(slow_build, random_state=0, fit_kwargs={"epochs": 1, "verbose": 0})
        return clf.fit(x, y).model_.get_weights()
    expected = weights()
    got = [None, None]
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, weights()))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in got:
        assert all(np.array_equal(a, b) for a, b in zip(expected, w))


def test_random_state_is_a_constructor_parameter_that_clone_keeps():
    from sklearn.utils.estimator_checks import (check_get_params_invariance,
                                                check_no_attributes_set_in_init, check_set_params)
    clf = SKLearnClassifier(build_classifier, random_state=3)
    assert clf.get_params()["random_state"] == 3
    assert clone(clf).random_state == 3
    assert clf.set_params(random_state=4).random_state == 4
    for check in (check_get_params_invariance, check_set_params, check_no_attributes_set_in_init):
        check("SKLearnClassifier", clf)
    # as scikit-learn's clone does: a copy of a RandomState, so the clones do not share one
    state = np.random.RandomState(0)
    copied = clone(SKLearnRegressor(build_regressor, random_state=state)).random_state
    assert copied is not state and copied.randint(1000) == state.randint(1000)


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, np.random.default_rng(0)])
def test_invalid_random_state_is_refused_at_fit(digits, bad):
    x, y = digits
    with pytest.raises(ValueError, match="random_state"):
        SKLearnClassifier(build_classifier, random_state=bad).fit(x[:20], y[:20])


def build_keras2_classifier(units=32):  # Keras 2's build_fn: no X, y
    model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(units, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.Adam(1e-2), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_keras2_scikit_learn_module_names_warn_and_take_build_fn_and_sk_params(digits):
    from fastnn.wrappers.scikit_learn import KerasClassifier, KerasRegressor
    x, y = digits
    with pytest.warns(DeprecationWarning, match="SKLearnClassifier"):
        clf = KerasClassifier(build_fn=build_keras2_classifier, units=16, epochs=3,
                              batch_size=32, verbose=0, random_state=0)
    assert isinstance(clf, SKLearnClassifier)
    assert clf.model_kwargs == {"units": 16}
    assert clf.fit_kwargs == {"epochs": 3, "batch_size": 32, "verbose": 0}
    clf.fit(x / 16, y)
    assert clf.model_.layers[0].units == 16 and len(clf.history_["loss"]) == 3
    # the same fit as Keras 3's wrapper with the same seed
    new = SKLearnClassifier(build_classifier, model_kwargs={"units": 16}, random_state=0,
                            fit_kwargs={"epochs": 3, "batch_size": 32, "verbose": 0})
    np.testing.assert_array_equal(new.fit(x / 16, y).predict_proba(x[:50] / 16),
                                  clf.predict_proba(x[:50] / 16))
    with pytest.warns(DeprecationWarning):
        copy = clone(clf)                        # scikit-learn's clone (searches) keeps it all
    assert copy.model_kwargs == clf.model_kwargs and copy.fit_kwargs == clf.fit_kwargs
    with pytest.warns(DeprecationWarning, match="SKLearnRegressor"):
        reg = KerasRegressor(build_fn=build_regressor, epochs=2, verbose=0)
    assert isinstance(reg, SKLearnRegressor) and reg.model is build_regressor  # takes X, y
    reg.fit(x / 16, y.astype(np.float32))
    assert reg.predict(x[:5] / 16).shape == (5,)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="not both"):
        KerasClassifier(build_classifier, build_fn=build_classifier)
