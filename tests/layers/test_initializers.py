"""Initializers follow Keras semantics: fans, scales, distributions, the truncated-normal
correction."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import initializers, layers

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


@pytest.mark.parametrize("seed", [-1, "a", 1.5])
def test_bad_initializer_seed_is_named(seed):
    # was NumPy's "expected non-negative integer" / "SeedSequence expects int ..."
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None"):
        fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(
            2, kernel_initializer=initializers.GlorotUniform(seed=seed))])
