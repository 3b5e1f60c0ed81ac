"""The functional API: graphs of layers (residual MLPs, Wide & Deep with one input), merge
layers, their gradients (float64 finite differences, fan-out included), a chain graph giving
Sequential's bits, config round trips and clear errors for bad graphs."""
import io
import contextlib

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.functional import Functional, KerasTensor

from conftest import model_gradient_check

MERGES = [layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum,
          layers.Minimum, layers.Concatenate]


def model_of(inputs, outputs, **kw):
    return fastnn.Model(inputs=inputs, outputs=outputs, **kw)


@pytest.mark.parametrize("merge", MERGES, ids=lambda c: c.__name__)
def test_merge_layer_gradients_match_finite_differences(float64_model, merge):
    rng = np.random.default_rng(1)
    inp = fastnn.Input(shape=(5,))
    a = layers.Dense(4, activation="tanh")(inp)
    b = layers.Dense(4, activation="sigmoid")(inp)  # inp feeds two layers (fan-out)
    m = merge()([a, b])
    out = layers.Dense(2)(m)
    model = model_of(inp, out)
    x = rng.standard_normal((7, 5))
    model_gradient_check(model, x, rng.standard_normal((7, 2)))


def test_three_way_merges_and_a_tensor_read_three_times(float64_model):
    rng = np.random.default_rng(2)
    inp = fastnn.Input(shape=(4,))
    h = layers.Dense(6, activation="elu")(inp)
    parts = [layers.Dense(3)(h), layers.Dense(3, activation="tanh")(h), layers.Dense(3)(h)]
    s = layers.Add()(parts)
    mul = layers.Multiply()(parts)
    cat = layers.Concatenate()([inp, h, s, mul])  # inp and h reach the output two ways
    out = layers.Dense(2)(cat)
    model_gradient_check(model_of(inp, out), rng.standard_normal((6, 4)), rng.standard_normal((6, 2)))


def test_residual_block_with_batch_norm_gradients(float64_model):
    rng = np.random.default_rng(3)
    inp = fastnn.Input(shape=(6,))
    h = layers.Dense(6)(inp)
    h = layers.BatchNormalization()(h)
    h = layers.Activation("relu")(h)
    h = layers.Dense(6)(h)
    out = layers.Dense(1)(layers.Add()([inp, h]))
    model_gradient_check(model_of(inp, out), rng.standard_normal((8, 6)), rng.standard_normal((8, 1)),
                   rtol=1e-4, training=True)


def chain(seed, graph):
    fastnn.set_seed(seed)
    inp = fastnn.Input(shape=(12,))
    stack = [layers.Dense(16, activation="relu"), layers.BatchNormalization(),
             layers.Dropout(0.2), layers.Dense(3, activation="softmax")]
    if graph:
        h = inp
        for layer in stack:
            h = layer(h)
        model = model_of(inp, h)
    else:
        model = fastnn.Sequential([inp] + stack)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_a_chain_graph_gives_the_bits_of_the_same_sequential():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((96, 12)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    seq = chain(0, graph=False)
    h1 = seq.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0).history
    graph = chain(0, graph=True)
    h2 = graph.fit(x, y, batch_size=16, epochs=3, validation_split=0.25, verbose=0).history
    assert h1 == h2
    for a, b in zip(seq.get_weights(), graph.get_weights()):
        assert np.array_equal(a, b)
    assert np.array_equal(seq.predict(x, verbose=0), graph.predict(x, verbose=0))


def residual_mlp(width=32, blocks=2, seed=0):
    fastnn.set_seed(seed)
    inp = fastnn.Input(shape=(64,))
    h = layers.Dense(width, activation="relu")(inp)
    for _ in range(blocks):
        z = layers.Dense(width)(h)
        z = layers.BatchNormalization()(z)
        z = layers.Activation("relu")(z)
        z = layers.Dropout(0.1)(z)
        z = layers.Dense(width)(z)
        h = layers.Add()([h, z])
    out = layers.Dense(10, activation="softmax")(h)
    model = model_of(inp, out, name="resmlp")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_residual_mlp_learns_the_digits():
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    model = residual_mlp()
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0, validation_data=(xt, yt))
    assert history.history["val_accuracy"][-1] > 0.9
    assert model.evaluate(xt, yt, verbose=0)[1] == pytest.approx(history.history["val_accuracy"][-1])


def test_wide_and_deep_with_one_input_as_in_hands_on_ml():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    y = (x[:, 0] * 2 - x[:, 1] + 0.5 * np.tanh(x[:, 2])).astype(np.float32)
    fastnn.set_seed(0)
    norm = layers.Normalization()
    norm.adapt(x)
    inp = fastnn.Input(shape=x.shape[1:])
    normalized = norm(inp)
    hidden1 = layers.Dense(30, activation="relu")(normalized)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.Concatenate()([normalized, hidden2])
    output = layers.Dense(1)(concat)
    model = fastnn.Model(inputs=[inp], outputs=[output])
    model.compile(loss="mse", optimizer=fastnn.optimizers.Adam(learning_rate=1e-3), metrics=["RootMeanSquaredError"])
    history = model.fit(x, y, epochs=20, verbose=0, validation_split=0.2)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    assert model.predict(x[:3], verbose=0).shape == (3, 1)


def test_summary_shows_what_each_layer_reads():
    model = residual_mlp(blocks=1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert "Connected to" in text and "Add" in text
    add_row = next(line for line in text.splitlines() if "(Add)" in line)
    assert "dense" in add_row and ", " in add_row  # reads two layers
    assert f"Total params: {model.count_params():,}" in text


def test_config_round_trip_rebuilds_the_same_graph():
    model = residual_mlp(blocks=2)
    again = Functional.from_config(model.get_config())
    assert [type(layer).__name__ for layer in again.layers] == \
        [type(layer).__name__ for layer in model.layers]
    again.set_weights(model.get_weights())
    x = np.random.default_rng(6).standard_normal((5, 64)).astype(np.float32)
    assert np.array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layer_calls_on_inputs_record_symbolic_tensors():
    inp = fastnn.Input(shape=(3,))
    dense = layers.Dense(4)
    t = dense(inp)
    assert isinstance(t, KerasTensor) and t.shape == (None, 4) and t.layer is dense
    with pytest.raises(ValueError, match="was built for inputs of shape"):
        dense(fastnn.Input(shape=(5,)))
    # eager calls still compute
    assert layers.Add()([np.ones((2, 3)), np.ones((2, 3))]).tolist() == [[2.0] * 3] * 2


def test_bad_graphs_get_clear_errors():
    a, b = fastnn.Input(shape=(4,)), fastnn.Input(shape=(4,))
    out = layers.Dense(1)(b)
    with pytest.raises(ValueError, match="not among the model's inputs"):
        model_of(a, out)
    with pytest.raises(ValueError, match="the inputs must have the same shape"):
        layers.Add()([layers.Dense(3)(a), layers.Dense(4)(a)])
    with pytest.raises(ValueError, match="same shape except along axis"):
        layers.Concatenate(axis=-1)([fastnn.Input(shape=(2, 3)), fastnn.Input(shape=(3, 3))])
    with pytest.raises(ValueError, match="takes one input"):
        layers.Dense(2)([a, b])
    twice = layers.Dense(1)(a)
    with pytest.raises(ValueError, match="the same tensor is given twice as an output"):
        model_of(a, [twice, twice])
    with pytest.raises(ValueError, match="is an input itself"):
        model_of(a, [twice, a])
    with pytest.raises(ValueError, match="names must differ"):
        model_of([fastnn.Input(shape=(2,), name="x"), fastnn.Input(shape=(2,), name="x")],
                 layers.Dense(1)(b))
    with pytest.raises(TypeError, match="inputs must be Input"):
        model_of(layers.Dense(2)(a), out)
    with pytest.raises(ValueError, match="is an input itself"):
        model_of(a, a)


def test_frozen_branch_gets_no_gradient_and_trains_the_rest():
    rng = np.random.default_rng(7)
    inp = fastnn.Input(shape=(5,))
    frozen = layers.Dense(5, activation="relu")
    frozen.trainable = False
    h = frozen(inp)
    out = layers.Dense(1)(layers.Concatenate()([inp, h]))
    model = model_of(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    before = frozen.get_weights()
    model.fit(rng.standard_normal((32, 5)).astype(np.float32), rng.standard_normal(32), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, frozen.get_weights()))
    assert len(model.trainable_weights) == 2


def test_graph_saves_loads_and_resumes_training_bit_for_bit(tmp_path):
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:256], y[:256]
    full = residual_mlp(seed=3)
    full.fit(x, y, epochs=4, batch_size=32, verbose=0)
    model = residual_mlp(seed=3)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "g.keras")
    loaded = fastnn.load_model(tmp_path / "g.keras")
    assert type(loaded) is Functional and [type(a) for a in loaded.layers] == [type(a) for a in model.layers]
    loaded.fit(x, y, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(full.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_graph_pickles_copies_clones_and_round_trips_through_json():
    import copy
    import pickle
    model = residual_mlp(blocks=1)
    x = np.random.default_rng(8).standard_normal((4, 64)).astype(np.float32)
    want = model.predict(x, verbose=0)
    for twin in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model)):
        assert type(twin) is Functional
        assert np.array_equal(twin.predict(x, verbose=0), want)
    clone = fastnn.clone_model(model)
    assert type(clone) is Functional and clone.count_params() == model.count_params()
    again = fastnn.models.model_from_json(model.to_json())
    again.set_weights(model.get_weights())
    assert np.array_equal(again.predict(x, verbose=0), want)


def homl_wide_and_deep(seed=0):
    """Hands-On ML chapter 10's Wide & Deep with two inputs (the code as written there)."""
    fastnn.set_seed(seed)
    keras = fastnn
    input_wide = keras.layers.Input(shape=[5], name="wide")
    input_deep = keras.layers.Input(shape=[6], name="deep")
    norm_layer_wide = keras.layers.Normalization()
    norm_layer_deep = keras.layers.Normalization()
    norm_wide = norm_layer_wide(input_wide)
    norm_deep = norm_layer_deep(input_deep)
    hidden1 = keras.layers.Dense(30, activation="relu")(norm_deep)
    hidden2 = keras.layers.Dense(30, activation="relu")(hidden1)
    concat = keras.layers.concatenate([norm_wide, hidden2])
    output = keras.layers.Dense(1)(concat)
    model = keras.Model(inputs=[input_wide, input_deep], outputs=[output])
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=1e-3),
                  metrics=["RootMeanSquaredError"])
    return model, norm_layer_wide, norm_layer_deep


def housing_like(n=400, seed=9):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 3] + np.tanh(x[:, 5] * x[:, 6])).astype(np.float32)
    return x, y


def test_two_input_wide_and_deep_as_in_hands_on_ml():
    x, y = housing_like()
    X_train, X_valid, X_test = x[:240], x[240:320], x[320:]
    y_train, y_valid, y_test = y[:240], y[240:320], y[320:]
    model, norm_wide, norm_deep = homl_wide_and_deep()
    X_train_wide, X_train_deep = X_train[:, :5], X_train[:, 2:]
    X_valid_wide, X_valid_deep = X_valid[:, :5], X_valid[:, 2:]
    X_test_wide, X_test_deep = X_test[:, :5], X_test[:, 2:]
    X_new_wide, X_new_deep = X_test_wide[:3], X_test_deep[:3]
    norm_wide.adapt(X_train_wide)
    norm_deep.adapt(X_train_deep)
    history = model.fit((X_train_wide, X_train_deep), y_train, epochs=20, verbose=0,
                        validation_data=((X_valid_wide, X_valid_deep), y_valid))
    assert history.history["val_loss"][-1] < history.history["val_loss"][0] / 2
    mse_test = model.evaluate((X_test_wide, X_test_deep), y_test, verbose=0)
    y_pred = model.predict((X_new_wide, X_new_deep), verbose=0)
    assert y_pred.shape == (3, 1) and np.isfinite(mse_test).all()
    # by name, as a dict; and model(x) on a list
    by_name = model.predict({"wide": X_new_wide, "deep": X_new_deep}, verbose=0)
    assert np.array_equal(by_name, y_pred)
    assert np.array_equal(model([X_new_wide, X_new_deep]), y_pred)
    assert model.input_shape == [(None, 5), (None, 6)]


def test_two_inputs_train_like_the_same_rows_in_one_order():
    """Shuffled batches take the same rows from both inputs: splitting the features of a
    one-input model into two inputs gives the same training as feeding them together."""
    x, y = housing_like()

    def build(two):
        fastnn.set_seed(1)
        if two:
            a, b = fastnn.Input(shape=(3,), name="a"), fastnn.Input(shape=(5,), name="b")
            h = layers.concatenate([a, b])
            ins = [a, b]
        else:
            ins = h = fastnn.Input(shape=(8,))
        out = layers.Dense(1)(layers.Dense(16, activation="relu")(h))
        model = model_of(ins, out)
        model.compile(optimizer="adam", loss="mse")
        return model
    one = build(False)
    one.fit(x, y, batch_size=16, epochs=2, validation_split=0.2, verbose=0)
    two = build(True)
    two.fit([x[:, :3], x[:, 3:]], y, batch_size=16, epochs=2, validation_split=0.2, verbose=0)
    for p, q in zip(one.get_weights(), two.get_weights()):
        assert np.array_equal(p, q)


def test_two_input_graph_from_a_generator_and_saved(tmp_path):
    x, y = housing_like()
    model, norm_wide, norm_deep = homl_wide_and_deep()
    norm_wide.adapt(x[:, :5])
    norm_deep.adapt(x[:, 2:])

    def batches():
        while True:
            for lo in range(0, 400, 50):
                yield (x[lo:lo + 50, :5], x[lo:lo + 50, 2:]), y[lo:lo + 50]
    model.fit(batches(), steps_per_epoch=8, epochs=2, verbose=0)
    assert model.optimizer.iterations == 16
    model.save(tmp_path / "wd.keras")
    loaded = fastnn.load_model(tmp_path / "wd.keras")
    want = model.predict([x[:5, :5], x[:5, 2:]], verbose=0)
    assert np.array_equal(loaded.predict([x[:5, :5], x[:5, 2:]], verbose=0), want)


def test_inputs_given_wrongly_to_a_two_input_graph_are_named():
    model, _, _ = homl_wide_and_deep()
    x, y = housing_like(40)
    with pytest.raises(ValueError, match=r"has 2 inputs \['wide', 'deep'\]: pass a list"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"no data for \['deep'\]"):
        model.fit({"wide": x[:, :5]}, y, verbose=0)
    with pytest.raises(ValueError, match=r"unknown name\(s\) \['dep'\]"):
        model.fit({"wide": x[:, :5], "deep": x[:, 2:], "dep": x}, y, verbose=0)
    with pytest.raises(ValueError, match=r"input 'deep' of model .* expects \(batch, 6\)"):
        model.fit([x[:, :5], x[:, 3:]], y, verbose=0)
    with pytest.raises(ValueError, match="different numbers of rows"):
        model.fit([x[:, :5], x[:30, 2:]], y, verbose=0)


def test_a_sequential_and_a_graph_called_inside_a_graph_share_their_layers():
    """Transfer learning onto a graph: a pretrained Sequential's layers (frozen) under a new
    head; a graph called on new inputs inside another graph."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.standard_normal(64).astype(np.float32)
    base = fastnn.Sequential([fastnn.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                              layers.Dense(4, activation="relu")])
    base.trainable = False
    frozen = base.get_weights()
    inp = fastnn.Input(shape=(6,))
    features = base(inp)
    head = layers.Dense(1)(layers.concatenate([inp, features]))
    model = model_of(inp, head)
    assert [w.path for w in model.weights[:4]] == [w.path for w in base.weights]
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=2, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, base.get_weights()))
    inner = model_of(inp, head)
    outer_in = fastnn.Input(shape=(6,))
    outer = model_of(outer_in, layers.Dense(1)(inner(outer_in)))
    assert outer.count_params() == model.count_params() + 2
    assert np.allclose(inner.predict(x, verbose=0), model.predict(x, verbose=0))


# ---- found in review -------------------------------------------------------------------
def _wide_deep():
    fastnn.set_seed(0)
    a = fastnn.Input(shape=(3,), name="wide")
    b = fastnn.Input(shape=(5,), name="deep")
    h = layers.Dense(8, activation="relu")(b)
    m = fastnn.Model([a, b], layers.Dense(1)(layers.Concatenate()([a, h])))
    m.compile("sgd", "mse")
    return m


def test_train_on_batch_with_several_inputs():
    """train_on_batch takes a list of inputs like fit, evaluate and test_on_batch."""
    m = _wide_deep()
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((8, 3)), rng.standard_normal((8, 5))
    y = rng.standard_normal((8, 1))
    loss = m.train_on_batch([xa, xb], y)
    assert np.isfinite(loss)


def test_layer_called_twice_in_a_graph_predicts_correctly():
    """A layer at two places of a graph writes one output buffer: the graph keeps a copy of
    the first call's output."""
    fastnn.set_seed(0)
    a, b = fastnn.Input(shape=(3,), name="a"), fastnn.Input(shape=(3,), name="b")
    d = layers.Dense(2)
    m = fastnn.Model([a, b], layers.Add()([d(a), d(b)]))
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((4, 3)).astype("float32")
    xb = rng.standard_normal((4, 3)).astype("float32")
    np.testing.assert_allclose(m.predict([xa, xb], verbose=0), d(xa) + d(xb), rtol=1e-5)


def test_duplicate_layer_names_in_a_graph_are_refused():
    """Graph configs and files connect layers by name (Keras refuses non-unique names)."""
    fastnn.set_seed(0)
    i = fastnn.Input(shape=(3,), name="x")
    a = layers.Dense(4, name="d")(i)
    b = layers.Dense(4, activation="tanh", name="d")(a)
    with pytest.raises(ValueError, match="two layers are named 'd'"):
        fastnn.Model(i, layers.Dense(1, name="out")(layers.Concatenate()([a, b])))
    with pytest.raises(ValueError, match="two layers are named 'x'"):
        fastnn.Model(i, layers.Dense(1, name="x")(i))


def test_subclassing_model_directly_is_a_clear_error_and_sequential_subclasses_work():
    """fastnn.Model was Sequential's alias; a Model is now a Sequential or a graph, decided
    by its arguments, so a direct subclass is refused at class creation with the way out."""
    with pytest.raises(TypeError, match="subclass fastnn.Sequential"):
        class Net(fastnn.Model):
            def describe(self):
                return "net"

    class Stack(fastnn.Sequential):
        def describe(self):
            return "stack"
    m = Stack([layers.Input(shape=(3,)), layers.Dense(1)])
    m.compile("sgd", "mse")
    assert m.predict(np.ones((2, 3)), verbose=0).shape == (2, 1) and m.describe() == "stack"
    assert isinstance(m, fastnn.Model)


def test_model_with_inputs_none_is_an_error_and_an_unused_input_warns():
    out = layers.Dense(1)(fastnn.Input(shape=(2,)))
    with pytest.raises(TypeError, match="inputs must be Input"):
        fastnn.Model(None, out)
    a, b = fastnn.Input(shape=(2,), name="used"), fastnn.Input(shape=(2,), name="unused")
    with pytest.warns(UserWarning, match=r"does not depend on the input\(s\) \['unused'\]"):
        fastnn.Model([a, b], layers.Dense(1)(a))
