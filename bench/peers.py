"""One training system per process, driven by bench/suite.py and bench/contention.py.

    python bench/peers.py --system torch     # floor, fastnn, torch, torch_compile,
                                             # jax_step, jax_scan, keras_jax

Each system runs in a process of its own, started with the environment the user started
Python with (bench/common.py's USER_ENV plus the thread knobs): fastnn and PyTorch share one
libgomp when they run in one process (PyTorch's wheel ships it under the usual name) and its
OMP_WAIT_POLICY is whatever the environment said when the first of them loaded it (fastnn
wants "passive", PyTorch is ~15% faster at batch 128 with libgomp's default, measured); JAX
and XLA bring thread pools of their own. The driver pins the process (all its threads) to
one core for single-thread figures; every reply reports wall and CPU seconds of the process.

Every system trains the workloads of bench/common.py (WORKLOADS) from the same description,
the same data (made in each process by common.workload_data) and the same initial weights
(common.initial_weights), with Adam(1e-3, epsilon 1e-7) and sparse softmax cross-entropy,
on shuffled batches; the epoch's last, shorter batch is trained too.

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout (anything the
frameworks print goes to stderr).
    {"cmd": "version"}                                 -> {"version": "...", "threads": n}
    {"cmd": "setup", "case": "mlp128", "rows": 60000, "seed": 0}
                                                       -> {"setup_s": s} (built, warmed up)
    {"cmd": "run"}                                     -> {"wall": s, "cpu": s, "loss": l}
    {"cmd": "predict", "rows": 10000, "chunk": 1000}   -> (torch) sets up inference timing
    {"cmd": "outputs", "case": "bn", "rows": 8, "seed": 0}
                                                       -> {"outputs": class probabilities of the
                                                          untrained model in inference mode}
    {"cmd": "optim", "name": "Adam", "n": 1000000, "repeats": 5, "variant": "fused"}
                                                       -> (torch) {"seconds": s or null}
An error gives {"error": "message"}; the process stays up for the next command.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from common import (PEER_LABELS, WORKLOADS, gemm_floor_timed, initial_weights, timed, warmup_rows,
                    workload_data)

THREADS = int(os.environ.get("FASTNN_BENCH_THREADS", "0")) or None

EPSILON = 1e-7  # Keras' Adam epsilon, used by every system
BN_EPSILON, BN_MOMENTUM = 1e-3, 0.99  # Keras' BatchNormalization defaults


# ---- the GEMM floor and fastnn --------------------------------------------------------------
class Floor:
    def version(self):
        return np.__version__

    def setup(self, wl, x, y, seed):
        sizes = wl.dense_sizes()
        nt = THREADS or len(os.sched_getaffinity(0))
        return lambda: gemm_floor_timed(x, sizes, wl.batch, blas_threads=nt)


class Fastnn:
    adaptive = None  # the default thread policy

    def __init__(self):
        import fastnn
        self.fastnn = fastnn
        if THREADS or self.adaptive is not None:
            fastnn.set_num_threads(THREADS or len(os.sched_getaffinity(0)),
                                   adaptive=self.adaptive)

    def version(self):
        return self.fastnn.__version__

    def setup(self, wl, x, y, seed):
        from common import fastnn_model, fastnn_runner
        return fastnn_runner(fastnn_model(wl, seed), x, y, wl.batch)

    def outputs(self, wl, x, seed):
        from common import fastnn_model
        return fastnn_model(wl, seed).predict(x, verbose=0)


class FastnnFixed(Fastnn):
    """fastnn under set_num_threads(n, adaptive=False): the BLAS's own threads
    (fastnn/threads.py)."""
    adaptive = False


# ---- PyTorch --------------------------------------------------------------------------------
class Torch:
    compiled = False

    def __init__(self):
        import torch
        self.torch = torch
        if THREADS:
            torch.set_num_threads(THREADS)

    def version(self):
        return self.torch.__version__

    def model(self, wl, seed):
        """The workload as a torch.nn.Module returning logits (CrossEntropyLoss applies the
        softmax), holding common.initial_weights."""
        torch = self.torch
        nn = torch.nn
        weights = iter(initial_weights(wl, seed))

        class Residual(nn.Module):
            def __init__(self, block):
                super().__init__()
                self.block = block

            def forward(self, h):
                return h + self.block(h)

        def build(specs, width):
            mods = []
            for s in specs:
                if s[0] == "dense":
                    lin = nn.Linear(width, s[1])
                    w, b = next(weights)
                    with torch.no_grad():
                        lin.weight.copy_(torch.from_numpy(w.T.copy()))
                        lin.bias.copy_(torch.from_numpy(b))
                    mods.append(lin)
                    if s[2] == "relu":
                        mods.append(nn.ReLU())
                    width = s[1]
                elif s[0] == "bn":
                    next(weights)  # ones and zeros: BatchNorm1d's own initial state
                    mods.append(nn.BatchNorm1d(width, eps=BN_EPSILON, momentum=1 - BN_MOMENTUM))
                elif s[0] == "relu":
                    mods.append(nn.ReLU())
                elif s[0] == "dropout":
                    mods.append(nn.Dropout(s[1]))
                elif s[0] == "residual":
                    inner, width = build(s[1], width)
                    mods.append(Residual(nn.Sequential(*inner)))
            return mods, width
        mods, _ = build(wl.specs, wl.features)
        return nn.Sequential(*mods)

    def setup(self, wl, x, y, seed):
        torch = self.torch
        model = self.model(wl, seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=EPSILON)
        lossf = torch.nn.CrossEntropyLoss()
        forward = torch.compile(model) if self.compiled else model
        xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
        batch = wl.batch

        def epoch(n):
            model.train()
            perm = torch.randperm(n)
            total = torch.zeros(())
            for lo in range(0, n, batch):
                idx = perm[lo:lo + batch]
                opt.zero_grad(set_to_none=True)
                loss = lossf(forward(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
            return float(total) / n
        epoch(warmup_rows(len(x), batch))  # torch.compile compiles here, for both shapes
        return lambda: timed(lambda: epoch(len(x)))

    def outputs(self, wl, x, seed):
        torch = self.torch
        with torch.no_grad():
            return torch.softmax(self.model(wl, seed).eval()(torch.from_numpy(x)), dim=1).numpy()

    def predict(self, wl, x, chunk):
        torch = self.torch
        model = self.model(wl, 0).eval()
        xt = torch.from_numpy(x)

        def run():
            with torch.no_grad():
                for lo in range(0, len(xt), chunk):
                    torch.softmax(model(xt[lo:lo + chunk]), dim=1)
        run()
        return lambda: timed(run)

    def optim(self, name, n, repeats, variant):
        """Seconds of the best of ``repeats`` steps of torch.optim's ``name`` on one float32
        parameter of ``n`` elements (``variant``: "foreach" or "fused"); None when this
        PyTorch has no such variant on the CPU."""
        torch = self.torch
        factories = {
            "SGD+momentum": lambda p, **kw: torch.optim.SGD(p, lr=0.01, momentum=0.9, **kw),
            "Adam": lambda p, **kw: torch.optim.Adam(p, lr=1e-3, **kw),
            "AdamW": lambda p, **kw: torch.optim.AdamW(p, lr=1e-3, weight_decay=0.004, **kw),
            "Adamax": lambda p, **kw: torch.optim.Adamax(p, lr=1e-3, **kw),
            "Nadam": lambda p, **kw: torch.optim.NAdam(p, lr=1e-3, momentum_decay=1.0, **kw),
            "RMSprop": lambda p, **kw: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, **kw),
            "Adagrad": lambda p, **kw: torch.optim.Adagrad(p, lr=1e-3, **kw),
        }
        if name not in factories:
            return None
        gen = torch.Generator().manual_seed(0)
        p = torch.randn(n, generator=gen, dtype=torch.float32).requires_grad_(True)
        p.grad = torch.randn(n, generator=gen, dtype=torch.float32)
        try:
            opt = factories[name]([p], **{variant: True})
            opt.step()
        except (RuntimeError, TypeError, ValueError):  # e.g. no fused CPU kernel for this one
            return None
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            opt.step()
            best = min(best, time.perf_counter() - t0)
        return best


class TorchCompile(Torch):
    compiled = True


# ---- JAX ------------------------------------------------------------------------------------
class Jax:
    """A hand-written JAX training step (what a JAX user writes: a loss, jax.value_and_grad,
    optax.adam, jax.jit with donated buffers); ``scan``: the whole epoch, shuffle included, one
    compiled function (lax.scan over the batches, then the last shorter batch)."""
    scan = False

    def __init__(self):
        import jax
        import optax
        self.jax, self.optax = jax, optax

    def version(self):
        return f"jax {self.jax.__version__}, optax {self.optax.__version__}"

    def init(self, wl, seed):
        jnp = self.jax.numpy
        params, state = [], []
        weighted = iter(initial_weights(wl, seed))

        def walk(specs):
            for s in specs:
                if s[0] == "dense":
                    w, b = next(weighted)
                    params.append({"w": jnp.asarray(w), "b": jnp.asarray(b)})
                elif s[0] == "bn":
                    g, b, m, v = next(weighted)
                    params.append({"gamma": jnp.asarray(g), "beta": jnp.asarray(b)})
                    state.append({"mean": jnp.asarray(m), "var": jnp.asarray(v)})
                elif s[0] == "residual":
                    walk(s[1])
        walk(wl.specs)
        return params, state

    def forward(self, wl, params, state, x, key, training=True):
        """Forward pass: logits, the BatchNorm moving statistics after this batch (Keras'
        update), and the dropout key for the next batch. ``training=False``: BatchNorm uses
        the moving statistics and Dropout passes its input through."""
        jax = self.jax
        jnp = jax.numpy
        pi, si = iter(params), iter(state)
        new_state = []

        def walk(specs, h, key):
            for s in specs:
                if s[0] == "dense":
                    p = next(pi)
                    h = h @ p["w"] + p["b"]
                    if s[2] == "relu":
                        h = jax.nn.relu(h)
                elif s[0] == "bn" and not training:
                    p, st = next(pi), next(si)
                    h = (h - st["mean"]) * jax.lax.rsqrt(st["var"] + BN_EPSILON) * p["gamma"] + p["beta"]
                elif s[0] == "bn":
                    p, st = next(pi), next(si)
                    mean, var = h.mean(axis=0), h.var(axis=0)
                    h = (h - mean) * jax.lax.rsqrt(var + BN_EPSILON) * p["gamma"] + p["beta"]
                    mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
                    new_state.append({k: st[k] * BN_MOMENTUM + v * (1 - BN_MOMENTUM)
                                      for k, v in (("mean", mean), ("var", var))})
                elif s[0] == "relu":
                    h = jax.nn.relu(h)
                elif s[0] == "dropout" and training:
                    key, sub = jax.random.split(key)
                    keep = jax.random.bernoulli(sub, 1.0 - s[1], h.shape)
                    h = jnp.where(keep, h / (1.0 - s[1]), 0.0)
                elif s[0] == "residual":
                    z, key = walk(s[1], h, key)
                    h = h + z
            return h, key
        logits, key = walk(wl.specs, x, key)
        return logits, new_state, key

    def outputs(self, wl, x, seed):
        params, state = self.init(wl, seed)
        logits, _, _ = self.forward(wl, params, state, self.jax.numpy.asarray(x), None,
                                    training=False)
        return np.asarray(self.jax.nn.softmax(logits, axis=1))

    def make_step(self, wl, opt):
        jax, optax = self.jax, self.optax

        def loss_fn(params, state, x, y, key):
            logits, new_state, key = self.forward(wl, params, state, x, key)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, (new_state, key)

        def step(params, opt_state, state, key, x, y):
            (loss, (state, key)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, state, x, y, key)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, state, key, loss
        return step

    def setup(self, wl, x, y, seed):
        jax, optax = self.jax, self.optax
        params, state = self.init(wl, seed)
        opt = optax.adam(1e-3, eps=EPSILON)
        carry = [params, opt.init(params), state, jax.random.PRNGKey(seed)]
        step = self.make_step(wl, opt)
        batch, n = wl.batch, len(x)
        if self.scan:
            epoch = self.scanned_epoch(step, batch, n)
            xd, yd = jax.device_put(x), jax.device_put(y.astype(np.int32))

            def run():
                *carry[:], loss = epoch(*carry, xd, yd)
                return float(jax.block_until_ready(loss))
            run()  # compiles it, and trains the first epoch: the timed epochs are the next ones
            return lambda: timed(run)

        jstep = jax.jit(step, donate_argnums=(0, 1, 2, 3))
        y32 = y.astype(np.int32)
        rng = np.random.default_rng(seed)

        def epoch_loop(rows):
            perm = rng.permutation(rows)
            losses = []
            for lo in range(0, rows, batch):
                idx = perm[lo:lo + batch]
                *carry[:], loss = jstep(*carry, x[idx], y32[idx])
                losses.append(loss * len(idx))
            return float(jax.block_until_ready(sum(losses))) / rows
        epoch_loop(warmup_rows(n, batch))  # compiles the step for both batch shapes
        return lambda: timed(lambda: epoch_loop(n))

    def scanned_epoch(self, step, batch, n):
        jax = self.jax
        jnp = jax.numpy
        steps, tail = n // batch, n % batch

        def epoch(params, opt_state, state, key, x, y):
            key, pkey = jax.random.split(key)
            perm = jax.random.permutation(pkey, n)

            def body(carry, idx):
                *carry, loss = step(*carry, x[idx], y[idx])
                return tuple(carry), loss * batch
            carry, losses = jax.lax.scan(body, (params, opt_state, state, key),
                                         perm[:steps * batch].reshape(steps, batch))
            total = losses.sum()
            if tail:
                idx = perm[steps * batch:]
                *carry, loss = step(*carry, x[idx], y[idx])
                total = total + loss * tail
            return (*carry, total / jnp.float32(n))
        return jax.jit(epoch, donate_argnums=(0, 1, 2, 3))


class JaxScan(Jax):
    scan = True


# ---- Keras 3 on JAX -------------------------------------------------------------------------
class KerasJax:
    """Keras 3 as its users write it (Sequential or functional model, compile, fit), with the
    JAX backend (KERAS_BACKEND=jax, set before keras is imported)."""

    def __init__(self):
        os.environ["KERAS_BACKEND"] = "jax"
        import keras
        self.keras = keras
        if keras.backend.backend() != "jax":
            raise RuntimeError(f"Keras runs on {keras.backend.backend()!r}, not JAX")

    def version(self):
        import jax
        return f"keras {self.keras.__version__}, jax {jax.__version__}"

    def outputs(self, wl, x, seed):
        return np.asarray(self.model(wl, seed)(x, training=False))

    def setup(self, wl, x, y, seed):
        keras = self.keras
        model = self.model(wl, seed)
        model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=EPSILON),
                      loss="sparse_categorical_crossentropy")
        rows = warmup_rows(len(x), wl.batch)
        model.fit(x[:rows], y[:rows], batch_size=wl.batch, epochs=1, verbose=0)

        def epoch():
            return model.fit(x, y, batch_size=wl.batch, epochs=1, verbose=0).history["loss"][-1]
        return lambda: timed(epoch)

    def model(self, wl, seed):
        """The workload as a Keras functional model holding common.initial_weights."""
        keras = self.keras
        layers = keras.layers
        keras.utils.set_random_seed(seed)
        weighted = []

        def make(spec):
            if spec[0] == "dense":
                layer = layers.Dense(spec[1], activation=spec[2])
            elif spec[0] == "bn":
                layer = layers.BatchNormalization()
            elif spec[0] == "relu":
                return layers.Activation("relu")
            else:
                return layers.Dropout(spec[1])
            weighted.append(layer)
            return layer
        inp = keras.Input(shape=(wl.features,))
        h = inp
        for spec in wl.specs:
            if spec[0] == "residual":
                z = h
                for inner in spec[1]:
                    z = make(inner)(z)
                h = layers.Add()([h, z])
            else:
                h = make(spec)(h)
        model = keras.Model(inp, h)
        for layer, arrays in zip(weighted, initial_weights(wl, seed), strict=True):
            layer.set_weights(arrays)
        return model


SYSTEMS = {"floor": Floor, "fastnn": Fastnn, "fastnn_fixed": FastnnFixed, "torch": Torch, "torch_compile": TorchCompile,
           "jax_step": Jax, "jax_scan": JaxScan, "keras_jax": KerasJax}


def serve(system, proto):
    runner = None
    data = {}
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg.get("cmd")
        reply = {}
        try:
            if cmd == "version":
                reply = {"version": system.version(), "threads": THREADS}
            elif cmd == "setup":
                runner = None  # frees the previous case's model before building the next
                wl = WORKLOADS[msg["case"]]
                key = (wl.data, msg["rows"])
                if key not in data:
                    data.clear()
                    data[key] = workload_data(wl, msg["rows"])
                x, y = data[key]
                t0 = time.perf_counter()
                runner = system.setup(wl, x, y, msg.get("seed", 0))
                reply = {"setup_s": time.perf_counter() - t0}
            elif cmd == "predict":
                wl = WORKLOADS[msg.get("case", "mlp128")]
                x, _ = workload_data(wl, msg["rows"])
                runner = system.predict(wl, x, msg["chunk"])
                reply = {"ok": True}
            elif cmd == "outputs":
                wl = WORKLOADS[msg["case"]]
                x, _ = workload_data(wl, msg["rows"])
                reply = {"outputs": np.asarray(system.outputs(wl, x, msg.get("seed", 0)),
                                               np.float64).tolist()}
            elif cmd == "run":
                if runner is None:
                    raise RuntimeError("run before a successful setup")
                t = runner()
                reply = {"wall": t["wall"], "cpu": t["cpu"], "loss": t["result"]}
            elif cmd == "optim":
                reply = {"seconds": system.optim(msg["name"], msg["n"], msg["repeats"],
                                                 msg["variant"])}
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except Exception as exc:  # reported to the driver, which prints it as a note
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            reply = {"error": f"{type(exc).__name__}: {first}"}
        proto.write(json.dumps(reply) + "\n")
        proto.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    args = ap.parse_args()
    # the replies go to the real stdout; anything else printed (compilers, warnings) to stderr
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        system = SYSTEMS[args.system]()
    except Exception as exc:
        proto.write(json.dumps({"error": f"{PEER_LABELS[args.system]} unavailable: "
                                         f"{type(exc).__name__}: {exc}"}) + "\n")
        proto.flush()
        return
    serve(system, proto)


if __name__ == "__main__":
    main()
