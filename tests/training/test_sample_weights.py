"""sample_weight and class_weight, Keras 3 semantics: the loss is sum(w_i * loss_i) / batch
size, its gradient the per-row gradients scaled by w_i (exact: a row's gradient depends on its
row only); metrics stay unweighted (Keras' ``metrics``, not ``weighted_metrics``)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers

from conftest import C, REF, numeric_grad


def model(loss="sparse_categorical_crossentropy", out=3, act="softmax", seed=0):
    fastnn.set_seed(seed)
    m = fastnn.Sequential([layers.Input(shape=(4,)), layers.Dense(6, activation="tanh"),
                           layers.Dense(out, activation=act)])
    m.compile(optimizer=optimizers.SGD(0.0), loss=loss, metrics=["accuracy"] if out > 1 else None)
    return m


@pytest.mark.parametrize("ops", [REF] + ([C] if C is not None else []), ids=lambda o: o.name)
@pytest.mark.parametrize("kernel,args", [
    ("elementwise_loss", (0,)), ("elementwise_loss", (3,)), ("elementwise_loss", (5,)),
    ("softmax_cross_entropy", (True,)), ("softmax_cross_entropy", (False,)),
    ("sparse_softmax_cross_entropy", (True,))], ids=lambda a: str(a))
def test_row_loss_sums_to_the_loss(ops, kernel, args):
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (7, 3))
    p /= p.sum(axis=1, keepdims=True)
    t = np.eye(3)[rng.integers(0, 3, 7)]
    target = t.argmax(axis=1).astype(np.int64) if kernel.startswith("sparse") else t
    rows = np.empty(7)
    total = getattr(ops, kernel)(p, target, *args, out=None, row_loss=rows)
    assert rows.sum() == pytest.approx(total, rel=1e-12)
    for i in range(7):  # each row is the loss of that row alone
        tt = target[i:i + 1]
        assert rows[i] == pytest.approx(getattr(ops, kernel)(p[i:i + 1], tt, *args), rel=1e-12)


def test_weighted_training_loss_and_gradient(float64_model):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 4))
    y = rng.integers(0, 3, 9)
    w = rng.uniform(0, 3, 9)
    m = model()
    t = m.loss.prepare_targets(y, m.output_shape, np.float64)
    loss = m.train_on_batch(x, y, sample_weight=w)[0]   # lr 0: gradients only
    p = m.predict(x, verbose=0)
    per_sample = -np.log(p[np.arange(9), y])
    assert loss == pytest.approx((w * per_sample).sum() / 9, rel=1e-10)
    for v in m.trainable_weights:
        def f():
            out = np.array(m._forward(x, False))
            rows = np.empty(9)
            m.loss.compute(out, t, None, False, rows)
            return float(np.dot(rows, w)) / 9
        np.testing.assert_allclose(v.grad, numeric_grad(f, v.value), rtol=1e-5, atol=1e-8, err_msg=v.path)


def test_class_weight_is_sample_weight_by_class():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    cw = {0: 1.0, 1: 4.0, 2: 0.5}
    a, b = model(), model()
    for m in (a, b):
        m.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    fastnn.set_seed(9)  # the same shuffles for both
    ha = a.fit(x, y, class_weight=cw, epochs=3, batch_size=16, verbose=0)
    fastnn.set_seed(9)
    hb = b.fit(x, y, sample_weight=np.array([cw[c] for c in y]), epochs=3, batch_size=16, verbose=0)
    assert ha.history["loss"] == hb.history["loss"]
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        assert np.array_equal(wa, wb)
    # and it changes the model: unweighted training ends elsewhere
    c = model()
    c.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    c.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert not np.array_equal(c.get_weights()[0], a.get_weights()[0])


def test_unit_weights_change_nothing_and_zero_weights_ignore_samples():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    plain, ones = model(), model()
    for m in (plain, ones):
        m.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    plain.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
    ones.fit(x, y, sample_weight=np.ones(40), epochs=2, batch_size=8, verbose=0, shuffle=False)
    for a, b in zip(plain.get_weights(), ones.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # weight 0 on half the samples == training on the other half with the loss divided by
    # the full batch size: one step's update equals a step on that half at half the lr
    half, zero = model(), model()
    half.compile(optimizer=optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    zero.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    keep = np.arange(40) % 2 == 0
    zero.train_on_batch(x, y, sample_weight=keep.astype(float))
    half.train_on_batch(x[keep], y[keep])
    for a, b in zip(half.get_weights(), zero.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluate_and_validation_weights():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 4)).astype(np.float32)
    y = rng.integers(0, 3, 30)
    w = rng.uniform(0.1, 2, 30)
    m = model()
    p = m.predict(x, verbose=0).astype(np.float64)
    per = -np.log(p[np.arange(30), y])
    loss, acc = m.evaluate(x, y, sample_weight=w, batch_size=7, verbose=0)
    assert loss == pytest.approx((w * per).sum() / 30, rel=1e-5)
    assert acc == pytest.approx(np.mean(p.argmax(axis=1) == y))  # metrics unweighted
    h = m.fit(x, y, epochs=1, verbose=0, validation_data=(x, y, w))
    assert h.history["val_loss"][0] == pytest.approx(m.evaluate(x, y, sample_weight=w, verbose=0)[0], rel=1e-6)


def test_binary_and_regression_weights():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 4)).astype(np.float32)
    yb = (x[:, 0] > 0).astype(np.float32)
    m = model(loss="binary_crossentropy", out=1, act="sigmoid")
    loss = m.evaluate(x, yb, sample_weight=np.where(yb > 0, 3.0, 1.0), verbose=0)
    p = m.predict(x, verbose=0)[:, 0].astype(np.float64)
    per = -(yb * np.log(p) + (1 - yb) * np.log(1 - p))
    assert loss == pytest.approx((np.where(yb > 0, 3.0, 1.0) * per).mean(), rel=1e-5)
    # class_weight on 0/1 targets picks the class from the target
    m.compile(optimizer="sgd", loss="binary_crossentropy")
    assert m.evaluate(x, yb, verbose=0) != pytest.approx(loss)
    m.fit(x, yb, class_weight={1: 3.0}, epochs=1, verbose=0)


def test_bad_weights_are_refused_clearly():
    m = model()
    x, y = np.zeros((4, 4)), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\), expected \(4,\)"):
        m.fit(x, y, sample_weight=np.ones(3), verbose=0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        m.fit(x, y, sample_weight=np.array([1, -1, 1, 1]), verbose=0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        m.evaluate(x, y, sample_weight=np.array([1, np.nan, 1, 1]), verbose=0)
    with pytest.raises(ValueError, match="class_weight must be a non-empty dict"):
        m.fit(x, y, class_weight=[1, 2, 3], verbose=0)
    with pytest.raises(ValueError, match="class indices >= 0"):
        m.fit(x, y, class_weight={-1: 2.0}, verbose=0)
