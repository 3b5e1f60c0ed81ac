"""The cost of watching training: an epoch of the benchmark MLP (784-512-256-10, Adam,
batch 128) with `callbacks.TrainingMonitor()` against the same epoch without it, in
alternating rounds in one process (issue 15's target: at most 3% more).

    python bench/bench_monitor.py              # 20,000 rows, 7 rounds
"""
import argparse
import json
import statistics
import time
import warnings

from common import (benchmark_mlp, machine_description, markdown_table, mnist_like,
                    print_header)

from fastnn import callbacks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    machine = machine_description()
    print_header(machine)
    x, y = mnist_like(args.rows)
    models = {"plain": benchmark_mlp(), "monitored": benchmark_mlp()}
    for m in models.values():
        m.fit(x[:1024], y[:1024], batch_size=128, verbose=0)
    ratios = []
    for r in range(args.rounds):
        times = {}
        for name in (("plain", "monitored") if r % 2 == 0 else ("monitored", "plain")):
            cbs = [callbacks.TrainingMonitor()] if name == "monitored" else []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # random data: the monitor may warn
                t0 = time.perf_counter()
                models[name].fit(x, y, batch_size=128, epochs=1, verbose=0, callbacks=cbs)
                times[name] = time.perf_counter() - t0
        ratios.append(times["monitored"] / times["plain"])
        print(f"round {r + 1}: plain {times['plain']:.2f} s, monitored {times['monitored']:.2f} s, "
              f"ratio {ratios[-1]:.3f}", flush=True)
    print(json.dumps({"machine": machine, "rows": args.rows, "ratios": ratios}))
    print()
    print(markdown_table(["", "median over rounds", "range", "target"],
                         [["monitored / plain epoch", f"{statistics.median(ratios):.3f}x",
                           f"{min(ratios):.3f}-{max(ratios):.3f}x", "<= 1.03x"]]))


if __name__ == "__main__":
    main()
