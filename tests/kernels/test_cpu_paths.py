"""Runtime CPU dispatch (csrc/dispatch.c): FASTNN_CPU forces each path this machine supports,
the kernel parity tests pass on each, and a path the CPU lacks or a misspelt one is refused."""
import os
import subprocess
import sys

import pytest

import fastnn
from conftest import C, same_fastnn_env

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS = os.path.basename(__file__)
# The tests that hold the C kernels to their reference: the subject directories, or the
# flat files they grew from in a tree not yet reorganized.
KERNEL_TEST_DIRS = ("kernels", "optimizers")
FLAT_KERNEL_TESTS = ("test_kernels.py", "test_batching_kernels.py", "test_dropout.py",
                     "test_normalization.py", "test_regularizers.py", "test_optimizers.py")
FORCED = os.environ.get("FASTNN_CPU")

requires_dispatch = pytest.mark.skipif(
    C is None or fastnn.backend.cpu_path() == "native",
    reason="the C extension is not built, or built without runtime dispatch")


def kernel_test_paths():
    paths = []
    for d in KERNEL_TEST_DIRS:
        d = os.path.join(TESTS_DIR, d)
        if os.path.isdir(d) and any(f.startswith("test_") and f.endswith(".py") and f != THIS
                                    for f in os.listdir(d)):
            paths.append(d)
    paths += [os.path.join(TESTS_DIR, f) for f in FLAT_KERNEL_TESTS
              if os.path.exists(os.path.join(TESTS_DIR, f))]
    return paths


def run_python(code, cpu, **kw):
    env = dict(os.environ, FASTNN_CPU=cpu)
    env.pop("FASTNN_BACKEND", None)
    opts = same_fastnn_env(env)
    return subprocess.run([sys.executable, *code], capture_output=True, text=True,
                          timeout=900, **opts, **kw)


@requires_dispatch
def test_the_active_path_is_the_forced_one_or_the_best_supported():
    paths = fastnn.backend.supported_cpu_paths()
    if FORCED in ("baseline", "avx2", "avx512") and FORCED in paths:
        assert fastnn.backend.cpu_path() == FORCED
    else:
        assert fastnn.backend.cpu_path() == paths[-1]


# FASTNN_CPU=auto (as tools/check_wheel.sh sets it) skips the child runs: one leg runs them.
@requires_dispatch
@pytest.mark.skipif(FORCED is not None, reason="runs the paths itself, from an unforced process")
@pytest.mark.skipif(os.environ.get("FASTNN_BACKEND") == "numpy",
                    reason="the C kernels' paths run once, in the C backend's leg")
@pytest.mark.parametrize("cpu", ["baseline", "avx2", "avx512"])
def test_kernel_parity_tests_pass_on_each_supported_cpu_path(cpu):
    paths = fastnn.backend.supported_cpu_paths()
    if cpu not in paths:
        pytest.skip(f"this CPU does not support the {cpu} path")
    if cpu == paths[-1]:
        pytest.skip(f"{cpu} is the default path: the whole suite runs on it in this process")
    paths = kernel_test_paths()
    assert paths, "no kernel parity tests found"
    r = run_python(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *paths], cpu)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # the test above ran in the child and saw the forced path
    assert "passed" in r.stdout and " failed" not in r.stdout


@requires_dispatch
def test_a_path_the_cpu_lacks_is_refused_with_a_warning_and_the_best_one_runs():
    paths = fastnn.backend.supported_cpu_paths()
    if paths[-1] == "avx512":
        pytest.skip("this CPU supports every path")
    r = run_python(["-W", "error::RuntimeWarning", "-c", "import fastnn"], "avx512")
    assert r.returncode != 0 and "does not support the avx512 path" in r.stderr
    r = run_python(["-c", "import warnings; warnings.simplefilter('ignore'); import fastnn;"
                    "print(fastnn.backend.cpu_path())"], "avx512")
    assert r.returncode == 0 and r.stdout.split() == [paths[-1]], r.stderr


@requires_dispatch
def test_a_misspelt_path_is_an_error_naming_the_valid_ones():
    r = run_python(["-c", "import fastnn"], "avx-2")
    assert r.returncode != 0
    assert "FASTNN_CPU='avx-2' is not a CPU path" in r.stderr
    assert "baseline, avx2, avx512 or auto" in r.stderr
