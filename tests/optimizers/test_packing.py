"""Packed parameters: a model's trainable weights and gradients live in one buffer each, so
the optimizer updates the whole model with one C call per step, with the same bits as the
variable-by-variable path."""
import numpy as np
import pytest

import fastnn
from fastnn import backend, callbacks, datasets, layers, optimizers
from fastnn.layers.base import is_packed, pack_variables
from fastnn.training import compiled_epoch, trainer as trainer_module


def make(opt, seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(32, activation="relu"),
                           layers.BatchNormalization(), layers.Dense(16, activation="tanh"),
                           layers.Dense(10, activation="softmax")])
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return m


@pytest.mark.parametrize("opt", [lambda: optimizers.SGD(0.1, momentum=0.9), lambda: optimizers.Adam(),
                                 lambda: optimizers.AdamW(weight_decay=0.1), lambda: optimizers.Nadam(),
                                 lambda: optimizers.RMSprop(centered=True), lambda: optimizers.Adagrad(),
                                 lambda: optimizers.Adam(global_clipnorm=0.5),
                                 lambda: optimizers.Adam(clipvalue=0.01)])
def test_packed_training_matches_per_variable_updates_bit_for_bit(opt, monkeypatch):
    (x, y), _ = datasets.load_digits()
    packed = make(opt())
    packed.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert is_packed(packed._train_vars)
    monkeypatch.setattr(trainer_module, "pack_variables", lambda vs: None)
    plain = make(opt())
    plain.fit(x, y, epochs=2, batch_size=64, verbose=0)
    assert not is_packed(plain._train_vars)
    for a, b in zip(packed.get_weights(), plain.get_weights()):
        assert np.array_equal(a, b)
    for v, w in zip(packed._train_vars, plain._train_vars):
        sa, sb = packed.optimizer.state_of(v), plain.optimizer.state_of(w)
        assert sa.keys() == sb.keys()
        for k in sa:
            assert np.array_equal(sa[k], sb[k]), k


def test_one_kernel_call_per_step(monkeypatch):
    # the Python loop's calls are counted (the compiled epoch makes one C call per run too)
    monkeypatch.setattr(compiled_epoch, "enabled", False)
    (x, y), _ = datasets.load_digits()
    m = make(optimizers.Adam())
    calls = []
    real = backend.ops.adam_update
    monkeypatch.setattr(backend.ops, "adam_update", lambda *a, **k: (calls.append(a[0].size), real(*a, **k))[1])
    m.fit(x[:640], y[:640], epochs=1, batch_size=64, verbose=0)
    assert len(calls) == 10  # 10 steps, one call each for all 8 trainable weights
    assert calls[0] == sum(v.value.size for v in m.trainable_weights)


def test_weight_decay_exclusions_split_the_packed_runs(monkeypatch):
    (x, y), _ = datasets.load_digits()
    opt = optimizers.AdamW(weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    m = make(opt)
    m.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0)
    # kernel | bias | gamma, beta, kernel | bias | kernel | bias
    assert [r.decay for r in opt._packed_cache[1]] == [True, False, True, False, True, False]
    # the excluded biases really are not decayed: compare with the per-variable path
    monkeypatch.setattr(trainer_module, "pack_variables", lambda vs: None)
    opt2 = optimizers.AdamW(weight_decay=0.5)
    opt2.exclude_from_weight_decay(var_names=["bias"])
    m2 = make(opt2)
    m2.fit(x[:128], y[:128], epochs=1, batch_size=64, verbose=0)
    for a, b in zip(m.get_weights(), m2.get_weights()):
        assert np.array_equal(a, b)


def test_weight_decay_exclusions_set_mid_training_take_effect(monkeypatch):
    """exclude_from_weight_decay after the packed runs were built must re-split them."""
    (x, y), _ = datasets.load_digits()
    results = []
    for pack in (True, False):
        if not pack:
            monkeypatch.setattr(trainer_module, "pack_variables", lambda vs: None)
        opt = optimizers.AdamW(weight_decay=0.5)
        m = make(opt)
        exclude = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: (
            opt.exclude_from_weight_decay(var_names=["bias"]) if epoch == 0 else None))
        m.fit(x[:128], y[:128], epochs=2, batch_size=64, verbose=0, callbacks=[exclude])
        results.append(m.get_weights())
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_pack_keeps_values_and_is_idempotent():
    rng = np.random.default_rng(0)
    layer = layers.Dense(3)
    layer._maybe_build((None, 4))
    before = layer.get_weights()
    layer.kernel.grad[...] = rng.standard_normal((4, 3))
    g = layer.kernel.grad.copy()
    values, grads = pack_variables(layer.weights)
    assert values.size == 15 and is_packed(layer.weights)
    for a, b in zip(before, layer.get_weights()):
        assert np.array_equal(a, b)
    assert np.array_equal(layer.kernel.grad, g)
    again, _ = pack_variables(layer.weights)
    assert again is values
    with pytest.raises(ValueError, match="one dtype"):
        v64 = layers.Dense(2, dtype="float64")
        v64._maybe_build((None, 2))
        pack_variables(layer.weights + v64.weights)


def test_resume_after_unfreezing_repacks_and_keeps_state():
    (x, y), _ = datasets.load_digits()
    m = make(optimizers.Adam())
    m.layers[0].trainable = False
    m.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)
    top = m.layers[-1].kernel
    m_state = m.optimizer.state_of(top)["momentum"].copy()
    m.layers[0].trainable = True
    m.fit(x[:64], y[:64], epochs=1, batch_size=64, verbose=0, shuffle=False)
    assert is_packed(m._train_vars) and len(m._train_vars) == 8
    # one more step moved the state on from where it was, not from zero
    st = m.optimizer.state_of(top)["momentum"]
    assert not np.array_equal(st, m_state) and np.abs(st - 0.9 * m_state).max() < np.abs(m_state).max()
