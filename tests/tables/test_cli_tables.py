"""fastnn train / predict / evaluate on table files (issue 13): the new user's CSV with a
string label, missing cells and a city column; one saved file that predicts from raw rows in
a fresh process, bit for bit; clear one-line errors."""
import csv
import subprocess
import sys

import numpy as np
import pytest

import fastnn

from fastnn.__main__ import main
from fastnn.cli import commands
from fastnn.cli.modeling import TabularModel
from fastnn.cli.tables import read_table

from conftest import same_fastnn_env

CITIES = ["Paris", "Lyon", "Nice", "Lille"]


def write_issue_csv(path, n=500, seed=0, label_missing=(), cities=CITIES):
    """The issue's table: a number column, a city column, a few empty cells, a yes/no label
    that depends on both."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["amount", "city", "label"])
        for i in range(n):
            a = rng.normal(50, 20)
            c = cities[rng.integers(len(cities))]
            score = (a - 50) / 20 + (1.5 if c in ("Paris", "Nice") else -1.5) + rng.normal(0, 0.5)
            w.writerow(["" if i % 37 == 0 else f"{a:.2f}", "" if i % 41 == 0 else c,
                        "" if i in label_missing else ("yes" if score > 0 else "no")])
    return path


def run_cli(*args):
    """``python -m fastnn ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "fastnn", *map(str, args)], capture_output=True,
                          text=True, timeout=600, **same_fastnn_env())


def read_csv(path_or_text, text=False):
    lines = path_or_text.splitlines() if text else open(path_or_text, newline="").read().splitlines()
    rows = list(csv.reader(lines))
    return rows[0], rows[1:]


def test_issue_scenario_string_label_missing_cells_and_city_names_train_and_predict(tmp_path, capsys):
    # Before: NumPy divide warnings, every row dropped, "Dense 'dense_2': units must be a
    # positive integer, got 0".
    data = write_issue_csv(tmp_path / "t.csv")
    model = tmp_path / "m.fnn"
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "60",
                 "--save", str(model)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "float" in lines["amount"] and "mean-imputed + missing indicator" in lines["amount"]
    assert "string" in lines["city"] and "categorical" in lines["city"] and " 13 " in lines["city"]
    assert "classification, 2 classes (no, yes)" in lines["label"]
    assert "rows: train 320, validation 80 (early stopping), test 100" in out
    assert float(out.split("accuracy = ")[1].split()[0]) > 0.85
    assert main(["predict", str(model), str(data), "--verbose", "0"]) == 0
    header, rows = read_csv(capsys.readouterr().out, text=True)
    assert header == ["prediction", "prob_no", "prob_yes"] and len(rows) == 500
    assert {r[0] for r in rows} == {"yes", "no"}
    probs = np.array([[float(p) for p in r[1:]] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert [r[0] for r in rows] == [["no", "yes"][i] for i in probs.argmax(axis=1)]


def test_round_trip_fresh_process_predicts_bit_for_bit_from_the_raw_csv(tmp_path):
    data = write_issue_csv(tmp_path / "t.csv")
    table = read_table(data)
    prep = commands.prepare_table(table, "label")
    tm, _ = commands.fit_prepared(prep, epochs=5, verbose=0)
    columns = {n: table.columns[n] for n in tm.feature_names}
    before = tm.predict(columns)
    tm.save(tmp_path / "m.fnn")
    # the same thread count as here: a product's float32 bits may depend on it
    r = run_cli("predict", tmp_path / "m.fnn", data, "-o", tmp_path / "p.csv", "--verbose", "0",
                "--threads", fastnn.get_num_threads())
    assert r.returncode == 0, r.stderr
    header, rows = read_csv(tmp_path / "p.csv")
    after = np.array([[np.float32(p) for p in row[1:]] for row in rows], np.float32)
    assert before.dtype == np.float32 and after.shape == before.shape
    assert after.tobytes() == before.tobytes()  # str(float32) reads back to the same bits
    # and through the Python API in this process: the loaded model, the same bits
    again = TabularModel.load(tmp_path / "m.fnn").predict(columns)
    assert again.tobytes() == before.tobytes()


def test_regression_from_csv_writes_values_and_evaluate_reports_loss_and_mae(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 2))
    kind = rng.integers(0, 3, 300)
    y = 2 * x[:, 0] - x[:, 1] + kind + rng.normal(0, 0.1, 300)
    p = tmp_path / "r.csv"
    with open(p, "w") as f:
        f.write("x0,x1,kind,y\n")
        for a, b, k, t in zip(x[:, 0], x[:, 1], kind, y):
            f.write(f"{a},{b},{k},{t}\n")
    assert main(["train", str(p), "--target", "y", "--verbose", "0", "--save",
                 str(tmp_path / "m.fnn"), "--epochs", "40"]) == 0
    out = capsys.readouterr().out
    assert "task: regression" in out and "label: regression" in out
    assert "kind" in out and "<= 10 integer values" in out
    assert main(["evaluate", str(tmp_path / "m.fnn"), str(p), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "300 rows; loss = " in out and "mae = " in out
    assert float(out.split("mae = ")[1].split()[0]) < 0.5
    assert main(["predict", str(tmp_path / "m.fnn"), str(p), "-o", str(tmp_path / "o.csv"),
                 "--verbose", "0"]) == 0
    header, rows = read_csv(tmp_path / "o.csv")
    assert header == ["prediction"] and len(rows) == 300
    assert np.mean(np.abs(np.array([float(r[0]) for r in rows]) - y)) < 0.5


def test_rows_without_a_label_are_left_out_and_counted(tmp_path, capsys):
    data = write_issue_csv(tmp_path / "t.csv", label_missing={3, 10, 99})
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "2",
                 "--save", str(tmp_path / "m.fnn")]) == 0
    out = capsys.readouterr().out
    assert "note: 3 of 500 rows are left out: their label 'label' is missing" in out
    assert main(["evaluate", str(tmp_path / "m.fnn"), str(data), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "note: 3 of 500 rows are left out" in out and "497 rows; loss = " in out


def test_predict_ignores_extra_columns_maps_unseen_cities_to_oov_and_names_a_missing_column(
        tmp_path, capsys):
    data = write_issue_csv(tmp_path / "t.csv")
    model = tmp_path / "m.fnn"
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "2",
                 "--save", str(model)]) == 0
    capsys.readouterr()
    new = tmp_path / "new.csv"
    new.write_text("extra,city,amount\nx,Tokyo,10\ny,Paris,\nz,,70.5\n")
    assert main(["predict", str(model), str(new), "--verbose", "0"]) == 0
    header, rows = read_csv(capsys.readouterr().out, text=True)
    assert len(rows) == 3 and all(r[0] in ("yes", "no") for r in rows)
    tm = TabularModel.load(model)
    # an unseen city and a missing one are both the city's OOV value
    cols = {"amount": np.array([10.0, 10.0]), "city": np.array(["Tokyo", None], dtype=object)}
    p = tm.predict(cols)
    assert p[0].tobytes() == p[1].tobytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("amount,town\n1,Paris\n")
    assert main(["predict", str(model), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastnn: ") and "no column 'city', which the model needs" in err
    words = tmp_path / "words.csv"
    words.write_text("amount,city\nlots,Paris\n")
    assert main(["predict", str(model), str(words)]) == 2
    assert "column 'amount' must hold numbers" in capsys.readouterr().err


def test_a_categorical_column_that_looks_numeric_at_predict_time_stays_categorical(tmp_path, capsys):
    data = write_issue_csv(tmp_path / "t.csv", cities=["75", "69", "06", "x59"])
    model = tmp_path / "m.fnn"
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "2",
                 "--save", str(model)]) == 0
    capsys.readouterr()
    tm = TabularModel.load(model)
    new = tmp_path / "new.csv"
    new.write_text("amount,city\n10,06\n10,75\n")  # every cell a number here
    assert main(["predict", str(model), str(new), "--verbose", "0"]) == 0
    header, rows = read_csv(capsys.readouterr().out, text=True)
    expected = tm.predict({"amount": np.array([10.0, 10.0]),
                           "city": np.array(["06", "75"], dtype=object)})
    assert np.array([[np.float32(v) for v in r[1:]] for r in rows]).tobytes() == expected.tobytes()


def test_saved_file_holds_class_names_and_columns_and_loads_with_load_model(tmp_path, capsys):
    import fastnn
    data = write_issue_csv(tmp_path / "t.csv")
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "2",
                 "--save", str(tmp_path / "m.fnn")]) == 0
    model = fastnn.load_model(tmp_path / "m.fnn")
    info = model._user_metadata["info"]
    assert info["classes"] == ["no", "yes"] and info["target"] == "label"
    assert [f["name"] for f in info["features"]] == ["amount", "city"]
    # the file keeps the FeatureSpace: the plain loaded model predicts from raw columns
    raw = {"amount": np.array([12.5, np.nan]), "city": np.array(["Nice", "Tokyo"], dtype=object)}
    assert model.predict(raw, verbose=0).tobytes() == \
        TabularModel.load(tmp_path / "m.fnn").predict(raw).tobytes()
    plain = fastnn.Sequential([fastnn.layers.Input(shape=(3,)), fastnn.layers.Dense(2)])
    plain.save(tmp_path / "plain.fnn")
    assert main(["predict", str(tmp_path / "plain.fnn"), str(data)]) == 2
    assert "not one `fastnn train` wrote" in capsys.readouterr().err


@pytest.mark.parametrize("content, args, message", [
    ("amount,city,label\n1,a,yes\n", ["--target", "nope"],
     "no column 'nope' in {p}; columns are ['amount', 'city', 'label']"),
    ("amount,city,label\n", ["--target", "label"], "{p} has a header but no rows"),
    ("", ["--target", "label"], "{p} is empty (no header row)"),
    ("a,label\n" + "".join(f"{i},yes\n" for i in range(30)), ["--target", "label"],
     "has one class ('yes') in all 30 rows"),
    ("a,label\n" + "".join(f"{i},2.5\n" for i in range(30)), ["--target", "label"],
     "has one value (2.5)"),
    ("a,b,label\n" + "".join(f"1,,{i % 2}\n" for i in range(30)), ["--target", "label"],
     "no usable feature column besides the target 'label': a: constant (1); b: empty"),
    ("a,label\n1,2\n", [], "--target COLUMN is required"),
    ("a,label\n1,2\n", ["--target", "label", "--drop", "zz"], "--drop: no column 'zz'"),
])
def test_bad_tables_give_one_line_errors_without_traceback(tmp_path, capsys, content, args, message):
    p = tmp_path / "d.csv"
    p.write_text(content)
    assert main(["train", str(p), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastnn: ") and err.count("\n") == 1
    assert message.format(p=p) in err


def test_unreadable_files_are_one_line_errors_in_a_real_process(tmp_path):
    garbage = tmp_path / "g.csv"
    garbage.write_bytes(b"a,b\n\x00\xff\xfe\xfa,1\n")
    for args, message in ((["train", tmp_path / "missing.csv", "--target", "y"], "No such file"),
                          (["train", garbage, "--target", "b"], "not UTF-8"),
                          (["predict", tmp_path / "missing.fnn", garbage], "no such file"),
                          (["predict", garbage, garbage], "not a fastnn file")):
        r = run_cli(*args)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("fastnn: ") and message in r.stderr
        assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1


def test_existing_options_still_apply_to_tables(tmp_path, capsys):
    data = write_issue_csv(tmp_path / "t.csv", n=200)
    assert main(["train", str(data), "--target", "label", "--verbose", "0", "--epochs", "3",
                 "--hidden", "16", "--optimizer", "sgd", "--learning-rate", "0.05",
                 "--test-fraction", "0", "--validation-fraction", "0", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "rows: train 200, validation 0 (no early stopping), test 0" in out
    assert "trained 3 epochs" in out and "test:" not in out and "not saved" in out


def test_split_is_stratified_and_keeps_every_class_in_training():
    labels = np.array([0] * 90 + [1] * 9 + [2])
    rest, held = commands.split_indices(100, 0.2, 0, labels)
    assert sorted(np.concatenate([rest, held]).tolist()) == list(range(100))
    assert np.bincount(labels[held], minlength=3).tolist() == [18, 2, 0]
    assert set(labels[rest]) == {0, 1, 2}


def test_parquet_trains_and_a_csv_of_the_same_rows_predicts_the_same(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    data = write_issue_csv(tmp_path / "t.csv", n=200)
    frame = pd.read_csv(data, keep_default_na=True)
    frame.to_parquet(tmp_path / "t.parquet")
    model = tmp_path / "m.fnn"
    assert main(["train", str(tmp_path / "t.parquet"), "--target", "label", "--verbose", "0",
                 "--epochs", "2", "--save", str(model)]) == 0
    assert "city    string  5 " in capsys.readouterr().out  # pandas' NaN cells are missing too
    assert main(["predict", str(model), str(tmp_path / "t.parquet"), "--verbose", "0"]) == 0
    from_parquet = capsys.readouterr().out
    assert main(["predict", str(model), str(data), "--verbose", "0"]) == 0
    assert capsys.readouterr().out == from_parquet
