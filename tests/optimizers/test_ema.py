"""use_ema / ema_momentum / ema_overwrite_frequency on every optimizer, Keras 3 semantics,
checked against Keras' rules written out in NumPy around the same optimizer without EMA,
and finalize_variable_values."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers
from fastnn.layers.base import Variable

from conftest import C, REF, requires_c
from test_optimizers import CONFIGS, fixed_problem


def keras_ema_trajectory(make_opt, init, grads, momentum, overwrite=None, k=None):
    """Keras 3's BaseOptimizer rules, transcribed: after each apply call (update step or
    not), average = m * average + (1 - m) * w with m = momentum, or 0 while iterations is 0
    (the first average is the weights); (1 - m) in the weights' dtype. With
    ema_overwrite_frequency f the weights become their averages when (iterations + 1) % f
    == 0, iterations counting updates (calls // k), before the count is increased. The
    update itself comes from an optimizer without EMA (made by ``make_opt``)."""
    opt = make_opt()
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    avgs = [np.zeros_like(p) for p in init]
    for call, step_grads in enumerate(grads):
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        opt.apply(vs)
        iterations = call // k if k else call  # before the increment
        for i, v in enumerate(vs):
            dt = v.value.dtype.type
            m = dt(momentum) if iterations != 0 else dt(0.0)
            avgs[i] = m * avgs[i] + (dt(1) - m) * v.value
        if overwrite and (iterations + 1) % overwrite == 0:
            for v, a in zip(vs, avgs):
                v.value[...] = a
    return [v.value for v in vs], avgs


def run_with_ema(opt, init, grads):
    vs = [Variable(p.copy(), f"v{i}") for i, p in enumerate(init)]
    for step_grads in grads:
        for v, g in zip(vs, step_grads):
            v.grad[...] = g
        opt.apply(vs)
    return vs


@requires_c
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", [dict(), dict(overwrite=4), dict(k=3), dict(k=2, overwrite=3)],
                         ids=["average", "overwrite", "accumulate", "accumulate_overwrite"])
@pytest.mark.parametrize("kind,cfg", CONFIGS, ids=lambda c: c if isinstance(c, str) else
                         ",".join(f"{k}={v}" for k, v in c.items() if k != "learning_rate"))
def test_ema_trajectory_matches_keras_rules(kind, cfg, mode, dtype):
    init, grads = fixed_problem(dtype, steps=18)
    k, overwrite = mode.get("k"), mode.get("overwrite")
    acc = {"gradient_accumulation_steps": k} if k else {}
    opt = getattr(optimizers, kind)(**cfg, **acc, use_ema=True, ema_momentum=0.9,
                                   ema_overwrite_frequency=overwrite)
    vs = run_with_ema(opt, init, grads)
    want_w, want_avg = keras_ema_trajectory(lambda: getattr(optimizers, kind)(**cfg, **acc),
                                            init, grads, 0.9, overwrite, k)
    for v, w, a in zip(vs, want_w, want_avg):
        np.testing.assert_array_equal(v.value, w)
        np.testing.assert_array_equal(opt.state_of(v)["average"], a)
    assert not np.array_equal(opt.state_of(vs[0])["average"], vs[0].value) or overwrite


@requires_c
def test_finalize_variable_values_after_fit():
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:512], y[:512]

    def model(opt):
        fastnn.set_seed(0)
        m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                               layers.Dense(10, activation="softmax")])
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        return m

    seen = {}

    def last_epoch_weights(name):  # the weights before anything fit does after the epochs
        return fastnn.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: seen.__setitem__(name, seen_model[name].get_weights()))

    seen_model = {}
    ema = seen_model["ema"] = model(optimizers.Adam(0.01, use_ema=True, ema_momentum=0.95))
    ema.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[last_epoch_weights("ema")])
    plain = seen_model["plain"] = model(optimizers.Adam(0.01))  # set_seed again: same shuffles
    plain.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=[last_epoch_weights("plain")])
    for a, b in zip(seen["ema"], seen["plain"]):  # EMA alone changes no weight
        np.testing.assert_array_equal(a, b)
    averages = [ema.optimizer.state_of(v)["average"].copy() for v in ema.trainable_variables]
    # fit ended with finalize_variable_values, as Keras 3's: the weights are the averages
    for v, a in zip(ema.trainable_variables, averages):
        np.testing.assert_array_equal(v.value, a)
    ema.optimizer.finalize_variable_values(ema.trainable_variables)  # again: no change
    for v, a in zip(ema.trainable_variables, averages):
        np.testing.assert_array_equal(v.value, a)
    assert not np.array_equal(ema.get_weights()[0], seen["ema"][0])
    # without use_ema: nothing happens (Keras)
    before = plain.get_weights()
    plain.optimizer.finalize_variable_values(plain.trainable_variables)
    for a, b in zip(before, plain.get_weights()):
        np.testing.assert_array_equal(a, b)


@requires_c
def test_frozen_variable_keeps_its_average():
    opt = optimizers.SGD(0.1, use_ema=True)
    a, b = Variable(np.ones(3), "a"), Variable(np.ones(2), "b")
    for _ in range(3):
        a.grad[...] = 1.0
        b.grad[...] = 1.0
        opt.apply([a, b])
    frozen = opt.state_of(b)["average"].copy()
    for _ in range(3):
        a.grad[...] = 1.0
        opt.apply([a])  # b frozen: not passed
    np.testing.assert_array_equal(opt.state_of(b)["average"], frozen)
    opt.finalize_variable_values([a, b])
    np.testing.assert_array_equal(b.value, frozen)


@pytest.mark.parametrize("ops", [REF] + ([C] if C is not None else []), ids=lambda o: o.name)
def test_ema_update_kernel_in_place_empty_and_mixed_dtypes(ops):
    # its parity with the reference: tests/kernels/test_kernel_parity.py
    for n in (0, 3):
        a = np.ones(n, np.float32)
        assert ops.ema_update(a, np.zeros(n, np.float32), 0.75) is a
        np.testing.assert_array_equal(a, np.full(n, 0.75, np.float32))
    with pytest.raises((TypeError, ValueError)):
        ops.ema_update(np.zeros(3, np.float32), np.zeros(3, np.float64), 0.9)


def test_arguments_and_config():
    opt = optimizers.Adam(use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=10)
    cfg = opt.get_config()
    assert (cfg["use_ema"], cfg["ema_momentum"], cfg["ema_overwrite_frequency"]) == (True, 0.9, 10)
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert again.get_config() == cfg
    d = optimizers.SGD().get_config()
    assert (d["use_ema"], d["ema_momentum"], d["ema_overwrite_frequency"]) == (False, 0.99, None)
    for bad in (1.5, -0.1):
        with pytest.raises(ValueError, match="ema_momentum"):
            optimizers.SGD(use_ema=True, ema_momentum=bad)
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="ema_overwrite_frequency"):
            optimizers.SGD(use_ema=True, ema_overwrite_frequency=bad)
    # as Keras: the EMA arguments are only checked when EMA is on
    assert optimizers.SGD(ema_momentum=1.5).get_config()["ema_momentum"] == 1.5
    assert "average" not in optimizers.SGD(momentum=0.9).build_variable(Variable(np.ones(2), "w"))
    assert "average" in optimizers.SGD(use_ema=True).build_variable(Variable(np.ones(2), "w"))
