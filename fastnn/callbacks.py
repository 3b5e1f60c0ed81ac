"""Callbacks with the Keras 3 API: hooks called by fit/evaluate/predict with ``logs``."""
import csv
import math
import sys
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


def __getattr__(name):
    # keras.callbacks.TensorBoard, BackupAndRestore, ...: name what fastnn has instead
    if name[:1].isupper():
        have = sorted(n for n, v in globals().items()
                      if isinstance(v, type) and issubclass(v, Callback) and not n.startswith("_"))
        raise AttributeError(f"fastnn.callbacks has no {name}; fastnn's callbacks are: "
                             f"{', '.join(have)} (CSVLogger records the epoch logs)")
    raise AttributeError(f"module 'fastnn.callbacks' has no attribute {name!r}")
