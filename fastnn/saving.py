"""Saving and loading models safely: ``model.save(path)``, ``fastnn.load_model(path)``,
``model.save_weights(path)``, ``model.load_weights(path)``.

File format (version 1). A saved model is a zip archive (entries stored, not compressed) that
``numpy.load`` also opens as an ``.npz``:

- ``fastnn.json``: the metadata. ``format`` ("fastnn"), ``kind`` ("model", "weights" or "feature_space"),
  ``format_version``, the architecture (``Sequential.get_config()``), the compile settings
  (optimizer, loss and metric configs), the optimizer's ``iterations`` and a manifest of
  every array (entry name, shape, dtype, and which variable / optimizer slot it fills), and
  the state of the random generators (fastnn's global one and any ``numpy.random.Generator``
  a layer keeps as an attribute), the scalar attributes a layer class lists in its
  ``_saved_attributes`` (the dropout family's seed and call counter), and
  ``user_metadata``: the model's ``_user_metadata`` dict of JSON values if it has one (what
  ``fastnn train`` keeps beside the model: the label's class names, the columns it read),
  set again on the loaded model. It is data: nothing in it is ever called or imported.
- ``w00000.npy`` ...: the model's variables in ``model.weights`` order (trainable and not,
  e.g. BatchNormalization's moving statistics); ``o00000.npy`` ...: optimizer state arrays.

Loading never unpickles and never executes anything taken from the file: the JSON names
classes that must already be registered (``fastnn.layers.register`` for custom layers, or
``custom_objects=``), ``.npy`` headers are parsed by ``numpy.lib.format`` (a literal parser)
and only plain numeric dtypes are accepted. Before any weight is allocated, the arrays the
manifest declares must fit inside the file, and while the architecture is rebuilt every
``add_weight`` call is checked against the manifest (so a hostile config cannot make fastnn
allocate absurd memory); every array's dtype and shape is checked against the rebuilt model
before anything is assigned. Problems raise :class:`InvalidModelFileError` (a ValueError)
naming the file and what is wrong.

Only what fastnn writes is read: a regular file (a FIFO or a device is refused before it can
block or stream forever), entries stored uncompressed (a compressed entry is refused before it
is inflated, so a small file cannot expand into gigabytes), metadata of at most
``MAX_METADATA_BYTES`` (1 MB; a 100-layer model with regularizers and constraints on every
Dense layer needs about 85 KB), at most ``MAX_LAYERS`` layers, and no entry that is neither the
metadata nor an array of the manifest.

Saving is atomic: the archive is written to a temporary file in the destination directory,
flushed and fsync'ed, renamed over the destination with ``os.replace`` and the directory is
fsync'ed, so a crash or kill during ``save`` leaves the previous file intact. The temporary
file is named ``.<name>.fastnn-<pid>-<host>.<random>.tmp``; one left behind by a killed save is
removed by the next save into that directory once its process is gone (or, if it was made on
another host, once it is an hour old). A failed write (e.g. a full disk) raises an OSError
naming the destination file.

Pickling: ``pickle``, ``cloudpickle``, joblib and ``copy.deepcopy`` of a Sequential go
through this format, as Keras 3's ``Model.__reduce__`` does: the model is saved to bytes (no
scratch buffers: a pickle is the size of the saved file) and rebuilt from them by the same
checked loader. Unpickling restores the layers' own random generators but never fastnn's
global one (``restore_rng=False``): copying a model must not rewind the process's stream. A
pickle refers to the custom classes it uses (layers, losses, ...) by module and name, so the
unpickling process needs no registration, only the module that defines them.

Resuming: ``load_model`` restores weights, optimizer state, ``optimizer.iterations`` (hence a
schedule's position) and, by default (``restore_rng=True``), the state fastnn's global random
generator had when the model was saved. So ``fit(5 epochs); save; load; fit(5 epochs)`` gives
the same weights bit for bit as ``fit(10 epochs)`` with the same seed and thread count. Note
that restoring the RNG is a process-wide effect: draws made between save and load are
"rewound". Pass ``restore_rng=False`` to leave the global generator alone.
"""
import collections
import io
import json
import math
import os
import re
import socket
import stat
import tempfile
import time
import warnings
import zipfile
import zlib

import numpy as np

from .training.state import layer_rngs

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "InvalidModelFileError",
           "register_keras_serializable"]

FORMAT_NAME = "fastnn"
FORMAT_VERSION = 1
METADATA_ENTRY = "fastnn.json"
# The JSON (architecture + manifest + RNG state): a 100-layer model whose Dense layers all
# carry initializer, regularizer and constraint configs takes about 85 KB, so 1 MB holds
# MAX_LAYERS such layers and still bounds what parsing a hostile file costs (~25 MB at worst).
MAX_METADATA_BYTES = 1 << 20
MAX_NPY_HEADER_BYTES = 10000        # numpy's own default limit for .npy headers
MAX_ARRAY_NDIM = 32                 # numpy's limit
# Far beyond any real MLP (100 blocks of Dense, BatchNormalization, activation and Dropout
# are 400 layers). Bounds the objects a file makes fastnn build, and the time: Sequential.add
# rebuilds the whole stack at each layer, so rebuilding n layers is O(n^2) (1000: ~0.8 s).
MAX_LAYERS = 1000
# A temporary file whose saving process is gone is stale at once; one from another host (a
# shared file system, where its pid means nothing here) once untouched for this long.
STALE_TEMP_SECONDS = 3600
# dtypes an array in a saved model may have (weights are float32/float64; optimizer state
# may hold integer or boolean slots). Everything else, object arrays in particular, is refused.
_ALLOWED_DTYPES = {np.dtype(t).str: np.dtype(t) for t in
                   ("float16", "float32", "float64", "int32", "int64", "uint8", "bool")}
_RNG_CLASSES = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class InvalidModelFileError(ValueError):
    """A file given to ``load_model``/``load_weights`` is not a valid fastnn file: corrupted,
    truncated, from an unsupported format version, inconsistent with its architecture, or
    hostile. The message names the file and what is wrong."""


# ------------------------------------------------------------------------------------------
# custom objects
# ------------------------------------------------------------------------------------------
def register_keras_serializable(package="Custom", name=None):
    """Decorator (Keras' ``keras.saving.register_keras_serializable``): make a custom Layer,
    Loss, Metric, Optimizer or learning-rate schedule class loadable by name. The class must
    implement ``get_config()`` returning its constructor arguments (JSON values)."""
    def decorator(cls):
        from . import layers, losses, metrics, optimizers
        from .optimizers import schedules
        key = name or cls.__name__
        if issubclass(cls, layers.Layer):
            layers.register(cls, key)
        elif issubclass(cls, losses.Loss):
            losses._BY_NAME[key] = cls
        elif issubclass(cls, metrics.Metric):
            _CUSTOM_METRICS[key] = cls
        elif issubclass(cls, optimizers.Optimizer):
            optimizers._BY_NAME[key.lower()] = cls
        elif issubclass(cls, schedules.LearningRateSchedule):
            schedules._REGISTRY[key] = cls
        else:
            raise TypeError(f"register_keras_serializable: {cls!r} is not a fastnn Layer, Loss, "
                            "Metric, Optimizer or LearningRateSchedule subclass")
        return cls
    return decorator


_CUSTOM_METRICS = {}


# ------------------------------------------------------------------------------------------
# saving
# ------------------------------------------------------------------------------------------
def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray) and obj.size <= 1024:
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"a value of type {type(obj).__name__} ({obj!r:.80}) in the model's config "
                    "cannot be saved as JSON; give the layer/optimizer a get_config() that "
                    "returns plain numbers, strings, lists and dicts")


def _check_saveable(model):
    from .models import Model
    if not isinstance(model, Model):
        raise TypeError(f"save: expected a fastnn model (Sequential or Model(inputs, outputs)), "
                        f"got {type(model).__name__}")
    # a Sequential listing one layer twice has no config for it (a graph lists a layer called
    # at several places once, with one inbound entry per call)
    ids = [id(layer) for layer in model.layers]
    if len(set(ids)) != len(ids):
        raise ValueError(f"save: model {model.name!r} uses the same layer object more than once; "
                         "fastnn cannot save such a model (save the weights with get_weights())")
    if not model.built and model.input_shape is not None and model.layers:
        model.build()


def _metadata_and_arrays(model, kind, include_optimizer=True):
    """The JSON-able metadata and the list of (entry name, array) to write: copies taken
    between two training steps (another thread may be training the model)."""
    lock = getattr(model, "_state_lock", None)
    if lock is None:
        return _metadata_and_arrays_of(model, kind, include_optimizer)
    with lock.reading():
        meta, arrays = _metadata_and_arrays_of(model, kind, include_optimizer)
        return meta, [(entry, np.array(a, copy=True)) for entry, a in arrays]


def _metadata_and_arrays_of(model, kind, include_optimizer=True):
    from . import __version__, backend, losses
    from .optimizers import Optimizer
    _check_saveable(model)
    arrays, weights = [], []
    variables = model.weights
    owner = {}
    for i, layer in enumerate(model.layers):
        for v in layer.weights:
            owner.setdefault(id(v), i)
    for i, v in enumerate(variables):
        entry = f"w{i:05d}.npy"
        arrays.append((entry, v.value))
        weights.append({"entry": entry, "path": v.path, "shape": list(v.value.shape),
                        "dtype": v.value.dtype.name, "layer": owner.get(id(v))})
    config = model.get_config()
    if config.get("feature_space") is not None:
        # the feature space's statistics go to .npy entries, its vocabularies stay JSON
        fs = dict(config["feature_space"])
        state = model.feature_space.get_state()
        fs["state"] = {}
        for i, key in enumerate(sorted(state)):
            entry = f"f{i:05d}.npy"
            arrays.append((entry, state[key]))
            fs["state"][key] = {"entry": entry, "shape": list(state[key].shape),
                                "dtype": state[key].dtype.name}
        config = dict(config, feature_space=fs)
    if len(config["layers"]) > MAX_LAYERS:  # the loader would refuse the file
        raise ValueError(f"save: model {model.name!r} has {len(config['layers'])} layers "
                         f"(counting its input), more than the {MAX_LAYERS} a fastnn file holds")
    meta = {"format": FORMAT_NAME, "kind": kind, "format_version": FORMAT_VERSION,
            "fastnn_version": __version__, "model": config, "built": bool(model.built),
            "input_shape": list(model.input_shape) if model.input_shape is not None else None,
            "weights": weights}
    if kind != "model":
        return meta, arrays
    meta["compile"] = None
    meta["optimizer_state"] = None
    if getattr(model, "compiled", False):
        opt = model.optimizer
        comp = model.get_compile_config()
        if "loss_weights" in comp:  # several outputs: a loss (or None) and metrics per output
            meta["compile"] = {
                "optimizer": _serialize_optimizer(opt),
                "loss": [None if loss is None else losses.serialize(loss) for loss in comp["loss"]],
                "loss_weights": list(comp["loss_weights"]),
                "metrics": [[_serialize_metric(m) for m in ms] for ms in comp["metrics"]]}
        else:
            meta["compile"] = {"optimizer": _serialize_optimizer(opt),
                               "loss": losses.serialize(model.loss),
                               "metrics": [_serialize_metric(m) for m in comp["metrics"]]}
        if include_optimizer and isinstance(opt, Optimizer):
            slots = []
            for i, v in enumerate(variables):
                state = opt.state_of(v)
                if state is None:
                    continue
                slot = {"weight": i, "arrays": {}, "scalars": {}}
                for key, value in state.items():
                    if isinstance(value, np.ndarray):
                        entry = f"o{len(arrays):05d}.npy"
                        arrays.append((entry, value))
                        slot["arrays"][key] = {"entry": entry, "shape": list(value.shape),
                                               "dtype": value.dtype.name}
                    elif value is None or isinstance(value, (bool, int, float, np.generic)):
                        slot["scalars"][key] = (value.item() if isinstance(value, np.generic)
                                                else value)
                    else:
                        raise TypeError(f"save: optimizer state {key!r} of {v.path!r} is a "
                                        f"{type(value).__name__}; only arrays and numbers can be saved")
                slots.append(slot)
            meta["optimizer_state"] = {"iterations": int(opt.iterations), "variables": slots,
                                       "apply_calls": int(opt.apply_calls)}
    meta["rng"] = {"global": backend.rng().bit_generator.state,
                   "layers": [{"layer": i, "attr": attr, "state": g.bit_generator.state}
                              for i, attr, g in layer_rngs(model)]}
    meta["layer_state"] = _layer_attributes(model)
    user = getattr(model, "_user_metadata", None)
    if user is not None:
        if not isinstance(user, dict):
            raise TypeError(f"save: model._user_metadata must be a dict of JSON values, got "
                            f"{type(user).__name__}")
        meta["user_metadata"] = user
    return meta, arrays


def _layer_attributes(model):
    """Scalar state a layer class declares in ``_saved_attributes`` (e.g. the dropout
    family's seed and call counter), so resumed training continues the same random stream."""
    out = []
    for i, layer in enumerate(model.layers):
        for attr in getattr(type(layer), "_saved_attributes", ()):
            value = getattr(layer, attr, None)
            if isinstance(value, np.generic):
                value = value.item()
            if not (value is None or isinstance(value, (bool, int, float))):
                raise TypeError(f"save: layer {layer.name!r} declares {attr!r} in "
                                f"_saved_attributes but its value is a {type(value).__name__}; "
                                "only numbers, booleans and None can be saved")
            out.append({"layer": i, "attr": attr, "value": value})
    return out


def _serialize_optimizer(opt):
    from .optimizers import serialize
    lr = getattr(opt, "_learning_rate", None)
    from .optimizers.schedules import LearningRateSchedule
    if callable(lr) and not isinstance(lr, LearningRateSchedule):
        warnings.warn(f"save: the optimizer's learning_rate is a plain callable; it is saved as "
                      f"its current value {float(opt.learning_rate)} (use a "
                      "fastnn.optimizers.schedules class to save a schedule)", stacklevel=4)
    return serialize(opt)


def _serialize_metric(m):
    from . import metrics
    if isinstance(m, str):
        return m
    if isinstance(m, type) and issubclass(m, metrics.Metric):
        return {"class_name": m.__name__, "config": {}}
    if isinstance(m, metrics.Metric):
        return {"class_name": type(m).__name__, "config": m.get_config()}
    if callable(m) and hasattr(m, "_fastnn_metric"):  # keras.metrics.sparse_categorical_accuracy
        return m.__name__
    raise TypeError(f"save: cannot save metric {m!r}; use a name or a fastnn.metrics class")


def _encode_metadata(meta):
    """The metadata as compact JSON bytes, refused here if the loader would refuse it."""
    raw = json.dumps(meta, default=_json_default, separators=(",", ":")).encode("utf-8")
    if len(raw) > MAX_METADATA_BYTES:
        raise ValueError(f"save: the model's metadata (architecture, manifest) takes {len(raw)} "
                         f"bytes, more than the {MAX_METADATA_BYTES} a fastnn file may hold")
    return raw


def _write_archive(f, raw_meta, arrays):
    """The zip archive into the binary file ``f``: the encoded metadata, then the arrays."""
    stamp = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same model gives the same bytes
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(zipfile.ZipInfo(METADATA_ENTRY, stamp), raw_meta)
        for entry, arr in arrays:
            arr = np.ascontiguousarray(arr)
            with zf.open(zipfile.ZipInfo(entry, stamp), "w",
                         force_zip64=arr.nbytes > (1 << 30)) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)


def _host_tag():
    """8 hex digits for this host: a temporary file's pid is only checked on the host that
    made it (on a shared file system another host's pid means nothing here)."""
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


# .<destination name>.fastnn-<pid>-<host>.<mkstemp's random part>.tmp
_TEMP_NAME = re.compile(r"\.(?P<name>.+)\.fastnn-(?P<pid>[0-9]{1,10})-(?P<host>[0-9a-f]{8})"
                        r"\.[A-Za-z0-9_]+\.tmp\Z", re.DOTALL)


def _pid_alive(pid):
    if os.name != "posix":
        return True  # no safe probe (os.kill on Windows terminates): rely on the age rule
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or a pid we cannot probe): not ours to judge
    return True


def _remove_stale_temps(directory):
    """Remove the temporary files killed saves left in ``directory``: only regular files named
    as _atomic_write names them, whose process is gone (made on this host) or that have not
    been written to for STALE_TEMP_SECONDS. A save in progress keeps its file fresh and its
    process alive, so it is never touched; nothing else in the directory is either."""
    host, now = _host_tag(), time.time()
    try:
        entries = os.scandir(directory)
    except OSError:
        return
    with entries:
        for entry in entries:
            m = _TEMP_NAME.match(entry.name)
            if m is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(st.st_mode):
                    continue
                gone = m["host"] == host and not _pid_alive(int(m["pid"]))
                if gone or now - st.st_mtime > STALE_TEMP_SECONDS:
                    os.unlink(entry.path)
            except OSError:  # removed meanwhile by another saver, or not ours to remove
                continue


def _error_naming(err, path):
    """The OSError ``err`` (same errno, hence same subclass) naming the file being saved: a
    full disk fails in write(), whose error names no file at all."""
    what = f"while saving {path!r} (the previous file there, if any, is unchanged)"
    if err.errno is None:
        return OSError(f"{err} {what}")
    return OSError(err.errno, f"{err.strerror or err} {what}")


def _atomic_write(filepath, write, overwrite=True):
    """Write via ``write(fileobj)`` to a temporary file next to ``filepath``, fsync it, rename
    it over ``filepath`` and fsync the directory: readers see the old file or the new one."""
    path = os.path.abspath(os.fspath(filepath))
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {os.fspath(filepath)!r} is a directory; give a file name")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save: {os.fspath(filepath)!r} exists and overwrite=False")
    directory = os.path.dirname(path)
    _remove_stale_temps(directory)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    prefix = f".{os.path.basename(path)}.fastnn-{os.getpid()}-{_host_tag()}."
    try:
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    except OSError as err:
        raise _error_naming(err, path) from err
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _error_naming(err, path) from err
        raise
    try:  # make the rename itself durable
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """save_model(model, filepath, overwrite=True, include_optimizer=True): architecture,
    weights, compile settings, optimizer state and RNG state in one file, written atomically
    (``model.save(filepath)`` calls this). Any file name works; Keras' ``.keras`` is fine."""
    meta, arrays = _metadata_and_arrays(model, "model", include_optimizer)
    raw = _encode_metadata(meta)  # refused before any file is created
    _atomic_write(filepath, lambda f: _write_archive(f, raw, arrays), overwrite)


def save_weights(model, filepath, overwrite=True):
    """save_weights(model, filepath, overwrite=True): only the variables (and the
    architecture, for checking), written atomically."""
    meta, arrays = _metadata_and_arrays(model, "weights")
    raw = _encode_metadata(meta)
    _atomic_write(filepath, lambda f: _write_archive(f, raw, arrays), overwrite)


# ------------------------------------------------------------------------------------------
# pickling and copying: Sequential.__reduce__
# ------------------------------------------------------------------------------------------
def reduce_model(model):
    """``(rebuild, args)`` for pickle, cloudpickle and copy.deepcopy: the model saved to bytes
    in this file format (no scratch buffers), plus the custom classes it uses."""
    try:
        meta, arrays = _metadata_and_arrays(model, "model")
        raw = _encode_metadata(meta)
    except (TypeError, ValueError) as err:
        raise TypeError(f"cannot pickle or copy model {getattr(model, 'name', '?')!r}: fastnn "
                        f"pickles a model in its saving format, which refuses it: {err}") from err
    buf = io.BytesIO()
    _write_archive(buf, raw, arrays)
    return _unpickle_model, (buf.getvalue(), _custom_classes(model))


def _custom_classes(model):
    """{class name: class} for the non-fastnn classes the model's file names. The pickle
    carries them by reference (module and name), so a process that unpickles the model (a
    joblib worker) imports their module and needs no registration."""
    from . import layers, losses, metrics, optimizers
    from .optimizers import schedules
    bases = (layers.Layer, losses.Loss, metrics.Metric, optimizers.Optimizer,
             schedules.LearningRateSchedule)
    objects = list(model.layers)
    if getattr(model, "compiled", False):
        comp = model.get_compile_config()
        objects += [model.optimizer, getattr(model.optimizer, "_learning_rate", None)]
        if "loss_weights" in comp:  # several outputs
            objects += [loss for loss in comp["loss"] if loss is not None]
            objects += [m for ms in comp["metrics"] for m in ms]
        else:
            objects += [model.loss] + comp["metrics"]
    out = {}
    for obj in objects:
        cls = obj if isinstance(obj, type) else type(obj)
        if issubclass(cls, bases) and not cls.__module__.startswith("fastnn."):
            out[cls.__name__] = cls
    return out


def _unpickle_model(data, custom_objects=None):
    """Rebuild a model from Sequential.__reduce__'s bytes, through the same checks as
    load_model. Existing pickles refer to this function by name: keep it.

    The global random generator is left alone (restore_rng=False): unpickling or copying a
    model must not rewind the process's stream. The layers' own generators are restored."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError(f"unpickling a fastnn model: expected the bytes of a saved model, got "
                        f"{type(data).__name__}")
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"unpickling a fastnn model: custom_objects must be a dict, got "
                        f"{type(custom_objects).__name__}")
    return _load(lambda: _Archive(None, "unpickling a fastnn model", data=bytes(data)),
                 custom_objects, compile=True, restore_rng=False)


# ------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------
class _Archive:
    """A validated view of a saved file: its metadata and size-checked array reads."""

    def __init__(self, filepath, expect, data=None, kinds=("model", "weights")):
        """Read the file ``filepath``, or the bytes ``data`` (a pickled model; ``filepath`` is
        then None) through exactly the same checks. ``expect`` names the caller in errors;
        ``kinds`` are the metadata kinds accepted ("feature_space": FeatureSpace.save)."""
        self.name = None if data is not None else os.fspath(filepath)
        self.expect = expect
        self.kinds = tuple(kinds)
        self._file = io.BytesIO(data) if data is not None else self._open_regular_file()
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    def error(self, what):
        where = self.expect if self.name is None else f"{self.expect}({self.name!r})"
        return InvalidModelFileError(f"{where}: {what}")

    def _open_regular_file(self):
        """The file opened for reading, if it is a regular file. A FIFO would block open() and
        read() until a writer comes, a device (/dev/zero, a tty) stream forever: checked with
        stat before opening, and with fstat after an O_NONBLOCK open (which a FIFO swapped in
        meanwhile cannot block), so what is read is what was checked."""
        st = os.stat(self.name)  # FileNotFoundError, PermissionError as they are
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"{self.name!r} is a directory, not a fastnn model file")
        self._check_regular(st)
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) \
            | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.name, flags)
        try:
            self._check_regular(os.fstat(fd))
            if hasattr(os, "O_NONBLOCK"):
                os.set_blocking(fd, True)  # no effect on a regular file; plain reads from here
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _check_regular(self, st):
        if stat.S_ISREG(st.st_mode):
            return
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else
                "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file")
        raise self.error(f"this is {kind}; fastnn reads models only from regular files")

    def _open(self):
        f = self._file
        head = f.read(8)
        self.size = f.seek(0, os.SEEK_END)
        f.seek(0)
        if head.startswith(b"\x89HDF"):
            raise self.error("this is an HDF5 file (a Keras 2 .h5 file?); fastnn reads only "
                             "files written by fastnn's model.save / save_weights")
        if self.size == 0:
            raise self.error("the file is empty")
        try:
            self.zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile as e:
            raise self.error(f"not a fastnn file, or truncated/corrupted (no readable zip "
                             f"directory: {e})") from None
        except (OSError, ValueError, EOFError, OverflowError) as e:
            raise self.error(f"corrupted zip structure ({type(e).__name__}: {e})") from None
        # The same name twice: readers (numpy.load, zipfile) may each take a different one.
        twice = [n for n, k in collections.Counter(self.zf.namelist()).items() if k > 1]
        if twice:
            raise self.error(f"entry {twice[0]!r:.80} appears {self.zf.namelist().count(twice[0])} "
                             "times in the zip directory (not written by fastnn)")
        self.meta = self._read_metadata()

    def close(self):
        try:
            self.zf.close()
        finally:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _info(self, entry):
        try:
            return self.zf.getinfo(entry)
        except KeyError:
            raise self.error(f"entry {entry!r} is missing (truncated or not a fastnn file)") from None

    def _check_stored(self, info, what):
        """fastnn never compresses: refuse a compressed entry before inflating a byte of it
        (inflating is what a zip bomb costs: a 64 KB entry can expand to 63 MB)."""
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.error(f"{what}: entry {info.filename!r:.80} is compressed (zip method "
                             f"{info.compress_type}); fastnn stores every entry uncompressed, "
                             "so this file was not written by fastnn")

    def _read_metadata(self):
        info = self._info(METADATA_ENTRY)
        self._check_stored(info, "the metadata")
        if max(info.file_size, info.compress_size) > MAX_METADATA_BYTES:
            raise self.error(f"the metadata entry holds {max(info.file_size, info.compress_size)} "
                             f"bytes, more than the {MAX_METADATA_BYTES} fastnn allows (a 100-layer "
                             "model needs under 100 KB): corrupted or hostile")
        try:
            with self.zf.open(info) as e:
                raw = e.read(MAX_METADATA_BYTES + 1)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError,
                ValueError, zipfile.LargeZipFile) as err:
            raise self.error(f"cannot read the metadata ({type(err).__name__}: {err})") from None
        if len(raw) > MAX_METADATA_BYTES:
            raise self.error("metadata entry is larger than it declares")
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise self.error(f"the metadata is not valid JSON ({type(err).__name__}: {err})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
            raise self.error("not a fastnn file (metadata has no format='fastnn')")
        version = meta.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise self.error(f"format_version must be an integer, got {version!r}")
        if version > FORMAT_VERSION or version < 1:
            raise self.error(f"format version {version} is not supported (this fastnn reads "
                             f"version {FORMAT_VERSION}; the file was written by fastnn "
                             f"{meta.get('fastnn_version', '?')!s:.40})")
        if meta.get("kind") not in self.kinds:
            if meta.get("kind") == "feature_space":
                raise self.error("this file holds a FeatureSpace (FeatureSpace.save); load it "
                                 "with fastnn.utils.load_feature_space or fastnn.saving.load_model")
            raise self.error(f"unknown kind {meta.get('kind')!r:.60} (expected "
                             f"{' or '.join(map(repr, self.kinds))})")
        return meta

    # ---- manifest --------------------------------------------------------------------------
    def array_spec(self, spec, what):
        """Validate one manifest entry {"entry", "shape", "dtype"} -> (entry, shape, dtype)."""
        if not isinstance(spec, dict):
            raise self.error(f"{what}: manifest entry is not an object")
        entry, shape, dtype = spec.get("entry"), spec.get("shape"), spec.get("dtype")
        if not isinstance(entry, str) or len(entry) > 64:
            raise self.error(f"{what}: bad entry name {entry!r:.80}")
        if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_NDIM
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise self.error(f"{what}: bad shape {shape!r:.80} (expected a list of at most "
                             f"{MAX_ARRAY_NDIM} non-negative integers)")
        try:
            dt = np.dtype(dtype) if isinstance(dtype, str) and len(dtype) < 16 else None
        except Exception:  # numpy raises TypeError, ValueError or SyntaxError for junk
            dt = None
        if dt is None or dt.str not in _ALLOWED_DTYPES:
            raise self.error(f"{what}: dtype {dtype!r:.40} is not allowed (allowed: "
                             f"{sorted(d.name for d in _ALLOWED_DTYPES.values())})")
        return entry, tuple(shape), dt

    def check_budget(self, specs):
        """The arrays the manifest declares must be stored (uncompressed) inside this file:
        their total size is then at most the file's size, whatever the file claims."""
        total = 0
        seen = set()
        for entry, shape, dtype, what in specs:
            if entry in seen:
                raise self.error(f"{what}: entry {entry!r} is used twice in the manifest")
            seen.add(entry)
            info = self._info(entry)
            self._check_stored(info, what)
            nbytes = math.prod(shape) * dtype.itemsize
            if info.file_size < nbytes:
                raise self.error(f"{what}: entry {entry!r} holds {info.file_size} bytes, too few "
                                 f"for an array of shape {shape} and dtype {dtype.name} "
                                 f"({nbytes} bytes)")
            total += info.file_size
        if total > self.size:
            raise self.error(f"the manifest declares {total} bytes of arrays but the file has only "
                             f"{self.size} bytes (truncated or hostile)")
        # Anything else in the archive is neither read nor checked: refuse it rather than
        # carry data nobody can see (numpy.load would show it).
        extra = sorted(set(self.zf.namelist()) - seen - {METADATA_ENTRY})
        if extra:
            names = ", ".join(repr(n[:80]) for n in extra[:5])
            more = f" and {len(extra) - 5} more" if len(extra) > 5 else ""
            raise self.error(f"entries not in the manifest: {names}{more}; a fastnn file holds "
                             "only its metadata and the arrays it lists")

    def read_array(self, entry, shape, dtype, what):
        """Read one .npy entry whose header must say exactly ``shape`` and ``dtype``; never
        unpickles, never allocates more than the expected array."""
        info = self._info(entry)
        self._check_stored(info, what)
        fmt = np.lib.format
        try:
            with self.zf.open(info) as f:
                try:
                    version = fmt.read_magic(f)
                    if version == (1, 0):
                        fshape, fortran, fdtype = fmt.read_array_header_1_0(
                            f, max_header_size=MAX_NPY_HEADER_BYTES)
                    elif version == (2, 0):
                        fshape, fortran, fdtype = fmt.read_array_header_2_0(
                            f, max_header_size=MAX_NPY_HEADER_BYTES)
                    else:
                        raise self.error(f"{what}: entry {entry!r} uses .npy format version "
                                         f"{version}, which fastnn does not read")
                except InvalidModelFileError:
                    raise
                except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, EOFError) as err:
                    raise self.error(f"{what}: entry {entry!r} has a corrupted .npy header "
                                     f"({type(err).__name__}: {str(err)[:200]})") from None
                if fdtype.hasobject:
                    raise self.error(f"{what}: entry {entry!r} holds Python objects (a pickle); "
                                     "fastnn never unpickles and refuses it")
                if fdtype.str != dtype.str:
                    raise self.error(f"{what}: entry {entry!r} has dtype {fdtype.str} but the "
                                     f"model needs {dtype.name} ({dtype.str})")
                if tuple(fshape) != tuple(shape):
                    raise self.error(f"{what}: entry {entry!r} has shape {tuple(fshape)} but the "
                                     f"model needs {tuple(shape)}")
                nbytes = math.prod(shape) * dtype.itemsize
                data = f.read(nbytes)
                if len(data) != nbytes:
                    raise self.error(f"{what}: entry {entry!r} is truncated ({len(data)} of "
                                     f"{nbytes} bytes)")
                if f.read(1):
                    raise self.error(f"{what}: entry {entry!r} has data after its array")
        except InvalidModelFileError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError) as err:
            raise self.error(f"{what}: cannot read entry {entry!r} (corrupted: "
                             f"{type(err).__name__}: {str(err)[:200]})") from None
        arr = np.frombuffer(data, dtype=dtype)
        return arr.reshape(shape, order="F" if fortran else "C")


class _WeightGuard:
    """Installed in Layer.add_weight while a model is rebuilt from a file: the k-th weight the
    architecture creates must have the k-th manifest shape and dtype, checked before it is
    allocated."""

    def __init__(self, archive, expected, uninitialized=False):
        self.archive, self.expected, self.k = archive, expected, 0
        self.uninitialized = uninitialized  # True: add_weight may skip the initializer

    def check(self, layer, shape, dtype):
        k = self.k
        self.k += 1
        if k >= len(self.expected):
            raise self.archive.error(
                f"the architecture creates more weights than the file holds ({len(self.expected)}); "
                f"layer {layer.name!r} asks for one of shape {shape}")
        _, eshape, edtype, path = self.expected[k]
        if tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in shape) != eshape \
                or np.dtype(dtype) != edtype:
            raise self.archive.error(
                f"weight {k} ({path!r:.80}): the architecture creates shape {shape} "
                f"{np.dtype(dtype).name} in layer {layer.name!r}, but the file holds "
                f"{eshape} {edtype.name}")
        return self.uninitialized

    def __enter__(self):
        from .layers import base
        self._prev = getattr(base._WEIGHT_GUARD, "check", None)
        base._WEIGHT_GUARD.check = self.check
        return self

    def __exit__(self, *exc):
        from .layers import base
        base._WEIGHT_GUARD.check = self._prev


def _weight_specs(archive):
    weights = archive.meta.get("weights")
    if not isinstance(weights, list):
        raise archive.error("the manifest has no 'weights' list")
    out = []
    for i, spec in enumerate(weights):
        path = spec.get("path", f"weight {i}") if isinstance(spec, dict) else f"weight {i}"
        entry, shape, dtype = archive.array_spec(spec, f"weight {i} ({str(path)[:80]!r})")
        out.append((entry, shape, dtype, str(path)[:200]))
    return out


def _optimizer_specs(archive, n_weights):
    ostate = archive.meta.get("optimizer_state")
    if ostate is None:
        return None, []
    if not isinstance(ostate, dict) or not isinstance(ostate.get("variables"), list):
        raise archive.error("optimizer_state is malformed")
    it = ostate.get("iterations")
    if not isinstance(it, int) or isinstance(it, bool) or it < 0:
        raise archive.error(f"optimizer iterations must be a non-negative integer, got {it!r:.40}")
    specs = []
    for slot in ostate["variables"]:
        if not isinstance(slot, dict):
            raise archive.error("optimizer_state: a slot is not an object")
        w = slot.get("weight")
        if not isinstance(w, int) or isinstance(w, bool) or not 0 <= w < n_weights:
            raise archive.error(f"optimizer_state: slot refers to weight {w!r:.40}, but the "
                                f"model has {n_weights}")
        arrays, scalars = slot.get("arrays", {}), slot.get("scalars", {})
        if not isinstance(arrays, dict) or not isinstance(scalars, dict):
            raise archive.error("optimizer_state: slot arrays/scalars must be objects")
        for key, spec in arrays.items():
            entry, shape, dtype = archive.array_spec(spec, f"optimizer state {key!r:.40} of weight {w}")
            specs.append((entry, shape, dtype, f"optimizer state {key!r:.40} of weight {w}"))
    return ostate, specs


def _lookup(name, custom_objects, registry_get, base):
    if custom_objects and name in custom_objects:
        cls = custom_objects[name]
        if isinstance(cls, type) and issubclass(cls, base):
            return cls
    return registry_get(name)


def _rebuild_model(archive, custom_objects, expected):
    config = archive.meta.get("model")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise archive.error("the metadata has no model architecture ('model.layers')")
    specs = config["layers"]
    if len(specs) > MAX_LAYERS:
        raise archive.error(f"the architecture lists {len(specs)} layers, more than the "
                            f"{MAX_LAYERS} allowed")
    try:
        if config.get("feature_space") is not None:
            # built before the guard: its statistics are not the model's weights
            config = dict(config, feature_space=_read_feature_space(archive, config))
        # Sequential.add builds as soon as the input is known, so the guard covers it all.
        # Every weight is then overwritten from the file (or the model is discarded).
        with _WeightGuard(archive, expected, uninitialized=True):
            return _rebuild_layers(archive, config, specs, custom_objects)
    except InvalidModelFileError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, NotImplementedError,
            OverflowError, RecursionError, MemoryError) as err:
        raise archive.error(f"cannot rebuild the architecture ({type(err).__name__}: "
                            f"{str(err)[:300]})") from None


def _rebuild_layers(archive, config, specs, custom_objects):
    from . import layers as layers_module
    from .layers.core import InputLayer
    from .models import Sequential
    name = config.get("name")
    if "input_layers" in config:  # a graph (fastnn.functional, registered with Model)
        from .models import Model
        Functional = Model._kinds["functional"]

        def layer_class(class_name):
            return _lookup(class_name, custom_objects, layers_module.get, layers_module.Layer)
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
                    or not isinstance(spec.get("config", {}), dict) \
                    or not isinstance(spec.get("inbound", []), list) \
                    or not isinstance(spec.get("inbound_nodes", []), list):
                raise archive.error(f"layer {i} of the architecture is malformed")
        return Functional.from_config(config, layer_class=layer_class)
    # trainable given before the layers exist: each layer keeps its own saved flag
    model = Sequential(name=name if isinstance(name, str) else None,
                       trainable=bool(config.get("trainable", True)))
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("class_name"), str) \
                or not isinstance(spec.get("config", {}), dict):
            raise archive.error(f"layer {i} of the architecture is malformed")
        cls = _lookup(spec["class_name"], custom_objects, layers_module.get,
                      layers_module.Layer)
        cfg = dict(spec.get("config", {}))
        if cls is InputLayer:
            layer = InputLayer(shape=cfg.get("shape"), name=cfg.get("name"))
        else:
            layer = cls.from_config(cfg)
        model.add(layer)
    if model.input_shape is not None and model.layers and not model.built:
        model.build()
    return model


def _check_and_read_weights(archive, model, expected, cast=False):
    """Every variable of ``model`` against the manifest, then read all arrays (nothing is
    assigned until every array has been read and checked)."""
    variables = model.weights
    if len(variables) != len(expected):
        raise archive.error(f"the model has {len(variables)} weight arrays but the file holds "
                            f"{len(expected)}")
    values = []
    for k, (v, (entry, shape, dtype, path)) in enumerate(zip(variables, expected)):
        if tuple(v.value.shape) != shape:
            raise archive.error(f"weight {k} ({v.path!r}) has shape {v.value.shape} in the model "
                                f"but {shape} in the file ({path!r})")
        if dtype != v.value.dtype and not (cast and dtype.kind == v.value.dtype.kind == "f"):
            raise archive.error(f"weight {k} ({v.path!r}) has dtype {v.value.dtype} in the model "
                                f"but {dtype.name} in the file")
        values.append(archive.read_array(entry, shape, dtype, f"weight {k} ({v.path!r})"))
    return values


def _restore_compile(archive, model, custom_objects):
    from . import losses, metrics, optimizers
    from .optimizers import schedules
    comp = archive.meta.get("compile")
    if comp is None:
        return False
    if not isinstance(comp, dict):
        raise archive.error("compile settings are malformed")
    try:
        ospec = comp.get("optimizer")
        if not isinstance(ospec, dict) or not isinstance(ospec.get("class_name"), str) \
                or not isinstance(ospec.get("config", {}), dict):
            raise archive.error("the optimizer config is malformed")
        ocls = _lookup(ospec["class_name"], custom_objects,
                       lambda n: type(optimizers.get(n)), optimizers.Optimizer)
        ocfg = dict(ospec.get("config", {}))
        lr = ocfg.get("learning_rate")
        if isinstance(lr, dict):
            scls = _lookup(lr.get("class_name"), custom_objects,
                           lambda n: None, schedules.LearningRateSchedule)
            if scls is not None:
                ocfg["learning_rate"] = scls.from_config(dict(lr.get("config", {})))
        opt = ocls.from_config(ocfg)
        known = {k: c for k, c in vars(metrics).items()
                 if isinstance(c, type) and issubclass(c, metrics.Metric)}
        known.update(_CUSTOM_METRICS)

        def loss_of(lspec):
            if not isinstance(lspec, dict) or not isinstance(lspec.get("class_name"), str):
                raise archive.error("the loss config is malformed")
            lcls = _lookup(lspec["class_name"], custom_objects,
                           lambda n: losses._BY_NAME[n], losses.Loss)
            return lcls.from_config(dict(lspec.get("config", {})))

        def metrics_of(specs):
            if not isinstance(specs, list):
                raise archive.error("the metrics config is malformed")
            mets = []
            for m in specs:
                if isinstance(m, str):
                    mets.append(m)
                elif isinstance(m, dict) and isinstance(m.get("class_name"), str):
                    mcls = _lookup(m["class_name"], custom_objects, known.__getitem__,
                                   metrics.Metric)
                    mets.append(mcls(**dict(m.get("config", {}))))
                else:
                    raise archive.error(f"a metric spec is malformed: {m!r:.80}")
            return mets

        lspec = comp.get("loss")
        if isinstance(lspec, list):  # a model with several outputs
            weights = comp.get("loss_weights")
            per_metrics = comp.get("metrics") or [[] for _ in lspec]
            if not isinstance(weights, list) or not isinstance(per_metrics, list) \
                    or not len(weights) == len(per_metrics) == len(lspec):
                raise archive.error("the per-output compile settings are malformed")
            model.compile(optimizer=opt,
                          loss=[None if spec is None else loss_of(spec) for spec in lspec],
                          loss_weights=weights, metrics=[metrics_of(ms) for ms in per_metrics])
        else:
            model.compile(optimizer=opt, loss=loss_of(lspec),
                          metrics=metrics_of(comp.get("metrics", []) or []))
    except InvalidModelFileError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, NotImplementedError,
            OverflowError, RecursionError) as err:
        raise archive.error(f"cannot restore the compile settings ({type(err).__name__}: "
                            f"{str(err)[:300]})") from None
    return True


def _restore_optimizer_state(archive, model, ostate, read):
    """Check every saved slot against what the optimizer builds for that variable; returns a
    function that installs them (called only after everything was read)."""
    opt = model.optimizer
    variables = model.weights
    installs = []
    for slot in ostate["variables"]:
        v = variables[slot["weight"]]
        fresh = opt.build_variable(v)
        if not isinstance(fresh, dict):
            raise archive.error(f"optimizer {type(opt).__name__} builds no state dict")
        saved_keys = set(slot.get("arrays", {})) | set(slot.get("scalars", {}))
        if saved_keys != set(fresh):
            raise archive.error(f"optimizer state of {v.path!r} has slots {sorted(saved_keys)} "
                                f"in the file but {type(opt).__name__} uses {sorted(fresh)}")
        for key, spec in slot.get("arrays", {}).items():
            cur = fresh[key]
            entry, shape, dtype = archive.array_spec(spec, f"optimizer state {key!r} of {v.path!r}")
            if not isinstance(cur, np.ndarray) or cur.shape != shape or cur.dtype != dtype:
                raise archive.error(
                    f"optimizer state {key!r} of {v.path!r}: the file has {shape} {dtype.name}, "
                    f"the optimizer needs {getattr(cur, 'shape', None)} "
                    f"{getattr(cur, 'dtype', type(cur).__name__)}")
            fresh[key] = read(entry, shape, dtype, f"optimizer state {key!r} of {v.path!r}")
        for key, value in slot.get("scalars", {}).items():
            cur = fresh[key]
            if isinstance(cur, np.ndarray) or not (value is None or isinstance(value, (bool, int, float))):
                raise archive.error(f"optimizer state {key!r} of {v.path!r} has an invalid value")
            fresh[key] = type(cur)(value) if isinstance(cur, np.generic) else value
        installs.append((fresh, v))

    def install():
        # Through the optimizer's own build(), so whatever bookkeeping it keeps per variable
        # stays consistent; then the saved values go into the state it allocated.
        for fresh, v in installs:
            opt.build([v])
            state = opt.state_of(v)
            for k, value in fresh.items():
                if isinstance(value, np.ndarray):
                    np.copyto(state[k], value)
                else:
                    state[k] = value
        opt.iterations = int(ostate["iterations"])
        calls = ostate.get("apply_calls")  # files before it: the start of the cycle
        if isinstance(calls, int) and not isinstance(calls, bool) and calls >= 0 \
                and opt.iterations == (calls // opt.gradient_accumulation_steps
                                       if opt.gradient_accumulation_steps else calls):
            opt.apply_calls = calls
    return install


def _valid_rng_state(state):
    return (isinstance(state, dict) and isinstance(state.get("bit_generator"), str)
            and state["bit_generator"] in _RNG_CLASSES)


def _set_generator_state(gen, state, archive, what):
    if not _valid_rng_state(state) or state["bit_generator"] != type(gen.bit_generator).__name__:
        raise archive.error(f"{what}: the saved random-generator state is malformed or for "
                            f"another generator type")
    try:
        probe = type(gen.bit_generator)()
        probe.state = state  # validated on a scratch generator first
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise archive.error(f"{what}: invalid random-generator state ({err})") from None
    return lambda: setattr(gen.bit_generator, "state", state)


def _rng_restorers(archive, model, restore_global):
    from . import backend
    rng = archive.meta.get("rng")
    out = []
    if not isinstance(rng, dict):
        return out
    if restore_global and rng.get("global") is not None:
        state = rng["global"]
        gen = backend.rng()
        if _valid_rng_state(state) and state["bit_generator"] != type(gen.bit_generator).__name__:
            gen = np.random.Generator(getattr(np.random, state["bit_generator"])())
            setter = _set_generator_state(gen, state, archive, "global RNG")
            out.append(lambda: (setter(), setattr(backend, "_rng", gen)))
        else:
            out.append(_set_generator_state(gen, state, archive, "global RNG"))
    for item in rng.get("layers", []) or []:
        if not isinstance(item, dict):
            raise archive.error("rng.layers is malformed")
        i, attr = item.get("layer"), item.get("attr")
        if not isinstance(i, int) or not 0 <= i < len(model.layers) or not isinstance(attr, str):
            raise archive.error(f"rng.layers refers to a layer that does not exist ({i!r:.20})")
        gen = vars(model.layers[i]).get(attr)
        if not isinstance(gen, np.random.Generator):
            raise archive.error(f"layer {model.layers[i].name!r} has no random generator "
                                f"{attr!r:.40} to restore")
        out.append(_set_generator_state(gen, item.get("state"), archive,
                                        f"random generator of layer {model.layers[i].name!r}"))
    return out


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True, restore_rng=True):
    """load_model(filepath, custom_objects=None, compile=True, safe_mode=True, restore_rng=True)

    Rebuild a model saved by ``model.save``: architecture, weights, compile settings and
    optimizer state (``compile=False`` skips the last two). ``custom_objects`` maps class
    names to custom Layer/Loss/Metric/Optimizer/schedule classes (or register them with
    ``fastnn.layers.register`` / ``register_keras_serializable``). ``restore_rng=True``
    (fastnn extra) also rewinds fastnn's global random generator to its state at save time,
    so resumed training shuffles exactly as uninterrupted training would. Loading is always
    safe (``safe_mode`` is accepted for Keras compatibility: nothing is ever unpickled).
    Raises InvalidModelFileError (a ValueError) for a corrupted, truncated, wrong-version
    or hostile file."""
    return _load(lambda: _Archive(filepath, "load_model", kinds=("model", "weights", "feature_space")),
                 custom_objects, compile, restore_rng)


def _load(open_archive, custom_objects, compile, restore_rng):
    """load_model's work on the archive ``open_archive()`` returns (a file or pickled bytes)."""
    from . import backend
    # Rebuilding draws initial weights from the global generator (they are overwritten at
    # once): put its state back so that loading itself consumes no randomness.
    gen = backend.rng()
    snapshot = gen.bit_generator.state
    try:
        with open_archive() as archive:
            if archive.meta["kind"] in ARCHIVE_CLASSES:  # as keras.saving.load_model does
                return ARCHIVE_CLASSES[archive.meta["kind"]]._from_archive(archive)
            model, values, installs = _load_model_checked(archive, custom_objects, compile,
                                                          restore_rng)
    finally:
        gen.bit_generator.state = snapshot
    # Everything was read and checked: only now is anything assigned.
    with model._state_lock.writing():
        for v, value in zip(model.weights, values):
            np.copyto(v.value, value)
    for install in installs:
        install()
    return model


# Objects other than models that a fastnn archive holds, by metadata kind: the class
# registers itself (fastnn.feature_space: "feature_space") with ``_from_archive(archive)``
# and ``from_config(config, state=...)``, so that this module never imports it.
ARCHIVE_CLASSES = {}


def _feature_space_specs(archive, keys=False):
    """(entry, shape, dtype, what) of each statistic of a model's feature space (with its
    name when ``keys``), checked; none for a model without one."""
    config = archive.meta.get("model")
    fs = config.get("feature_space") if isinstance(config, dict) else None
    if fs is None:
        return []
    if not isinstance(fs, dict) or not isinstance(fs.get("state", {}), dict):
        raise archive.error("the feature space is malformed")
    specs = []
    for key, item in fs.get("state", {}).items():
        what = f"feature space statistic {key!r:.80}"
        if not isinstance(item, dict):
            raise archive.error(f"{what} is malformed")
        entry, shape, dtype = archive.array_spec(item, what)
        specs.append(((entry, shape, dtype, what), key) if keys else (entry, shape, dtype, what))
    return specs


def _read_feature_space(archive, config):
    spec = config["feature_space"]
    if not isinstance(spec.get("config"), dict):
        raise archive.error("the feature space is malformed")
    state = {key: archive.read_array(*entry) for entry, key in _feature_space_specs(archive, True)}
    try:
        return ARCHIVE_CLASSES["feature_space"].from_config(dict(spec["config"]), state=state)
    except (TypeError, ValueError, KeyError) as err:
        raise archive.error(f"cannot rebuild the feature space: {str(err)[:300]}") from None


def _load_model_checked(archive, custom_objects, compile, restore_rng):
    if archive.meta["kind"] != "model":
        raise archive.error("this is a weights file (written by save_weights); load it with "
                            "model.load_weights() into a model of the same architecture")
    expected = _weight_specs(archive)
    ostate, ospecs = _optimizer_specs(archive, len(expected))
    archive.check_budget(expected + ospecs + _feature_space_specs(archive))
    model = _rebuild_model(archive, custom_objects, expected)
    if not model.built:
        if expected:
            raise archive.error("the architecture has no input shape but the file holds weights")
    values = _check_and_read_weights(archive, model, expected)
    installs = []
    if compile and _restore_compile(archive, model, custom_objects) and ostate is not None:
        installs.append(_restore_optimizer_state(archive, model, ostate, archive.read_array))
    installs += _rng_restorers(archive, model, restore_rng)
    installs += _layer_attribute_restorers(archive, model)
    user = archive.meta.get("user_metadata")
    if user is not None:
        if not isinstance(user, dict):
            raise archive.error("user_metadata is malformed (not a JSON object)")
        installs.append(lambda: setattr(model, "_user_metadata", user))
    return model, values, installs


def _layer_attribute_restorers(archive, model):
    items = archive.meta.get("layer_state") or []
    if not isinstance(items, list):
        raise archive.error("layer_state is malformed")
    out = []
    for item in items:
        if not isinstance(item, dict):
            raise archive.error("layer_state is malformed")
        i, attr, value = item.get("layer"), item.get("attr"), item.get("value")
        if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(model.layers):
            raise archive.error(f"layer_state refers to a layer that does not exist ({i!r:.20})")
        layer = model.layers[i]
        # Only attributes the (registered) class itself declares can be set from a file.
        if attr not in getattr(type(layer), "_saved_attributes", ()):
            raise archive.error(f"layer {layer.name!r} ({type(layer).__name__}) has no saved "
                                f"attribute {attr!r:.40}")
        if not (value is None or isinstance(value, (bool, int, float))) or (
                isinstance(value, int) and not -2 ** 64 < value < 2 ** 64):
            raise archive.error(f"layer {layer.name!r}: invalid value for {attr!r}")
        out.append(lambda layer=layer, attr=attr, value=value: setattr(layer, attr, value))
    return out


def load_weights(model, filepath, skip_mismatch=False):
    """load_weights(model, filepath, skip_mismatch=False): copy the weights of a file written by
    ``save_weights`` (or ``save``) into ``model``, which must have the same architecture (float32
    and float64 convert). An unbuilt model is built with the input shape stored in the file.
    ``skip_mismatch=True`` skips layers whose weight shapes differ instead of raising."""
    with _Archive(filepath, "load_weights") as archive:
        expected = _weight_specs(archive)
        _, ospecs = _optimizer_specs(archive, len(expected))  # a model file's: not read here
        archive.check_budget(expected + ospecs)
        if not model.built and model.input_shape is not None:
            model.build()  # the model's own architecture: nothing here comes from the file
        elif not model.built:
            shape = archive.meta.get("input_shape")
            if not (isinstance(shape, list) and len(shape) >= 2 and shape[0] is None and all(
                    isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape[1:])):
                raise archive.error("the model is not built and the file has no usable input "
                                    "shape; build the model first")
            # The input shape comes from the file: guard what it makes the layers allocate.
            with _WeightGuard(archive, expected):
                try:
                    model.build(tuple(shape))  # leaves the model unbuilt if it fails
                except InvalidModelFileError:
                    raise
                except ValueError as err:
                    raise archive.error(f"cannot build the model for the file's weights: {err}") from None
        if skip_mismatch:
            pairs = _match_by_layer(archive, model, expected)
        else:
            values = _check_and_read_weights(archive, model, expected, cast=True)
            pairs = list(zip(model.weights, values))
    with model._state_lock.writing():  # predictions in other threads: before or after
        for v, value in pairs:
            np.copyto(v.value, value, casting="same_kind")
    return model


def _match_by_layer(archive, model, expected):
    """skip_mismatch: pair the model's layers that own weights with the file's, in order, and
    keep only those whose every weight has the same shape."""
    groups = {}
    for k, spec in enumerate(archive.meta["weights"]):
        layer = spec.get("layer") if isinstance(spec, dict) else None
        groups.setdefault(layer if isinstance(layer, int) else None, []).append(k)
    file_layers = [groups[key] for key in sorted(groups, key=lambda g: groups[g][0])]
    model_layers = [layer for layer in model.layers if layer.weights]
    pairs = []
    for layer, ks in zip(model_layers, file_layers):
        specs = [expected[k] for k in ks]
        if len(specs) != len(layer.weights) or any(
                tuple(v.value.shape) != s[1] or (s[2] != v.value.dtype and not
                                                 s[2].kind == v.value.dtype.kind == "f")
                for v, s in zip(layer.weights, specs)):
            warnings.warn(f"load_weights: skipping layer {layer.name!r}: its weights "
                          f"{[v.value.shape for v in layer.weights]} do not match the file's "
                          f"{[s[1] for s in specs]}", stacklevel=3)
            continue
        for v, (entry, shape, dtype, path) in zip(layer.weights, specs):
            pairs.append((v, archive.read_array(entry, shape, dtype, f"weight {path!r}")))
    if len(model_layers) != len(file_layers):
        warnings.warn(f"load_weights: the model has {len(model_layers)} layers with weights, the "
                      f"file {len(file_layers)}; the extra ones were skipped", stacklevel=3)
    return pairs
