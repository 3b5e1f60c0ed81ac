"""Frozen layers cost nothing backward (issue 5): one epoch of the benchmark MLP
(784-512-256-10, ReLU, softmax CE, Adam, batch 128, float32) with nothing frozen, with the
first Dense frozen, and with both hidden layers frozen (only the head trains). Backprop stops
below the lowest trainable layer and frozen weights get no gradient or update, so the time
falls with every frozen layer. Ratios to the unfrozen epoch, measured in this run.

    python bench/bench_frozen.py [--repeats 3] [--samples 60000]
"""
import argparse

from common import benchmark_mlp, fastnn_runner, markdown_table, median_of, mnist_like, print_header


def epoch_time(x, y, frozen, repeats):
    model = benchmark_mlp()
    for layer in model.layers[:frozen]:
        layer.trainable = False
    # compile again: Keras fixes what trains when the model is compiled
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    run = fastnn_runner(model, x, y, 128)
    return median_of(lambda: run()["wall"], repeats)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000)
    args = p.parse_args()
    print_header()
    x, y = mnist_like(args.samples)
    base = epoch_time(x, y, 0, args.repeats)
    rows = []
    for frozen, label in ((0, "none"), (1, "Dense(512)"), (2, "Dense(512), Dense(256): head only")):
        t = base if frozen == 0 else epoch_time(x, y, frozen, args.repeats)
        rows.append([label, f"{t:.3f}", f"{t / base:.2f}"])
    print(markdown_table(["frozen layers", "s/epoch", "x unfrozen"], rows))


if __name__ == "__main__":
    main()
