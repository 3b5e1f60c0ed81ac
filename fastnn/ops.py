"""The ops objects: the only way layers, losses and optimizers reach a kernel.

``NumpyOps`` is the reference (every function of ``fastnn.reference``); ``COps`` overrides
each kernel that ``fastnn._ckernels`` implements, with the same name and signature, and
falls back to the reference for anything it does not have. ``fastnn.backend`` picks one.
"""
import os
import warnings

from . import reference


def _kernels(modules):
    return {name: staticmethod(getattr(mod, name)) for mod in modules for name in mod.__all__}


class NumpyOps:
    """Pure-NumPy kernels: obvious, slow, exact in float64. The specification."""
    name = "numpy"
    locals().update(_kernels(reference.MODULES))


try:
    from . import _ckernels
except ImportError as exc:  # the extension is not built: the reference still works
    _ckernels = None
    C_IMPORT_ERROR = exc
else:
    C_IMPORT_ERROR = None


def _check_cpu_request(ck):
    """The loader bound the kernels to a CPU path while it loaded the extension, reading
    FASTNN_CPU (csrc/dispatch.c) with nobody to tell: say here what came of the request."""
    asked = os.environ.get("FASTNN_CPU")
    if not asked or asked == "auto":
        return
    got = ck.cpu_path()
    if got == "native":
        warnings.warn(f"FASTNN_CPU={asked} is ignored: this build of fastnn has one CPU path "
                      "(built with FASTNN_NATIVE=1, or not with GCC for x86-64 Linux)",
                      RuntimeWarning, stacklevel=3)
    elif ck.cpu_requested() == "invalid":
        raise ValueError(f"FASTNN_CPU={asked!r} is not a CPU path: expected one of "
                         f"{', '.join(ck.CPU_PATHS)} or auto")
    elif got != asked:
        warnings.warn(f"FASTNN_CPU={asked}: this CPU does not support the {asked} path (it "
                      f"supports up to {ck.cpu_supported()}); the kernels run on {got}",
                      RuntimeWarning, stacklevel=3)


if _ckernels is not None:
    _check_cpu_request(_ckernels)

    class COps(NumpyOps):
        """C kernels (csrc/) through the Cython wrappers; reference for the rest."""
        name = "c"
        locals().update({name: staticmethod(getattr(_ckernels, name))
                         for name in _kernels(reference.MODULES) if hasattr(_ckernels, name)})
else:
    COps = None
