"""Reference optimizer updates: in place, Keras 3's rules written out plainly."""
import numpy as np

__all__ = ["sgd_update"]


def sgd_update(param, grad, velocity, learning_rate, momentum=0.0, nesterov=False, n_threads=None):
    """In place: velocity = momentum * velocity - lr * grad; param += velocity (or, nesterov,
    param += momentum * velocity - lr * grad). velocity None: param -= lr * grad."""
    dt = param.dtype.type
    lr, mom = dt(learning_rate), dt(momentum)
    if velocity is None:
        param -= lr * grad
        return param
    velocity[...] = mom * velocity - lr * grad
    if nesterov:
        param += mom * velocity - lr * grad
    else:
        param += velocity
    return param
