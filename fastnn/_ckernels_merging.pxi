# Wrappers for csrc/merging.c (included by _ckernels.pyx after _ckernels_embedding.pxi, whose
# _emb_buffer and _emb_overlap checks they use).
from cpython.mem cimport PyMem_Free, PyMem_Malloc

# Up to this many arrays the pointer and width tables live on the stack (no allocation per
# call); a wider merge takes them from the heap.
cdef enum:
    _MERGE_STACK = 16


cdef object _merge_tables(Py_ssize_t k, void ***ptrs, Py_ssize_t **widths,
                          void **stack_ptrs, Py_ssize_t *stack_widths):
    """Point ``ptrs`` and ``widths`` at tables of k entries: the stack ones, or heap ones
    the caller frees (with _merge_free)."""
    if k <= _MERGE_STACK:
        ptrs[0], widths[0] = stack_ptrs, stack_widths
        return None
    ptrs[0] = <void **>PyMem_Malloc(sizeof(void *) * k)
    widths[0] = <Py_ssize_t *>PyMem_Malloc(sizeof(Py_ssize_t) * k)
    if ptrs[0] == NULL or widths[0] == NULL:
        PyMem_Free(ptrs[0])
        PyMem_Free(widths[0])
        raise MemoryError()
    return None


cdef void _merge_free(Py_ssize_t k, void **ptrs, Py_ssize_t *widths) noexcept:
    if k > _MERGE_STACK:
        PyMem_Free(ptrs)
        PyMem_Free(widths)


def concat_columns(xs, out=None, n_threads=None):
    """out (n, w_0 + ... + w_{k-1}) = the 2-D arrays ``xs`` (each (n, w_j), one float dtype)
    side by side: columns [w_0 + ... + w_{j-1}, ... + w_j) of out are xs[j]
    (``np.concatenate(xs, axis=1)``). ``out`` must not overlap an input."""
    cdef int kind, nt = _nt(n_threads)
    cdef Py_ssize_t j, k, n, total = 0
    cdef void *stack_ptrs[_MERGE_STACK]
    cdef Py_ssize_t stack_widths[_MERGE_STACK]
    cdef void **ptrs
    cdef Py_ssize_t *widths
    cdef cnp.ndarray o, x
    if not isinstance(xs, (list, tuple)) or not xs:
        raise TypeError(f"concat_columns: xs must be a non-empty list of arrays, got "
                        f"{type(xs).__name__ if not isinstance(xs, (list, tuple)) else 'an empty one'}")
    k = len(xs)
    for j in range(k):
        a = xs[j]
        if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
            raise TypeError(f"concat_columns: xs[{j}] must be a float32 or float64 numpy array, "
                            f"got {getattr(a, 'dtype', type(a).__name__)}")
        if a.dtype != xs[0].dtype:
            raise TypeError(f"concat_columns: xs[{j}] has dtype {a.dtype}, xs[0] {xs[0].dtype}")
        if a.ndim != 2 or a.shape[0] != xs[0].shape[0]:
            raise ValueError(f"concat_columns: xs must be 2-D with the same number of rows, got "
                             f"shapes {[np.shape(b) for b in xs]}")
        total += a.shape[1]
    kind = _kind(xs[0], "xs[0]")
    n = xs[0].shape[0]
    shape = (n, total)
    if out is None:
        out = np.empty(shape, xs[0].dtype)
    o = <cnp.ndarray>_emb_buffer(out, "out", xs[0].dtype, shape, "concat_columns")
    # contiguous copies of strided inputs, kept alive until the kernel has run
    arrays = [np.ascontiguousarray(a) for a in xs]
    for j in range(k):
        if _emb_overlap(o, <cnp.ndarray>xs[j]) or _emb_overlap(o, <cnp.ndarray>arrays[j]):
            raise ValueError("concat_columns: out overlaps an input")
    _merge_tables(k, &ptrs, &widths, stack_ptrs, stack_widths)
    try:
        for j in range(k):
            x = <cnp.ndarray>arrays[j]
            ptrs[j] = cnp.PyArray_DATA(x)
            widths[j] = cnp.PyArray_DIM(x, 1)
        with nogil:
            if kind == 0:
                concat_columns_f32(<const float *const *>ptrs, widths, k,
                                   <float *>cnp.PyArray_DATA(o), n, nt)
            else:
                concat_columns_f64(<const double *const *>ptrs, widths, k,
                                   <double *>cnp.PyArray_DATA(o), n, nt)
    finally:
        _merge_free(k, ptrs, widths)
    return out


def split_columns(dY, widths, outs=None, n_threads=None):
    """The inverse of concat_columns: outs[j] (n, widths[j]) = columns [widths[0] + ... +
    widths[j-1], ... + widths[j]) of the 2-D ``dY``, each a C-contiguous array of dY's dtype
    (new ones when ``outs`` is None). ``widths`` must add up to dY's columns; no out may
    overlap dY. Returns the outputs as a tuple."""
    cdef int kind, nt = _nt(n_threads)
    cdef Py_ssize_t j, k, n
    cdef void *stack_ptrs[_MERGE_STACK]
    cdef Py_ssize_t stack_widths[_MERGE_STACK]
    cdef void **ptrs
    cdef Py_ssize_t *ws
    cdef cnp.ndarray g
    if not isinstance(dY, np.ndarray) or dY.dtype not in (np.float32, np.float64):
        raise TypeError(f"split_columns: dY must be a float32 or float64 numpy array, got "
                        f"{getattr(dY, 'dtype', type(dY).__name__)}")
    kind = _kind(dY, "dY")
    if dY.ndim != 2:
        raise ValueError(f"split_columns: dY must be 2-D, got shape {dY.shape}")
    wlist = [int(w) for w in widths]
    if not wlist or any(w < 0 for w in wlist) or sum(wlist) != dY.shape[1]:
        raise ValueError(f"split_columns: widths {wlist} must be >= 0 and add up to dY's "
                         f"{dY.shape[1]} columns")
    k = len(wlist)
    n = dY.shape[0]
    if outs is None:
        outs = [np.empty((n, w), dY.dtype) for w in wlist]
    if not isinstance(outs, (list, tuple)) or len(outs) != k:
        raise ValueError(f"split_columns: outs must be a list of {k} arrays, got "
                         f"{len(outs) if isinstance(outs, (list, tuple)) else type(outs).__name__}")
    g = <cnp.ndarray>np.ascontiguousarray(dY)
    for j in range(k):
        _emb_buffer(outs[j], f"outs[{j}]", dY.dtype, (n, wlist[j]), "split_columns")
        if _emb_overlap(<cnp.ndarray>outs[j], <cnp.ndarray>dY) \
                or _emb_overlap(<cnp.ndarray>outs[j], g):
            raise ValueError(f"split_columns: outs[{j}] overlaps dY")
    _merge_tables(k, &ptrs, &ws, stack_ptrs, stack_widths)
    try:
        for j in range(k):
            ptrs[j] = cnp.PyArray_DATA(<cnp.ndarray>outs[j])
            ws[j] = wlist[j]
        with nogil:
            if kind == 0:
                split_columns_f32(<const float *>cnp.PyArray_DATA(g), ws, k,
                                  <float *const *>ptrs, n, nt)
            else:
                split_columns_f64(<const double *>cnp.PyArray_DATA(g), ws, k,
                                  <double *const *>ptrs, n, nt)
    finally:
        _merge_free(k, ptrs, ws)
    return tuple(outs)
