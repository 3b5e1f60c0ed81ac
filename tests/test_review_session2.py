"""Review of the second session's commits (take_rows / all_finite, stored dropout masks,
chunked predict/evaluate, the OpenMP import-order guard, the optimizer packed cache): each
test here failed before its fix (or pins down a behaviour found to be right)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

from conftest import C, REF

OPS = [REF] + ([C] if C is not None else [])


# ---- take_rows: an index array that shares memory with out --------------------------------
@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("row", [1, 40])  # 8-byte rows, and 320-byte rows (prefetching path)
def test_take_rows_index_sharing_memory_with_out(ops, row):
    """The C kernel checked every index, then read them while writing out: an index array in
    out's memory (later indices overwritten by earlier rows) made it read far outside src (a
    segfault). The answer must be np.take's, from the indices as they were passed."""
    n = 600
    src = np.full((n, row), 10 ** 12, np.int64)  # values far outside [0, n) as indices
    buf = np.zeros((n + 1) * row, np.int64)
    out = buf[row:].reshape(n, row)
    # index i lies in buf[i]: out row i // row - 1 overwrites it before it is read
    index = buf[:n]
    want = np.take(src, index.copy(), axis=0)
    got = ops.take_rows(src, index, out)
    np.testing.assert_array_equal(got, want)


# ---- predict / evaluate chunks: only where every row is known to be independent ------------
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


def _data(n=600, d=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, 1)).astype(np.float32)


def test_predict_keeps_user_batches_for_a_user_layer():
    """Chunked inference assumed every layer maps rows independently: true of fastnn's layers,
    not of a user's. A user layer must see the batches of ``batch_size``, as in Keras."""
    x, _ = _data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input((3,)), layers.Dense(4), _BatchCentering(), layers.Dense(1)])
    got = model.predict(x, batch_size=7, verbose=0)
    want = np.concatenate([model.predict_on_batch(x[lo:lo + 7]) for lo in range(0, len(x), 7)])
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_evaluate_keeps_user_batches_for_a_user_metric():
    x, y = _data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input((3,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", metrics=[_BatchMean(name="batch_mean")])
    got = model.evaluate(x, y, batch_size=7, verbose=0, return_dict=True)["batch_mean"]
    out = model.predict(x, verbose=0)
    want = np.mean([np.mean(out[lo:lo + 7]) for lo in range(0, len(x), 7)])
    assert got == pytest.approx(want, rel=1e-5)


def test_builtin_models_still_chunk_and_agree_with_batches():
    """The chunking stays on for fastnn's own layers and metrics (same results)."""
    x, y = _data()
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
    x, y = _data()
    fastnn.set_seed(1)
    dense = layers.Dense(1, activity_regularizer=_SquaredSum())
    model = fastnn.Sequential([layers.Input((3,)), dense])
    model.compile(optimizer="sgd", loss="mse")
    got = model.evaluate(x, y, batch_size=7, verbose=0)
    out = model.predict(x, verbose=0).astype(np.float64)
    mse = np.mean((out - y) ** 2)
    penalty = sum(np.sum(out[lo:lo + 7]) ** 2 for lo in range(0, len(x), 7)) / len(x)
    assert got == pytest.approx(mse + penalty, rel=1e-5)
