"""Shared pieces of the benchmarks: the workloads (one definition each, built by every
framework from the same description and the same initial weights), their data, the
GEMM-only floor, timing, pinning and the machine header every script prints.

Every figure the benchmarks print is a ratio between runs made in the same run on the
same data, because the machines are shared and absolute times drift.

Import this module before fastnn: it keeps the environment the user started Python with
(fastnn sets OMP_WAIT_POLICY for itself when imported), which the peers' worker processes
get. It imports neither fastnn nor any peer framework at module level, so the peers' worker
processes (bench/peers.py) use it too without loading fastnn.
"""
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: the environment before fastnn's import could change it (see the module docstring)
USER_ENV = dict(os.environ)
#: the CPUs this process may run on, before any pinning
USER_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
    list(range(os.cpu_count() or 1))


# ---- the workloads --------------------------------------------------------------------------
# A network is a list of layer specs, read by each framework's builder:
#   ("dense", units, activation)   activation: "relu", None, or "softmax" (the output layer;
#                                   frameworks whose loss takes logits drop the softmax)
#   ("bn",)                         BatchNormalization, Keras' epsilon 1e-3 and momentum 0.99
#   ("relu",)                       an Activation("relu") layer
#   ("dropout", rate)
#   ("residual", [specs])           h = h + block(h)
def dense_stack(sizes, bn_dropout=0.0):
    """Dense layers of ``sizes[1:-1]`` units with ReLU (or Dense -> BatchNorm -> ReLU ->
    Dropout(``bn_dropout``) when it is not 0), then a softmax layer of ``sizes[-1]`` units."""
    specs = []
    for units in sizes[1:-1]:
        if bn_dropout:
            specs += [("dense", units, None), ("bn",), ("relu",), ("dropout", bn_dropout)]
        else:
            specs.append(("dense", units, "relu"))
    return specs + [("dense", sizes[-1], "softmax")]


def residual_stack(features=784, width=512, blocks=4, classes=10, rate=0.1):
    """Dense(width, relu), then ``blocks`` blocks of Dense -> BatchNorm -> ReLU -> Dropout ->
    Dense added back to their input, then a softmax layer (bench/bench_graph.py's net)."""
    block = [("dense", width, None), ("bn",), ("relu",), ("dropout", rate), ("dense", width, None)]
    return ([("dense", width, "relu")] + [("residual", block)] * blocks
            + [("dense", classes, "softmax")])


@dataclass(frozen=True)
class Workload:
    key: str
    title: str
    features: int
    classes: int
    specs: tuple
    batch: int
    data: str  # which generator workload_data uses: "mnist", "tabular", "deep", "teacher"

    def dense_sizes(self):
        """Input width and every Dense layer's units, in order: the chain of matrix products
        the GEMM floor times (a residual block's products are a chain too)."""
        sizes = [self.features]

        def walk(specs):
            for s in specs:
                if s[0] == "dense":
                    sizes.append(s[1])
                elif s[0] == "residual":
                    walk(s[1])
        walk(self.specs)
        return sizes

    @property
    def has_residual(self):
        return any(s[0] == "residual" for s in self.specs)


MLP_SIZES = (784, 512, 256, 10)
TABULAR_SIZES = (20, 64, 64, 2)
DEEP_SIZES = (100,) + (100,) * 20 + (10,)
_MLP = "MLP 784-512-256-10"
WORKLOADS = {w.key: w for w in (
    Workload("tabular", "tabular 20-64-64-2, batch 32", 20, 2, tuple(dense_stack(TABULAR_SIZES)),
             32, "tabular"),
    Workload("mlp32", f"{_MLP}, batch 32", 784, 10, tuple(dense_stack(MLP_SIZES)), 32, "mnist"),
    Workload("mlp128", f"{_MLP}, batch 128", 784, 10, tuple(dense_stack(MLP_SIZES)), 128, "mnist"),
    Workload("mlp1024", f"{_MLP}, batch 1024", 784, 10, tuple(dense_stack(MLP_SIZES)), 1024, "mnist"),
    Workload("deep", "deep narrow 20 x Dense(100), batch 32", 100, 10,
             tuple(dense_stack(DEEP_SIZES)), 32, "deep"),
    Workload("bn", f"{_MLP} + BatchNorm + Dropout(0.2), batch 128", 784, 10,
             tuple(dense_stack(MLP_SIZES, bn_dropout=0.2)), 128, "mnist"),
    Workload("residual", "residual MLP, 4 blocks of 512 + BatchNorm + Dropout(0.1), batch 128",
             784, 10, tuple(residual_stack()), 128, "mnist"),
    # the accuracy-parity check: learnable labels (a noisy linear teacher)
    Workload("parity", f"{_MLP}, batch 128, teacher labels", 784, 10,
             tuple(dense_stack(MLP_SIZES)), 128, "teacher"),
)}


def mnist_like(n=60000, features=784, classes=10, seed=0, dtype=np.float32):
    """Random MNIST-shaped data: the work per epoch is what matters, not the labels' meaning."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features), dtype=np.float32).astype(dtype)
    y = rng.integers(0, classes, n)
    return x, y


def workload_data(workload, rows):
    """(x float32, y int64) for ``workload``: the same arrays in every process for the same
    ``rows`` (each worker makes its own copy rather than reading one from disk)."""
    kind = workload.data
    if kind == "mnist":
        return mnist_like(rows)
    if kind == "tabular":
        rng = np.random.default_rng(2)
        x = rng.standard_normal((rows, 20)).astype(np.float32)
        return x, (x[:, :5].sum(axis=1) > 0).astype(np.int64)
    if kind == "deep":
        rng = np.random.default_rng(1)
        return rng.standard_normal((rows, 100)).astype(np.float32), rng.integers(0, 10, rows)
    if kind == "teacher":
        x, _ = mnist_like(rows)
        rng = np.random.default_rng(5)
        w = rng.standard_normal((784, 10)).astype(np.float32)
        noise = rng.standard_normal((rows, 10)).astype(np.float32) * 2
        return x, np.argmax(x @ w + noise, axis=1).astype(np.int64)
    raise ValueError(f"unknown data kind {kind!r}")


def initial_weights(workload, seed=0):
    """The initial weights of every layer with weights, in spec order (residual blocks in
    place), in Keras' layout: Dense [kernel (in, out), bias] with Glorot-uniform kernels and
    zero biases; BatchNorm [gamma, beta, moving_mean, moving_variance]. Every framework starts
    from these, so the runs start from the same point."""
    rng = np.random.default_rng(1000 + seed)
    out = []

    def walk(specs, width):
        for s in specs:
            if s[0] == "dense":
                limit = np.sqrt(6.0 / (width + s[1]))
                out.append([rng.uniform(-limit, limit, (width, s[1])).astype(np.float32),
                            np.zeros(s[1], np.float32)])
                width = s[1]
            elif s[0] == "bn":
                out.append([np.ones(width, np.float32), np.zeros(width, np.float32),
                            np.zeros(width, np.float32), np.ones(width, np.float32)])
            elif s[0] == "residual":
                walk(s[1], width)
        return width
    walk(workload.specs, workload.features)
    return out


# ---- fastnn's side of the workloads ---------------------------------------------------------
def fastnn_model(workload, seed=0, optimizer="adam", skips=True):
    """``workload`` as a compiled fastnn model holding ``initial_weights(workload, seed)``:
    a Sequential, or a graph (the functional API) when it has residual blocks. ``skips=False``
    gives the same layers without the skip connections, as a Sequential. ``optimizer``: "adam"
    (Adam(1e-3)), "sgd" (SGD(0.01)) or an optimizer object."""
    import fastnn
    from fastnn import layers, optimizers

    fastnn.set_seed(seed)
    weighted = []

    def make(spec):
        kind = spec[0]
        if kind == "dense":
            layer = layers.Dense(spec[1], activation=spec[2])
        elif kind == "bn":
            layer = layers.BatchNormalization()
        elif kind == "relu":
            return layers.Activation("relu")
        elif kind == "dropout":
            return layers.Dropout(spec[1])
        else:
            raise ValueError(f"unknown layer spec {spec!r}")
        weighted.append(layer)
        return layer

    if workload.has_residual and skips:
        inp = fastnn.Input(shape=(workload.features,))
        h = inp
        for spec in workload.specs:
            if spec[0] == "residual":
                z = h
                for inner in spec[1]:
                    z = make(inner)(z)
                h = layers.Add()([h, z])
            else:
                h = make(spec)(h)
        model = fastnn.Model(inp, h)
    else:
        flat = []
        for spec in workload.specs:
            flat += list(spec[1]) if spec[0] == "residual" else [spec]
        model = fastnn.Sequential([layers.Input(shape=(workload.features,))]
                                  + [make(s) for s in flat])
    for layer, arrays in zip(weighted, initial_weights(workload, seed), strict=True):
        layer.set_weights(arrays)
    if optimizer == "adam":
        optimizer = optimizers.Adam(1e-3)
    elif optimizer == "sgd":
        optimizer = optimizers.SGD(0.01)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def benchmark_mlp(optimizer="adam", seed=0):
    """The benchmark MLP (784-512-256-10, ReLU, softmax cross-entropy), compiled."""
    return fastnn_model(WORKLOADS["mlp128"], seed=seed, optimizer=optimizer)


def tabular_net(optimizer="adam", seed=0):
    """The tabular net 20-64-64-2 (ReLU, softmax cross-entropy), compiled."""
    return fastnn_model(WORKLOADS["tabular"], seed=seed, optimizer=optimizer)


def deep_narrow_net(optimizer="adam", seed=0):
    """20 x Dense(100, relu) on 100 features, then softmax over 10 classes, compiled."""
    return fastnn_model(WORKLOADS["deep"], seed=seed, optimizer=optimizer)


def mlp_bn_dropout(optimizer="adam", seed=0):
    """The benchmark MLP with Dense -> BatchNorm -> ReLU -> Dropout(0.2) hidden layers."""
    return fastnn_model(WORKLOADS["bn"], seed=seed, optimizer=optimizer)


def residual_mlp(optimizer="adam", seed=0, skips=True):
    """The residual MLP (README "Graphs of layers"); ``skips=False``: the same layers as a
    plain Sequential."""
    return fastnn_model(WORKLOADS["residual"], seed=seed, optimizer=optimizer, skips=skips)


def warmup_rows(n, batch):
    """Rows a warm-up fit trains on: two full batches and the epoch's last, shorter batch, so
    systems that compile per batch shape have seen every shape before the timed epoch."""
    return min(n, 2 * batch + n % batch)


def fastnn_runner(model, x, y, batch, backend=None):
    """A function timing one shuffled epoch of ``model.fit`` (``timed``'s dict), after a
    warm-up fit; ``backend`` "numpy" runs it on the NumPy reference, "c" on the C kernels,
    None on the active one (the active one is restored after each fit)."""
    import fastnn

    def fit(rows):
        before = fastnn.backend.backend()
        fastnn.set_backend(backend or before)
        try:
            model.fit(x[:rows], y[:rows], batch_size=batch, epochs=1, verbose=0)
        finally:
            fastnn.set_backend(before)
    fit(warmup_rows(len(x), batch))
    run = lambda: timed(lambda: fit(len(x)))  # noqa: E731
    run.model = model
    return run


# ---- the floor and timing -------------------------------------------------------------------
def gemm_floor_epoch(x, sizes, batch_size, dtype=np.float32, skip_first_dx=True,
                     blas_threads=None):
    """Seconds for one epoch of only the matrix products an MLP of ``sizes`` needs (forward,
    weight gradients, input gradients except the first layer's), through numpy's BLAS into
    preallocated buffers: the floor no MLP trainer using the same BLAS can beat."""
    return gemm_floor_timed(x, sizes, batch_size, dtype, skip_first_dx, blas_threads)["wall"]


def gemm_floor_timed(x, sizes, batch_size, dtype=np.float32, skip_first_dx=True,
                     blas_threads=None):
    """As gemm_floor_epoch, returning ``timed``'s dict (wall and CPU seconds). With
    ``blas_threads``, the BLAS runs on that many of its own threads (fastnn's default thread
    policy holds it at one in a process that imported fastnn)."""
    rng = np.random.default_rng(0)
    # LeCun-scaled weights keep activations near 1 through any depth: values that shrink
    # to subnormals would make the products many times slower (seen: 20x, 100-wide)
    ws = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [np.empty((batch_size, s), dtype) for s in sizes]
    grads = [np.empty((batch_size, s), dtype) for s in sizes]
    dws = [np.empty_like(w) for w in ws]
    n = len(x)

    def epoch():
        for lo in range(0, n, batch_size):
            b = min(batch_size, n - lo)
            acts[0][:b] = x[lo:lo + b]
            for i, w in enumerate(ws):
                np.matmul(acts[i][:b], w, out=acts[i + 1][:b])
            grads[-1][:b] = acts[-1][:b]
            for i in range(len(ws) - 1, -1, -1):
                np.matmul(acts[i][:b].T, grads[i + 1][:b], out=dws[i])
                if i > 0 or not skip_first_dx:
                    np.matmul(grads[i + 1][:b], ws[i].T, out=grads[i][:b])
    if blas_threads is None:
        return timed(epoch)
    from threadpoolctl import threadpool_limits
    with threadpool_limits(blas_threads, user_api="blas"):  # set before the clock starts
        return timed(epoch)


def timed(fn):
    """Run ``fn()``; {"wall": seconds, "cpu": CPU seconds of this process (all its threads),
    "result": what fn returned}."""
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "result": result}


def best_of(fn, repeats):
    """Minimum over repeats: the least-disturbed run on a shared machine."""
    return min(fn() for _ in range(repeats))


def median_of(fn, repeats):
    return float(np.median([fn() for _ in range(repeats)]))


def pin_process(cpus):
    """Pin every thread of this process (the BLAS' and OpenMP's pools included: a new thread
    inherits its creator's mask, an existing one keeps its own) to ``cpus``."""
    cpus = set(cpus)
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # the thread exited meanwhile
            pass


def peer_env(threads):
    """The environment of a worker process running with ``threads`` threads: the user's own
    (USER_ENV), with the usual thread knobs set, and XLA told to run single-threaded for 1."""
    env = dict(USER_ENV)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    env["FASTNN_BENCH_THREADS"] = str(threads)
    if threads == 1:
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false "
                            "intra_op_parallelism_threads=1").strip()
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ---- what every script prints first --------------------------------------------------------
SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "amx_tile")


def cpu_description():
    """{"model": lscpu's model name, "flags": the SIMD flags above that the CPU has, "cpus":
    online CPUs, "threads_per_core"}, from lscpu (or /proc/cpuinfo without it)."""
    fields = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    flags = fields.get("Flags", "")
    model = fields.get("Model name", "")
    if not flags or not model:
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    k = k.strip()
                    if k == "model name" and not model:
                        model = v.strip()
                    elif k == "flags" and not flags:
                        flags = v.strip()
        except OSError:
            pass
    have = set(flags.split())
    return {"model": model, "flags": [f for f in SIMD_FLAGS if f in have],
            "cpus": os.cpu_count(), "threads_per_core": fields.get("Thread(s) per core", "?")}


def package_versions(names=("numpy", "fastnn", "threadpoolctl", "torch", "jax", "jaxlib",
                            "optax", "keras", "scikit-learn")):
    """{name: version} of the installed packages among ``names`` (read from their metadata,
    without importing them: the peers stay out of this process); fastnn's from the tree."""
    from importlib import metadata
    out = {}
    for name in names:
        if name == "fastnn":
            try:
                import fastnn
                out[name] = fastnn.__version__
            except ImportError:
                pass
            continue
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def blas_description():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    text = "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} "
                     f"threads, {i.get('architecture')})" for i in threadpool_info()
                     if i.get("user_api") == "blas")
    import sys
    if "fastnn" in sys.modules:  # its policy holds the BLAS at one thread when adaptive
        text += f"; fastnn thread policy: {sys.modules['fastnn'].threads.policy()}"
    return text


def machine_description():
    import platform
    cpu = cpu_description()
    return {"cpu": cpu["model"], "simd": cpu["flags"], "cores": os.cpu_count(),
            "threads_per_core": cpu["threads_per_core"], "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas_description(), "packages": package_versions()}


def header_lines(machine=None):
    """The lines each script prints before its table: CPU, SIMD flags, packages, BLAS."""
    m = machine or machine_description()
    flags = ", ".join(m["simd"]) or "no AVX2"
    avx512 = "AVX-512" if "avx512f" in m["simd"] else ("AVX2" if "avx2" in m["simd"] else "baseline")
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return [f"CPU: {m['cpu']} ({m['cores']} CPUs, {m['threads_per_core']} thread(s) per core); "
            f"widest SIMD: {avx512} [{flags}]",
            f"Python {m['python']}; {pkgs}",
            f"BLAS: {m['blas'] or 'unknown'}"]


def print_header(machine=None):
    print("\n".join(header_lines(machine)), flush=True)
    print(flush=True)


def markdown_table(header, rows):
    """A markdown table from a header list and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- the driver's side of bench/peers.py ----------------------------------------------------
PEERS_REQUIRE = {"floor": (), "fastnn": (), "fastnn_fixed": (), "torch": ("torch",), "torch_compile": ("torch",),
                 "jax_step": ("jax", "optax"), "jax_scan": ("jax", "optax"),
                 "keras_jax": ("keras", "jax")}
PEER_LABELS = {"floor": "GEMM floor", "fastnn": "fastnn", "fastnn_fixed": "fastnn, fixed policy",
               "torch": "PyTorch eager",
               "torch_compile": "torch.compile", "jax_step": "JAX jit step",
               "jax_scan": "JAX scanned epoch", "keras_jax": "Keras 3 (JAX)"}


def missing_modules(system):
    """The modules ``system`` needs that are not installed (found without importing them)."""
    import importlib.util
    return [m for m in PEERS_REQUIRE[system] if importlib.util.find_spec(m) is None]


class PeerError(RuntimeError):
    """A worker reported an error (its message says which system and what failed)."""


class PeerWorker:
    """One system of bench/peers.py in a process of its own, with ``threads`` threads, pinned
    to ``cpus`` (all its threads: the mask is set before the interpreter starts, so every
    thread it makes inherits it) or unpinned when None. Raises PeerError when the system
    cannot start (a missing package is checked first: see ``missing_modules``)."""

    def __init__(self, system, threads, cpus=None):
        missing = missing_modules(system)
        if missing:
            raise PeerError(f"{PEER_LABELS[system]} skipped: {', '.join(missing)} not installed")
        self.system, self.label = system, PEER_LABELS[system]
        preexec = (lambda: os.sched_setaffinity(0, set(cpus))) if cpus else None
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers.py"),
             "--system", system],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=peer_env(threads),
            preexec_fn=preexec)
        try:
            self.version = self.ask(cmd="version")["version"]
        except PeerError:
            self.close()
            raise

    def ask(self, **msg):
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the worker has exited: readline below says so
        line = self.proc.stdout.readline()
        if not line:
            raise PeerError(f"{self.label}: its worker process (bench/peers.py) exited with "
                            f"code {self.proc.wait()} (its error is printed above)")
        reply = json.loads(line)
        if "error" in reply:
            raise PeerError(f"{self.label}: {reply['error']}")
        return reply

    def setup(self, case, rows, seed=0):
        """Build and warm up ``case`` (a key of WORKLOADS) on ``rows`` rows; returns a function
        timing one epoch: {"wall", "cpu"} of the worker process."""
        self.ask(cmd="setup", case=case, rows=rows, seed=seed)
        return self.epoch_runner()

    def predict(self, rows, chunk, case="mlp128"):
        self.ask(cmd="predict", case=case, rows=rows, chunk=chunk)
        return self.epoch_runner()

    def epoch_runner(self):
        def run():
            reply = self.ask(cmd="run")
            return {"wall": reply["wall"], "cpu": reply["cpu"], "result": reply.get("loss")}
        return run

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def start_peers(systems, threads, cpus=None, notes=None):
    """{system: PeerWorker} for the systems that start; a note for each that does not (also
    printed), appended to ``notes``."""
    workers = {}
    for s in systems:
        try:
            workers[s] = PeerWorker(s, threads, cpus)
        except PeerError as exc:
            print(f"note: {exc}", flush=True)
            if notes is not None:
                notes.append(str(exc))
    return workers


def interleaved(runners, repeats, pause=0.2, notes=None):
    """Run ``runners`` ({name: fn returning timed()'s dict}) in ``repeats`` rounds, the order
    reversed every other round (no system always runs right after the same other one); before
    each run, ``pause`` seconds for the idle threads of the previous system to stop spinning
    (OpenBLAS's spin ~0.1 s after their last product). {name: {"wall": [...], "cpu": [...]}}.
    A worker that fails (PeerError) is dropped from the result with a note (printed, and
    appended to ``notes``); the others go on."""
    times = {k: {"wall": [], "cpu": []} for k in runners}
    order = list(runners)
    for r in range(repeats):
        for k in (order if r % 2 == 0 else order[::-1]):
            if k not in times:
                continue
            time.sleep(pause)
            try:
                t = runners[k]()
            except PeerError as exc:
                print(f"note: {exc}", flush=True)
                if notes is not None:
                    notes.append(str(exc))
                del times[k]
                continue
            times[k]["wall"].append(t["wall"])
            times[k]["cpu"].append(t["cpu"])
    return times


def ratio_summary(times, reference):
    """{name: {"wall": median seconds, "cpu": ..., "wall_vs_<reference>": median over rounds of
    name's time / reference's time in the same round, "cpu_vs_<reference>": ...}}"""
    out = {}
    ref = times.get(reference)
    for k, t in times.items():
        d = {m: float(np.median(t[m])) for m in ("wall", "cpu")}
        if ref is not None:
            for m in ("wall", "cpu"):
                d[f"{m}_vs_{reference}"] = float(np.median(np.array(t[m]) / np.array(ref[m])))
        out[k] = d
    return out
