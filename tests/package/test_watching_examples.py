"""examples/figures.py and examples/search.py run (small settings) and show what they claim."""
import contextlib
import importlib.util
import io
import math
import os

import pytest

from conftest import REPO_ROOT

pytest.importorskip("matplotlib")
EXAMPLES = os.path.join(REPO_ROOT, "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, tmp_path, **kwargs):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load(name).main(small=True, out=str(tmp_path), **kwargs)
    return results, out.getvalue()


def test_figures_example_shows_collapse_saturation_and_healthy_initialization(tmp_path):
    results, printed = run("figures", tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["activations_tanh_normal_0.01.png", "activations_tanh_normal_1.png",
         "activations_tanh_xavier.png", "activations_relu_he.png", "learning_rates.png",
         "lr_range.png"])
    stds = results["stds"]
    assert stds["activations_tanh_normal_0.01"][-1] < 1e-6        # collapsed to 0
    assert stds["activations_tanh_normal_1"][-1] > 0.9             # saturated at +-1
    assert 0.1 < stds["activations_tanh_xavier"][-1] < 0.9         # still spread out
    curves = results["curves"]
    assert curves["too high (2.0)"][-1] > curves["too high (2.0)"][0]  # blew up, stopped
    assert curves["about right (0.1)"][-1] < curves["too low (1e-3)"][-1]
    assert "figures written to" in printed


def test_search_example_refines_around_the_coarse_winner(tmp_path):
    results, printed = run("search", tmp_path, parallel=False)  # dask's path: test_examples
    assert sorted(os.listdir(tmp_path)) == ["search_coarse.png", "search_fine.png"]
    coarse_best = min(results["coarse"], key=lambda r: r["val_loss"])
    for r in results["fine"]:  # within 3x of the coarse winner on both axes
        assert abs(math.log10(r["learning_rate"] / coarse_best["learning_rate"])) <= math.log10(3) + 1e-9
        assert abs(math.log10(r["l2"] / coarse_best["l2"])) <= math.log10(3) + 1e-9
    assert all(r["val_loss"] == math.inf for r in results["coarse"] if r["diverged"])
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert "trials run serially" in printed and "coarse:" in printed and "fine:" in printed
