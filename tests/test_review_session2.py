"""Review of the second session's commits (take_rows / all_finite, stored dropout masks,
chunked predict/evaluate, the OpenMP import-order guard, the optimizer packed cache): each
test here failed before its fix (or pins down a behaviour found to be right)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

from conftest import C, REF

OPS = [REF] + ([C] if C is not None else [])


# ---- take_rows: an index array that shares memory with out --------------------------------
@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("row", [1, 40])  # 8-byte rows, and 320-byte rows (prefetching path)
def test_take_rows_index_sharing_memory_with_out(ops, row):
    """The C kernel checked every index, then read them while writing out: an index array in
    out's memory (later indices overwritten by earlier rows) made it read far outside src (a
    segfault). The answer must be np.take's, from the indices as they were passed."""
    n = 600
    src = np.full((n, row), 10 ** 12, np.int64)  # values far outside [0, n) as indices
    buf = np.zeros((n + 1) * row, np.int64)
    out = buf[row:].reshape(n, row)
    # index i lies in buf[i]: out row i // row - 1 overwrites it before it is read
    index = buf[:n]
    want = np.take(src, index.copy(), axis=0)
    got = ops.take_rows(src, index, out)
    np.testing.assert_array_equal(got, want)
