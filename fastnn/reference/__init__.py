"""The NumPy reference of every fastnn kernel: the specification the C kernels must match.

Each function has the same name and signature as its C-backed twin in ``fastnn._ckernels``
(inputs, then ``out`` buffers, then ``n_threads``, which the reference ignores). The code is
written to be obvious rather than fast, and is exact in float64.
"""
from . import (activations, dropout, embedding, losses, merging, normalization, optimizers,
               products, reductions, regularizers)

MODULES = [activations, losses, reductions, optimizers, normalization, dropout, regularizers,
           embedding, merging, products]
