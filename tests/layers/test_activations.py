"""The public activation functions (fastnn.activations) against their textbook formulas."""
import math

import numpy as np

from fastnn import activations


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
