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
