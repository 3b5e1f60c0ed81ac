"""Activation kernels where C and the reference must mean the same thing beyond random
inputs: NaN and inf, saturated float32, empty batches, large common offsets."""
import numpy as np
import pytest

from fastnn.reference.activations import ACTIVATION_CODES

from conftest import C, REF, requires_c

pytestmark = requires_c
DTYPES = [np.float32, np.float64]
RELU, HARD_SIGMOID, GELU = (ACTIVATION_CODES[n] for n in ("relu", "hard_sigmoid", "gelu"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_forward_propagates_nan_like_the_reference(dtype):
    # C computed x > 0 ? x : 0, which turns NaN into 0 and hides a diverged run
    z = np.array([[np.nan, -1.0, 0.0, 2.0, np.inf, -np.inf]], dtype)
    y_c = C.bias_act_forward(z.copy(), None, RELU, 0.0)
    y_r = REF.bias_act_forward(z.copy(), None, RELU, 0.0)
    np.testing.assert_array_equal(y_c, y_r)
    assert np.isnan(y_c[0, 0])
    # with a bias, in place (the Dense layer's call)
    zb = z.copy()
    C.bias_act_forward(zb, np.zeros(6, dtype), RELU, 0.0, zb)
    np.testing.assert_array_equal(zb, y_r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("code", [RELU, HARD_SIGMOID])
def test_select_style_backward_with_nonfinite_upstream_gradient(dtype, code):
    # C selects (y > 0 ? g : 0); the reference multiplied g by a 0/1 mask: inf * 0 = NaN
    y = np.array([[0.0, 0.0, 0.0, 0.5, 0.5]], dtype)
    dy = np.array([[np.inf, -np.inf, np.nan, np.inf, 2.0]], dtype)
    out_c = C.act_backward(dy, None, y, code, 0.0)
    out_r = REF.act_backward(dy, None, y, code, 0.0)
    np.testing.assert_array_equal(out_c, out_r)
    assert np.all(out_c[0, :3] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_maxout_nan_piece_wins_like_numpy_argmax(dtype, threads):
    # C skipped a NaN that was not the first piece (NaN > v is false): max 2, arg 1 where
    # NumPy's max is NaN and argmax the first NaN
    x = np.array([[1.0, np.nan, 0.5, 2.0, np.nan, 3.0],
                  [np.nan, np.nan, 4.0, -1.0, 5.0, 5.0]], dtype)
    arg_c, arg_r = np.empty((2, 3), np.int32), np.empty((2, 3), np.int32)
    y_c = C.maxout_forward(x, 2, None, arg_c, n_threads=threads)
    y_r = REF.maxout_forward(x, 2, None, arg_r)
    np.testing.assert_array_equal(y_c, y_r)
    np.testing.assert_array_equal(arg_c, arg_r)


def test_gelu_tanh_gradient_of_huge_float32_inputs_is_finite():
    # float32: 1 + 3 k x^2 overflows to inf for |x| > 5e19 and multiplied the exact zero
    # 1 - tanh^2: NaN, where the reference (float64 inside) gives the limits 0 and 1
    z = np.array([[-1e30, -6e19, 6e19, 1e30, 3.0]], np.float32)
    y = REF.bias_act_forward(z.copy(), None, GELU, 1.0)
    dy = np.ones_like(z)
    out_c = C.act_backward(dy, z, y, GELU, 1.0)
    out_r = REF.act_backward(dy, z, y, GELU, 1.0)
    assert np.all(np.isfinite(out_c))
    np.testing.assert_allclose(out_c, out_r, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", [(0, 6), (0, 0), (4, 0)])
def test_maxout_of_an_empty_batch(shape):
    # the reference reshaped to (n, -1, pieces), which raises for n = 0; C returned (n, m / k)
    x = np.zeros(shape, np.float32)
    for ops in (C, REF):
        arg = np.empty((shape[0], shape[1] // 2), np.int32)
        assert ops.maxout_forward(x, 2, None, arg).shape == (shape[0], shape[1] // 2)
        assert ops.maxout_backward(np.zeros_like(arg, np.float32), arg, 2).shape == shape
    for ops in (C, REF):
        with pytest.raises(ValueError, match="pieces"):
            ops.maxout_forward(np.zeros((2, 5), np.float32), 2)


@pytest.mark.parametrize("offset", [1e3, 1e5])
def test_log_softmax_and_fused_xent_are_shift_invariant_like_the_reference(offset):
    # C formed lse = max + log(sum) and then z - lse: at a common offset of 1e5 in float32 the
    # rounding of lse (ulp 0.008) went into every log-probability and probability gradient
    # (errors 4e-3); the reference subtracts the max first and is exact to ~1e-7
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((64, 10)) * 2 + offset).astype(np.float32)
    z64 = z.astype(np.float64)
    s = z64 - z64.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    y_c = C.bias_act_forward(z.copy(), None, ACTIVATION_CODES["log_softmax"], 0.0)
    np.testing.assert_allclose(y_c, logp, rtol=0, atol=2e-6)
    np.testing.assert_allclose(REF.bias_act_forward(z.copy(), None, ACTIVATION_CODES["log_softmax"], 0.0),
                               logp, rtol=0, atol=2e-6)
    labels = rng.integers(0, 10, 64)
    t = np.eye(10, dtype=np.float32)[labels]
    g_c, g_r = np.empty_like(z), np.empty_like(z)
    v_c = C.softmax_cross_entropy(z, t, True, 1.0, g_c)
    v_r = REF.softmax_cross_entropy(z, t, True, 1.0, g_r)
    assert v_r == pytest.approx(-(t * logp).sum(), rel=1e-9)
    assert v_c == pytest.approx(v_r, rel=2e-6)
    np.testing.assert_allclose(g_c, g_r, rtol=0, atol=2e-6)
    g_s = np.empty_like(z)
    v_s = C.sparse_softmax_cross_entropy(z, labels.astype(np.int64), True, 1.0, g_s)
    assert v_s == pytest.approx(v_r, rel=2e-6)
    np.testing.assert_allclose(g_s, g_r, rtol=0, atol=2e-6)
