"""Keras 3 user code, written the way a Keras user writes it (HOML chapters 10-11 and the
keras.io guides), run with ``import fastnn as keras``. Every snippet checks a result: shapes,
a loss that goes down, or a value computed by hand. Out-of-scope Keras features (functional
API, model subclassing, tf.data, custom loss functions) must fail with a clear message."""
import functools
import math
import os

import numpy as np
import pytest

import fastnn as keras


# ---- data ----------------------------------------------------------------------------------
def regression_data(n=240, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(2.0, 3.0, size=(n, d)).astype(np.float32)   # not standardized: Normalization's job
    w = rng.normal(size=d) / 3.0
    y = (X - 2.0) / 3.0 @ w + 0.5 + 0.05 * rng.normal(size=n)
    return X[:160], y[:160], X[160:200], y[160:200], X[200:], y[200:]


@pytest.fixture
def digits():
    (X_train, y_train), (X_test, y_test) = keras.datasets.load_digits()
    return X_train[:600], y_train[:600], X_test[:200], y_test[:200]


@pytest.fixture(autouse=True)
def _fresh_session():
    keras.backend.clear_session()
    keras.utils.set_random_seed(42)
    yield


# ---- HOML ch. 10: regression MLP ------------------------------------------------------------
def test_regression_mlp_with_normalization_and_rmse_metric():
    X_train, y_train, X_valid, y_valid, X_test, y_test = regression_data()
    norm_layer = keras.layers.Normalization(input_shape=X_train.shape[1:])
    model = keras.Sequential([
        norm_layer,
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dense(1),
    ])
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss="mse", optimizer=optimizer, metrics=["RootMeanSquaredError"])
    norm_layer.adapt(X_train)
    np.testing.assert_allclose(norm_layer(X_train).mean(axis=0), 0, atol=1e-4)
    history = model.fit(X_train, y_train, epochs=8, validation_data=(X_valid, y_valid), verbose=0)
    assert {"loss", "RootMeanSquaredError", "val_loss", "val_RootMeanSquaredError"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0] / 2
    mse_test, rmse_test = model.evaluate(X_test, y_test, verbose=0)
    assert rmse_test == pytest.approx(math.sqrt(mse_test), rel=1e-6)
    X_new = X_test[:3]
    y_pred = model.predict(X_new, verbose=0).round(2)
    assert y_pred.shape == (3, 1)
    hand = np.mean((model.predict(X_test, verbose=0)[:, 0] - y_test) ** 2)
    assert mse_test == pytest.approx(hand, rel=1e-4)


def test_rmse_metric_is_the_root_of_the_running_mean():
    m = keras.metrics.RootMeanSquaredError()
    assert m.name == "root_mean_squared_error"
    m.update_state(np.array([[1.0], [2.0]]), np.array([[1.0], [4.0]]))
    m.update_state(np.array([[0.0]]), np.array([[3.0]]))
    assert m.result() == pytest.approx(math.sqrt((0 + 4 + 9) / 3))  # not the mean of batch roots
    m.reset_state()
    assert m.result() == 0.0
    # a Metric object's __call__ updates its state and returns the result so far (Keras)
    m2 = keras.metrics.RootMeanSquaredError()
    assert m2(np.array([[1.0], [2.0]]), np.array([[2.0], [4.0]])) == pytest.approx(math.sqrt(2.5))
    assert m2([[0.0]], [[4.0]]) == pytest.approx(math.sqrt((1 + 4 + 16) / 3))
    for name in ("RootMeanSquaredError", "root_mean_squared_error", "MeanSquaredError", "MAE"):
        assert keras.metrics.get(name).name == name  # Keras 3: the log key is the string given
    # Over an epoch the RMSE is exactly the root of the epoch's MSE (both running means).
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mae", optimizer="sgd", metrics=["mse", keras.metrics.RootMeanSquaredError()])
    h = model.fit(X_train, y_train, epochs=2, verbose=0)
    np.testing.assert_allclose(h.history["root_mean_squared_error"], np.sqrt(h.history["mse"]), rtol=1e-6)


# ---- HOML ch. 10: classification MLP ------------------------------------------------------------
def test_classification_mlp_flatten_input_shape(digits, capsys):
    X_train, y_train, X_valid, y_valid = digits
    X_train, X_valid = X_train.reshape(-1, 8, 8), X_valid.reshape(-1, 8, 8)
    model = keras.Sequential([
        keras.layers.Flatten(input_shape=[8, 8]),
        keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    history = model.fit(X_train, y_train, epochs=10, validation_data=(X_valid, y_valid), verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/10" in out and "Epoch 10/10" in out
    assert model.optimizer.iterations == 10 * math.ceil(len(X_train) / 32)  # batch_size omitted: 32
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.epoch == list(range(10)) and history.params["epochs"] == 10
    loss, acc = model.evaluate(X_valid, y_valid, verbose=0)
    y_proba = model.predict(X_valid, verbose=0)
    np.testing.assert_allclose(y_proba.sum(axis=1), 1, rtol=1e-5)
    assert y_proba[:3].round(2).shape == (3, 10)
    y_pred = np.argmax(y_proba, axis=-1)
    assert acc == pytest.approx(np.mean(y_pred == y_valid))
    assert acc > 0.5
    assert history.history["val_accuracy"][-1] == pytest.approx(acc)


def test_input_layer_summary_layer_names_and_weights():
    model = keras.Sequential()
    model.add(keras.layers.InputLayer(shape=[8, 8]))
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(30, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    total = 64 * 30 + 30 + 30 * 10 + 10
    assert f"Total params: {total:,}" in text
    assert [layer.name for layer in model.layers] == ["flatten", "dense", "dense_1"]
    hidden1 = model.layers[1]
    assert hidden1.name == "dense"
    assert model.get_layer("dense_1") is model.layers[2]
    weights, biases = hidden1.get_weights()
    assert weights.shape == (64, 30) and biases.shape == (30,)
    assert np.all(biases == 0) and weights.std() > 0
    limit = math.sqrt(6 / (64 + 30))  # glorot_uniform, the default
    assert np.abs(weights).max() <= limit


def test_sequential_guide_deferred_build_pop_and_layer_calls():
    model = keras.Sequential([keras.layers.Dense(2, activation="relu", name="layer1"),
                              keras.layers.Dense(3, activation="relu", name="layer2"),
                              keras.layers.Dense(4, name="layer3")])
    assert len(model.weights) == 0                      # no weights before the first call
    x = np.ones((3, 3), np.float32)
    y = model(x)
    assert y.shape == (3, 4) and len(model.weights) == 6
    l1, l2, l3 = model.layers
    np.testing.assert_allclose(l3(l2(l1(x))), y, rtol=1e-6)
    model.pop()
    assert [layer.name for layer in model.layers] == ["layer1", "layer2"]
    assert model(x).shape == (3, 3)


def test_on_batch_methods_and_json_round_trip():
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dropout(0.3), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = X_train[:20] / 3, y_train[:20]
    before = model.get_weights()
    loss, mae = model.test_on_batch(x, y)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)        # evaluation only: no step taken
    assert [loss, mae] == pytest.approx(model.evaluate(x, y, verbose=0))
    p = model.predict_on_batch(x)
    assert mae == pytest.approx(np.mean(np.abs(p[:, 0] - y)), rel=1e-5)
    train_loss = model.train_on_batch(x, y)[0]
    assert train_loss > 0 and model.optimizer.iterations == 1
    json_string = model.to_json()
    clone = keras.models.model_from_json(json_string)
    assert [type(layer).__name__ for layer in clone.layers] == ["Dense", "Dropout", "Dense"]
    assert clone.layers[1].rate == 0.3 and clone.input_shape == (None, 8)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model.predict(x, verbose=0))


def test_compile_takes_keras_3_positional_order_metrics_fourth(digits):
    X_train, y_train, X_test, y_test = digits
    model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(10, activation="softmax")])
    # Keras 3: compile(optimizer, loss, loss_weights, metrics, ...)
    model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", None, ["accuracy"])
    assert model.get_compile_config()["metrics"] == ["accuracy"]
    loss, acc = model.evaluate(X_test / 16, y_test, verbose=0)
    assert 0.0 <= acc <= 1.0
    with pytest.raises(ValueError, match="loss_weights is for models with several outputs"):
        model.compile("sgd", "mse", ["accuracy"])   # Keras 2's order: a list as loss_weights


def test_clear_session_resets_automatic_names():
    keras.layers.Dense(3)
    keras.layers.Dense(3)
    keras.backend.clear_session()
    assert keras.layers.Dense(3).name == "dense"


def test_set_random_seed_makes_runs_identical(digits):
    X_train, y_train, *_ = digits
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(42)
        model = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(20, activation="relu"),
                                  keras.layers.Dropout(0.2), keras.layers.Dense(10, activation="softmax")])
        model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        h = model.fit(X_train, y_train, epochs=2, verbose=0)
        runs.append((model.get_weights(), h.history["loss"]))
    assert runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)


# ---- HOML ch. 11: initializers, activations, regularization -------------------------------------
def test_partial_dense_with_l2_regularizer_adds_penalty_to_loss():
    X_train, y_train, *_ = regression_data()
    RegularizedDense = functools.partial(keras.layers.Dense, activation="elu",
                                         kernel_initializer="he_normal",
                                         kernel_regularizer=keras.regularizers.l2(0.01))
    model = keras.Sequential([keras.Input(shape=[8]), RegularizedDense(20), RegularizedDense(20),
                              RegularizedDense(1, activation=None)])
    model.compile(loss="mse", optimizer="sgd")
    model.fit(X_train / 3, y_train, epochs=1, verbose=0)
    loss = model.evaluate(X_train / 3, y_train, verbose=0)
    data_loss = np.mean((model.predict(X_train / 3, verbose=0)[:, 0] - y_train) ** 2)
    penalty = sum(0.01 * np.sum(layer.kernel.numpy().astype(np.float64) ** 2) for layer in model.layers)
    assert loss == pytest.approx(data_loss + penalty, rel=1e-4)
    assert model.layers[0].activation.name == "elu"


def test_sgd_nesterov_momentum_matches_hand_computation():
    X = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
    y = np.array([1.0, -2.0, 0.5], np.float32)
    w0 = np.array([[0.3], [-0.2]], np.float32)
    model = keras.Sequential([keras.Input(shape=[2]), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].set_weights([w0])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True))
    w, v = w0.astype(np.float64), np.zeros((2, 1))
    for _ in range(3):
        model.train_on_batch(X, y)
        g = 2 * X.T.astype(np.float64) @ (X @ w - y[:, None]) / len(X)
        v = 0.9 * v - 0.05 * g
        w = w + 0.9 * v - 0.05 * g
    np.testing.assert_allclose(model.layers[0].get_weights()[0], w, rtol=1e-5)


def test_initializers_by_string_and_object():
    fan_in, fan_out = 400, 300
    lecun = keras.layers.Dense(fan_out, kernel_initializer="lecun_normal")
    lecun.build((None, fan_in))
    assert lecun.kernel.numpy().std() == pytest.approx(math.sqrt(1 / fan_in), rel=0.03)
    he_avg_init = keras.initializers.VarianceScaling(scale=2., mode="fan_avg", distribution="uniform")
    dense = keras.layers.Dense(fan_out, activation="sigmoid", kernel_initializer=he_avg_init)
    dense.build((None, fan_in))
    limit = math.sqrt(3 * 2.0 / ((fan_in + fan_out) / 2))
    k = dense.kernel.numpy()
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.99 * limit
    assert k.std() == pytest.approx(limit / math.sqrt(3), rel=0.03)


def test_activation_layers_and_functions_match_hand_formulas():
    x = np.array([[-2.0, -0.5, 0.0, 1.5]], np.float32)
    leaky = keras.layers.Activation("leaky_relu")             # the string means slope 0.2
    np.testing.assert_allclose(leaky(x), np.where(x > 0, x, 0.2 * x), rtol=1e-6)
    np.testing.assert_allclose(keras.layers.LeakyReLU(negative_slope=0.2)(x), np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(keras.layers.LeakyReLU()(x), np.where(x > 0, x, 0.3 * x), rtol=1e-6)
    prelu = keras.layers.PReLU()
    np.testing.assert_array_equal(prelu(x), np.maximum(x, 0))  # slopes start at zero, as Keras
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    selu = scale * np.where(x > 0, x, alpha * (np.exp(x) - 1))
    np.testing.assert_allclose(keras.activations.selu(x), selu, rtol=1e-6)
    # Activation functions keep the input's shape (1-D here), as in Keras.
    r = keras.activations.relu(np.array([-1.0, 2.0]))
    assert r.shape == (2,) and r.tolist() == [0.0, 2.0]
    assert keras.activations.sigmoid(np.float32(0.0)) == pytest.approx(0.5)
    # keras.activations.selu as Dense's activation, with lecun_normal
    d = keras.layers.Dense(4, activation=keras.activations.selu, kernel_initializer="lecun_normal")
    x2 = np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)
    out = d(x2)
    z = x2 @ d.kernel.numpy() + d.bias.numpy()
    np.testing.assert_allclose(out, scale * np.where(z > 0, z, alpha * (np.exp(z) - 1)), rtol=1e-5, atol=1e-6)


def test_leaky_relu_layer_as_dense_activation_trains_and_saves(tmp_path):
    X_train, y_train, *_ = regression_data()
    leaky_relu = keras.layers.LeakyReLU(negative_slope=0.1)
    dense = keras.layers.Dense(20, activation=leaky_relu, kernel_initializer="he_normal")
    model = keras.Sequential([keras.Input(shape=[8]), dense, keras.layers.Dense(1)])
    x = X_train[:5] / 3
    z = x @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(dense(x), np.where(z > 0, z, 0.1 * z), rtol=1e-5, atol=1e-6)
    model.compile(loss="mse", optimizer="adam")
    h = model.fit(X_train / 3, y_train, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    model.save(tmp_path / "leaky.keras")
    loaded = keras.models.load_model(tmp_path / "leaky.keras")
    assert loaded.layers[0].activation.alpha == pytest.approx(0.1)  # the slope survives saving
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layers_that_cannot_be_activations_say_so():
    with pytest.raises(TypeError, match="PReLU.*layer of its own"):
        keras.layers.Dense(10, activation=keras.layers.PReLU())
    with pytest.raises(TypeError, match="arbitrary Python function"):
        keras.layers.Dense(10, activation=lambda z: z)


def test_batch_norm_dropout_max_norm_model():
    X_train, y_train, X_valid, y_valid, *_ = regression_data()
    model = keras.Sequential([
        keras.layers.Input(shape=[8]),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(30, kernel_initializer="he_normal", use_bias=False,
                           kernel_constraint=keras.constraints.max_norm(1.)),
        keras.layers.BatchNormalization(),
        keras.layers.Activation("relu"),
        keras.layers.Dropout(rate=0.2),
        keras.layers.Dense(1),
    ])
    bn = model.layers[0]
    assert [(var.name, var.trainable) for var in bn.variables] == [
        ("gamma", True), ("beta", True), ("moving_mean", False), ("moving_variance", False)]
    model.compile(loss=keras.losses.Huber(), optimizer=keras.optimizers.Adam(beta_1=0.9, beta_2=0.999))
    h = model.fit(X_train, y_train, epochs=5, validation_data=(X_valid, y_valid), verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    # moving statistics moved toward the data's (mean 2, variance 9), weight 0.99 per step
    assert np.all(bn.moving_mean.numpy() > 0.2) and np.all(bn.moving_variance.numpy() > 1.0)
    norms = np.sqrt((model.layers[1].kernel.numpy() ** 2).sum(axis=0))
    assert np.all(norms <= 1 + 1e-5)
    np.testing.assert_array_equal(model.predict(X_valid, verbose=0), model.predict(X_valid, verbose=0))
    # Huber loss, delta 1: evaluate equals the formula on the predictions
    err = model.predict(X_valid, verbose=0)[:, 0] - y_valid
    huber = np.where(np.abs(err) <= 1, 0.5 * err ** 2, np.abs(err) - 0.5).mean()
    assert model.evaluate(X_valid, y_valid, verbose=0) == pytest.approx(huber, rel=1e-4)
    assert keras.losses.Huber()(y_valid, model.predict(X_valid, verbose=0)) == pytest.approx(huber, rel=1e-4)


def test_mc_dropout_with_training_true_and_a_dropout_subclass():
    X_train, y_train, X_valid, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(50, activation="relu"),
                              keras.layers.Dropout(rate=0.3), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="adam")
    model.fit(X_train / 3, y_train, epochs=2, verbose=0)
    y_probas = np.stack([model(X_valid / 3, training=True) for sample in range(20)])
    assert y_probas.shape == (20, len(X_valid), 1)
    assert y_probas.std(axis=0).mean() > 0
    assert not np.allclose(y_probas.mean(axis=0), y_probas[0])
    np.testing.assert_array_equal(model(X_valid / 3), model.predict(X_valid / 3, verbose=0))

    class MCDropout(keras.layers.Dropout):  # HOML: dropout active at inference too
        def call(self, inputs, training=False):
            return super().call(inputs, training=True)

    mc = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(50, activation="relu"),
                           MCDropout(rate=0.3), keras.layers.Dense(1)])
    mc.compile(loss="mse", optimizer="adam")
    h = mc.fit(X_train / 3, y_train, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    p1, p2 = mc.predict(X_valid / 3, verbose=0), mc.predict(X_valid / 3, verbose=0)
    assert not np.array_equal(p1, p2)  # the override is honoured, not silently ignored
    relu_out = mc.layers[0](X_valid / 3)
    hidden = mc.layers[1](relu_out)                 # called directly: still samples a mask
    active = relu_out > 0
    kept = (hidden != 0) & active
    assert 0.55 < kept.sum() / active.sum() < 0.85  # about 1 - rate
    np.testing.assert_allclose(hidden[kept], relu_out[kept] / 0.7, rtol=1e-5)


def test_user_layers_whose_call_takes_no_training_argument():
    """Keras passes ``training`` only to a call() that accepts it."""
    class Doubler(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

        def backward(self, dy, need_dx=True):   # fastnn's extra for a trainable stack
            return dy * 2.0

    class LoggedDense(keras.layers.Dense):
        def call(self, inputs):
            self.calls = getattr(self, "calls", 0) + 1
            return super().call(inputs)

    X_train, y_train, *_ = regression_data()
    dense = LoggedDense(10, activation="relu")
    model = keras.Sequential([keras.Input(shape=[8]), dense, Doubler(), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")
    h = model.fit(X_train / 3, y_train, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert dense.calls == 3 * math.ceil(len(X_train) / 32)   # the override runs every step
    x = X_train[:4] / 3
    hidden = np.maximum(x @ dense.kernel.numpy() + dense.bias.numpy(), 0)
    out = model.layers[2](2 * hidden)
    np.testing.assert_allclose(model.predict(x, verbose=0), out, rtol=1e-5)


# ---- HOML ch. 11: optimizers and learning-rate scheduling ---------------------------------------
@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.SGD(learning_rate=0.001, momentum=0.9, nesterov=True),
    lambda: keras.optimizers.SGD(clipvalue=1.0),
    lambda: keras.optimizers.RMSprop(learning_rate=0.001, rho=0.9),
    lambda: keras.optimizers.Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    lambda: keras.optimizers.AdamW(weight_decay=1e-5, learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    lambda: keras.optimizers.Nadam(learning_rate=0.001, beta_1=0.9, beta_2=0.999),
    lambda: keras.optimizers.Adagrad(learning_rate=0.01),
    lambda: "adam",
])
def test_optimizers_train(optimizer):
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(30, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=optimizer())
    h = model.fit(X_train / 3, y_train, epochs=4, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_exponential_decay_schedule_as_learning_rate():
    X_train, y_train, *_ = regression_data()
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate=0.01, decay_steps=20, decay_rate=0.1)
    optimizer = keras.optimizers.SGD(learning_rate=lr_schedule)
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=optimizer)
    model.fit(X_train / 3, y_train, epochs=2, verbose=0)
    steps = 2 * math.ceil(len(X_train) / 32)
    assert model.optimizer.iterations == steps
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.1 ** (steps / 20))
    with pytest.raises(TypeError):  # as Keras: a schedule's rate cannot be set to a number
        model.optimizer.learning_rate = 0.1


def test_learning_rate_reads_and_assigns_like_a_keras_variable():
    model = keras.Sequential([keras.Input(shape=[2]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.1))
    lr = model.optimizer.learning_rate
    assert lr.numpy() == pytest.approx(0.1) and float(lr) == pytest.approx(0.1)
    model.optimizer.learning_rate.assign(0.05)
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    model.optimizer.learning_rate = 0.02
    assert float(model.optimizer.learning_rate) == pytest.approx(0.02)
    w0 = model.layers[0].get_weights()
    x, y = np.ones((4, 2), np.float32), np.zeros(4, np.float32)
    model.train_on_batch(x, y)
    grad_w = 2 * x.T @ (x @ w0[0] + w0[1] - y[:, None]) / 4
    np.testing.assert_allclose(model.layers[0].get_weights()[0], w0[0] - 0.02 * grad_w, rtol=1e-5)


def test_callbacks_checkpoint_early_stopping_scheduler_and_custom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X_train, y_train, X_valid, y_valid, *_ = regression_data()

    def exponential_decay_fn(epoch):
        return 0.01 * 0.1 ** (epoch / 20)

    class PrintValTrainRatioCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.ratios = []

        def on_epoch_end(self, epoch, logs):
            self.ratios.append(logs["val_loss"] / logs["loss"])

    ratio_cb = PrintValTrainRatioCallback()
    checkpoint_cb = keras.callbacks.ModelCheckpoint("my_model.keras", save_best_only=True)
    early_stopping_cb = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    lr_scheduler = keras.callbacks.LearningRateScheduler(exponential_decay_fn)
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(30, activation="relu"),
                              keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(momentum=0.9))
    history = model.fit(X_train / 3, y_train, epochs=6, validation_data=(X_valid / 3, y_valid),
                        callbacks=[checkpoint_cb, early_stopping_cb, lr_scheduler, ratio_cb], verbose=0)
    n = len(history.epoch)
    np.testing.assert_allclose(history.history["learning_rate"], [exponential_decay_fn(e) for e in range(n)])
    np.testing.assert_allclose(ratio_cb.ratios,
                               np.array(history.history["val_loss"]) / history.history["loss"])
    best = min(history.history["val_loss"])
    assert model.evaluate(X_valid / 3, y_valid, verbose=0) == pytest.approx(best, rel=1e-5)
    assert os.path.exists("my_model.keras")
    model2 = keras.models.load_model("my_model.keras")
    assert model2.evaluate(X_valid / 3, y_valid, verbose=0) == pytest.approx(best, rel=1e-5)


def test_reduce_lr_on_plateau_halves_the_rate():
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.01))
    # min_delta so large that no epoch after the first counts as an improvement
    cb = keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=1e9)
    model.fit(X_train / 3, y_train, epochs=4, callbacks=cb, verbose=0)  # one callback, no list
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01 * 0.5 ** 3)


def test_lr_scheduler_with_epoch_and_lr_and_lambda_callback():
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=0.01))
    batch_losses = []
    cbs = [keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr),
           keras.callbacks.LambdaCallback(on_batch_end=lambda batch, logs: batch_losses.append(logs["loss"]))]
    h = model.fit(X_train / 3, y_train, epochs=3, batch_size=40, callbacks=cbs, verbose=0)
    np.testing.assert_allclose(h.history["learning_rate"], [0.01, 0.005, 0.0025])
    assert len(batch_losses) == 3 * 4  # LambdaCallback batch hooks are called
    assert batch_losses[3] == pytest.approx(h.history["loss"][0])


def test_custom_callback_sees_log_dicts_in_fit_evaluate_and_predict():
    """The keras.io "Writing your own callbacks" guide: logs is a dict in every hook."""
    X_train, y_train, *_ = regression_data()
    events = []

    class CustomCallback(keras.callbacks.Callback):
        def _log(self, what, logs):
            events.append((what, sorted(logs.keys())))

        def on_train_begin(self, logs=None): self._log("train_begin", logs)
        def on_train_end(self, logs=None): self._log("train_end", logs)
        def on_epoch_begin(self, epoch, logs=None): self._log("epoch_begin", logs)
        def on_epoch_end(self, epoch, logs=None): self._log("epoch_end", logs)
        def on_test_begin(self, logs=None): self._log("test_begin", logs)
        def on_test_end(self, logs=None): self._log("test_end", logs)
        def on_predict_begin(self, logs=None): self._log("predict_begin", logs)
        def on_predict_end(self, logs=None): self._log("predict_end", logs)
        def on_train_batch_begin(self, batch, logs=None): self._log("train_batch_begin", logs)
        def on_train_batch_end(self, batch, logs=None): self._log("train_batch_end", logs)
        def on_test_batch_begin(self, batch, logs=None): self._log("test_batch_begin", logs)
        def on_test_batch_end(self, batch, logs=None): self._log("test_batch_end", logs)
        def on_predict_batch_begin(self, batch, logs=None): self._log("predict_batch_begin", logs)

        def on_predict_batch_end(self, batch, logs=None):
            self._log("predict_batch_end", logs)
            events.append(("outputs", logs["outputs"].shape))

    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="rmsprop", metrics=["mean_absolute_error"])
    model.fit(X_train, y_train, batch_size=64, epochs=1, verbose=0, validation_split=0.5,
              callbacks=[CustomCallback()])
    keys = ["loss", "mean_absolute_error"]
    assert events[:3] == [("train_begin", []), ("epoch_begin", []), ("train_batch_begin", [])]
    assert ("train_batch_end", keys) in events
    assert events.count(("test_batch_end", keys)) == 2      # 80 validation rows, batches of 64
    assert ("test_end", keys) in events
    assert events[-1][0] == "train_end" and "val_loss" in events[-1][1]
    events.clear()
    res = model.evaluate(X_train, y_train, batch_size=64, verbose=0, callbacks=[CustomCallback()])
    assert events[0] == ("test_begin", []) and events[-1] == ("test_end", keys)
    assert events.count(("test_batch_end", keys)) == 3
    assert len(res) == 2
    events.clear()
    pred = model.predict(X_train, batch_size=64, callbacks=[CustomCallback()])
    assert events[0] == ("predict_begin", []) and events[-1] == ("predict_end", [])
    assert [e for e in events if e[0] == "outputs"] == [("outputs", (64, 1)), ("outputs", (64, 1)),
                                                       ("outputs", (32, 1))]
    assert pred.shape == (160, 1)


def test_loss_and_error_printing_callback_per_batch_running_means():
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="rmsprop", metrics=["mean_absolute_error"])
    test_losses = []

    class LossAndErrorPrintingCallback(keras.callbacks.Callback):
        def on_test_batch_end(self, batch, logs=None):
            test_losses.append(logs["loss"])

    final = model.evaluate(X_train, y_train, batch_size=50, verbose=0,
                           callbacks=[LossAndErrorPrintingCallback()])
    err = (model.predict(X_train, verbose=0)[:, 0] - y_train) ** 2
    expected = [err[:hi].mean() for hi in (50, 100, 150, 160)]
    np.testing.assert_allclose(test_losses, expected, rtol=1e-5)
    assert final[0] == pytest.approx(test_losses[-1])


# ---- transfer learning, cloning, saving ----------------------------------------------------------
def test_clone_model_set_weights_freeze_and_recompile(digits):
    X_train, y_train, X_valid, y_valid = digits
    model_A = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(30, activation="relu"),
                                keras.layers.Dense(30, activation="relu"),
                                keras.layers.Dense(10, activation="softmax")])
    model_A.compile(loss="sparse_categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    model_A.fit(X_train, y_train, epochs=2, verbose=0)
    model_A_clone = keras.models.clone_model(model_A)
    model_A_clone.set_weights(model_A.get_weights())
    np.testing.assert_array_equal(model_A_clone.predict(X_valid, verbose=0), model_A.predict(X_valid, verbose=0))
    model_B_on_A = keras.Sequential(model_A_clone.layers[:-1])
    model_B_on_A.add(keras.layers.Dense(1, activation="sigmoid"))
    y_B = (y_train >= 5).astype(np.float32)
    for layer in model_B_on_A.layers[:-1]:
        layer.trainable = False
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    model_B_on_A.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    frozen = model_B_on_A.layers[0].get_weights()
    model_B_on_A.fit(X_train, y_B, epochs=2, verbose=0)
    for a, b in zip(frozen, model_B_on_A.layers[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    for layer in model_B_on_A.layers[:-1]:
        layer.trainable = True
    model_B_on_A.compile(loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    model_B_on_A.fit(X_train, y_B, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], model_B_on_A.layers[0].get_weights()[0])
    # model_A is untouched by all of this (the clone has its own weights)
    np.testing.assert_array_equal(model_A.layers[0].get_weights()[0], model_A.get_weights()[0])
    loss, acc = model_B_on_A.evaluate(X_valid, (y_valid >= 5), verbose=0)
    p = model_B_on_A.predict(X_valid, verbose=0)[:, 0]
    assert acc == pytest.approx(np.mean((p > 0.5) == (y_valid >= 5)))


def test_frozen_base_model_stays_frozen_inside_a_new_sequential(digits, tmp_path):
    """The keras.io transfer-learning guide: base_model.trainable = False, then
    Sequential([base_model, head]). As Keras 3, a model's trainable flag reaches its layers."""
    X_train, y_train, *_ = digits
    base_model = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(20, activation="relu"),
                                   keras.layers.BatchNormalization()])
    base_model.trainable = False
    assert all(not layer.trainable for layer in base_model.layers)
    model = keras.Sequential([base_model, keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    frozen = base_model.get_weights()
    model.fit(X_train, y_train, epochs=1, verbose=0)
    for a, b in zip(frozen, base_model.get_weights()):   # BN statistics included
        np.testing.assert_array_equal(a, b)
    assert len(model.trainable_weights) == 2
    model.save(tmp_path / "t.keras")
    loaded = keras.models.load_model(tmp_path / "t.keras")
    assert [layer.trainable for layer in loaded.layers] == [False, False, True]
    base_model.trainable = True                          # unfreeze for fine-tuning
    model.compile(loss="sparse_categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-5))
    model.fit(X_train, y_train, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], base_model.get_weights()[0])


def test_transfer_learning_guide_trainable_attribute():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (2, 2, 0)
    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (4, 2, 2)
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    layer.trainable = False
    assert (len(layer.weights), len(layer.trainable_weights), len(layer.non_trainable_weights)) == (2, 0, 2)
    inner_model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(3, activation="relu"),
                                    keras.layers.Dense(3, activation="relu")])
    model = keras.Sequential([keras.Input(shape=(3,)), inner_model, keras.layers.Dense(3, activation="sigmoid")])
    model.trainable = False  # Freeze the outer model
    assert inner_model.trainable is False  # All layers in `model` are now frozen
    assert inner_model.layers[0].trainable is False  # `trainable` is propagated recursively
    model.compile(optimizer="adam", loss="mse")
    before = model.get_weights()
    model.fit(np.random.random((2, 3)), np.random.random((2, 3)), verbose=0)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_save_and_load_model_keeps_predictions_and_compile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X_train, y_train, X_valid, y_valid, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Normalization(),
                              keras.layers.Dense(10, activation="relu"), keras.layers.Dense(1)])
    model.layers[0].adapt(X_train)
    model.compile(loss="mse", optimizer="adam", metrics=["RootMeanSquaredError"])
    model.fit(X_train, y_train, epochs=2, verbose=0)
    model.save("my_keras_model.keras")
    loaded = keras.models.load_model("my_keras_model.keras")
    np.testing.assert_array_equal(loaded.predict(X_valid, verbose=0), model.predict(X_valid, verbose=0))
    assert loaded.evaluate(X_valid, y_valid, verbose=0) == pytest.approx(
        model.evaluate(X_valid, y_valid, verbose=0))
    assert type(loaded.optimizer).__name__ == "Adam"


def test_accuracy_picks_binary_categorical_or_sparse(digits):
    X_train, y_train, X_valid, y_valid = digits
    model = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(10, activation="softmax")])
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    model.fit(X_train, keras.utils.to_categorical(y_train, 10), epochs=1, verbose=0)
    _, acc = model.evaluate(X_valid, keras.utils.to_categorical(y_valid, 10), verbose=0)
    assert acc == pytest.approx(np.mean(model.predict(X_valid, verbose=0).argmax(-1) == y_valid))
    binary = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(1, activation="sigmoid")])
    binary.compile(loss="binary_crossentropy", optimizer="adam", metrics=["Accuracy"])
    binary.fit(X_train, y_train % 2, epochs=1, verbose=0)
    res = binary.evaluate(X_valid, y_valid % 2, verbose=0, return_dict=True)
    p = binary.predict(X_valid, verbose=0)[:, 0]
    assert set(res) == {"loss", "Accuracy"}
    assert res["Accuracy"] == pytest.approx(np.mean((p > 0.5) == (y_valid % 2)))


def test_homl_compile_with_function_losses_and_metrics_saves_and_reloads(digits, tmp_path):
    X_train, y_train, X_valid, y_valid = digits
    model = keras.Sequential([keras.Input(shape=[64]), keras.layers.Dense(30, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(loss=keras.losses.sparse_categorical_crossentropy,
                  optimizer=keras.optimizers.SGD(),
                  metrics=[keras.metrics.sparse_categorical_accuracy,
                           keras.metrics.SparseTopKCategoricalAccuracy(k=3)])
    h = model.fit(X_train, y_train, epochs=2, verbose=0)
    assert {"sparse_categorical_accuracy", "sparse_top_k_categorical_accuracy"} <= set(h.history)
    res = model.evaluate(X_valid, y_valid, verbose=0, return_dict=True)
    y_proba = model.predict(X_valid, verbose=0)
    top3 = np.argsort(-y_proba, axis=1)[:, :3]
    assert res["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean(np.any(top3 == y_valid[:, None], axis=1)))
    per_sample = keras.metrics.sparse_categorical_accuracy(y_valid, y_proba)
    assert per_sample.shape == (len(y_valid),)
    assert res["sparse_categorical_accuracy"] == pytest.approx(per_sample.mean())
    losses = keras.losses.sparse_categorical_crossentropy(y_valid, y_proba)   # one per sample
    np.testing.assert_allclose(losses, -np.log(y_proba[np.arange(len(y_valid)), y_valid]), rtol=1e-5)
    assert res["loss"] == pytest.approx(losses.mean(), rel=1e-5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.evaluate(X_valid, y_valid, verbose=0, return_dict=True) == pytest.approx(res)


def test_loss_objects_and_functions_reduce_like_keras():
    y_true = np.array([[0.0], [1.0], [2.0]])
    y_pred = np.array([[0.5], [1.0], [4.0]])
    se = np.array([0.25, 0.0, 4.0])
    np.testing.assert_allclose(keras.losses.mean_squared_error(y_true, y_pred), se)
    np.testing.assert_allclose(keras.losses.MeanSquaredError(reduction=None)(y_true, y_pred), se)
    assert keras.losses.MeanSquaredError()(y_true, y_pred) == pytest.approx(se.mean())
    assert keras.losses.MeanSquaredError(reduction="sum")(y_true, y_pred) == pytest.approx(se.sum())
    w = np.array([1.0, 2.0, 0.5])
    assert keras.losses.MeanSquaredError()(y_true, y_pred, sample_weight=w) == pytest.approx((se * w).sum() / 3)
    # 1-D arrays are one sample whose outputs are the last axis, as in Keras
    assert keras.losses.mse(np.array([1.0, 2.0]), np.array([1.0, 4.0])) == pytest.approx(2.0)
    assert keras.losses.KLDivergence()(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.5 * np.log(2) + 0.5 * np.log(0.5 / 0.75))
    err = np.array([0.3, -2.0, 1.5])
    huber = np.where(np.abs(err) <= 1, 0.5 * err ** 2, np.abs(err) - 0.5)
    np.testing.assert_allclose(keras.losses.huber(np.zeros((3, 1)), err[:, None]), huber, rtol=1e-6)


def test_sgd_decay_argument_is_ignored_with_a_warning_as_keras_3():
    with pytest.warns(UserWarning, match="decay.*no longer supported.*InverseTimeDecay"):
        optimizer = keras.optimizers.SGD(learning_rate=0.01, decay=1e-4)   # HOML 3 power scheduling
    assert optimizer.learning_rate == pytest.approx(0.01)


def test_find_learning_rate_callback_reads_running_batch_losses():
    """HOML ch. 11's ExponentialLearningRate callback (no super().__init__(), .numpy() on the
    learning rate, logs["loss"] = the epoch's running mean)."""
    class ExponentialLearningRate(keras.callbacks.Callback):
        def __init__(self, factor):
            self.factor = factor
            self.rates = []
            self.losses = []

        def on_epoch_begin(self, epoch, logs=None):
            self.sum_of_epoch_losses = 0

        def on_batch_end(self, batch, logs=None):
            mean_epoch_loss = logs["loss"]
            new_sum_of_epoch_losses = mean_epoch_loss * (batch + 1)
            batch_loss = new_sum_of_epoch_losses - self.sum_of_epoch_losses
            self.sum_of_epoch_losses = new_sum_of_epoch_losses
            lr = self.model.optimizer.learning_rate.numpy()
            self.rates.append(lr)
            self.losses.append(batch_loss)
            self.model.optimizer.learning_rate = lr * self.factor

    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer=keras.optimizers.SGD(learning_rate=1e-4))
    batch_losses = []
    cb = ExponentialLearningRate(factor=1.5)
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda batch, logs: batch_losses.append(
            model.evaluate(X_train[batch * 32:(batch + 1) * 32] / 3, y_train[batch * 32:(batch + 1) * 32], verbose=0)))
    model.fit(X_train / 3, y_train, epochs=1, shuffle=False, callbacks=[record, cb], verbose=0)
    np.testing.assert_allclose(cb.rates, 1e-4 * 1.5 ** np.arange(5))
    np.testing.assert_allclose(cb.losses, batch_losses, rtol=1e-4)  # each batch's own loss


def test_precision_recall_and_mape_metrics():
    y_true = np.array([[1], [0], [1], [1], [0]])
    y_pred = np.array([[0.9], [0.7], [0.2], [0.6], [0.1]])
    # predicted positive: rows 0, 1, 3; tp = 2, fp = 1, fn = 1
    p, r = keras.metrics.Precision(), keras.metrics.Recall()
    assert p(y_true, y_pred) == pytest.approx(2 / 3) and r(y_true, y_pred) == pytest.approx(2 / 3)
    p.reset_state()
    assert p.result() == 0.0
    X = np.random.default_rng(3).normal(size=(200, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.float32)
    model = keras.Sequential([keras.Input(shape=[4]), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy", "precision", keras.metrics.Recall()])
    h = model.fit(X, y, epochs=2, validation_split=0.25, verbose=0)
    assert {"precision", "recall", "val_precision", "val_recall"} <= set(h.history)
    res = model.evaluate(X, y, verbose=0, return_dict=True)
    pred = model.predict(X, verbose=0)[:, 0] > 0.5
    tp = np.sum(pred & (y == 1))
    assert res["precision"] == pytest.approx(tp / pred.sum())
    assert res["recall"] == pytest.approx(tp / (y == 1).sum())
    reg = keras.Sequential([keras.Input(shape=[4]), keras.layers.Dense(1)])
    reg.compile(loss="mse", optimizer="sgd", metrics=["mape"])
    y_r = X[:, 0] + 3
    out = reg.evaluate(X, y_r, verbose=0, return_dict=True)
    hand = 100 * np.mean(np.abs(y_r - reg.predict(X, verbose=0)[:, 0]) / np.abs(y_r))
    assert out["mape"] == pytest.approx(hand, rel=1e-4)


def test_rescaling_layer_pixels_model_and_gradient(digits, tmp_path):
    X_train, y_train, X_valid, y_valid = digits
    pixels_train, pixels_valid = X_train * 16, X_valid * 16          # raw 0..16 pixel values
    model = keras.Sequential([keras.Input(shape=[64]), keras.layers.Rescaling(1 / 16),
                              keras.layers.Dense(30, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    np.testing.assert_allclose(model.layers[0](pixels_valid), X_valid, rtol=1e-6)
    np.testing.assert_allclose(keras.layers.Rescaling(2.0, offset=-1.0)(np.array([[0.0, 0.5]])), [[-1.0, 0.0]])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    h = model.fit(pixels_train, y_train, epochs=2, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    model.save(tmp_path / "r.keras")
    loaded = keras.models.load_model(tmp_path / "r.keras")
    np.testing.assert_array_equal(loaded.predict(pixels_valid, verbose=0), model.predict(pixels_valid, verbose=0))
    # backward: central finite differences of sum(y * g) in float64
    old = keras.floatx()
    keras.set_floatx("float64")
    try:
        layer = keras.layers.Rescaling(np.array([0.5, -2.0, 3.0]), offset=1.0)
        x = np.random.default_rng(0).normal(size=(4, 3))
        g = np.random.default_rng(1).normal(size=(4, 3))
        layer(x)
        layer.forward(x, True)
        dx = layer.backward(g).copy()
        num = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            xp, xm = x.copy(), x.copy()
            xp[idx] += 1e-6
            xm[idx] -= 1e-6
            num[idx] = (np.sum(layer(xp) * g) - np.sum(layer(xm) * g)) / 2e-6
        np.testing.assert_allclose(dx, num, rtol=1e-6, atol=1e-8)
    finally:
        keras.set_floatx(old)
    with pytest.raises(ValueError, match="does not broadcast"):
        keras.Sequential([keras.Input(shape=[64]), keras.layers.Rescaling(np.ones(3))])


def test_auc_metric_matches_hand_computation_and_trains_with_early_stopping():
    m = keras.metrics.AUC(thresholds=[0.5])    # thresholds -1e-7, 0.5, 1 + 1e-7
    m.update_state(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1]))
    # (fpr, tpr) = (1, 1), (0.5, 0.5), (0, 0): two trapezoids
    assert m.result() == pytest.approx(0.5 * (1 + 0.5) / 2 + 0.5 * 0.5 / 2)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    p = np.clip(0.3 * y + 0.7 * rng.random(1000), 0, 1)
    roc = keras.metrics.AUC()
    roc.update_state(y[:500], p[:500])
    roc.update_state(y[500:], p[500:])
    pos, neg = p[y == 1], p[y == 0]
    exact = (np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    assert roc.result() == pytest.approx(exact, abs=2e-3)   # 200 thresholds: a close approximation
    X = rng.normal(size=(300, 4)).astype(np.float32)
    yy = (X[:, 0] - X[:, 2] > 0).astype(np.float32)
    model = keras.Sequential([keras.Input(shape=[4]), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(learning_rate=0.05),
                  metrics=[keras.metrics.AUC(name="auc"), keras.metrics.AUC(name="prc", curve="PR")])
    es = keras.callbacks.EarlyStopping(monitor="val_auc", patience=2, restore_best_weights=True)
    h = model.fit(X, yy, epochs=4, validation_split=0.3, callbacks=[es], verbose=0)
    assert {"auc", "prc", "val_auc", "val_prc"} <= set(h.history)
    assert es.monitor_op is np.greater                      # AUC is maximized
    assert h.history["val_auc"][-1] > 0.9
    res = model.evaluate(X[210:], yy[210:], verbose=0, return_dict=True)
    fresh = keras.metrics.AUC()
    fresh.update_state(yy[210:], model.predict(X[210:], verbose=0))
    assert res["auc"] == pytest.approx(fresh.result())


# ---- out of scope: clear errors ----------------------------------------------------------------
def test_functional_api_of_hands_on_ml_chapter_10_with_one_input():
    X_train, y_train, *_ = regression_data()
    normalization_layer = keras.layers.Normalization()
    hidden_layer1 = keras.layers.Dense(30, activation="relu")
    hidden_layer2 = keras.layers.Dense(30, activation="relu")
    concat_layer = keras.layers.Concatenate()
    output_layer = keras.layers.Dense(1)
    input_ = keras.layers.Input(shape=X_train.shape[1:])
    normalized = normalization_layer(input_)
    hidden1 = hidden_layer1(normalized)
    hidden2 = hidden_layer2(hidden1)
    concat = concat_layer([normalized, hidden2])
    output = output_layer(concat)
    model = keras.Model(inputs=[input_], outputs=[output])
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  metrics=["RootMeanSquaredError"])
    normalization_layer.adapt(X_train)
    history = model.fit(X_train, y_train, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert isinstance(keras.Model([keras.Input(shape=[3]), keras.layers.Dense(1)]), keras.Sequential)


def test_homl_wide_and_deep_with_an_auxiliary_output_runs_as_written():
    """Hands-On ML (3rd ed.), chapter 10: two inputs, a main and an auxiliary output,
    loss_weights, a flat metrics list applied to each output, tuples for x and y, and
    evaluate's five values unpacked in Keras' order."""
    X_train, y_train, X_valid, y_valid, X_test, y_test = regression_data()
    X_train_wide, X_train_deep = X_train[:, :5], X_train[:, 2:]
    X_valid_wide, X_valid_deep = X_valid[:, :5], X_valid[:, 2:]
    X_test_wide, X_test_deep = X_test[:, :5], X_test[:, 2:]
    X_new_wide, X_new_deep = X_test_wide[:3], X_test_deep[:3]

    input_wide = keras.layers.Input(shape=[5])
    input_deep = keras.layers.Input(shape=[6])
    norm_layer_wide = keras.layers.Normalization()
    norm_layer_deep = keras.layers.Normalization()
    norm_wide = norm_layer_wide(input_wide)
    norm_deep = norm_layer_deep(input_deep)
    hidden1 = keras.layers.Dense(30, activation="relu")(norm_deep)
    hidden2 = keras.layers.Dense(30, activation="relu")(hidden1)
    concat = keras.layers.concatenate([norm_wide, hidden2])
    output = keras.layers.Dense(1)(concat)
    aux_output = keras.layers.Dense(1)(hidden2)
    model = keras.Model(inputs=[input_wide, input_deep], outputs=[output, aux_output])

    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    model.compile(loss=("mse", "mse"), loss_weights=(0.9, 0.1), optimizer=optimizer,
                  metrics=["RootMeanSquaredError"])
    norm_layer_wide.adapt(X_train_wide)
    norm_layer_deep.adapt(X_train_deep)
    history = model.fit((X_train_wide, X_train_deep), (y_train, y_train), epochs=5, verbose=0,
                        validation_data=((X_valid_wide, X_valid_deep), (y_valid, y_valid)))
    main, aux = model.output_names
    assert set(history.history) == {
        "loss", f"{main}_loss", f"{aux}_loss", f"{main}_RootMeanSquaredError",
        f"{aux}_RootMeanSquaredError", "learning_rate", "val_loss", f"val_{main}_loss",
        f"val_{aux}_loss", f"val_{main}_RootMeanSquaredError", f"val_{aux}_RootMeanSquaredError"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    eval_results = model.evaluate((X_test_wide, X_test_deep), (y_test, y_test), verbose=0)
    weighted_sum_of_losses, main_loss, aux_loss, main_rmse, aux_rmse = eval_results
    # the loss is the weighted sum of the outputs' own losses; RMSE is their square root
    assert weighted_sum_of_losses == pytest.approx(0.9 * main_loss + 0.1 * aux_loss, rel=1e-9)
    assert main_rmse == pytest.approx(np.sqrt(main_loss), rel=1e-5)
    assert aux_rmse == pytest.approx(np.sqrt(aux_loss), rel=1e-5)
    y_pred_main, y_pred_aux = model.predict((X_new_wide, X_new_deep), verbose=0)
    assert y_pred_main.shape == y_pred_aux.shape == (3, 1)
    y_pred_tuple = model.predict((X_new_wide, X_new_deep), verbose=0)
    y_pred = dict(zip(model.output_names, y_pred_tuple))
    np.testing.assert_array_equal(y_pred[main], y_pred_main)


def test_model_subclassing_is_refused_at_class_creation():
    with pytest.raises(TypeError, match="Keras model subclassing"):
        class WideAndDeepModel(keras.Model):
            def call(self, inputs):
                return inputs


def test_generators_train_and_custom_losses_say_so():
    X_train, y_train, *_ = regression_data()
    model = keras.Sequential([keras.Input(shape=[8]), keras.layers.Dense(1)])
    model.compile(loss="mse", optimizer="sgd")

    def batches():
        yield X_train, y_train

    history = model.fit(batches(), epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1
    model.fit(X_train, y_train, validation_data=batches(), verbose=0)
    with pytest.raises(TypeError, match="tf.data datasets or dicts of inputs"):
        model.fit({"deep": X_train}, y_train, verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        model.fit(X_train, y_train, validation_data=X_train, verbose=0)

    def huber_fn(y_true, y_pred):
        return 0.0

    with pytest.raises(TypeError, match="automatic differentiation"):
        model.compile(loss=huber_fn, optimizer="sgd")

    class HuberLoss(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return (y_true - y_pred) ** 2

    with pytest.raises(TypeError, match="HuberLoss.*only defines call"):
        model.compile(loss=HuberLoss(), optimizer="sgd")


def test_missing_keras_layers_and_callbacks_explain_the_scope():
    with pytest.raises(AttributeError, match="multilayer perceptrons.*Dense"):
        keras.layers.Conv2D
    assert not hasattr(keras.layers, "LSTM")
    with pytest.raises(AttributeError, match="fastnn's callbacks are: .*EarlyStopping"):
        keras.callbacks.RemoteMonitor
    with pytest.raises(AttributeError, match="only load_digits"):
        keras.datasets.fashion_mnist.load_data()
