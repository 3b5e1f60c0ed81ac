"""The version is written once (fastnn.__version__), and the package under test is the
one the test run means to test (tools/check_wheel.sh: the installed wheel)."""
import importlib.metadata
import os
import re

import pytest

import fastnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYPROJECT = os.path.join(ROOT, "pyproject.toml")


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", fastnn.__version__)


def test_pyproject_takes_the_version_from_fastnn___version__():
    tomllib = pytest.importorskip("tomllib")
    if not os.path.exists(PYPROJECT):
        pytest.skip("pyproject.toml is not beside the tests")
    with open(PYPROJECT, "rb") as f:
        meta = tomllib.load(f)
    assert "version" not in meta["project"], "the version belongs in fastnn/__init__.py only"
    assert "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "fastnn.__version__"}


def installed_distribution():
    """fastnn's installed distribution when the fastnn imported here is that one (CI: the
    package pip installed), else None (a source checkout built in place)."""
    try:
        dist = importlib.metadata.distribution("fastnn")
    except importlib.metadata.PackageNotFoundError:
        return None
    init = os.path.realpath(str(dist.locate_file("fastnn/__init__.py")))
    return dist if init == os.path.realpath(fastnn.__file__) else None


def test_installed_metadata_has_fastnn___version__():
    dist = installed_distribution()
    if dist is None:
        pytest.skip("the fastnn under test is a source tree, not an installed distribution")
    assert dist.version == fastnn.__version__
    assert importlib.metadata.version("fastnn") == fastnn.__version__


@pytest.mark.skipif("FASTNN_TEST_SITE_PACKAGES" not in os.environ,
                    reason="tools/check_wheel.sh's check: it names the venv's site-packages")
def test_the_package_under_test_is_the_installed_wheel():
    site = os.path.realpath(os.environ["FASTNN_TEST_SITE_PACKAGES"])
    for mod in (fastnn, fastnn.ops._ckernels):
        assert os.path.realpath(mod.__file__).startswith(site + os.sep), mod.__file__
    assert installed_distribution() is not None
