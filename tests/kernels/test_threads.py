"""The thread policy: one knob for fastnn's kernels and the BLAS; kernels that give the same
bits for any thread count; OpenMP workers that sleep instead of spinning."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import datasets, layers, optimizers

from fastnn.reference.activations import ACTIVATION_CODES

from conftest import C, requires_c, same_fastnn_env


def test_set_num_threads_sets_kernels_and_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from fastnn import _ckernels
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        assert fastnn.get_num_threads() == 1 and _ckernels.get_num_threads() == 1
        blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
        assert blas and all(i["num_threads"] == 1 for i in blas)
    finally:
        fastnn.set_num_threads(old)
    with pytest.raises(ValueError, match=">= 1"):
        fastnn.set_num_threads(0)


def test_openmp_workers_sleep_unless_the_user_says_otherwise():
    code = "import os, fastnn; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         **same_fastnn_env(env))
    assert out.stdout.strip() == "passive"
    env["OMP_WAIT_POLICY"] = "active"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         **same_fastnn_env(env))
    assert out.stdout.strip() == "active"


@requires_c
@pytest.mark.skipif(bool(os.environ.get("FASTNN_NO_OPENMP")),
                    reason="a serial build: tests/kernels/test_build_options.py checks it")
def test_openmp_was_compiled_in():
    # gcc on the CI machine has OpenMP: the build must have found it
    assert fastnn.have_openmp()


@requires_c
def test_training_is_reproducible_per_thread_count():
    (x, y), _ = datasets.load_digits()
    old = fastnn.get_num_threads()
    try:
        for nt in (1, 2):
            fastnn.set_num_threads(nt)
            weights = []
            for _ in range(2):
                fastnn.set_seed(7)
                # 256 x 640 = 163840 activations: above FASTNN_PARALLEL_MIN (131072), so with
                # 2 threads the parallel path runs (with 32 units it never did, and the 2-thread
                # case repeated the 1-thread one)
                m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(640, activation="relu"),
                                       layers.Dense(10, activation="softmax")])
                m.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
                m.fit(x, y, epochs=1, batch_size=256, verbose=0)
                weights.append(m.get_weights())
            for a, b in zip(*weights):
                assert np.array_equal(a, b)
    finally:
        fastnn.set_num_threads(old)


_IMPORT = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import fastnn
from fastnn import _ckernels
fastnn.set_num_threads(2)
print(sum("OMP_WAIT_POLICY" in str(w.message) for w in caught), fastnn.get_num_threads(),
      _ckernels.get_num_threads())
"""
_PRELOAD = """
import ctypes, os
ctypes.CDLL("libgomp.so.1", mode=os.RTLD_GLOBAL)  # as importing torch first does
"""


def _run(code, env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, **same_fastnn_env(env))
    return [int(v) for v in out.stdout.split()]


@requires_c
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libgomp by soname: Linux")
def test_openmp_loaded_first_without_a_policy_gives_serial_kernels_and_a_warning():
    """libgomp loaded before fastnn (PyTorch does it) has read OMP_WAIT_POLICY already: its
    workers would spin and starve the BLAS, so fastnn's kernels run on one thread and say why."""
    if not fastnn.have_openmp():
        pytest.skip("built without OpenMP")
    try:
        import ctypes
        ctypes.CDLL("libgomp.so.1")
    except OSError:
        pytest.skip("no libgomp.so.1 to preload")
    # the C backend's guard: a suite run with FASTNN_BACKEND=numpy must not leak into the child
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "FASTNN_BACKEND", "OMP_NUM_THREADS")}
    # warned (when fastnn would have used 2+ threads), the knob (BLAS) at 2, the kernels at 1
    assert _run(_PRELOAD + _IMPORT, env) == [int(len(os.sched_getaffinity(0)) > 1), 2, 1]
    # on the NumPy backend the kernels are not used: serial all the same, but no warning
    assert _run(_PRELOAD + _IMPORT, dict(env, FASTNN_BACKEND="numpy")) == [0, 2, 1]
    # without a preloaded libgomp nothing changes
    assert _run(_IMPORT, env) == [0, 2, 2]
    # the user's own policy is respected: no warning, parallel kernels
    assert _run(_PRELOAD + _IMPORT, dict(env, GOMP_SPINCOUNT="0")) == [0, 2, 2]
    env["OMP_WAIT_POLICY"] = "passive"
    assert _run(_PRELOAD + _IMPORT, env) == [0, 2, 2]


@requires_c
def test_small_optimizer_updates_run_on_one_thread_in_fit(monkeypatch):
    """Below optimizers.base.PARALLEL_UPDATE_MIN parameters the packed update runs serially
    (measured faster in the training loop); same bits either way; the knob is restored."""
    from fastnn import _ckernels, backend
    from fastnn.optimizers import base
    from fastnn.training import compiled_epoch
    # the Python loop's updates are watched here (the compiled epoch makes the same choice in
    # CompiledEpoch.fit_epoch, and its bits are the Python loop's: test_compiled_epoch.py)
    monkeypatch.setattr(compiled_epoch, "enabled", False)
    (x, y), _ = datasets.load_digits()
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(2)
        seen = []
        real = backend.ops.adam_update
        monkeypatch.setattr(backend.ops, "adam_update",
                            lambda *a, **k: (seen.append(_ckernels.get_num_threads()), real(*a, **k))[1])
        weights = []
        for limit in (base.PARALLEL_UPDATE_MIN, 0):
            monkeypatch.setattr(base, "PARALLEL_UPDATE_MIN", limit)
            seen.clear()
            fastnn.set_seed(4)
            m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
                                   layers.Dense(10, activation="softmax")])
            m.compile(optimizer=optimizers.Adam(), loss="sparse_categorical_crossentropy")
            m.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
            assert set(seen) == ({1} if limit else {2})
            assert _ckernels.get_num_threads() == 2
            weights.append(m.get_weights())
        for a, b in zip(*weights):
            assert np.array_equal(a, b)
    finally:
        fastnn.set_num_threads(old)



# A child process tells whether fastnn's kernels ran on more than one thread: libgomp starts
# its worker threads the first time a parallel region asks for them and keeps them, so the
# first kernel call that runs in parallel adds threads to /proc/self/task.
_PROBE = """
import os
import numpy as np
import threadpoolctl
import fastnn
from fastnn import _ckernels

x = np.arange(512 * 512, dtype=np.float32).reshape(512, 512)  # above FASTNN_PARALLEL_MIN
sums = _ckernels.col_sum(x, n_threads=1)

def kernel_went_parallel():
    before = len(os.listdir("/proc/self/task"))
    same = np.array_equal(_ckernels.col_sum(x), sums)  # same bits for any thread count
    assert same
    return len(os.listdir("/proc/self/task")) > before

def blas_threads():
    return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
"""


def _probe(code, **env_overrides):
    """Run _PROBE + code in a fresh process and return what it prints (a Python literal)."""
    if not fastnn.have_openmp():
        pytest.skip("built without OpenMP: the kernels are serial whatever the limits")
    pytest.importorskip("threadpoolctl")
    # the limits of the process running the tests must not leak into the child
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FASTNN_BACKEND")}
    # the fixed thread policy: the BLAS's own threads follow the knob (the adaptive policy,
    # the default on several CPUs, holds them at one: tests/training/test_thread_policy.py)
    env["FASTNN_THREADS"] = "fixed"
    out = subprocess.run([sys.executable, "-c", _PROBE + code], capture_output=True, text=True,
                         check=True, **same_fastnn_env(dict(env, **env_overrides)))
    return ast.literal_eval(out.stdout.strip())


_proc_tasks = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                 reason="counts threads in /proc/self/task (Linux)")


@requires_c
@_proc_tasks
def test_omp_num_threads_caps_the_kernels_the_blas_and_get_num_threads():
    code = """
at_import = fastnn.get_num_threads()
fastnn.set_num_threads(2)
print((at_import, fastnn.get_num_threads(), kernel_went_parallel(), blas_threads()))
"""
    assert _probe(code, OMP_NUM_THREADS="1") == (1, 1, False, {1})
    # without the limit the same code runs 2 threads (so the probe does see a parallel kernel)
    assert _probe(code)[1:] == (2, True, {2})


@requires_c
def test_omp_num_threads_above_the_knob_does_not_raise_it():
    assert _probe("fastnn.set_num_threads(2); print(fastnn.get_num_threads())",
                  OMP_NUM_THREADS="8") == 2


@requires_c
@_proc_tasks
def test_threadpool_limits_caps_the_kernels_inside_the_block_only():
    code = """
fastnn.set_num_threads(2)
with threadpoolctl.threadpool_limits(1):
    inside = (fastnn.get_num_threads(), kernel_went_parallel())
print(inside + (fastnn.get_num_threads(), kernel_went_parallel()))
"""
    assert _probe(code) == (1, False, 2, True)


@requires_c
@_proc_tasks
def test_openmp_only_threadpool_limits_caps_the_kernels_and_blas_only_does_not():
    code = """
fastnn.set_num_threads(2)
with threadpoolctl.threadpool_limits(1, user_api="blas"):
    blas_only = fastnn.get_num_threads()
with threadpoolctl.threadpool_limits(1, user_api="openmp"):
    fastnn.set_num_threads(2)  # asks for 2 inside the block: the limit still holds
    openmp = (fastnn.get_num_threads(), kernel_went_parallel(), blas_threads())
print((blas_only,) + openmp + (fastnn.get_num_threads(),))
"""
    assert _probe(code) == (2, 1, False, {1}, 2)


@requires_c
def test_set_num_threads_above_the_cpu_count_is_honoured_without_a_limit():
    """The OpenMP runtime's default (the CPU count) is not a limit the user gave."""
    from fastnn import _ckernels
    if "OMP_NUM_THREADS" in os.environ:
        pytest.skip("the environment limits OpenMP")
    old = fastnn.get_num_threads()
    try:
        n = fastnn.backend._default_threads() + 1
        fastnn.set_num_threads(n)
        assert _ckernels.openmp_limit() is None and fastnn.get_num_threads() == n
    finally:
        fastnn.set_num_threads(old)


def test_set_num_threads_names_bad_values():
    before = fastnn.get_num_threads()
    for bad in (None, 1.5, "x", 0):
        with pytest.raises((TypeError, ValueError), match="threads"):
            fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == before


@requires_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_kernels_are_thread_count_invariant(dtype):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((513, 257)).astype(dtype)
    b = rng.standard_normal(257).astype(dtype)
    dy = rng.standard_normal((513, 257)).astype(dtype)
    for name, code in sorted(ACTIVATION_CODES.items()):
        alpha = {"leaky_relu": 0.2, "elu": 1.3}.get(name, 0.0)
        outs = []
        for t in (1, 2):
            zz = z.copy()
            y = C.bias_act_forward(zz, b, code, alpha, np.empty_like(z), n_threads=t)
            db = np.empty(257, dtype)
            dz = C.act_backward(dy, zz, y, code, alpha, np.empty_like(z), db, n_threads=t)
            outs.append((y, dz, db))
        for a, c in zip(*outs):
            assert np.array_equal(a, c), name


@requires_c
def test_sum_squares_is_thread_count_invariant():
    x = np.random.default_rng(1).standard_normal(3_000_001).astype(np.float32)
    assert C.sum_squares(x, n_threads=1) == C.sum_squares(x, n_threads=2)
