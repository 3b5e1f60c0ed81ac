"""Transfer learning on the 8x8 digits: reuse the lower layers of a network trained on one
task for another task that has only a few labels.

Task A: classify digits 0-4 (every training image of those digits, labelled).
Task B: classify digits 5-9 with only a handful of labelled images per class.

1. Train a network on A.
2. Baseline: the same architecture trained from scratch on B's few labels.
3. Transfer: copy A's lowest ``reuse`` layers (``clone_model`` + ``set_weights``, so model A
   is left as it is; ``Sequential(model_a.layers[:reuse])`` would share them instead), put
   new layers and a softmax head on top, freeze the copied layers (``layer.trainable =
   False``) and train the rest; then unfreeze, recompile with a 10x lower learning rate and
   fine-tune everything.

Prints B's test accuracy with and without transfer, per labelled subset and on average.
What to expect on this data: 8x8 digits are nearly linearly separable from raw pixels, so a
net trained from scratch on 25 labels is already strong, and features learned to tell 0-4
apart do not capture what separates 5-9: the upper layers of A transfer badly (try
``reuse=2``), the first layer about breaks even. Transfer pays off when the source task's
features are general (large, diverse source data) and the target task is hard to learn
from its few labels.
Run: ``python examples/transfer_learning.py``.
"""
import numpy as np

import fastnn
from fastnn import layers, optimizers
from fastnn.datasets import load_digits


def build(n_classes, hidden=(128, 64)):
    return fastnn.Sequential([layers.Input(shape=(64,))]
                             + [layers.Dense(h, activation="relu") for h in hidden]
                             + [layers.Dense(n_classes, activation="softmax")])


def few_labels(y, per_class, seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False)
                           for c in np.unique(y)])


def compile_(model, lr):
    model.compile(optimizer=optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def main(small=False, per_class=5, seeds=(0, 1, 2), reuse=1, verbose=True):
    """Returns {"scratch": [...], "frozen": [...], "fine_tuned": [...]}: B's test accuracy
    per labelled subset (one per seed). ``reuse``: how many of A's hidden layers to reuse.
    ``small=True`` is a seconds-long smoke run."""
    (x, y), (xt, yt) = load_digits()
    a, at = y < 5, yt < 5
    xa, ya = x[a], y[a]
    xb, yb = x[~a], y[~a] - 5
    xbt, ybt = xt[~at], yt[~at] - 5
    epochs_a, epochs_b, epochs_ft = (2, 5, 2) if small else (30, 150, 50)
    seeds = seeds[:1] if small else seeds
    hidden = (32, 16) if small else (256, 128)

    fastnn.set_seed(0)
    model_a = build(5, hidden)
    compile_(model_a, 1e-3)
    model_a.fit(xa, ya, epochs=epochs_a, batch_size=32, verbose=0)
    acc_a = model_a.evaluate(xt[at], yt[at], verbose=0)[1]
    if verbose:
        print(f"task A (digits 0-4, {len(xa)} labels): test accuracy {acc_a:.3f}")

    results = {"scratch": [], "frozen": [], "fine_tuned": []}
    for seed in seeds:
        idx = few_labels(yb, per_class, seed)
        # Baseline: from scratch on B's few labels.
        fastnn.set_seed(seed)
        scratch = build(5, hidden)
        compile_(scratch, 1e-3)
        scratch.fit(xb[idx], yb[idx], epochs=epochs_b, batch_size=10, verbose=0)
        results["scratch"].append(scratch.evaluate(xbt, ybt, verbose=0)[1])

        # Transfer: a copy of A's lower layers under a new head.
        fastnn.set_seed(seed)
        base = fastnn.models.clone_model(model_a)
        base.set_weights(model_a.get_weights())
        new_top = [layers.Dense(h, activation="relu") for h in hidden[reuse:]]
        model_b = fastnn.Sequential(base.layers[:reuse] + new_top
                                    + [layers.Dense(5, activation="softmax")])
        for layer in model_b.layers[:reuse]:
            layer.trainable = False
        compile_(model_b, 1e-3)
        model_b.fit(xb[idx], yb[idx], epochs=epochs_b, batch_size=10, verbose=0)
        results["frozen"].append(model_b.evaluate(xbt, ybt, verbose=0)[1])
        for layer in model_b.layers:
            layer.trainable = True
        compile_(model_b, 1e-4)  # fine-tune gently: keep what was learned on A
        model_b.fit(xb[idx], yb[idx], epochs=epochs_ft, batch_size=10, verbose=0)
        results["fine_tuned"].append(model_b.evaluate(xbt, ybt, verbose=0)[1])
        if verbose:
            print(f"task B (digits 5-9, {len(idx)} labels, subset {seed}): "
                  f"from scratch {results['scratch'][-1]:.3f}, "
                  f"transfer (frozen) {results['frozen'][-1]:.3f}, "
                  f"transfer + fine-tuning {results['fine_tuned'][-1]:.3f}")
    if verbose:
        print("mean over labelled subsets: " + ", ".join(
            f"{k} {np.mean(v):.3f}" for k, v in results.items()))
    return results


if __name__ == "__main__":
    main()
