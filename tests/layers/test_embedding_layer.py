"""layers.Embedding: Keras 3's shapes, defaults and config; the gradient by finite
differences; bad codes; weights that behave as Dense's (regularizers, constraints, freezing,
saving, pickling, cloning); and tabular models (Sequential and graphs) that learn."""
import pickle

import numpy as np
import pytest

import fastnn
from fastnn import initializers, layers

from conftest import C, numeric_grad

BACKENDS = ["numpy"] + (["c"] if C is not None else [])


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    fastnn.set_backend(request.param)  # conftest's autouse fixture restores it
    return request.param


def _category_data(rng, n, categories=30, classes=3, width=2):
    """Codes of ``width`` categorical columns; the label is a fixed function of column 0's
    category alone (a random class per category), so only a model that gives each category
    its own trained vector can learn it."""
    table = rng.integers(0, classes, categories)
    x = rng.integers(0, categories, (n, width))
    return x, table[x[:, 0]], table


# ---- Keras semantics -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(5,), (5, 3), (5, 3, 2)])
def test_output_shape_is_input_shape_plus_output_dim(shape):
    layer = layers.Embedding(10, 4)
    x = np.random.default_rng(0).integers(0, 10, shape)
    y = layer(x)
    assert y.shape == shape + (4,)
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + shape[1:] + (4,)
    np.testing.assert_array_equal(y, layer.embeddings.value[x])


def test_defaults_are_keras_uniform_table_of_input_dim_rows():
    layer = layers.Embedding(1000, 16)
    layer(np.array([[1, 2]]))
    table = layer.embeddings.value
    assert table.shape == (1000, 16) and table.dtype == np.float32
    assert layer.embeddings.name == "embeddings" and layer.embeddings.trainable
    # RandomUniform(-0.05, 0.05): the bounds, and the spread of a uniform (0.1 / sqrt(12))
    assert table.min() >= -0.05 and table.max() <= 0.05
    assert abs(table.std() - 0.1 / np.sqrt(12)) < 0.002 and abs(table.mean()) < 0.002
    config = layer.get_config()
    assert config["embeddings_initializer"] == {
        "class_name": "random_uniform", "config": {"minval": -0.05, "maxval": 0.05, "seed": None}}
    assert config["mask_zero"] is False and config["embeddings_regularizer"] is None
    assert isinstance(initializers.get("uniform"), initializers.RandomUniform)
    assert isinstance(initializers.get("normal"), initializers.RandomNormal)


def test_sequential_summary_and_output_shape_of_tabular_stack():
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Embedding(100, 8),
                               layers.Flatten(), layers.Dense(1)])
    assert model.layers[0].output_shape == (None, 3, 8)
    assert model.layers[1].output_shape == (None, 24)
    assert model.count_params() == 100 * 8 + 24 + 1
    lines = []
    model.summary(print_fn=lines.append)
    assert any("Embedding" in line and "(None, 3, 8)" in line and "800" in line for line in lines)


def test_float_and_integer_codes_give_the_same_rows(backend_name):
    layer = layers.Embedding(50, 3)
    codes = np.array([[0, 49, 7], [7, 7, 1]])
    a = layer(codes)
    b = layer(codes.astype(np.float32))
    c = layer(codes.astype(np.float64))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a[1, 0], a[0, 2])


def test_weights_argument_sets_the_initial_table():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = layers.Embedding(4, 3, weights=[table])
    np.testing.assert_array_equal(layer.get_weights()[0], table)
    np.testing.assert_array_equal(layer(np.array([[3, 0]])), table[[[3, 0]]])
    # the bare array, as Keras accepts too
    np.testing.assert_array_equal(layers.Embedding(4, 3, weights=table).get_weights()[0], table)
    with pytest.raises(ValueError, match="shape"):
        layers.Embedding(5, 3, weights=[table])


def test_mask_zero_is_accepted_saved_and_computes_keras_mask():
    layer = layers.Embedding(5, 2, mask_zero=True)
    x = np.array([[0, 3], [4, 0]])
    y = layer(x)  # code 0 is looked up as any other (no masking downstream in fastnn)
    np.testing.assert_array_equal(y[0, 0], layer.embeddings.value[0])
    np.testing.assert_array_equal(layer.compute_mask(x), x != 0)
    assert layers.Embedding(5, 2).compute_mask(x) is None
    clone = layers.Embedding.from_config(layer.get_config())
    assert clone.mask_zero is True


def test_input_length_of_keras_2_is_ignored_with_a_warning():
    with pytest.warns(UserWarning, match="input_length"):
        layer = layers.Embedding(10, 2, input_length=4)
    assert layer(np.zeros((2, 4))).shape == (2, 4, 2)


# ---- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad,why", [(-1, "is negative"), (10, ">= input_dim=10"),
                                     (2.5, "is not an integer"), (np.nan, "missing value")])
def test_bad_code_is_an_error_naming_layer_value_and_position(backend_name, bad, why):
    layer = layers.Embedding(10, 2, name="city_embedding")
    x = np.array([[1, 2, 3], [4, 5, 6]], np.float32)
    x[1, 2] = bad
    shown = {-1: "-1.0", 10: "10.0", 2.5: "2.5"}.get(bad, "nan")
    with pytest.raises(ValueError) as info:
        layer(x)
    message = str(info.value)
    assert "Embedding 'city_embedding'" in message
    assert f"code {shown} at position [1, 2]" in message and why in message
    assert "[0, 10)" in message


def test_bad_code_stops_fit_and_predict_before_any_step(backend_name):
    rng = np.random.default_rng(0)
    model = fastnn.Sequential([layers.Input(shape=(2,)), layers.Embedding(5, 2, name="emb"),
                               layers.Flatten(), layers.Dense(1)])
    model.compile("sgd", "mse")
    before = model.get_weights()
    x = rng.integers(0, 5, (64, 2))
    x[40, 1] = 5
    # in order and in one batch, so that the batch's row is the array's row
    for call in (lambda: model.fit(x, np.zeros(64), batch_size=64, shuffle=False, verbose=0),
                 lambda: model.predict(x, verbose=0)):
        with pytest.raises(ValueError, match=r"Embedding 'emb': the code 5(\.0)? at position \[40, 1\]"):
            call()
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_constructor_and_rank_errors():
    with pytest.raises(NotImplementedError, match="LoRA"):
        layers.Embedding(10, 2, lora_rank=4)
    with pytest.raises(NotImplementedError, match="LoRA"):
        layers.Embedding(10, 2).enable_lora(4)
    for dims in [(0, 2), (10, 0), (2.5, 2), (10, "8")]:
        with pytest.raises(ValueError, match="must be a positive integer"):
            layers.Embedding(*dims)
    with pytest.raises(ValueError, match="batch axis"):
        layers.Embedding(10, 2)(np.float32(3))
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 3\)"):
        layer = layers.Embedding(10, 2)
        layer(np.zeros((2, 3)))
        layer(np.zeros((2, 3, 1)))
    # float32 carries integers exactly up to 2**24 only: a larger float32 table is refused
    with pytest.raises(ValueError, match="float32 can hold exactly"):
        layers.Embedding(2 ** 24 + 1, 1)(np.zeros((1, 1)))
    with pytest.raises(AttributeError, match="build the layer"):
        layers.Embedding(10, 2).embeddings


# ---- gradients ---------------------------------------------------------------------------
def test_layer_gradient_matches_finite_differences(float64_model, backend_name):
    """L = sum(forward(x) * w) with repeated codes: dL/dtable by central differences."""
    rng = np.random.default_rng(5)
    layer = layers.Embedding(6, 3, activity_regularizer=fastnn.regularizers.L2(0.3))
    x = np.array([[1, 4, 1], [1, 0, 5], [4, 4, 1]], np.float64)  # row 2 and 3 unused
    layer._maybe_build((None, 3))
    w = rng.standard_normal((3, 3, 3))
    layer.forward(x, True)
    dx = layer.backward(w.copy(), True)
    grad = layer.embeddings.grad.copy()

    def loss():
        y = np.array(layer.forward(x, True))
        return float((y * w).sum()) + layer._activity_loss

    np.testing.assert_allclose(grad, numeric_grad(loss, layer.embeddings.value), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(grad[[2, 3]], 0)
    np.testing.assert_array_equal(dx, 0)  # piecewise constant in the codes


def test_whole_tabular_model_gradient(float64_model, backend_name):
    """Every weight of codes -> Embedding -> Flatten -> Dense -> softmax, against central
    differences of the training loss (sparse cross-entropy, fused gradient)."""
    rng = np.random.default_rng(11)
    model = fastnn.Sequential([
        layers.Input(shape=(4,)),
        layers.Embedding(7, 3, embeddings_initializer=initializers.RandomNormal(stddev=0.5)),
        layers.Flatten(),
        layers.Dense(5, activation="tanh"),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x = rng.integers(0, 7, (9, 4)).astype(np.float64)
    x[:, 1] = 2  # one category in every row
    y = rng.integers(0, 3, 9)
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)
    model._prepare_training()
    model._train_step(x, t)  # lr 0: computes the gradients, leaves the weights
    for v in model.trainable_weights:
        f = lambda: model.loss.compute(np.array(model._forward(x, False)), t) / len(x)
        np.testing.assert_allclose(v.grad, numeric_grad(f, v.value), rtol=1e-5, atol=1e-8,
                                   err_msg=v.path)


# ---- weights behave as Dense's ------------------------------------------------------------
def _tabular_model(seed=0, **embedding_kwargs):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input(shape=(2,)), layers.Embedding(30, 4, **embedding_kwargs),
                               layers.Flatten(), layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(0.02), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def test_frozen_embedding_keeps_its_table_while_the_rest_trains():
    rng = np.random.default_rng(1)
    x, y, _ = _category_data(rng, 300)
    model = _tabular_model()
    model.layers[0].trainable = False
    table, dense = model.layers[0].get_weights()[0], model.layers[2].get_weights()[0]
    assert len(model.trainable_weights) == 4
    model.fit(x, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model.layers[0].get_weights()[0], table)
    assert not np.array_equal(model.layers[2].get_weights()[0], dense)


def test_regularizer_and_constraint_apply_to_the_table():
    rng = np.random.default_rng(2)
    x, y, _ = _category_data(rng, 300)
    model = _tabular_model(embeddings_regularizer=fastnn.regularizers.L2(0.5),
                           embeddings_constraint=fastnn.constraints.MaxNorm(0.2, axis=1))
    plain = _tabular_model()  # the same seed: the same initial weights, no penalty
    table = model.layers[0].embeddings.value
    np.testing.assert_array_equal(table, plain.layers[0].embeddings.value)
    penalty = 0.5 * float((table.astype(np.float64) ** 2).sum())
    assert model.layers[0].regularization_loss() == pytest.approx(penalty, rel=1e-5)
    # the reported loss carries the table's penalty, as Keras'
    assert model.evaluate(x, y, verbose=0)[0] - plain.evaluate(x, y, verbose=0)[0] == \
        pytest.approx(penalty, rel=1e-3)
    model.fit(x, y, epochs=3, verbose=0)
    assert np.linalg.norm(model.layers[0].embeddings.value, axis=1).max() <= 0.2 + 1e-6
    plain.fit(x, y, epochs=3, verbose=0)
    assert np.linalg.norm(plain.layers[0].embeddings.value, axis=1).max() > 0.2


def test_save_load_pickle_clone_and_json_round_trips(tmp_path, backend_name):
    rng = np.random.default_rng(3)
    x, y, _ = _category_data(rng, 200)
    model = _tabular_model(embeddings_regularizer="l2", mask_zero=True)
    model.fit(x, y, epochs=2, verbose=0)
    expected = model.predict(x, verbose=0)
    path = tmp_path / "tabular.keras"
    model.save(path)
    loaded = fastnn.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x, verbose=0), expected)
    clone = fastnn.models.clone_model(model)
    assert clone.layers[0].embeddings.shape == (30, 4) and clone.layers[0].mask_zero
    assert not np.array_equal(clone.layers[0].get_weights()[0], model.layers[0].get_weights()[0])
    rebuilt = fastnn.models.model_from_json(model.to_json())
    rebuilt.set_weights(model.get_weights())
    np.testing.assert_array_equal(rebuilt.predict(x, verbose=0), expected)
    # resuming: fit 2 + 2 epochs after load equals 4 epochs in one go
    loaded.fit(x, y, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- tabular models that learn -------------------------------------------------------------
def test_sequential_learns_labels_that_depend_on_the_category_only(backend_name):
    """30 categories, each with its own class (3 classes): only a per-category vector learns
    it (a constant or wrong-row embedding stays near 1/3 of the majority class); column 1 is
    noise. Held-out accuracy must be near perfect."""
    rng = np.random.default_rng(7)
    x, y, table = _category_data(rng, 1500)
    accuracy = {}
    for trained in (True, False):
        model = _tabular_model()
        model.layers[0].trainable = trained
        model.fit(x[:1200], y[:1200], epochs=15, batch_size=32, verbose=0)
        accuracy[trained] = model.evaluate(x[1200:], y[1200:], verbose=0,
                                           return_dict=True)["accuracy"]
    majority = np.bincount(table).max() / len(table)
    assert accuracy[True] > 0.97 > majority + 0.3
    # the same model on its random initial table (a backward that never reached the
    # table) stays far below: the accuracy comes from the trained embeddings
    assert accuracy[False] < 0.8


def test_graph_of_embedded_codes_and_numbers_learns_what_needs_both(backend_name):
    """One Input of codes embedded and flattened, concatenated with a numeric Input: the
    label is the category's bit XOR the number's sign, so neither input alone gets past
    ~50%; the same graph on its random initial table (frozen) stays far below, so the
    accuracy needs the gradient to reach the table through Concatenate and Flatten."""
    rng = np.random.default_rng(8)
    n, categories = 3000, 20
    bits = rng.integers(0, 2, categories)
    codes = rng.integers(0, categories, (n, 1))
    numbers = rng.standard_normal((n, 2)).astype(np.float32)
    y = bits[codes[:, 0]] ^ (numbers[:, 0] > 0)
    accuracy = {}
    for trained in (True, False):
        fastnn.set_seed(0)
        code_in = fastnn.Input(shape=(1,), name="category")
        number_in = fastnn.Input(shape=(2,), name="numbers")
        embedding = layers.Embedding(categories, 4, trainable=trained)
        h = layers.Concatenate()([layers.Flatten()(embedding(code_in)), number_in])
        h = layers.Dense(32, activation="relu")(h)
        model = fastnn.Model([code_in, number_in], layers.Dense(1, activation="sigmoid")(h))
        model.compile(fastnn.optimizers.Adam(0.01), "binary_crossentropy", metrics=["accuracy"])
        model.fit({"category": codes[:2500], "numbers": numbers[:2500]}, y[:2500], epochs=20,
                  batch_size=32, verbose=0)
        accuracy[trained] = model.evaluate([codes[2500:], numbers[2500:]], y[2500:], verbose=0,
                                           return_dict=True)["accuracy"]
        assert model.get_layer(embedding.name).get_weights()[0].shape == (categories, 4)
    assert accuracy[True] > 0.95
    assert accuracy[False] < 0.85


def test_keras_integer_input_dtype_is_accepted_and_fed_as_floats(backend_name):
    """Keras' structured-data guides declare code inputs as Input(..., dtype="int64"): the
    dtype is recorded, the model still takes its inputs in float32, and it trains."""
    rng = np.random.default_rng(9)
    x, y, _ = _category_data(rng, 600, categories=12, classes=2, width=1)
    for dtype in ("int64", "int32", "uint8", "bool"):
        assert fastnn.Input(shape=(1,), dtype=dtype).dtype == dtype
    with pytest.raises(TypeError, match="float32 or float64"):
        fastnn.Input(shape=(1,), dtype="float16")
    fastnn.set_seed(0)
    code_in = fastnn.Input(shape=(1,), name="code", dtype="int64")
    out = layers.Dense(2, activation="softmax")(layers.Flatten()(layers.Embedding(12, 3)(code_in)))
    model = fastnn.Model(code_in, out)
    assert model._dtype == "float32"
    model.compile(fastnn.optimizers.Adam(0.05), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"] == 1.0
