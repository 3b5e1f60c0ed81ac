"""The maintainer docs keep up with the code: the kernel index of docs/architecture.md names
every kernel, csrc/dispatch.c binds every kernel fastnn.h declares, and the README links the
docs it moved its tables and internals to."""
import os
import re

import pytest

from fastnn import reference

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(*path):
    p = os.path.join(ROOT, *path)
    if not os.path.exists(p):
        pytest.skip(f"{os.path.join(*path)} is not beside the tests")
    with open(p, encoding="utf-8") as f:
        return f.read()


def test_architecture_kernel_index_names_every_kernel_of_the_reference():
    index = read("docs", "architecture.md").split("## Kernel index", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`([a-z0-9_]+)`", index))
    kernels = {name for mod in reference.MODULES for name in mod.__all__}
    assert not kernels - named, f"missing from docs/architecture.md: {sorted(kernels - named)}"


def test_dispatch_binds_every_kernel_the_header_declares_for_both_dtypes():
    header = read("csrc", "fastnn.h")
    declared = set(re.findall(r"\b([a-z][a-z0-9_]*)_f32\(", header))
    assert declared == set(re.findall(r"\b([a-z][a-z0-9_]*)_f64\(", header))
    listed = re.findall(r"^FASTNN_KERNEL\(([a-z0-9_]+)\)$", read("csrc", "dispatch.c"), re.M)
    assert len(listed) == len(set(listed)), "a kernel is listed twice in csrc/dispatch.c"
    assert set(listed) == declared, (
        f"csrc/dispatch.c lacks FASTNN_KERNEL lines for {sorted(declared - set(listed))}; "
        f"lists undeclared {sorted(set(listed) - declared)}")


def test_readme_links_the_docs_and_they_exist():
    readme = read("README.md")
    for doc in ("docs/architecture.md", "docs/performance.md", "CHANGELOG.md"):
        assert f"]({doc})" in readme
        assert os.path.exists(os.path.join(ROOT, doc)), doc


def test_performance_doc_holds_the_benchmark_tables_the_readme_summarizes():
    perf = read("docs", "performance.md")
    readme = read("README.md")
    # the suite's table and the optimizer table live in the doc, not the README
    for header in ("| case | threads | fastnn s/epoch | x GEMM floor |", "| optimizer | params |"):
        assert header in perf and header not in readme
    # the README's summary quotes the doc's figures
    for figure in ("fastnn 0.787 s = 1.28x", "| 1.40x |", "2.7x slower", "2.8x slower", "3.0x slower"):
        assert figure in perf, figure
