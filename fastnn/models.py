"""Sequential models: a stack of layers, its weights, summary, config and saving.

Training (compile / fit / evaluate / predict) is fastnn.training.Trainer's; the model gives
it the forward pass (every layer into its own buffers) and the backward pass (stopping below
the lowest trainable layer).
"""
import numpy as np

from . import backend
from .layers.base import Layer, _check_initialized, _weight_list, is_symbolic, unique_name
from .layers.core import InputLayer
from .training.trainer import Trainer


class Model(Trainer):
    """Model(inputs, outputs, name=None): a graph of layers (the functional API, see
    fastnn.functional); Model(layers) or Model() without inputs: a Sequential, as fastnn's
    Model has always been. Both are Models (``isinstance(m, fastnn.Model)``).

    Keras' model subclassing (a subclass defining ``call``) is refused: fastnn's trainer
    runs its own forward and backward passes, it would never run a ``call``."""

    _kinds = {}  # "sequential" / "functional" -> the class (each registers itself)

    def __new__(cls, *args, **kwargs):
        if cls is not Model:
            return super().__new__(cls)
        # a graph: inputs/outputs given, or Model(Input, output) / Model([Inputs], [outputs]);
        # a list holding layers (Model([Input(...), Dense(1)])) is a Sequential's
        first = args[0] if args else None
        graph = "inputs" in kwargs or "outputs" in kwargs or is_symbolic(first) or (
            len(args) >= 2 and (first is None or isinstance(first, (list, tuple)) and bool(first)
                                and all(is_symbolic(t) for t in first)))
        # Python then runs the chosen class' __init__ with these arguments
        return super().__new__(Model._kinds["functional" if graph else "sequential"])

    def __init_subclass__(cls, kind=None, **kwargs):
        super().__init_subclass__(**kwargs)
        custom = sorted(m for m in ("call", "train_step", "test_step", "predict_step")
                        if m in cls.__dict__)
        if custom:
            raise TypeError(f"{cls.__name__}: fastnn supports Sequential and functional models "
                            f"(Model(inputs, outputs)); a subclass defining {', '.join(custom)}() "
                            "(Keras model subclassing) is not supported: build the same graph "
                            "with layers called on Input(...) and Model(inputs, outputs)")
        if kind is not None:
            Model._kinds[kind] = cls
        elif Model in cls.__bases__:
            raise TypeError(f"{cls.__name__}: fastnn.Model cannot be subclassed directly (a "
                            "Model is a Sequential or a graph, decided by its arguments); "
                            "subclass fastnn.Sequential to add methods to a stack of layers")

    # ---- weights: every model's are its layers' (each layer once) ------------------------
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
        with self._state_lock.reading():  # between two steps of a fit in another thread
            return [v.numpy() for v in self.weights]

    def set_weights(self, weights):
        weights = _weight_list(weights, f"{self._kind_name} {self.name!r}")
        own = self.weights
        if len(weights) != len(own):
            raise ValueError(f"{self._kind_name} {self.name!r} has {len(own)} weight arrays, got "
                             f"{len(weights)}")
        checked = [v._checked(w) for v, w in zip(own, weights)]  # all first: no half-set model
        with self._state_lock.writing():  # predictions in other threads: before or after
            for v, w in zip(own, checked):
                np.copyto(v.value, w)

    def count_params(self):
        return int(sum(v.value.size for v in self.weights))

    @property
    def _dtype(self):
        """The inputs' dtype: the first layer's (floatx for a model without layers)."""
        return self._layers[0].dtype if self._layers else backend.floatx()

    def _print_totals(self, print_fn):
        trainable = sum(v.value.size for v in self.trainable_weights)
        total = self.count_params()
        print_fn(f" Total params: {total:,}")
        print_fn(f" Trainable params: {trainable:,}")
        print_fn(f" Non-trainable params: {total - trainable:,}")

    # ---- pickling and copying (fastnn/saving.py) ---------------------------------------------
    def __reduce__(self):
        """pickle, cloudpickle, joblib, ``copy.deepcopy`` and ``copy.copy`` go through fastnn's
        saving format, as Keras 3's Model.__reduce__: the model is saved to bytes and rebuilt
        from them, so a copy resumes training exactly as ``save``/``load_model`` does (optimizer
        state and step, layer RNGs) and carries no scratch buffers. Rebuilding leaves fastnn's
        global random generator as it is. A subclass of Sequential is rebuilt as a Sequential (as
        load_model does)."""
        from . import saving
        return saving.reduce_model(self)


class Sequential(Model, kind="sequential"):
    """Sequential(layers=None, name=None): a linear stack of layers.

    ``Sequential(model_a.layers[:-1])`` shares those layer objects and their weights, as Keras.
    """

    _kind_name = "Sequential"

    def __init__(self, layers=None, name=None, trainable=True, **kwargs):
        if "inputs" in kwargs or "outputs" in kwargs:
            raise TypeError("Sequential takes layers, not inputs/outputs: for a graph of "
                            "layers use fastnn.Model(inputs=..., outputs=...)")
        if kwargs:
            raise TypeError(f"Sequential: unexpected keyword argument(s) {sorted(kwargs)}")
        self.name = name or unique_name("sequential")
        self._layers = []
        self._submodels = []  # Sequentials added whole (their layers are inlined in _layers)
        self._input_layer = None
        self._input_shape = None  # (None, features...)
        self.built = False
        self.trainable = trainable
        self._init_trainer()
        self._layer_dtypes = None
        for layer in layers or []:
            self.add(layer)

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

    def _call_symbolic(self, x):
        """``seq(tensor)`` in a graph: its layers, called in turn (the same objects)."""
        if isinstance(x, (list, tuple)):
            raise ValueError(f"Sequential {self.name!r} takes one input, got a list of {len(x)}")
        for layer in self._layers:
            x = layer(x)
        return x

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
            previous = self._input_shape
            self._input_shape = shape if shape[0] is None else (None,) + shape[1:]
            try:
                return self.build()
            except BaseException:  # a failed build leaves the model as it was
                self._input_shape, self.built = previous, False
                raise
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
        if self.compiled:
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
        self._print_totals(print_fn)

    # ---- what the trainer runs (fastnn/training/trainer.py) ---------------------------
    @property
    def _out_dtype(self):
        """The model's output (and target) dtype: the last layer's, as Keras."""
        return self._layer_dtypes[-1] if self._layer_dtypes is not None else self._dtype

    @property
    def _output_layer(self):
        return self._layers[-1]

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

    def _prepare_backward(self):
        """Per fit: refuse shared layers, hand every layer's dy to it as scratch, and find
        the lowest layer backprop must reach."""
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
            layer._scratch_dy = True  # see Layer._backward_out: _backward owns every dy
            if hasattr(layer, "fused_output_grad"):
                layer.fused_output_grad = False
        # Backprop stops at the lowest layer with trainable weights: frozen lower layers
        # cost nothing in the backward pass.
        self._backprop_stop = len(layers)
        for i, layer in enumerate(layers):
            if self.trainable and layer.trainable_weights:
                self._backprop_stop = i
                break

    def _epoch_graph(self):
        """For the compiled epoch (fastnn/training/compiled_epoch.py), after
        _prepare_backward: the chain as a graph, [(layer, links)], layer k reading tensor k
        (0 the input, k the output of layer k - 1), backward reaching down to _backprop_stop
        (see Functional._epoch_graph); or a str saying why not."""
        if type(self) is not Sequential:
            return "a subclass of Sequential (its step may differ)"
        stop = self._backprop_stop
        return [(layer, {"in0": i, "needs": i >= stop, "need_dx": i > stop, "want0": i > stop})
                for i, layer in enumerate(self._layers)]

    def _backward(self, d):
        """The output gradient ``d`` back through the layers, down to _backprop_stop."""
        layers = self._layers
        stop = self._backprop_stop
        casts = self._layer_dtypes
        for i in range(len(layers) - 1, stop - 1, -1):
            if casts is not None and d.dtype != casts[i]:
                d = d.astype(casts[i])
            d = layers[i].backward(d, i > stop)

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




def clone_model(model):
    """A new model with the same architecture and freshly initialized weights (a Sequential,
    or a graph whose layers keep their names, as Keras' clone_model)."""
    if not isinstance(model, Sequential):
        return type(model).from_config(model.get_config())
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
    kind = spec.get("class_name") if isinstance(spec, dict) else None
    if kind not in ("Sequential", "Functional") or not isinstance(spec.get("config"), dict):
        raise ValueError("model_from_json: expected the output of a fastnn model's to_json() "
                         "(class_name 'Sequential' or 'Functional')")
    if custom_objects:
        from .layers import register
        for name, cls in custom_objects.items():
            register(cls, name)
    if kind == "Functional":
        return Model._kinds["functional"].from_config(spec["config"])
    return Sequential.from_config(spec["config"])


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True, restore_rng=True):
    """load_model(filepath, custom_objects=None, compile=True, safe_mode=True): a model saved
    by ``model.save`` (see fastnn.saving.load_model)."""
    from . import saving
    return saving.load_model(filepath, custom_objects=custom_objects, compile=compile,
                             safe_mode=safe_mode, restore_rng=restore_rng)
