"""One parity matrix: every C kernel (fastnn.ops.COps) against its NumPy reference
(fastnn.ops.NumpyOps) over {float32, float64} x {1, 2 threads} x {contiguous, strided,
read-only inputs}, on shapes and values Hypothesis draws, plus one shape per kernel large
enough for the parallel path (an explicit example, run every time).

KERNELS is the table: one row per kernel (or per variant of one, ``name[variant]``), saying
how to build the kernel's arguments from a ``Draw`` (dtype, shape (n, m), seeded generator)
and how close C must come. Adding a kernel is one row, e.g.::

    "col_sum": Row(lambda g: dict(X=g.normal(), out=g.pick(None, g.empty(g.m))), tol=20),

Every array the row passes is an input unless the kernel writes it (``writes``, or an
``Alias`` target): inputs get the layout under test, written arrays stay C-contiguous and
writable. After the call, C's return value and every written array must match the
reference's (``tol`` scales conftest's RTOL/ATOL per dtype; ``exact`` asks for the same
bits). test_every_reference_kernel_has_a_parity_row fails, naming it, for a kernel without
a row.
"""
import inspect
import tempfile
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from fastnn import ops as ops_module, reference
from fastnn.reference.activations import ACTIVATION_CODES, NEEDS_PREACTIVATION
from fastnn.reference.losses import LOSS_CODES

from conftest import ATOL, C, REF, RTOL, requires_c

DTYPES = [np.float32, np.float64]
# The parallel path needs FASTNN_PARALLEL_MIN = 131072 elements of work (fewer for kernels
# with a transcendental function per element): 513 x 261 = 133893.
PARALLEL = (513, 261)


@dataclass(frozen=True)
class Alias:
    """An argument that is another argument's array itself (``out=Alias("Z")``: in place)."""
    name: str


class Draw:
    """What a row's builder draws from: the dtype, the shape (n, m) and a generator seeded by
    Hypothesis. Arrays default to shape (n, m); pass a shape to get another."""

    def __init__(self, dtype, n, m, seed):
        self.dtype, self.n, self.m = dtype, n, m
        self.rng = np.random.default_rng(seed)
        self._files = []
        self.outputs = []  # the arrays empty() made: the kernel writes them

    def _shape(self, shape):
        return shape if shape else (self.n, self.m)

    def normal(self, *shape, scale=1.0, shift=0.0):
        return (self.rng.standard_normal(self._shape(shape)) * scale + shift).astype(self.dtype)

    def uniform(self, low, high, *shape):
        return self.rng.uniform(low, high, self._shape(shape)).astype(self.dtype)

    def empty(self, *shape, dtype=None):
        """An output buffer (written by the kernel, so never given another layout), NaN-filled
        so that an element the kernel forgot is not the reference's value by chance."""
        dtype = np.dtype(dtype or self.dtype)
        out = np.full(self._shape(shape), np.nan if dtype.kind == "f" else 0, dtype)
        self.outputs.append(out)
        return out

    def ints(self, high, *shape, dtype=np.int64):
        return self.rng.integers(0, high, self._shape(shape)).astype(dtype)

    def number(self, low, high):
        return float(self.rng.uniform(low, high))

    def word(self):
        """A uint64 seed or counter, as Python int (dropout kernels take any of 2^64)."""
        return int.from_bytes(self.rng.bytes(8), "little")

    def pick(self, *options):
        return options[int(self.rng.integers(len(options)))]

    def file_of(self, array):
        """(fd, offset) of ``array`` saved as .npy in a temporary file (closed by close())."""
        f = tempfile.TemporaryFile()
        np.lib.format.write_array(f, array)
        f.flush()
        self._files.append(f)
        return f.fileno(), f.tell() - array.nbytes

    def close(self):
        for f in self._files:
            f.close()


@dataclass
class Row:
    build: object                # Draw -> {argument name: value} for the kernel
    tol: object = 1.0            # scale of RTOL/ATOL: a number, (float32, float64), or a dict
    exact: bool = False          # of those by output ("return", "return[i]", an argument name)
    writes: tuple = ()           # arguments the kernel writes (outputs, state updated in place)
    parallel: tuple = PARALLEL   # (n, m) of the explicit large example
    contiguous: tuple = ()       # inputs the wrapper refuses unless C-contiguous (not strided)


# ---- builders that need more than one expression --------------------------------------------
def _matmul(g):
    p = g.pick(1, 3, g.n)
    return dict(a=g.normal(), b=g.normal(g.m, p), out=g.pick(None, g.empty(g.n, p)))


def _act_alpha(g, name):
    return {"leaky_relu": 0.2, "elu": 1.3, "gelu": g.pick(0.0, 1.0)}.get(name, 0.0)


def _bias_act_forward(name):
    def build(g):
        return dict(Z=g.normal(scale=3), b=g.pick(None, g.normal(g.m)), act=ACTIVATION_CODES[name],
                    alpha=_act_alpha(g, name), out=g.pick(None, g.empty(), Alias("Z")))
    return build


def _act_backward(name):
    def build(g):
        code, alpha = ACTIVATION_CODES[name], _act_alpha(g, name)
        z = g.normal(scale=3)
        y = REF.bias_act_forward(z.copy(), None, code, alpha)
        return dict(dY=g.normal(), Z=z if code in NEEDS_PREACTIVATION else g.pick(None, z), Y=y,
                    act=code, alpha=alpha, out=g.pick(None, g.empty(), Alias("dY")),
                    db=g.pick(None, g.empty(g.m)))
    return build


def _elementwise_loss(name):
    def build(g):
        if name in ("bce", "kld", "cce"):
            p = g.uniform(0.01, 0.99)
            t = g.uniform(0, 1)
            if name == "cce":
                t = (t / t.sum(axis=1, keepdims=True)).astype(g.dtype)
        else:
            p = g.normal(scale=2)
            t = np.sign(g.normal()) if name == "hinge" else g.normal()
        return dict(P=p, T=t, loss=LOSS_CODES[name], param=0.7, scale=1.0 / g.n,
                    out=g.pick(None, g.empty()), row_loss=g.pick(None, g.empty(g.n, dtype=np.float64)))
    return build


def _softmax_inputs(g, from_logits):
    z = g.normal(scale=4)
    if not from_logits:
        z = REF.bias_act_forward(z, None, ACTIVATION_CODES["softmax"], 0.0)
    return z


def _softmax_cross_entropy(from_logits):
    def build(g):
        t = np.eye(g.m, dtype=g.dtype)[g.ints(g.m, g.n)]
        return dict(Z=_softmax_inputs(g, from_logits), T=t, from_logits=from_logits, scale=0.5,
                    out=g.pick(None, g.empty()), row_loss=g.pick(None, g.empty(g.n, dtype=np.float64)))
    return build


def _sparse_softmax_cross_entropy(from_logits):
    def build(g):
        return dict(Z=_softmax_inputs(g, from_logits), labels=g.ints(g.m, g.n), from_logits=from_logits,
                    scale=0.5, out=g.pick(None, g.empty()),
                    row_loss=g.pick(None, g.empty(g.n, dtype=np.float64)))
    return build


def _argmax_hits(g):
    p = np.round(g.normal())  # rounded: ties, where the first maximum must win
    if g.pick(True, False):   # NaN counts as the maximum, as in np.argmax
        p.reshape(-1)[g.rng.integers(p.size)] = np.nan
    return dict(y_pred=p, labels=g.ints(p.shape[1], p.shape[0]))


def _all_finite(g):
    x = g.normal(scale=1e3)
    if g.pick(True, False):  # one poisoned element anywhere
        x.reshape(-1)[g.rng.integers(x.size)] = g.pick(np.nan, np.inf, -np.inf)
    return dict(x=x)


def _argmax_match_hits(g):
    """Ties, NaN and one-hot targets; some rows whose targets' argmax is not the outputs'."""
    y_pred = g.normal()
    y_pred[::3, 0] = y_pred[::3].max(axis=1)  # ties: the first maximum wins
    y_pred[1::5, g.m // 2] = np.nan
    y_true = np.eye(g.m, dtype=g.dtype)[g.ints(g.m, g.n)]
    y_true[::2] = np.eye(g.m, dtype=g.dtype)[np.argmax(y_pred[::2], axis=1)]
    return dict(y_pred=y_pred, y_true=y_true)


def _take_rows(g):
    k = int(g.rng.integers(1, 2 * g.n + 1))
    return dict(src=g.normal(), index=g.ints(g.n, k), out=g.pick(None, g.empty(k, g.m)))


def _read_rows(g):
    src = g.normal()
    fd, offset = g.file_of(src)
    k = int(g.rng.integers(1, 2 * g.n + 1))
    return dict(fd=fd, offset=offset, n=g.n, index=g.ints(g.n, k), out=g.empty(k, g.m))


def _merge_widths(g):
    """k column widths (some may be 0) adding up to m; k > 16 takes the wrappers' heap path."""
    k = g.pick(1, 2, 3, 5, 17)
    cuts = np.sort(g.rng.integers(0, g.m + 1, k - 1))
    return [int(w) for w in np.diff(np.concatenate([[0], cuts, [g.m]]))]


def _concat_columns(g):
    widths = _merge_widths(g)
    return dict(xs=[g.normal(g.n, w) for w in widths], out=g.pick(None, g.empty()))


def _split_columns(g):
    widths = _merge_widths(g)
    return dict(dY=g.normal(), widths=widths,
                outs=g.pick(None, [g.empty(g.n, w) for w in widths]))


def _maxout_forward(g):
    pieces = g.pick(1, 2, 5)
    return dict(X=g.normal(g.n, g.m * pieces), pieces=pieces, out=g.pick(None, g.empty()),
                arg=g.pick(None, g.empty(dtype=np.int32)))


def _maxout_backward(g):
    pieces = g.pick(1, 2, 5)
    return dict(dY=g.normal(), arg=g.ints(pieces, dtype=np.int32), pieces=pieces,
                out=g.pick(None, g.empty(g.n, g.m * pieces)))


# optimizers: random hyperparameters as Keras users set them, clipping and decay included
def _common(g):
    return dict(weight_decay=g.pick(0.0, 0.01), grad_scale=g.pick(1.0, 0.7),
                clipvalue=g.pick(None, 0.9))


def _state(g, low=0.0, high=0.5, *shape):
    return g.uniform(low, high, *shape)


def _update(fn):
    def build(g):
        return dict(param=g.normal(), grad=g.normal(scale=1.5), **fn(g), **_common(g))
    return build


def _nadam(g):
    b1, step = g.number(0.5, 0.99), int(g.rng.integers(1, 50))
    u_product = float(np.prod([b1 * (1 - 0.5 * 0.96 ** t) for t in range(1, step + 1)]))
    return dict(momentum=_state(g), velocity=_state(g), learning_rate=g.number(1e-4, 0.1),
                beta_1=b1, beta_2=g.number(0.9, 0.9999), epsilon=1e-7, step=step,
                u_product=u_product)


def _rmsprop(g):
    momentum = g.pick(0.0, g.number(0.1, 0.9))
    return dict(velocity=_state(g, 0.5, 1.0), momentum_buffer=_state(g) if momentum else None,
                average_gradient=g.pick(None, _state(g, 0.0, 0.1)), learning_rate=g.number(1e-4, 0.1),
                rho=g.number(0.8, 0.99), momentum=momentum, epsilon=1e-7)


def _adafactor(g):
    p = g.normal()
    if g.pick(True, False):  # rank 1: the second moment is not factored
        p = p.reshape(-1)
        state = dict(r=None, c=None, velocity=_state(g, 0.1, 0.5, p.size))
    else:
        state = dict(r=_state(g, 0.1, 0.5, g.n), c=_state(g, 0.1, 0.5, g.m), velocity=None)
    return dict(param=p, grad=g.normal(*p.shape, scale=1.5), **state, learning_rate=g.number(1e-3, 0.5),
                beta_2_decay=-g.number(0.5, 0.9), epsilon_1=1e-30, epsilon_2=g.pick(1e-3, 0.01),
                clip_threshold=g.number(0.5, 1.0), step=int(g.rng.integers(1, 1000)), **_common(g))


def _batchnorm_forward_train(g):
    moving = g.pick(True, False)
    return dict(X=g.normal(scale=2, shift=3), gamma=g.pick(None, g.normal(g.m)),
                beta=g.pick(None, g.normal(g.m)), epsilon=1e-3, momentum=0.9,
                moving_mean=g.normal(g.m) if moving else None,
                moving_variance=g.uniform(0, 1, g.m) if moving else None,
                out=g.pick(None, g.empty()), mean=g.pick(None, g.empty(g.m)),
                invstd=g.pick(None, g.empty(g.m)))


def _batchnorm_backward(g):
    x = g.normal(scale=2, shift=3)
    _, mean, invstd = REF.batchnorm_forward_train(x, None, None, 1e-3, 0.9)
    need_dx = g.pick(True, False)
    return dict(dY=g.normal(), X=x, mean=mean, invstd=invstd, gamma=g.pick(None, g.normal(g.m)),
                out=g.pick(None, g.empty()) if need_dx else None, dgamma=g.pick(None, g.empty(g.m)),
                dbeta=g.pick(None, g.empty(g.m)), need_dx=need_dx)


def _layernorm_forward(g):
    return dict(X=g.normal(scale=3, shift=-1), gamma=g.pick(None, g.normal(g.m)),
                beta=g.pick(None, g.normal(g.m)), epsilon=1e-3, out=g.pick(None, g.empty()),
                mean=g.pick(None, g.empty(g.n)), rstd=g.pick(None, g.empty(g.n)))


def _layernorm_backward(g):
    x = g.normal(scale=3, shift=-1)
    _, mean, rstd = REF.layernorm_forward(x, None, None, 1e-3)
    need_dx = g.pick(True, False)
    return dict(dY=g.normal(), X=x, gamma=g.pick(None, g.normal(g.m)), mean=mean, rstd=rstd,
                out=g.pick(None, g.empty()) if need_dx else None, dgamma=g.pick(None, g.empty(g.m)),
                dbeta=g.pick(None, g.empty(g.m)), need_dx=need_dx)


def _dropout_apply(g):
    rate = g.pick(0.0, 0.3, 0.9, 1.0, g.number(0, 1))
    # dropout (scale 1 / (1 - rate)) or alpha dropout's affine map and fill
    scale, shift, fill = g.pick((1 / (1 - rate) if rate < 1 else 0.0, 0.0, 0.0), (0.8, 0.1, -1.7))
    return dict(X=g.normal(), rate=rate, scale=scale, shift=shift, fill=fill,
                seed=g.word() - g.pick(0, 2 ** 63), counter=g.word(),
                out=g.pick(None, g.empty(), Alias("X")), mask=g.pick(None, g.empty(dtype=np.uint8)))


def _norm_constraint(g):
    w = g.pick(g.normal(scale=2), g.normal(g.n, g.m, 3, scale=2))
    min_value, max_value, rate, unit = g.pick((0.0, 1.5, 1.0, False), (0.5, 1.0, 0.7, False),
                                             (1.0, 1.0, 1.0, True))
    return dict(W=w, min_value=min_value, max_value=max_value, rate=rate, unit=unit,
                axis=int(g.rng.integers(-1, w.ndim)))


def _l1_l2_penalty(g):
    w = g.normal()
    w[0, 0] = 0  # sign(0) = 0
    l1, l2, scale = g.pick((0.01, 0.0, 1.0), (0.0, 0.02, 1.0), (0.003, 0.05, 0.25))
    return dict(w=w, l1=l1, l2=l2, scale=scale, grad=g.pick(None, g.normal()))


OPTIMIZER_TOL = (0.05, 10)  # float32: rtol 1e-6, atol 1e-7; float64: rtol 1e-11, atol 1e-12
# the penalty is summed in double: close to float64 precision for both dtypes
PENALTY_TOL = {"return": (5e-8, 1), "grad": 2}

KERNELS = {
    # ---- activations (csrc/activations.c)
    **{f"bias_act_forward[{a}]": Row(_bias_act_forward(a), tol=5, writes=("Z",)) for a in ACTIVATION_CODES},
    # fixed tolerances: scaled by the row count they reached rtol 1.03 in float32 (a kernel
    # off by 2x passed); the largest db error measured over the old matrix was 1.6 units
    **{f"act_backward[{a}]": Row(_act_backward(a), tol={"db": 20, "default": 10}) for a in ACTIVATION_CODES},
    "prelu_forward": Row(lambda g: dict(X=g.normal(), a=g.uniform(-0.5, 0.5, g.m), out=g.pick(None, g.empty()))),
    "prelu_backward": Row(lambda g: dict(dY=g.normal(), X=g.normal(), a=g.uniform(-0.5, 0.5, g.m),
                                         out=g.pick(None, g.empty()), da=g.pick(None, g.empty(g.m))),
                          tol=10),
    "maxout_forward": Row(_maxout_forward, exact=True),
    "maxout_backward": Row(_maxout_backward, exact=True),
    # ---- losses (csrc/losses.c)
    **{f"elementwise_loss[{name}]": Row(_elementwise_loss(name), tol={"out": 100, "default": 5})
       for name in LOSS_CODES},
    "softmax_cross_entropy[logits]": Row(_softmax_cross_entropy(True), tol={"out": 10, "default": 5}),
    "softmax_cross_entropy[probabilities]": Row(_softmax_cross_entropy(False), tol={"out": 10, "default": 5}),
    "sparse_softmax_cross_entropy[logits]": Row(_sparse_softmax_cross_entropy(True),
                                                tol={"out": 10, "default": 5}),
    "sparse_softmax_cross_entropy[probabilities]": Row(_sparse_softmax_cross_entropy(False),
                                                       tol={"out": 10, "default": 5}),
    # ---- reductions and batching (csrc/reductions.c)
    "col_sum": Row(lambda g: dict(X=g.normal(), out=g.pick(None, g.empty(g.m))), tol=20),
    "sum_squares": Row(lambda g: dict(x=g.pick(g.normal(), g.normal(g.n * g.m))), tol=(5e-4, 1e4)),
    "all_finite": Row(_all_finite, exact=True),
    "argmax_hits": Row(_argmax_hits, exact=True),
    "argmax_match_hits": Row(_argmax_match_hits, exact=True),
    "threshold_hits": Row(lambda g: dict(y_pred=g.uniform(0, 1), y_true=g.ints(2).astype(g.dtype),
                                         threshold=g.pick(0.5, 0.3, 0.7)), exact=True),
    "take_rows": Row(_take_rows, exact=True, contiguous=("src",)),
    "read_rows": Row(_read_rows, exact=True, writes=("out",)),
    # ---- embedding lookups (csrc/embedding.c)
    "embedding_forward": Row(lambda g: dict(codes=g.ints(g.n, g.n, 3, dtype=g.pick(np.int64, np.int32, g.dtype)),
                                            W=g.normal(), out=g.pick(None, g.empty(g.n, 3, g.m)),
                                            index=g.pick(None, g.empty(g.n, 3, dtype=np.int64))), exact=True),
    "embedding_backward": Row(lambda g: dict(dY=g.normal(g.n, 3, g.m), index=g.ints(g.n, g.n, 3), rows=g.n,
                                             out=g.pick(None, g.empty())), tol=10),
    # ---- matrix products from C (csrc/products.c): np.matmul's BLAS calls, its bits
    # (transposed operands and the shapes with a 1: tests/kernels/test_products.py)
    "matmul": Row(_matmul, exact=True, contiguous=("a", "b")),
    # ---- merge layers' column copies (csrc/merging.c)
    "concat_columns": Row(_concat_columns, exact=True, parallel=(1024, 600)),
    "split_columns": Row(_split_columns, exact=True, parallel=(1024, 600)),
    # ---- optimizers (csrc/optimizers.c): param and state are updated in place
    "sgd_update": Row(_update(lambda g: dict(
        velocity=g.pick(None, _state(g)), learning_rate=g.number(1e-3, 0.5), momentum=g.number(0, 0.95),
        nesterov=g.pick(False, True))), tol=OPTIMIZER_TOL, writes=("param", "velocity")),
    "adam_update": Row(_update(lambda g: dict(
        momentum=_state(g), velocity=_state(g), velocity_hat=g.pick(None, _state(g)),
        learning_rate=g.number(1e-4, 0.1), beta_1=g.number(0, 0.99), beta_2=g.number(0.5, 0.9999),
        epsilon=g.pick(1e-7, 1e-3), step=int(g.rng.integers(1, 1000)))),
        tol=OPTIMIZER_TOL, writes=("param", "momentum", "velocity", "velocity_hat")),
    "adamax_update": Row(_update(lambda g: dict(
        momentum=_state(g), norm=_state(g), learning_rate=g.number(1e-4, 0.1), beta_1=g.number(0, 0.99),
        beta_2=g.number(0.5, 0.9999), epsilon=1e-7, step=int(g.rng.integers(1, 1000)))),
        tol=OPTIMIZER_TOL, writes=("param", "momentum", "norm")),
    "nadam_update": Row(_update(_nadam), tol=OPTIMIZER_TOL, writes=("param", "momentum", "velocity")),
    "rmsprop_update": Row(_update(_rmsprop), tol=OPTIMIZER_TOL,
                          writes=("param", "velocity", "momentum_buffer", "average_gradient")),
    "adagrad_update": Row(_update(lambda g: dict(
        accumulator=_state(g, 0.1, 1.0), learning_rate=g.number(1e-3, 0.5), epsilon=g.pick(1e-7, 1e-3))),
        tol=OPTIMIZER_TOL, writes=("param", "accumulator")),
    "lion_update": Row(_update(lambda g: dict(
        momentum=_state(g), learning_rate=g.number(1e-4, 0.1), beta_1=g.number(0.01, 0.99),
        beta_2=g.number(0.5, 0.999))), tol=OPTIMIZER_TOL, writes=("param", "momentum")),
    "adadelta_update": Row(_update(lambda g: dict(
        accumulated_grad=_state(g), accumulated_delta_var=_state(g), learning_rate=g.number(0.1, 1.0),
        rho=g.number(0.8, 0.99), epsilon=g.pick(1e-7, 1e-4))),
        tol=OPTIMIZER_TOL, writes=("param", "accumulated_grad", "accumulated_delta_var")),
    "ftrl_update": Row(_update(lambda g: dict(
        accumulator=_state(g, 0.1, 0.5), linear=_state(g), learning_rate=g.number(0.01, 0.5),
        learning_rate_power=-g.number(0, 1), l1_regularization_strength=g.pick(0.0, 0.05),
        l2_regularization_strength=g.pick(0.0, 0.1), l2_shrinkage_regularization_strength=g.pick(0.0, 0.05),
        beta=g.pick(0.0, 0.2))), tol=OPTIMIZER_TOL, writes=("param", "accumulator", "linear")),
    "lamb_update": Row(_update(lambda g: dict(
        momentum=_state(g), velocity=_state(g), learning_rate=g.number(1e-4, 0.1), beta_1=g.number(0, 0.99),
        beta_2=g.number(0.5, 0.9999), epsilon=1e-7, step=int(g.rng.integers(1, 1000)))),
        tol=OPTIMIZER_TOL, writes=("param", "momentum", "velocity")),
    "adafactor_update": Row(_adafactor, tol=OPTIMIZER_TOL, writes=("param", "r", "c", "velocity")),
    "ema_update": Row(lambda g: dict(average=g.normal(), value=g.normal(), momentum=g.number(0, 1)),
                      exact=True, writes=("average",)),
    # ---- normalization (csrc/normalization.c)
    "batchnorm_forward_train": Row(_batchnorm_forward_train, tol=50,
                                   writes=("moving_mean", "moving_variance")),
    "batchnorm_backward": Row(_batchnorm_backward, tol=10),
    "col_affine": Row(lambda g: dict(X=g.normal(), shift=g.pick(None, g.normal(g.m)), scale=g.normal(g.m),
                                     offset=g.pick(None, g.normal(g.m)),
                                     out=g.pick(None, g.empty(), Alias("X")))),
    "layernorm_forward": Row(_layernorm_forward, tol=50),
    "layernorm_backward": Row(_layernorm_backward, tol=10),
    # ---- dropout family (csrc/dropout.c): counter-based random numbers, the same bits
    "random_words": Row(lambda g: dict(seed=g.word() - g.pick(0, 2 ** 63), counter=g.word(), n=g.n * g.m,
                                       out=g.pick(None, g.empty(g.n * g.m, dtype=np.uint64))), exact=True),
    "dropout_apply": Row(_dropout_apply, exact=True),
    "dropout_backward": Row(lambda g: dict(dY=g.normal(), mask=g.ints(2, dtype=g.pick(np.uint8, np.bool_)),
                                           scale=g.number(1, 3), out=g.pick(None, g.empty(), Alias("dY"))),
                            exact=True),
    # an odd element count over two threads: the last Box-Muller pair is split
    **{f"gaussian_noise_apply[{kind}]": Row(lambda g, mult=mult: dict(
        X=g.normal(), stddev=g.number(0, 1), multiplicative=mult, seed=g.word() - g.pick(0, 2 ** 63),
        counter=g.word(), out=g.pick(None, g.empty())), exact=True, parallel=(201, 199))
       for kind, mult in (("additive", False), ("multiplicative", True))},
    # ---- regularizers and constraints (csrc/regularizers.c)
    "l1_l2_penalty": Row(_l1_l2_penalty, tol=PENALTY_TOL, writes=("grad",)),
    "norm_constraint": Row(_norm_constraint, tol=2, writes=("W",)),
    "non_neg": Row(lambda g: dict(W=g.normal()), exact=True, writes=("W",)),
}


def _kernel(case):
    return case.split("[")[0]


# ---- layouts of the inputs ------------------------------------------------------------------
def _strided(a):
    """The same values in a view with a gap between consecutive elements of the last axis."""
    if a.ndim == 0:
        return a
    big = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    view = big[..., ::2]
    view[...] = a
    return view


def _read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


LAYOUTS = {"contiguous": lambda a: a, "strided": _strided, "read-only": _read_only}


def _arrays(v):
    """A list of arrays is one argument of several (concat_columns' inputs, split_columns'
    outputs): each array gets what a single one would."""
    return isinstance(v, list) and v and all(isinstance(a, np.ndarray) for a in v)


def _written(case, args, outputs):
    """The arguments the kernel writes: the row's ``writes``, Alias targets, output buffers
    (or lists of them)."""
    def is_output(v):
        return any(v is o for o in outputs) or (_arrays(v) and all(is_output(a) for a in v))
    return (set(KERNELS[case].writes) | {v.name for v in args.values() if isinstance(v, Alias)}
            | {name for name, v in args.items() if is_output(v)})


def _call(ops, case, args, written, layout, threads):
    """Run one kernel on copies of ``args``; (return value, {written name: array, or a tuple
    of them for a list})."""
    kw = {}
    for name, v in args.items():
        laid = name not in written and not (layout == "strided" and name in KERNELS[case].contiguous)
        if isinstance(v, np.ndarray):
            v = LAYOUTS[layout](v.copy()) if laid else v.copy()
        elif _arrays(v):
            v = [LAYOUTS[layout](a.copy()) if laid else a.copy() for a in v]
        kw[name] = v
    kw.update({name: kw[v.name] for name, v in args.items() if isinstance(v, Alias)})
    with np.errstate(all="ignore"):  # random optimizer states may take a root of a negative
        result = getattr(ops, _kernel(case))(**kw, n_threads=threads)
    return result, {name: tuple(kw[name]) if isinstance(kw[name], list) else kw[name]
                    for name in written if kw.get(name) is not None}


def _tolerance(row, what, dtype):
    spec = row.tol.get(what, row.tol.get("default", 1.0)) if isinstance(row.tol, dict) else row.tol
    scale = spec[DTYPES.index(dtype)] if isinstance(spec, tuple) else spec
    return RTOL[dtype] * scale, ATOL[dtype] * scale


def _assert_same(c, r, row, what, dtype, case):
    msg = f"{case}: {what}"
    if isinstance(r, tuple):
        assert isinstance(c, tuple) and len(c) == len(r), msg
        for i, (a, b) in enumerate(zip(c, r)):
            _assert_same(a, b, row, f"{what}[{i}]", dtype, case)
    elif r is None or isinstance(r, (bool, np.bool_)):
        assert c is r or c == r, msg
    elif row.exact:
        c, r = np.asarray(c), np.asarray(r)
        assert c.shape == r.shape, msg
        np.testing.assert_array_equal(c, r, err_msg=msg)
    else:
        rtol, atol = _tolerance(row, what.split("[")[0] if what.startswith("return") else what, dtype)
        c, r = np.asarray(c, np.float64), np.asarray(r, np.float64)
        assert c.shape == r.shape, msg
        np.testing.assert_allclose(c, r, rtol=rtol, atol=atol, err_msg=msg)


@requires_c
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", sorted(KERNELS))
@settings(max_examples=3, deadline=None)
@given(size=st.tuples(st.integers(1, 40), st.integers(1, 40)), seed=st.integers(0, 2 ** 32 - 1))
@example(size=None, seed=0)  # None: the row's shape for the parallel path
def test_c_kernel_matches_reference(case, dtype, threads, layout, size, seed):
    row = KERNELS[case]
    if size is None and (threads, layout) != (2, "contiguous"):
        return  # the large example is for the parallel path; layouts are checked on small ones
    n, m = row.parallel if size is None else size
    g = Draw(dtype, n, m, seed)
    try:
        args = row.build(g)
        written = _written(case, args, g.outputs)
        c, c_written = _call(C, case, args, written, layout, threads)
        r, r_written = _call(REF, case, args, written, "contiguous", None)
    finally:
        g.close()
    _assert_same(c, r, row, "return", dtype, case)
    assert sorted(c_written) == sorted(r_written)
    for name in r_written:
        _assert_same(c_written[name], r_written[name], row, name, dtype, case)


# ---- the table covers every kernel, and C and reference take the same arguments -------------
REFERENCE_KERNELS = sorted(name for mod in reference.MODULES for name in mod.__all__)


def test_every_reference_kernel_has_a_parity_row():
    rows = {_kernel(case) for case in KERNELS}
    missing = sorted(set(REFERENCE_KERNELS) - rows)
    assert missing == [], f"add a row to KERNELS in {__file__} for: {', '.join(missing)}"
    unknown = sorted(rows - set(REFERENCE_KERNELS))
    assert unknown == [], f"rows for kernels the reference does not have: {', '.join(unknown)}"


@requires_c
@pytest.mark.parametrize("name", REFERENCE_KERNELS)
def test_c_kernel_takes_the_references_arguments(name):
    c_fn, r_fn = getattr(ops_module.COps, name), getattr(ops_module.NumpyOps, name)
    assert c_fn is not r_fn, f"COps.{name} is the reference: fastnn._ckernels has no {name}"
    c_sig, r_sig = inspect.signature(c_fn), inspect.signature(r_fn)
    assert [(p.name, p.kind, p.default) for p in c_sig.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in r_sig.parameters.values()], f"{name}: C {c_sig}, reference {r_sig}"


def test_every_row_builds_arguments_the_reference_accepts():
    # a row's builder names the kernel's parameters (a typo fails here, not as a TypeError
    # deep in the matrix)
    for case, row in KERNELS.items():
        g = Draw(np.float64, 3, 4, 0)
        try:
            args = row.build(g)
        finally:
            g.close()
        params = inspect.signature(getattr(REF, _kernel(case))).parameters
        assert set(args) <= set(params) - {"n_threads"}, f"{case}: {sorted(set(args) - set(params))}"
        assert set(row.writes) <= set(params), case
