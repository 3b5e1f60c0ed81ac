"""fastnn.training.py_dataset: Keras 3's PyDataset, and iterate_batches in its three modes
(serial, threads, processes): order, errors, and that no worker outlives the iteration."""
import contextlib
import itertools
import multiprocessing
import multiprocessing.resource_tracker
import os
import random
import sys
import threading
import time

import numpy as np
import pytest

from fastnn.training import py_dataset
from fastnn.training.py_dataset import PyDataset, iterate_batches

# The dataset settings of each way of loading; "serial, workers=0" checks that multiprocessing
# needs a worker, "one process" that one worker is enough for it (both as Keras 3).
MODES = {
    "serial": dict(workers=1),
    "serial, workers=0": dict(workers=0, use_multiprocessing=True),
    "threads": dict(workers=3),
    "processes": dict(workers=2, use_multiprocessing=True),
    "one process": dict(workers=1, use_multiprocessing=True),
}
POOLED = ["threads", "processes", "one process"]


class IndexedBatches(PyDataset):
    """Batch i is (x, y) filled with i. Each takes up to `delay` s (random, but the same for an
    index), so that pooled workers finish out of order. `started` counts the calls, across
    processes too (shared memory, inherited by the forked workers)."""

    def __init__(self, n=24, fail_at=None, error=None, delay=0.004, **kwargs):
        super().__init__(**kwargs)
        self.n, self.fail_at, self.error, self.delay = n, fail_at, error, delay
        self.started = multiprocessing.Value("i", 0)

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        with self.started.get_lock():
            self.started.value += 1
        time.sleep(random.Random(index).uniform(0, self.delay))
        if index == self.fail_at:
            raise self.error
        return np.full((2, 3), index, np.float32), np.array([index, index])


class EndlessBatches(PyDataset):
    """No __len__; runs out (IndexError) after `n` batches, as a Keras dataset may."""

    def __init__(self, n=7, **kwargs):
        super().__init__(**kwargs)
        self.n = n

    def __getitem__(self, index):
        if index >= self.n:
            raise IndexError(f"only {self.n} batches")
        return np.array([index])


class TwoPartError(Exception):
    """Can't be rebuilt from a message alone."""

    def __init__(self, code, detail):
        super().__init__(code, detail)


class DyingBatches(IndexedBatches):
    def __getitem__(self, index):
        if index == 3:
            os._exit(1)
        return super().__getitem__(index)


class WhereLoaded(PyDataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        return os.getpid(), threading.current_thread().name


def child_pids():
    """This process's child processes, reaped or not, from /proc."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            # After the command name (in parentheses, may hold spaces): state, ppid, ...
            if int(stat[stat.rfind(")") + 2:].split()[1]) == os.getpid():
                children.add(int(entry))
    return children


@contextlib.contextmanager
def nothing_left_behind():
    threads = set(threading.enumerate())
    mp_children = set(multiprocessing.active_children())
    children = child_pids()
    yield
    assert set(threading.enumerate()) - threads == set()
    assert set(multiprocessing.active_children()) - mp_children == set()
    assert child_pids() - children == set()


def consume(batches):
    return [(index, batch) for index, batch in batches]


@pytest.mark.parametrize("mode", MODES)
def test_batches_come_back_in_the_order_asked_for(mode):
    order = list(range(24))
    random.Random(0).shuffle(order)
    order += [5, 5, 0]  # repeats are just more requests
    with nothing_left_behind():
        got = consume(iterate_batches(IndexedBatches(**MODES[mode]), order))
    assert [index for index, _ in got] == order
    for index, (x, y) in got:
        np.testing.assert_array_equal(x, np.full((2, 3), index, np.float32))
        np.testing.assert_array_equal(y, [index, index])


@pytest.mark.parametrize("mode", MODES)
def test_batches_are_returned_as_getitem_made_them(mode):
    made = [np.arange(3.0), (np.arange(3.0),), (np.ones(2), np.zeros(2)),
            (np.ones(2), np.zeros(2), np.full(2, 0.5)), [np.ones(1), np.ones(1)]]

    class Made(PyDataset):
        def __len__(self):
            return len(made)

        def __getitem__(self, index):
            return made[index]

    got = [batch for _, batch in iterate_batches(Made(**MODES[mode]), range(len(made)))]
    for want, batch in zip(made, got):
        assert type(batch) is type(want)
        np.testing.assert_array_equal(np.asarray(batch), np.asarray(want))


@pytest.mark.parametrize("mode, where", [("serial", "here"), ("serial, workers=0", "here"),
                                         ("threads", "threads"), ("processes", "children"),
                                         ("one process", "children")])
def test_settings_choose_where_batches_are_loaded(mode, where):
    loaded = {batch for _, batch in iterate_batches(WhereLoaded(**MODES[mode]), range(6))}
    pids = {pid for pid, _ in loaded}
    names = {name for _, name in loaded}
    if where == "here":
        assert loaded == {(os.getpid(), threading.current_thread().name)}
    elif where == "threads":
        assert pids == {os.getpid()} and all(n.startswith("WhereLoaded-loader") for n in names)
    else:
        assert os.getpid() not in pids and len(pids) <= MODES[mode]["workers"]


@pytest.mark.parametrize("mode", POOLED)
def test_pools_request_at_most_max_queue_size_batches_ahead(mode):
    dataset = IndexedBatches(n=30, delay=0, max_queue_size=4, **MODES[mode])
    ahead = []
    for consumed, _ in enumerate(iterate_batches(dataset, range(30)), start=1):
        time.sleep(0.002)  # a slow consumer: the workers get ahead of it
        ahead.append(dataset.started.value - consumed)
    assert max(ahead) <= 4
    assert max(ahead) >= 1  # they did load ahead


@pytest.mark.parametrize("mode", MODES)
def test_error_keeps_its_type_names_index_and_class_and_chains_the_original(mode):
    dataset = IndexedBatches(fail_at=5, error=ValueError("no batch 5 here"), **MODES[mode])
    got = []
    with nothing_left_behind():
        with pytest.raises(ValueError) as info:
            for index, _ in iterate_batches(dataset, range(12)):
                got.append(index)
    assert got == [0, 1, 2, 3, 4]
    message = str(info.value)
    assert "batch 5 of IndexedBatches" in message and "no batch 5 here" in message
    original = info.value.__cause__
    assert type(original) is ValueError and str(original) == "no batch 5 here"
    if "process" in mode:  # the worker's traceback comes along
        assert "in __getitem__" in str(original.__cause__)


@pytest.mark.parametrize("mode", MODES)
def test_error_that_cannot_be_rebuilt_becomes_runtime_error(mode):
    dataset = IndexedBatches(fail_at=2, error=TwoPartError(7, "bad"), **MODES[mode])
    with nothing_left_behind():
        with pytest.raises(RuntimeError, match="batch 2 of IndexedBatches: TwoPartError") as info:
            consume(iterate_batches(dataset, range(6)))
    assert type(info.value.__cause__) is TwoPartError
    assert info.value.__cause__.args == (7, "bad")


@pytest.mark.parametrize("mode", MODES)
def test_index_error_ending_an_endless_dataset_stays_an_index_error(mode):
    # A dataset without __len__ ends where __getitem__ raises IndexError: the trainer catches it.
    dataset = EndlessBatches(n=7, **MODES[mode])
    assert dataset.num_batches is None
    got = []
    with nothing_left_behind():
        with pytest.raises(IndexError, match="batch 7 of EndlessBatches"):
            for index, batch in iterate_batches(dataset, itertools.count()):
                got.append(int(batch[0]))
    assert got == list(range(7))


def test_dead_worker_process_is_a_runtime_error_naming_the_dataset():
    dataset = DyingBatches(n=12, workers=2, use_multiprocessing=True)
    with nothing_left_behind():
        with pytest.raises(RuntimeError, match="worker process loading batches of DyingBatches"
                                               " died"):
            consume(iterate_batches(dataset, range(12)))


@pytest.mark.parametrize("mode", POOLED)
def test_nothing_left_behind_after_the_last_batch(mode):
    with nothing_left_behind():
        assert len(consume(iterate_batches(IndexedBatches(n=8, **MODES[mode]), range(8)))) == 8


@pytest.mark.parametrize("mode", POOLED)
def test_close_midway_cancels_pending_loads_and_leaves_nothing_behind(mode):
    dataset = IndexedBatches(n=200, delay=0.01, max_queue_size=5, **MODES[mode])
    with nothing_left_behind():
        batches = iterate_batches(dataset, range(200))
        for _ in range(3):
            next(batches)
        batches.close()
        started = dataset.started.value
    assert started <= 3 + 5
    time.sleep(0.05)
    assert dataset.started.value == started  # nothing still loading


class SlowBatches(IndexedBatches):
    def __getitem__(self, index):
        time.sleep(0.05)
        return super().__getitem__(index)


@pytest.mark.parametrize("mode", POOLED)
def test_close_midway_cancels_the_loads_not_yet_started(mode):
    dataset = SlowBatches(n=100, delay=0, max_queue_size=12, **MODES[mode])
    batches = iterate_batches(dataset, range(100))
    for _ in range(3):
        next(batches)
    batches.close()
    # 15 were requested. Running ones finish: at most `workers` (and, for processes, those the
    # pool already sent to a worker: workers + 1), with slack for a slow machine.
    assert dataset.started.value <= 3 + 2 * dataset.workers + 2


@pytest.mark.parametrize("mode", POOLED)
def test_break_out_of_the_loop_leaves_nothing_behind(mode):
    with nothing_left_behind():
        for index, _ in iterate_batches(IndexedBatches(n=100, **MODES[mode]), range(100)):
            if index == 2:
                break


@pytest.mark.parametrize("mode", POOLED)
def test_keyboard_interrupt_passes_through_and_leaves_nothing_behind(mode):
    with nothing_left_behind():
        batches = iterate_batches(IndexedBatches(n=100, **MODES[mode]), range(100))
        next(batches)
        with pytest.raises(KeyboardInterrupt):
            batches.throw(KeyboardInterrupt())


def test_keyboard_interrupt_in_getitem_is_not_wrapped():
    dataset = IndexedBatches(fail_at=1, error=KeyboardInterrupt(), **MODES["threads"])
    with nothing_left_behind():
        with pytest.raises(KeyboardInterrupt) as info:
            consume(iterate_batches(dataset, range(5)))
    assert info.value.__cause__ is None


def test_generator_never_started_loads_nothing():
    dataset = IndexedBatches(**MODES["processes"])
    with nothing_left_behind():
        iterate_batches(dataset, range(5))
    assert dataset.started.value == 0


def spawn_context():
    return multiprocessing.get_context("spawn")


def test_unpicklable_dataset_where_workers_are_not_forked_is_a_type_error(monkeypatch):
    monkeypatch.setattr(py_dataset, "_process_context", spawn_context)
    dataset = IndexedBatches(workers=2, use_multiprocessing=True)
    dataset.lock = threading.Lock()
    with nothing_left_behind():
        with pytest.raises(TypeError, match="'spawn'.*IndexedBatches can't be pickled"):
            iterate_batches(dataset, range(3))


def test_spawned_workers_load_a_picklable_dataset(monkeypatch):
    monkeypatch.setattr(py_dataset, "_process_context", spawn_context)
    dataset = WhereLoaded(workers=1, use_multiprocessing=True)
    multiprocessing.resource_tracker.ensure_running()  # spawn's helper process: it stays
    with nothing_left_behind():
        got = consume(iterate_batches(dataset, [3, 1]))
    assert [index for index, _ in got] == [3, 1]
    assert got[0][1][0] != os.getpid()


class KernelThreads(PyDataset):
    def __getitem__(self, index):
        return sys.modules["fastnn._ckernels"].get_num_threads()


def test_worker_processes_run_fastnn_kernels_single_threaded():
    # libgomp hangs a forked child's parallel region once the parent has run any.
    kernels = pytest.importorskip("fastnn._ckernels")
    before = kernels.get_num_threads()
    kernels.set_num_threads(2)
    try:
        got = consume(iterate_batches(KernelThreads(workers=2, use_multiprocessing=True), range(4)))
    finally:
        kernels.set_num_threads(before)
    assert [threads for _, threads in got] == [1, 1, 1, 1]


def test_subclass_that_forgot_super_init_gets_keras_defaults_and_loads_serially():
    class Forgetful(PyDataset):
        def __init__(self):
            self.n = 3  # no super().__init__()

        def __len__(self):
            return self.n

        def __getitem__(self, index):
            return threading.current_thread().name

    dataset = Forgetful()
    with pytest.warns(UserWarning, match=r"Forgetful.__init__ should call super\(\).__init__"):
        got = consume(iterate_batches(dataset, range(3)))
    assert got == [(i, threading.current_thread().name) for i in range(3)]
    assert (dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size) == (1, False, 10)


def test_num_batches_is_len_or_none_without_len():
    assert IndexedBatches(n=5).num_batches == 5
    assert EndlessBatches().num_batches is None


def test_truthiness_and_iteration_follow_num_batches():
    assert EndlessBatches() and IndexedBatches(n=2) and not IndexedBatches(n=0)
    assert [int(x[0, 0]) for x, _ in IndexedBatches(n=3, delay=0)] == [0, 1, 2]
    assert [int(x[0]) for x in itertools.islice(EndlessBatches(), 4)] == [0, 1, 2, 3]


def test_missing_getitem_and_len_raise_not_implemented_naming_the_subclass():
    class Empty(PyDataset):
        pass

    with pytest.raises(NotImplementedError, match=r"Empty must implement __getitem__"):
        Empty()[0]
    with pytest.raises(NotImplementedError, match=r"Empty must implement __len__"):
        len(Empty())


def test_settings_are_stored_as_given():
    dataset = IndexedBatches(workers=np.int64(4), use_multiprocessing=1, max_queue_size=3)
    assert (dataset.workers, dataset.use_multiprocessing, dataset.max_queue_size) == (4, True, 3)
    assert type(dataset.workers) is int


@pytest.mark.parametrize("settings, error, match", [
    (dict(workers=-1), ValueError, "workers must be >= 0"),
    (dict(workers=2.0), TypeError, "workers must be an integer >= 0.*float"),
    (dict(workers=True), TypeError, "workers must be an integer"),
    (dict(max_queue_size=0), ValueError, "max_queue_size must be >= 1"),
    (dict(max_queue_size="10"), TypeError, "max_queue_size must be an integer >= 1.*str"),
])
def test_invalid_settings_are_rejected_with_a_clear_error(settings, error, match):
    with pytest.raises(error, match=match):
        IndexedBatches(**settings)
    dataset = IndexedBatches()
    name, value = next(iter(settings.items()))
    with pytest.raises(error, match=match):
        setattr(dataset, name, value)


def test_plain_sequence_loads_serially_and_bad_foreign_settings_fail_at_the_call():
    assert consume(iterate_batches(["a", "b", "c"], [2, 0])) == [(2, "c"), (0, "a")]

    class Foreign:
        workers = -1

        def __getitem__(self, index):
            return index

    with pytest.raises(ValueError, match="workers must be >= 0"):
        iterate_batches(Foreign(), range(3))
