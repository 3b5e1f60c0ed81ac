"""Frozen layers cost nothing backward (issue 5): one epoch of the benchmark MLP
(784-512-256-10, ReLU, softmax CE, Adam, batch 128, float32) with nothing frozen, with the
first Dense frozen, and with both hidden layers frozen (only the head trains). Backprop stops
below the lowest trainable layer and frozen weights get no gradient or update, so the time
falls with every frozen layer. Ratios to the unfrozen epoch, measured in this run.

    python bench/bench_frozen.py [--repeats 3] [--samples 60000]
"""
import argparse
import time

from common import median_of, mnist_like

import fastnn
from fastnn import layers, optimizers


def epoch_time(x, y, frozen, repeats):
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(784,)), layers.Dense(512, activation="relu"),
                               layers.Dense(256, activation="relu"), layers.Dense(10, activation="softmax")])
    for layer in model.layers[:frozen]:
        layer.trainable = False
    model.compile(optimizer=optimizers.Adam(), loss="sparse_categorical_crossentropy")
    model.fit(x[:512], y[:512], batch_size=128, verbose=0)

    def run():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, verbose=0)
        return time.perf_counter() - t0
    return median_of(run, repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000)
    args = p.parse_args()
    x, y = mnist_like(args.samples)
    base = epoch_time(x, y, 0, args.repeats)
    print(f"{'frozen layers':36}{'s/epoch':>10}{'x unfrozen':>12}")
    for frozen, label in ((0, "none"), (1, "Dense(512)"), (2, "Dense(512), Dense(256): head only")):
        t = base if frozen == 0 else epoch_time(x, y, frozen, args.repeats)
        print(f"{label:36}{t:10.3f}{t / base:12.2f}")


if __name__ == "__main__":
    main()
