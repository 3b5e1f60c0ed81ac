"""One model used from several threads, and Ctrl-C during fit.

- ``RWLock``: inference (predict, evaluate, ``model(x)``) reads the weights and BatchNorm's
  statistics while a training step writes them: a step holds the lock for writing, each
  inference chunk for reading, so a prediction sees the model before or after a step, never
  half-updated, and predictions run in parallel with each other.
- ``Pool``: the sets of work arrays (and of metric objects) that concurrent inference calls
  need one each, made when every one is taken.
- ``StepGuard``: a KeyboardInterrupt that arrives during a training step is held until the
  step has finished, so an interrupted fit leaves the model exactly as after its last step.
"""
import signal
import threading


class RWLock:
    """Many readers or one writer; a waiting writer keeps new readers out (a training step
    is not starved by a stream of predictions)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer_waiting = 0
        # threads inside _cond.wait(): with none, nobody needs waking, and the uncontended
        # step (one writer, no inference running) skips Condition.notify_all, the costliest
        # part of taking and releasing the lock (it is Python code in threading.py)
        self._sleepers = 0

    def _wait(self):
        self._sleepers += 1
        try:
            self._cond.wait()
        finally:  # wait() holds the lock again when it returns or raises
            self._sleepers -= 1

    def acquire_read(self):
        with self._cond:
            while self._writer_waiting:
                self._wait()
            self._readers += 1

    def release_read(self):
        with self._cond:
            self._readers -= 1
            if not self._readers and self._sleepers:
                self._cond.notify_all()

    def acquire_write(self):
        self._cond.acquire()
        self._writer_waiting += 1
        if not self._readers:
            return
        try:
            while self._readers:
                self._wait()
        except BaseException:  # e.g. Ctrl-C while waiting: leave the lock as it was
            self._writer_waiting -= 1
            if self._sleepers:
                self._cond.notify_all()
            self._cond.release()
            raise

    def release_write(self):
        self._writer_waiting -= 1
        if self._sleepers:
            self._cond.notify_all()
        self._cond.release()

    def reading(self):
        return _Held(self.acquire_read, self.release_read)

    def writing(self):
        return _Held(self.acquire_write, self.release_write)


class _Held:
    __slots__ = ("enter", "exit")

    def __init__(self, enter, exit):
        self.enter, self.exit = enter, exit

    def __enter__(self):
        self.enter()

    def __exit__(self, *exc):
        self.exit()


class Pool:
    """Objects handed out one per concurrent caller: ``with pool.take() as item:``. ``make``
    builds another when every one is taken."""

    def __init__(self, first, make):
        self._free = [first]
        self._make = make

    def take(self):
        return _Taken(self)


class _Taken:
    __slots__ = ("pool", "item")

    def __init__(self, pool):
        self.pool = pool

    def __enter__(self):
        try:
            self.item = self.pool._free.pop()  # atomic under the GIL
        except IndexError:
            self.item = self.pool._make()
        return self.item

    def __exit__(self, *exc):
        self.pool._free.append(self.item)


class StepGuard:
    """Installed by fit in the main thread (when SIGINT has Python's default handler): a
    SIGINT outside a step raises KeyboardInterrupt at once, as usual; inside one it is
    remembered and raised when the step ends (``end_step``)."""

    def __init__(self):
        self.in_step = False
        self.pending = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        self.in_step = False

    def _handler(self, signum, frame):
        if self.in_step:
            self.pending = True
        else:
            raise KeyboardInterrupt

    def end_step(self):
        self.in_step = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt
