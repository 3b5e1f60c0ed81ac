"""Callbacks with the Keras 3 API: hooks called by fit/evaluate/predict with ``logs``."""
import csv
import math
import sys
import threading
import time

import numpy as np


class Callback:
    """Base class. ``self.model`` is set by fit; override any ``on_*`` hook."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


class CallbackList:
    """Calls every callback's hook in order. Knows whether any callback cares about
    per-batch training hooks, so fit can skip building logs on every step otherwise."""

    def __init__(self, callbacks, model, params):
        # as Keras (which flattens the argument): one callback need not be in a list
        self.callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        # one dict shared with every callback: fit updates "steps" once a generator's length
        # is known (the progress bar reads it at each epoch's start)
        self.params = params
        for cb in self.callbacks:
            if isinstance(cb, type) or not callable(getattr(cb, "set_model", None)):
                what = f"the class {cb.__name__} (add ())" if isinstance(cb, type) else repr(cb)
                raise TypeError(f"callbacks must be Callback instances (e.g. "
                                f"callbacks=[EarlyStopping(patience=3)]), got {what}")
            cb.set_model(model)
            cb.set_params(params)
        self.wants_batches = self._overridden(_BATCH_HOOKS)
        self.wants_test_batches = self._overridden(("on_test_batch_begin", "on_test_batch_end"))
        self.wants_predict_batches = self._overridden(("on_predict_batch_begin", "on_predict_batch_end"))

    def _overridden(self, hooks):
        # Looked up on the instance: LambdaCallback sets its hooks as instance attributes.
        return any(getattr(getattr(cb, h, None), "__func__", getattr(cb, h, None))
                   is not getattr(Callback, h) for cb in self.callbacks for h in hooks)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            # Hooks called without logs get {} as in Keras 3 (user callbacks do logs.keys())
            if len(args) < (2 if ("batch" in hook or "epoch" in hook) else 1):
                args = args + ({},)
            for cb in self.callbacks:
                getattr(cb, hook)(*args)
            if hook == "on_train_batch_begin":
                for cb in self.callbacks:
                    cb.on_batch_begin(*args)
            elif hook == "on_train_batch_end":
                for cb in self.callbacks:
                    cb.on_batch_end(*args)
        return call


class History(Callback):
    """Records the epoch logs: ``history.history`` (dict of lists) and ``history.epoch``."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        if self.model is not None:
            self.model.history = self


def _format_value(v):
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(round(seconds))}s"


class Progbar:
    """Keras-style progress bar: ``469/469 ━━━━━━━━━━━━━━━━━━━━ 2s 4ms/step - loss: 0.3``."""

    def __init__(self, target, width=20, verbose=1, stream=None):
        self.target, self.width, self.verbose = target, width, verbose
        self.stream = stream or sys.stdout
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, current, values=None, finalize=False):
        now = time.perf_counter()
        if self.verbose != 1 and not finalize:
            return
        if not finalize and now - self._last_draw < 0.1 and (self.target is None
                                                              or current < self.target):
            return
        self._last_draw = now
        elapsed = now - self.start
        per_step = elapsed / max(current, 1)
        metrics = "".join(f" - {k}: {_format_value(v)}" for k, v in (values or {}).items()
                          if isinstance(v, (float, int, np.floating)))
        step_time = (f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3
                     else f"{per_step * 1e6:.0f}us/step")
        if self.verbose == 2:
            self.stream.write(f"{current}/{self.target} - {_format_time(elapsed)} - {step_time}{metrics}\n")
        elif self.target is None:  # a generator's first epoch: its length is not known yet
            end = "\n" if finalize else ""
            self.stream.write(f"\r{current}/Unknown {_format_time(elapsed)} {step_time}{metrics}\033[K{end}")
        else:
            done = int(self.width * current / max(self.target, 1))
            bar = "\u2501" * done + " " * (self.width - done)
            if current < self.target:
                eta = per_step * (self.target - current)
                timing = f"{_format_time(eta)} {step_time}"
            else:
                timing = f"{_format_time(elapsed)} {step_time}"
            end = "\n" if finalize else ""
            self.stream.write(f"\r{current}/{self.target} {bar} {timing}{metrics}\033[K{end}")
        self.stream.flush()


class ProgbarLogger(Callback):
    """Prints the progress bar (fit adds one when verbose is 1 or 2)."""

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose
        self._bar = None
        self._epochs = 1
        self._seen = 0

    def on_train_begin(self, logs=None):
        self._epochs = self.params.get("epochs", 1)

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose:
            print(f"Epoch {epoch + 1}/{self._epochs}")
            sys.stdout.flush()
        self._bar = Progbar(self.params.get("steps", 1), verbose=self.verbose)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        if self.verbose == 1 and self._bar is not None:
            self._bar.update(batch + 1, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.verbose and self._bar is not None:
            steps = self.params.get("steps", 1)
            self._bar.target = steps  # a generator's length is known after its first pass
            self._bar.update(self._seen if steps is None else steps, logs, finalize=True)


class LambdaCallback(Callback):
    """LambdaCallback(on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
    on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None, ...)"""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            if fn is not None:
                setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stops training when a batch loss is NaN or infinite (the weights are then those of the
    step that produced it: save with ModelCheckpoint to keep good ones)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """CSVLogger(filename, separator=",", append=False): one row of epoch logs per epoch."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = str(filename), separator, append
        self._keys = None

    def on_train_begin(self, logs=None):
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._writer is None:
            self._keys = sorted(logs)
            self._writer = csv.writer(self._file, delimiter=self.sep)
            if not self.append or self._file.tell() == 0:
                self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [logs.get(k, "NA") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


def _schedule_takes_lr(schedule):
    """Does an epoch schedule take (epoch, lr) rather than (epoch)? None if unknown."""
    import inspect
    try:
        params = list(inspect.signature(schedule).parameters.values())
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2


def _check_lr(value, who):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{who}: the schedule must return a number (the learning rate), "
                         f"got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{who}: the schedule returned {value}, which is not a finite "
                         "learning rate >= 0")
    return value


class LearningRateScheduler(Callback):
    """LearningRateScheduler(schedule, verbose=0)

    At the start of every epoch sets ``model.optimizer.learning_rate`` to
    ``schedule(epoch, lr)`` (``lr`` the current rate) or ``schedule(epoch)``: whichever the
    function accepts, as Keras. ``epoch`` counts from 0. ``learning_rate`` is in the epoch logs.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose
        self._takes_lr = _schedule_takes_lr(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        opt = getattr(self.model, "optimizer", None)
        if opt is None or not hasattr(opt, "learning_rate"):
            raise ValueError('LearningRateScheduler: the optimizer must have a "learning_rate" '
                             "attribute (compile the model first)")
        lr = float(opt.learning_rate)
        if self._takes_lr is None:  # signature unknown: Keras' way, new API first
            try:
                new = self.schedule(epoch, lr)
            except TypeError:
                new = self.schedule(epoch)
        elif self._takes_lr:
            new = self.schedule(epoch, lr)
        else:
            new = self.schedule(epoch)
        new = _check_lr(new, "LearningRateScheduler")
        opt.learning_rate = new
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """ReduceLROnPlateau(monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
    min_delta=1e-4, cooldown=0, min_lr=0.0)

    Keras 3's rule: when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs, multiply the learning rate by ``factor`` (not below ``min_lr``),
    then wait ``cooldown`` epochs before counting again. ``mode="auto"`` maximizes metrics
    whose name contains "acc" and minimizes everything else. The optimizer's learning rate
    must be a float (a schedule cannot be reduced: TypeError, as Keras).
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) {sorted(kwargs)}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0, got "
                             f"factor={factor}")
        if factor < 0:
            raise ValueError(f"ReduceLROnPlateau: factor must be >= 0, got {factor}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.verbose, self.mode, self.min_delta = verbose, mode, abs(float(min_delta))
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self._reset()

    def _reset(self):
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        import warnings
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"ReduceLROnPlateau: learning rate reduction is conditioned on metric "
                          f"{self.monitor!r}, which is not available. Available metrics are: "
                          f"{','.join(logs)}", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(opt.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    opt.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


# ---- EarlyStopping and ModelCheckpoint (Keras 3's MonitorCallback rules) -----------------
_UP_WORDS = ("acc", "auc", "precision", "recall", "f1")
_DOWN_WORDS = ("loss", "error", "mse", "mae", "mape", "msle", "crossentropy", "hinge", "kld",
               "divergence", "huber", "logcosh", "poisson")


class _MonitorCallback(Callback):
    """Keras 3's MonitorCallback: ``monitor``, ``mode`` ("auto", "min", "max"),
    ``min_delta``, ``best``, and ``_is_improvement(current, reference)``."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            import warnings
            warnings.warn(f"{type(self).__name__} mode {mode!r} is unknown, fallback to auto mode.",
                          stacklevel=3)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(float(min_delta))
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            if name == "loss":
                self.monitor_op = np.less
            for m in getattr(self.model, "compiled_metrics", None) or ():
                direction = getattr(m, "_direction", None)
                if getattr(m, "name", None) == name and direction in ("up", "down"):
                    self.monitor_op = np.greater if direction == "up" else np.less
            if self.monitor_op is None:
                low = name.lower()
                if any(w in low for w in _UP_WORDS):
                    self.monitor_op = np.greater
                elif any(w in low for w in _DOWN_WORDS):
                    self.monitor_op = np.less
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but fastnn "
                    "isn't able to automatically determine whether that metric should be "
                    "maximized or minimized. Pass mode='max' in order to monitor based on the "
                    "highest metric value, or pass mode='min' in order to use the lowest value.")
        if self.monitor_op is np.less:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


class EarlyStopping(_MonitorCallback):
    """EarlyStopping(monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
    baseline=None, restore_best_weights=False, start_from_epoch=0)

    Stops training when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs, Keras 3's rule step for step: epochs before ``start_from_epoch`` are
    ignored; an epoch improves when ``current - min_delta`` beats the best value (``mode``:
    "min", "max", or "auto" from the name); ``baseline``, when given, must also be beaten to
    reset the wait. With ``restore_best_weights`` the weights of the best epoch are put back
    at the end of training (also when training ran out of epochs before stopping).
    Attributes after training: ``stopped_epoch`` (0 if not stopped), ``best``, ``best_epoch``,
    ``wait``.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        if int(patience) < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = bool(restore_best_weights)
        self.best_weights = None
        self.start_from_epoch = int(start_from_epoch)
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # Instances may be reused across fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Weights never recorded yet: the current ones are the best so far.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Restart the wait only when both the baseline and the previous best are beaten.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            import warnings
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}", stacklevel=3)
        return value


class ModelCheckpoint(_MonitorCallback):
    """ModelCheckpoint(filepath, monitor="val_loss", verbose=0, save_best_only=False,
    save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None)

    Saves the model (``model.save``) or its weights (``model.save_weights``) at the end of
    every epoch, or every ``save_freq`` batches; with ``save_best_only`` only when
    ``monitor`` improved on the best value so far (``initial_value_threshold``: the value to
    beat first). ``filepath`` may hold format fields filled from the epoch (1-based) and the
    logs, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.keras"``. Unlike Keras, any extension is
    accepted (fastnn files are zip/.npz archives).
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        import os
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int)
                                     or save_freq < 1):
            raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are "
                             "'epoch' or a positive integer")
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = None
        self._current_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add = batch + 1
        else:
            add = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save(self, epoch, logs, filepath):
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            import warnings
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
        return False

    def _save_model(self, epoch, batch, logs):
        import os
        logs = dict(logs or {})
        try:
            if batch is None or "batch" in logs:
                filepath = self.filepath.format(epoch=epoch + 1, **logs)
            else:
                filepath = self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {e}") from None
        if not self._should_save(epoch, logs, filepath):
            return
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)



# ---- watching training (fastnn extras and Keras' TensorBoard) ----------------------------
class StopOnDivergence(Callback):
    """StopOnDivergence(factor=3.0, monitor="loss", verbose=0) (fastnn extra)

    Stops a run whose ``monitor`` exceeds ``factor`` times its first value, or stops being
    finite (NaN / inf): a diverging run (learning rate too high, regularization too weak)
    stops at once instead of wasting its remaining epochs, which is what makes a coarse
    random search over learning rates cheap. For a training quantity (``"loss"`` or a
    metric) the check runs after every batch (on the running epoch mean that the batch logs
    carry; the first value is the first batch's); for a ``val_*`` one after every epoch.

    Every epoch's logs get ``"diverged"``: 0.0, or 1.0 for the epoch the run was stopped in
    (so ``history.history["diverged"]`` marks it); afterwards ``diverged`` (bool),
    ``stopped_epoch`` (or None), ``first_value`` and ``reason`` (plain language). Meant for
    losses and other quantities that should fall; the first value must be positive
    (otherwise only non-finite values count as divergence).
    """

    def __init__(self, factor=3.0, monitor="loss", verbose=0):
        super().__init__()
        if isinstance(factor, bool) or not isinstance(factor, (int, float, np.number)) \
                or not math.isfinite(factor) or factor <= 1:
            raise ValueError(f"StopOnDivergence: factor must be a finite number > 1, got {factor!r}")
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"StopOnDivergence: monitor must be a log key such as 'loss' or "
                             f"'val_loss', got {monitor!r}")
        self.factor, self.monitor, self.verbose = float(factor), monitor, verbose
        self._per_batch = not monitor.startswith("val_")
        self._reset()

    def _reset(self):
        self.diverged = False
        self.stopped_epoch = None
        self.first_value = None
        self.reason = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, value, where):
        if value is None or self.diverged:
            return
        value = float(value)
        if not math.isfinite(value):
            self.reason = f"{self.monitor} became {value} ({where})"
        elif self.first_value is None:
            self.first_value = value
            return
        elif self.first_value > 0 and value > self.factor * self.first_value:
            self.reason = (f"{self.monitor} {value:.4g} exceeds {self.factor:g} x its first "
                           f"value {self.first_value:.4g} ({where})")
        else:
            return
        self.diverged = True
        self.stopped_epoch = self._epoch
        self.model.stop_training = True
        if self.verbose:
            print(f"\nEpoch {self._epoch + 1}: StopOnDivergence: {self.reason}; stopping")

    def on_train_batch_end(self, batch, logs=None):
        if self._per_batch:
            self._check((logs or {}).get(self.monitor), f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if self.monitor not in logs and self.first_value is None and not self.diverged:
            import warnings
            warnings.warn(f"StopOnDivergence: the metric {self.monitor!r} is not in the epoch "
                          f"logs (available: {', '.join(sorted(logs))})", stacklevel=2)
        if not self._per_batch or self.monitor in logs:
            self._check(logs.get(self.monitor), f"end of epoch {epoch + 1}")
        logs["diverged"] = 1.0 if self.diverged and self.stopped_epoch == epoch else 0.0


class TensorBoard(Callback):
    """TensorBoard(log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
    write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
    embeddings_metadata=None)

    Writes event files that TensorBoard reads (``tensorboard --logdir logs``), laid out as
    Keras 3 lays them out: ``log_dir/train`` and ``log_dir/validation`` run folders; per
    epoch (step = epoch, from 0) the scalars ``epoch_<name>`` for each training log (loss,
    metrics, ``epoch_learning_rate``, with ``write_steps_per_second`` also
    ``epoch_steps_per_second``) in train/ and for each ``val_<name>`` in validation/;
    after every validation pass ``evaluation_<name>_vs_iterations`` in validation/ (step =
    the optimizer's iterations); with ``update_freq="batch"`` or N, ``batch_<name>`` every
    N training batches (step = the global batch count from 1; ``batch_steps_per_second``
    with ``write_steps_per_second``); every ``histogram_freq`` epochs (epochs 0, f, 2f...) a
    histogram of every weight, tagged ``<layer>/<weight>/histogram`` (Keras 3 tags
    ``<weight>/histogram``, which collides between layers in fastnn), and with
    ``write_images`` the weight as an image (``<layer>/<weight>/image``, min-max scaled);
    with ``write_graph`` the model's JSON config as Keras' "keras" graph summary (the
    Graphs tab's conceptual graph).

    Needs the ``tensorboard`` package (``pip install fastnn[tensorboard]``): an ImportError
    naming it at construction otherwise. ``profile_batch`` and ``embeddings_freq`` must
    stay 0 (no profiler, no Embedding projector data).
    """

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0,
                 embeddings_freq=0, embeddings_metadata=None):
        super().__init__()
        import os
        from .integration import tensorboard as tb_files
        tb_files.check_installed()
        self.log_dir = os.fspath(log_dir)
        if isinstance(histogram_freq, bool) or not isinstance(histogram_freq, (int, np.integer)) \
                or histogram_freq < 0:
            raise ValueError(f"TensorBoard: histogram_freq must be an integer >= 0, got "
                             f"{histogram_freq!r}")
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(
                update_freq, (int, np.integer)) or update_freq < 1):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"integer, got {update_freq!r}")
        if profile_batch not in (0, None, "0", (0, 0)):
            raise ValueError(f"TensorBoard: profiling is not available in fastnn (no "
                             f"profiler), got profile_batch={profile_batch!r} (must be 0)")
        if embeddings_freq:
            raise ValueError(f"TensorBoard: fastnn does not write the Embedding projector's "
                             f"data, got embeddings_freq={embeddings_freq!r} (must be 0; histogram_freq "
                             "writes the tables among the weight histograms)")
        self.histogram_freq = int(histogram_freq)
        self.write_graph = bool(write_graph)
        self.write_images = bool(write_images)
        self.write_steps_per_second = bool(write_steps_per_second)
        self.update_freq = update_freq if update_freq == "epoch" else int(update_freq)
        self.embeddings_freq, self.embeddings_metadata = embeddings_freq, embeddings_metadata
        self._files = tb_files
        self._writers = {}
        self._global_train_batch = 0
        self._graph_written = False

    # The writers open lazily (as Keras'): an evaluate() call writes only validation/.
    def _writer(self, run):
        if run not in self._writers:
            import os
            self._writers[run] = self._files.EventWriter(os.path.join(self.log_dir, run))
        return self._writers[run]

    def _close_writers(self):
        for w in self._writers.values():
            w.close()
        self._writers = {}

    def _train_writer(self):
        return self._writer("train")

    def _val_writer(self):
        return self._writer("validation")

    def on_train_begin(self, logs=None):
        self._global_train_batch = 0
        if self.write_graph and not self._graph_written:
            try:
                config = self.model.to_json()
            except Exception as e:  # as Keras: a model that cannot be serialized is skipped
                import warnings
                warnings.warn(f"TensorBoard: the model failed to serialize as JSON; no graph "
                              f"is written ({e})", stacklevel=2)
            else:
                self._train_writer().keras_model("keras", config, 0)
            self._graph_written = True

    def on_epoch_begin(self, epoch, logs=None):
        if self.write_steps_per_second:
            self._epoch_start = time.perf_counter()
            self._epoch_start_iterations = int(getattr(self.model.optimizer, "iterations", 0))

    def on_train_batch_begin(self, batch, logs=None):
        self._global_train_batch += 1
        if self.write_steps_per_second:
            self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" or self._global_train_batch % self.update_freq:
            return
        writer, step = self._train_writer(), self._global_train_batch
        if self.write_steps_per_second:
            writer.scalar("batch_steps_per_second",
                          1.0 / max(time.perf_counter() - self._batch_start, 1e-9), step)
        for name, value in (logs or {}).items():
            if _is_number(value):
                writer.scalar("batch_" + name, value, step)

    def on_test_end(self, logs=None):
        iterations = getattr(getattr(self.model, "optimizer", None), "iterations", None)
        if iterations is None or not logs:
            return
        writer = self._val_writer()
        for name, value in logs.items():
            if _is_number(value):
                writer.scalar(f"evaluation_{name}_vs_iterations", value, int(iterations))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_") and _is_number(v)}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_") and _is_number(v)}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "learning_rate"):
            train["learning_rate"] = float(optimizer.learning_rate)
        if self.write_steps_per_second:
            steps = int(getattr(optimizer, "iterations", 0)) - self._epoch_start_iterations
            train["steps_per_second"] = steps / max(time.perf_counter() - self._epoch_start, 1e-9)
        for run, values in (("train", train), ("validation", val)):
            if values:
                writer = self._writer(run)
                for name, value in values.items():
                    writer.scalar("epoch_" + name, value, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for w in self._writers.values():  # TensorBoard shows the epoch as soon as it ends
            w.flush()

    def _log_weights(self, epoch):
        writer = self._train_writer()
        for layer in self.model.layers:
            for weight in layer.weights:
                tag = f"{layer.name}/{weight.name}".replace(":", "_")
                writer.histogram(tag + "/histogram", weight.value, epoch)
                if self.write_images:
                    image = self._files.weight_image(weight.value)
                    if image is not None:
                        writer.image(tag + "/image", image, epoch)

    def on_train_end(self, logs=None):
        self._close_writers()

    def __del__(self):
        try:  # an evaluate()-only or interrupted run still gets its files closed
            self._close_writers()
        except Exception:
            pass



class TrainingMonitorWarning(UserWarning):
    """A layer looks unhealthy during training (TrainingMonitor's plain-language warnings)."""


# Activations whose output is exactly 0 for negative inputs (a unit can die) and those that
# flatten out at both ends (a unit can saturate), by the name fastnn's activations carry.
_DYING = ("relu",)
_SATURATING = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0)}
MONITOR_STATS = ("activation_mean", "activation_std", "dead_fraction", "saturated_fraction",
                 "grad_norm", "update_ratio")


class TrainingMonitor(Callback):
    """TrainingMonitor(batches=2, saturation=0.97, dead_threshold=0.5,
    saturated_threshold=0.5, vanishing_ratio=1e-3, exploding_ratio=1e3, in_logs=False,
    warn=True) (fastnn extra)

    Per layer and per epoch, measured on ``batches`` training batches spread evenly over the
    epoch (the last one always among them; reductions only, so the cost is a few passes
    over activations and weights that are in memory anyway):

    - ``<layer>/activation_mean`` and ``<layer>/activation_std``: of the layer's output in
      the training step's forward pass;
    - ``<layer>/dead_fraction`` (ReLU layers): the fraction of units that output 0 for every
      example of the batch;
    - ``<layer>/saturated_fraction`` (tanh, sigmoid, hard_sigmoid): the fraction of outputs
      within ``1 - saturation`` of the activation's bounds relative to its range (tanh:
      ``|y| > 0.97``; sigmoid: ``y < 0.015`` or ``y > 0.985``), where the gradient
      nearly vanishes;
    - ``<layer>/grad_norm`` (layers with trainable weights): the L2 norm of the gradients of
      all the layer's trainable weights in that step;
    - ``<layer>/update_ratio``: ``||W_after - W_before|| / ||W_before||`` over the layer's
      trainable weights in that step (around 1e-3 is the healthy rule of thumb; much lower:
      the learning rate is too low, much higher: too high).

    Each is the mean over the sampled batches, appended once per epoch to
    ``history.history`` (``in_logs=True``: to the epoch logs too, where CSVLogger and
    TensorBoard see them; off by default to keep the progress bar readable), and kept in
    ``monitor.history`` (same keys). With ``warn``, a ``TrainingMonitorWarning`` in plain
    language (once per layer and problem per fit; all of them also in ``monitor.problems``)
    when a layer is dead (``dead_fraction >= dead_threshold``), saturated
    (``saturated_fraction >= saturated_threshold``), or when the first trainable layer's
    gradient norm is below ``vanishing_ratio`` (vanishing) or above ``exploding_ratio``
    (exploding) times the last one's, or a gradient is not finite.

    How: on a sampled batch the monitor wraps each layer's ``forward`` for that one step
    (the wrapper removes itself after its call) and copies the trainable weights before the
    step; it reads the gradient buffers and the updated weights after it.
    """

    def __init__(self, batches=2, saturation=0.97, dead_threshold=0.5, saturated_threshold=0.5,
                 vanishing_ratio=1e-3, exploding_ratio=1e3, in_logs=False, warn=True):
        super().__init__()
        if isinstance(batches, bool) or not isinstance(batches, (int, np.integer)) or batches < 1:
            raise ValueError(f"TrainingMonitor: batches must be a positive integer, got {batches!r}")
        for name, value in (("saturation", saturation), ("dead_threshold", dead_threshold),
                            ("saturated_threshold", saturated_threshold)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not 0 < value < 1:
                raise ValueError(f"TrainingMonitor: {name} must be a number in (0, 1), got {value!r}")
        if not (isinstance(vanishing_ratio, (int, float)) and isinstance(exploding_ratio, (int, float))
                and 0 < vanishing_ratio < 1 < exploding_ratio):
            raise ValueError(f"TrainingMonitor: expected 0 < vanishing_ratio < 1 < exploding_ratio, "
                             f"got {vanishing_ratio!r} and {exploding_ratio!r}")
        self.batches = int(batches)
        self.saturation = float(saturation)
        self.dead_threshold, self.saturated_threshold = float(dead_threshold), float(saturated_threshold)
        self.vanishing_ratio, self.exploding_ratio = float(vanishing_ratio), float(exploding_ratio)
        self.in_logs, self.warn = bool(in_logs), bool(warn)
        self.history = {}
        self.problems = []
        self._warned = set()
        self._sampled = set()
        self._epoch_stats = {}
        self._before = None
        self._wrapped = []

    # ---- which batches ----
    def _choose_batches(self):
        steps = self.params.get("steps")
        if not steps:  # a generator's first epoch: its length is not known yet
            return set(range(self.batches))
        k = min(self.batches, steps)
        # evenly spread, the last batch always in: the epoch's numbers end where it ends
        return {round((i + 1) * steps / k) - 1 for i in range(k)}

    def on_train_begin(self, logs=None):
        self.history = {}
        self.problems = []
        self._warned = set()
        self._unwrap()

    def on_epoch_begin(self, epoch, logs=None):
        self._sampled = self._choose_batches()
        self._epoch_stats = {}

    def on_train_batch_begin(self, batch, logs=None):
        if batch not in self._sampled:
            return
        self._thread = threading.get_ident()
        self._current = {}
        self._before = {}
        for layer in self.model.layers:
            weights = layer.trainable_weights
            if weights:
                self._before[layer.name] = [np.array(v.value, dtype=np.float64) for v in weights]
            self._wrap(layer)

    def _wrap(self, layer):
        original = layer.forward  # the bound method (or a user's instance attribute)
        monitor = self

        def forward(x, training=False):
            y = original(x, training)
            if training is True and threading.get_ident() == monitor._thread:
                layer.__dict__.pop("forward", None)  # one step only
                monitor._record_output(layer, y)
            return y
        layer.forward = forward
        self._wrapped.append((layer, forward))

    def _unwrap(self):
        for layer, wrapper in self._wrapped:
            if layer.__dict__.get("forward") is wrapper:
                del layer.__dict__["forward"]
        self._wrapped = []

    def _record_output(self, layer, y):
        y = np.asarray(y)
        flat = y.reshape(len(y), -1) if y.ndim else y.reshape(1, 1)
        stats = {"activation_mean": float(flat.mean(dtype=np.float64)),
                 "activation_std": float(flat.std(dtype=np.float64))}
        act = getattr(getattr(layer, "activation", None), "name", None)
        if act in _DYING:
            stats["dead_fraction"] = float(np.mean(~np.any(flat != 0, axis=0)))
        elif act in _SATURATING:
            lo, hi = _SATURATING[act]
            margin = (1 - self.saturation) * (hi - lo) / 2
            stats["saturated_fraction"] = float(np.mean((flat < lo + margin) | (flat > hi - margin)))
        self._current[layer.name] = stats

    def on_train_batch_end(self, batch, logs=None):
        if batch not in self._sampled or self._before is None:
            return
        self._unwrap()
        for layer in self.model.layers:
            stats = self._current.setdefault(layer.name, {})
            before = self._before.get(layer.name)
            weights = layer.trainable_weights
            if before is None or len(before) != len(weights):
                continue
            grad2 = sum(float(np.sum(np.square(v.grad, dtype=np.float64)))
                        for v in weights if v.grad is not None)
            delta2 = sum(float(np.sum(np.square(np.asarray(v.value, np.float64) - b)))
                         for v, b in zip(weights, before))
            norm2 = sum(float(np.sum(np.square(b))) for b in before)
            stats["grad_norm"] = math.sqrt(grad2)
            stats["update_ratio"] = math.sqrt(delta2 / norm2) if norm2 > 0 else math.inf
        for name, stats in self._current.items():
            per_layer = self._epoch_stats.setdefault(name, {})
            for key, value in stats.items():
                per_layer.setdefault(key, []).append(value)
        self._before = None

    def on_epoch_end(self, epoch, logs=None):
        self._unwrap()
        values = {}
        for layer in self.model.layers:  # in layer order, so plots list them top-down
            for stat in MONITOR_STATS:
                seen = self._epoch_stats.get(layer.name, {}).get(stat)
                if seen:
                    values[f"{layer.name}/{stat}"] = float(np.mean(seen))
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        history = getattr(self.model, "history", None)
        target = getattr(history, "history", None)
        if self.in_logs and logs is not None:
            logs.update(values)
        elif isinstance(target, dict):
            for key, value in values.items():
                target.setdefault(key, []).append(value)
        if self.warn:
            self._findings(epoch, values)

    def _findings(self, epoch, values):
        def say(key, text):
            if key in self._warned:
                return
            self._warned.add(key)
            message = f"epoch {epoch + 1}: {text}"
            self.problems.append(message)
            import warnings
            warnings.warn(message, TrainingMonitorWarning, stacklevel=3)
        grads = []
        for layer in self.model.layers:
            name = layer.name
            act = getattr(getattr(layer, "activation", None), "name", None)
            dead = values.get(f"{name}/dead_fraction")
            if dead is not None and dead >= self.dead_threshold:
                say((name, "dead"), f"layer {name!r} is dying: {dead:.0%} of its ReLU units "
                    "output 0 for every example of the sampled batches and no longer learn "
                    "(lower the learning rate, use He initialization, LeakyReLU or ELU)")
            sat = values.get(f"{name}/saturated_fraction")
            if sat is not None and sat >= self.saturated_threshold:
                say((name, "saturated"), f"layer {name!r} is saturated: {sat:.0%} of its {act} "
                    "outputs sit at the flat ends of the curve, where almost no gradient passes "
                    "(Glorot/Xavier initialization, standardized inputs, batch normalization, "
                    "or ReLU-family activations)")
            g = values.get(f"{name}/grad_norm")
            if g is not None:
                grads.append((name, g))
        if not grads:
            return
        bad = [n for n, g in grads if not math.isfinite(g)]
        if bad:
            say(("model", "exploding"), f"the gradients of layer {bad[0]!r} are not finite: "
                "exploding gradients (lower the learning rate, gradient clipping with "
                "clipnorm, batch normalization)")
            return
        if len(grads) < 2:
            return
        (first, g0), (last, g1) = grads[0], grads[-1]
        if g1 > 0 and g0 / g1 < self.vanishing_ratio:
            size = "zero, against" if g0 == 0 else f"{g1 / g0:.2g}x smaller than"
            say(("model", "vanishing"), f"vanishing gradients: the first layer's gradient "
                f"({first!r}, norm {g0:.2g}) is {size} the last layer's ({last!r}, "
                f"{g1:.2g}), so the lower layers barely learn (He/Glorot initialization, "
                "ReLU/ELU instead of sigmoid/tanh, batch normalization)")
        elif g1 > 0 and g0 / g1 > self.exploding_ratio:
            say(("model", "exploding"), f"exploding gradients: the first layer's gradient "
                f"({first!r}, norm {g0:.2g}) is {g0 / g1:.2g}x larger than the last layer's "
                f"({last!r}, {g1:.2g}) (smaller initial weights, gradient clipping, batch "
                "normalization)")

    def on_train_end(self, logs=None):
        self._unwrap()


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def __getattr__(name):
    # keras.callbacks.TensorBoard, BackupAndRestore, ...: name what fastnn has instead
    if name[:1].isupper():
        have = sorted(n for n, v in globals().items()
                      if isinstance(v, type) and issubclass(v, Callback) and not n.startswith("_"))
        raise AttributeError(f"fastnn.callbacks has no {name}; fastnn's callbacks are: "
                             f"{', '.join(have)} (CSVLogger records the epoch logs)")
    raise AttributeError(f"module 'fastnn.callbacks' has no attribute {name!r}")
