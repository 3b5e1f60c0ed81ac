"""Greedy layer-wise autoencoder pretraining: shapes and training, the denoising corruption,
tied weights (finite-difference gradient check in float64), determinism, bad arguments."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers
from fastnn.datasets import load_digits
from fastnn.pretrain import _Corruption, _TiedDecoder, _TiedEncoder, autoencoder_stack

from conftest import numeric_grad


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = load_digits()
    return x[:300], y[:300], xt[:100], yt[:100]


@pytest.mark.parametrize("tied", [False, True])
def test_stack_shapes_training_and_use_under_a_head(digits, tied, tmp_path):
    x, y, xt, yt = digits
    fastnn.set_seed(0)
    enc, hist = autoencoder_stack(x, units=[24, 12], epochs=8, noise=0.2, tied_weights=tied,
                                  return_history=True)
    assert [type(l) for l in enc] == [layers.Dense, layers.Dense]
    assert [l.kernel.shape for l in enc] == [(64, 24), (24, 12)]
    assert all(l.built and l.trainable and l.activation.name == "relu" for l in enc)
    for h in hist:  # each autoencoder learned to reconstruct
        assert h["loss"][-1] < 0.7 * h["loss"][0]
    model = fastnn.Sequential(enc + [layers.Dense(10, activation="softmax")])
    assert model.input_shape == (None, 64)
    model.compile(optimizer=optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.8
    model.save(tmp_path / "m")  # plain Dense layers: saves and loads like any model
    np.testing.assert_array_equal(fastnn.load_model(tmp_path / "m").predict(xt, verbose=0),
                                  model.predict(xt, verbose=0))


@pytest.mark.parametrize("tied", [False, True])
def test_linear_autoencoder_reaches_the_pca_optimum(digits, tied):
    """A linear autoencoder with k units can do no better than PCA with k components, and a
    correctly trained one gets close to it (tied or not)."""
    x = digits[0]
    fastnn.set_seed(1)
    _, hist = autoencoder_stack(x, units=[8], epochs=40, activation=None, tied_weights=tied,
                                optimizer=optimizers.Adam(1e-2), return_history=True)
    s = np.linalg.svd(x - x.mean(0), compute_uv=False)
    pca = float((s[8:] ** 2).sum() / x.size)  # the best rank-8 (plus mean) reconstruction MSE
    assert pca * 0.999 < hist[0]["loss"][-1] < 1.15 * pca


def test_deterministic_under_set_seed(digits):
    x = digits[0][:100]
    outs = []
    for _ in range(2):
        fastnn.set_seed(3)
        enc = autoencoder_stack(x, units=[8], epochs=2, noise=0.3, tied_weights=True)
        outs.append(enc[0].get_weights())
    for a, b in zip(*outs):
        assert np.array_equal(a, b)


def test_tied_weights_share_one_kernel_and_gradient_is_exact(float64_model):
    """Finite differences (float64) of the autoencoder loss with respect to the tied kernel,
    the encoder bias and the decoder bias match the gradients the layers compute (the
    encoder's own gradient plus the decoder's transposed contribution)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(7, 5))
    fastnn.set_seed(0)
    enc = layers.Dense(3, activation="tanh")
    holder = []
    wrapper = _TiedEncoder(enc, holder)
    dec = _TiedDecoder(enc, activation="sigmoid")
    holder.append(dec)
    ae = fastnn.Sequential([layers.Input(shape=(5,)), wrapper, dec])
    assert len(ae.trainable_weights) == 3  # kernel, encoder bias, decoder bias: no 2nd kernel
    ae.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    enc.bias.assign(rng.normal(size=3))
    dec.bias.assign(rng.normal(size=5))
    ae.train_on_batch(x, x)  # fills .grad, lr 0 leaves the weights as they are

    def loss():
        return ae.evaluate(x, x, batch_size=len(x), verbose=0)
    for v in (enc.kernel, enc.bias, dec.bias):
        expected = numeric_grad(loss, v.value)
        np.testing.assert_allclose(v.grad, expected, rtol=1e-6, atol=1e-9, err_msg=v.path)
    # and the decoder really uses the transpose of the encoder's kernel
    h = np.tanh(x @ enc.kernel.value + enc.bias.value)
    np.testing.assert_allclose(ae.predict(x, verbose=0),
                               1 / (1 + np.exp(-(h @ enc.kernel.value.T + dec.bias.value))),
                               rtol=1e-12)


def test_corruption_masks_in_training_only():
    fastnn.set_seed(0)
    layer = _Corruption(0.25, "mask")
    x = np.ones((400, 50), np.float32)
    layer._maybe_build(x.shape)
    y = layer.forward(x, training=True)
    frac = 1 - y.mean()
    assert abs(frac - 0.25) < 0.02 and set(np.unique(y)) == {0.0, 1.0}
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_array_equal(dx, 2.0 * y)  # the gradient goes through the same mask
    assert layer.forward(x, training=False) is x
    g = _Corruption(0.5, "gaussian")
    g._maybe_build(x.shape)
    noisy = g.forward(x, training=True) - 1
    assert abs(noisy.std() - 0.5) < 0.02 and abs(noisy.mean()) < 0.02


def test_per_layer_lists(digits):
    x = digits[0][:60]
    fastnn.set_seed(0)
    enc = autoencoder_stack(x, units=[6, 4], activation=["tanh", "sigmoid"], epochs=[1, 2],
                            noise=[0.1, 0.0], decoder_activation=["sigmoid", None],
                            loss=["binary_crossentropy", "mse"],
                            optimizer=optimizers.Adam(1e-3))
    assert [l.activation.name for l in enc] == ["tanh", "sigmoid"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(units=[]), "units"),
    (dict(units=[4, 0]), "units"),
    (dict(units=[4], noise=1.0), "noise"),
    (dict(units=[4], noise=0.1, noise_type="salt"), "noise_type"),
    (dict(units=[4, 2], epochs=[1]), "epochs has 1 entries for 2 layers"),
])
def test_bad_arguments(digits, kwargs, match):
    with pytest.raises(ValueError, match=match):
        autoencoder_stack(digits[0][:20], **kwargs)
    with pytest.raises(ValueError, match="shape"):
        autoencoder_stack(np.zeros(5), units=[2])
