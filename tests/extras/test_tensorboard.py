"""callbacks.TensorBoard writes what Keras 3 writes, where Keras writes it, in files that
TensorBoard's own reader (event_accumulator) reads back."""
import os

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from tensorboard.util import tensor_util  # noqa: E402


def read_run(folder):
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    acc.Reload()
    return acc


def series(acc, tag):
    """[(step, value)] of a tensor summary (scalars and histograms alike)."""
    return [(e.step, tensor_util.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]


def plugin(acc, tag):
    return acc.SummaryMetadata(tag).plugin_data.plugin_name


def small_model(seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([fastnn.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)


def test_epoch_scalars_land_in_train_and_validation_runs_with_keras_tags(tmp_path):
    model = small_model()
    x, y = data()
    history = model.fit(x, y, epochs=3, batch_size=20, validation_split=0.25, verbose=0,
                        callbacks=[callbacks.TensorBoard(log_dir=tmp_path)])
    assert sorted(os.listdir(tmp_path)) == ["train", "validation"]
    train, val = read_run(tmp_path / "train"), read_run(tmp_path / "validation")
    for tag, key in (("epoch_loss", "loss"), ("epoch_accuracy", "accuracy"),
                     ("epoch_learning_rate", "learning_rate")):
        got = series(train, tag)
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([float(v) for _, v in got], history.history[key], rtol=1e-6)
        assert plugin(train, tag) == "scalars"
    for tag, key in (("epoch_loss", "val_loss"), ("epoch_accuracy", "val_accuracy")):
        got = series(val, tag)
        assert [s for s, _ in got] == [0, 1, 2]
        np.testing.assert_allclose([float(v) for _, v in got], history.history[key], rtol=1e-6)
    assert "epoch_val_loss" not in train.Tags()["tensors"]
    # after each validation pass, against the optimizer's step count (45 rows: 3 steps an epoch)
    got = series(val, "evaluation_loss_vs_iterations")
    assert [s for s, _ in got] == [3, 6, 9]
    np.testing.assert_allclose([float(v) for _, v in got], history.history["val_loss"], rtol=1e-6)


def test_learning_rate_scalar_follows_the_optimizer(tmp_path):
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=3, batch_size=30, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
        callbacks.TensorBoard(tmp_path)])
    got = series(read_run(tmp_path / "train"), "epoch_learning_rate")
    np.testing.assert_allclose([float(v) for _, v in got], [0.1, 0.05, 0.1 / 3], rtol=1e-6)
    assert not (tmp_path / "validation").exists()


def test_weight_histograms_every_histogram_freq_epochs(tmp_path):
    model = small_model()
    x, y = data()
    seen = {}
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.__setitem__(epoch, model.layers[0].kernel.numpy()))
    model.fit(x, y, epochs=5, batch_size=20, verbose=0,
              callbacks=[record, callbacks.TensorBoard(tmp_path, histogram_freq=2)])
    train = read_run(tmp_path / "train")
    name = model.layers[0].name
    tag = f"{name}/kernel/histogram"
    for layer in model.layers:
        for w in ("kernel", "bias"):
            assert plugin(train, f"{layer.name}/{w}/histogram") == "histograms"
    got = series(train, tag)
    assert [s for s, _ in got] == [0, 2, 4]
    for step, buckets in got:
        kernel = seen[step]
        assert buckets.shape == (30, 3)  # [left edge, right edge, count], tf.summary's 30
        assert buckets[:, 2].sum() == kernel.size
        assert buckets[0, 0] == pytest.approx(kernel.min()) and buckets[-1, 1] == pytest.approx(kernel.max())


def test_batch_scalars_every_update_freq_batches_at_the_global_batch_count(tmp_path):
    model = small_model()
    x, y = data()
    losses = []
    record = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs["loss"]))
    model.fit(x, y, epochs=2, batch_size=10, verbose=0,  # 6 batches an epoch, 12 in all
              callbacks=[record, callbacks.TensorBoard(tmp_path, update_freq=4,
                                                       write_steps_per_second=True)])
    train = read_run(tmp_path / "train")
    got = series(train, "batch_loss")
    assert [s for s, _ in got] == [4, 8, 12]
    np.testing.assert_allclose([float(v) for _, v in got], [losses[3], losses[7], losses[11]],
                               rtol=1e-6)
    assert [s for s, _ in series(train, "batch_steps_per_second")] == [4, 8, 12]
    sps = series(train, "epoch_steps_per_second")
    assert [s for s, _ in sps] == [0, 1] and all(float(v) > 0 for _, v in sps)


def test_graph_and_weight_images_are_written(tmp_path):
    model = small_model()
    x, y = data()
    model.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)])
    train = read_run(tmp_path / "train")
    assert plugin(train, "keras") == "graph_keras_model"
    config = series(train, "keras")[0][1]
    assert b'"Sequential"' in config.item()
    tag = f"{model.layers[0].name}/kernel/image"
    assert plugin(train, tag) == "images"
    width, height, png = series(train, tag)[0][1]
    # the (6, 8) kernel has fewer rows than columns: shown as is, 8 wide and 6 high
    assert (int(width), int(height)) == (8, 6) and png.startswith(b"\x89PNG")


def test_png_bytes_decode_to_the_same_pixels():
    from fastnn.integration.tensorboard import png_bytes
    plt_image = pytest.importorskip("matplotlib.image")
    import io
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7) * 7
    back = plt_image.imread(io.BytesIO(png_bytes(gray)), format="png")
    np.testing.assert_allclose(np.round(back * 255), gray)


def test_evaluate_writes_evaluation_scalars_only(tmp_path):
    model = small_model()
    x, y = data()
    tb = callbacks.TensorBoard(tmp_path)
    model.evaluate(x, y, verbose=0, callbacks=[tb])
    tb._close_writers()
    assert os.listdir(tmp_path) == ["validation"]
    assert [s for s, _ in series(read_run(tmp_path / "validation"),
                                 "evaluation_loss_vs_iterations")] == [0]


@pytest.mark.parametrize("kwargs,match", [
    ({"update_freq": 0}, "update_freq"), ({"update_freq": "often"}, "update_freq"),
    ({"histogram_freq": -1}, "histogram_freq"), ({"profile_batch": 3}, "profil"),
    ({"embeddings_freq": 1}, "Embedding"),
])
def test_bad_arguments_are_clear_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        callbacks.TensorBoard(tmp_path, **kwargs)


def test_missing_tensorboard_is_an_import_error_naming_the_extra(monkeypatch, tmp_path):
    import builtins
    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match=r"pip install fastnn\[tensorboard\]"):
        callbacks.TensorBoard(tmp_path)
