"""Epochs cut from passes over the data, as Keras 3's EpochIterator.

An epoch without ``steps_per_epoch`` is one whole pass (a new pass, and a new shuffle, each
epoch). With it, the next epoch carries on where this one stopped; an epoch that reaches the
end of the pass ends there with a warning, and the next one starts a new pass. A source of
unknown length (a generator) learns it when its first pass ends.
"""
import warnings


class EpochIterator:
    """EpochIterator(data, steps_per_epoch=None): ``for step, batch in it.epoch(e)``.

    ``data``: an adapter of fastnn.training.data (``num_batches``, ``pass_batches()``,
    ``on_epoch_begin/end()``). ``out_of_data`` is set when an epoch got no batch at all
    (a generator read to its end in an earlier epoch): the trainer stops there."""

    def __init__(self, data, steps_per_epoch=None, what="fit", steps_name="steps_per_epoch"):
        if data.num_batches == 0:
            raise ValueError(f"{what}: the data has no batches (a PyDataset of length 0?)")
        self.data = data
        self.steps_per_epoch = steps_per_epoch
        self.what = what
        self.steps_name = steps_name
        self._pass = None  # the current pass (a generator of batches)
        self._seen = 0     # its batches so far
        self.out_of_data = False

    @property
    def num_batches(self):
        """Steps per epoch: steps_per_epoch, else the data's batches per pass (None while a
        generator's length is unknown)."""
        return self.steps_per_epoch or self.data.num_batches

    def _end_pass(self):
        if self._pass is not None:
            self._pass.close()  # stops a PyDataset's workers
        self._pass, self._seen = None, 0

    def close(self):
        self._end_pass()
        self.data.close()

    def epoch(self, epoch=0):
        """The (step, batch) pairs of one epoch."""
        data = self.data
        self.out_of_data = False
        data.on_epoch_begin()
        steps = self.num_batches
        if self._pass is None or self.steps_per_epoch is None:
            self._end_pass()
            self._pass = data.pass_batches()
        step = 0
        try:
            while steps is None or step < steps:
                per_pass = data.num_batches
                if per_pass is not None and self._seen >= per_pass:
                    if self.steps_per_epoch:
                        warnings.warn(
                            f"{self.what}: the data ran out after {step} of {self.steps_name}="
                            f"{steps} batches in epoch {epoch + 1} ({self._describe()}); the epoch "
                            f"ends here and the next one starts a new pass. Use {self.steps_name} "
                            "<= the batches per pass to avoid short epochs.",
                            UserWarning, stacklevel=4)
                    break
                try:
                    batch = next(self._pass)
                except StopIteration:
                    if data.num_batches is None:  # the end of a first pass: now it is known
                        data.num_batches = self._seen
                    self.out_of_data = step == 0
                    if self.steps_per_epoch or self.out_of_data:
                        warnings.warn(
                            f"{self.what}: your input ran out of data after {step} batches in "
                            f"epoch {epoch + 1}; a Python generator can be read once: make it "
                            f"loop (while True: ... yield) and pass {self.steps_name}, or use a "
                            "fastnn.utils.PyDataset (see the README).", UserWarning, stacklevel=4)
                    self._end_pass()
                    break
                self._seen += 1
                yield step, batch
                step += 1
            if self._pass is not None and data.num_batches is not None \
                    and self._seen >= data.num_batches:
                self._end_pass()
        finally:
            data.on_epoch_end()

    def _describe(self):
        d = self.data
        if hasattr(d, "n"):
            return f"{d.n} samples make {d.num_batches} batches of {d.batch_size}"
        return f"{d.num_batches} batches per pass"
