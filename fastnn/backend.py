"""Global settings: which kernels run (C or the NumPy reference), the default float dtype,
the thread count shared by fastnn's kernels and BLAS, and the random seed."""
import os
import warnings


def _openmp_already_loaded():
    """True when libgomp is already in the process (PyTorch, for one, loads its own copy under
    the same name, and fastnn's extension then binds to that one): it read OMP_WAIT_POLICY
    when it loaded, so setting the variable now changes nothing."""
    try:
        import ctypes
        ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        return True
    except (OSError, AttributeError):  # not loaded, or no RTLD_NOLOAD on this platform
        return False


# fastnn's OpenMP kernels and the BLAS behind numpy share the cores, taking turns many
# times per training step. OpenMP workers that spin after a kernel steal a core from the
# BLAS threads (measured: 20x slower epochs on 2 cores), so they must sleep at once. libgomp
# reads this when it loads, i.e. when the extension is imported just below, unless another
# library loaded it first: then, and only if the user did not choose a policy, fastnn's own
# kernels run on one thread so that no OpenMP worker exists to spin (measured with PyTorch
# imported first: epochs 4.5x slower with 2-thread kernels, as fast as usual with 1-thread
# kernels, which lose little since most kernels of a training step are below the parallel
# threshold anyway).
_WAIT_POLICY_SET_BY_FASTNN = "OMP_WAIT_POLICY" not in os.environ
# GOMP_SPINCOUNT is libgomp's other knob for how long idle workers spin: the user's choice too
_SPINNING_OPENMP = (_WAIT_POLICY_SET_BY_FASTNN and "GOMP_SPINCOUNT" not in os.environ
                    and _openmp_already_loaded())
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np  # noqa: E402

from . import ops as _ops_module  # noqa: E402
from . import threads as _threads  # noqa: E402

_FLOATX = "float32"
_rng = np.random.default_rng()
_seed = None
ops = None  # the active ops object; layers call backend.ops.<kernel>(...)


def set_backend(name):
    """Run every kernel on ``"c"`` (the compiled kernels, default) or ``"numpy"`` (the
    reference). Also set by the environment variable FASTNN_BACKEND."""
    global ops
    if name == "numpy":
        ops = _ops_module.NumpyOps()
    elif name == "c":
        if _ops_module.COps is None:
            raise RuntimeError(
                "fastnn's C extension is not available (was the package built? "
                f"import error: {_ops_module.C_IMPORT_ERROR}); use set_backend('numpy')")
        ops = _ops_module.COps()
    else:
        raise ValueError(f"unknown backend {name!r}: expected 'c' or 'numpy'")


def backend():
    """The active backend's name: 'c' or 'numpy'."""
    return ops.name


def floatx():
    """The default float dtype of new layers, 'float32' unless set_floatx says otherwise."""
    return _FLOATX


def set_floatx(value):
    """Set the default float dtype ('float32' or 'float64'), as keras.config.set_floatx."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"floatx must be 'float32' or 'float64', got {value!r}")
    _FLOATX = value


def set_seed(seed):
    """Seed every random choice fastnn makes (initializers, shuffling, dropout masks):
    the same seed and thread count give the same weights bit for bit."""
    global _rng, _seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _rng = np.random.default_rng(_seed)
    np.random.seed(_seed % (2 ** 32))


# How many objects took each automatic name so far (Keras: dense, dense_1, dense_2, ...);
# global state like the RNG, so it lives here and clear_session resets it.
_NAME_COUNTS = {}


def unique_name(base):
    """Keras-style automatic names: dense, dense_1, dense_2, ..."""
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def clear_session():
    """Keras' clear_session: resets the automatic layer names (dense, dense_1, ...)."""
    _NAME_COUNTS.clear()


def get_value(x):
    """get_value(x): the value of ``x`` as NumPy, as Keras 2's ``keras.backend.get_value``.

    fastnn convenience for Keras 2 code (``import fastnn.backend as K``): ``x`` is a weight
    (``layer.kernel``, anything with ``.numpy()``: a copy of its array) or a learning rate
    (``K.get_value(model.optimizer.learning_rate)``, or Keras 2's ``optimizer.lr``: a float);
    plain numbers and arrays are returned as NumPy values too."""
    if hasattr(x, "numpy"):
        return x.numpy()
    value = np.asarray(x)
    if value.dtype.kind not in "biuf":
        raise TypeError(f"get_value: expected a variable, a learning rate, a number or an "
                        f"array, got {type(x).__name__}")
    return value.copy() if value.ndim else value[()]


def set_value(x, value):
    """set_value(x, value): set ``x`` in place, as Keras 2's ``keras.backend.set_value``.

    fastnn convenience for Keras 2 code: ``K.set_value(model.optimizer.learning_rate, 0.01)``
    (or ``optimizer.lr``) sets the optimizer's rate, exactly as ``optimizer.learning_rate =
    0.01`` (refused, as in Keras, when the optimizer runs a schedule); ``K.set_value(
    layer.kernel, array)`` copies the array into the weight (shape and finiteness checked,
    dtype converted). The rate ``optimizer.learning_rate`` returns is a float that remembers
    its optimizer (so set_value can reach it); it is a snapshot: read the property again to
    see the new rate. A plain number or array has nothing to set, so it is refused."""
    if hasattr(value, "numpy"):  # another variable or learning rate: its value
        value = value.numpy()
    assign = getattr(x, "assign", None)
    if assign is None:
        raise TypeError(f"set_value: {type(x).__name__} {x!r} cannot be set in place; pass a "
                        "variable (e.g. layer.kernel) or an optimizer's learning_rate (as "
                        "returned by model.optimizer.learning_rate)")
    assign(value)


def rng():
    """The global numpy Generator behind initializers and shuffling."""
    return _rng


def _default_threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


_blas_limiter = None


def _user_limit(n):
    """``n`` capped by the thread limit the user gave the OpenMP runtime for the calling
    thread (OMP_NUM_THREADS, threadpoolctl.threadpool_limits): the ceiling of both fastnn's
    kernels (the C wrappers apply it on every call) and the BLAS that set_num_threads sets."""
    ck = _ops_module._ckernels
    limit = ck.openmp_limit() if ck is not None else None
    return n if limit is None else min(n, limit)


def set_num_threads(n, adaptive=None):
    """One knob for fastnn's kernels and the BLAS behind numpy's matrix products, each capped
    by a thread limit the user gave OpenMP (OMP_NUM_THREADS, threadpoolctl.threadpool_limits);
    the knob comes back in full when such a limit is lifted.

    fastnn extra, the thread policy of the matrix products (fastnn/threads.py), kept as it is
    when ``adaptive`` is None:

    - adaptive (``adaptive=True``, or ``set_num_threads("adaptive")`` for all the CPUs this
      process may use; the default when it may use several and numpy's BLAS is an OpenBLAS
      fastnn can hold at one thread): each product big enough is computed as fixed chunks
      of its result, single-threaded BLAS calls, in order on the calling thread or shared
      with fastnn's own threads, whichever measured faster while training, with at most
      ``n`` threads. It holds up on a machine busy with other processes, where the BLAS's
      own threads stall, and gives the same bits whatever it decides and for any ``n``.
    - fixed (``adaptive=False``): ``np.matmul`` on the BLAS's own ``n`` threads, whose bits
      depend on ``n``.

    FASTNN_THREADS=adaptive or fixed in the environment sets the policy at import."""
    global _blas_limiter
    if isinstance(n, str):
        if n.strip().lower() != "adaptive":
            raise ValueError(f"set_num_threads: expected an integer or 'adaptive', got {n!r}")
        n, adaptive = _default_threads(), True
    try:
        k = int(n)
    except (TypeError, ValueError):
        raise TypeError(f"set_num_threads: the number of threads must be an integer, got {n!r}") from None
    if isinstance(n, float) and k != n:
        raise ValueError(f"set_num_threads: the number of threads must be an integer, got {n!r}")
    n = k
    if n < 1:
        raise ValueError(f"the number of threads must be >= 1, got {n}")
    if adaptive is None:
        adaptive = _threads.policy() == "adaptive"
    if adaptive and not _threads.blas().available:
        raise RuntimeError(
            "set_num_threads: the adaptive policy needs threadpoolctl and one BLAS that it can "
            "control (none found in this process, or several); use an integer instead")
    if _ops_module._ckernels is not None:
        _ops_module._ckernels.set_num_threads(kernel_threads(n))
    try:
        from threadpoolctl import threadpool_limits
        # adaptive: fastnn's own threads split the products, each calling the BLAS on one
        # thread (one BLAS pool in the process, kept at one thread)
        _blas_limiter = threadpool_limits(limits=1 if adaptive else _user_limit(n), user_api="blas")
    except ImportError:  # threadpoolctl is a dependency, but fastnn still runs without it
        pass
    _threads._set_policy("adaptive" if adaptive else "fixed")
    global _n_threads
    _n_threads = n


_n_threads = None


def get_num_threads():
    """The thread count fastnn runs with: set_num_threads's (default: the CPUs this process
    may use), capped by a limit the user gave OpenMP for the calling thread (OMP_NUM_THREADS,
    or inside a threadpoolctl.threadpool_limits block)."""
    return _user_limit(_n_threads)


def kernel_threads(n=None):
    """The thread count fastnn's own kernels are set to for the knob ``n`` (default: the
    current one): ``n``, or 1 when OpenMP was loaded before fastnn with workers that spin (see
    the top of fastnn/backend.py and the warning fastnn gives then). The user's OpenMP limit
    caps it on each kernel call (fastnn/_ckernels.pyx, ``_nt``)."""
    n = _n_threads if n is None else n
    return 1 if _SPINNING_OPENMP else n


class serial_kernels:
    """Context manager: fastnn's own kernels run on one thread inside the block (the BLAS is
    not touched); used for work that measured faster on one core in the training loop."""

    def __enter__(self):
        ck = _ops_module._ckernels
        self._prev = ck.get_num_threads() if ck is not None else None
        if self._prev is not None and self._prev > 1:
            ck.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self._prev is not None and self._prev > 1:
            _ops_module._ckernels.set_num_threads(self._prev)
        return False


def cpu_path():
    """The CPU path fastnn's C kernels run on: ``"avx512"`` (x86-64-v4), ``"avx2"``
    (x86-64-v3: AVX2 and FMA), ``"baseline"`` (x86-64), ``"native"`` for a build without
    runtime dispatch (``FASTNN_NATIVE=1``, or not GCC on x86-64 Linux), or None when the C
    extension is not built. fastnn extra.

    The best path the CPU supports is picked when the extension loads; the environment
    variable ``FASTNN_CPU=baseline|avx2|avx512`` (set before ``import fastnn``) forces a
    lower one, e.g. to check results against the baseline code. Each path gives the same
    bits run after run; paths may differ from each other in the last bits (FMA)."""
    ck = _ops_module._ckernels
    return None if ck is None else ck.cpu_path()


def supported_cpu_paths():
    """The CPU paths this machine can run, lowest first (the values ``FASTNN_CPU`` may
    take): ``("baseline", "avx2")`` on an AVX2 CPU without AVX-512; ``("native",)`` for a
    build without runtime dispatch; ``()`` when the C extension is not built. fastnn extra."""
    ck = _ops_module._ckernels
    if ck is None:
        return ()
    best = ck.cpu_supported()
    if best == "native":
        return ("native",)
    return ck.CPU_PATHS[:ck.CPU_PATHS.index(best) + 1]


def have_openmp():
    """True when the C kernels were compiled with OpenMP."""
    return _ops_module._ckernels is not None and _ops_module._ckernels.have_openmp()


set_backend(os.environ.get("FASTNN_BACKEND", "c" if _ops_module.COps is not None else "numpy"))
_n_threads = _default_threads()
_threads.ceiling_source = get_num_threads
_asked = _threads.env_policy()
if _asked == "adaptive" and not _threads.blas().available:
    warnings.warn("fastnn: FASTNN_THREADS=adaptive needs one BLAS that threadpoolctl can "
                  "control (none found, or several): the fixed policy runs",
                  RuntimeWarning, stacklevel=2)
elif _asked == "adaptive" or (_asked is None and _threads.adaptive_by_default(_n_threads)):
    set_num_threads(_n_threads, adaptive=True)
if _ops_module._ckernels is not None:
    _ops_module._ckernels.set_num_threads(kernel_threads(_n_threads))
    if _SPINNING_OPENMP and get_num_threads() > 1 and _ops_module._ckernels.have_openmp() \
            and ops.name == "c":
        warnings.warn(
            "fastnn: OpenMP (libgomp) was loaded before fastnn, e.g. by importing torch first, "
            "without OMP_WAIT_POLICY in the environment, so its idle threads spin for "
            "milliseconds after every parallel region and take cores from numpy's BLAS "
            "(training several times slower). fastnn's own kernels therefore run on one thread "
            "in this process (the BLAS still uses all threads). To get parallel kernels back, "
            "import fastnn before torch, or set OMP_WAIT_POLICY=passive before starting Python.",
            RuntimeWarning, stacklevel=2)
