"""embedding_forward / embedding_backward: C against the NumPy reference, and the reference
against what the kernels mean (np.take, np.add.at, a loop by hand).

{float32, float64} x {1, 2 threads} x {contiguous, strided, read-only inputs}, repeated
indices and one row hit by a whole batch, shapes from one code to the parallel path, the
same bits for any thread count, and the same errors on bad codes."""
import re

import numpy as np
import pytest

from conftest import C, REF, assert_close, requires_c

DTYPES = [np.float32, np.float64]
# (codes shape, rows, cols): one code; a (batch,) input; tabular (batch, k); a table much
# larger than the batch; batches and tables big enough for the parallel paths (backward:
# (n + rows) * cols >= 131072 elements; forward: > 1 MB gathered)
CASES = [((1,), 1, 1), ((7,), 5, 3), ((33, 4), 100, 8), ((9, 2), 5000, 17),
         ((1024, 8), 300, 64), ((512, 3, 2), 4000, 33), ((4096, 4), 64, 128)]


def _codes(rng, shape, rows, dtype):
    return rng.integers(0, rows, shape).astype(dtype)


def _strided(a):
    """The same values in a non-contiguous view (every other element of a larger array)."""
    big = np.empty(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
    view = big[..., ::2]
    view[...] = a
    assert not view.flags.c_contiguous or a.size <= 1
    return view


def _layout(a, layout):
    if layout == "strided":
        return _strided(a)
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


def _backward_by_hand(dY, index, rows):
    out = np.zeros((rows, dY.shape[-1]), dY.dtype)
    for i, r in enumerate(index.reshape(-1)):
        out[r] += dY.reshape(-1, dY.shape[-1])[i]
    return out


@pytest.mark.parametrize("ops", [pytest.param(REF, id="numpy"),
                                 pytest.param(C, id="c", marks=requires_c)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_means_a_row_lookup_and_its_scatter_add(ops, dtype):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((6, 4)).astype(dtype)
    codes = np.array([[5, 0, 5], [2, 2, 2]], dtype)
    index = np.empty(codes.shape, np.int64)
    out = ops.embedding_forward(codes, W, index=index)
    assert out.shape == (2, 3, 4) and out.dtype == dtype
    np.testing.assert_array_equal(out, W[[[5, 0, 5], [2, 2, 2]]])
    np.testing.assert_array_equal(index, codes.astype(np.int64))
    dY = rng.standard_normal((2, 3, 4)).astype(dtype)
    dW = ops.embedding_backward(dY, index, 6)
    # rows 1, 3, 4 unused: zero; row 2 named three times gets the three rows added in order
    np.testing.assert_array_equal(dW, _backward_by_hand(dY, index, 6))
    np.testing.assert_array_equal(dW[[1, 3, 4]], 0)
    np.testing.assert_array_equal(dW[2], (dY[1, 0] + dY[1, 1]) + dY[1, 2])


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,rows,cols", CASES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "readonly"])
def test_embedding_forward_matches_reference(dtype, shape, rows, cols, threads, layout):
    rng = np.random.default_rng(rows + cols)
    W = rng.standard_normal((rows, cols)).astype(dtype)
    codes = _codes(rng, shape, rows, dtype)
    codes_in = _layout(codes, layout)
    ix_c, ix_r = np.empty(shape, np.int64), np.empty(shape, np.int64)
    out_c = C.embedding_forward(codes_in, W if layout != "readonly" else _layout(W, layout),
                                np.empty(shape + (cols,), dtype), ix_c, n_threads=threads)
    out_r = REF.embedding_forward(codes, W, np.empty(shape + (cols,), dtype), ix_r)
    # a gather copies: the bits, not a tolerance
    np.testing.assert_array_equal(out_c, out_r)
    np.testing.assert_array_equal(ix_c, ix_r)


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("int_dtype", [np.int64, np.int32, np.uint8])
def test_embedding_forward_takes_integer_codes(dtype, int_dtype):
    rng = np.random.default_rng(2)
    W = rng.standard_normal((200, 5)).astype(dtype)
    codes = rng.integers(0, 200, (40, 3)).astype(int_dtype)
    for ops in (C, REF):
        np.testing.assert_array_equal(ops.embedding_forward(codes, W), W[codes.astype(np.intp)])


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,rows,cols", CASES)
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "readonly"])
def test_embedding_backward_matches_reference(dtype, shape, rows, cols, threads, layout):
    rng = np.random.default_rng(rows * 3 + cols)
    index = rng.integers(0, rows, shape)
    dY = rng.standard_normal(shape + (cols,)).astype(dtype)
    dY_in = _layout(dY, layout)
    index = _layout(index, "readonly" if layout == "readonly" else "contiguous")
    out_c = C.embedding_backward(dY_in, index, rows, np.full((rows, cols), np.nan, dtype),
                                 n_threads=threads)
    out_r = REF.embedding_backward(dY, index, rows, np.full((rows, cols), np.nan, dtype))
    assert_close(out_c, out_r, dtype)
    # both add each row's gradients in the order of the indices: the same bits
    np.testing.assert_array_equal(out_c, out_r)


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_embedding_backward_one_row_hit_by_the_whole_batch(dtype, threads):
    """Every index the same row (a category that fills the batch), and a batch where two
    rows take nearly all indices: the sums are those of np.add.at, in order."""
    rng = np.random.default_rng(3)
    rows, cols = 50, 300
    dY = rng.standard_normal((2000, cols)).astype(dtype)
    for hot, index in ((17, np.full(2000, 17, np.int64)),
                       (0, np.where(rng.random(2000) < 0.5, 0, 49).astype(np.int64))):
        index[:3] = [1, 2, 3]
        out_c = C.embedding_backward(dY, index, rows, n_threads=threads)
        expected = np.zeros((rows, cols), dtype)
        np.add.at(expected, index, dY)
        np.testing.assert_array_equal(out_c, expected)
        assert_close(out_c, REF.embedding_backward(dY, index, rows), dtype)
        # the hot row is the sum of its ~1000-2000 gradient rows (float32: rounding grows
        # with the count, hence the scale)
        assert_close(out_c[hot], dY[index == hot].astype(np.float64).sum(0), dtype, scale=50)
        np.testing.assert_array_equal(out_c[4:17], 0)


@requires_c
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_kernels_are_thread_count_invariant(dtype):
    rng = np.random.default_rng(4)
    rows, cols = 3000, 40
    W = rng.standard_normal((rows, cols)).astype(dtype)
    # skewed codes: a few rows take most of the batch, as categories do
    codes = np.minimum(rng.geometric(0.01, (4096, 3)) - 1, rows - 1).astype(dtype)
    dY = rng.standard_normal((4096, 3, cols)).astype(dtype)
    results = []
    for t in (1, 2, 3):
        index = np.empty(codes.shape, np.int64)
        out = C.embedding_forward(codes, W, index=index, n_threads=t)
        results.append((out, C.embedding_backward(dY, index, rows, n_threads=t)))
    for out, dW in results[1:]:
        assert np.array_equal(out, results[0][0])
        assert np.array_equal(dW.view(np.uint8), results[0][1].view(np.uint8))


BAD_CODES = [(2.5, "2.5"), (-1, "-1.0"), (10, "10.0"), (np.nan, "nan"), (np.inf, "inf"),
             (-0.5, "-0.5"), (1e30, "1e+30")]


@pytest.mark.parametrize("ops", [pytest.param(REF, id="numpy"),
                                 pytest.param(C, id="c", marks=requires_c)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad,shown", BAD_CODES)
def test_embedding_forward_refuses_a_code_that_names_no_row(ops, dtype, bad, shown):
    W = np.arange(30, dtype=dtype).reshape(10, 3)
    codes = np.array([[1, 2, 3], [4, 5, 6]], dtype)
    codes[1, 1] = bad
    codes[1, 2] = 11  # a later bad code: the first one is named
    out = np.full((2, 3, 3), -7, dtype)
    with pytest.raises(ValueError, match=rf"codes\[1, 1\] = {re.escape(shown)} is not a row of W: codes "
                                         rf"must be integers in \[0, 10\)"):
        ops.embedding_forward(codes, W, out)
    assert (out == -7).all(), "out was written before the codes were checked"


@pytest.mark.parametrize("ops", [pytest.param(REF, id="numpy"),
                                 pytest.param(C, id="c", marks=requires_c)])
def test_embedding_kernels_refuse_bad_arguments(ops):
    W = np.zeros((10, 3), np.float32)
    ok = np.array([1, 2], np.float32)
    with pytest.raises(ValueError, match=r"codes\[1\] = -3 "):
        ops.embedding_forward(np.array([1, -3]), W)
    with pytest.raises(ValueError, match=r"codes\[0\] = 10 "):
        ops.embedding_forward(np.array([10], np.uint64), W)
    with pytest.raises(TypeError, match="integer dtype or W's dtype"):
        ops.embedding_forward(ok.astype(np.float64), W)  # float64 codes for a float32 table
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.embedding_forward(ok, W.astype(np.int32))
    with pytest.raises(ValueError, match="2-D"):
        ops.embedding_forward(ok, np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="out has shape"):
        ops.embedding_forward(ok, W, np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match="index has shape"):
        ops.embedding_forward(ok, W, index=np.empty(3, np.int64))
    with pytest.raises(ValueError, match="out overlaps W"):
        ops.embedding_forward(ok, W, W[:2])
    dY = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"index\[1\] = 10 is out of range for a table of 10 rows"):
        ops.embedding_backward(dY, np.array([0, 10]), 10)
    with pytest.raises(ValueError, match=r"index\[0\] = -1 "):
        ops.embedding_backward(dY, np.array([-1, 0]), 10)
    with pytest.raises(TypeError, match="int64"):
        ops.embedding_backward(dY, np.array([0, 1], np.int32), 10)
    with pytest.raises(ValueError, match="dY has shape"):
        ops.embedding_backward(dY, np.array([0, 1, 2]), 10)
    with pytest.raises(ValueError, match="out has shape"):
        ops.embedding_backward(dY, np.array([0, 1]), 10, np.empty((9, 3), np.float32))
    with pytest.raises(ValueError, match="out overlaps dY"):
        big = np.zeros((10, 3), np.float32)
        ops.embedding_backward(big[:2], np.array([0, 1]), 10, big)


@pytest.mark.parametrize("ops", [pytest.param(REF, id="numpy"),
                                 pytest.param(C, id="c", marks=requires_c)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_kernels_on_empty_batches(ops, dtype):
    W = np.ones((4, 2), dtype)
    out = ops.embedding_forward(np.empty((0, 3), dtype), W)
    assert out.shape == (0, 3, 2)
    dW = ops.embedding_backward(np.empty((0, 3, 2), dtype), np.empty((0, 3), np.int64), 4,
                                np.full((4, 2), 5, dtype))
    np.testing.assert_array_equal(dW, 0)  # no rows used: the whole gradient is zero
