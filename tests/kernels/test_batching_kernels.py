"""The input-pipeline kernels of fit/evaluate/predict: ``all_finite`` (the NaN/inf check of
inputs, targets and sample weights), ``take_rows`` (the shuffled mini-batch gather) and
``read_rows`` (the same gather from a memory-mapped array's file, with pread).

C against the reference for every dtype they accept, shapes from 1 x 1 to the parallel path,
1 and 2 threads; non-finite values at the edges and inside the second thread's blocks; every
bad argument a clear error (and no write, no out-of-bounds read); and fit wired to them.
"""
import numpy as np
import pytest

import fastnn
from fastnn import backend, layers, optimizers

from conftest import C, REF, requires_c

FLOATS = [np.float32, np.float64]
# 1-D, 2-D (odd widths, 1 x 1) and 3-D; 513 x 261 and 300001 pass FASTNN_PARALLEL_MIN elements
FINITE_SHAPES = [(1,), (1, 1), (5, 1), (3, 17), (2, 3, 5), (513, 261), (300001,)]
# all_finite shares out blocks of this many elements (FASTNN_FINITE_BLOCK in reductions.c);
# the positions below then fall in the first/second block and in the second thread's half.
BLOCK = 16384
OPS = [REF] + ([C] if C is not None else [])


def _positions(size):
    """Flat positions to poison: first, last, middle, and where present the start of the
    second block, the last element of a block, and one in the second thread's range."""
    pos = {0, size - 1, size // 2}
    nblk = -(-size // BLOCK)
    if nblk > 1:
        pos |= {BLOCK, BLOCK - 1, (nblk // 2) * BLOCK + 7, (nblk - 1) * BLOCK}
    return sorted(p for p in pos if p < size)


# ---- all_finite ---------------------------------------------------------------------------
@requires_c
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", FINITE_SHAPES)
@pytest.mark.parametrize("threads", [1, 2])
def test_all_finite_matches_reference(dtype, shape, threads):
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 1e3).astype(dtype)
    info = np.finfo(dtype)
    # extremes that are finite: the largest values, the smallest subnormal, -0
    flat = x.reshape(-1)
    flat[-1] = info.max
    flat[len(flat) // 3] = -info.max
    flat[len(flat) // 4] = info.smallest_subnormal
    if flat.size > 4:
        flat[1] = -0.0
    assert C.all_finite(x, n_threads=threads) is True
    assert REF.all_finite(x) is True
    for bad in (np.nan, np.inf, -np.inf):
        for p in _positions(x.size):
            y = x.copy()
            y.reshape(-1)[p] = bad
            assert C.all_finite(y, n_threads=threads) is False, (bad, p)
            assert REF.all_finite(y) is False


@requires_c
@pytest.mark.parametrize("dtype", FLOATS)
def test_all_finite_sees_every_nan_bit_pattern(dtype):
    """Negative NaNs and NaNs with payloads are not finite; the largest finite bit pattern is."""
    bits = np.uint32 if dtype == np.float32 else np.uint64
    if dtype == np.float32:
        patterns = [0xFFC00001, 0x7F800001, 0xFF800000, 0x7FFFFFFF]
        largest = 0x7F7FFFFF
    else:
        patterns = [0xFFF8000000000001, 0x7FF0000000000001, 0xFFF0000000000000,
                    0x7FFFFFFFFFFFFFFF]
        largest = 0x7FEFFFFFFFFFFFFF
    x = np.full(37, largest, bits).view(dtype)
    assert C.all_finite(x) and REF.all_finite(x)
    for pat in patterns:
        y = x.view(bits).copy()
        y[20] = pat
        assert not C.all_finite(y.view(dtype))
        assert not REF.all_finite(y.view(dtype))


@requires_c
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("threads", [1, 2])
def test_all_finite_any_layout(dtype, threads):
    """Strided, Fortran-ordered, read-only and empty inputs give the reference's answer."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((301, 517)).astype(dtype)
    views = [x[:, ::2], x[::3], x.T, x[:, ::-1], x[::-1]]  # x.T: Fortran-ordered
    ro = x.copy()
    ro.flags.writeable = False
    views.append(ro)
    for v in views:
        assert C.all_finite(v, n_threads=threads) is REF.all_finite(v) is True
    x[299, 515] = np.inf  # inside every view above except x[:, ::2] and x[::3]
    for v in views[:2]:
        assert C.all_finite(v, n_threads=threads) is REF.all_finite(v) is True
    for v in views[2:5]:
        assert C.all_finite(v, n_threads=threads) is REF.all_finite(v) is False
    x[0, 2] = np.nan  # now in x[:, ::2] and x[::3] too
    for v in views[:5]:
        assert C.all_finite(v, n_threads=threads) is REF.all_finite(v) is False
    for empty in (np.empty(0, dtype), np.empty((0, 5), dtype), np.empty((3, 0), dtype)):
        assert C.all_finite(empty) is REF.all_finite(empty) is True


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
def test_all_finite_rejects_other_dtypes(ops):
    for bad in (np.arange(4), np.ones(3, np.float16), np.ones(2, bool)):
        with pytest.raises(TypeError, match="float32 or float64"):
            ops.all_finite(bad)
    with pytest.raises(TypeError, match="numpy array"):
        ops.all_finite([1.0, 2.0])


# ---- take_rows ----------------------------------------------------------------------------
TAKE_DTYPES = [np.float32, np.float64, np.int64, np.int32, np.uint8, np.int8, np.float16,
               np.bool_, np.complex128]
# (src shape, number of indices): row sizes of 1, 2, 4, 8 and odd numbers of bytes, 1 x 1,
# 3-D rows, rows long enough for the prefetching loop with fewer and more indices than it
# looks ahead; then, for the dtypes fit gathers, a gather above 1 MB (the parallel path)
TAKE_CASES = [(d, shape, k) for d in TAKE_DTYPES
              for shape, k in [((1,), 1), ((1, 1), 3), ((7,), 5), ((5, 3), 4), ((9, 1), 9),
                               ((10, 3, 4), 6), ((6, 300), 3), ((513, 261), 129)]]
TAKE_CASES += [(d, (3000, 301), 700) for d in (np.float32, np.float64, np.int64)]


def _src(shape, dtype, rng):
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    x = rng.standard_normal(shape) * 100
    if dtype == np.complex128:
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


@requires_c
@pytest.mark.parametrize("dtype,shape,k", TAKE_CASES,
                         ids=[f"{np.dtype(d).name}-{s}-{k}" for d, s, k in TAKE_CASES])
@pytest.mark.parametrize("threads", [1, 2])
def test_take_rows_matches_reference(dtype, shape, k, threads):
    rng = np.random.default_rng(shape[0] * 31 + k)
    src = _src(shape, dtype, rng)
    idx = rng.integers(0, shape[0], k)  # with repeats, any order
    idx[0], idx[-1] = shape[0] - 1, 0   # both ends of src
    out_c = np.empty((k,) + shape[1:], dtype)
    got = C.take_rows(src, idx, out_c, n_threads=threads)
    assert got is out_c
    want = REF.take_rows(src, idx, np.empty_like(out_c))
    assert _same_bits(out_c, want)
    assert _same_bits(out_c, np.take(src, idx, axis=0))
    # out=None allocates; an empty index gives an empty result
    assert _same_bits(C.take_rows(src, idx, n_threads=threads), want)
    empty = np.array([], np.int64)
    assert C.take_rows(src, empty).shape == REF.take_rows(src, empty).shape == (0,) + shape[1:]


@requires_c
@pytest.mark.parametrize("threads", [1, 2])
def test_take_rows_index_layouts_and_read_only_src(threads):
    """A strided index view (a slice of a bigger permutation) and a read-only src work."""
    rng = np.random.default_rng(7)
    src = rng.standard_normal((50, 6))
    src.flags.writeable = False
    order = rng.permutation(50)
    for idx in (order[3:40], order[::3], order[::-2]):
        assert _same_bits(C.take_rows(src, idx, n_threads=threads), np.take(src, idx, axis=0))
        assert _same_bits(REF.take_rows(src, idx), np.take(src, idx, axis=0))


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("threads", [1, 2])
def test_take_rows_rejects_out_of_range_indices_before_writing(ops, threads):
    src = np.arange(30.0).reshape(10, 3)
    big = np.iinfo(np.int64)
    for bad, pos in ((-1, 0), (10, 2), (11, 4), (big.max, 1), (big.min, 3), (-10, 4)):
        idx = np.array([1, 9, 0, 5, 2], np.int64)
        idx[pos] = bad
        out = np.full((5, 3), -7.0)
        with pytest.raises(ValueError, match=rf"index\[{pos}\] = {bad} is out of range for src "
                                             r"with 10 rows \(must be in \[0, 10\)\)"):
            ops.take_rows(src, idx, out, n_threads=threads)
        assert (out == -7.0).all()  # nothing written
    # the first bad one is named when there are several
    with pytest.raises(ValueError, match=r"index\[1\] = 10 "):
        ops.take_rows(src, np.array([0, 10, -1], np.int64), np.empty((3, 3)))
    # an empty src has no valid index at all; an empty index on it is fine
    with pytest.raises(ValueError, match=r"index\[0\] = 0 .* 0 rows"):
        ops.take_rows(np.empty((0, 3)), np.zeros(1, np.int64), np.empty((1, 3)))
    assert ops.take_rows(np.empty((0, 3)), np.zeros(0, np.int64)).shape == (0, 3)
    # rows of zero bytes: indices are still checked
    assert ops.take_rows(np.empty((4, 0)), np.array([3, 0], np.int64)).shape == (2, 0)
    with pytest.raises(ValueError, match="out of range"):
        ops.take_rows(np.empty((4, 0)), np.array([4], np.int64))


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
def test_take_rows_argument_errors(ops):
    src = np.arange(24.0).reshape(8, 3)
    idx = np.array([0, 7, 3], np.int64)
    out = np.zeros((3, 3))
    cases = [
        (TypeError, "src must be a numpy array", ([[1.0]], idx, out)),
        (TypeError, "numeric dtype, got object", (src.astype(object), idx, out)),
        (TypeError, "numeric dtype, got <U", (np.array(["a", "b"]), idx[:1], None)),
        (ValueError, "row axis", (np.array(3.0), idx, None)),
        (ValueError, "src must be C-contiguous", (np.asfortranarray(np.ones((8, 3))), idx, out)),
        (ValueError, "src must be C-contiguous", (np.ones((8, 6))[:, ::2], idx, out)),
        (TypeError, "index must be an int64 numpy array, got list", (src, [0, 1, 2], out)),
        (TypeError, "index must be int64, got int32", (src, idx.astype(np.int32), out)),
        (TypeError, "index must be int64, got float64", (src, idx.astype(float), out)),
        (TypeError, "index must be int64, got uint64", (src, idx.astype(np.uint64), out)),
        (TypeError, "index must be int64, got >i8", (src, idx.astype(">i8"), out)),
        (ValueError, r"index must be 1-D, got shape \(3, 1\)", (src, idx[:, None], out)),
        (TypeError, "out must be a numpy array", (src, idx, [0.0] * 9)),
        (TypeError, "out has dtype float32, expected float64", (src, idx, out.astype(np.float32))),
        (ValueError, r"out has shape \(4, 3\), expected \(3, 3\)", (src, idx, np.empty((4, 3)))),
        (ValueError, r"out has shape \(3, 2\), expected \(3, 3\)", (src, idx, np.empty((3, 2)))),
        (ValueError, r"out has shape \(9,\), expected \(3, 3\)", (src, idx, np.empty(9))),
        (ValueError, r"out has shape \(3, 3, 1\)", (src, idx, np.empty((3, 3, 1)))),
        (ValueError, "writable C-contiguous", (src, idx, np.empty((3, 6))[:, ::2])),
        (ValueError, "writable C-contiguous", (src, idx, np.asfortranarray(out))),
    ]
    ro = np.empty((3, 3))
    ro.flags.writeable = False
    cases.append((ValueError, "writable C-contiguous", (src, idx, ro)))
    # out must not be (part of) src: the rows would be read after being overwritten
    cases.append((ValueError, "out overlaps src", (src, idx, src[2:5])))
    cases.append((ValueError, "out overlaps src", (src, idx, src[5:8])))
    for exc, msg, args in cases:
        with pytest.raises(exc, match=msg):
            ops.take_rows(*args)
    # a neighbouring, non-overlapping slice of the same buffer is fine
    buf = np.arange(33.0).reshape(11, 3)
    got = ops.take_rows(buf[:8], idx, buf[8:])
    assert _same_bits(got, np.take(np.arange(24.0).reshape(8, 3), idx, axis=0))


# ---- wired into the model -----------------------------------------------------------------
def _mlp(loss, out, act, seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(7, activation="relu"),
                           layers.Dense(out, activation=act)])
    m.compile(optimizer=optimizers.Adam(0.01), loss=loss)
    return m


FIT_CASES = [("sparse_categorical_crossentropy", 3, "softmax"), ("mse", 2, "linear"),
             ("binary_crossentropy", 1, "sigmoid")]


def _data(loss, n=53):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, 5))
    if loss.startswith("sparse"):
        y = rng.integers(0, 3, n)
    elif loss == "mse":
        y = rng.standard_normal((n, 2))
    else:
        y = rng.integers(0, 2, n).astype(float)
    return x, y, rng.uniform(0.1, 2.0, n)


@requires_c
@pytest.mark.parametrize("loss,out,act", FIT_CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_gathers_with_take_rows_exactly_as_np_take(monkeypatch, loss, out, act, weighted):
    """The shuffled gather of fit (labels int64, targets float, weights) gives the weights the
    former np.take gather gave, bit for bit; and take_rows really was the gather used."""
    fastnn.set_backend("c")
    x, y, w = _data(loss)
    kw = dict(batch_size=8, epochs=3, shuffle=True, verbose=0,
              sample_weight=w if weighted else None)
    calls = []
    real = backend.ops.take_rows

    def counting(src, index, out=None, n_threads=None):
        calls.append(src.dtype)
        return real(src, index, out, n_threads)

    monkeypatch.setattr(backend.ops, "take_rows", counting)
    m1 = _mlp(loss, out, act)
    m1.fit(x, y, **kw)
    steps = 3 * 7
    assert len(calls) == steps * (3 if weighted else 2)
    if loss.startswith("sparse"):
        assert np.dtype(np.int64) in calls

    monkeypatch.setattr(backend.ops, "take_rows",
                        lambda src, index, out=None, n_threads=None:
                        np.take(src, index, axis=0, out=out, mode="clip"))
    m2 = _mlp(loss, out, act)
    m2.fit(x, y, **kw)
    for a, b in zip(m1.get_weights(), m2.get_weights()):
        assert _same_bits(a, b)


@requires_c
@pytest.mark.parametrize("loss,out,act", FIT_CASES)
def test_fit_numpy_and_c_backends_agree(float64_model, loss, out, act):
    """A shuffled, weighted fit on the reference backend and on C: the same batches (the same
    rows in the same order), hence the same weights up to float64 rounding."""
    x, y, w = _data(loss)
    got = {}
    for name in ("numpy", "c"):
        fastnn.set_backend(name)
        m = _mlp(loss, out, act)
        m.fit(x, y, batch_size=8, epochs=3, shuffle=True, verbose=0, sample_weight=w)
        got[name] = m.get_weights()
    for a, b in zip(got["numpy"], got["c"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    # a wrong row order would show: an unshuffled run ends elsewhere
    fastnn.set_backend("c")
    m = _mlp(loss, out, act)
    m.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, sample_weight=w)
    assert any(not np.allclose(a, b, rtol=1e-6) for a, b in zip(got["c"], m.get_weights()))


@pytest.mark.parametrize("name", ["numpy"] + (["c"] if C is not None else []))
def test_non_finite_data_errors_unchanged(name):
    """The checks now run through all_finite; the messages (and the located first bad value
    of inputs) are what they were."""
    fastnn.set_backend(name)
    x, y, w = _data("mse")
    m = _mlp("mse", 2, "linear")
    m.fit(x, y, epochs=1, verbose=0)  # clean data passes
    for bad in (np.nan, np.inf, -np.inf):
        xb = x.copy()
        xb[3, 2] = bad
        xb[40, 1] = bad
        with pytest.raises(ValueError, match=r"Input x contains NaN or inf \(first at index \(3, 2\)\)"):
            m.fit(xb, y, verbose=0)
        with pytest.raises(ValueError, match=r"Input x contains NaN or inf \(first at index \(3, 2\)\)"):
            m.predict(xb, verbose=0)
        with pytest.raises(ValueError, match=r"Input x contains NaN or inf"):
            m.evaluate(xb, y, verbose=0)
        with pytest.raises(ValueError, match=r"validation x contains NaN or inf"):
            m.fit(x, y, validation_data=(xb, y), verbose=0)
        yb = y.copy()
        yb[-1, -1] = bad
        with pytest.raises(ValueError, match="targets contain NaN or inf"):
            m.fit(x, yb, verbose=0)
        with pytest.raises(ValueError, match="targets contain NaN or inf"):
            m.evaluate(x, yb, verbose=0)
        wb = w.copy()
        wb[0] = bad
        with pytest.raises(ValueError, match="sample/class weights must be finite and >= 0"):
            m.fit(x, y, sample_weight=wb, verbose=0)
    wb = w.copy()
    wb[5] = -1.0
    with pytest.raises(ValueError, match="sample/class weights must be finite and >= 0"):
        m.fit(x, y, sample_weight=wb, verbose=0)


# ---- read_rows ----------------------------------------------------------------------------
READ_CASES = [(np.float32, (1, 1), 1), (np.float64, (37, 5), 64), (np.uint8, (200, 784), 128),
              (np.int64, (50,), 9), (np.float32, (30, 2, 3), 30)]


@pytest.fixture
def npy(tmp_path):
    import os

    def make(src):
        path = tmp_path / f"src-{src.dtype.name}-{'x'.join(map(str, src.shape))}.npy"
        np.save(path, src)
        mm = np.load(path, mmap_mode="r")
        fd = os.open(path, os.O_RDONLY)
        opened.append(fd)
        return fd, mm.offset, mm
    opened = []
    yield make
    for fd in opened:
        os.close(fd)


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("dtype,shape,k", READ_CASES,
                         ids=[f"{np.dtype(d).name}-{s}-{k}" for d, s, k in READ_CASES])
def test_read_rows_reads_the_rows_np_take_gathers_from_the_map(ops, dtype, shape, k, npy):
    rng = np.random.default_rng(shape[0] + k)
    src = _src(shape, dtype, rng)
    fd, offset, mm = npy(src)
    idx = rng.integers(0, shape[0], k)  # repeats, any order
    idx[0], idx[-1] = shape[0] - 1, 0
    out = np.empty((k,) + shape[1:], dtype)
    assert ops.read_rows(fd, offset, shape[0], idx, out) is out
    assert _same_bits(out, np.take(mm, idx, axis=0))
    # consecutive rows (one read in C), a strided index view, an empty index
    run = np.arange(shape[0] // 2, shape[0], dtype=np.int64)
    assert _same_bits(ops.read_rows(fd, offset, shape[0], run, np.empty((len(run),) + shape[1:], dtype)),
                      src[shape[0] // 2:])
    view = np.arange(shape[0], dtype=np.int64)[::-2]
    assert _same_bits(ops.read_rows(fd, offset, shape[0], view, np.empty((len(view),) + shape[1:], dtype)),
                      src[::-2])
    assert ops.read_rows(fd, offset, shape[0], np.zeros(0, np.int64),
                         np.empty((0,) + shape[1:], dtype)).shape == (0,) + shape[1:]


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
def test_read_rows_errors_name_the_row(ops, npy):
    src = np.arange(30.0).reshape(10, 3)
    fd, offset, _ = npy(src)
    out = np.full((3, 3), -7.0)
    with pytest.raises(ValueError, match=r"index\[1\] = 10 is out of range for a file of 10 rows"):
        ops.read_rows(fd, offset, 10, np.array([0, 10, -1], np.int64), out)
    assert (out == -7.0).all()  # nothing read
    with pytest.raises(OSError, match=r"file ends before row 11 \(index\[1\]\)"):
        ops.read_rows(fd, offset, 12, np.array([0, 11], np.int64), out[:2])
    with pytest.raises(OSError):
        ops.read_rows(-1, 0, 10, np.array([1], np.int64), out[:1])
    with pytest.raises(TypeError, match="int64"):
        ops.read_rows(fd, offset, 10, np.array([1], np.int32), out[:1])
    with pytest.raises(ValueError, match="writable C-contiguous"):
        ops.read_rows(fd, offset, 10, np.array([1, 2], np.int64), np.empty((3, 2))[:, :1].T)
    with pytest.raises(ValueError, match="out has 3 rows, index 2"):
        ops.read_rows(fd, offset, 10, np.array([1, 2], np.int64), out)


@pytest.mark.parametrize("ops", OPS, ids=lambda o: o.name)
@pytest.mark.parametrize("row", [1, 40])  # 8-byte rows, and 320-byte rows (prefetching path)
def test_take_rows_reads_an_index_array_that_shares_memory_with_out(ops, row):
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
