"""Shared pieces of the benchmarks: data, the GEMM-only floor, timing helpers.

Every figure the benchmarks print is a ratio between runs made in the same process on the
same data, because the machines are shared and absolute times drift.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mnist_like(n=60000, features=784, classes=10, seed=0, dtype=np.float32):
    """Random MNIST-shaped data: the work per epoch is what matters, not the labels' meaning."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, features), dtype=np.float32).astype(dtype)
    y = rng.integers(0, classes, n)
    return x, y


def gemm_floor_epoch(x, sizes, batch_size, dtype=np.float32, skip_first_dx=True):
    """Seconds for one epoch of only the matrix products an MLP of ``sizes`` needs (forward,
    weight gradients, input gradients except the first layer's), through numpy's BLAS into
    preallocated buffers: the floor no MLP trainer using the same BLAS can beat."""
    rng = np.random.default_rng(0)
    # LeCun-scaled weights keep activations near 1 through any depth: values that shrink
    # to subnormals would make the products many times slower (seen: 20x, 100-wide)
    ws = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [np.empty((batch_size, s), dtype) for s in sizes]
    grads = [np.empty((batch_size, s), dtype) for s in sizes]
    dws = [np.empty_like(w) for w in ws]
    n = len(x)
    t0 = time.perf_counter()
    for lo in range(0, n, batch_size):
        b = min(batch_size, n - lo)
        acts[0][:b] = x[lo:lo + b]
        for i, w in enumerate(ws):
            np.matmul(acts[i][:b], w, out=acts[i + 1][:b])
        grads[-1][:b] = acts[-1][:b]
        for i in range(len(ws) - 1, -1, -1):
            np.matmul(acts[i][:b].T, grads[i + 1][:b], out=dws[i])
            if i > 0 or not skip_first_dx:
                np.matmul(grads[i + 1][:b], ws[i].T, out=grads[i][:b])
    return time.perf_counter() - t0


def best_of(fn, repeats):
    """Minimum over repeats: the least-disturbed run on a shared machine."""
    return min(fn() for _ in range(repeats))


def median_of(fn, repeats):
    return float(np.median([fn() for _ in range(repeats)]))


def machine_description():
    import platform
    try:
        from threadpoolctl import threadpool_info
        blas = [f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads, "
                f"{i.get('architecture')})" for i in threadpool_info() if i.get("user_api") == "blas"]
    except ImportError:
        blas = []
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": "; ".join(blas)}
