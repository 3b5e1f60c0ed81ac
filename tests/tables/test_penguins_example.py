"""examples/penguins.py: the Palmer penguins table, fastnn against scikit-learn."""
import contextlib
import importlib.util
import io
import os

import numpy as np
import pytest

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "examples", "penguins.py")


def load_example():
    spec = importlib.util.spec_from_file_location("example_penguins", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_penguins_table_is_read_with_its_missing_cells_and_string_species():
    pytest.importorskip("palmerpenguins", reason="the example needs fastnn[examples]")
    columns, y, classes = load_example().load()
    assert classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert np.bincount(y).tolist() == [152, 68, 124]
    assert sum(v is None for v in columns["sex"]) == 11  # "NA" cells
    assert int(np.isnan(columns["body_mass_g"]).sum()) == 2
    assert sorted(set(columns["island"].tolist())) == ["Biscoe", "Dream", "Torgersen"]


def test_penguins_example_runs_small_and_prints_its_markdown_table():
    pytest.importorskip("palmerpenguins", reason="the example needs fastnn[examples]")
    pytest.importorskip("sklearn")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load_example().main(repeats=1, small=True)
    assert set(results) == {"fastnn MLP", "fastnn MLP + Embedding",
                            "sklearn HistGradientBoosting", "sklearn MLPClassifier"}
    printed = out.getvalue()
    for name, r in results.items():
        assert len(r["accuracy"]) == len(r["seconds"]) == 1
        assert f"| {name} | {r['accuracy'][0]:.3f} " in printed
    # the trees need no tuning on this table; the MLPs, even after 5 epochs, learn something
    assert results["sklearn HistGradientBoosting"]["accuracy"][0] > 0.9
    assert results["fastnn MLP"]["accuracy"][0] > 0.6
