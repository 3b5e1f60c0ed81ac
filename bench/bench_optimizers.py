"""Optimizer update throughput (issue 3): one step on one float32 parameter of 1M and 10M
elements, for every optimizer, through ``Optimizer.apply`` (what training calls), against
the NumPy reference backend and torch.optim (``foreach``, and ``fused`` where it exists on
CPU; PyTorch runs in a process of its own, bench/peers.py, and is skipped with a note when it
is not installed), all measured in this run, same thread count; each figure is the best of
--repeats steps (the least-disturbed one on a shared machine).

GB/s counts the memory traffic the update must do: every array read once and every
written array written once (Adam: read w, g, m, v; write w, m, v = 7 x 4 bytes per
parameter). Also measures how much the update adds to an epoch of the benchmark MLP
(784-512-256-10, batch 128, Adam).

    python bench/bench_optimizers.py [--repeats 5] [--sizes 1000000 10000000] [--no-mlp]
"""
import argparse
import time

import numpy as np

from common import (PeerError, benchmark_mlp, best_of, markdown_table, median_of,
                    mnist_like, print_header, start_peers)

import fastnn
from fastnn import optimizers
from fastnn.layers import Variable

# name, fastnn factory, arrays read + written per element (torch.optim's counterpart of each
# name: bench/peers.py, Torch.optim)
CASES = [
    ("SGD+momentum", lambda: optimizers.SGD(0.01, momentum=0.9), 5),
    ("Adam", lambda: optimizers.Adam(1e-3), 7),
    ("AdamW", lambda: optimizers.AdamW(1e-3), 7),
    ("Adamax", lambda: optimizers.Adamax(1e-3), 7),
    ("Nadam", lambda: optimizers.Nadam(1e-3), 7),
    ("RMSprop", lambda: optimizers.RMSprop(1e-3), 5),
    ("Adagrad", lambda: optimizers.Adagrad(1e-3), 5),
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


def time_torch(worker, name, n, repeats, variant):
    """Best step of torch.optim's ``name`` in the PyTorch worker; None without PyTorch or
    without that variant on the CPU."""
    if worker is None:
        return None
    try:
        return worker.ask(cmd="optim", name=name, n=n, repeats=repeats, variant=variant)["seconds"]
    except PeerError as exc:
        print(f"note: {exc}", flush=True)
        return None


def mlp_update_share(samples, repeats, make_opt):
    """Seconds per epoch of Optimizer.apply alone on the benchmark MLP's variables vs the
    full epoch with that optimizer (batch 128)."""
    x, y = mnist_like(samples)
    model = benchmark_mlp(optimizer=make_opt())
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)

    def epoch():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return time.perf_counter() - t0
    t_epoch = median_of(epoch, repeats)
    steps = -(-samples // 128)
    # one list for every call, as fit does: the optimizer then finds the packed buffer once
    vars_ = model.trainable_variables

    def updates():
        t0 = time.perf_counter()
        for _ in range(steps):
            model.optimizer.apply(vars_)
        return time.perf_counter() - t0
    t_upd = median_of(updates, repeats)
    return t_epoch, t_upd, sum(v.value.size for v in vars_)


def ratio(other, ours):
    return f"{other / ours:.1f}x" if other is not None else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--no-mlp", action="store_true")
    ap.add_argument("--mlp-samples", type=int, default=60000)
    args = ap.parse_args()

    threads = fastnn.get_num_threads()
    print_header()
    workers = start_peers(["torch"], threads)
    worker = workers.get("torch")
    rows = []
    try:
        for n in args.sizes:
            reps = args.repeats if n <= 2_000_000 else max(3, args.repeats // 2)
            for name, make, arrays in CASES:
                t_c = time_fastnn(make, n, reps, "c")
                t_ref = time_fastnn(make, n, max(2, reps // 2), "numpy")
                t_foreach = time_torch(worker, name, n, reps, "foreach")
                t_fused = time_torch(worker, name, n, reps, "fused")
                gbs = arrays * 4 * n / t_c / 1e9
                rows.append([name, f"{n / 1e6:g}M", f"{t_c * 1e3:.2f}", f"{gbs:.1f}",
                             ratio(t_ref, t_c), ratio(t_foreach, t_c), ratio(t_fused, t_c)])
                print(" | ".join(rows[-1]), flush=True)
    finally:
        if worker is not None:
            worker.close()
    print()
    print(f"{threads} threads; \"vs\": how many times longer the other's step takes")
    print()
    print(markdown_table(["optimizer", "params", "fastnn ms", "GB/s", "vs NumPy ref",
                          "vs torch foreach", "vs torch fused"], rows))

    if not args.no_mlp:
        rows = []
        for name, make in (("SGD (bench_mlp's optimizer)", lambda: optimizers.SGD(0.01)),
                           ("Adam", lambda: optimizers.Adam(1e-3))):
            t_epoch, t_upd, nparams = mlp_update_share(args.mlp_samples, 3, make)
            rows.append([name, nparams, f"{t_epoch:.3f}", f"{t_upd:.3f}",
                         f"{100 * t_upd / t_epoch:.1f}%"])
        print()
        print(f"The update's share of an epoch of the benchmark MLP (batch 128, "
              f"{args.mlp_samples} rows, median of 3):")
        print()
        print(markdown_table(["optimizer", "params", "epoch s", "updates s per epoch",
                              "share of the epoch"], rows))


if __name__ == "__main__":
    main()
