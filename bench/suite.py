"""The benchmark suite (issues 6, 14 and 17): fastnn against the GEMM-only floor, its own NumPy
reference, PyTorch eager, torch.compile, a JAX jit train step, a JAX scanned epoch, Keras 3 on
JAX and scikit-learn, every figure a ratio measured in this run on the same data.

    python bench/suite.py                  # 60,000 rows, 3 rounds, 2 and 1 threads (~30 min)
    python bench/suite.py --quick          # 20,000 rows, 2 rounds (~15 min: compiling the peers)
    python bench/suite.py --only mlp128,tabular --peers torch,jax_scan --threads 1

Each peer runs in a process of its own (bench/peers.py: see there why), skipped with a note
when its package is not installed or when it fails on this machine (torch.compile needs a
working C++ compiler, for one); fastnn and the floor run in this process. Every system
trains the same workloads (bench/common.py: WORKLOADS) from the same initial weights on the
same data with Adam; the timed epochs run in rounds, each round every system once (order
reversed every other round), and the ratios are medians of the per-round ratios. With one
thread, every process is pinned to one core (--core) and CPU time is reported beside wall
time, so other jobs on the machine weigh less on the result.

Writes bench/results.json and bench/results.md (the tables, with the machine first).
"""
import argparse
import importlib.util
import json
import os
import time
import warnings

import numpy as np

from common import (PEER_LABELS, USER_CPUS, WORKLOADS, PeerError, fastnn_model, fastnn_runner,
                    gemm_floor_timed, header_lines, interleaved, machine_description,
                    markdown_table, median_of, pin_process, print_header, ratio_summary,
                    start_peers, timed, warmup_rows, workload_data)

import fastnn
from fastnn.reference.activations import ACTIVATION_CODES

HERE = os.path.dirname(os.path.abspath(__file__))

HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None  # imported when used: slow

TRAIN_CASES = ("tabular", "mlp32", "mlp128", "mlp1024", "deep", "bn", "residual")
OTHER_CASES = ("predict", "breakdown", "threads", "parity")
PEERS = ("torch", "torch_compile", "jax_step", "jax_scan", "keras_jax")
#: issue 14 compares the residual MLP with PyTorch eager only (the other peers take long to
#: compile it); --all-peers runs every peer on every case
CASE_PEERS = {"residual": ("torch",)}


def time_sklearn(x, y, sizes, batch):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    def run():
        clf = MLPClassifier(hidden_layer_sizes=tuple(sizes[1:-1]), solver="adam",
                                  batch_size=batch, max_iter=1, shuffle=True, random_state=0,
                                  learning_rate_init=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
    return timed(run)


class Data:
    """Each workload's arrays, made once per (kind, rows)."""

    def __init__(self):
        self.cache = {}

    def __call__(self, wl, rows):
        key = (wl.data, rows)
        if key not in self.cache:
            self.cache[key] = workload_data(wl, rows)
        return self.cache[key]


# ---- the cases ------------------------------------------------------------------------------
def case_train(key, args, workers, nt, data):
    """One workload: the floor, fastnn and the peers in interleaved rounds."""
    wl = WORKLOADS[key]
    x, y = data(wl, args.rows)
    row = {"key": key, "case": wl.title, "threads": nt, "pinned": nt == 1 and not args.no_pin,
           "rows": args.rows, "notes": []}
    sizes = wl.dense_sizes()
    runners = {"floor": lambda: gemm_floor_timed(x, sizes, wl.batch, blas_threads=nt),
               "fastnn": fastnn_runner(fastnn_model(wl), x, y, wl.batch)}
    peers = PEERS if args.all_peers else CASE_PEERS.get(key, PEERS)
    for p in peers:
        if p in workers:
            try:
                runners[p] = workers[p].setup(key, args.rows)
            except PeerError as exc:
                print(f"note: {exc}", flush=True)
                row["notes"].append(str(exc))
    if HAVE_SKLEARN and key == "tabular":
        runners["sklearn"] = lambda: time_sklearn(x, y, list(sizes), wl.batch)
    times = interleaved(runners, args.repeats, notes=row["notes"])
    row["systems"] = merge(ratio_summary(times, "fastnn"), ratio_summary(times, "floor"))
    # slow baselines: one epoch each, against fastnn's median
    if key == "mlp128" and nt == 2 and not args.quick:
        ref = fastnn_runner(fastnn_model(wl), x, y, wl.batch, backend="numpy")()
        row["systems"]["numpy"] = single(ref, row["systems"])
        if HAVE_SKLEARN:
            row["systems"]["sklearn"] = single(time_sklearn(x, y, list(sizes), wl.batch),
                                               row["systems"])
    return row


def merge(by_fastnn, by_floor):
    return {k: dict(v, **{m: by_floor[k][m] for m in ("wall_vs_floor", "cpu_vs_floor")})
            for k, v in by_fastnn.items()}


def single(t, systems):
    """One run's times with its ratios to the median fastnn and floor epochs."""
    d = {"wall": t["wall"], "cpu": t["cpu"]}
    for ref in ("fastnn", "floor"):
        for m in ("wall", "cpu"):
            d[f"{m}_vs_{ref}"] = t[m] / systems[ref][m]
    return d


def case_predict(args, workers, nt, data):
    wl = WORKLOADS["mlp128"]
    x, _ = data(wl, args.rows)
    xs = x[:10000]
    model = fastnn_model(wl)
    model.predict(xs[:1000], batch_size=1000, verbose=0)
    row = {"key": "predict", "case": "predict 10,000 rows (batch_size=1000; fastnn picks "
           "cache-sized chunks)", "threads": nt, "pinned": nt == 1 and not args.no_pin, "notes": []}
    # the floor: the forward products alone
    ws = [v.value for v in model.weights if v.value.ndim == 2]
    outs = [np.empty((1000, w.shape[1]), np.float32) for w in ws]

    def floor():
        for lo in range(0, len(xs), 1000):
            h = xs[lo:lo + 1000]
            for w, o in zip(ws, outs):
                h = np.matmul(h, w, out=o[:len(h)])
    runners = {"floor": lambda: timed(floor),
               "fastnn": lambda: timed(lambda: model.predict(xs, batch_size=1000, verbose=0))}
    if "torch" in workers:
        try:
            runners["torch"] = workers["torch"].predict(len(xs), 1000)
        except PeerError as exc:
            row["notes"].append(str(exc))
    times = interleaved(runners, args.repeats * 3, notes=row["notes"])
    row["systems"] = merge(ratio_summary(times, "fastnn"), ratio_summary(times, "floor"))
    return row


def case_breakdown(batch, args, data):
    """Where the time over the floor goes: one epoch with the optimizer step skipped (a
    benchmark-only patch of the model's optimizer: the weights stay put), with SGD, with
    Adam, and Adam's update alone repeated in a hot loop (as many updates as an epoch has
    steps), all as multiples of the GEMM floor measured in the same rounds."""
    wl = WORKLOADS["mlp128"]
    x, y = data(wl, args.rows)
    row = {"key": "breakdown", "case": f"breakdown, MLP 784-512-256-10, batch {batch}",
           "batch": batch, "threads": fastnn.get_num_threads()}
    adam = fastnn_runner(fastnn_model(wl), x, y, batch)
    sgd = fastnn_runner(fastnn_model(wl, optimizer="sgd"), x, y, batch)
    still_model = fastnn_model(wl)
    still_model.optimizer.apply = lambda variables, trainable_variables=None: None
    still = fastnn_runner(still_model, x, y, batch)
    steps = -(-len(x) // batch)
    # one list for every call: the optimizer recognises the packed buffer once
    variables, opt = adam.model.trainable_variables, adam.model.optimizer
    sizes = wl.dense_sizes()
    runners = {"floor": lambda: gemm_floor_timed(x, sizes, batch, blas_threads=len(USER_CPUS)),
               "fastnn": adam, "sgd": sgd,
               "no_update": still,
               "adam_update_hot": lambda: timed(lambda: [opt.apply(variables) for _ in range(steps)])}
    times = interleaved(runners, args.repeats)
    summary = ratio_summary(times, "floor")
    row["x_floor"] = {k: v["wall_vs_floor"] for k, v in summary.items()}
    return row


def case_kernel_scaling(args):
    """Non-GEMM kernels of one training step at batch 1024, 1 vs 2 threads (fastnn's own
    OpenMP: the BLAS is not involved), called through the ops object the layers use."""
    ops = fastnn.backend.ops
    relu = ACTIVATION_CODES["relu"]
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

    def step(nt):
        for _ in range(20):
            ops.bias_act_forward(z, b, relu, 0.0, z, n_threads=nt)
            ops.act_backward(dy, None, z, relu, 0.0, dz, db, n_threads=nt)
            ops.sparse_softmax_cross_entropy(logits, labels, True, 1.0, dlog, n_threads=nt)
            ops.adam_update(p, g, m, v, None, 1e-3, 0.9, 0.999, 1e-7, 10, n_threads=nt)
    times = {}
    for nt in (1, 2):
        step(nt)
        times[nt] = median_of(lambda: timed(lambda: step(nt))["wall"], args.repeats * 3)
    return {"key": "threads", "case": "non-GEMM kernels, batch 1024 (relu fwd/bwd 1024x512, "
            "softmax CE, Adam 536k)", "t1_s": times[1], "t2_s": times[2],
            "speedup_1_to_2": times[1] / times[2]}


def accuracy_parity(workers, args):
    """Same architecture, initial weights, optimizer and data (a noisy linear teacher's
    labels): fastnn's and PyTorch's training losses after the same epochs agree within the
    spread over seeds (each seed: other initial weights, shuffles and dropout masks)."""
    if "torch" not in workers:
        return None
    wl, rows, epochs = WORKLOADS["parity"], 10000, 3
    xs, ys = workload_data(wl, rows)
    f_losses, t_losses = [], []
    for seed in range(3):
        model = fastnn_model(wl, seed=seed)
        warm = warmup_rows(rows, wl.batch)  # as the worker's setup does
        model.fit(xs[:warm], ys[:warm], batch_size=wl.batch, epochs=1, verbose=0)
        h = model.fit(xs, ys, batch_size=wl.batch, epochs=epochs, verbose=0)
        f_losses.append(h.history["loss"][-1])
        run = workers["torch"].setup("parity", rows, seed=seed)
        t_losses.append([run()["result"] for _ in range(epochs)][-1])
    return {"fastnn_loss_mean": float(np.mean(f_losses)), "fastnn_loss_std": float(np.std(f_losses)),
            "torch_loss_mean": float(np.mean(t_losses)), "torch_loss_std": float(np.std(t_losses))}


# ---- the tables -----------------------------------------------------------------------------
COLUMNS = ("torch", "torch_compile", "jax_step", "jax_scan", "keras_jax", "numpy", "sklearn")
COLUMN_LABELS = dict(PEER_LABELS, numpy="fastnn's NumPy reference", sklearn="scikit-learn")


def peer_cell(s, metric):
    if s is None:
        return "n/a"
    v = s[f"{metric}_vs_fastnn"]
    rel = f"{v:.2f}x slower" if v >= 1 else f"**{1 / v:.2f}x faster**"
    return f"{rel} ({s[f'{metric}_vs_floor']:.2f}x floor)"


def train_table(rows, metric):
    present = [c for c in COLUMNS if any(c in r["systems"] for r in rows)]
    header = ["workload", f"fastnn s/epoch ({metric})", "fastnn x floor"] + \
        [COLUMN_LABELS[c] for c in present]
    body = []
    for r in rows:
        s = r["systems"]
        body.append([r["case"], f"{s['fastnn'][metric]:.3f}", f"{s['fastnn'][f'{metric}_vs_floor']:.2f}x"]
                    + [peer_cell(s.get(c), metric) for c in present])
    return markdown_table(header, body)


def markdown(results):
    lines = list(results["header"]) + [""]
    train = [r for r in results["rows"] if r.get("key") in TRAIN_CASES + ("predict",)]
    for nt in sorted({r["threads"] for r in train}, reverse=True):
        rows = [r for r in train if r["threads"] == nt]
        pinned = any(r["pinned"] for r in rows)
        metrics = ("cpu", "wall") if pinned else ("wall",)
        for metric in metrics:
            what = "CPU time of the process" if metric == "cpu" else "wall time"
            lines += [f"{nt} thread{'s' if nt > 1 else ''}{', every process pinned to one core' if pinned else ''}; "
                      f"{what}; each peer's time against fastnn's (and against the GEMM floor):", "",
                      train_table(rows, metric), ""]
    by_case = {}
    for r in train:
        by_case.setdefault(r["case"], {})[r["threads"]] = r
    pairs = [(case, t) for case, t in by_case.items() if 1 in t and 2 in t]
    if pairs:
        systems = [k for k in ("fastnn", "floor") + PEERS
                   if any(k in t[1]["systems"] and k in t[2]["systems"] for _, t in pairs)]
        body = []
        for case, t in pairs:
            def speedup(k):
                a, b = t[1]["systems"].get(k), t[2]["systems"].get(k)
                return f"{a['wall'] / b['wall']:.2f}x" if a and b else "n/a"
            body.append([case] + [speedup(k) for k in systems])
        lines += ["Thread scaling, 1 -> 2 threads (wall time with 1 thread / with 2):", "",
                  markdown_table(["workload"] + [PEER_LABELS[k] for k in systems], body), ""]
    for nt in sorted({r["threads"] for r in train}, reverse=True):
        by_key = {r["key"]: r["systems"] for r in train if r["threads"] == nt}
        if "torch" in by_key.get("residual", {}) and "torch" in by_key.get("mlp128", {}):
            res, mlp = by_key["residual"]["torch"], by_key["mlp128"]["torch"]
            lines += [f"Issue 14, {nt} thread{'s' if nt > 1 else ''}: PyTorch eager over fastnn on "
                      f"the residual MLP {res['wall_vs_fastnn']:.2f}x (CPU {res['cpu_vs_fastnn']:.2f}x), "
                      f"on the plain MLP at batch 128 {mlp['wall_vs_fastnn']:.2f}x "
                      f"(CPU {mlp['cpu_vs_fastnn']:.2f}x): the residual margin should be at least "
                      "the plain one.", ""]
    rows = [r for r in results["rows"] if r.get("key") == "breakdown"]
    if rows:
        body = [[r["batch"], f"{r['x_floor']['no_update']:.2f}x", f"{r['x_floor']['sgd']:.2f}x",
                 f"{r['x_floor']['fastnn']:.2f}x", f"+{r['x_floor']['adam_update_hot']:.2f}x"]
                for r in rows]
        lines += [f"Where fastnn's time over the floor goes ({rows[0]['threads']} threads; "
                  "multiples of the GEMM floor's wall time):", "",
                  markdown_table(["batch", "optimizer step skipped", "SGD", "Adam",
                                  "Adam's update alone, hot loop"], body), ""]
    for r in results["rows"]:
        if r.get("key") == "threads":
            lines += [f"{r['case']}: 1 -> 2 threads speed-up {r['speedup_1_to_2']:.2f}x", ""]
    p = results.get("parity")
    if p:
        lines += [f"Accuracy parity (3 epochs, 3 seeds, the same initial weights): fastnn loss "
                  f"{p['fastnn_loss_mean']:.4f} +- {p['fastnn_loss_std']:.4f}, PyTorch "
                  f"{p['torch_loss_mean']:.4f} +- {p['torch_loss_std']:.4f}", ""]
    notes = sorted({n for r in results["rows"] for n in r.get("notes", [])} | set(results["notes"]))
    if notes:
        lines += ["Notes:"] + [f"- {n}" for n in notes] + [""]
    lines.append(f"{results['rows_per_epoch']} rows per epoch; each timing is a median over "
                 f"{results['repeats']} rounds that run every system once (the order reversed "
                 "every other round); ratios are medians of the per-round ratios. \"x floor\": "
                 "the system's epoch over the GEMM-only floor's (the same matrix products "
                 "through numpy's BLAS, nothing else).")
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 rows and 2 rounds")
    ap.add_argument("--rows", type=int, default=None, help="rows per epoch (default 60,000)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per case")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated cases: {','.join(TRAIN_CASES + OTHER_CASES)}")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated peers ({','.join(PEERS)}), or 'none'")
    ap.add_argument("--all-peers", action="store_true",
                    help="every peer on every case (default: the residual MLP against PyTorch eager only)")
    ap.add_argument("--threads", default="2,1", help="thread counts for the training cases")
    ap.add_argument("--core", type=int, default=USER_CPUS[-1],
                    help="the core single-thread runs are pinned to (default: the last one allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin single-thread runs")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    if args.quick:
        args.repeats = min(args.repeats, 2)
    if args.rows is None:
        args.rows = 20000 if args.quick else 60000
    only = set(args.only.split(",")) if args.only else None
    unknown = (only or set()) - set(TRAIN_CASES + OTHER_CASES)
    if unknown:
        ap.error(f"unknown case(s) {sorted(unknown)}; the cases: {','.join(TRAIN_CASES + OTHER_CASES)}")
    peers = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    bad = set(peers) - set(PEERS)
    if bad:
        ap.error(f"unknown peer(s) {sorted(bad)}; the peers: {','.join(PEERS)}")
    machine = machine_description()
    results = {"machine": machine, "header": header_lines(machine), "rows": [], "notes": [],
               "repeats": args.repeats, "rows_per_epoch": args.rows}
    print_header(machine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random labels: fastnn's fit may warn about them
        run_cases(args, only, peers, results)
    pin_process(USER_CPUS)
    with open(args.out + ".json", "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(args.out + ".md", "w") as f:
        f.write(table + "\n")
    print(table)


def run_cases(args, only, peers, results):
    want = lambda k: only is None or k in only  # noqa: E731
    data = Data()
    t_start = time.perf_counter()
    for nt in [int(t) for t in args.threads.split(",")]:
        pinned = nt == 1 and not args.no_pin
        cpus = [args.core] if pinned else USER_CPUS
        pin_process(cpus)
        fastnn.set_num_threads(nt)
        needed = [c for c in TRAIN_CASES if want(c)]
        wanted_peers = [p for p in peers if args.all_peers or
                        any(p in CASE_PEERS.get(c, PEERS) for c in needed)]
        if want("predict") and "torch" in peers and "torch" not in wanted_peers:
            wanted_peers.append("torch")
        workers = start_peers(wanted_peers, nt, cpus if pinned else None, results["notes"])
        try:
            for key in needed:
                row = case_train(key, args, workers, nt, data)
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
            if want("predict"):
                row = case_predict(args, workers, nt, data)
                results["rows"].append(row)
                print(json.dumps(row), flush=True)
        finally:
            for w in workers.values():
                w.close()
    pin_process(USER_CPUS)
    fastnn.set_num_threads(len(USER_CPUS))
    if want("breakdown"):
        for batch in (32, 128):
            row = case_breakdown(batch, args, data)
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    if want("threads"):
        row = case_kernel_scaling(args)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    if want("parity") and "torch" in peers:
        workers = start_peers(["torch"], len(USER_CPUS), None, results["notes"])
        try:
            results["parity"] = accuracy_parity(workers, args)
        finally:
            for w in workers.values():
                w.close()
        print(json.dumps(results["parity"]), flush=True)
    results["seconds"] = time.perf_counter() - t_start


if __name__ == "__main__":
    main()
