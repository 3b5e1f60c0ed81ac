"""One model used from several threads (a web service predicting from a thread pool, a
monitor predicting while fit runs), and Ctrl-C during fit: predictions equal the serial ones,
a prediction sees the model before or after a step (never half-updated), two trainings of one
model are a clear error, and an interrupted fit leaves the model as after its last step."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers

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
