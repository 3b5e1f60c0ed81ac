"""A real table: the Palmer penguins (344 rows, the `palmerpenguins` package ships the CSV).
Predict the species (a string: Adelie, Chinstrap, Gentoo) from the island and sex (strings,
sex missing in 11 rows), the year (three integer values: categorical), and four body
measurements (missing in 2 rows). fastnn (a FeatureSpace feeding an MLP, early stopping on a
validation split; and a variant with an Embedding per categorical column) against scikit-learn's HistGradientBoostingClassifier and MLPClassifier,
each in its usual preprocessing pipeline, on the same stratified splits; accuracy on the test
part and training time (preprocessing included) as ratios to fastnn's, measured in this run.

    pip install "fastnn[examples]"     # palmerpenguins (reads its CSV: no network) + scikit-learn
    python examples/penguins.py [--repeats 5]
"""
import argparse
import os
import time

import numpy as np

import fastnn
from fastnn import callbacks, layers
from fastnn.cli.commands import split_indices
from fastnn.cli.tables import read_table
from fastnn.utils import FeatureSpace

TARGET = "species"
CATEGORICAL = ["island", "sex", "year"]
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguins_csv():
    """The path of the CSV inside the installed palmerpenguins package."""
    try:
        import palmerpenguins
    except ImportError:
        raise SystemExit("examples/penguins.py needs the palmerpenguins package: "
                         "pip install 'fastnn[examples]'") from None
    return os.path.join(os.path.dirname(palmerpenguins.__file__), "data", "penguins.csv")


def load():
    """(columns, labels, class names): the features as a dict of columns (float64 with NaN,
    strings with None; the CSV's "NA" cells are missing) and the species as class indices."""
    table = read_table(penguins_csv())
    species = table.columns[TARGET]
    classes = sorted(set(species.tolist()))
    y = np.array([classes.index(s) for s in species], np.int64)
    return {k: table.columns[k] for k in CATEGORICAL + NUMERIC}, y, classes


def take(columns, rows):
    return {k: v[rows] for k, v in columns.items()}


def fastnn_mlp(train, y_train, val, y_val, n_classes, epochs, seed):
    fastnn.set_seed(seed)
    fs = FeatureSpace(
        features={"island": "string_categorical", "sex": "string_categorical",
                  "year": "integer_categorical",
                  **{k: FeatureSpace.float_normalized(impute="mean", missing_indicator=True)
                     for k in NUMERIC}},
        output_mode="concat")
    fs.adapt(train)
    # Keras' structured-data recipe: the model's inputs are the raw columns
    x = fs.get_encoded_features()
    h = layers.Dense(64, activation="relu", kernel_initializer="he_normal")(x)
    h = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(h)
    model = fastnn.Model(inputs=fs.get_inputs(),
                         outputs=layers.Dense(n_classes, activation="softmax")(h))
    model.compile(optimizer=fastnn.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, y_train, validation_data=(val, y_val), epochs=epochs, batch_size=32,
              verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=20,
                                                            restore_best_weights=True)])
    return lambda cols: model.predict(cols, verbose=0).argmax(axis=1)


def fastnn_embedding_mlp(train, y_train, val, y_val, n_classes, epochs, seed, dim=2):
    """The categorical columns as integer codes, each through its own learned Embedding (a
    ``dim``-wide vector per value, the tabular-MLP recipe), next to the numeric columns."""
    fastnn.set_seed(seed)
    fs = FeatureSpace(
        features={"island": FeatureSpace.string_categorical(output_mode="int"),
                  "sex": FeatureSpace.string_categorical(output_mode="int"),
                  "year": FeatureSpace.integer_categorical(output_mode="int"),
                  **{k: FeatureSpace.float_normalized(impute="mean", missing_indicator=True)
                     for k in NUMERIC}},
        output_mode="dict")
    fs.adapt(train)
    encoded = fs.get_encoded_features()
    names = sorted(encoded)
    parts = []
    for name in names:
        t = encoded[name]
        if name in CATEGORICAL:
            vocab = fs.features[name].preprocessor.vocabulary_size()
            t = layers.Flatten()(layers.Embedding(vocab, dim)(t))
        parts.append(t)
    h = layers.Concatenate()(parts)
    h = layers.Dense(64, activation="relu", kernel_initializer="he_normal")(h)
    h = layers.Dense(32, activation="relu", kernel_initializer="he_normal")(h)
    model = fastnn.Model(inputs=fs.get_inputs(),
                         outputs=layers.Dense(n_classes, activation="softmax")(h))
    model.compile(optimizer=fastnn.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(train, y_train, validation_data=(val, y_val), epochs=epochs, batch_size=32,
              verbose=0, callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=20,
                                                            restore_best_weights=True)])
    return lambda cols: model.predict(cols, verbose=0).argmax(axis=1)


def _frame(columns):
    """scikit-learn's pipelines take a 2-D object array: strings, None and floats."""
    names = CATEGORICAL + NUMERIC
    out = np.empty((len(columns[names[0]]), len(names)), object)
    for j, k in enumerate(names):
        col = columns[k]
        out[:, j] = [np.nan if v is None else v for v in col.tolist()] if col.dtype == object \
            else col
    return out


def _sklearn_preprocessing(one_hot):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
    cat = list(range(len(CATEGORICAL)))
    num = list(range(len(CATEGORICAL), len(CATEGORICAL) + len(NUMERIC)))
    if one_hot:  # the MLP: imputed, standardized, one-hot (unseen -> all zeros)
        return ColumnTransformer([
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore")), cat),
            ("num", make_pipeline(SimpleImputer(strategy="mean", add_indicator=True),
                                  StandardScaler()), num)])
    # the trees: ordinal codes for the categories (missing stays NaN), numbers as they are
    return ColumnTransformer([
        ("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                               encoded_missing_value=np.nan), cat),
        ("num", "passthrough", num)])


def sklearn_hgb(train, y_train, seed):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    model = make_pipeline(_sklearn_preprocessing(one_hot=False), HistGradientBoostingClassifier(
        categorical_features=list(range(len(CATEGORICAL))), random_state=seed))
    model.fit(_frame(train).astype(object), y_train)
    return lambda cols: model.predict(_frame(cols))


def sklearn_mlp(train, y_train, seed):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    model = make_pipeline(_sklearn_preprocessing(one_hot=True), MLPClassifier(
        hidden_layer_sizes=(64, 32), learning_rate_init=1e-2, batch_size=32, max_iter=300,
        early_stopping=True, validation_fraction=0.2, n_iter_no_change=20, random_state=seed))
    model.fit(_frame(train), y_train)
    return lambda cols: model.predict(_frame(cols))


def main(repeats=5, small=False):
    """Train every model on ``repeats`` stratified 80/20 splits; returns {name: {"accuracy":
    [...], "seconds": [...]}} and prints a markdown table of the means."""
    import warnings
    columns, y, classes = load()
    epochs = 5 if small else 300
    results = {name: {"accuracy": [], "seconds": []}
               for name in ("fastnn MLP", "fastnn MLP + Embedding", "sklearn HistGradientBoosting",
                            "sklearn MLPClassifier")}
    for seed in range(repeats):
        rest, test = split_indices(len(y), 0.2, seed, y)
        tr, val = split_indices(len(rest), 0.2, seed + 1, y[rest])
        tr, val = rest[tr], rest[val]
        runs = {
            "fastnn MLP": lambda: fastnn_mlp(take(columns, tr), y[tr], take(columns, val), y[val],
                                             len(classes), epochs, seed),
            "fastnn MLP + Embedding": lambda: fastnn_embedding_mlp(
                take(columns, tr), y[tr], take(columns, val), y[val], len(classes), epochs, seed),
            # scikit-learn's early stopping holds out its own 20% of the rows it is given
            "sklearn HistGradientBoosting": lambda: sklearn_hgb(take(columns, rest), y[rest], seed),
            "sklearn MLPClassifier": lambda: sklearn_mlp(take(columns, rest), y[rest], seed),
        }
        for name, fit in runs.items():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLPClassifier's ConvergenceWarning in --small
                predict = fit()
            results[name]["seconds"].append(time.perf_counter() - t0)
            results[name]["accuracy"].append(float(np.mean(predict(take(columns, test)) == y[test])))
    base = np.mean(results["fastnn MLP"]["seconds"])
    print(f"Palmer penguins: {len(y)} rows, {len(classes)} species; {repeats} stratified 80/20 "
          f"splits (test rows: {len(test)}); fastnn {fastnn.__version__}, "
          f"{fastnn.get_num_threads()} threads\n")
    print("| model | test accuracy (mean, min-max) | training time | time / fastnn's |")
    print("|---|---|---|---|")
    for name, r in results.items():
        acc, sec = np.array(r["accuracy"]), np.mean(r["seconds"])
        print(f"| {name} | {acc.mean():.3f} ({acc.min():.3f}-{acc.max():.3f}) | "
              f"{sec * 1e3:.0f} ms | {sec / base:.2f}x |")
    return results


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="a few epochs: a smoke test")
    args = ap.parse_args()
    main(repeats=args.repeats, small=args.small)
