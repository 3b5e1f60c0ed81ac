"""The fastnn command line.

    python -m fastnn                      train an MLP on the embedded 8x8 digits
    fastnn train data.csv --target COL    the same on your own CSV (or .npz with x and y)
"""
import argparse
import sys
import time

import numpy as np


def _parser():
    p = argparse.ArgumentParser(prog="fastnn", description="Train an MLP on the CPU with fastnn.")
    sub = p.add_subparsers(dest="command")
    for name, helptext in (("demo", "train on the embedded digits dataset (the default)"),
                           ("train", "train on a CSV or .npz file")):
        s = sub.add_parser(name, help=helptext)
        if name == "train":
            s.add_argument("path", help="a .csv with a header row, or an .npz with arrays x and y")
            s.add_argument("--target", help="name of the target column (CSV)")
            s.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
        s.add_argument("--epochs", type=int, default=30)
        s.add_argument("--batch-size", type=int, default=32)
        s.add_argument("--hidden", default="128,64", help="hidden layer widths, comma-separated")
        s.add_argument("--activation", default="relu")
        s.add_argument("--optimizer", default="adam")
        s.add_argument("--learning-rate", type=float, default=None)
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--threads", type=int, default=None)
        s.add_argument("--backend", choices=["c", "numpy"], default=None)
        s.add_argument("--save", default=None, help="save the trained model to this path")
        s.add_argument("--verbose", type=int, default=1)
    return p


def _load_table(path, target):
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise SystemExit(f"fastnn: {path} must hold arrays named 'x' and 'y' (has {list(f.keys())})")
            return np.asarray(f["x"], dtype=np.float64), np.asarray(f["y"])
    if not target:
        raise SystemExit("fastnn: --target COLUMN is required for a CSV file")
    data = np.genfromtxt(path, delimiter=",", names=True, dtype=np.float64, encoding="utf-8")
    names = list(data.dtype.names or [])
    if target not in names:
        raise SystemExit(f"fastnn: no column {target!r} in {path}; columns are {names}")
    cols = [n for n in names if n != target]
    x = np.stack([data[c] for c in cols], axis=1) if cols else np.empty((len(data), 0))
    y = data[target]
    keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
    if not keep.all():
        print(f"fastnn: dropping {int((~keep).sum())} rows with missing or non-numeric values")
    return x[keep], y[keep]


def _split(x, y, seed, test_fraction=0.2):
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = max(1, int(round(len(x) * test_fraction)))
    te, tr = order[:n_test], order[n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


def run(args):
    import fastnn
    from fastnn import datasets, layers, optimizers

    if args.backend:
        fastnn.set_backend(args.backend)
    if args.threads:
        fastnn.set_num_threads(args.threads)
    fastnn.set_seed(args.seed)
    if getattr(args, "path", None):
        x, y = _load_table(args.path, args.target)
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
    try:
        run(args)
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
