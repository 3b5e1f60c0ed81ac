"""Optimizer update throughput (issue 3): one step on one float32 parameter of 1M and 10M
elements, for every optimizer, through ``Optimizer.apply`` (what training calls), against
the NumPy reference backend and torch.optim (``foreach``, and ``fused`` where it exists on
CPU), all measured in this run, same thread count; each figure is the best of --repeats
steps (the least-disturbed one on a shared machine).

GB/s counts the memory traffic the update must do: every array read once and every
written array written once (Adam: read w, g, m, v; write w, m, v = 7 x 4 bytes per
parameter). Also measures how much the update adds to an epoch of the benchmark MLP
(784-512-256-10, batch 128, Adam).

    python bench/bench_optimizers.py [--repeats 5] [--sizes 1000000 10000000] [--no-mlp]
"""
import argparse
import time

import numpy as np

from common import best_of, machine_description, median_of, mnist_like

import fastnn
from fastnn import layers, optimizers
from fastnn.layers.base import Variable

try:
    import torch
except ImportError:
    torch = None

# name, fastnn factory, arrays read + written per element, torch factory (or None)
CASES = [
    ("SGD+momentum", lambda: optimizers.SGD(0.01, momentum=0.9), 5,
     lambda p, **kw: torch.optim.SGD(p, lr=0.01, momentum=0.9, **kw)),
    ("Adam", lambda: optimizers.Adam(1e-3), 7, lambda p, **kw: torch.optim.Adam(p, lr=1e-3, **kw)),
    ("AdamW", lambda: optimizers.AdamW(1e-3), 7,
     lambda p, **kw: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.004, **kw)),
    ("Adamax", lambda: optimizers.Adamax(1e-3), 7, lambda p, **kw: torch.optim.Adamax(p, lr=1e-3, **kw)),
    ("Nadam", lambda: optimizers.Nadam(1e-3), 7,
     lambda p, **kw: torch.optim.NAdam(p, lr=1e-3, momentum_decay=1.0, **kw)),
    ("RMSprop", lambda: optimizers.RMSprop(1e-3), 5,
     lambda p, **kw: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, **kw)),
    ("Adagrad", lambda: optimizers.Adagrad(1e-3), 5, lambda p, **kw: torch.optim.Adagrad(p, lr=1e-3, **kw)),
]


def time_fastnn(make, n, repeats, backend):
    fastnn.set_backend(backend)
    try:
        rng = np.random.default_rng(0)
        v = Variable(rng.standard_normal(n, dtype=np.float32), "w")
        v.grad[...] = rng.standard_normal(n, dtype=np.float32)
        opt = make()
        opt.apply([v])  # build state, warm caches

        def once():
            t0 = time.perf_counter()
            opt.apply([v])
            return time.perf_counter() - t0
        return best_of(once, repeats)
    finally:
        fastnn.set_backend("c")


def time_torch(make, n, repeats, **kw):
    if torch is None or make is None:
        return None
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(n, generator=gen, dtype=torch.float32).requires_grad_(True)
    p.grad = torch.randn(n, generator=gen, dtype=torch.float32)
    try:
        opt = make([p], **kw)
        opt.step()
    except (RuntimeError, TypeError, ValueError):  # e.g. no fused CPU kernel for this one
        return None

    def once():
        t0 = time.perf_counter()
        opt.step()
        return time.perf_counter() - t0
    return best_of(once, repeats)


def mlp_update_share(samples, repeats, make_opt):
    """Seconds per epoch of Optimizer.apply alone on the benchmark MLP's variables vs the
    full epoch with that optimizer (batch 128)."""
    x, y = mnist_like(samples)
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(784,)), layers.Dense(512, activation="relu"),
                               layers.Dense(256, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=make_opt(), loss="sparse_categorical_crossentropy")
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)

    def epoch():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return time.perf_counter() - t0
    t_epoch = median_of(epoch, repeats)
    steps = -(-samples // 128)
    vars_ = model._train_vars

    def updates():
        t0 = time.perf_counter()
        for _ in range(steps):
            model.optimizer.apply(vars_)
        return time.perf_counter() - t0
    t_upd = median_of(updates, repeats)
    return t_epoch, t_upd, sum(v.value.size for v in vars_)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--no-mlp", action="store_true")
    ap.add_argument("--mlp-samples", type=int, default=60000)
    args = ap.parse_args()

    threads = fastnn.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    info = machine_description()
    print(f"# {info['cpu']}, {threads} threads, numpy {info['numpy']}, "
          f"torch {torch.__version__ if torch is not None else 'n/a'}")
    print("| optimizer | params | fastnn ms | GB/s | vs NumPy ref | vs torch foreach | vs torch fused |")
    print("|---|---|---|---|---|---|---|")

    def ratio(other, ours):
        return f"{other / ours:.1f}x" if other is not None else "n/a"

    for n in args.sizes:
        reps = args.repeats if n <= 2_000_000 else max(3, args.repeats // 2)
        for name, make, arrays, make_torch in CASES:
            t_c = time_fastnn(make, n, reps, "c")
            t_ref = time_fastnn(make, n, max(2, reps // 2), "numpy")
            t_foreach = time_torch(make_torch, n, reps, foreach=True)
            t_fused = time_torch(make_torch, n, reps, fused=True)
            gbs = arrays * 4 * n / t_c / 1e9
            print(f"| {name} | {n / 1e6:g}M | {t_c * 1e3:.2f} | {gbs:.1f} | {ratio(t_ref, t_c)} | "
                  f"{ratio(t_foreach, t_c)} | {ratio(t_fused, t_c)} |", flush=True)

    if not args.no_mlp:
        print()
        for name, make in (("SGD (bench_mlp's optimizer)", lambda: optimizers.SGD(0.01)),
                           ("Adam", lambda: optimizers.Adam(1e-3))):
            t_epoch, t_upd, nparams = mlp_update_share(args.mlp_samples, 3, make)
            print(f"benchmark MLP ({nparams} params, {name}, batch 128): epoch {t_epoch:.3f} s, "
                  f"optimizer updates {t_upd:.3f} s per epoch = {100 * t_upd / t_epoch:.1f}% "
                  "of the epoch", flush=True)


if __name__ == "__main__":
    main()
