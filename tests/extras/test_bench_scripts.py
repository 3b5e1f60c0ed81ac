"""The benchmark scripts run (tiny smoke runs, no timing asserted) and keep their rules:
one definition of each workload, no peer framework imported into fastnn's process, no
private attribute of a fastnn object."""
import ast
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import fastnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
# bench/common.py puts the checkout first on sys.path (the scripts import the tree's fastnn):
# undone at once, or every process this test session starts later (joblib, Dask, spawn)
# would import the source tree's fastnn instead of the installed one
_saved_path = list(sys.path)
sys.path.insert(0, BENCH)
import common  # noqa: E402  (bench/common.py, found through the path above)
sys.path[:] = _saved_path

SCRIPTS = sorted(f for f in os.listdir(BENCH) if f.endswith(".py") and f != "common.py")
PEER_MODULES = {"torch", "jax", "jaxlib", "optax", "keras", "tensorflow", "flax"}


def run_script(name, *args, timeout=300):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, os.path.join(BENCH, name), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_help_runs(script):
    proc = run_script(script, "--help", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def imported_modules(tree, module_level_only):
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("script", SCRIPTS + ["common.py"])
def test_bench_script_imports_no_peer_framework_beside_fastnn(script):
    with open(os.path.join(BENCH, script)) as f:
        tree = ast.parse(f.read())
    # peers.py is the worker process each peer runs in: it imports its framework lazily,
    # inside the class of the system it was started for; every other script never
    found = set(imported_modules(tree, module_level_only=script == "peers.py")) & PEER_MODULES
    assert not found, f"bench/{script} imports {sorted(found)}"


@pytest.mark.parametrize("script", SCRIPTS + ["common.py"])
def test_bench_script_reads_no_private_attribute(script):
    with open(os.path.join(BENCH, script)) as f:
        text = f.read()
    hits = [line.strip() for line in text.splitlines() if re.search(r"\._[a-z]", line)]
    assert not hits, f"bench/{script}: {hits}"
    assert not re.search(r"fastnn\._[a-z]|from fastnn import _|from fastnn\.\w+ import _", text)


@pytest.mark.parametrize("key", sorted(common.WORKLOADS))
def test_every_workload_builds_in_fastnn_with_the_shared_initial_weights(key):
    wl = common.WORKLOADS[key]
    model = common.fastnn_model(wl, seed=3)
    want = [a for arrays in common.initial_weights(wl, seed=3) for a in arrays]
    got = model.get_weights()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    x, y = common.workload_data(wl, 64)
    assert x.shape == (64, wl.features) and x.dtype == np.float32
    assert y.min() >= 0 and y.max() < wl.classes
    assert model.predict(x[:5], verbose=0).shape == (5, wl.classes)


def test_residual_workload_without_skips_is_the_same_layers_as_a_sequential():
    graph, plain = common.residual_mlp(), common.residual_mlp(skips=False)
    assert isinstance(plain, fastnn.Sequential) and not isinstance(graph, fastnn.Sequential)
    for g, p in zip(graph.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(g, p)
    # the products the GEMM floor times: 784->512, 4 blocks of two 512->512, 512->10
    assert common.WORKLOADS["residual"].dense_sizes() == [784] + [512] * 9 + [10]


def test_fastnn_runner_keeps_the_active_backend():
    before = fastnn.backend.backend()
    wl = common.WORKLOADS["tabular"]
    x, y = common.workload_data(wl, 96)
    run = common.fastnn_runner(common.fastnn_model(wl), x, y, wl.batch, backend="numpy")
    t = run()
    assert t["wall"] > 0 and t["cpu"] >= 0
    assert fastnn.backend.backend() == before


@pytest.mark.parametrize("system", ["fastnn", "floor"])
def test_peer_worker_trains_a_workload_in_its_own_process(system):
    worker = common.PeerWorker(system, threads=1)
    try:
        run = worker.setup("tabular", rows=96)
        t = run()
        assert t["wall"] > 0
        with pytest.raises(common.PeerError, match="unknown command"):
            worker.ask(cmd="nonsense")
        assert run()["wall"] > 0  # the worker survives an error
    finally:
        worker.close()
    assert worker.proc.returncode == 0


def test_suite_smoke_run_writes_its_tables(tmp_path):
    out = tmp_path / "res"
    proc = run_script("suite.py", "--rows", "200", "--repeats", "1", "--only", "deep,predict",
                      "--peers", "none", "--threads", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "res.md").read_text()
    assert md.startswith("CPU: ")
    assert "| deep narrow 20 x Dense(100), batch 32 |" in md and "| predict 10,000 rows" in md
    assert "CPU time of the process" in md  # single-thread runs are pinned, CPU time shown


def test_contention_smoke_run_stops_its_busy_processes(tmp_path):
    out = tmp_path / "cont"
    proc = subprocess.Popen([sys.executable, os.path.join(BENCH, "contention.py"), "--rows", "96",
                             "--rounds", "1", "--cases", "tabular", "--systems", "fastnn,floor",
                             "--loads", "0,1", "--out", str(out)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    md = (tmp_path / "cont.md").read_text()
    assert "| tabular 20-64-64-2, batch 32 | fastnn |" in md
    assert "1 busy process per core: x quiet" in md
    # the busy processes it started (marked with its pid) do not outlive it
    marker = f"spinner of {proc.pid}".encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read():
                    left.append(pid)
        except OSError:
            pass
    assert not left


@pytest.mark.parametrize("system", ["torch", "jax_step", "keras_jax"])
def test_peers_build_the_same_networks_from_the_same_initial_weights(system):
    if common.missing_modules(system):
        pytest.skip(f"{system} needs {common.missing_modules(system)}")
    worker = common.PeerWorker(system, threads=1)
    try:
        # the residual MLP has every kind of layer spec: Dense with and without ReLU,
        # BatchNorm (inference: the moving statistics), ReLU, Dropout, the skips, softmax
        wl = common.WORKLOADS["residual"]
        x, _ = common.workload_data(wl, 8)
        want = common.fastnn_model(wl, seed=2).predict(x, verbose=0)
        got = np.array(worker.ask(cmd="outputs", case="residual", rows=8, seed=2)["outputs"])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=system)
    finally:
        worker.close()
