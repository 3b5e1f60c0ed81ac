"""The dropout family: the counter-based generator (C and reference bit for bit, any thread
count), mask statistics, layer semantics (training / inference / MC), gradients, MC dropout."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import layers


from conftest import C, REF, numeric_grad, requires_c

DTYPES = [np.float32, np.float64]
BACKENDS = ["numpy"] + (["c"] if C is not None else [])
OPS = [REF] + ([C] if C is not None else [])
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


@pytest.fixture
def restore():
    threads = fastnn.get_num_threads()
    yield
    fastnn.set_backend("c" if C is not None else "numpy")
    fastnn.set_num_threads(threads)


# ---- the generator and the kernels -----------------------------------------------------------
def test_splitmix64_words_by_hand():
    """The first word of (seed, counter), worked with Python integers."""
    mask = (1 << 64) - 1
    G = 0x9E3779B97F4A7C15

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    for seed, counter in ((0, 0), (12345, 7), (-1, 2 ** 40)):
        key = mix((mix(seed & mask) + counter * G) & mask)
        expected = [mix((key + (i + 1) * G) & mask) for i in range(4)]
        assert [int(w) for w in REF.random_words(seed, counter, 4)] == expected
        if C is not None:
            assert [int(w) for w in C.random_words(seed, counter, 4)] == expected


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_masks_same_bits_for_1_and_2_threads(dtype):
    x = np.random.default_rng(2).standard_normal((400, 500)).astype(dtype)  # parallel path
    a = C.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 1, 2, n_threads=1)
    b = C.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 1, 2, n_threads=2)
    np.testing.assert_array_equal(a, b)
    g1 = C.gaussian_noise_apply(x, 0.3, True, 1, 2, n_threads=1)
    g2 = C.gaussian_noise_apply(x, 0.3, True, 1, 2, n_threads=2)
    np.testing.assert_array_equal(g1, g2)


def test_keep_rule_by_hand():
    """Two keep decisions per word: element i uses the low (even i) or high (odd i) 32 bits of
    word i // 2, kept when they are >= floor(rate * 2^32); worked with Python integers."""
    mask64 = (1 << 64) - 1
    G = 0x9E3779B97F4A7C15

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask64
        return z ^ (z >> 31)

    seed, counter, n = 77, 3, 41
    key = mix((mix(seed) + counter * G) & mask64)
    words = [mix((key + (j + 1) * G) & mask64) for j in range((n + 1) // 2)]
    halves = [(words[i // 2] >> (32 * (i % 2))) & 0xFFFFFFFF for i in range(n)]
    for rate in (0.0, 0.25, 0.5, 0.9, 1.0):
        thr = 1 << 32 if rate >= 1 else int(rate * 2 ** 32)
        expected = [int(h >= thr) for h in halves]
        for ops in [REF] + ([C] if C is not None else []):
            keep = np.empty(n, np.uint8)
            ops.dropout_apply(np.ones(n), rate, 1.0, 0.0, 0.0, seed, counter, None, keep)
            assert keep.tolist() == expected, (ops.__name__, rate)
    # rate 0.5 keeps some and drops some: the comparison above is not vacuous
    assert 0 < sum(int(h >= int(0.5 * 2 ** 32)) for h in halves) < n


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("shape", [(1, 1), (2, 1), (7, 9), (64, 33)])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.9, 1.0])
def test_dropout_mask_is_the_outputs_keep_decision(ops, shape, rate):
    """The keep-mask written by the forward kernel is 0/1, is the keep decision of the output
    itself, on odd element counts too (the last word's high half unused), and
    dropout_backward routes the gradient through it (C against the reference:
    tests/kernels/test_kernel_parity.py)."""
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    for dtype in DTYPES:
        x = rng.standard_normal(shape).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        scale = 1 / (1 - rate) if rate < 1 else 0.0
        for args in ((scale, 0.0, 0.0), (1.7, -0.3, 0.25)):
            mask = np.full(shape, 7, np.uint8)
            y = ops.dropout_apply(x, rate, *args, 42, 5, None, mask)
            assert set(np.unique(mask)) <= {0, 1}
            np.testing.assert_array_equal(y, np.where(mask == 1, x * dtype(args[0]) + dtype(args[1]),
                                                      dtype(args[2])))
            # without a mask: the same output
            np.testing.assert_array_equal(ops.dropout_apply(x, rate, *args, 42, 5), y)
        assert mask.all() if rate == 0 else (not mask.any() if rate == 1 else True)
        dx = ops.dropout_backward(dy, mask, 1.25)
        assert dx.dtype == dtype
        np.testing.assert_array_equal(dx, np.where(mask == 1, dy * dtype(1.25), dtype(0)))


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_and_backward_same_bits_for_1_and_2_threads_parallel_path(dtype):
    x = np.random.default_rng(4).standard_normal((401, 499)).astype(dtype)  # odd count, parallel
    out = {}
    for t in (1, 2):
        m = np.empty(x.shape, np.uint8)
        y = C.dropout_apply(x, 0.4, 1 / 0.6, 0.0, 0.0, 9, 1, None, m, n_threads=t)
        out[t] = (y, m, C.dropout_backward(x, m, 1 / 0.6, n_threads=t))
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(out[1][1], REF.dropout_apply(x, 0.4, 1.0, 0.0, 0.0, 9, 1) != 0)


@pytest.mark.parametrize("name", BACKENDS)
def test_backward_nan_propagates_where_kept_and_dropped_is_plus_zero(restore, name):
    fastnn.set_backend(name)
    ops = fastnn.backend.ops
    n = 1001
    m = np.empty(n, np.uint8)
    x = np.full(n, np.nan, np.float32)
    y = ops.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 3, 0, None, m)
    kept = m == 1
    assert 0 < kept.sum() < n
    assert np.isnan(y[kept]).all()
    assert (y[~kept] == 0).all() and not np.signbit(y[~kept]).any()
    dx = ops.dropout_backward(x, m, 2.0)
    assert np.isnan(dx[kept]).all()
    assert (dx[~kept] == 0).all() and not np.signbit(dx[~kept]).any()


@pytest.mark.parametrize("name", BACKENDS)
def test_rate_edges_zero_tiny_near_one_and_one(restore, name):
    fastnn.set_backend(name)
    ops = fastnn.backend.ops
    n = 100_001
    m = np.empty(n, np.uint8)
    for rate, kept in ((0.0, n), (2.0 ** -34, n), (1.0, 0)):  # floor(2^-34 * 2^32) = 0: all kept
        ops.dropout_apply(np.ones(n), rate, 1.0, 0.0, 0.0, 5, 1, None, m)
        assert m.sum() == kept, rate
    # rate = 1 - 2^-30: threshold 2^32 - 4, P(keep) = 2^-30; none of 1e5 expected
    ops.dropout_apply(np.ones(n), 1 - 2.0 ** -30, 1.0, 0.0, 0.0, 5, 1, None, m)
    assert m.sum() <= 1
    # rate = 2^-20: P(drop) = 2^-20, ~0.1 drops in 1e5: at most a few
    ops.dropout_apply(np.ones(n), 2.0 ** -20, 1.0, 0.0, 0.0, 5, 1, None, m)
    assert n - m.sum() <= 3


@pytest.mark.parametrize("name", BACKENDS)
def test_mask_and_backward_bad_inputs_raise(restore, name):
    fastnn.set_backend(name)
    ops = fastnn.backend.ops
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="mask"):
        ops.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 0, 0, None, np.empty((4, 3), np.uint8))
    with pytest.raises(TypeError, match="mask"):
        ops.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 0, 0, None, np.empty((3, 4), np.int32))
    with pytest.raises(ValueError, match="mask"):
        ops.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 0, 0, None, np.empty((4, 3), np.uint8).T)
    with pytest.raises(TypeError, match="mask"):
        ops.dropout_apply(x, 0.5, 2.0, 0.0, 0.0, 0, 0, None, [[1] * 4] * 3)
    with pytest.raises(ValueError, match="mask"):
        ops.dropout_backward(x, np.ones((3, 5), np.uint8), 2.0)
    with pytest.raises(TypeError, match="mask"):
        ops.dropout_backward(x, np.ones((3, 4), np.float32), 2.0)
    with pytest.raises(TypeError, match="dY"):
        ops.dropout_backward(np.ones((3, 4), np.int64), np.ones((3, 4), np.uint8), 2.0)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8, 0.9])
def test_keep_rate_within_binomial_bound_and_mean_preserved(restore, name, rate):
    fastnn.set_backend(name)
    n = 200_000
    y = fastnn.backend.ops.dropout_apply(np.ones(n), rate, 1 / (1 - rate), 0.0, 0.0, 2024, 1)
    kept = np.count_nonzero(y)
    p = 1 - rate
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(kept - n * p) < 5 * sigma  # 5-sigma binomial bound
    # inverted dropout keeps the mean: E[y] = 1, sd of the mean sqrt(rate / (1 - rate) / n)
    assert abs(y.mean() - 1) < 5 * math.sqrt(rate / p / n)
    assert set(np.unique(y)) == {0.0, 1 / p}
    # different counters give (nearly) independent masks
    y2 = fastnn.backend.ops.dropout_apply(np.ones(n), rate, 1.0, 0.0, 0.0, 2024, 2)
    both = np.count_nonzero(y * y2)
    assert abs(both - n * p * p) < 5 * math.sqrt(n * p * p * (1 - p * p))


@pytest.mark.parametrize("name", BACKENDS)
def test_gaussian_noise_statistics(restore, name):
    fastnn.set_backend(name)
    n = 200_000 if name == "c" else 40_000
    z = fastnn.backend.ops.gaussian_noise_apply(np.zeros(n), 1.0, False, 5, 0)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1) < 5 / math.sqrt(2 * n)
    assert abs(np.mean(z ** 3)) < 5 * math.sqrt(15 / n)             # symmetric
    assert abs(np.mean(z ** 4) - 3) < 5 * math.sqrt(96 / n)         # Gaussian kurtosis
    m = fastnn.backend.ops.gaussian_noise_apply(np.ones(n), 0.5, True, 5, 0)
    assert abs(m.mean() - 1) < 5 * 0.5 / math.sqrt(n)


# ---- layers --------------------------------------------------------------------------------------
def test_dropout_layer_training_inference_and_new_mask_per_call():
    layer = layers.Dropout(0.5, seed=3)
    x = np.ones((20, 30), np.float32)
    np.testing.assert_array_equal(np.array(layer(x)), x)  # inference: identity
    a = np.array(layer(x, training=True))
    b = np.array(layer(x, training=True))
    assert set(np.unique(a)) == {0.0, 2.0}
    assert not np.array_equal(a, b)
    # same seed, same sequence of masks; the mask is (seed, call number) only
    other = layers.Dropout(0.5, seed=3)
    np.testing.assert_array_equal(np.array(other(x, training=True)), a)
    np.testing.assert_array_equal(np.array(other(x, training=True)), b)


def test_masks_identical_for_1_and_2_threads_on_a_dropout_model(restore):
    x = np.random.default_rng(0).standard_normal((400, 500)).astype(np.float32)
    outs = []
    for threads in (1, 2):
        fastnn.set_num_threads(threads)
        model = fastnn.Sequential([layers.Input(shape=(500,)), layers.Dropout(0.3, seed=11),
                                   layers.GaussianDropout(0.2, seed=12),
                                   layers.AlphaDropout(0.1, seed=13)])
        outs.append([model(x, training=True), model(x, training=True)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(C is None, reason="C extension not built")
def test_layers_give_the_same_bits_on_c_and_reference(restore):
    x = np.random.default_rng(1).standard_normal((33, 17))
    outs = []
    for name in ("c", "numpy"):
        fastnn.set_backend(name)
        model = fastnn.Sequential([layers.Input(shape=(17,)), layers.Dropout(0.4, seed=1),
                                   layers.AlphaDropout(0.2, seed=2), layers.GaussianNoise(0.3, seed=3),
                                   layers.GaussianDropout(0.3, seed=4)])
        outs.append(model(x, training=True))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_set_seed_makes_masks_reproducible():
    x = np.ones((8, 64), np.float32)

    def run():
        fastnn.set_seed(123)
        model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dropout(0.5)])
        return model(x, training=True)

    np.testing.assert_array_equal(run(), run())


def test_alpha_dropout_follows_keras_formula_and_keeps_moments():
    rate = 0.2
    layer = layers.AlphaDropout(rate, seed=5, dtype="float64")
    x = np.random.default_rng(3).standard_normal((400, 500))
    y = np.array(layer(x, training=True))
    alpha_p = -SELU_ALPHA * SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p ** 2)) ** -0.5
    b = -a * alpha_p * rate
    keep = REF.dropout_apply(np.ones_like(x), rate, 1.0, 0.0, 0.0, 5, 0) == 1
    expected = np.where(keep, a * x + b, a * alpha_p + b)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-15)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1) < 0.02  # self-normalizing
    np.testing.assert_array_equal(np.array(layer(x)), x)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("make", [
    lambda: layers.Dropout(0.4, seed=1),
    lambda: layers.Dropout(0.4, noise_shape=(None, 1), seed=1),
    lambda: layers.AlphaDropout(0.3, seed=2),
    lambda: layers.AlphaDropout(0.3, noise_shape=(1, None), seed=2),
    lambda: layers.GaussianDropout(0.3, seed=3),
    lambda: layers.GaussianNoise(0.5, seed=4),
    lambda: layers.DropConnectDense(4, rate=0.4, activation="tanh", seed=5),
], ids=["dropout", "dropout_noise_shape", "alpha", "alpha_noise_shape", "gaussian_dropout",
        "gaussian_noise", "dropconnect"])
def test_layer_gradients_with_the_forward_mask(float64_model, restore, name, make):
    """Finite differences with the mask held fixed (the call counter is rewound)."""
    fastnn.set_backend(name)
    rng = np.random.default_rng(6)
    layer = make()
    x = rng.standard_normal((5, 6))
    layer._maybe_build((None, 6))
    w = rng.standard_normal(np.shape(layer.forward(x, True)))
    layer._calls = 0
    layer.forward(x, True)
    dx = np.array(layer.backward(w.copy(), True))
    grads = [v.grad.copy() for v in layer.trainable_weights]

    def f():
        layer._calls = 0
        return float((np.array(layer.forward(x, True)) * w).sum())

    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    for v, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g, numeric_grad(f, v.value), rtol=1e-6, atol=1e-8, err_msg=v.name)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("cls", [layers.Dropout, layers.AlphaDropout])
def test_backward_uses_the_stored_mask_in_a_reused_buffer(restore, name, cls):
    """Training forward stores the keep-mask (one buffer, reused every step); backward is
    dy * scale there and 0 elsewhere, the same as generating the mask again; MC-dropout
    inference stores none and backward still gives the same gradient."""
    fastnn.set_backend(name)
    layer = cls(0.3, seed=21, dtype="float32")
    x = np.random.default_rng(5).standard_normal((16, 40)).astype(np.float32)
    dy = np.random.default_rng(6).standard_normal((16, 40)).astype(np.float32)
    scale = layer._backward_scale() if cls is layers.AlphaDropout else 1 / 0.7
    addresses = set()
    for step in range(3):
        layer._calls = step
        layer.forward(x, True)
        keep = layer._keep
        assert keep.dtype == np.uint8 and keep.shape == x.shape
        addresses.add(keep.ctypes.data)
        expected_keep = REF.dropout_apply(np.ones_like(x), 0.3, 1.0, 0.0, 0.0, 21, step) == 1
        np.testing.assert_array_equal(keep, expected_keep)
        dx = np.array(layer.backward(dy, True))
        np.testing.assert_array_equal(dx, np.where(expected_keep, dy * np.float32(scale), 0))
        layer._calls = step
        layer.forward(x, "mc")  # the same mask, not stored
        assert layer._keep is None
        np.testing.assert_array_equal(np.array(layer.backward(dy, True)), dx)
    assert len(addresses) == 1  # no allocation per step


def test_dropconnect_kernel_gradient_through_the_stored_mask(restore):
    layer = layers.DropConnectDense(7, rate=0.4, use_bias=False, seed=3, dtype="float64")
    layer._maybe_build((None, 5))
    x = np.random.default_rng(1).standard_normal((4, 5))
    dy = np.random.default_rng(2).standard_normal((4, 7))
    layer.forward(x, True)
    keep = layer._keep.copy()
    np.testing.assert_array_equal(keep, REF.dropout_apply(np.ones((5, 7)), 0.4, 1.0, 0.0, 0.0, 3, 0) == 1)
    layer.backward(dy, True)
    np.testing.assert_allclose(layer.kernel.grad, np.where(keep, x.T @ dy / 0.6, 0), rtol=1e-12)


def test_noise_shape_broadcasts_the_mask():
    layer = layers.Dropout(0.5, noise_shape=(None, 1), seed=8)
    x = np.ones((200, 7), np.float32)
    y = np.array(layer(x, training=True))
    assert np.all((y == 0).all(axis=1) | (y == 2).all(axis=1))  # whole rows dropped or kept
    assert 0 < (y[:, 0] == 0).sum() < 200
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape=(3, 7))(x, training=True)


def test_dropconnect_drops_weights_in_training_and_is_dense_at_inference():
    fastnn.set_seed(4)
    dc = layers.DropConnectDense(50, rate=0.5, use_bias=False, seed=9)
    x = np.eye(40, dtype=np.float32)  # output row i = (effective kernel) row i
    y_inf = np.array(dc(x))
    np.testing.assert_allclose(y_inf, dc.kernel.value, rtol=1e-6)
    y = np.array(dc(x, training=True))
    dropped = (y == 0) & (dc.kernel.value != 0)
    assert abs(dropped.mean() - 0.5) < 5 * math.sqrt(0.25 / y.size)
    np.testing.assert_allclose(y[~dropped], 2 * dc.kernel.value[~dropped], rtol=1e-6)
    dense = layers.Dense(50, use_bias=False)
    dense._maybe_build((None, 40))
    dense.set_weights(dc.get_weights())
    np.testing.assert_array_equal(np.array(dense(x)), y_inf)
    clone = layers.DropConnectDense.from_config(dc.get_config())
    assert clone.rate == 0.5 and clone.seed == 9


def test_model_call_training_true_samples_and_uses_batch_statistics():
    fastnn.set_seed(5)
    model = fastnn.Sequential([layers.Input(shape=(10,)), layers.Dense(16),
                               layers.BatchNormalization(), layers.Dropout(0.5)])
    x = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    a, b = model(x, training=True), model(x, training=True)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(model(x), model(x))
    assert not np.allclose(model.layers[1].moving_mean.value, 0)  # batch statistics were used


def test_mc_predict_mean_and_std():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 8)).astype(np.float32)

    def make():
        fastnn.set_seed(7)
        m = fastnn.Sequential([layers.Input(shape=(8,)), layers.Dense(32, activation="relu"),
                               layers.BatchNormalization(), layers.Dropout(0.3),
                               layers.Dense(2)])
        m.compile(optimizer="sgd", loss="mse")
        m.fit(x, rng.standard_normal((50, 2)) * 0, epochs=1, verbose=0, shuffle=False)
        return m

    m1 = make()
    bn_stats = [v.numpy() for v in m1.layers[1].non_trainable_weights]
    mean, std = m1.predict(x, mc_samples=30, batch_size=16)
    assert mean.shape == std.shape == (50, 2) and mean.dtype == np.float32
    assert np.all(std > 0)
    for a, b in zip(bn_stats, m1.layers[1].non_trainable_weights):  # BN stayed in inference mode
        np.testing.assert_array_equal(a, b.value)
    # the same passes by hand: each pass draws fresh masks batch by batch
    m2 = make()
    samples = np.stack([np.concatenate([np.array(m2._forward(x[lo:lo + 16], "mc"), np.float64)
                                        for lo in range(0, 50, 16)]) for _ in range(30)])
    np.testing.assert_allclose(mean, samples.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(std, samples.std(0), rtol=1e-4, atol=1e-6)
    # utils.mc_predict is the same function
    m3 = make()
    mean3, std3 = fastnn.utils.mc_predict(m3, x, 30, batch_size=16)
    np.testing.assert_array_equal(mean3, mean)
    np.testing.assert_array_equal(std3, std)


def test_mc_predict_without_dropout_is_predict_with_zero_std():
    fastnn.set_seed(8)
    model = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(5),
                               layers.BatchNormalization(), layers.Dense(1)])
    x = np.random.default_rng(2).standard_normal((20, 4)).astype(np.float32)
    mean, std = model.predict(x, mc_samples=3)
    np.testing.assert_allclose(mean, model.predict(x), rtol=1e-6)
    np.testing.assert_array_equal(std, 0)
    with pytest.raises(ValueError, match="positive integer"):
        model.predict(x, mc_samples=0)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.5)
    with pytest.raises(ValueError, match="rate"):
        layers.AlphaDropout(1.0)
    with pytest.raises(ValueError, match="rate"):
        layers.GaussianDropout(-0.1)
    with pytest.raises(ValueError, match="stddev"):
        layers.GaussianNoise(2.0)
    with pytest.raises(ValueError, match="seed"):
        layers.Dropout(0.5, seed=1.5)
    with pytest.raises(ValueError, match="noise_shape"):
        layers.Dropout(0.5, noise_shape="auto")
    with pytest.raises(ValueError, match="rate"):
        fastnn.backend.ops.dropout_apply(np.ones(3), 1.5, 1.0, 0.0, 0.0, 0, 0)


def test_rate_one_and_zero():
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(np.array(layers.Dropout(1.0)(x, training=True)), 0)
    np.testing.assert_array_equal(np.array(layers.Dropout(0.0)(x, training=True)), x)


def test_config_round_trip():
    for layer in (layers.Dropout(0.3, noise_shape=(None, 1), seed=2), layers.AlphaDropout(0.1),
                  layers.GaussianDropout(0.2, seed=1), layers.GaussianNoise(0.1)):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_box_muller_polynomials_match_libm():
    """fastnn's own ln / sin / cos (bit-identical in C and NumPy) are accurate to ~1e-15."""
    from fastnn.reference import dropout as ref
    w = ref.random_words(17, 3, 400_000)
    z0, z1 = ref._normal_pairs(w[0::2], w[1::2])
    u1 = 1.0 - (w[0::2] >> np.uint64(12)).astype(np.float64) * 2.0 ** -52
    t = (w[1::2] >> np.uint64(12)).astype(np.float64) * 2.0 ** -52 * 2 * np.pi
    r = np.sqrt(-2.0 * np.log(u1))
    np.testing.assert_allclose(z0, r * np.cos(t), rtol=0, atol=1e-13)
    np.testing.assert_allclose(z1, r * np.sin(t), rtol=0, atol=1e-13)
    assert r.max() < 8.6  # u1 >= 2^-52: tails end past 8.4 sigma
