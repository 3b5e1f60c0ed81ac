"""Keras 3's ``PyDataset`` base class, and the loader that reads its batches for training.

Why this module exists: Keras users write input pipelines as ``keras.utils.PyDataset``
subclasses (``__len__`` and ``__getitem__`` returning whole batches) and hand them to ``fit``;
fastnn takes the same classes, so such code ports unchanged. As in Keras 3, the parallel loading
options live on the dataset (``workers``, ``use_multiprocessing``, ``max_queue_size``) and
:func:`iterate_batches` honours them:

- ``workers`` 0 or 1, no multiprocessing: each batch is loaded in the calling thread;
- ``workers > 1``: ``workers`` threads (pays off when ``__getitem__`` releases the GIL: file
  I/O, NumPy);
- ``use_multiprocessing=True`` and ``workers >= 1``: ``workers`` processes (CPU-bound Python
  code). On Linux they are forked, so they inherit the dataset; elsewhere the platform's start
  method pickles it to each worker.

Batches come back in the order asked for, whichever worker finishes first. This module imports
nothing from the rest of fastnn.

Forked workers inherit the parent's state, locks included: fastnn's OpenMP kernels run
single-threaded in them (libgomp hangs a forked child's parallel region otherwise), but another
OpenMP library called by ``__getitem__``, or a lock held by another thread of the parent at the
fork, can still hang a worker (Python 3.12+ warns when forking with other threads alive).
"""
import collections
import functools
import itertools
import multiprocessing
import operator
import signal
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.reduction import ForkingPickler

__all__ = ["PyDataset", "iterate_batches"]

# Keras 3's defaults, also used for a subclass that never called PyDataset.__init__.
_DEFAULTS = {"_workers": 1, "_use_multiprocessing": False, "_max_queue_size": 10}


def _checked_count(name, value, minimum, meaning):
    # bool is an int, but workers=True is surely a mix-up with use_multiprocessing=True
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer >= {minimum} ({meaning}), got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer >= {minimum} ({meaning}), got {value!r} "
                        f"of type {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum} ({meaning}), got {value}")
    return value


def _check_workers(value):
    return _checked_count("workers", value, 0, "0 or 1 loads batches in the calling thread")


def _check_max_queue_size(value):
    return _checked_count("max_queue_size", value, 1, "the batches requested ahead of training")


class PyDataset:
    """PyDataset(workers=1, use_multiprocessing=False, max_queue_size=10)

    Base class for a dataset written in Python, as ``keras.utils.PyDataset`` in Keras 3.
    A subclass implements ``__getitem__(index)``, returning one whole batch: ``x``, ``(x,)``,
    ``(x, y)`` or ``(x, y, sample_weight)``, and ``__len__()``, the number of batches (leave it
    out for an endless dataset). It may also implement ``on_epoch_begin()`` and
    ``on_epoch_end()``, e.g. to reshuffle between epochs.

    Args:
        workers: how many threads or processes load batches during training; 0 or 1 loads them
            in the training thread.
        use_multiprocessing: load batches in ``workers`` processes instead of threads (for
            Python code that holds the GIL). On Linux the workers are forked and inherit the
            dataset; on other platforms the dataset must be picklable.
        max_queue_size: how many batches may be requested ahead of training (memory bound).

    These settings only concern :func:`iterate_batches` (what ``fit`` uses); indexing or
    iterating the dataset yourself is serial. A subclass's ``__init__`` should pass them on
    with ``super().__init__(**kwargs)``; one that doesn't gets the defaults, with a warning
    (as Keras).

    Example::

        class Batches(PyDataset):
            def __init__(self, x, y, batch_size, **kwargs):
                super().__init__(**kwargs)
                self.x, self.y, self.batch_size = x, y, batch_size

            def __len__(self):
                return math.ceil(len(self.x) / self.batch_size)

            def __getitem__(self, index):
                rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
                return self.x[rows], self.y[rows]

        model.fit(Batches(x, y, 32, workers=4, use_multiprocessing=True), epochs=10)
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def _settings(self):
        missing = [name for name in _DEFAULTS if not hasattr(self, name)]
        if missing:
            # Stored, so the warning comes once per dataset.
            for name in missing:
                setattr(self, name, _DEFAULTS[name])
            warnings.warn(
                f"{type(self).__name__}.__init__ should call super().__init__(**kwargs), which "
                "takes workers, use_multiprocessing and max_queue_size; using the defaults "
                "(batches loaded serially). Passing these to fit() does nothing.",
                UserWarning, stacklevel=3)
        return self

    @property
    def workers(self):
        return self._settings()._workers

    @workers.setter
    def workers(self, value):
        self._workers = _check_workers(value)

    @property
    def use_multiprocessing(self):
        return self._settings()._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = bool(value)

    @property
    def max_queue_size(self):
        return self._settings()._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = _check_max_queue_size(value)

    def __getitem__(self, index):
        """The batch at position ``index`` (0 <= index < len(self))."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement __getitem__(index), returning batch `index`")

    def __len__(self):
        """The number of batches (not of samples)."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement __len__(), the number of batches (or leave "
            "it out for an endless dataset: then num_batches is None)")

    @property
    def num_batches(self):
        """``len(self)``, or None when the subclass has no ``__len__`` (an endless dataset).

        Keras 3 raises NotImplementedError there instead; a subclass may also override this
        property, returning None for an endless dataset, as in Keras 3."""
        if type(self).__len__ is PyDataset.__len__:
            return None
        return len(self)

    def __bool__(self):
        # Otherwise bool() would call the abstract __len__ and raise: Keras's base class has
        # no __len__, so its endless datasets are true.
        num_batches = self.num_batches
        return num_batches is None or num_batches > 0

    def __iter__(self):
        # Serial, as in Keras 3: without this, Python would index until IndexError.
        num_batches = self.num_batches
        for index in itertools.count() if num_batches is None else range(num_batches):
            yield self[index]

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


def iterate_batches(dataset, indices):
    """Yield ``(index, dataset[index])`` for each index of ``indices``, in that order.

    ``dataset`` is a :class:`PyDataset` (or any object with ``__getitem__``; the ``workers``,
    ``use_multiprocessing`` and ``max_queue_size`` it lacks take the defaults). Its settings
    choose the loading, as Keras 3: serial in the calling thread (``workers`` 0 or 1), a pool of
    ``workers`` threads (``workers > 1``), or of ``workers`` processes
    (``use_multiprocessing=True``, ``workers >= 1``). Pools keep at most ``max_queue_size``
    batches requested ahead of the one being consumed. Batches are returned as
    ``__getitem__`` made them. ``indices`` may be endless (``itertools.count()``); it is read
    ahead as far as the queue.

    A pool lives for one call: start one call per epoch. Keras also starts new workers each
    epoch, and that is what lets changes made by ``on_epoch_end`` reach forked workers. The
    hooks ``on_epoch_begin/end`` are the caller's to call.

    Errors: when ``dataset[i]`` raises an ``Exception``, the generator raises an exception of
    the same type whose message names the batch index and the dataset's class, chained to the
    original (``raise ... from``; from a worker process, that one carries the worker's
    traceback). When the type can't be rebuilt from a message alone (its constructor needs other
    arguments, or drops the message) it is a RuntimeError instead. ``KeyboardInterrupt`` and
    other non-``Exception`` errors pass through unchanged. A worker process that dies is a
    RuntimeError naming the dataset. Invalid settings raise TypeError / ValueError here, at the
    call; a dataset that must be pickled (not on Linux) and can't be raises TypeError.

    Cleanup: however the iteration ends (exhausted, an error, ``close()``, a ``break`` that
    drops the generator, an exception thrown into it), the pool is shut down before the
    generator finishes: requests not started are cancelled, those running are waited for, and
    no worker thread or process is left. A ``break`` closes it only once the generator is
    garbage (at once in CPython, unless it is still referenced); for certainty use
    ``with contextlib.closing(iterate_batches(...)) as batches:``.
    """
    def setting(name):
        return getattr(dataset, name, _DEFAULTS["_" + name])

    workers = _check_workers(setting("workers"))
    use_processes = bool(setting("use_multiprocessing"))
    queue_size = _check_max_queue_size(setting("max_queue_size"))
    name = type(dataset).__name__
    if use_processes and workers >= 1:
        context = _process_context()
        if context.get_start_method() != "fork":
            _check_picklable(dataset, context.get_start_method())
        return _iterate_pooled(
            dataset, indices, queue_size, _load_in_worker,
            lambda: ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                        initargs=(dataset,)))
    if workers > 1:
        return _iterate_pooled(
            dataset, indices, queue_size, functools.partial(operator.getitem, dataset),
            lambda: ThreadPoolExecutor(workers, thread_name_prefix=f"{name}-loader"))
    return _iterate_serially(dataset, indices)


def _iterate_serially(dataset, indices):
    for index in indices:
        try:
            batch = dataset[index]
        except Exception as error:
            raise _batch_error(dataset, index, error) from error
        yield index, batch


def _iterate_pooled(dataset, indices, queue_size, load, new_executor):
    indices = iter(indices)
    pending = collections.deque()  # (index, future), in the order asked for
    executor = new_executor()  # in the generator: a generator never started starts no pool
    try:
        for index in itertools.islice(indices, queue_size):
            pending.append((index, executor.submit(load, index)))
        while pending:
            index, future = pending.popleft()
            try:
                batch = future.result()
            except BrokenProcessPool:
                raise
            except Exception as error:
                raise _batch_error(dataset, index, error) from error
            # Ask for the next batch before handing this one over, so the workers keep
            # loading while the caller trains.
            for next_index in itertools.islice(indices, 1):
                pending.append((next_index, executor.submit(load, next_index)))
            yield index, batch
    except BrokenProcessPool as error:
        # The future that reports it is not necessarily that of the batch that killed it.
        raise RuntimeError(
            f"a worker process loading batches of {type(dataset).__name__} died (killed by a "
            "signal or out of memory, os._exit() in __getitem__, or it couldn't start or send "
            "back its result), so the process pool was shut down") from error
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _batch_error(dataset, index, error):
    where = f"loading batch {index!r} of {type(dataset).__name__}"
    message = f"{where}: {type(error).__name__}: {error}"
    # StopIteration raised in a generator would turn into an opaque RuntimeError anyway.
    if not isinstance(error, StopIteration):
        try:
            rebuilt = type(error)(message)
        except Exception:
            rebuilt = None
        if type(rebuilt) is type(error) and where in str(rebuilt):
            return rebuilt
    return RuntimeError(message)


# Worker processes: the dataset comes once per process, through the pool's initializer (by
# fork, inherited without pickling); each task sends only an index.
_worker_dataset = None


def _init_worker(dataset):
    global _worker_dataset
    _worker_dataset = dataset
    # Ctrl-C goes to the whole process group: let the parent alone handle it (it shuts the pool
    # down), rather than every worker dying mid-batch with a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A forked child of a process that has run OpenMP (libgomp) parallel regions hangs in its
    # first own one: run fastnn's kernels serially here (workers x threads would oversubscribe
    # the CPUs anyway). Only the worker's copy of the setting changes.
    kernels = sys.modules.get("fastnn._ckernels")
    if kernels is not None and hasattr(kernels, "set_num_threads"):
        kernels.set_num_threads(1)


def _load_in_worker(index):
    return _worker_dataset[index]


def _process_context():
    # fork: workers start fast and share the dataset's memory copy-on-write. Elsewhere fork is
    # unsafe (macOS) or absent (Windows).
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _check_picklable(dataset, method):
    try:
        ForkingPickler.dumps(dataset)
    except Exception as error:
        raise TypeError(
            f"use_multiprocessing=True starts worker processes with {method!r} on this platform, "
            f"which pickles the dataset, and {type(dataset).__name__} can't be pickled: {error}. "
            "Make it picklable, or load batches in threads (use_multiprocessing=False).") from error
