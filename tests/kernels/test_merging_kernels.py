"""concat_columns / split_columns (csrc/merging.c, Concatenate on 2-D inputs): the same bits
as NumPy's concatenate and column slices, with C and the reference refusing the same bad
arguments; the Concatenate layer gives the bits it gave through NumPy."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

from conftest import C, REF

OPS = [pytest.param(REF, id="reference"),
       pytest.param(C, id="c", marks=pytest.mark.skipif(C is None, reason="C extension not built"))]
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("ops", OPS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("widths", [[1], [3, 1, 7], [0, 5, 0], [2] * 20, [40, 300]])
def test_concat_then_split_are_numpys_copies(ops, dtype, widths):
    rng = np.random.default_rng(0)
    n = 1000 if sum(widths) > 100 else 7  # the large one takes the parallel path
    xs = [rng.standard_normal((n, w)).astype(dtype) for w in widths]
    for threads in (1, 2):
        out = ops.concat_columns(xs, n_threads=threads)
        np.testing.assert_array_equal(out, np.concatenate(xs, axis=1))
        parts = ops.split_columns(out, widths, n_threads=threads)
        assert isinstance(parts, tuple) and len(parts) == len(widths)
        for part, x in zip(parts, xs):
            assert part.flags.c_contiguous and part.dtype == dtype
            np.testing.assert_array_equal(part, x)


@pytest.mark.parametrize("ops", OPS)
def test_merge_kernels_refuse_bad_arguments(ops):
    a, b = np.ones((4, 2)), np.ones((4, 3))
    with pytest.raises(TypeError, match="concat_columns: xs must be a non-empty list"):
        ops.concat_columns([])
    with pytest.raises(TypeError, match=r"concat_columns: xs\[1\] has dtype float32"):
        ops.concat_columns([a, b.astype(np.float32)])
    with pytest.raises(ValueError, match="same number of rows"):
        ops.concat_columns([a, np.ones((5, 3))])
    with pytest.raises(ValueError, match=r"concat_columns: out has shape \(4, 4\), expected \(4, 5\)"):
        ops.concat_columns([a, b], out=np.empty((4, 4)))
    memory = np.zeros(28)
    with pytest.raises(ValueError, match="concat_columns: out overlaps an input"):
        ops.concat_columns([memory[:8].reshape(4, 2), b], out=memory[:20].reshape(4, 5))
    dy = np.ones((4, 5))
    with pytest.raises(ValueError, match=r"split_columns: widths \[2, 2\] must be >= 0 and add up"):
        ops.split_columns(dy, [2, 2])
    with pytest.raises(ValueError, match="split_columns: outs must be a list of 2 arrays"):
        ops.split_columns(dy, [2, 3], outs=[np.empty((4, 2))])
    with pytest.raises(ValueError, match=r"split_columns: outs\[1\] must be a writable C-contiguous"):
        ops.split_columns(dy, [2, 3], outs=[np.empty((4, 2)), np.empty((4, 6))[:, :3]])
    with pytest.raises(ValueError, match=r"split_columns: outs\[0\] overlaps dY"):
        ops.split_columns(dy, [2, 3], outs=[dy.reshape(-1)[:8].reshape(4, 2), np.empty((4, 3))])


@pytest.mark.parametrize("backend", ["c", "numpy"])
def test_concatenate_layer_gives_numpys_bits(backend):
    if backend == "c" and C is None:
        pytest.skip("C extension not built")
    fastnn.set_backend(backend)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((9, w)).astype(np.float32) for w in (4, 1, 6)]
    cat = layers.Concatenate()
    np.testing.assert_array_equal(cat(xs), np.concatenate(xs, axis=1))
    dy = rng.standard_normal((9, 11)).astype(np.float32)
    grads = cat.backward(dy.copy())
    for g, lo, hi in zip(grads, (0, 4, 5), (4, 5, 11)):
        np.testing.assert_array_equal(g, dy[:, lo:hi])
