"""What fit / evaluate / predict take beyond one in-memory float array: uint8 and other
dtypes converted per batch, memory-mapped files read batch by batch, Python generators and
PyDatasets (with thread and process workers), and the errors each one gives."""
import multiprocessing
import os
import re
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn.training import data as data_module
from fastnn.utils import PyDataset


def make_model(seed=0, features=12, dropout=False):
    fastnn.set_seed(seed)
    stack = [layers.Input(shape=(features,)), layers.Dense(16, activation="relu")]
    if dropout:
        stack.append(layers.Dropout(0.2))
    model = fastnn.Sequential(stack + [layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def uint8_data(n=96, features=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, features), dtype=np.uint8), rng.integers(0, 3, n)


def assert_same_weights(a, b):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)


# ---- arrays of other dtypes, converted per batch ------------------------------------------
@pytest.mark.parametrize("shuffle", [True, False])
def test_uint8_input_trains_as_the_same_values_in_float32(shuffle):
    x, y = uint8_data()
    # each model is made (seeding) right before its fit: shuffling draws from the seeded RNG
    a = make_model(dropout=True)
    a.fit(x, y, batch_size=10, epochs=2, shuffle=shuffle, verbose=0, validation_split=0.25)
    b = make_model(dropout=True)
    b.fit(x.astype(np.float32), y, batch_size=10, epochs=2, shuffle=shuffle, verbose=0,
          validation_split=0.25)
    assert_same_weights(a, b)
    assert np.array_equal(a.predict(x, verbose=0), b.predict(x.astype(np.float32), verbose=0))
    assert a.evaluate(x, y, verbose=0) == b.evaluate(x.astype(np.float32), y, verbose=0)


def test_uint8_input_is_never_copied_whole(monkeypatch):
    """fit keeps the user's array and converts batch by batch: no array of x's size in the
    model's dtype is made (the conversion helper never sees more than a batch)."""
    x, y = uint8_data(n=200)
    seen = []
    real = np.copyto

    def spy(dst, src, *args, **kwargs):
        seen.append(np.shape(src)[0] if np.ndim(src) else 0)
        return real(dst, src, *args, **kwargs)
    monkeypatch.setattr(data_module.np, "copyto", spy)
    model = make_model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert seen and max(seen) <= 16


def test_fortran_ordered_float64_input_gives_the_same_weights():
    x, y = uint8_data()
    xf = np.asfortranarray(x.astype(np.float64) / 255)
    a = make_model()
    a.fit(xf, y, batch_size=8, epochs=2, verbose=0)
    b = make_model()
    b.fit(np.ascontiguousarray(xf, dtype=np.float32), y, batch_size=8, epochs=2, verbose=0)
    assert_same_weights(a, b)


def test_float64_value_too_large_for_float32_is_named_as_an_overflow():
    x, y = uint8_data()
    x = x.astype(np.float64)
    x[5, 3] = 1e39
    model = make_model()
    with pytest.raises(ValueError, match=r"overflows float32.*1e\+39 at index \(5, 3\)"):
        model.fit(x, y, verbose=0)
    x[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(first at index \(5, 3\)\)"):
        model.fit(x, y, verbose=0)


def test_non_finite_in_memory_input_is_refused_before_any_step():
    x, y = uint8_data()
    x = x.astype(np.float32)
    x[-1, 0] = np.inf
    model = make_model()
    before = model.get_weights()
    with pytest.raises(ValueError, match="NaN or inf"):
        model.fit(x, y, batch_size=8, verbose=0)
    assert model.optimizer.iterations == 0
    for w0, w1 in zip(before, model.get_weights()):
        assert np.array_equal(w0, w1)


# ---- memory-mapped files ------------------------------------------------------------------
@pytest.fixture
def npy_file(tmp_path):
    x, y = uint8_data(n=120)
    x = (x / 255).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path, x, y


@pytest.mark.parametrize("shuffle", [True, False])
def test_memory_mapped_npy_trains_to_the_same_weights_as_in_memory(npy_file, shuffle):
    path, x, y = npy_file
    xm = np.load(path, mmap_mode="r")
    a = make_model()
    a.fit(xm, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0, validation_split=0.2)
    b = make_model()
    b.fit(x, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0, validation_split=0.2)
    assert_same_weights(a, b)
    assert np.array_equal(a.predict(xm, verbose=0), b.predict(x, verbose=0))


def test_memory_mapped_input_stays_a_memory_map(npy_file):
    path, x, y = npy_file
    xm = np.load(path, mmap_mode="r")
    model = make_model()
    adapter = model._array_data(xm, y, None, None, "fit", 16, shuffle=True)
    assert isinstance(adapter.x, np.memmap) and adapter.x is xm  # never read whole


def rss_file_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssFile"))


@pytest.fixture
def file_48mib(tmp_path):
    rows = 48 * 1024 * 1024 // (64 * 4)
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(rows, 64))
    x[:] = 0.5
    x.flush()
    del x
    y = np.zeros(rows, np.int64)

    def grown_by_fit():
        xm = np.load(tmp_path / "x.npy", mmap_mode="r")
        model = make_model(features=64)
        before = rss_file_bytes()
        model.fit(xm, y, batch_size=512, epochs=1, steps_per_epoch=40, verbose=0)
        return rss_file_bytes() - before
    return grown_by_fit


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_memory_mapped_file_is_read_without_mapping_its_pages(file_48mib, monkeypatch):
    """fit reads a memory map's rows from its file (pread): resident memory does not grow
    with the rows read; through the mapping (no release) the file ends up resident."""
    assert file_48mib() < 4 << 20
    monkeypatch.setattr(data_module, "file_rows_of", lambda x: None)
    monkeypatch.setattr(data_module.MappedPages, "release", lambda self: None)
    assert file_48mib() > 32 << 20  # the check can fail


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_pages_of_a_map_read_through_the_mapping_do_not_pile_up(file_48mib, monkeypatch):
    """Where the file cannot be read directly, the mapping's pages are dropped as they pile
    up (a 4 MiB budget here, one row between checks)."""
    monkeypatch.setattr(data_module, "file_rows_of", lambda x: None)
    monkeypatch.setattr(data_module, "_RELEASE_BYTES", 4 << 20)
    monkeypatch.setattr(data_module, "_MAPPED_ROWS_PER_CHECK", 1)
    assert file_48mib() < 12 << 20


@pytest.mark.parametrize("shuffle", [True, False])
def test_memory_map_read_through_the_mapping_trains_as_in_memory(npy_file, shuffle, monkeypatch):
    path, x, y = npy_file
    monkeypatch.setattr(data_module, "file_rows_of", lambda x: None)
    a = make_model()
    a.fit(np.load(path, mmap_mode="r"), y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0)
    b = make_model()
    b.fit(x, y, batch_size=16, epochs=2, shuffle=shuffle, verbose=0)
    assert_same_weights(a, b)


def test_file_rows_of_a_memmap_view_points_at_its_first_row(tmp_path):
    x = np.arange(60, dtype=np.float64).reshape(20, 3)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="r")[5:12]
    name, offset, file_id = data_module.file_rows_of(xm)
    st = os.stat(name)
    assert file_id == (st.st_dev, st.st_ino)
    with open(name, "rb") as f:
        f.seek(offset)
        assert np.array_equal(np.frombuffer(f.read(7 * 24), np.float64).reshape(7, 3), x[5:12])
    assert data_module.file_rows_of(np.load(tmp_path / "x.npy", mmap_mode="r")[:, :2]) is None
    assert data_module.file_rows_of(x) is None


def test_release_pages_keeps_a_memory_map_readable(npy_file):
    path, x, y = npy_file
    xm = np.load(path, mmap_mode="r")
    adapter = data_module.ArrayData(xm, y, None, np.float32, batch_size=16)
    first = adapter.batch(slice(0, 16))[0].copy()
    adapter.release_pages()
    assert np.array_equal(adapter.batch(slice(0, 16))[0], first)


def test_copy_on_write_memory_map_pages_are_never_released(tmp_path):
    """madvise(DONTNEED) would throw away the user's changes to a mode='c' map."""
    x = np.zeros((4, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    xm = np.load(tmp_path / "x.npy", mmap_mode="c")
    assert data_module.memory_map_of(xm) is None
    assert data_module.memory_map_of(np.load(tmp_path / "x.npy", mmap_mode="r")[1:]) is not None


def test_nan_in_a_memory_mapped_file_names_the_batch_and_row(npy_file):
    path, x, y = npy_file
    x = x.copy()
    x[37, 2] = np.nan
    np.save(path, x)
    model = make_model()
    with pytest.raises(ValueError, match=r"NaN or inf \(batch 2\) \(first at index \(37, 2\)\)"):
        model.fit(np.load(path, mmap_mode="r"), y, batch_size=16, shuffle=False, verbose=0)
    # the steps before it were taken; the model is usable
    assert model.optimizer.iterations == 2
    assert np.isfinite(model.predict(x[:5], verbose=0)).all()


# ---- generators ---------------------------------------------------------------------------
def batches(x, y, batch_size, forever=False, w=None):
    while True:
        for lo in range(0, len(x), batch_size):
            if w is None:
                yield x[lo:lo + batch_size], y[lo:lo + batch_size]
            else:
                yield x[lo:lo + batch_size], y[lo:lo + batch_size], w[lo:lo + batch_size]
        if not forever:
            return


def test_generator_with_steps_per_epoch_trains_as_the_same_batches_from_arrays():
    x, y = uint8_data()
    x = x.astype(np.float32) / 255
    a, b = make_model(), make_model()
    a.fit(batches(x, y, 12, forever=True), steps_per_epoch=8, epochs=3, verbose=0)
    b.fit(x, y, batch_size=12, epochs=3, shuffle=False, verbose=0)
    assert a.optimizer.iterations == 24
    assert_same_weights(a, b)


def test_generator_without_steps_learns_its_length_in_the_first_epoch():
    x, y = uint8_data(n=60)
    model = make_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(batches(x, y, 20), epochs=3, verbose=0)
    # the first pass is one epoch of 3 batches; a generator cannot be read twice: the second
    # epoch finds it empty, says so and stops training
    assert model.optimizer.iterations == 3
    assert len(history.history["loss"]) == 1
    assert any("ran out of data" in str(w.message) and "steps_per_epoch" in str(w.message)
               for w in caught)


def test_generator_progress_bar_shows_unknown_then_the_learned_length(capsys):
    x, y = uint8_data(n=40)
    make_model().fit(batches(x, y, 10), epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "/Unknown" in out and "4/4" in out


def test_generator_sample_weights_and_class_weight_match_arrays():
    x, y = uint8_data()
    w = np.linspace(0.2, 2.0, len(x))
    a, b = make_model(), make_model()
    a.fit(batches(x, y, 16, w=w), epochs=1, class_weight={0: 2.0}, verbose=0)
    b.fit(x, y, batch_size=16, shuffle=False, sample_weight=w, class_weight={0: 2.0}, verbose=0)
    assert_same_weights(a, b)


def test_evaluate_and_predict_take_generators():
    x, y = uint8_data()
    model = make_model()
    assert model.evaluate(batches(x, y, 32), verbose=0) == pytest.approx(
        model.evaluate(x, y, verbose=0), rel=1e-6)
    expected = model.predict(x, verbose=0)
    assert np.allclose(model.predict((xb for xb, _ in batches(x, y, 32)), verbose=0), expected)
    assert np.allclose(model.predict(batches(x, y, 32), verbose=0), expected)  # (x, y) tuples
    assert model.predict(batches(x, y, 32, forever=True), steps=2, verbose=0).shape == (64, 3)


def test_generator_builds_an_unbuilt_model_from_its_first_batch():
    x, y = uint8_data()
    model = fastnn.Sequential([layers.Dense(4, activation="relu"), layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(batches(x, y, 32), verbose=0)
    assert model.input_shape == (None, 12) and model.optimizer.iterations == 3


def test_bad_generator_batches_are_named():
    x, y = uint8_data()
    model = make_model()
    with pytest.raises(ValueError, match="must yield tuples.*batch 0 is a ndarray"):
        model.fit((xb for xb, _ in batches(x, y, 32)), verbose=0)

    def bad():
        yield x[:8], y[:8]
        xb = x[8:16].astype(np.float32)
        xb[3, 1] = np.nan
        yield xb, y[8:16]
    with pytest.raises(ValueError, match=r"batch 1 of the generator.*NaN or inf"):
        model.fit(bad(), verbose=0)

    def wrong_width():
        yield x[:8, :5], y[:8]
    with pytest.raises(ValueError, match=r"batch 0 of the generator.*expects \(batch, 12\)"):
        model.fit(wrong_width(), verbose=0)

    def short_y():
        yield x[:8], y[:7]
    with pytest.raises(ValueError, match="batch 0 of the generator"):
        model.fit(short_y(), verbose=0)
    with pytest.raises(ValueError, match="y and sample_weight must not be given"):
        model.fit(batches(x, y, 8), y, verbose=0)
    with pytest.raises(ValueError, match="validation_split is only supported for arrays"):
        model.fit(batches(x, y, 8), validation_split=0.2, verbose=0)


# ---- PyDataset ----------------------------------------------------------------------------
class ArrayDataset(PyDataset):
    """The batches of (x, y) in order; raises on batch ``fail_at``."""

    def __init__(self, x, y, batch_size, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.fail_at = x, y, batch_size, fail_at
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        if i == self.fail_at:
            raise KeyError(f"no such record {i}")
        lo = i * self.batch_size
        return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

    def on_epoch_end(self):
        self.epochs_ended += 1


def children():
    """This process's multiprocessing children (an earlier test's pool may still be exiting:
    each test compares with the set it started with)."""
    return {p.pid for p in multiprocessing.active_children()}


@pytest.mark.parametrize("workers,processes", [(1, False), (2, False), (2, True)])
def test_py_dataset_trains_to_the_weights_of_the_same_batches_as_arrays(workers, processes):
    before = children()
    x, y = uint8_data()
    x = x.astype(np.float32) / 255
    ds = ArrayDataset(x, y, 12, workers=workers, use_multiprocessing=processes)
    a = make_model(dropout=True)
    a.fit(ds, epochs=2, shuffle=False, verbose=0)
    b = make_model(dropout=True)
    b.fit(x, y, batch_size=12, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(a, b)
    assert ds.epochs_ended == 2
    assert children() <= before


def test_py_dataset_shuffle_permutes_batches_reproducibly():
    x, y = uint8_data()
    runs = []
    for _ in range(2):
        model = make_model()
        model.fit(ArrayDataset(x, y, 12), epochs=2, verbose=0)  # shuffle=True: batch order
        runs.append(model.get_weights())
    plain = make_model()
    plain.fit(ArrayDataset(x, y, 12), epochs=2, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    assert not all(np.array_equal(a, b) for a, b in zip(runs[0], plain.get_weights()))


@pytest.mark.parametrize("workers,processes", [(1, False), (2, False), (2, True)])
def test_py_dataset_error_names_the_batch_and_leaves_the_model_usable(workers, processes):
    before = children()
    x, y = uint8_data()
    ds = ArrayDataset(x, y, 12, fail_at=5, workers=workers, use_multiprocessing=processes)
    model = make_model()
    with pytest.raises(KeyError, match="no such record 5") as info:
        model.fit(ds, epochs=1, shuffle=False, verbose=0)
    text = str(info.value) + "".join(getattr(info.value, "__notes__", []))
    assert "5" in text and "ArrayDataset" in text
    assert model.optimizer.iterations == 5  # batches 0-4 were trained on, then it stopped
    assert children() <= before
    # usable afterwards: it predicts, and trains again
    model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(model.predict(x, verbose=0)).all()


def test_py_dataset_as_validation_data_and_in_evaluate_and_predict():
    x, y = uint8_data()
    ds = ArrayDataset(x, y, 32)
    model = make_model()
    history = model.fit(x, y, epochs=2, validation_data=ds, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, verbose=0)[0], rel=1e-5)
    assert model.evaluate(ds, verbose=0)[0] == pytest.approx(history.history["val_loss"][-1], rel=1e-5)
    assert np.allclose(model.predict(ds, verbose=0), model.predict(x, verbose=0))


def test_an_object_shaped_like_a_keras_sequence_is_taken_as_a_py_dataset():
    """Keras 2's keras.utils.Sequence (and Keras' own PyDataset): __len__, __getitem__,
    on_epoch_end, without fastnn's base class."""
    x, y = uint8_data()

    class Sequence:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return x[i * 12:(i + 1) * 12], y[i * 12:(i + 1) * 12]

        def on_epoch_end(self):
            pass
    a = make_model()
    a.fit(Sequence(), epochs=2, shuffle=False, verbose=0)
    b = make_model()
    b.fit(x, y, batch_size=12, epochs=2, shuffle=False, verbose=0)
    assert_same_weights(a, b)
    assert fastnn.utils.Sequence is PyDataset


def test_a_validation_generator_read_to_its_end_adds_no_validation_logs():
    x, y = uint8_data()
    model = make_model()
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(x, y, epochs=3, validation_data=batches(x, y, 32), verbose=0)
    assert len(history.history["loss"]) == 3
    assert len(history.history["val_loss"]) == 1  # the generator served the first epoch only
    model = make_model()
    history = model.fit(x, y, epochs=3, validation_steps=2, verbose=0,
                        validation_data=batches(x, y, 32, forever=True))
    assert len(history.history["val_loss"]) == 3


# ---- edge cases: empty data, bad validation_steps, where a bad value is -------------------
_RNG = np.random.default_rng(0)
X = _RNG.normal(size=(200, 4)).astype(np.float32)
Y = _RNG.integers(0, 3, 200)


def small_model(built=True):
    fastnn.set_seed(1)
    stack = ([layers.Input(shape=(4,))] if built else []) + [layers.Dense(3, activation="softmax")]
    m = fastnn.Sequential(stack)
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class Batches(PyDataset):
    """Four batches of 10 rows of X, Y; raises ValueError("boom") on batch ``fail_at``."""
    def __init__(self, n=4, fail_at=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.fail_at = n, fail_at

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError("boom")
        return X[i * 10:(i + 1) * 10], Y[i * 10:(i + 1) * 10]


@pytest.mark.parametrize("steps", [0, -1, 2.5, "a"])
def test_validation_steps_is_checked_for_stream_validation_data(steps):
    with pytest.raises(ValueError, match="validation_steps"):
        small_model().fit(X, Y, epochs=1, verbose=0, validation_data=Batches(), validation_steps=steps)


def test_empty_py_dataset_is_an_error_not_a_zero_loss():
    m = small_model()
    with pytest.raises(ValueError, match="no batches"):
        m.fit(Batches(0), epochs=2, verbose=0)
    with pytest.raises(ValueError, match="no batches"):
        m.evaluate(Batches(0), verbose=0)


def test_evaluate_on_an_exhausted_generator_does_not_report_zero_loss():
    m = small_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="no batch"):
            m.evaluate((b for b in []), verbose=0)


@pytest.fixture
def nan_npy(tmp_path):
    xn = X.copy()
    xn[190, 2] = np.nan
    np.save(tmp_path / "n.npy", xn)
    return np.load(tmp_path / "n.npy", mmap_mode="r")


def test_nan_in_the_validation_split_of_a_memmap_names_the_users_row(nan_npy):
    # the split's validation view starts at row 180: the row is counted in the user's array
    with pytest.raises(ValueError) as e:
        small_model().fit(nan_npy, Y, batch_size=16, epochs=1, verbose=0, validation_split=0.1)
    assert "(190, 2)" in str(e.value), str(e.value)


@pytest.mark.parametrize("method", ["evaluate", "predict"])
def test_nan_in_a_memmap_names_the_batch_of_the_users_batch_size(nan_npy, method):
    # row 190 is in batch 11 of batch_size=16 (not in inference chunk 0 of 4,096 rows)
    m = small_model()
    call = (lambda: m.evaluate(nan_npy, Y, batch_size=16, verbose=0)) if method == "evaluate" \
        else (lambda: m.predict(nan_npy, batch_size=16, verbose=0))
    with pytest.raises(ValueError) as e:
        call()
    assert re.search(r"batch 11\b", str(e.value)), str(e.value)


def test_memmap_whose_path_was_replaced_is_read_as_the_user_sees_it(tmp_path):
    p = tmp_path / "x.npy"
    np.save(p, X)
    mm = np.load(p, mmap_mode="r")
    np.save(tmp_path / "new.npy", np.zeros_like(X))
    os.replace(tmp_path / "new.npy", p)
    assert np.array_equal(mm, X)  # the mapping still holds the old file
    m = small_model()
    np.testing.assert_array_equal(m.predict(mm, verbose=0), m.predict(X, verbose=0))


def test_getitem_error_in_the_peek_names_the_batch():
    with pytest.raises(ValueError, match=r"batch 0 of Batches"):
        small_model(built=False).fit(Batches(fail_at=0), epochs=1, verbose=0)


def test_validation_split_false_means_no_split():
    h = small_model().fit(X, Y, epochs=1, verbose=0, validation_split=False)
    assert "val_loss" not in h.history


def test_evaluate_checks_x_before_batch_size_as_before():
    with pytest.raises(ValueError, match="Input x has shape"):
        small_model().evaluate(X[:, :3], Y, batch_size=0)


def open_fds(path):
    """This process's file descriptors open on ``path`` (other fds come and go with whatever
    else the test session runs)."""
    target = os.path.realpath(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.path.realpath(os.readlink(f"/proc/self/fd/{fd}")) == target
        except OSError:
            pass
    return count


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs Linux /proc")
def test_no_file_stays_open_after_fit_evaluate_or_an_error(npy_file):
    path, x, y = npy_file
    xm = np.load(path, mmap_mode="r")
    model = make_model()
    before = open_fds(path)  # the map's own (Python's mmap keeps a duplicate)
    model.fit(xm, y, epochs=1, validation_split=0.2, verbose=0)
    model.evaluate(xm, y, steps=2, verbose=0)
    model.predict(xm, verbose=0)
    model.train_on_batch(xm[:8], y[:8])
    model.test_on_batch(xm[:8], y[:8])
    fastnn.utils.mc_predict(model, xm[:8], 2)
    assert open_fds(path) == before
    # an error after the data was opened: the traceback (kept by pytest) holds the frames,
    # yet the file is closed
    with pytest.raises(ValueError, match="validation_data must be a tuple") as info:
        model.fit(xm, y, validation_data=x, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer") as info2:
        model.evaluate(xm, y, batch_size=0, verbose=0)
    assert open_fds(path) == before and info and info2
