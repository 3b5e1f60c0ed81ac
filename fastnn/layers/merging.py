"""Merge layers for graphs of layers (the functional API): Concatenate, Add, Subtract,
Multiply, Average, Maximum, Minimum, under Keras 3's names and arguments.

A merge layer takes a list of inputs: ``forward(xs, training)`` returns one array and
``backward(dy, need_dx)`` a list with one gradient per input. Every result goes into the
layer's own buffers (allocated once per batch size), and the gradients it returns are
distinct arrays, since the layers below may write over the gradient they receive.
Concatenate on 2-D inputs copies through the kernels ``concat_columns`` and
``split_columns`` (csrc/merging.c); other ranks through NumPy.
"""
import numpy as np

from .. import backend
from . import base
from .base import Layer, is_symbolic


class Merge(Layer):
    """The base class: inputs of one shape (Concatenate: equal but for ``axis``)."""

    _min_inputs = 2

    def _maybe_build(self, input_shapes):
        shapes = [tuple(s) for s in input_shapes]
        if not self.built:
            self._check_shapes(shapes)
            self.input_shape = shapes
            self.build(shapes)
            self.built = True
            self.output_shape = tuple(self.compute_output_shape(shapes))
        elif [s[1:] for s in shapes] != [s[1:] for s in self.input_shape]:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for inputs of shapes "
                             f"{self.input_shape}, got {shapes}")

    def _check_shapes(self, shapes):
        if len(shapes) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} {self.name!r} needs a list of at least "
                             f"{self._min_inputs} inputs, got {len(shapes)}")
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise ValueError(f"{type(self).__name__} {self.name!r}: the inputs must have the "
                             f"same shape, got {[(None,) + tuple(s[1:]) for s in shapes]}")

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0])

    def __call__(self, inputs, training=False):
        """On symbolic tensors: a node of the graph; on a list of arrays: the merged array."""
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{type(self).__name__} {self.name!r} takes a list of inputs, got "
                            f"{type(inputs).__name__}")
        if any(is_symbolic(t) for t in inputs):
            return base.symbolic_call(self, list(inputs))
        xs = [np.ascontiguousarray(x, dtype=self.dtype) for x in inputs]
        self._maybe_build([x.shape for x in xs])
        return np.array(self.forward(xs, training), copy=True)

    def _grads(self, dy, n, need_dx):
        """The list of input gradients to fill: dy itself for the first, copies after."""
        return [dy] + [self._buffer(f"dx{i}", dy.shape) for i in range(1, n)]


class Add(Merge):
    """Add(): the elementwise sum of the inputs (a residual connection: Add()([x, f(x)]))."""

    def forward(self, xs, training=False):
        y = self._buffer("y", xs[0].shape)
        np.add(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy, need_dx=True):
        grads = self._grads(dy, len(self.input_shape), need_dx)
        for g in grads[1:]:
            np.copyto(g, dy)
        return grads


class Subtract(Merge):
    """Subtract(): inputs[0] - inputs[1] (exactly two inputs)."""

    def _check_shapes(self, shapes):
        if len(shapes) != 2:
            raise ValueError(f"Subtract {self.name!r} needs exactly 2 inputs, got {len(shapes)}")
        super()._check_shapes(shapes)

    def forward(self, xs, training=False):
        return np.subtract(xs[0], xs[1], out=self._buffer("y", xs[0].shape))

    def backward(self, dy, need_dx=True):
        grads = self._grads(dy, 2, need_dx)
        np.negative(dy, out=grads[1])
        return grads


class Average(Merge):
    """Average(): the elementwise mean of the inputs."""

    def forward(self, xs, training=False):
        y = self._buffer("y", xs[0].shape)
        np.add(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y += x
        y *= 1.0 / len(xs)
        return y

    def backward(self, dy, need_dx=True):
        n = len(self.input_shape)
        grads = self._grads(dy, n, need_dx)
        for g in grads[1:]:
            np.multiply(dy, 1.0 / n, out=g)
        dy *= 1.0 / n
        return grads


class Multiply(Merge):
    """Multiply(): the elementwise product of the inputs."""

    def forward(self, xs, training=False):
        self._xs = xs
        y = self._buffer("y", xs[0].shape)
        np.multiply(xs[0], xs[1], out=y)
        for x in xs[2:]:
            y *= x
        return y

    def backward(self, dy, need_dx=True):
        xs = self._xs
        n = len(xs)
        grads = [self._buffer(f"dx{i}", dy.shape) for i in range(n)]
        for i in range(n):  # d/dx_i = dy * prod of the other inputs
            np.copyto(grads[i], dy)
            for j in range(n):
                if j != i:
                    grads[i] *= xs[j]
        return grads


class _Extremum(Merge):
    _pick = None

    def forward(self, xs, training=False):
        self._xs = xs
        y = self._buffer("y", xs[0].shape)
        type(self)._pick(xs[0], xs[1], out=y)
        for x in xs[2:]:
            type(self)._pick(y, x, out=y)
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        # the gradient goes to the input that was picked (the first of equal ones, as
        # Keras' backends route ties to one input)
        taken = np.zeros(dy.shape, bool)
        grads = []
        for i, x in enumerate(self._xs):
            g = self._buffer(f"dx{i}", dy.shape)
            here = (x == self._y) & ~taken
            taken |= here
            np.multiply(dy, here, out=g)
            grads.append(g)
        return grads


class Maximum(_Extremum):
    """Maximum(): the elementwise maximum of the inputs."""
    _pick = np.maximum


class Minimum(_Extremum):
    """Minimum(): the elementwise minimum of the inputs."""
    _pick = np.minimum


class Concatenate(Merge):
    """Concatenate(axis=-1): the inputs joined along ``axis`` (shapes equal but for it)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or axis == 0:
            raise ValueError(f"Concatenate: axis must be a non-zero integer (not the batch axis), "
                             f"got {axis!r}")
        self.axis = int(axis)

    def _check_shapes(self, shapes):
        if len(shapes) < 2:
            raise ValueError(f"Concatenate {self.name!r} needs a list of at least 2 inputs, got "
                             f"{len(shapes)}")
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes) or not -rank <= self.axis < rank:
            raise ValueError(f"Concatenate {self.name!r}: inputs of one rank with axis {self.axis} "
                             f"in it, got shapes {[(None,) + tuple(s[1:]) for s in shapes]}")
        ax = self.axis % rank
        if any(s[1:ax] + s[ax + 1:] != shapes[0][1:ax] + shapes[0][ax + 1:] for s in shapes):
            raise ValueError(f"Concatenate {self.name!r}: the inputs must have the same shape "
                             f"except along axis {self.axis}, got "
                             f"{[(None,) + tuple(s[1:]) for s in shapes]}")

    def compute_output_shape(self, input_shapes):
        ax = self.axis % len(input_shapes[0])
        out = list(input_shapes[0])
        out[ax] = sum(s[ax] for s in input_shapes)
        return tuple(out)

    def forward(self, xs, training=False):
        shape = (xs[0].shape[0],) + tuple(self.output_shape[1:])
        y = self._buffer("y", shape)
        if len(shape) == 2:  # 2-D inputs side by side (the axis can only be 1): one C pass
            return backend.ops.concat_columns(xs, y)
        return np.concatenate(xs, axis=self.axis, out=y)

    def backward(self, dy, need_dx=True):
        if dy.ndim == 2:  # the column blocks of dy, each into a contiguous buffer
            n = dy.shape[0]
            widths = [shape[1] for shape in self.input_shape]
            grads = [self._buffer(f"dx{i}", (n, w)) for i, w in enumerate(widths)]
            backend.ops.split_columns(dy, widths, grads)
            return grads
        ax = self.axis % dy.ndim
        grads, lo = [], 0
        for i, shape in enumerate(self.input_shape):
            width = shape[ax]
            part = dy[(slice(None),) * ax + (slice(lo, lo + width),)]
            g = self._buffer(f"dx{i}", (dy.shape[0],) + tuple(shape[1:]))
            np.copyto(g, part)  # contiguous: the layer below may write over it
            grads.append(g)
            lo += width
        return grads

    def get_config(self):
        return dict(super().get_config(), axis=self.axis)


# Keras' functional forms: concatenate([a, b]) is Concatenate()([a, b]), and so on.
def concatenate(inputs, axis=-1, **kwargs):
    """concatenate(inputs, axis=-1): ``Concatenate(axis=axis)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def add(inputs, **kwargs):
    """add(inputs): ``Add()(inputs)``."""
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    """subtract(inputs): ``Subtract()(inputs)``."""
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    """multiply(inputs): ``Multiply()(inputs)``."""
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    """average(inputs): ``Average()(inputs)``."""
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    """maximum(inputs): ``Maximum()(inputs)``."""
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    """minimum(inputs): ``Minimum()(inputs)``."""
    return Minimum(**kwargs)(inputs)
