"""The examples in examples/ run (on small settings) and report what they claim to."""
import importlib.util
import io
import contextlib
import os

import pytest

from conftest import REPO_ROOT

EXAMPLES = os.path.join(REPO_ROOT, "examples")


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


def test_search_example_runs_in_parallel_on_dask_as_it_does_serially():
    pytest.importorskip("dask.distributed", reason="the parallel search needs fastnn[search]")
    import math
    import multiprocessing
    import psutil  # a dependency of distributed
    from dask.distributed import Client, LocalCluster
    search = load("search")
    me = psutil.Process()
    children_before = {p.pid for p in me.children(recursive=True)}
    mp_children_before = set(multiprocessing.active_children())
    out = io.StringIO()
    environ = dict(os.environ)  # the nanny sets OMP/OPENBLAS_NUM_THREADS=1 in this process
    try:
        with contextlib.redirect_stdout(out):
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client:
                assert len(set(multiprocessing.active_children()) - mp_children_before) == 2
                parallel = search.main(small=True, out=None, client=client)
            serial = search.main(small=True, out=None, parallel=False)
    finally:  # later tests' child processes must get this process's thread settings
        os.environ.clear()
        os.environ.update(environ)
    # the cluster's worker processes are gone once it is closed (multiprocessing's resource
    # tracker, started with the first spawned process, lives as long as this interpreter)
    assert set(multiprocessing.active_children()) <= mp_children_before
    new = [p for p in me.children(recursive=True) if p.pid not in children_before]
    _, alive = psutil.wait_procs(
        [p for p in new if "resource_tracker" not in " ".join(p.cmdline())], timeout=5)
    assert alive == []
    assert "in parallel on the Dask cluster" in out.getvalue()
    assert "trials run serially" in out.getvalue()
    coarse, fine, best = parallel["coarse"], parallel["fine"], parallel["best"]
    assert (len(coarse), len(fine)) == (6, 4)
    assert len({r["seed"] for r in coarse + fine}) == 10  # a seed per trial
    assert all(math.isfinite(r["val_loss"]) or r["diverged"] for r in coarse + fine)
    assert math.isfinite(best["val_loss"]) and best == min(fine, key=lambda r: r["val_loss"])
    # the fine round searched within 3x of the coarse winner
    winner = min(coarse, key=lambda r: r["val_loss"])
    assert winner["learning_rate"] / 3 <= best["learning_rate"] <= winner["learning_rate"] * 3
    assert winner["l2"] / 3 <= best["l2"] <= winner["l2"] * 3
    # one thread and a seed per trial: the workers give the serial run's numbers, bit for bit
    assert (serial["coarse"], serial["fine"]) == (coarse, fine)
    assert serial["test_accuracy"] == parallel["test_accuracy"]


def test_ensembles_example_runs_small():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        results = load("ensembles").main(small=True)
    assert results["snapshots"] >= 2
    for key in ("single", "independent", "last_snapshot", "snapshot_ensemble"):
        assert 0.5 < results[key] <= 1.0
    assert f"snapshot ensemble     {results['snapshot_ensemble']:.3f}" in out.getvalue()
