"""Loss kernels where C and the reference must agree beyond random inputs: NaN errors,
probabilities clipped at the dtype's epsilon as Keras does, empty predictions."""
import numpy as np
import pytest

from fastnn.reference.losses import LOSS_CODES

from conftest import C, REF, requires_c

pytestmark = requires_c
DTYPES = [np.float32, np.float64]


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


def test_softmax_cross_entropy_never_takes_log_of_zero():
    z = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    labels = np.array([1], np.int64)
    g = np.empty_like(z)
    v = C.sparse_softmax_cross_entropy(z, labels, True, 1.0, g)
    assert np.isfinite(v) and v > 1000
    assert np.all(np.isfinite(g))
    p = np.array([[1.0, 0.0, 0.0]], np.float32)  # probabilities with an exact zero
    v = C.sparse_softmax_cross_entropy(p, labels, False, 1.0, g)
    assert np.isfinite(v) and np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[1.0, -1.0, 0.0]])


def test_sparse_label_out_of_range_gives_nan_not_a_stray_read():
    z = np.zeros((2, 3), np.float32)
    assert np.isnan(C.sparse_softmax_cross_entropy(z, np.array([0, 3], np.int64), True, 1.0, None))
    assert np.isnan(C.sparse_softmax_cross_entropy(z, np.array([-1, 0], np.int64), True, 1.0, None))
