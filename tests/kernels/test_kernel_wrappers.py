"""The Cython wrappers refuse what the C kernels cannot handle, with an error naming the
argument, instead of reading or writing out of bounds."""
import subprocess
import sys

import numpy as np
import pytest

from fastnn.reference.activations import ACTIVATION_CODES

from conftest import C, requires_c, same_fastnn_env

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


def test_wrapper_rejects_integer_arrays():
    with pytest.raises(TypeError, match="float32 or float64"):
        C.col_sum(np.ones((3, 3), np.int64))


def test_wrapper_rejects_mismatched_shapes_and_dtypes():
    z = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="bias has shape"):
        C.bias_act_forward(z, np.zeros(4, np.float32), 1, 0.0, z)
    with pytest.raises(ValueError, match="shape"):
        C.bias_act_forward(z, None, 1, 0.0, np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        C.bias_act_forward(z, None, 1, 0.0, np.zeros((4, 3), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        C.bias_act_forward(z, None, 1, 0.0, np.zeros((4, 6), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="activation code"):
        C.bias_act_forward(z, None, 99, 0.0, z)
    with pytest.raises(ValueError, match="labels"):
        C.sparse_softmax_cross_entropy(z, np.zeros(5, np.int64), True)
    with pytest.raises(ValueError, match="pre-activation"):
        C.act_backward(z, None, z, ACTIVATION_CODES["gelu"])
    with pytest.raises(ValueError, match="piece index"):
        C.maxout_backward(z, np.full((4, 3), 7, np.int32), 2)


def test_empty_arrays_are_fine():
    z = np.zeros((0, 5), np.float32)
    assert C.bias_act_forward(z, np.zeros(5, np.float32), 1, 0.0, z).shape == (0, 5)
    db = np.ones(5, np.float32)
    C.act_backward(z, None, z, 1, 0.0, z, db)
    assert np.all(db == 0)
    assert C.elementwise_loss(z, z, 0) == 0.0
