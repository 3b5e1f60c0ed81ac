"""The functional API: models that are graphs of layers (Keras 3's ``keras.Model(inputs,
outputs)``), e.g. a residual MLP or Hands-On ML's Wide & Deep network:

    inp = fastnn.Input(shape=(8,))
    h = layers.Dense(30, activation="relu")(inp)
    h = layers.Dense(30, activation="relu")(h)
    out = layers.Dense(1)(layers.Concatenate()([inp, h]))
    model = fastnn.Model(inputs=inp, outputs=out)

Calling a layer on an ``Input`` (or on what such a call returned) records a node instead of
computing: ``KerasTensor`` carries the shape and the layer that made it. ``Model`` orders the
nodes once (topologically, from the output back to the inputs), runs them forward in that
order and backward in reverse, adding up the gradients of a tensor that feeds several
layers. Training is fastnn.training.Trainer's, as for Sequential.

A graph may have several inputs (``fit([x_wide, x_deep], y)`` or ``fit({"wide": x_wide,
"deep": x_deep}, y)``, by the Inputs' names) and several outputs (a list, or a dict by name):
``compile`` then takes a loss per output (one for all, a list, or a dict by output name),
``loss_weights`` and metrics per output, and fit/evaluate log ``<output>_loss`` and
``<output>_<metric>`` as Keras does (fastnn.training.outputs).

A layer may be called at several places (shared weights: a siamese tower ``d = Dense(16);
a, b = d(x1), d(x2)``, or one layer applied twice in a row). Each call (node) then gets its
own work arrays and its own forward cache: after the call the graph keeps a shallow copy of
the layer's attributes (what its backward reads: ``_x``, ``_z``, masks, batch statistics)
and puts them back before that call's backward. The weight gradient is the sum over the
calls, as Keras': the first backward writes ``.grad``, the later ones write into scratch
arrays added to it. BatchNormalization updates its moving statistics at every call and a
dropout layer draws a new mask at every call, as in Keras. A user layer shared this way
must keep what its backward needs in attributes its forward sets (or in ``self._buffer``
arrays), not in arrays it fills in place.
"""
import numpy as np

from . import backend
from .backend import unique_name
from .layers import base as layer_base
from .layers.base import _check_initialized, is_symbolic
from .layers.core import InputLayer
from .layers.merging import Merge
from .models import Model


class KerasTensor:
    """A symbolic tensor: the output of ``layer`` called on ``inputs`` (symbolic tensors or
    Input layers). ``shape`` has None for the batch axis, as Keras'."""

    _symbolic = True

    def __init__(self, shape, dtype, layer, inputs):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.layer = layer
        self.inputs = list(inputs)
        self.name = f"{layer.name}_output"

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def _shape(t):
    return (None,) + tuple(t.shape[1:])


def call_symbolic(layer, x):
    """``layer(x)`` on symbolic inputs: build the layer for their shapes, return its output
    tensor. A layer called twice (shared weights) must get the same input shape."""
    _check_initialized(layer)
    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    for t in inputs:
        if not is_symbolic(t):
            raise TypeError(f"Layer {layer.name!r}: mixed symbolic and concrete inputs "
                            f"({type(t).__name__}); call it on Input() or on layer outputs")
    if isinstance(layer, Merge):
        layer._maybe_build([_shape(t) for t in inputs])
        out_shape = layer.compute_output_shape([_shape(t) for t in inputs])
    else:
        if len(inputs) != 1:
            raise ValueError(f"Layer {layer.name!r} takes one input, got a list of {len(inputs)} "
                             "(merge them first, e.g. Concatenate()([a, b]))")
        shape = _shape(inputs[0])
        if layer.built and layer.input_shape is not None \
                and tuple(layer.input_shape[1:]) != shape[1:]:
            raise ValueError(f"Layer {layer.name!r} was built for inputs of shape "
                             f"{(None,) + tuple(layer.input_shape[1:])} but is called on {shape}")
        layer._maybe_build(shape)
        out_shape = (None,) + tuple(layer.compute_output_shape(shape)[1:])
    return KerasTensor(out_shape, layer.dtype, layer, inputs)


class _Node:
    """One call of a layer in the graph. For a layer called at several places (``shared``):
    ``buffers`` the work arrays of this call, ``state`` the layer's attributes after this call's forward, ``alone``
    whether the output is a model output nobody else reads (the fused softmax gradient is
    for that call only), ``accumulate`` whether its backward adds to the weight gradients
    (an earlier backward of the same layer wrote them in this step)."""

    __slots__ = ("layer", "inputs", "output", "merge", "need_dx", "grad_inputs", "shared",
                 "buffers", "state", "alone", "accumulate", "activity")

    def __init__(self, layer, inputs, output, merge):
        self.layer, self.inputs, self.output, self.merge = layer, inputs, output, merge
        self.shared = False
        self.buffers = self.state = None
        self.alone = self.accumulate = self.activity = False


# Attributes of a shared layer that are not one call's forward cache, so never put back from
# a node's copy: the dropout family's seed and call counter (_saved_attributes, they must only
# advance), the fused-gradient flag (set per node in backward) and the activity penalty (the
# graph sums it over the calls).
_NOT_CALL_STATE = frozenset(("fused_output_grad", "_activity_loss_value"))


def _call_state(layer):
    """A shallow copy of ``layer``'s attributes after one of its calls (see _NOT_CALL_STATE)."""
    keep = getattr(layer, "_saved_attributes", ())
    return {k: v for k, v in layer.__dict__.items()
            if k not in _NOT_CALL_STATE and k not in keep}


class Functional(Model, kind="functional"):
    """Model(inputs, outputs, name=None): a graph of layers from ``inputs`` (an Input, or a
    list of them) to ``outputs`` (a layer output, or a list of one)."""

    _kind_name = "Model"

    def __init__(self, inputs, outputs, name=None, trainable=True):
        self.name = name or unique_name("functional")
        feature_space = _feature_space_of(inputs, self.name)
        if feature_space is not None:  # the raw columns: the graph starts at their encoding
            encoded = feature_space.get_encoded_features()
            inputs = [encoded[n] for n in feature_space._order()] if isinstance(encoded, dict) \
                else encoded
        if isinstance(inputs, dict):
            raise NotImplementedError("Model: a dict of inputs is not supported yet; pass a list "
                                      "of Inputs (data may still come as a dict by their names)")
        ins = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        # Keras: a dict of outputs names them by its keys (predict returns a dict), a list by
        # the layers that make them
        self._output_keys = list(outputs) if isinstance(outputs, dict) else None
        outs = (list(outputs.values()) if isinstance(outputs, dict)
                else list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])
        if not ins or not outs:
            raise ValueError(f"Model {self.name!r}: needs at least one input and one output")
        for t in ins:
            if not isinstance(t, InputLayer):
                raise TypeError(f"Model {self.name!r}: inputs must be Input(...) objects, got "
                                f"{type(t).__name__}")
        names = [t.name for t in ins]
        if len(set(names)) != len(names):
            raise ValueError(f"Model {self.name!r}: the inputs' names must differ, got {names}")
        for t in outs:
            if not is_symbolic(t):
                raise TypeError(f"Model {self.name!r}: outputs must be layer outputs (symbolic "
                                f"tensors), got {type(t).__name__}")
        if len({id(t) for t in outs}) != len(outs):
            raise ValueError(f"Model {self.name!r}: the same tensor is given twice as an output")
        self._inputs_list, self._outputs_list = ins, outs
        self._nodes = self._order(ins, outs)
        self._input_layer = ins[0]
        self._input_shape = (None,) + tuple(ins[0].shape[1:])
        if len(ins) > 1:  # the trainer takes a list or a dict of arrays (Trainer._inputs)
            self._input_names = names
            self._input_shapes = [(None,) + tuple(t.shape[1:]) for t in ins]
        if len(outs) > 1:  # the trainer's several-output path (fastnn.training.outputs)
            self._output_names = self._output_keys or [t.layer.name for t in outs]
            if len(set(self._output_names)) != len(outs):
                raise ValueError(f"Model {self.name!r}: the outputs' names must differ, got "
                                 f"{self._output_names} (a layer gives two outputs?)")
            self.output_shape = [_shape(t) for t in outs]
        else:
            self.output_shape = _shape(outs[0])
        self._layers = []
        for node in self._nodes:
            if all(node.layer is not seen for seen in self._layers):
                self._layers.append(node.layer)
        self._mark_shared_nodes(outs)
        seen = {}
        for layer in list(ins) + self._layers:  # configs and files connect layers by name
            if seen.setdefault(layer.name, layer) is not layer:
                raise ValueError(f"Model {self.name!r}: two layers are named {layer.name!r}; the "
                                 "layers of a graph need unique names")
        used = {id(t) for node in self._nodes for t in node.inputs}
        unused = [t.name for t in ins if id(t) not in used]
        if unused:
            import warnings
            warnings.warn(f"Model {self.name!r}: the output does not depend on the input(s) "
                          f"{unused}", UserWarning, stacklevel=2)
        self.built = True
        self._trainable = bool(trainable)
        if not trainable:
            self.trainable = False
        self._init_trainer()
        dts = [np.dtype(layer.dtype) for layer in self._layers] or [np.dtype(backend.floatx())]
        self._layer_dtypes = dts if len(set(dts)) > 1 else None
        if feature_space is not None:
            self._attach_feature_space(feature_space)

    def _attach_feature_space(self, feature_space):
        """Run ``feature_space`` on the raw columns before the graph (Keras' structured-data
        guide: ``Model(inputs=fs.get_inputs(), outputs=...)``); saved with the model."""
        encoded = feature_space.get_encoded_features()
        widths = ([int(encoded[n].shape[-1]) for n in feature_space._order()]
                  if isinstance(encoded, dict) else [int(encoded.shape[-1])])
        have = [int(t.shape[-1]) for t in self._inputs_list]
        if widths != have:
            raise ValueError(f"Model {self.name!r}: the feature space encodes widths {widths} but "
                             f"the model's inputs take {have}")
        self._feature_space = feature_space

    def _mark_shared_nodes(self, outs):
        """The nodes of layers called at several places: their own work arrays and the
        facts backward needs (see _Node)."""
        calls = {}
        for node in self._nodes:
            calls.setdefault(id(node.layer), []).append(node)
        read = {id(t) for node in self._nodes for t in node.inputs}
        returned = {id(t) for t in outs}
        self._last_calls = []  # each shared layer's last call: its state is left after a step
        for nodes in calls.values():
            if len(nodes) < 2:
                continue
            for node in nodes:
                node.shared, node.buffers = True, {}
                node.alone = id(node.output) in returned and id(node.output) not in read
                node.activity = getattr(node.layer, "activity_regularizer", None) is not None
            self._last_calls.append(nodes[-1])

    @staticmethod
    def _order(ins, outs):
        """The nodes from the inputs to the outputs, each after the nodes it reads."""
        order, state = [], {}  # id(tensor) -> 1 visiting, 2 done
        inputs = {id(t) for t in ins}

        def visit(t, path):
            if id(t) in inputs:
                return
            if isinstance(t, InputLayer):
                raise ValueError(f"Model: the output depends on the Input {t.name!r}, which is "
                                 "not among the model's inputs (outputs must be computed from "
                                 "the inputs given)")
            if state.get(id(t)) == 1:
                raise ValueError(f"Model: the graph has a cycle through layer {t.layer.name!r}")
            if state.get(id(t)) == 2:
                return
            state[id(t)] = 1
            for parent in t.inputs:
                visit(parent, path + [t])
            state[id(t)] = 2
            order.append(_Node(t.layer, t.inputs, t, isinstance(t.layer, Merge)))
        for t in outs:
            if isinstance(t, InputLayer) and id(t) in inputs:
                raise ValueError(f"Model: the output {t.name!r} is an input itself: add a layer")
            visit(t, [])
        return order

    # ---- structure ----------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        for layer in getattr(self, "_layers", []):
            layer.trainable = value

    @property
    def layers(self):
        """The Input layers, then every layer in the order the graph runs them (Keras)."""
        return list(self._inputs_list) + list(self._layers)

    @property
    def inputs(self):
        return list(self._inputs_list)

    @property
    def outputs(self):
        return list(self._outputs_list)

    @property
    def input_shape(self):
        """(None, features...), or a list of them for several inputs (Keras)."""
        return list(self._input_shapes) if self._input_shapes else self._input_shape

    def build(self, input_shape=None):
        """A graph is built when it is made (its Input gives every shape)."""

    def _call_symbolic(self, x):
        """``model(tensors)`` in another graph: this graph's nodes again, on the new inputs,
        with the same layer objects (shared weights)."""
        xs = list(x) if isinstance(x, (list, tuple)) else [x]
        if len(xs) != len(self._inputs_list):
            raise ValueError(f"Model {self.name!r} takes {len(self._inputs_list)} input(s), got "
                             f"{len(xs)}")
        values = {id(t): xi for t, xi in zip(self._inputs_list, xs)}
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            values[id(node.output)] = node.layer(args if node.merge else args[0])
        return self._structured([values[id(t)] for t in self._outputs_list])

    def _structured(self, outs):
        """The outputs as the model was given them: one, a list, or a dict by key (Keras)."""
        if self._output_names is None:
            return outs[0]
        return dict(zip(self._output_keys, outs)) if self._output_keys else outs

    def _unique_layers(self):
        return list(self._layers)

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No layer named {name!r} in {self.name!r}")

    def summary(self, print_fn=None):
        """A table of layers, output shapes, parameter counts and what each is connected to."""
        print_fn = print_fn or print
        rows = [(f"{t.name} (InputLayer)", str((None,) + tuple(t.shape[1:])), "0", "-")
                for t in self._inputs_list]
        names = {id(t): t.name for t in self._inputs_list}
        for node in self._nodes:
            names[id(node.output)] = node.layer.name
            rows.append((f"{node.layer.name} ({type(node.layer).__name__})", str(node.output.shape),
                         f"{node.layer.count_params():,}",
                         ", ".join(names.get(id(t), "?") for t in node.inputs)))
        heads = ("Layer (type)", "Output Shape", "Param #", "Connected to")
        w = [max(len(h), *(len(r[i]) for r in rows)) + 2 for i, h in enumerate(heads)]
        line = "\u2500" * sum(w)
        print_fn(f'Model: "{self.name}"')
        print_fn(line)
        print_fn("".join(f"{h:<{w[i]}}" for i, h in enumerate(heads)))
        print_fn(line)
        for r in rows:
            print_fn("".join(f"{c:<{w[i]}}" for i, c in enumerate(r)))
        print_fn(line)
        self._print_totals(print_fn)

    # ---- what the trainer runs ------------------------------------------------------------
    @property
    def _out_dtype(self):
        return self._outputs_list[0].layer.dtype

    @property
    def _output_layer(self):
        return self._outputs_list[0].layer

    @property
    def _output_layers(self):
        """The layer making each output, and whether that output feeds nothing else (its
        gradient may then be the fused softmax + cross-entropy one)."""
        read = {id(t) for node in self._nodes for t in node.inputs}
        return [(t.layer, id(t) not in read) for t in self._outputs_list]

    @property
    def output_names(self):
        """The outputs' names (Keras 3): the dict keys, else the layers making them."""
        return list(self._output_names or [self._outputs_list[0].layer.name])

    def _forward(self, x, training):
        if self._input_names is None:
            values = {id(self._input_layer): x}
        else:  # a list in the inputs' order (the trainer made it so)
            values = {id(t): xi for t, xi in zip(self._inputs_list, x)}
        casts = self._layer_dtypes is not None
        activity = None
        for node in self._nodes:
            args = [values[id(t)] for t in node.inputs]
            if casts:
                dt = node.layer.dtype
                args = [a if a.dtype == dt else a.astype(dt) for a in args]
            if node.shared:
                values[id(node.output)] = self._call_shared(node, args, training)
                if node.activity:  # Keras: every call adds its activity penalty
                    activity = {} if activity is None else activity
                    layer = node.layer
                    before = activity[id(layer)][1] if id(layer) in activity else 0.0
                    activity[id(layer)] = (layer, before + layer._activity_loss)
                continue
            values[id(node.output)] = node.layer.forward(args if node.merge else args[0],
                                                         training)
        if activity is not None:
            for layer, total in activity.values():
                layer._activity_loss = total
        if self._output_names is None:
            return values[id(self._outputs_list[0])]
        return [values[id(t)] for t in self._outputs_list]

    @staticmethod
    def _call_shared(node, args, training):
        """One call of a shared layer: its own work arrays, and its attributes kept for its
        backward. In a thread's inference set (predict, evaluate) the work arrays are keyed
        by layer, so the next call would write over this output: it is copied instead."""
        layer = node.layer
        x = args if node.merge else args[0]
        if layer_base.inference_buffers() is not None:
            return np.array(layer.forward(x, training), copy=True)
        layer._buffers = node.buffers
        out = layer.forward(x, training)
        node.state = _call_state(layer)
        return out

    def _prepare_backward(self):
        """Per fit: which nodes backprop must reach (those with trainable weights and all
        after them), and which calls of a shared layer add to its weight gradients."""
        needs = {id(t): False for t in self._inputs_list}
        for node in self._nodes:
            layer = node.layer
            layer._scratch_dy = True  # every gradient handed to a layer is its own (below)
            if hasattr(layer, "fused_output_grad"):
                layer.fused_output_grad = False
            node.grad_inputs = [needs[id(t)] for t in node.inputs]
            node.need_dx = any(node.grad_inputs)
            needs[id(node.output)] = node.need_dx or bool(self.trainable and layer.trainable_weights)
        self._needs_grad = needs
        self._grad_scratch = {}
        wrote = set()
        for node in reversed(self._nodes):  # the order backward runs them
            if node.shared and needs[id(node.output)]:
                node.accumulate = id(node.layer) in wrote
                wrote.add(id(node.layer))

    def _epoch_graph(self):
        """For the compiled epoch (fastnn/training/compiled_epoch.py), after
        _prepare_backward: [(layer, links)] in the order forward runs them, ``links`` saying
        which tensors the layer reads (``in0``, and ``in1`` for a merge of two: 0 the input,
        k + 1 the k-th layer's output) and what backward does with it (``needs``: its output
        needs a gradient; ``need_dx``; ``want0``/``want1``: which inputs need one); or a str
        saying why this graph is not one the plan can express."""
        if type(self) is not Functional:
            return "a subclass of Model (its step may differ)"
        if self._input_names is not None or self._output_names is not None \
                or self._feature_space is not None:
            return "several inputs or outputs, or a feature space"
        nodes = self._nodes
        if not nodes or self._outputs_list[0] is not nodes[-1].output:
            return "an output that is not the last layer's"
        if any(node.shared for node in nodes):
            return "a layer called twice"
        tensor = {id(self._inputs_list[0]): 0}
        needs, graph = self._needs_grad, []
        for node in nodes:
            if node.merge and len(node.inputs) != 2:
                return "a merge of more than two inputs"
            links = {"in0": tensor[id(node.inputs[0])], "needs": bool(needs[id(node.output)]),
                     "need_dx": bool(node.need_dx), "want0": bool(node.grad_inputs[0])}
            if node.merge:
                links.update(in1=tensor[id(node.inputs[1])], want1=bool(node.grad_inputs[1]))
            tensor[id(node.output)] = len(graph) + 1
            graph.append((node.layer, links))
        return graph

    def _backward(self, d):
        """The output gradient (a list of them for several outputs) back through the nodes in
        reverse order; a tensor read by several layers gets the sum of their gradients (added
        into the first one, which is a buffer nobody reads again in this step)."""
        if self._output_names is None:
            grads = {id(self._outputs_list[0]): d}
        else:
            grads = {id(t): g for t, g in zip(self._outputs_list, d)}
        needs = self._needs_grad
        casts = self._layer_dtypes is not None
        for node in reversed(self._nodes):
            if not needs[id(node.output)]:
                continue
            dy = grads.pop(id(node.output))
            if casts and dy.dtype != node.layer.dtype:
                dy = dy.astype(node.layer.dtype)
            if node.shared:
                dx = self._backward_shared(node, dy)
            else:
                dx = node.layer.backward(dy, node.need_dx)
            if not node.need_dx:
                continue
            for t, g, wanted in zip(node.inputs, dx if node.merge else [dx], node.grad_inputs):
                if not wanted:
                    continue
                have = grads.get(id(t))
                if have is None:
                    grads[id(t)] = g
                elif have.dtype == g.dtype:
                    have += g
                else:
                    grads[id(t)] = have + g.astype(have.dtype)
        for node in self._last_calls:  # each shared layer as after its last call
            if node.state is not None:
                node.layer.__dict__.update(node.state)

    def _backward_shared(self, node, dy):
        """The backward of one call of a shared layer, from the attributes its forward left;
        a later call (in backward order) writes its weight gradients into scratch arrays
        then adds them to the ones already there: the gradient is the sum over the calls."""
        layer = node.layer
        if node.state is None:
            raise RuntimeError(f"Model {self.name!r}: backward of layer {layer.name!r} without a "
                               "training forward pass of the graph")
        layer.__dict__.update(node.state)
        fused = getattr(layer, "fused_output_grad", None)
        if fused:  # the loss gave p - t for the call that makes the output, not the others
            layer.fused_output_grad = node.alone
        try:
            if not node.accumulate:
                return layer.backward(dy, node.need_dx)
            variables = layer.trainable_weights
            sums = [v.grad for v in variables]
            for v in variables:
                scratch = self._grad_scratch.get(id(v))
                if scratch is None or scratch.shape != v.grad.shape \
                        or scratch.dtype != v.grad.dtype:
                    scratch = self._grad_scratch[id(v)] = np.empty_like(v.grad)
                v.grad = scratch
            scratches = [v.grad for v in variables]
            try:
                dx = layer.backward(dy, node.need_dx)
            finally:
                for v, g in zip(variables, sums):
                    v.grad = g
            for g, scratch in zip(sums, scratches):
                np.add(g, scratch, out=g)
            return dx
        finally:
            if fused:
                layer.fused_output_grad = fused

    # ---- config and saving --------------------------------------------------------------
    @property
    def feature_space(self):
        """The FeatureSpace run on raw columns before the graph (fastnn extra), or None."""
        return self._feature_space

    def get_config(self):
        """The graph as JSON-able data: each layer's config and the layers it reads (and the
        feature space's config and statistics, for a model on raw columns).

        A layer entry's ``inbound`` lists what its call reads, each by the name of the layer
        that made it. A layer called at several places is listed once, with one list per
        call in ``inbound_nodes`` (as Keras 3's config); the output of its call ``k > 0`` is
        then named ``[layer_name, k]`` (Keras' ``keras_history`` without the tensor index)."""
        refs = {id(t): t.name for t in self._inputs_list}
        layers = [{"class_name": "InputLayer", "name": t.name, "config": t.get_config(),
                   "inbound": []} for t in self._inputs_list]
        entries = {}
        for node in self._nodes:
            inbound = [refs[id(t)] for t in node.inputs]
            entry = entries.get(id(node.layer))
            if entry is None:
                entry = entries[id(node.layer)] = {
                    "class_name": type(node.layer).__name__, "name": node.layer.name,
                    "config": node.layer.get_config(), "inbound": inbound}
                layers.append(entry)
                refs[id(node.output)] = node.layer.name
            else:
                calls = entry.setdefault("inbound_nodes", [entry["inbound"]])
                refs[id(node.output)] = [node.layer.name, len(calls)]
                calls.append(inbound)
        config = {"name": self.name, "layers": layers,
                  "input_layers": [t.name for t in self._inputs_list],
                  "output_layers": [refs[id(t)] for t in self._outputs_list],
                  "output_keys": self._output_keys, "trainable": self.trainable}
        if self._feature_space is not None:
            config["feature_space"] = {
                "config": self._feature_space.get_config(),
                "state": {k: {"dtype": v.dtype.name, "shape": list(v.shape), "values": v.tolist()}
                          for k, v in self._feature_space.get_state().items()}}
        return config

    @classmethod
    def from_config(cls, config, layer_class=None):
        """A new graph (fresh weights) from ``get_config()``'s output; ``layer_class`` maps a
        class name to its class (default: the registered layers). A layer with several
        ``inbound_nodes`` is made once and called once per entry (shared weights)."""
        if layer_class is None:
            from .layers import get as layer_class
        specs = config.get("layers")
        if not isinstance(specs, list) or not specs:
            raise ValueError("Model.from_config: the config has no layers")
        calls = [_config_calls(spec) for spec in specs]
        made = [None] * len(specs)  # the layer object of each entry, once its first call ran
        done = [0] * len(specs)     # calls made so far per entry
        tensors = {}                # (layer name, call index) -> its output
        # Always the first call (in the config's order) whose inputs exist: the layers are
        # then built, and their weights created, in the order the saved graph lists them,
        # which is the order a file's weights are checked in (fastnn.saving).
        while True:
            ready = next(((i, k) for i, k in enumerate(done) if k < len(calls[i])
                          and all(ref in tensors for ref in calls[i][k])), None)
            if ready is None:
                break
            i, k = ready
            spec = specs[i]
            if made[i] is None:
                cfg = dict(spec["config"])
                if spec["class_name"] == "InputLayer":
                    cfg = {"shape": cfg.get("shape"), "name": cfg.get("name")}
                made[i] = layer_class(spec["class_name"]).from_config(cfg)
            layer = made[i]
            if isinstance(layer, InputLayer):
                tensors[(spec["name"], 0)] = layer
            else:
                args = [tensors[ref] for ref in calls[i][k]]
                tensors[(spec["name"], k)] = layer(args if len(args) > 1 or _is_merge(layer)
                                                   else args[0])
            done[i] += 1
        pending = [s.get("name") for s, k, c in zip(specs, done, calls) if k < len(c)]
        if pending:
            raise ValueError(f"Model.from_config: layers {pending} read layers that are not in "
                             "the config, or the graph has a cycle")
        try:
            ins = [tensors[_config_ref(n)] for n in config["input_layers"]]
            outs = [tensors[_config_ref(n)] for n in config["output_layers"]]
        except KeyError as e:
            raise ValueError(f"Model.from_config: unknown input or output layer {e}") from None
        feature_space = _feature_space_from_config(config.get("feature_space"))
        keys = config.get("output_keys")
        if keys is not None:
            if not isinstance(keys, list) or len(keys) != len(outs) \
                    or not all(isinstance(k, str) for k in keys):
                raise ValueError("Model.from_config: output_keys must name each output")
            outs = dict(zip(keys, outs))
        model = cls(ins, outs, name=config.get("name"), trainable=config.get("trainable", True))
        if feature_space is not None:
            model._attach_feature_space(feature_space)
        return model

    def to_json(self, **kwargs):
        import json
        return json.dumps({"class_name": "Functional", "config": self.get_config()}, **kwargs)

    def save(self, filepath, overwrite=True, zipped=None, include_optimizer=True):
        """save(filepath, overwrite=True): the graph, weights, compile settings, optimizer and
        RNG state in one file, written atomically, as Sequential.save."""
        from . import saving
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        from . import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        from . import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)


def _is_merge(layer):
    return isinstance(layer, Merge)


def _config_ref(ref):
    """A tensor named in a config: ``"name"`` (the layer's first call) or ``[name, k]`` (its
    call k; Keras' ``[name, k, 0]`` too), as the key (name, k)."""
    if isinstance(ref, str):
        return (ref, 0)
    if isinstance(ref, (list, tuple)) and len(ref) in (2, 3) and isinstance(ref[0], str) \
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ref[1:]) \
            and (len(ref) == 2 or ref[2] == 0):
        return (ref[0], ref[1])
    raise ValueError(f"Model.from_config: a layer input must be a layer name or [name, call "
                     f"index], got {ref!r:.80}")


def _config_calls(spec):
    """The calls of one layer entry of a config: a list of lists of (name, k) keys."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"Model.from_config: a layer entry without a name: {spec!r:.80}")
    nodes = spec.get("inbound_nodes")
    if nodes is None:
        nodes = [spec.get("inbound", [])]
    if not isinstance(nodes, list) or not nodes or not all(isinstance(n, list) for n in nodes):
        raise ValueError(f"Model.from_config: layer {spec['name']!r}: inbound_nodes must be a "
                         "non-empty list of lists of layer names")
    if spec.get("class_name") == "InputLayer" and (len(nodes) != 1 or nodes[0]):
        raise ValueError(f"Model.from_config: the Input {spec['name']!r} reads no layer")
    return [[_config_ref(ref) for ref in node] for node in nodes]


def _feature_space_of(inputs, model_name):
    """The FeatureSpace whose raw inputs (``fs.get_inputs()``) ``inputs`` are, else None."""
    from .feature_space import FeatureInput
    values = list(inputs.values()) if isinstance(inputs, dict) else (
        list(inputs) if isinstance(inputs, (list, tuple)) else [inputs])
    raw = [t for t in values if isinstance(t, FeatureInput)]
    if not raw:
        return None
    spaces = {id(t._feature_space): t._feature_space for t in raw}
    if len(raw) != len(values) or len(spaces) > 1:
        raise NotImplementedError(
            f"Model {model_name!r}: the raw inputs of a FeatureSpace (get_inputs()) must be the "
            "model's only inputs, all from one FeatureSpace")
    fs = raw[0]._feature_space
    missing = sorted(set(fs.features) - {t.name for t in raw})
    if missing:
        raise ValueError(f"Model {model_name!r}: the inputs lack the feature space's columns "
                         f"{missing}; pass all of feature_space.get_inputs()")
    return fs


def _feature_space_from_config(spec):
    from .feature_space import FeatureSpace
    if spec is None or isinstance(spec, FeatureSpace):  # (load_model builds it itself)
        return spec
    if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict) \
            or not isinstance(spec.get("state", {}), dict):
        raise ValueError("Model.from_config: the feature_space entry is malformed")
    state = {}
    for key, v in spec.get("state", {}).items():
        if not isinstance(v, dict) or "values" not in v:
            raise ValueError(f"Model.from_config: feature space statistic {key!r} is malformed")
        state[key] = np.asarray(v["values"], dtype=np.dtype(v.get("dtype", "float64"))).reshape(
            v.get("shape", -1))
    return FeatureSpace.from_config(dict(spec["config"]), state=state)


layer_base.symbolic_call = call_symbolic  # Layer.__call__ on an Input or a KerasTensor
