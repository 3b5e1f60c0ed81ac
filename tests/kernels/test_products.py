"""csrc/products.c: matrix products called from C give np.matmul's bits, for every way numpy
picks (gemm with or without transposes, gemv both ways, dot, its own outer-product loop,
syrk for a matrix times its transpose), since the compiled epoch must match the Python loop.
"""
import os

import numpy as np
import pytest

from fastnn import threads
from fastnn.training import compiled_epoch

from conftest import C, in_forked_child, requires_c

pytestmark = requires_c
OPENBLAS = threads.numpy_blas_functions() is not None

SHAPES = [(37, 23, 19), (1, 23, 19), (37, 1, 19), (37, 23, 1), (1, 1, 19), (1, 23, 1),
          (37, 1, 1), (1, 1, 1), (128, 10, 256), (32, 64, 20)]


def _operand(rng, shape, transposed, dtype):
    """A (rows, cols) operand: C-contiguous, or the transpose of a C-contiguous array."""
    a = rng.standard_normal(shape[::-1] if transposed else shape).astype(dtype)
    return a.T if transposed else a


def test_numpys_openblas_is_bound():
    if not OPENBLAS:
        pytest.skip("numpy's BLAS is not an OpenBLAS with known names: the Python loop runs")
    assert compiled_epoch.bind_blas()


@pytest.mark.skipif(not OPENBLAS, reason="needs numpy's OpenBLAS bound")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_gives_np_matmuls_bits(dtype, m, n, k, ta, tb):
    rng = np.random.default_rng(m * 10000 + n * 100 + k)
    a, b = _operand(rng, (m, k), ta, dtype), _operand(rng, (k, n), tb, dtype)
    a[0, 0] = -0.0 if k == 1 else a[0, 0]  # numpy's loop sums from +0: -0 * x comes out +0
    got = C.matmul(a, b, np.full((m, n), np.nan, dtype))
    want = np.matmul(a, b)
    assert got.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()


@pytest.mark.skipif(not OPENBLAS, reason="needs numpy's OpenBLAS bound")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_of_a_matrix_and_its_transpose_takes_numpys_syrk(dtype):
    a = np.random.default_rng(3).standard_normal((40, 17)).astype(dtype)
    for x, y in ((a, a.T), (a.T, a)):
        want = np.matmul(x, y)
        got = C.matmul(x, y, np.empty(want.shape, dtype))
        assert np.array_equal(got.view(np.uint8), want.view(np.uint8))
        assert np.array_equal(got, got.T)  # the triangle numpy copies


def test_matmul_refuses_operands_it_cannot_pass_to_the_blas():
    a = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match="C-contiguous or the transpose"):
        C.matmul(a[:, ::2], np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        C.matmul(a, np.ones((6, 2), np.float64))
    with pytest.raises(ValueError, match=r"\(4, 6\) @ \(5, 2\)"):
        C.matmul(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="writable C-contiguous"):
        C.matmul(a, np.ones((6, 2), np.float32), np.ones((2, 4), np.float32).T)


@pytest.mark.skipif(not OPENBLAS, reason="needs numpy's OpenBLAS")
def test_numpys_blas_is_told_apart_from_scipys():
    """SciPy's wheels load a second OpenBLAS with the same function names: fastnn binds the
    one numpy uses (one thread pool), found by where it lives."""
    pytest.importorskip("scipy.linalg")
    from threadpoolctl import threadpool_info
    found = threads.numpy_blas_functions()
    assert found is not None
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if len(blas) > 1:  # both loaded: the address bound is inside numpy's library
        assert compiled_epoch.bind_blas()


@pytest.mark.parametrize("m,n,k", [(131, 96, 200), (40, 333, 57), (2, 4096, 300),
                                   (1000, 40, 64), (50, 50, 1000)])
def test_split_geometry_is_threads_twin(m, n, k):
    from fastnn import _ckernels
    assert _ckernels.split_geometry(m, n, k) == threads.split_geometry(m, n, k)


@pytest.mark.skipif(not OPENBLAS, reason="needs numpy's OpenBLAS bound")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("columns", [False, True])
def test_matmul_split_gives_the_chunks_bits_on_any_thread_count(dtype, ta, tb, columns):
    """The adaptive policy's products from C (the compiled epoch's under
    set_num_threads("adaptive")): chunks of rows or of columns (leading dimensions of a
    block of a bigger result), taken by fastnn's threads as they come free, the BLAS at one
    thread: the bits of the same chunks computed by np.matmul in order, for any number of
    threads, more threads than cores included (late workers, chunks taken over)."""
    from threadpoolctl import threadpool_limits

    from fastnn import _ckernels
    rng = np.random.default_rng(5)
    m, n, k = (131, 96, 200) if not columns else (40, 333, 57)  # the last chunk short
    a, b = _operand(rng, (m, k), ta, dtype), _operand(rng, (k, n), tb, dtype)
    per = 32
    with threadpool_limits(1, user_api="blas"):
        want = threads.chunked_matmul(a, b, np.empty((m, n), dtype), per, columns)
        for n_threads in (1, 2, 3, 5):
            for _ in range(20 if n_threads > 2 else 1):
                got = _ckernels.matmul_split(a, b, np.full((m, n), np.nan, dtype), per, columns,
                                     n_threads)
                assert got.view(np.uint8).tobytes() == want.view(np.uint8).tobytes()


def test_matmul_split_refuses_chunks_of_nothing():
    from fastnn import _ckernels
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match="per and n_threads must be >= 1"):
        _ckernels.matmul_split(a, a, np.empty((4, 4)), 0, False, 2)
    with pytest.raises(ValueError, match="empty product"):
        _ckernels.split_geometry(0, 4, 4)


@pytest.mark.skipif(not OPENBLAS, reason="needs numpy's OpenBLAS bound")
@pytest.mark.skipif(not hasattr(os, "fork") or not os.path.isdir("/proc/self/task"),
                    reason="fork, and /proc/self/task to count threads (Linux)")
def test_matmul_split_in_a_forked_child_starts_workers_of_its_own():
    """A forked child has none of the parent's worker threads (and a lock one of them held
    at the fork would stay held): csrc/products.c starts a fresh pool there."""
    from threadpoolctl import threadpool_limits

    from fastnn import _ckernels
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((64, 300)), rng.standard_normal((300, 200))
    with threadpool_limits(1, user_api="blas"):
        want = threads.chunked_matmul(a, b, np.empty((64, 200)), 48, True)
        _ckernels.matmul_split(a, b, np.empty((64, 200)), 48, True, 2)  # the parent's workers

        def child():
            before = len(os.listdir("/proc/self/task"))
            got = [_ckernels.matmul_split(a, b, np.empty((64, 200)), 48, True, 3)
                   for _ in range(5)]
            started = len(os.listdir("/proc/self/task")) - before
            # two workers for 3 threads, both new: none of the parent's came along
            return all(np.array_equal(g, want) for g in got) and started == 2
        assert in_forked_child(child)
