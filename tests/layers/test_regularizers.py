"""Regularizers and constraints: C kernels against the reference, penalty gradients by finite
differences, Keras' loss accounting (weights and activity), max-norm bounds, L2 shrinkage."""
import numpy as np
import pytest

import fastnn
from fastnn import constraints, layers, regularizers

from conftest import C, numeric_grad, requires_c

DTYPES = [np.float32, np.float64]
BACKENDS = ["numpy"] + (["c"] if C is not None else [])


@pytest.fixture
def restore_backend():
    yield
    fastnn.set_backend("c" if C is not None else "numpy")


# ---- kernels (their parity with the reference: tests/kernels/test_kernel_parity.py) -----------
@requires_c
def test_l1_l2_penalty_same_bits_for_1_and_2_threads():
    w = np.random.default_rng(0).standard_normal(1_000_003).astype(np.float32)
    g1, g2 = np.zeros_like(w), np.zeros_like(w)
    p1 = C.l1_l2_penalty(w, 0.1, 0.2, 1.0, g1, n_threads=1)
    p2 = C.l1_l2_penalty(w, 0.1, 0.2, 1.0, g2, n_threads=2)
    assert p1 == p2
    np.testing.assert_array_equal(g1, g2)


@requires_c
def test_norm_constraint_same_bits_for_1_and_2_threads():
    w = np.random.default_rng(1).standard_normal((400, 600)).astype(np.float32)
    a, b = w.copy(), w.copy()
    C.norm_constraint(a, 0.0, 1.0, 1.0, False, 0, n_threads=1)
    C.norm_constraint(b, 0.0, 1.0, 1.0, False, 0, n_threads=2)
    np.testing.assert_array_equal(a, b)


# ---- regularizer objects ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("reg", [regularizers.l1(0.03), regularizers.l2(0.02),
                                 regularizers.l1_l2(l1=0.01, l2=0.04)], ids=["l1", "l2", "l1_l2"])
def test_penalty_gradient_by_finite_differences(restore_backend, name, reg):
    fastnn.set_backend(name)
    w = np.random.default_rng(3).standard_normal((4, 5))
    w[np.abs(w) < 1e-3] = 0.5  # away from the kink of |w|
    g = np.zeros_like(w)
    p = reg.penalty_and_gradient(w, g, scale=0.5)
    assert p == pytest.approx(0.5 * (reg.l1 * np.abs(w).sum() + reg.l2 * (w ** 2).sum()), rel=1e-12)
    np.testing.assert_allclose(g, numeric_grad(lambda: 0.5 * reg(w), w), rtol=1e-7, atol=1e-9)
    assert reg(w) == pytest.approx(p / 0.5, rel=1e-12)


def test_regularizer_names_configs_and_errors():
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert regularizers.get("l2").l2 == 0.01 and regularizers.get("l1").l1 == 0.01
    r = regularizers.get(regularizers.serialize(regularizers.L1L2(l1=0.1, l2=0.2)))
    assert (r.l1, r.l2) == (0.1, 0.2)
    with pytest.raises(ValueError, match="l2"):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError, match="Unknown regularizer"):
        regularizers.get("l3")


def test_reported_loss_includes_the_weight_penalty(float64_model):
    """train_on_batch's loss = data loss + l2 * sum(w^2) on the weights before the step."""
    model = fastnn.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(2, kernel_regularizer=regularizers.l2(0.1),
                                            bias_regularizer=regularizers.l1(0.2),
                                            bias_initializer="ones")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="mse")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    k = model.layers[0].kernel.numpy()
    data = np.mean((x @ k + 1 - y) ** 2)
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(data + 0.1 * (k ** 2).sum() + 0.2 * 2, rel=1e-12)
    assert model.evaluate(x, y, verbose=0) == pytest.approx(loss, rel=1e-12)


def test_l2_regularized_weights_are_smaller_after_identical_training():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((256, 10)).astype(np.float32)
    y = (x @ rng.standard_normal((10, 1)) * 3 + rng.standard_normal((256, 1))).astype(np.float32)

    def train(reg):
        fastnn.set_seed(21)
        model = fastnn.Sequential([layers.Input(shape=(10,)),
                                   layers.Dense(32, activation="tanh", kernel_regularizer=reg),
                                   layers.Dense(1, kernel_regularizer=reg)])
        model.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="mse")
        model.fit(x, y, epochs=10, batch_size=32, verbose=0)
        return [layer.kernel.numpy() for layer in model.layers]

    plain, l2 = train(None), train(regularizers.l2(0.02))
    for a, b in zip(plain, l2):
        assert np.linalg.norm(b) < np.linalg.norm(a)


# ---- activity regularizer (Keras 3: penalty(output) / batch size) ------------------------------------
@pytest.mark.parametrize("name", BACKENDS)
@pytest.mark.parametrize("act,loss", [("tanh", "mse"), ("softmax", "categorical_crossentropy")])
def test_activity_regularizer_loss_and_gradient(float64_model, restore_backend, name, act, loss):
    fastnn.set_backend(name)
    rng = np.random.default_rng(5)
    reg = regularizers.l1_l2(l1=0.05, l2=0.1)
    model = fastnn.Sequential([layers.Input(shape=(4,)),
                               layers.Dense(5, activation="elu", activity_regularizer=reg),
                               layers.Dense(3, activation=act, activity_regularizer=regularizers.l2(0.3))])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss=loss)
    x = rng.standard_normal((7, 4))
    y = rng.random((7, 3))
    y /= y.sum(1, keepdims=True)
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)

    def total():
        h = np.array(model.layers[0].forward(x, False))
        out = np.array(model.layers[1].forward(h, False))
        return (model.loss.compute(out, t) / 7 + reg(h) / 7
                + regularizers.l2(0.3)(out) / 7)

    expected = total()
    model._prepare_training()
    loss_value, _ = model._train_step(x, t)
    assert loss_value == pytest.approx(expected, rel=1e-12)
    assert model.evaluate(x, y, verbose=0, batch_size=7) == pytest.approx(expected, rel=1e-12)
    for v in model.trainable_weights:
        np.testing.assert_allclose(v.grad, numeric_grad(total, v.value), rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


# ---- constraints ----------------------------------------------------------------------------------------
def test_max_norm_keeps_every_column_norm_below_max_value_in_training():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((128, 20)).astype(np.float32) * 5
    y = rng.standard_normal((128, 8)).astype(np.float32) * 10
    fastnn.set_seed(1)
    dense = layers.Dense(8, kernel_constraint=constraints.max_norm(0.5),
                         kernel_initializer=fastnn.initializers.RandomNormal(stddev=3.0))
    model = fastnn.Sequential([layers.Input(shape=(20,)), dense])
    model.compile(optimizer=fastnn.optimizers.SGD(0.5), loss="mse")
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    norms = np.sqrt((dense.kernel.value.astype(np.float64) ** 2).sum(axis=0))
    eps32 = np.finfo(np.float32).eps
    assert np.all(norms <= 0.5 * (1 + 4 * eps32))  # the float32 rounding of the rescale
    assert norms.max() > 0.49                      # the constraint was active


@pytest.mark.parametrize("name", BACKENDS)
def test_constraint_formulas(restore_backend, name):
    fastnn.set_backend(name)
    w = np.random.default_rng(7).standard_normal((6, 4)) * [0.1, 1.0, 3.0, 10.0]
    norms = np.sqrt((w ** 2).sum(axis=0))
    np.testing.assert_allclose(constraints.max_norm(2.0)(w),
                               w * np.clip(norms, 0, 2.0) / (1e-7 + norms), rtol=1e-12)
    np.testing.assert_allclose(constraints.unit_norm()(w), w / (1e-7 + norms), rtol=1e-12)
    mm = constraints.min_max_norm(min_value=0.5, max_value=2.0, rate=0.5)
    desired = 0.5 * np.clip(norms, 0.5, 2.0) + 0.5 * norms
    np.testing.assert_allclose(mm(w), w * desired / (1e-7 + norms), rtol=1e-12)
    np.testing.assert_array_equal(constraints.non_neg()(w), np.maximum(w, 0))
    rows = np.sqrt((w ** 2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(constraints.max_norm(1.0, axis=1)(w),
                               w * np.clip(rows, 0, 1.0) / (1e-7 + rows), rtol=1e-12)


def test_constraint_names_configs_and_errors():
    c = constraints.get(constraints.serialize(constraints.MinMaxNorm(0.1, 2.0, 0.5, axis=1)))
    assert (c.min_value, c.max_value, c.rate, c.axis) == (0.1, 2.0, 0.5, 1)
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    with pytest.raises(ValueError, match="Unknown constraint"):
        constraints.get("positive")
    with pytest.raises(ValueError, match="min_value"):
        constraints.MinMaxNorm(2.0, 1.0)
    with pytest.raises(ValueError, match="out of range"):
        constraints.max_norm(axis=2)(np.ones((3, 3)))


def test_user_regularizer_with_keras_style_methods(float64_model):
    """A user Regularizer subclass implementing __call__ and add_gradient(w, grad) only."""

    class Quartic(regularizers.Regularizer):
        def __call__(self, w):
            return 0.1 * float(np.sum(np.asarray(w) ** 4))

        def add_gradient(self, w, grad):
            grad += 0.4 * w ** 3

    rng = np.random.default_rng(9)
    model = fastnn.Sequential([layers.Input(shape=(3,)),
                               layers.Dense(4, kernel_regularizer=Quartic(),
                                            activity_regularizer=Quartic())])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="mse")
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 4))
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)
    layer = model.layers[0]

    def total():
        out = np.array(layer.forward(x, False))
        return model.loss.compute(out, t) / 5 + Quartic()(layer.kernel.value) + Quartic()(out) / 5

    expected = total()
    model._prepare_training()
    assert model._train_step(x, t)[0] == pytest.approx(expected, rel=1e-12)
    for v in model.trainable_weights:
        np.testing.assert_allclose(v.grad, numeric_grad(total, v.value), rtol=1e-6, atol=1e-8)
