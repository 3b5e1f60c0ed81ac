"""Check that an sdist holds every input of fastnn's build (tools/check_wheel.sh runs it).

    python tools/check_sdist.py ROOT dist/fastnn-X.Y.Z.tar.gz

The inputs are the files the checkout tracks (git ls-files; every file when ROOT is not a git
checkout) under csrc/ and fastnn/ (C sources and headers, the .pyx/.pxi/.pxd wrappers, the
Python package, its data) plus setup.py, pyproject.toml, MANIFEST.in and README.md. The
sdist must also carry no compiled extension. The wheel check builds its wheel from this
sdist, which catches what a listing cannot (an input the build reads that nobody tracks).
"""
import os
import subprocess
import sys
import tarfile

TOP_LEVEL = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md")
TREES = ("csrc/", "fastnn/")


def tracked_files(root):
    try:
        out = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True,
                             check=True).stdout
        return out.split()
    except (OSError, subprocess.CalledProcessError):
        return [os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/")
                for d, _, files in os.walk(root) for f in files]


def build_inputs(root):
    return sorted(f for f in tracked_files(root)
                  if f in TOP_LEVEL or (f.startswith(TREES) and "__pycache__" not in f
                                        and not f.endswith((".so", ".pyd"))
                                        and f != "fastnn/_ckernels.c"))


def sdist_files(path):
    with tarfile.open(path) as t:
        # members are "fastnn-X.Y.Z/<path>"
        return {n.split("/", 1)[1] for n in t.getnames() if "/" in n}


def main(root, sdist):
    inside = sdist_files(sdist)
    wanted = build_inputs(root)
    missing = [f for f in wanted if f not in inside]
    compiled = sorted(f for f in inside if f.endswith((".so", ".pyd", ".o")))
    if missing or compiled:
        if missing:
            print(f"{sdist} lacks build inputs (MANIFEST.in?): {', '.join(missing)}")
        if compiled:
            print(f"{sdist} carries compiled files: {', '.join(compiled)}")
        return 1
    print(f"check_sdist: {os.path.basename(sdist)} holds all {len(wanted)} build inputs")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
