"""Initializers follow Keras semantics: fans, scales, distributions, the truncated-normal
correction; plus the public activation functions against their textbook formulas."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import activations, initializers, metrics

SHAPE = (400, 300)
FAN_IN, FAN_OUT = SHAPE


@pytest.mark.parametrize("name,expected_var", [
    ("glorot_uniform", 2 / (FAN_IN + FAN_OUT)), ("glorot_normal", 2 / (FAN_IN + FAN_OUT)),
    ("he_uniform", 2 / FAN_IN), ("he_normal", 2 / FAN_IN),
    ("lecun_uniform", 1 / FAN_IN), ("lecun_normal", 1 / FAN_IN),
])
def test_variance_scaling_families(name, expected_var):
    fastnn.set_seed(0)
    w = initializers.get(name)(SHAPE)
    assert w.dtype == np.float32 and w.shape == SHAPE
    assert w.var() == pytest.approx(expected_var, rel=0.03)
    assert abs(w.mean()) < 0.01 * math.sqrt(expected_var) * 10
    if "uniform" in name:
        assert np.abs(w).max() <= math.sqrt(3 * expected_var) + 1e-7
    else:  # truncated at two (corrected) standard deviations
        assert np.abs(w).max() <= 2 * math.sqrt(expected_var) / 0.87962566103423978 + 1e-6


def test_variance_scaling_modes_and_errors():
    vs = initializers.VarianceScaling(scale=3.0, mode="fan_out", distribution="untruncated_normal", seed=1)
    assert vs(SHAPE).var() == pytest.approx(3.0 / FAN_OUT, rel=0.03)
    with pytest.raises(ValueError, match="mode"):
        initializers.VarianceScaling(mode="fan")
    with pytest.raises(ValueError, match="scale"):
        initializers.VarianceScaling(scale=-1)


def test_seeded_initializers_repeat_and_others():
    a = initializers.RandomNormal(stddev=0.1, seed=3)((5, 5))
    b = initializers.RandomNormal(stddev=0.1, seed=3)((5, 5))
    assert np.array_equal(a, b)
    assert np.all(initializers.get("zeros")((3,)) == 0)
    assert np.all(initializers.get("ones")((3,)) == 1)
    assert np.all(initializers.Constant(2.5)((2, 2)) == 2.5)
    u = initializers.RandomUniform(-0.2, 0.3, seed=1)((1000,))
    assert u.min() >= -0.2 and u.max() <= 0.3
    t = initializers.TruncatedNormal(stddev=1.0, seed=1)((10000,))
    assert np.abs(t).max() <= 2.0
    q = initializers.Orthogonal(seed=0)((50, 30))
    np.testing.assert_allclose(q.T @ q, np.eye(30), atol=1e-5)
    assert isinstance(initializers.get("GlorotUniform"), initializers.GlorotUniform)
    assert isinstance(initializers.get(initializers.HeNormal), initializers.HeNormal)


def test_activation_functions_match_formulas():
    x = np.linspace(-4, 4, 33).reshape(3, 11)
    f = lambda fn, *a: np.asarray(fn(x, *a), np.float64)
    np.testing.assert_allclose(f(activations.relu), np.maximum(x, 0))
    np.testing.assert_allclose(f(activations.sigmoid), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_allclose(f(activations.leaky_relu), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(f(activations.elu), np.where(x > 0, x, np.expm1(x)), rtol=1e-10)
    np.testing.assert_allclose(f(activations.selu), 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(x)),
                               rtol=1e-10)
    np.testing.assert_allclose(f(activations.hard_sigmoid), np.clip(x / 6 + 0.5, 0, 1), rtol=1e-10)
    np.testing.assert_allclose(f(activations.swish), x / (1 + np.exp(-x)), rtol=1e-10)
    np.testing.assert_allclose(f(activations.softplus), np.log1p(np.exp(x)), rtol=1e-10)
    np.testing.assert_allclose(f(activations.softsign), x / (1 + np.abs(x)), rtol=1e-10)
    np.testing.assert_allclose(f(activations.mish), x * np.tanh(np.log1p(np.exp(x))), rtol=1e-10)
    from math import erf
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2))))(x)
    np.testing.assert_allclose(f(activations.gelu), gelu, rtol=1e-10)
    np.testing.assert_allclose(f(activations.gelu, True),
                               0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))), rtol=1e-10)
    sm = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(f(activations.softmax), sm, rtol=1e-10)
    np.testing.assert_allclose(f(activations.log_softmax), np.log(sm), rtol=1e-10)
    assert activations.get("silu").name == "swish"


def test_metrics():
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
