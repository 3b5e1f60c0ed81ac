"""The numbers shared by C and Python are written once: the activation and loss codes and
SELU's constants live in csrc/fastnn.h; the Cython layer reads them through _kernels.pxd;
fastnn.reference keeps the one Python table of each, held to the header here."""
import glob
import os
import re

import pytest

from fastnn.reference import activations as ref_activations, losses as ref_losses

from conftest import REPO_ROOT, requires_c

HEADER = os.path.join(REPO_ROOT, "csrc", "fastnn.h")
ENUMS = ("fastnn_activation", "fastnn_loss")  # the enums Python code passes codes of
needs_header = pytest.mark.skipif(not os.path.exists(HEADER), reason="no csrc/ beside the tests")


def _header():
    """{name: value} of the members of ENUMS in csrc/fastnn.h and of its numeric #defines,
    and the member names of each of ENUMS."""
    with open(HEADER) as f:
        text = f.read()
    values, enums = {}, {}
    for enum, body in re.findall(r"enum\s+(\w+)\s*\{([^}]*)\}", text):
        if enum not in ENUMS:
            continue
        members = re.findall(r"(\w+)\s*=\s*(-?\d+)", body)
        assert len(members) == len(re.findall(r"\w+", body)) // 2, \
            f"enum {enum}: give every member an explicit value (Python tables copy them)"
        enums[enum] = [name for name, _ in members]
        values.update((name, int(v)) for name, v in members)
    for name, v in re.findall(r"^#define\s+(FASTNN_\w+)\s+(-?[0-9][0-9.eE+-]*)\s*$", text, re.M):
        values[name] = float(v) if re.search(r"[.eE]", v) else int(v)
    return values, enums


def _table_in_header_names(codes, prefix):
    return {prefix + name.upper(): code for name, code in codes.items()}


@needs_header
@pytest.mark.parametrize("table,enum,prefix,count", [
    (ref_activations.ACTIVATION_CODES, "fastnn_activation", "ACT_", "FASTNN_N_ACTIVATIONS"),
    (ref_losses.LOSS_CODES, "fastnn_loss", "LOSS_", "FASTNN_N_LOSSES")], ids=["activations", "losses"])
def test_python_code_tables_are_the_headers_enums(table, enum, prefix, count):
    values, enums = _header()
    header = {name: values[name] for name in enums[enum]}
    python = _table_in_header_names(table, prefix)
    assert sorted(set(header) - set(python)) == [], f"in enum {enum} but not in the Python table"
    assert sorted(set(python) - set(header)) == [], f"in the Python table but not in enum {enum}"
    assert python == header
    # the wrappers check codes against the count: it must cover exactly 0..count-1
    assert sorted(header.values()) == list(range(values[count]))


@needs_header
def test_selu_constants_are_the_headers():
    values, _ = _header()
    assert ref_activations.SELU_ALPHA == values["FASTNN_SELU_ALPHA"]
    assert ref_activations.SELU_SCALE == values["FASTNN_SELU_SCALE"]


@requires_c
@needs_header
def test_extension_was_compiled_with_the_headers_numbers():
    # the .pxd declares each member by name; one missing there is missing here
    from fastnn import _ckernels
    values, enums = _header()
    wanted = {name for members in enums.values() for name in members}
    wanted |= {"FASTNN_N_ACTIVATIONS", "FASTNN_N_LOSSES", "FASTNN_SELU_ALPHA", "FASTNN_SELU_SCALE"}
    assert sorted(wanted - set(_ckernels.HEADER_CONSTANTS)) == [], "not declared in fastnn/_kernels.pxd"
    for name in sorted(wanted):
        assert _ckernels.HEADER_CONSTANTS[name] == values[name], name


def test_selu_constants_are_written_once_in_python():
    import fastnn
    from fastnn.layers import dropout
    assert (dropout._SELU_ALPHA, dropout._SELU_SCALE) == (ref_activations.SELU_ALPHA,
                                                          ref_activations.SELU_SCALE)
    package = os.path.dirname(os.path.abspath(fastnn.__file__))
    copies = [os.path.relpath(p, package) for p in glob.glob(os.path.join(package, "**", "*.py"),
                                                             recursive=True)
              if "1.67326324" in open(p).read() or "1.05070098" in open(p).read()]
    assert copies == [os.path.join("reference", "activations.py")]


@requires_c
def test_compiled_epochs_split_policy_is_the_adaptive_policys():
    """csrc/epoch.c chooses between one BLAS call and a split as fastnn/threads.py does for
    the Python loop: the same number of samples, re-check intervals and slowness factor; and
    csrc/products.c cuts the same chunks (the bits)."""
    from fastnn import _ckernels, threads
    h = _ckernels.HEADER_CONSTANTS
    assert (h["EPOCH_SPLIT_SAMPLES"], h["EPOCH_SPLIT_RECHECK"], h["EPOCH_SPLIT_MAX_RECHECK"],
            h["EPOCH_SPLIT_SLOW"], h["EPOCH_SPLIT_MIN_CALLS"], h["EPOCH_SPLIT_CHUNKS"],
            h["EPOCH_SPLIT_ALIGN"], h["EPOCH_SPLIT_MIN_MACS"]) == (
        threads.SAMPLES, threads.RECHECK_CALLS, threads.MAX_RECHECK_CALLS, threads.SLOW_FACTOR,
        threads.MIN_CALLS_BETWEEN_CHECKS, threads.SPLIT_CHUNKS, threads.SPLIT_ALIGN,
        threads.SPLIT_MIN_MACS)
