"""The core benchmark (issue 2): one epoch of the benchmark MLP.

784-512-256-10, ReLU, softmax cross-entropy, SGD, batch 128, float32, 60,000 random
MNIST-shaped samples. Prints fastnn's epoch time, the NumPy reference backend's and the
GEMM-only floor's, each as a ratio to the floor, all measured in this run.

    python bench/bench_mlp.py [--repeats 3] [--samples 60000]
"""
import argparse
import time


from common import best_of, gemm_floor_epoch, mnist_like

import fastnn
from fastnn import layers, optimizers

SIZES = [784, 512, 256, 10]


def build(optimizer="sgd"):
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(784,)),
                               layers.Dense(512, activation="relu"),
                               layers.Dense(256, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    opt = optimizers.SGD(0.01) if optimizer == "sgd" else optimizers.get(optimizer)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return model


def fastnn_epoch(x, y, batch_size, backend="c", optimizer="sgd"):
    fastnn.set_backend(backend)
    try:
        model = build(optimizer)
        model.fit(x[:batch_size * 2], y[:batch_size * 2], batch_size=batch_size, epochs=1, verbose=0)
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        return time.perf_counter() - t0
    finally:
        fastnn.set_backend("c")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    x, y = mnist_like(args.samples)
    bs = args.batch_size
    floor = best_of(lambda: gemm_floor_epoch(x, SIZES, bs), args.repeats)
    fast = best_of(lambda: fastnn_epoch(x, y, bs), args.repeats)
    ref = best_of(lambda: fastnn_epoch(x, y, bs, backend="numpy"), max(1, args.repeats - 1))
    print(f"benchmark MLP 784-512-256-10, ReLU, softmax CE, SGD, batch {bs}, float32, "
          f"{args.samples} samples, {fastnn.get_num_threads()} threads (best of {args.repeats})")
    print(f"{'':24}{'s/epoch':>10}{'x floor':>10}")
    for name, t in (("GEMM-only floor", floor), ("fastnn (C kernels)", fast),
                    ("fastnn NumPy reference", ref)):
        print(f"{name:24}{t:10.3f}{t / floor:10.2f}")
    print(f"fastnn is {ref / fast:.1f}x faster than its NumPy reference")


if __name__ == "__main__":
    main()
