"""The quiet cost of the thread policies, each in a fresh process (issue 17).

    python bench/thread_policies.py                 # batch 32 and 128, 5 rounds (~3 minutes)
    python bench/thread_policies.py --batches 128 --rounds 9

bench/adaptive_threads.py switches policies inside one process, so an epoch can start while
the previous policy's threads (OpenBLAS's, which spin for a while after their last product)
still hold a core; here every epoch runs in a process of its own that has only ever had one
policy: ``fixed`` (the BLAS's own threads, ``set_num_threads(n, adaptive=False)``) and
``adaptive`` (the default on several CPUs). Each process trains the benchmark MLP
(784-512-256-10, Adam) for a warm-up and then times 3 epochs of --rows rows and reports the
fastest; the rounds interleave the policies (order reversed every other round) and the
ratio printed is the median over rounds of adaptive / fixed within a round.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from common import header_lines

CHILD = """
import json, sys, time
import numpy as np
import fastnn
from fastnn import layers, optimizers
batch, rows, adaptive, threads = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", int(sys.argv[4])
fastnn.set_num_threads(threads, adaptive=adaptive)
fastnn.set_seed(0)
model = fastnn.Sequential([layers.Input(shape=(784,)), layers.Dense(512, activation="relu"),
                           layers.Dense(256, activation="relu"),
                           layers.Dense(10, activation="softmax")])
model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
x = rng.random((rows, 784), dtype=np.float32)
y = rng.integers(0, 10, rows)
model.fit(x[:batch * 16], y[:batch * 16], batch_size=batch, epochs=1, verbose=0)
best = float("inf")
for _ in range(3):
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best, "policy": fastnn.threads.policy()}))
"""


def epoch(batch, rows, adaptive, threads):
    out = subprocess.run([sys.executable, "-c", CHILD, str(batch), str(rows),
                          "1" if adaptive else "0", str(threads)],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["policy"] != ("adaptive" if adaptive else "fixed"):
        raise SystemExit(f"the child ran the {result['policy']} policy")
    return result["seconds"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="32,128")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = ap.parse_args()
    print("\n".join(header_lines()))
    print(f"\n{args.threads} threads; {args.rows} rows per epoch; fastest of 3 epochs per "
          f"process; {args.rounds} interleaved rounds\n")
    print("| batch | fixed s/epoch | adaptive s/epoch | adaptive / fixed (per round) |")
    print("|---|---|---|---|")
    t0 = time.perf_counter()
    for batch in (int(b) for b in args.batches.split(",")):
        times = {False: [], True: []}
        for r in range(args.rounds):
            for adaptive in ((False, True) if r % 2 == 0 else (True, False)):
                times[adaptive].append(epoch(batch, args.rows, adaptive, args.threads))
        fixed, adaptive = np.array(times[False]), np.array(times[True])
        ratios = adaptive / fixed
        print(f"| {batch} | {np.median(fixed):.3f} | {np.median(adaptive):.3f} | "
              f"{np.median(ratios):.2f}x (rounds {ratios.min():.2f}-{ratios.max():.2f}) |",
              flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
