#!/usr/bin/env bash
# The serial build: FASTNN_NO_OPENMP=1 makes setup.py compile the kernels without OpenMP.
# Build fastnn that way into a directory of its own (pip install --target: the main build
# and the environment's installed fastnn stay as they are), then run the kernel tests from
# a copy of tests/ against it, with FASTNN_NO_OPENMP=1 still set so that a test asserts the
# build reports OpenMP off (fastnn.have_openmp()).
#
# Usage: bash tools/check_no_openmp.sh [pytest arguments, default: -q and the kernel tests]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fastnn_no_openmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)
step() { echo "check_no_openmp: $* ($(( $(date +%s) - t0 )) s)"; }

# a copy of the tracked files: a build/ directory left by an earlier build of the checkout
# (pip builds in the tree) would hand setuptools objects compiled with OpenMP
mkdir "$work/src"
(cd "$root" && git ls-files -z 2>/dev/null || find . -type f -not -path './.git/*' \
    -not -path './build/*' -not -name '*.so' -print0) \
    | (cd "$root" && xargs -0 cp --parents -t "$work/src")

step "building with FASTNN_NO_OPENMP=1"
# built in this environment (no isolated one to fill with numpy and Cython first)
python -m pip install --quiet "Cython>=3.0" "setuptools>=64" wheel
FASTNN_NO_OPENMP=1 python -m pip install --quiet --no-deps --no-build-isolation \
    --target "$work/site" "$work/src" > "$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log"; exit 1; }
# the tests run beside the copy's README, examples/ and pyproject.toml, but import the build
rm -rf "$work/src/fastnn" "$work/src/build"
cd "$work/src"
export PYTHONPATH="$work/site" FASTNN_NO_OPENMP=1 FASTNN_CPU=auto
python -c "import fastnn, sys; print('check_no_openmp:', fastnn.__file__, 'openmp', \
fastnn.have_openmp()); sys.exit(fastnn.have_openmp() or not fastnn.__file__.startswith('$work'))"

if [ $# -eq 0 ]; then
    # the kernel tests: their subject directories, or the flat files they grew from
    set -- -q tests/kernels
    for d in tests/optimizers; do [ -d "$d" ] && set -- "$@" "$d"; done
    for f in test_kernels.py test_batching_kernels.py test_dropout.py test_normalization.py \
             test_regularizers.py test_optimizers.py test_threads.py; do
        [ -f "tests/$f" ] && set -- "$@" "tests/$f"
    done
fi
step "pytest $*"
python -m pytest -p no:cacheprovider "$@"
step "done"
