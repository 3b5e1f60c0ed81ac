"""Babysitting a deep network on the 8x8 digits, the workflow of a course on training deep
nets, with fastnn's helpers:

1. ``fastnn.utils.sanity_check`` on a deep sigmoid net with small random weights: it finds
   the vanishing gradients (the first layer's gradient is orders of magnitude below the
   last one's) and the loss that does not move. The same depth with He initialization, ELU
   and batch normalization passes.
2. ``fastnn.utils.find_learning_rate``: the learning-rate range test picks the rate.
3. A small randomized hyperparameter search (depth, width) with scikit-learn's
   ``RandomizedSearchCV`` over ``fastnn.wrappers.SKLearnClassifier`` (skipped without
   scikit-learn).
4. The final model trains with early stopping on a validation split and is scored on the
   test set.

Run: ``python examples/babysitting.py``.
"""

import fastnn
from fastnn import callbacks, initializers, layers, optimizers
from fastnn.datasets import load_digits


def deep_net(depth, units, healthy, learning_rate=1e-3, n_features=64, n_classes=10,
             loss="sparse_categorical_crossentropy"):
    """``depth`` hidden layers of ``units``: sigmoid with tiny random weights (the textbook
    vanishing-gradient setup) or He-initialized ELU with batch normalization."""
    model = fastnn.Sequential([layers.Input(shape=(n_features,))])
    for _ in range(depth):
        if healthy:
            model.add(layers.Dense(units, kernel_initializer="he_normal"))
            model.add(layers.BatchNormalization())
            model.add(layers.Activation("elu"))
        else:
            model.add(layers.Dense(units, activation="sigmoid",
                                   kernel_initializer=initializers.RandomNormal(stddev=0.05)))
    model.add(layers.Dense(n_classes, activation="softmax"))
    model.compile(optimizer=optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])
    return model


def build_for_search(X, y, depth=2, units=64):
    """The model function SKLearnClassifier calls: y arrives one-hot."""
    return deep_net(depth, units, True, n_features=X.shape[1], n_classes=y.shape[1],
                    loss="categorical_crossentropy")


def main(small=False, verbose=True):
    """Returns a dict: the problems sanity_check found for the sick and the healthy net, the
    suggested learning rate, the search's best parameters (None without scikit-learn) and
    the final test accuracy."""
    say = print if verbose else (lambda *a, **k: None)
    fastnn.set_seed(0)
    (x, y), (x_test, y_test) = load_digits()
    depth = 4 if small else 8
    results = {}

    say(f"1. sanity checks of two {depth}-layer nets")
    for name, healthy in (("sick", False), ("healthy", True)):
        report = fastnn.utils.sanity_check(deep_net(depth, 64, healthy), x, y,
                                           overfit_steps=100 if small else 1000)
        results[f"{name}_problems"] = report["problems"]
        norms = [s["kernel_grad_norm"] for s in report["layers"] if s["kernel_grad_norm"]]
        say(f"   {name}: kernel gradient norms first/last layer {norms[0]:.2g} / {norms[-1]:.2g}")
        for problem in report["problems"] or ["no problems found"]:
            say(f"     - {problem}")

    say("2. learning-rate range test")
    model = deep_net(depth, 64, True)
    found = fastnn.utils.find_learning_rate(model, x, y, min_lr=1e-5, max_lr=10.0,
                                            steps=50 if small else 200)
    lr = float(found["suggested"])
    results["learning_rate"] = lr
    say(f"   lowest loss at {found['best']:.3g}; suggested learning rate {lr:.3g}")

    say("3. randomized search over depth and width")
    results["best_params"] = None
    try:
        from sklearn.model_selection import RandomizedSearchCV
    except ImportError:
        say("   (scikit-learn is not installed: skipped)")
    else:
        from fastnn.wrappers import SKLearnClassifier
        grid = {"model_kwargs": [{"depth": d, "units": u} for d in (1, 2, 3) for u in (32, 64, 128)]}
        search = RandomizedSearchCV(
            SKLearnClassifier(build_for_search,
                              fit_kwargs={"epochs": 3 if small else 20, "verbose": 0}),
            grid, n_iter=2 if small else 6, cv=2 if small else 3, random_state=0)
        search.fit(x, y)
        results["best_params"] = search.best_params_["model_kwargs"]
        say(f"   best: {results['best_params']} (cross-validated accuracy "
            f"{search.best_score_:.3f})")

    say("4. final training with early stopping")
    params = results["best_params"] or {"depth": 2, "units": 64}
    model = deep_net(params["depth"], params["units"], True, learning_rate=lr)
    model.fit(x, y, epochs=5 if small else 100, validation_split=0.2, verbose=0,
              callbacks=[callbacks.EarlyStopping(patience=10, restore_best_weights=True)])
    results["test_accuracy"] = float(model.evaluate(x_test, y_test, verbose=0)[1])
    say(f"   test accuracy {results['test_accuracy']:.3f}")
    return results


if __name__ == "__main__":
    main()
