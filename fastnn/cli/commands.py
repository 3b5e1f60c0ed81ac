"""``fastnn train`` / ``predict`` / ``evaluate`` on a table file.

Every problem the user can fix (a wrong column name, an empty file, a label with one class,
a file that is not a table) raises :class:`CliError` (or a TableError); ``fastnn.__main__``
prints it as one line starting ``fastnn:`` and exits with status 2.
"""
import csv
import os
import sys
import time

import numpy as np

from .inference import encode_labels, format_plan, infer_columns, infer_label
from .modeling import TabularModel
from .tables import TableError, read_table

__all__ = ["CliError", "prepare_table", "fit_prepared", "train_table", "predict_table",
           "predict_command", "evaluate_command", "split_indices"]


class CliError(Exception):
    """A problem with the user's input, reported as one line, without a traceback."""


def split_indices(n, fraction, seed, labels=None):
    """(rest, held_out) row indices: ``fraction`` of ``n`` rows held out at random, at least
    one if ``fraction > 0``; per class when ``labels`` is given (stratified), so that every
    class keeps rows in the rest."""
    rng = np.random.default_rng(seed)
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    if labels is None:
        order = rng.permutation(n)
        k = max(1, int(round(n * fraction)))
        return np.sort(order[k:]), np.sort(order[:k])
    held, rest = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.nonzero(labels == c)[0])
        k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        held.append(idx[:k])
        rest.append(idx[k:])
    held, rest = np.concatenate(held), np.concatenate(rest)
    if len(held) == 0:  # only one-row classes: hold out one row anyway
        held, rest = rest[:1], rest[1:]
    return np.sort(rest), np.sort(held)


def _read(path, verbose, strings=()):
    try:
        table = read_table(path, verbose=verbose, strings=strings)
    except TableError as err:
        raise CliError(str(err)) from None
    if table.n_rows == 0:
        raise CliError(f"{path} has a header but no rows")
    return table


class Prepared:
    """A table with its label present in every row, and what was inferred about it."""

    def __init__(self, table, target, label, plans, y, rows_without_label):
        self.table, self.target, self.label, self.plans = table, target, label, plans
        self.y, self.rows_without_label = y, rows_without_label

    @property
    def used(self):
        return [p for p in self.plans if p.kind != "dropped"]

    def columns(self, rows=None):
        return {p.name: (self.table.columns[p.name] if rows is None
                         else self.table.columns[p.name][rows]) for p in self.used}


def prepare_table(table, target, task="auto", drop=()):
    """Infer the label and the feature columns of ``table`` and drop the rows whose label is
    missing (counted in ``rows_without_label``)."""
    if target not in table.columns:
        raise CliError(f"no column {target!r} in {table.source}; columns are {table.names}")
    unknown = sorted(set(drop) - set(table.names))
    if unknown:
        raise CliError(f"--drop: no column {', '.join(map(repr, unknown))} in {table.source}; "
                       f"columns are {table.names}")
    try:
        label = infer_label(table, target, task)
        plans = infer_columns(table, target, drop=drop)
    except TableError as err:
        raise CliError(str(err)) from None
    keep = ~table.missing(target)
    n_dropped = int((~keep).sum())
    if n_dropped:
        table = table.take(keep)
    if label.task == "classification":
        y = encode_labels(table.columns[target], label.classes)
    else:
        y = table.columns[target].astype(np.float32)
    return Prepared(table, target, label, plans, y, n_dropped)


def fit_prepared(prep, hidden=(128, 64), activation="relu", optimizer="adam",
                 learning_rate=None, epochs=30, batch_size=32, patience=10, test_fraction=0.2,
                 validation_fraction=0.2, seed=0, verbose=1):
    """Split off a test part and, from the rest, a validation part (early stopping with the
    best weights restored), adapt the FeatureSpace on the training part only, fit, and
    evaluate on the test part. Returns ``(tabular_model, report)``: a dict with the row
    counts, the history, the test results (None without a test part), the seconds spent in
    fit, and the test rows' indices into ``prep.table``."""
    from fastnn import callbacks, optimizers
    from fastnn.utils import FeatureSpace
    classification = prep.label.task == "classification"
    y = prep.y
    rest, test = split_indices(len(y), test_fraction, seed, y if classification else None)
    train, val = split_indices(len(rest), validation_fraction, seed + 1,
                               y[rest] if classification else None)
    train, val = rest[train], rest[val]
    if len(train) < 2:
        raise CliError(f"{prep.table.source}: {len(y)} rows with a label are too few to split "
                       "into training, validation and test parts")
    info = {"target": prep.target, "task": prep.label.task, "classes": prep.label.classes,
            "label_source": prep.label.source,
            "features": [p.to_json() for p in prep.used],
            "dropped": [{"name": p.name, "why": p.note} for p in prep.plans if p.kind == "dropped"]}
    fs = FeatureSpace(features={p.name: p.feature() for p in prep.used}, output_mode="concat")
    fs.adapt(prep.columns(train))
    tm = TabularModel.build(fs, info, hidden=hidden, activation=activation)
    opt = optimizers.get(optimizer)
    if learning_rate is not None:
        opt.learning_rate = learning_rate
    tm.compile(opt)
    stopper = None
    if len(val):
        stopper = callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                          restore_best_weights=True)
    t0 = time.perf_counter()
    history = tm.fit(prep.columns(train), y[train],
                     validation=(prep.columns(val), y[val]) if len(val) else None,
                     batch_size=batch_size, epochs=epochs, verbose=verbose,
                     callbacks=[stopper] if stopper else None)
    seconds = time.perf_counter() - t0
    results = tm.evaluate(prep.columns(test), y[test]) if len(test) else None
    losses = history.history.get("val_loss")
    report = {"n_train": len(train), "n_val": len(val), "n_test": len(test),
              "history": history, "test": results, "seconds": seconds,
              "epochs_run": len(history.epoch),
              "best_epoch": int(np.argmin(losses)) + 1 if losses else None,
              "test_rows": test}
    return tm, report


def _format_results(results):
    return ", ".join(f"{k} = {v:.4f}" for k, v in results.items())


def train_table(args):
    """``fastnn train FILE --target COL`` on a table (``args`` from the argument parser).
    Returns ``(tabular_model, report)``."""
    import fastnn
    if not args.target:
        raise CliError("--target COLUMN is required for a table file (the column to predict)")
    table = _read(args.path, args.verbose)
    hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    drop = [c.strip() for d in (args.drop or []) for c in d.split(",") if c.strip()]
    prep = prepare_table(table, args.target, task=args.task, drop=drop)
    print(f"fastnn {fastnn.__version__}: backend={fastnn.backend.backend()} "
          f"threads={fastnn.get_num_threads()} openmp={fastnn.have_openmp()}")
    print(f"data: {args.path}: {table.n_rows} rows, {len(table.names)} columns; "
          f"task: {prep.label.task}")
    print(format_plan(prep.plans, prep.label, table.n_rows))
    if prep.rows_without_label:
        print(f"note: {prep.rows_without_label} of {table.n_rows} rows are left out: their "
              f"label {args.target!r} is missing")
    tm, rep = fit_prepared(prep, hidden=hidden, activation=args.activation,
                           optimizer=args.optimizer, learning_rate=args.learning_rate,
                           epochs=args.epochs, batch_size=args.batch_size,
                           patience=args.patience, test_fraction=args.test_fraction,
                           validation_fraction=args.validation_fraction, seed=args.seed,
                           verbose=args.verbose)
    stopping = "early stopping" if rep["n_val"] else "no early stopping"
    print(f"rows: train {rep['n_train']}, validation {rep['n_val']} ({stopping}), "
          f"test {rep['n_test']}")
    s = rep["seconds"]
    line = (f"trained {rep['epochs_run']} epochs in {s:.2f} s "
            f"({s / max(rep['epochs_run'], 1) * 1e3:.1f} ms/epoch)")
    if rep["best_epoch"] is not None:
        line += f"; kept the weights of epoch {rep['best_epoch']} (lowest val_loss)"
    print(line)
    if rep["test"] is not None:
        print("test: " + _format_results(rep["test"]))
    if args.save:
        tm.save(args.save)
        print(f"saved model, preprocessing and class names to {args.save}")
    else:
        print("(not saved: add --save model.fnn to keep it for `fastnn predict`)")
    return tm, rep


def _load_model(path):
    import fastnn
    if not os.path.exists(path):
        raise CliError(f"cannot read {path}: no such file")
    try:
        return TabularModel.load(path)
    except fastnn.saving.InvalidModelFileError as err:
        raise CliError(str(err)) from None


def _model_columns(tm, path, verbose):
    """The columns the model needs, read from the table at ``path`` (a missing one is an
    error naming it; the others, the target among them, are ignored)."""
    strings = [f["name"] for f in tm.info["features"] if f["source"] == "string"]
    if tm.info.get("label_source") == "string":
        strings.append(tm.info["target"])
    table = _read(path, verbose, strings=strings)
    missing = [n for n in tm.feature_names if n not in table.columns]
    if missing:
        raise CliError(f"{path} has no column {', '.join(map(repr, missing))}, which the model "
                       f"needs; it has {table.names}")
    for f in tm.info["features"]:
        col = table.columns[f["name"]]
        if f["source"] != "string" and col.dtype.kind != "f":
            bad = next(v for v in col if v is not None)
            raise CliError(f"{path}: column {f['name']!r} must hold numbers, as it did in "
                           f"training, but holds {bad!r}")
    return table


def predict_table(tm, columns, batch_size=32, verbose=0):
    """Predictions for raw ``columns`` as (header, rows): the class name and one probability
    per class, or the predicted value; the raw model output is returned too."""
    out = np.asarray(tm.predict(columns, batch_size=batch_size, verbose=verbose))
    if tm.info["task"] == "classification":
        classes = tm.info["classes"]
        header = ["prediction"] + [f"prob_{c}" for c in classes]
        best = np.argmax(out, axis=1)
        rows = [[str(classes[b])] + [str(p) for p in probs] for b, probs in zip(best, out)]
    else:
        header = ["prediction"]
        rows = [[str(v)] for v in out[:, 0]]
    return header, rows, out


def predict_command(args):
    """``fastnn predict MODEL FILE [-o OUT]``."""
    tm = _load_model(args.model)
    table = _model_columns(tm, args.path, args.verbose if args.output else 0)
    header, rows, _ = predict_table(tm, {n: table.columns[n] for n in tm.feature_names},
                                    batch_size=args.batch_size,
                                    verbose=args.verbose if args.output else 0)
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header, rows)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        _write_csv(sys.stdout, header, rows)


def _write_csv(f, header, rows):
    w = csv.writer(f, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)


def evaluate_command(args):
    """``fastnn evaluate MODEL FILE [--target COL]``: loss and metrics on a labelled table."""
    tm = _load_model(args.model)
    target = args.target or tm.info["target"]
    table = _model_columns(tm, args.path, args.verbose)
    if target not in table.columns:
        raise CliError(f"no column {target!r} in {args.path}; columns are {table.names}")
    keep = ~table.missing(target)
    n_dropped = int((~keep).sum())
    if n_dropped:
        print(f"note: {n_dropped} of {table.n_rows} rows are left out: their label "
              f"{target!r} is missing")
        table = table.take(keep)
    if table.n_rows == 0:
        raise CliError(f"{args.path}: no row has a label {target!r}")
    col = table.columns[target]
    if tm.info["task"] == "classification":
        try:
            y = encode_labels(col, tm.info["classes"])
        except TableError as err:
            raise CliError(f"{args.path}, column {target!r}: {err}") from None
    else:
        if col.dtype.kind != "f":
            raise CliError(f"{args.path}: the label {target!r} must hold numbers for this "
                           "regression model")
        y = col.astype(np.float32)
    results = tm.evaluate({n: table.columns[n] for n in tm.feature_names}, y,
                          batch_size=args.batch_size, verbose=args.verbose)
    print(f"{args.path}: {table.n_rows} rows; " + _format_results(results))
    return results
