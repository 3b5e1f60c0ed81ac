# Wrappers for csrc/products.c: the BLAS numpy uses, bound for calls from C, and matmul,
# np.matmul's BLAS calls made from C (the compiled epoch's products).

def blas_bind(size_t sgemm, size_t dgemm, size_t sgemv, size_t dgemv, size_t sdot, size_t ddot,
              size_t ssyrk, size_t dsyrk, bint ilp64):
    """Bind the BLAS functions (addresses of cblas_sgemm, ... in the library numpy loaded;
    ``ilp64``: it takes 64-bit integers) for fastnn's calls from C. Returns True when all
    were given (then they are bound), else False."""
    return blas_bind_c(<void *>sgemm, <void *>dgemm, <void *>sgemv, <void *>dgemv,
                       <void *>sdot, <void *>ddot, <void *>ssyrk, <void *>dsyrk, ilp64) == 0


def blas_bound():
    """True when a BLAS is bound (blas_bind) and matmul can run."""
    return bool(blas_bound_c())


cdef int _layout(a, str what, int tn) except -1:
    """0: ``a`` is C-contiguous; 1: it is the transpose of a C-contiguous array."""
    if not isinstance(a, np.ndarray) or a.ndim != 2:
        raise TypeError(f"matmul: {what} must be a 2-D numpy array")
    if cnp.PyArray_TYPE(<cnp.ndarray>a) != tn:
        raise TypeError(f"matmul: {what} has dtype {a.dtype}, expected that of a")
    if a.flags.c_contiguous:
        return 0
    if a.flags.f_contiguous:
        return 1
    raise ValueError(f"matmul: {what} must be C-contiguous or the transpose of a C-contiguous "
                     "array")


cdef object _product(a, b, out, Py_ssize_t per, int columns, int n_threads, str name):
    """The checks of matmul's arguments, then one product: matmul, or matmul_split when
    ``per`` > 0. Returns out."""
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: a must be a float32 or float64 numpy array")
    cdef int tn = cnp.PyArray_TYPE(<cnp.ndarray>a)
    cdef int ta = _layout(a, "a", tn), tb = _layout(b, "b", tn)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), a.dtype)
    if _layout(out, "out", tn) != 0 or not out.flags.writeable:
        raise ValueError(f"{name}: out must be a writable C-contiguous array")
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1]
    if b.shape[0] != k or out.shape != (m, n):
        raise ValueError(f"{name}: shapes {a.shape} @ {b.shape} -> {out.shape} do not match")
    if m == 0 or n == 0 or k == 0:
        raise ValueError(f"{name}: empty operands {a.shape} @ {b.shape}")
    if not blas_bound_c():
        from fastnn.training.compiled_epoch import bind_blas
        bind_blas()
        if not blas_bound_c():
            raise RuntimeError(f"{name}: numpy's BLAS could not be bound for calls from C (not "
                               "an OpenBLAS whose function names fastnn knows)")
    cdef void *ap = cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef void *bp = cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef void *op = cnp.PyArray_DATA(<cnp.ndarray>out)
    with nogil:
        if tn == cnp.NPY_FLOAT:
            if per > 0:
                matmul_split_f32(<const float *>ap, ta, <const float *>bp, tb, <float *>op, m,
                                 n, k, per, columns, n_threads)
            else:
                matmul_f32(<const float *>ap, ta, <const float *>bp, tb, <float *>op, m, n, k)
        else:
            if per > 0:
                matmul_split_f64(<const double *>ap, ta, <const double *>bp, tb, <double *>op,
                                 m, n, k, per, columns, n_threads)
            else:
                matmul_f64(<const double *>ap, ta, <const double *>bp, tb, <double *>op, m, n,
                           k)
    return out


def matmul(a, b, out=None, n_threads=None):
    """out = a @ b for 2-D float32/float64 arrays (a and b C-contiguous or transposes of
    C-contiguous arrays, out C-contiguous), by the BLAS calls np.matmul makes for them: the
    same bits. The BLAS runs on its own threads (``n_threads`` is not used). Returns out."""
    return _product(a, b, out, 0, 0, 1, "matmul")


def split_geometry(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k):
    """The adaptive policy's chunks of an (m, k) @ (k, n) product: (per, columns), chunks of
    ``per`` rows of the result (columns when ``columns``), or None when it is one BLAS call
    (too small). fastnn/threads.py's split_geometry is its twin."""
    cdef Py_ssize_t per = 0
    cdef int columns = 0
    if m < 1 or n < 1 or k < 1:
        raise ValueError(f"split_geometry: empty product ({m}, {k}) @ ({k}, {n})")
    if not split_geometry_c(m, n, k, &per, &columns):
        return None
    return per, bool(columns)


def matmul_split(a, b, out, Py_ssize_t per, bint columns, int n_threads):
    """matmul as chunks of ``per`` rows of out (``columns``: columns), each one BLAS call,
    on the calling thread and up to ``n_threads`` - 1 of fastnn's worker threads taking
    chunks as they come free: with the BLAS at one thread, the bits depend on the chunks,
    not on ``n_threads``. Returns out."""
    if per < 1 or n_threads < 1:
        raise ValueError(f"matmul_split: per and n_threads must be >= 1, got {per}, "
                         f"{n_threads}")
    _product(a, b, out, per, columns, n_threads, "matmul_split")
    matmul_split_quiesce()  # the caller may free a and b at once
    return out


def matmul_split_quiesce():
    """Wait until no worker of matmul_split may still read the operands of a split product
    that has returned (a late worker whose chunk the caller computed itself): before the
    operands of split products are freed."""
    with nogil:
        matmul_split_quiesce_c()
