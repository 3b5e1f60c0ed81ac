"""Every activation, loss and core layer gradient against central finite differences, in
float64, on both backends; plus a whole MLP and one golden step worked by hand."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, losses
from fastnn.reference.activations import ACTIVATION_CODES, NEEDS_PREACTIVATION

from conftest import C, REF, numeric_grad

BACKENDS = [pytest.param(REF, id="numpy")] + ([pytest.param(C, id="c")] if C is not None else [])


@pytest.mark.parametrize("ops", BACKENDS)
@pytest.mark.parametrize("name", sorted(ACTIVATION_CODES))
def test_activation_gradient(ops, name):
    code = ACTIVATION_CODES[name]
    alpha = {"leaky_relu": 0.2, "elu": 1.3}.get(name, 0.0)
    rng = np.random.default_rng(code)
    z = rng.standard_normal((4, 5)) * 2
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kinks of relu-like functions
    w = rng.standard_normal((4, 5))  # random projection makes the loss a scalar

    def loss():
        return float((ops.bias_act_forward(z.copy(), None, code, alpha) * w).sum())

    y = ops.bias_act_forward(z.copy(), None, code, alpha)
    analytic = ops.act_backward(w, z if code in NEEDS_PREACTIVATION else None, y, code, alpha)
    np.testing.assert_allclose(analytic, numeric_grad(loss, z), rtol=1e-6, atol=1e-8)


def test_gelu_approximate_gradient():
    z = np.linspace(-3, 3, 12).reshape(3, 4)
    w = np.arange(12.0).reshape(3, 4) / 10
    code = ACTIVATION_CODES["gelu"]
    for ops in (REF, C):
        if ops is None:
            continue
        f = lambda: float((ops.bias_act_forward(z.copy(), None, code, 1.0) * w).sum())
        y = ops.bias_act_forward(z.copy(), None, code, 1.0)
        np.testing.assert_allclose(ops.act_backward(w, z, y, code, 1.0), numeric_grad(f, z),
                                   rtol=1e-6, atol=1e-8)


LOSS_CASES = [
    ("mse", losses.MeanSquaredError()), ("mae", losses.MeanAbsoluteError()),
    ("huber", losses.Huber(delta=0.5)), ("bce", losses.BinaryCrossentropy()),
    ("bce_logits", losses.BinaryCrossentropy(from_logits=True)),
    ("cce", losses.CategoricalCrossentropy()),
    ("cce_logits", losses.CategoricalCrossentropy(from_logits=True)),
    ("scce_logits", losses.SparseCategoricalCrossentropy(from_logits=True)),
    ("kld", losses.KLDivergence()), ("hinge", losses.Hinge()),
]


@pytest.mark.parametrize("backend_name", ["numpy"] + (["c"] if C is not None else []))
@pytest.mark.parametrize("name,loss", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradient(backend_name, name, loss):
    fastnn.set_backend(backend_name)
    try:
        rng = np.random.default_rng(3)
        n, m = 5, 4
        if name in ("bce", "kld", "cce"):
            p = rng.uniform(0.05, 0.95, (n, m))
        else:
            p = rng.standard_normal((n, m)) * 1.5
            p[np.abs(p) < 0.05] = 0.3
        if name == "scce_logits":
            y = rng.integers(0, m, n)
        elif name == "hinge":
            y = rng.choice([0.0, 1.0], (n, m))
        else:
            y = rng.uniform(0, 1, (n, m))
        t = loss.prepare_targets(y, (None, m), np.float64)
        if name == "huber":
            p = t + rng.choice([-1, 1], (n, m)) * rng.uniform(0.1, 2, (n, m))
        if name == "hinge":
            p = rng.standard_normal((n, m))
            p[np.abs(1 - t * p) < 0.05] += 0.2
        g = np.empty_like(p)
        value = loss.compute(p, t, g) / n
        assert value == pytest.approx(loss(y, p), rel=1e-12)
        np.testing.assert_allclose(g, numeric_grad(lambda: loss.compute(p, t) / n, p), rtol=1e-5, atol=1e-8)
    finally:
        fastnn.set_backend("c" if C is not None else "numpy")


def test_fused_softmax_cross_entropy_gradient_is_p_minus_t():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 4))
    labels = rng.integers(0, 4, 6)
    probs = REF.bias_act_forward(logits.copy(), None, ACTIVATION_CODES["softmax"])
    loss = losses.SparseCategoricalCrossentropy()
    t = loss.prepare_targets(labels, (None, 4), np.float64)
    g = np.empty_like(probs)
    loss.compute(probs, t, g, fused=True)
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(g, (probs - onehot) / 6, rtol=1e-12)
    # and that is the true gradient of the mean loss w.r.t. the logits
    f = lambda: loss.compute(REF.bias_act_forward(logits.copy(), None, ACTIVATION_CODES["softmax"]), t) / 6
    np.testing.assert_allclose(g, numeric_grad(f, logits), rtol=1e-6, atol=1e-9)


def _layer_grad_check(layer, x, rng):
    """Check dL/dx and every weight gradient of a layer for L = sum(forward(x) * w)."""
    y = layer.forward(x, True)
    w = rng.standard_normal(y.shape)
    layer.forward(x, True)
    dx = np.array(layer.backward(w.copy(), True))
    grads = [v.grad.copy() for v in layer.trainable_weights]
    f = lambda: float((np.array(layer.forward(x, True)) * w).sum())
    np.testing.assert_allclose(dx, numeric_grad(f, x), rtol=1e-6, atol=1e-8)
    for v, g in zip(layer.trainable_weights, grads):
        np.testing.assert_allclose(g, numeric_grad(f, v.value), rtol=1e-6, atol=1e-8, err_msg=v.name)


@pytest.mark.parametrize("backend_name", ["numpy"] + (["c"] if C is not None else []))
@pytest.mark.parametrize("make", [
    lambda: layers.Dense(3, activation="tanh"),
    lambda: layers.Dense(3, activation="gelu"),
    lambda: layers.Dense(3, activation="softmax"),
    lambda: layers.Dense(3, use_bias=False),
    lambda: layers.PReLU(alpha_initializer=fastnn.initializers.Constant(0.25)),
    lambda: layers.Maxout(3, pieces=3),
    lambda: layers.LeakyReLU(),
    lambda: layers.ELU(),
    lambda: layers.Activation("swish"),
    lambda: layers.Softmax(),
    lambda: layers.ReLU(),
    lambda: layers.Reshape((5, 1)),
    lambda: layers.Flatten(),
    lambda: layers.Dense(2, activation="mish"),
], ids=["dense_tanh", "dense_gelu", "dense_softmax", "dense_nobias", "prelu", "maxout",
        "leaky_relu", "elu", "swish", "softmax", "relu", "reshape", "flatten", "dense_mish"])
def test_layer_gradients(float64_model, backend_name, make):
    fastnn.set_backend(backend_name)
    try:
        rng = np.random.default_rng(5)
        layer = make()
        x = rng.standard_normal((4, 5))
        x[np.abs(x) < 1e-2] = 0.3
        layer._maybe_build((None, 5))
        _layer_grad_check(layer, x, rng)
    finally:
        fastnn.set_backend("c" if C is not None else "numpy")


def test_whole_mlp_gradient(float64_model):
    """Gradient of the model's training loss with respect to every weight of a 3-layer MLP."""
    rng = np.random.default_rng(11)
    model = fastnn.Sequential([
        layers.Input(shape=(6,)),
        layers.Dense(8, activation="elu"),
        layers.PReLU(alpha_initializer=fastnn.initializers.Constant(0.1)),
        layers.Dense(7, activation="tanh"),
        layers.Dense(4, activation="softmax"),
    ])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x = rng.standard_normal((9, 6))
    y = rng.integers(0, 4, 9)
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)
    model._prepare_training()
    model._train_step(x, t)  # lr 0: computes gradients, leaves weights
    for v in model.trainable_weights:
        f = lambda: model.loss.compute(np.array(model._forward(x, False)), t) / len(x)
        np.testing.assert_allclose(v.grad, numeric_grad(f, v.value), rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


def test_golden_sgd_step_by_hand(float64_model):
    """One SGD step of a 1-unit linear model with MSE, worked by hand."""
    model = fastnn.Sequential([layers.Input(shape=(2,)), layers.Dense(1, kernel_initializer="ones")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.1), loss="mse")
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([1.0, 0.0])
    # predictions: 3 and 2; errors: 2 and 2; loss mean((e)^2) = 4
    # dL/dpred = 2 * e / n = [2, 2]; dW = x.T @ [2, 2] = [8, 2]; db = 4
    loss = model.train_on_batch(x, y)
    assert loss == pytest.approx(4.0)
    np.testing.assert_allclose(model.layers[0].kernel.value, [[1 - 0.8], [1 - 0.2]])
    np.testing.assert_allclose(model.layers[0].bias.value, [-0.4])
