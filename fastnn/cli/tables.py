"""Reading a table file into named columns, for the command line.

CSV (and TSV, optionally gzip-compressed) is read with the standard library's ``csv`` module:
quoted fields, a header row, the cells pandas reads as missing by default (empty, ``NA``,
``NaN``, ``null``, ``None``, ...) are missing here too, and each column is parsed as a whole:
numbers when every present cell is a number (``integer`` when every one is written as a whole
number), strings otherwise. Parquet, Feather and JSON files go through pandas (the
optional extra ``fastnn[tables]``). A column comes back as float64 with NaN for missing cells,
or as an object array of ``str`` with ``None`` for missing cells.
"""
import csv
import gzip
import io
import os
import re

import numpy as np

__all__ = ["Table", "read_table", "TableError", "MISSING_TOKENS"]

# pandas' default ``na_values``: a table a user opened with pandas has the same holes here.
MISSING_TOKENS = frozenset([
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])

# One regular expression over a whole column (cells joined by newlines) instead of one Python
# call per cell. Written out rather than float(): float() also takes "inf", "1_000" and " 1 ".
_INT = r"[+-]?\d+"
_FLOAT = r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
_ALL_INTS = re.compile(rf"(?:{_INT}\n)*{_INT}")
_ALL_FLOATS = re.compile(rf"(?:{_FLOAT}\n)*{_FLOAT}")

_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
_PANDAS_READERS = {".parquet": ("read_parquet", "pyarrow"), ".pq": ("read_parquet", "pyarrow"),
                   ".feather": ("read_feather", "pyarrow"), ".json": ("read_json", None),
                   ".jsonl": ("read_json", None)}
# Progress is shown while reading files larger than this (a few seconds of parsing).
_PROGRESS_BYTES = 16 << 20


class TableError(ValueError):
    """A table file that cannot be used: unreadable, empty, ragged, or of an unknown kind.
    The message names the file and what is wrong."""


class Table:
    """Named columns of equal length read from ``source``.

    ``columns`` maps each name (in file order) to a float64 array (NaN = missing) or an
    object array of ``str`` (``None`` = missing); ``integer`` is the set of numeric columns
    whose every present value is a whole number written as one."""

    def __init__(self, columns, integer=(), source="<table>"):
        self.columns = dict(columns)
        self.integer = set(integer)
        self.source = source
        lengths = {len(c) for c in self.columns.values()}
        if len(lengths) > 1:
            raise TableError(f"{source}: columns have different lengths {sorted(lengths)}")
        self.n_rows = lengths.pop() if lengths else 0

    @property
    def names(self):
        """The column names, in file order."""
        return list(self.columns)

    def is_numeric(self, name):
        """Whether column ``name`` holds numbers (float64, NaN for missing cells)."""
        return self.columns[name].dtype.kind == "f"

    def missing(self, name):
        """Boolean mask of the missing cells of column ``name``."""
        col = self.columns[name]
        if col.dtype.kind == "f":
            return np.isnan(col)
        return np.fromiter((v is None for v in col), bool, len(col))

    def take(self, rows):
        """A new Table holding the given rows (indices or a boolean mask) of every column."""
        return Table({k: v[rows] for k, v in self.columns.items()}, self.integer, self.source)


def read_table(path, verbose=0, strings=()):
    """read_table(path, verbose=0, strings=()) -> Table. The columns named in ``strings`` are
    kept as strings even if every cell is a number (a categorical column of a model that saw
    strings in it). ``verbose=1`` shows a progress bar (on stderr) while a large CSV file is
    parsed."""
    path = os.fspath(path)
    lower = path.lower()
    if os.path.isdir(path):
        raise TableError(f"cannot read {path}: it is a directory")
    if lower.endswith(_CSV_SUFFIXES):
        return _read_csv(path, delimiter="\t" if ".tsv" in lower else ",", verbose=verbose,
                         strings=strings)
    for suffix, (reader, engine) in _PANDAS_READERS.items():
        if lower.endswith(suffix):
            return _read_with_pandas(path, reader, engine, lines=suffix == ".jsonl",
                                     strings=strings)
    known = ", ".join(_CSV_SUFFIXES + tuple(_PANDAS_READERS))
    raise TableError(f"cannot read {path}: unknown file type (known: {known})")


def _open_text(path):
    try:
        raw = gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")
    except OSError as err:
        raise TableError(f"cannot read {path}: {err.strerror or err}") from None
    # utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


class _CountingLines:
    """Iterates the lines of a text file, counting characters read (for the progress bar)."""

    def __init__(self, f, bar, total):
        self.f, self.bar, self.total, self.read, self.lines = f, bar, total, 0, 0

    def __iter__(self):
        for line in self.f:
            self.read += len(line)
            self.lines += 1
            if self.bar is not None and self.lines % 20000 == 0:
                self.bar.update(min(99, int(100 * self.read / self.total)))
            yield line


def _read_csv(path, delimiter, verbose=0, strings=()):
    f = _open_text(path)
    size = os.fstat(f.fileno()).st_size
    bar = None
    if verbose and size > _PROGRESS_BYTES:
        import sys

        from ..callbacks import Progbar
        print(f"reading {path} ({size / 2 ** 20:.0f} MiB), percent done:", file=sys.stderr)
        bar = Progbar(100, stream=sys.stderr)
    with f:
        lines = _CountingLines(f, bar, max(size, 1))
        reader = csv.reader(lines, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise TableError(f"{path} is empty (no header row)")
            header = [h.strip() for h in header]
            width = len(header)
            cells = [[] for _ in range(width)]
            for row in reader:
                if len(row) != width:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # a blank line (e.g. at the end of the file)
                    raise TableError(f"{path}, line {reader.line_num}: {len(row)} fields, "
                                     f"the header has {width}")
                for col, cell in zip(cells, row):
                    col.append(cell.strip())
        except UnicodeDecodeError as err:
            raise TableError(f"cannot read {path}: not UTF-8 text ({err.reason} at byte "
                             f"{err.start} of a block)") from None
        except csv.Error as err:
            raise TableError(f"cannot read {path}, line {reader.line_num}: {err}") from None
        except OSError as err:  # e.g. a truncated .gz
            raise TableError(f"cannot read {path}: {err}") from None
    if bar is not None:
        bar.update(100, finalize=True)
    names = _unique_names(header, path)
    columns, integer = {}, set()
    for name, col in zip(names, cells):
        columns[name], is_int = _parse_column(col, as_strings=name in strings)
        if is_int:
            integer.add(name)
    return Table(columns, integer, path)


def _unique_names(header, path):
    names = []
    for i, h in enumerate(header):
        name = h or f"unnamed_{i}"  # pandas' to_csv writes its index under an empty name
        if name in names:
            raise TableError(f"{path}: column name {name!r} appears more than once in the header")
        names.append(name)
    return names


def _parse_column(cells, as_strings=False):
    """The cells of one CSV column -> (array, is_integer)."""
    present = [c for c in cells if c not in MISSING_TOKENS]
    joined = "\n".join(present)
    if present and not as_strings and _ALL_FLOATS.fullmatch(joined):
        out = np.full(len(cells), np.nan)
        mask = np.fromiter((c not in MISSING_TOKENS for c in cells), bool, len(cells))
        out[mask] = np.array(present, dtype=np.float64)
        return out, bool(_ALL_INTS.fullmatch(joined))
    out = np.empty(len(cells), dtype=object)
    out[:] = [None if c in MISSING_TOKENS else c for c in cells]
    return out, False


def _read_with_pandas(path, reader, engine, lines=False, strings=()):
    try:
        import pandas as pd
    except ImportError:
        raise TableError(f"reading {os.path.basename(path)} needs pandas"
                         f"{' and ' + engine if engine else ''}: pip install 'fastnn[tables]' "
                         "(or save the table as CSV)") from None
    kwargs = {"lines": True} if lines else {}
    try:
        frame = getattr(pd, reader)(path, **kwargs)
    except ImportError as err:
        raise TableError(f"reading {os.path.basename(path)} needs {engine or 'an extra package'}: "
                         f"pip install 'fastnn[tables]' ({err})") from None
    except (OSError, ValueError) as err:
        raise TableError(f"cannot read {path}: {err}") from None
    return table_from_frame(frame, path, strings=strings)


def table_from_frame(frame, source="<DataFrame>", strings=()):
    """A pandas DataFrame -> Table (numbers as float64 with NaN, everything else and the
    columns named in ``strings`` as strings)."""
    columns, integer = {}, set()
    names = _unique_names([str(c) for c in frame.columns], source)
    for name, (_, series) in zip(names, frame.items()):
        kind = getattr(series.dtype, "kind", "O")
        if kind in "iuf" and name not in strings:
            columns[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            if kind in "iu":
                integer.add(name)
        else:
            values = series.to_numpy(dtype=object)
            isna = series.isna().to_numpy()
            out = np.empty(len(values), dtype=object)
            out[:] = [None if na else str(v) for v, na in zip(values, isna)]
            columns[name] = out
    return Table(columns, integer, source)
