"""What the extension reports about how it was built: OpenMP on or off (FASTNN_NO_OPENMP=1
builds serial kernels; tools/check_no_openmp.sh runs the kernel tests on such a build with
the variable still set)."""
import os

import numpy as np
import pytest

import fastnn
from conftest import C, REF, assert_close

NO_OPENMP = bool(os.environ.get("FASTNN_NO_OPENMP"))


@pytest.mark.skipif(C is None, reason="C extension not built")
@pytest.mark.skipif(not NO_OPENMP, reason="a FASTNN_NO_OPENMP=1 build's check "
                                          "(tools/check_no_openmp.sh)")
def test_a_build_without_openmp_reports_it_and_runs_serial_kernels_asked_for_threads():
    assert fastnn.have_openmp() is False
    # a serial build takes any thread count and gives the reference's result
    x = np.random.default_rng(0).standard_normal((600, 300)).astype(np.float32)
    assert_close(C.col_sum(x, n_threads=2), REF.col_sum(x), np.float32)
