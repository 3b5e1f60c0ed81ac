"""Graphs with several outputs: per-output losses, loss_weights and metrics (Keras 3's
compile arguments as lists or dicts by output name), their gradients against finite
differences, Keras' log names, dict outputs, saving, and clear errors."""
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import layers

from conftest import numeric_grad


def two_headed(seed=0, aux_units=3, interior=False):
    """x -> h -> main (1 unit) and aux (softmax over ``aux_units``); with ``interior`` the
    aux output also feeds the main head (an output that is read inside the graph)."""
    fastnn.utils.set_random_seed(seed)
    inp = fastnn.Input(shape=(5,), name="x")
    h = layers.Dense(6, activation="tanh", name="h")(inp)
    aux = layers.Dense(aux_units, activation="softmax", name="aux")(h)
    main_in = layers.Concatenate(name="cat")([h, aux]) if interior else h
    main = layers.Dense(1, name="main")(main_in)
    return fastnn.Model(inp, [main, aux])


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5))
    return x, rng.standard_normal((n, 1)), rng.integers(0, 3, n)


@pytest.mark.parametrize("interior", [False, True], ids=["heads", "output-read-inside"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample-weights"])
def test_weighted_output_losses_have_finite_difference_gradients(float64_model, interior, weighted):
    model = two_headed(interior=interior)
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss=["mse", "sparse_categorical_crossentropy"],
                  loss_weights=[0.7, 0.3])
    x, y1, y2 = data(9)
    w = np.random.default_rng(3).uniform(0.2, 2.0, len(x)) if weighted else None
    targets = [model.loss[0].prepare_targets(y1, (None, 1), np.float64),
               model.loss[1].prepare_targets(y2, (None, 3), np.float64)]
    model._prepare_training()
    # the softmax + cross-entropy gradient is fused only where the output feeds nothing else
    assert model._heads.fused == [False, not interior]
    model._train_step(x, targets, w)

    def total():
        outs = model._forward(x, False)
        rows = [np.empty(len(x)), np.empty(len(x))]
        for loss, out, t, r in zip(model.loss, outs, targets, rows):
            loss.compute(np.array(out), t, None, False, r)
        scale = np.ones(len(x)) if w is None else w
        return (0.7 * rows[0] @ scale + 0.3 * rows[1] @ scale) / len(x)
    for v in model.trainable_weights:
        np.testing.assert_allclose(v.grad, numeric_grad(total, v.value), rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


def test_logs_and_evaluate_follow_keras_names_and_order():
    model = two_headed()
    model.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"], loss_weights=[0.9, 0.1],
                  metrics=[["mae"], ["accuracy"]])
    x, y1, y2 = data()
    history = model.fit(x, [y1, y2], epochs=2, verbose=0, validation_split=0.25)
    keys = ["loss", "main_loss", "aux_loss", "main_mae", "aux_accuracy"]
    assert list(history.history) == keys + ["val_" + k for k in keys] + ["learning_rate"]
    values = model.evaluate(x, [y1, y2], verbose=0)
    logs = model.evaluate(x, [y1, y2], verbose=0, return_dict=True)
    assert list(logs) == keys and values == list(logs.values())
    assert logs["loss"] == pytest.approx(0.9 * logs["main_loss"] + 0.1 * logs["aux_loss"], rel=1e-12)
    main, aux = model.predict(x, verbose=0)
    assert logs["main_loss"] == pytest.approx(float(np.mean((main - y1) ** 2)), rel=1e-5)
    assert logs["aux_accuracy"] == pytest.approx(float(np.mean(aux.argmax(1) == y2)))
    assert logs["aux_loss"] == pytest.approx(
        float(-np.mean(np.log(aux[np.arange(len(y2)), y2]))), rel=1e-5)


def test_a_flat_metric_list_applies_to_every_output_and_a_dict_to_one():
    model = two_headed(aux_units=1)
    model.compile("sgd", loss="mse", metrics=["mae"])  # one loss for both outputs, as Keras
    x, y1, _ = data()
    logs = model.evaluate(x, [y1, -y1], verbose=0, return_dict=True)
    assert list(logs) == ["loss", "main_loss", "aux_loss", "main_mae", "aux_mae"]
    model.compile("sgd", loss="mse", metrics={"aux": "mae"})
    assert list(model.evaluate(x, [y1, -y1], verbose=0, return_dict=True)) == [
        "loss", "main_loss", "aux_loss", "aux_mae"]


def test_loss_weight_zero_or_no_loss_leaves_that_head_untrained():
    x, y1, y2 = data()
    for how in ("zero weight", "no loss"):
        model = two_headed()
        if how == "zero weight":
            model.compile(fastnn.optimizers.SGD(0.1), loss=["mse", "sparse_categorical_crossentropy"],
                          loss_weights={"aux": 0.0})
        else:
            model.compile(fastnn.optimizers.SGD(0.1), loss={"main": "mse"})
        aux_before = [w.copy() for w in model.get_layer("aux").get_weights()]
        main_before = [w.copy() for w in model.get_layer("main").get_weights()]
        history = model.fit(x, {"main": y1, "aux": y2}, epochs=2, verbose=0)
        for a, b in zip(aux_before, model.get_layer("aux").get_weights()):
            np.testing.assert_array_equal(a, b, err_msg=how)
        assert any(not np.array_equal(a, b)
                   for a, b in zip(main_before, model.get_layer("main").get_weights()))
        assert ("aux_loss" in history.history) == (how == "zero weight")
        assert history.history["loss"] == pytest.approx(history.history["main_loss"])


def test_sample_weights_weigh_every_output_and_class_weight_is_refused():
    model = two_headed()
    model.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"])
    x, y1, y2 = data()
    w = np.linspace(0.0, 2.0, len(x))
    logs = model.evaluate(x, [y1, y2], sample_weight=w, verbose=0, return_dict=True)
    main, aux = model.predict(x, verbose=0)
    assert logs["main_loss"] == pytest.approx(float(np.sum(w * ((main - y1) ** 2)[:, 0]) / len(x)),
                                              rel=1e-5)
    assert logs["aux_loss"] == pytest.approx(
        float(-np.sum(w * np.log(aux[np.arange(len(y2)), y2])) / len(x)), rel=1e-5)
    with pytest.raises(ValueError, match="class_weight is only supported for models with a single output"):
        model.fit(x, [y1, y2], class_weight={0: 1.0, 1: 2.0}, verbose=0)


def test_dict_outputs_predict_a_dict_and_train_by_name(tmp_path):
    fastnn.utils.set_random_seed(0)
    inp = fastnn.Input(shape=(5,))
    h = layers.Dense(4, activation="relu")(inp)
    model = fastnn.Model(inp, {"price": layers.Dense(1)(h), "kind": layers.Dense(3, activation="softmax")(h)})
    assert model.output_names == ["price", "kind"]
    model.compile("adam", loss={"price": "mse", "kind": "sparse_categorical_crossentropy"},
                  metrics={"kind": ["accuracy"]})
    x, y1, y2 = data()
    history = model.fit(x, {"kind": y2, "price": y1}, epochs=1, verbose=0)
    assert list(history.history)[:4] == ["loss", "price_loss", "kind_loss", "kind_accuracy"]
    out = model.predict(x, verbose=0)
    assert list(out) == ["price", "kind"] and out["kind"].shape == (len(x), 3)
    assert list(model(x[:2])) == ["price", "kind"]
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load_model(tmp_path / "m.fnn")
    for k in out:
        np.testing.assert_array_equal(loaded.predict(x, verbose=0)[k], out[k])


def test_several_outputs_save_load_and_resume_bit_for_bit(tmp_path):
    model = two_headed()
    model.compile(fastnn.optimizers.Adam(1e-2), loss=["mse", "sparse_categorical_crossentropy"],
                  loss_weights=[0.8, 0.2], metrics=[["RootMeanSquaredError"], ["accuracy"]])
    x, y1, y2 = data()
    model.fit(x, [y1, y2], epochs=2, verbose=0)
    model.save(tmp_path / "m.fnn")
    loaded = fastnn.load_model(tmp_path / "m.fnn")
    assert loaded.get_compile_config()["loss_weights"] == [0.8, 0.2]
    a = model.fit(x, [y1, y2], epochs=2, verbose=0, shuffle=False).history
    b = loaded.fit(x, [y1, y2], epochs=2, verbose=0, shuffle=False).history
    assert a == b
    for p, q in zip(model.predict(x, verbose=0), loaded.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    copied = pickle.loads(pickle.dumps(model))
    for p, q in zip(model.predict(x, verbose=0), copied.predict(x, verbose=0)):
        np.testing.assert_array_equal(p, q)
    rebuilt = fastnn.models.model_from_json(model.to_json())
    assert rebuilt.output_names == ["main", "aux"]
    assert [s for s in rebuilt.output_shape] == [(None, 1), (None, 3)]
    clone = fastnn.models.clone_model(model)
    assert [p.shape for p in clone.predict(x, verbose=0)] == [(len(x), 1), (len(x), 3)]


def test_generators_validation_data_and_mc_dropout_with_several_outputs():
    fastnn.utils.set_random_seed(0)
    inp = fastnn.Input(shape=(5,))
    h = layers.Dropout(0.5)(layers.Dense(8, activation="relu")(inp))
    model = fastnn.Model(inp, [layers.Dense(1, name="a")(h), layers.Dense(2, name="b")(h)])
    model.compile("sgd", loss="mse")
    x, y1, _ = data()
    y2 = np.hstack([y1, -y1])

    def batches():
        for lo in range(0, len(x), 10):
            yield x[lo:lo + 10], (y1[lo:lo + 10], y2[lo:lo + 10])
    history = model.fit(batches(), epochs=1, verbose=0, validation_data=(x, [y1, y2]))
    assert {"loss", "a_loss", "b_loss", "val_loss", "val_a_loss", "val_b_loss"} <= set(history.history)
    mean, std = model.predict(x, mc_samples=5)
    assert [m.shape for m in mean] == [(len(x), 1), (len(x), 2)]
    assert all(np.all(s > 0) for s in std)  # dropout sampled in every pass


def test_wrong_compile_arguments_and_targets_name_the_outputs():
    model = two_headed()
    x, y1, y2 = data()
    with pytest.raises(ValueError, match=r"has 2 outputs \['main', 'aux'\] but loss has 3 entries"):
        model.compile("sgd", loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match=r"loss names \['other'\], which are not outputs"):
        model.compile("sgd", loss={"other": "mse"})
    with pytest.raises(ValueError, match="needs a loss for at least one of its outputs"):
        model.compile("sgd", loss={})
    with pytest.raises(ValueError, match="loss_weights for output 'aux' must be a finite number >= 0"):
        model.compile("sgd", loss="mse", loss_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="metrics has 1 lists; give one list per output"):
        model.compile("sgd", loss="mse", metrics=[["mae"]])
    model.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"])
    with pytest.raises(ValueError, match=r"has 2 outputs \['main', 'aux'\]: y must be a list"):
        model.fit(x, y1, verbose=0)
    with pytest.raises(ValueError, match=r"no targets for \['aux'\]"):
        model.fit(x, {"main": y1}, verbose=0)
    with pytest.raises(ValueError, match=r"unknown output name\(s\) \['extra'\]"):
        model.fit(x, {"main": y1, "aux": y2, "extra": y1}, verbose=0)
    with pytest.raises(ValueError, match="output 'aux'"):
        model.fit(x, [y1, np.full(len(x), 7)], verbose=0)  # a class index out of range
    with pytest.raises(ValueError, match="y for output 'main' has 39"):
        model.fit(x, [y1[:-1], y2], verbose=0)


def test_one_output_models_keep_refusing_loss_weights():
    model = fastnn.Sequential([fastnn.Input(shape=(3,)), layers.Dense(1)])
    with pytest.raises(ValueError, match="loss_weights is for models with several outputs"):
        model.compile("sgd", "mse", [0.5])


def test_one_output_tools_say_they_take_one_output():
    model = two_headed()
    model.compile("sgd", loss=["mse", "sparse_categorical_crossentropy"])
    x, y1, y2 = data()
    for tool in (fastnn.utils.sanity_check, fastnn.utils.find_learning_rate):
        with pytest.raises(NotImplementedError, match="has several outputs: this tool takes models"):
            tool(model, x, [y1, y2])
