"""Sequential models: compile / fit / evaluate / predict with Keras 3 semantics.

The training step is the short loop at the heart of fastnn: every layer's forward into its
own buffers, one fused loss kernel that also writes the output gradient, every layer's
backward (stopping below the lowest trainable layer), then one optimizer call.
"""
import math
import time
import warnings

import numpy as np

from . import backend, callbacks as callbacks_module, losses, metrics as metrics_module, optimizers
from .layers.base import Layer, _check_initialized, _weight_list, pack_variables, unique_name
from .layers.core import InputLayer


class Sequential:
    """Sequential(layers=None, name=None): a linear stack of layers.

    ``Sequential(model_a.layers[:-1])`` shares those layer objects and their weights, as Keras.
    """

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        if "inputs" in kwargs or "outputs" in kwargs:
            raise NotImplementedError(
                "fastnn has no functional API (Model(inputs=..., outputs=...)): build a "
                "Sequential model, e.g. Sequential([Input(shape=(8,)), Dense(30, "
                "activation='relu'), Dense(1)])")
        if kwargs:
            raise TypeError(f"Sequential: unexpected keyword argument(s) {sorted(kwargs)}")
        self.name = name or unique_name("sequential")
        self._layers = []
        self._submodels = []  # Sequentials added whole (their layers are inlined in _layers)
        self._input_layer = None
        self._input_shape = None  # (None, features...)
        self.built = False
        self.trainable = trainable
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.stop_training = False
        self.history = None
        self._compiled = False
        self._buffers = {}
        self._layer_dtypes = None
        for layer in layers or []:
            self.add(layer)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Keras' model subclassing runs the subclass' call()/train_step(); fastnn's training
        # loop never would, so refuse at class creation rather than silently ignore them.
        custom = sorted(m for m in ("call", "train_step", "test_step", "predict_step")
                        if m in cls.__dict__)
        if custom:
            raise TypeError(f"{cls.__name__}: fastnn supports Sequential models only; a subclass "
                            f"defining {', '.join(custom)}() (Keras model subclassing) is not "
                            "supported: stack layers in a Sequential instead")

    # ---- structure ------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        """As Keras 3, setting a model's ``trainable`` sets it on every one of its layers: a
        frozen model stays frozen when it is added into another Sequential
        (``Sequential([base_model, Dense(1)])`` after ``base_model.trainable = False``)."""
        self._trainable = bool(value)
        for layer in self._layers:
            layer.trainable = value
        for model in self._submodels:  # recursively, as Keras: inner_model.trainable follows
            model.trainable = value

    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer (an ``Input`` only as the first element)."""
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError(f"Sequential {self.name!r}: an Input can only come first")
            self._input_layer = layer
            self._input_shape = layer.shape
            return
        if isinstance(layer, Sequential):
            for sub in layer.layers:
                self.add(sub)
            self._submodels.append(layer)
            return
        if not isinstance(layer, Layer):
            what = (f"the class {layer.__name__} (add () to make a layer)" if isinstance(layer, type)
                    else type(layer).__name__)
            raise TypeError(f"Sequential {self.name!r}: expected a fastnn layer, got {what}")
        _check_initialized(layer)
        if not self._layers and self._input_shape is None:
            if layer._input_shape_arg is not None:
                self._input_shape = (None,) + layer._input_shape_arg
            elif layer.built and layer.input_shape is not None:
                self._input_shape = (None,) + tuple(layer.input_shape[1:])
        self._layers.append(layer)
        self.built = False
        if self._input_shape is not None:  # as Keras: a model that knows its input is built
            self.build()

    def pop(self):
        """Remove and return the last layer."""
        if not self._layers:
            raise IndexError(f"Sequential {self.name!r} has no layers to pop")
        self.built = False
        return self._layers.pop()

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (with or without the batch axis
        as None, as Keras: ``build((None, 784))``)."""
        if input_shape is not None:
            if isinstance(input_shape, (int, np.integer)) or not hasattr(input_shape, "__len__") \
                    or len(input_shape) < 2 or not all(
                        isinstance(d, (int, np.integer)) and d > 0 for d in tuple(input_shape)[1:]):
                raise ValueError(f"Sequential {self.name!r}: build(): input_shape must be (batch or "
                                 f"None, features...) with positive integer features, e.g. "
                                 f"build((None, 784)); got {input_shape!r}")
            shape = tuple(input_shape)
            self._input_shape = shape if shape[0] is None else (None,) + shape[1:]
        if self._input_shape is None:
            raise ValueError(f"Sequential {self.name!r} does not know its input shape: add an "
                             "Input(shape=...) first, pass input_shape= to the first layer, or call fit")
        if not self._layers:
            raise ValueError(f"Sequential {self.name!r} has no layers")
        shape = self._input_shape
        for layer in self._layers:
            if layer.built and layer.input_shape is not None \
                    and tuple(layer.input_shape[1:]) != tuple(shape[1:]):
                raise ValueError(f"Layer {layer.name!r} was built for inputs of shape "
                                 f"{(None,) + tuple(layer.input_shape[1:])} but receives {shape} here")
            layer._maybe_build(shape)
            shape = (None,) + tuple(layer.compute_output_shape(shape)[1:])
        self.output_shape = shape
        # layers of different dtypes (Dense(..., dtype="float64") next to a default float32
        # Dropout): each layer's input and incoming gradient is cast to its dtype, as Keras
        # autocasts; None when all agree (no check per layer and step)
        dts = [np.dtype(getattr(layer, "dtype", None) or self._dtype) for layer in self._layers]
        self._layer_dtypes = dts if len(set(dts)) > 1 else None
        self.built = True
        if self._compiled:
            self._make_metrics()

    @property
    def input_shape(self):
        return self._input_shape

    def _unique_layers(self):
        seen, out = set(), []
        for layer in self._layers:
            if id(layer) not in seen:
                seen.add(id(layer))
                out.append(layer)
        return out

    @property
    def weights(self):
        return [v for layer in self._unique_layers() for v in layer.weights]

    variables = weights

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        return [v for layer in self._unique_layers() for v in layer.trainable_weights]

    trainable_variables = trainable_weights

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        return [v for layer in self._unique_layers() for v in layer.non_trainable_weights]

    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights):
        weights = _weight_list(weights, f"Sequential {self.name!r}")
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"Sequential {self.name!r} has {len(own)} weight arrays, got {len(weights)}")
        checked = [v._checked(w) for v, w in zip(own, weights)]  # all first: no half-set model
        for v, w in zip(own, checked):
            np.copyto(v.value, w)

    def count_params(self):
        return int(sum(v.value.size for v in self.weights))

    def get_layer(self, name=None, index=None):
        if index is not None:
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(f"get_layer: was asked for the layer at index {index} but model "
                                 f"{self.name!r} has {len(self._layers)} layers")
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r} in {self.name!r}")

    def summary(self, print_fn=None):
        """Print a table of layers, output shapes and parameter counts."""
        print_fn = print_fn or print
        if not self.built and self._input_shape is not None:
            self.build()
        rows = []
        for layer in self._layers:
            shape = str(layer.output_shape) if layer.built else "?"
            rows.append((f"{layer.name} ({type(layer).__name__})", shape, f"{layer.count_params():,}"))
        w = [max(len("Layer (type)"), *(len(r[0]) for r in rows)) + 2,
             max(len("Output Shape"), *(len(r[1]) for r in rows)) + 2, 12]
        line = "\u2500" * sum(w)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn(f"{'Layer (type)':<{w[0]}}{'Output Shape':<{w[1]}}{'Param #':>{w[2]}}")
        print_fn(line)
        for r in rows:
            print_fn(f"{r[0]:<{w[0]}}{r[1]:<{w[1]}}{r[2]:>{w[2]}}")
        print_fn(line)
        trainable = sum(v.value.size for v in self.trainable_weights)
        total = self.count_params()
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")

    # ---- compile ------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1, jit_compile="auto",
                auto_scale_loss=True):
        """Configure training: an optimizer, a loss and metrics (names or objects)."""
        if loss_weights is not None or weighted_metrics is not None:
            raise NotImplementedError("fastnn models have one output: loss_weights and "
                                      "weighted_metrics are not supported")
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

    def _make_metrics(self):
        out_dim = self.output_shape[-1]
        self.compiled_metrics = [metrics_module.get(m, self.loss, out_dim) for m in self._metric_specs]

    def _check_compiled(self, what):
        if not self._compiled:
            raise RuntimeError(f"You must call compile() before {what}() on model {self.name!r}")

    # ---- data checks --------------------------------------------------------------------
    @property
    def _dtype(self):
        return self._layers[0].dtype if self._layers else backend.floatx()

    def _prepare_x(self, x, name="x"):
        """Validate inputs once per call: numeric, finite, right shape; returns a C-contiguous
        array of the model's dtype (a copy only when needed)."""
        if x is None:
            raise ValueError(f"{name} is None: pass the input data as a NumPy array")
        if not isinstance(x, np.ndarray):
            if type(x).__module__.startswith("scipy.sparse") and hasattr(x, "toarray"):
                x = x.toarray()  # Keras takes scipy sparse matrices; fastnn's layers are dense
            try:
                x = np.asarray(x)
            except ValueError as e:  # e.g. nested lists of rows of different lengths
                raise ValueError(f"{name} could not be made into one array (rows of different "
                                 f"lengths?): {e}") from None
        if x.dtype.kind == "O" and x.ndim == 0:
            raise TypeError(
                f"{name} must be a NumPy array (or nested lists of numbers), got "
                f"{type(x.item()).__name__}: fastnn does not take tf.data datasets, generators, "
                "PyDatasets or dicts of inputs; pass arrays, e.g. "
                "model.fit(X_train, y_train, validation_data=(X_valid, y_valid))")
        x = _numbers(x)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be numeric, got dtype {x.dtype}")
        if x.ndim < 2:
            x = x.reshape(-1, 1) if x.ndim == 1 and self._input_shape in (None, (None, 1)) else x
            if x.ndim < 2:
                raise ValueError(f"{name} must have a batch axis: got shape {x.shape}, expected "
                                 f"(batch, {', '.join(map(str, (self._input_shape or (None, '...'))[1:]))})")
        if x.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {x.shape})")
        if 0 in x.shape[1:]:
            raise ValueError(f"{name} has no features (shape {x.shape}): each sample needs at "
                             "least one value")
        if self._input_shape is not None and tuple(x.shape[1:]) != tuple(self._input_shape[1:]):
            first = self._layers[0].name if self._layers else self.name
            raise ValueError(f"Input {name} has shape {x.shape}, but layer {first!r} of model "
                             f"{self.name!r} expects (batch, {', '.join(map(str, self._input_shape[1:]))})")
        x = np.ascontiguousarray(x, dtype=self._dtype)
        if not backend.ops.all_finite(x):  # no boolean temporary: 2.3x faster than isfinite
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"Input {name} contains NaN or inf (first at index {tuple(int(i) for i in bad)})")
        return x

    def _ensure_built(self, x):
        if self._input_shape is None:
            self._input_shape = (None,) + tuple(x.shape[1:])
        if not self.built:
            self.build()

    def _prepare_training(self):
        """Per fit: the trainable variables, the lowest layer backprop must reach, the fused
        softmax/cross-entropy decision, optimizer state. Nothing here runs per step."""
        layers = self._layers
        if len(self._unique_layers()) != len(layers):
            # each layer keeps one forward cache and one gradient buffer: at a second position
            # it overwrote both, and training silently used a wrong gradient
            twice = next(l for i, l in enumerate(layers) if any(l is k for k in layers[:i]))
            raise NotImplementedError(
                f"Sequential {self.name!r}: layer {twice.name!r} is used more than once; fastnn "
                "cannot train a model that shares a layer between positions (predict works). "
                "Use separate layers (weights can be copied with set_weights)")
        for layer in layers:
            layer._scratch_dy = True  # see Layer._backward_out: the loop below owns every dy
            if hasattr(layer, "fused_output_grad"):
                layer.fused_output_grad = False
        last = layers[-1]
        act = getattr(last, "activation", None)
        self._fused = bool(self.loss.fuses_softmax and not getattr(self.loss, "from_logits", False)
                           and hasattr(last, "fused_output_grad") and act is not None
                           and act.name == "softmax")
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
        # Backprop stops at the lowest layer with trainable weights: frozen lower layers
        # cost nothing in the backward pass.
        self._backprop_stop = len(layers)
        for i, layer in enumerate(layers):
            if self.trainable and layer.trainable_weights:
                self._backprop_stop = i
                break
        self.optimizer.build(self._train_vars)

    # ---- one step -------------------------------------------------------------------------
    def _forward(self, x, training):
        casts = self._layer_dtypes
        if casts is None:
            for layer in self._layers:
                x = layer.forward(x, training)
            return x
        for layer, dt in zip(self._layers, casts):
            if x.dtype != dt:  # as Keras, a layer's inputs are cast to its dtype
                x = x.astype(dt)
            x = layer.forward(x, training)
        return x

    @property
    def _out_dtype(self):
        """The model's output (and target) dtype: the last layer's, as Keras."""
        return self._layer_dtypes[-1] if self._layer_dtypes is not None else self._dtype

    def _buffer(self, key, shape, dtype):
        buf = self._buffers.get(key)
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] or buf.dtype != dtype:
            buf = np.empty(shape, dtype)
            self._buffers[key] = buf
        return buf if buf.shape[0] == shape[0] else buf[:shape[0]]

    def _train_step(self, xb, yb, wb=None):
        """Forward, loss + output gradient, backward, optimizer. Returns (mean loss, outputs).
        ``wb``: per-sample weights (Keras: the loss is sum(w_i * loss_i) / batch size)."""
        out = self._forward(xb, True)
        out2 = out.reshape(out.shape[0], -1)
        grad = self._buffer("grad", out2.shape, out2.dtype)
        n = xb.shape[0]
        if wb is None:
            loss = self.loss.compute(out2, yb, grad, self._fused) / n
        else:
            # each row's gradient depends on its own row only: weighting it is exact
            rows = self._buffer("row_loss", (n,), np.float64)
            self.loss.compute(out2, yb, grad, self._fused, rows)
            np.multiply(grad, wb[:, None], out=grad)
            loss = float(np.dot(rows, wb)) / n
        layers = self._layers
        d = grad.reshape(out.shape)
        stop = self._backprop_stop
        casts = self._layer_dtypes
        for i in range(len(layers) - 1, stop - 1, -1):
            if casts is not None and d.dtype != casts[i]:
                d = d.astype(casts[i])
            d = layers[i].backward(d, i > stop)
        for v in self._regularized:  # penalty + gradient in one pass (regularizers.py)
            loss += v.regularizer.penalty_and_gradient(v.value, v.grad)
        for layer in self._activity_layers:  # set by the layer's forward (Keras 3 rule)
            loss += layer._activity_loss
        if self._train_vars:
            self.optimizer.apply(self._train_vars)
        return loss, out2

    def _sample_weights(self, sample_weight, class_weight, y, n, what):
        """Per-sample weights from ``sample_weight`` (n,) and/or ``class_weight`` {class:
        weight} (classes from the targets as given: labels, one-hot argmax, or rounded values), as one
        array of the model's dtype; None when neither is given. Validated once per call."""
        if sample_weight is None and class_weight is None:
            return None
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
            if not isinstance(class_weight, dict) or not class_weight:
                raise ValueError(f"{what}: class_weight must be a non-empty dict {{class index: "
                                 f"weight}}, got {class_weight!r}")
            # the classes of the targets as the user gave them (validated by the loss
            # already): a loss's own transform (hinge's 0/1 -> -1/1) must not move them
            y = _numbers(np.asarray(y))  # object arrays of numbers, as the loss took them
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
            # as Keras (class_weight.get(label, 1.0)): an unlisted class keeps weight 1
            classes, inverse = np.unique(labels, return_inverse=True)
            w *= np.array([table.get(int(c), 1.0) for c in classes], np.float64)[inverse]
        if not backend.ops.all_finite(w) or np.any(w < 0):
            raise ValueError(f"{what}: sample/class weights must be finite and >= 0")
        # finite in float64 is not enough: 1e300 becomes inf in a float32 model (NaN loss)
        limit = min(np.finfo(self._dtype).max, np.finfo(self._out_dtype).max)
        if w.size and w.max() > limit:
            raise ValueError(f"{what}: sample/class weights must be finite in the model's dtype "
                             f"(at most {limit:.4g}), got {w.max():.4g}")
        return np.ascontiguousarray(w, dtype=self._dtype)

    def _regularization_loss(self):
        return sum(v.regularizer(v.value) for v in self.weights if v.regularizer is not None)

    # ---- fit ------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs of mini-batches (``batch_size=len(x)`` is full-batch
        gradient descent, ``batch_size=1`` pure SGD). Returns a History."""
        self._check_compiled("fit")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {_describe(batch_size)}")
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {_describe(epochs)}")
        if not isinstance(initial_epoch, (int, np.integer)) or isinstance(initial_epoch, bool) \
                or initial_epoch < 0:
            raise ValueError(f"initial_epoch must be a non-negative integer, got {_describe(initial_epoch)}")
        validation_split = 0.0 if validation_split is None else validation_split  # Keras: falsy
        if not isinstance(validation_split, (int, float, np.integer, np.floating)):
            raise TypeError(f"validation_split must be a number in [0, 1), got {validation_split!r}")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if validation_batch_size is not None and (
                not isinstance(validation_batch_size, (int, np.integer))
                or isinstance(validation_batch_size, bool) or validation_batch_size < 1):
            raise ValueError("validation_batch_size must be a positive integer or None, got "
                             f"{_describe(validation_batch_size)}")
        if steps_per_epoch is not None and (not isinstance(steps_per_epoch, (int, np.integer))
                                            or steps_per_epoch < 1):
            raise ValueError(f"steps_per_epoch must be a positive integer or None, got {steps_per_epoch!r}")
        # as Keras 3: validate every N epochs, or on the listed (1-based) epochs
        val_epochs = validation_freq if isinstance(validation_freq, (list, tuple)) else [validation_freq]
        if not val_epochs or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                                     and e >= 1 for e in val_epochs):
            raise ValueError("validation_freq must be a positive integer (validate every N epochs) "
                             f"or a list of epoch numbers (1-based), got {validation_freq!r}")
        val_epochs = set(val_epochs) if isinstance(validation_freq, (list, tuple)) else None
        if verbose != "auto" and not isinstance(verbose, (int, np.integer)):
            raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
        x = self._prepare_x(x)
        self._ensure_built(x)
        if y is None:
            raise ValueError("fit() needs targets y")
        y_given, y = y, self.loss.prepare_targets(y, self.output_shape, self._out_dtype)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        w = self._sample_weights(sample_weight, class_weight, y_given, len(x), "fit")
        val_w = None
        if validation_data is None and validation_split:
            n_val = int(math.floor(len(x) * validation_split))
            if n_val == 0 or n_val == len(x):
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {len(x)}")
            validation_data = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
            if w is not None:  # as Keras: the split takes the sample weights along
                w = w[:-n_val]
            if sample_weight is not None:  # but not class_weight (Keras applies it to training)
                val_w = self._sample_weights(sample_weight, None, y_given, n_val + len(x),
                                             "fit")[-n_val:]
            val_prepared = True
        else:
            val_prepared = False
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple of NumPy arrays (x_val, y_val) "
                                 "or (x_val, y_val, sample_weight_val) (no datasets), got "
                                 f"{type(validation_data).__name__}")
            vx, vy = validation_data[:2]
            if not val_prepared:
                vx = self._prepare_x(vx, "validation x")
                vy = self.loss.prepare_targets(vy, self.output_shape, self._out_dtype)
                if len(vx) != len(vy):
                    raise ValueError(f"validation x has {len(vx)} samples but validation y has {len(vy)}")
                if len(validation_data) == 3:
                    val_w = self._sample_weights(validation_data[2], None, vy, len(vx),
                                                 "fit (validation_data)")
            # as Keras: only the first validation_steps batches are evaluated
            rows = _rows_for_steps(validation_steps, validation_batch_size or batch_size, len(vx),
                                   "fit (validation_steps)")
            validation_data = (vx[:rows], vy[:rows])
            val_w = None if val_w is None else val_w[:rows]
        verbose = 1 if verbose == "auto" else int(verbose)
        n = len(x)
        steps = steps_per_epoch or int(math.ceil(n / batch_size))
        self._prepare_training()
        cbs = [callbacks] if isinstance(callbacks, callbacks_module.Callback) else list(callbacks or [])
        history = callbacks_module.History()
        cbs.append(history)
        if verbose:
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        cb = callbacks_module.CallbackList(cbs, self, {"epochs": epochs, "steps": steps, "verbose": verbose})
        self.stop_training = False
        self.history = history
        xbuf = self._buffer("xbatch", (min(batch_size, n),) + x.shape[1:], x.dtype)
        ybuf = self._buffer("ybatch", (min(batch_size, n),) + y.shape[1:], y.dtype)
        wbuf = self._buffer("wbatch", (min(batch_size, n),), w.dtype) if w is not None else None
        wb = None
        rng = backend.rng()
        mets = self.compiled_metrics
        cb.on_train_begin()
        epoch_logs = {}
        # pos: the next row of the current pass over the data, done: its batches so far. An
        # epoch without steps_per_epoch is one whole pass; with it, the next epoch carries on
        # where this one stopped (Keras' iterator does), and an epoch that reaches the end of
        # the pass ends there with a warning (Keras 3 too); a new pass (and shuffle) starts at
        # row 0 in the next epoch.
        pos, order, done = 0, None, 0
        per_pass = int(math.ceil(n / batch_size))
        for epoch in range(initial_epoch, epochs):
            for m in mets:
                m.reset_state()
            cb.on_epoch_begin(epoch)
            loss_total, seen = 0.0, 0
            t0 = time.perf_counter()
            for step in range(steps):
                if done >= per_pass:
                    warnings.warn(
                        f"fit: the data ran out after {step} of steps_per_epoch={steps} batches "
                        f"in epoch {epoch + 1} ({n} samples make {per_pass} batches of "
                        f"{batch_size}); the epoch ends here and the next one starts a new pass. "
                        "Use steps_per_epoch <= the batches per pass to avoid short epochs.",
                        UserWarning, stacklevel=2)
                    break
                done += 1
                if pos == 0 and shuffle:
                    order = rng.permutation(n)
                lo = pos
                hi = min(lo + batch_size, n)
                pos = hi % n
                if shuffle:
                    # one C row copy per sample for any dtype (float x, int64 labels or float
                    # targets, weights), indices checked, straight into the batch buffers
                    idx = order[lo:hi]
                    xb = backend.ops.take_rows(x, idx, xbuf[:hi - lo])
                    yb = backend.ops.take_rows(y, idx, ybuf[:hi - lo])
                    if w is not None:
                        wb = backend.ops.take_rows(w, idx, wbuf[:hi - lo])
                else:
                    xb, yb = x[lo:hi], y[lo:hi]
                    if w is not None:
                        wb = w[lo:hi]
                if cb.wants_batches:
                    cb.on_train_batch_begin(step)
                loss, out = self._train_step(xb, yb, wb)
                nb = hi - lo
                loss_total += loss * nb
                seen += nb
                for m in mets:
                    m.update_state(yb, out)
                if cb.wants_batches:
                    cb.on_train_batch_end(step, self._logs(loss_total / seen, mets))
                if self.stop_training:
                    break
            if done >= per_pass:
                done = 0
            epoch_logs = self._logs(loss_total / max(seen, 1), mets)
            self._last_epoch_seconds = time.perf_counter() - t0
            if validation_data is not None and ((epoch + 1) in val_epochs if val_epochs is not None
                                                else (epoch + 1) % validation_freq == 0):
                val = self._evaluate_arrays(validation_data[0], validation_data[1],
                                            validation_batch_size or batch_size, cb, val_w)
                epoch_logs.update({f"val_{k}": v for k, v in val.items()})
            epoch_logs["learning_rate"] = float(self.optimizer.learning_rate)
            cb.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cb.on_train_end(epoch_logs)
        return history

    @staticmethod
    def _logs(loss, mets):
        logs = {"loss": float(loss)}
        for m in mets:
            logs[m.name] = float(m.result())
        return logs

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the batch loss (and metrics)."""
        self._check_compiled("train_on_batch")
        if y is None:
            raise ValueError("train_on_batch() needs targets y")
        x = self._prepare_x(x)
        self._ensure_built(x)
        y_given, y = y, self.loss.prepare_targets(y, self.output_shape, self._out_dtype)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        w = self._sample_weights(sample_weight, class_weight, y_given, len(x), "train_on_batch")
        self._prepare_training()
        loss, out = self._train_step(x, y, w)
        for m in self.compiled_metrics:
            m.reset_state()
            m.update_state(y, out)
        return self._result(self._logs(loss, self.compiled_metrics), return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch in inference mode, as Keras: no weight changes."""
        self._check_compiled("test_on_batch")
        if y is None:
            raise ValueError("test_on_batch() needs targets y")
        x = self._prepare_x(x)
        self._ensure_built(x)
        y = self.loss.prepare_targets(y, self.output_shape, self._out_dtype)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        w = self._sample_weights(sample_weight, None, y, len(x), "test_on_batch")
        return self._result(self._evaluate_arrays(x, y, len(x), None, w), return_dict)

    def predict_on_batch(self, x):
        """The outputs for one batch ``x`` in inference mode (a NumPy array)."""
        return self(x, training=False)

    # ---- evaluate / predict -----------------------------------------------------------------
    def _evaluate_arrays(self, x, y, batch_size, cb=None, w=None):
        """Loss and metrics over (x, y); ``cb`` (a CallbackList) gets the on_test_* hooks,
        with running logs per batch as in Keras 3 (fit's validation calls them too); ``w``:
        per-sample weights for the loss (metrics stay unweighted, as Keras' ``metrics``)."""
        mets = self.compiled_metrics
        for m in mets:
            m.reset_state()
        if cb is not None:
            cb.on_test_begin()
        batch_logs = cb is not None and cb.wants_test_batches
        batch_size = self._inference_rows(batch_size, batch_logs, mets)
        reg = self._regularization_loss() if batch_logs else 0.0
        total = 0.0
        for step, lo in enumerate(range(0, len(x), batch_size)):
            if batch_logs:
                cb.on_test_batch_begin(step)
            xb, yb = x[lo:lo + batch_size], y[lo:lo + batch_size]
            out = self._forward(xb, False)
            out2 = out.reshape(out.shape[0], -1)
            if w is None:
                total += self.loss.compute(out2, yb, None, self._fused_eval())
            else:
                rows = self._buffer("row_loss", (len(xb),), np.float64)
                self.loss.compute(out2, yb, None, self._fused_eval(), rows)
                total += float(np.dot(rows, w[lo:lo + batch_size]))
            for layer in self._layers:  # activity penalties count in evaluation too (Keras 3)
                if getattr(layer, "activity_regularizer", None) is not None:
                    total += layer._activity_loss * len(xb)
            for m in mets:
                m.update_state(yb, out2)
            if batch_logs:
                cb.on_test_batch_end(step, self._logs(total / (lo + len(xb)) + reg, mets))
        logs = self._logs(total / len(x) + self._regularization_loss(), mets)
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
        if not all(own(layer) and own(getattr(layer, "activity_regularizer", None))
                   for layer in self._layers) or not all(own(m) for m in metrics):
            return batch_size
        widest = max([int(np.prod(layer.output_shape[1:])) for layer in self._layers
                      if layer.output_shape is not None] + [int(np.prod(self._input_shape[1:]))])
        rows = self._INFERENCE_CHUNK_BYTES // max(1, widest * np.dtype(self._dtype).itemsize)
        return int(min(4096, max(256, rows)))

    def _fused_eval(self):
        last = self._layers[-1]
        act = getattr(last, "activation", None)
        return bool(self.loss.fuses_softmax and act is not None and act.name == "softmax")

    @staticmethod
    def _result(logs, return_dict):
        if return_dict:
            return logs
        values = list(logs.values())
        return values[0] if len(values) == 1 else values

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) on the given data, in inference mode; ``sample_weight`` weighs
        the loss (Keras: sum(w_i * loss_i) / n), not the metrics."""
        self._check_compiled("evaluate")
        x = self._prepare_x(x)
        self._ensure_built(x)
        if y is None:
            raise ValueError("evaluate() needs targets y")
        y = self.loss.prepare_targets(y, self.output_shape, self._out_dtype)
        if len(y) != len(x):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size < 1:
            raise ValueError("batch_size must be a positive integer, got "
                             f"{_describe(batch_size, 'evaluate')}")
        # the weights are checked against every row first (a scalar or a short array is named
        # in the error), then cut with x and y to the rows ``steps`` batches cover
        w = self._sample_weights(sample_weight, None, y, len(x), "evaluate")
        rows = _rows_for_steps(steps, batch_size, len(x), "evaluate")
        x, y = x[:rows], y[:rows]
        w = None if w is None else w[:rows]
        steps = int(math.ceil(len(x) / batch_size))
        bar = callbacks_module.Progbar(steps, verbose=2 if verbose == 2 else 1)
        cb = (callbacks_module.CallbackList(callbacks, self, {"steps": steps, "verbose": verbose})
              if callbacks else None)
        logs = self._evaluate_arrays(x, y, batch_size, cb, w)
        if verbose:  # "auto" means 1, as in Keras
            bar.update(steps, logs, finalize=True)
        return self._result(logs, return_dict)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None,
                mc_samples=None):
        """Outputs for ``x`` in inference mode, computed in batches into one array.

        ``batch_size`` (default 32) is the batch callbacks and user layers see; without
        per-batch callbacks, a model of fastnn's own layers runs cache-sized chunks instead,
        since they treat rows independently in inference.

        fastnn extra: ``mc_samples=N`` returns ``(mean, std)`` over N stochastic passes (MC
        dropout): the dropout-family layers sample a new mask per pass while
        BatchNormalization stays in inference mode (see fastnn.utils.mc_predict)."""
        if mc_samples is not None:
            from .utils import mc_predict
            return mc_predict(self, x, mc_samples, batch_size=batch_size)
        x = self._prepare_x(x)
        self._ensure_built(x)
        batch_size = 32 if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) \
                or batch_size < 1:
            raise ValueError("batch_size must be a positive integer, got "
                             f"{_describe(batch_size, 'predict')}")
        x = x[:_rows_for_steps(steps, batch_size, len(x), "predict")]
        result = np.empty((len(x),) + tuple(self.output_shape[1:]), self._out_dtype)
        cb = (callbacks_module.CallbackList(
            callbacks, self, {"steps": int(math.ceil(len(x) / batch_size)), "verbose": verbose})
            if callbacks else None)
        if cb is not None:
            cb.on_predict_begin()
        batch_logs = cb is not None and cb.wants_predict_batches
        batch_size = self._inference_rows(batch_size, batch_logs)
        for step, lo in enumerate(range(0, len(x), batch_size)):
            if batch_logs:
                cb.on_predict_batch_begin(step)
            result[lo:lo + batch_size] = self._forward(x[lo:lo + batch_size], False)
            if batch_logs:  # as Keras 3: the batch's outputs
                cb.on_predict_batch_end(step, {"outputs": result[lo:lo + batch_size].copy()})
        if cb is not None:
            cb.on_predict_end()
        return result

    def __call__(self, x, training=False):
        """Forward pass on ``x`` (one batch); ``training=True`` uses training-mode behaviour
        (dropout masks, batch statistics), as Keras."""
        x = self._prepare_x(x)
        self._ensure_built(x)
        return np.array(self._forward(x, bool(training)), copy=True)

    # ---- saving (fastnn/saving.py) ----------------------------------------------------------
    def save(self, filepath, overwrite=True, zipped=None, include_optimizer=True):
        """save(filepath, overwrite=True): architecture, weights, compile settings, optimizer
        and RNG state in one zip/.npz file, written atomically. Reload with load_model."""
        from . import saving
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """save_weights(filepath, overwrite=True): the variables only, written atomically."""
        from . import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """load_weights(filepath, skip_mismatch=False): weights from save_weights (or save)."""
        from . import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    # ---- config -------------------------------------------------------------------------------
    def to_json(self, **kwargs):
        """The architecture as a JSON string (no weights); rebuild with model_from_json.
        ``kwargs`` go to json.dumps (e.g. indent=2)."""
        import json

        def plain(obj):  # NumPy scalars/arrays given as layer arguments (units=np.int64(3))
            if isinstance(obj, (np.generic, np.ndarray)):
                return obj.tolist()
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        kwargs.setdefault("default", plain)
        return json.dumps({"class_name": "Sequential", "config": self.get_config()}, **kwargs)

    def get_config(self):
        from .layers import get as _layer_class  # noqa: F401  (registry check happens on load)
        layers = []
        if self._input_shape is not None:
            layers.append({"class_name": "InputLayer",
                           "config": {"shape": list(self._input_shape[1:]), "name": (
                               self._input_layer.name if self._input_layer else "input_layer")}})
        for layer in self._layers:
            layers.append({"class_name": type(layer).__name__, "config": layer.get_config()})
        return {"name": self.name, "layers": layers, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        from .layers import get as layer_class
        # trainable given before the layers exist: each layer keeps its own saved flag
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for spec in config["layers"]:
            model.add(layer_class(spec["class_name"]).from_config(dict(spec["config"])))
        if model._input_shape is not None:
            model.build()
        return model


def _numbers(a):
    """An object array holding only numbers (pandas' df.values of mixed int/float columns) as
    float64; anything else unchanged (the caller names the dtype)."""
    if a.dtype.kind == "O" and a.ndim:
        try:
            return a.astype(np.float64)
        except (TypeError, ValueError):
            pass
    return a


_ARRAY_HINTS = {
    "fit": "the arguments after the data are batch_size, epochs, ...: pass validation data as "
           "validation_data=(x_val, y_val)",
    "evaluate": "the arguments after the data are evaluate(x, y, batch_size, verbose, "
                "sample_weight, ...): pass weights as sample_weight=",
    "predict": "predict(x) takes the inputs only, no targets: predict(x, batch_size=...)",
}


def _describe(value, method="fit"):
    """A short description of a bad argument for an error message (never a whole array),
    with a hint for the positional mistake that puts an array there in ``method``."""
    if isinstance(value, np.ndarray) and value.ndim:
        return f"an array of shape {value.shape} ({_ARRAY_HINTS[method]})"
    return repr(value)


def _rows_for_steps(steps, batch_size, n, what):
    """The rows ``steps`` batches of ``batch_size`` cover (all ``n`` when steps is None),
    as Keras runs only ``steps`` batches of array data."""
    if steps is None:
        return n
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"{what}: steps must be a positive integer or None, got {steps!r}")
    return min(n, int(steps) * int(batch_size))


def clone_model(model):
    """A new Sequential with the same architecture and freshly initialized weights."""
    config = model.get_config()
    config = dict(config, name=unique_name(model.name + "_clone"))
    for spec in config["layers"]:
        spec["config"] = dict(spec["config"])
        spec["config"].pop("name", None)
    return Sequential.from_config(config)


def model_from_json(json_string, custom_objects=None):
    """A new, uncompiled Sequential (fresh weights) from ``model.to_json()``'s output."""
    import json
    spec = json.loads(json_string)
    if not isinstance(spec, dict) or spec.get("class_name") != "Sequential" \
            or not isinstance(spec.get("config"), dict):
        raise ValueError("model_from_json: expected the output of a fastnn Sequential's to_json() "
                         "(fastnn builds Sequential models only)")
    if custom_objects:
        from .layers import register
        for name, cls in custom_objects.items():
            register(cls, name)
    return Sequential.from_config(spec["config"])


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True, restore_rng=True):
    """load_model(filepath, custom_objects=None, compile=True, safe_mode=True): a model saved
    by ``model.save`` (see fastnn.saving.load_model)."""
    from . import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                             safe_mode=safe_mode, restore_rng=restore_rng)


Model = Sequential
