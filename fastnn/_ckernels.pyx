# cython: language_level=3, binding=True, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The C-backed kernels: thin wrappers that validate arguments and call csrc/ without the GIL.

Every public function here has a twin of the same name and signature in ``fastnn.reference``.
The wrappers never let a kernel read or write out of bounds: dtypes, contiguity and shapes
are checked here (inputs that are not C-contiguous are copied; ``out`` buffers must be
C-contiguous and of the input's dtype).
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int32_t, int64_t
from fastnn._kernels cimport *

cnp.import_array()

# The header's codes and constants as this extension was compiled with them (from the .pxd,
# which reads csrc/fastnn.h): the tests hold fastnn.reference's tables to these. binding=True
# above makes every wrapper introspectable (inspect.signature), so the tests also check that
# each has its reference twin's signature.
HEADER_CONSTANTS = {
    "ACT_LINEAR": ACT_LINEAR, "ACT_RELU": ACT_RELU, "ACT_LEAKY_RELU": ACT_LEAKY_RELU,
    "ACT_ELU": ACT_ELU, "ACT_SELU": ACT_SELU, "ACT_SIGMOID": ACT_SIGMOID, "ACT_TANH": ACT_TANH,
    "ACT_GELU": ACT_GELU, "ACT_SWISH": ACT_SWISH, "ACT_SOFTPLUS": ACT_SOFTPLUS,
    "ACT_SOFTSIGN": ACT_SOFTSIGN, "ACT_HARD_SIGMOID": ACT_HARD_SIGMOID, "ACT_MISH": ACT_MISH,
    "ACT_EXPONENTIAL": ACT_EXPONENTIAL, "ACT_SOFTMAX": ACT_SOFTMAX,
    "ACT_LOG_SOFTMAX": ACT_LOG_SOFTMAX, "FASTNN_N_ACTIVATIONS": FASTNN_N_ACTIVATIONS,
    "FASTNN_SELU_ALPHA": FASTNN_SELU_ALPHA, "FASTNN_SELU_SCALE": FASTNN_SELU_SCALE,
    "LOSS_MSE": LOSS_MSE, "LOSS_MAE": LOSS_MAE, "LOSS_HUBER": LOSS_HUBER, "LOSS_BCE": LOSS_BCE,
    "LOSS_BCE_LOGITS": LOSS_BCE_LOGITS, "LOSS_CCE": LOSS_CCE, "LOSS_KLD": LOSS_KLD,
    "LOSS_HINGE": LOSS_HINGE, "FASTNN_N_LOSSES": FASTNN_N_LOSSES,
    "EPOCH_SPLIT_SAMPLES": EPOCH_SPLIT_SAMPLES, "EPOCH_SPLIT_RECHECK": EPOCH_SPLIT_RECHECK,
    "EPOCH_SPLIT_MAX_RECHECK": EPOCH_SPLIT_MAX_RECHECK, "EPOCH_SPLIT_SLOW": EPOCH_SPLIT_SLOW,
    "EPOCH_SPLIT_MIN_CALLS": EPOCH_SPLIT_MIN_CALLS, "EPOCH_SPLIT_CHUNKS": EPOCH_SPLIT_CHUNKS,
    "EPOCH_SPLIT_ALIGN": EPOCH_SPLIT_ALIGN, "EPOCH_SPLIT_MIN_MACS": EPOCH_SPLIT_MIN_MACS,
}

cdef int _n_threads = 1

cdef extern from *:
    """
    #include "fastnn.h"
    /* The OpenMP runtime's thread limit for the calling thread (0 in a serial build). */
    static int fastnn_omp_max_threads(void)
    {
    #if FASTNN_HAVE_OPENMP
        return omp_get_max_threads();
    #else
        return 0;
    #endif
    }
    """
    int fastnn_omp_max_threads() noexcept nogil

import os as _os

# The runtime's limit as it loaded without OMP_NUM_THREADS is its default, the CPU count:
# not a limit anyone gave, so it must not cap set_num_threads(n) asking for more. -1 when
# OMP_NUM_THREADS was given: then even its value at load is the user's.
cdef int _omp_default = -1 if _os.environ.get("OMP_NUM_THREADS") else fastnn_omp_max_threads()


cdef inline int _user_limit() noexcept nogil:
    """The thread limit the user gave the OpenMP runtime for the calling thread
    (OMP_NUM_THREADS, threadpoolctl.threadpool_limits, omp_set_num_threads), or 0 for none.
    The kernels pass num_threads to OpenMP, which overrides this limit, so they read it here:
    one call that reads a thread-local value, a few ns against the ~1 us of a wrapper call."""
    cdef int limit = fastnn_omp_max_threads()
    return 0 if limit == _omp_default else limit


def set_num_threads(int n):
    """Set the thread count of fastnn's own kernels (BLAS is set by fastnn.set_num_threads)."""
    global _n_threads
    if n < 1:
        raise ValueError(f"the number of threads must be >= 1, got {n}")
    _n_threads = n


def get_num_threads():
    """The thread count set by set_num_threads (before openmp_limit() caps it)."""
    return _n_threads


def call_threads():
    """The thread count a kernel called now without n_threads runs with (set_num_threads's,
    capped by the user's OpenMP limit)."""
    return _nt(None)


def openmp_limit():
    """The thread limit the user gave the OpenMP runtime for the calling thread, which caps
    the kernels' default thread count, or None when there is none (see _user_limit)."""
    cdef int limit = _user_limit()
    return limit if limit > 0 else None


def have_openmp():
    """True when the extension was compiled with OpenMP (else every kernel is serial)."""
    return bool(fastnn_have_openmp())


# fastnn_cpu_path's numbers (csrc/fastnn.h); -1 is a build without runtime dispatch
CPU_PATHS = ("baseline", "avx2", "avx512")


def cpu_path():
    """The CPU path the kernels were bound to when the extension loaded: "avx512", "avx2",
    "baseline", or "native" for a build without runtime dispatch (csrc/dispatch.c)."""
    cdef int path = fastnn_cpu_path()
    return CPU_PATHS[path] if path >= 0 else "native"


def cpu_supported():
    """The best CPU path this machine supports ("native" without runtime dispatch)."""
    cdef int path = fastnn_cpu_supported()
    return CPU_PATHS[path] if path >= 0 else "native"


def cpu_requested():
    """What FASTNN_CPU asked for when the extension loaded, as the loader read it: a path
    name, None when unset (or "auto"), "invalid" for any other value."""
    cdef int path = fastnn_cpu_requested()
    return CPU_PATHS[path] if path >= 0 else (None if path == -1 else "invalid")


cdef inline int _nt(n_threads) except -1:
    # The default honours the user's OpenMP limit; an explicit n_threads is taken as given
    # (the tests use it to run both paths of a kernel).
    cdef int limit
    if n_threads is None:
        limit = _user_limit()
        return limit if 0 < limit < _n_threads else _n_threads
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    return <int>n_threads


cdef int _kind(a, str name) except -1:
    """0 for float32, 1 for float64; a TypeError naming the argument otherwise."""
    try:
        num = a.dtype.num
    except AttributeError:
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    if num == cnp.NPY_FLOAT32:
        return 0
    if num == cnp.NPY_FLOAT64:
        return 1
    raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")


cdef object _in(a, int kind, str name):
    """An input as a C-contiguous array of the given kind (copies only when needed)."""
    if _kind(a, name) != kind:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {'float32' if kind == 0 else 'float64'}")
    return np.ascontiguousarray(a)


cdef object _out(a, int kind, tuple shape, str name):
    """Check an output buffer: right kind, right shape, C-contiguous, writable."""
    if _kind(a, name) != kind:
        raise TypeError(f"{name} has dtype {a.dtype}, expected {'float32' if kind == 0 else 'float64'}")
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    if not a.flags.c_contiguous or not a.flags.writeable:
        raise ValueError(f"{name} must be a writable C-contiguous array")
    return a


cdef tuple _shape2(a, str name):
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    return a.shape


# ---- the checked-once fast path ------------------------------------------------------------
# A training step calls a few kernels per layer on arrays that are already right (the layers'
# own buffers): for those, the wrappers read the arrays' type, shape and flags through the
# NumPy C-API and call the kernel directly. Anything else (another dtype or layout, a shape
# that does not match, an empty array, a list) takes the general path below each fast path,
# which copies what may be copied and raises the errors, so behaviour is unchanged. Measured
# (callgrind, tabular 20-64-64-2 at batch 32): typed memoryviews and Python-level attribute
# checks cost ~10,000 instructions a call, ~5x the kernels themselves on these shapes.
cdef inline char *_fast_ptr(object a, int tn, int nd, Py_ssize_t d0, Py_ssize_t d1,
                            bint writable) noexcept:
    """The data of ``a`` when it is an ndarray of type number ``tn`` (native byte order,
    aligned, C-contiguous, writable if asked) of shape (d0,) (``nd`` 1) or (d0, d1), else
    NULL."""
    cdef cnp.ndarray x
    if not cnp.PyArray_Check(a):
        return NULL
    x = <cnp.ndarray>a
    if (cnp.PyArray_TYPE(x) != tn or cnp.PyArray_NDIM(x) != nd or cnp.PyArray_DIM(x, 0) != d0
            or (nd == 2 and cnp.PyArray_DIM(x, 1) != d1) or not cnp.PyArray_IS_C_CONTIGUOUS(x)
            or not cnp.PyArray_ISALIGNED(x) or not cnp.PyArray_ISNOTSWAPPED(x)
            or (writable and not cnp.PyArray_ISWRITEABLE(x))):
        return NULL
    return <char *>cnp.PyArray_DATA(x)


cdef inline int _fast_2d(object a, Py_ssize_t *rows, Py_ssize_t *cols) noexcept:
    """The type number of ``a`` when it is a non-empty 2-D float32/float64 ndarray (its shape
    into rows, cols), else -1."""
    cdef cnp.ndarray x
    cdef int tn
    if not cnp.PyArray_Check(a):
        return -1
    x = <cnp.ndarray>a
    tn = cnp.PyArray_TYPE(x)
    if (tn != cnp.NPY_FLOAT and tn != cnp.NPY_DOUBLE) or cnp.PyArray_NDIM(x) != 2:
        return -1
    rows[0] = cnp.PyArray_DIM(x, 0)
    cols[0] = cnp.PyArray_DIM(x, 1)
    if rows[0] == 0 or cols[0] == 0:
        return -1
    return tn


cdef inline int _fast_1d(object a, Py_ssize_t *n) noexcept:
    """As _fast_2d for a non-empty 1-D float32/float64 ndarray."""
    cdef cnp.ndarray x
    cdef int tn
    if not cnp.PyArray_Check(a):
        return -1
    x = <cnp.ndarray>a
    tn = cnp.PyArray_TYPE(x)
    if (tn != cnp.NPY_FLOAT and tn != cnp.NPY_DOUBLE) or cnp.PyArray_NDIM(x) != 1:
        return -1
    n[0] = cnp.PyArray_DIM(x, 0)
    return -1 if n[0] == 0 else tn


include "_ckernels_activations.pxi"
include "_ckernels_losses.pxi"
include "_ckernels_reductions.pxi"
include "_ckernels_optimizers.pxi"
include "_ckernels_normalization.pxi"
include "_ckernels_dropout.pxi"
include "_ckernels_regularizers.pxi"
include "_ckernels_embedding.pxi"
include "_ckernels_products.pxi"
include "_ckernels_epoch.pxi"
include "_ckernels_merging.pxi"
