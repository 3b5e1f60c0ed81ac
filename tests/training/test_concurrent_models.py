"""One model used from several threads (a web service predicting from a thread pool, a
monitor predicting while fit runs), and Ctrl-C during fit: predictions equal the serial ones,
a prediction sees the model before or after a step (never half-updated), two trainings of one
model are a clear error, and an interrupted fit leaves the model as after its last step."""
import copy
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, metrics, regularizers

from conftest import same_fastnn_env


def service_model(seed=0, bn=False):
    fastnn.set_seed(seed)
    stack = [layers.Input(shape=(64,)), layers.Dense(256, activation="relu")]
    if bn:
        stack += [layers.BatchNormalization(), layers.Dropout(0.2)]
    model = fastnn.Sequential(stack + [layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run_threads(*targets):
    errors = []

    def wrap(f):
        def run():
            try:
                f()
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)
        return run
    threads = [threading.Thread(target=wrap(f)) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_predict_from_two_threads_gives_the_serial_results():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 64)).astype(np.float32)
    model = service_model()
    halves = (x[:256], x[256:])
    serial = [model.predict(h, verbose=0) for h in halves]
    wrong = [0, 0]

    def client(i):
        def run():
            for _ in range(150):
                wrong[i] += not np.array_equal(model.predict(halves[i], verbose=0), serial[i])
        return run
    run_threads(client(0), client(1))
    assert wrong == [0, 0]


def test_evaluate_and_call_from_two_threads_give_the_serial_results():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    model = service_model(bn=True)
    model.fit(x, y, epochs=1, verbose=0)
    parts = ((x[:150], y[:150]), (x[150:], y[150:]))
    serial_eval = [model.evaluate(a, b, batch_size=50, verbose=0) for a, b in parts]
    serial_call = [model(a) for a, _ in parts]
    wrong = [0, 0]

    def client(i):
        def run():
            for _ in range(60):
                wrong[i] += model.evaluate(*parts[i], batch_size=50, verbose=0) != serial_eval[i]
                wrong[i] += not np.array_equal(model(parts[i][0]), serial_call[i])
        return run
    run_threads(client(0), client(1))
    assert wrong == [0, 0]


def test_predict_during_fit_sees_the_model_between_steps():
    """Every prediction made by another thread while fit runs equals the prediction of the
    model as it was after some step (weights, BatchNormalization statistics)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((640, 64)).astype(np.float32)
    y = rng.integers(0, 10, 640)
    probe = x[:32].copy()
    model = service_model(bn=True)
    states = [model.get_weights()]
    seen, done, predicted = [], threading.Event(), threading.Event()

    def after_step(batch, logs):
        states.append(model.get_weights())
        predicted.wait(2)  # let the monitor in at least once a step, however busy the machine
        predicted.clear()
    record = callbacks.LambdaCallback(on_train_batch_end=after_step)

    def monitor():
        while not done.is_set():
            seen.append(model.predict(probe, verbose=0).tobytes())
            predicted.set()

    def trainer():
        try:
            model.fit(x, y, batch_size=16, epochs=2, callbacks=[record], verbose=0)
        finally:
            done.set()
    run_threads(trainer, monitor)
    twin = service_model(bn=True)
    possible = set()
    for weights in states:
        twin.set_weights(weights)
        possible.add(twin.predict(probe, verbose=0).tobytes())
    assert len(seen) >= 80 and len(states) == 81
    assert all(s in possible for s in seen), "a prediction saw a half-updated model"


def test_training_one_model_from_two_threads_is_a_clear_error():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 64)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    model = service_model()
    inside, go_on = threading.Event(), threading.Event()

    def hold(batch, logs):
        inside.set()
        go_on.wait(10)

    def first():
        model.fit(x, y, epochs=1, batch_size=64, verbose=0,
                  callbacks=[callbacks.LambdaCallback(on_train_batch_begin=hold)])

    def second():
        inside.wait(10)
        try:
            for call in (lambda: model.fit(x, y, verbose=0), lambda: model.train_on_batch(x, y)):
                with pytest.raises(RuntimeError, match="being trained in another thread"):
                    call()
        finally:
            go_on.set()
    run_threads(first, second)
    # once the first fit is over, either thread may train again
    model.train_on_batch(x, y)
    run_threads(lambda: model.fit(x, y, verbose=0))


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastnn
    from fastnn import layers

    def make():
        fastnn.set_seed(0)
        m = fastnn.Sequential([layers.Input(shape=(8,)), layers.Dense(16),
                               layers.BatchNormalization(), layers.Activation("relu"),
                               layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return m

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 8)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    results = []
    for trial in range(int(sys.argv[1])):
        model = make()
        print("ready", flush=True)
        try:
            model.fit(x, y, batch_size=16, epochs=10 ** 6, verbose=0)  # one step an epoch
        except KeyboardInterrupt:
            pass
        k = int(model.optimizer.iterations)
        twin = make()
        twin.fit(x, y, batch_size=16, epochs=k, verbose=0)
        same = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), twin.get_weights()))
        results.append({"steps": k, "same": same})
    print(json.dumps(results), flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_during_fit_leaves_the_model_as_after_its_last_step():
    """SIGINT at random moments of fit: the model (weights, BatchNormalization statistics,
    optimizer step, dropout RNG) equals a model trained for as many steps."""
    import random
    import signal
    import time
    trials = 8
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(trials)], stdout=subprocess.PIPE,
                            text=True, **same_fastnn_env())
    rnd = random.Random(0)
    try:
        for _ in range(trials):
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rnd.uniform(0.05, 0.3))
            os.kill(proc.pid, signal.SIGINT)
        out = proc.stdout.readline()
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    import json
    results = json.loads(out)
    assert all(r["steps"] > 0 for r in results), results
    assert all(r["same"] for r in results), results


# ---- the gaps between the lock and what it guards ----------------------------------------
def _gate(thread_name, entered, release):
    """A pass-through user layer that blocks the first time it runs in thread ``thread_name``."""
    class Gate(layers.Layer):
        def call(self, x):
            if threading.current_thread().name == thread_name and not entered.is_set():
                entered.set()
                release.wait(10)
            return x

        def backward(self, dy, need_dx=True):
            return self.call(dy)
    return Gate()


def test_fit_metrics_see_the_step_output_whatever_other_threads_predict():
    """fit updates its metrics from the step's output after releasing the state lock:
    inference in other threads has work arrays of its own, never the training ones."""
    go, done, unchanged = threading.Event(), threading.Event(), []

    class Probe(metrics.Metric):
        def values(self, y_true, y_pred):
            before = np.array(y_pred, copy=True)
            if not go.is_set():
                go.set()
                done.wait(10)   # another thread predicts meanwhile
            unchanged.append(np.array_equal(before, y_pred))
            return np.zeros(len(y_true))

    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(8,)), layers.Dense(16, activation="relu"),
                           layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=[Probe()])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 8)).astype("float32")
    y = rng.integers(0, 3, 32)
    other = (10 * rng.standard_normal((32, 8))).astype("float32")

    def monitor():
        go.wait(10)
        m.predict(other, verbose=0)
        done.set()
    t = threading.Thread(target=monitor)
    t.start()
    m.fit(x, y, batch_size=32, epochs=1, verbose=0)
    t.join()
    assert unchanged == [True], "the training metric saw another thread's predictions"


def test_concurrent_evaluates_with_activity_regularizer_give_the_serial_loss():
    """Each thread's activity penalties are kept with its own work arrays (a read lock is
    shared by concurrent evaluates)."""
    a_in, b_done = threading.Event(), threading.Event()
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(8,)),
                           layers.Dense(16, activity_regularizer=regularizers.l2(1.0)),
                           _gate("A", a_in, b_done), layers.Dense(1)])
    m.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((32, 8)).astype("float32")
    xb = 100 * xa
    y = np.zeros((32, 1), "float32")
    serial = m.evaluate(xa, y, batch_size=32, verbose=0)
    res = {}

    def a():
        res["a"] = m.evaluate(xa, y, batch_size=32, verbose=0)

    def b():
        a_in.wait(10)
        res["b"] = m.evaluate(xb, y, batch_size=32, verbose=0)
        b_done.set()
    ta, tb = threading.Thread(target=a, name="A"), threading.Thread(target=b, name="B")
    for t in (ta, tb):
        t.start()
    for t in (ta, tb):
        t.join()
    assert res["a"] == pytest.approx(serial, rel=1e-6)


def test_ctrl_c_while_a_writer_waits_leaves_the_lock_free():
    """A KeyboardInterrupt while a writer (set_weights here) waits for a reader: the lock is
    left free, the reader finishes, later predictions work."""
    entered, release = threading.Event(), threading.Event()
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(4), _gate("reader", entered, release),
                           layers.Dense(1)])
    x = np.ones((8, 4), "float32")
    w = m.get_weights()
    r = threading.Thread(target=lambda: m.predict(x, verbose=0), name="reader", daemon=True)
    r.start()
    assert entered.wait(10)

    def interrupter():
        while m._state_lock._writer_waiting == 0:
            time.sleep(0.001)
        time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    threading.Thread(target=interrupter, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        m.set_weights(w)
    release.set()
    r.join(3)
    later = threading.Thread(target=lambda: m.predict(x, verbose=0), daemon=True)
    later.start()
    later.join(3)
    assert not r.is_alive() and not later.is_alive(), "model locked for good after Ctrl-C"


def test_load_weights_waits_for_a_prediction_in_progress(tmp_path):
    """load_weights writes under the state lock, as set_weights: a prediction in another
    thread sees the old weights or the new ones, never half of each."""
    entered, release = threading.Event(), threading.Event()
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(4), _gate("reader", entered, release),
                           layers.Dense(1)])
    x = np.ones((2, 4), "float32")
    old = m.predict(x, verbose=0)
    w_old = m.get_weights()
    m.set_weights([2 * w + 1 for w in w_old])
    new = m.predict(x, verbose=0)
    path = str(tmp_path / "w.weights.h5")
    m.save_weights(path)
    m.set_weights(w_old)
    out = {}
    r = threading.Thread(target=lambda: out.update(y=m.predict(x, verbose=0)), name="reader")
    r.start()
    assert entered.wait(10)
    loader = threading.Thread(target=lambda: m.load_weights(path))
    loader.start()
    loader.join(1)
    finished_during_prediction = not loader.is_alive()
    release.set()
    r.join()
    loader.join()
    assert not finished_during_prediction, "load_weights wrote while a prediction was reading"
    assert np.array_equal(out["y"], old) or np.array_equal(out["y"], new)


def test_a_copy_made_during_fit_in_another_thread_is_a_state_between_steps():
    """deepcopy (as pickling, save and get_weights) reads the model between two steps: a
    copy never mixes a step's BatchNormalization statistics with the weights before it."""
    in_step, release = threading.Event(), threading.Event()
    fastnn.set_seed(0)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(4), layers.BatchNormalization(),
                           _gate("trainer", in_step, release), layers.Dense(1)])
    m.compile("sgd", "mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 4)).astype("float32")
    y = rng.standard_normal((16, 1)).astype("float32")
    before = m.get_weights()
    t = threading.Thread(target=lambda: m.fit(x, y, batch_size=16, epochs=1, verbose=0),
                         name="trainer")
    t.start()
    assert in_step.wait(10)          # blocked inside the step's backward (write lock held)
    snap = copy.deepcopy(m).get_weights()
    release.set()
    t.join()
    after = m.get_weights()

    def same(a, b):
        return all(np.array_equal(p, q) for p, q in zip(a, b))
    assert same(snap, before) or same(snap, after), "a copy of a half-made step"
