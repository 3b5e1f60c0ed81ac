"""The trainer/data split (fastnn.training) changed no result: the runs of
tests/golden_training.py give the weights recorded before it, bit for bit on the machine
that recorded them, and within float32 rounding elsewhere (another CPU or BLAS build sums
in another order)."""
import os

import numpy as np
import pytest

from conftest import TESTS_DIR
from golden_training import CASES, machine_fingerprint

GOLDEN = np.load(os.path.join(TESTS_DIR, "data", "golden_training.npz"))


@pytest.mark.filterwarnings("ignore:fit. the data ran out")  # the carry-over case's, on purpose
@pytest.mark.parametrize("name", sorted(CASES))
def test_training_gives_the_weights_recorded_before_the_trainer_split(name):
    import fastnn
    if fastnn.backend.backend() != "c":
        pytest.skip("recorded with the C kernels")
    same_machine = str(GOLDEN["fingerprint"]) == machine_fingerprint()
    arrays = CASES[name]()
    recorded = [GOLDEN[k] for k in sorted((k for k in GOLDEN.files if k.startswith(name + "/")),
                                          key=lambda k: int(k.rsplit("/", 1)[1]))]
    assert len(arrays) == len(recorded)
    for i, (got, want) in enumerate(zip(arrays, recorded)):
        got = np.asarray(got)
        if same_machine:
            assert got.dtype == want.dtype and np.array_equal(got, want), f"{name}: array {i} differs"
        else:
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=f"{name}: array {i}")
