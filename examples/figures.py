"""The classic figures of a course on training deep networks, drawn with fastnn.plot and
saved as PNGs under examples/figures/ (matplotlib needed: pip install fastnn[plot]):

1. Activation histograms across 10 tanh layers of 256 units on unit-Gaussian inputs, for
   three weight initializations: N(0, 0.01) (activations collapse to 0 layer after layer,
   and so would the gradients), N(0, 1) (every unit saturates at -1 or +1, where tanh's
   gradient is 0), and Xavier/Glorot (the spread stays healthy all the way down); plus
   ReLU layers with He initialization, Xavier's counterpart for ReLU.
2. Loss per step on the digits for a learning rate too low (barely moves), about right
   (falls fast, then flattens), and too high (blows up: StopOnDivergence ends the run).
3. The learning-rate range test's curve on the same model, with its suggestion.

Run: ``python examples/figures.py`` (about 10 s).
"""
import os

import numpy as np

import fastnn
from fastnn import callbacks, initializers, layers, optimizers, plot
from fastnn.datasets import load_digits

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def deep_stack(init, activation="tanh", depth=10, units=256, n_in=256):
    """``depth`` layers of ``units`` (no training: only the forward pass is drawn)."""
    model = fastnn.Sequential([layers.Input(shape=(n_in,))])
    for _ in range(depth):
        model.add(layers.Dense(units, activation=activation, kernel_initializer=init))
    return model


def initialization_figures(out=OUT, rows=500):
    x = np.random.default_rng(0).standard_normal((rows, 256)).astype("float32")
    setups = {
        "activations_tanh_normal_0.01": (initializers.RandomNormal(0.0, 0.01, seed=1), "tanh"),
        "activations_tanh_normal_1": (initializers.RandomNormal(0.0, 1.0, seed=1), "tanh"),
        "activations_tanh_xavier": (initializers.GlorotNormal(seed=1), "tanh"),
        "activations_relu_he": (initializers.HeNormal(seed=1), "relu"),
    }
    stds = {}
    for name, (init, act) in setups.items():
        model = deep_stack(init, act)
        # one x range for every layer, so that a collapse toward 0 shows as a spike
        fig = plot.activations(model, x, bins=40,
                               value_range=(-1, 1) if act == "tanh" else (0, 3))
        fig.suptitle(name.replace("activations_", "").replace("_", " "))
        fig.savefig(os.path.join(out, name + ".png"), dpi=70)
        stds[name] = [float(np.std(o)) for _, o in plot.layer_outputs(model, x)]
    return stds


def learning_rate_figure(out=OUT, epochs=5):
    """Loss per training step (each batch's own loss) for three learning rates."""
    (x, y), _ = load_digits()
    rates = {"too low (1e-3)": 1e-3, "about right (0.1)": 0.1, "too high (2.0)": 2.0}
    curves = {}
    for label, lr in rates.items():
        fastnn.set_seed(0)
        model = small_classifier(lr)
        losses = []

        def record(batch, logs, losses=losses):
            # the batch logs carry the epoch's running mean: undo it to get this batch's loss
            mean = logs["loss"]
            losses.append(mean * (batch + 1) - (record.last * batch if batch else 0.0))
            record.last = mean
        record.last = 0.0
        model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[
            callbacks.LambdaCallback(on_train_batch_end=record),
            callbacks.StopOnDivergence(factor=3.0)])
        curves[label] = losses
    fig = plot._figure((6, 4))
    ax = fig.subplots()
    for label, losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, lw=1, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch of 32)")
    ax.set_ylabel("batch loss")
    ax.set_title("learning rates (SGD, 64 tanh units, digits)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.savefig(os.path.join(out, "learning_rates.png"), dpi=80)
    return curves


def small_classifier(lr):
    model = fastnn.Sequential([layers.Input(shape=(64,)),
                               layers.Dense(64, activation="tanh", kernel_initializer="glorot_normal"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizers.SGD(lr), loss="sparse_categorical_crossentropy")
    return model


def lr_range_figure(out=OUT, steps=200):
    (x, y), _ = load_digits()
    fastnn.set_seed(0)
    result = fastnn.utils.find_learning_rate(small_classifier(0.01), x, y, steps=steps)
    plot.lr_range(result).savefig(os.path.join(out, "lr_range.png"), dpi=80)
    return result


def main(out=OUT, small=False):
    os.makedirs(out, exist_ok=True)
    stds = initialization_figures(out, rows=100 if small else 500)
    for name, s in stds.items():
        print(f"{name}: activation std, layer 1 {s[0]:.3g} -> layer 10 {s[-1]:.3g}")
    curves = learning_rate_figure(out, epochs=1 if small else 5)
    for label, losses in curves.items():
        print(f"learning rate {label}: batch loss {losses[0]:.3g} -> {losses[-1]:.3g} "
              f"after {len(losses)} steps")
    result = lr_range_figure(out, steps=50 if small else 200)
    print(f"range test: suggested learning rate {result['suggested']:.3g}")
    print(f"figures written to {out}")
    return {"stds": stds, "curves": curves, "suggested": result["suggested"]}


if __name__ == "__main__":
    main()
