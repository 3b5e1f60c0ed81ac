"""Shared test helpers: the C and reference ops, tolerances, finite differences."""
import os
import sys

import numpy as np
import pytest

import fastnn
from fastnn import ops as ops_module

# tests/ (this file's directory: conftest, golden_training and data/ live here) and the
# checkout's root (README.md, examples/), for tests in the subject directories below.
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(TESTS_DIR)

C = ops_module.COps() if ops_module.COps is not None else None
REF = ops_module.NumpyOps()

# With CI set in the environment, Hypothesis (6.155 and 6.170 seen) keeps a longer chain of
# settings per @given call, and reading its database walks the chain recursively: after about
# 950 calls (the parity matrix alone makes 1,000) that passes Python's default limit of 1,000
# frames. The suite's own recursion is shallow, so a higher limit only serves Hypothesis.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))

# Relative tolerance of C against the reference, per dtype (the reference computes in float64).
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 2e-6, np.float64: 1e-13}

# Shapes that hit the edge cases and both the serial and the parallel path of the kernels.
SHAPES = [(1, 1), (1, 7), (5, 1), (3, 17), (64, 33), (513, 261)]


def assert_close(a, b, dtype, scale=1.0, msg=""):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale, err_msg=msg)


def noncontiguous(a):
    """The same values as ``a`` in a non-contiguous view."""
    big = np.empty((a.shape[0], a.shape[1] * 2) if a.ndim == 2 else (a.shape[0] * 2,), a.dtype)
    view = big[:, ::2] if a.ndim == 2 else big[::2]
    view[...] = a
    assert not view.flags.c_contiguous or a.size <= 1
    return view


def model_gradient_check(model, x, y, rtol=1e-5, training=False):
    """Every trainable weight's gradient from one step (learning rate 0) against central
    differences of the MSE loss (``training``: BatchNormalization's batch statistics)."""
    model.compile(optimizer=fastnn.optimizers.SGD(0.0), loss="mse")
    t = model.loss.prepare_targets(y, model.output_shape, np.float64)
    model._prepare_training()
    model._train_step(x, t)
    assert model.trainable_weights
    for v in model.trainable_weights:
        f = lambda: model.loss.compute(np.array(model._forward(x, training)), t) / len(y)  # noqa: E731
        np.testing.assert_allclose(v.grad, numeric_grad(f, v.value), rtol=rtol, atol=1e-8,
                                   err_msg=v.path)


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of a scalar function f at x (float64), elementwise."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


@pytest.fixture(autouse=True)
def _restore_backend():
    """Every test leaves the backend as it found it, so FASTNN_BACKEND=numpy runs the whole
    suite on the reference (tests that switch backends used to reset to "c")."""
    name = fastnn.backend.backend()
    threads = fastnn.get_num_threads()
    yield
    fastnn.set_backend(name)
    # and its thread count: results of the products depend on it (a test comparing bits
    # with a fresh process must not inherit another test's setting)
    if fastnn.get_num_threads() != threads:
        fastnn.set_num_threads(threads)


@pytest.fixture
def float64_model():
    """Build layers in float64 for gradient checks, restoring the default afterwards."""
    old = fastnn.floatx()
    fastnn.set_floatx("float64")
    yield
    fastnn.set_floatx(old)


def same_fastnn_env(env=None):
    """subprocess keyword arguments that make a child import the fastnn this test process
    imported (the installed one in CI, the in-place build in a checkout), not whatever
    source tree sits in the working directory."""
    import os
    import tempfile
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    return {"cwd": tempfile.gettempdir(), "env": env}


def in_forked_child(check, timeout=60):
    """Run ``check()`` in a forked child (os.fork) and return whether it returned true within
    ``timeout`` seconds (a child that hangs, on a lock held at the fork say, is killed and
    counts as false); the child reports through a pipe and exits without returning into
    pytest."""
    import os
    import select
    import signal
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = bool(check())
        finally:
            os.write(w, b"1" if ok else b"0")
            os._exit(0)
    os.close(w)
    ready, _, _ = select.select([r], [], [], timeout)
    got = os.read(r, 8) if ready else b""
    if not got:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(r)
    return got == b"1"


requires_c = pytest.mark.skipif(C is None, reason="C extension not built")
