"""Metrics: values on hand-computed examples, list inputs, and clear errors for targets that
do not match the predictions."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers, metrics


def _xy(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, size=n)


def test_accuracy_and_mse_metrics_on_hand_computed_batches():
    y_true = np.array([0, 2, 1, 1])
    y_pred = np.array([[0.9, 0.1, 0], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1]])
    m = metrics.SparseCategoricalAccuracy()
    m.update_state(y_true[:2], y_pred[:2])
    m.update_state(y_true[2:], y_pred[2:])
    assert m.result() == pytest.approx(0.75)
    onehot = np.eye(3)[y_true]
    assert metrics.CategoricalAccuracy()(onehot, y_pred) == pytest.approx(0.75)
    assert metrics.TopKCategoricalAccuracy(k=2)(onehot, y_pred) == pytest.approx(1.0)
    assert metrics.BinaryAccuracy()(np.array([1, 0, 1]), np.array([0.6, 0.4, 0.2])) == pytest.approx(2 / 3)
    assert metrics.MeanSquaredError()(np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])) == pytest.approx(2.5)


@pytest.mark.parametrize("metric,y_true,y_pred", [
    (keras.metrics.CategoricalAccuracy, np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 1, 2, 2]]),
    (keras.metrics.SparseCategoricalAccuracy, np.array([1]), np.eye(3)[[1, 1, 0, 2]]),
    (keras.metrics.BinaryAccuracy, np.array([1.0]), np.array([[0.9], [0.8], [0.2]]))])
def test_metric_row_count_mismatch_is_named(metric, y_true, y_pred):
    # one label against four predictions broadcast silently (a made-up accuracy), or failed
    # with NumPy's "operands could not be broadcast together"
    m = metric()
    with pytest.raises(ValueError, match=r"y_true has 1 rows?|y_true has 3 rows"):
        m.update_state(y_true, y_pred)
    assert m.result() == 0.0


def test_metric_update_state_takes_lists():
    m = keras.metrics.BinaryAccuracy()
    m.update_state([1, 0], [0.9, 0.2])
    assert m.result() == 1.0


@pytest.mark.parametrize("metric", ["mse", "mae", "binary_accuracy", "mape",
                                    "RootMeanSquaredError", keras.metrics.Accuracy])
def test_elementwise_metric_on_class_labels_is_named(metric):
    # was NumPy's "cannot reshape array of size 20 into shape (20,3)"
    x, y = _xy()
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[metric])
    with pytest.raises(ValueError, match=r"targets of shape \(8,\) do not match outputs of "
                                         r"shape \(8, 3\).*sparse_categorical_accuracy"):
        m.fit(x, y, batch_size=8, verbose=0)
