"""Embedding: a trainable vector per integer code (Keras 3's ``layers.Embedding``), how a
tabular MLP takes a categorical column: ``Input(shape=(k,))`` of codes -> ``Embedding(n, d)``
-> ``Flatten()`` -> ``Dense`` ...

The lookup and its gradient are the ops ``embedding_forward`` (every code checked, then a row
gather) and ``embedding_backward`` (a scatter-add into a dense gradient of the whole table;
see the class docstring for its cost).
"""
import warnings

import numpy as np

from .. import backend, constraints, initializers, regularizers
from ..training import arguments
from .base import Layer

# float32 holds every integer up to 2**24 exactly, and no longer all of them above: a code
# 16777217 arrives as 16777216 and would silently read its neighbour's row.
_FLOAT32_EXACT_INTS = 2 ** 24


class Embedding(Layer):
    """Embedding(input_dim, output_dim, embeddings_initializer="uniform",
    embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False, weights=None,
    lora_rank=None, **kwargs)

    Turns non-negative integer codes into dense vectors: ``y[..., :] = embeddings[x[...]]``,
    for inputs of any shape S (a batch axis first), outputs of shape S + (output_dim,). The
    table ``embeddings`` has shape (input_dim, output_dim); "uniform" is Keras'
    RandomUniform(-0.05, 0.05). ``activity_regularizer`` (Keras' base-layer argument) is
    accepted as for Dense.

    Codes: fit, evaluate and predict hand a model its inputs in the model's float dtype, so
    the layer takes float arrays holding integral values as well as integer arrays. A code
    that is negative, >= input_dim, not an integer or NaN stops the call with a ValueError
    naming the layer, the value and its position in the batch; nothing wraps around or is
    clipped. A float32 model carries codes exactly up to 2**24, so a float32 Embedding with
    a larger ``input_dim`` is refused (build it with ``dtype="float64"``).

    ``mask_zero=True`` is accepted for Keras compatibility, and as in Keras index 0 is then
    the padding value (``input_dim`` must count it: vocabulary size + 1). fastnn has no
    masking: no layer downstream reads the mask, so code 0 is looked up and trained like
    any other code (as in Keras 3, where Flatten and Dense drop the mask too).
    ``compute_mask(x)`` returns ``x != 0`` for code that wants the mask itself.

    Gradient: the backward pass writes the gradient of the whole table (zeros for the rows
    the batch did not use), so the optimizers' fused updates, weight decay, regularizers and
    constraints see one dense parameter as for Dense: the same update rule as Keras'
    default optimizers, at the cost of one pass over the table per step (zeroing plus the
    update: cheap for the tables of categorical columns, ``input_dim * output_dim`` floats;
    for a table of millions of rows the update dominates the step). The scatter-add keeps
    the order of the codes whatever the thread count: the same bits on any number of
    threads.

    ``lora_rank`` (LoRA fine-tuning) is not supported: a value other than None raises
    NotImplementedError. Keras 2's ``input_length`` is accepted and ignored with a warning,
    as in Keras 3.
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, lora_alpha=None, activity_regularizer=None,
                 **kwargs):
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Embedding: the argument input_length is deprecated (Keras 3) and "
                          "ignored: remove it", UserWarning, stacklevel=2)
        super().__init__(**kwargs)
        what = f"Embedding {self.name!r}"
        if lora_rank is not None or lora_alpha is not None:
            raise NotImplementedError(f"{what}: LoRA (lora_rank={lora_rank!r}, lora_alpha="
                                      f"{lora_alpha!r}) is not supported by fastnn; leave "
                                      "lora_rank=None")
        self.input_dim = arguments.positive_int(input_dim, f"{what}: input_dim")
        self.output_dim = arguments.positive_int(output_dim, f"{what}: output_dim")
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.activity_regularizer = regularizers.get(activity_regularizer)
        self.mask_zero = bool(mask_zero)
        self.lora_rank = None
        self._embeddings = None
        if weights is not None:
            # Keras: the initial table, given as the array or a list holding it
            if not (isinstance(weights, (list, tuple)) and len(weights) == 1):
                weights = [weights]
            self._make_embeddings()
            self.set_weights(weights)

    def _make_embeddings(self):
        if np.dtype(self.dtype) == np.float32 and self.input_dim > _FLOAT32_EXACT_INTS:
            raise ValueError(
                f"Embedding {self.name!r}: input_dim={self.input_dim} is more than float32 can "
                f"hold exactly ({_FLOAT32_EXACT_INTS}): fit hands the model its codes as "
                "float32, so neighbouring codes would read the same row. Use "
                "Embedding(..., dtype='float64') (and a float64 model)")
        self._embeddings = self.add_weight(
            (self.input_dim, self.output_dim), self.embeddings_initializer, "embeddings",
            regularizer=self.embeddings_regularizer, constraint=self.embeddings_constraint)

    @property
    def embeddings(self):
        """The table, a Variable of shape (input_dim, output_dim)."""
        if self._embeddings is None:
            raise AttributeError(f"Embedding {self.name!r}: build the layer before accessing "
                                 "embeddings (call it, or add it to a model with an input shape)")
        return self._embeddings

    def build(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(f"Embedding {self.name!r} needs inputs with a batch axis, e.g. "
                             f"(batch, codes per row); got a scalar (shape {tuple(input_shape)})")
        if self._embeddings is None:
            self._make_embeddings()
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, mask=None):
        """Keras: ``inputs != 0`` when ``mask_zero``, else None (no layer of fastnn reads it)."""
        return np.not_equal(inputs, 0) if self.mask_zero else None

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform",
                    b_initializer="zeros"):
        """Keras' LoRA switch: not supported by fastnn."""
        raise NotImplementedError(f"Embedding {self.name!r}: LoRA is not supported by fastnn")

    def forward(self, x, training=False):
        y = self._buffer("y", x.shape + (self.output_dim,))
        index = self._buffer("index", x.shape, np.int64)
        try:
            backend.ops.embedding_forward(x, self.embeddings.value, y, index)
        except ValueError:
            error = self._bad_code_error(x)
            if error is None:
                raise
            raise error from None
        self._index, self._y = index, y
        if self.activity_regularizer is not None:  # Keras 3: penalty(output) / batch size
            self._activity_loss = regularizers.activity_penalty(self.activity_regularizer, y)
        return y

    def _bad_code_error(self, x):
        """The error for the first code of ``x`` that names no row (None if all do)."""
        c = np.asarray(x)
        c64 = c.astype(np.float64) if c.dtype.kind == "f" else c
        with np.errstate(invalid="ignore"):
            ok = (c64 >= 0) & (c64 < self.input_dim)
            if c64.dtype.kind == "f":
                ok &= np.floor(c64) == c64
        bad = np.flatnonzero(~ok)
        if not bad.size:
            return None
        pos = tuple(int(i) for i in np.unravel_index(int(bad[0]), c.shape))
        value = c.reshape(-1)[int(bad[0])]
        value = str(value)  # a numpy scalar: the shortest digits of its own dtype
        if value == "nan":
            why = "a missing value (NaN)"
        elif float(value) < 0:
            why = "negative"
        elif float(value) >= self.input_dim:
            why = (f">= input_dim={self.input_dim} (input_dim must be the largest code + 1"
                   + (", counting the padding code 0" if self.mask_zero else "") + ")")
        else:
            why = "not an integer"
        return ValueError(
            f"Embedding {self.name!r}: the code {value} at position [{', '.join(map(str, pos))}] "
            f"of the input batch it was given (shape {c.shape}) is {why}; codes must be "
            f"integers in [0, {self.input_dim})")

    def backward(self, dy, need_dx=True):
        if self.activity_regularizer is not None:
            dy = regularizers.add_activity_gradient(self, dy, self._y)
        if self.embeddings.trainable:
            backend.ops.embedding_backward(dy, self._index, self.input_dim, self.embeddings.grad)
        if not need_dx:
            return None
        # the output is piecewise constant in the codes: their gradient is zero
        dx = self._buffer("dx", self._index.shape)
        dx[...] = 0
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(
            input_dim=self.input_dim, output_dim=self.output_dim,
            embeddings_initializer=initializers.serialize(self.embeddings_initializer),
            embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
            activity_regularizer=regularizers.serialize(self.activity_regularizer),
            embeddings_constraint=constraints.serialize(self.embeddings_constraint),
            mask_zero=self.mask_zero)
        return config
