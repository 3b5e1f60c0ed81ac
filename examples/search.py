"""Coarse-to-fine random search over the learning rate and the L2 strength on the digits,
the recipe of a course on training deep networks:

1. Coarse: sample both from wide log-uniform ranges (learning rate 1e-4..3, L2 1e-6..1e-1),
   train each model a few epochs only; StopOnDivergence ends a run whose loss blows up in
   its first batches, so a hopeless learning rate costs almost nothing.
2. Fine: sample again, ten times narrower, around the coarse winner, with more epochs.
3. Both rounds are drawn with fastnn.plot.search (score over the two hyperparameters on log
   axes) into examples/figures/search_coarse.png and search_fine.png.

The trials run one after another (each trains on both cores already); Dask or Optuna could
spread them over machines, which this small example does not need.

Run: ``python examples/search.py`` (about 30 s; matplotlib for the figures).
"""
import math
import os

import numpy as np

import fastnn
from fastnn import callbacks, layers, optimizers, regularizers
from fastnn.datasets import load_digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def build(learning_rate, l2):
    model = fastnn.Sequential([
        layers.Input(shape=(64,)),
        layers.Dense(128, activation="relu", kernel_initializer="he_normal",
                     kernel_regularizer=regularizers.l2(l2)),
        layers.Dense(10, activation="softmax", kernel_regularizer=regularizers.l2(l2))])
    model.compile(optimizer=optimizers.SGD(learning_rate, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def trial(data, learning_rate, l2, epochs, seed=0):
    """Train one model; its score is the last validation loss (inf for a diverged run)."""
    (x, y), (x_val, y_val) = data
    fastnn.set_seed(seed)
    stop = callbacks.StopOnDivergence(factor=3.0)
    history = build(learning_rate, l2).fit(x, y, batch_size=32, epochs=epochs, verbose=0,
                                           validation_data=(x_val, y_val), callbacks=[stop])
    val = history.history.get("val_loss", [math.inf])[-1]
    diverged = stop.diverged or not math.isfinite(val)
    return {"learning_rate": learning_rate, "l2": l2, "epochs": len(history.epoch),
            "diverged": diverged, "val_loss": math.inf if diverged else float(val),
            "val_accuracy": float(history.history.get("val_accuracy", [0.0])[-1])}


def random_search(data, n, lr_range, l2_range, epochs, rng):
    """``n`` trials, both hyperparameters log-uniform in their (low, high) ranges."""
    results = []
    for _ in range(n):
        lr = float(10 ** rng.uniform(*np.log10(lr_range)))
        l2 = float(10 ** rng.uniform(*np.log10(l2_range)))
        results.append(trial(data, lr, l2, epochs))
    return results


def main(small=False, out=OUT, seed=0):
    (x, y), (x_test, y_test) = load_digits()
    split = int(len(x) * 0.8)
    data = ((x[:split], y[:split]), (x[split:], y[split:]))
    rng = np.random.default_rng(seed)
    coarse_n, fine_n, coarse_epochs, fine_epochs = (6, 4, 1, 2) if small else (20, 12, 3, 10)
    print("trials run serially (a Dask or Optuna study could spread them over workers)")
    coarse = random_search(data, coarse_n, (1e-4, 3.0), (1e-6, 1e-1), coarse_epochs, rng)
    best = min(coarse, key=lambda r: r["val_loss"])
    print(f"coarse: {coarse_n} trials of {coarse_epochs} epochs, "
          f"{sum(r['diverged'] for r in coarse)} diverged and stopped early; best "
          f"learning_rate={best['learning_rate']:.3g}, l2={best['l2']:.3g} "
          f"(val_loss {best['val_loss']:.4f})")
    # ten times narrower than the coarse ranges, centred (in log space) on the winner
    lr_c, l2_c = best["learning_rate"], best["l2"]
    fine = random_search(data, fine_n, (lr_c / 3, lr_c * 3), (l2_c / 3, l2_c * 3), fine_epochs, rng)
    best_fine = min(fine, key=lambda r: r["val_loss"])
    print(f"fine: {fine_n} trials of {fine_epochs} epochs; best "
          f"learning_rate={best_fine['learning_rate']:.3g}, l2={best_fine['l2']:.3g} "
          f"(val_loss {best_fine['val_loss']:.4f}, val_accuracy {best_fine['val_accuracy']:.3f})")
    fastnn.set_seed(seed)
    final = build(best_fine["learning_rate"], best_fine["l2"])
    final.fit(x, y, batch_size=32, epochs=fine_epochs, verbose=0)
    test_accuracy = float(final.evaluate(x_test, y_test, verbose=0)[1])
    print(f"test accuracy {test_accuracy:.3f}")
    try:
        from fastnn import plot
        os.makedirs(out, exist_ok=True)
        for name, results in (("search_coarse", coarse), ("search_fine", fine)):
            plot.search(results, x="learning_rate", y="l2", score="val_loss").savefig(
                os.path.join(out, name + ".png"), dpi=80)
        print(f"figures written to {out}")
    except ImportError as e:  # matplotlib is optional
        print(f"no figures: {e}")
    return {"coarse": coarse, "fine": fine, "best": best_fine, "test_accuracy": test_accuracy}


if __name__ == "__main__":
    main()
