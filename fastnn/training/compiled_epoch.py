"""The compiled epoch: fit's steps run in C (csrc/epoch.c) for the common case, a
Sequential chain or a one-input, one-output graph (residual MLPs) of Dense, Activation,
Dropout, BatchNormalization and Add layers trained on in-memory arrays with a built-in loss
and optimizer and no callback that watches batches.

On small nets the Python loop costs more than the arithmetic (the tabular benchmark net:
~100k interpreter instructions per step around ~400k of kernels and BLAS). Here a step is
the same kernels and the same BLAS calls in the same order on the layers' own buffers, so the
weights, the loss and the metrics come out with the Python loop's bits; anything this does
not cover runs the Python loop. ``FASTNN_COMPILED_EPOCH=0`` in the environment (or
``compiled_epoch.enabled = False``) always runs the Python loop.

What is covered, checked once per fit by :func:`plan` (``reason`` says why not):
- the model: a ``Sequential``, or a functional graph with one input and one output (made by
  its last layer) calling each layer once, of Dense (any built-in activation, with or
  without bias, frozen or not), Activation and its subclasses ReLU, LeakyReLU, ELU, Softmax,
  Dropout (without noise_shape), trainable BatchNormalization (center and scale, last axis)
  and Add (two inputs) layers, one dtype, 2-D inputs; weight regularizers L1, L2 and L1L2
  (their penalties added to the loss and their gradients to the weights' after the backward,
  as Trainer._penalize_and_update does); no other regularizer, no activity regularizer or
  constraint. A graph's backward is fastnn/functional.py's: a tensor read twice gets its
  gradients summed into the first to arrive;
- the data: arrays already of the model's dtype (C-contiguous, in memory), with or without
  sample or class weights, no ``steps_per_epoch``; shuffled or not;
- the loss: the elementwise ones (MSE, MAE, Huber, binary cross-entropy, KL divergence,
  hinge), categorical cross-entropy, sparse categorical cross-entropy after a softmax layer
  or from logits;
- the metrics: none, or any of sparse categorical, categorical and binary accuracy (what
  "accuracy" picks for each loss);
- the optimizer: SGD (momentum, Nesterov), Adam (AMSGrad), AdamW, RMSprop, Adagrad, Adamax,
  Nadam, with weight decay, a constant learning rate or a schedule, and clipnorm,
  global_clipnorm or clipvalue (one of them, in Optimizer._update's priority; with clipnorm,
  at most EPOCH_MAX_RUNS variables, updated one by one as Python does; with
  global_clipnorm, at most EPOCH_MAX_RUNS variables summed for the norm); no EMA or
  gradient accumulation.

The steps run in chunks (about CHUNK_SECONDS of work each), between which the trainer's
duties return: the state lock is released so other threads' predict can run, a Ctrl-C
held by the step guard is raised, and ``stop_training`` is read.
"""
import os
import time

import numpy as np

from .. import (backend, losses as losses_module, metrics as metrics_module, regularizers,
               threads)
from ..layers.core import Activation, Dense
from ..layers.dropout import Dropout
from ..layers.merging import Add
from ..layers.normalization import BatchNormalization
from ..optimizers import base as optimizer_base
from ..optimizers.adagrad import Adagrad
from ..optimizers.adam import Adam, Adamax, AdamW, Nadam
from ..optimizers.rmsprop import RMSprop
from ..optimizers.sgd import SGD
from .data import ArrayData

enabled = os.environ.get("FASTNN_COMPILED_EPOCH", "1").strip() != "0"
# Dense kernels updated during the backward, where it pays (fit_epoch); False: always after
# it (the same bits; for benchmarks and diagnostics)
fuse_updates = True
# A chunk of steps takes about this long: short enough that predict in another thread and
# Ctrl-C wait little, long enough that the return to Python costs nothing measurable.
CHUNK_SECONDS = 0.02

# each rule the plan covers: its code (csrc/fastnn.h: enum fastnn_epoch_optimizer) and its
# state slots, in the order its kernel takes them (csrc/epoch.c: s1, s2, s3)
_ADAM_SLOTS = ("momentum", "velocity", "velocity_hat")
_NADAM = 5
_OPTIMIZERS = {SGD: (0, ("momentum",)), Adam: (1, _ADAM_SLOTS), AdamW: (1, _ADAM_SLOTS),
               RMSprop: (2, ("velocity", "momentum", "average_gradient")),
               Adagrad: (3, ("accumulator",)), Adamax: (4, ("momentum", "norm")),
               Nadam: (_NADAM, ("momentum", "velocity"))}
# csrc/fastnn.h: enum fastnn_epoch_clip
_CLIP_NONE, _CLIP_NORM, _CLIP_GLOBAL_NORM = range(3)
# the weight regularizers whose penalty and gradient the C loop computes (l1_l2_penalty)
_PENALTIES = (regularizers.L1, regularizers.L2, regularizers.L1L2)
_blas_state = None  # None: not tried; then True or False
# The adaptive policy's measured choice for each product shape, kept across fits as
# threads.AdaptivePolicy keeps its own (a fit of a few epochs would otherwise spend its
# first steps measuring again): {(m, k, n, dtype, transposes): EpochPlan.choice state}
_split_choices = {}


def bind_blas():
    """Bind numpy's BLAS for calls from C, once, and check that products from C give
    np.matmul's bits (gemm, gemv, dot and the outer-product loop, both dtypes, transposes).
    True when the compiled epoch may run."""
    global _blas_state
    if _blas_state is None:
        _blas_state = _bind()
    return _blas_state


def _bind():
    from .. import ops
    ck = ops._ckernels  # the extension, whichever backend runs now (bound once per process)
    if ck is None:
        return False
    found = threads.numpy_blas_functions()
    if found is None or not ck.blas_bind(*found[0], found[1]):
        return False
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        for m, n, k in ((37, 23, 19), (1, 23, 19), (37, 1, 19), (37, 23, 1), (1, 1, 19),
                        (1, 23, 1)):
            for ta in (False, True):
                for tb in (False, True):
                    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
                    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
                    a, b = (a.T if ta else a), (b.T if tb else b)
                    want = np.matmul(a, b)
                    got = ck.matmul(a, b, np.empty((m, n), dtype))
                    if not np.array_equal(want.view(np.uint8), got.view(np.uint8)):
                        return False
    return True


def _ckernels():
    from .. import ops
    return ops._ckernels if backend.ops.name == "c" else None


# csrc/fastnn.h: enum fastnn_epoch_op
_DENSE, _ACTIVATION, _DROPOUT, _BATCHNORM, _ADD = range(5)


def _dense(layer, batch, width, need_dx):
    act, units = layer.activation, layer.units
    z = layer._buffer("z", (batch, units))
    trained = layer.trainable  # as Dense.backward: a frozen layer gets no weight gradient
    return {"kind": _DENSE, "W": layer.kernel.value,
            "b": layer.bias.value if layer.use_bias else None,
            "dW": layer.kernel.grad if trained else None,
            "db": layer.bias.grad if trained and layer.use_bias else None,
            "Z": z, "Y": layer._buffer("y", (batch, units)) if act.needs_preactivation else z,
            "dX": layer._buffer("dx", (batch, width)) if need_dx else None,
            "act": act.code, "alpha": float(act.alpha), "preact": act.needs_preactivation,
            "fused_grad": bool(layer.fused_output_grad)}


def _activation(layer, batch, width, need_dx):
    act = layer.activation
    return {"kind": _ACTIVATION, "Y": layer._buffer("y", (batch, width)), "act": act.code,
            "alpha": float(act.alpha), "preact": act.needs_preactivation}


def _dropout(layer, batch, width, need_dx):
    scale = layer._affine()[0]
    return {"kind": _DROPOUT, "Y": layer._buffer("y", (batch, width)),
            "keep": layer._buffer("keep", (batch, width), np.uint8), "rate": float(layer.rate),
            "scale": float(scale), "seed": 0, "counter": layer._calls}


def _batchnorm(layer, batch, width, need_dx):
    return {"kind": _BATCHNORM, "Y": layer._buffer("y", (batch, width)),
            "eps": float(layer.epsilon), "momentum": float(layer.momentum),
            "gamma": layer.gamma.value, "beta": layer.beta.value, "dgamma": layer.gamma.grad,
            "dbeta": layer.beta.grad, "moving_mean": layer.moving_mean.value,
            "moving_variance": layer.moving_variance.value,
            "mean": layer._buffer("mean", (width,)), "invstd": layer._buffer("invstd", (width,))}




def _add(layer, batch, width, need_dx):
    return {"kind": _ADD, "Y": layer._buffer("y", (batch, width)),
            "dX": layer._buffer("dx1", (batch, width))}


_SPECS = {Dense: _dense, Activation: _activation, Dropout: _dropout,
          BatchNormalization: _batchnorm, Add: _add}


def _graph(model):
    """The model's layers as the plan's graph (the model's _epoch_graph), or Unsupported."""
    make = getattr(model, "_epoch_graph", None)
    _require(make is not None, "a model without a graph of layers")
    graph = make()
    _require(not isinstance(graph, str), graph)
    _require(graph, "no layers")
    return graph


def _product_keys(specs, rows):
    """The (m, k, n, dtype, which) of each Dense layer's three products at ``rows``."""
    keys = []
    for spec in specs:
        if spec["kind"] != _DENSE:
            keys.append(None)
            continue
        i, u = spec["W"].shape
        d = spec["W"].dtype.char
        keys.append(((rows, i, u, d, 0), (i, rows, u, d, 1), (rows, u, i, d, 2)))
    return keys


def _spec_builder(layer):
    """The builder for ``layer``'s entry in the plan, or None: the exact classes above, and
    Activation's subclasses (ReLU, LeakyReLU, ELU, Softmax) that keep its forward/backward."""
    kind = type(layer)
    if kind in _SPECS:
        return _SPECS[kind]
    if issubclass(kind, Activation) and kind.forward is Activation.forward \
            and kind.backward is Activation.backward and kind.call is Activation.call:
        return _activation
    return None


class Unsupported(Exception):
    """Why a fit runs the Python loop (the message)."""


def plan(model, train, mets):
    """The compiled epoch for this fit, or None (the reason is kept in
    ``model._compiled_epoch_reason`` for tests and diagnostics)."""
    try:
        result = CompiledEpoch(model, train, mets)
        model._compiled_epoch_reason = None
        model._compiled_epoch_split = result.split  # the adaptive policy's chunks
        return result
    except Unsupported as e:
        model._compiled_epoch_reason = str(e)
        return None


def _penalties(model):
    """Trainer._penalize_and_update's penalties: the trainable variables' L1/L2 factors, in its
    order, read each epoch as the Python loop reads them each step."""
    _require(all(type(v.regularizer) in _PENALTIES for v in model._regularized),
             "a weight regularizer other than L1, L2 and L1L2")
    return [{"w": v.value, "g": v.grad, "l1": v.regularizer.l1, "l2": v.regularizer.l2}
            for v in model._regularized]


def _require(condition, reason):
    if not condition:
        raise Unsupported(reason)


class CompiledEpoch:
    """The C plan of one fit's epochs (see the module docstring); ``fit_epoch`` runs one."""

    def __init__(self, model, train, mets):
        _require(enabled, "turned off (FASTNN_COMPILED_EPOCH=0)")
        graph = _graph(model)
        _require(_ckernels() is not None, "the NumPy backend runs")
        _require(bind_blas(), "no BLAS bound for calls from C")
        data = train.data
        _require(train.steps_per_epoch is None, "steps_per_epoch")
        _require(type(data) is ArrayData and data.direct and not data.mapped,
                 "data other than in-memory arrays of the model's dtype")
        _require(data.w is None or (data.w.dtype == data.dtype and data.w.flags.c_contiguous),
                 "sample weights of another form")
        x, y = data.x, data.y
        _require(isinstance(y, np.ndarray) and x.ndim == 2 and y.flags.c_contiguous,
                 "inputs or targets of another form")
        layers = [layer for layer, _ in graph]
        _require(model._layer_dtypes is None, "layers of several dtypes")
        dtype = np.dtype(layers[0].dtype) if layers else None
        _require(layers and x.dtype == dtype, "inputs of another dtype")
        for layer in layers:
            _require(_spec_builder(layer) is not None, "layers other than Dense, Activation, "
                     "Dropout, BatchNormalization and Add")
            act = getattr(layer, "activation", None)
            _require(act is None or (isinstance(getattr(act, "code", None), int)
                                     and 0 <= act.code < 16),
                     f"layer {layer.name!r}: an activation without a C kernel")
            _require(getattr(layer, "activity_regularizer", None) is None,
                     "an activity regularizer")
            if type(layer) is Dropout:
                _require(layer.noise_shape is None, "Dropout with a noise_shape")
                _require(layer.rate > 0, "Dropout(0)")
            if type(layer) is BatchNormalization:
                _require(layer.trainable and model.trainable, "a frozen BatchNormalization")
                _require(layer.gamma is not None and layer.beta is not None
                         and layer.axis in (-1, 1), "BatchNormalization without center, scale "
                         "or on another axis")
        for v in model.weights:
            _require(v.constraint is None, "a weight constraint")
            _require(v.regularizer is None or type(v.regularizer) in _PENALTIES,
                     "a weight regularizer other than L1, L2 and L1L2")
        most = _ckernels().EPOCH_MAX_PENALTIES
        _require(len(model._regularized) <= most, f"more than {most} regularized variables")
        loss = self._loss(model, y, dtype)
        self._metrics(mets, y, dtype)
        optimizer = self._optimizer(model)
        batch = min(data.batch_size, data.n)
        specs, self.dropouts, width = [], [], [x.shape[1]]
        for layer, links in graph:
            spec = _spec_builder(layer)(layer, batch, width[links["in0"]], links["need_dx"])
            spec.update(links)
            if spec["kind"] == _DROPOUT:
                self.dropouts.append((len(specs), layer))
            specs.append(spec)
            width.append(spec["Y"].shape[1])
        loss["grad"] = model._buffer("grad", (batch, width[-1]), dtype)
        self.optimizer = model.optimizer
        w = data.w
        scratch = None if w is None else model._buffer("row_loss", (batch,), np.float64)
        self.plan = _ckernels().EpochPlan(
            x, y, data.batch_size, specs, loss, optimizer, self.metric_kinds, w, scratch,
            None if w is None else np.empty(batch), _penalties(model))
        self.product_keys = _product_keys(specs, batch)
        # the adaptive policy's chunks of each product at a full batch (None: one call)
        self.split = [keys and tuple(threads.split_geometry(m, n, k) for m, k, n, _, _ in keys)
                      for keys in self.product_keys]
        self.splitting = False  # this epoch splits products over threads
        self.data = data
        self.chunk = 8

    # ---- what plan() checks ------------------------------------------------------------
    @staticmethod
    def _loss(model, y, dtype):
        loss = model.loss
        kind = type(loss)
        if kind is losses_module.SparseCategoricalCrossentropy:
            _require(model._fused or loss.from_logits,
                     "sparse cross-entropy after a layer other than softmax")
            _require(y.dtype == np.int64 and y.ndim == 1, "labels of another form")
            return {"kind": 2, "code": 0, "param": 1.0, "from_logits": loss.from_logits}
        _require(y.dtype == dtype and y.ndim == 2, "targets of another form")
        if kind is losses_module.CategoricalCrossentropy:
            if model._fused or loss.from_logits:
                return {"kind": 1, "code": 0, "param": 1.0, "from_logits": loss.from_logits}
            return {"kind": 0, "code": losses_module.LOSS_CODES["cce"], "param": 1.0,
                    "from_logits": False}
        _require(isinstance(loss, losses_module.Loss)
                 and kind.compute is losses_module.Loss.compute
                 and "compute" not in vars(loss), f"the loss {getattr(loss, 'name', loss)!r}")
        return {"kind": 0, "code": int(loss._code), "param": float(loss._param),
                "from_logits": False}

    def _metrics(self, mets, y, dtype):
        """[(kind, threshold)] of the plan's metrics, in the order of ``mets``: 1 sparse
        categorical accuracy (int64 labels), 2 categorical accuracy, 3 binary accuracy
        (float targets of the model's dtype; a threshold numpy compares in that dtype)."""
        labels = y.dtype == np.int64 and y.ndim == 1
        floats = y.dtype == dtype and y.ndim == 2
        self.metric_kinds = []
        for m in mets:
            kind = type(m)
            if kind is metrics_module.SparseCategoricalAccuracy and labels:
                self.metric_kinds.append((1, 0.0))
            elif kind is metrics_module.CategoricalAccuracy and floats:
                self.metric_kinds.append((2, 0.0))
            elif kind is metrics_module.BinaryAccuracy and floats \
                    and type(m.threshold) in (float, int):
                self.metric_kinds.append((3, float(m.threshold)))
            else:
                raise Unsupported(f"the metric {getattr(m, 'name', m)!r}")
        _require(len(self.metric_kinds) <= _ckernels().EPOCH_MAX_METRICS, "too many metrics")

    @staticmethod
    def _optimizer(model):
        """The optimizer's rule, packed runs and settings for EpochPlan.set_optimizer, as
        Optimizer.apply would use them now (read again each epoch: callbacks change
        settings, and excluding variables from weight decay splits the runs anew)."""
        opt = model.optimizer
        rule = _OPTIMIZERS.get(type(opt))
        _require(rule is not None, f"the optimizer {type(opt).__name__}")
        kind, slots = rule
        _require(not opt.gradient_accumulation_steps and not opt.use_ema,
                 "gradient accumulation or EMA")
        variables = model._train_vars
        _require(all(v.constraint is None for v in variables), "a constraint")
        most = _ckernels().EPOCH_MAX_RUNS
        # one clipping mode, in Optimizer._update's priority (falsy settings are off)
        clip, bound, clipvalue = _CLIP_NONE, float("inf"), float("inf")
        if opt.clipnorm:
            clip, bound = _CLIP_NORM, float(opt.clipnorm)
        elif opt.global_clipnorm:
            clip, bound = _CLIP_GLOBAL_NORM, float(opt.global_clipnorm)
        elif opt.clipvalue:
            clipvalue = float(opt.clipvalue)
        runs = []
        if variables and clip == _CLIP_NORM:
            # Optimizer.apply does not pack under clipnorm: one update per variable, each
            # scaled by its own norm, on the state arrays _apply_each would use
            _require(len(variables) <= most, f"clipnorm with more than {most} variables")
            _require(all(v.value.flags.c_contiguous and v.grad.flags.c_contiguous
                         for v in variables), "variables not C-contiguous")
            opt.build(variables)
            for v in variables:
                state = opt._state[id(v)]
                runs.append({"p": v.value, "g": v.grad, "decay": opt._use_weight_decay(v),
                             **{f"s{i + 1}": state.get(key) for i, key in enumerate(slots)}})
        elif variables:
            packed = opt._packed_groups(variables)
            _require(packed is not None and len(packed) <= most,
                     "variables not packed (or in too many runs)")
            for run in packed:
                runs.append({"p": run.value, "g": run.grad, "decay": bool(run.decay),
                             **{f"s{i + 1}": run.state.get(key) for i, key in enumerate(slots)}})
        settings = {"kind": kind, "runs": runs, "weight_decay": float(opt.weight_decay or 0.0),
                    "clipvalue": clipvalue, "clip": clip, "clip_norm": bound,
                    "nesterov": bool(getattr(opt, "nesterov", False))}
        if clip == _CLIP_GLOBAL_NORM:
            # the norm sums each variable's squares in turn, as _update: not the runs'
            _require(len(variables) <= most, f"global_clipnorm with more than {most} variables")
            settings["norm_grads"] = [v.grad for v in variables]
        if kind == _NADAM:
            settings["u_product"] = opt._u_product_at(opt.iterations)
        for key in ("beta_1", "beta_2", "epsilon", "momentum", "rho"):
            if hasattr(opt, key):
                settings[key] = float(getattr(opt, key))
        return settings

    # ---- one epoch -----------------------------------------------------------------------
    def _learning_rates(self, count):
        """None for a constant learning rate, else the rate of each of the next ``count``
        steps, as the optimizer computes it before each step."""
        opt = self.optimizer
        if type(opt._learning_rate) is float:
            self.plan.set_lr(opt._learning_rate)
            return None
        start = opt._iterations
        lrs = np.empty(count)
        try:
            for j in range(count):
                opt._iterations = start + j
                lrs[j] = float(opt.learning_rate)
        finally:
            opt._iterations = start
        return lrs

    def fit_epoch(self, model, train, mets):
        """One epoch, as Trainer._fit_epoch_unwatched runs it; returns its logs, or None
        (nothing run) when a callback changed the optimizer into something not covered."""
        data, plan, opt = self.data, self.plan, self.optimizer
        try:
            _require(model.optimizer is opt, "an optimizer replaced during fit")
            settings = self._optimizer(model)
            penalties = _penalties(model)  # a callback may have changed a factor
        except Unsupported as e:
            model._compiled_epoch_reason = str(e)
            return None
        train.out_of_data = False
        train._end_pass()
        data.on_epoch_begin()
        try:
            if data.shuffle:
                order = data.rng.permutation(data.n)  # as ArrayData.pass_batches draws it
                plan.set_pass(order, data._buffer("x", (data.batch_size,) + data.x.shape[1:],
                                                  data.dtype),
                              data._buffer("y", (data.batch_size,) + data.y.shape[1:],
                                           data.y.dtype),
                              None if data.w is None else data._buffer(
                                  "w", (data.batch_size,), data.w.dtype))
            else:
                plan.set_pass(None, None, None)
            for k, layer in self.dropouts:  # as the first forward draws it: after the order
                layer._draw_seed()
                plan.set_stream(k, layer._seed_value, layer._calls)
            plan.set_penalties(penalties)
            self._set_split()
            # Kernels updated in the backward by the threads that made their gradient's chunks
            # (the update shared, its blocks in cache): measured 0.77x (batch 32) and 0.94x
            # (batch 128) of the epoch on two threads, but 1.03-1.04x on one, so not there.
            settings["fuse"] = self.splitting and fuse_updates
            plan.set_optimizer(settings)
            model._compiled_epoch_fused = plan.fused_layers  # for tests and diagnostics
            steps, done = data.num_batches, 0
            plan.reset_sums(opt._iterations)
            # Nadam's schedule is written back with the step count (when there are steps)
            self.nadam = settings["kind"] == _NADAM and bool(settings["runs"])
            # as Optimizer._update's packed path; under clipnorm too (Python leaves the
            # threads to each kernel there): the same bits on any number of threads
            size = sum(run["p"].size for run in settings["runs"])
            update_threads = 1 if size < optimizer_base.PARALLEL_UPDATE_MIN else None
            while done < steps:
                count = min(self.chunk, steps - done)
                lrs = self._learning_rates(count)
                t0 = time.perf_counter()
                self._run(model, done, count, lrs, update_threads)
                dt = time.perf_counter() - t0
                done += count
                if dt < CHUNK_SECONDS / 2:
                    self.chunk = min(self.chunk * 2, 1 << 16)
                elif dt > CHUNK_SECONDS * 2 and self.chunk > 1:
                    self.chunk //= 2
                if model.stop_training:
                    break
        finally:
            # a worker late with a product's chunk may still read the model's arrays
            _ckernels().matmul_split_quiesce()
            data.on_epoch_end()
            self._keep_choices()
        per_row = data.y.shape[1] if data.y.ndim == 2 else 1
        for m, (kind, _), hits in zip(mets, self.metric_kinds, plan.hits):
            m.total += float(hits)  # counts: the same sum as the Python loop's per step
            m.count += plan.seen * (per_row if kind == 3 else 1)
        return model._logs(plan.loss_total / max(plan.seen, 1), mets)

    def _set_split(self):
        """Under the adaptive thread policy, Dense products big enough run in chunks, split
        over fastnn's threads or not as measured; the policy is read each epoch as
        threads.AdaptivePolicy.matmul reads it per call: the thread ceiling, and the BLAS's
        own threads (a user's threadpoolctl limit on it means one call each, on its pool)."""
        policy = threads._policy
        n = 0
        if policy is not None and policy.blas_threads() == 1:
            n = policy.ceiling() if threads.blas().splittable else 1
        self.plan.set_split(n)
        self.splitting = n > 1
        if n > 1:
            for layer, keys in enumerate(self.product_keys):
                for which, key in enumerate(keys or ()):
                    if key in _split_choices:
                        self.plan.set_choice(layer, which, _split_choices[key])

    def _keep_choices(self):
        """What this epoch measured, for the next fits of the same shapes."""
        if not self.splitting:
            return
        for layer, keys in enumerate(self.product_keys):
            for which, key in enumerate(keys or ()):
                if self.split[layer][which]:
                    _split_choices[key] = self.plan.choice(layer, which)

    def _run(self, model, first, count, lrs, update_threads):
        """A chunk of steps, as Trainer._train_step runs one: under the state lock, and a
        Ctrl-C during it raised when it is done, and what Python keeps of the steps (the
        optimizer's step count, the dropout layers' mask counts) written back inside it."""
        guard, plan = model._step_guard, self.plan
        if guard is not None:
            guard.in_step = True
        nt = _ckernels().call_threads()
        lock = model._state_lock
        lock.acquire_write()
        try:
            plan.run(first, count, lrs, nt, update_threads or nt)
            self.optimizer._iterations = plan.iterations
            if self.nadam:  # as _prepare_step leaves them after the chunk's last step
                self.optimizer._u_product, self.optimizer._u_step = (plan.u_product,
                                                                     plan.iterations)
            for k, layer in self.dropouts:
                layer._calls = plan.counter(k)
        finally:
            lock.release_write()
        if guard is not None:
            guard.in_step = False
            if guard.pending:
                guard.end_step()
