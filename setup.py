"""Build fastnn's C extension: the kernels in csrc/ plus their Cython wrappers.

OpenMP is used when the compiler accepts -fopenmp; otherwise the kernels build and run
serially. No -march=native by default (a wheel must run on any x86-64): hot loops are
compiled for AVX-512, AVX2/FMA and baseline x86-64 and bound at load time
(csrc/template.h, csrc/dispatch.c; FASTNN_CPU picks a path). FASTNN_NATIVE=1 opts in to
-march=native (one path); FASTNN_NO_OPENMP=1 forces a serial build.
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def compiler_has_openmp():
    if os.environ.get("FASTNN_NO_OPENMP"):
        return False
    cc = os.environ.get("CC", "cc")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            r = subprocess.run([cc, "-fopenmp", src, "-o", os.path.join(d, "t")],
                               capture_output=True)
        except OSError:
            return False
        return r.returncode == 0


openmp = compiler_has_openmp()
cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Werror=implicit-function-declaration", "-Wno-unused-function", "-Wno-unknown-pragmas"]
ldflags = []
if sys.platform != "win32":
    # matmul_split's worker threads (csrc/products.c)
    cflags.append("-pthread")
    ldflags.append("-pthread")
if openmp:
    cflags.append("-fopenmp")
    ldflags.append("-fopenmp")
if os.environ.get("FASTNN_NATIVE"):
    cflags += ["-march=native", "-DFASTNN_NO_CLONES"]
print(f"fastnn build: OpenMP {'on' if openmp else 'off (serial kernels)'}", file=sys.stderr)

extensions = [
    Extension(
        "fastnn._ckernels",
        sources=["fastnn/_ckernels.pyx"] + sorted(glob.glob("csrc/*.c")),
        include_dirs=["csrc", np.get_include()],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(ext_modules=cythonize(extensions, language_level=3))
