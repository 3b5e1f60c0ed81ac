"""The per-step fast paths (issue 17, small models at the floor) give the general paths' bits.

- fit's loop without a batch-watching callback (Trainer._fit_epoch_unwatched) against the
  loop that calls the batch hooks;
- the kernels' checked-once path (arrays already right: NumPy C-API checks, no memoryviews)
  against their general path (reached with a strided argument, copied first);
- SparseCategoricalAccuracy's kernel count (argmax_hits) against values();
- RWLock without notify_all when nobody waits, and with sleepers that must be woken.
"""
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import backend, callbacks, layers
from fastnn.metrics import SparseCategoricalAccuracy
from fastnn.training.concurrency import RWLock


class _WatchesBatches(callbacks.Callback):
    """Makes fit take the general loop (a callback with a batch hook) without changing it."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


def _net(sizes, dtype="float32"):
    fastnn.set_seed(3)
    model = fastnn.Sequential([layers.Input(shape=(sizes[0],), dtype=dtype)]
                              + [layers.Dense(u, activation="relu", dtype=dtype)
                                 for u in sizes[1:-1]]
                              + [layers.Dense(sizes[-1], activation="softmax", dtype=dtype)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _fit(sizes, watched, dtype="float32", sample_weight=None, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], 300)
    model = _net(sizes, dtype)
    cb = _WatchesBatches()
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True,
                        sample_weight=sample_weight, callbacks=[cb] if watched else None)
    assert cb.batches == (10 * epochs if watched else 0)
    return model, history.history


@pytest.mark.parametrize("sizes", [[20, 64, 64, 2], [30] + [16] * 6 + [5]])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unwatched_fit_loop_gives_the_watched_loops_bits(sizes, dtype):
    fast, fast_logs = _fit(sizes, watched=False, dtype=dtype)
    slow, slow_logs = _fit(sizes, watched=True, dtype=dtype)
    assert fast_logs == slow_logs  # loss and accuracy, exactly
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert fast.optimizer.iterations == slow.optimizer.iterations == 20


def test_unwatched_fit_loop_with_sample_weights_gives_the_same_bits():
    w = np.random.default_rng(1).random(300) + 0.5
    fast, fast_logs = _fit([20, 64, 64, 2], watched=False, sample_weight=w)
    slow, slow_logs = _fit([20, 64, 64, 2], watched=True, sample_weight=w)
    assert fast_logs == slow_logs
    for a, b in zip(fast.get_weights(), slow.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_unwatched_fit_loop_stops_when_a_callback_sets_stop_training_at_epoch_end():
    class StopAfterFirst(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    rng = np.random.default_rng(0)
    model = _net([20, 8, 2])
    history = model.fit(rng.standard_normal((64, 20)).astype("float32"),
                        rng.integers(0, 2, 64), batch_size=32, epochs=5, verbose=0,
                        callbacks=[StopAfterFirst()])
    assert len(history.history["loss"]) == 1
    assert model.optimizer.iterations == 2


# ---- the kernels' checked-once path against their general path --------------------------------
def _strided(a):
    """The same values as ``a`` in a non-contiguous view (the kernels' general path copies it)."""
    wide = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    return view


needs_c = pytest.mark.skipif(backend.ops.name != "c" or fastnn.ops.COps is None,
                             reason="the C kernels' wrappers")


def _ck():
    return fastnn.ops._ckernels


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [0, 1, 7])
def test_bias_act_forward_fast_path_gives_the_general_paths_bits(dtype, act):
    rng = np.random.default_rng(0)
    z0 = rng.standard_normal((32, 17)).astype(dtype)
    b = rng.standard_normal(17).astype(dtype)
    z1, y1 = z0.copy(), np.empty_like(z0)
    _ck().bias_act_forward(z1, b, act, 0.0, y1)             # contiguous: the fast path
    z2, y2 = z0.copy(), np.empty_like(z0)
    _ck().bias_act_forward(z2, _strided(b), act, 0.0, y2)   # strided bias: the general path
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(z1, z2)
    ref_z, ref_y = z0.copy(), np.empty_like(z0)
    fastnn.reference.activations.bias_act_forward(ref_z, b, act, 0.0, ref_y)
    np.testing.assert_allclose(y1, ref_y, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [1, 7])
def test_act_backward_fast_path_gives_the_general_paths_bits(dtype, act):
    rng = np.random.default_rng(1)
    dy = rng.standard_normal((32, 9)).astype(dtype)
    z = rng.standard_normal((32, 9)).astype(dtype)
    y = np.maximum(z, 0).astype(dtype)
    out1, db1 = np.empty_like(dy), np.empty(9, dtype)
    _ck().act_backward(dy, z, y, act, 0.0, out1, db1)
    out2, db2 = np.empty_like(dy), np.empty(9, dtype)
    _ck().act_backward(_strided(dy), z, y, act, 0.0, out2, db2)
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(db1, db2)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_col_sum_and_sparse_cross_entropy_fast_paths_give_the_general_paths_bits(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 5)).astype(dtype)
    s1, s2 = np.empty(5, dtype), np.empty(5, dtype)
    _ck().col_sum(x, s1)
    _ck().col_sum(_strided(x), s2)
    np.testing.assert_array_equal(s1, s2)
    labels = rng.integers(0, 5, 32)
    g1, g2 = np.empty_like(x), np.empty_like(x)
    r1, r2 = np.empty(32), np.empty(32)
    l1 = _ck().sparse_softmax_cross_entropy(x, labels, False, 1 / 32, g1, r1)
    l2 = _ck().sparse_softmax_cross_entropy(_strided(x), labels, False, 1 / 32, g2, r2)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(r1, r2)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_update_fast_path_gives_the_general_paths_bits(dtype, amsgrad):
    rng = np.random.default_rng(3)
    p0 = rng.standard_normal(60).astype(dtype)
    g = rng.standard_normal(60).astype(dtype)
    results = []
    for shape in ((60,), (6, 10)):  # 1-D: the fast path; 2-D: the general one
        p = p0.copy().reshape(shape)
        m, v = np.zeros_like(p), np.zeros_like(p)
        vh = np.zeros_like(p) if amsgrad else None
        for step in (1, 2, 3):
            _ck().adam_update(p, g.reshape(shape), m, v, vh, 1e-2, 0.9, 0.999, 1e-7, step,
                              0.01, 0.5, 0.3)
        results.append((p.reshape(-1), m.reshape(-1), v.reshape(-1)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@needs_c
def test_fast_paths_leave_the_errors_to_the_general_path():
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="out has shape"):
        _ck().bias_act_forward(z, None, 1, 0.0, np.empty((4, 2), np.float32))
    with pytest.raises(TypeError, match="float64"):
        _ck().bias_act_forward(z, None, 1, 0.0, np.empty((4, 3), np.float64))
    with pytest.raises(ValueError, match="step must be >= 1"):
        p = np.zeros(3, np.float32)
        _ck().adam_update(p, p.copy(), p.copy(), p.copy(), None, 1e-3, 0.9, 0.999, 1e-7, 0)
    with pytest.raises(ValueError, match="gelu, swish and mish"):
        _ck().act_backward(z, None, z, 7, 0.0, np.empty_like(z))
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        _ck().col_sum(z, read_only)


@needs_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_argmax_hits_kernel_matches_its_numpy_reference(dtype, layout):
    rng = np.random.default_rng(5)
    p = rng.standard_normal((50, 7)).astype(dtype)
    p[0, 2] = p[0, 5] = p[0].max() + 1     # a tie: the first index
    p[1, 3] = np.nan                       # a NaN: its index
    p[2, 1] = p[2, 4] = np.nan             # two NaN: the first
    p[3] = 0.0
    p[3, 6] = -0.0                         # -0 == 0: index 0
    labels = rng.integers(0, 7, 50)
    labels[:4] = [2, 3, 1, 0]
    arg = _strided(p) if layout == "strided" else p
    got = _ck().argmax_hits(arg, labels)
    want = fastnn.reference.reductions.argmax_hits(arg, labels)
    assert got == want == int(np.count_nonzero(np.argmax(p, axis=1) == labels))
    assert got >= 4
    assert _ck().argmax_hits(p[:0], labels[:0]) == 0
    with pytest.raises(ValueError, match="labels"):
        _ck().argmax_hits(p, labels[:3])
    with pytest.raises(ValueError, match="labels"):
        fastnn.reference.reductions.argmax_hits(p, labels[:3])


# ---- metrics ---------------------------------------------------------------------------------
def test_sparse_accuracy_kernel_count_equals_values_with_ties_and_nan():
    rng = np.random.default_rng(4)
    y_pred = rng.random((40, 3)).astype(np.float32)
    y_pred[0] = [0.5, 0.5, 0.1]      # a tie: the first index wins in both
    y_pred[1] = [0.1, np.nan, 0.9]   # NaN: argmax picks it in both
    y_true = rng.integers(0, 3, 40)
    y_true[0], y_true[1] = 0, 1
    fast = SparseCategoricalAccuracy()
    for lo in (0, 32):               # a full batch, then a shorter last one
        fast.update_state(y_true[lo:lo + 32], y_pred[lo:lo + 32])
    expected = float(np.sum(fast.values(y_true, y_pred)))
    assert fast.total == expected and fast.count == 40
    general = SparseCategoricalAccuracy()
    general.update_state(list(y_true), y_pred)  # a list: the general path
    assert general.total == fast.total and general.count == fast.count


# ---- the state lock --------------------------------------------------------------------------
def test_rwlock_wakes_a_writer_waiting_for_readers_and_readers_waiting_for_it():
    lock = RWLock()
    order = []
    lock.acquire_read()                         # an inference chunk is running

    def writer():
        lock.acquire_write()                    # waits for the reader (a sleeper)
        order.append("write")
        time.sleep(0.05)
        lock.release_write()

    def reader():
        lock.acquire_read()                     # a writer waits: this reader sleeps too
        order.append("read")
        lock.release_read()

    tw = threading.Thread(target=writer)
    tw.start()
    deadline = time.time() + 5
    while not lock._writer_waiting and time.time() < deadline:
        time.sleep(0.001)
    tr = threading.Thread(target=reader)
    tr.start()
    time.sleep(0.05)
    assert order == []                          # both wait for the first reader
    lock.release_read()
    tw.join(5)
    tr.join(5)
    assert order == ["write", "read"]
    assert lock._readers == 0 and lock._writer_waiting == 0 and lock._sleepers == 0


def test_rwlock_uncontended_write_takes_no_wakeup():
    lock = RWLock()
    calls = []
    lock._cond.notify_all = lambda: calls.append(1)
    for _ in range(3):
        lock.acquire_write()
        lock.release_write()
        with lock.reading():
            pass
    assert calls == []
    assert lock._readers == 0 and lock._writer_waiting == 0
