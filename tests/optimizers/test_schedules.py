"""Learning-rate schedules (Keras 3 formulas, fastnn's OneCycle) and the LR callbacks."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, optimizers
from fastnn.optimizers import schedules

from conftest import requires_c


def test_exponential_decay():
    s = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert s(0) == 0.1
    assert s(20) == pytest.approx(0.025, rel=1e-15)
    assert s(5) == pytest.approx(0.1 * 0.5 ** 0.5, rel=1e-15)
    st = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert st(9) == 0.1 and st(10) == pytest.approx(0.05) and st(15) == pytest.approx(0.05)


def test_piecewise_constant_decay():
    s = schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    got = [s(t) for t in (0, 10, 11, 20, 21, 1000)]
    assert got == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]  # boundaries belong to the earlier value
    with pytest.raises(ValueError, match="one more"):
        schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5])


def test_polynomial_decay():
    s = schedules.PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.1, power=2.0)
    for t in (0, 3, 10, 25):
        p = min(t, 10) / 10
        assert s(t) == pytest.approx(0.9 * (1 - p) ** 2 + 0.1, rel=1e-15)
    c = schedules.PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0, cycle=True)
    assert c(0) == 1.0
    assert c(15) == pytest.approx(1 - 15 / 20)  # decay_steps * ceil(15 / 10) = 20
    assert c(20) == pytest.approx(0.0, abs=1e-15) and c(21) == pytest.approx(1 - 21 / 30)


def test_inverse_time_decay():
    s = schedules.InverseTimeDecay(0.5, decay_steps=4, decay_rate=2.0)
    assert s(6) == pytest.approx(0.5 / (1 + 2.0 * 6 / 4), rel=1e-15)
    st = schedules.InverseTimeDecay(0.5, decay_steps=4, decay_rate=2.0, staircase=True)
    assert st(6) == pytest.approx(0.5 / (1 + 2.0 * 1), rel=1e-15)


def test_cosine_decay_and_warmup():
    s = schedules.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert s(0) == 1.0
    assert s(50) == pytest.approx(0.9 * 0.5 + 0.1, rel=1e-15)
    assert s(100) == pytest.approx(0.1) and s(500) == pytest.approx(0.1)
    w = schedules.CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert w(0) == 0.0 and w(5) == pytest.approx(0.5) and w(10) == pytest.approx(1.0)
    assert w(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert w(110) == pytest.approx(0.0, abs=1e-15) and w(1000) == pytest.approx(0.0, abs=1e-15)


def test_cosine_decay_restarts():
    s = schedules.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=2.0, m_mul=0.5)
    assert s(0) == 1.0
    assert s(5) == pytest.approx(0.5)
    assert s(10) == pytest.approx(0.5)             # first restart, at m_mul
    assert s(20) == pytest.approx(0.5 * 0.5)       # halfway through the 20-step period
    assert s(30) == pytest.approx(0.25)            # second restart
    s1 = schedules.CosineDecayRestarts(1.0, first_decay_steps=10, t_mul=1.0, alpha=0.2)
    assert s1(10) == pytest.approx(1.0) and s1(15) == pytest.approx(0.8 * 0.5 + 0.2)


def test_one_cycle_shape():
    s = schedules.OneCycle(1.0, total_steps=100, pct_start=0.25, div_factor=10.0,
                           final_div_factor=100.0)
    assert s(0) == pytest.approx(0.1)
    assert s(24) == pytest.approx(1.0)
    assert s(99) == pytest.approx(0.1 / 100) and s(1000) == pytest.approx(0.1 / 100)
    lrs = [s(t) for t in range(100)]
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 24
    with pytest.raises(ValueError, match="pct_start"):
        schedules.OneCycle(1.0, 100, pct_start=1.5)


@pytest.mark.parametrize("kw", [dict(), dict(anneal_strategy="linear"), dict(three_phase=True),
                                dict(pct_start=0.1, div_factor=5.0, final_div_factor=50.0)])
def test_one_cycle_matches_torch(kw):
    torch = pytest.importorskip("torch")
    total = 57
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.3, total_steps=total,
                                                cycle_momentum=False, **kw)
    ours = schedules.OneCycle(0.3, total_steps=total, **kw)
    for t in range(total):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12), t
        opt.step()
        sched.step()


def test_schedules_match_torch_where_they_coincide():
    torch = pytest.importorskip("torch")
    cases = [
        (schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.9),
         lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
        (schedules.PolynomialDecay(0.5, decay_steps=20, end_learning_rate=0.0, power=2.0),
         lambda o: torch.optim.lr_scheduler.PolynomialLR(o, total_iters=20, power=2.0)),
        (schedules.CosineDecayRestarts(0.5, first_decay_steps=5, t_mul=2.0),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=5, T_mult=2)),
        (schedules.CosineDecay(0.5, decay_steps=30),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30)),
    ]
    for ours, make in cases:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.5)
        sched = make(opt)
        for t in range(31):
            assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15), \
                (type(ours).__name__, t)
            opt.step()
            sched.step()


ALL_SCHEDULES = [
    schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
    schedules.PiecewiseConstantDecay([3, 7], [0.3, 0.2, 0.1]),
    schedules.PolynomialDecay(0.1, 10, 0.01, power=0.5, cycle=True),
    schedules.InverseTimeDecay(0.1, 10, 0.5),
    schedules.CosineDecay(0.1, 10, alpha=0.1, warmup_target=0.2, warmup_steps=3),
    schedules.CosineDecayRestarts(0.1, 5, t_mul=1.5, m_mul=0.9, alpha=0.01),
    schedules.OneCycle(0.1, 40, three_phase=True),
]


@pytest.mark.parametrize("s", ALL_SCHEDULES, ids=lambda s: type(s).__name__)
def test_config_round_trip(s):
    again = schedules.deserialize(schedules.serialize(s))
    assert type(again) is type(s) and again.get_config() == s.get_config()
    assert [again(t) for t in range(50)] == [s(t) for t in range(50)]
    assert "name" in s.get_config()


@pytest.mark.parametrize("bad", [
    lambda: schedules.ExponentialDecay(0.1, 0, 0.5),
    lambda: schedules.CosineDecay(0.1, -5),
    lambda: schedules.InverseTimeDecay(-0.1, 10, 0.5),
    lambda: schedules.OneCycle(0.1, 1),
])
def test_bad_schedule_arguments(bad):
    with pytest.raises(ValueError):
        bad()


@requires_c
def test_optimizer_evaluates_schedule_at_each_step():
    from fastnn.layers.base import Variable
    s = schedules.PiecewiseConstantDecay([1, 3], [1.0, 0.5, 0.25])
    opt = optimizers.SGD(s)
    v = Variable(np.zeros(1), "w")
    seen = []
    for _ in range(5):
        v.grad[...] = 1.0
        before = v.value[0]
        opt.apply([v])
        seen.append(before - v.value[0])  # plain SGD moves by exactly lr * 1
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]  # schedule(iterations) with iterations = 0, 1, ...


# ---- callbacks ---------------------------------------------------------------------------
def _model(opt):
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(8, activation="relu"),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class LrSpy(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.lrs = []

    def on_train_batch_begin(self, batch, logs=None):
        self.lrs.append(self.model.optimizer.learning_rate)


@requires_c
@pytest.mark.parametrize("fn", [lambda epoch: 0.1 / (1 + epoch),
                                lambda epoch, lr: 0.1 if epoch == 0 else lr / (1 + epoch)])
def test_learning_rate_scheduler(fn):
    (x, y), _ = fastnn.datasets.load_digits()
    m = _model(optimizers.SGD(1.0))
    spy = LrSpy()
    h = m.fit(x[:64], y[:64], epochs=3, batch_size=32, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(fn), spy])
    expect = [0.1, 0.1 / 2, 0.1 / 6] if fn.__code__.co_argcount == 2 else [0.1, 0.05, 0.1 / 3]
    assert h.history["learning_rate"] == pytest.approx(expect, rel=1e-15)
    assert spy.lrs == pytest.approx([e for e in expect for _ in range(2)], rel=1e-15)


@requires_c
def test_learning_rate_scheduler_rejects_bad_output():
    (x, y), _ = fastnn.datasets.load_digits()
    m = _model(optimizers.SGD(1.0))
    with pytest.raises(ValueError, match="number"):
        m.fit(x[:32], y[:32], epochs=1, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda e: "fast")])
    with pytest.raises(TypeError, match="callable"):
        callbacks.LearningRateScheduler(0.1)


class _FakeModel:
    def __init__(self, opt):
        self.optimizer = opt
        self.stop_training = False


def test_reduce_lr_on_plateau_rule():
    opt = optimizers.SGD(1.0)
    cb = callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1,
                                     min_lr=0.2, min_delta=0.01)
    cb.set_model(_FakeModel(opt))
    cb.on_train_begin()
    losses = [1.0, 0.995, 0.99, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98]
    lrs = []
    for epoch, loss in enumerate(losses):
        logs = {"val_loss": loss}
        used = opt.learning_rate
        cb.on_epoch_end(epoch, logs)
        assert logs["learning_rate"] == used  # the epoch's rate is logged before any change
        lrs.append(opt.learning_rate)
    # 0.995 and 0.99 do not improve by more than min_delta: reduce after 2 epochs (epoch 2),
    # cooldown 1; 0.98 improves on the best 1.0 (epoch 3); two more flat epochs reduce again
    # (epoch 5); cooldown, two flat epochs, 0.125 floored at min_lr (epoch 7); then lr is at
    # min_lr and stays.
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]


def test_reduce_lr_on_plateau_modes_and_errors():
    opt = optimizers.SGD(1.0)
    cb = callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1)
    cb.set_model(_FakeModel(opt))
    cb.on_train_begin()
    for epoch, acc in enumerate([0.5, 0.6, 0.6]):  # auto mode maximizes *acc*
        cb.on_epoch_end(epoch, {"val_accuracy": acc})
    assert opt.learning_rate == pytest.approx(0.1)
    with pytest.warns(UserWarning, match="not available"):
        cb.on_epoch_end(3, {"loss": 1.0})
    with pytest.raises(ValueError, match="factor"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    sched_opt = optimizers.SGD(schedules.ExponentialDecay(1.0, 10, 0.5))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", patience=0)
    cb.set_model(_FakeModel(sched_opt))
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(TypeError, match="schedule"):
        cb.on_epoch_end(1, {"loss": 1.0})


@requires_c
def test_reduce_lr_on_plateau_in_fit():
    (x, y), _ = fastnn.datasets.load_digits()
    m = _model(optimizers.SGD(0.0))  # lr 0: the loss cannot improve, so every epoch plateaus
    m.optimizer.learning_rate = 1e-12
    h = m.fit(x[:64], y[:64], epochs=4, batch_size=32, verbose=0,
              validation_data=(x[64:96], y[64:96]),
              callbacks=[callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=1.0)])
    # logged: the rate each epoch trained with; the reduction happens at the end of epoch 1
    assert h.history["learning_rate"] == pytest.approx([1e-12, 1e-12, 5e-13, 2.5e-13], rel=1e-12)


@pytest.mark.parametrize("lr,err,match", [
    (lambda: -1.0, ValueError, "finite number >= 0, got -1.0"),
    (lambda step: float("nan"), ValueError, "finite number >= 0, got nan"),
    (lambda: "fast", TypeError, "must return a number, got 'fast'")])
def test_learning_rate_callable_results_are_checked_before_the_step(lr, err, match):
    # a float learning rate < 0 or NaN is refused; a callable returning one used to run
    # gradient ascent (or write NaN weights) silently
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 4)).astype("float32"), rng.integers(0, 3, size=24)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizers.SGD(lr), "sparse_categorical_crossentropy")
    w0 = m.get_weights()
    with pytest.raises(err, match=match):
        m.fit(x, y, verbose=0)
    for a, b in zip(w0, m.get_weights()):  # nothing was applied
        np.testing.assert_array_equal(a, b)
