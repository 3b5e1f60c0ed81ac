"""Training on a busy machine: the fixed thread policy against the adaptive one (issue 17).

    python bench/adaptive_threads.py               # about 10-15 minutes on 2 busy cores
    python bench/adaptive_threads.py --rounds 1 --steps 8   # a smoke run

Three workloads (the benchmark MLP 784-512-256-10 with Adam at batch 32 and 128, the tabular
net 20-64-64-2 at batch 32), each timed as an epoch of --steps batches (8x as many for the
tabular net), with 0, 1 and 2 competing busy processes per core (busy loops pinned to each
core, which this script starts and stops: bench/contention.py's Spinners), in this one
process, under three policies:
``fixed-N`` (the BLAS's own N threads, N = the CPUs), ``fixed-1`` (one thread) and
``adaptive`` (the default on several CPUs: fastnn/threads.py). Rounds
interleave everything (each round runs every load, policy and workload once, the order of
the policies rotating), and every figure is a median over rounds of a ratio measured within
one round. Wall time and the process's CPU time are both printed: CPU time shows the work
done (spinning threads included), wall time what the user waits.

The figure the issue sets: under one busy process per core (the "1 busy" column), the epoch
time at most 2.4x the quiet one (a fair share of the cores is 2x) at batch 32 and 128.
"""
import argparse
import os
import sys
import time

import numpy as np

from common import USER_CPUS, machine_description
from contention import Spinners

import fastnn
from fastnn import layers, optimizers, threads

WORKLOADS = {  # name: (sizes, batch, epoch length in units of --steps)
    "mlp b32": ((784, 512, 256, 10), 32, 1),
    "mlp b128": ((784, 512, 256, 10), 128, 1),
    # its steps are ~50x cheaper: a longer epoch, so that one descheduling does not decide it
    "tabular b32": ((20, 64, 64, 2), 32, 8),
}


def cpu_summary():
    """lscpu's model name and the SIMD flags that decide the kernels (from /proc/cpuinfo)."""
    model, flags = "?", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "?":
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    simd = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl",
                        "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return model, simd


def make_model(sizes, seed=0):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input(shape=(sizes[0],))])
    for units in sizes[1:-1]:
        model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dense(sizes[-1], activation="softmax"))
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def set_policy(name, cpus):
    if name == "adaptive":
        fastnn.set_num_threads(cpus, adaptive=True)
    else:
        fastnn.set_num_threads(int(name.split("-")[1]), adaptive=False)


def epoch(model, x, y, batch):
    """(wall, CPU) seconds of one epoch over x."""
    w0, c0 = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return time.perf_counter() - w0, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=32, help="batches per timed epoch")
    ap.add_argument("--loads", default="0,1,2", help="busy processes per core")
    args = ap.parse_args()
    loads = [int(v) for v in args.loads.split(",")]
    if loads[0] != 0:
        raise SystemExit("--loads must start with 0 (the quiet reference)")
    cpus = fastnn.get_num_threads()
    policies = [f"fixed-{cpus}", "fixed-1", "adaptive"] if cpus > 1 else ["fixed-1", "adaptive"]

    model_name, simd = cpu_summary()
    mach = machine_description()
    print(f"cpu: {model_name}; {cpus} CPUs for this process; SIMD flags: {' '.join(simd)}")
    print(f"numpy {mach['numpy']}, BLAS: {mach['blas']}; fastnn backend {fastnn.backend.backend()}")
    try:
        print(f"load average before: {os.getloadavg()}")
    except OSError:
        pass

    rng = np.random.default_rng(0)
    data, models = {}, {}
    for name, (sizes, batch, length) in WORKLOADS.items():
        n = batch * args.steps * length
        data[name] = (rng.random((n, sizes[0]), dtype=np.float32),
                      rng.integers(0, sizes[-1], n))
        models[name] = make_model(sizes)
    # times[(workload, policy, load)] = [(wall, cpu) per round]
    times = {}
    decisions = {}
    for r in range(args.rounds):
        for load in loads:
            busy = Spinners(load, USER_CPUS)
            try:
                order = policies[r % len(policies):] + policies[:r % len(policies)]
                for policy in order:
                    set_policy(policy, cpus)
                    for name, (sizes, batch, _) in WORKLOADS.items():
                        x, y = data[name]
                        # warm-up: buffers, and the adaptive policy's first measurements
                        epoch(models[name], x[:batch * 8], y[:batch * 8], batch)
                        times.setdefault((name, policy, load), []).append(
                            epoch(models[name], x, y, batch))
                    if policy == "adaptive":
                        decisions[load] = threads.adaptive_policy().decisions()
            finally:
                busy.stop()
            print(f"round {r + 1}/{args.rounds}, {load} busy: done", flush=True)
    fastnn.set_num_threads(cpus)

    def ratio(name, policy, load, which):
        base = times[(name, policy, 0)]
        return float(np.median([t[which] / b[which]
                                for t, b in zip(times[(name, policy, load)], base)]))

    def med(name, policy, load, which):
        return float(np.median([t[which] for t in times[(name, policy, load)]]))

    try:
        print(f"load average after: {os.getloadavg()}")
    except OSError:
        pass
    print(f"\nEpochs of {args.steps} batches ({8 * args.steps} for the tabular net); medians over {args.rounds} rounds; ratios are "
          "loaded/quiet within a round (wall, and CPU time in brackets).")
    head = ["workload", "policy", "quiet wall ms", "quiet CPU ms"] + \
        [f"{k} busy / quiet" for k in loads[1:]] + [f"vs fixed-{cpus} quiet"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in WORKLOADS:
        for policy in policies:
            row = [name, policy, f"{1e3 * med(name, policy, 0, 0):.0f}",
                   f"{1e3 * med(name, policy, 0, 1):.0f}"]
            row += [f"{ratio(name, policy, k, 0):.2f}x ({ratio(name, policy, k, 1):.2f}x)"
                    for k in loads[1:]]
            ref = policies[0]
            row.append(f"{med(name, policy, 0, 0) / med(name, ref, 0, 0):.2f}x")
            print("| " + " | ".join(row) + " |")
    # the loaded epochs against the quiet epoch of the best policy: what a user sees
    print("\nLoaded epoch over the quiet epoch of the fastest quiet policy (wall):")
    for name in WORKLOADS:
        best = min(med(name, p, 0, 0) for p in policies)
        cells = [f"{p}: " + ", ".join(f"{k} busy {med(name, p, k, 0) / best:.2f}x" for k in loads[1:])
                 for p in policies]
        print(f"  {name}: " + "; ".join(cells))
    print("\nAdaptive decisions per (m, k, n, dtype, a C-contiguous, b C-contiguous):")
    for load, d in decisions.items():
        print(f"  {load} busy: " + ", ".join(f"{k[:3]}{'' if k[4] else 'T'}{'' if k[5] else 'T'}"
                                             f"={v}" for k, v in sorted(d.items())))


if __name__ == "__main__":
    sys.exit(main())
