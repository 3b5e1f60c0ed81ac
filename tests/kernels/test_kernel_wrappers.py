"""The Cython wrappers refuse what the C kernels cannot handle, with an error naming the
argument, instead of reading or writing out of bounds."""
import subprocess
import sys

import pytest

from conftest import requires_c, same_fastnn_env

pytestmark = requires_c


@pytest.mark.parametrize("call", [
    "C.batchnorm_backward(dy, x, None, np.ones(4), None)",
    "C.batchnorm_backward(dy, x, np.zeros(4), None, None)",
    "C.layernorm_backward(dy, x, None, None, np.ones(3))",
    "C.layernorm_backward(dy, x, None, np.zeros(3), None)",
])
def test_normalization_backward_without_statistics_raises(call):
    # mean / invstd / rstd None became a NULL pointer the kernel read: a segfault. Run in a
    # child process so a regression fails this test instead of killing the test run.
    code = ("import numpy as np\n"
            "from fastnn import ops\n"
            "C = ops.COps()\n"
            "x = np.ones((3, 4)); dy = np.ones((3, 4))\n"
            "try:\n"
            f"    {call}\n"
            "except ValueError as e:\n"
            "    print('ValueError', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, **same_fastnn_env())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ValueError") and "None" in out.stdout
