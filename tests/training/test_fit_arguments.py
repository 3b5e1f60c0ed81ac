"""fit / evaluate / predict / train_on_batch arguments through the public API: each works
as in Keras 3 or fails with a clear ValueError/TypeError naming the argument (never a deep
NumPy error or a silently wrong result). sample_weight and class_weight included."""
import numpy as np
import pytest

import fastnn as keras
from fastnn import layers


def _xy(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype("float32"), rng.integers(0, k, size=n)


def _clf():
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy")
    return m


def _seeded_clf(seed=0):
    keras.set_seed(seed)
    m = keras.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


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


def test_sample_weight_passed_positionally_as_in_keras():
    x, y = _xy(n=8)
    m = _clf()
    w = np.linspace(0.0, 2.0, 8)
    assert m.evaluate(x, y, 8, 0, w) == pytest.approx(m.evaluate(x, y, sample_weight=w, verbose=0))
    assert m.test_on_batch(x, y, w) == pytest.approx(m.test_on_batch(x, y, sample_weight=w))
    with pytest.raises(ValueError, match="needs targets y"):
        m.train_on_batch(x)


@pytest.mark.parametrize("steps", [None, 1])
@pytest.mark.parametrize("bad", [2.0, np.ones(5), np.ones((24, 3))])
def test_evaluate_sample_weight_of_the_wrong_shape_is_named_with_or_without_steps(steps, bad):
    # evaluate(steps=) sliced sample_weight before checking it: a scalar failed with NumPy's
    # 'too many indices for array', and 5 weights for 24 rows were taken when steps*batch <= 5
    x, y = _xy()
    with pytest.raises(ValueError, match=r"sample_weight has shape .*expected \(24,\)"):
        _seeded_clf().evaluate(x, y, batch_size=4, verbose=0, sample_weight=bad, steps=steps)


def test_evaluate_steps_weighs_the_rows_it_scores():
    x, y = _xy()
    w = np.linspace(0.0, 2.0, 24)
    m = _seeded_clf()
    assert m.evaluate(x, y, batch_size=4, verbose=0, sample_weight=w, steps=2) == pytest.approx(
        m.evaluate(x[:8], y[:8], batch_size=4, verbose=0, sample_weight=w[:8]))


@pytest.mark.parametrize("key", [float("nan"), float("inf"), np.float64(-np.inf)])
def test_non_finite_class_weight_keys_are_named(key):
    # the key check did int(k) first: NaN gave "cannot convert float NaN to integer", inf an
    # OverflowError (neither ValueError nor TypeError naming class_weight)
    x, y = _xy()
    with pytest.raises(ValueError, match="class_weight keys must be class indices"):
        _seeded_clf().fit(x, y, class_weight={key: 1.0, 0: 2.0}, verbose=0)


def test_class_weight_with_labels_in_an_object_array():
    # object arrays of numbers (pandas df.values) are accepted as targets, but class_weight
    # took its classes from the targets as given with np.round: "loop of ufunc does not
    # support argument 0 of type int which has no callable rint method"
    x, y = _xy()
    m, ref = _seeded_clf(), _seeded_clf()
    ref.set_weights(m.get_weights())
    m.fit(x, y.astype(object), class_weight={0: 2.0}, shuffle=False, verbose=0)
    ref.fit(x, y, class_weight={0: 2.0}, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


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


def test_arrays_passed_positionally_as_batch_size_are_described_briefly():
    # model.fit(x, y, x_val, y_val): the message printed the whole x_val array as batch_size
    x, y = _xy(n=2000)
    m = _clf()
    for call in (lambda: m.fit(x, y, x, y, verbose=0), lambda: m.evaluate(x, y, x, verbose=0),
                 lambda: m.predict(x, y, verbose=0)):
        with pytest.raises(ValueError, match=r"batch_size must be a positive integer, got an "
                                             r"array of shape \(2000,( 4)?\)") as info:
            call()
        assert len(str(info.value)) < 300  # the hint per method: test_array_as_batch_size_hint_fits_the_method


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


def test_array_as_batch_size_hint_fits_the_method():
    # the hint named fit's arguments (epochs, validation_data=) for evaluate and predict
    # too: predict(x, y) was told to pass validation_data, which predict does not take
    x, y = _xy(n=50)
    m = _seeded_clf()
    with pytest.raises(ValueError, match=r"array of shape \(50,\).*predict\(x\).*no targets") as info:
        m.predict(x, y, verbose=0)
    assert "validation_data" not in str(info.value) and "epochs" not in str(info.value)
    with pytest.raises(ValueError, match=r"array of shape \(50, 4\).*evaluate\(x, y, batch_size") as info:
        m.evaluate(x, y, x, verbose=0)
    assert "validation_data" not in str(info.value) and "epochs" not in str(info.value)
    with pytest.raises(ValueError, match=r"array of shape \(50, 4\).*validation_data=\(x_val, y_val\)"):
        m.fit(x, y, x, y, verbose=0)


def test_steps_per_epoch_beyond_the_data_ends_the_epoch_with_a_warning_as_keras():
    """Keras 3's EpochIterator: with steps_per_epoch, an epoch that reaches the end of the
    data stops there with a warning, and the next epoch starts a new pass."""
    import warnings
    import numpy as np
    import pytest
    import fastnn
    from fastnn import layers
    x = np.arange(40, dtype="float32")[:, None]
    y = np.zeros((40, 1), "float32")

    def model():
        m = fastnn.Sequential([layers.Input(shape=(1,)), layers.Dense(1)])
        m.compile("sgd", "mse")
        return m
    m = model()
    with pytest.warns(UserWarning, match="data ran out after 1 of steps_per_epoch=3"):
        m.fit(x, y, batch_size=10, steps_per_epoch=3, epochs=3, shuffle=False, verbose=0)
    assert m.optimizer.iterations == 3 + 1 + 3  # 4 batches a pass: epoch 2 has one left
    m = model()
    with pytest.warns(UserWarning, match="data ran out after 4 of steps_per_epoch=6") as rec:
        m.fit(x, y, batch_size=10, steps_per_epoch=6, epochs=2, verbose=0)
    assert m.optimizer.iterations == 8 and len(rec) == 2
    m = model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole number of passes: no warning
        m.fit(x, y, batch_size=10, steps_per_epoch=2, epochs=4, verbose=0)
    assert m.optimizer.iterations == 8
