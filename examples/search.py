"""Coarse-to-fine random search over the learning rate and the L2 strength on the digits,
the recipe of a course on training deep networks:

1. Coarse: sample both from wide log-uniform ranges (learning rate 1e-4..3, L2 1e-6..1e-1),
   train each model a few epochs only; StopOnDivergence ends a run whose loss blows up in
   its first batches, so a hopeless learning rate costs almost nothing.
2. Fine: sample again, ten times narrower, around the coarse winner, with more epochs.
3. Both rounds are drawn with fastnn.plot.search (score over the two hyperparameters on log
   axes) into examples/figures/search_coarse.png and search_fine.png.

Each round's trials run in parallel on a Dask ``LocalCluster`` (two worker processes of one
thread each; ``pip install fastnn[search]``), or serially, saying so, when dask is missing.
Every trial trains on one thread with its own seed, drawn up front with its hyperparameters,
so a trial's result does not depend on where or in which order it runs: parallel and serial
searches give the same numbers, bit for bit.

Run: ``python examples/search.py`` (about 10 s, most of it starting the cluster and
drawing; matplotlib for the figures).
"""
import math
import os
import sys
import time

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


def trial(data, learning_rate, l2, epochs, seed):
    """Train one model; its score is the last validation loss (inf for a diverged run)."""
    (x, y), (x_val, y_val) = data
    # One thread: the workers already share the cores, and a result is reproducible only
    # for a given thread count (the order of a parallel sum changes its last bits).
    fastnn.set_num_threads(1)
    fastnn.set_seed(seed)
    stop = callbacks.StopOnDivergence(factor=3.0)
    history = build(learning_rate, l2).fit(x, y, batch_size=32, epochs=epochs, verbose=0,
                                           validation_data=(x_val, y_val), callbacks=[stop])
    val = history.history.get("val_loss", [math.inf])[-1]
    diverged = stop.diverged or not math.isfinite(val)
    return {"learning_rate": learning_rate, "l2": l2, "seed": seed,
            "epochs": len(history.epoch), "diverged": diverged,
            "val_loss": math.inf if diverged else float(val),
            "val_accuracy": float(history.history.get("val_accuracy", [0.0])[-1])}


def sample(n, lr_range, l2_range, epochs, rng):
    """``n`` trials' arguments: both hyperparameters log-uniform in their (low, high)
    ranges, and a seed each (drawn here, not in the workers, so the search is reproducible)."""
    trials = []
    for _ in range(n):
        lr = float(10 ** rng.uniform(*np.log10(lr_range)))
        l2 = float(10 ** rng.uniform(*np.log10(l2_range)))
        trials.append({"learning_rate": lr, "l2": l2, "epochs": epochs,
                       "seed": int(rng.integers(2 ** 31))})
    return trials


def run(data, trials, client=None):
    """The trials' results, in order: on the Dask ``client``'s workers, or here, serially."""
    if client is None:
        threads = fastnn.get_num_threads()
        try:
            return [trial(data, **t) for t in trials]
        finally:
            fastnn.set_num_threads(threads)  # trial() set 1 thread in this process
    # The workers may not be able to import this script: its functions must travel to them
    # by value. cloudpickle does so for __main__ and for a module loaded from its path
    # without sys.modules (the tests); an imported one has to be registered.
    if __name__ != "__main__" and __name__ in sys.modules:
        import cloudpickle
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
    # sent once to each worker, not with every trial; under a fresh key (hash=False), since
    # the previous round's copy of the same data may still be being released
    [data] = client.scatter([data], broadcast=True, hash=False)
    futures = [client.submit(trial, data, **t, pure=False) for t in trials]
    return client.gather(futures)


def search(data, client=None, small=False, seed=0):
    """The coarse round then the fine one: (coarse results, fine results)."""
    rng = np.random.default_rng(seed)
    coarse_n, fine_n, coarse_epochs, fine_epochs = (6, 4, 1, 2) if small else (20, 12, 3, 10)
    coarse = run(data, sample(coarse_n, (1e-4, 3.0), (1e-6, 1e-1), coarse_epochs, rng), client)
    best = min(coarse, key=lambda r: r["val_loss"])
    print(f"coarse: {coarse_n} trials of {coarse_epochs} epochs, "
          f"{sum(r['diverged'] for r in coarse)} diverged and stopped early; best "
          f"learning_rate={best['learning_rate']:.3g}, l2={best['l2']:.3g} "
          f"(val_loss {best['val_loss']:.4f})")
    # ten times narrower than the coarse ranges, centred (in log space) on the winner
    lr_c, l2_c = best["learning_rate"], best["l2"]
    fine = run(data, sample(fine_n, (lr_c / 3, lr_c * 3), (l2_c / 3, l2_c * 3), fine_epochs, rng),
               client)
    best = min(fine, key=lambda r: r["val_loss"])
    print(f"fine: {fine_n} trials of {fine_epochs} epochs; best "
          f"learning_rate={best['learning_rate']:.3g}, l2={best['l2']:.3g} "
          f"(val_loss {best['val_loss']:.4f}, val_accuracy {best['val_accuracy']:.3f})")
    return coarse, fine


def timed(f, *args):
    start = time.perf_counter()
    return f(*args), time.perf_counter() - start


def main(small=False, out=OUT, seed=0, parallel=True, client=None):
    """``client``: a dask.distributed Client to run the trials on; without one, a 2-worker
    LocalCluster is started for the search when ``parallel`` (and dask is installed).
    ``out=None``: no figures."""
    (x, y), (x_test, y_test) = load_digits()
    if small:  # a subset keeps the tests' search to a few seconds
        x, y = x[:600], y[:600]
    split = int(len(x) * 0.8)
    data = ((x[:split], y[:split]), (x[split:], y[split:]))
    if client is None and parallel:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as e:
            print(f"dask is not installed (pip install fastnn[search]; {e})")
            parallel = False
    if client is not None:
        print(f"trials run in parallel on the Dask cluster at {client.scheduler.address}")
        (coarse, fine), seconds = timed(search, data, client, small, seed)
    elif parallel:
        start = time.perf_counter()
        # processes, not threads: the training loop's Python code holds the GIL
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as local:
            print(f"trials run in parallel on a Dask LocalCluster (2 workers, 1 thread each; "
                  f"started in {time.perf_counter() - start:.1f} s)")
            (coarse, fine), seconds = timed(search, data, local, small, seed)
    else:
        print("trials run serially, one thread each")
        (coarse, fine), seconds = timed(search, data, None, small, seed)
    print(f"search: {seconds:.1f} s wall time")
    best = min(fine, key=lambda r: r["val_loss"])
    fastnn.set_seed(seed)
    final = build(best["learning_rate"], best["l2"])
    final.fit(x, y, batch_size=32, epochs=best["epochs"], verbose=0)
    test_accuracy = float(final.evaluate(x_test, y_test, verbose=0)[1])
    print(f"test accuracy {test_accuracy:.3f}")
    if out is not None:
        try:
            from fastnn import plot
            os.makedirs(out, exist_ok=True)
            for name, results in (("search_coarse", coarse), ("search_fine", fine)):
                plot.search(results, x="learning_rate", y="l2", score="val_loss").savefig(
                    os.path.join(out, name + ".png"), dpi=80)
            print(f"figures written to {out}")
        except ImportError as e:  # matplotlib is optional
            print(f"no figures: {e}")
    return {"coarse": coarse, "fine": fine, "best": best, "test_accuracy": test_accuracy,
            "search_seconds": seconds}


if __name__ == "__main__":
    main()
