"""``plot_model`` / ``model_to_dot`` (Keras 3's ``keras.utils.plot_model``): a model's layers
as a graphviz graph through pydot. Needs ``pip install pydot`` (the ``fastnn[plot]`` extra)
and, except for a ``.dot`` file, graphviz's ``dot`` program (e.g. ``apt-get install
graphviz``); without them an ImportError says which is missing, as Keras.

A Sequential is drawn as a chain from its input; a graph (``Model(inputs, outputs)``) from
its config: each layer's inbound layers (``get_config()["layers"][i]["inbound"]``, one list
per call in ``inbound_nodes`` for a layer called at several places), so a
layer called at two places is one box with the edges of both calls."""
import os

_PYDOT = "You must install pydot (`pip install pydot`) for `plot_model` to work."
_GRAPHVIZ = ("You must install graphviz (see instructions at "
             "https://graphviz.gitlab.io/download/) for `plot_model` to work.")


def _pydot():
    try:
        import pydot
    except ImportError:
        raise ImportError(_PYDOT) from None
    return pydot


def _shape(shape):
    return "?" if shape is None else str(tuple(shape))


def _layers_and_edges(model):
    """[(name, layer or None, class name, input shapes, output shape)] and [(from, to)]."""
    from .models import Sequential
    if isinstance(model, Sequential):
        nodes, edges = [], []
        prev, prev_shape = None, model._input_shape
        if prev_shape is not None:  # Keras draws the input as a layer of its own
            prev = "input_layer"
            nodes.append((prev, None, "InputLayer", [prev_shape], prev_shape))
        for layer in model.layers:
            nodes.append((layer.name, layer, type(layer).__name__, [prev_shape],
                          layer.output_shape))
            if prev is not None:
                edges.append((prev, layer.name))
            prev, prev_shape = layer.name, layer.output_shape
        return nodes, edges
    config = model.get_config()  # a graph: its layers and what each reads
    shapes, nodes, edges = {}, [], []
    for spec in config["layers"]:
        name = spec["name"]
        # a shared layer is one box, with an edge from what each of its calls reads (a later
        # call's output is named [layer, call])
        calls = [[n if isinstance(n, str) else n[0] for n in inbound]
                 for inbound in spec.get("inbound_nodes") or [spec["inbound"]]]
        if spec["class_name"] == "InputLayer":
            layer, shapes[name] = None, (None,) + tuple(spec["config"]["shape"])
            ins = [shapes[name]]
        else:
            layer = model.get_layer(name)
            shapes[name] = layer.output_shape
            ins = [shapes.get(n) for n in calls[0]]
        nodes.append((name, layer, spec["class_name"], ins, shapes[name]))
        for inbound in calls:
            edges += [(n, name) for n in inbound if (n, name) not in edges]
    return nodes, edges


def _label(name, layer, class_name, ins, out, show_shapes, show_dtype, show_layer_names,
           show_layer_activations, show_trainable):
    lines = [f"{name} ({class_name})" if show_layer_names else class_name]
    activation = getattr(getattr(layer, "activation", None), "name", None)
    if show_layer_activations and activation is not None:
        lines.append(f"activation: {activation}")
    if show_dtype and layer is not None:
        lines.append(f"dtype: {layer.dtype}")
    if show_shapes:
        lines.append(f"input: {', '.join(_shape(s) for s in ins)}")
        lines.append(f"output: {_shape(out)}")
    if show_trainable and layer is not None:
        lines.append(f"trainable: {'yes' if layer.trainable else 'no'}")
    return "\\n".join(lines)


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
                 rankdir="TB", expand_nested=False, dpi=200, subgraph=False,
                 show_layer_activations=False, show_trainable=False, **kwargs):
    """model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True,
    rankdir="TB", expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
    show_trainable=False): a ``pydot.Dot`` graph of the model's layers (Keras 3's
    ``keras.utils.model_to_dot``). ``expand_nested`` changes nothing: a model called inside
    a graph joins it with its own layers, so there is nothing nested to expand."""
    if kwargs:
        raise TypeError(f"model_to_dot: unexpected keyword argument(s) {sorted(kwargs)}")
    if not model.built and getattr(model, "_input_shape", None) is None:
        raise ValueError(f"model_to_dot: model {model.name!r} is not built yet: give it an "
                         "Input (or call it on data) first, as Keras asks")
    pydot = _pydot()
    dot = pydot.Subgraph(model.name) if subgraph else pydot.Dot(graph_type="digraph")
    dot.set("rankdir", rankdir)
    dot.set("dpi", dpi)
    dot.set("concentrate", True)
    dot.set_node_defaults(shape="box", fontname="Helvetica")
    nodes, edges = _layers_and_edges(model)
    for name, layer, class_name, ins, out in nodes:
        label = _label(name, layer, class_name, ins, out, show_shapes, show_dtype,
                       show_layer_names, show_layer_activations, show_trainable)
        dot.add_node(pydot.Node(f'"{name}"', label=f'"{label}"'))
    for src, dst in edges:
        dot.add_edge(pydot.Edge(f'"{src}"', f'"{dst}"'))
    return dot


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=True, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, **kwargs):
    """plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
    show_layer_names=True, rankdir="TB", expand_nested=False, dpi=200,
    show_layer_activations=False, show_trainable=False)

    Draws the model's layers into ``to_file`` (its extension picks the format: png, svg,
    pdf, ...), as Keras 3; returns an ``IPython.display.Image`` of a bitmap when IPython is
    installed (it shows in a notebook), else None. fastnn extra: a ``.dot`` file is the
    graph's source and needs pydot only, not graphviz's ``dot`` program."""
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, **kwargs)
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    if extension == "dot":
        dot.write(to_file, format="raw")  # the source: no graphviz program needed
        return None
    try:
        dot.write(to_file, format=extension)
    except FileNotFoundError:  # pydot runs `dot`: not on the PATH
        raise ImportError(_GRAPHVIZ) from None
    if extension in ("png", "jpg", "jpeg", "gif"):
        try:
            from IPython import display
        except ImportError:
            return None
        return display.Image(filename=to_file)
    return None
