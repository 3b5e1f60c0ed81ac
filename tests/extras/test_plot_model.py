"""fastnn.utils.plot_model / model_to_dot (Keras 3's keras.utils.plot_model) through pydot
and graphviz; skipped where they are not installed."""
import shutil
import sys

import pytest

import fastnn
from fastnn import layers


def wide_and_deep():
    inp = fastnn.Input(shape=(8,), name="features")
    hidden = layers.Dense(4, activation="relu", name="hidden")(inp)
    out = layers.Dense(1, name="out")(layers.Concatenate(name="concat")([inp, hidden]))
    return fastnn.Model(inp, out)


def test_model_to_dot_draws_a_graphs_edges_and_shapes():
    pytest.importorskip("pydot")
    source = fastnn.utils.model_to_dot(wide_and_deep(), show_shapes=True,
                                       show_layer_activations=True).to_string()
    for edge in ('"features" -> "hidden"', '"features" -> "concat"', '"hidden" -> "concat"',
                 '"concat" -> "out"'):
        assert edge in source
    assert "input: (None, 8), (None, 4)" in source and "output: (None, 12)" in source
    assert "activation: relu" in source


def test_sequential_is_a_chain_from_its_input_and_names_can_be_hidden(tmp_path):
    pytest.importorskip("pydot")
    model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(8, name="a"),
                               layers.Dense(2, name="b")])
    path = tmp_path / "model.dot"      # the source: no graphviz program needed
    assert fastnn.utils.plot_model(model, to_file=path, show_layer_names=False) is None
    source = path.read_text()
    assert '"input_layer" -> "a"' in source and '"a" -> "b"' in source
    assert "a (Dense)" not in source and "Dense" in source
    with pytest.raises(ValueError, match="not built"):
        fastnn.utils.model_to_dot(fastnn.Sequential([layers.Dense(2)]))


def test_plot_model_writes_an_image_with_graphviz(tmp_path):
    pytest.importorskip("pydot")
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot program is not installed")
    path = tmp_path / "model.png"
    fastnn.utils.plot_model(wide_and_deep(), to_file=str(path), show_shapes=True, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fastnn.utils.plot_model(wide_and_deep(), to_file=tmp_path / "model.svg", rankdir="LR")
    assert "<svg" in (tmp_path / "model.svg").read_text()


def test_missing_pydot_or_graphviz_is_an_import_error_naming_it(tmp_path, monkeypatch):
    model = wide_and_deep()
    monkeypatch.setitem(sys.modules, "pydot", None)    # import pydot fails
    with pytest.raises(ImportError, match="pip install pydot"):
        fastnn.utils.plot_model(model, to_file=tmp_path / "m.png")
    monkeypatch.undo()
    pytest.importorskip("pydot")
    monkeypatch.setenv("PATH", str(tmp_path))         # no dot program on the PATH
    with pytest.raises(ImportError, match="graphviz"):
        fastnn.utils.plot_model(model, to_file=tmp_path / "m.png")
