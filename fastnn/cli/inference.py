"""What each column of a table is, decided from its values, for ``fastnn train``.

Features: a string column is categorical; an integer column with at most
``MAX_INTEGER_CATEGORIES`` distinct values is categorical; any other number column is numeric.
Dropped, with a note: columns with fewer than two distinct present values (constant or empty),
string columns holding a different value in every row (names or IDs: a category seen once
cannot generalize) and integer columns numbering the rows (every value once, consecutive:
a row number would leak the file's order, e.g. a file sorted by its label). Other integer
columns unique per row are kept and flagged.

The label: strings (or booleans) -> classification; integers with at most
``MAX_INTEGER_CLASSES`` distinct values -> classification; other numbers -> regression.
``task=`` overrides.
"""
import numpy as np

from .tables import TableError

__all__ = ["ColumnPlan", "LabelPlan", "infer_columns", "infer_label", "format_plan",
           "MAX_INTEGER_CATEGORIES", "MAX_INTEGER_CLASSES"]

MAX_INTEGER_CATEGORIES = 10
MAX_INTEGER_CLASSES = 20
# Below this many rows "unique per row" says nothing (five rows of five different cities).
_MIN_ROWS_FOR_ID = 20


class ColumnPlan:
    """One feature column: ``kind`` is "numeric", "categorical" or "dropped"; ``encoding``
    the FeatureSpace feature for it as (constructor name, keyword arguments), None when
    dropped; ``note`` why, for the report."""

    def __init__(self, name, kind, source, n_missing, n_distinct, note="", encoding=None):
        self.name, self.kind, self.source = name, kind, source
        self.n_missing, self.n_distinct, self.note = n_missing, n_distinct, note
        self.encoding = encoding

    def feature(self):
        """The FeatureSpace feature object for this column."""
        from ..utils import FeatureSpace
        method, kwargs = self.encoding
        return getattr(FeatureSpace, method)(**kwargs)

    def to_json(self):
        """What a saved model records of this column."""
        return {"name": self.name, "kind": self.kind, "source": self.source}


class LabelPlan:
    """The label: ``task`` ("classification"/"regression"), ``classes`` (the class names in
    the order of the model's outputs; None for regression) and ``rows_dropped`` (missing)."""

    def __init__(self, name, task, classes, rows_dropped, source):
        self.name, self.task, self.classes = name, task, classes
        self.rows_dropped, self.source = rows_dropped, source


def _source(table, name):
    if not table.is_numeric(name):
        return "string"
    return "integer" if name in table.integer else "float"


def _distinct(col, missing):
    present = col[~missing]
    if col.dtype.kind == "f":
        return np.unique(present)
    return np.array(sorted(set(present.tolist())), dtype=object)


def infer_columns(table, target, drop=()):
    """infer_columns(table, target, drop=()) -> [ColumnPlan] for every column but the target
    (those named in ``drop`` are dropped on request)."""
    plans = []
    n = table.n_rows
    for name in table.names:
        if name == target:
            continue
        col = table.columns[name]
        missing = table.missing(name)
        n_missing = int(missing.sum())
        source = _source(table, name)
        values = _distinct(col, missing)
        k = len(values)

        def plan(kind, note="", encoding=None):
            return ColumnPlan(name, kind, source, n_missing, k, note, encoding)

        if name in drop:
            plans.append(plan("dropped", "--drop"))
        elif k == 0:
            plans.append(plan("dropped", "empty: every cell is missing"))
        elif k == 1:
            plans.append(plan("dropped", f"constant ({_show(values[0], source)})"))
        elif source == "string":
            if k == n and n >= _MIN_ROWS_FOR_ID:
                plans.append(plan("dropped", "ID-like: a different string in every row"))
            else:
                plans.append(plan("categorical", "one-hot + OOV",
                                  ("string_categorical", {"num_oov_indices": 1})))
        elif source == "integer" and k <= MAX_INTEGER_CATEGORIES:
            plans.append(plan("categorical", f"<= {MAX_INTEGER_CATEGORIES} integer values: one-hot + OOV",
                              ("integer_categorical", {"num_oov_indices": 1})))
        elif (source == "integer" and k == n and n >= _MIN_ROWS_FOR_ID
              and values[-1] - values[0] == n - 1):
            plans.append(plan("dropped", "ID-like: numbers the rows"))
        else:
            note = "normalized"
            if n_missing:
                note += ", mean-imputed + missing indicator"
            if source == "integer" and k == n and n >= _MIN_ROWS_FOR_ID:
                note += "; ID-like? unique per row (--drop it if so)"
            # Always impute: a cell missing at predict time in a column that had none in
            # training must still give a number, not NaN.
            plans.append(plan("numeric", note, ("float_normalized", {
                "impute": "mean", "missing_indicator": bool(n_missing)})))
    if not any(p.kind != "dropped" for p in plans):
        raise TableError(f"{table.source}: no usable feature column besides the target "
                         f"{target!r}: " + "; ".join(f"{p.name}: {p.note}" for p in plans)
                         if plans else f"{table.source}: no column besides the target {target!r}")
    return plans


def infer_label(table, target, task="auto"):
    """infer_label(table, target, task="auto") -> LabelPlan. Raises TableError for a label
    with no present value, one class or one value."""
    col = table.columns[target]
    missing = table.missing(target)
    source = _source(table, target)
    values = _distinct(col, missing)
    where = f"the label {target!r} in {table.source}"
    if len(values) == 0:
        raise TableError(f"{where} is missing in every row")
    if task == "auto":
        if source == "string" or (source == "integer" and len(values) <= MAX_INTEGER_CLASSES):
            task = "classification"
        else:
            task = "regression"
    if task == "regression" and source == "string":
        raise TableError(f"{where} holds strings (e.g. {values[0]!r}): it cannot be a "
                         "regression target")
    if len(values) == 1:
        kind = "one class" if task == "classification" else "one value"
        raise TableError(f"{where} has {kind} ({_show(values[0], source)}) in all "
                         f"{len(col) - int(missing.sum())} rows where it is present: nothing to learn")
    classes = None
    if task == "classification":
        classes = [_class_name(v, source) for v in values]
    return LabelPlan(target, task, classes, int(missing.sum()), source)


def _class_name(v, source):
    """A class as a JSON value: strings stay strings, whole numbers become ints."""
    if source == "string":
        return str(v)
    v = float(v)
    return int(v) if v.is_integer() else v


def _show(v, source):
    return repr(v) if source == "string" else f"{float(v):g}"


def encode_labels(column, classes):
    """The class index of every label cell (all present): int64."""
    index = {c: i for i, c in enumerate(classes)}
    if column.dtype.kind == "f":
        keys = [int(v) if float(v).is_integer() else float(v) for v in column.tolist()]
    else:
        keys = column.tolist()
    out = np.empty(len(keys), np.int64)
    for i, k in enumerate(keys):
        j = index.get(k)
        if j is None:
            raise TableError(f"label value {k!r} is not one of the model's classes {classes}")
        out[i] = j
    return out


def format_plan(plans, label, n_rows):
    """The short table ``fastnn train`` prints: one line per column, the label last."""
    rows = [("column", "type", "missing", "distinct", "used as")]
    for p in plans:
        used = p.kind if p.kind != "dropped" else "DROPPED"
        rows.append((p.name, p.source, str(p.n_missing), str(p.n_distinct),
                     f"{used}: {p.note}" if p.note else used))
    if label.task == "classification":
        shown = ", ".join(map(str, label.classes[:6])) + (", ..." if len(label.classes) > 6 else "")
        used = f"label: classification, {len(label.classes)} classes ({shown})"
    else:
        used = "label: regression"
    rows.append((label.name, label.source, str(label.rows_dropped), "", used))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    return "\n".join(line.rstrip() for line in lines)
