"""Bridges to optional third-party tools (fastnn extras), each importing its tool only when
used so that fastnn's runtime dependencies stay numpy + threadpoolctl:

- ``fastnn.integration.tensorboard``: the event-file writer behind
  ``fastnn.callbacks.TensorBoard`` (``pip install fastnn[tensorboard]``).
"""
