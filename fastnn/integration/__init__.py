"""Bridges to optional third-party tools (fastnn extras), each importing its tool only when
used so that fastnn's runtime dependencies stay numpy + threadpoolctl:

- ``fastnn.integration.OptunaPruningCallback(trial, monitor="val_loss")``: Optuna pruning
  (``pip install fastnn[search]``);
- ``fastnn.integration.tensorboard``: the event-file writer behind
  ``fastnn.callbacks.TensorBoard`` (``pip install fastnn[tensorboard]``).
"""
from .optuna import OptunaPruningCallback  # noqa: F401  (imports optuna only when built)

__all__ = ["OptunaPruningCallback"]
