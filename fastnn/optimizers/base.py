"""The Optimizer base class: learning rate (float, schedule or callable), iteration count,
per-variable state allocated once, gradient clipping, weight decay and constraints.

One step (``apply``) follows Keras 3's ``Optimizer.apply`` order exactly:

1. gradient clipping, one mode only, in Keras' priority: ``clipnorm`` (each gradient
   scaled by ``clipnorm / max(||g||, clipnorm)``), else ``global_clipnorm`` (every gradient
   scaled by ``global_clipnorm / max(global norm, global_clipnorm)``), else ``clipvalue``
   (elementwise clip to ``[-clipvalue, clipvalue]``); norms are C reductions (``sum_squares``);
2. decoupled weight decay ``w = w - w * weight_decay * lr`` (``weight_decay`` not None);
3. the optimizer's update rule;
4. the exponential moving average of the weights (``use_ema=True``);
5. ``iterations += 1``, then each variable's constraint.

With ``gradient_accumulation_steps=k`` (Keras 3 semantics), steps 1-3 run on every k-th call
only, with the mean of the k gradients (``(g + sum of the k - 1 before) / k``, summed in the
state slot ``"gradient_accumulator"``); the other calls only add their gradient to it. The raw
call count is ``_iterations``; ``iterations`` is ``_iterations // k``, the number of updates
(the step number of bias corrections), as in Keras; a learning-rate schedule is evaluated at
``_iterations``, as in Keras. Weight decay and constraints follow Keras too: decay on the
update calls, constraints after every call.

With ``use_ema=True`` (Keras 3 semantics) every call then updates each variable's average
(state slot ``"average"``): ``average = m * average + (1 - m) * w``, m = ema_momentum (0 while
``iterations`` is 0, so the first average is the weights); with ``ema_overwrite_frequency=f``
the weights are replaced by their averages whenever ``(iterations + 1) % f == 0`` (before the
increment); ``finalize_variable_values(variables)`` copies the averages into the weights (Keras'
``fit`` calls it at the end of training). The averages are kept for the variables passed to
``apply`` (a frozen variable's average, like the rest of its state, stays as it was; Keras
keeps averaging it towards its unchanged value).

The built-in optimizers fuse 1-3 into one C pass per variable (``update`` receives the clip
scale, clip value and weight decay); the gradient buffers are never modified.

Non-finite gradients (Keras semantics, nothing is silently repaired): a NaN or inf element
propagates to its weight and to its optimizer state. With ``clipnorm`` a non-finite element
makes its tensor's norm non-finite, so that whole tensor's update is NaN (finite elements
of a tensor with an inf get a zero gradient, as in Keras); with ``global_clipnorm`` every
variable becomes NaN. The loss then turns NaN on the next step, and the
``callbacks.TerminateOnNaN`` callback stops training there.

Subclasses implement ``build_variable(var)`` (a dict of named state arrays, Keras' slot
names) and ``update(var, grad, state, lr, weight_decay, grad_scale, clipvalue)``. A user
subclass that leaves ``fuses_clip_and_decay = False`` implements ``update(var, grad,
state, lr)`` instead and gets the clipped gradient (clipped in place in ``var.grad``) and
already-decayed weights from this base class.
"""
import contextlib
import functools
import inspect
import math
import re

import numpy as np

from .. import backend

# A model's update of fewer parameters than this runs on one thread inside fit. In isolation
# the 2-thread Adam kernel is 1.9x faster, but in the training loop it was not faster at any
# size measured on 2 cores (0.99-1.00x at 0.4M-5.8M parameters) and slower for small models
# (1.23x slower at 203k parameters, 1.04x at 536k with batch 32): the two halves of the state
# end up in two cores' caches, and the next step's products fetch them across. Results are the
# same bits either way; above this size the parallel update is kept for bigger machines.
PARALLEL_UPDATE_MIN = 1 << 20
from ..layers.base import _offset, is_packed  # noqa: E402  (after the constants they explain)
from .schedules import LearningRateSchedule  # noqa: E402


class _PackedRun:
    """A run of packed variables seen as one flat variable (``value``, ``grad``, ``state``)."""

    name = "packed"

    def __init__(self, value, grad, decay):
        self.value, self.grad, self.decay, self.state = value, grad, decay, None


def _norm_scale(norm, clip, global_norm=False):
    """clip / max(norm, clip), as Keras' clip_by_norm: 0 for an infinite norm (finite
    elements get a zero gradient, the inf ones NaN), NaN for a NaN norm. Keras'
    clip_by_global_norm makes the scale NaN for any non-finite norm (``global_norm``)."""
    if norm <= clip:
        return 1.0
    if norm > clip and (math.isfinite(norm) or not global_norm):
        return clip / norm
    return math.nan


def _wants_step(fn):
    """Does a learning-rate callable take the step number? Keras' callables take no
    argument; fastnn also accepts ``fn(step)`` (the iteration count)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    required = [p for p in params if p.default is p.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) >= 1


class _LearningRateValue(float):
    """What ``optimizer.learning_rate`` returns: a float that also has the two methods Keras 3
    code calls on its learning-rate Variable, ``.numpy()`` and ``.assign(value)`` (the latter
    sets the optimizer's rate, exactly as ``optimizer.learning_rate = value``)."""

    def numpy(self):
        return float(self)

    def assign(self, value):
        self._optimizer.learning_rate = value


def _learning_rate_value(lr, optimizer):
    value = _LearningRateValue(lr)
    value._optimizer = optimizer
    return value


def _checked_int(name, value, low, cls_name):
    if value is None or (value is False) or (not isinstance(value, bool) and value == 0):
        return None  # Keras: falsy disables
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{cls_name}: `{name}` must be an integer >= {low} or None, got "
                         f"{value!r}")
    return int(value)


class Optimizer:
    """Optimizer(learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
    global_clipnorm=None, use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
    gradient_accumulation_steps=None, name=None)

    ``learning_rate``: a float, a ``LearningRateSchedule`` (called with the raw call count
    ``_iterations``, as Keras) or a callable (no argument, as in Keras, or one argument: the
    call count). It can be read (a float) and assigned during training:
    ``optimizer.learning_rate = 1e-4``. ``iterations``: the number of updates taken.
    Per-variable state: ``state_of(var)``, a dict of named arrays, allocated once.
    ``use_ema``, ``ema_momentum``, ``ema_overwrite_frequency`` and
    ``gradient_accumulation_steps``: see the module docstring (Keras 3 semantics).
    """

    #: the subclass' update() takes (lr, weight_decay, grad_scale, clipvalue) and fuses them
    fuses_clip_and_decay = False
    #: state is elementwise (arrays shaped like the variable, one value per element), so a
    #: run of packed variables can be updated as one flat array
    elementwise = False

    def __init_subclass__(cls, **kwargs):
        # A subclass' build_variable gets the slots this class adds (gradient accumulator,
        # EMA average) however it is called: by build(), by _packed_groups, or by
        # saving.load_model, which compares the slots in a file with build_variable's.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("build_variable")
        if own is not None and not getattr(own, "_adds_base_slots", False):
            @functools.wraps(own)
            def build_variable(self, var, _own=own):
                return self._add_base_slots(var, _own(self, var))
            build_variable._adds_base_slots = True
            cls.build_variable = build_variable

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        if kwargs.pop("loss_scale_factor", None) is not None:
            raise NotImplementedError(f"{type(self).__name__}: loss_scale_factor is not "
                                      "supported by fastnn (it computes in float32/float64)")
        cls_name = type(self).__name__
        self.gradient_accumulation_steps = _checked_int(
            "gradient_accumulation_steps", gradient_accumulation_steps, 2, cls_name)
        self.use_ema = bool(use_ema)
        self.ema_momentum, self.ema_overwrite_frequency = ema_momentum, ema_overwrite_frequency
        if self.use_ema:  # Keras checks the EMA arguments only when EMA is on
            if isinstance(ema_momentum, bool) or not isinstance(
                    ema_momentum, (int, float, np.number)) or not 0 <= ema_momentum <= 1:
                raise ValueError(f"{cls_name}: `ema_momentum` must be in the range [0, 1], got "
                                 f"{ema_momentum!r}")
            self.ema_momentum = float(ema_momentum)
            self.ema_overwrite_frequency = _checked_int(
                "ema_overwrite_frequency", ema_overwrite_frequency, 1, cls_name)
        if kwargs.pop("decay", None) is not None:  # Keras 2's argument (HOML's power scheduling)
            import warnings
            warnings.warn("Argument `decay` is no longer supported and will be ignored (as in "
                          "Keras 3); for the same power scheduling use learning_rate=keras."
                          "optimizers.schedules.InverseTimeDecay(lr, decay_steps=1, "
                          "decay_rate=decay)", UserWarning, stacklevel=3)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}")
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError(f"{type(self).__name__}: only one of clipnorm and global_clipnorm can "
                             f"be set, got clipnorm={clipnorm}, global_clipnorm={global_clipnorm}")
        for key, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                       ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.number))
                                  or not (math.isfinite(v) and v >= 0)):
                raise ValueError(f"{type(self).__name__}: {key} must be a finite number >= 0, got {v!r}")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = None if weight_decay is None else float(weight_decay)
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self._learning_rate = None
        self._iterations = 0  # apply() calls; iterations counts updates (see the docstring)
        self.learning_rate = learning_rate
        self._state = {}     # id(variable) -> dict of named state arrays
        self._tracked = {}   # id(variable) -> variable (keeps ids unique while state lives)
        self._exclude_ids = set()
        self._exclude_pattern = None
        self._wd_cache = {}
        self._packed_cache = None

    # -- step count ---------------------------------------------------------------------
    @property
    def iterations(self):
        """The number of updates taken: the number of ``apply`` calls, divided (floor) by
        ``gradient_accumulation_steps`` when set, as Keras 3 counts."""
        k = self.gradient_accumulation_steps
        return self._iterations // k if k else self._iterations

    @iterations.setter
    def iterations(self, value):
        # with accumulation: the first call of update number `value` (an accumulation cycle
        # starts there; whatever is in the accumulators is carried over)
        value = int(value)
        if value < 0:
            raise ValueError(f"iterations must be >= 0, got {value}")
        k = self.gradient_accumulation_steps
        self._iterations = value * k if k else value

    @property
    def apply_calls(self):
        """fastnn extra: the number of ``apply`` calls (``iterations`` times
        gradient_accumulation_steps, plus the calls of an unfinished accumulation cycle);
        saving records it, so a model saved mid-cycle resumes mid-cycle."""
        return self._iterations

    @apply_calls.setter
    def apply_calls(self, value):
        value = int(value)
        if value < 0:
            raise ValueError(f"apply_calls must be >= 0, got {value}")
        self._iterations = value

    # -- learning rate ------------------------------------------------------------------
    @property
    def learning_rate(self):
        """The current learning rate as a float (a schedule is evaluated at the call count
        ``_iterations``, which is ``iterations`` unless gradients are accumulated); Keras'
        ``optimizer.learning_rate.numpy()`` and ``.assign(v)`` work on it too."""
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = lr(self._iterations)
        elif callable(lr):
            lr = lr(self._iterations) if self._lr_wants_step else lr()
        else:
            return _learning_rate_value(lr, self)  # checked when it was set
        try:
            value = float(lr)
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}: the learning-rate schedule or callable must "
                            f"return a number, got {lr!r}") from None
        if not 0.0 <= value < math.inf:  # checked before the step: the weights stay intact
            raise ValueError(f"{type(self).__name__}: the learning-rate schedule or callable "
                             f"returned {value!r} at step {int(self._iterations)}; a learning rate "
                             f"must be a finite number >= 0, got {value!r}")
        return _learning_rate_value(value, self)

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._learning_rate = value
            self._lr_wants_step = (not isinstance(value, LearningRateSchedule)
                                   and _wants_step(value))
            return
        if isinstance(self._learning_rate, LearningRateSchedule):
            # as Keras: silently dropping the schedule would be a worse surprise
            raise TypeError(
                f"{type(self).__name__} was created with a LearningRateSchedule as its "
                "learning_rate, hence its learning rate is not settable to a number; create the "
                "optimizer with a float learning_rate (or assign a new schedule) instead")
        if isinstance(value, bool):
            raise TypeError(f"learning_rate must be a number, a schedule or a callable, got {value!r}")
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"learning_rate must be a number, a schedule or a callable, "
                            f"got {value!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"learning_rate must be a finite number >= 0, got {value}")
        self._learning_rate = value

    lr = learning_rate

    @property
    def learning_rate_setting(self):
        """fastnn extra: the learning rate as set (a float, a schedule or a callable), not
        evaluated at the current step."""
        return self._learning_rate

    def replace_learning_rate(self, value):
        """fastnn extra: set the learning rate to ``value`` (a float, a schedule or a
        callable) even where a schedule was set, for tools that put the original back
        afterwards (the learning-rate range test, training-state snapshots)."""
        self._learning_rate = None
        self.learning_rate = value

    # -- state --------------------------------------------------------------------------
    def build(self, variables):
        """Allocate state for each variable not seen before (idempotent)."""
        for v in variables:
            if id(v) not in self._state:
                self._state[id(v)] = self.build_variable(v)
                self._tracked[id(v)] = v

    def build_variable(self, var):
        """A dict of named state arrays for ``var`` (empty by default; a subclass' own
        slots, plus ``"gradient_accumulator"`` and ``"average"`` when those are on)."""
        return self._add_base_slots(var, {})

    def _add_base_slots(self, var, state):
        if self.gradient_accumulation_steps and "gradient_accumulator" not in state:
            state["gradient_accumulator"] = np.zeros_like(var.value)
        if self.use_ema and "average" not in state:
            # Keras starts from zeros and takes the weights at the first step (momentum 0
            # while iterations is 0); starting from the weights gives the same, and a
            # sensible average for a variable first seen later
            state["average"] = var.value.copy()
        return state

    def state_of(self, var):
        """The dict of named state arrays of ``var`` (None before the optimizer saw it)."""
        return self._state.get(id(var))

    # -- weight decay selection (Keras API) ------------------------------------------------
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude variables from weight decay: those in ``var_list``, and those whose name
        contains any string of ``var_names`` (e.g. ``var_names=["bias"]``)."""
        self._exclude_ids = set(id(v) for v in (var_list or ()))
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        self._wd_cache = {}
        self._packed_cache = None  # packed runs are split by weight-decay setting

    def _use_weight_decay(self, var):
        key = id(var)
        use = self._wd_cache.get(key)
        if use is None:
            use = not (key in self._exclude_ids or (
                self._exclude_pattern is not None
                and self._exclude_pattern.search(getattr(var, "name", "")) is not None))
            self._wd_cache[key] = use
        return use

    # -- one step -----------------------------------------------------------------------
    def _prepare_step(self):
        """Hook run once per step before the per-variable updates (Nadam's schedule)."""

    def apply_gradients(self, grads_and_vars):
        """Keras' ``apply_gradients(zip(grads, variables))``; returns ``iterations``."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self.iterations

    def _take_gradients(self, grads, variables):
        """Keras' ``apply(grads, variables)`` form: copy each array into its variable's
        gradient buffer (variables whose gradient is None are skipped, as Keras does)."""
        variables = list(variables)
        grads = list(grads)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}.apply: got {len(grads)} gradients for "
                             f"{len(variables)} variables")
        kept = []
        for g, v in zip(grads, variables):
            if g is None:
                continue
            g = np.asarray(g)
            if v.grad is None:
                raise ValueError(f"{type(self).__name__}.apply: variable {v.name!r} is not "
                                 "trainable (it has no gradient buffer)")
            if g.shape != v.grad.shape:
                raise ValueError(f"{type(self).__name__}.apply: gradient of shape {g.shape} for "
                                 f"variable {v.name!r} of shape {v.grad.shape}")
            np.copyto(v.grad, g, casting="same_kind")
            kept.append(v)
        return kept

    def apply(self, variables, trainable_variables=None):
        """One optimizer step on ``variables`` using each one's ``.grad`` (Keras order:
        clip, weight decay, update, iterations += 1, constraints).

        Keras' form ``apply(grads, trainable_variables)`` also works: the arrays in
        ``grads`` are copied into the variables' gradient buffers first."""
        if trainable_variables is not None:
            grads = list(variables)
            if not grads:  # Keras: an empty gradient list is a no-op
                return
            variables = self._take_gradients(grads, trainable_variables)
            if not variables:
                raise ValueError(f"{type(self).__name__}.apply: no gradients provided for any "
                                 "variable (every gradient is None)")
        lr = self._learning_rate
        if type(lr) is not float:  # a schedule or a callable (a float is checked when set)
            lr = float(self.learning_rate)
        clipnorm = self.clipnorm if self.clipnorm else None
        fused = self.fuses_clip_and_decay
        packed = (self._packed_groups(variables)
                  if fused and self.elementwise and clipnorm is None else None)
        k = self.gradient_accumulation_steps
        units = None
        if k or self.use_ema:
            # (value, gradient, state) of each run of packed variables, or of each variable
            if packed is not None:
                units = [(run.value, run.grad, run.state) for run in packed]
            else:
                self.build(variables)
                units = [(v.value, v.grad, self._state[id(v)]) for v in variables]
        update_now = True
        if k:
            update_now = (self._iterations + 1) % k == 0
            for _, grad, state in units:
                acc = state["gradient_accumulator"]
                np.add(acc, grad, out=acc)
                if update_now:  # Keras: (g + accumulated) / k, divided (not times 1/k)
                    np.divide(acc, acc.dtype.type(k), out=acc)
        if update_now:
            self._update(variables, packed, lr, clipnorm, fused,
                         "gradient_accumulator" if k else None)
            if k:
                for _, _, state in units:
                    state["gradient_accumulator"].fill(0)
        if self.use_ema:
            self._update_averages(units)
        self._iterations += 1
        for v in variables:
            if v.constraint is not None:
                v.constraint.apply_(v.value)

    def _update(self, variables, packed, lr, clipnorm, fused, grad_key):
        """Clip, decay and update (Keras' order) from each variable's gradient buffer, or
        from its state slot ``grad_key`` (the accumulated mean gradient)."""
        self._prepare_step()
        ops = backend.ops
        scale = 1.0
        clipvalue = None
        if clipnorm is None:
            if self.global_clipnorm:
                total = 0.0
                for v in variables:
                    total += ops.sum_squares(self._grad_of(v, grad_key))
                scale = _norm_scale(math.sqrt(total), self.global_clipnorm, global_norm=True)
            elif self.clipvalue:
                clipvalue = self.clipvalue
        wd = self.weight_decay or 0.0
        if packed is not None:
            # one C call per run of variables sharing one buffer: same bits as per variable
            threads = (backend.serial_kernels() if self._packed_size < PARALLEL_UPDATE_MIN
                       else contextlib.nullcontext())
            with threads:
                for run in packed:
                    grad = run.grad if grad_key is None else run.state[grad_key]
                    self.update(run, grad, run.state, lr, wd if run.decay else 0.0, scale,
                                clipvalue)
        else:
            self._apply_each(variables, lr, scale, clipnorm, clipvalue, wd, fused, grad_key)

    def _grad_of(self, v, grad_key):
        return v.grad if grad_key is None else self._state[id(v)][grad_key]

    def _apply_each(self, variables, lr, scale, clipnorm, clipvalue, wd, fused, grad_key=None):
        """One update call per variable (the general path)."""
        ops = backend.ops
        for v in variables:
            state = self._state.get(id(v))
            if state is None:
                self.build((v,))
                state = self._state[id(v)]
            grad = v.grad if grad_key is None else state[grad_key]
            s = scale
            if clipnorm is not None:
                s = _norm_scale(math.sqrt(ops.sum_squares(grad)), clipnorm)
            vwd = wd if wd and self._use_weight_decay(v) else 0.0
            if fused:
                self.update(v, grad, state, lr, vwd, s, clipvalue)
            else:
                g = grad
                if s != 1.0:
                    g *= g.dtype.type(s)
                if clipvalue is not None:
                    np.clip(g, -clipvalue, clipvalue, out=g)
                if vwd:
                    v.value -= v.value * v.value.dtype.type(vwd * lr)
                self.update(v, g, state, lr)

    # -- exponential moving average of the weights (Keras 3's use_ema) -------------------
    def _update_averages(self, units):
        ops = backend.ops
        momentum = self.ema_momentum if self.iterations != 0 else 0.0
        for value, _, state in units:
            ops.ema_update(state["average"], value, momentum)
        f = self.ema_overwrite_frequency
        if f and (self.iterations + 1) % f == 0:
            for value, _, state in units:
                np.copyto(value, state["average"])

    def finalize_variable_values(self, var_list):
        """Keras 3: with ``use_ema``, copy each variable's moving average into it (what
        ``fit`` does at the end of training). A variable the optimizer has no average for
        (never updated) is left as it is. Without ``use_ema`` nothing happens."""
        if not self.use_ema:
            return
        for v in var_list:
            state = self._state.get(id(v))
            if state is not None and "average" in state:
                np.copyto(v.value, state["average"])

    def _packed_groups(self, variables):
        """When the model packed ``variables`` into one buffer (``layers.base.pack_variables``),
        runs of them that share a weight-decay setting, each with its optimizer state packed
        the same way, so one kernel call updates a run. None: update variable by variable.
        Built once per variable list; checked each step (a rebuilt model packs anew). The
        state entries of packed variables are only ever replaced here (build() only adds
        unseen variables), so the check is the list and its buffer, not each variable."""
        cache = self._packed_cache
        if cache is not None and cache[0] is variables and \
                variables[0].value.base is cache[1][0].value.base:
            return cache[1]
        self._packed_cache = None
        if not is_packed(variables):
            return None
        self.build(variables)
        runs, states = [], []
        start = 0
        for i in range(1, len(variables) + 1):
            if i < len(variables) and self._use_weight_decay(variables[i]) == \
                    self._use_weight_decay(variables[start]):
                continue
            run = variables[start:i]
            lo = _offset(run[0].value, run[0].value.base)
            hi = lo + sum(v.value.size for v in run)
            flat = _PackedRun(run[0].value.base[lo:hi], run[0].grad.base[lo:hi],
                              self._use_weight_decay(run[0]))
            flat.state = self.build_variable(flat)
            off = 0
            for v in run:
                n = v.value.size
                old = self._state[id(v)]
                new = {}
                for key, arr in flat.state.items():
                    arr[off:off + n] = old[key].reshape(-1)
                    new[key] = arr[off:off + n].reshape(v.value.shape)
                self._state[id(v)] = new
                states.append(new)
                off += n
            runs.append(flat)
            start = i
        self._packed_cache = (variables, runs, states)
        self._packed_size = sum(run.value.size for run in runs)
        return runs

    def update(self, var, grad, state, lr, weight_decay=0.0, grad_scale=1.0, clipvalue=None):
        """Update ``var.value`` in place from ``grad`` and ``state`` (see the class docstring)."""
        raise NotImplementedError

    # -- config -------------------------------------------------------------------------
    def get_config(self):
        """Keras-style config: constructor arguments (a schedule is serialized; a plain
        callable is saved as its current value)."""
        from . import schedules
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif callable(lr):
            lr = float(self.learning_rate)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": None,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        """Rebuild an optimizer (without state) from ``get_config()``."""
        from . import schedules
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate:g}>"
