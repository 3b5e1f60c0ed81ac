"""FeatureSpace throughput on a synthetic table (issue 13): adapt and encode a table with a
normalized float (with missing values imputed), a discretized float, a string categorical of
~1000 categories, an integer categorical, a hashed string and one cross, reporting rows per
second for adapt() and for a call. Everything is NumPy (no C kernels); the Python-level
costs are the per-value token conversion of the lookups and the hashing of distinct values.

    python bench/bench_feature_space.py [--rows 200000] [--repeats 3]
"""
import argparse
import time

import numpy as np

from common import median_of

from fastnn.utils import FeatureSpace


def make_table(rows, seed=0):
    rng = np.random.default_rng(seed)
    income = rng.lognormal(3, 1, rows)
    income[rng.random(rows) < 0.05] = np.nan
    return {"income": income, "age": rng.normal(40, 12, rows),
            "city": rng.choice([f"city_{i}" for i in range(1000)], rows).astype(object),
            "rooms": rng.integers(1, 9, rows),
            "street": rng.choice([f"street_{i}" for i in range(5000)], rows).astype(object)}


def make_space():
    return FeatureSpace({"income": FeatureSpace.float_normalized(impute="median",
                                                                 missing_indicator=True),
                         "age": FeatureSpace.float_discretized(num_bins=16),
                         "city": "string_categorical", "rooms": "integer_categorical",
                         "street": "string_hashed"},
                        crosses=[("city", "rooms")], crossing_dim=64, hashing_dim=64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = make_table(args.rows)

    def adapt():
        fs = make_space()
        t0 = time.perf_counter()
        fs.adapt(data)
        return time.perf_counter() - t0

    fs = make_space()
    fs.adapt(data)

    def call():
        t0 = time.perf_counter()
        fs(data)
        return time.perf_counter() - t0

    t_adapt, t_call = median_of(adapt, args.repeats), median_of(call, args.repeats)
    print(f"{args.rows} rows, encoded width {fs.encoded_width}")
    print(f"adapt: {t_adapt:.3f} s ({args.rows / t_adapt:,.0f} rows/s)")
    print(f"call:  {t_call:.3f} s ({args.rows / t_call:,.0f} rows/s)")


if __name__ == "__main__":
    main()
