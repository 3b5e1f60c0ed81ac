"""The main job: python -m fastnn on the embedded digits, and fastnn train on a user file."""
import subprocess
import sys

import numpy as np

from fastnn.__main__ import main

from conftest import same_fastnn_env


def test_python_m_fastnn_runs_the_embedded_digits(capsys):
    assert main(["--epochs", "10", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "embedded 8x8 digits" in out
    acc = float(out.split("accuracy = ")[1].split()[0].rstrip(","))
    assert acc > 0.9


def test_train_on_csv_classification_and_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    label = (x[:, 0] + x[:, 1] > 0).astype(int)
    target = x @ [1.0, -2.0, 0.5]
    path = tmp_path / "data.csv"
    with open(path, "w") as f:
        f.write("a,b,c,label,target\n")
        for row, l, t in zip(x, label, target):
            f.write(f"{row[0]},{row[1]},{row[2]},{l},{t}\n")
    # (in the CSV the other target column would be a feature: the .npz is the clean case)
    np.savez(tmp_path / "cls.npz", x=x, y=label)
    assert main(["train", str(tmp_path / "cls.npz"), "--epochs", "10", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "task: classification" in out and float(out.split("accuracy = ")[1].split()[0]) > 0.85
    assert main(["train", str(path), "--target", "target", "--epochs", "20", "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "task: regression" in out and "mae" in out


def test_cli_errors_are_clear(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    assert main(["train", str(path), "--target", "zzz"]) == 2
    err = capsys.readouterr()
    assert "no column 'zzz'" in (err.out + err.err)


def test_console_entry_point_module_runs():
    r = subprocess.run([sys.executable, "-m", "fastnn", "--epochs", "1", "--verbose", "0"],
                       capture_output=True, text=True, timeout=300, **same_fastnn_env())
    assert r.returncode == 0, r.stderr
    import fastnn
    assert "test:" in r.stdout and f"backend={fastnn.backend.backend()}" in r.stdout
