"""The trainer: compile / fit / evaluate / predict / train_on_batch / test_on_batch /
predict_on_batch and the training step, as Keras 3's ``Trainer`` (keras/src/trainers/).

``Trainer`` is a base class of the models: a model holds its layers and supplies

- ``_forward(x, training)`` -> outputs, every layer into its own buffers;
- ``_backward(grad)``: the output gradient back through the layers, down to the lowest
  trainable one (``_prepare_backward()`` decides which, once per fit);
- ``_dtype`` / ``_out_dtype`` (inputs' and outputs' dtypes), ``_input_shape``,
  ``output_shape``, ``build()``, ``_unique_layers()``, ``_output_layer``, ``weights``;

and the trainer runs the loop: batches from fastnn.training.data through
fastnn.training.epoch_iterator, the loss kernel, the optimizer, metrics and callbacks.
"""
import copy
import math
import threading
import time

import numpy as np

from .. import backend, callbacks as callbacks_module, losses, metrics as metrics_module, optimizers
from ..layers.base import buffer_set, is_symbolic, pack_variables
from . import arguments, compiled_epoch
from .concurrency import Pool, RWLock, StepGuard
from .data import (ArrayData, ArraysData, GeneratorData, PyDatasetData, batch_rows, convert,
                   input_array, is_array_like, is_py_dataset, numbers)
from .epoch_iterator import EpochIterator
from .outputs import Heads


class Trainer:
    """The training half of a model (see the module docstring)."""

    def _init_trainer(self):
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self._compiled = False
        self._metric_specs = []
        self._heads = None  # the per-output settings of a model with several outputs
        self._buffers = {}
        self._init_concurrency()

    def _init_concurrency(self):
        """The model's guards for use from several threads (fastnn.training.concurrency)."""
        self._state_lock = RWLock()       # steps write, inference chunks read
        # inference's work arrays, one set a thread; never the layers' own, which the
        # training step (and its metrics, computed after the step) use
        self._buffer_sets = Pool({}, dict)
        self._metric_sets = Pool(self.compiled_metrics, self._metric_copies)
        self._trainer_thread = None       # the thread training this model, and its depth
        self._trainer_depth = 0
        self._step_guard = None
        # the compiled epoch of the running fit (compiled_epoch.plan), and the data it was
        # planned for (planned once per fit, also when it came out None)
        self._epoch_plan = self._epoch_plan_tried = None

    def _metric_copies(self):
        return [copy.deepcopy(m) for m in self.compiled_metrics]

    _TRAINING_CLAIM = threading.Lock()

    def _claim_training(self, what):
        """Only one thread trains a model at a time (its optimizer state, gradients and
        training buffers are one set): another thread's fit/train_on_batch is a clear error."""
        me = threading.get_ident()
        with Trainer._TRAINING_CLAIM:
            if self._trainer_thread not in (None, me):
                raise RuntimeError(
                    f"{what}: model {self.name!r} is being trained in another thread; fastnn "
                    "trains one model from one thread at a time (predict and evaluate may run "
                    "in other threads meanwhile). Train a copy (copy.deepcopy) in parallel.")
            self._trainer_thread = me
            self._trainer_depth += 1

    def _release_training(self):
        with Trainer._TRAINING_CLAIM:
            self._trainer_depth -= 1
            if not self._trainer_depth:
                self._trainer_thread = None

    # ---- compile ------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1, jit_compile="auto",
                auto_scale_loss=True):
        """compile(optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
        weighted_metrics=None, run_eagerly=False, steps_per_execution=1, jit_compile="auto",
        auto_scale_loss=True)

        Configure training: an optimizer, a loss and metrics (names or objects). The
        arguments come in Keras 3's order (``loss_weights`` third, ``metrics`` fourth), so
        positional calls written for Keras 3 mean the same here. For a model with several
        outputs, ``loss``, ``loss_weights`` and ``metrics`` may be one value for every output,
        a list in the outputs' order or a dict by output name (fastnn.training.outputs); a
        model with one output takes no ``loss_weights``. ``weighted_metrics`` must be None;
        the compilation switches (``run_eagerly``, ``steps_per_execution``, ``jit_compile``,
        ``auto_scale_loss``) are accepted and have nothing to switch in fastnn."""
        if weighted_metrics is not None:
            raise NotImplementedError("fastnn: weighted_metrics are not supported (sample "
                                      "weights weigh the loss only)")
        if self._output_names is not None:
            self._compile_heads(optimizer, loss, loss_weights, metrics)
            return
        if loss_weights is not None:
            raise ValueError(f"compile: loss_weights is for models with several outputs; model "
                             f"{self.name!r} has one")
        self._heads = None
        self.optimizer = optimizers.get(optimizer)
        self.loss = losses.get(loss)
        if isinstance(metrics, dict):
            raise ValueError("fastnn models have one output: metrics must be a list (e.g. "
                             f"metrics=['accuracy']), got a dict {metrics!r}")
        self._metric_specs = list(metrics or [])
        if isinstance(metrics, (str, metrics_module.Metric)):
            self._metric_specs = [metrics]
        self.compiled_metrics = []
        self._compiled = True
        if self.built:
            self._make_metrics()

    def _compile_heads(self, optimizer, loss, loss_weights, metrics):
        heads = Heads.from_compile(self.name, self._output_names, loss, loss_weights, metrics)
        self.optimizer = optimizers.get(optimizer)
        self._heads, self.loss = heads, list(heads.losses)
        self._metric_specs = []
        self.compiled_metrics = []
        self._compiled = True
        self._make_metrics()

    def get_compile_config(self):
        """The compile() arguments as given (Keras 3: what save() records), or None before
        compile. With several outputs: ``loss``, ``loss_weights`` and ``metrics`` per output."""
        if not self._compiled:
            return None
        if self._heads is not None:
            return {"optimizer": self.optimizer, **self._heads.compile_config()}
        return {"optimizer": self.optimizer, "loss": self.loss, "metrics": list(self._metric_specs)}

    @property
    def compiled(self):
        """True once compile() was called (fastnn: what save() and the tools check)."""
        return self._compiled

    def _make_metrics(self):
        if self._heads is not None:
            self.compiled_metrics = self._heads.make_metrics(self.output_shape)
        else:
            out_dim = self.output_shape[-1]
            self.compiled_metrics = [metrics_module.get(m, self.loss, out_dim)
                                     for m in self._metric_specs]
        self._metric_sets = Pool(self.compiled_metrics, self._metric_copies)

    def _check_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"You must call compile() before {what}() on model {self.name!r}")

    # ---- data ---------------------------------------------------------------------------
    def _ensure_built(self, x_shape):
        if self._input_shape is None:
            self._input_shape = (None,) + tuple(x_shape[1:])
        if not self.built:
            self.build()

    def _input_where(self):
        first = self.layers[0].name if self.layers else self.name
        return f"layer {first!r} of model {self.name!r}"

    # A graph with several inputs sets these: the inputs' names (the order of a list of
    # arrays; the keys of a dict) and shapes.
    _input_names = None
    _input_shapes = None
    # A graph with several outputs sets their names (fastnn.training.outputs)
    _output_names = None
    # A graph on raw columns runs this FeatureSpace on them first (fastnn.feature_space)
    _feature_space = None

    def _inputs(self, x, name="x"):
        """``x`` checked as this model's input (model built from it), dtype unchanged; for a
        model with several inputs, a list of arrays in the inputs' order."""
        if self._feature_space is not None:
            x = self._encoded(x)
        if self._input_names is not None:
            return self._several_inputs(x, name)
        x = input_array(x, name, self._input_shape, self._input_where())
        self._ensure_built(x.shape)
        return x

    def _encoded(self, x):
        """Raw columns (a dict or a DataFrame) through the model's feature space; an array
        is taken as already encoded."""
        if isinstance(x, (np.ndarray, list)):
            return x
        fs = self._feature_space
        out = fs(x)
        return [out[n] for n in fs._order()] if isinstance(out, dict) else out

    def _several_inputs(self, x, name):
        names = self._input_names
        if isinstance(x, dict):
            missing = [n for n in names if n not in x]
            unknown = [k for k in x if k not in names]
            if missing or unknown:
                raise ValueError(f"{name}: model {self.name!r} has the inputs {names}; "
                                 + (f"no data for {missing}" if missing else "")
                                 + ("; " if missing and unknown else "")
                                 + (f"unknown name(s) {unknown}" if unknown else ""))
            parts = [x[n] for n in names]
        elif isinstance(x, (list, tuple)) and len(x) == len(names):
            parts = list(x)
        else:
            what = f"a list of {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
            raise ValueError(f"{name}: model {self.name!r} has {len(names)} inputs {names}: "
                             f"pass a list (or tuple) of {len(names)} arrays in that order, or a "
                             f"dict {{input name: array}}; got {what}")
        xs = [input_array(p, f"{name}[{n!r}]", shape, f"input {n!r} of model {self.name!r}")
              for p, n, shape in zip(parts, names, self._input_shapes)]
        if len({len(p) for p in xs}) > 1:
            raise ValueError(f"{name}: the inputs have different numbers of rows "
                             f"{dict(zip(names, (len(p) for p in xs)))}")
        return xs

    def _targets(self, y, n, what, name="y", x_name="x"):
        if y is None:
            raise ValueError(f"{what}() needs targets y")
        if self._heads is not None:
            return self._heads.prepare_targets(y, self.output_shape, self._out_dtypes, n, what,
                                               name, x_name)
        y = self.loss.prepare_targets(y, self.output_shape, self._out_dtype)
        if len(y) != n:
            raise ValueError(f"{x_name} has {n} samples but {name} has {len(y)}")
        return y

    def _array_data(self, x, y, sample_weight, class_weight, what, batch_size, shuffle=False,
                    name="x", targets=True):
        """ArrayData for arrays: inputs checked (not converted), targets and weights prepared."""
        x = self._inputs(x, name)
        n = batch_rows(x)
        y_given = y
        y = self._targets(y, n, what, name.replace("x", "y"), name) if targets else None
        w = self._sample_weights(sample_weight, class_weight, y_given, n, what) if targets else None
        if not isinstance(x, list):
            return ArrayData(x, y, w, self._dtype, name, batch_size, shuffle, backend.rng())
        return ArraysData([ArrayData(xi, y if i == 0 else None, w if i == 0 else None,
                                     self._dtype, f"{name}[{self._input_names[i]!r}]",
                                     batch_size, shuffle, backend.rng())
                           for i, xi in enumerate(x)])

    def _stream_data(self, x, what, shuffle=False, class_weight=None, targets=True):
        """GeneratorData / PyDatasetData whose batches are prepared as they come; the model
        is built from the first batch when it does not know its input yet."""
        data = PyDatasetData(x, shuffle, backend.rng()) if is_py_dataset(x) else GeneratorData(x)
        source = type(x).__name__ if is_py_dataset(x) else "the generator"

        def prepare(raw, index):
            name = f"x (batch {index} of {source})"
            if isinstance(raw, list):
                raw = tuple(raw)
            if not isinstance(raw, tuple):
                if targets:
                    raise ValueError(f"{what}: {source} must yield tuples (x, y) or (x, y, "
                                     f"sample_weight); batch {index} is a {type(raw).__name__}")
                raw = (raw,)
            if not 1 <= len(raw) <= 3:
                raise ValueError(f"{what}: batch {index} of {source} has {len(raw)} elements; "
                                 "expected (x,), (x, y) or (x, y, sample_weight)")
            xb = self._inputs(raw[0], name)
            if isinstance(xb, list):
                xb = [convert(xi, self._dtype, f"{name}[{i}]", buffers=data.buffers.setdefault(i, {}))
                      for i, xi in enumerate(xb)]
            else:
                xb = convert(xb, self._dtype, name, buffers=data.buffers)
            if not targets:
                return xb, None, None
            if len(raw) < 2 or raw[1] is None:
                raise ValueError(f"{what}() needs targets: batch {index} of {source} has none")
            try:
                yb = self._targets(raw[1], batch_rows(xb), what, f"y (batch {index} of {source})")
                wb = self._sample_weights(raw[2] if len(raw) == 3 else None, class_weight,
                                          raw[1], batch_rows(xb), f"{what} (batch {index} of {source})")
            except (ValueError, TypeError) as e:
                raise type(e)(f"batch {index} of {source}: {e}") from e
            return xb, yb, wb
        data.prepare = prepare
        if not self.built or self._input_shape is None:
            raw = data.peek()
            first = raw[0] if isinstance(raw, (tuple, list)) else raw
            self._inputs(first, f"x (batch 0 of {source})")
        return data

    def _data(self, x, y, sample_weight, class_weight, what, batch_size, shuffle=False,
              targets=True):
        if is_array_like(x):
            return self._array_data(x, y, sample_weight, class_weight, what, batch_size, shuffle,
                                    targets=targets)
        if y is not None or sample_weight is not None:
            raise ValueError(f"{what}: y and sample_weight must not be given with a generator or "
                             "a PyDataset (its batches carry them)")
        return self._stream_data(x, what, shuffle, class_weight, targets)

    def _sample_weights(self, sample_weight, class_weight, y, n, what):
        """Per-sample weights from ``sample_weight`` (n,) and/or ``class_weight`` {class:
        weight} (classes from the targets as given: labels, one-hot argmax, or rounded values),
        as one array of the model's dtype; None when neither is given."""
        if sample_weight is None and class_weight is None:
            return None
        if class_weight is not None and self._heads is not None:
            raise ValueError(f"{what}: class_weight is only supported for models with a single "
                             f"output; model {self.name!r} has {len(self._heads.names)} (pass "
                             "sample_weight)")
        w = np.ones(n, np.float64)
        if sample_weight is not None:
            sw = np.asarray(sample_weight)
            if sw.dtype.kind not in "biuf":
                raise TypeError(f"{what}: sample_weight must be numeric, got dtype {sw.dtype}")
            sw = sw.astype(np.float64)
            if sw.ndim == 2 and sw.shape[1] == 1:
                sw = sw[:, 0]
            if sw.shape != (n,):
                raise ValueError(f"{what}: sample_weight has shape {np.shape(sample_weight)}, "
                                 f"expected ({n},): one weight per sample")
            w *= sw
        if class_weight is not None:
            w *= self._class_weights(class_weight, y, what)
        if not backend.ops.all_finite(w) or np.any(w < 0):
            raise ValueError(f"{what}: sample/class weights must be finite and >= 0")
        # finite in float64 is not enough: 1e300 becomes inf in a float32 model (NaN loss)
        limit = min(np.finfo(self._dtype).max, np.finfo(self._out_dtype).max)
        if w.size and w.max() > limit:
            raise ValueError(f"{what}: sample/class weights must be finite in the model's dtype "
                             f"(at most {limit:.4g}), got {w.max():.4g}")
        return np.ascontiguousarray(w, dtype=self._dtype)

    @staticmethod
    def _class_weights(class_weight, y, what):
        """Each sample's weight from ``class_weight`` (as Keras: class_weight.get(label, 1))."""
        if not isinstance(class_weight, dict) or not class_weight:
            raise ValueError(f"{what}: class_weight must be a non-empty dict {{class index: "
                             f"weight}}, got {class_weight!r}")
        # the classes of the targets as the user gave them (validated by the loss already):
        # a loss's own transform (hinge's 0/1 -> -1/1) must not move them
        y = numbers(np.asarray(y))
        if y.ndim == 2 and y.shape[1] > 1:
            labels = np.argmax(y, axis=1)
        else:
            labels = np.round(y.reshape(len(y))).astype(np.int64)
        table = {}
        for k, v in class_weight.items():
            if not isinstance(k, (int, float, np.integer, np.floating)) or isinstance(k, bool) \
                    or not math.isfinite(k) or k != int(k) or k < 0:
                raise ValueError(f"{what}: class_weight keys must be class indices >= 0, got "
                                 f"{k!r} in {sorted(map(repr, class_weight))}")
            try:
                table[int(k)] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{what}: class_weight[{k!r}] must be a number, got {v!r}") from None
        classes, inverse = np.unique(labels, return_inverse=True)
        return np.array([table.get(int(c), 1.0) for c in classes], np.float64)[inverse]

    # ---- one step -------------------------------------------------------------------------
    def _buffer(self, key, shape, dtype):
        buf = self._buffers.get(key)
        if buf is not None and buf.shape == shape and buf.dtype == dtype:
            return buf  # every full batch: one comparison
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] or buf.dtype != dtype:
            buf = np.empty(shape, dtype)
            self._buffers[key] = buf
        return buf if buf.shape[0] == shape[0] else buf[:shape[0]]

    def _prepare_training(self):
        """Per fit: the trainable variables, the fused softmax/cross-entropy decision,
        optimizer state, and the model's backward plan. Nothing here runs per step.
        (Packing moves the weights into one buffer: inference in other threads waits.)"""
        with self._state_lock.writing():
            self._prepare_locked()

    def _prepare_locked(self):
        self._prepare_backward()
        if self._heads is not None:
            self._head_losses = np.zeros(len(self._heads.names))
            for i, (layer, alone) in enumerate(self._output_layers):
                loss = self._heads.losses[i]
                self._heads.fused[i] = bool(
                    alone and loss is not None and self._fusable(layer, loss))
                if self._heads.fused[i]:
                    layer.fused_output_grad = True
        else:
            last = self._output_layer
            self._fused = self._fusable(last, self.loss)
            if self._fused:
                last.fused_output_grad = True
        seen = set()
        self._train_vars = []
        if self.trainable:
            for layer in self._unique_layers():
                for v in layer.trainable_weights:
                    if id(v) not in seen:
                        seen.add(id(v))
                        self._train_vars.append(v)
        if self._train_vars and len({v.value.dtype for v in self._train_vars}) == 1:
            pack_variables(self._train_vars)  # one optimizer call per step, not one per weight
        self._regularized = [v for v in self._train_vars if v.regularizer is not None]
        self._activity_layers = [layer for layer in self._unique_layers()
                                 if getattr(layer, "activity_regularizer", None) is not None]
        self.optimizer.build(self._train_vars)

    def _train_step(self, xb, yb, wb=None):
        """One step, whole or not at all for anyone watching: other threads' inference waits
        for it (the state lock), and a Ctrl-C during it is raised when it is done."""
        guard = self._step_guard
        if guard is not None:
            guard.in_step = True
        lock = self._state_lock
        lock.acquire_write()
        try:
            result = self._step(xb, yb, wb)
        finally:
            lock.release_write()
        if guard is not None:
            guard.in_step = False  # guard.end_step(), inlined: it runs every step
            if guard.pending:
                guard.end_step()
        return result

    @staticmethod
    def _fusable(layer, loss):
        act = getattr(layer, "activation", None)
        return bool(loss.fuses_softmax and not getattr(loss, "from_logits", False)
                    and hasattr(layer, "fused_output_grad") and act is not None
                    and act.name == "softmax")

    def _step(self, xb, yb, wb=None):
        """Forward, loss + output gradient, backward, optimizer. Returns (mean loss, outputs).
        ``wb``: per-sample weights (Keras: the loss is sum(w_i * loss_i) / batch size)."""
        if self._heads is not None:
            return self._step_heads(xb, yb, wb)
        out = self._forward(xb, True)
        # 2-D outputs (the common case) are used as they are: no new array object per step
        out2 = out if out.ndim == 2 else out.reshape(out.shape[0], -1)
        grad = self._buffer("grad", out2.shape, out2.dtype)
        n = out2.shape[0]  # the batch's rows
        rows = None if wb is None else self._buffer("row_loss", (n,), np.float64)
        loss = self._batch_loss(self.loss, out2, yb, grad, self._fused, wb, rows) / n
        self._backward(grad if out is out2 else grad.reshape(out.shape))
        return self._penalize_and_update(loss), out2

    def _penalize_and_update(self, loss):
        """``loss`` plus the regularization penalties (their gradients added to the weights'
        in the same pass), after which the optimizer takes its step."""
        for v in self._regularized:  # penalty + gradient in one pass (regularizers.py)
            loss += v.regularizer.penalty_and_gradient(v.value, v.grad)
        for layer in self._activity_layers:  # set by the layer's forward (Keras 3 rule)
            loss += layer._activity_loss
        if self._train_vars:
            self.optimizer.apply(self._train_vars)
        return loss

    def _step_heads(self, xb, yb, wb):
        """_step for several outputs: sum_i w_i * loss_i, each output's gradient scaled by its
        weight; each output's own loss is left in ``_head_losses``."""
        heads, n = self._heads, batch_rows(xb)
        raw = self._forward(xb, True)
        outs = [o.reshape(o.shape[0], -1) for o in raw]
        grads, loss = [], 0.0
        for i, (out2, y) in enumerate(zip(outs, yb)):
            grad = self._buffer(f"grad{i}", out2.shape, out2.dtype)
            head_loss = heads.losses[i]
            if head_loss is None:  # an output without a loss: no gradient from it
                grad[...] = 0
                self._head_losses[i] = 0.0
            else:
                rows = None if wb is None else self._buffer("row_loss", (n,), np.float64)
                self._head_losses[i] = self._batch_loss(head_loss, out2, y, grad, heads.fused[i],
                                                        wb, rows) / n
                if heads.weights[i] != 1.0:
                    grad *= heads.weights[i]
                loss += heads.weights[i] * self._head_losses[i]
            grads.append(grad)
        self._backward([g.reshape(o.shape) for g, o in zip(grads, raw)])
        return self._penalize_and_update(loss), outs

    @staticmethod
    def _batch_loss(loss, out2, y, grad, fused, wb, rows=None):
        """The sum over the batch's rows of ``loss`` (weighted by ``wb``, the row losses then
        going through ``rows``, float64 scratch of the batch's length); its gradient (rows
        scaled by ``wb``) into ``grad`` unless ``grad`` is None."""
        if wb is None:
            return loss.compute(out2, y, grad, fused)
        loss.compute(out2, y, grad, fused, rows)
        if grad is not None:  # each row's gradient depends on its own row: weighting is exact
            np.multiply(grad, wb[:, None], out=grad)
        return float(np.dot(rows, wb))

    def _regularization_loss(self):
        return sum(v.regularizer(v.value) for v in self.weights if v.regularizer is not None)

    def _logs(self, loss, mets, head_losses=None):
        logs = {"loss": float(loss)}
        if head_losses is not None:  # Keras: each trained output's own (unweighted) loss
            for name, value, loss in zip(self._heads.names, head_losses, self._heads.losses):
                if loss is not None:
                    logs[f"{name}_loss"] = float(value)
        for m in mets:
            logs[m.name] = float(m.result())
        return logs

    # ---- fit ------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs of mini-batches (``batch_size=len(x)`` is full-batch
        gradient descent, ``batch_size=1`` pure SGD). Returns a History.

        ``x`` may be arrays (NumPy, memory-mapped, uint8, array-likes), a Python generator
        of ``(x, y)`` / ``(x, y, sample_weight)`` tuples, or a fastnn.utils.PyDataset."""
        self._check_compiled("fit")
        batch_size = arguments.batch_size(batch_size)
        arguments.nonnegative_int(epochs, "epochs")
        arguments.nonnegative_int(initial_epoch, "initial_epoch")
        split = arguments.validation_split(validation_split)
        val_batch = arguments.positive_int_or_none(validation_batch_size, "validation_batch_size")
        steps_per_epoch = arguments.positive_int_or_none(steps_per_epoch, "steps_per_epoch")
        validate_now = arguments.validation_freq(validation_freq)
        verbose = arguments.verbosity(verbose)
        self._claim_training("fit")
        guard, self._step_guard = self._step_guard, StepGuard()
        train = val = data = None
        try:  # whatever happens, the data's files and workers are closed
            data = self._data(x, y, sample_weight, class_weight, "fit", batch_size, shuffle)
            data, val = self._validation(data, split, validation_data, sample_weight, y,
                                         validation_steps, val_batch or batch_size)
            train = EpochIterator(data, steps_per_epoch)
            self._prepare_training()
            cb, history = self._fit_callbacks(callbacks, verbose, epochs, train.num_batches)
            self.stop_training, self.history = False, history
            cb.on_train_begin()
            epoch_logs = {}
            self._step_guard.__enter__()
            for epoch in range(initial_epoch, epochs):
                cb.on_epoch_begin(epoch)
                epoch_logs = self._fit_epoch(train, epoch, cb)
                if train.out_of_data:
                    if epoch == initial_epoch:
                        raise ValueError("fit: the data yielded no batch (an empty or "
                                         "exhausted generator?)")
                    break
                cb.params["steps"] = train.num_batches  # a generator's, once learned
                if val is not None and validate_now(epoch):
                    val_logs = self._evaluate_data(val, cb)
                    if val_logs is not None:  # None: a validation generator read to its end
                        epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
                epoch_logs["learning_rate"] = float(self.optimizer.learning_rate)
                cb.on_epoch_end(epoch, epoch_logs)
                if self.stop_training:
                    break
            if epochs > initial_epoch and hasattr(self.optimizer, "finalize_variable_values"):
                # as Keras 3: with use_ema the weights become their moving averages
                with self._state_lock.writing():
                    self.optimizer.finalize_variable_values(self.trainable_weights)
        finally:
            self._step_guard.__exit__()
            self._step_guard = guard
            self._epoch_plan = self._epoch_plan_tried = None
            self._release_training()
            for source in (train or data, val):
                if source is not None:
                    source.close()
        cb.on_train_end(epoch_logs)
        return history

    def _fit_callbacks(self, callbacks, verbose, epochs, steps):
        cbs = [callbacks] if isinstance(callbacks, callbacks_module.Callback) else list(callbacks or [])
        history = callbacks_module.History()
        cbs.append(history)
        if verbose:
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose}
        return callbacks_module.CallbackList(cbs, self, params), history

    def _fit_epoch(self, train, epoch, cb):
        """One epoch of training steps; returns its logs (loss and metrics)."""
        with self._metric_sets.take() as mets:
            return self._fit_epoch_with(train, epoch, cb, mets)

    def _fit_epoch_with(self, train, epoch, cb, mets):
        for m in mets:
            m.reset_state()
        t0 = time.perf_counter()
        if not cb.wants_batches and self._heads is None:
            # the compiled epoch (C, same bits) when the fit is one it covers, planned once
            # per fit with the epoch's metric objects
            compiled = self._epoch_plan
            if compiled is None and self._epoch_plan_tried is not train:
                self._epoch_plan_tried = train
                compiled = self._epoch_plan = compiled_epoch.plan(self, train, mets)
            logs = None if compiled is None else compiled.fit_epoch(self, train, mets)
            if logs is None:  # not compiled (this epoch: a callback may have changed that)
                logs = self._fit_epoch_unwatched(train, epoch, mets)
            self._last_epoch_seconds = time.perf_counter() - t0
            return logs
        loss_total, seen = 0.0, 0
        heads = None if self._heads is None else np.zeros(len(self._heads.names))
        for step, (xb, yb, wb) in train.epoch(epoch):
            if cb.wants_batches:
                cb.on_train_batch_begin(step)
            loss, out = self._train_step(xb, yb, wb)
            nb = batch_rows(xb)
            loss_total += loss * nb
            seen += nb
            if heads is not None:
                heads += self._head_losses * nb
            for m in mets:
                m.update_state(yb, out)
            if cb.wants_batches:
                cb.on_train_batch_end(step, self._logs(
                    loss_total / seen, mets, None if heads is None else heads / seen))
            if self.stop_training:
                break
        self._last_epoch_seconds = time.perf_counter() - t0
        return self._logs(loss_total / max(seen, 1), mets,
                          None if heads is None else heads / max(seen, 1))

    def _fit_epoch_unwatched(self, train, epoch, mets):
        """The loop of _fit_epoch_with when no callback watches batches and the model has one
        output: the same steps, sums and metric updates in the same order (the same bits),
        with what the general loop looks up per step looked up once. A callback may still
        stop training from another thread or at the epoch's end, so stop_training is read
        each step, as there."""
        train_step = self._train_step
        updates = [m.update_state for m in mets]
        loss_total, seen = 0.0, 0
        for _, (xb, yb, wb) in train.epoch(epoch):
            loss, out = train_step(xb, yb, wb)
            nb = len(out)  # the batch's rows (out is the step's 2-D output)
            loss_total += loss * nb
            seen += nb
            for update in updates:
                update(yb, out)
            if self.stop_training:
                break
        return self._logs(loss_total / max(seen, 1), mets)

    def _validation(self, data, split, validation_data, sample_weight, y, steps, batch_size):
        """(training data, EpochIterator over the validation data or None)."""
        val = None
        if validation_data is None and split:
            if not isinstance(data, ArrayData):
                raise ValueError("validation_split is only supported for arrays, not for a "
                                 "generator or a PyDataset: pass validation_data")
            n_val = int(math.floor(data.n * split))
            if n_val == 0 or n_val == data.n:
                raise ValueError(f"validation_split={split} leaves no training or no "
                                 f"validation samples out of {data.n}")
            data, val = data.split(n_val)
            # as Keras: the split takes the sample weights along, but not class_weight
            val.w = None if sample_weight is None else self._sample_weights(
                sample_weight, None, y, data.n + n_val, "fit")[-n_val:]
        elif validation_data is not None:
            if is_array_like(validation_data) and not isinstance(validation_data, (tuple, list)) \
                    or isinstance(validation_data, (tuple, list)) and len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val) or (x_val, "
                                 "y_val, sample_weight_val) of arrays, a generator or a PyDataset, "
                                 f"got {type(validation_data).__name__}")
            if isinstance(validation_data, (tuple, list)):
                vx, vy = validation_data[:2]
                vw = validation_data[2] if len(validation_data) == 3 else None
                if vy is None:
                    raise ValueError("validation_data needs targets: (x_val, y_val)")
                val = self._array_data(vx, vy, vw, None, "fit (validation_data)", batch_size,
                                       name="validation x")
            else:
                val = self._stream_data(validation_data, "fit (validation_data)")
        if val is None:
            return data, None
        if isinstance(val, ArrayData):
            # as Keras: only the first validation_steps batches are evaluated
            val = val.take(arguments.rows_for_steps(steps, batch_size, val.n,
                                                    "fit (validation_steps)"))
            steps = None
        else:
            steps = arguments.positive_int_or_none(steps, "validation_steps")
        return data, EpochIterator(val, steps, "fit (validation)", "validation_steps")

    # ---- batches --------------------------------------------------------------------------
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the batch loss (and metrics)."""
        self._check_compiled("train_on_batch")
        if y is None:
            raise ValueError("train_on_batch() needs targets y")
        data = self._array_data(x, y, sample_weight, class_weight, "train_on_batch", 1)
        self._claim_training("train_on_batch")
        try:
            xb, yb, wb = data.batch(slice(0, data.n))
            self._prepare_training()
            loss, out = self._train_step(xb, yb, wb)
            with self._metric_sets.take() as mets:
                for m in mets:
                    m.reset_state()
                    m.update_state(yb, out)
                logs = self._logs(loss, mets, None if self._heads is None else self._head_losses)
        finally:
            self._release_training()
            data.close()
        return self._result(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch in inference mode, as Keras: no weight changes."""
        self._check_compiled("test_on_batch")
        if y is None:
            raise ValueError("test_on_batch() needs targets y")
        data = self._array_data(x, y, sample_weight, None, "test_on_batch", 1)
        data.user_batch_size = data.n
        it = EpochIterator(data, what="test_on_batch")
        try:
            return self._result(self._evaluate_data(it), return_dict)
        finally:
            it.close()

    def predict_on_batch(self, x):
        """The outputs for one batch ``x`` in inference mode (a NumPy array)."""
        return self(x, training=False)

    def __call__(self, x, training=False):
        """Forward pass on ``x`` (one batch); ``training=True`` uses training-mode behaviour
        (dropout masks, batch statistics), as Keras. On symbolic inputs (Input(...) or layer
        outputs) the model's layers are called in turn: the model becomes part of a graph,
        sharing its layers and weights (transfer learning onto a graph)."""
        if is_symbolic(x) or (isinstance(x, (list, tuple)) and x and is_symbolic(x[0])):
            return self._call_symbolic(x)
        x = self._inputs(x)
        x = ([convert(xi, self._dtype) for xi in x] if isinstance(x, list)
             else convert(x, self._dtype))
        if training:  # training-mode statistics (BatchNormalization's) change: a writer
            with self._state_lock.writing():
                return self._copied(self._forward(x, True))
        with self._buffer_sets.take() as store, buffer_set(store), self._state_lock.reading():
            return self._copied(self._forward(x, False))

    def _copied(self, out):
        if self._output_names is None:
            return np.array(out, copy=True)
        return self._structured([np.array(o, copy=True) for o in out])

    @staticmethod
    def _result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    @property
    def _out_dtypes(self):
        """The dtype of each output (a model with several outputs)."""
        return [layer.dtype for layer, _ in self._output_layers]

    # ---- evaluate / predict -----------------------------------------------------------------
    def _fused_eval(self):
        if self._heads is not None:
            return [loss is not None and self._fused_softmax_eval(layer, loss)
                    for (layer, _), loss in zip(self._output_layers, self._heads.losses)]
        return self._fused_softmax_eval(self._output_layer, self.loss)

    @staticmethod
    def _fused_softmax_eval(layer, loss):
        act = getattr(layer, "activation", None)
        return bool(loss.fuses_softmax and act is not None and act.name == "softmax")

    def _evaluate_data(self, it, cb=None):
        """Loss and metrics over the batches of one epoch of ``it``; ``cb`` (a CallbackList)
        gets the on_test_* hooks, with running logs per batch as in Keras 3 (fit's validation
        calls them too). Per-sample weights weigh the loss (metrics stay unweighted, as
        Keras' ``metrics``)."""
        with self._metric_sets.take() as mets, self._buffer_sets.take() as store, \
                buffer_set(store):
            return self._evaluate_with(it, cb, mets)

    def _evaluate_with(self, it, cb, mets):
        for m in mets:
            m.reset_state()
        if cb is not None:
            cb.on_test_begin()
        batch_logs = cb is not None and cb.wants_test_batches
        if isinstance(it.data, ArrayData):
            it.data.batch_size = self._inference_rows(it.data.user_batch_size, batch_logs, mets)
        reg = self._regularization_loss() if batch_logs else 0.0
        fused = self._fused_eval()
        heads = self._heads
        head_totals = None if heads is None else np.zeros(len(heads.names))
        total, seen, row_loss = 0.0, 0, np.empty(0)
        for step, (xb, yb, wb) in it.epoch():
            if batch_logs:
                cb.on_test_batch_begin(step)
            nb = batch_rows(xb)
            if wb is not None and len(row_loss) < nb:
                row_loss = np.empty(nb)  # this call's own: other threads may evaluate too
            rows = None if wb is None else row_loss[:nb]
            with self._state_lock.reading():  # the outputs are used up inside
                out = self._forward(xb, False)
                if heads is None:
                    out2 = out.reshape(out.shape[0], -1)
                    total += self._batch_loss(self.loss, out2, yb, None, fused, wb, rows)
                else:
                    out2 = [o.reshape(o.shape[0], -1) for o in out]
                    for i, (o, y) in enumerate(zip(out2, yb)):
                        if heads.losses[i] is not None:
                            part = self._batch_loss(heads.losses[i], o, y, None, fused[i], wb, rows)
                            head_totals[i] += part
                            total += heads.weights[i] * part
                for layer in self._unique_layers():  # activity penalties count (Keras 3)
                    if getattr(layer, "activity_regularizer", None) is not None:
                        total += layer._activity_loss * batch_rows(xb)
                for m in mets:
                    m.update_state(yb, out2)
            seen += batch_rows(xb)
            if batch_logs:
                cb.on_test_batch_end(step, self._logs(
                    total / seen + reg, mets, None if heads is None else head_totals / seen))
        if not seen:  # a generator read to its end: nothing was evaluated
            return None
        logs = self._logs(total / seen + self._regularization_loss(), mets,
                          None if heads is None else head_totals / seen)
        if cb is not None:
            cb.on_test_end(logs)
        return logs

    # Inference maps every row independently (dropout off, BatchNormalization on its moving
    # statistics), so the batching only matters to callbacks that watch batches. Without
    # them fastnn runs cache-sized chunks: products on ~2,000 rows run at the BLAS's full
    # speed, on 32 rows (Keras' default batch) at about half of it, and a single 10,000-row
    # pass spills its activations out of the cache (measured, predict on 10,000 rows of the
    # 784-512-256-10 MLP: 76 ms at batch 32, 41 ms in 2,048-row chunks, 78 ms in one pass).
    _INFERENCE_CHUNK_BYTES = 4 << 20

    def _inference_rows(self, batch_size, watched, metrics=()):
        """Rows per forward pass in predict/evaluate: the user's ``batch_size`` when a
        callback watches batches or a user's class could see the batching (below), else the
        number of rows whose widest activation fills _INFERENCE_CHUNK_BYTES (between 256 and
        4,096 rows)."""
        if watched:
            return batch_size
        # Only fastnn's own layers, metrics and activity regularizers are known to treat rows
        # independently (a running count-weighted mean, a sum over rows); a user's layer may
        # use the whole batch, a user's metric may average per batch: Keras hands them
        # ``batch_size`` rows, so they get those.
        def own(obj):
            return obj is None or type(obj).__module__.startswith("fastnn.")
        layers = self._unique_layers()
        if not all(own(layer) and own(getattr(layer, "activity_regularizer", None))
                   for layer in layers) or not all(own(m) for m in metrics):
            return batch_size
        widest = max([int(np.prod(layer.output_shape[1:])) for layer in layers
                      if layer.output_shape is not None] + [self._input_width()])
        rows = self._INFERENCE_CHUNK_BYTES // max(1, widest * np.dtype(self._dtype).itemsize)
        return int(min(4096, max(256, rows)))

    def _input_width(self):
        """Values in one row of the inputs (all of them, for a graph with several)."""
        shapes = self._input_shapes or [self._input_shape]
        return sum(int(np.prod(s[1:])) for s in shapes)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) on the given data, in inference mode; ``sample_weight`` weighs
        the loss (Keras: sum(w_i * loss_i) / n), not the metrics. ``x`` may be arrays, a
        generator or a PyDataset (as in fit)."""
        self._check_compiled("evaluate")
        if is_array_like(x) and y is None:
            self._inputs(x)  # the inputs are checked (and the model built) first, as before
            raise ValueError("evaluate() needs targets y")
        data = self._data(x, y, sample_weight, None, "evaluate", 32)
        it = None
        try:
            batch_size = arguments.batch_size(batch_size, "evaluate")
            it = self._steps_iterator(data, steps, batch_size, "evaluate")
            n_steps = it.num_batches
            bar = callbacks_module.Progbar(n_steps, verbose=2 if verbose == 2 else 1)
            cb = (callbacks_module.CallbackList(callbacks, self, {"steps": n_steps,
                                                                  "verbose": verbose})
                  if callbacks else None)
            logs = self._evaluate_data(it, cb)
        finally:
            (it or data).close()
        if logs is None:
            raise ValueError("evaluate: the data yielded no batch (an empty or exhausted generator?)")
        if verbose:  # "auto" means 1, as in Keras
            bar.target = it.num_batches  # a generator's, now known
            bar.update(bar.target, logs, finalize=True)
        return self._result(logs, return_dict)

    @staticmethod
    def _steps_iterator(data, steps, batch_size, what):
        """One pass over ``data``, or its first ``steps`` batches (Keras: array data is cut
        to the rows they cover, after the weights were checked against every row)."""
        if isinstance(data, ArrayData):
            data.batch_size = data.user_batch_size = batch_size
            data = data.take(arguments.rows_for_steps(steps, batch_size, data.n, what))
            steps = None
        else:
            steps = arguments.positive_int_or_none(steps, "steps", what)
        return EpochIterator(data, steps, what)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                mc_samples=None):
        """Outputs for ``x`` in inference mode, computed in batches into one array.

        ``batch_size`` (default 32) is the batch callbacks and user layers see; without
        per-batch callbacks, a model of fastnn's own layers runs cache-sized chunks instead,
        since they treat rows independently in inference. ``x`` may be arrays, a generator
        or a PyDataset (batches ``x`` or tuples whose first element is x).

        fastnn extra: ``mc_samples=N`` returns ``(mean, std)`` over N stochastic passes (MC
        dropout): the dropout-family layers sample a new mask per pass while
        BatchNormalization stays in inference mode (see fastnn.utils.mc_predict)."""
        if mc_samples is not None:
            return mc_predict(self, x, mc_samples, batch_size=batch_size)
        shown = arguments.verbosity(verbose)  # checked before any work, as fit's
        data = self._data(x, None, None, None, "predict", 32, targets=False)
        it = None
        try:
            batch_size = arguments.batch_size(batch_size, "predict")
            it = self._steps_iterator(data, steps, batch_size, "predict")
            cb = (callbacks_module.CallbackList(callbacks, self, {"steps": it.num_batches,
                                                                  "verbose": verbose})
                  if callbacks else None)
            # Keras 3: a bar for 1 ("auto"), one line at the end for 2, nothing for 0
            bar = (callbacks_module.Progbar(it.num_batches, verbose=2 if shown == 2 else 1)
                   if shown else None)
            return self._predict_data(it, cb, bar)
        finally:
            (it or data).close()

    def _predict_data(self, it, cb, bar=None):
        with self._buffer_sets.take() as store, buffer_set(store):
            return self._predict_with(it, cb, bar)

    def _predict_with(self, it, cb, bar=None):
        if cb is not None:
            cb.on_predict_begin()
        batch_logs = cb is not None and cb.wants_predict_batches
        several = self._output_names is not None
        # one result per output (a list of one for a model with one output)
        shapes = [tuple(s[1:]) for s in (self.output_shape if several else [self.output_shape])]
        dtypes = self._out_dtypes if several else [self._out_dtype]
        arrays = isinstance(it.data, ArrayData)
        if arrays:
            results = [np.empty((it.data.n,) + shape, dt) for shape, dt in zip(shapes, dtypes)]
            it.data.batch_size = self._inference_rows(it.data.user_batch_size, batch_logs)
        parts, lo, done = [], 0, 0
        for step, (xb, _, _) in it.epoch():
            if batch_logs:
                cb.on_predict_batch_begin(step)
            nb = batch_rows(xb)
            with self._state_lock.reading():  # copied out inside
                outs = self._forward(xb, False)
                outs = outs if several else [outs]
                if arrays:
                    for result, out in zip(results, outs):
                        result[lo:lo + nb] = out
                    outs = [result[lo:lo + nb] for result in results]
                else:
                    outs = [np.array(out, dtype=dt, copy=True) for out, dt in zip(outs, dtypes)]
            if not arrays:
                parts.append(outs)
            lo += nb
            if batch_logs:  # as Keras 3: the batch's outputs
                cb.on_predict_batch_end(step, {"outputs": self._structured(
                    [out.copy() for out in outs]) if several else outs[0].copy()})
            # the bar counts the user's batches, also when arrays run in bigger chunks
            done = -(-lo // it.data.user_batch_size) if arrays else step + 1
            if bar is not None:
                bar.update(done)
        if cb is not None:
            cb.on_predict_end()
        if bar is not None:
            if bar.target is None:  # a generator's length, now known (an array's counts
                bar.target = done   # the user's batches, not the chunks it.num_batches has)
            bar.update(bar.target, finalize=True)
        if not arrays:
            results = [np.concatenate([p[i] for p in parts]) if parts
                       else np.empty((0,) + shape, dt)
                       for i, (shape, dt) in enumerate(zip(shapes, dtypes))]
        return self._structured(results) if several else results[0]


def prepare_inputs(model, x, name="x"):
    """``x`` checked as ``model``'s input and converted whole to its dtype (the model is
    built from it): for tools that work on a few rows (sanity_check, the range test)."""
    if model._input_names is not None or model._output_names is not None:
        several = "inputs" if model._input_names is not None else "outputs"
        raise NotImplementedError(f"model {model.name!r} has several {several}: this tool takes "
                                  f"models with one input and one output")
    return convert(model._inputs(x, name), model._dtype, name)


def mc_predict(model, x, n, batch_size=None):
    """mc_predict(model, x, n, batch_size=None) -> (mean, std): Monte Carlo dropout.

    Runs ``n`` stochastic forward passes over ``x`` (each a batched pass, ``batch_size``
    rows at a time, default 32 as ``predict``) in which only the dropout-family layers
    sample (a new mask per pass and batch) and BatchNormalization uses its moving statistics,
    then returns the per-output mean and standard deviation (population, ddof=0) over the
    passes, accumulated in float64 (Welford) and returned in the model's dtype. Also
    available as ``model.predict(x, mc_samples=n)``.
    """
    arguments.positive_int(n, "mc_predict: the number of samples")
    batch_size = 32 if batch_size is None else arguments.positive_int(batch_size, "mc_predict: batch_size")
    data = model._array_data(x, None, None, None, "mc_predict", 1, targets=False)
    try:
        with model._buffer_sets.take() as store, buffer_set(store):
            return _mc_passes(model, data, int(n), batch_size)
    finally:
        data.close()


def _mc_passes(model, data, n, batch_size):
    several = model._output_names is not None
    shapes = model.output_shape if several else [model.output_shape]
    dtypes = model._out_dtypes if several else [model._out_dtype]
    stats = []  # per output: mean, sum of squared deviations, scratch
    for s in shapes:
        shape = (data.n,) + tuple(s[1:])
        stats.append((np.zeros(shape, np.float64), np.zeros(shape, np.float64),
                      np.empty((min(batch_size, data.n),) + shape[1:], np.float64)))
    for k in range(1, n + 1):
        for lo in range(0, data.n, batch_size):
            hi = min(lo + batch_size, data.n)
            with model._state_lock.reading():
                outs = model._forward(data.rows(lo, hi), "mc")
                for out, (mean, m2, d) in zip(outs if several else [outs], stats):
                    dk, mk = d[:hi - lo], mean[lo:hi]
                    np.subtract(out, mk, out=dk)          # delta = x - mean_old
                    mk += dk / k                          # mean_new
                    m2[lo:hi] += dk * (out - mk)          # += delta * (x - mean_new)
    means = [mean.astype(dt) for (mean, _, _), dt in zip(stats, dtypes)]
    stds = [np.sqrt(m2 / n).astype(dt) for (_, m2, _), dt in zip(stats, dtypes)]
    if several:
        return model._structured(means), model._structured(stds)
    return means[0], stds[0]
