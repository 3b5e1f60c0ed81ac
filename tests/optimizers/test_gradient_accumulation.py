"""gradient_accumulation_steps=k on every optimizer, Keras 3 semantics: k calls of apply make
one update with the mean of their gradients; ``iterations`` counts updates (the bias
corrections' step), the raw call count ``_iterations`` drives learning-rate schedules."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers
from fastnn.layers.base import Variable
from fastnn.optimizers import schedules

from conftest import requires_c
from test_optimizers import CONFIGS, fixed_problem

K = 3


def _run(opt, init, grads):
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    for step_grads in grads:
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        opt.apply(vs)
    return vs


def _means(grads, k):
    """Keras' mean of each cycle, in its order: ((g1 + g2) + ... + gk) / k."""
    out = []
    for c in range(len(grads) // k):
        cycle = grads[c * k:(c + 1) * k]
        means = []
        for i in range(len(cycle[0])):
            acc = np.zeros_like(cycle[0][i])
            for step in cycle:
                acc = acc + step[i]
            means.append(acc / acc.dtype.type(k))
        out.append(means)
    return out


@requires_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", [{}, {"global_clipnorm": 0.5}, {"clipnorm": 0.3},
                                   {"weight_decay": 0.05}], ids=lambda e: ",".join(e) or "plain")
@pytest.mark.parametrize("kind,cfg", CONFIGS, ids=lambda c: c if isinstance(c, str) else
                         ",".join(f"{k}={v}" for k, v in c.items() if k != "learning_rate"))
def test_accumulated_steps_equal_updates_with_the_mean_gradient(kind, cfg, extra, dtype):
    """Every optimizer: 4 cycles of 3 calls give the same bits as 4 plain updates with each
    cycle's mean gradient (clipping and weight decay applied to the mean, once per update;
    bias corrections count updates); weights do not move between updates."""
    if kind == "AdamW" and "weight_decay" in extra:
        extra = {}
    init, grads = fixed_problem(dtype, steps=4 * K)
    plain = getattr(optimizers, kind)(**cfg, **extra)
    expect = _run(plain, init, _means(grads, K))
    acc = getattr(optimizers, kind)(**cfg, **extra, gradient_accumulation_steps=K)
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    for n, step_grads in enumerate(grads, 1):
        before = [v.value.copy() for v in vs]
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        acc.apply(vs)
        assert acc._iterations == n and acc.iterations == n // K
        if n % K:
            for v, b in zip(vs, before):
                np.testing.assert_array_equal(v.value, b)
            assert np.any(acc.state_of(vs[0])["gradient_accumulator"] != 0)
        else:
            assert not np.any(acc.state_of(vs[0])["gradient_accumulator"])
    assert acc.iterations == plain.iterations == 4
    for v, e in zip(vs, expect):
        np.testing.assert_array_equal(v.value, e.value)
        sa, se = acc.state_of(v), plain.state_of(e)
        assert sorted(sa) == sorted(set(se) | {"gradient_accumulator"})
        for key in se:
            np.testing.assert_array_equal(sa[key], se[key], err_msg=key)


def test_sgd_accumulating_k_batches_equals_one_batch_k_times_larger():
    """fit with batch b and k accumulation steps is fit with batch k*b, exactly (float64,
    a linear model whose data and step sizes are small dyadic numbers: every sum is exact)."""
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, size=(64, 5)).astype(np.float64)
    y = rng.integers(-4, 5, size=(64, 1)).astype(np.float64)

    def model(opt):
        m = fastnn.Sequential([layers.Input(shape=(5,)),
                               layers.Dense(1, kernel_initializer="zeros", dtype="float64")])
        m.compile(optimizer=opt, loss="mse")
        return m

    small = model(optimizers.SGD(2.0 ** -6, gradient_accumulation_steps=4))
    small.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    big = model(optimizers.SGD(2.0 ** -6))
    big.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert small.optimizer.iterations == big.optimizer.iterations == 4
    assert small.optimizer._iterations == 16
    for a, b in zip(small.get_weights(), big.get_weights()):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(big.get_weights()[0], 0 * big.get_weights()[0])


class _Recording(schedules.LearningRateSchedule):
    def __init__(self):
        self.steps = []

    def __call__(self, step):
        self.steps.append(int(step))
        return 0.1 / (1 + step)

    def get_config(self):
        return {}


def test_schedule_sees_the_call_count_and_iterations_counts_updates():
    """Keras 3: the schedule is called with the raw call count (_iterations), the update
    uses the value at the update call; iterations is _iterations // k."""
    sched = _Recording()
    opt = optimizers.SGD(sched, gradient_accumulation_steps=2)
    v = Variable(np.zeros(1), "w")
    for _ in range(4):
        v.grad[...] = 1.0
        opt.apply([v])
    assert opt.iterations == 2 and opt._iterations == 4
    # updates at calls 2 and 4 (raw counts 1 and 3 before the increment)
    assert v.value[0] == pytest.approx(-(0.1 / 2) - (0.1 / 4), rel=1e-15)
    opt.iterations = 5  # as load_model restores it: the start of update 6's cycle
    assert opt._iterations == 10 and opt.iterations == 5


def test_arguments_and_config():
    for bad in (1, -2, 2.5, "3", True):
        with pytest.raises(ValueError, match="gradient_accumulation_steps"):
            optimizers.Adam(gradient_accumulation_steps=bad)
    for off in (None, 0):
        assert optimizers.Adam(gradient_accumulation_steps=off).gradient_accumulation_steps is None
    opt = optimizers.Lion(gradient_accumulation_steps=4)
    cfg = optimizers.serialize(opt)
    assert cfg["config"]["gradient_accumulation_steps"] == 4
    again = optimizers.deserialize(cfg)
    assert again.gradient_accumulation_steps == 4 and again.get_config() == opt.get_config()
    with pytest.raises(NotImplementedError, match="loss_scale_factor"):
        optimizers.SGD(loss_scale_factor=128.0)


@requires_c
def test_resume_mid_accumulation_cycle_is_bit_for_bit(tmp_path):
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:320], y[:320]  # 5 batches an epoch, cycles of 2: epoch 1 ends mid-cycle

    def model():
        fastnn.set_seed(1)
        m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(8, activation="relu"),
                               layers.Dense(10, activation="softmax")])
        m.compile(optimizer=optimizers.SGD(0.05, momentum=0.9, gradient_accumulation_steps=2),
                  loss="sparse_categorical_crossentropy")
        return m

    straight = model()
    straight.fit(x, y, epochs=2, batch_size=64, verbose=0)
    first = model()
    first.fit(x, y, epochs=1, batch_size=64, verbose=0)
    first.save(tmp_path / "m.keras")
    resumed = fastnn.load_model(tmp_path / "m.keras")
    assert resumed.optimizer._iterations == first.optimizer._iterations
    resumed.fit(x, y, epochs=2, initial_epoch=1, batch_size=64, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
