"""Saving and loading: round trips of architecture / weights / compile settings / optimizer
and RNG state, bit-for-bit resume, atomic saves (a killed saver leaves the old file), and
clean refusal of corrupted, truncated, wrong-version and hostile files (never unpickling)."""
import errno
import io
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import constraints, initializers, layers, losses, optimizers, regularizers, saving
from fastnn.datasets import load_digits
from fastnn.saving import InvalidModelFileError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = load_digits()
    return x[:300], y[:300], xt[:100], yt[:100]


def small_model(seed=0, optimizer=None, dtype=None, hidden=16):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([
        layers.Input(shape=(64,)),
        layers.Dense(hidden, activation="relu", kernel_initializer="he_normal",
                     kernel_regularizer=regularizers.l2(1e-4), kernel_constraint=constraints.max_norm(3.0),
                     dtype=dtype, name="hidden"),
        layers.Dense(10, activation="softmax", dtype=dtype, name="out"),
    ])
    model.compile(optimizer=optimizer or optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb)
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


# ---- round trips ------------------------------------------------------------------------------
def test_round_trip_architecture_weights_compile(tmp_path, digits):
    x, y, xt, yt = digits
    model = small_model()
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = fastnn.load_model(path)
    assert loaded is not model and loaded.name == model.name
    assert [l.name for l in loaded.layers] == ["hidden", "out"]
    assert loaded.get_config() == model.get_config()
    assert_same_weights(model, loaded)
    assert np.array_equal(model.predict(xt, verbose=0), loaded.predict(xt, verbose=0))
    # compile settings: same optimizer config, loss, metrics -> same evaluation
    assert type(loaded.optimizer) is type(model.optimizer)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations > 0
    assert losses.serialize(loaded.loss) == losses.serialize(model.loss)
    assert loaded.evaluate(xt, yt, verbose=0) == model.evaluate(xt, yt, verbose=0)
    # regularizer / constraint / initializer objects round-trip through the config
    h = loaded.get_layer("hidden")
    assert regularizers.serialize(h.kernel_regularizer) == {"class_name": "L2", "config": {"l2": 1e-4}}
    assert constraints.serialize(h.kernel_constraint) == {"class_name": "MaxNorm",
                                                          "config": {"max_value": 3.0, "axis": 0}}
    assert h.kernel.regularizer is h.kernel_regularizer and h.kernel.constraint is h.kernel_constraint
    assert initializers.serialize(h.kernel_initializer)["class_name"] == "he_normal"
    # fastnn.models.load_model is the same function
    assert_same_weights(fastnn.models.load_model(path), model)


def test_model_and_layer_get_config_from_config(digits):
    x = digits[0]
    model = zoo_model(x)
    again = fastnn.Sequential.from_config(model.get_config())
    assert again.get_config() == model.get_config()
    assert [w.shape for w in again.get_weights()] == [w.shape for w in model.get_weights()]
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    for layer in model.layers:
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


def test_file_is_an_npz_readable_without_pickle(tmp_path):
    model = small_model()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert "fastnn.json" in npz.files
        assert np.array_equal(npz["w00000"], model.get_weights()[0])


def test_float64_model_and_frozen_flag_round_trip(tmp_path, digits):
    x, y, xt, _ = digits
    model = small_model(dtype="float64")
    model.layers[0].trainable = False
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m")
    loaded = fastnn.load_model(tmp_path / "m")
    assert loaded.layers[0].dtype == "float64" and loaded.get_weights()[0].dtype == np.float64
    assert loaded.layers[0].trainable is False and loaded.layers[1].trainable is True
    assert len(loaded.trainable_weights) == 2
    assert np.array_equal(model.predict(xt, verbose=0), loaded.predict(xt, verbose=0))


def test_uncompiled_and_unbuilt_models(tmp_path):
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(3, activation="tanh")])
    model.save(tmp_path / "a")  # built (Input known), never compiled
    loaded = fastnn.load_model(tmp_path / "a")
    assert_same_weights(model, loaded)
    assert loaded.optimizer is None
    with pytest.raises(RuntimeError, match="compile"):
        loaded.fit(np.zeros((2, 5)), np.zeros((2, 3)))
    # no input shape anywhere: the architecture alone round-trips, unbuilt
    bare = fastnn.Sequential([layers.Dense(4), layers.ReLU()])
    bare.save(tmp_path / "b")
    again = fastnn.load_model(tmp_path / "b")
    assert not again.built and [type(l).__name__ for l in again.layers] == ["Dense", "ReLU"]
    assert again.predict(np.ones((2, 7)), verbose=0).shape == (2, 4)


def test_compile_false_and_include_optimizer_false(tmp_path, digits):
    x, y, _, _ = digits
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "m", include_optimizer=False)
    loaded = fastnn.load_model(tmp_path / "m")
    assert loaded.optimizer.iterations == 0 and loaded.optimizer._state == {}
    assert fastnn.load_model(tmp_path / "m", compile=False).optimizer is None


def test_save_weights_load_weights(tmp_path, digits):
    x, y, xt, _ = digits
    model = small_model()
    model.fit(x, y, epochs=1, verbose=0)
    model.save_weights(tmp_path / "w.weights.h5")
    other = small_model(seed=5)
    assert not np.array_equal(other.get_weights()[0], model.get_weights()[0])
    other.load_weights(tmp_path / "w.weights.h5")
    assert_same_weights(model, other)
    # an unbuilt model without an input shape is built with the file's input shape
    fresh = fastnn.Sequential([layers.Dense(16, activation="relu"), layers.Dense(10, activation="softmax")])
    fresh.load_weights(tmp_path / "w.weights.h5")
    assert np.array_equal(fresh.predict(xt, verbose=0), model.predict(xt, verbose=0))
    # a full model file also works for load_weights; float32 weights into a float64 model convert
    model.save(tmp_path / "full")
    wide = small_model(dtype="float64")
    wide.load_weights(tmp_path / "full")
    assert np.array_equal(wide.get_weights()[0], model.get_weights()[0].astype(np.float64))
    # a weights file is not a model
    with pytest.raises(InvalidModelFileError, match="weights file"):
        fastnn.load_model(tmp_path / "w.weights.h5")


def test_load_weights_shape_mismatch_and_skip_mismatch(tmp_path):
    model = small_model(hidden=16)
    model.save_weights(tmp_path / "w")
    other = small_model(hidden=8, seed=3)
    before = other.get_weights()
    with pytest.raises(InvalidModelFileError, match=r"hidden/kernel.*\(64, 8\).*\(64, 16\)"):
        other.load_weights(tmp_path / "w")
    assert all(np.array_equal(a, b) for a, b in zip(before, other.get_weights()))  # untouched
    # skip_mismatch: the hidden layer differs, the output layer too (8 vs 16 inputs) -> all skipped
    same_top = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                                  layers.Dense(4)])
    with pytest.warns(UserWarning, match="skipping layer"):
        same_top.load_weights(tmp_path / "w", skip_mismatch=True)
    assert np.array_equal(same_top.layers[0].kernel.value, model.layers[0].kernel.value)


def test_overwrite_false_and_directory_target(tmp_path):
    model = small_model()
    model.save(tmp_path / "m")
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "m", overwrite=False)
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)


def test_same_model_saves_same_bytes(tmp_path):
    model = small_model()
    model.save(tmp_path / "a")
    model.save(tmp_path / "b")
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


# ---- custom layers ----------------------------------------------------------------------------
class Scale(layers.Layer):
    """A custom layer with one weight, a config argument and its own random generator."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self._rng = np.random.default_rng(7)

    def build(self, input_shape):
        self.w = self.add_weight((input_shape[-1],), "ones", "w")

    def call(self, x, training=False):
        return x * self.w.value * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def test_custom_layer_by_registration_or_custom_objects(tmp_path):
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(3,)), Scale(3.0, name="scale")])
    model.layers[0].w.assign([1.0, 2.0, 3.0])
    model.layers[0]._rng.random(5)  # advance: the layer's generator state must round-trip
    model.save(tmp_path / "m")
    # not registered: a clear error naming the class and the fix
    layers._REGISTRY.pop("Scale", None)
    with pytest.raises(InvalidModelFileError, match=r"Unknown layer class 'Scale'.*register"):
        fastnn.load_model(tmp_path / "m")
    loaded = fastnn.load_model(tmp_path / "m", custom_objects={"Scale": Scale})
    assert loaded.layers[0].factor == 3.0
    assert np.array_equal(loaded.predict(np.ones((1, 3)), verbose=0), [[3.0, 6.0, 9.0]])
    assert loaded.layers[0]._rng.random() == model.layers[0]._rng.random()
    try:
        layers.register(Scale)
        assert isinstance(fastnn.load_model(tmp_path / "m").layers[0], Scale)
    finally:
        layers._REGISTRY.pop("Scale", None)
    try:
        layers.register(name="Scale")(Scale)  # decorator form
        assert isinstance(fastnn.load_model(tmp_path / "m").layers[0], Scale)
    finally:
        layers._REGISTRY.pop("Scale", None)
    with pytest.raises(TypeError, match="Layer subclass"):
        layers.register(dict)
    saving.register_keras_serializable()(Scale)
    try:
        assert isinstance(fastnn.load_model(tmp_path / "m").layers[0], Scale)
    finally:
        layers._REGISTRY.pop("Scale", None)


# ---- resume bit for bit -------------------------------------------------------------------
class HalvingSchedule(optimizers.schedules.LearningRateSchedule):
    """A step schedule (registered below) so the schedule's position must round-trip."""

    def __init__(self, initial=0.1, every=7):
        self.initial, self.every = initial, every

    def __call__(self, step):
        return self.initial * 0.5 ** (step // self.every)

    def get_config(self):
        return {"initial": self.initial, "every": self.every}


optimizers.schedules._REGISTRY["HalvingSchedule"] = HalvingSchedule


def _optimizer_factories():
    out = [("sgd_momentum_schedule", lambda: optimizers.SGD(HalvingSchedule(0.1, 7), momentum=0.9)),
           ("sgd_nesterov", lambda: optimizers.SGD(0.05, momentum=0.8, nesterov=True))]
    # Optimizers other engineers add are covered automatically once they exist.
    for name in ("Adam", "RMSprop", "Adagrad", "Nadam", "Adamax", "AdamW"):
        cls = getattr(optimizers, name, None)
        if cls is not None:
            out.append((name.lower(), lambda cls=cls: cls(learning_rate=0.01)))
    return out


@pytest.mark.parametrize("name,make_opt", _optimizer_factories(), ids=[n for n, _ in _optimizer_factories()])
def test_resume_is_bit_for_bit(tmp_path, digits, name, make_opt):
    x, y, _, _ = digits
    x, y = x[:160], y[:160]
    straight = small_model(seed=3, optimizer=make_opt())
    straight.fit(x, y, epochs=6, batch_size=32, verbose=0)

    first = small_model(seed=3, optimizer=make_opt())
    first.fit(x, y, epochs=3, batch_size=32, verbose=0)
    first.save(tmp_path / "ckpt")
    fastnn.set_seed(12345)  # anything that happens in between must not matter
    fastnn.backend.rng().random(100)
    resumed = fastnn.load_model(tmp_path / "ckpt")
    assert resumed.optimizer.iterations == first.optimizer.iterations
    resumed.fit(x, y, epochs=6, initial_epoch=3, batch_size=32, verbose=0)
    assert resumed.optimizer.iterations == straight.optimizer.iterations
    assert resumed.optimizer.learning_rate == straight.optimizer.learning_rate
    assert_same_weights(straight, resumed)
    for a, b in zip(straight.weights, resumed.weights):  # optimizer state too
        sa, sb = straight.optimizer.state_of(a), resumed.optimizer.state_of(b)
        assert sorted(sa) == sorted(sb)
        for k in sa:
            assert np.array_equal(sa[k], sb[k]), k


def test_resume_from_model_checkpoint(tmp_path, digits):
    """The usual workflow: ModelCheckpoint saves every epoch; after a crash, load the last
    file and continue with initial_epoch: the same weights as an uninterrupted run."""
    x, y, _, _ = digits
    straight = small_model(seed=4)
    straight.fit(x, y, epochs=4, batch_size=50, verbose=0)
    crashed = small_model(seed=4)
    ckpt = fastnn.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.keras"))
    stop = fastnn.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: setattr(crashed, "stop_training", epoch == 1))
    crashed.fit(x, y, epochs=4, batch_size=50, verbose=0, callbacks=[ckpt, stop])
    assert crashed.optimizer.iterations == 2 * 6
    resumed = fastnn.load_model(tmp_path / "ckpt.keras")
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=50, verbose=0)
    assert_same_weights(straight, resumed)


def test_plain_callable_learning_rate_is_saved_as_its_value_with_a_warning(tmp_path):
    model = small_model(optimizer=optimizers.SGD(lambda: 0.025))
    with pytest.warns(UserWarning, match="plain callable"):
        model.save(tmp_path / "m")
    assert fastnn.load_model(tmp_path / "m").optimizer.learning_rate == 0.025


def test_many_layers_limit(saved):
    # Sequential.add rebuilds the stack at each layer: the limit also bounds that O(n^2) time
    _edit_meta(saved, lambda m: m["model"].update(layers=[{"class_name": "ReLU"}] * 1001))
    with pytest.raises(InvalidModelFileError, match="1001 layers"):
        fastnn.load_model(saved)


def test_save_refuses_a_model_the_loader_would_refuse(tmp_path):
    model = fastnn.Sequential([layers.ReLU() for _ in range(saving.MAX_LAYERS + 1)])
    with pytest.raises(ValueError, match="1001 layers.*1000"):
        model.save(tmp_path / "m")
    assert os.listdir(tmp_path) == []


def test_restore_rng_false_leaves_global_generator(tmp_path):
    model = small_model()
    model.save(tmp_path / "m")
    fastnn.set_seed(99)
    expected = np.random.default_rng(99).random()
    fastnn.load_model(tmp_path / "m", restore_rng=False)
    assert fastnn.backend.rng().random() == expected


# ---- atomicity ------------------------------------------------------------------------------
def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch):
    model = small_model()
    target = tmp_path / "m"
    model.save(target)
    good = target.read_bytes()

    def broken(f, meta, arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(saving, "_write_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    assert target.read_bytes() == good
    assert os.listdir(tmp_path) == ["m"]


def test_disk_full_error_names_the_file_being_saved(tmp_path, monkeypatch):
    model = small_model()
    target = tmp_path / "m.keras"

    def full(f, raw_meta, arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as write() raises it: no name
    monkeypatch.setattr(saving, "_write_archive", full)
    with pytest.raises(OSError, match="No space left on device while saving .*m.keras") as info:
        model.save(target)
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_save_removes_stale_temp_files_and_nothing_else(tmp_path):
    host = saving._host_tag()
    dead, alive = _dead_pid(), os.getpid()
    stale = [f".m.keras.fastnn-{dead}-{host}.k2j3h4g5.tmp",        # its saver was killed
             f".other.fastnn-{alive}-{'0' * 8}.abcdefgh.tmp"]      # untouched for two hours
    kept = [f".m.keras.fastnn-{alive}-{host}.x7y8z9w0.tmp",        # a save in progress
            f".m.keras.fastnn-{dead}-{'f' * 8}.k2j3h4g5.tmp",      # another host's, still fresh
            f".m.keras.{dead}.k2j3h4g5.tmp", "notes.tmp", ".m.keras.tmp", "m.keras.bak"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / stale[1], (two_hours_ago, two_hours_ago))
    os.mkdir(tmp_path / f".d.fastnn-{dead}-{host}.abcdefgh.tmp")  # not a regular file: kept
    kept.append(f".d.fastnn-{dead}-{host}.abcdefgh.tmp")
    small_model().save(tmp_path / "m.keras")
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["m.keras"])


SAVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {repo!r})
    import numpy as np, fastnn
    from fastnn import layers
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(1000,)), layers.Dense(1500), layers.Dense(1000)])
    model.compile(optimizer=fastnn.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_weights)
    i = 0
    while True:
        for v in model.weights:
            v.value[...] = i  # each save writes different bytes
        model.save({path!r})
        print(i, flush=True)
        i += 1
""")


def test_killed_saver_leaves_a_loadable_file(tmp_path):
    """A process saving a ~24 MB model in a loop is SIGKILLed at several moments; the file
    on disk must always be a complete, loadable save (the old one or the new one)."""
    target = str(tmp_path / "big.keras")
    script = SAVER.format(repo=REPO, path=target)
    rng = np.random.default_rng(0)
    mid_save_kills = 0
    for trial in range(8):
        if trial >= 3 and mid_save_kills:
            break
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()  # one save completed
            assert line.strip().isdigit(), proc.stderr.read()
            time.sleep(float(rng.uniform(0.0, 0.4)))  # land somewhere inside a later save
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        loaded = fastnn.load_model(target, restore_rng=False)
        values = {float(v.value.flat[0]) for v in loaded.weights}
        assert len(values) == 1  # all weights from the same save, never a mix
        strays = [n for n in os.listdir(tmp_path) if n != "big.keras"]
        assert all(n.startswith(".big.keras.") and n.endswith(".tmp") for n in strays)
        mid_save_kills += bool(strays)  # a temp file left behind: the kill hit a save
        for n in strays:
            os.unlink(tmp_path / n)
    assert mid_save_kills, "no kill landed inside a save; the test did not exercise atomicity"


# ---- broken and hostile files ---------------------------------------------------------------
def _entries(path):
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def _rewrite(path, entries, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


def _edit_meta(path, edit):
    entries = _entries(path)
    meta = json.loads(entries["fastnn.json"])
    edit(meta)
    entries["fastnn.json"] = json.dumps(meta).encode()
    _rewrite(path, entries)


@pytest.fixture
def saved(tmp_path, digits):
    x, y, _, _ = digits
    model = small_model()
    model.fit(x[:64], y[:64], epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    return path


def _npy(arr, **kw):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("cut", [0.5, 0.9, -1, -22, 100])
def test_truncated_file(saved, cut):
    data = saved.read_bytes()
    n = int(len(data) * cut) if isinstance(cut, float) else (len(data) + cut if cut < 0 else cut)
    saved.write_bytes(data[:n])
    with pytest.raises(InvalidModelFileError, match="truncated|corrupted"):
        fastnn.load_model(saved)


def test_bit_flip_in_weights_is_caught_by_crc(saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("w00000.npy")
    # the local header is 30 bytes + name + extra; flip a byte deep inside the array data
    data[info.header_offset + 30 + len(info.filename) + 500] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(InvalidModelFileError, match="w00000.npy.*CRC|CRC.*w00000"):
        fastnn.load_model(saved)


@pytest.mark.parametrize("content,match", [
    (b"", "empty"),
    (b"not a model at all" * 10, "not a fastnn file"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "HDF5"),
])
def test_not_a_fastnn_file(tmp_path, content, match):
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(InvalidModelFileError, match=match):
        fastnn.load_model(tmp_path / "f")


def test_plain_npz_and_bad_json(tmp_path, saved):
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(InvalidModelFileError, match="fastnn.json.*missing"):
        fastnn.load_model(tmp_path / "plain.npz")
    entries = _entries(saved)
    entries["fastnn.json"] = b"{not json"
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="not valid JSON"):
        fastnn.load_model(saved)
    entries["fastnn.json"] = b"[" * 100000 + b"]" * 100000
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="not valid JSON|format"):
        fastnn.load_model(saved)


@pytest.mark.parametrize("version", [2, 999, 0, "1", None])
def test_wrong_format_version(saved, version):
    _edit_meta(saved, lambda m: m.update(format_version=version))
    with pytest.raises(InvalidModelFileError, match="format.version"):
        fastnn.load_model(saved)


def test_missing_weight_entry(saved):
    entries = _entries(saved)
    del entries["w00001.npy"]
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="w00001.npy.*missing"):
        fastnn.load_model(saved)


_UNPICKLED = []


def _mark_unpickled():
    _UNPICKLED.append(True)
    return 0.0


class Bomb:
    def __reduce__(self):
        return (_mark_unpickled, ())


@pytest.mark.parametrize("manifest_dtype", ["float32", "object", "O"])
def test_pickle_bearing_npy_is_refused_without_unpickling(saved, manifest_dtype):
    entries = _entries(saved)
    bomb = np.empty(64 * 16, dtype=object)
    bomb[:] = [Bomb() for _ in range(bomb.size)]
    entries["w00000.npy"] = _npy(bomb.reshape(64, 16), allow_pickle=True)
    meta = json.loads(entries["fastnn.json"])
    meta["weights"][0]["dtype"] = manifest_dtype
    entries["fastnn.json"] = json.dumps(meta).encode()
    _rewrite(saved, entries)
    _UNPICKLED.clear()
    with pytest.raises(InvalidModelFileError, match="Python objects|not allowed"):
        fastnn.load_model(saved)
    assert not _UNPICKLED
    assert pickle.dumps(Bomb())  # the payload was a real pickle


def test_npy_header_disagreeing_with_manifest(saved):
    entries = _entries(saved)
    entries["w00000.npy"] = _npy(np.zeros((16, 64), np.float32))  # transposed shape
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match=r"shape \(16, 64\).*needs \(64, 16\)"):
        fastnn.load_model(saved)
    entries["w00000.npy"] = _npy(np.zeros((64, 16), np.float64))
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="dtype <f8.*float32"):
        fastnn.load_model(saved)
    entries["w00000.npy"] = _npy(np.zeros((64, 16), np.float32)) + b"extra"
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="data after"):
        fastnn.load_model(saved)
    entries["w00000.npy"] = b"\x93NUMPY\x01\x00" + b"\xff\xff" + b"{" * 100
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="npy header|header"):
        fastnn.load_model(saved)


def test_absurd_shapes_never_allocate(saved):
    # 1) the manifest claims an enormous array: refused before anything is built
    _edit_meta(saved, lambda m: m["weights"][0].update(shape=[10 ** 9, 10 ** 9]))
    with pytest.raises(InvalidModelFileError, match="too few|declares"):
        fastnn.load_model(saved)


def test_absurd_architecture_is_refused_before_allocation(saved):
    # 2) the manifest is honest but the architecture asks for a 10^6 x 10^6 kernel
    def edit(m):
        m["model"]["layers"][1]["config"]["units"] = 10 ** 6
    _edit_meta(saved, edit)
    with pytest.raises(InvalidModelFileError, match=r"creates shape \(64, 1000000\).*holds \(64, 16\)"):
        fastnn.load_model(saved)

    def edit_input(m):
        m["model"]["layers"][0]["config"]["shape"] = [10 ** 12]
    _edit_meta(saved, edit_input)
    with pytest.raises(InvalidModelFileError, match="creates shape"):
        fastnn.load_model(saved)


def _refusal_cost(path, match):
    """(seconds, peak bytes) load_model takes to refuse ``path``."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidModelFileError, match=match):
            fastnn.load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    t0 = time.perf_counter()
    with pytest.raises(InvalidModelFileError, match=match):
        fastnn.load_model(path)
    return time.perf_counter() - t0, peak


def _bomb_metadata(nbytes):
    meta = {"format": "fastnn", "kind": "model", "format_version": 1, "weights": [],
            "model": {"name": "m", "layers": []}, "pad": ""}
    return json.dumps(meta).replace('"pad": ""', '"pad": "' + "a" * nbytes + '"').encode()


def test_compressed_metadata_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("fastnn.json", _bomb_metadata(63 << 20))  # 63 MB of JSON in ~64 KB
    assert path.stat().st_size < 100_000
    seconds, peak = _refusal_cost(path, "metadata.*compressed.*not written by fastnn")
    assert seconds < 0.1 and peak < 50 << 20


def test_oversized_metadata_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fastnn.json", _bomb_metadata(saving.MAX_METADATA_BYTES))
    seconds, peak = _refusal_cost(path, r"metadata entry holds \d+ bytes, more than the 1048576")
    assert seconds < 0.1 and peak < 10 << 20


def test_metadata_cap_leaves_a_wide_margin_for_real_models(tmp_path):
    """A 100-layer model whose Dense layers all carry initializer, regularizer and constraint
    configs, with Adam: its metadata is a small fraction of the cap; and the largest model the
    loader accepts (MAX_LAYERS such layers) still fits under it."""
    def block():
        return [layers.Dense(8, kernel_initializer=initializers.VarianceScaling(2.0, "fan_out"),
                             kernel_regularizer=regularizers.L1L2(1e-5, 1e-4),
                             bias_regularizer="l2", activity_regularizer="l1",
                             kernel_constraint=constraints.MinMaxNorm(), bias_constraint="non_neg"),
                layers.BatchNormalization(), layers.Dropout(0.1), layers.PReLU()]
    model = fastnn.Sequential([layers.Input(shape=(8,))] + [l for _ in range(25) for l in block()])
    model.compile(optimizer=optimizers.Adam(clipnorm=1.0), loss="mse", metrics=["mae"])
    model.fit(np.zeros((4, 8)), np.zeros((4, 8)), verbose=0)
    model.save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m") as zf:
        size = zf.getinfo("fastnn.json").file_size
    assert size * saving.MAX_LAYERS / 100 < saving.MAX_METADATA_BYTES
    assert_same_weights(fastnn.load_model(tmp_path / "m"), model)


def test_compressed_array_entry_is_refused(saved):
    entries = _entries(saved)
    with zipfile.ZipFile(saved, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED if name == "w00001.npy"
                        else zipfile.ZIP_STORED)
    with pytest.raises(InvalidModelFileError, match="'w00001.npy' is compressed"):
        fastnn.load_model(saved)
    with pytest.raises(InvalidModelFileError, match="'w00001.npy' is compressed"):
        small_model().load_weights(saved)


@pytest.mark.parametrize("extra", ["payload.pkl", "w00099.npy", "dir/"])
def test_entries_not_in_the_manifest_are_refused(saved, extra):
    entries = _entries(saved)
    entries[extra] = b"" if extra.endswith("/") else _npy(np.zeros(3, np.float32))
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match=f"not in the manifest: '{extra}'"):
        fastnn.load_model(saved)
    with pytest.raises(InvalidModelFileError, match=f"not in the manifest: '{extra}'"):
        small_model().load_weights(saved)


def test_an_entry_named_twice_is_refused(saved):
    entries = _entries(saved)
    with zipfile.ZipFile(saved, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("w00000.npy", entries["w00000.npy"])
    with pytest.raises(InvalidModelFileError, match="'w00000.npy' appears 2 times"):
        fastnn.load_model(saved)


def _load_in_thread(load, path):
    """The exception ``load(path)`` raises, or the test fails if it blocks (then unblocked)."""
    result = []
    thread = threading.Thread(target=lambda: result.append(_raised(load, path)), daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():  # a reader blocked on the FIFO: give it a writer, then EOF
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail(f"loading {path} blocked")
    return result[0]


def _raised(load, path):
    try:
        load(path)
    except Exception as err:  # noqa: BLE001 - returned to the test to check
        return err
    return None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = str(tmp_path / "m.keras")
    os.mkfifo(fifo)
    for load in (fastnn.load_model, small_model().load_weights):
        err = _load_in_thread(load, fifo)
        assert isinstance(err, InvalidModelFileError), err
        assert "FIFO" in str(err) and "regular file" in str(err) and "m.keras" in str(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_swapped_in_after_the_check_is_refused_without_blocking(tmp_path, monkeypatch):
    """stat() said regular file, then the path became a FIFO: the O_NONBLOCK open returns at
    once and fstat refuses what was actually opened."""
    regular, fifo = tmp_path / "real", str(tmp_path / "m.keras")
    regular.write_bytes(b"x")
    os.mkfifo(fifo)
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(regular if os.fspath(p) == fifo
                                                                 else p, *a, **k))
    err = _load_in_thread(fastnn.load_model, fifo)
    assert isinstance(err, InvalidModelFileError) and "FIFO" in str(err), err


@pytest.mark.skipif(not (os.path.exists("/dev/null") and stat.S_ISCHR(os.stat("/dev/null").st_mode)),
                    reason="no /dev/null character device")
def test_device_is_refused():
    with pytest.raises(InvalidModelFileError, match="character device.*regular file"):
        fastnn.load_model("/dev/null")


def test_overlapping_or_compressed_entries_are_refused(saved):
    entries = _entries(saved)
    _rewrite(saved, entries, compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(InvalidModelFileError, match="compressed"):
        fastnn.load_model(saved)


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["model"]["layers"][1].update(class_name="Evil"), "Unknown layer class 'Evil'"),
    (lambda m: m["model"]["layers"][1].update(class_name="__import__"), "Unknown layer class"),
    (lambda m: m["model"]["layers"][1]["config"].update(exec="print(1)"), "unexpected keyword"),
    (lambda m: m["model"]["layers"][1]["config"].update(dtype="object"), "dtype"),
    (lambda m: m["model"].update(layers="x"), "architecture"),
    (lambda m: m["compile"]["optimizer"].update(class_name="os.system"), "optimizer"),
    (lambda m: m["compile"]["loss"].update(class_name="eval"), "eval"),
    (lambda m: m["compile"].update(metrics=[{"class_name": "open", "config": {}}]), "open"),
    (lambda m: m["optimizer_state"].update(iterations=-3), "iterations"),
    (lambda m: m["optimizer_state"]["variables"][0].update(weight=99), "weight 99"),
    (lambda m: m["optimizer_state"]["variables"][0]["arrays"].update(
        extra=m["optimizer_state"]["variables"][0]["arrays"]["momentum"]), "used twice|slots"),
    (lambda m: m["weights"][0].update(dtype="V1000000000"), "not allowed"),
    (lambda m: m["weights"][0].update(dtype="(1000000000,)f8"), "not allowed"),
    (lambda m: m["weights"][0].update(dtype=">f4"), "not allowed"),
    (lambda m: m["weights"][0].update(dtype=["f4"]), "not allowed"),
    (lambda m: m["weights"][0].update(shape=[64, -16]), "bad shape"),
    (lambda m: m["weights"][0].update(shape=[64.0, 16]), "bad shape"),
    (lambda m: m["weights"][0].update(entry={"a": 1}), "bad entry"),
    (lambda m: (m["weights"].pop(), m.update(optimizer_state=None)), "not in the manifest"),
    (lambda m: m["rng"]["global"].update(bit_generator="Evil"), "random-generator"),
    (lambda m: m["rng"]["global"]["state"].update(state="x"), "random-generator"),
    (lambda m: m.update(kind="pickle"), "unknown kind"),
])
def test_hostile_metadata_is_refused(saved, edit, match):
    _edit_meta(saved, edit)
    with pytest.raises(InvalidModelFileError, match=match):
        fastnn.load_model(saved)


def test_architecture_creating_more_weights_than_the_file_is_refused(saved):
    entries = _entries(saved)
    meta = json.loads(entries["fastnn.json"])
    dropped = [meta["weights"].pop()["entry"]]
    dropped += [a["entry"] for slot in meta.pop("optimizer_state")["variables"]
                for a in slot["arrays"].values()]
    entries = {n: d for n, d in entries.items() if n not in dropped}
    entries["fastnn.json"] = json.dumps(dict(meta, optimizer_state=None)).encode()
    _rewrite(saved, entries)
    with pytest.raises(InvalidModelFileError, match="more weights than the file"):
        fastnn.load_model(saved)


def test_refused_load_changes_nothing(saved):
    """A file that fails validation late (optimizer state) must not have rewound the RNG."""
    _edit_meta(saved, lambda m: m["optimizer_state"]["variables"][0]["arrays"]["momentum"].update(
        shape=[3]))
    fastnn.set_seed(4)
    expected = np.random.default_rng(4).random()
    with pytest.raises(InvalidModelFileError, match="momentum"):
        fastnn.load_model(saved)
    assert fastnn.backend.rng().random() == expected


# ---- every layer type, and the state of stochastic layers ------------------------------------
def zoo_model(x, seed=0):
    """Every built-in layer type with non-default arguments (the dropout family and BN too)."""
    fastnn.set_seed(seed)
    norm = layers.Normalization()
    norm.adapt(x)
    model = fastnn.Sequential([
        layers.Input(shape=(64,)), norm,
        layers.Dense(24, kernel_initializer=initializers.VarianceScaling(2.0, "fan_out", "uniform"),
                     bias_initializer=initializers.Constant(0.1),
                     kernel_regularizer=regularizers.L1L2(1e-5, 1e-4), bias_regularizer="l2",
                     activity_regularizer=regularizers.l1(1e-6),
                     kernel_constraint=constraints.MinMaxNorm(0.1, 2.0, 0.5),
                     bias_constraint=constraints.non_neg()),
        layers.BatchNormalization(momentum=0.9, epsilon=1e-4), layers.LeakyReLU(0.1),
        layers.Dropout(0.2), layers.GaussianNoise(0.05), layers.Reshape((4, 6)), layers.Flatten(),
        layers.Maxout(12, pieces=2), layers.PReLU(), layers.GaussianDropout(0.1),
        layers.Dense(12, activation="selu", kernel_initializer="lecun_normal"),
        layers.AlphaDropout(0.05), layers.LayerNormalization(), layers.ELU(0.5),
        layers.Activation("tanh"), layers.ReLU(negative_slope=0.01),
        layers.DropConnectDense(10, rate=0.1), layers.Softmax(),
    ])
    model.compile(optimizer=optimizers.Adam(1e-3, clipnorm=1.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", "sparse_top_k_categorical_accuracy"]
                  if "sparse_top_k_categorical_accuracy" in fastnn.metrics._BY_NAME else ["accuracy"])
    return model


def test_every_layer_type_round_trips(tmp_path, digits):
    x, y, xt, yt = digits
    model = zoo_model(x)
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "zoo")
    loaded = fastnn.load_model(tmp_path / "zoo")
    assert loaded.get_config() == model.get_config()
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    assert_same_weights(model, loaded)
    assert [v.trainable for v in loaded.weights] == [v.trainable for v in model.weights]
    np.testing.assert_array_equal(loaded.predict(xt, verbose=0), model.predict(xt, verbose=0))
    # training-mode outputs too: every dropout-family layer continues the same random stream
    np.testing.assert_array_equal(loaded(xt, training=True), model(xt, training=True))
    assert loaded.evaluate(xt, yt, verbose=0) == model.evaluate(xt, yt, verbose=0)


def test_resume_with_batchnorm_and_dropout_is_bit_for_bit(tmp_path, digits):
    x, y, _, _ = digits
    straight = zoo_model(x, seed=2)
    straight.fit(x, y, epochs=4, batch_size=64, verbose=0)
    first = zoo_model(x, seed=2)
    first.fit(x, y, epochs=2, batch_size=64, verbose=0)
    first.save(tmp_path / "ckpt")
    fastnn.set_seed(777)
    resumed = fastnn.load_model(tmp_path / "ckpt")
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0)
    assert_same_weights(straight, resumed)  # includes BatchNormalization's moving statistics


@pytest.mark.parametrize("edit,match", [
    (lambda m: m["layer_state"].append({"layer": 0, "attr": "units", "value": 10 ** 9}),
     "no saved attribute 'units'"),
    (lambda m: m["layer_state"].append({"layer": 4, "attr": "_calls", "value": 10 ** 30}),
     "invalid value"),
    (lambda m: m["layer_state"].append({"layer": 4, "attr": "_calls", "value": [1]}),
     "invalid value"),
    (lambda m: m["layer_state"].append({"layer": 99, "attr": "_calls", "value": 1}),
     "does not exist"),
])
def test_hostile_layer_state_is_refused(tmp_path, digits, edit, match):
    model = zoo_model(digits[0])
    model.save(tmp_path / "zoo")
    _edit_meta(tmp_path / "zoo", edit)
    with pytest.raises(InvalidModelFileError, match=match):
        fastnn.load_model(tmp_path / "zoo")
