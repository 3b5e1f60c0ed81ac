"""Review findings: inputs where a C kernel and its NumPy reference meant different things, and
wrapper arguments that crashed the interpreter. Each test failed before its fix."""
import subprocess
import sys

import numpy as np
import pytest

from fastnn.reference.activations import ACTIVATION_CODES
from fastnn.reference.losses import LOSS_CODES

from conftest import C, REF, requires_c, same_fastnn_env

pytestmark = requires_c
DTYPES = [np.float32, np.float64]
RELU, HARD_SIGMOID, GELU = (ACTIVATION_CODES[n] for n in ("relu", "hard_sigmoid", "gelu"))


# ---- NaN and inf: C and reference agree ---------------------------------------------------------
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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_mae_and_huber_gradient_propagate_nan(dtype, loss):
    # C wrote 0 (mae) and -delta (huber) where the error is NaN; the reference NaN (sign(NaN))
    p = np.array([[np.nan, 1.0, -2.0, 0.0]], dtype)
    t = np.array([[0.0, 0.0, 0.0, 0.0]], dtype)
    g_c, g_r = np.empty_like(p), np.empty_like(p)
    v_c = C.elementwise_loss(p, t, LOSS_CODES[loss], 0.5, 1.0, g_c)
    v_r = REF.elementwise_loss(p, t, LOSS_CODES[loss], 0.5, 1.0, g_r)
    assert np.isnan(v_c) and np.isnan(v_r)
    np.testing.assert_array_equal(g_c, g_r)


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


# ---- extreme but realistic: a saturated float32 sigmoid output -------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_clips_at_the_dtypes_epsilon_as_keras_and_c(dtype):
    # A float32 sigmoid gives exactly 1.0 for logits above ~17. Keras clips in the output's
    # dtype: 1 - 1e-7 is 0.99999988 in float32, so -log(1 - p) = 15.94; the reference clipped
    # in float64 (16.12): a 1 % different loss than C and Keras for every saturated wrong unit.
    p = np.array([[1.0, 0.0, 1.0, 0.3]], dtype)
    t = np.array([[0.0, 1.0, 1.0, 0.0]], dtype)
    eps = dtype(1e-7)
    pc = np.clip(p, eps, dtype(1) - eps).astype(np.float64)
    t64 = t.astype(np.float64)
    keras = float(-(t64 * np.log(pc) + (1 - t64) * np.log(1 - pc)).mean())
    g_c, g_r = np.empty_like(p), np.empty_like(p)
    v_c = C.elementwise_loss(p, t, LOSS_CODES["bce"], 1.0, 1.0, g_c)
    v_r = REF.elementwise_loss(p, t, LOSS_CODES["bce"], 1.0, 1.0, g_r)
    assert v_r == pytest.approx(keras, rel=1e-12)
    assert v_c == pytest.approx(v_r, rel=1e-6)
    np.testing.assert_allclose(g_c, g_r, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cce_clips_at_the_dtypes_epsilon(dtype):
    # a confident correct prediction: the loss is -log(1 - eps), 1.19e-7 in float32 and 1e-7
    # with float64 bounds (the reference's, before): C and reference must agree
    p = np.array([[1.0, 0.0, 0.0]], dtype)
    t = np.array([[1.0, 0.0, 0.0]], dtype)
    expected = -np.log(np.float64(dtype(1) - dtype(1e-7)))
    v_c = C.elementwise_loss(p, t, LOSS_CODES["cce"], 1.0, 1.0, np.empty_like(p))
    v_r = REF.elementwise_loss(p, t, LOSS_CODES["cce"], 1.0, 1.0, np.empty_like(p))
    assert v_r == pytest.approx(expected, rel=1e-9)
    assert v_c == pytest.approx(v_r, rel=1e-5)
    v_c = C.softmax_cross_entropy(p, t, False)
    v_r = REF.softmax_cross_entropy(p, t, False)
    assert v_r == pytest.approx(expected, rel=1e-9)
    assert v_c == pytest.approx(v_r, rel=1e-5)
    labels = np.array([0], np.int64)
    assert REF.sparse_softmax_cross_entropy(p, labels, False) == pytest.approx(expected, rel=1e-9)
    assert C.sparse_softmax_cross_entropy(p, labels, False) == pytest.approx(expected, rel=1e-5)


# ---- wrappers: a missing required vector raises instead of crashing ------------------------------
@pytest.mark.parametrize("call", [
    "C.batchnorm_backward(dy, x, None, np.ones(4), None)",
    "C.batchnorm_backward(dy, x, np.zeros(4), None, None)",
    "C.layernorm_backward(dy, x, None, None, np.ones(3))",
    "C.layernorm_backward(dy, x, None, np.zeros(3), None)",
])
def test_normalization_backward_without_statistics_raises(call):
    # mean / invstd / rstd None became a NULL pointer the kernel read: a segfault. Run in a
    # child process so a regression fails this test instead of killing the test run.
    code = ("import numpy as np\n"
            "from fastnn import ops\n"
            "C = ops.COps()\n"
            "x = np.ones((3, 4)); dy = np.ones((3, 4))\n"
            "try:\n"
            f"    {call}\n"
            "except ValueError as e:\n"
            "    print('ValueError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_fastnn_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ValueError") and "None" in out.stdout


# ---- parity on the parallel path: an odd-sized Gaussian noise split across threads ----------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplicative", [False, True])
def test_gaussian_noise_parallel_odd_size_matches_reference(dtype, multiplicative):
    # the existing parity test used <= 2112 elements (serial); the parallel split over pairs
    # with an unpaired last element was only checked against itself (an even size)
    x = np.random.default_rng(3).standard_normal(40_001).astype(dtype)  # 4 n > 131072
    y_c = C.gaussian_noise_apply(x, 0.4, multiplicative, 3, 9, n_threads=2)
    np.testing.assert_array_equal(y_c, REF.gaussian_noise_apply(x, 0.4, multiplicative, 3, 9))


# ---- a layer object used at two positions of a Sequential -----------------------------------------
def test_layer_used_twice_refuses_to_train_instead_of_wrong_gradients():
    # Each layer caches its forward inputs for its backward; at its second position it
    # overwrote the first position's cache and its weight gradient, so fit() trained on a
    # wrong gradient (measured: kernel gradient off by 0.38 where it is 0.5). Prediction is
    # right and keeps working.
    import fastnn
    from fastnn import layers
    rng = np.random.default_rng(0)
    shared = layers.Dense(4, activation="tanh")
    model = fastnn.Sequential([layers.Input(shape=(4,)), shared, shared])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    w, b = shared.kernel.numpy().astype(np.float64), shared.bias.numpy().astype(np.float64)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tanh(np.tanh(x @ w + b) @ w + b),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="more than once"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(NotImplementedError, match="more than once"):
        model.train_on_batch(x, y)


@pytest.mark.parametrize("shape", [(3, 0), (0, 3)])
def test_losses_of_empty_predictions_are_zero_in_both(shape):
    # C returned 0.0 for any empty y_pred; the reference NaN (a mean over 0 columns), raised
    # (softmax: max over 0 columns) or NaN (sparse: every label out of range)
    p = np.zeros(shape, np.float32)
    labels = np.zeros(shape[0], np.int64)
    for ops in (C, REF):
        for code in LOSS_CODES.values():
            assert ops.elementwise_loss(p, p, code) == 0.0, (ops, code)
        for from_logits in (True, False):
            assert ops.softmax_cross_entropy(p, p, from_logits) == 0.0
            assert ops.sparse_softmax_cross_entropy(p, labels, from_logits) == 0.0


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
