"""Transfer learning: sharing layers between models, cloning, freezing (frozen weights stay
bit-for-bit, frozen layers get no weight gradients and layers below the lowest trainable one
get no backward call at all), and frozen BatchNormalization in inference mode."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers
from fastnn.datasets import load_digits


@pytest.fixture(scope="module")
def digits():
    (x, y), _ = load_digits()
    return x[:200], y[:200]


def base_model(seed=0, depth=3, width=16, optimizer=None):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input(shape=(64,))]
                              + [layers.Dense(width, activation="relu", kernel_regularizer="l2",
                                              kernel_constraint="max_norm") for _ in range(depth)]
                              + [layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer or optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def count_backward(model):
    counts = {}
    for layer in model.layers:
        inner = layer.backward

        def wrapped(dy, need_dx=True, _inner=inner, _name=layer.name):
            counts[_name] = counts.get(_name, 0) + 1
            return _inner(dy, need_dx)
        layer.backward = wrapped  # instance attribute shadows the method
    return counts


def test_sequential_of_layers_shares_them(digits):
    x, y = digits
    model_a = base_model()
    model_a.fit(x, y, epochs=1, verbose=0)
    model_b = fastnn.Sequential(model_a.layers[:-1])
    model_b.add(layers.Dense(5, activation="softmax"))
    for la, lb in zip(model_a.layers[:-1], model_b.layers[:-1]):
        assert la is lb
    assert model_b.input_shape == (None, 64)
    model_b.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    before = model_a.layers[0].kernel.numpy()
    model_b.fit(x, y % 5, epochs=1, verbose=0)
    # the shared kernel was trained through model_b: model_a sees the change
    assert model_a.layers[0].kernel is model_b.layers[0].kernel
    assert not np.array_equal(model_a.layers[0].kernel.value, before)


def test_clone_model_and_set_weights_copy(digits):
    x, y = digits
    model_a = base_model()
    model_a.fit(x, y, epochs=1, verbose=0)
    clone = fastnn.models.clone_model(model_a)
    assert [type(l) for l in clone.layers] == [type(l) for l in model_a.layers]
    assert all(lc is not la for lc, la in zip(clone.layers, model_a.layers))
    assert {l.name for l in clone.layers}.isdisjoint(l.name for l in model_a.layers)
    # fresh weights, same shapes, same configuration
    assert not np.array_equal(clone.get_weights()[0], model_a.get_weights()[0])
    assert [w.shape for w in clone.get_weights()] == [w.shape for w in model_a.get_weights()]
    assert clone.layers[0].kernel_regularizer.get_config() == {"l2": 0.01}
    clone.set_weights(model_a.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0), model_a.predict(x, verbose=0))
    # copies, not views: training the clone leaves model_a alone
    snapshot = model_a.get_weights()
    clone.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    clone.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(snapshot, model_a.get_weights()))


@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_frozen_weights_bit_for_bit_and_no_backward_below(digits, opt):
    x, y = digits
    make = {"sgd": lambda: optimizers.SGD(0.05, momentum=0.9),
            "adamw": lambda: getattr(optimizers, "AdamW", optimizers.SGD)(0.01, weight_decay=0.1)}
    model = base_model(optimizer=make[opt]())
    model.fit(x, y, epochs=1, verbose=0)  # optimizer state exists for every variable
    frozen = model.layers[:2]
    for layer in frozen:
        layer.trainable = False
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 4
    snapshot = [layer.get_weights() for layer in frozen]
    top_before = model.layers[2].kernel.numpy()
    counts = count_backward(model)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    for layer, ws in zip(frozen, snapshot):
        for w, v in zip(ws, layer.get_weights()):
            assert np.array_equal(w, v)  # regularizer, constraint and weight decay included
    assert not np.array_equal(top_before, model.layers[2].kernel.value)
    steps = 2 * int(np.ceil(len(x) / 32))
    names = [l.name for l in model.layers]
    # backprop stops at the lowest trainable layer: the frozen ones are never called
    assert counts.get(names[0], 0) == 0 and counts.get(names[1], 0) == 0
    assert counts[names[2]] == counts[names[3]] == steps
    # unfreeze: they train again
    for layer in frozen:
        layer.trainable = True
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(snapshot[0][0], frozen[0].kernel.value)


def test_frozen_middle_layer_skips_its_weight_gradients(digits):
    """A frozen layer between trainable ones still passes the gradient down but computes no
    gradient for its own weights (its grad buffers are never written)."""
    x, y = digits
    model = base_model()
    middle = model.layers[1]
    middle.trainable = False
    middle.kernel.grad[...] = np.nan  # sentinel: any write would replace it
    middle.bias.grad[...] = np.nan
    snapshot = middle.get_weights()
    counts = count_backward(model)
    bottom_before = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=1, verbose=0)
    assert np.isnan(middle.kernel.grad).all() and np.isnan(middle.bias.grad).all()
    assert all(np.array_equal(a, b) for a, b in zip(snapshot, middle.get_weights()))
    assert counts[middle.name] > 0  # still on the backward path ...
    assert not np.array_equal(bottom_before, model.layers[0].kernel.value)  # ... to layer 0


MIDDLE_LAYERS = {
    "dense": lambda: layers.Dense(16, activation="tanh"),
    "maxout": lambda: layers.Maxout(16, pieces=2),
    "prelu": lambda: layers.PReLU(),
    "batchnorm": lambda: layers.BatchNormalization(),
    "layernorm": lambda: layers.LayerNormalization(),
    "dropconnect": lambda: layers.DropConnectDense(16, rate=0.2),
}


@pytest.mark.parametrize("kind", sorted(MIDDLE_LAYERS))
def test_every_frozen_layer_type_skips_weight_gradients(digits, kind):
    x, y = digits
    fastnn.set_seed(0)
    middle = MIDDLE_LAYERS[kind]()
    model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                               middle, layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    middle.trainable = False
    for v in middle.weights:
        if v.grad is not None:
            v.grad[...] = np.nan  # sentinel: a computed weight gradient would overwrite it
    snapshot = middle.get_weights()
    bottom = model.layers[0].kernel.numpy()
    model.fit(x, y, epochs=1, batch_size=50, verbose=0)
    assert all(v.grad is None or np.isnan(v.grad).all() for v in middle.weights)
    for a, b in zip(snapshot, middle.get_weights()):
        assert np.array_equal(a, b)  # BN's moving statistics included (inference mode)
    assert not np.array_equal(bottom, model.layers[0].kernel.value)  # gradient went through


def test_frozen_model_and_frozen_prelu(digits):
    x, y = digits
    model = base_model()
    model.trainable = False
    snapshot = model.get_weights()
    counts = count_backward(model)
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(snapshot, model.get_weights()))
    assert not counts  # nothing to train: no backward pass at all
    fastnn.set_seed(0)
    pm = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(8), layers.PReLU(),
                            layers.Dense(10, activation="softmax")])
    pm.layers[1].alpha.assign(np.full(8, 0.1))
    pm.layers[1].trainable = False
    pm.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    pm.fit(x, y, epochs=1, verbose=0)
    assert np.array_equal(pm.layers[1].alpha.value, np.full(8, 0.1, np.float32))


def test_fine_tune_with_lower_learning_rate(digits):
    """The transfer recipe end to end: freeze, train the head, unfreeze, recompile with a lower
    learning rate and fine-tune; everything moves only when it should."""
    x, y = digits
    model_a = base_model()
    model_a.fit(x, y, epochs=1, verbose=0)
    base = fastnn.models.clone_model(model_a)
    base.set_weights(model_a.get_weights())
    model_b = fastnn.Sequential(base.layers[:-1] + [layers.Dense(5, activation="softmax")])
    for layer in model_b.layers[:-1]:
        layer.trainable = False
    model_b.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    frozen_before = model_b.layers[0].kernel.numpy()
    model_b.fit(x, y % 5, epochs=1, verbose=0)
    assert np.array_equal(frozen_before, model_b.layers[0].kernel.value)
    for layer in model_b.layers:
        layer.trainable = True
    model_b.compile(optimizer=optimizers.SGD(0.001), loss="sparse_categorical_crossentropy")
    model_b.fit(x, y % 5, epochs=1, verbose=0)
    assert not np.array_equal(frozen_before, model_b.layers[0].kernel.value)
    # the clone was fine-tuned, model_a (copied from, not shared) was not
    assert not np.array_equal(model_a.layers[0].kernel.value, base.layers[0].kernel.value)


requires_bn = pytest.mark.skipif(not hasattr(layers, "BatchNormalization"),
                                 reason="BatchNormalization not available yet")


@requires_bn
def test_frozen_batchnorm_runs_in_inference_mode(digits):
    x, y = digits
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16),
                               layers.BatchNormalization(), layers.Activation("relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)  # moving statistics move away from their init
    bn = model.layers[1]
    bn.trainable = False
    assert bn.non_trainable_weights and not bn.trainable_weights
    stats = bn.get_weights()
    # training=True on a frozen BN uses the moving statistics (Keras 3): same as inference
    np.testing.assert_array_equal(model(x[:32], training=True), model(x[:32], training=False))
    model.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(stats, bn.get_weights()):
        assert np.array_equal(a, b)  # gamma, beta and the moving statistics


def test_layer_used_twice_refuses_to_train_instead_of_wrong_gradients():
    # Each layer caches its forward inputs for its backward; at its second position it
    # overwrote the first position's cache and its weight gradient, so fit() trained on a
    # wrong gradient (measured: kernel gradient off by 0.38 where it is 0.5). Prediction is
    # right and keeps working.
    import fastnn
    from fastnn import layers
    rng = np.random.default_rng(0)
    shared = layers.Dense(4, activation="tanh")
    model = fastnn.Sequential([layers.Input(shape=(4,)), shared, shared])
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    w, b = shared.kernel.numpy().astype(np.float64), shared.bias.numpy().astype(np.float64)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.tanh(np.tanh(x @ w + b) @ w + b),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="more than once"):
        model.fit(x, y, epochs=1, verbose=0)
    with pytest.raises(NotImplementedError, match="more than once"):
        model.train_on_batch(x, y)
