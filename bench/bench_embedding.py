"""Embedding: the C lookup and scatter-add against their NumPy reference (np.take and
np.add.at), on one and two threads, and what an Embedding front costs a tabular MLP's epoch.

Kernels, for a batch of tabular codes (batch x columns) and tables of a categorical column's
size and of a large vocabulary: the time of the reference over the C kernel (x faster), and
of one C thread over two. Epoch: a model codes -> Embedding(vocab, dim) -> Flatten ->
Dense(64) -> Dense(1) against the same MLP reading already-embedded floats of the same width
(n, columns * dim): the ratio is what the lookup, its scatter-add and the table's update add.
Every figure is a ratio between runs made in this process.

    python bench/bench_embedding.py [--repeats 5] [--samples 100000]
"""
import argparse
import time

import numpy as np
from common import best_of, median_of

import fastnn
from fastnn import layers, ops, optimizers


def kernel_ratios(batch, columns, vocab, dim, repeats):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((vocab, dim)).astype(np.float32)
    codes = rng.integers(0, vocab, (batch, columns)).astype(np.float32)
    dY = rng.standard_normal((batch, columns, dim)).astype(np.float32)
    out = np.empty((batch, columns, dim), np.float32)
    index = np.empty((batch, columns), np.int64)
    dW = np.empty_like(W)
    C, R = ops.COps(), ops.NumpyOps()

    def timed(fn, calls=20):
        def run():
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            return (time.perf_counter() - t0) / calls
        return best_of(run, repeats)

    rows = []
    for name, c1, c2, ref in (
            ("embedding_forward",
             lambda: C.embedding_forward(codes, W, out, index, n_threads=1),
             lambda: C.embedding_forward(codes, W, out, index, n_threads=2),
             lambda: R.embedding_forward(codes, W, out, index)),
            ("embedding_backward",
             lambda: C.embedding_backward(dY, index, vocab, dW, n_threads=1),
             lambda: C.embedding_backward(dY, index, vocab, dW, n_threads=2),
             lambda: R.embedding_backward(dY, index, vocab, dW))):
        t1, t2, tr = timed(c1), timed(c2), timed(ref)
        rows.append((name, t1, tr / t1, t1 / t2))
    return rows


def epoch_ratio(samples, columns, vocab, dim, repeats):
    rng = np.random.default_rng(1)
    codes = rng.integers(0, vocab, (samples, columns))
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    embedded = table[codes].reshape(samples, columns * dim)
    y = rng.standard_normal(samples).astype(np.float32)

    def model(front):
        fastnn.set_seed(0)
        m = fastnn.Sequential(front + [layers.Dense(64, activation="relu"), layers.Dense(1)])
        m.compile(optimizers.Adam(), "mse")
        return m

    with_embedding = model([layers.Input(shape=(columns,)), layers.Embedding(vocab, dim),
                            layers.Flatten()])
    plain = model([layers.Input(shape=(columns * dim,))])

    def epoch(m, x):
        m.fit(x[:1024], y[:1024], batch_size=256, verbose=0)  # buffers and state allocated

        def run():
            t0 = time.perf_counter()
            m.fit(x, y, batch_size=256, verbose=0)
            return time.perf_counter() - t0
        return median_of(run, repeats)
    t_plain = epoch(plain, embedded)
    t_embedding = epoch(with_embedding, codes)
    return t_plain, t_embedding


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--samples", type=int, default=100000)
    args = p.parse_args()
    if ops.COps is None:
        raise SystemExit("the C extension is not built")
    print(f"{'kernel (batch 256 x 8 codes)':34}{'table':>14}{'C us':>10}{'x ref':>8}{'1t/2t':>8}")
    for vocab, dim in ((1000, 16), (200000, 32)):
        for name, t1, speedup, threads in kernel_ratios(256, 8, vocab, dim, args.repeats):
            print(f"{name:34}{f'{vocab} x {dim}':>14}{t1 * 1e6:10.1f}{speedup:8.1f}{threads:8.2f}")
    t_plain, t_embedding = epoch_ratio(args.samples, 8, 1000, 16, args.repeats)
    print(f"\nepoch, {args.samples} rows x 8 columns, Embedding(1000, 16) front: "
          f"{t_embedding:.3f} s, {t_embedding / t_plain:.2f}x the same MLP on embedded floats "
          f"({t_plain:.3f} s)")


if __name__ == "__main__":
    main()
