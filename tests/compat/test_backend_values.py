"""fastnn.backend.get_value / set_value: Keras 2's ``K.get_value`` / ``K.set_value`` on
learning rates and weights, so ``import fastnn.backend as K`` code runs unchanged."""
import numpy as np
import pytest

import fastnn
import fastnn.backend as K
from fastnn import layers, optimizers


def small_model(optimizer):
    fastnn.set_seed(0)
    model = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(3), layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    return model


def test_set_value_on_learning_rate_sets_the_optimizers_rate():
    model = small_model(optimizers.SGD(0.1))
    assert K.get_value(model.optimizer.learning_rate) == pytest.approx(0.1)
    K.set_value(model.optimizer.learning_rate, 0.01)
    assert model.optimizer.learning_rate == pytest.approx(0.01)
    K.set_value(model.optimizer.lr, 0.5 * K.get_value(model.optimizer.lr))  # Keras 2's name
    assert K.get_value(model.optimizer.learning_rate) == pytest.approx(0.005)


def test_set_learning_rate_changes_the_next_step():
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    a, b = small_model(optimizers.SGD(0.1)), small_model(optimizers.SGD(0.1))
    K.set_value(a.optimizer.learning_rate, 0.0)   # a rate of 0: the weights stay
    before = a.get_weights()
    a.train_on_batch(x, y)
    b.train_on_batch(x, y)
    for w0, w1 in zip(before, a.get_weights()):
        np.testing.assert_array_equal(w0, w1)
    assert any(not np.array_equal(w0, w1) for w0, w1 in zip(before, b.get_weights()))


def test_set_value_on_a_schedule_is_refused_as_keras():
    schedule = optimizers.schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    model = small_model(optimizers.SGD(schedule))
    with pytest.raises(TypeError, match="LearningRateSchedule"):
        K.set_value(model.optimizer.learning_rate, 0.01)
    assert K.get_value(model.optimizer.learning_rate) == pytest.approx(0.1)


def test_set_value_copies_into_a_weight_in_place():
    model = small_model("sgd")
    kernel = model.layers[0].kernel
    buffer = kernel.value
    K.set_value(kernel, np.ones((4, 3)))              # float64 in, float32 weight kept
    assert kernel.value is buffer and kernel.value.dtype == np.float32
    np.testing.assert_array_equal(K.get_value(kernel), np.ones((4, 3), np.float32))
    value = K.get_value(kernel)
    value[0, 0] = 5.0                                 # a copy: the weight is untouched
    assert kernel.value[0, 0] == 1.0
    with pytest.raises(ValueError, match="shape"):
        K.set_value(kernel, np.ones((3, 4)))
    K.set_value(model.layers[1].kernel, model.layers[1].kernel)  # a variable as the value


def test_get_value_of_numbers_and_arrays_and_set_value_refuses_them():
    assert K.get_value(0.5) == 0.5 and isinstance(K.get_value(0.5), np.floating)
    np.testing.assert_array_equal(K.get_value([1, 2]), [1, 2])
    with pytest.raises(TypeError, match="get_value"):
        K.get_value("abc")
    with pytest.raises(TypeError, match="cannot be set in place"):
        K.set_value(0.5, 0.1)
    with pytest.raises(TypeError, match="cannot be set in place"):
        K.set_value(np.zeros(3), np.ones(3))
