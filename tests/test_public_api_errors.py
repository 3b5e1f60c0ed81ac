"""Realistic user mistakes and odd-but-valid inputs through the public API only: each either
works as in Keras 3 or fails with a clear ValueError/TypeError naming the problem (never a
deep NumPy/Cython error, a crash or a silently wrong result)."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers


def _xy(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, size=n)


@pytest.mark.parametrize("middle", [
    lambda: layers.Dropout(0.3, seed=1), lambda: layers.BatchNormalization(),
    lambda: layers.Activation("tanh"), lambda: layers.LayerNormalization(),
    lambda: layers.ReLU(), lambda: layers.PReLU(), lambda: layers.Dense(5)])
def test_mixed_dtype_layers_autocast_as_keras(middle):
    # Keras autocasts each layer's inputs to the layer's dtype: a float64 Dense next to a
    # default (float32) layer trained before with a deep "out has dtype float32, expected
    # float64" from the kernels
    x, y = _xy()
    model = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(8, dtype="float64"),
                              middle(), layers.Dense(3, activation="softmax", dtype="float64")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = [w.copy() for w in model.get_weights()]
    h = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_data=(x, y))
    assert np.all(np.isfinite(h.history["loss"])) and np.all(np.isfinite(h.history["val_loss"]))
    after = model.get_weights()
    assert all(a.dtype == b.dtype for a, b in zip(before, after))
    assert not np.array_equal(before[0], after[0])  # the float64 first layer was trained
    p = model.predict(x, verbose=0)
    assert p.dtype == np.float64 and np.allclose(p.sum(axis=1), 1)
    assert np.isfinite(model.evaluate(x, y, verbose=0)[0])
    assert np.isfinite(model.train_on_batch(x, y)[0])


def test_mixed_dtype_float32_output_gradient_matches_a_float64_model():
    # the casts are exact for the gradient path: a float32 head on float64 layers trains like
    # the same model cast by hand (same initial weights, SGD, one full-batch step)
    x, y = _xy(n=16)
    def make(last_dtype):
        m = keras.Sequential([layers.Input(shape=(4,)),
                              layers.Dense(6, activation="tanh", dtype="float64"),
                              layers.Dense(3, activation="softmax", dtype=last_dtype)])
        m.compile(keras.optimizers.SGD(0.5), "sparse_categorical_crossentropy")
        return m
    mixed, ref = make("float32"), make("float64")
    ref.set_weights(mixed.get_weights())
    mixed.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    ref.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert mixed.predict(x, verbose=0).dtype == np.float32  # the last layer's dtype, as Keras
    assert all(a.dtype == np.float32 for a in mixed.predict(x, verbose=0, mc_samples=2))
    for a, b in zip(mixed.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _binary(loss, act):
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation=act)])
    m.compile(keras.optimizers.SGD(0.1), loss)
    return m


@pytest.mark.parametrize("loss,act", [("hinge", "tanh"), ("mse", None)])
def test_class_weight_uses_the_users_labels(loss, act):
    # Keras takes the classes from the targets as given: hinge maps 0/1 targets to -1/1
    # internally, and class 0's weight was then looked up at index -1 (the last class)
    x, _ = _xy(n=20)
    y = (x[:, 0] > 0).astype("float32")
    m = _binary(loss, act)
    cw = {0: 5.0, 1: 1.0}
    a = m.evaluate(x, y, sample_weight=np.where(y == 0, 5.0, 1.0), verbose=0)
    w0 = m.get_weights()
    m.train_on_batch(x, y, class_weight=cw)
    via_class = m.get_weights()
    m.set_weights(w0)
    m.compile(keras.optimizers.SGD(0.1), loss)
    m.train_on_batch(x, y, sample_weight=np.where(y == 0, 5.0, 1.0))
    for p, q in zip(via_class, m.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-6)
    assert np.isfinite(a)


def test_class_weight_ignores_labels_it_does_not_list():
    # as Keras (class_weight.get(label, 1.0)): a regression target rounding to a negative or
    # unlisted class keeps weight 1; it used to wrap around to the table's last entry
    x, _ = _xy(n=6)
    y = np.array([-2.2, -1.0, 0.0, 1.0, 2.0, 3.1], "float32")
    m = _binary("mse", None)
    w0 = m.get_weights()
    m.train_on_batch(x, y, class_weight={0: 3.0, 1: 2.0, 3: 4.0})
    via_class = m.get_weights()
    m.set_weights(w0)
    m.compile(keras.optimizers.SGD(0.1), "mse")
    m.train_on_batch(x, y, sample_weight=np.array([1, 1, 3, 2, 1, 4.0]))
    for p, q in zip(via_class, m.get_weights()):
        np.testing.assert_allclose(p, q, rtol=1e-6)


@pytest.mark.parametrize("cw,match", [({"a": 1.0}, "class_weight keys must be class indices"),
                                      ({0.5: 1.0}, "class_weight keys must be class indices"),
                                      ({0: "x"}, r"class_weight\[0\] must be a number")])
def test_bad_class_weight_entries_are_named(cw, match):
    x, y = _xy(n=8)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=match):
        m.fit(x, y, class_weight=cw, verbose=0)


def test_non_numeric_sample_weight_is_named():
    x, y = _xy(n=8)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="sample_weight must be numeric"):
        m.fit(x, y, sample_weight=np.array(["a"] * 8), verbose=0)


def _clf():
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    return m


def test_validation_freq_int_or_list_as_keras():
    x, y = _xy()
    h = _clf().fit(x, y, epochs=4, validation_data=(x, y), validation_freq=[1, 3], verbose=0)
    assert len(h.history["loss"]) == 4 and len(h.history["val_loss"]) == 2
    h = _clf().fit(x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0)
    assert len(h.history["val_loss"]) == 2
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError, match="validation_freq"):
            _clf().fit(x, y, validation_data=(x, y), validation_freq=bad, verbose=0)


def test_fit_argument_types_are_named():
    x, y = _xy()
    m = _clf()
    # None means no split (Keras tests `if validation_split`)
    assert "val_loss" not in m.fit(x, y, validation_split=None, verbose=0).history
    with pytest.raises(TypeError, match="validation_split must be a number"):
        m.fit(x, y, validation_split="0.2", verbose=0)
    with pytest.raises(ValueError, match="verbose must be"):
        m.fit(x, y, verbose="loud")
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
        m.fit(x, y, steps_per_epoch=0, verbose=0)
    for bad in (8.5, "8", 0):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            m.evaluate(x, y, batch_size=bad, verbose=0)
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            m.predict(x, batch_size=bad, verbose=0)


@pytest.mark.parametrize("bad", [3, keras.callbacks.EarlyStopping, "history"])
def test_callbacks_that_are_not_callback_objects_are_named(bad):
    x, y = _xy()
    m = _clf()
    for call in (lambda: m.fit(x, y, callbacks=[bad], verbose=0),
                 lambda: m.evaluate(x, y, callbacks=[bad], verbose=0),
                 lambda: m.predict(x, callbacks=[bad], verbose=0)):
        with pytest.raises(TypeError, match="callbacks must be Callback instances"):
            call()
    assert np.isfinite(m.fit(x, y, verbose=0).history["loss"][0])


@pytest.mark.parametrize("lr,err,match", [
    (lambda: -1.0, ValueError, "finite number >= 0, got -1.0"),
    (lambda step: float("nan"), ValueError, "finite number >= 0, got nan"),
    (lambda: "fast", TypeError, "must return a number, got 'fast'")])
def test_learning_rate_callable_results_are_checked_before_the_step(lr, err, match):
    # a float learning rate < 0 or NaN is refused; a callable returning one used to run
    # gradient ascent (or write NaN weights) silently
    x, y = _xy()
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    w0 = m.get_weights()
    with pytest.raises(err, match=match):
        m.fit(x, y, verbose=0)
    for a, b in zip(w0, m.get_weights()):  # nothing was applied
        np.testing.assert_array_equal(a, b)


def test_set_weights_refuses_values_that_overflow_the_variables_dtype():
    # 1e300 is finite in float64 but inf in a float32 variable: it used to pass the check
    # (made before the cast) and give inf weights and NaN predictions
    m = _clf()
    w = m.get_weights()
    bad = [a.astype(np.float64) for a in w]
    bad[0][0, 0] = 1e300
    with pytest.raises(ValueError, match="non-finite"):
        m.set_weights(bad)
    with pytest.raises(ValueError, match="non-finite"):
        m.layers[0].kernel.assign(bad[0])
    np.testing.assert_array_equal(m.get_weights()[0], w[0])


@pytest.mark.parametrize("make", [lambda a: a.astype(str), lambda a: a.astype(complex)])
def test_set_weights_of_non_real_dtype_is_a_type_error(make):
    m = _clf()
    w = m.get_weights()
    bad = list(w)
    bad[0] = make(w[0])
    with pytest.raises(TypeError, match=r"dtype \S+ to variable 'dense\w*/kernel'"):
        m.set_weights(bad)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])
    # object arrays of numbers (e.g. from pandas) are numbers
    bad[0] = w[0].astype(object)
    m.set_weights(bad)
    np.testing.assert_array_equal(m.get_weights()[0], w[0])


def test_set_weights_needs_a_list():
    with pytest.raises(TypeError, match="set_weights expects a list of arrays, got None"):
        _clf().set_weights(None)


def test_a_failed_set_weights_changes_nothing():
    # all arrays are checked before any is copied: a bad last array left the model half-set
    m = _clf()
    w = m.get_weights()
    new = [a + 1 for a in w]
    new[-1] = np.full_like(w[-1], np.nan)
    for target in (m, m.layers[0]):
        arrays = new if target is m else new[:1] + [np.full_like(w[1], np.inf)]
        with pytest.raises(ValueError, match="non-finite"):
            target.set_weights(arrays)
        for a, b in zip(w, m.get_weights()):
            np.testing.assert_array_equal(a, b)


class _FirstTwo(layers.Layer):
    # a Keras-style user layer that changes the width and defines no compute_output_shape:
    # Keras infers its output shape by running call; fastnn assumed the input shape, built the
    # next Dense for 4 inputs and failed in matmul ("mismatch in its core dimension 0")
    def call(self, x):
        return x[:, :2] * 2.0


def test_user_layer_output_shape_is_inferred_from_call():
    x, _ = _xy()
    y = x[:, :1] * 3
    m = keras.Sequential([layers.Input(shape=(4,)), _FirstTwo(), layers.Dense(1)])
    assert m.layers[0].output_shape == (None, 2) and m.layers[1].kernel.shape == (2, 1)
    m.compile(keras.optimizers.SGD(0.05), "mse")
    h = m.fit(x, y, epochs=3, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert m.predict(x, verbose=0).shape == (len(x), 1)
    unbuilt = keras.Sequential([_FirstTwo(), layers.Dense(3)])  # built on first call
    assert unbuilt.predict(x, verbose=0).shape == (len(x), 3)


def test_input_batch_shape_and_integer_input_shape():
    x, _ = _xy()
    # Keras 3: Input(batch_shape=(None, 4)); was "Input needs a shape"
    m = keras.Sequential([layers.Input(batch_shape=(None, 4)), layers.Dense(2)])
    assert m.predict(x, verbose=0).shape == (len(x), 2)
    # input_shape=4 like Input(shape=4) (was TypeError: 'int' object is not iterable)
    m = keras.Sequential([layers.Dense(2, input_shape=4)])
    assert m.predict(x, verbose=0).shape == (len(x), 2)
    with pytest.raises(ValueError, match="batch_shape"):
        layers.Input(shape=(4,), batch_shape=(None, 3))


def test_small_argument_errors_are_named():
    m = _clf()
    with pytest.raises(ValueError, match="index 5 .* 1 layers"):
        m.get_layer(index=5)
    for bad in (-1, 1.5, "a"):
        with pytest.raises((ValueError, TypeError), match="seed must be a non-negative integer"):
            keras.set_seed(bad)
    with pytest.raises(ValueError, match="Unknown loss 'Nope'"):
        m.compile("adam", {"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        m.compile({"learning_rate": 0.1}, "mse")
    for cls in (keras.losses.BinaryCrossentropy, keras.losses.CategoricalCrossentropy):
        with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 2.0"):
            cls(label_smoothing=2.0)


@pytest.mark.parametrize("metric,y_true,y_pred", [
    (keras.metrics.CategoricalAccuracy, np.eye(3)[[0, 1, 2]], np.eye(3)[[0, 1, 2, 2]]),
    (keras.metrics.SparseCategoricalAccuracy, np.array([1]), np.eye(3)[[1, 1, 0, 2]]),
    (keras.metrics.BinaryAccuracy, np.array([1.0]), np.array([[0.9], [0.8], [0.2]]))])
def test_metric_row_count_mismatch_is_named(metric, y_true, y_pred):
    # one label against four predictions broadcast silently (a made-up accuracy), or failed
    # with NumPy's "operands could not be broadcast together"
    m = metric()
    with pytest.raises(ValueError, match=r"y_true has 1 rows?|y_true has 3 rows"):
        m.update_state(y_true, y_pred)
    assert m.result() == 0.0


def test_metric_update_state_takes_lists():
    m = keras.metrics.BinaryAccuracy()
    m.update_state([1, 0], [0.9, 0.2])
    assert m.result() == 1.0


@pytest.mark.parametrize("loss,y", [("mse", np.zeros((6, 2, 3))), ("mse", np.zeros((6, 6))),
                                    ("sparse_categorical_crossentropy", np.zeros((6, 2), int))])
def test_a_model_with_a_3d_output_says_so_in_fit(loss, y):
    # predict works on (batch, 2, 3) outputs but fit cannot: the error said the model's output
    # was "(batch, 3)", which sent the user to reshape targets that were already right
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Reshape((2, 2)), layers.Dense(3)])
    m.compile("sgd", loss)
    x, _ = _xy(n=6)
    assert m.predict(x, verbose=0).shape == (6, 2, 3)
    with pytest.raises(ValueError, match=r"outputs shape \(None, 2, 3\).*Flatten"):
        m.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"outputs shape \(None, 2, 3\)"):
        m.evaluate(x, y, verbose=0)


def test_normalization_adapt_keras_arguments_and_nested_lists():
    x, _ = _xy(n=30)
    ref = layers.Normalization()
    ref.adapt(x)
    for data, kw in ((x, {"batch_size": 8}), (x, {"batch_size": 8, "steps": None}),
                     (x.tolist(), {})):
        n = layers.Normalization()
        n.adapt(data, **kw)  # Keras 3: adapt(data, batch_size=None, steps=None)
        for a, b in zip(n.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6)
    # steps limits an iterable of batches, as Keras
    n = layers.Normalization()
    n.adapt([x[:10], x[10:20], x[20:]], steps=1)
    first = layers.Normalization()
    first.adapt(x[:10])
    np.testing.assert_allclose(n.get_weights()[0], first.get_weights()[0], rtol=1e-6)


def test_inputs_without_features_and_boolean_batch_sizes_are_named():
    # x[:, []] (no column selected) built a Dense on 0 inputs and trained only its bias
    m = keras.Sequential([layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"x has no features \(shape \(5, 0\)\)"):
        m.fit(np.zeros((5, 0)), np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match="no features"):
        m.predict(np.zeros((5, 0)), verbose=0)
    x, y = _xy()
    for call in (lambda: m.fit(x, y, batch_size=True, verbose=0),
                 lambda: m.evaluate(x, y, batch_size=True, verbose=0),
                 lambda: m.predict(x, batch_size=True, verbose=0)):
        with pytest.raises(ValueError, match="batch_size must be a positive integer, got True"):
            call()


def test_steps_and_validation_steps_limit_the_batches_as_keras():
    # evaluate/predict ignored steps= (Keras runs only that many batches); fit had no
    # validation_steps (TypeError for Keras code passing it)
    x, y = _xy(n=40)
    m = _clf()
    ref = m.evaluate(x[:16], y[:16], verbose=0)
    assert m.evaluate(x, y, batch_size=8, steps=2, verbose=0) == pytest.approx(ref)
    assert m.predict(x, batch_size=8, steps=2, verbose=0).shape == (16, 3)
    np.testing.assert_array_equal(m.predict(x, batch_size=8, steps=2, verbose=0),
                                  m.predict(x[:16], verbose=0))
    assert m.predict(x, batch_size=8, steps=100, verbose=0).shape == (40, 3)
    m.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    h = m.fit(x, y, validation_data=(x, y), validation_steps=2, validation_batch_size=8, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(ref)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="steps must be a positive integer"):
            m.evaluate(x, y, steps=bad, verbose=0)


def test_validation_split_takes_sample_weights_but_not_class_weights():
    # Keras splits (x, y, sample_weight) before class_weight is applied to the training
    # batches: val_loss is weighted by sample_weight only. fastnn weighted it by class too.
    x, y = _xy(n=40)
    m = _clf()
    m.compile(keras.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    xv, yv = x[20:], y[20:]
    h = m.fit(x, y, validation_split=0.5, class_weight={0: 10.0}, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(xv, yv, verbose=0))
    sw = np.linspace(0.5, 2.0, 40)
    h = m.fit(x, y, validation_split=0.5, class_weight={0: 10.0}, sample_weight=sw, verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(
        m.evaluate(xv, yv, sample_weight=sw[20:], verbose=0))


def test_to_categorical_keeps_the_label_array_shape_as_keras():
    tc = keras.utils.to_categorical
    # (2, 2, 1) labels gave a (2, 1) array (fancy indexing broadcast silently)
    y = np.array([[[0], [2]], [[1], [1]]])
    out = tc(y)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.argmax(-1), y[..., 0])
    assert tc(np.array([[0, 1], [2, 0]])).shape == (2, 2, 3)
    assert tc([0, 2, 1]).shape == (3, 3) and tc(np.array([[0], [1]])).shape == (2, 2)
    assert tc([], num_classes=4).shape == (0, 4)
    with pytest.raises(ValueError, match="num_classes"):
        tc([])
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 2.5"):
        tc([0, 1], num_classes=2.5)


def test_set_num_threads_names_bad_values():
    before = keras.get_num_threads()
    for bad in (None, 1.5, "x", 0):
        with pytest.raises((TypeError, ValueError), match="threads"):
            keras.set_num_threads(bad)
    assert keras.get_num_threads() == before


@pytest.mark.parametrize("loss", ["mse", "categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_ragged_lists_are_named(loss):
    m = keras.Sequential([layers.Input(shape=(2,)), layers.Dense(2, activation="softmax")])
    m.compile("sgd", loss)
    with pytest.raises(ValueError, match=r"^x could not be made into one array"):
        m.fit([[1.0, 2.0], [1.0]], [0, 1], verbose=0)
    with pytest.raises(ValueError, match=r"targets could not be made into one array"):
        m.fit(np.zeros((2, 2)), [[1.0], [1.0, 0.0]], verbose=0)


def test_multiclass_losses_on_a_one_unit_output_point_to_binary_crossentropy():
    # Dense(1, activation="sigmoid") with a categorical loss: the softmax/CE of one unit is
    # constant, so the model learns nothing (Keras trains it silently)
    x, _ = _xy(n=10)
    y = (x[:, 0] > 0).astype(int)
    for loss, target in (("sparse_categorical_crossentropy", y),
                         ("categorical_crossentropy", y)):
        m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
        m.compile("sgd", loss)
        with pytest.raises(ValueError, match="binary_crossentropy"):
            m.fit(x, target, verbose=0)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(1, activation="sigmoid")])
    m.compile("sgd", "categorical_crossentropy")
    with pytest.warns(UserWarning, match="binary_crossentropy"):
        m.fit(x, y[:, None].astype("float32"), verbose=0)


def test_scipy_sparse_inputs_are_densified_as_keras_accepts_them():
    sparse = pytest.importorskip("scipy.sparse")
    x, y = _xy()
    x[x < 0.5] = 0
    m = _clf()
    ref = _clf()
    ref.set_weights(m.get_weights())
    assert np.array_equal(m.predict(sparse.csr_matrix(x), verbose=0), ref.predict(x, verbose=0))
    m.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    ref.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    m.fit(sparse.csr_matrix(x), y, shuffle=False, verbose=0,
          validation_data=(sparse.coo_matrix(x), y))
    ref.fit(x, y, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_user_layer_that_skips_super_init_is_named():
    class NoSuper(layers.Layer):
        def __init__(self, factor):
            self.factor = factor

        def call(self, x):
            return x * self.factor
    with pytest.raises(RuntimeError, match=r"NoSuper.*super\(\).__init__\(\)"):
        keras.Sequential([layers.Input(shape=(4,)), NoSuper(2.0)])
    with pytest.raises(RuntimeError, match=r"super\(\).__init__\(\)"):
        NoSuper(2.0)(np.ones((2, 4)))


@pytest.mark.parametrize("metric", ["mse", "mae", "binary_accuracy", "mape",
                                    "RootMeanSquaredError", keras.metrics.Accuracy])
def test_elementwise_metric_on_class_labels_is_named(metric):
    # was NumPy's "cannot reshape array of size 20 into shape (20,3)"
    x, y = _xy()
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[metric])
    with pytest.raises(ValueError, match=r"targets of shape \(8,\) do not match outputs of "
                                         r"shape \(8, 3\).*sparse_categorical_accuracy"):
        m.fit(x, y, batch_size=8, verbose=0)


def test_arrays_passed_positionally_as_batch_size_are_described_briefly():
    # model.fit(x, y, x_val, y_val): the message printed the whole x_val array as batch_size
    x, y = _xy(n=2000)
    m = _clf()
    for call in (lambda: m.fit(x, y, x, y, verbose=0), lambda: m.evaluate(x, y, x, verbose=0),
                 lambda: m.predict(x, y, verbose=0)):
        with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got an "
                                             r"array of shape \(2000,( 4)?\)") as info:
            call()
        assert len(str(info.value)) < 300  # the hint per method: test_review_fuzz_fixes.py


def test_to_json_with_numpy_scalars_in_layer_arguments():
    # input_shape=X.shape[1:] of a NumPy shape array, units/rates as NumPy scalars: to_json
    # failed with "Object of type int64 is not JSON serializable" (save() handled them)
    m = keras.Sequential([layers.Dense(np.int64(2), input_shape=(np.int64(4),)),
                          layers.Dropout(np.float32(0.5), seed=np.int64(1))])
    assert m.input_shape == (None, 4) and type(m.input_shape[1]) is int
    again = keras.models.model_from_json(m.to_json())
    assert again.input_shape == (None, 4) and again.layers[0].units == 2


def test_sample_weights_beyond_float32_are_refused():
    # 1e300 is finite in float64 (checked) but inf once cast to the float32 model: NaN loss
    x, y = _xy()
    m = _clf()
    w0 = m.get_weights()
    for call in (lambda: m.fit(x, y, sample_weight=np.full(len(x), 1e300), verbose=0),
                 lambda: m.evaluate(x, y, sample_weight=np.full(len(x), 1e300), verbose=0),
                 lambda: m.fit(x, y, class_weight={0: 1e300}, verbose=0)):
        with pytest.raises(ValueError, match="finite"):
            call()
    for a, b in zip(w0, m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_small_structure_mistakes_are_named():
    class AsList(layers.Layer):  # returns a list (Keras layers return tensors)
        def call(self, x):
            return (x * 2).tolist()
    x, y = _xy()
    m = keras.Sequential([layers.Input(shape=(4,)), AsList(), layers.Dense(1)])
    assert m.predict(x, verbose=0).shape == (len(x), 1)
    with pytest.raises(TypeError, match=r"got the class Dense \(add \(\)"):
        keras.Sequential([layers.Input(shape=(4,)), layers.Dense])
    with pytest.raises(ValueError, match="one output: metrics must be a list"):
        _clf().compile("sgd", "sparse_categorical_crossentropy", metrics={"out": ["accuracy"]})


def test_normalization_given_non_finite_statistics_and_reshape_of_an_int():
    for mean, var in (([np.nan, 0.0], [1.0, 1.0]), ([0.0, 0.0], [np.inf, 1.0])):
        with pytest.raises(ValueError, match="Normalization: mean and variance must be finite"):
            layers.Normalization(mean=mean, variance=var)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Reshape(4)])
    assert m.output_shape == (None, 4)


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
def test_object_arrays_of_numbers_are_numbers(loss):
    # df.values of mixed int/float columns is an object array of numbers: "x must be numeric"
    x, y = _xy()
    t = y if loss.startswith("sparse") else np.eye(3)[y]
    m, ref = _clf(), _clf()
    ref.set_weights(m.get_weights())
    for model in (m, ref):
        model.compile(keras.optimizers.SGD(0.1), loss)
    m.fit(x.astype(object), t.astype(object), shuffle=False, verbose=0)
    ref.fit(x, t, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="must be numeric"):
        m.fit(np.array([["a"] * 4] * 24, dtype=object), y, verbose=0)


class _Recorder(layers.Layer):
    # records the first feature of every training batch (no weights: never backpropagated)
    def __init__(self):
        super().__init__()
        self.seen = []

    def call(self, x, training=False):
        if training:
            self.seen.append(np.array(x[:, 0]))
        return x


@pytest.mark.parametrize("shuffle", [False, True])
def test_steps_per_epoch_continues_through_the_data_across_epochs(shuffle):
    # Keras' iterator carries on from where the previous epoch stopped; fastnn restarted at
    # the first batch every epoch, so with shuffle=False rows past steps*batch were never seen
    x = np.arange(40, dtype="float32")[:, None]
    y = np.zeros((40, 1), "float32")
    rec = _Recorder()
    m = keras.Sequential([layers.Input(shape=(1,)), rec, layers.Dense(1)])
    m.compile("sgd", "mse")
    m.fit(x, y, batch_size=10, steps_per_epoch=2, epochs=2, shuffle=shuffle, verbose=0)
    rows = np.concatenate(rec.seen)
    assert sorted(rows.tolist()) == list(range(40))  # one full pass over 2 epochs
    if not shuffle:
        assert rows.tolist() == list(range(40))


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_validation_batch_size_is_named(bad):
    # -1 with validation_steps sliced the validation rows to [:-1]; with a callback watching
    # test batches the validation loop ran no batch and reported val_loss 0
    x, y = _xy()
    with pytest.raises(ValueError, match="validation_batch_size must be a positive integer"):
        _clf().fit(x, y, validation_data=(x, y), validation_batch_size=bad, verbose=0)


@pytest.mark.parametrize("bad", [-1, 1.0, "1"])
def test_bad_initial_epoch_is_named(bad):
    # -1 ran an extra epoch numbered -1; 1.0 failed inside range()
    x, y = _xy()
    with pytest.raises(ValueError, match="initial_epoch must be a non-negative integer"):
        _clf().fit(x, y, epochs=2, initial_epoch=bad, verbose=0)


@pytest.mark.parametrize("seed", [-1, "a", 1.5])
def test_bad_initializer_seed_is_named(seed):
    # was NumPy's "expected non-negative integer" / "SeedSequence expects int ..."
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None"):
        keras.Sequential([layers.Input(shape=(3,)), layers.Dense(
            2, kernel_initializer=keras.initializers.GlorotUniform(seed=seed))])


@pytest.mark.parametrize("method,keras_order", [
    ("fit", ["x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split",
             "validation_data", "shuffle", "class_weight", "sample_weight", "initial_epoch",
             "steps_per_epoch", "validation_steps", "validation_batch_size", "validation_freq"]),
    ("evaluate", ["x", "y", "batch_size", "verbose", "sample_weight", "steps", "callbacks",
                  "return_dict"]),
    ("train_on_batch", ["x", "y", "sample_weight", "class_weight", "return_dict"]),
    ("test_on_batch", ["x", "y", "sample_weight", "return_dict"]),
    ("predict", ["x", "batch_size", "verbose", "steps", "callbacks"])])
def test_positional_argument_order_is_keras(method, keras_order):
    # Keras 3's order (keras/src/trainers/trainer.py): model.evaluate(x, y, 32, 0, w) passed
    # w as callbacks, model.train_on_batch(x, y, w) passed w as return_dict
    import inspect
    params = list(inspect.signature(getattr(keras.Sequential, method)).parameters)[1:]
    assert params[:len(keras_order)] == keras_order


def test_sample_weight_passed_positionally_as_in_keras():
    x, y = _xy(n=8)
    m = _clf()
    w = np.linspace(0.0, 2.0, 8)
    assert m.evaluate(x, y, 8, 0, w) == pytest.approx(m.evaluate(x, y, sample_weight=w, verbose=0))
    assert m.test_on_batch(x, y, w) == pytest.approx(m.test_on_batch(x, y, sample_weight=w))
    with pytest.raises(ValueError, match="needs targets y"):
        m.train_on_batch(x)


@pytest.mark.parametrize("shape", [784, (None, 0), (None, -3), (None, 2.5)])
def test_build_with_a_bad_shape_is_named(shape):
    # (None, 0) built a Dense on 0 inputs; -3 gave NumPy's "negative dimensions"; 784 failed
    # in tuple()
    with pytest.raises(ValueError, match=r"build\(\): input_shape must be"):
        keras.Sequential([layers.Dense(2)]).build(shape)
