"""The Keras-style model API end to end: building, fit/evaluate/predict, History, batch
modes, validation, callbacks, the backend switch, and clear errors for bad input."""
import io
import contextlib
import os

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, datasets, layers, optimizers

from conftest import C


def test_c_backend_is_active():
    """CI runs this: the extension compiled and is the default backend."""
    if os.environ.get("FASTNN_BACKEND") == "numpy":
        pytest.skip("the suite runs on the NumPy reference by request (FASTNN_BACKEND=numpy)")
    assert C is not None, "fastnn._ckernels did not import: the C extension was not built"
    assert fastnn.backend.backend() == "c"


def digits_model(hidden=64, activation="relu", seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        layers.Input(shape=(64,)),
        layers.Dense(hidden, activation=activation, kernel_initializer="he_normal"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_trains_digits_to_high_accuracy():
    (x, y), (xt, yt) = datasets.load_digits()
    model = digits_model()
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0, validation_data=(xt, yt))
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc > 0.93
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert history.epoch == list(range(8))
    assert history.history["val_accuracy"][-1] == pytest.approx(acc)


@pytest.mark.parametrize("batch_size", [1, 7, 1437])
def test_batch_modes_sgd_minibatch_fullbatch(batch_size):
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    model.compile(optimizer=optimizers.SGD(0.05 if batch_size > 1 else 0.005),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=2 if batch_size < 100 else 30, batch_size=batch_size, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert model.optimizer.iterations == (2 if batch_size < 100 else 30) * int(np.ceil(len(x) / batch_size))


def test_same_seed_same_weights_bit_for_bit():
    (x, y), _ = datasets.load_digits()
    runs = []
    for _ in range(2):
        model = digits_model(seed=42)
        model.fit(x, y, epochs=2, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_numpy_reference_backend_trains_the_same_model():
    (x, y), _ = datasets.load_digits()
    x, y = x[:256], y[:256]
    results = {}
    for name in ("c", "numpy"):
        fastnn.set_backend(name)
        try:
            model = digits_model(seed=3)
            model.fit(x, y, epochs=2, batch_size=64, verbose=0, shuffle=False)
            results[name] = model.get_weights()
        finally:
            fastnn.set_backend("c")
    for a, b in zip(results["c"], results["numpy"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_predict_evaluate_call_and_shapes():
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    p = model.predict(x[:50], batch_size=16, verbose=0)
    assert p.shape == (50, 10) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(model(x[:50]), p, rtol=1e-6)
    np.testing.assert_allclose(model.predict(x[:50], batch_size=50, verbose=0), p, rtol=1e-6)
    d = model.evaluate(x[:50], y[:50], verbose=0, return_dict=True)
    assert set(d) == {"loss", "accuracy"}
    # outputs returned to the user are copies, not views of internal buffers
    p2 = model.predict(x[:50], verbose=0)
    model.predict(x[50:100], verbose=0)
    np.testing.assert_array_equal(p, p2)


def test_validation_split_uses_the_last_samples():
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    h = model.fit(x, y, epochs=1, validation_split=0.25, verbose=0)
    n_val = int(len(x) * 0.25)
    val = model.evaluate(x[-n_val:], y[-n_val:], verbose=0, return_dict=True)
    assert h.history["val_loss"][0] == pytest.approx(val["loss"], rel=1e-6)
    assert model.optimizer.iterations == int(np.ceil((len(x) - n_val) / 32))


def test_one_hot_and_binary_and_regression_losses_train():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    w = rng.standard_normal(5)
    for loss, out_act, y, metric in (
        ("binary_crossentropy", "sigmoid", (x @ w > 0).astype(np.float32), "accuracy"),
        ("mse", None, (x @ w).astype(np.float32), "mae"),
        ("huber", None, (x @ w).astype(np.float32), "mse"),
        ("categorical_crossentropy", "softmax", fastnn.utils.to_categorical(x @ w > 0), "accuracy"),
    ):
        fastnn.set_seed(1)
        units = 2 if loss == "categorical_crossentropy" else 1
        model = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(16, activation="tanh"),
                                   layers.Dense(units, activation=out_act)])
        model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9), loss=loss, metrics=[metric])
        h = model.fit(x, y, epochs=15, verbose=0)
        assert h.history["loss"][-1] < 0.5 * h.history["loss"][0], loss


def test_progress_bar_output():
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.fit(x[:200], y[:200], epochs=2, batch_size=50, verbose=1)
    text = out.getvalue()
    assert "Epoch 1/2" in text and "Epoch 2/2" in text
    assert "4/4" in text and "accuracy:" in text and "loss:" in text and "/step" in text
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.fit(x[:200], y[:200], epochs=1, batch_size=50, verbose=0)
    assert out.getvalue() == ""



def test_predict_shows_the_progress_bar_as_keras_3(capsys):
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    p = model.predict(x[:200], batch_size=50)          # verbose="auto": the bar, as Keras 3
    out = capsys.readouterr().out
    assert out.startswith("\r4/4 \u2501") and out.endswith("\n") and "/step" in out
    np.testing.assert_array_equal(model.predict(x[:200], batch_size=50, verbose=1), p)
    out = capsys.readouterr().out
    assert "\n" not in out[:-1] and out.split("\r")[-1].startswith("4/4 ")  # drawn over itself
    model.predict(x[:200], batch_size=50, verbose=2)  # one line at the end
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("4/4 - ") and "\r" not in out
    model.predict(x[:200], verbose=0)
    assert capsys.readouterr().out == ""
    # the bar counts the user's batches, though arrays run in bigger chunks without callbacks
    model.predict(x[:1000], steps=3)
    assert "3/3 " in capsys.readouterr().out
    # a generator's length is learnt as it runs
    model.predict((x[i:i + 50] for i in range(0, 150, 50)), verbose=2)
    assert capsys.readouterr().out.startswith("3/3 - ")
    with pytest.raises(ValueError, match="verbose"):
        model.predict(x[:10], verbose="yes")

def test_callbacks_receive_logs_and_can_stop_training():
    (x, y), _ = datasets.load_digits()
    model = digits_model()
    seen = []

    class Stopper(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, logs["loss"]))
            if batch == 4:
                self.model.stop_training = True

    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[Stopper()])
    assert [b for b, _ in seen] == [0, 1, 2, 3, 4]
    assert len(h.epoch) == 1
    assert model.optimizer.iterations == 5


def test_terminate_on_nan():
    x = np.ones((64, 3), np.float32)
    y = np.ones(64, np.float32) * 1e30
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.SGD(1.0), loss="mse")
    with contextlib.redirect_stdout(io.StringIO()):
        h = model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(h.epoch) == 1 and not np.isfinite(h.history["loss"][0])


def test_summary_and_weights_api():
    model = digits_model(hidden=32)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "dense" in text and "Total params: 2,410" in text
    w = model.get_weights()
    assert [a.shape for a in w] == [(64, 32), (32,), (32, 10), (10,)]
    model.set_weights([np.zeros_like(a) for a in w])
    assert all(np.all(a == 0) for a in model.get_weights())
    v = model.layers[0].variables[0]
    assert v.name == "kernel" and v.trainable and v.numpy().shape == (64, 32)
    with pytest.raises(ValueError, match="shape"):
        v.assign(np.zeros((3, 3)))


def test_input_shape_on_first_layer_and_lazy_build():
    model = fastnn.Sequential([layers.Dense(4, input_shape=(3,)), layers.Dense(2)])
    assert model.built and model.output_shape == (None, 2)
    lazy = fastnn.Sequential([layers.Dense(4), layers.Dense(2)])
    assert not lazy.built
    lazy.compile(optimizer="sgd", loss="mse")
    lazy.fit(np.zeros((8, 3)), np.zeros((8, 2)), verbose=0)
    assert lazy.built and lazy.layers[0].kernel.shape == (3, 4)


def test_flatten_reshape_maxout_prelu_model_trains():
    (x, y), _ = datasets.load_digits()
    fastnn.set_seed(0)
    model = fastnn.Sequential([
        layers.Input(shape=(8, 8)), layers.Flatten(), layers.Reshape((64,)),
        layers.Maxout(32, pieces=2), layers.PReLU(), layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(x.reshape(-1, 8, 8), y, epochs=5, verbose=0)
    assert h.history["accuracy"][-1] > 0.9


# ---- bad input: clear errors, nothing crashes ------------------------------------------------
def test_fit_before_compile():
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)))


def test_wrong_input_shape_names_layer_and_shapes():
    model = digits_model()
    with pytest.raises(ValueError, match=r"\(10, 65\).*dense.*64"):
        model.fit(np.zeros((10, 65)), np.zeros(10), verbose=0)
    with pytest.raises(ValueError, match="expects"):
        model.predict(np.zeros((10, 3)))


def test_labels_out_of_range():
    model = digits_model()
    with pytest.raises(ValueError, match=r"\[0, 10\).*max 10"):
        model.fit(np.zeros((4, 64)), np.array([0, 1, 2, 10]), verbose=0)
    with pytest.raises(ValueError, match="min -1"):
        model.evaluate(np.zeros((4, 64)), np.array([0, 1, 2, -1]), verbose=0)
    with pytest.raises(ValueError, match="whole numbers"):
        model.fit(np.zeros((2, 64)), np.array([0.5, 1.0]), verbose=0)


def test_nan_and_inf_inputs_rejected():
    model = digits_model()
    x = np.zeros((4, 64))
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf.*\(2, 5\)"):
        model.fit(x, np.zeros(4), verbose=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(np.zeros((4, 64)), np.array([0, 1, np.inf, 1]), verbose=0)


def test_unknown_strings():
    with pytest.raises(ValueError, match="Unknown activation 'rellu'"):
        layers.Dense(3, activation="rellu")
    with pytest.raises(ValueError, match="Unknown initializer"):
        layers.Dense(3, kernel_initializer="glorot")
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile(optimizer="sgd", loss="mse2")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        model.compile(optimizer="adamm", loss="mse")
    with pytest.raises(ValueError, match="Unknown metric"):
        model.compile(optimizer="sgd", loss="mse", metrics=["acuracy"])


def test_integer_and_noncontiguous_inputs_are_converted():
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    xi = np.arange(24).reshape(8, 3)
    xn = np.asfortranarray(np.random.default_rng(0).standard_normal((8, 3)))[:, :]
    big = np.random.default_rng(1).standard_normal((8, 6))[:, ::2]
    for x in (xi, xn, big):
        model.fit(x, np.zeros((8, 2)), verbose=0)
        np.testing.assert_allclose(model.predict(x, verbose=0), model(np.ascontiguousarray(x, np.float32)),
                                   rtol=1e-6)


def test_mismatched_lengths_and_bad_arguments():
    model = digits_model()
    with pytest.raises(ValueError, match="x has 4 samples but y has 3"):
        model.fit(np.zeros((4, 64)), np.zeros(3), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(np.zeros((4, 64)), np.zeros(4), batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict(np.zeros((0, 64)))
    with pytest.raises(TypeError, match="numeric"):
        model.predict(np.array([["a"] * 64]))
    with pytest.raises(ValueError, match="one-hot"):
        m2 = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(4, activation="softmax")])
        m2.compile(optimizer="sgd", loss="categorical_crossentropy")
        m2.fit(np.zeros((4, 3)), np.array([0, 1, 2, 3]), verbose=0)
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="do not match"):
        m3 = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(2)])
        m3.compile(optimizer="sgd", loss="mse")
        m3.fit(np.zeros((4, 3)), np.zeros((4, 3)), verbose=0)
