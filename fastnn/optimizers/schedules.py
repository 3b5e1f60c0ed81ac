"""Learning-rate schedules: callables from the step number (``optimizer.iterations``) to a
learning rate, with Keras 3 names and formulas."""


class LearningRateSchedule:
    """Base class: ``schedule(step)`` returns the learning rate at that step."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        return cls(**config)


_REGISTRY = {}


def serialize(schedule):
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config):
    cls = _REGISTRY.get(config["class_name"])
    if cls is None:
        raise ValueError(f"Unknown learning-rate schedule {config['class_name']!r}")
    return cls.from_config(config.get("config", {}))
