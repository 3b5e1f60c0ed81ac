"""The examples in examples/ run (on small settings) and report what they claim to."""
import importlib.util
import io
import contextlib
import os

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", os.path.join(EXAMPLES, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name,keys", [
    ("transfer_learning", {"scratch", "frozen", "fine_tuned"}),
    ("pretraining", {"scratch", "pretrained"}),
])
def test_example_runs_small(name, keys):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load(name).main(small=True)
    assert set(results) == keys
    for accs in results.values():
        assert len(accs) == 1 and all(0.0 <= a <= 1.0 for a in accs)
    printed = out.getvalue()
    # the script prints B's / the classifier's accuracy with and without transfer/pretraining
    for key in keys:
        label = {"scratch": "from scratch", "frozen": "transfer (frozen)",
                 "fine_tuned": "transfer + fine-tuning", "pretrained": "pretrained"}[key]
        assert f"{label} {results[key][0]:.3f}" in printed


def test_babysitting_example_runs_small():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load("babysitting").main(small=True)
    assert any("vanishing" in p for p in results["sick_problems"])
    assert results["healthy_problems"] == []
    assert 1e-6 < results["learning_rate"] < 1.0
    assert 0.0 <= results["test_accuracy"] <= 1.0
    assert "suggested learning rate" in out.getvalue()


def test_graphs_example_runs_small():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load("graphs").main(small=True)
    assert set(results) == {"wide_and_deep", "residual_mlp", "plain_mlp"}
    for name, mae in results.items():
        assert 0.0 < mae < 5.0 and f"{name:14s} test MAE {mae:.3f}" in out.getvalue()
