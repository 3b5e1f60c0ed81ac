"""BatchNormalization, LayerNormalization, Normalization: kernels against the reference,
gradients by finite differences, Keras semantics (moving statistics, inference mode, frozen
layers), determinism of inference, adapt()."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

from conftest import C, numeric_grad, requires_c

DTYPES = [np.float32, np.float64]
BACKENDS = ["numpy"] + (["c"] if C is not None else [])


@pytest.fixture
def backend_name(request):
    yield
    fastnn.set_backend("c" if C is not None else "numpy")


def _use(name):
    fastnn.set_backend(name)


# ---- kernels (their parity with the reference: tests/kernels/test_kernel_parity.py) ---------
@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalization_kernels_same_bits_for_1_and_2_threads(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 700)).astype(dtype)  # above the parallel threshold
    g, b = rng.standard_normal(700).astype(dtype), rng.standard_normal(700).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    outs = []
    for t in (1, 2):
        mm, mv = np.zeros(700, dtype), np.ones(700, dtype)
        y, mu, inv = C.batchnorm_forward_train(x, g, b, 1e-3, 0.99, mm, mv, n_threads=t)
        dg, db = np.empty(700, dtype), np.empty(700, dtype)
        dx = C.batchnorm_backward(dy, x, mu, inv, g, None, dg, db, n_threads=t)
        yl, mul, rl = C.layernorm_forward(x, g, b, 1e-3, n_threads=t)
        dgl, dbl = np.empty(700, dtype), np.empty(700, dtype)
        dxl = C.layernorm_backward(dy, x, g, mul, rl, None, dgl, dbl, n_threads=t)
        outs.append([y, mu, inv, mm, mv, dx, dg, db, yl, dxl, dgl, dbl])
    for a, b_ in zip(*outs):
        assert np.array_equal(a, b_)


@requires_c
def test_one_pass_batch_variance_is_accurate_with_a_large_mean():
    """The one-pass statistics are shifted: no cancellation when |mean| >> std."""
    rng = np.random.default_rng(0)
    x = (1e4 + rng.standard_normal((512, 8)) * 1e-1).astype(np.float32)
    _, mean, inv = C.batchnorm_forward_train(x, None, None, 1e-8, 0.99)
    var64 = x.astype(np.float64).var(axis=0)
    np.testing.assert_allclose(1.0 / inv.astype(np.float64) ** 2 - 1e-8, var64, rtol=1e-4)
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=0), rtol=1e-7)


def test_kernel_argument_errors():
    ops = fastnn.backend.ops
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="gamma has shape"):
        ops.batchnorm_forward_train(x, np.ones(3, np.float32), None, 1e-3, 0.99)
    with pytest.raises(ValueError, match="epsilon"):
        ops.batchnorm_forward_train(x, None, None, 0.0, 0.99)
    with pytest.raises(TypeError):
        ops.col_affine(x.astype(np.int32), None, np.ones(4, np.float32), None)


# ---- gradients by finite differences (float64) ---------------------------------------------
def _grad_check(layer, x, training=True, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(np.shape(layer.forward(x, training)))
    layer.forward(x, training)
    dx = np.array(layer.backward(w.copy(), True))
    grads = [v.grad.copy() for v in layer.trainable_weights]
    f = lambda: float((np.array(layer.forward(x, training)) * w).sum())
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    for v, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g, numeric_grad(f, v.value), rtol=1e-6, atol=1e-8, err_msg=v.name)


@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("make,shape,training", [
    (lambda: layers.BatchNormalization(), (7, 5), True),
    (lambda: layers.BatchNormalization(center=False), (6, 4), True),
    (lambda: layers.BatchNormalization(scale=False), (6, 4), True),
    (lambda: layers.BatchNormalization(momentum=0.5), (4, 3, 5), True),
    (lambda: layers.BatchNormalization(), (7, 5), False),
    (lambda: layers.LayerNormalization(), (5, 6), True),
    (lambda: layers.LayerNormalization(center=False, scale=False), (5, 6), True),
    (lambda: layers.LayerNormalization(axis=[1, 2]), (3, 4, 2), True),
    (lambda: layers.Normalization(mean=[0.5, -1.0, 2.0], variance=[4.0, 0.25, 1.0]), (4, 3), True),
    (lambda: layers.Normalization(mean=1.0, variance=2.0, axis=None, invert=True), (4, 3), True),
], ids=["bn", "bn_nocenter", "bn_noscale", "bn_rank3", "bn_inference", "ln", "ln_plain",
        "ln_two_axes", "normalization", "normalization_invert"])
def test_layer_gradients(float64_model, backend_name, name, make, shape, training):
    _use(name)
    rng = np.random.default_rng(4)
    layer = make()
    layer._maybe_build((None,) + shape[1:])
    for v in layer.weights:  # non-trivial gamma / beta / moving statistics
        if v.value.dtype.kind == "f":
            v.assign(rng.random(v.shape) + 0.5)
    x = rng.standard_normal(shape) * 2 + 0.5
    _grad_check(layer, x, training)


def test_frozen_batchnorm_gradient_is_inference_mode(float64_model):
    layer = layers.BatchNormalization()
    layer._maybe_build((None, 4))
    layer.moving_variance.assign([0.5, 2.0, 1.0, 3.0])
    layer.trainable = False
    x = np.random.default_rng(2).standard_normal((6, 4))
    y = layer.forward(x, True)  # frozen: moving statistics even with training=True
    expected = (x - layer.moving_mean.value) / np.sqrt(layer.moving_variance.value + 1e-3)
    np.testing.assert_allclose(y, expected * layer.gamma.value + layer.beta.value, rtol=1e-12)
    _grad_check(layer, x, True)


@pytest.mark.parametrize("name", BACKENDS)
def test_prelu_batchnorm_stack_whole_model_gradient(float64_model, backend_name, name):
    """Gradient of the training loss through Dense -> BN -> PReLU stacks, every weight."""
    _use(name)
    rng = np.random.default_rng(8)
    model = fastnn.Sequential([
        layers.Input(shape=(5,)),
        layers.Dense(6),
        layers.BatchNormalization(),
        layers.PReLU(alpha_initializer=fastnn.initializers.Constant(0.2)),
        layers.Dense(7),
        layers.BatchNormalization(),
        layers.PReLU(alpha_initializer=fastnn.initializers.Constant(0.3)),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.gamma.assign(rng.random(layer.gamma.shape) + 0.5)
            layer.beta.assign(rng.standard_normal(layer.beta.shape))
    x = rng.standard_normal((10, 5))
    y = rng.integers(0, 3, 10)
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)
    model._prepare_training()
    model._train_step(x, t)  # lr 0: computes the gradients, leaves the weights
    f = lambda: model.loss.compute(np.array(model._forward(x, True)), t) / len(x)
    assert len(model.trainable_weights) == 12
    for v in model.trainable_weights:
        np.testing.assert_allclose(v.grad, numeric_grad(f, v.value), rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


# ---- Keras semantics -------------------------------------------------------------------------
def test_batchnorm_weights_and_moving_statistics_follow_keras():
    layer = layers.BatchNormalization(momentum=0.9)
    model = fastnn.Sequential([layers.Input(shape=(4,)), layer])
    assert [v.name for v in layer.variables] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [v.trainable for v in layer.variables] == [True, True, False, False]
    assert [v.name for v in model.non_trainable_weights] == ["moving_mean", "moving_variance"]
    x = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32) * 3 + 1
    y = np.array(layer(x, training=True))
    x64 = x.astype(np.float64)
    mean, var = x64.mean(0), x64.var(0)  # biased variance, as Keras
    np.testing.assert_allclose(y, (x64 - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.value, 0.9 * 0 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.value, 0.9 * 1 + 0.1 * var, rtol=1e-5)
    # inference: the moving statistics
    y_inf = np.array(layer(x, training=False))
    mm, mv = layer.moving_mean.value.astype(np.float64), layer.moving_variance.value.astype(np.float64)
    np.testing.assert_allclose(y_inf, (x64 - mm) / np.sqrt(mv + 1e-3), rtol=1e-4, atol=1e-5)
    # mc mode (MC dropout) is inference for batch norm, and leaves the statistics alone
    before = layer.moving_mean.numpy()
    np.testing.assert_array_equal(np.array(layer.forward(x, "mc")), y_inf)
    np.testing.assert_array_equal(layer.moving_mean.value, before)


def test_frozen_batchnorm_in_fit_keeps_every_weight():
    fastnn.set_seed(0)
    rng = np.random.default_rng(1)
    bn = layers.BatchNormalization()
    model = fastnn.Sequential([layers.Input(shape=(6,)), layers.Dense(8), bn, layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((64, 6)), rng.standard_normal(64)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    bn.trainable = False
    frozen = bn.get_weights()
    dense_before = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(frozen, bn.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(dense_before, model.layers[0].kernel.value)  # backprop went through


def test_batchnorm_predict_is_deterministic_and_batch_size_independent():
    fastnn.set_seed(2)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1000, 12)).astype(np.float32)
    # BatchNormalization around elementwise layers: no BLAS product, so bit-identical
    plain = fastnn.Sequential([layers.Input(shape=(12,)), layers.BatchNormalization(),
                               layers.PReLU(), layers.BatchNormalization()])
    plain.compile(optimizer="sgd", loss="mse")
    plain.fit(x, rng.standard_normal((1000, 12)), epochs=1, batch_size=50, verbose=0)
    a = plain.predict(x, batch_size=1000)
    np.testing.assert_array_equal(a, plain.predict(x, batch_size=1000))
    np.testing.assert_array_equal(a, plain.predict(x, batch_size=1))
    np.testing.assert_array_equal(a, plain.predict(x, batch_size=37))
    # an MLP with batch norm: repeated calls identical; batch 1 vs 1000 differ at most by
    # the BLAS product's last bits (gemv vs gemm), not by the normalization
    mlp = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(32, activation="relu"),
                             layers.BatchNormalization(), layers.Dropout(0.3), layers.Dense(3)])
    mlp.compile(optimizer="adam", loss="mse")
    mlp.fit(x, rng.standard_normal((1000, 3)), epochs=1, batch_size=64, verbose=0)
    p = mlp.predict(x, batch_size=1000)
    np.testing.assert_array_equal(p, mlp.predict(x, batch_size=1000))
    np.testing.assert_allclose(p, mlp.predict(x, batch_size=1), rtol=1e-5, atol=1e-5)
    bn = mlp.layers[1]
    h = np.array(mlp.layers[0](x))
    one = np.concatenate([np.array(bn(h[i:i + 1])) for i in range(0, 1000, 97)])
    np.testing.assert_array_equal(one, np.array(bn(h))[::97])


def test_layernorm_matches_formula_on_trailing_axes():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 5)).astype(np.float64)
    ln = layers.LayerNormalization(axis=[-2, -1], epsilon=1e-5, dtype="float64")
    y = np.array(ln(x))
    assert ln.gamma.shape == (3, 5)
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mu) / np.sqrt(var + 1e-5), rtol=1e-12, atol=1e-12)
    assert [v.name for v in ln.variables] == ["gamma", "beta"]


def test_normalization_adapt_standardizes_per_feature_and_inverts():
    rng = np.random.default_rng(6)
    data = rng.standard_normal((200, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 0.0]
    norm = layers.Normalization()
    norm.adapt(data)
    np.testing.assert_allclose(norm.adapt_mean.value, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.adapt_variance.value, data.var(0), rtol=1e-5)
    out = np.array(norm(data))
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, rtol=1e-4)
    assert [v.name for v in norm.variables] == ["mean", "variance", "count"]
    assert not any(v.trainable for v in norm.variables)
    # batches combine exactly like the whole array
    norm2 = layers.Normalization()
    norm2.adapt([data[:70], data[70:150], data[150:]])
    np.testing.assert_allclose(norm2.adapt_variance.value, norm.adapt_variance.value, rtol=1e-5)
    inv = layers.Normalization(invert=True)
    inv.adapt(data)
    np.testing.assert_allclose(np.array(inv(out)), data, rtol=1e-4, atol=1e-4)
    # Keras' doc example: axis=None, one scalar
    scalar = layers.Normalization(axis=None)
    scalar.adapt(np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(np.array(scalar(np.array([[1.0], [2.0], [3.0]])))[:, 0],
                               [-1.2247449, 0.0, 1.2247449], rtol=1e-5)


def test_normalization_per_channel_on_rank3_inputs_inside_a_model():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 4, 3)) * [1.0, 2.0, 3.0] + [1.0, 2.0, 3.0]
    norm = layers.Normalization(axis=-1)
    norm.adapt(x)
    assert norm.adapt_mean.shape == (3,)
    model = fastnn.Sequential([layers.Input(shape=(4, 3)), norm, layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, rng.standard_normal(40), epochs=1, verbose=0)
    z = np.array(norm(x)).reshape(-1, 3)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(NotImplementedError, match="last axis"):
        layers.BatchNormalization(axis=1)._maybe_build((None, 3, 4))
    with pytest.raises(ValueError, match="batch axis"):
        layers.BatchNormalization(axis=0)._maybe_build((None, 4))
    with pytest.raises(ValueError, match="momentum"):
        layers.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="synchronized"):
        layers.BatchNormalization(synchronized=True)
    with pytest.raises(NotImplementedError, match="trailing"):
        layers.LayerNormalization(axis=1)._maybe_build((None, 3, 4))
    with pytest.raises(ValueError, match="both mean and variance"):
        layers.Normalization(mean=1.0)
    fixed = layers.Normalization(mean=0.0, variance=1.0)
    with pytest.raises(ValueError, match="adapt"):
        fixed.adapt(np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        layers.Normalization().adapt(np.array([[1.0], [np.nan]]))


def test_config_round_trip_and_save_load(tmp_path):
    fastnn.set_seed(9)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(x)
    model = fastnn.Sequential([layers.Input(shape=(5,)), norm, layers.Dense(8),
                               layers.BatchNormalization(momentum=0.8, epsilon=1e-4),
                               layers.LayerNormalization(), layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, rng.standard_normal((64, 2)), epochs=2, verbose=0)
    for layer in model.layers:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    path = tmp_path / "bn_model.keras"
    model.save(path)
    loaded = fastnn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_normalization_adapt_keras_arguments_and_nested_lists():
    x = np.random.default_rng(0).normal(size=(30, 4)).astype("float32")
    ref = layers.Normalization()
    ref.adapt(x)
    for data, kw in ((x, {"batch_size": 8}), (x, {"batch_size": 8, "steps": None}),
                     (x.tolist(), {})):
        n = layers.Normalization()
        n.adapt(data, **kw)  # Keras 3: adapt(data, batch_size=None, steps=None)
        for a, b in zip(n.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    # steps limits an iterable of batches, as Keras
    n = layers.Normalization()
    n.adapt([x[:10], x[10:20], x[20:]], steps=1)
    first = layers.Normalization()
    first.adapt(x[:10])
    np.testing.assert_allclose(n.get_weights()[0], first.get_weights()[0], rtol=1e-6)


def test_normalization_given_non_finite_statistics_and_reshape_of_an_int():
    for mean, var in (([np.nan, 0.0], [1.0, 1.0]), ([0.0, 0.0], [np.inf, 1.0])):
        with pytest.raises(ValueError, match="Normalization: mean and variance must be finite"):
            layers.Normalization(mean=mean, variance=var)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Reshape(4)])
    assert m.output_shape == (None, 4)
