"""fastnn.utils.ensemble_predict and the SnapshotEnsemble callback (fastnn extras)."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, optimizers


def classifier(seed, units=10):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([layers.Input(shape=(64,)), layers.Dense(16, activation="relu"),
                               layers.Dense(units, activation="softmax")])
    return model


def test_ensemble_predict_is_the_mean_of_the_models_predictions():
    x = np.random.default_rng(0).normal(size=(30, 64)).astype(np.float32)
    models = [classifier(s) for s in range(3)]
    expected = np.mean([m.predict(x, verbose=0).astype(np.float64) for m in models], axis=0)
    got = fastnn.utils.ensemble_predict(models, x, batch_size=7)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="differ in shape"):
        fastnn.utils.ensemble_predict([classifier(0), classifier(1, units=3)], x)
    with pytest.raises(ValueError, match="no models"):
        fastnn.utils.ensemble_predict([], x)


@pytest.mark.parametrize("t_mul", [1.0, 2.0])
def test_snapshots_are_taken_where_the_cosine_schedule_restarts(t_mul):
    (x, y), _ = fastnn.datasets.load_digits()
    x, y = x[:320] / 16, y[:320]
    schedule = optimizers.schedules.CosineDecayRestarts(0.05, first_decay_steps=10, t_mul=t_mul)
    model = classifier(0)
    model.compile(optimizer=optimizers.SGD(schedule), loss="sparse_categorical_crossentropy")
    snap = fastnn.utils.SnapshotEnsemble(max_snapshots=5)
    model.fit(x, y, batch_size=32, epochs=7, verbose=0, callbacks=[snap])   # 70 steps
    expected = [10, 20, 30, 40, 50, 60, 70][-5:] if t_mul == 1.0 else [10, 30, 70]
    assert snap.snapshot_steps == expected
    # each snapshot is the weights after the cycle's last step, where the rate is lowest
    assert schedule(expected[-1] - 1) < schedule(expected[-1])
    np.testing.assert_array_equal(snap.snapshots[-1][0], model.get_weights()[0])
    members = snap.models()
    assert len(members) == len(expected)
    np.testing.assert_array_equal(members[0].get_weights()[0], snap.snapshots[0][0])
    np.testing.assert_allclose(snap.predict(x[:20]),
                               fastnn.utils.ensemble_predict(members, x[:20]), rtol=1e-6)


def test_snapshot_ensemble_needs_a_cosine_restarts_schedule():
    model = classifier(0)
    model.compile(optimizer=optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x, y = np.zeros((8, 64), np.float32), np.zeros(8)
    with pytest.raises(ValueError, match="CosineDecayRestarts"):
        model.fit(x, y, verbose=0, callbacks=[fastnn.utils.SnapshotEnsemble()])
    with pytest.raises(ValueError, match="no snapshot"):
        fastnn.utils.SnapshotEnsemble().models()
