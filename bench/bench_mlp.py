"""The core benchmark (issue 2): one epoch of the benchmark MLP.

784-512-256-10, ReLU, softmax cross-entropy, SGD, batch 128, float32, 60,000 random
MNIST-shaped samples. Prints fastnn's epoch time, the NumPy reference backend's and the
GEMM-only floor's, each as a ratio to the floor, all measured in this run.

    python bench/bench_mlp.py [--repeats 3] [--samples 60000]
"""
import argparse

from common import (benchmark_mlp, best_of, fastnn_runner, gemm_floor_epoch, markdown_table,
                    mnist_like, print_header)

import fastnn

SIZES = [784, 512, 256, 10]


def fastnn_epoch(x, y, batch_size, backend="c", optimizer="sgd"):
    """Seconds of one epoch after a warm-up fit (``backend`` "numpy": the NumPy reference)."""
    return fastnn_runner(benchmark_mlp(optimizer), x, y, batch_size, backend)()["wall"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    print_header()
    x, y = mnist_like(args.samples)
    bs = args.batch_size
    floor = best_of(lambda: gemm_floor_epoch(x, SIZES, bs,
                                             blas_threads=fastnn.get_num_threads()),
                    args.repeats)
    fast = best_of(lambda: fastnn_epoch(x, y, bs), args.repeats)
    ref = best_of(lambda: fastnn_epoch(x, y, bs, backend="numpy"), max(1, args.repeats - 1))
    print(f"Benchmark MLP 784-512-256-10, ReLU, softmax CE, SGD, batch {bs}, float32, "
          f"{args.samples} samples, {fastnn.get_num_threads()} threads (best of {args.repeats}):")
    print()
    print(markdown_table(["", "s/epoch", "x floor"],
                         [[name, f"{t:.3f}", f"{t / floor:.2f}x"]
                          for name, t in (("GEMM-only floor", floor), ("fastnn (C kernels)", fast),
                                          ("fastnn NumPy reference", ref))]))
    print()
    print(f"fastnn is {ref / fast:.1f}x faster than its NumPy reference")


if __name__ == "__main__":
    main()
