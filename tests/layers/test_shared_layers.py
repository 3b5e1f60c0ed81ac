"""A layer called at several places of a graph (shared weights, Keras semantics): its weight
gradient is the sum over its calls (float64 finite differences, and bit for bit against the
unrolled graph with one layer per call), BatchNormalization updates its moving statistics
at every call, a dropout layer draws a mask per call, and the sharing survives save/load,
clone_model and the JSON config (one weight set, one config entry with several
inbound_nodes)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.functional import Functional

from conftest import model_gradient_check


def calls_of(model, layer):
    return sum(node.layer is layer for node in model._nodes)


def test_shared_dense_and_batchnorm_gradients_match_finite_differences(float64_model):
    """One Dense on two inputs (siamese), one Dense applied twice in a row, one
    BatchNormalization on two tensors: three kinds of sharing in one graph."""
    rng = np.random.default_rng(0)
    in1, in2 = fastnn.Input(shape=(5,), name="left"), fastnn.Input(shape=(5,), name="right")
    tower = layers.Dense(4, activation="tanh", name="tower")
    bn = layers.BatchNormalization(name="bn")
    a, b = bn(tower(in1)), bn(tower(in2))
    twice = layers.Dense(8, activation="sigmoid", name="twice")
    h = twice(twice(layers.Concatenate()([a, b])))
    model = fastnn.Model([in1, in2], layers.Dense(2, name="head")(h))
    assert [calls_of(model, layer) for layer in (tower, bn, twice)] == [2, 2, 2]
    x = [rng.standard_normal((9, 5)), rng.standard_normal((9, 5))]
    model_gradient_check(model, x, rng.standard_normal((9, 2)), training=True)


def _graph(kind, unrolled):
    """The graph ``kind`` with its shared layer "s", or (unrolled) with one layer per call,
    "s_a" for the first call and "s_b" for the second."""
    def shared(make):
        if unrolled:
            return make("s_a"), make("s_b")
        layer = make("s")
        return layer, layer
    if kind in ("siamese", "activity"):
        reg = "l2" if kind == "activity" else None
        first, second = shared(lambda n: layers.Dense(5, activation="tanh", name=n,
                                                      activity_regularizer=reg))
        in1, in2 = fastnn.Input(shape=(4,), name="left"), fastnn.Input(shape=(4,), name="right")
        cat = layers.Concatenate(name="cat")([first(in1), second(in2)])
        return fastnn.Model([in1, in2], layers.Dense(1, name="head")(cat))
    inp = fastnn.Input(shape=(4,), name="x")
    if kind == "chain":
        first, second = shared(lambda n: layers.Dense(4, activation="tanh", name=n))
        return fastnn.Model(inp, layers.Dense(1, name="head")(second(first(inp))))
    if kind == "softmax_chain":  # the output call's gradient is the fused softmax one
        first, second = shared(lambda n: layers.Dense(4, activation="softmax", name=n))
        return fastnn.Model(inp, second(first(layers.Dense(4, name="pre")(inp))))
    if kind == "dropout":
        first, second = shared(lambda n: layers.Dropout(0.5, seed=7, name=n))
        h = layers.Dense(6, activation="relu", name="pre")(inp)
        cat = layers.Concatenate(name="cat")([first(h), second(h)])
        return fastnn.Model(inp, layers.Dense(1, name="head")(cat))
    if kind == "batchnorm":
        first, second = shared(lambda n: layers.BatchNormalization(name=n))
        in1, in2 = fastnn.Input(shape=(4,), name="left"), fastnn.Input(shape=(4,), name="right")
        cat = layers.Concatenate(name="cat")([first(in1), second(in2)])
        return fastnn.Model([in1, in2], layers.Dense(1, name="head")(cat))
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["siamese", "chain", "softmax_chain", "dropout", "batchnorm",
                                  "activity"])
def test_shared_layer_gradient_is_the_sum_over_its_calls_bit_for_bit(float64_model, kind):
    """The shared graph against the unrolled one (one layer per call, the same initial
    weights): same loss, same outputs, and the shared weights' gradient is the sum of the
    unrolled layers' gradients."""
    rng = np.random.default_rng(1)
    fastnn.set_seed(1)
    shared = _graph(kind, unrolled=False)
    unrolled = _graph(kind, unrolled=True)
    two_inputs = kind in ("siamese", "activity", "batchnorm")
    x = [rng.standard_normal((16, 4)) for _ in range(2)] if two_inputs \
        else rng.standard_normal((16, 4))
    if kind == "softmax_chain":
        loss, y = "categorical_crossentropy", np.eye(4)[rng.integers(0, 4, 16)]
    else:
        loss, y = "mse", rng.standard_normal((16, 1))
    for layer in unrolled.layers:  # tied initial weights
        source = shared.get_layer(layer.name[:-2] if layer.name in ("s_a", "s_b") else layer.name)
        layer.set_weights(source.get_weights())
    if kind == "dropout":  # the shared layer's second call draws its mask with counter 1
        unrolled.get_layer("s_b")._calls = 1
    for model in (shared, unrolled):
        model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss=loss)
    # (with activity penalties the shared layer's two are summed before they join the loss)
    assert shared.train_on_batch(x, y) == pytest.approx(unrolled.train_on_batch(x, y),
                                                        rel=1e-14)
    grads = {v.path: v.grad for v in unrolled.trainable_weights}
    assert grads
    for v in shared.trainable_weights:
        if v.layer.name == "s":
            want = grads[f"s_a/{v.name}"] + grads[f"s_b/{v.name}"]
        else:
            want = grads[v.path]
        np.testing.assert_array_equal(v.grad, want, err_msg=v.path)
    # inference is unchanged (not with BatchNormalization: the shared layer's moving
    # statistics took both calls' updates, each unrolled layer one)
    if kind != "batchnorm":
        assert np.array_equal(shared.predict(x, verbose=0), unrolled.predict(x, verbose=0))


def test_a_shared_batchnorm_updates_its_moving_statistics_at_every_call(float64_model):
    rng = np.random.default_rng(2)
    model = _graph("batchnorm", unrolled=False)
    bn = model.get_layer("s")
    x = [rng.standard_normal((32, 4)) + 3.0, rng.standard_normal((32, 4)) - 1.0]
    model(x, training=True)
    mean = np.zeros(4)
    for xi in x:  # the calls in graph order, each a Keras moving-average update
        mean = mean * bn.momentum + xi.mean(axis=0) * (1 - bn.momentum)
    np.testing.assert_allclose(bn.moving_mean.numpy(), mean, rtol=1e-12)


def test_a_shared_dropout_draws_an_independent_mask_per_call():
    inp = fastnn.Input(shape=(64,))
    drop = layers.Dropout(0.5, seed=3)
    model = fastnn.Model(inp, layers.Concatenate()([drop(inp), drop(inp)]))
    out = model(np.ones((8, 64), np.float32), training=True)
    first, second = out[:, :64], out[:, 64:]
    assert 0 < (first == 0).mean() < 1 and 0 < (second == 0).mean() < 1
    assert not np.array_equal(first == 0, second == 0)


def siamese(seed=0):
    """A siamese regressor: one tower on both inputs, the head on |a - b|-like features."""
    fastnn.set_seed(seed)
    in1, in2 = fastnn.Input(shape=(6,), name="left"), fastnn.Input(shape=(6,), name="right")
    hidden = layers.Dense(16, activation="relu", name="tower_hidden")
    embed = layers.Dense(8, name="tower_embed")
    bn = layers.BatchNormalization(name="tower_bn")
    a, b = bn(embed(hidden(in1))), bn(embed(hidden(in2)))
    diff = layers.Subtract()([a, b])
    out = layers.Dense(1, name="head")(layers.Concatenate()([diff, layers.Multiply()([diff, diff])]))
    model = fastnn.Model([in1, in2], out)
    model.compile(optimizer=fastnn.optimizers.Adam(3e-3), loss="mse")
    return model


def siamese_data(n=256):
    rng = np.random.default_rng(4)
    x1 = rng.standard_normal((n, 6)).astype(np.float32)
    x2 = rng.standard_normal((n, 6)).astype(np.float32)
    return [x1, x2], np.abs(x1 - x2).sum(axis=1, keepdims=True) / 6


def test_a_siamese_model_trains():
    x, y = siamese_data()
    model = siamese()
    tower = model.get_layer("tower_hidden")
    assert calls_of(model, tower) == 2 and len(model.trainable_weights) == 8
    before = tower.get_weights()
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    assert not np.array_equal(before[0], tower.get_weights()[0])
    assert model.evaluate(x, y, verbose=0) < losses[0]


def test_a_graph_with_shared_layers_saves_loads_and_resumes_bit_for_bit(tmp_path):
    x, y = siamese_data(128)
    full = siamese(seed=5)
    full.fit(x, y, epochs=4, batch_size=32, verbose=0)
    model = siamese(seed=5)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    model.save(tmp_path / "siamese.keras")
    loaded = fastnn.load_model(tmp_path / "siamese.keras")
    assert type(loaded) is Functional
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert len(loaded.weights) == len(model.weights)  # one weight set per shared layer
    assert calls_of(loaded, loaded.get_layer("tower_hidden")) == 2
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    loaded.fit(x, y, epochs=2, batch_size=32, verbose=0)
    for a, b in zip(full.get_weights(), loaded.get_weights()):
        assert np.array_equal(a, b)


def test_clone_pickle_and_json_keep_a_shared_layer_shared():
    import pickle
    model = siamese()
    x, _ = siamese_data(8)
    want = model.predict(x, verbose=0)
    clone = fastnn.clone_model(model)
    again = fastnn.models.model_from_json(model.to_json())
    twin = pickle.loads(pickle.dumps(model))
    for copy in (clone, again, twin):
        assert copy.count_params() == model.count_params()
        assert len(copy.weights) == len(model.weights)
        assert [calls_of(copy, copy.get_layer(n)) for n in ("tower_hidden", "tower_bn")] == [2, 2]
        assert copy.get_config()["layers"] == model.get_config()["layers"]
    assert np.array_equal(twin.predict(x, verbose=0), want)
    again.set_weights(model.get_weights())
    assert np.array_equal(again.predict(x, verbose=0), want)


def test_config_lists_a_shared_layer_once_with_one_inbound_node_per_call():
    """Keras 3's layout: the layer once, ``inbound_nodes`` one entry per call; the output of
    a later call is named [layer, call] (Keras' [layer, call, 0] is read too)."""
    inp = fastnn.Input(shape=(4,), name="x")
    s = layers.Dense(4, activation="tanh", name="s")
    model = fastnn.Model(inp, s(s(inp)))
    config = model.get_config()
    assert [spec["name"] for spec in config["layers"]] == ["x", "s"]
    assert config["layers"][1]["inbound"] == ["x"]
    assert config["layers"][1]["inbound_nodes"] == [["x"], ["s"]]
    assert config["output_layers"] == [["s", 1]]
    keras_style = dict(config, output_layers=[["s", 1, 0]])
    rebuilt = Functional.from_config(keras_style)
    assert calls_of(rebuilt, rebuilt.get_layer("s")) == 2 and rebuilt.count_params() == 20
    with pytest.raises(ValueError, match=r"layer name or \[name, call index\]"):
        Functional.from_config(dict(config, output_layers=[["s", "1"]]))
    broken = dict(config, layers=[config["layers"][0],
                                  dict(config["layers"][1], inbound_nodes=[["x"], [["s", 2]]])])
    with pytest.raises(ValueError, match=r"layers \['s'\] read layers that are not in the config"):
        Functional.from_config(broken)


def test_a_layer_listed_late_is_still_built_in_the_saved_order(tmp_path):
    """The shared layer's second call waits for a layer listed after it, while a later
    layer ("side") is ready at once: loading checks the weights in the order the file lists
    them, so the rebuilt graph must create them in that order too."""
    fastnn.set_seed(6)
    inp = fastnn.Input(shape=(3,), name="x")
    s = layers.Dense(3, activation="tanh", name="s")
    late = layers.Dense(2, name="late")
    out = layers.Concatenate(name="cat")([late(s(layers.Dense(3, name="mid")(s(inp)))),
                                          layers.Dense(5, name="side")(inp)])
    model = fastnn.Model(inp, out)
    model.save(tmp_path / "late.keras")
    loaded = fastnn.load_model(tmp_path / "late.keras")
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    x = np.random.default_rng(7).standard_normal((4, 3)).astype(np.float32)
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
