"""The PyTorch side of bench/suite.py, in a process of its own.

fastnn and PyTorch share one libgomp when they run in one process (PyTorch's wheel ships it
under the usual name), and its OMP_WAIT_POLICY is whatever the environment said when the first
of them loaded it: fastnn wants "passive" (its kernels and the BLAS take turns on the cores),
PyTorch is ~15% faster at batch 128 with libgomp's default (measured). One process would make
one of them run with the other's setting, so the suite starts this worker with the
environment the user started Python with and asks it for epochs, one at a time, between its
own rounds (see TorchWorker in suite.py).

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout.
    {"cmd": "threads", "n": 2}
    {"cmd": "train", "key": k, "x": path.npy, "y": path.npy, "sizes": [...], "batch": 128,
     "bn_dropout": false, "seed": 0}                       -> builds the model, warms it up
    {"cmd": "predict", "key": k, "x": path.npy, "sizes": [...], "rows": 1000}
    {"cmd": "run", "key": k}                                -> {"seconds": s, "loss": l}
    {"cmd": "version"}                                      -> {"version": "2.13.0+cpu"}
"""
import json
import sys
import time

import numpy as np
import torch


def torch_model(sizes, bn_dropout=False, seed=0):
    """The suite's MLP in PyTorch: Linear (+ BatchNorm1d with Keras' epsilon and momentum,
    + Dropout) + ReLU per hidden layer, logits out (CrossEntropyLoss applies the softmax)."""
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        mods.append(torch.nn.Linear(a, b))
        if bn_dropout:
            mods += [torch.nn.BatchNorm1d(b, eps=1e-3, momentum=0.01), torch.nn.ReLU(),
                     torch.nn.Dropout(0.2)]
        else:
            mods.append(torch.nn.ReLU())
    mods.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    return torch.nn.Sequential(*mods)


def train_epoch_fn(x, y, sizes, batch, bn_dropout=False, seed=0):
    """A function running one shuffled epoch (Adam, Keras' epsilon), returning the mean
    loss; the model is warmed up on a few batches first."""
    model = torch_model(sizes, bn_dropout, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    n = len(x)

    def epoch():
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for lo in range(0, n, batch):
            idx = perm[lo:lo + batch]
            opt.zero_grad(set_to_none=True)
            loss = lossf(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        return total / n

    model.train()
    for lo in range(0, min(n, batch * 4), batch):
        opt.zero_grad()
        lossf(model(xt[lo:lo + batch]), yt[lo:lo + batch]).backward()
        opt.step()
    return epoch


def predict_fn(x, sizes, rows):
    """A function running inference (softmax outputs) over x in chunks of ``rows``."""
    model = torch_model(sizes).eval()
    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            for lo in range(0, len(xt), rows):
                torch.softmax(model(xt[lo:lo + rows]), dim=1)
        return None
    run()
    return run


_ARRAYS = {}


def _load(path):
    """One copy per file: every case of the suite trains on the same arrays."""
    if path not in _ARRAYS:
        _ARRAYS[path] = np.load(path)
    return _ARRAYS[path]


def main():
    runners = {}
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        reply = {}
        if cmd == "threads":
            torch.set_num_threads(int(msg["n"]))
        elif cmd == "version":
            reply["version"] = torch.__version__
        elif cmd == "train":
            x, y = _load(msg["x"]), _load(msg["y"])
            runners[msg["key"]] = train_epoch_fn(x, y, msg["sizes"], msg["batch"],
                                                 msg.get("bn_dropout", False), msg.get("seed", 0))
        elif cmd == "predict":
            runners[msg["key"]] = predict_fn(_load(msg["x"]), msg["sizes"], msg["rows"])
        elif cmd == "run":
            t0 = time.perf_counter()
            loss = runners[msg["key"]]()
            reply["seconds"] = time.perf_counter() - t0
            reply["loss"] = loss
        elif cmd == "drop":
            runners.pop(msg["key"], None)
        else:
            reply["error"] = f"unknown command {cmd!r}"
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
