"""The fastnn command line.

    python -m fastnn                               train an MLP on the embedded 8x8 digits
    fastnn train data.csv --target COL --save m.fnn
                                                   infer the columns, train, report, save
    fastnn predict m.fnn data.csv [-o out.csv]     predictions from raw rows
    fastnn evaluate m.fnn data.csv [--target COL]  loss and metrics on a labelled table
    fastnn train data.npz                          arrays x and y (standardized, as before)

Tables: CSV/TSV with the standard library; Parquet, Feather and JSON with the optional
extra ``fastnn[tables]`` (pandas, pyarrow). What ``train`` infers and does is documented in
``fastnn.cli.inference`` and ``fastnn.cli.commands``.
"""
import argparse
import sys
import time

import numpy as np


def _add_common(s):
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--threads", type=int, default=None)
    s.add_argument("--backend", choices=["c", "numpy"], default=None)
    s.add_argument("--verbose", type=int, default=1, help="0: no progress bars")


def _parser():
    p = argparse.ArgumentParser(prog="fastnn", description="Train an MLP on the CPU with fastnn.")
    sub = p.add_subparsers(dest="command")
    for name, helptext in (("demo", "train on the embedded digits dataset (the default)"),
                           ("train", "train on a table (.csv, .tsv, .parquet, ...) or an .npz")):
        s = sub.add_parser(name, help=helptext)
        if name == "train":
            s.add_argument("path", help="a table with a header row (.csv, .tsv, .parquet, ...), "
                                        "or an .npz with arrays x and y")
            s.add_argument("--target", help="name of the column to predict (tables)")
            s.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
            s.add_argument("--drop", action="append", metavar="COL[,COL...]",
                           help="columns not to use as features (repeatable)")
            s.add_argument("--test-fraction", type=float, default=0.2,
                           help="rows held out to report the test metric (tables)")
            s.add_argument("--validation-fraction", type=float, default=0.2,
                           help="training rows held out for early stopping (tables; 0: none)")
            s.add_argument("--patience", type=int, default=10,
                           help="early stopping: epochs without a better val_loss (tables)")
        s.add_argument("--epochs", type=int, default=30)
        s.add_argument("--hidden", default="128,64", help="hidden layer widths, comma-separated")
        s.add_argument("--activation", default="relu")
        s.add_argument("--optimizer", default="adam")
        s.add_argument("--learning-rate", type=float, default=None)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--save", default=None, help="save the trained model (with its "
                                                    "preprocessing) to this path, e.g. model.fnn")
        _add_common(s)
    s = sub.add_parser("predict", help="predict from the raw rows of a table with a model that "
                                       "`fastnn train` saved")
    s.add_argument("model", help="a model file written by fastnn train --save")
    s.add_argument("path", help="a table holding (at least) the model's feature columns")
    s.add_argument("-o", "--output", default=None, help="write the predictions to this CSV "
                                                        "(default: standard output)")
    _add_common(s)
    s = sub.add_parser("evaluate", help="loss and metrics of a saved model on a labelled table")
    s.add_argument("model", help="a model file written by fastnn train --save")
    s.add_argument("path", help="a table holding the model's feature columns and the label")
    s.add_argument("--target", default=None, help="the label column (default: the one the "
                                                  "model was trained on)")
    _add_common(s)
    return p


def _load_npz(path):
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SystemExit(f"fastnn: cannot read {path}: {err}") from None
    with f:
        if "x" not in f or "y" not in f:
            raise SystemExit(f"fastnn: {path} must hold arrays named 'x' and 'y' (has {list(f.keys())})")
        return np.asarray(f["x"], dtype=np.float64), np.asarray(f["y"])


def _split(x, y, seed, test_fraction=0.2):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    te, tr = order[:n_test], order[n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


def _setup(args):
    import fastnn
    if args.backend:
        fastnn.set_backend(args.backend)
    if args.threads:
        fastnn.set_num_threads(args.threads)
    if getattr(args, "seed", None) is not None:
        fastnn.set_seed(args.seed)


def run(args):
    """Run the parsed command ``args``: the demo, ``train`` (a table or an .npz),
    ``predict`` or ``evaluate``."""
    from fastnn.cli import commands
    _setup(args)
    if args.command == "predict":
        return commands.predict_command(args)
    if args.command == "evaluate":
        return commands.evaluate_command(args)
    if getattr(args, "path", None) and not args.path.lower().endswith(".npz"):
        return commands.train_table(args)
    return _run_arrays(args)


def _run_arrays(args):
    """The demo and ``train x.npz``: arrays, standardized with the training statistics."""
    import fastnn
    from fastnn import datasets, layers, optimizers

    if getattr(args, "path", None):
        x, y = _load_npz(args.path)
        task = args.task
        if task == "auto":
            whole = np.all(y == np.round(y))
            task = "classification" if whole and len(np.unique(y)) <= max(2, len(y) // 10) else "regression"
        (x_tr, y_tr), (x_te, y_te) = _split(x, y, args.seed)
        source = args.path
    else:
        (x_tr, y_tr), (x_te, y_te) = datasets.load_digits(seed=args.seed)
        task, source = "classification", "embedded 8x8 digits (1,797 images)"
    # Standardize features with training statistics only (zero mean, unit variance).
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
    std[std == 0] = 1
    x_tr = ((x_tr - mean) / std).astype(np.float32)
    x_te = ((x_te - mean) / std).astype(np.float32)

    hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    model = fastnn.Sequential([layers.Input(shape=(x_tr.shape[1],))])
    for h in hidden:
        model.add(layers.Dense(h, activation=args.activation, kernel_initializer="he_normal"))
    if task == "classification":
        classes = np.unique(np.concatenate([y_tr, y_te]))
        lookup = {c: i for i, c in enumerate(classes)}
        y_tr = np.array([lookup[c] for c in y_tr], np.int64)
        y_te = np.array([lookup[c] for c in y_te], np.int64)
        model.add(layers.Dense(len(classes), activation="softmax"))
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        model.add(layers.Dense(1))
        loss, metrics = "mse", ["mae"]
    opt = optimizers.get(args.optimizer)
    if args.learning_rate is not None:
        opt.learning_rate = args.learning_rate
    model.compile(optimizer=opt, loss=loss, metrics=metrics)
    print(f"fastnn {fastnn.__version__}: backend={fastnn.backend.backend()} "
          f"threads={fastnn.get_num_threads()} openmp={fastnn.have_openmp()}")
    print(f"data: {source}; train {x_tr.shape}, test {x_te.shape}; task: {task}")
    model.summary()
    t0 = time.perf_counter()
    model.fit(x_tr, y_tr, batch_size=args.batch_size, epochs=args.epochs, verbose=args.verbose,
              validation_data=(x_te, y_te))
    seconds = time.perf_counter() - t0
    results = model.evaluate(x_te, y_te, verbose=0, return_dict=True)
    print(f"trained {args.epochs} epochs in {seconds:.2f} s "
          f"({seconds / max(args.epochs, 1) * 1e3:.1f} ms/epoch)")
    print("test: " + ", ".join(f"{k} = {v:.4f}" for k, v in results.items()))
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")
    return model, results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["demo"] + list(argv)
    args = _parser().parse_args(argv)
    from fastnn.cli.commands import CliError
    from fastnn.cli.tables import TableError
    try:
        run(args)
    except (CliError, TableError) as exc:
        print(f"fastnn: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            return 2
        raise
    except (ValueError, TypeError, OSError) as exc:
        print(f"fastnn: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
