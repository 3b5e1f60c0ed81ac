"""The dropout family's counter-based random kernels on paths the random-shape parity
matrix does not reach."""
import numpy as np
import pytest

from conftest import C, REF, requires_c

pytestmark = requires_c
DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplicative", [False, True])
def test_gaussian_noise_parallel_odd_size_matches_reference(dtype, multiplicative):
    # the existing parity test used <= 2112 elements (serial); the parallel split over pairs
    # with an unpaired last element was only checked against itself (an even size)
    x = np.random.default_rng(3).standard_normal(40_001).astype(dtype)  # 4 n > 131072
    y_c = C.gaussian_noise_apply(x, 0.4, multiplicative, 3, 9, n_threads=2)
    np.testing.assert_array_equal(y_c, REF.gaussian_noise_apply(x, 0.4, multiplicative, 3, 9))
