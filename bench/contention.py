"""Training on a busy machine (issue 17): each system's epoch time with 1 and 2 competing busy
processes per core, over its time on the quiet machine, from one run.

    python bench/contention.py             # 20,000 rows, 3 rounds (about 8 minutes on 2 cores)
    python bench/contention.py --quick     # 5,000 rows, 2 rounds (about 2 minutes)
    python bench/contention.py --systems fastnn,floor --loads 0,1 --cases mlp128

Workloads: the benchmark MLP (784-512-256-10, Adam) at batch 32 and 128 and the tabular net
20-64-64-2 at batch 32 (bench/common.py: WORKLOADS). Systems: fastnn (its default thread
policy, adaptive on several CPUs), fastnn under the fixed policy (the BLAS's own threads),
the numpy GEMM floor, PyTorch eager and JAX (a jit train step and the scanned epoch; JAX is skipped with a note when
it is not installed), each in a process of its own (bench/peers.py) with --threads threads
(default: every CPU this process may use), none pinned: the scheduler shares the cores as it
would with any other job.

The competing load: pure CPU spinners (``while True: pass``, one Python process each) that
this script starts and stops itself, ``load`` of them pinned to each core. The rounds are
interleaved: each round runs every load level (order reversed every other round), and within
a level every system once (order reversed every other round too), so a slow spell of the
machine falls on every system and level alike. The ratio printed for a system and a load is
the median over rounds of (its epoch under that load / its quiet epoch in the same round).
A fair share of a core under 1 spinner per core is half of it: 2x is the ideal ratio there.
"""
import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from common import (PEER_LABELS, USER_CPUS, WORKLOADS, PeerError, header_lines,
                    machine_description, markdown_table, print_header, start_peers)

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEMS = ("fastnn", "fastnn_fixed", "floor", "torch", "jax_step", "jax_scan")
CASES = ("mlp32", "mlp128", "tabular")


def _die_with_parent():
    """In a spinner, before exec: be killed when this script dies, however it dies."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Spinners:
    """``per_core`` busy processes pinned to each of ``cpus``, running until ``stop()``."""

    def __init__(self, per_core, cpus):
        self.procs = []
        for cpu in cpus:
            for _ in range(per_core):
                def pre(cpu=cpu):
                    _die_with_parent()
                    os.sched_setaffinity(0, {cpu})
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-S", "-c", f"while True: pass  # spinner of {os.getpid()}"],
                    preexec_fn=pre,
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        if self.procs:
            time.sleep(0.3)  # running, not starting, when the timed epoch begins

    def stop(self):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


def run(args, results):
    systems = [s for s in args.systems.split(",") if s]
    loads = [int(v) for v in args.loads.split(",")]
    if 0 not in loads:
        raise SystemExit("--loads must include 0 (the quiet run every ratio is taken against)")
    workers = start_peers(systems, args.threads, None, results["notes"])
    try:
        for case in args.cases.split(","):
            wl = WORKLOADS[case]
            runners = {}
            for s, w in workers.items():
                try:
                    runners[s] = w.setup(case, args.rows)
                except PeerError as exc:  # noted, the others go on
                    print(f"note: {exc}", flush=True)
                    results["notes"].append(str(exc))
            times = {s: {load: [] for load in loads} for s in runners}
            order = list(runners)
            for r in range(args.rounds):
                for load in (loads if r % 2 == 0 else loads[::-1]):
                    spin = Spinners(load, USER_CPUS)
                    try:
                        for s in (list(order) if r % 2 == 0 else order[::-1]):
                            time.sleep(0.2)  # idle threads of the previous system stop spinning
                            try:
                                times[s][load].append(runners[s]()["wall"])
                            except PeerError as exc:  # a worker died: the others go on
                                print(f"note: {exc}", flush=True)
                                results["notes"].append(str(exc))
                                order.remove(s)
                                del runners[s], times[s]
                    finally:
                        spin.stop()
                print(f"{case} round {r + 1}: " + ", ".join(
                    f"{s} " + "/".join(f"{times[s][load][-1]:.2f}" for load in loads)
                    for s in order) + " s (loads " + "/".join(map(str, loads)) + ")", flush=True)
            for s in runners:
                quiet = np.array(times[s][0])
                row = {"case": case, "title": wl.title, "system": s,
                       "quiet_s": float(np.median(quiet))}
                for load in loads:
                    if load:
                        row[f"load{load}_s"] = float(np.median(times[s][load]))
                        row[f"load{load}_ratio"] = float(np.median(np.array(times[s][load]) / quiet))
                results["rows"].append(row)
    finally:
        for w in workers.values():
            w.close()


def markdown(results, loads):
    busy = [load for load in loads if load]
    header = ["workload", "system", "quiet s/epoch"] + \
        [f"{load} busy process{'es' if load > 1 else ''} per core: x quiet" for load in busy]
    body = [[r["title"], PEER_LABELS[r["system"]], f"{r['quiet_s']:.3f}"]
            + [f"{r[f'load{load}_ratio']:.2f}x" for load in busy] for r in results["rows"]]
    lines = list(results["header"]) + ["", markdown_table(header, body), ""]
    if results["notes"]:
        lines += ["Notes:"] + [f"- {n}" for n in sorted(set(results["notes"]))] + [""]
    lines.append(f"{results['threads']} threads per system, {results['rows_per_epoch']} rows per "
                 f"epoch, {results['rounds']} interleaved rounds; each ratio is the median over "
                 "rounds of the loaded epoch over the quiet epoch of the same round (a fair share "
                 "under 1 busy process per core: 2x).")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5,000 rows and 2 rounds")
    ap.add_argument("--rows", type=int, default=None, help="rows per epoch (default 20,000)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {','.join(CASES)}")
    ap.add_argument("--systems", default=",".join(SYSTEMS),
                    help=f"comma-separated: {','.join(SYSTEMS)}, torch_compile, keras_jax")
    ap.add_argument("--loads", default="0,1,2", help="busy processes per core, 0 = quiet")
    ap.add_argument("--threads", type=int, default=len(USER_CPUS), help="threads per system")
    ap.add_argument("--out", default=os.path.join(HERE, "results_contention"),
                    help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    args.rows = args.rows or (5000 if args.quick else 20000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    bad = set(args.cases.split(",")) - set(WORKLOADS)
    if bad:
        ap.error(f"unknown case(s) {sorted(bad)}; the cases: {','.join(WORKLOADS)}")
    bad = set(args.systems.split(",")) - set(PEER_LABELS)
    if bad:
        ap.error(f"unknown system(s) {sorted(bad)}; the systems: {','.join(PEER_LABELS)}")
    machine = machine_description()
    print_header(machine)
    results = {"machine": machine, "header": header_lines(machine), "rows": [], "notes": [],
               "threads": args.threads, "rows_per_epoch": args.rows, "rounds": args.rounds}
    t0 = time.perf_counter()
    run(args, results)
    results["seconds"] = time.perf_counter() - t0
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results, [int(v) for v in args.loads.split(",")])
    with open(args.out + ".md", "w") as f:
        f.write(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
