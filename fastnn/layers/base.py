"""The Layer base class and Variable, the weight holder.

A layer owns its variables (value + gradient buffer) and its work buffers. The training
loop calls ``forward(x, training)`` then ``backward(dy, need_dx)``; both write into
preallocated buffers (``_buffer``) so a built model allocates nothing per step.
``__call__`` is the Keras-facing entry point and returns fresh arrays.
"""
import inspect
import re
import threading

import numpy as np

from .. import backend
from ..backend import unique_name  # noqa: F401  (layers and models name themselves)

# fastnn.saving installs a check here while it rebuilds a model from a file, so a hostile
# architecture is refused before add_weight allocates what it asks for (thread-local: other
# threads building models are unaffected).
_WEIGHT_GUARD = threading.local()
# The work arrays the layers of a model write during one inference call: None (the layers'
# own buffers, what training uses) or a dict {id(layer): {key: array}} handed to this
# thread by the model, so that threads predicting with one model never share a buffer.
_BUFFER_SET = threading.local()


class buffer_set:
    """``with buffer_set(store):`` makes the layers' forward passes in this thread write
    their work arrays into ``store`` (a dict kept by the caller; None: the layers' own)."""

    def __init__(self, store):
        self.store = store

    def __enter__(self):
        self.previous = getattr(_BUFFER_SET, "store", None)
        _BUFFER_SET.store = self.store
        return self.store

    def __exit__(self, *exc):
        _BUFFER_SET.store = self.previous


def inference_buffers():
    """The work-array set this thread's forward passes write into (see buffer_set), or None
    when the layers use their own (training)."""
    return getattr(_BUFFER_SET, "store", None)


def is_symbolic(x):
    """An Input, or the output of a layer called on one (fastnn.functional.KerasTensor)."""
    return getattr(type(x), "_symbolic", False) is True


def symbolic_call(layer, x):
    """``layer(x)`` on symbolic inputs; fastnn.functional installs the real one (it records
    a node of a graph) when it is imported, which ``import fastnn`` does."""
    raise RuntimeError("fastnn.functional is not imported")


def _snake_case(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Variable:
    """A weight: ``.value`` (the ndarray, updated in place), ``.grad`` (its gradient buffer,
    allocated when the layer is built), ``.name``, ``.trainable``; Keras' ``numpy()`` and
    ``assign()``. Optional ``regularizer`` and ``constraint`` travel with the variable."""

    def __init__(self, value, name, trainable=True, regularizer=None, constraint=None, layer=None):
        self.value = value
        self.grad = np.zeros_like(value) if trainable else None
        self.name = name
        self._trainable = trainable
        self.regularizer = regularizer
        self.constraint = constraint
        self.layer = layer

    @property
    def trainable(self):
        """False for statistics such as BatchNormalization's moving mean, or when the owning
        layer is frozen."""
        return self._trainable and (self.layer is None or self.layer.trainable)

    @property
    def path(self):
        return f"{self.layer.name}/{self.name}" if self.layer is not None else self.name

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return self.value.dtype

    def numpy(self):
        """A copy of the value."""
        return self.value.copy()

    def assign(self, value):
        """Copy ``value`` into the variable (in place, so buffers that view it stay valid)."""
        np.copyto(self.value, self._checked(value))

    def _checked(self, value):
        """``value`` as an array of this variable's shape and dtype, refused (ValueError or
        TypeError naming the variable) when it does not fit; nothing is written."""
        value = np.asarray(value)
        if value.dtype.kind == "O":  # e.g. numbers in an object array from pandas
            try:
                value = value.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if value.dtype.kind not in "biuf":
            raise TypeError(f"Cannot assign a value of dtype {value.dtype} to variable "
                            f"{self.path!r} ({self.value.dtype}): expected real numbers")
        if value.shape != self.value.shape:
            raise ValueError(f"Cannot assign a value of shape {value.shape} to variable "
                             f"{self.path!r} of shape {self.value.shape}")
        if value.dtype != self.value.dtype:
            with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
                value = value.astype(self.value.dtype)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"Cannot assign non-finite values (NaN or inf, or values beyond "
                             f"{self.value.dtype}'s range) to variable {self.path!r}")
        return value

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype}>"


def _offset(view, base):
    """Element offset of ``view`` inside the 1-D buffer ``base`` (None if it is not a view of it)."""
    if view is None or view.base is not base or not view.flags.c_contiguous:
        return None
    return (view.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // base.itemsize


def is_packed(variables):
    """True when the values, and the gradients, of ``variables`` are consecutive slices of one
    1-D buffer each, in this order (see ``pack_variables``)."""
    if not variables:
        return False
    vbase, gbase = variables[0].value.base, variables[0].grad.base if variables[0].grad is not None else None
    if vbase is None or gbase is None or vbase.ndim != 1 or gbase.ndim != 1:
        return False
    off = 0
    for v in variables:
        if _offset(v.value, vbase) != off or _offset(v.grad, gbase) != off:
            return False
        off += v.value.size
    return off == vbase.size == gbase.size


def _check_initialized(layer):
    if "_variables" not in vars(layer):  # Layer.__init__ never ran
        raise RuntimeError(f"Layer {type(layer).__name__}: you forgot to call super().__init__() "
                           "as the first statement of its __init__() (Keras requires it too)")


def _weight_list(weights, owner):
    # a 1-D object array holds one array per weight (np.load of a saved get_weights() list),
    # as Keras zips it; a numeric array is one weight given without its list
    if isinstance(weights, np.ndarray) and weights.dtype.kind == "O" and weights.ndim == 1:
        return list(weights)
    if weights is None or isinstance(weights, (str, bytes, dict, np.ndarray)):
        raise TypeError(f"{owner}: set_weights expects a list of arrays, got "
                        f"{weights if weights is None else type(weights).__name__}")
    return list(weights)


def pack_variables(variables):
    """Move the values and gradients of ``variables`` (one dtype) into one contiguous buffer
    each, in order, and rebind every variable to its slice (values are copied).

    Why: an optimizer then updates a whole model in one C call instead of one per variable,
    which matters for deep, narrow nets (42 calls a step for 20 Dense layers). Everything in
    fastnn reads and writes ``.value`` / ``.grad`` in place, so the views are transparent.
    """
    variables = list(variables)
    if is_packed(variables):
        return variables[0].value.base, variables[0].grad.base
    dtypes = {v.value.dtype for v in variables}
    if len(dtypes) != 1:
        raise ValueError(f"pack_variables: variables of one dtype expected, got {sorted(map(str, dtypes))}")
    total = sum(v.value.size for v in variables)
    values = np.empty(total, dtypes.pop())
    grads = np.zeros_like(values)
    off = 0
    for v in variables:
        n = v.value.size
        shape = v.value.shape
        values[off:off + n] = v.value.reshape(-1)
        if v.grad is not None:
            grads[off:off + n] = v.grad.reshape(-1)
        v.value = values[off:off + n].reshape(shape)
        v.grad = grads[off:off + n].reshape(shape)
        off += n
    return values, grads


class Layer:
    """Base class of all layers (and of user layers).

    ``Layer(trainable=True, name=None, dtype=None, input_shape=None)``: as Keras, the first
    layer of a Sequential may carry ``input_shape=`` (or ``input_dim=``).

    A user layer implements ``build(input_shape)`` (creating weights with ``add_weight``),
    ``call(x, training=False)`` on NumPy arrays, ``compute_output_shape``, and, to be
    trainable, ``backward(dy, need_dx=True)`` that fills each variable's ``.grad`` and
    returns the gradient with respect to the input.
    """

    # The forward pass of the nearest class that implements ``forward`` itself (None for a
    # user layer written with ``call`` only); see __init_subclass__.
    _native_forward = None
    # Does ``call`` take ``training``? Keras passes it only then (``def call(self, inputs)``).
    _call_takes_training = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "call" in cls.__dict__:
            try:
                params = inspect.signature(cls.__dict__["call"]).parameters.values()
                cls._call_takes_training = any(p.name == "training" or p.kind == p.VAR_KEYWORD
                                               for p in params)
            except (TypeError, ValueError):
                cls._call_takes_training = True
        if "forward" in cls.__dict__:
            cls._native_forward = cls.__dict__["forward"]
        elif "call" in cls.__dict__ and cls._native_forward is not None:
            # A user subclass of a built-in layer that overrides Keras' ``call``, e.g. HOML's
            # ``class MCDropout(Dropout): def call(self, x, training=False): return
            # super().call(x, training=True)``. The training loop and predict run
            # ``forward``, so route it through the user's call (whose super().call() reaches
            # the built-in forward): otherwise the override would be silently ignored.
            # The built-in backward still runs, so an override that changes the math (not
            # just the training flag) must also override backward: fastnn has no autodiff.
            cls.forward = Layer._forward_through_call

    def _forward_through_call(self, x, training=False):
        return self.call(x, training=training) if self._call_takes_training else self.call(x)

    def __init__(self, trainable=True, name=None, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.dtype = np.dtype(dtype or backend.floatx()).name
        if dtype is not None and self.dtype not in ("float32", "float64"):
            raise TypeError(f"Layer {self.name!r}: dtype must be float32 or float64, got {dtype}")
        if input_dim is not None:
            input_shape = (input_dim,)
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape[1:])
        if isinstance(input_shape, (int, np.integer)):  # input_shape=4 as Input(shape=4)
            input_shape = (int(input_shape),)
        # NumPy integers (input_shape=X.shape[1:] of an array) become Python ints
        self._input_shape_arg = (tuple(int(d) if isinstance(d, np.integer) else d for d in input_shape)
                                 if input_shape is not None else None)
        self.built = False
        self._variables = []
        self._buffers = {}
        self.input_shape = None
        self.output_shape = None

    # ---- weights ---------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    def add_weight(self, shape, initializer="glorot_uniform", name=None, trainable=True,
                   regularizer=None, constraint=None, dtype=None):
        """Create a Variable owned by this layer (Keras' add_weight)."""
        from .. import initializers
        guard = getattr(_WEIGHT_GUARD, "check", None)
        if guard is not None and guard(self, tuple(shape), np.dtype(dtype or self.dtype)):
            # load_model overwrites every weight from the file: skip the (possibly costly,
            # e.g. orthogonal) initialization
            value = np.empty(tuple(shape), dtype or self.dtype)
        else:
            init = initializers.get(initializer)
            # np.array, not ascontiguousarray: that one turns a shape-() weight into (1,)
            value = np.array(init(tuple(shape), dtype or self.dtype), dtype=dtype or self.dtype,
                             order="C")
            if value.shape != tuple(shape):
                raise ValueError(f"Layer {self.name!r}: initializer {initializer!r} returned shape "
                                 f"{value.shape} for weight {name!r} of shape {tuple(shape)}")
        var = Variable(value, name or f"variable_{len(self._variables)}", trainable,
                       regularizer, constraint, layer=self)
        self._variables.append(var)
        return var

    @property
    def variables(self):
        return list(self._variables)

    @property
    def weights(self):
        return list(self._variables)

    @property
    def trainable_weights(self):
        return [v for v in self._variables if v.trainable]

    @property
    def non_trainable_weights(self):
        return [v for v in self._variables if not v.trainable]

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self):
        return [v.numpy() for v in self._variables]

    def set_weights(self, weights):
        weights = _weight_list(weights, f"Layer {self.name!r}")
        if len(weights) != len(self._variables):
            raise ValueError(f"Layer {self.name!r} expects {len(self._variables)} weight arrays "
                             f"({[v.shape for v in self._variables]}), got {len(weights)}")
        checked = [v._checked(w) for v, w in zip(self._variables, weights)]  # all, then copy
        for v, w in zip(self._variables, checked):
            np.copyto(v.value, w)

    def count_params(self):
        return int(sum(v.value.size for v in self._variables))

    # ---- building and shapes -----------------------------------------------------------
    def build(self, input_shape):
        self.built = True

    def _maybe_build(self, input_shape):
        if not self.built:
            self.input_shape = tuple(input_shape)
            self.build(tuple(input_shape))
            self.built = True
            self.output_shape = tuple(self.compute_output_shape(tuple(input_shape)))

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape`` (batch axis first). A user layer written with
        ``call`` only gets it, as in Keras, from running ``call`` (here on one row of zeros):
        assuming the input shape built the next layer for the wrong width."""
        if type(self)._native_forward is None and type(self).call is not Layer.call:
            with np.errstate(all="ignore"):
                out = self.forward(np.zeros((1,) + tuple(input_shape[1:]), self.dtype), False)
            return (input_shape[0],) + tuple(np.shape(out)[1:])
        return tuple(input_shape)

    def _check_input(self, x):
        if self.input_shape is not None and tuple(x.shape[1:]) != tuple(self.input_shape[1:]):
            raise ValueError(f"Layer {self.name!r} expects inputs of shape "
                             f"(batch, {', '.join(map(str, self.input_shape[1:]))}), "
                             f"got {tuple(x.shape)}")

    # ---- computation ---------------------------------------------------------------------
    # Set by Sequential when it prepares training: the ``dy`` its loop hands to backward is a
    # work buffer (the loss gradient or the layer above's dx) that nothing reads afterwards,
    # so an elementwise backward may write its result over it: one array fewer per layer in
    # cache and in memory. Measured (same process, alternating): epochs 2-5% shorter with BN +
    # dropout at batch 128 and 1024, 1-2% for the plain MLP, within noise at batch 32.
    _scratch_dy = False

    def _backward_out(self, key, dy, shape):
        """The array an elementwise backward writes into: ``dy`` itself when the model said
        it is scratch (and it is a writable C-contiguous array of this layer's dtype and the
        result's shape), else the layer's own buffer ``key``."""
        if self._scratch_dy and dy.shape == shape and dy.dtype == self.dtype:
            flags = dy.flags  # one flags object, not two
            if flags.c_contiguous and flags.writeable:
                return dy
        return self._buffer(key, shape)

    @property
    def _activity_loss(self):
        """The activity penalty of the last forward pass, kept where its work arrays are
        (the thread's inference set, or the layer itself): threads evaluating at once do
        not read each other's."""
        store = getattr(_BUFFER_SET, "store", None)
        if store is None:
            return self.__dict__.get("_activity_loss_value", 0.0)
        return store.get(id(self), {}).get("_activity_loss", 0.0)

    @_activity_loss.setter
    def _activity_loss(self, value):
        store = getattr(_BUFFER_SET, "store", None)
        if store is None:
            self.__dict__["_activity_loss_value"] = value
        else:
            store.setdefault(id(self), {})["_activity_loss"] = value

    def _buffer(self, key, shape, dtype=None):
        """A work array of ``shape`` reused across steps: allocated once for the largest batch
        seen, then returned as a view of its first rows."""
        store = getattr(_BUFFER_SET, "store", None)
        buffers = self._buffers if store is None else store.setdefault(id(self), {})
        buf = buffers.get(key)
        if buf is not None and buf.shape == shape and (dtype is None or buf.dtype == dtype):
            return buf  # every full batch: one comparison
        if buf is None or buf.shape[1:] != shape[1:] or buf.shape[0] < shape[0] \
                or (dtype is not None and buf.dtype != dtype):
            buf = np.empty(shape, dtype or self.dtype)
            buffers[key] = buf
        return buf if buf.shape[0] == shape[0] else buf[:shape[0]]

    def call(self, x, training=False):
        """Forward pass on a NumPy array; user layers override this (or ``forward``). On a
        built-in layer it is the layer's own forward pass, so ``super().call(x, training)``
        works in subclasses as in Keras."""
        native = type(self)._native_forward
        return x if native is None else native(self, x, training)

    def forward(self, x, training=False):
        """Forward pass used by training; may return a view of an internal buffer."""
        # np.asarray: a user's call() may return a list (or an array-like)
        return np.asarray(self.call(x, training=training) if self._call_takes_training
                          else self.call(x))

    def backward(self, dy, need_dx=True):
        """Gradients: fills each trainable variable's ``.grad`` and returns dL/dx."""
        if self._variables and any(v.trainable for v in self._variables):
            raise NotImplementedError(
                f"Layer {self.name!r} ({type(self).__name__}) has trainable weights but no "
                "backward(); implement backward(dy, need_dx) to train it")
        raise NotImplementedError(f"Layer {self.name!r} ({type(self).__name__}) has no backward()")

    def regularization_loss(self):
        """Sum of the weight regularizers' penalties (added to the reported loss)."""
        total = 0.0
        for v in self._variables:
            if v.regularizer is not None:
                total += v.regularizer(v.value)
        return total

    def __call__(self, x, training=False):
        _check_initialized(self)
        if is_symbolic(x) or (isinstance(x, (list, tuple)) and x and is_symbolic(x[0])):
            return symbolic_call(self, x)  # the functional API: a node of a graph
        if isinstance(x, Layer):
            raise TypeError(
                f"Layer {self.name!r} was called on the layer {x.name!r}: call layers on "
                "Input(...) or on other layers' outputs (the functional API), e.g. "
                "h = Dense(30)(Input(shape=(8,))), or stack them in a Sequential. (Calling a layer on a "
                "NumPy array works.)")
        x = np.asarray(x)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self._maybe_build(x.shape)
        self._check_input(x)
        return np.array(self.forward(np.ascontiguousarray(x), training=training), copy=True)

    # ---- config -------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype}
        if self._input_shape_arg is not None:
            config["input_shape"] = list(self._input_shape_arg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
