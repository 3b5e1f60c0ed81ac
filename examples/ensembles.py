"""Ensembles on the digits (course material: model averaging): the test accuracy of a single
model against (1) an ensemble of independently trained models (``ensemble_predict``
averages their probabilities) and (2) a snapshot ensemble, the models a single run passes
through at the end of each cycle of a cosine learning rate with restarts (Huang et al.
2017, "Snapshot Ensembles: Train 1, get M for free").

    python examples/ensembles.py
"""
import numpy as np

import fastnn
from fastnn import layers
from fastnn.optimizers.schedules import CosineDecayRestarts
from fastnn.utils import SnapshotEnsemble, ensemble_predict


def make_model(seed, optimizer):
    fastnn.set_seed(seed)
    model = fastnn.Sequential([fastnn.Input(shape=(64,)),
                               layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
                               layers.Dropout(0.2),
                               layers.Dense(10, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def accuracy(probs, y):
    return float(np.mean(np.argmax(probs, axis=1) == y))


def main(small=False):
    (x, y), (xt, yt) = fastnn.datasets.load_digits()
    epochs, members = (3, 3) if small else (20, 5)
    steps_per_epoch = -(-len(x) // 32)

    # independently trained models, each from its own seed
    models = []
    for seed in range(members):
        model = make_model(seed, fastnn.optimizers.Adam(1e-3))
        model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
        models.append(model)
    single = accuracy(models[0].predict(xt, verbose=0), yt)
    independent = accuracy(ensemble_predict(models, xt), yt)

    # one run through cycles of a cosine learning rate: a snapshot at the end of each
    cycle = max(1, epochs * steps_per_epoch // members)
    schedule = CosineDecayRestarts(0.01, first_decay_steps=cycle, t_mul=1.0)
    snapshots = SnapshotEnsemble()
    model = make_model(0, fastnn.optimizers.Adam(schedule))
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[snapshots])
    last = accuracy(model.predict(xt, verbose=0), yt)
    snapshot = accuracy(snapshots.predict(xt), yt)

    results = {"single": single, "independent": independent, "last_snapshot": last,
               "snapshot_ensemble": snapshot, "snapshots": len(snapshots.snapshots)}
    print(f"single model          {single:.3f}")
    print(f"{members} independent models  {independent:.3f}")
    print(f"cosine-restart run    {last:.3f} (its last weights)")
    print(f"snapshot ensemble     {snapshot:.3f} ({len(snapshots.snapshots)} snapshots)")
    return results


if __name__ == "__main__":
    main()
