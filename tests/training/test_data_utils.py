"""fastnn.utils.to_categorical: Keras 3's NumPy path (float64 one-hot, inferred classes,
the label array's shape kept) and its argument errors."""
import numpy as np
import pytest

import fastnn as keras


def test_to_categorical_keeps_the_label_array_shape_as_keras():
    tc = keras.utils.to_categorical
    # (2, 2, 1) labels gave a (2, 1) array (fancy indexing broadcast silently)
    y = np.array([[[0], [2]], [[1], [1]]])
    out = tc(y)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.argmax(-1), y[..., 0])
    assert tc(np.array([[0, 1], [2, 0]])).shape == (2, 2, 3)
    assert tc([0, 2, 1]).shape == (3, 3) and tc(np.array([[0], [1]])).shape == (2, 2)
    assert tc([], num_classes=4).shape == (0, 4)
    with pytest.raises(ValueError, match="num_classes"):
        tc([])
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 2.5"):
        tc([0, 1], num_classes=2.5)


def test_to_categorical_follows_keras_numpy_path():
    """Keras 3's NumPy path: float64 output, num_classes None or 0 inferred, trailing 1 dropped."""
    from fastnn.utils import to_categorical
    out = to_categorical([0, 2, 1])
    assert out.dtype == np.float64 and out.shape == (3, 3)
    np.testing.assert_array_equal(out, np.eye(3)[[0, 2, 1]])
    assert to_categorical([1, 2], 0).shape == (2, 3)
    assert to_categorical(np.array([[0], [3]])).shape == (2, 4)
    assert to_categorical(np.zeros((2, 2, 1), int), 3).shape == (2, 2, 3)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        to_categorical([0, 1], "3")
    with pytest.raises(ValueError, match="positive integer"):
        to_categorical([0, 1], 2.5)
