"""Optimizers: C kernels vs the NumPy reference vs the published (Keras 3) rules written out
independently here, over many steps; torch.optim where the rules coincide; clipping modes,
weight decay, NaN semantics, frozen variables, learning-rate assignment, convergence."""
import contextlib
import io
import math

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, optimizers
from fastnn.layers.base import Variable
from fastnn.optimizers import schedules

from conftest import C, REF, requires_c

STEPS = 40
SHAPES = [(3, 5), (7,), (1, 1)]

CONFIGS = [
    ("SGD", dict(learning_rate=0.05)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(learning_rate=0.01)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True)),
    ("AdamW", dict(learning_rate=0.01, weight_decay=0.05)),
    ("Adamax", dict(learning_rate=0.01)),
    ("Nadam", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.8)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.8, centered=True)),
    ("Adagrad", dict(learning_rate=0.05)),
    ("Lion", dict(learning_rate=0.01)),
    ("Lion", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9)),
    ("Adadelta", dict(learning_rate=1.0)),
    ("Adadelta", dict(learning_rate=0.5, rho=0.9, epsilon=1e-4)),
    ("Ftrl", dict(learning_rate=0.05)),
    ("Ftrl", dict(learning_rate=0.05, learning_rate_power=-0.3, l1_regularization_strength=0.01,
                  l2_regularization_strength=0.02, l2_shrinkage_regularization_strength=0.03,
                  beta=0.5)),
    ("Ftrl", dict(learning_rate=0.05, learning_rate_power=0.0, initial_accumulator_value=0.5)),
    ("Lamb", dict(learning_rate=0.01)),
    ("Adafactor", dict(learning_rate=0.05)),
    ("Adafactor", dict(learning_rate=0.5, clip_threshold=0.5, epsilon_2=0.01, beta_2_decay=-0.5)),
]
EXTRAS = [{}, {"clipnorm": 1.0}, {"global_clipnorm": 2.0}, {"clipvalue": 0.5},
          {"weight_decay": 0.02}, {"clipvalue": 0.5, "clipnorm": 1.5}]

TOL = {np.float32: 1e-6, np.float64: 1e-12}

# Keras 3 optimizers added after the first six
NEW_KINDS = ("Lion", "Adadelta", "Ftrl", "Lamb", "Adafactor")


@contextlib.contextmanager
def using_backend(name):
    old = fastnn.backend.backend()
    fastnn.set_backend(name) if hasattr(fastnn, "set_backend") else fastnn.backend.set_backend(name)
    try:
        yield
    finally:
        fastnn.backend.set_backend(old)


def fixed_problem(dtype, steps=STEPS, seed=0, scale=0.8):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(scale * rng.standard_normal(s)).astype(dtype) for s in SHAPES]
             for _ in range(steps)]
    return init, grads


def run_fastnn(opt, init, grads):
    """Drive an Optimizer on Variables with fixed gradients; return params and states."""
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    for step_grads in grads:
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        opt.apply(vs)
    return [v.value for v in vs], [opt.state_of(v) for v in vs]


# ---- the published rules, written out independently (Keras 3 source, float64) -------------
def formula_trajectory(kind, cfg, extra, init, grads):
    """Keras 3's Optimizer.apply + update_step, transcribed: clip (one mode, Keras' priority),
    weight decay w - w*wd*lr, update, iterations += 1. Everything in float64."""
    cfg = {**cfg, **extra}
    lr_spec = cfg.get("learning_rate")
    ps = [p.astype(np.float64) for p in init]
    st = [dict() for _ in ps]
    u_product = 1.0
    b1, b2 = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.999)
    eps = cfg.get("epsilon", 1e-7)
    for it, step_grads in enumerate(grads):
        lr = lr_spec(it) if callable(lr_spec) else lr_spec
        gs = [g.astype(np.float64) for g in step_grads]
        if cfg.get("clipnorm"):
            c = cfg["clipnorm"]
            gs = [g * c / max(math.sqrt(float(np.sum(g * g))), c) for g in gs]
        elif cfg.get("global_clipnorm"):
            c = cfg["global_clipnorm"]
            n = math.sqrt(sum(float(np.sum(g * g)) for g in gs))
            gs = [g * (c * min(1.0 / n, 1.0 / c)) for g in gs]
        elif cfg.get("clipvalue"):
            gs = [np.clip(g, -cfg["clipvalue"], cfg["clipvalue"]) for g in gs]
        wd = cfg.get("weight_decay")
        if wd:
            ps = [p - p * wd * lr for p in ps]
        t = it + 1
        if kind == "Nadam":
            u_product *= b1 * (1.0 - 0.5 * 0.96 ** t)
        for i, (p, g) in enumerate(zip(ps, gs)):
            s = st[i]
            if kind == "SGD":
                mom = cfg.get("momentum", 0.0)
                if mom:
                    m = s.get("momentum", np.zeros_like(p))
                    m = m * mom - g * lr
                    s["momentum"] = m
                    p = p + (m * mom - g * lr) if cfg.get("nesterov") else p + m
                else:
                    p = p - g * lr
            elif kind in ("Adam", "AdamW"):
                m = s.get("momentum", np.zeros_like(p))
                v = s.get("velocity", np.zeros_like(p))
                m = m + (g - m) * (1 - b1)
                v = v + (g * g - v) * (1 - b2)
                s["momentum"], s["velocity"] = m, v
                alpha = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                if cfg.get("amsgrad"):
                    vh = np.maximum(s.get("velocity_hat", np.zeros_like(p)), v)
                    s["velocity_hat"] = vh
                    v = vh
                p = p - (m * alpha) / (np.sqrt(v) + eps)
            elif kind == "Adamax":
                m = s.get("momentum", np.zeros_like(p))
                u = s.get("norm", np.zeros_like(p))
                m = m + (g - m) * (1 - b1)
                u = np.maximum(b2 * u, np.abs(g))
                s["momentum"], s["norm"] = m, u
                p = p - (lr * m) / ((1 - b1 ** t) * (u + eps))
            elif kind == "Nadam":
                m = s.get("momentum", np.zeros_like(p))
                v = s.get("velocity", np.zeros_like(p))
                u_t = b1 * (1.0 - 0.5 * 0.96 ** t)
                u_t_1 = b1 * (1.0 - 0.5 * 0.96 ** (t + 1))
                u_product_t_1 = u_product * u_t_1
                m = m + (g - m) * (1 - b1)
                v = v + (g * g - v) * (1 - b2)
                s["momentum"], s["velocity"] = m, v
                m_hat = u_t_1 * m / (1 - u_product_t_1) + (1 - u_t) * g / (1 - u_product)
                v_hat = v / (1 - b2 ** t)
                p = p - (m_hat * lr) / (np.sqrt(v_hat) + eps)
            elif kind == "RMSprop":
                rho = cfg.get("rho", 0.9)
                v = rho * s.get("velocity", np.zeros_like(p)) + (1 - rho) * g * g
                s["velocity"] = v
                if cfg.get("centered"):
                    a = rho * s.get("average_gradient", np.zeros_like(p)) + (1 - rho) * g
                    s["average_gradient"] = a
                    den = v - a * a + eps
                else:
                    den = v + eps
                inc = lr * g / np.sqrt(den)
                if cfg.get("momentum", 0.0) > 0:
                    inc = cfg["momentum"] * s.get("momentum", np.zeros_like(p)) + inc
                    s["momentum"] = inc
                p = p - inc
            elif kind == "Adagrad":
                acc = s.get("accumulator", np.full_like(p, cfg.get("initial_accumulator_value", 0.1)))
                acc = acc + g * g
                s["accumulator"] = acc
                p = p - lr * g / np.sqrt(acc + eps)
            elif kind == "Lion":
                b1, b2 = cfg.get("beta_1", 0.9), cfg.get("beta_2", 0.99)
                m = s.get("momentum", np.zeros_like(p))
                p = p - lr * np.sign(m * b1 + g * (1 - b1))
                s["momentum"] = m * b2 + g * (1 - b2)
            elif kind == "Adadelta":
                rho = cfg.get("rho", 0.95)
                a = rho * s.get("accumulated_grad", np.zeros_like(p)) + (1 - rho) * g * g
                d = s.get("accumulated_delta_var", np.zeros_like(p))
                delta = -(np.sqrt(d + eps) * g) / np.sqrt(a + eps)
                s["accumulated_grad"] = a
                s["accumulated_delta_var"] = rho * d + (1 - rho) * delta * delta
                p = p + lr * delta
            elif kind == "Ftrl":
                pw = cfg.get("learning_rate_power", -0.5)
                l1 = cfg.get("l1_regularization_strength", 0.0)
                l2 = cfg.get("l2_regularization_strength", 0.0) + cfg.get("beta", 0.0) / (2 * lr)
                acc = s.get("accumulator", np.full_like(p, cfg.get("initial_accumulator_value", 0.1)))
                lin = s.get("linear", np.zeros_like(p))
                new = acc + g * g
                lin = lin + (g + 2 * cfg.get("l2_shrinkage_regularization_strength", 0.0) * p) \
                    - (new ** -pw - acc ** -pw) / lr * p
                quad = new ** -pw / lr + 2 * l2
                p = (np.clip(lin, -l1, l1) - lin) / quad
                s["accumulator"], s["linear"] = new, lin
            elif kind == "Lamb":
                m = s.get("momentum", np.zeros_like(p))
                v = s.get("velocity", np.zeros_like(p))
                m = m + (g - m) * (1 - b1)
                v = v + (g * g - v) * (1 - b2)
                s["momentum"], s["velocity"] = m, v
                u = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
                w_norm, u_norm = np.sqrt(np.sum(p * p)), np.sqrt(np.sum(u * u))
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
                p = p - ratio * lr * u
            elif kind == "Adafactor":
                rms = lambda x: np.sqrt(np.mean(x * x))  # noqa: E731
                rho_t = min(lr, 1 / math.sqrt(t))
                alpha = max(cfg.get("epsilon_2", 1e-3), rms(p)) * rho_t
                G = g * g + cfg.get("epsilon_1", 1e-30)
                b = 1 - t ** cfg.get("beta_2_decay", -0.8)
                if p.ndim >= 2:
                    r = b * s.get("r", np.zeros(p.shape[:-1])) + (1 - b) * G.mean(axis=-1)
                    c = b * s.get("c", np.zeros(p.shape[:-2] + p.shape[-1:])) + \
                        (1 - b) * G.mean(axis=-2)
                    s["r"], s["c"] = r, c
                    v = (r / r.mean(axis=-1, keepdims=True))[..., None] * c[..., None, :]
                else:
                    v = b * s.get("velocity", np.zeros_like(p)) + (1 - b) * G
                    s["velocity"] = v
                u = g / np.sqrt(v)
                p = p - alpha * (u / max(1.0, rms(u) / cfg.get("clip_threshold", 1.0)))
            ps[i] = p
    return ps, st


def assert_traj(a, b, dtype, what):
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        scale = max(1.0, float(np.max(np.abs(y))) if y.size else 1.0)
        np.testing.assert_allclose(x, y, rtol=TOL[dtype], atol=TOL[dtype] * scale,
                                   err_msg=f"{what}, variable {i}")


@requires_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", EXTRAS, ids=lambda e: ",".join(e) or "plain")
@pytest.mark.parametrize("kind,cfg", CONFIGS, ids=lambda c: c if isinstance(c, str) else
                         ",".join(f"{k}={v}" for k, v in c.items() if k != "learning_rate"))
def test_trajectory_c_reference_formula(kind, cfg, extra, dtype):
    if kind == "AdamW" and "weight_decay" in extra:
        extra = {}
    init, grads = fixed_problem(dtype)
    out = {}
    for backend_name in ("c", "numpy"):
        with using_backend(backend_name):
            opt = getattr(optimizers, kind)(**cfg, **extra)
            out[backend_name] = run_fastnn(opt, init, grads)
            assert opt.iterations == STEPS
    (pc, sc), (pr, sr) = out["c"], out["numpy"]
    for p in pc:
        assert p.dtype == dtype
    assert_traj(pc, pr, dtype, f"{kind} C vs reference params")
    for a, b in zip(sc, sr):
        assert sorted(a) == sorted(b)
        assert_traj([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], dtype,
                    f"{kind} C vs reference state")
    pf, sf = formula_trajectory(kind, cfg, extra, init, grads)
    assert_traj(pc, pf, dtype, f"{kind} C vs published rule")
    for a, b in zip(sc, sf):
        assert sorted(a) == sorted(b), "state slot names follow Keras"
        assert_traj([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], dtype,
                    f"{kind} state vs published rule")
    # the trajectories actually moved (a test that cannot fail would not)
    assert not np.allclose(pc[0], init[0])


@requires_c
@pytest.mark.parametrize("kind", ["SGD", "Adam", "Nadam", "RMSprop"])
def test_trajectory_with_schedule_and_callable_learning_rate(kind):
    init, grads = fixed_problem(np.float64)
    sched = schedules.ExponentialDecay(0.02, decay_steps=7, decay_rate=0.5)
    cfg = dict(learning_rate=sched, **({"momentum": 0.5} if kind == "SGD" else {}))
    p1, _ = run_fastnn(getattr(optimizers, kind)(**cfg), init, grads)
    pf, _ = formula_trajectory(kind, cfg, {}, init, grads)
    assert_traj(p1, pf, np.float64, f"{kind} with ExponentialDecay")
    # a callable of the step is evaluated at iterations, exactly like the schedule
    p2, _ = run_fastnn(getattr(optimizers, kind)(**{**cfg, "learning_rate": lambda step: sched(step)}),
                       init, grads)
    np.testing.assert_array_equal(p1[0], p2[0])


# ---- kernels: the same bits for any thread count, bad input ----------------------------------
def _kernel_calls(n_shape, dtype, rng):
    """(name, args builder) for every update kernel, with clip/decay options exercised."""
    def st(fill=0.0):
        return np.full(n_shape, fill, dtype)

    common = dict(weight_decay=0.01, grad_scale=0.7, clipvalue=0.9)
    return [
        ("sgd_update", lambda: ([st(0.1)], dict(learning_rate=0.1, momentum=0.9, nesterov=True, **common))),
        ("sgd_update", lambda: ([None], dict(learning_rate=0.1))),
        ("adam_update", lambda: ([st(0.1), st(0.2), st(0.3)], dict(learning_rate=0.01, beta_1=0.9,
                                 beta_2=0.999, epsilon=1e-7, step=3, **common))),
        ("adam_update", lambda: ([st(0.1), st(0.2), None], dict(learning_rate=0.01, beta_1=0.8,
                                 beta_2=0.99, epsilon=1e-7, step=1))),
        ("adamax_update", lambda: ([st(0.1), st(0.2)], dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999,
                                   epsilon=1e-7, step=5, **common))),
        ("nadam_update", lambda: ([st(0.1), st(0.2)], dict(learning_rate=0.01, beta_1=0.9, beta_2=0.999,
                                  epsilon=1e-7, step=2, u_product=0.9 * 0.52 * 0.9 * 0.539, **common))),
        ("rmsprop_update", lambda: ([st(0.5), st(0.1), st(0.05)], dict(learning_rate=0.01, rho=0.9,
                                    momentum=0.5, epsilon=1e-7, **common))),
        ("rmsprop_update", lambda: ([st(0.5), None, None], dict(learning_rate=0.01, rho=0.9,
                                    momentum=0.0, epsilon=1e-7))),
        ("adagrad_update", lambda: ([st(0.1)], dict(learning_rate=0.1, epsilon=1e-7, **common))),
        ("lion_update", lambda: ([st(0.1)], dict(learning_rate=0.1, beta_1=0.9, beta_2=0.99, **common))),
        ("adadelta_update", lambda: ([st(0.3), st(0.2)], dict(learning_rate=1.0, rho=0.95,
                                     epsilon=1e-7, **common))),
        ("ftrl_update", lambda: ([st(0.3), st(0.2)], dict(
            learning_rate=0.1, learning_rate_power=-0.5, l1_regularization_strength=0.05,
            l2_regularization_strength=0.1, l2_shrinkage_regularization_strength=0.05,
            beta=0.2, **common))),
        ("ftrl_update", lambda: ([st(0.3), st(0.2)], dict(
            learning_rate=0.1, learning_rate_power=-0.7, l1_regularization_strength=0.0,
            l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
            beta=0.0))),
        ("lamb_update", lambda: ([st(0.1), st(0.2)], dict(learning_rate=0.01, beta_1=0.9,
                                 beta_2=0.999, epsilon=1e-7, step=4, **common))),
        ("adafactor_update", lambda: (_adafactor_state(n_shape, dtype), dict(
            learning_rate=0.05, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
            clip_threshold=1.0, step=3, **common))),
        ("ema_update", lambda: ([], dict(momentum=0.9))),
    ]


def _adafactor_state(shape, dtype):
    """[r, c, velocity] for a parameter of ``shape``: factored from rank 2 on."""
    if len(shape) >= 2:
        return [np.full(shape[:-1], 0.4, dtype), np.full(shape[:-2] + shape[-1:], 0.3, dtype),
                None]
    return [None, None, np.full(shape, 0.2, dtype)]


@requires_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300_001,), (601, 503)], ids=["flat", "matrix"])
def test_kernels_same_bits_for_any_thread_count(dtype, shape):
    # above FASTNN_PARALLEL_MIN: the parallel path runs (the matrix: Adafactor's row and
    # column passes, Lamb's blocked norms)
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for name, make in _kernel_calls(shape, dtype, rng):
        out = []
        for nt in (1, 2):
            state, kw = make()
            p = p0.copy()
            getattr(C, name)(p, g, *state, **kw, n_threads=nt)
            out.append([p] + [s for s in state if s is not None])
        for a, b in zip(*out):
            np.testing.assert_array_equal(a, b, err_msg=name)


@requires_c
@pytest.mark.parametrize("ops", [C, REF], ids=["c", "numpy"])
def test_kernel_bad_input(ops):
    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError):
        ops.sgd_update(p.astype(np.int32), p, None, 0.1)
    with pytest.raises(ValueError, match="gradient"):
        ops.sgd_update(p, np.zeros(5, np.float32), None, 0.1)
    with pytest.raises((TypeError, ValueError)):
        ops.sgd_update(p, np.zeros(4, np.float64), None, 0.1)
    with pytest.raises((TypeError, ValueError)):
        ops.adam_update(p, p.copy(), np.zeros(3, np.float32), p.copy(), None, 0.1, 0.9, 0.999,
                        1e-7, 1)
    with pytest.raises(ValueError, match="step"):
        ops.adam_update(p, p.copy(), p.copy(), p.copy(), None, 0.1, 0.9, 0.999, 1e-7, 0)
    with pytest.raises(ValueError, match="clipvalue"):
        ops.adagrad_update(p, p.copy(), p.copy(), 0.1, 1e-7, clipvalue=-1.0)


@requires_c
def test_zero_size_variable_and_empty_kernels():
    v = Variable(np.zeros((0, 3), np.float32), "empty")
    w = Variable(np.ones(3, np.float32), "w")
    w.grad[...] = 1.0
    for kind in ("SGD", "Adam", "Adamax", "Nadam", "RMSprop", "Adagrad") + NEW_KINDS:
        opt = getattr(optimizers, kind)(global_clipnorm=1.0)
        opt.apply([v, w])
        assert v.value.shape == (0, 3) and opt.state_of(v) is not None


# ---- golden values by hand --------------------------------------------------------------
@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
def test_golden_first_steps(backend_name):
    with using_backend(backend_name):
        # Adam, one step: m = 0.1 g, v = 0.001 g^2, alpha = lr sqrt(0.001) / 0.1
        v = Variable(np.array([1.0, -2.0]), "w")
        v.grad[...] = [0.5, -4.0]
        optimizers.Adam(0.1).apply([v])
        for w0, g in ((1.0, 0.5), (-2.0, -4.0)):
            alpha = 0.1 * math.sqrt(0.001) / 0.1
            expect = w0 - (0.1 * g) * alpha / (math.sqrt(0.001 * g * g) + 1e-7)
            assert v.value[[1.0, -2.0].index(w0)] == pytest.approx(expect, rel=1e-14)
        # Adagrad, one step: acc = 0.1 + g^2
        v = Variable(np.array([3.0]), "w")
        v.grad[...] = [2.0]
        optimizers.Adagrad(0.5).apply([v])
        assert v.value[0] == pytest.approx(3.0 - 0.5 * 2.0 / math.sqrt(4.1 + 1e-7), rel=1e-14)
        # SGD with momentum, two steps: v1 = -lr g, v2 = mom v1 - lr g
        v = Variable(np.array([1.0]), "w")
        opt = optimizers.SGD(0.1, momentum=0.5)
        for _ in range(2):
            v.grad[...] = [1.0]
            opt.apply([v])
        assert v.value[0] == pytest.approx(1.0 - 0.1 - (0.05 + 0.1), rel=1e-14)
        assert opt.state_of(v)["momentum"][0] == pytest.approx(-0.15, rel=1e-14)


# ---- clipping ---------------------------------------------------------------------------------
def _vars(values):
    vs = []
    for i, (p, g) in enumerate(values):
        v = Variable(np.array(p, np.float64), f"v{i}")
        v.grad[...] = g
        vs.append(v)
    return vs


@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
def test_clip_modes(backend_name):
    with using_backend(backend_name):
        g1, g2 = np.array([3.0, 4.0]), np.array([0.0, 12.0])  # norms 5 and 12, global 13
        cases = [
            (dict(clipnorm=6.0), [g1, g2 * 6.0 / 12.0]),
            (dict(global_clipnorm=6.5), [g1 * 0.5, g2 * 0.5]),
            (dict(global_clipnorm=20.0), [g1, g2]),
            (dict(clipvalue=3.5), [np.array([3.0, 3.5]), np.array([0.0, 3.5])]),
            # Keras' priority: clipnorm wins, clipvalue is then not applied
            (dict(clipnorm=6.0, clipvalue=0.1), [g1, g2 * 0.5]),
            (dict(clipnorm=0.0), [g1, g2]),  # 0 disables, as Keras
        ]
        for kw, expect in cases:
            vs = _vars([([0.0, 0.0], g1), ([0.0, 0.0], g2)])
            optimizers.SGD(1.0, **kw).apply(vs)
            for v, e, g in zip(vs, expect, (g1, g2)):
                np.testing.assert_allclose(v.value, -e, rtol=1e-14, err_msg=str(kw))
                np.testing.assert_array_equal(v.grad, g)  # gradients are not modified


def test_clipnorm_and_global_clipnorm_are_exclusive():
    with pytest.raises(ValueError, match="only one"):
        optimizers.Adam(clipnorm=1.0, global_clipnorm=1.0)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="clipvalue"):
            optimizers.SGD(clipvalue=bad)


@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
def test_nonfinite_gradients_follow_keras_semantics(backend_name):
    """Documented in optimizers/base.py: NaN/inf propagate, nothing is silently repaired."""
    with using_backend(backend_name), np.errstate(invalid="ignore"):
        nan = float("nan")
        # no clipping / clipvalue: only the NaN element's weight and state become NaN
        for kw in ({}, {"clipvalue": 1.0}):
            vs = _vars([([1.0, 1.0], [nan, 0.5]), ([1.0], [0.5])])
            opt = optimizers.Adam(0.1, **kw)
            opt.apply(vs)
            assert np.isnan(vs[0].value[0]) and np.isnan(opt.state_of(vs[0])["momentum"][0])
            assert np.isfinite(vs[0].value[1]) and np.isfinite(vs[1].value).all()
        # clipnorm: the whole tensor with the NaN goes NaN, other tensors are untouched
        vs = _vars([([1.0, 1.0], [nan, 0.5]), ([1.0], [0.5])])
        optimizers.SGD(0.1, clipnorm=1.0).apply(vs)
        assert np.isnan(vs[0].value).all() and np.isfinite(vs[1].value).all()
        # clipnorm with inf: finite elements of that tensor get a zero gradient (Keras: g*c/inf)
        vs = _vars([([1.0, 1.0], [float("inf"), 0.5])])
        optimizers.SGD(0.1, clipnorm=1.0).apply(vs)
        assert np.isnan(vs[0].value[0]) and vs[0].value[1] == 1.0
        # global_clipnorm: every variable becomes NaN
        vs = _vars([([1.0, 1.0], [nan, 0.5]), ([1.0], [0.5])])
        optimizers.SGD(0.1, global_clipnorm=1.0).apply(vs)
        assert all(np.isnan(v.value).all() for v in vs)


@requires_c
def test_terminate_on_nan_stops_after_a_nonfinite_gradient():
    x = np.ones((64, 3), np.float32)
    y = np.full(64, 1e30, np.float32)
    model = fastnn.Sequential([layers.Input(shape=(3,)), layers.Dense(1)])
    model.compile(optimizer=optimizers.Adam(1.0, global_clipnorm=1.0), loss="mse")
    seen = []
    cb = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["loss"]))
    with contextlib.redirect_stdout(io.StringIO()):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, shuffle=False,
                  callbacks=[cb, callbacks.TerminateOnNaN()])
    assert len(seen) < 8 and not math.isfinite(seen[-1])


# ---- weight decay --------------------------------------------------------------------------
@requires_c
def test_weight_decay_and_exclusions():
    vs = _vars([([2.0], [0.0]), ([2.0], [0.0])])
    vs[1].name = "bias"
    opt = optimizers.SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    opt.apply(vs)
    assert vs[0].value[0] == pytest.approx(2.0 - 2.0 * 0.5 * 0.1, rel=1e-15)
    assert vs[1].value[0] == 2.0
    with pytest.raises(ValueError, match="weight_decay"):
        optimizers.AdamW(weight_decay=None)


@requires_c
def test_user_subclass_without_fusion_gets_clipped_gradient_and_decay():
    class PlainSGD(optimizers.Optimizer):
        def update(self, var, grad, state, lr):
            var.value -= lr * grad

    init, grads = fixed_problem(np.float64, steps=10)
    for kw in ({"clipnorm": 1.0}, {"global_clipnorm": 2.0}, {"clipvalue": 0.3},
               {"weight_decay": 0.1}):
        a, _ = run_fastnn(PlainSGD(0.05, **kw), init, grads)
        b, _ = run_fastnn(optimizers.SGD(0.05, **kw), init, grads)
        assert_traj(a, b, np.float64, str(kw))


# ---- state, frozen variables, iterations ------------------------------------------------------
def _digits_model(opt, seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


@requires_c
@pytest.mark.parametrize("kind", ["SGD", "Adam", "RMSprop"] + list(NEW_KINDS))
def test_frozen_layer_weights_and_state_untouched(kind):
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:256], y[:256]
    opt = getattr(optimizers, kind)(**({"momentum": 0.9} if kind == "SGD" else {}),
                                   weight_decay=0.01)
    m = _digits_model(opt)
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    first = m.layers[0]
    w_before = [v.numpy() for v in first.weights]
    s_before = [{k: a.copy() for k, a in opt.state_of(v).items()} for v in first.weights]
    it = opt.iterations
    first.trainable = False
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert opt.iterations == it + 4
    for v, w, s in zip(first.weights, w_before, s_before):
        np.testing.assert_array_equal(v.value, w)
        for k in s:
            np.testing.assert_array_equal(opt.state_of(v)[k], s[k])
    assert not np.array_equal(m.layers[1].weights[0].value, m.layers[1].weights[0].numpy() * 0)
    first.trainable = True
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    assert not np.array_equal(first.weights[0].value, w_before[0])


@requires_c
def test_nadam_resumes_bit_for_bit_from_copied_state():
    init, grads = fixed_problem(np.float64, steps=12)
    a = optimizers.Nadam(0.01)
    full, _ = run_fastnn(a, init, grads)
    b = optimizers.Nadam(0.01)
    half, sb = run_fastnn(b, init, grads[:6])
    c = optimizers.Nadam(0.01)
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(half)]
    c.build(vs)
    for v, s in zip(vs, sb):
        for k, arr in s.items():
            np.copyto(c.state_of(v)[k], arr)
    c.iterations = b.iterations  # as load_model restores it; the u-product is recomputed
    for step_grads in grads[6:]:
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        c.apply(vs)
    for x, y in zip(full, vs):
        np.testing.assert_array_equal(x, y.value)


# ---- learning rate: read, assign, schedules, callables -----------------------------------------
def test_learning_rate_property():
    opt = optimizers.Adam(0.01)
    assert opt.learning_rate == 0.01 and isinstance(opt.learning_rate, float)
    opt.learning_rate = 0.5
    assert opt.learning_rate == 0.5
    opt.learning_rate = np.float32(0.25)
    assert opt.learning_rate == 0.25
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError):
            opt.learning_rate = bad
    with pytest.raises(TypeError):
        opt.learning_rate = "fast"
    opt.learning_rate = lambda: 0.125  # Keras: a callable of no argument
    assert opt.learning_rate == 0.125
    opt.learning_rate = lambda step: 0.1 / (1 + step)  # fastnn also accepts the step
    opt.iterations = 4
    assert opt.learning_rate == pytest.approx(0.02)
    sched = optimizers.SGD(schedules.ExponentialDecay(1.0, 10, 0.5))
    sched.iterations = 10
    assert sched.learning_rate == pytest.approx(0.5)
    with pytest.raises(TypeError, match="schedule"):
        sched.learning_rate = 0.1  # as Keras: a schedule-driven rate is not settable to a float


@requires_c
def test_mid_training_learning_rate_assignment():
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:128], y[:128]
    m = _digits_model(optimizers.SGD(0.1))
    lrs = []

    class Halve(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = self.model.optimizer.learning_rate * 0.5

    class Spy(callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            lrs.append(self.model.optimizer.learning_rate)

    h = m.fit(x, y, epochs=3, batch_size=64, verbose=0, callbacks=[Halve(), Spy()])
    assert lrs == [0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    assert h.history["learning_rate"] == [0.1, 0.05, 0.025]
    # zero learning rate: the weights stay put
    m.optimizer.learning_rate = 0.0
    w = m.get_weights()
    m.fit(x, y, epochs=1, batch_size=64, verbose=0)
    for a, b in zip(w, m.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---- names, configs, defaults -------------------------------------------------------------------
def test_names_defaults_and_config_round_trip():
    expect = {"sgd": (optimizers.SGD, 0.01), "adam": (optimizers.Adam, 0.001),
              "adamw": (optimizers.AdamW, 0.001), "adamax": (optimizers.Adamax, 0.001),
              "nadam": (optimizers.Nadam, 0.001), "rmsprop": (optimizers.RMSprop, 0.001),
              "adagrad": (optimizers.Adagrad, 0.001)}
    for name, (cls, lr) in expect.items():
        opt = optimizers.get(name)
        assert type(opt) is cls and opt.learning_rate == lr and opt.iterations == 0
        cfg = optimizers.serialize(opt)
        again = optimizers.deserialize(cfg)
        assert type(again) is cls and again.get_config() == opt.get_config()
    assert optimizers.RMSprop().rho == 0.9 and optimizers.RMSprop().epsilon == 1e-7
    assert optimizers.Adagrad().initial_accumulator_value == 0.1
    assert optimizers.AdamW().weight_decay == 0.004
    assert optimizers.Adam().beta_2 == 0.999 and not optimizers.Adam().amsgrad
    opt = optimizers.Adam(schedules.CosineDecay(0.1, 100, warmup_target=0.5, warmup_steps=10),
                          clipnorm=1.0)
    again = optimizers.deserialize(optimizers.serialize(opt))
    again.iterations = opt.iterations = 37
    assert again.learning_rate == opt.learning_rate and again.clipnorm == 1.0
    with pytest.raises(TypeError, match="unexpected"):
        optimizers.Adam(betas=(0.9, 0.99))
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Adam(beta_1=1.5)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        optimizers.get("adamz")


# ---- convergence on a real problem ----------------------------------------------------------
@requires_c
@pytest.mark.parametrize("opt", [
    lambda: optimizers.SGD(0.1, momentum=0.9), lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    lambda: optimizers.Adam(0.005), lambda: optimizers.Adam(0.005, amsgrad=True),
    lambda: optimizers.AdamW(0.005), lambda: optimizers.Adamax(0.01), lambda: optimizers.Nadam(0.005),
    lambda: optimizers.RMSprop(0.003), lambda: optimizers.RMSprop(0.002, momentum=0.5, centered=True),
    lambda: optimizers.Adagrad(0.1), lambda: optimizers.Lion(0.01),
    lambda: optimizers.Lamb(0.01), lambda: optimizers.Adafactor(0.1)],
    ids=["sgd", "nesterov", "adam", "amsgrad", "adamw", "adamax", "nadam", "rmsprop",
         "rmsprop_centered", "adagrad", "lion", "lamb", "adafactor"])
def test_convergence_on_digits(opt):
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    m = _digits_model(opt())
    h = m.fit(x, y, epochs=4, batch_size=32, verbose=0)
    loss = h.history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert m.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"] > 0.9


@requires_c
@pytest.mark.parametrize("opt", [lambda: optimizers.Adadelta(1.0), lambda: optimizers.Ftrl(0.5)],
                         ids=["adadelta", "ftrl"])
def test_slow_starters_learn_on_digits(opt):
    """Adadelta (its steps start at sqrt(epsilon)) and FTRL (made for shallow sparse models)
    are slower on an MLP: 4 epochs halve the loss, and the test accuracy is well above
    chance, not yet above 0.9."""
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    m = _digits_model(opt())
    loss = m.fit(x, y, epochs=4, batch_size=32, verbose=0).history["loss"]
    assert loss[-1] < 0.5 * loss[0]
    assert m.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"] > 0.7


# ---- torch.optim where the rules coincide -----------------------------------------------------
TORCH_CASES = [
    # (fastnn optimizer, torch optimizer factory); epsilon 0 where torch puts it elsewhere
    ("SGD", dict(learning_rate=0.05), lambda t, p: t.optim.SGD(p, lr=0.05)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9), lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True),
     lambda t, p: t.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    ("Adagrad", dict(learning_rate=0.05, epsilon=0.0),
     lambda t, p: t.optim.Adagrad(p, lr=0.05, initial_accumulator_value=0.1, eps=0.0)),
    ("RMSprop", dict(learning_rate=0.01, epsilon=0.0),
     lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0)),
    ("RMSprop", dict(learning_rate=0.01, epsilon=0.0, momentum=0.8, centered=True),
     lambda t, p: t.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=0.0, momentum=0.8, centered=True)),
    ("Adam", dict(learning_rate=0.01, epsilon=0.0), lambda t, p: t.optim.Adam(p, lr=0.01, eps=0.0)),
    ("Adam", dict(learning_rate=0.01, epsilon=0.0, amsgrad=True),
     lambda t, p: t.optim.Adam(p, lr=0.01, eps=0.0, amsgrad=True)),
    ("AdamW", dict(learning_rate=0.01, epsilon=0.0, weight_decay=0.05),
     lambda t, p: t.optim.AdamW(p, lr=0.01, eps=0.0, weight_decay=0.05)),
    ("Adamax", dict(learning_rate=0.01, epsilon=0.0), lambda t, p: t.optim.Adamax(p, lr=0.01, eps=0.0)),
    # Keras' Nadam schedule is torch's with momentum_decay=1 (0.96^t), epsilon placed alike
    ("Nadam", dict(learning_rate=0.01), lambda t, p: t.optim.NAdam(p, lr=0.01, eps=1e-7,
                                                                    momentum_decay=1.0)),
    # torch's Adadelta is Keras' (epsilon inside both square roots, lr scaling the step)
    ("Adadelta", dict(learning_rate=1.0, rho=0.9, epsilon=1e-6),
     lambda t, p: t.optim.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6)),
]


@requires_c
@pytest.mark.parametrize("kind,cfg,make_torch", TORCH_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)])
def test_matches_torch_optim(kind, cfg, make_torch):
    torch = pytest.importorskip("torch")
    init, grads = fixed_problem(np.float64)
    ours, _ = run_fastnn(getattr(optimizers, kind)(**cfg), init, grads)
    params = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in init]
    # torch keeps step counters and NAdam's mu_product in the default dtype: make it float64
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        opt = make_torch(torch, params)
        for step_grads in grads:
            for p, g in zip(params, step_grads):
                p.grad = torch.tensor(g, dtype=torch.float64)
            opt.step()
    finally:
        torch.set_default_dtype(old_dtype)
    theirs = [p.detach().numpy() for p in params]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@requires_c
def test_keras_apply_forms():
    init, grads = fixed_problem(np.float64, steps=5)
    ref, _ = run_fastnn(optimizers.Adam(0.01), init, grads)
    a = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    b = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    oa, ob = optimizers.Adam(0.01), optimizers.Adam(0.01)
    for step_grads in grads:
        oa.apply(step_grads, a)
        assert ob.apply_gradients(zip(step_grads, b)) == ob.iterations
    for x, y, z in zip(ref, a, b):
        np.testing.assert_array_equal(x, y.value)
        np.testing.assert_array_equal(x, z.value)
    with pytest.raises(ValueError, match="shape"):
        oa.apply([np.zeros(3)], [a[0]])
    with pytest.raises(ValueError, match="2 gradients"):
        oa.apply([np.zeros(3), np.zeros(3)], [a[0]])
    it = oa.iterations
    oa.apply([], [])  # an empty list is a no-op, as Keras
    assert oa.iterations == it
    with pytest.raises(ValueError, match="no gradients"):
        oa.apply([None], [a[0]])
    oa.apply([None, grads[0][1]], a[:2])  # None gradients are skipped
    assert oa.iterations == it + 1



@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
@pytest.mark.parametrize("kind", ["SGD", "Adam", "Adamax", "Nadam", "RMSprop", "Lion",
                                  "Adadelta", "Lamb"])
def test_state_of_an_always_zero_gradient_reaches_zero_not_a_subnormal(kind, backend_name):
    """A decaying state would otherwise stick at a subnormal fixed point (0.9 times the
    smallest subnormal rounds back to it), which makes the C loops 10x slower."""
    cfg = {"SGD": dict(momentum=0.9), "RMSprop": dict(momentum=0.9, centered=True),
           "Lion": dict(beta_2=0.9)}.get(kind, {})
    with using_backend(backend_name):
        opt = getattr(optimizers, kind)(0.01, **cfg)
        v = Variable(np.ones(4, np.float32), "w")
        v.grad[...] = [1.0, 1e-3, 0.0, -1.0]
        opt.apply([v])
        v.grad[...] = 0.0
        for _ in range(1500):
            opt.apply([v])
        # flushed below 2^24 x the smallest normal number: tinier states make subnormal
        # products (m * alpha) even before they are subnormal themselves
        tiny = np.finfo(np.float32).tiny * 2.0 ** 24
        for name, arr in opt.state_of(v).items():
            assert not np.any((arr != 0) & (np.abs(arr) < tiny)), (name, arr)
            if name in ("momentum", "average_gradient") or kind in ("RMSprop", "Adadelta"):
                assert np.all(arr == 0), (name, arr)  # decays by 0.9 a step: long gone


# ---- the Keras 3 optimizers added later: names, NaN, packing, resume -------------------------
def test_new_optimizers_names_defaults_and_config_round_trip():
    expect = {"lion": (optimizers.Lion, dict(beta_1=0.9, beta_2=0.99)),
              "adadelta": (optimizers.Adadelta, dict(rho=0.95, epsilon=1e-7)),
              "ftrl": (optimizers.Ftrl, dict(learning_rate_power=-0.5, initial_accumulator_value=0.1,
                                             l1_regularization_strength=0.0, beta=0.0)),
              "lamb": (optimizers.Lamb, dict(beta_1=0.9, beta_2=0.999, epsilon=1e-7)),
              "adafactor": (optimizers.Adafactor, dict(beta_2_decay=-0.8, epsilon_1=1e-30,
                                                       epsilon_2=1e-3, clip_threshold=1.0,
                                                       relative_step=True))}
    for name, (cls, defaults) in expect.items():
        opt = optimizers.get(name)
        assert type(opt) is cls and opt.learning_rate == 0.001 and opt.name == name
        for k, v in defaults.items():
            assert getattr(opt, k) == v, (name, k)
        again = optimizers.deserialize(optimizers.serialize(opt))
        assert type(again) is cls and again.get_config() == opt.get_config()
        assert name.capitalize() in optimizers.__all__ or cls.__name__ in optimizers.__all__
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)  # Keras: SignSGD, refused
    with pytest.raises(ValueError, match="learning_rate_power"):
        optimizers.Ftrl(learning_rate_power=0.5)
    with pytest.raises(ValueError, match="l1_regularization_strength"):
        optimizers.Ftrl(l1_regularization_strength=-1.0)
    with pytest.raises(ValueError, match="rho"):
        optimizers.Adadelta(rho=2.0)
    with pytest.raises(ValueError, match="clip_threshold"):
        optimizers.Adafactor(clip_threshold=0.0)


def test_adafactor_state_is_factored_for_matrices_only():
    opt = optimizers.Adafactor()
    w = Variable(np.zeros((2, 4, 5), np.float32), "w")
    m = Variable(np.zeros((4, 5), np.float64), "m")
    b = Variable(np.zeros(5, np.float32), "b")
    opt.build([w, m, b])
    assert {k: a.shape for k, a in opt.state_of(w).items()} == {"r": (2, 4), "c": (2, 5)}
    assert {k: a.shape for k, a in opt.state_of(m).items()} == {"r": (4,), "c": (5,)}
    assert opt.state_of(m)["r"].dtype == np.float64
    assert {k: a.shape for k, a in opt.state_of(b).items()} == {"velocity": (5,)}


@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
@pytest.mark.parametrize("kind", NEW_KINDS)
def test_new_optimizers_nonfinite_gradients(kind, backend_name):
    """Nothing is repaired: a NaN gradient makes NaN weights. Elementwise rules (Lion,
    Adadelta, Ftrl) confine it to its element; Lamb's norm goes NaN, and Keras then takes a
    ratio of 1, so it stays in its element too; Adafactor's rms(u) is NaN, so the whole
    variable goes NaN (as in Keras). Other variables are untouched."""
    nan = float("nan")
    with using_backend(backend_name), np.errstate(invalid="ignore"):
        vs = _vars([([[1.0, 1.0], [1.0, 1.0]], [[nan, 0.5], [0.25, -0.5]]), ([1.0, 2.0], [0.5, 0.1])])
        getattr(optimizers, kind)(0.1).apply(vs)
        w = vs[0].value
        assert np.isnan(w[0, 0])
        if kind == "Adafactor":
            assert np.isnan(w).all()
        else:
            assert np.isfinite(w.reshape(-1)[1:]).all()
        assert np.isfinite(vs[1].value).all()


def _digits_mlp(opt, seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
                           layers.BatchNormalization(), layers.Dense(16, activation="tanh"),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return m


NEW_FACTORIES = [
    ("lion", lambda: optimizers.Lion(0.003, weight_decay=0.01)),
    ("adadelta", lambda: optimizers.Adadelta(1.0)),
    ("ftrl", lambda: optimizers.Ftrl(0.2, l1_regularization_strength=0.001, beta=0.1)),
    ("lamb", lambda: optimizers.Lamb(0.01, global_clipnorm=1.0)),
    ("adafactor", lambda: optimizers.Adafactor(0.1, clipvalue=0.5)),
    ("adam_ema", lambda: optimizers.Adam(0.01, use_ema=True, ema_overwrite_frequency=5)),
    ("sgd_accumulate", lambda: optimizers.SGD(0.1, momentum=0.9, gradient_accumulation_steps=3)),
    ("lion_accumulate_ema", lambda: optimizers.Lion(0.003, gradient_accumulation_steps=2,
                                                    use_ema=True, ema_momentum=0.9)),
]


@requires_c
@pytest.mark.parametrize("name,make_opt", NEW_FACTORIES, ids=[n for n, _ in NEW_FACTORIES])
def test_packed_training_matches_per_variable_updates(name, make_opt, monkeypatch):
    """The model packs its weights into one buffer; the elementwise optimizers then update
    it in one call per step, Lamb and Adafactor variable by variable: the same bits as a
    model that does not pack (weights and every state slot)."""
    from fastnn.layers.base import is_packed
    from fastnn.training import trainer as trainer_module
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:600], y[:600]
    packed = _digits_mlp(make_opt())
    packed.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert is_packed(packed._train_vars)
    monkeypatch.setattr(trainer_module, "pack_variables", lambda vs: None)
    plain = _digits_mlp(make_opt())
    plain.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert not is_packed(plain._train_vars)
    assert packed.optimizer.iterations == plain.optimizer.iterations
    for a, b in zip(packed.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    for v, w in zip(packed._train_vars, plain._train_vars):
        sa, sb = packed.optimizer.state_of(v), plain.optimizer.state_of(w)
        assert sa.keys() == sb.keys()
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@requires_c
@pytest.mark.parametrize("name,make_opt", NEW_FACTORIES, ids=[n for n, _ in NEW_FACTORIES])
def test_resume_from_saved_model_is_bit_for_bit(tmp_path, name, make_opt):
    """save at an epoch's end, load, continue: the same weights, state and iterations as an
    uninterrupted run (state slots round-trip through saving.py's generic state dicts;
    epochs of 10 batches end accumulation cycles of 2 but not of 3: see below)."""
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:640], y[:640]
    if name == "sgd_accumulate":
        x, y = x[:576], y[:576]  # 9 batches: the epoch ends where a cycle of 3 ends
    # the uninterrupted run also makes two fit calls: with use_ema, fit ends by putting the
    # averages into the weights (Keras 3's finalize_variable_values), so one 4-epoch fit is
    # another trajectory than two 2-epoch fits, saved or not
    straight = _digits_mlp(make_opt(), seed=3)
    straight.fit(x, y, epochs=2, batch_size=64, verbose=0)
    straight.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0)
    first = _digits_mlp(make_opt(), seed=3)
    first.fit(x, y, epochs=2, batch_size=64, verbose=0)
    first.save(tmp_path / "ckpt.keras")
    resumed = fastnn.load_model(tmp_path / "ckpt.keras")
    assert type(resumed.optimizer) is type(straight.optimizer)
    assert resumed.optimizer.get_config() == straight.optimizer.get_config()
    assert resumed.optimizer.iterations == first.optimizer.iterations
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=64, verbose=0)
    assert resumed.optimizer.iterations == straight.optimizer.iterations
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(straight.weights, resumed.weights):
        sa, sb = straight.optimizer.state_of(a), resumed.optimizer.state_of(b)
        if sa is None:
            assert sb is None
            continue
        assert sorted(sa) == sorted(sb)
        for k in sa:
            np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


@requires_c
@pytest.mark.parametrize("backend_name", ["c", "numpy"])
def test_golden_first_step_new_optimizers(backend_name):
    """One step from zero state, worked by hand from the Keras 3 rules (float64)."""
    w0, g = np.array([1.0, -2.0, 0.5]), np.array([0.5, -4.0, 0.0])
    eps = 1e-7

    def step(opt, w=w0):
        v = Variable(w.copy(), "w")
        v.grad[...] = g
        opt.apply([v])
        return v.value, opt.state_of(v)

    with using_backend(backend_name):
        # Lion: sign(0.1 g) steps lr against the gradient's sign (0 where g = 0); m = 0.01 g
        w, s = step(optimizers.Lion(0.1))
        np.testing.assert_allclose(w, [0.9, -1.9, 0.5], rtol=1e-15)
        np.testing.assert_allclose(s["momentum"], 0.01 * g, rtol=1e-15)
        # Adadelta: a = 0.05 g^2, delta = -sqrt(eps) g / sqrt(a + eps), d = 0.05 delta^2
        w, s = step(optimizers.Adadelta(1.0))
        delta = -math.sqrt(eps) * g / np.sqrt(0.05 * g * g + eps)
        np.testing.assert_allclose(w, w0 + delta, rtol=1e-14)
        np.testing.assert_allclose(s["accumulated_delta_var"], 0.05 * delta ** 2, rtol=1e-14)
        # Ftrl (l1 = l2 = 0): z = g - (sqrt(n') - sqrt(0.1)) / lr * w, w' = -z / (sqrt(n') / lr)
        w, s = step(optimizers.Ftrl(0.5))
        n1 = 0.1 + g * g
        z = g - (np.sqrt(n1) - math.sqrt(0.1)) / 0.5 * w0
        np.testing.assert_allclose(w, -z / (np.sqrt(n1) / 0.5), rtol=1e-14)
        np.testing.assert_allclose(s["linear"], z, rtol=1e-14)
        # Lamb, t = 1: u = g / (|g| + eps); w -= (||w|| / ||u||) lr u
        w, _ = step(optimizers.Lamb(0.1))
        u = g / (np.abs(g) + eps)
        np.testing.assert_allclose(w, w0 - np.linalg.norm(w0) / np.linalg.norm(u) * 0.1 * u,
                                   rtol=1e-14)
        # Adafactor, t = 1, rank 1: v = g^2 + 1e-30, u = g / sqrt(v), rms(u) = sqrt(2/3) < 1,
        # w -= max(1e-3, rms(w)) * min(lr, 1) * u
        w, s = step(optimizers.Adafactor(0.1))
        u = g / np.sqrt(g * g + 1e-30)
        np.testing.assert_allclose(w, w0 - math.sqrt(np.mean(w0 ** 2)) * 0.1 * u, rtol=1e-14)
        # rank 2, t = 1: r = row means of G, c = column means, v = r / mean(r) * c
        w2 = np.array([[1.0, 2.0], [3.0, 4.0]])
        g2 = np.array([[1.0, 2.0], [2.0, 4.0]])
        v = Variable(w2.copy(), "k")
        v.grad[...] = g2
        opt = optimizers.Adafactor(0.1)
        opt.apply([v])
        r, c = np.array([2.5, 10.0]), np.array([2.5, 10.0])
        np.testing.assert_allclose(opt.state_of(v)["r"], r, rtol=1e-14)
        np.testing.assert_allclose(opt.state_of(v)["c"], c, rtol=1e-14)
        u = g2 / np.sqrt((r / r.mean())[:, None] * c[None, :])
        u = u / max(1.0, math.sqrt(np.mean(u * u)))
        np.testing.assert_allclose(v.value, w2 - math.sqrt(np.mean(w2 ** 2)) * 0.1 * u, rtol=1e-14)
