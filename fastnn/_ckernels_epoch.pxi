# Wrapper for csrc/epoch.c: the compiled training epoch. fastnn/training/compiled_epoch.py
# builds an EpochPlan from a model's own buffers; this checks every array against the
# shapes the C loop will read and write, then runs steps without the GIL.
from libc.stdint cimport intptr_t
from libc.stdlib cimport calloc, free


cdef void *_plan_ptr(a, dtype, Py_ssize_t size, str what, bint writable=True,
                     bint optional=False) except? NULL:
    """The data of ``a``: a C-contiguous array of ``dtype`` holding at least ``size``
    elements (NULL for None when ``optional``)."""
    if a is None:
        if optional:
            return NULL
        raise ValueError(f"EpochPlan: {what} is missing")
    if not isinstance(a, np.ndarray) or a.dtype != dtype or not a.flags.c_contiguous:
        raise TypeError(f"EpochPlan: {what} must be a C-contiguous {np.dtype(dtype)} array, got "
                        f"{type(a).__name__} {getattr(a, 'dtype', '')}")
    if writable and not a.flags.writeable:
        raise ValueError(f"EpochPlan: {what} must be writable")
    if a.size < size:
        raise ValueError(f"EpochPlan: {what} has {a.size} elements, needs {size}")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef fastnn_epoch_run _run_piece(fastnn_epoch_run run, Py_ssize_t off, Py_ssize_t size,
                                 Py_ssize_t elsize):
    """Elements [off, off + size) of ``run``: its value, gradient and state slots there."""
    cdef Py_ssize_t at = off * elsize
    run.p = <char *>run.p + at
    run.g = <char *>run.g + at
    run.s1 = <char *>run.s1 + at if run.s1 else NULL
    run.s2 = <char *>run.s2 + at if run.s2 else NULL
    run.s3 = <char *>run.s3 + at if run.s3 else NULL
    run.size = size
    return run


EPOCH_MAX_RUNS = FASTNN_EPOCH_MAX_RUNS
EPOCH_MAX_METRICS = FASTNN_EPOCH_MAX_METRICS
EPOCH_MAX_PENALTIES = FASTNN_EPOCH_MAX_PENALTIES


cdef class EpochPlan:
    """EpochPlan(x, y, batch_size, layers, loss, optimizer, metrics): the steps of an
    epoch of a graph of layers, run in C (csrc/epoch.c). See
    fastnn/training/compiled_epoch.py for what each argument holds."""
    cdef fastnn_epoch e
    cdef fastnn_epoch_layer *dense
    cdef list keep
    cdef list kept_penalties
    cdef object dtype

    def __cinit__(self):
        self.dense = NULL
        self.e.tensors = self.e.grads = NULL

    def __dealloc__(self):
        matmul_split_quiesce_c()  # no worker of a split product reads the buffers
        free(self.dense)
        free(self.e.tensors)
        free(self.e.grads)

    def __init__(self, x, y, Py_ssize_t batch_size, list layers, dict loss, dict optimizer,
                 list metrics, w=None, row_loss=None, w64=None, list penalties=None):
        if not layers:
            raise ValueError("EpochPlan: no layers")
        dtype = self.dtype = np.dtype(layers[0]["W"].dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"EpochPlan: the weights must be float32 or float64, got {dtype}")
        self.keep = [x, y, layers, loss, optimizer]
        cdef Py_ssize_t rows = len(x), L = len(layers), i, width
        # the work buffers hold the rows of the largest batch (all rows when fewer)
        cdef Py_ssize_t cap = min(batch_size, rows)
        if batch_size < 1 or rows < 1 or x.ndim != 2:
            raise ValueError("EpochPlan: x must be 2-D with rows, batch_size >= 1")
        self.e.x = _plan_ptr(x, dtype, 0, "x", False)
        self.e.rows, self.e.x_cols, self.e.batch_size = rows, x.shape[1], batch_size
        self.e.y_labels = y.dtype == np.int64 and y.ndim == 1
        self.e.y_cols = 1 if self.e.y_labels else (y.shape[1] if y.ndim == 2 else -1)
        if len(y) != rows or self.e.y_cols < 1:
            raise ValueError(f"EpochPlan: y of shape {y.shape} for {rows} rows")
        self.e.y = _plan_ptr(y, np.int64 if self.e.y_labels else dtype, 0, "y", False)
        self.e.order = NULL
        # per-sample weights: (rows,) of the model's dtype, and float64 scratch of a batch
        self.e.w = _plan_ptr(w, dtype, rows, "w", False, True)
        self.e.row_loss = <double *>_plan_ptr(row_loss, np.float64, min(batch_size, rows),
                                              "row_loss", True, w is None)
        self.e.w64 = <double *>_plan_ptr(w64, np.float64, min(batch_size, rows), "w64", True,
                                         w is None)
        self.keep.append((w, row_loss, w64))
        self.dense = <fastnn_epoch_layer *>calloc(L, sizeof(fastnn_epoch_layer))
        self.e.tensors = <void **>calloc(L + 1, sizeof(void *))
        self.e.grads = <void **>calloc(L + 1, sizeof(void *))
        if self.dense == NULL or self.e.tensors == NULL or self.e.grads == NULL:
            raise MemoryError()
        self.e.layers, self.e.n_layers = self.dense, L
        widths = [x.shape[1]]  # of each tensor: 0 the batch, i + 1 layer i's output
        cdef fastnn_epoch_layer *d
        for i in range(L):
            spec, d = layers[i], &self.dense[i]
            d.kind = spec["kind"]
            d.in0, d.in1 = spec["in0"], spec.get("in1", -1)
            if not 0 <= d.in0 <= i or not -1 <= d.in1 <= i or (d.kind == EPOCH_ADD) != (d.in1 >= 0):
                raise ValueError(f"EpochPlan: layer {i} reads tensors {d.in0}, {d.in1}")
            d.needs, d.need_dx = spec["needs"], spec["need_dx"]
            d.want0, d.want1 = spec["want0"], spec.get("want1", False)
            if (d.want0 or d.want1) and not d.need_dx or d.need_dx and not d.needs:
                raise ValueError(f"EpochPlan: layer {i}: inconsistent gradient flags")
            width = widths[d.in0]
            if d.kind == EPOCH_ADD and widths[d.in1] != width:
                raise ValueError(f"EpochPlan: layer {i} adds widths {width} and {widths[d.in1]}")
            d.in_ = width
            if d.kind == EPOCH_DENSE:
                if spec["W"].shape[0] != width:
                    raise ValueError(f"EpochPlan: layer {i} takes {spec['W'].shape[0]} inputs, "
                                     f"gets {width}")
                d.units = spec["W"].shape[1]
                d.W = _plan_ptr(spec["W"], dtype, d.in_ * d.units, f"layer {i} W", False)
                d.dW = _plan_ptr(spec["dW"], dtype, d.in_ * d.units, f"layer {i} dW", True,
                                 True)
                d.Z = _plan_ptr(spec["Z"], dtype, cap * d.units, f"layer {i} Z")
                d.dX = _plan_ptr(spec["dX"], dtype, cap * d.in_, f"layer {i} dX", True,
                                 not d.need_dx)
            elif d.kind in (EPOCH_ACTIVATION, EPOCH_DROPOUT, EPOCH_BATCHNORM, EPOCH_ADD):
                d.units = width
            else:
                raise ValueError(f"EpochPlan: layer {i}: kind {d.kind}")
            d.Y = _plan_ptr(spec["Y"], dtype, cap * d.units, f"layer {i} Y")
            if d.kind in (EPOCH_DENSE, EPOCH_ACTIVATION):
                d.act, d.alpha = spec["act"], spec["alpha"]
                if not 0 <= d.act < FASTNN_N_ACTIVATIONS:
                    raise ValueError(f"EpochPlan: layer {i}: activation code {d.act}")
                d.preact = spec["preact"]
            if d.kind == EPOCH_DENSE:
                d.fused_grad = spec["fused_grad"]
                d.b = _plan_ptr(spec["b"], dtype, d.units, f"layer {i} b", False, True)
                d.db = _plan_ptr(spec["db"], dtype, d.units, f"layer {i} db", True, True)
                if d.preact == (d.Y == d.Z):
                    raise ValueError(f"EpochPlan: layer {i}: Y must be Z exactly when the "
                                     "activation's backward does not need Z")
            elif d.kind == EPOCH_DROPOUT:
                d.rate, d.scale = spec["rate"], spec["scale"]
                d.seed, d.counter = spec["seed"], spec["counter"]
                mask = spec["keep"]
                if not isinstance(mask, np.ndarray) or mask.dtype != np.uint8 \
                        or not mask.flags.c_contiguous or mask.size < cap * width:
                    raise TypeError(f"EpochPlan: layer {i}: keep must be a C-contiguous uint8 "
                                    f"array of {cap * width} elements")
                d.keep = <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>mask)
            elif d.kind == EPOCH_BATCHNORM:
                d.eps, d.momentum = spec["eps"], spec["momentum"]
                d.W = _plan_ptr(spec["gamma"], dtype, width, f"layer {i} gamma", False)
                d.b = _plan_ptr(spec["beta"], dtype, width, f"layer {i} beta", False)
                d.dW = _plan_ptr(spec["dgamma"], dtype, width, f"layer {i} dgamma")
                d.db = _plan_ptr(spec["dbeta"], dtype, width, f"layer {i} dbeta")
                d.moving_mean = _plan_ptr(spec["moving_mean"], dtype, width,
                                          f"layer {i} moving_mean")
                d.moving_var = _plan_ptr(spec["moving_variance"], dtype, width,
                                         f"layer {i} moving_variance")
                d.mean = _plan_ptr(spec["mean"], dtype, width, f"layer {i} mean")
                d.invstd = _plan_ptr(spec["invstd"], dtype, width, f"layer {i} invstd")
            elif d.kind == EPOCH_ADD:
                d.dX = _plan_ptr(spec["dX"], dtype, cap * width, f"layer {i} dX", True,
                                 not (d.need_dx and d.want1))
            widths.append(d.units)
        width = widths[L]
        self.e.loss_kind, self.e.loss_code = loss["kind"], loss["code"]
        self.e.loss_param, self.e.from_logits = loss["param"], loss["from_logits"]
        kinds = [kind for kind, _ in metrics]
        if len(kinds) > FASTNN_EPOCH_MAX_METRICS or any(kind not in (1, 2, 3) for kind in kinds):
            raise ValueError(f"EpochPlan: metrics {metrics}: at most "
                             f"{FASTNN_EPOCH_MAX_METRICS} of kinds 1, 2, 3")
        if self.e.loss_kind == EPOCH_LOSS_SPARSE_SOFTMAX_CE or 1 in kinds:
            if not self.e.y_labels:
                raise ValueError("EpochPlan: sparse losses and hit counts need int64 labels")
        elif self.e.y_labels or self.e.y_cols != width:
            raise ValueError(f"EpochPlan: targets of {self.e.y_cols} columns for {width} outputs")
        self.e.grad = _plan_ptr(loss["grad"], dtype, cap * width, "grad")
        if self.e.y_labels and (2 in kinds or 3 in kinds):
            raise ValueError("EpochPlan: categorical and binary accuracy need float targets")
        self.e.n_metrics = len(kinds)
        for i, (kind, threshold) in enumerate(metrics):
            self.e.metric_kind[i], self.e.metric_threshold[i] = kind, threshold
        self.set_penalties(penalties or [])
        self.set_optimizer(optimizer)
        self.e.lrs = NULL
        self.e.n_threads = self.e.update_threads = 1

    def set_lr(self, double lr):
        """The learning rate of the steps run without per-step rates."""
        self.e.lr = lr

    def set_optimizer(self, dict optimizer):
        """The optimizer's rule (``kind``), its packed runs of variables (``runs``: dicts of
        ``p``, ``g``, state slots ``s1``-``s3`` and ``decay``) and its settings (``lr``,
        ``weight_decay``, ``beta_1``, ``beta_2``, ``epsilon``, ``momentum``, ``rho``,
        ``clipvalue`` (inf: none), ``nesterov``; 0 when absent; Nadam's ``u_product``, the
        product u_1 * ... * u_t through the optimizer's step count), read each epoch:
        callbacks may change them, and re-splitting the runs makes new state arrays.

        Clipping by norm (``clip``): 0 none, 1 ``clipnorm`` (each run is one variable, scaled
        by its own gradient's norm), 2 ``global_clipnorm`` (every run scaled by the norm of
        the gradients ``norm_grads``, the variables' in order); ``clip_norm`` the bound.

        ``fuse`` (default True): a Dense kernel whose weight-gradient product is split into
        chunks (threads.split_geometry at a full batch) and whose value and gradient lie in a
        run is updated chunk by chunk during the backward (see ``fused_layers``); the bits
        are the same, every rule being elementwise. Never when clipping by norm (the scale
        needs every gradient of the step) or for a regularized kernel (set_penalties: its
        gradient waits for its penalty's)."""
        runs = optimizer["runs"]
        if len(runs) > FASTNN_EPOCH_MAX_RUNS:
            raise ValueError(f"EpochPlan: at most {FASTNN_EPOCH_MAX_RUNS} runs of variables")
        get = optimizer.get
        cdef int clip = get("clip", EPOCH_CLIP_NONE)
        norm_grads = get("norm_grads", [])
        if clip not in (EPOCH_CLIP_NONE, EPOCH_CLIP_NORM, EPOCH_CLIP_GLOBAL_NORM):
            raise ValueError(f"EpochPlan: clip mode {clip}")
        if len(norm_grads) > FASTNN_EPOCH_MAX_RUNS:
            raise ValueError(f"EpochPlan: at most {FASTNN_EPOCH_MAX_RUNS} gradients for a norm")
        dtype = self.dtype
        cdef fastnn_epoch_run whole[FASTNN_EPOCH_MAX_RUNS]
        for i, run in enumerate(runs):
            size = run["p"].size
            whole[i].p = _plan_ptr(run["p"], dtype, size, "a variable run")
            whole[i].g = _plan_ptr(run["g"], dtype, size, "a gradient run", False)
            whole[i].s1 = _plan_ptr(run.get("s1"), dtype, size, "a state slot", True, True)
            whole[i].s2 = _plan_ptr(run.get("s2"), dtype, size, "a state slot", True, True)
            whole[i].s3 = _plan_ptr(run.get("s3"), dtype, size, "a state slot", True, True)
            whole[i].size, whole[i].decay = size, run["decay"]
        for i, g in enumerate(norm_grads):
            self.e.norm_g[i] = _plan_ptr(g, dtype, g.size, "a gradient for the norm", False)
            self.e.norm_size[i] = g.size
        self.e.n_norm_grads = len(norm_grads)
        self.e.clip_mode, self.e.clip_norm = clip, get("clip_norm", INFINITY)
        self._fuse(whole, len(runs), get("fuse", True) and clip == EPOCH_CLIP_NONE)
        self.e.opt_kind, self.e.optimizing = optimizer["kind"], len(runs) > 0
        self.keep[4] = optimizer
        self.e.u_product = get("u_product", 1.0)
        self.e.lr, self.e.weight_decay = get("lr", 0.0), get("weight_decay", 0.0)
        self.e.beta_1, self.e.beta_2 = get("beta_1", 0.0), get("beta_2", 0.0)
        self.e.epsilon, self.e.momentum = get("epsilon", 0.0), get("momentum", 0.0)
        self.e.rho, self.e.clipvalue = get("rho", 0.0), get("clipvalue", INFINITY)
        self.e.nesterov = get("nesterov", False)

    def set_penalties(self, list penalties):
        """The L1/L2 penalties (dicts of ``w``, ``g``, ``l1``, ``l2``), in the order the
        Python loop adds them; set_optimizer after it (a regularized kernel is never updated
        in the backward)."""
        if len(penalties) > FASTNN_EPOCH_MAX_PENALTIES:
            raise ValueError(f"EpochPlan: at most {FASTNN_EPOCH_MAX_PENALTIES} penalties")
        for i, q in enumerate(penalties):
            size = q["w"].size
            if q["g"].size != size or not (q["l1"] >= 0 and q["l2"] >= 0):
                raise ValueError(f"EpochPlan: penalty {i}: a gradient of {q['g'].size} "
                                 f"elements for {size}, l1={q['l1']}, l2={q['l2']}")
            self.e.penalties[i].w = _plan_ptr(q["w"], self.dtype, size, f"penalty {i} w", False)
            self.e.penalties[i].g = _plan_ptr(q["g"], self.dtype, size, f"penalty {i} g")
            self.e.penalties[i].size = size
            self.e.penalties[i].l1, self.e.penalties[i].l2 = q["l1"], q["l2"]
        self.e.n_penalties = len(penalties)
        self.kept_penalties = penalties

    cdef bint _penalized(self, void *w):
        for i in range(self.e.n_penalties):
            if self.e.penalties[i].w == w:
                return True
        return False

    cdef _fuse(self, fastnn_epoch_run *whole, int n, bint fuse):
        """Which Dense kernels are updated in the backward, and the pieces of the runs
        ``whole`` left for the update at the end of each step (self.e.runs)."""
        cdef Py_ssize_t elsize = self.dtype.itemsize, cap = min(self.e.batch_size, self.e.rows)
        cdef Py_ssize_t i, r, off, size, per, lo
        cdef int columns
        cdef fastnn_epoch_layer *d
        holes = [[] for _ in range(n)]  # per run: (first element, end) of its fused kernels
        for i in range(self.e.n_layers):
            d = &self.dense[i]
            d.fused_update = 0
            # a regularized kernel's gradient gets its penalty's after the backward
            if not fuse or d.kind != EPOCH_DENSE or d.dW == NULL or self._penalized(d.W) \
                    or not split_geometry_c(d.in_, d.units, cap, &per, &columns):
                continue
            size = d.in_ * d.units
            for r in range(n):
                off = <intptr_t>d.dW - <intptr_t>whole[r].g
                if off < 0 or off % elsize or off // elsize + size > whole[r].size:
                    continue
                off //= elsize
                if <char *>whole[r].p + off * elsize != <char *>d.W:
                    continue  # not this layer's kernel: leave it to the run's update
                d.kernel_run = _run_piece(whole[r], off, size, elsize)
                d.fused_update = 1
                holes[r].append((off, off + size))
                break
        pieces = []
        for r in range(n):
            lo = 0
            for start, end in sorted(holes[r]) + [(whole[r].size, whole[r].size)]:
                if start > lo:
                    pieces.append((r, lo, start))
                lo = end
        if len(pieces) > FASTNN_EPOCH_MAX_RUNS:  # too many to fuse: the runs as they are
            return self._fuse(whole, n, False)
        for i, (r, lo, end) in enumerate(pieces):
            self.e.runs[i] = _run_piece(whole[r], lo, end - lo, elsize)
        self.e.n_runs = len(pieces)

    @property
    def fused_layers(self):
        """The Dense layers whose kernel is updated during the backward (set_optimizer)."""
        return [i for i in range(self.e.n_layers) if self.dense[i].fused_update]

    def set_split(self, int n_threads):
        """The adaptive thread policy: Dense products big enough run in chunks
        (threads.split_geometry) on up to ``n_threads`` threads, one way or the other as
        measured (n_threads 1: on this thread); 0: the fixed policy, one BLAS call each."""
        if n_threads < 0:
            raise ValueError(f"EpochPlan.set_split: n_threads must be >= 0, got {n_threads}")
        self.e.split_threads = n_threads

    def choice(self, Py_ssize_t layer, int which):
        """The adaptive policy's state for product ``which`` of ``layer``, as a tuple (for
        set_choice: a later fit of the same shapes starts from what this one measured):
        (way, samples taken of each way, their times, expected, since, interval)."""
        if not 0 <= layer < self.e.n_layers or not 0 <= which < 3:
            raise IndexError(f"EpochPlan.choice: no product {which} of layer {layer}")
        cdef fastnn_split_choice *c = &self.dense[layer].choice[which]
        ways = range(EPOCH_SPLIT_WAYS)
        return (c.way, tuple(c.n[w] for w in ways),
                tuple(tuple(c.t[w][i] for i in range(EPOCH_SPLIT_SAMPLES)) for w in ways),
                c.expected, c.since, c.interval)

    def set_choice(self, Py_ssize_t layer, int which, tuple state):
        if not 0 <= layer < self.e.n_layers or not 0 <= which < 3:
            raise IndexError(f"EpochPlan.set_choice: no product {which} of layer {layer}")
        cdef fastnn_split_choice *c = &self.dense[layer].choice[which]
        way, n, t, expected, since, interval = state
        if not 0 <= way <= EPOCH_SPLIT_WAYS or len(n) != EPOCH_SPLIT_WAYS \
                or not all(0 <= k <= EPOCH_SPLIT_SAMPLES for k in n):
            raise ValueError(f"EpochPlan.set_choice: not a choice: {state}")
        c.way, c.expected, c.since, c.interval = way, expected, since, interval
        for w in range(EPOCH_SPLIT_WAYS):
            c.n[w] = n[w]
            for i in range(EPOCH_SPLIT_SAMPLES):
                c.t[w][i] = t[w][i]

    def set_pass(self, order, xb, yb, wb=None):
        """The pass's row order (an int64 permutation; None: in order, read in place) and
        the buffers the shuffled batches are gathered into (``wb``: the weights')."""
        if order is None:
            self.e.order = NULL
            return
        cdef Py_ssize_t b = self.e.batch_size
        self.e.order = <const int64_t *>_plan_ptr(order, np.int64, self.e.rows, "order", False)
        self.e.xb = _plan_ptr(xb, self.dtype, b * self.e.x_cols, "xb")
        self.e.yb = _plan_ptr(yb, np.int64 if self.e.y_labels else self.dtype,
                              b * self.e.y_cols, "yb")
        if self.e.w != NULL:
            self.e.wb = _plan_ptr(wb, self.dtype, b, "wb")
        self.keep.append((order, xb, yb, wb))
        del self.keep[6:-1]

    def run(self, Py_ssize_t first, Py_ssize_t count, lrs=None, int n_threads=1,
            int update_threads=1):
        """Batches [first, first + count) of the pass; ``lrs``: float64 per-step learning
        rates (None: the constant one). Raises IndexError for an order outside the data."""
        if first < 0 or count < 0 or (first + count - 1) * self.e.batch_size >= self.e.rows:
            raise ValueError(f"EpochPlan.run: batches [{first}, {first + count}) outside the "
                             "pass")
        self.e.lrs = NULL if lrs is None else <double *>_plan_ptr(
            lrs, np.float64, count, "lrs", False)
        self.e.n_threads, self.e.update_threads = max(n_threads, 1), max(update_threads, 1)
        cdef Py_ssize_t bad
        cdef bint f32 = self.dtype == np.float32
        with nogil:
            if f32:
                bad = epoch_steps_f32(&self.e, first, count)
            else:
                bad = epoch_steps_f64(&self.e, first, count)
        self.e.lrs = NULL
        if bad:
            raise IndexError(f"EpochPlan.run: row index at position {-1 - bad} of the order is "
                             f"outside [0, {self.e.rows})")

    @property
    def loss_total(self):
        return self.e.loss_total

    @property
    def seen(self):
        return self.e.seen

    @property
    def hits(self):
        """Each metric's hits so far this epoch."""
        return [self.e.metric_hits[i] for i in range(self.e.n_metrics)]

    @property
    def iterations(self):
        return self.e.iterations

    @property
    def u_product(self):
        """Nadam's u_1 * ... * u_t through the last step run (t: ``iterations``)."""
        return self.e.u_product

    def counter(self, Py_ssize_t layer):
        """The counter of the next mask of the Dropout at ``layer`` (advanced per step)."""
        if not 0 <= layer < self.e.n_layers:
            raise IndexError(f"EpochPlan.counter: no layer {layer}")
        return self.dense[layer].counter

    def set_stream(self, Py_ssize_t layer, seed, counter):
        """The random stream of the Dropout at ``layer``: its seed (drawn with its first mask)
        and the counter of its next mask (the layer's count of masks drawn)."""
        if not 0 <= layer < self.e.n_layers or self.dense[layer].kind != EPOCH_DROPOUT:
            raise IndexError(f"EpochPlan.set_stream: layer {layer} is not a Dropout")
        self.dense[layer].seed = int(seed) & 0xFFFFFFFFFFFFFFFF
        self.dense[layer].counter = int(counter) & 0xFFFFFFFFFFFFFFFF

    def reset_sums(self, int64_t iterations):
        """Start an epoch: no loss, rows or hits yet; the optimizer's step count."""
        self.e.loss_total, self.e.seen = 0.0, 0
        for i in range(FASTNN_EPOCH_MAX_METRICS):
            self.e.metric_hits[i] = 0
        self.e.iterations = iterations
