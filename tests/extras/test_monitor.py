"""callbacks.TrainingMonitor: per-layer numbers equal a NumPy computation on the same batch,
land in history.history, and unhealthy layers get plain-language warnings."""
import math
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers


def three_layer_model(lr=0.1):
    fastnn.set_seed(3)
    model = fastnn.Sequential([
        fastnn.Input(shape=(5,)),
        layers.Dense(12, activation="relu", bias_initializer=fastnn.initializers.Constant(-0.2)),
        layers.Dense(7, activation="tanh", kernel_initializer=fastnn.initializers.RandomNormal(0, 1.5)),
        layers.Dense(3, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return model


def numpy_step(weights, x, y):
    """Forward and backward of the three-layer model in NumPy (float64): the outputs of each
    layer and the gradients of each (kernel, bias)."""
    (w1, b1), (w2, b2), (w3, b3) = weights
    h1 = np.maximum(x @ w1 + b1, 0)
    h2 = np.tanh(h1 @ w2 + b2)
    z3 = h2 @ w3 + b3
    p = np.exp(z3 - z3.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz3 = p.copy()
    dz3[np.arange(len(y)), y] -= 1
    dz3 /= len(y)
    dz2 = (dz3 @ w3.T) * (1 - h2 ** 2)
    dz1 = (dz2 @ w2.T) * (h1 > 0)
    grads = [(x.T @ dz1, dz1.sum(0)), (h1.T @ dz2, dz2.sum(0)), (h2.T @ dz3, dz3.sum(0))]
    return [h1, h2, p], grads


def pairs(model):
    return [(l.kernel.numpy().astype(np.float64), l.bias.numpy().astype(np.float64))
            for l in model.layers]


def norm(arrays):
    return math.sqrt(sum(float(np.sum(np.square(a))) for a in arrays))


def test_numbers_equal_numpy_on_the_sampled_batch(float64_model):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    y = rng.integers(0, 3, 40)
    model = three_layer_model()
    before = {}
    grab = callbacks.LambdaCallback(  # the weights the last step starts from
        on_train_batch_begin=lambda b, logs: before.__setitem__(b, pairs(model)))
    monitor = callbacks.TrainingMonitor(batches=1, warn=False)
    history = model.fit(x, y, batch_size=10, epochs=1, shuffle=False, verbose=0,
                        callbacks=[grab, monitor])
    w0 = before[3]  # 4 batches: one sampled batch is the last
    xb, yb = x[30:], y[30:]
    outs, grads = numpy_step(w0, xb, yb)
    after = pairs(model)
    h = history.history
    for layer, out, g, wb, wa in zip(model.layers, outs, grads, w0, after):
        n = layer.name
        assert h[f"{n}/activation_mean"] == [pytest.approx(out.mean(), rel=1e-9, abs=1e-12)]
        assert h[f"{n}/activation_std"] == [pytest.approx(out.std(), rel=1e-9)]
        assert h[f"{n}/grad_norm"] == [pytest.approx(norm(g), rel=1e-9)]
        ratio = norm([a - b for a, b in zip(wa, wb)]) / norm(wb)
        assert h[f"{n}/update_ratio"] == [pytest.approx(ratio, rel=1e-9)]
        # plain SGD: the update is lr * gradient
        assert ratio == pytest.approx(0.1 * norm(g) / norm(wb), rel=1e-9)
    relu, tanh, soft = model.layers
    assert h[f"{relu.name}/dead_fraction"] == [pytest.approx(np.mean(np.all(outs[0] == 0, axis=0)))]
    assert h[f"{tanh.name}/saturated_fraction"] == [pytest.approx(np.mean(np.abs(outs[1]) > 0.97))]
    assert f"{soft.name}/dead_fraction" not in h and f"{soft.name}/saturated_fraction" not in h
    assert f"{relu.name}/saturated_fraction" not in h
    assert monitor.history == {k: v for k, v in h.items() if "/" in k}


def test_several_sampled_batches_are_averaged_per_epoch(float64_model):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 5))
    y = rng.integers(0, 3, 60)
    model = three_layer_model()
    before = {}
    grab = callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: before.__setitem__(b, pairs(model)))
    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0,
                        callbacks=[grab, callbacks.TrainingMonitor(batches=2, warn=False)])
    # 6 batches, 2 sampled: batches 2 and 5 of the last epoch
    stds = [numpy_step(before[b], x[10 * b:10 * b + 10], y[10 * b:10 * b + 10])[0][1].std()
            for b in (2, 5)]
    key = f"{model.layers[1].name}/activation_std"
    assert len(history.history[key]) == 2
    assert history.history[key][1] == pytest.approx(np.mean(stds), rel=1e-9)


def test_dead_relu_layer_gets_a_plain_language_warning():
    fastnn.set_seed(0)
    model = fastnn.Sequential([
        fastnn.Input(shape=(4,)),
        layers.Dense(16, activation="relu", bias_initializer=fastnn.initializers.Constant(-50.0)),
        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    monitor = callbacks.TrainingMonitor()
    with pytest.warns(callbacks.TrainingMonitorWarning) as caught:
        history = model.fit(x, np.zeros(64, int), epochs=2, verbose=0, callbacks=[monitor])
    messages = [str(w.message) for w in caught]
    assert any("dying: 100% of its ReLU units output 0" in m for m in messages)
    assert any("vanishing gradients: the first layer's gradient" in m and "is zero" in m
               for m in messages)
    assert history.history[f"{model.layers[0].name}/dead_fraction"] == [1.0, 1.0]
    # once per layer and problem, not every epoch
    assert sorted(monitor.problems) == sorted(messages) and len(messages) == 2


def test_saturated_tanh_layer_gets_a_warning():
    fastnn.set_seed(0)
    model = fastnn.Sequential([
        fastnn.Input(shape=(20,)),
        layers.Dense(16, activation="tanh", kernel_initializer=fastnn.initializers.RandomNormal(0, 5.0)),
        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(64, 20)).astype("float32")
    with pytest.warns(callbacks.TrainingMonitorWarning, match="saturated"):
        model.fit(x, np.zeros(64, int), epochs=1, verbose=0, callbacks=[callbacks.TrainingMonitor()])


def test_deep_sigmoid_net_gets_a_vanishing_gradient_warning():
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(shape=(64,))]
                              + [layers.Dense(32, activation="sigmoid") for _ in range(10)]
                              + [layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    (x, y), _ = fastnn.datasets.load_digits()
    monitor = callbacks.TrainingMonitor()
    with pytest.warns(callbacks.TrainingMonitorWarning, match="vanishing gradients"):
        model.fit(x[:256], y[:256], epochs=1, verbose=0, callbacks=[monitor])


def test_a_healthy_model_gets_no_warning_and_is_left_unwrapped():
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)),
                               layers.Dense(32, activation="relu", kernel_initializer="he_normal"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    (x, y), _ = fastnn.datasets.load_digits()
    with warnings.catch_warnings():
        warnings.simplefilter("error", callbacks.TrainingMonitorWarning)
        model.fit(x[:512], y[:512], epochs=2, verbose=0, callbacks=[callbacks.TrainingMonitor()])
    assert all("forward" not in vars(layer) for layer in model.layers)


def test_in_logs_puts_the_numbers_in_the_epoch_logs(tmp_path):
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)), layers.Dense(8, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    (x, y), _ = fastnn.datasets.load_digits()
    seen = []
    history = model.fit(x[:128], y[:128], epochs=2, verbose=0, callbacks=[
        callbacks.TrainingMonitor(in_logs=True, warn=False),
        callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))])
    key = f"{model.layers[0].name}/grad_norm"
    assert [logs[key] for logs in seen] == history.history[key]
    assert len(history.history[key]) == 2


@pytest.mark.parametrize("kwargs", [{"batches": 0}, {"batches": 1.5}, {"saturation": 1.0},
                                    {"dead_threshold": 0}, {"vanishing_ratio": 2.0}])
def test_bad_arguments_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="TrainingMonitor"):
        callbacks.TrainingMonitor(**kwargs)
