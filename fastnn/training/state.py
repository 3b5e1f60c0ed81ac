"""A snapshot of everything a training step changes in a compiled model (weights, optimizer
state and step, learning rate, random generators, layer counters), to put the model back
exactly as it was: the learning-rate range test and the sanity checks train on a copy of
nothing, and restore with it."""
import numpy as np

from .. import backend


def layer_rngs(model):
    """(layer index, attribute, Generator) for every numpy Generator a layer keeps."""
    out = []
    for i, layer in enumerate(model.layers):
        for attr, value in sorted(vars(layer).items()):
            if isinstance(value, np.random.Generator):
                out.append((i, attr, value))
    return out


class TrainingState:
    """Everything a training step changes in a compiled Sequential model, copied so that it
    can be put back in place (into the same arrays: the optimizer's packed views stay valid)."""

    def __init__(self, model):
        self.model = model
        opt = model.optimizer
        self.values = [v.value.copy() for v in model.weights]
        self.iterations = opt.iterations
        self.learning_rate = opt.learning_rate_setting
        # optimizer attributes that are plain numbers (e.g. Nadam's momentum-schedule product)
        self.opt_scalars = {k: v for k, v in vars(opt).items()
                            if isinstance(v, (bool, int, float, np.generic)) and k != "iterations"}
        self.had_state = {}
        for v in model.weights:
            state = opt.state_of(v)
            if state is not None:
                self.had_state[id(v)] = {k: (a.copy() if isinstance(a, np.ndarray) else a)
                                         for k, a in state.items()}
        self.global_rng = backend.rng().bit_generator.state
        self.np_random = np.random.get_state()
        self.layer_rngs = [(g, g.bit_generator.state) for _, _, g in layer_rngs(model)]
        self.layer_attrs = [(layer, attr, getattr(layer, attr, None))
                            for layer in model.layers
                            for attr in getattr(type(layer), "_saved_attributes", ())]
        self.stop_training = model.stop_training

    def restore(self):
        model, opt = self.model, self.model.optimizer
        for v, value in zip(model.weights, self.values):
            np.copyto(v.value, value)
        opt.iterations = self.iterations
        opt.replace_learning_rate(self.learning_rate)
        for k, value in self.opt_scalars.items():
            setattr(opt, k, value)
        for v in model.weights:
            state = opt.state_of(v)
            if state is None:
                continue
            # state the test created starts again from what the optimizer builds for v
            saved = self.had_state.get(id(v)) or opt.build_variable(v)
            for k, value in saved.items():
                if isinstance(state.get(k), np.ndarray):
                    np.copyto(state[k], value)
                else:
                    state[k] = value
        backend.rng().bit_generator.state = self.global_rng
        np.random.set_state(self.np_random)
        for g, state in self.layer_rngs:
            g.bit_generator.state = state
        for layer, attr, value in self.layer_attrs:
            setattr(layer, attr, value)
        model.stop_training = self.stop_training
        for m in model.compiled_metrics:
            m.reset_state()
