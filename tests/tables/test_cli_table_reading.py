"""Reading tables for the command line (fastnn.cli.tables) and inferring what each column is
(fastnn.cli.inference)."""
import gzip
import sys

import numpy as np
import pytest

from fastnn.cli.inference import infer_columns, infer_label
from fastnn.cli.tables import Table, TableError, read_table, table_from_frame


def write(tmp_path, text, name="t.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_csv_quoted_fields_missing_cells_and_per_column_types(tmp_path):
    p = write(tmp_path, 'n,x,city,code\n1,0.5,"New York, NY",7\n2,,Paris,NA\n'
                        '3,1e3,"say ""hi""\nthere",9\n4,-2,,8\n')
    t = read_table(p)
    assert t.n_rows == 4 and t.names == ["n", "x", "city", "code"]
    np.testing.assert_array_equal(t.columns["x"], [0.5, np.nan, 1000.0, -2.0])
    assert t.columns["city"].tolist() == ["New York, NY", "Paris", 'say "hi"\nthere', None]
    np.testing.assert_array_equal(t.columns["code"], [7, np.nan, 9, 8])
    assert t.integer == {"n", "code"}  # "x" has a fraction and an exponent
    assert t.missing("city").tolist() == [False, False, False, True]


def test_a_number_column_with_one_word_in_it_is_a_string_column(tmp_path):
    t = read_table(write(tmp_path, "a\n1\n2\nthree\n"))
    assert t.columns["a"].tolist() == ["1", "2", "three"]
    # python's float() takes these; a CSV cell holding them is text, not a number
    for cell in ("inf", "1_000", "0x10"):
        assert read_table(write(tmp_path, f"a\n1\n{cell}\n")).columns["a"].dtype == object


def test_forced_string_columns_stay_strings(tmp_path):
    t = read_table(write(tmp_path, "zip,v\n02134,1\n10001,2\n"), strings=["zip"])
    assert t.columns["zip"].tolist() == ["02134", "10001"]
    assert t.columns["v"].dtype == np.float64


def test_byte_order_mark_tsv_gzip_and_blank_trailing_lines(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes("\ufeffa,b\n1,x\n\n".encode("utf-8"))
    t = read_table(p)
    assert t.names == ["a", "b"] and t.n_rows == 1
    p = tmp_path / "t.tsv.gz"
    with gzip.open(p, "wt") as f:
        f.write("a\tb\n1\tx,y\n")
    assert read_table(p).columns["b"].tolist() == ["x,y"]


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("a,b\n1,2\n1,2,3\n", "line 3: 3 fields, the header has 2"),
    ("a,a\n1,2\n", "'a' appears more than once"),
])
def test_bad_csv_files_raise_naming_the_problem(tmp_path, text, message):
    with pytest.raises(TableError, match=message):
        read_table(write(tmp_path, text))


def test_unreadable_files_raise_table_errors(tmp_path):
    with pytest.raises(TableError, match="No such file"):
        read_table(tmp_path / "nope.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"a,b\n\xff\xfe\x00garbage\n")
    with pytest.raises(TableError, match="not UTF-8"):
        read_table(p)
    with pytest.raises(TableError, match="unknown file type"):
        read_table(write(tmp_path, "x", name="t.xyz"))
    with pytest.raises(TableError, match="directory"):
        read_table(tmp_path)


def test_parquet_without_pandas_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    p = tmp_path / "t.parquet"
    p.write_bytes(b"PAR1")
    with pytest.raises(TableError, match=r"fastnn\[tables\]"):
        read_table(p)


def test_pandas_frames_become_float_and_string_columns():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "f": [0.5, np.nan, 2.0],
                          "s": ["a", None, "c"], "b": [True, False, True]})
    t = table_from_frame(frame)
    np.testing.assert_array_equal(t.columns["i"], [1, np.nan, 3])
    assert t.integer == {"i"}
    assert t.columns["s"].tolist() == ["a", None, "c"]
    assert t.columns["b"].tolist() == ["True", "False", "True"]


def test_parquet_is_read_when_pyarrow_is_installed(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    p = tmp_path / "t.parquet"
    pd.DataFrame({"x": [1.5, None], "s": ["a", "b"]}).to_parquet(p)
    t = read_table(p)
    assert t.columns["s"].tolist() == ["a", "b"] and np.isnan(t.columns["x"][1])


def make_table(n=40, **cols):
    strings = {k for k, v in cols.items() if isinstance(v[0], str) or v[0] is None}
    columns = {}
    for k, v in cols.items():
        if k in strings:
            arr = np.empty(n, object)
            arr[:] = v
        else:
            arr = np.asarray(v, np.float64)
        columns[k] = arr
    integer = {k for k, v in columns.items()
               if k not in strings and np.all(np.isnan(v) | (v == np.round(v)))}
    return Table(columns, integer, "t.csv")


def test_column_kinds_are_inferred_and_useless_columns_dropped_with_a_reason():
    n = 40
    rng = np.random.default_rng(0)
    t = make_table(n, row=np.arange(n), big=rng.permutation(n) * 7,
                   x=rng.standard_normal(n), gap=np.where(np.arange(n) % 5, 1.0, np.nan) * np.arange(n) / 3,
                   city=[["Oslo", "Rome", None][i % 3] for i in range(n)], name=[f"n{i}" for i in range(n)],
                   const=np.ones(n), empty=np.full(n, np.nan), year=2000 + np.arange(n) % 3,
                   y=[["yes", "no"][i % 2] for i in range(n)])
    plans = {p.name: p for p in infer_columns(t, "y")}
    assert "y" not in plans
    assert plans["row"].kind == "dropped" and "numbers the rows" in plans["row"].note
    assert plans["big"].kind == "numeric" and "ID-like?" in plans["big"].note
    assert plans["x"].kind == "numeric" and plans["x"].n_missing == 0
    assert plans["gap"].kind == "numeric" and "missing indicator" in plans["gap"].note
    assert plans["city"].kind == "categorical" and plans["city"].n_missing == sum(i % 3 == 2 for i in range(n))
    assert plans["name"].kind == "dropped" and "different string in every row" in plans["name"].note
    assert plans["const"].kind == "dropped" and "constant (1)" in plans["const"].note
    assert plans["empty"].kind == "dropped" and "every cell is missing" in plans["empty"].note
    assert plans["year"].kind == "categorical" and plans["year"].source == "integer"
    assert infer_columns(t, "y", drop=["x"])[2].note == "--drop"


def test_label_kinds_and_class_names():
    n = 40
    t = make_table(n, s=[["yes", "no", None][i % 3] for i in range(n)], i=np.arange(n) % 4,
                   f=np.linspace(0, 1, n), many=np.arange(n))
    lab = infer_label(t, "s")
    assert (lab.task, lab.classes, lab.rows_dropped) == ("classification", ["no", "yes"], 13)
    assert infer_label(t, "i").classes == [0, 1, 2, 3]
    assert infer_label(t, "f").task == "regression"
    assert infer_label(t, "many").task == "regression"  # more integer values than classes
    assert infer_label(t, "many", task="classification").classes == list(range(n))
    with pytest.raises(TableError, match="holds strings"):
        infer_label(t, "s", task="regression")


@pytest.mark.parametrize("values, message", [
    (["yes"] * 39 + [None], r"one class \('yes'\) in all 39 rows"),
    ([None] * 40, "missing in every row"),
    ([2.5] * 40, "one value"),
])
def test_a_label_with_nothing_to_learn_is_refused(values, message):
    t = make_table(40, y=values, x=np.arange(40) * 1.5)
    with pytest.raises(TableError, match=message):
        infer_label(t, "y")


def test_reading_a_large_csv_shows_progress_on_stderr_unless_silenced(tmp_path, monkeypatch, capsys):
    import fastnn.cli.tables as tables
    monkeypatch.setattr(tables, "_PROGRESS_BYTES", 10)  # every file is "large"
    p = write(tmp_path, "a,b\n" + "".join(f"{i},x{i % 3}\n" for i in range(50)))
    assert read_table(p, verbose=1).n_rows == 50
    captured = capsys.readouterr()
    assert captured.out == "" and "percent done" in captured.err and "100/100" in captured.err
    read_table(p, verbose=0)
    assert capsys.readouterr().err == ""
