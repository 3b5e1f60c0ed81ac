"""predict / evaluate run cache-sized chunks unless a callback watches batches: the outputs
must not depend on it, and callbacks must still see the user's batches."""
import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers


def _model(width=64):
    fastnn.set_seed(3)
    m = fastnn.Sequential([layers.Input(shape=(20,)), layers.Dense(width, activation="relu"),
                           layers.BatchNormalization(), layers.Dropout(0.3),
                           layers.Dense(5, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(n=1500):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 20)).astype(np.float32), rng.integers(0, 5, n)


def test_predict_equals_batch_by_batch_forward():
    m = _model()
    x, y = _data()
    m.fit(x, y, epochs=1, verbose=0)
    whole = m.predict(x, verbose=0)
    by_batch = np.concatenate([m.predict_on_batch(x[i:i + 32]) for i in range(0, len(x), 32)])
    np.testing.assert_allclose(whole, by_batch, rtol=1e-6, atol=1e-7)
    for bs in (1, 7, 32, 5000):
        np.testing.assert_allclose(m.predict(x, batch_size=bs, verbose=0), whole, rtol=1e-6, atol=1e-7)


def test_evaluate_matches_per_batch_sum():
    m = _model()
    x, y = _data()
    m.fit(x, y, epochs=1, verbose=0)
    loss, acc = m.evaluate(x, y, verbose=0)
    p = np.concatenate([m.predict_on_batch(x[i:i + 32]) for i in range(0, len(x), 32)])
    expected = -np.mean(np.log(p[np.arange(len(y)), y].astype(np.float64)))
    assert loss == pytest.approx(expected, rel=1e-5)
    assert acc == pytest.approx(np.mean(np.argmax(p, 1) == y), abs=1e-9)


@pytest.mark.parametrize("method", ["predict", "evaluate"])
def test_batch_callbacks_see_the_users_batches(method):
    m = _model()
    x, y = _data(100)
    seen = []

    class Watch(callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            seen.append(len(logs["outputs"]))

        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

    if method == "predict":
        m.predict(x, batch_size=30, verbose=0, callbacks=[Watch()])
        assert seen == [30, 30, 30, 10]
    else:
        m.evaluate(x, y, batch_size=30, verbose=0, callbacks=[Watch()])
        assert seen == [0, 1, 2, 3]


def test_chunk_rows_follow_the_widest_layer():
    narrow, wide = _model(64), _model(8192)
    assert narrow.built and wide.built  # an Input layer builds them
    assert narrow._inference_rows(32, False) == 4096
    assert wide._inference_rows(32, False) == 256  # 4 MiB / (8192 * 4 bytes) = 128 -> floor 256
    assert wide._inference_rows(32, True) == 32


class _BatchCentering(layers.Layer):
    """A user layer whose inference output depends on the whole batch (as Keras runs it, one
    ``batch_size`` batch at a time)."""

    def call(self, x):
        return x - x.mean(axis=0, keepdims=True)


class _BatchMean(fastnn.metrics.Metric):
    """A user metric averaging per-batch values (its own update_state): Keras' result
    depends on the batches evaluate hands it."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.total += float(np.mean(y_pred))
        self.count += 1


def _three_feature_data(n=600, d=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)


def test_predict_keeps_user_batches_for_a_user_layer():
    """Chunked inference assumed every layer maps rows independently: true of fastnn's layers,
    not of a user's. A user layer must see the batches of ``batch_size``, as in Keras."""
    x, _ = _three_feature_data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input((3,)), layers.Dense(4), _BatchCentering(), layers.Dense(1)])
    got = model.predict(x, batch_size=7, verbose=0)
    want = np.concatenate([model.predict_on_batch(x[lo:lo + 7]) for lo in range(0, len(x), 7)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_evaluate_keeps_user_batches_for_a_user_metric():
    x, y = _three_feature_data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[_BatchMean(name="batch_mean")])
    got = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)["batch_mean"]
    out = model.predict(x, verbose=0)
    want = np.mean([np.mean(out[lo:lo + 7]) for lo in range(0, len(x), 7)])
    assert got == pytest.approx(want, rel=1e-5)


def test_builtin_models_still_chunk_and_agree_with_batches():
    """The chunking stays on for fastnn's own layers and metrics (same results)."""
    x, y = _three_feature_data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input((3,)), layers.Dense(8, activation="relu"),
                               layers.BatchNormalization(), layers.Dropout(0.5), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    assert model._inference_rows(7, False) >= 256
    got = model.predict(x, batch_size=7, verbose=0)
    want = np.concatenate([model.predict_on_batch(x[lo:lo + 7]) for lo in range(0, len(x), 7)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


class _SquaredSum(fastnn.regularizers.Regularizer):
    """A user activity regularizer that is not a sum over rows: (sum of the outputs) ** 2."""

    def __call__(self, y):
        return float(np.sum(y, dtype=np.float64)) ** 2

    def add_gradient(self, y, grad, scale=1.0):
        grad += scale * 2 * np.sum(y, dtype=np.float64)


def test_evaluate_keeps_user_batches_for_a_user_activity_regularizer():
    """evaluate adds each batch's activity penalty (Keras 3: the regularizer of the batch's
    output, per sample); with a user regularizer that penalty depends on the batch."""
    x, y = _three_feature_data()
    fastnn.set_seed(1)
    dense = layers.Dense(1, activity_regularizer=_SquaredSum())
    model = fastnn.Sequential([layers.Input((3,)), dense])
    model.compile(optimizer="sgd", loss="mse")
    got = model.evaluate(x, y, batch_size=7, verbose=0)
    out = model.predict(x, verbose=0).astype(np.float64)
    mse = np.mean((out - y) ** 2)
    penalty = sum(np.sum(out[lo:lo + 7]) ** 2 for lo in range(0, len(x), 7)) / len(x)
    assert got == pytest.approx(mse + penalty, rel=1e-5)
