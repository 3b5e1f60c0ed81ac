"""The benchmark suite (issue 6): fastnn against the GEMM-only floor, its own NumPy reference,
PyTorch CPU and scikit-learn, every figure a ratio measured in this run on the same data.

    python bench/suite.py                 # the full suite (about 5 minutes on 2 cores)
    python bench/suite.py --quick         # a smaller, faster pass
    python bench/suite.py --only mlp128   # one case

Writes bench/results.json and bench/results.md (the table the README shows). Each timing is
the median of --repeats runs of one epoch after a warm-up epoch. PyTorch runs in a worker
process of its own (bench/torch_baseline.py: see there why).
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import gemm_floor_epoch, machine_description, median_of, mnist_like

import fastnn
from fastnn import layers, optimizers

HERE = os.path.dirname(os.path.abspath(__file__))

HAVE_TORCH = importlib.util.find_spec("torch") is not None  # without it: "n/a" columns
try:
    import sklearn.neural_network as sk_nn
except ImportError:
    sk_nn = None


# ---- model definitions, the same in every framework -----------------------------------------
def fastnn_model(sizes, bn_dropout=False, seed=0, lr=1e-3):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input(shape=(sizes[0],))])
    for units in sizes[1:-1]:
        if bn_dropout:
            model.add(layers.Dense(units))
            model.add(layers.BatchNormalization())
            model.add(layers.Activation("relu"))
            model.add(layers.Dropout(0.2))
        else:
            model.add(layers.Dense(units, activation="relu"))
    model.add(layers.Dense(sizes[-1], activation="softmax"))
    model.compile(optimizer=optimizers.Adam(lr), loss="sparse_categorical_crossentropy")
    return model


# ---- one epoch in each framework ------------------------------------------------------------
# Each returns a function that runs (and times) one epoch after a warm-up, so the cases can
# interleave the frameworks: round r runs the floor, fastnn and PyTorch back to back, and the
# reported ratios are medians of the per-round ratios (a slow spell on a shared machine hits
# all three rather than one).
def fastnn_runner(x, y, sizes, batch, bn_dropout=False, backend="c"):
    fastnn.set_backend(backend)
    try:
        model = fastnn_model(sizes, bn_dropout)
        model.fit(x[:batch * 4], y[:batch * 4], batch_size=batch, epochs=1, verbose=0)
    finally:
        fastnn.set_backend("c")

    def run():
        fastnn.set_backend(backend)
        try:
            return _timed(lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0))
        finally:
            fastnn.set_backend("c")
    run.model = model
    return run


def time_fastnn(x, y, sizes, batch, bn_dropout=False, backend="c", repeats=3):
    run = fastnn_runner(x, y, sizes, batch, bn_dropout, backend)
    return median_of(run, repeats), run.model


class TorchWorker:
    """PyTorch in its own process (bench/torch_baseline.py), started with the environment this
    process was started with (fastnn sets OMP_WAIT_POLICY for itself when imported; the
    worker gets the user's setting, i.e. PyTorch's own default unless the user chose)."""

    def __init__(self):
        env = dict(os.environ)
        if fastnn.backend._WAIT_POLICY_SET_BY_FASTNN:
            env.pop("OMP_WAIT_POLICY", None)
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "torch_baseline.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.tmp = tempfile.TemporaryDirectory(prefix="fastnn-bench-")
        self._arrays = {}
        self._keys = 0
        self.version = self.ask(cmd="version")["version"]

    def ask(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch worker (bench/torch_baseline.py) exited with code "
                               f"{self.proc.wait()} (its error is printed above)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"torch worker: {reply['error']}")
        return reply

    def _path(self, arr):
        # each array is written once and loaded by the worker per case
        key = id(arr)
        if key not in self._arrays:
            path = os.path.join(self.tmp.name, f"a{len(self._arrays)}.npy")
            np.save(path, arr)
            self._arrays[key] = (path, arr)  # keeps arr alive, so its id stays unique
        return self._arrays[key][0]

    def _runner(self, key):
        def run():
            # Idle threads of the other process must not spin during a timed run: OpenBLAS's
            # workers spin up to ~0.1 s after the last product here, libgomp's in the worker
            # a few ms after its last parallel region.
            time.sleep(0.25)
            seconds = self.ask(cmd="run", key=key)["seconds"]
            time.sleep(0.05)
            return seconds
        run.epoch = lambda: self.ask(cmd="run", key=key)["loss"]
        return run

    def train(self, x, y, sizes, batch, bn_dropout=False, seed=0):
        self._keys += 1
        key = f"k{self._keys}"
        self.ask(cmd="train", key=key, x=self._path(x), y=self._path(y), sizes=list(sizes),
                 batch=batch, bn_dropout=bn_dropout, seed=seed)
        return self._runner(key)

    def predict(self, x, sizes, rows):
        self._keys += 1
        key = f"k{self._keys}"
        self.ask(cmd="predict", key=key, x=self._path(x), sizes=list(sizes), rows=rows)
        return self._runner(key)

    def threads(self, n):
        self.ask(cmd="threads", n=n)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.tmp.cleanup()


def interleaved(row, runners, repeats):
    """Run ``runners`` ({"floor": fn, "fastnn": fn, "torch": fn, ...}, each returning
    seconds) round-robin ``repeats`` times; stores each one's median seconds as
    row["<name>_s"] and the medians of the per-round ratios: fastnn / floor as row["x_floor"],
    other / fastnn as row["<name>_vs_fastnn"]."""
    times = {k: [] for k in runners}
    for _ in range(repeats):
        for k, fn in runners.items():
            times[k].append(fn())
    for k, ts in times.items():
        row[f"{k}_s"] = float(np.median(ts))
    f = np.array(times["fastnn"])
    if "floor" in times:
        row["x_floor"] = float(np.median(f / np.array(times["floor"])))
    for k in times:
        if k not in ("fastnn", "floor"):
            row[f"{k}_vs_fastnn"] = float(np.median(np.array(times[k]) / f))
    return row


def time_sklearn(x, y, sizes, batch, repeats=1):
    import warnings
    from sklearn.exceptions import ConvergenceWarning

    def run():
        clf = sk_nn.MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver="adam", batch_size=batch,
                                  max_iter=1, shuffle=True, random_state=0, learning_rate_init=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf.fit(x, y)
            return time.perf_counter() - t0
    return median_of(run, repeats)


def set_threads(n, worker):
    fastnn.set_num_threads(n)
    if worker is not None:
        worker.threads(n)


# ---- the cases ------------------------------------------------------------------------------
MLP = [784, 512, 256, 10]
DEEP = [100] + [100] * 20 + [10]


def case_mlp(x, y, batch, args, worker, bn_dropout=False, with_sklearn=False, with_reference=False):
    row = {"case": f"MLP 784-512-256-10{' + BN + Dropout(0.2)' if bn_dropout else ''}, Adam, batch {batch}"}
    runners = {"floor": lambda: gemm_floor_epoch(x, MLP, batch),
               "fastnn": fastnn_runner(x, y, MLP, batch, bn_dropout)}
    if worker is not None:
        runners["torch"] = worker.train(x, y, MLP, batch, bn_dropout)
    interleaved(row, runners, args.repeats)
    # slow baselines: one epoch each, against fastnn's median
    if with_reference:
        row["numpy_s"], _ = time_fastnn(x, y, MLP, batch, bn_dropout, backend="numpy", repeats=1)
        row["numpy_vs_fastnn"] = row["numpy_s"] / row["fastnn_s"]
    if with_sklearn and sk_nn is not None and not bn_dropout:
        row["sklearn_s"] = time_sklearn(x, y, MLP, batch)
        row["sklearn_vs_fastnn"] = row["sklearn_s"] / row["fastnn_s"]
    return row


def case_deep(args, worker):
    rng = np.random.default_rng(1)
    n = 20000 if args.quick else 60000
    x = rng.standard_normal((n, 100)).astype(np.float32)
    y = rng.integers(0, 10, n)
    row = {"case": "deep narrow 20 x Dense(100), Adam, batch 32"}
    runners = {"floor": lambda: gemm_floor_epoch(x, DEEP, 32), "fastnn": fastnn_runner(x, y, DEEP, 32)}
    if worker is not None:
        runners["torch"] = worker.train(x, y, DEEP, 32)
    return interleaved(row, runners, args.repeats)


TABULAR = [20, 64, 64, 2]


def case_tabular(args, worker):
    """Small tabular data, Keras' default batch 32 (not in issue 6's list: the everyday case
    of fastnn's users, where the products are tiny and the per-step overhead is everything)."""
    rng = np.random.default_rng(2)
    n = 20000 if args.quick else 60000
    x = rng.standard_normal((n, 20)).astype(np.float32)
    y = (x[:, :5].sum(axis=1) > 0).astype(np.int64)
    row = {"case": "tabular 20-64-64-2, Adam, batch 32"}
    runners = {"floor": lambda: gemm_floor_epoch(x, TABULAR, 32),
               "fastnn": fastnn_runner(x, y, TABULAR, 32)}
    if worker is not None:
        runners["torch"] = worker.train(x, y, TABULAR, 32)
    if sk_nn is not None:
        runners["sklearn"] = lambda: time_sklearn(x, y, TABULAR, 32)
    return interleaved(row, runners, args.repeats)


def case_breakdown(x, y, batch, args):
    """Where the time over the floor goes (issue 6's targets assume no optimizer cost): one
    epoch with the optimizer step skipped (a benchmark-only patch: the weights stay put), with
    SGD, with Adam, and Adam's update alone repeated in a hot loop (as many updates as an
    epoch has steps), all as multiples of the GEMM floor measured in the same rounds."""
    row = {"case": f"breakdown, MLP 784-512-256-10, batch {batch}", "batch": batch}
    adam = fastnn_runner(x, y, MLP, batch)
    sgd = fastnn_runner(x, y, MLP, batch)
    sgd.model.compile(optimizer=optimizers.SGD(1e-2), loss="sparse_categorical_crossentropy")
    still = fastnn_runner(x, y, MLP, batch)
    still.model.optimizer.apply = lambda variables: None
    steps = -(-len(x) // batch)
    variables, opt = adam.model._train_vars, adam.model.optimizer
    runners = {"floor": lambda: gemm_floor_epoch(x, MLP, batch), "fastnn": adam, "sgd": sgd,
               "no_update": still,
               "adam_update_hot": lambda: _timed(lambda: [opt.apply(variables) for _ in range(steps)])}
    interleaved(row, runners, args.repeats)
    for k in ("sgd", "no_update", "adam_update_hot"):
        row[f"{k}_x_floor"] = row[f"{k}_vs_fastnn"] * row["x_floor"]
    return row


def case_predict(x, y, args, worker):
    xs = x[:10000]
    model = fastnn_model(MLP)
    model.predict(xs[:1000], batch_size=1000, verbose=0)
    row = {"case": "predict 10,000 rows (batch_size=1000; fastnn picks cache-sized chunks)"}
    # the floor: the forward products alone
    ws = [v.value for v in model.weights if v.value.ndim == 2]
    outs = [np.empty((1000, w.shape[1]), np.float32) for w in ws]

    def floor():
        for lo in range(0, len(xs), 1000):
            h = xs[lo:lo + 1000]
            for w, o in zip(ws, outs):
                np.matmul(h, w, out=o)
                h = o
    runners = {"floor": lambda: _timed(floor),
               "fastnn": lambda: _timed(lambda: model.predict(xs, batch_size=1000, verbose=0))}
    if worker is not None:
        runners["torch"] = worker.predict(xs, MLP, 1000)
    return interleaved(row, runners, args.repeats * 3)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def case_kernel_scaling(args):
    """Non-GEMM kernels of one training step at batch 1024, 1 vs 2 threads (fastnn's own
    OpenMP: the BLAS is not involved)."""
    from fastnn import _ckernels as K
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1024, 512)).astype(np.float32)
    b = rng.standard_normal(512).astype(np.float32)
    dy = rng.standard_normal((1024, 512)).astype(np.float32)
    dz, db = np.empty_like(dy), np.empty(512, np.float32)
    p = rng.standard_normal(535818).astype(np.float32)
    g, m, v = (rng.standard_normal(535818).astype(np.float32) for _ in range(3))
    v = np.abs(v)
    logits = rng.standard_normal((1024, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 1024).astype(np.int64)
    dlog = np.empty_like(logits)

    def step():
        for _ in range(20):
            K.bias_act_forward(z, b, 1, 0.0, z)
            K.act_backward(dy, None, z, 1, 0.0, dz, db)
            K.sparse_softmax_cross_entropy(logits, labels, True, 1.0, dlog)
            fastnn.backend.ops.adam_update(p, g, m, v, None, 1e-3, 0.9, 0.999, 1e-7, 10)
    times = {}
    for nt in (1, 2):
        K.set_num_threads(nt)
        step()
        times[nt] = median_of(lambda: _timed(step), args.repeats * 3)
    K.set_num_threads(fastnn.get_num_threads())
    return {"case": "non-GEMM kernels, batch 1024 (relu fwd/bwd 1024x512, softmax CE, Adam 536k)",
            "t1_s": times[1], "t2_s": times[2], "speedup_1_to_2": times[1] / times[2]}


def accuracy_parity(x, y, args, worker):
    """Same architecture, optimizer and data: fastnn's and PyTorch's training losses after
    the same epochs agree within run-to-run noise (different seeds give the noise)."""
    if worker is None:
        return None
    n = 10000
    rng = np.random.default_rng(5)
    w = rng.standard_normal((784, 10)).astype(np.float32)
    xs = x[:n]
    ys = np.argmax(xs @ w + rng.standard_normal((n, 10)).astype(np.float32) * 2, axis=1)
    f_losses, t_losses = [], []
    for seed in range(3):
        model = fastnn_model(MLP, seed=seed)
        h = model.fit(xs, ys, batch_size=128, epochs=3, verbose=0)
        f_losses.append(h.history["loss"][-1])
        epoch = worker.train(xs, ys, MLP, 128, seed=seed).epoch
        t_losses.append([epoch() for _ in range(3)][-1])
    return {"fastnn_loss_mean": float(np.mean(f_losses)), "fastnn_loss_std": float(np.std(f_losses)),
            "torch_loss_mean": float(np.mean(t_losses)), "torch_loss_std": float(np.std(t_losses))}


def markdown(results):
    lines = ["| case | threads | fastnn s/epoch | x GEMM floor | NumPy ref | PyTorch | scikit-learn |",
             "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        if "fastnn_s" not in r or "batch" in r:
            continue

        def cell(k):
            v = r.get(f"{k}_vs_fastnn")
            if v is None:
                return "n/a"
            return f"{v:.1f}x slower" if v >= 1 else f"{1 / v:.1f}x faster"
        floor = f"{r['x_floor']:.2f}x" if "x_floor" in r else "n/a"
        lines.append(f"| {r['case']} | {r.get('threads', '')} | {r['fastnn_s']:.3f} | {floor} | "
                     f"{cell('numpy')} | {cell('torch')} | {cell('sklearn')} |")
    rows = [r for r in results["rows"] if "no_update_s" in r]
    if rows:
        lines += ["", "Where the time over the floor goes (2 threads; multiples of the GEMM floor):", "",
                  "| batch | optimizer step skipped | SGD | Adam | Adam's update alone, hot loop |",
                  "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['batch']} | {r['no_update_x_floor']:.2f}x | {r['sgd_x_floor']:.2f}x | "
                         f"{r['x_floor']:.2f}x | +{r['adam_update_hot_x_floor']:.2f}x |")
    by_case = {}
    for r in results["rows"]:
        if "fastnn_s" in r and "batch" not in r and r.get("threads") in (1, 2):
            by_case.setdefault(r["case"], {})[r["threads"]] = r
    pairs = [(case, t) for case, t in by_case.items() if 1 in t and 2 in t]
    if pairs:
        lines += ["", "Thread scaling, 1 -> 2 threads (epoch time with 1 thread / with 2; the floor "
                  "is the BLAS alone):", "", "| case | fastnn | GEMM floor | PyTorch |", "|---|---|---|---|"]
        for case, t in pairs:
            def speedup(key):
                a, b = t[1].get(key), t[2].get(key)
                return f"{a / b:.2f}x" if a and b else "n/a"
            lines.append(f"| {case} | {speedup('fastnn_s')} | {speedup('floor_s')} | {speedup('torch_s')} |")
    for r in results["rows"]:
        if "speedup_1_to_2" in r:
            lines.append(f"\n{r['case']}: 1 -> 2 threads speed-up {r['speedup_1_to_2']:.2f}x")
    p = results.get("parity")
    if p:
        lines.append(f"\nAccuracy parity (3 epochs, 3 seeds): fastnn loss {p['fastnn_loss_mean']:.4f} "
                     f"+- {p['fastnn_loss_std']:.4f}, PyTorch {p['torch_loss_mean']:.4f} +- {p['torch_loss_std']:.4f}")
    m = results["machine"]
    lines.append(f"\nMachine: {m['cpu']}, {m['cores']} cores; numpy {m['numpy']}; {m['blas']}; "
                 f"PyTorch {results.get('torch', 'n/a')}.")
    lines.append("\nEach timing is a median over rounds that run the floor, fastnn and PyTorch back "
                 "to back; ratios are medians of the per-round ratios. The PyTorch column says how "
                 "much slower (or faster) PyTorch is than fastnn.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 samples and fewer repeats")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default=None, help="comma-separated: mlp32,mlp128,mlp1024,bn,deep,tabular,predict,breakdown,threads,parity")
    ap.add_argument("--threads", default="2,1", help="thread counts for the training cases")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 2)
    only = set(args.only.split(",")) if args.only else None
    want = lambda k: only is None or k in only
    x, y = mnist_like(20000 if args.quick else 60000)
    worker = TorchWorker() if HAVE_TORCH else None
    results = {"machine": machine_description(), "torch": worker.version if worker else None,
               "rows": []}
    try:
        run_cases(x, y, args, want, worker, results)
    finally:
        if worker is not None:
            worker.close()
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(args.out + ".md", "w") as f:
        f.write(table + "\n")
    print(table)


def run_cases(x, y, args, want, worker, results):
    for nt in [int(t) for t in args.threads.split(",")]:
        set_threads(nt, worker)
        for key, batch, kw in (("mlp128", 128, {"with_sklearn": nt == 2, "with_reference": nt == 2}),
                               ("mlp32", 32, {}), ("mlp1024", 1024, {}),
                               ("bn", 128, {"bn_dropout": True})):
            if want(key):
                row = case_mlp(x, y, batch, args, worker, **kw)
                row["threads"] = nt
                results["rows"].append(row)
                print(json.dumps(row))
        if want("deep"):
            row = case_deep(args, worker)
            row["threads"] = nt
            results["rows"].append(row)
            print(json.dumps(row))
        if want("tabular"):
            row = case_tabular(args, worker)
            row["threads"] = nt
            results["rows"].append(row)
            print(json.dumps(row))
        if want("predict"):
            row = case_predict(x, y, args, worker)
            row["threads"] = nt
            results["rows"].append(row)
            print(json.dumps(row))
    set_threads(2, worker)
    for batch in (32, 128):
        if want("breakdown"):
            row = case_breakdown(x, y, batch, args)
            row["threads"] = 2
            results["rows"].append(row)
            print(json.dumps(row))
    if want("threads"):
        row = case_kernel_scaling(args)
        results["rows"].append(row)
        print(json.dumps(row))
    if want("parity"):
        results["parity"] = accuracy_parity(x, y, args, worker)
        print(json.dumps(results["parity"]))


if __name__ == "__main__":
    main()
