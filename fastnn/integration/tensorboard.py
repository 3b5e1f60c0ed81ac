"""Event files that TensorBoard reads, written with the ``tensorboard`` package's own writer
(``EventFileWriter``) and its summary protobufs: the formats Keras 3 writes through
``tf.summary`` (tensor summaries tagged for the scalars, histograms, images and Keras-graph
plugins), without TensorFlow. Used by fastnn.callbacks.TensorBoard."""
import struct
import time
import zlib

import numpy as np

INSTALL_HINT = ("fastnn.callbacks.TensorBoard writes event files with the tensorboard package, "
                "which is not installed: pip install fastnn[tensorboard] (or pip install "
                "tensorboard)")


def _tensorboard():
    """The tensorboard modules used here, or an ImportError naming the extra."""
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.histogram import summary_v2 as histogram_summary
        from tensorboard.plugins.image import metadata as image_metadata
        from tensorboard.plugins.scalar import summary_v2 as scalar_summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        from tensorboard.util import tensor_util
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from e
    return {"event_pb2": event_pb2, "summary_pb2": summary_pb2, "histogram": histogram_summary,
            "image_metadata": image_metadata, "scalar": scalar_summary,
            "EventFileWriter": EventFileWriter, "tensor_util": tensor_util}


def check_installed():
    """Raise the ImportError naming the extra now (at the callback's construction), not at
    the end of the first epoch."""
    _tensorboard()


class EventWriter:
    """EventWriter(logdir): one run folder of TensorBoard event files (created on demand).

    ``scalar(tag, value, step)``, ``histogram(tag, values, step, buckets=30)``,
    ``image(tag, gray, step)`` (a 2-D uint8 array), ``keras_model(tag, json_string, step)``,
    ``flush()``, ``close()``. Not thread-safe (one callback writes it).
    """

    def __init__(self, logdir):
        self._tb = _tensorboard()
        self.logdir = str(logdir)
        self._writer = self._tb["EventFileWriter"](self.logdir)

    def _add(self, summary, step):
        event = self._tb["event_pb2"].Event(wall_time=time.time(), step=int(step), summary=summary)
        self._writer.add_event(event)

    def scalar(self, tag, value, step):
        self._add(self._tb["scalar"].scalar_pb(tag, float(value)), step)

    def histogram(self, tag, values, step, buckets=30):
        # float64 before the bucketing: a float32 weight's min/max must not overflow edges
        values = np.asarray(values, dtype=np.float64)
        self._add(self._tb["histogram"].histogram_pb(tag, values, buckets=buckets), step)

    def image(self, tag, gray, step):
        """A grayscale uint8 image (height, width), PNG-encoded, in the image plugin's
        format: a string tensor [width, height, png]."""
        gray = np.ascontiguousarray(gray, dtype=np.uint8)
        height, width = gray.shape
        tensor = self._tb["tensor_util"].make_tensor_proto(
            [str(width).encode(), str(height).encode(), png_bytes(gray)], shape=[3])
        metadata = self._tb["image_metadata"].create_summary_metadata(
            display_name=tag, description="", converted_to_tensor=True)
        summary = self._tb["summary_pb2"].Summary()
        summary.value.add(tag=tag, metadata=metadata, tensor=tensor)
        self._add(summary, step)

    def keras_model(self, tag, json_string, step):
        """The model's JSON config under the "graph_keras_model" plugin, as Keras'
        keras_model_summary: TensorBoard's Graphs tab draws it as a conceptual graph."""
        summary_pb2 = self._tb["summary_pb2"]
        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = "graph_keras_model"
        metadata.plugin_data.content = b"1"
        tensor = self._tb["tensor_util"].make_tensor_proto([json_string.encode()], shape=[])
        summary = summary_pb2.Summary()
        summary.value.add(tag=tag, metadata=metadata, tensor=tensor)
        self._add(summary, step)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.close()


def png_bytes(gray):
    """A 2-D uint8 array as an 8-bit grayscale PNG file's bytes (zlib from the standard
    library: no image package needed)."""
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    if gray.ndim != 2 or not gray.size:
        raise ValueError(f"png_bytes: expected a non-empty 2-D array, got shape {gray.shape}")
    height, width = gray.shape
    # each row is preceded by its filter type (0: none)
    raw = np.hstack([np.zeros((height, 1), np.uint8), gray]).tobytes()

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def weight_image(value):
    """A weight as a grayscale image, as Keras' write_images lays it out (a bias as one row;
    a kernel with more rows than columns transposed), min-max scaled to 0..255 (Keras
    clips to [0, 1], which shows most weights black). None for shapes Keras skips."""
    w = np.squeeze(np.asarray(value, dtype=np.float64))
    if w.ndim == 1:
        w = w[None, :]
    elif w.ndim == 2:
        if w.shape[0] > w.shape[1]:
            w = w.T
    else:
        return None
    if not np.all(np.isfinite(w)):
        w = np.nan_to_num(w, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(w.min()), float(w.max())
    scaled = np.zeros_like(w) if hi == lo else (w - lo) / (hi - lo)
    return np.round(scaled * 255).astype(np.uint8)
