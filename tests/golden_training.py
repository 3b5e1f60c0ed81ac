"""Training runs whose final weights were recorded before the training engine moved out of
Sequential (tests/data/golden_training.npz): the same seed must give the same bits after it.

``python tests/golden_training.py`` records them again (only on purpose: the file pins the
behaviour of the code that made it)."""
import numpy as np

import fastnn
from fastnn import layers, optimizers


def _data(n=100, d=12, classes=3, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return x, y


def case_adam_shuffle_split_weights():
    x, y = _data()
    fastnn.set_seed(1)
    model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(16, activation="relu"),
                               layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    w = np.linspace(0.5, 1.5, len(x))
    model.fit(x, y, batch_size=16, epochs=3, validation_split=0.2, sample_weight=w, verbose=0)
    return model.get_weights() + [model.predict(x[:10], verbose=0)]


def case_bn_dropout_steps_carry_over():
    x, y = _data(seed=8)
    fastnn.set_seed(2)
    model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(16),
                               layers.BatchNormalization(), layers.Activation("elu"),
                               layers.Dropout(0.3), layers.Dense(3, activation="softmax")])
    model.compile(optimizer=optimizers.RMSprop(0.01), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=4, steps_per_epoch=5, verbose=0)
    return model.get_weights() + [model.predict(x[:10], verbose=0)]


def case_float64_sgd_class_weight_no_shuffle():
    x, y = _data(seed=9)
    old = fastnn.floatx()
    fastnn.set_floatx("float64")
    try:
        fastnn.set_seed(3)
        model = fastnn.Sequential([layers.Input(shape=(12,)), layers.Dense(8, activation="tanh"),
                                   layers.Dense(3, activation="softmax")])
        model.compile(optimizer=optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                      loss="sparse_categorical_crossentropy")
        model.fit(x.astype(np.float64), y, batch_size=10, epochs=2, shuffle=False,
                  class_weight={0: 1.0, 1: 2.0, 2: 0.5},
                  validation_data=(x[:20], y[:20]), verbose=0)
        return model.get_weights() + [model.predict(x[:10], verbose=0)]
    finally:
        fastnn.set_floatx(old)


def case_regression_float64_input_train_on_batch():
    rng = np.random.default_rng(10)
    x = rng.normal(size=(64, 5))  # float64 data for a float32 model
    y = x @ rng.normal(size=(5, 2)) + 0.1
    fastnn.set_seed(4)
    model = fastnn.Sequential([layers.Input(shape=(5,)), layers.Dense(8, activation="gelu"),
                               layers.Dense(2)])
    model.compile(optimizer=optimizers.Nadam(0.01), loss="mse", metrics=["mae"])
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    for lo in range(0, 64, 16):
        model.train_on_batch(x[lo:lo + 16], y[lo:lo + 16])
    ev = model.evaluate(x, y, verbose=0)
    return model.get_weights() + [model.predict(x[:10], verbose=0), np.array(ev)]


CASES = {f.__name__: f for f in (case_adam_shuffle_split_weights, case_bn_dropout_steps_carry_over,
                                 case_float64_sgd_class_weight_no_shuffle,
                                 case_regression_float64_input_train_on_batch)}


def machine_fingerprint():
    """What decides the bits besides fastnn: the CPU model, numpy and its BLAS core."""
    import platform
    from threadpoolctl import threadpool_info
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    blas = sorted(f"{i.get('internal_api')}-{i.get('version')}-{i.get('architecture')}"
                  for i in threadpool_info() if i.get("user_api") == "blas")
    return "|".join([platform.machine(), cpu, np.__version__, fastnn.backend.backend(),
                     str(fastnn.get_num_threads())] + blas)


if __name__ == "__main__":
    import os
    out = {"fingerprint": np.array(machine_fingerprint())}
    for name, case in CASES.items():
        for i, a in enumerate(case()):
            out[f"{name}/{i}"] = np.asarray(a)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "golden_training.npz")
    np.savez(path, **out)
    print("recorded", len(out) - 1, "arrays on", out["fingerprint"])
