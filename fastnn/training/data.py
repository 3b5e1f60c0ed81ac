"""Data adapters: what the user passes to fit / evaluate / predict, turned into batches.

- NumPy arrays and array-likes (lists, pandas DataFrame/Series, scipy.sparse): ``ArrayData``.
  The array is kept as given (uint8 images stay uint8, a ``np.memmap`` or
  ``np.load(..., mmap_mode="r")`` file stays on disk); each batch is gathered and converted
  to the model's dtype into a preallocated buffer. In-memory float arrays are checked for
  NaN/inf once, up front, in cache-sized chunks (an error before any step); memory-mapped
  ones batch by batch (a first pass over a file larger than memory would cost an epoch).
- Python generators (``GeneratorData``) and ``fastnn.utils.PyDataset`` (``PyDatasetData``),
  whose batches are converted and checked as they come.

Each adapter has ``num_batches`` (None while unknown) and ``pass_batches()``, one pass over
the data as prepared ``(x, y, sample_weight)`` batches; fastnn.training.epoch_iterator cuts
passes into epochs.
"""
import itertools
import mmap
import os

import numpy as np

from .. import backend
from .py_dataset import PyDataset, _batch_error, iterate_batches

# Rows of an in-memory array converted or checked at a time: big enough to stream at memory
# speed, small enough that the temporary stays in the cache.
_CHUNK_BYTES = 4 << 20
# A memory-mapped input's pages are handed back to the page cache when the process's
# file-backed resident memory has grown this much since the last time: the pages stay
# cached, but no longer count in (or grow) the process's resident memory.
_RELEASE_BYTES = 256 << 20
# Shuffled rows of a memory map are gathered this many at a time between two checks (at most
# 2 MiB mapped per row with huge pages: 128 MiB over _RELEASE_BYTES at the peak).
_MAPPED_ROWS_PER_CHECK = 64


class MappedPages:
    """Keeps a memory map's pages from piling up in resident memory: after reads through the
    mapping, when file-backed resident memory (from /proc/self/statm, 2 us a read) has grown
    by _RELEASE_BYTES, ``madvise(MADV_DONTNEED)`` drops the mapping's pages. They stay in
    the page cache, so reading them again costs a page fault, not a disk read (measured: 2.6
    to 3.5 us a row on a 2 GiB file, against 0.6 us for a row gathered in memory).

    Without /proc (not Linux), it counts 64 KiB (the kernel's fault-around) a row read."""

    _PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

    def __init__(self, mm):
        self.mm = mm
        try:
            self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._statm = None
        self._mark = self._mapped()
        self._rows = 0

    def _mapped(self):
        if self._statm is None:
            return None
        try:
            return int(os.pread(self._statm, 128, 0).split()[2]) * self._PAGE
        except (OSError, ValueError, IndexError):
            return None

    def after_read(self, rows):
        now = self._mapped()
        self._rows += rows
        grown = (now - self._mark) if now is not None else self._rows * (64 << 10)
        if grown >= _RELEASE_BYTES:
            self.release()

    def release(self):
        try:
            self.mm.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError, AttributeError):  # no madvise here, or the map is closed
            pass
        self._mark, self._rows = self._mapped(), 0

    def close(self):
        if self._statm is not None:
            os.close(self._statm)
            self._statm = None

    __del__ = close


class FileRows:
    """The rows of a memory-mapped array read from its file with pread (backend.ops.read_rows)
    instead of through the mapping: nothing is mapped, so resident memory stays flat, and no
    row costs a page fault (a batch of 128 shuffled rows of an 8 GiB file: 513 us through
    the mapping with its pages released, 118 us mapping all of it, 68 us in memory)."""

    def __init__(self, path, offset, n, file_id):
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        st = os.fstat(self.fd)
        if file_id is None or (st.st_dev, st.st_ino) != file_id:
            os.close(self.fd)
            self.fd = None
            raise OSError(f"{path} is not the file mapped (replaced since?)")
        self.offset, self.n = offset, n
        self._index = np.empty(0, np.int64)

    def read(self, rows, out):
        """out[i] = row rows[i] (an int64 index array)."""
        return backend.ops.read_rows(self.fd, self.offset, self.n, rows, out)

    def read_range(self, lo, hi, out):
        """Rows lo:hi into out (one read: the kernel joins consecutive rows)."""
        if len(self._index) < hi - lo:
            self._index = np.arange(max(hi - lo, 2 * len(self._index)), dtype=np.int64)
        index = self._index[:hi - lo] + lo
        return self.read(index, out)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    __del__ = close


def file_rows_of(x):
    """(file name, byte offset of x[0] in it) when ``x`` is a C-contiguous np.memmap (or a
    view of one) whose file can be read directly, else None. A copy-on-write map
    (mode="c") is not: the user's changes live only in the mapping."""
    if not x.flags.c_contiguous or memory_map_of(x) is None:
        return None
    root = x
    while isinstance(root.base, np.ndarray):
        root = root.base
    name = getattr(root, "filename", None)
    if not isinstance(root, np.memmap) or not name or not os.path.isfile(name):
        return None
    at = x.__array_interface__["data"][0] - root.__array_interface__["data"][0]
    return name, int(root.offset) + at, _mapped_file_id(x.__array_interface__["data"][0])


def _mapped_file_id(address):
    """(device, inode) of the file mapped at ``address`` (/proc/self/maps), or None: the
    file to read must be the one mapped, not another saved under the same name since."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split()
                lo, hi = (int(a, 16) for a in fields[0].split("-"))
                if lo <= address < hi and len(fields) >= 5:
                    major, minor = (int(v, 16) for v in fields[3].split(":"))
                    return os.makedev(major, minor), int(fields[4])
    except (OSError, ValueError):
        pass
    return None


def numbers(a):
    """An object array holding only numbers (pandas' df.values of mixed int/float columns) as
    float64; anything else unchanged (the caller names the dtype)."""
    if a.dtype.kind == "O" and a.ndim:
        try:
            return a.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return a


def is_array_like(x):
    """True for what ArrayData takes (rather than a generator or a PyDataset)."""
    return not (is_py_dataset(x) or _is_generator(x))


def is_py_dataset(x):
    """fastnn's PyDataset, or an object shaped like one (Keras' own PyDataset or Keras 2's
    Sequence: ``__getitem__``, ``__len__`` or not, ``on_epoch_end``)."""
    return isinstance(x, PyDataset) or (
        hasattr(x, "__getitem__") and callable(getattr(x, "on_epoch_end", None))
        and not isinstance(x, (np.ndarray, list, tuple, dict, str)))


def _is_generator(x):
    import types
    return isinstance(x, (types.GeneratorType, itertools.chain)) or (
        hasattr(x, "__next__") and hasattr(x, "__iter__") and not isinstance(x, np.ndarray))


def input_array(x, name, input_shape, where):
    """Check ``x`` (array or array-like) as a model input and return it as an ndarray
    WITHOUT converting its dtype (a memory map stays a memory map). ``input_shape`` is the
    model's (None, features...) or None; ``where`` names the model/layer for errors."""
    if x is None:
        raise ValueError(f"{name} is None: pass the input data as a NumPy array")
    if not isinstance(x, np.ndarray):
        if type(x).__module__.startswith("scipy.sparse") and hasattr(x, "toarray"):
            x = x.toarray()  # Keras takes scipy sparse matrices; fastnn's layers are dense
        try:
            x = np.asarray(x)
        except ValueError as e:  # e.g. nested lists of rows of different lengths
            raise ValueError(f"{name} could not be made into one array (rows of different "
                             f"lengths?): {e}") from None
    if x.dtype.kind == "O" and x.ndim == 0:
        raise TypeError(
            f"{name} must be a NumPy array (or an array-like, a generator or a "
            f"fastnn.utils.PyDataset), got {type(x.item()).__name__}: fastnn does not take "
            "tf.data datasets or dicts of inputs; pass arrays, e.g. "
            "model.fit(X_train, y_train, validation_data=(X_valid, y_valid))")
    x = numbers(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
    if x.ndim < 2:
        x = x.reshape(-1, 1) if x.ndim == 1 and input_shape in (None, (None, 1)) else x
        if x.ndim < 2:
            raise ValueError(f"{name} must have a batch axis: got shape {x.shape}, expected "
                             f"(batch, {', '.join(map(str, (input_shape or (None, '...'))[1:]))})")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {x.shape})")
    if 0 in x.shape[1:]:
        raise ValueError(f"{name} has no features (shape {x.shape}): each sample needs at "
                         "least one value")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape[1:]):
        raise ValueError(f"Input {name} has shape {x.shape}, but {where} expects "
                         f"(batch, {', '.join(map(str, input_shape[1:]))})")
    return x


def memory_map_of(x):
    """The np.memmap behind ``x`` (itself or a view of one) when its pages can be released
    safely (mapped read-only or shared: not copy-on-write, whose changes live only in the
    mapping), else None."""
    a = x
    while isinstance(a, np.ndarray):
        if isinstance(a, np.memmap) and getattr(a, "mode", "c") in ("r", "r+", "w+"):
            base = a
            while isinstance(base, np.ndarray):
                base = base.base
            return base if isinstance(base, mmap.mmap) else None
        a = a.base
    return None


def _first_bad(x):
    """Index (tuple) of the first NaN/inf of ``x``."""
    return tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])


def _bad_value_error(name, source, converted, dtype, row_of=0, batch=None):
    """The error for a non-finite value in ``converted`` (rows of ``source`` in the model
    dtype): NaN/inf in the data, or a finite value too large for the model's dtype.
    ``row_of``: the row of the user's array where ``source`` starts, or an index array
    mapping source rows to it."""
    at = _first_bad(converted)
    row = row_of + at[0] if np.isscalar(row_of) else int(row_of[at[0]])
    where = (row,) + at[1:]
    in_batch = "" if batch is None else f" (batch {batch})"
    value = np.asarray(source)[at]
    if np.isfinite(value):
        return ValueError(f"Input {name} has a value that overflows {np.dtype(dtype).name} "
                          f"(the model's dtype){in_batch}: {float(value):.4g} at index {where}")
    return ValueError(f"Input {name} contains NaN or inf{in_batch} (first at index {where})")


def convert(x, dtype, name="x", batch=None, buffers=None):
    """``x`` (one batch) as a C-contiguous array of ``dtype``, checked finite: ``x`` itself
    when it already is one, else converted into ``buffers`` (a dict kept by the caller, one
    buffer reused for every batch of the same row shape) or a new array."""
    with np.errstate(over="ignore"):  # an overflow is named below
        if x.dtype == dtype and x.flags.c_contiguous or buffers is None:
            out = np.ascontiguousarray(x, dtype=dtype)
        else:
            buf = buffers.get("x")
            if buf is None or buf.shape[1:] != x.shape[1:] or len(buf) < len(x):
                buf = buffers["x"] = np.empty(x.shape, dtype)
            out = buf[:len(x)]
            np.copyto(out, x, casting="unsafe")
    if out.dtype.kind == "f" and not backend.ops.all_finite(out.reshape(-1)):
        raise _bad_value_error(name, x, out, dtype, 0, batch)
    return out


class ArrayData:
    """Arrays ``x`` (any numeric dtype, in memory or memory-mapped), prepared targets ``y``
    and optional per-sample weights ``w``, read as batches of the model's ``dtype``.

    ``batch(rows)`` with a slice (in order) or an int64 index array (shuffled) returns views
    of ``x`` when no conversion is needed, else rows converted into this object's buffers
    (valid until the next call)."""

    def __init__(self, x, y, w, dtype, name="x", batch_size=32, shuffle=False, rng=None):
        self.x, self.y, self.w = x, y, w  # y and w may be None (predict; no weights)
        self.dtype = np.dtype(dtype)
        self.name = name
        self.n = len(x)
        self.batch_size = batch_size
        # what the user asked for: evaluate/predict may run other row counts (see
        # Trainer._inference_rows) but callbacks and user layers get these
        self.user_batch_size = batch_size
        self.shuffle = shuffle
        self.rng = rng
        self.row0 = 0  # where this view starts in the user's array (validation_split)
        self._open_source()
        # the fast path of today's arrays: already the model's dtype, contiguous, in memory
        self.direct = x.dtype == self.dtype and x.flags.c_contiguous and not self.mapped
        self._bufs = {}
        self._batch_index = None  # the batch of the current pass, for error messages
        if not self.mapped and x.dtype.kind == "f":
            self._check_finite_in_chunks()

    # ---- one pass -------------------------------------------------------------------
    @property
    def num_batches(self):
        return -(-self.n // self.batch_size)

    def pass_batches(self):
        """The batches of one pass: shuffled rows (a new permutation from ``rng`` at the start
        of each pass) or in order."""
        order = self.rng.permutation(self.n) if self.shuffle else None
        for self._batch_index, lo in enumerate(range(0, self.n, self.batch_size)):
            hi = min(lo + self.batch_size, self.n)
            yield self.batch(order[lo:hi] if order is not None else slice(lo, hi))

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass

    def _open_source(self):
        """A memory map is read from its file with pread when the file can be opened (nothing
        mapped), else through the mapping, its pages released as they pile up."""
        self._file = self._pages = None
        mm = memory_map_of(self.x)
        self.mapped = mm is not None or isinstance(self.x, np.memmap)
        if mm is None:
            return
        where = file_rows_of(self.x)
        if where is not None:
            try:
                self._file = FileRows(*where[:2], len(self.x), where[2])
            except OSError:  # removed or replaced since it was mapped: read the mapping
                self._file = None
        if self._file is None:
            self._pages = MappedPages(mm)

    def close(self):
        for source in (self._file, self._pages):
            if source is not None:
                source.close()

    # ---- rows -------------------------------------------------------------------------
    def _buffer(self, key, shape, dtype, rows=None):
        """The buffer ``key`` for ``shape``, as its first ``rows`` rows (default: all of
        them); the buffer itself when that is all of it (a full batch: no new view)."""
        buf = self._bufs.get(key)
        if buf is None or buf.shape[0] < shape[0] or buf.dtype != dtype:
            buf = self._bufs[key] = np.empty(shape, dtype)
        rows = shape[0] if rows is None else rows
        return buf if len(buf) == rows else buf[:rows]

    def batch(self, rows):
        """(x, y, w) for ``rows`` (a slice or an int64 index array)."""
        if isinstance(rows, slice):
            nb = rows.stop - rows.start
            xb = self.x[rows] if self.direct else self._converted_slice(rows, nb)
            yb = _target_rows(self.y, rows)
            wb = None if self.w is None else self.w[rows]
            return xb, yb, wb
        nb = len(rows)
        shape = (self.batch_size,) + self.x.shape[1:]
        take_rows = backend.ops.take_rows
        if self.direct:
            # one C row copy per sample, indices checked, straight into the batch buffer
            xb = take_rows(self.x, rows, self._buffer("x", shape, self.dtype, nb))
        else:
            xb = self._converted_take(rows, nb, shape)
        y = self.y
        if isinstance(y, list):  # a model with several outputs: one array each
            yb = [None if t is None else take_rows(
                t, rows, self._buffer(f"y{i}", (self.batch_size,) + t.shape[1:], t.dtype, nb))
                for i, t in enumerate(y)]
        else:
            yb = None if y is None else take_rows(
                y, rows, self._buffer("y", (self.batch_size,) + y.shape[1:], y.dtype, nb))
        wb = None if self.w is None else take_rows(
            self.w, rows, self._buffer("w", (self.batch_size,), self.w.dtype, nb))
        return xb, yb, wb

    def _converted_slice(self, rows, nb):
        out = self._buffer("x", (max(self.batch_size, nb),) + self.x.shape[1:], self.dtype)[:nb]
        if self._file is not None:
            src = out if self.x.dtype == self.dtype else self._buffer(
                "src", (max(self.batch_size, nb),) + self.x.shape[1:], self.x.dtype)[:nb]
            self._file.read_range(rows.start, rows.stop, src)
        else:
            src = self.x[rows]
        if src is not out:
            with np.errstate(over="ignore"):  # an overflow is named in _after_read
                np.copyto(out, src, casting="unsafe")
        self._after_read(src, out, rows.start)
        return out

    def _converted_take(self, rows, nb, shape):
        out = self._buffer("x", shape, self.dtype, nb)
        same = self.x.dtype == self.dtype
        src_buf = out if same else self._buffer("src", shape, self.x.dtype, nb)
        if self._file is not None:
            self._file.read(rows, src_buf)
        else:
            # through a mapping, a few rows at a time: each row may map a 2 MiB page of the
            # file (transparent huge pages), and the pages are released between chunks
            step = _MAPPED_ROWS_PER_CHECK if self._pages is not None else nb
            for lo in range(0, nb, step):
                part = rows[lo:lo + step]
                if self.x.flags.c_contiguous:
                    backend.ops.take_rows(self.x, part, src_buf[lo:lo + len(part)])
                else:
                    np.take(self.x, part, axis=0, out=src_buf[lo:lo + len(part)])
                if self._pages is not None:
                    self._pages.after_read(len(part))
        if not same:
            with np.errstate(over="ignore"):  # an overflow is named in _after_read
                np.copyto(out, src_buf, casting="unsafe")
        self._after_read(src_buf, out, None, rows)
        return out

    def _after_read(self, src, out, start, rows=None):
        """Memory-mapped input: check the converted rows, and hand pages back as needed."""
        if not self.mapped:
            return
        if out.dtype.kind == "f" and not backend.ops.all_finite(out.reshape(-1)):
            if rows is None:  # in order: the user's batch holding the row (not the chunk)
                at = start + _first_bad(out)[0]
                raise _bad_value_error(self.name, src, out, self.dtype, self.row0 + start,
                                       at // self.user_batch_size)
            raise _bad_value_error(self.name, src, out, self.dtype, self.row0 + rows,
                                   self._batch_index)
        if rows is None and self._pages is not None:
            self._pages.after_read(len(src))

    def release_pages(self):
        """Drop this process's mapping of the file's pages (they stay in the page cache)."""
        if self._pages is not None:
            self._pages.release()

    def _check_finite_in_chunks(self):
        x = self.x
        row_bytes = max(1, x[0].nbytes if x.ndim > 1 else x.itemsize)
        step = max(1, _CHUNK_BYTES // row_bytes)
        flat_ok = x.flags.c_contiguous and x.dtype == self.dtype
        if flat_ok:  # the common case: one pass of the C check, no temporary
            if backend.ops.all_finite(x.reshape(-1)):
                return
        for lo in range(0, self.n, step):
            chunk = x[lo:lo + step]
            with np.errstate(over="ignore"):  # an overflow is named below
                conv = np.ascontiguousarray(chunk, dtype=self.dtype)
            if not backend.ops.all_finite(conv.reshape(-1)):
                raise _bad_value_error(self.name, chunk, conv, self.dtype, lo)

    # ---- evaluation in chunks ---------------------------------------------------------
    def rows(self, lo, hi):
        """Rows lo:hi of x in the model's dtype (a view when no conversion is needed)."""
        if self.direct:
            return self.x[lo:hi]
        return self._converted_slice(slice(lo, hi), hi - lo)

    def take(self, n):
        """The first ``n`` rows as an ArrayData (validation_steps, evaluate's steps); a new
        one replaces (and closes) this one."""
        if n >= self.n:
            return self
        first = ArrayData.__new__(ArrayData)._init_like(self, slice(0, n))
        self.close()
        return first

    def split(self, n_val):
        """(first n - n_val rows, last n_val rows), as Keras' validation_split; the two
        replace (and close) this one."""
        cut = self.n - n_val
        val = ArrayData.__new__(ArrayData)._init_like(self, slice(cut, self.n))
        val.shuffle = False  # validation reads in order (and draws nothing from the RNG)
        train = ArrayData.__new__(ArrayData)._init_like(self, slice(0, cut))
        self.close()
        return train, val

    def _init_like(self, other, rows):
        """A view of ``other``'s rows, without checking again what ``other`` checked."""
        vars(self).update(vars(other))
        self.row0 = other.row0 + rows.start
        self.x = other.x[rows]
        self.y = _target_rows(other.y, rows)
        self.w = None if other.w is None else other.w[rows]
        self.n = len(self.x)
        self._bufs = {}
        self._open_source()
        return self


class ArraysData(ArrayData):
    """The arrays of a graph's several inputs, read with one row order: batches are
    ``([x_1, ..., x_k], y, w)``. ``parts`` are ArrayData objects; the first holds y and w."""

    def __init__(self, parts):  # noqa: D107  (no ArrayData.__init__: the parts did the checks)
        self.parts = list(parts)
        first = self.parts[0]
        self.n, self.shuffle, self.rng, self.name = first.n, first.shuffle, first.rng, first.name

    def _each(name):  # noqa: N805  (a property factory: the value lives in every part)
        return property(lambda self: getattr(self.parts[0], name),
                        lambda self, v: [setattr(p, name, v) for p in self.parts] and None)
    batch_size = _each("batch_size")
    user_batch_size = _each("user_batch_size")
    del _each

    @property
    def y(self):
        return self.parts[0].y

    @property
    def w(self):
        return self.parts[0].w

    @w.setter
    def w(self, value):
        self.parts[0].w = value

    def pass_batches(self):
        order = self.rng.permutation(self.n) if self.shuffle else None
        for index, lo in enumerate(range(0, self.n, self.batch_size)):
            hi = min(lo + self.batch_size, self.n)
            for p in self.parts:
                p._batch_index = index
            yield self.batch(order[lo:hi] if order is not None else slice(lo, hi))

    def batch(self, rows):
        """([x_1, ..., x_k], y, w) for ``rows`` (a slice or an int64 index array)."""
        batches = [p.batch(rows) for p in self.parts]
        return [b[0] for b in batches], batches[0][1], batches[0][2]

    def rows(self, lo, hi):
        return [p.rows(lo, hi) for p in self.parts]

    def take(self, n):
        return self if n >= self.n else ArraysData([p.take(n) for p in self.parts])

    def split(self, n_val):
        pairs = [p.split(n_val) for p in self.parts]
        return ArraysData([a for a, _ in pairs]), ArraysData([b for _, b in pairs])

    def close(self):
        for p in self.parts:
            p.close()


def _target_rows(y, rows):
    """``y[rows]``, for the targets of one output or a list of them (several outputs)."""
    if isinstance(y, list):
        return [None if t is None else t[rows] for t in y]
    return None if y is None else y[rows]


def batch_rows(xb):
    """The number of rows of a batch of inputs (an array, or a list of one per input)."""
    return len(xb[0]) if isinstance(xb, list) else len(xb)


class _StreamData:
    """Common part of the generator and PyDataset adapters: each raw batch, a tuple ``(x,)``,
    ``(x, y)`` or ``(x, y, sample_weight)`` (or ``x`` alone for predict), is prepared by
    ``prepare(raw, batch_index)`` supplied by the trainer."""
    prepare = None

    def __init__(self):
        self.buffers = {}  # the batches converted to the model's dtype go here

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass

    def close(self):
        pass


class GeneratorData(_StreamData):
    """A Python generator (or iterator) of batches. It can be read once: the first pass
    learns the number of batches, as Keras 3 does."""

    def __init__(self, generator):
        super().__init__()
        self._it = iter(generator)
        self._peeked = []
        self.num_batches = None

    def peek(self):
        """The first raw batch, kept to be yielded again (to build the model from)."""
        if not self._peeked:
            try:
                self._peeked.append(next(self._it))
            except StopIteration:
                raise ValueError("the generator yielded no batch") from None
        return self._peeked[0]

    def pass_batches(self):
        index = 0
        while True:
            if self._peeked:
                raw = self._peeked.pop()
            else:
                try:
                    raw = next(self._it)
                except StopIteration:
                    return
            yield self.prepare(raw, index)
            index += 1


class PyDatasetData(_StreamData):
    """A fastnn.utils.PyDataset: ``len(ds)`` batches ``ds[i]``, in order or in a shuffled
    order (``shuffle``, a new one each pass), fetched ahead by its workers when it has any."""

    def __init__(self, dataset, shuffle=False, rng=None):
        super().__init__()
        self.dataset = dataset
        self.rng = rng
        n = getattr(dataset, "num_batches", None)
        if n is None and not isinstance(dataset, PyDataset) and hasattr(dataset, "__len__"):
            n = len(dataset)  # a Keras 2 Sequence
        self.num_batches = n
        # a dataset without a length runs in order (Keras: an endless one); learning the
        # length of its first pass does not make later passes shuffle
        self.shuffle = shuffle and n is not None

    def peek(self):
        if self.num_batches == 0:
            raise ValueError(f"{type(self.dataset).__name__} has no batches (len() is 0)")
        try:
            return self.dataset[0]
        except Exception as e:  # named as the workers name it
            raise _batch_error(self.dataset, 0, e) from e

    def pass_batches(self):
        n = self.num_batches
        if n is None:
            indices = itertools.count()
        elif self.shuffle:
            indices = (int(i) for i in self.rng.permutation(n))
        else:
            indices = range(n)
        gen = iterate_batches(self.dataset, indices)
        try:
            for index, raw in gen:
                yield self.prepare(raw, index)
        except IndexError:
            if n is not None:
                raise
            # a dataset without __len__ ends where __getitem__ runs out, as Keras
        finally:
            gen.close()

    def on_epoch_begin(self):
        hook = getattr(self.dataset, "on_epoch_begin", None)
        if callable(hook):
            hook()

    def on_epoch_end(self):
        self.dataset.on_epoch_end()
