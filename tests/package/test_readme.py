"""The README's Keras-style example runs as written (with fewer epochs) and learns."""
import contextlib
import io
import os

import pytest

from conftest import REPO_ROOT

README = os.path.join(REPO_ROOT, "README.md")


def test_readme_example_runs():
    if not os.path.exists(README):
        pytest.skip("README.md is not beside the tests")
    text = open(README, encoding="utf-8").read()
    code = text.split("```python\n")[1].split("```")[0]
    assert "import fastnn as keras" in code and "model.fit(" in code
    code = code.replace("epochs=10", "epochs=5")
    scope = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, "README.md", "exec"), scope)
    assert scope["history"].history["loss"][-1] < scope["history"].history["loss"][0]
    assert scope["model"].evaluate(scope["x_test"], scope["y_test"], verbose=0)[1] > 0.85
