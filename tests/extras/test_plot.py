"""fastnn.plot draws each figure headless (Agg) to a PNG, with the data it was given."""
import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers

matplotlib = pytest.importorskip("matplotlib")
from fastnn import plot  # noqa: E402


def png(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 2000
    return path


def lines(ax):
    return {l.get_label(): l.get_ydata() for l in ax.get_lines()}


@pytest.fixture(scope="module")
def trained():
    fastnn.set_seed(0)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)), layers.Dense(32, activation="tanh"),
                               layers.Dense(16, activation="relu"),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=fastnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    (x, y), _ = fastnn.datasets.load_digits()
    history = model.fit(x[:400], y[:400], epochs=3, validation_split=0.25, verbose=0,
                        callbacks=[callbacks.TrainingMonitor(warn=False)])
    return model, history, x[:200], y[:200]


def test_history_draws_loss_and_metrics_training_and_validation(trained, tmp_path):
    _, history, _, _ = trained
    fig = plot.history(history)
    png(fig, tmp_path)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["loss", "accuracy"]
    loss = lines(visible[0])
    np.testing.assert_allclose(loss["training"], history.history["loss"])
    np.testing.assert_allclose(loss["validation"], history.history["val_loss"])
    assert list(visible[0].get_lines()[0].get_xdata()) == [1, 2, 3]


def test_history_takes_the_dict_and_chosen_keys(trained):
    _, history, _, _ = trained
    fig = plot.history(history.history, keys="accuracy")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == ["accuracy"]
    with pytest.raises(KeyError, match="nope"):
        plot.history(history, keys=["nope"])
    with pytest.raises(TypeError, match="History"):
        plot.history([1, 2])


def test_lr_range_draws_the_curve_on_a_log_axis_with_the_suggestion(trained, tmp_path):
    model, _, x, y = trained
    result = fastnn.utils.find_learning_rate(model, x, y, steps=40)
    fig = plot.lr_range(result)
    png(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    curve = lines(ax)["smoothed loss"]
    np.testing.assert_allclose(curve, result["losses"])
    suggested = [l for l in ax.get_lines() if l.get_label().startswith("suggested")][0]
    assert suggested.get_xdata()[0] == pytest.approx(result["suggested"])
    with pytest.raises(TypeError, match="find_learning_rate"):
        plot.lr_range({"losses": []})


def test_activations_histograms_count_every_output_of_every_layer(trained, tmp_path):
    model, _, x, _ = trained
    before = model.get_weights()
    fig = plot.activations(model, x)
    png(fig, tmp_path)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3
    h = x
    for ax, layer in zip(visible, model.layers):
        h = layer(h)  # Keras-style call: inference mode
        counts = sum(p.get_height() for p in ax.patches)
        assert counts == h.size
        assert ax.get_title().startswith(f"{layer.name}\nmean {h.mean():.3g}, std {h.std():.3g}")
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    fig = plot.activations(model, x, layers=[0, model.layers[2].name])
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    with pytest.raises(KeyError, match="no layer"):
        plot.activations(model, x, layers=["missing"])


def test_monitor_draws_one_panel_per_statistic_one_line_per_layer(trained, tmp_path):
    model, history, _, _ = trained
    fig = plot.monitor(history)
    png(fig, tmp_path)
    visible = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(visible) == {"activation mean", "activation std", "dead fraction",
                            "saturated fraction", "grad norm", "update ratio"}
    assert visible["grad norm"].get_yscale() == "log"
    std = lines(visible["activation std"])
    assert set(std) == {l.name for l in model.layers}
    name = model.layers[0].name
    np.testing.assert_allclose(std[name], history.history[f"{name}/activation_std"])
    with pytest.raises(ValueError, match="TrainingMonitor"):
        plot.monitor({"loss": [1.0]})


def test_search_scatters_scores_on_log_axes_and_circles_the_best(tmp_path):
    rng = np.random.default_rng(0)
    results = [{"learning_rate": float(lr), "l2": float(l2), "val_loss": float(abs(np.log10(lr) + 2))}
               for lr, l2 in zip(10 ** rng.uniform(-4, 0, 20), 10 ** rng.uniform(-6, -2, 20))]
    results.append({"learning_rate": 3.0, "l2": 1e-4, "val_loss": float("nan")})  # diverged
    fig = plot.search(results, x="learning_rate", y="l2", score="val_loss")
    png(fig, tmp_path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    best = min(results[:-1], key=lambda r: r["val_loss"])
    assert f"learning_rate={best['learning_rate']:.3g}" in ax.get_title()
    labels = [c.get_label() for c in ax.collections]
    assert "diverged / no score" in labels and "best" in labels
    columns = {k: [r[k] for r in results] for k in results[0]}
    fig = plot.search(columns, "learning_rate", "l2", "val_loss", mode="max")
    worst = max(results[:-1], key=lambda r: r["val_loss"])
    assert fig.axes[0].get_title().startswith(f"best val_loss {worst['val_loss']:.4g} at ")
    with pytest.raises(KeyError, match="lr"):
        plot.search(results, x="lr", y="l2", score="val_loss")
    with pytest.raises(ValueError, match="mode"):
        plot.search(results, "learning_rate", "l2", "val_loss", mode="best")


def test_missing_matplotlib_is_an_import_error_naming_the_extra(monkeypatch):
    import builtins
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install fastnn\[plot\]"):
        plot.history({"loss": [1.0, 0.5]})
