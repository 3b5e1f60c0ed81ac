"""Graphs of layers with the functional API: Hands-On ML's Wide & Deep network (chapter 10,
the one-input version: the raw features go straight to the output next to a deep path) and a
residual MLP for tabular data (Gorishniy et al. 2021: blocks of Dense -> BatchNorm -> ReLU ->
Dropout -> Dense added back to their input), against a plain MLP of the same width, on a
regression table built from the digits (predict the digit's value, 0-9, as a number).

    python examples/graphs.py
"""
import numpy as np

import fastnn
from fastnn import layers


def data():
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    return (x, y.astype(np.float32)), (xt, yt.astype(np.float32))


def wide_and_deep(x):
    norm = layers.Normalization()
    norm.adapt(x)
    inp = fastnn.Input(shape=x.shape[1:])
    normalized = norm(inp)
    hidden1 = layers.Dense(30, activation="relu")(normalized)
    hidden2 = layers.Dense(30, activation="relu")(hidden1)
    concat = layers.Concatenate()([normalized, hidden2])
    output = layers.Dense(1)(concat)
    return fastnn.Model(inputs=[inp], outputs=[output], name="wide_and_deep")


def residual_mlp(x, width=64, blocks=2):
    inp = fastnn.Input(shape=x.shape[1:])
    h = layers.Dense(width, activation="relu")(inp)
    for _ in range(blocks):
        z = layers.Dense(width)(h)
        z = layers.BatchNormalization()(z)
        z = layers.Activation("relu")(z)
        z = layers.Dropout(0.1)(z)
        z = layers.Dense(width)(z)
        h = layers.Add()([h, z])
    return fastnn.Model(inp, layers.Dense(1)(h), name="residual_mlp")


def plain_mlp(x, width=64, blocks=2):
    stack = [fastnn.Input(shape=x.shape[1:]), layers.Dense(width, activation="relu")]
    for _ in range(blocks):
        stack += [layers.Dense(width), layers.BatchNormalization(), layers.Activation("relu"),
                  layers.Dropout(0.1), layers.Dense(width)]
    return fastnn.Sequential(stack + [layers.Dense(1)], name="plain_mlp")


def main(small=False, seed=0):
    (x, y), (xt, yt) = data()
    epochs = 3 if small else 30
    results = {}
    for make in (wide_and_deep, residual_mlp, plain_mlp):
        fastnn.set_seed(seed)
        model = make(x)
        model.compile(loss="mse", optimizer=fastnn.optimizers.Adam(1e-3), metrics=["mae"])
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        loss, mae = model.evaluate(xt, yt, verbose=0)
        results[model.name] = mae
        print(f"{model.name:14s} test MAE {mae:.3f} ({model.count_params():,} parameters)")
    return results


if __name__ == "__main__":
    main()
