"""Per-step overhead of small models (issue 17): fastnn against its GEMM floor, before and after.

    python bench/step_overhead.py --base /work/wt/overhead-base      # main's tree, built in place
    python bench/step_overhead.py --base ../main --rounds 9 --no-callgrind

For each tree (``--base``, and this script's own tree) a worker process imports that tree's
fastnn, pinned to one core (os.sched_setaffinity), OMP_NUM_THREADS=1 and
fastnn.set_num_threads(1), and times one fit epoch (CPU time of the process) of

- tabular 20-64-64-2, relu, softmax, sparse categorical cross-entropy, Adam, batch 32
  (with and without metrics=["accuracy"]);
- deep narrow 20 x Dense(100) + Dense(10), same loss and optimizer, batch 32;

and the GEMM floor of the same shapes (bench/common.py's gemm_floor_epoch: the products
through np.matmul into preallocated buffers). Rounds alternate base and after, floor and
fastnn, so a busy spell on a shared machine hits both; the table gives medians of the
per-step times and of the per-round fastnn / floor ratios.

Then, unless --no-callgrind (or valgrind is missing), instructions per step under
``valgrind --tool=callgrind`` (one run per tree, cut into parts at marker calls): the
difference between epochs of two lengths divided by the steps between them (start-up and
per-fit costs cancel out), repeatable whatever the machine's load.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TREE = os.path.dirname(HERE)

NETS = {
    "tabular": {"sizes": [20, 64, 64, 2], "metrics": None},
    "tabular+acc": {"sizes": [20, 64, 64, 2], "metrics": ["accuracy"]},
    "deep": {"sizes": [100] + [100] * 20 + [10], "metrics": None},
}
LABELS = {
    "tabular": "tabular 20-64-64-2, batch 32",
    "tabular+acc": "tabular 20-64-64-2 + accuracy, batch 32",
    "deep": "deep narrow 20 x Dense(100), batch 32",
}


# ---- the worker: one tree's fastnn in a process pinned to one core ------------------------------
def _setup_worker(tree, cpu):
    os.environ["OMP_NUM_THREADS"] = "1"
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, tree)
    import fastnn  # noqa: F401  (the tree's own, before bench/common.py touches sys.path)
    if not os.path.abspath(fastnn.__file__).startswith(os.path.abspath(tree)):
        raise RuntimeError(f"worker for {tree} imported fastnn from {fastnn.__file__}")
    fastnn.set_num_threads(1)
    sys.path.insert(1, HERE)
    return fastnn


def _data(net, steps, batch=32, seed=0):
    import numpy as np
    sizes = NETS[net]["sizes"]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], steps * batch)
    return x, y


def _model(fastnn, net):
    from fastnn import layers, optimizers
    sizes = NETS[net]["sizes"]
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(sizes[0],))]
                              + [layers.Dense(u, activation="relu") for u in sizes[1:-1]]
                              + [layers.Dense(sizes[-1], activation="softmax")])
    model.compile(optimizer=optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=NETS[net]["metrics"])
    return model


def worker(tree, cpu, steps):
    """Answers {"what": "fastnn"|"floor", "net": ...} with the CPU seconds of one epoch."""
    fastnn = _setup_worker(tree, cpu)
    from common import gemm_floor_epoch
    data = {net: _data(net, steps) for net in NETS}
    models = {}
    for line in sys.stdin:
        msg = json.loads(line)
        x, y = data[msg["net"]]
        if msg["what"] == "floor":
            t0 = time.process_time()
            gemm_floor_epoch(x, NETS[msg["net"]]["sizes"], 32)
        else:
            model = models.get(msg["net"])
            if model is None:
                model = models[msg["net"]] = _model(fastnn, msg["net"])
                model.fit(x[:128], y[:128], batch_size=32, epochs=1, verbose=0)
            t0 = time.process_time()
            model.fit(x, y, batch_size=32, epochs=1, verbose=0)
        seconds = time.process_time() - t0
        print(json.dumps({"seconds": seconds}), flush=True)


CALLGRIND_STEPS = {"deep": (10, 40), "tabular": (20, 120), "tabular+acc": (20, 120)}


def _marker():
    """Ends one part of the callgrind profile (valgrind runs with --dump-before=*getppid)."""
    os.getppid()


def callgrind_run(tree, nets):
    """What valgrind counts, in parts ended by _marker(): for each net, the floor's epochs of
    two lengths, then fastnn's (built and warmed up outside the parts)."""
    fastnn = _setup_worker(tree, None)
    from common import gemm_floor_epoch
    for net in nets:
        lo, hi = CALLGRIND_STEPS[net]
        x, y = _data(net, hi)
        sizes = NETS[net]["sizes"]
        gemm_floor_epoch(x[:64], sizes, 32)
        model = _model(fastnn, net)
        model.fit(x[:64], y[:64], batch_size=32, epochs=1, verbose=0)
        _marker()
        for steps in (lo, hi):
            gemm_floor_epoch(x[:steps * 32], sizes, 32)
            _marker()
        for steps in (lo, hi):
            model.fit(x[:steps * 32], y[:steps * 32], batch_size=32, epochs=1, verbose=0)
            _marker()


def per_step_instructions(tree, nets):
    """{net: (floor, fastnn)} instructions per step: (count of the long epoch - count of the
    short one) / the steps between them, from one valgrind run of callgrind_run."""
    import glob
    import tempfile
    with tempfile.TemporaryDirectory(prefix="fastnn-callgrind-") as tmp:
        out = subprocess.run(
            [shutil.which("valgrind"), "--tool=callgrind", "--dump-before=*getppid",
             f"--callgrind-out-file={tmp}/cg.out", sys.executable, os.path.abspath(__file__),
             "--callgrind-run", tree, ",".join(nets)],
            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        parts = {}
        for f in glob.glob(f"{tmp}/cg.out.*"):
            with open(f) as fh:
                total = next((int(line.split()[1]) for line in fh
                              if line.startswith(("summary:", "totals:"))), None)
            parts[int(f.rsplit(".", 1)[1])] = total
        if out.returncode or not parts:
            raise RuntimeError(f"callgrind run failed:\n{out.stderr[-2000:]}")
    # a marker call may end two parts (os.getppid and libc's getppid both match): the
    # second holds the few instructions between them
    counts = [parts[k] for k in sorted(parts) if parts[k] > 10000]
    result = {}
    for i, net in enumerate(nets):
        lo, hi = CALLGRIND_STEPS[net]
        # per net: [setup, floor lo, floor hi, fastnn lo, fastnn hi]
        c = counts[5 * i: 5 * i + 5]
        result[net] = ((c[2] - c[1]) / (hi - lo), (c[4] - c[3]) / (hi - lo))
    return result


# ---- the driver ------------------------------------------------------------------------------
class Worker:
    def __init__(self, tree, cpu, steps):
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", tree, "--cpu", str(cpu),
             "--steps", str(steps)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"})

    def run(self, what, net):
        self.proc.stdin.write(json.dumps({"what": what, "net": net}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with code {self.proc.wait()}")
        return json.loads(line)["seconds"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main():
    import numpy as np
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=None, help="the tree to compare with (built in place)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=400, help="batches per timed epoch")
    ap.add_argument("--cpu", type=int, default=None, help="the core to pin to (default: the last)")
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--no-callgrind", action="store_true")
    args = ap.parse_args()
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    nets = args.nets.split(",")
    trees = {"after": TREE}
    if args.base:
        trees = {"before": os.path.abspath(args.base), "after": TREE}
    workers = {name: Worker(tree, cpu, args.steps) for name, tree in trees.items()}
    times = {(name, net, what): [] for name in trees for net in nets for what in ("floor", "fastnn")}
    try:
        for _ in range(args.rounds):
            for net in nets:
                for name, w in workers.items():
                    for what in ("floor", "fastnn"):
                        times[(name, net, what)].append(w.run(what, net) / args.steps)
    finally:
        for w in workers.values():
            w.close()

    print(f"per-step CPU time, pinned to core {cpu}, 1 thread, {args.steps} steps an epoch, "
          f"median of {args.rounds} interleaved rounds")
    print("| workload | tree | floor us/step | fastnn us/step | fastnn / floor |")
    print("|---|---|---|---|---|")
    for net in nets:
        for name in trees:
            f = np.array(times[(name, net, "floor")])
            t = np.array(times[(name, net, "fastnn")])
            print(f"| {LABELS[net]} | {name} | {np.median(f) * 1e6:.1f} | "
                  f"{np.median(t) * 1e6:.1f} | {np.median(t / f):.2f}x |")
    if args.no_callgrind or not shutil.which("valgrind"):
        if not args.no_callgrind:
            print("\n(valgrind not found: no instruction counts)")
        return
    print("\ninstructions per step (callgrind; difference of two epoch lengths)")
    counts = {name: per_step_instructions(tree, nets) for name, tree in trees.items()}
    print("| workload | tree | floor | fastnn | fastnn / floor |")
    print("|---|---|---|---|---|")
    for net in nets:
        for name in trees:
            floor, n = counts[name][net]
            print(f"| {LABELS[net]} | {name} | {floor:,.0f} | {n:,.0f} | {n / floor:.2f}x |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        a = argparse.ArgumentParser()
        a.add_argument("--worker")
        a.add_argument("--cpu", type=int)
        a.add_argument("--steps", type=int)
        w = a.parse_args()
        worker(w.worker, w.cpu, w.steps)
    elif len(sys.argv) > 1 and sys.argv[1] == "--callgrind-run":
        callgrind_run(sys.argv[2], sys.argv[3].split(","))
    else:
        main()
