"""The training engine, apart from the models (as Keras 3's keras/src/trainers/):

- ``trainer``: compile / fit / evaluate / predict and the training step (``Trainer``, a base
  class of the models), and the package-internal helpers other fastnn modules use instead
  of a model's private names (``prepare_inputs``, ``mc_predict``);
- ``data``: adapters from what the user passes (arrays, memory maps, generators, PyDataset)
  to batches; ``epoch_iterator``: epochs cut from passes; ``arguments``: the argument rules;
- ``py_dataset``: ``PyDataset`` (exported as fastnn.utils.PyDataset) and its workers;
- ``state``: a snapshot of everything a training step changes (the range test and the
  sanity checks put the model back with it).
"""
from .py_dataset import PyDataset  # noqa: F401
