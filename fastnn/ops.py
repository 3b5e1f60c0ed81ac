"""The ops objects: the only way layers, losses and optimizers reach a kernel.

``NumpyOps`` is the reference (every function of ``fastnn.reference``); ``COps`` overrides
each kernel that ``fastnn._ckernels`` implements, with the same name and signature, and
falls back to the reference for anything it does not have. ``fastnn.backend`` picks one.
"""
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


if _ckernels is not None:
    class COps(NumpyOps):
        """C kernels (csrc/) through the Cython wrappers; reference for the rest."""
        name = "c"
        locals().update({name: staticmethod(getattr(_ckernels, name))
                         for name in _kernels(reference.MODULES) if hasattr(_ckernels, name)})
else:
    COps = None
