"""The thread policy of the matrix products (fastnn/threads.py): adaptive by default where it
can run, fixed on request; the adaptive policy honours the thread ceiling, decides from measured times (a
scripted clock here: no timing in tests), measures again, and gives the bits of its chunks
whatever it decides and however many threads it has."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers, threads

from conftest import in_forked_child, same_fastnn_env

threadpoolctl = pytest.importorskip("threadpoolctl")

pytestmark = pytest.mark.skipif(not threads.blas().available,
                                reason="no single BLAS found by threadpoolctl")


@pytest.fixture
def restore_threads():
    old, policy = fastnn.get_num_threads(), threads.policy()
    yield
    fastnn.set_num_threads(old, adaptive=policy == "adaptive")


def _layouts(m, k, n, dtype, rng):
    """(a, b) pairs in the three layouts of a Dense layer's products."""
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((k, n)).astype(dtype)
    dz = rng.standard_normal((m, n)).astype(dtype)
    return {"forward": (x, w), "kernel_grad": (x.T, dz), "input_grad": (dz, w.T)}


# --- switching policies ---------------------------------------------------------------------

def test_an_integer_keeps_the_policy_and_adaptive_switches_it(restore_threads):
    fastnn.set_num_threads(2, adaptive=True)
    assert threads.policy() == "adaptive" and fastnn.get_num_threads() <= 2
    assert threads.blas().get() == 1  # fastnn's threads split; the BLAS runs on one
    fastnn.set_num_threads(1)
    assert threads.policy() == "adaptive" and threads.blas().get() == 1
    fastnn.set_num_threads(2, adaptive=False)
    assert threads.policy() == "fixed" and threads.adaptive_policy() is None
    assert threads.blas().get() == 2
    fastnn.set_num_threads(1)
    assert threads.policy() == "fixed" and threads.blas().get() == 1


_POLICY_AT_IMPORT = ("import os, fastnn; print(len(os.sched_getaffinity(0)), "
                     "fastnn.threads.policy(), fastnn.threads.blas().get())")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity")
def test_adaptive_is_the_default_on_several_cpus_and_fixed_on_one():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FASTNN_THREADS")}
    if len(os.sched_getaffinity(0)) >= 2:
        out = subprocess.run([sys.executable, "-c", _POLICY_AT_IMPORT], capture_output=True,
                             text=True, check=True, **same_fastnn_env(env))
        assert out.stdout.split()[1:] == ["adaptive", "1"]
    one_cpu = min(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", _POLICY_AT_IMPORT], capture_output=True,
                         text=True, check=True, preexec_fn=lambda: os.sched_setaffinity(0, {one_cpu}),
                         **same_fastnn_env(env))
    assert out.stdout.split() == ["1", "fixed", "1"]
    out = subprocess.run([sys.executable, "-c", _POLICY_AT_IMPORT], capture_output=True,
                         text=True, check=True, **same_fastnn_env(dict(env, FASTNN_THREADS="fixed")))
    assert out.stdout.split()[1] == "fixed"


def test_adaptive_by_name_uses_the_cpus_as_ceiling(restore_threads):
    fastnn.set_num_threads("adaptive")
    assert threads.policy() == "adaptive"
    assert fastnn.backend._n_threads == fastnn.backend._default_threads()
    with pytest.raises(ValueError, match="'adaptive'"):
        fastnn.set_num_threads("fast")


def test_fastnn_threads_env_turns_adaptive_on_at_import_and_rejects_typos():
    code = "import fastnn; print(fastnn.threads.policy(), fastnn.threads.blas().get())"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, **same_fastnn_env(dict(env, FASTNN_THREADS="adaptive")))
    assert out.stdout.split() == ["adaptive", "1"]
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         **same_fastnn_env(dict(env, FASTNN_THREADS="adaptiv")))
    assert bad.returncode != 0 and "FASTNN_THREADS='adaptiv'" in bad.stderr


def test_adaptive_without_a_controllable_blas_is_refused_clearly(restore_threads, monkeypatch):
    class NoBlas:
        available = splittable = False
    fastnn.set_num_threads(2, adaptive=False)
    monkeypatch.setattr(threads, "_blas", NoBlas())
    with pytest.raises(RuntimeError, match="one BLAS that it can control"):
        fastnn.set_num_threads("adaptive")
    assert threads.policy() == "fixed"


def test_a_blas_with_per_thread_counts_is_never_split(monkeypatch, restore_threads):
    """OpenBLAS on OpenMP, MKL: fastnn's threads would run the BLAS's default thread count,
    so the adaptive policy computes every chunk on the calling thread."""
    rec = _with_recorder(2)
    monkeypatch.setattr(threads.blas(), "splittable", False)
    a, b, out = _big_product()
    for _ in range(10):
        threads.matmul(a, b, out)
    assert rec.calls == [("serial", 1)] * 10
    assert np.array_equal(out, _chunked(a, b))


# --- the split's bits -----------------------------------------------------------------------

def _chunked(a, b):
    """a @ b as the adaptive policy's chunks, on this thread: the policy's bits."""
    geometry = threads.split_geometry(a.shape[0], b.shape[1], a.shape[1])
    return threads.chunked_matmul(a, b, np.empty((a.shape[0], b.shape[1]), a.dtype), *geometry)


@pytest.mark.parametrize("m,k,n,per,columns", [
    (128, 784, 512, 96, True), (784, 128, 512, 144, False), (2000, 10, 100, 336, False),
    (40, 33, 1000, 176, True), (48, 1000, 48, 16, False)])
def test_split_geometry_cuts_the_longer_side_in_aligned_chunks(m, k, n, per, columns):
    assert threads.split_geometry(m, n, k) == (per, columns)
    extent = n if columns else m
    assert per % threads.SPLIT_ALIGN == 0 and -(-extent // per) <= threads.SPLIT_CHUNKS


def test_small_products_are_one_call():
    assert threads.split_geometry(64, 64, 64) is None  # fewer than SPLIT_MIN_MACS
    assert threads.split_geometry(16, 20, 8192) is None  # no side of two aligned chunks


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m", [128, 200, 1000])
def test_split_gives_the_chunks_bits_for_any_thread_count(dtype, m, restore_threads):
    fastnn.set_num_threads(2, adaptive=True)  # BLAS on one thread
    rng = np.random.default_rng(1)
    for name, (a, b) in _layouts(m, 784, 512, dtype, rng).items():
        geometry = threads.split_geometry(a.shape[0], b.shape[1], a.shape[1])
        want = _chunked(a, b)
        for n_threads in (2, 3, 5):
            out = np.full_like(want, np.nan)
            threads.split_matmul(a, b, out, n_threads, *geometry)
            assert np.array_equal(out, want), (name, n_threads, geometry)


def test_a_chunk_the_caller_took_over_is_not_written_by_the_late_worker(restore_threads):
    fastnn.set_num_threads(2, adaptive=True)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((96, 64))
    b = rng.standard_normal((64, 32))
    out = np.empty((96, 32))
    job = threads._Job(a, b, out, 32, False)
    claimed = next(job.next)  # a worker took chunk 0, then was descheduled
    job.run()  # the caller computes the rest, then chunk 0 itself
    assert np.array_equal(out, a @ b)
    out[:] = -1.0  # the caller returned and the buffer moved on
    job.worker_chunk(claimed, None)  # the worker wakes up and finishes its chunk
    assert (out == -1.0).all()
    assert job.help(None) is None  # and finds no chunk left


def test_a_worker_chunk_lands_in_the_output_when_the_caller_did_not_take_it():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((64, 16)), rng.standard_normal((16, 8))
    out = np.zeros((64, 8))
    job = threads._Job(a, b, out, 32, False)
    job.worker_chunk(next(job.next), None)
    assert np.array_equal(out[:32], a[:32] @ b) and (out[32:] == 0).all()
    job.run()
    assert np.array_equal(out, threads.chunked_matmul(a, b, np.empty_like(out), 32, False))


def test_chunks_of_columns_land_in_their_columns():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((8, 16)), rng.standard_normal((16, 80))
    out = np.zeros((8, 80))
    job = threads._Job(a, b, out, 32, True)
    assert job.n == 3
    job.worker_chunk(next(job.next), None)
    assert np.array_equal(out[:, :32], a @ b[:, :32]) and (out[:, 32:] == 0).all()
    job.run()
    assert np.array_equal(out, threads.chunked_matmul(a, b, np.empty_like(out), 32, True))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_splits_with_workers_of_its_own(restore_threads):
    fastnn.set_num_threads(2, adaptive=True)
    a, b, out = _big_product()
    threads.split_matmul(a, b, out, 2, 32, False)  # the parent's worker exists
    parent_pool = threads._pool

    def child():
        out2 = np.empty_like(out)
        threads.split_matmul(a, b, out2, 2, 32, False)
        return (threads._pool is not parent_pool and np.array_equal(out2, out)
                and len(threads._pool._queues) == 1)
    assert in_forked_child(child)


# --- the ceiling ----------------------------------------------------------------------------

class _Recorder(threads.AdaptivePolicy):
    """Records which way ran with how many threads (the products still run)."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def serial(self, a, b, out, n_threads, geometry):
        self.calls.append(("serial", n_threads))
        return super().serial(a, b, out, n_threads, geometry)

    def split(self, a, b, out, n_threads, geometry):
        self.calls.append(("split", n_threads))
        return super().split(a, b, out, n_threads, geometry)


def _big_product(rng=None):
    rng = rng or np.random.default_rng(4)
    a = rng.standard_normal((128, 256))
    b = rng.standard_normal((256, 256))
    return a, b, np.empty((128, 256))


def _with_recorder(n):
    fastnn.set_num_threads(n, adaptive=True)
    rec = _Recorder()
    threads._set_policy("adaptive", rec)
    return rec


def test_split_never_uses_more_threads_than_set_num_threads(restore_threads):
    rec = _with_recorder(3)
    a, b, out = _big_product()
    for _ in range(2 * threads.SAMPLES + 5):
        threads.matmul(a, b, out)
        assert np.array_equal(out, _chunked(a, b))
    assert rec.calls and all(n == 3 for _, n in rec.calls)
    assert ("split", 3) in rec.calls  # both ways were measured


def test_split_helpers_are_ceiling_minus_one(restore_threads):
    fastnn.set_num_threads(2, adaptive=True)
    started = []
    pool = threads._Pool()
    pool._grow = lambda n: (started.append(n), threads._Pool._grow(pool, n))
    a, b, out = _big_product()
    pool.run(threads._Job(a, b, out, 32, False), 2)
    assert started == [1] and len(pool._queues) == 1
    assert np.array_equal(out, threads.chunked_matmul(a, b, np.empty_like(out), 32, False))


def test_an_openmp_limit_caps_the_split_and_one_thread_means_no_split(restore_threads):
    rec = _with_recorder(2)
    a, b, out = _big_product()
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        if fastnn.get_num_threads() != 1:
            pytest.skip("no OpenMP runtime that threadpoolctl can limit")
        for _ in range(10):
            threads.matmul(a, b, out)
    # one thread allowed: the chunks on this thread, unmeasured (the same bits)
    assert rec.calls == [("serial", 1)] * 10
    assert np.array_equal(out, _chunked(a, b))
    rec.calls.clear()
    for _ in range(10):
        threads.matmul(a, b, out)
    assert ("split", 2) in rec.calls  # the limit lifted, the policy measures again


def test_a_blas_the_user_gave_threads_runs_plain(restore_threads):
    rec = _with_recorder(2)
    a, b, out = _big_product()
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        for _ in range(10):
            threads.matmul(a, b, out)
    assert rec.calls == []
    assert threads.blas().get() == 1  # back to fastnn's one thread after the block


def test_omp_num_threads_one_keeps_adaptive_serial():
    code = """
import numpy as np, fastnn
from fastnn import threads
calls = []
class P(threads.AdaptivePolicy):
    def split(self, *a):
        calls.append(1)
        return super().split(*a)
fastnn.set_num_threads(4, adaptive=True)
threads._set_policy("adaptive", P())
a = np.ones((128, 256)); b = np.ones((256, 256)); out = np.empty((128, 256))
for _ in range(20):
    threads.matmul(a, b, out)
print(fastnn.get_num_threads(), len(calls))
"""
    env = {k: v for k, v in os.environ.items() if k != "FASTNN_BACKEND"}
    if fastnn.backend._ops_module._ckernels is None:
        pytest.skip("the OpenMP limit is read through the C extension")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, **same_fastnn_env(dict(env, OMP_NUM_THREADS="1")))
    assert out.stdout.split() == ["1", "0"]


# --- decisions from measured times (a scripted clock) ---------------------------------------

class _Scripted(threads.AdaptivePolicy):
    """Each way advances a fake clock by the cost set for it; nothing is computed."""

    def __init__(self, costs):
        self.now = 0.0
        super().__init__(clock=lambda: self.now)
        self.costs = dict(costs)
        self.ran = []

    def _way(self, name):
        self.ran.append(name)
        cost = self.costs[name]
        self.now += cost() if callable(cost) else cost

    def serial(self, a, b, out, n_threads, geometry):
        self._way("serial")

    def split(self, a, b, out, n_threads, geometry):
        self._way("split")

    def ceiling(self):
        return 2

    def blas_threads(self):
        return 1


def _calls(policy, n, a=None, b=None):
    if a is None:
        a, b, _ = _big_product()
    out = np.empty((a.shape[0], b.shape[1]))
    for _ in range(n):
        policy.matmul(a, b, out)
    return policy.shapes[threads._key(a, b)]


def test_the_faster_way_is_chosen_after_interleaved_samples():
    p = _Scripted({"serial": 2.0, "split": 1.0})
    s = _calls(p, 2 * threads.SAMPLES)
    assert p.ran == ["serial", "split"] * threads.SAMPLES  # interleaved
    assert s.choice == "split" and s.expected == 1.0
    p.ran.clear()
    _calls(p, 5)
    assert p.ran == ["split"] * 5
    q = _Scripted({"serial": 1.0, "split": 3.0})
    assert _calls(q, 2 * threads.SAMPLES).choice == "serial"


def test_the_choice_is_the_median_not_one_lucky_sample():
    times = iter([2.0, 0.1, 2.0, 5.0, 2.0, 5.0])  # split: one fast outlier, then slow
    p = _Scripted({"serial": lambda: next(times), "split": lambda: next(times)})
    assert _calls(p, 6).choice == "serial"


def test_the_choice_is_measured_again_periodically_and_can_switch():
    p = _Scripted({"serial": 2.0, "split": 1.0})
    s = _calls(p, 2 * threads.SAMPLES)
    assert s.choice == "split"
    p.costs = {"serial": 1.0, "split": 3.0}  # the machine got busy
    p.ran.clear()
    # slow calls (3x, below SLOW_FACTOR) do not trigger; the periodic re-check does
    _calls(p, threads.RECHECK_CALLS)
    assert set(p.ran) == {"split"}
    _calls(p, 2 * threads.SAMPLES)
    assert s.choice == "serial" and s.expected == 1.0


def test_a_re_check_that_keeps_the_choice_waits_longer_and_a_switch_resets_it():
    p = _Scripted({"serial": 2.0, "split": 1.0})
    s = _calls(p, 2 * threads.SAMPLES)
    assert s.interval == threads.RECHECK_CALLS
    _calls(p, threads.RECHECK_CALLS + 2 * threads.SAMPLES)
    assert s.choice == "split" and s.interval == 2 * threads.RECHECK_CALLS
    for _ in range(10):
        _calls(p, s.interval + 2 * threads.SAMPLES)
    assert s.interval == threads.MAX_RECHECK_CALLS
    p.costs = {"serial": 1.0, "split": 3.0}
    _calls(p, s.interval - s.since_check + 2 * threads.SAMPLES)  # up to the next re-check
    assert s.choice == "serial" and s.interval == threads.RECHECK_CALLS


def test_a_call_far_slower_than_expected_triggers_a_new_measurement():
    p = _Scripted({"serial": 2.0, "split": 1.0})
    s = _calls(p, 2 * threads.SAMPLES)
    _calls(p, threads.MIN_CALLS_BETWEEN_CHECKS - 2)
    p.costs["split"] = 1.0 * (threads.SLOW_FACTOR + 1)  # contention: split collapses
    _calls(p, 1)  # slow, but too soon after the measurement to count
    assert s.choice == "split" and s.since_check == threads.MIN_CALLS_BETWEEN_CHECKS - 1
    p.ran.clear()
    _calls(p, 1)  # MIN_CALLS_BETWEEN_CHECKS calls since the measurement: this slow call counts
    _calls(p, 2 * threads.SAMPLES)
    assert p.ran[1:] == ["serial", "split"] * threads.SAMPLES
    assert s.choice == "serial"


def test_small_products_are_not_measured():
    p = _Scripted({"serial": 1.0, "split": 0.5})
    a, b = np.ones((8, 8)), np.ones((8, 8))
    out = np.empty((8, 8))
    p.matmul(a, b, out)
    assert p.ran == [] and np.array_equal(out, a @ b) and not p.shapes
    _calls(p, 2 * threads.SAMPLES)
    assert p.decisions() == {threads._key(*_big_product()[:2]): "split"}


def test_shapes_and_layouts_are_decided_separately():
    p = _Scripted({"serial": 1.0, "split": 2.0})
    a, b, _ = _big_product()
    _calls(p, 6, a, b)
    _calls(p, 6, np.asfortranarray(a), b)
    _calls(p, 6, a.astype(np.float32), b.astype(np.float32))
    assert len(p.shapes) == 3


# --- training: the same bits whatever is decided, on any number of threads ------------------

def _train(seed=5):
    fastnn.set_seed(seed)
    (x, y), _ = fastnn.datasets.load_digits()
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(512, activation="relu"),
                           layers.Dense(256, activation="relu"),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(), loss="sparse_categorical_crossentropy")
    m.fit(x[:1280], y[:1280], epochs=1, batch_size=128, verbose=0)
    return m.get_weights()


class _Forced(threads.AdaptivePolicy):
    """Real products, with timings scripted so that ``prefer`` always wins."""

    def __init__(self, prefer):
        self.now = 0.0
        super().__init__(clock=lambda: self.now)
        self.prefer, self.ran = prefer, []

    def serial(self, *args):
        self.ran.append("serial")
        self.now += 1.0 if self.prefer == "serial" else 2.0
        return super().serial(*args)

    def split(self, *args):
        self.ran.append("split")
        self.now += 1.0 if self.prefer == "split" else 2.0
        return super().split(*args)

    def ceiling(self):
        return 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adaptive_training_gives_the_same_bits_whatever_it_decides(dtype, monkeypatch,
                                                                   restore_threads):
    """The Python loop's products under the policy (tests/training/test_compiled_epoch.py
    holds the compiled epoch's to the same bits)."""
    from fastnn.training import compiled_epoch
    monkeypatch.setattr(compiled_epoch, "enabled", False)
    old = fastnn.floatx()
    fastnn.set_floatx(dtype)
    try:
        fastnn.set_num_threads(1, adaptive=True)  # the chunks, all on this thread
        want = _train()
        for prefer in ("serial", "split"):
            fastnn.set_num_threads(2, adaptive=True)
            policy = _Forced(prefer)
            threads._set_policy("adaptive", policy)
            got = _train()
            for w, g in zip(want, got):
                assert np.array_equal(w, g), prefer
            assert policy.shapes  # the big products were measured ...
            assert all(s.choice == prefer for s in policy.shapes.values())  # ... as scripted
    finally:
        fastnn.set_floatx(old)


def test_several_threads_share_the_adaptive_policy_safely(restore_threads):
    """predict may run in threads while fit runs: the bookkeeping is shared, the results are
    each thread's own product."""
    import threading
    fastnn.set_num_threads(2, adaptive=True)
    policy = threads.AdaptivePolicy()
    policy.ceiling = lambda: 2
    threads._set_policy("adaptive", policy)
    errors = []

    def work(seed):
        try:
            a, b, out = _big_product(np.random.default_rng(seed))
            want = _chunked(a, b)
            for _ in range(30):
                threads.matmul(a, b, out)
                assert np.array_equal(out, want)
        except BaseException as e:  # reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    (s,) = policy.shapes.values()
    assert s.calls == 120 and s.choice in ("serial", "split")
