"""The thread policy of the matrix products: every product of a layer goes through
:func:`matmul` (the compiled epoch's through csrc/epoch.c, with the same rules), so the
policy lives here and nowhere else.

Two policies:

``"fixed"`` (``fastnn.set_num_threads(n, adaptive=False)``, or ``FASTNN_THREADS=fixed``;
the default on one CPU, or with a BLAS fastnn cannot hold at one thread): ``np.matmul`` as
is, on the BLAS's own thread pool at the count ``fastnn.set_num_threads`` gave it. On a busy
machine this collapses: OpenBLAS splits a product
statically between its threads and waits for the last one, so one thread taken off its core by
another process stalls the whole product (measured on 2 cores next to busy processes: a
128x784 by 784x512 float32 product 8-13x slower on 2 threads than on 1).

``"adaptive"`` (the default on several CPUs with numpy's OpenBLAS:
:func:`adaptive_by_default`; ``fastnn.set_num_threads(n, adaptive=True)``, or
``FASTNN_THREADS=adaptive``): fastnn holds the BLAS at one thread and computes each product
big enough as fixed chunks of the result (:func:`split_geometry`: about SPLIT_CHUNKS of them, across the
longer side), each chunk one single-threaded BLAS call. For each product shape it chooses from
measurement between computing the chunks in order on the calling thread (``serial``) and a
``split``: the chunks taken by the calling thread and fastnn's own threads from a shared
counter (dynamic scheduling), the caller taking over, after about a chunk's wait, any chunk a
worker has not finished (a worker another process keeps off its core costs a chunk, not the
product; ``np.matmul`` releases the GIL). The first calls of a shape time both ways,
interleaved, and keep the faster (medians); the choice is measured again after
``RECHECK_CALLS`` calls (an interval that doubles, up to ``MAX_RECHECK_CALLS``, while the choice
holds), and at once when a call takes ``SLOW_FACTOR`` times longer than the chosen way's median
(what contention looks like).

Bits. The result of a BLAS call depends on the shape it is given: OpenBLAS sums an element
in another order when the rows or columns around it are cut elsewhere (measured with one
thread: a 32x784 by 784x512 float32 product cut into column blocks of any width, or row
blocks of 8 or 16, differs in the last bits from the whole product), and its threads cut
products where their count says. So the adaptive policy's results are those of its chunks,
which depend on the product's shape only: the same bits whatever it decides, on any number of
threads, under any load (and the compiled epoch's are the same as the Python loop's). They
differ in the last bits from the fixed policy's (one BLAS call per product), whose bits
depend on the thread count. On a quiet machine the two run at the same speed within the
noise of bench/thread_policies.py; next to busy processes the adaptive one keeps close to a
fair share of the cores where the fixed one collapses (docs/performance.md, session 6).

Ceiling: the split never uses more threads than ``fastnn.get_num_threads()`` (the knob, capped
by OMP_NUM_THREADS and threadpoolctl limits on OpenMP, which ``threadpool_limits(n)`` sets),
read on every product; at one thread the chunks run in order on the caller (the same bits).
When something else raises the BLAS's thread count while adaptive is on
(``threadpool_limits(n, user_api="blas")``), the products run as plain ``np.matmul`` on the
BLAS's threads: the user asked for that pool, and its bits. (A BLAS-only limit of one thread
cannot be told apart from fastnn's own setting; ``threadpool_limits(1)``, which limits OpenMP
too, is seen.)

Not covered: fastnn's own OpenMP kernels keep the knob's thread count (they give the same bits
for any count, and in the benchmark MLPs they run below their parallel threshold anyway).
"""
import itertools
import os
import queue
import threading
import time

import numpy as np

# The chunks of the adaptive policy (split_geometry; csrc/fastnn.h has the same constants, a
# test holds them equal). Products with fewer multiply-adds than SPLIT_MIN_MACS are one BLAS
# call (waking a thread costs tens of microseconds, the product about 50 at one thread), the
# others SPLIT_CHUNKS chunks, each a multiple of SPLIT_ALIGN rows or columns: 3 per thread
# on 2 cores, enough for the one not descheduled to take over, few enough that the operand
# each chunk packs again costs little (measured: 0.97-1.06x one call on one thread).
SPLIT_MIN_MACS = 1 << 20
SPLIT_CHUNKS = 6
SPLIT_ALIGN = 16
# Timed calls of each way per measurement; the choice is the lower median.
SAMPLES = 3
RECHECK_CALLS = 256
# A re-check that keeps the choice doubles the interval up to this (a measurement times the
# losing way too, which can cost 10x a call under contention); a switch resets it.
MAX_RECHECK_CALLS = 4096
SLOW_FACTOR = 4.0
# Slow calls re-measure at most this often (a single preempted call should not make every
# following call a measurement).
MIN_CALLS_BETWEEN_CHECKS = 16

_clock = time.perf_counter
# The thread ceiling, a function: fastnn.backend sets it to its get_num_threads (the knob
# under the user's OpenMP limits); this module imports nothing of fastnn's.
ceiling_source = None


def matmul(a, b, out):
    """``np.matmul(a, b, out=out)`` under the thread policy (2-D float arrays; ``out``
    C-contiguous). Returns ``out``."""
    if _policy is None:
        return np.matmul(a, b, out=out)
    return _policy.matmul(a, b, out)


# --- the BLAS's thread count, read and set cheaply -------------------------------------------

class _Blas:
    """The BLAS behind numpy (through threadpoolctl, looked up once): its thread count, read
    with the library's own function (a ctypes call, ~1 us; threadpoolctl's context manager
    rescans the process's libraries and costs milliseconds)."""

    def __init__(self):
        self.controller = None
        self._get = None
        # fastnn's threads may call it at once, each on one thread: OpenBLAS with its own
        # pthreads pool (or none) only. With an OpenMP layer (or MKL) the thread count is per
        # calling thread, and fastnn's threads would each run the BLAS's default count.
        self.splittable = False
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return
        blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
        if len(blas) != 1:  # none, or two BLAS in the process: not one pool to hold
            return
        self.controller = c = blas[0]
        if c.internal_api == "openblas" and getattr(c, "threading_layer", "") in ("pthreads",
                                                                                  "disabled"):
            self.splittable = True
            for prefix, suffix in itertools.product(("", "scipy_"), ("", "64_", "_64")):
                get = getattr(c.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                if get is not None:
                    import ctypes
                    get.restype, get.argtypes = ctypes.c_int, []
                    self._get = get
                    break

    @property
    def available(self):
        return self.controller is not None

    def get(self):
        if self._get is not None:
            return self._get()
        return self.controller.get_num_threads()

    def set(self, n):
        self.controller.set_num_threads(n)


_blas = None


def numpy_blas_functions():
    """The addresses of the CBLAS functions fastnn calls from C (sgemm, dgemm, sgemv, dgemv,
    sdot, ddot, ssyrk, dsyrk) in the BLAS numpy uses, and whether it takes 64-bit integers;
    None when that is not an OpenBLAS whose names are known. Other BLAS libraries in the
    process (SciPy's, PyTorch's) are told apart by where they live: numpy's wheels carry
    theirs in numpy.libs; a numpy without one uses the only OpenBLAS there is."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    blas = [c for c in ThreadpoolController().lib_controllers
            if c.user_api == "blas" and c.internal_api == "openblas"]
    home = os.path.dirname(np.__file__)  # .../numpy: numpy.libs starts with it too
    own = [c for c in blas if os.path.realpath(c.filepath or "").startswith(home)]
    if len(own) != 1:
        if own or len(blas) != 1:
            return None
        own = blas
    import ctypes
    lib = own[0].dynlib
    # numpy's wheels: scipy-openblas with 64-bit integers (scipy_cblas_sgemm64_); a system
    # OpenBLAS: plain names, 32-bit integers
    for prefix, suffix in (("scipy_", "64_"), ("", "64_"), ("scipy_", ""), ("", "")):
        found = [getattr(lib, f"{prefix}cblas_{f}{suffix}", None) for f in
                 ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot", "ssyrk", "dsyrk")]
        if all(f is not None for f in found):
            return [ctypes.cast(f, ctypes.c_void_p).value for f in found], suffix == "64_"
    return None


def blas():
    """The process's BLAS controller (:class:`_Blas`), found on first use."""
    global _blas
    if _blas is None:
        _blas = _Blas()
    return _blas


# --- fastnn's own threads -------------------------------------------------------------------

_DONE, _STOLEN = 1, 2


class _Job:
    """One split product. Chunks are handed out by a shared counter; the caller computes its
    chunks straight into ``out``, a worker into its own buffer, copied into ``out`` under the
    lock unless the caller took the chunk over. The caller never waits for a worker: when the
    counter runs out it waits for the chunks in flight about as long as one of its own chunks
    took, then computes every chunk not yet done itself (same bits: the same BLAS call on the
    same rows), so a worker that is descheduled, or wakes late, costs a chunk or two instead of
    a stall of a scheduler time slice (milliseconds). csrc/products.c's split_run is its twin
    for the compiled epoch."""
    __slots__ = ("a", "b", "out", "per", "columns", "n", "next", "state", "lock", "finished",
                 "all_done")

    def __init__(self, a, b, out, per, columns):
        self.a, self.b, self.out, self.per, self.columns = a, b, out, per, columns
        self.n = -(-(out.shape[1] if columns else out.shape[0]) // per)
        self.next = itertools.count()  # next() on it is atomic under the GIL
        self.state = [0] * self.n
        self.lock = threading.Lock()
        self.finished = itertools.count(1)
        self.all_done = threading.Event()

    def operands(self, i):
        return _chunk(self.a, self.b, self.out, self.per, self.columns, i)

    def help(self, scratch):
        """A worker's share: chunks from the counter, each into ``scratch`` then ``out``.
        Returns the scratch buffer, for the worker's next job."""
        while True:
            i = next(self.next)
            if i >= self.n:
                return scratch
            scratch = self.worker_chunk(i, scratch)

    def worker_chunk(self, i, scratch):
        """Chunk ``i`` into ``scratch`` (grown as needed), then into ``out`` unless the caller
        took it over meanwhile (it may have returned, and ``out`` moved on)."""
        a, b, dest = self.operands(i)
        size = dest.shape[0] * dest.shape[1]
        if scratch is None or scratch.size < size or scratch.dtype != dest.dtype:
            scratch = np.empty(size, dest.dtype)
        mine = scratch[:size].reshape(dest.shape)
        try:
            np.matmul(a, b, out=mine)
        except Exception:  # noqa: BLE001  the caller computes the chunk and raises
            return scratch
        with self.lock:
            if self.state[i] != _STOLEN:
                dest[...] = mine
                self.state[i] = _DONE
                if next(self.finished) == self.n:
                    self.all_done.set()
        return scratch

    def run(self):
        """The caller's share: chunks from the counter, then every chunk not done."""
        state = self.state
        mine, t0 = 0, _clock()
        while True:
            i = next(self.next)
            if i >= self.n:
                break
            a, b, dest = self.operands(i)
            np.matmul(a, b, out=dest)
            state[i] = _DONE
            mine += 1
            if next(self.finished) == self.n:
                return
        # chunks in flight on workers: worth waiting for about one chunk's time, no longer
        per_chunk = (_clock() - t0) / mine if mine else 0.0
        self.all_done.wait(1.5 * per_chunk + 5e-5)
        for i in range(self.n):
            if state[i] == _DONE:
                continue
            with self.lock:
                if state[i] == _DONE:
                    continue
                state[i] = _STOLEN
            a, b, dest = self.operands(i)
            np.matmul(a, b, out=dest)


class _Pool:
    """fastnn's worker threads for split products (started on first use, daemon threads)."""

    def __init__(self):
        self._queues = []
        self._lock = threading.Lock()

    def _grow(self, n):
        with self._lock:
            while len(self._queues) < n:
                q = queue.SimpleQueue()
                threading.Thread(target=self._loop, args=(q,), daemon=True,
                                 name=f"fastnn-matmul-{len(self._queues)}").start()
                self._queues.append(q)

    @staticmethod
    def _loop(q):
        scratch = None
        while True:
            scratch = q.get().help(scratch)

    def run(self, job, n_threads):
        helpers = min(n_threads, job.n) - 1
        if len(self._queues) < helpers:
            self._grow(helpers)
        for q in self._queues[:helpers]:
            q.put(job)
        job.run()


_pool = _Pool()


def split_geometry(m, n, k):
    """The adaptive policy's chunks of an (m, k) @ (k, n) product: ``(per, columns)``,
    chunks of ``per`` rows of the result (of its columns when ``columns``), or None when the
    product is one BLAS call. Chunks cut the result's longer side, so each packs again the
    smaller operand (a chunk of rows all of b, one of columns all of a). The bits of the
    adaptive policy are those of these chunks, whichever thread computes them: they depend
    on the shape only (csrc/products.c's split_geometry is its twin)."""
    columns = m < n
    extent = n if columns else m
    if m * n * k < SPLIT_MIN_MACS or extent < 2 * SPLIT_ALIGN:
        return None
    per = -(-extent // SPLIT_CHUNKS)
    return -(-per // SPLIT_ALIGN) * SPLIT_ALIGN, columns


def _chunk(a, b, out, per, columns, i):
    """Chunk ``i``'s (a, b, out) slices: rows ``per * i`` on of a and out, or columns of b and
    out."""
    s = slice(i * per, (i + 1) * per)
    if columns:
        return a, b[:, s], out[:, s]
    return a[s], b, out[s]


def chunked_matmul(a, b, out, per, columns):
    """``a @ b`` into ``out`` as split_geometry's chunks, in order, on this thread."""
    extent = out.shape[1] if columns else out.shape[0]
    for i in range(-(-extent // per)):
        ca, cb, cout = _chunk(a, b, out, per, columns, i)
        np.matmul(ca, cb, out=cout)
    return out


def split_matmul(a, b, out, n_threads, per, columns):
    """``a @ b`` into ``out`` as chunks of ``per`` rows (``columns``: columns) on up to
    ``n_threads`` threads, the caller's included, each chunk one BLAS call."""
    _pool.run(_Job(a, b, out, per, columns), n_threads)
    return out


# --- the adaptive policy --------------------------------------------------------------------

class _Shape:
    """What the policy knows of one product shape (and layout, and dtype)."""
    __slots__ = ("choice", "expected", "calls", "since_check", "interval", "samples", "order")

    def __init__(self):
        self.choice = None      # "serial" or "split" once measured
        self.expected = None    # the chosen way's median time
        self.calls = 0
        self.since_check = 0
        self.interval = RECHECK_CALLS  # calls between measurements
        self.samples = None     # {"serial": [...], "split": [...]} while measuring
        self.order = None       # the ways still to time, in turn


def _key(a, b):
    return (a.shape[0], a.shape[1], b.shape[1], a.dtype.char,
            a.flags.c_contiguous, b.flags.c_contiguous)


class AdaptivePolicy:
    """Per shape, the faster of ``serial`` and ``split`` (see the module docstring).

    ``clock`` (default ``time.perf_counter``) and the methods ``serial`` / ``split`` are the
    seams the tests use to script the measurements."""

    def __init__(self, clock=None):
        self.clock = clock or _clock
        self.shapes = {}
        self._lock = threading.Lock()

    # the two ways; both give the chunks' bits
    def serial(self, a, b, out, n_threads, geometry):
        return chunked_matmul(a, b, out, *geometry)

    def split(self, a, b, out, n_threads, geometry):
        return split_matmul(a, b, out, n_threads, *geometry)

    def ceiling(self):
        """The most threads a product may use now: get_num_threads() (the knob under the
        user's OpenMP limits)."""
        return ceiling_source() if ceiling_source is not None else 1

    def blas_threads(self):
        return blas().get()

    def matmul(self, a, b, out):
        geometry = split_geometry(a.shape[0], b.shape[1], a.shape[1]) \
            if a.ndim == 2 and b.ndim == 2 else None
        if geometry is None or self.blas_threads() != 1:
            # small; or the BLAS was given threads by the user (threadpoolctl): its pool,
            # its bits
            return np.matmul(a, b, out=out)
        n_threads = self.ceiling()
        if n_threads < 2 or not blas().splittable:
            return self.serial(a, b, out, 1, geometry)
        key = _key(a, b)
        # the bookkeeping is locked (models may run in several threads at once: predict while
        # fit), the products are not
        with self._lock:
            s = self.shapes.get(key)
            if s is None:
                s = self.shapes[key] = _Shape()
            s.calls += 1
            s.since_check += 1
            measuring = s.choice is None or s.since_check > s.interval
            way = self._next_way(s) if measuring else s.choice
        clock = self.clock
        t0 = clock()
        (self.serial if way == "serial" else self.split)(a, b, out, n_threads, geometry)
        dt = clock() - t0
        with self._lock:
            if measuring:
                self._record(s, way, dt)
            elif dt > SLOW_FACTOR * s.expected and s.since_check >= MIN_CALLS_BETWEEN_CHECKS:
                s.since_check = s.interval + 1  # the next call measures again
        return out

    @staticmethod
    def _next_way(s):
        """The way the next measuring call times: each way once per round, in turn."""
        if s.samples is None:
            s.samples = {"serial": [], "split": []}
            s.order = []
        if not s.order:
            s.order = [w for w in ("serial", "split") if len(s.samples[w]) < SAMPLES]
        return s.order.pop(0) if s.order else (s.choice or "serial")

    @staticmethod
    def _record(s, way, dt):
        if s.samples is None:  # another thread finished this measurement meanwhile
            return
        s.samples[way].append(dt)
        if all(len(v) >= SAMPLES for v in s.samples.values()):
            med = {w: float(np.median(v)) for w, v in s.samples.items()}
            choice = min(med, key=med.get)
            s.interval = min(2 * s.interval, MAX_RECHECK_CALLS) if choice == s.choice \
                else RECHECK_CALLS
            s.choice = choice
            s.expected = med[s.choice]
            s.samples = s.order = None
            s.since_check = 0

    def decisions(self):
        """{(m, k, n, dtype char, a C-contiguous, b C-contiguous): "serial" or "split", or
        None (still measuring)}."""
        return {k: s.choice for k, s in self.shapes.items()}


_policy = None


def policy():
    """The active policy's name: ``"fixed"`` or ``"adaptive"``."""
    return "fixed" if _policy is None else "adaptive"


def adaptive_policy():
    """The active :class:`AdaptivePolicy` (its ``decisions()`` show what it chose), or None
    under the fixed policy."""
    return _policy


def _set_policy(name, policy_obj=None):
    """Switch the policy (backend.set_num_threads does; it also sets the BLAS's threads)."""
    global _policy
    if name == "fixed":
        _policy = None
    elif name == "adaptive":
        _policy = policy_obj or AdaptivePolicy()
    else:
        raise ValueError(f"unknown thread policy {name!r}: expected 'fixed' or 'adaptive'")


def _after_fork_in_child():
    """A forked child has none of the parent's worker threads, and a lock some other thread
    held at the fork stays held: fresh ones."""
    global _pool
    _pool = _Pool()
    if _policy is not None:
        _policy._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def env_policy():
    """The policy FASTNN_THREADS asks for at import: "fixed", "adaptive", or None (unset)."""
    value = os.environ.get("FASTNN_THREADS", "").strip().lower()
    if not value:
        return None
    if value not in ("fixed", "adaptive"):
        raise ValueError(f"FASTNN_THREADS={value!r}: expected 'fixed' or 'adaptive'")
    return value


def adaptive_by_default(n_threads):
    """Whether fastnn starts under the adaptive policy when FASTNN_THREADS is unset: when it
    may use several CPUs and numpy's BLAS is one fastnn can hold at one thread and call from
    its own threads (with one CPU, or a BLAS whose threads fastnn cannot split, the chunks
    would only cost)."""
    return n_threads >= 2 and blas().available and blas().splittable
