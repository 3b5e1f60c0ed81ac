"""The compiled epoch (fastnn/training/compiled_epoch.py, csrc/epoch.c): a fit it covers gives
the Python loop's bits (weights, optimizer state and step count, every logged number), and a
fit it does not cover runs the Python loop, saying why."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, optimizers, regularizers
from fastnn.training import compiled_epoch

from conftest import C, same_fastnn_env

pytestmark = pytest.mark.skipif(
    C is None or fastnn.backend.backend() != "c" or not compiled_epoch.bind_blas(),
    reason="the compiled epoch runs on the C kernels, with numpy's OpenBLAS bound")

N_FEATURES = 12


def _data(n, classes, loss, dtype, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)).astype(dtype)
    labels = rng.integers(0, max(classes, 2), n)
    if loss == "sparse_categorical_crossentropy":
        return x, labels
    if loss in ("categorical_crossentropy", "kl_divergence"):
        return x, np.eye(classes, dtype=dtype)[labels]
    if loss == "binary_crossentropy":
        return x, labels[:, None].astype(dtype).repeat(classes, axis=1)
    return x, rng.standard_normal((n, classes)).astype(dtype)


def _fit(compiled, monkeypatch, *, n=203, batch=16, classes=3, loss="sparse_categorical_crossentropy",
         acts=("relu", "tanh", "softmax"), optimizer=lambda: optimizers.Adam(1e-2),
         metrics=("accuracy",), dtype="float32", shuffle=True, epochs=3, widths=(16, 8),
         use_bias=True, freeze_first=False, extra=None, dense_kw=None, **fit_kw):
    monkeypatch.setattr(compiled_epoch, "enabled", compiled)
    fastnn.set_seed(7)
    x, y = _data(n, classes, loss, dtype)
    stack = [layers.Input(shape=(N_FEATURES,), dtype=dtype)]
    for i, (units, act) in enumerate(zip(widths + (classes,), acts)):
        stack.append(layers.Dense(units, activation=act, use_bias=use_bias, dtype=dtype,
                                  **(dense_kw or {})))
        if extra is not None and i < len(widths):  # layers after each hidden Dense
            stack += extra(dtype)
    model = fastnn.Sequential(stack)
    if freeze_first:
        model.layers[0].trainable = False
    model.compile(optimizer=optimizer(), loss=loss, metrics=list(metrics))
    history = model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=shuffle,
                        **fit_kw)
    return model, history.history


def _assert_same_training(monkeypatch, **kw):
    python, py_logs = _fit(False, monkeypatch, **kw)
    compiled, c_logs = _fit(True, monkeypatch, **kw)
    assert compiled._compiled_epoch_reason is None, compiled._compiled_epoch_reason
    assert python._compiled_epoch_reason == "turned off (FASTNN_COMPILED_EPOCH=0)"
    assert c_logs == py_logs  # every logged float, bit for bit
    for a, b in zip(python.get_weights(), compiled.get_weights()):
        assert a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()
    assert python.optimizer.iterations == compiled.optimizer.iterations
    for key in ("_u_product", "_u_step"):  # Nadam's schedule, written back bit for bit
        assert getattr(python.optimizer, key, None) == getattr(compiled.optimizer, key, None)
    for vp, vc in zip(python.trainable_weights, compiled.trainable_weights):
        sp, sc = python.optimizer._state[id(vp)], compiled.optimizer._state[id(vc)]
        assert sorted(sp) == sorted(sc)
        for key in sp:
            assert np.array_equal(sp[key], sc[key]), key


def _excluding_biases(optimizer):
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    return optimizer


def _stepped(optimizer):
    """``optimizer`` at step 5, as restored from a save: Nadam recomputes its schedule."""
    optimizer.iterations = 5
    return optimizer


CASES = {
    "adam, shuffled, remainder batch": {},
    "in order": dict(shuffle=False),
    "a last batch of one row": dict(n=193, batch=32),
    "one batch, the whole data": dict(n=64, batch=64),
    "a batch size above the row count": dict(n=50, batch=64),
    "float64": dict(dtype="float64"),
    "categorical cross-entropy, accuracy": dict(loss="categorical_crossentropy",
                                                metrics=("accuracy", "categorical_accuracy")),
    "cross-entropy from logits": dict(loss=fastnn.losses.CategoricalCrossentropy(from_logits=True),
                                      acts=("relu", "relu", None), metrics=()),
    "mse, one output": dict(loss="mse", classes=1, acts=("elu", "gelu", None), metrics=()),
    "binary cross-entropy, accuracy": dict(loss="binary_crossentropy", classes=2,
                                           acts=("swish", "selu", "sigmoid"),
                                           metrics=("accuracy",)),
    "binary accuracy at another threshold": dict(
        loss="mse", classes=2, acts=("relu", "relu", "sigmoid"),
        metrics=(fastnn.metrics.BinaryAccuracy(threshold=0.7),)),
    "huber, softmax not fused": dict(loss=fastnn.losses.Huber(0.5), acts=("relu", "relu", "softmax"),
                                     metrics=()),
    "no bias": dict(use_bias=False),
    "first layer frozen": dict(freeze_first=True),
    "sgd nesterov": dict(optimizer=lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True)),
    "plain sgd": dict(optimizer=lambda: optimizers.SGD(0.05)),
    "rmsprop centered": dict(optimizer=lambda: optimizers.RMSprop(1e-2, momentum=0.5, centered=True)),
    "adagrad": dict(optimizer=lambda: optimizers.Adagrad(0.05)),
    "adamax": dict(optimizer=lambda: optimizers.Adamax(1e-2)),
    "adamw, clipvalue, amsgrad": dict(optimizer=lambda: optimizers.AdamW(1e-2, clipvalue=0.05,
                                                                         amsgrad=True)),
    "adamw, biases excluded from decay (runs split)": dict(optimizer=lambda: _excluding_biases(
        optimizers.AdamW(1e-2, weight_decay=0.1))),
    "a schedule": dict(optimizer=lambda: optimizers.Adam(
        optimizers.schedules.ExponentialDecay(1e-2, decay_steps=5, decay_rate=0.9))),
    "validation data": dict(validation_split=0.2),
    "sample weights": dict(sample_weight=np.random.default_rng(3).uniform(0, 2, 203)),
    "class weights, in order": dict(class_weight={0: 0.5, 1: 2.0, 2: 1.0}, shuffle=False),
    "class weights, one-hot targets, mse": dict(
        loss="categorical_crossentropy", class_weight={0: 3.0, 2: 0.25}, metrics=("accuracy",)),
    "batchnorm, relu layer, dropout": dict(
        acts=(None, None, "softmax"), extra=lambda dtype: [
            layers.BatchNormalization(dtype=dtype), layers.ReLU(dtype=dtype),
            layers.Dropout(0.3, dtype=dtype)]),
    "activation layers": dict(
        acts=(None, None, "softmax"), extra=lambda dtype: [
            layers.Activation("gelu", dtype=dtype), layers.LeakyReLU(0.1, dtype=dtype),
            layers.Softmax(dtype=dtype)]),
    "l2 on the kernels": dict(dense_kw=dict(kernel_regularizer=regularizers.L2(1e-2))),
    "l1 kernels, l1_l2 biases, adamw, float64": dict(
        dtype="float64", optimizer=lambda: optimizers.AdamW(1e-2, weight_decay=0.05),
        dense_kw=dict(kernel_regularizer=regularizers.L1(1e-3),
                      bias_regularizer=regularizers.L1L2(1e-3, 1e-2))),
    "l2 kernels, nadam, global_clipnorm (the penalty's gradient in the norm)": dict(
        optimizer=lambda: optimizers.Nadam(1e-2, global_clipnorm=0.05),
        dense_kw=dict(kernel_regularizer=regularizers.L2(0.1))),
    "l2, first layer frozen (its penalty left out)": dict(
        freeze_first=True, dense_kw=dict(kernel_regularizer="l2")),
    "l2 on kernels big enough to be updated in the backward (so they are not)": dict(
        n=300, batch=64, widths=(256, 512), metrics=(),
        dense_kw=dict(kernel_regularizer=regularizers.L2(1e-3))),
    "dropout, first layer frozen, float64": dict(
        freeze_first=True, dtype="float64", extra=lambda dtype: [layers.Dropout(0.5, dtype=dtype)]),
    "nadam": dict(optimizer=lambda: optimizers.Nadam(1e-2)),
    "nadam, weight decay, schedule, float64": dict(dtype="float64", optimizer=lambda: optimizers.Nadam(
        optimizers.schedules.ExponentialDecay(1e-2, decay_steps=5, decay_rate=0.9),
        weight_decay=0.05)),
    "nadam, biases excluded from decay, clipvalue": dict(optimizer=lambda: _excluding_biases(
        optimizers.Nadam(1e-2, weight_decay=0.1, clipvalue=0.05))),
    "nadam, step count set from outside": dict(optimizer=lambda: _stepped(optimizers.Nadam(1e-2))),
    "clipnorm": dict(optimizer=lambda: optimizers.Adam(1e-2, clipnorm=0.1)),
    "clipnorm with adamw, biases excluded, float64": dict(
        dtype="float64", optimizer=lambda: _excluding_biases(
            optimizers.AdamW(1e-2, weight_decay=0.1, clipnorm=0.05))),
    "clipnorm with nadam, clipvalue ignored": dict(
        optimizer=lambda: optimizers.Nadam(1e-2, clipnorm=0.1, clipvalue=1e-4)),
    "clipnorm that never clips, sgd momentum": dict(
        optimizer=lambda: optimizers.SGD(0.05, momentum=0.9, clipnorm=1e6)),
    "global_clipnorm": dict(optimizer=lambda: optimizers.Adam(1e-2, global_clipnorm=1.0)),
    "global_clipnorm that clips every step, clipvalue ignored": dict(
        optimizer=lambda: optimizers.RMSprop(1e-2, global_clipnorm=1e-3, clipvalue=1e-5)),
    "global_clipnorm with adamw, biases excluded (runs split)": dict(
        optimizer=lambda: _excluding_biases(optimizers.AdamW(1e-2, weight_decay=0.1,
                                                             global_clipnorm=0.05))),
    "global_clipnorm, nadam, a schedule, float64": dict(dtype="float64", optimizer=lambda: optimizers.Nadam(
        optimizers.schedules.ExponentialDecay(1e-2, decay_steps=5, decay_rate=0.9),
        global_clipnorm=0.02)),
    # kernels big enough to be updated in the backward without clipping by norm: not here
    "global_clipnorm, kernels that would be fused": dict(
        n=300, batch=64, widths=(256, 512), epochs=2,
        optimizer=lambda: optimizers.Adam(1e-2, global_clipnorm=0.01)),
    "clipnorm, kernels that would be fused": dict(
        n=300, batch=64, widths=(256, 512), epochs=2,
        optimizer=lambda: optimizers.Nadam(1e-2, clipnorm=0.01)),
    "nadam, kernels big enough to split": dict(
        n=300, batch=64, widths=(256, 512), epochs=2, optimizer=lambda: optimizers.Nadam(1e-2)),
}


@pytest.mark.parametrize("case", CASES)
def test_compiled_epoch_gives_the_python_loops_bits(monkeypatch, case):
    _assert_same_training(monkeypatch, **CASES[case])


def test_compiled_epoch_over_many_chunks_gives_the_same_bits(monkeypatch):
    # chunks start at 8 steps: 300 steps cross several chunk boundaries
    monkeypatch.setattr(compiled_epoch, "CHUNK_SECONDS", 1e-9)
    _assert_same_training(monkeypatch, n=1200, batch=4, epochs=1)


def test_early_stopping_and_lr_callbacks_act_between_compiled_epochs(monkeypatch):
    runs = {}
    for compiled in (False, True):
        cbs = [callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0),
               callbacks.LearningRateScheduler(lambda e, lr: lr * 0.5)]
        runs[compiled] = _fit(compiled, monkeypatch, epochs=6, callbacks=cbs)
    model, logs = runs[True]
    assert model._compiled_epoch_reason is None
    assert logs == runs[False][1]
    assert len(logs["loss"]) == 2  # stopped after the second epoch


def test_an_infinite_norm_of_finite_gradients_gives_the_python_loops_bits(monkeypatch):
    """Gradients near 1e160 (finite; their squares overflow float64): the norm is inf, so
    _norm_scale gives 0 under clipnorm (no change) and NaN under global_clipnorm, in C too."""
    for clip, finite in ((dict(clipnorm=1.0), True), (dict(global_clipnorm=1.0), False)):
        runs = []
        for compiled in (False, True):
            monkeypatch.setattr(compiled_epoch, "enabled", compiled)
            fastnn.set_seed(7)
            x, y = _data(64, 3, "mse", "float64")
            model = fastnn.Sequential([layers.Input(shape=(N_FEATURES,), dtype="float64"),
                                       layers.Dense(8, dtype="float64"),
                                       layers.Dense(3, dtype="float64")])
            model.compile(optimizer=optimizers.Adam(1e-2, **clip), loss="mse")
            weights = model.get_weights()
            weights[-1][:] = 1e160  # the outputs, so every gradient, near 1e160
            model.set_weights(weights)
            with np.errstate(all="ignore"):
                model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
            assert model._compiled_epoch_reason == (None if compiled else
                                                    "turned off (FASTNN_COMPILED_EPOCH=0)")
            runs.append(model.get_weights())
        for a, b, start in zip(*runs, weights):
            assert a.tobytes() == b.tobytes()
            assert np.array_equal(b, start) if finite else np.isnan(b).all()


@pytest.mark.parametrize("change,reason", [
    (dict(loss="mse", acts=("relu", "relu", None), metrics=("mae",)), "the metric "),
    (dict(optimizer=lambda: optimizers.Adam(use_ema=True)), "gradient accumulation or EMA"),
    (dict(optimizer=lambda: optimizers.Nadam(gradient_accumulation_steps=2)),
     "gradient accumulation or EMA"),
    (dict(optimizer=lambda: optimizers.Lion()), "the optimizer Lion"),
    # 33 Dense layers: 66 variables, more than the plan's 64 runs or norms
    (dict(widths=(4,) * 32, acts=("relu",) * 32 + ("softmax",),
          optimizer=lambda: optimizers.Adam(clipnorm=1.0)), "clipnorm with more than 64 variables"),
    (dict(widths=(4,) * 32, acts=("relu",) * 32 + ("softmax",),
          optimizer=lambda: optimizers.Adam(global_clipnorm=1.0)),
     "global_clipnorm with more than 64 variables"),
    (dict(steps_per_epoch=3), "steps_per_epoch"),
    (dict(loss="sparse_categorical_crossentropy", acts=("relu", "relu", "sigmoid")),
     "sparse cross-entropy after a layer other than softmax"),
])
def test_fits_the_compiled_epoch_does_not_cover_run_the_python_loop(monkeypatch, change, reason):
    model, logs = _fit(True, monkeypatch, **change)
    assert reason in model._compiled_epoch_reason
    assert np.isfinite(logs["loss"]).all()


class _Squares(regularizers.Regularizer):
    """A user's regularizer: the C loop knows only L1, L2 and L1L2."""

    def __call__(self, w):
        return 1e-3 * float(np.sum(w * w))

    def add_gradient(self, w, grad, scale=1.0):
        grad += (2e-3 * scale) * w


def test_other_layers_regularizers_and_constraints_run_the_python_loop(monkeypatch):
    monkeypatch.setattr(compiled_epoch, "enabled", True)
    x, y = _data(64, 3, "sparse_categorical_crossentropy", "float32")
    for stack, reason in (
            ([layers.Dense(8, activation="relu"), layers.GaussianNoise(0.2),
              layers.Dense(3, activation="softmax")], "layers other than Dense, Activation, "
             "Dropout, BatchNormalization and Add"),
            ([layers.Dense(8, kernel_regularizer=_Squares()),
              layers.Dense(3, activation="softmax")],
             "a weight regularizer other than L1, L2 and L1L2"),
            ([layers.Dense(8, kernel_constraint="max_norm"),
              layers.Dense(3, activation="softmax")], "a weight constraint")):
        model = fastnn.Sequential([layers.Input(shape=(N_FEATURES,))] + stack)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, verbose=0)
        assert model._compiled_epoch_reason == reason


def test_a_watching_callback_takes_the_python_loop(monkeypatch):
    class Count(callbacks.Callback):
        seen = 0

        def on_train_batch_end(self, batch, logs=None):
            Count.seen += 1
    model, _ = _fit(True, monkeypatch, epochs=1, callbacks=[Count()])
    assert Count.seen == 13  # 203 rows in batches of 16: every step seen
    assert not hasattr(model, "_compiled_epoch_reason")  # never planned: the Python loop ran


def _residual_fit(compiled, monkeypatch, order, frozen_stem=False, dtype="float32"):
    """A residual MLP (issue 14's net, small): Dense, then blocks of Dense -> BatchNorm ->
    ReLU -> Dropout -> Dense added back to their input, then softmax."""
    monkeypatch.setattr(compiled_epoch, "enabled", compiled)
    fastnn.set_seed(3)
    x, y = _data(301, 3, "sparse_categorical_crossentropy", dtype)
    inp = fastnn.Input(shape=(N_FEATURES,), dtype=dtype)
    stem = layers.Dense(16, activation="relu", dtype=dtype)
    h = stem(inp)
    for _ in range(2):
        f = layers.Dense(16, dtype=dtype)(h)
        f = layers.BatchNormalization(dtype=dtype)(f)
        f = layers.ReLU(dtype=dtype)(f)
        f = layers.Dropout(0.2, dtype=dtype)(f)
        f = layers.Dense(16, dtype=dtype)(f)
        h = layers.Add(dtype=dtype)([h, f] if order == "skip first" else [f, h])
    model = fastnn.Model(inp, layers.Dense(3, activation="softmax", dtype=dtype)(h))
    stem.trainable = not frozen_stem
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model, model.fit(x, y, batch_size=16, epochs=2, verbose=0).history


@pytest.mark.parametrize("order,frozen_stem,dtype", [("skip first", False, "float32"),
                                                     ("skip second", False, "float32"),
                                                     ("skip first", True, "float64")])
def test_compiled_epoch_of_a_residual_graph_gives_the_python_loops_bits(monkeypatch, order,
                                                                       frozen_stem, dtype):
    python, py_logs = _residual_fit(False, monkeypatch, order, frozen_stem, dtype)
    compiled, c_logs = _residual_fit(True, monkeypatch, order, frozen_stem, dtype)
    assert compiled._compiled_epoch_reason is None, compiled._compiled_epoch_reason
    assert c_logs == py_logs
    for a, b in zip(python.get_weights(), compiled.get_weights()):
        assert a.view(np.uint8).tobytes() == b.view(np.uint8).tobytes()


def test_graphs_the_compiled_epoch_does_not_cover_run_the_python_loop(monkeypatch):
    monkeypatch.setattr(compiled_epoch, "enabled", True)
    x, y = _data(64, 3, "sparse_categorical_crossentropy", "float32")
    inp = fastnn.Input(shape=(N_FEATURES,))
    a, b = layers.Dense(8)(inp), layers.Dense(8)(inp)
    model = fastnn.Model(inp, layers.Dense(3, activation="softmax")(
        layers.Concatenate()([a, b])))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert model._compiled_epoch_reason == ("layers other than Dense, Activation, Dropout, "
                                            "BatchNormalization and Add")


ADAPTIVE_CHILD = textwrap.dedent("""
    import json
    import numpy as np
    import fastnn
    from fastnn import layers, optimizers, threads
    from fastnn.training import compiled_epoch

    def fit(compiled):
        compiled_epoch.enabled = compiled
        fastnn.set_seed(7)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((640, 12)).astype(np.float32)
        y = rng.integers(0, 3, 640)
        model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(256, activation="relu"),
                                   layers.Dense(128, activation="tanh"),
                                   layers.Dense(3, activation="softmax")])
        model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        logs = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history
        return model, logs

    fastnn.set_num_threads(1, adaptive=True)  # the chunks, all on this thread
    one, one_logs = fit(False)
    one_c, one_c_logs = fit(True)
    fastnn.set_num_threads(2, adaptive=True)
    python, py_logs = fit(False)
    compiled, c_logs = fit(True)
    print(json.dumps({
        "policy": threads.policy(), "reason": compiled._compiled_epoch_reason,
        "split": sum(g is not None for p in compiled._compiled_epoch_split if p for g in p),
        "logs": c_logs == py_logs == one_logs == one_c_logs,
        "weights": all(a.tobytes() == b.tobytes() == c.tobytes() == d.tobytes()
                       for a, b, c, d in zip(one.get_weights(), one_c.get_weights(),
                                             python.get_weights(), compiled.get_weights()))}))
""")


def test_compiled_epoch_under_the_adaptive_policy_gives_the_same_bits_on_any_threads():
    """set_num_threads("adaptive"): products big enough are computed in chunks from C, split
    over fastnn's threads (taken as they come free, the BLAS at one thread) or not, with the
    bits of the chunks: those the Python loop gives under that policy, on 1 thread or 2. In
    a process of its own: the policy needs numpy's BLAS alone in the process (SciPy loads
    another)."""
    r = subprocess.run([sys.executable, "-c", ADAPTIVE_CHILD], capture_output=True, text=True,
                       timeout=300, **same_fastnn_env())
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    # the 12-256-128-3 net at batch 64: the 256-128 layer's three products are chunked
    assert result == {"policy": "adaptive", "reason": None, "split": 3, "logs": True,
                      "weights": True}


def _policy_env():
    """The environment for a child that sets its own threads: no thread limit or policy of
    the caller's."""
    import os
    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FASTNN_THREADS")}


FUSED_CHILD = textwrap.dedent("""
    import json
    import numpy as np
    import fastnn
    from fastnn import layers, optimizers
    from fastnn.training import compiled_epoch

    RULES = {
        "adam, amsgrad, clipvalue": lambda: optimizers.Adam(1e-2, amsgrad=True, clipvalue=0.05),
        "sgd, nesterov": lambda: optimizers.SGD(0.05, momentum=0.9, nesterov=True),
        "rmsprop, centered": lambda: optimizers.RMSprop(1e-2, momentum=0.5, centered=True),
        "adagrad": lambda: optimizers.Adagrad(0.05),
        "adamax": lambda: optimizers.Adamax(1e-2),
        "adamw, biases excluded": lambda: optimizers.AdamW(1e-2, weight_decay=0.1),
        "nadam": lambda: optimizers.Nadam(1e-2),
    }

    def fit(compiled, rule):
        compiled_epoch.enabled = compiled
        fastnn.set_seed(7)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((300, 12)).astype(np.float32)
        y = rng.integers(0, 3, 300)
        model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(256, activation="relu"),
                                   layers.Dense(512, activation="tanh"),
                                   layers.Dense(128, activation="relu"),
                                   layers.Dense(3, activation="softmax")])
        opt = RULES[rule]()
        if rule.endswith("excluded"):
            opt.exclude_from_weight_decay(var_names=["bias"])
        model.compile(optimizer=opt, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        logs = model.fit(x, y, batch_size=64, epochs=2, verbose=0).history
        return model, logs

    def held(way):
        # every product's choice set to `way` (2: the updates on the threads that made the
        # chunks, 3: on the calling thread), not measured again
        for key, state in compiled_epoch._split_choices.items():
            compiled_epoch._split_choices[key] = (way,) + state[1:4] + (0, 1 << 40)

    out = {}
    for rule in RULES:
        fastnn.set_num_threads(2, adaptive=True)
        python, py_logs = fit(False, rule)
        same = []
        for n, way in ((1, None), (2, None), (5, None), (2, 2), (5, 2), (2, 3), (5, 3)):
            fastnn.set_num_threads(n, adaptive=True)
            if way:
                held(way)
            compiled, c_logs = fit(True, rule)
            same.append(compiled._compiled_epoch_reason is None and c_logs == py_logs and all(
                a.tobytes() == b.tobytes()
                for a, b in zip(python.get_weights(), compiled.get_weights())))
        compiled_epoch._split_choices.clear()
        out[rule] = {"same": same, "fused": compiled._compiled_epoch_fused}
    print(json.dumps(out))
""")


def test_kernels_updated_during_the_backward_give_the_python_loops_bits():
    """A Dense kernel whose weight gradient is made in chunks is updated chunk by chunk in
    the backward, by the thread that made the chunk (csrc/epoch.c), by blocks of rows (the
    512-128 layer) or of columns (256-512): for every rule, on 2 and 5 threads (5 on two
    cores: workers late, chunks taken over), as measured and with the weight-gradient
    products held to the update on the chunks' threads or on the calling thread, the Python
    loop's bits, the update applied once; on 1 thread (no such update there) too."""
    r = subprocess.run([sys.executable, "-c", FUSED_CHILD], capture_output=True, text=True,
                       timeout=600, **same_fastnn_env(_policy_env()))
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    for rule, got in result.items():
        assert got == {"same": [True] * 7, "fused": [1, 2]}, rule


FUSED_LIST_CHILD = textwrap.dedent("""
    import json
    import numpy as np
    import fastnn
    from fastnn import layers, optimizers, regularizers

    def fused(optimizer, reg=None, threads=2):
        fastnn.set_num_threads(threads, adaptive=True)
        rng = np.random.default_rng(1)
        x = rng.standard_normal((128, 12)).astype(np.float32)
        y = rng.integers(0, 3, 128)
        model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(256),
                                   layers.Dense(512, kernel_regularizer=reg),
                                   layers.Dense(3, activation="softmax")])
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        return model._compiled_epoch_reason or model._compiled_epoch_fused

    print(json.dumps({
        "adam": fused(optimizers.Adam(1e-2)),
        "nadam": fused(optimizers.Nadam(1e-2)),
        "one thread": fused(optimizers.Adam(1e-2), threads=1),
        "clipnorm": fused(optimizers.Nadam(1e-2, clipnorm=0.01)),
        "global_clipnorm": fused(optimizers.Adam(1e-2, global_clipnorm=0.01)),
        "l2 on the kernel": fused(optimizers.Adam(1e-2), reg=regularizers.L2(1e-3))}))
""")


def test_which_kernels_are_updated_during_the_backward():
    """The 256-512 kernel's weight gradient is made in chunks (at batch 64): split over two
    threads, each chunk's block of the kernel is updated by the thread that made it. Not on
    one thread (measured slower there), not when the update's scale needs the norm of every
    gradient (clipnorm, global_clipnorm), not when the kernel's gradient waits for its
    penalty's (a regularizer). In a process of its own: the adaptive policy needs numpy's
    BLAS alone in the process."""
    r = subprocess.run([sys.executable, "-c", FUSED_LIST_CHILD], capture_output=True,
                       text=True, timeout=300, **same_fastnn_env(_policy_env()))
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {
        "adam": [1], "nadam": [1], "one thread": [], "clipnorm": [], "global_clipnorm": [],
        "l2 on the kernel": []}


def test_a_regularizer_changed_between_epochs_gives_the_python_loops_bits(monkeypatch):
    """The Python loop reads the L1/L2 factors at every step; the compiled epoch at every
    epoch, so a callback that changes one between epochs changes both alike."""
    class Loosen(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            for layer in self.model.layers:
                layer.kernel_regularizer.l2 *= 0.1
    # "l2": each layer its own regularizer, made anew for each of the two fits
    _assert_same_training(monkeypatch, epochs=3, callbacks=[Loosen()],
                          dense_kw=dict(kernel_regularizer="l2"))


def test_more_regularized_variables_than_the_plan_holds_run_the_python_loop(monkeypatch):
    monkeypatch.setattr(compiled_epoch, "enabled", True)
    x, y = _data(32, 3, "sparse_categorical_crossentropy", "float32")
    reg = dict(kernel_regularizer="l2", bias_regularizer="l2")
    model = fastnn.Sequential([layers.Input(shape=(N_FEATURES,))]
                              + [layers.Dense(4, **reg) for _ in range(32)]
                              + [layers.Dense(3, activation="softmax", **reg)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, verbose=0).history
    assert model._compiled_epoch_reason == "more than 64 regularized variables"
    assert np.isfinite(history["loss"]).all()
