"""Your own data from a CSV file: numbers in, features and target out, and every problem named by
file, line and column."""

import numpy as np
import pytest

from chainrule import data
from chainrule.data import csv as csv_data


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_numbers_with_a_real_target_are_regression(tmp_path):
    path = write(tmp_path, "size, rooms ,price\n50,2,150.5\n\n80,3,210.0\n120 , 4, 330.25\n")
    table = data.read_csv(path, target="price")
    assert table.task == "regression" and table.classes == []
    assert table.feature_names == ["size", "rooms"] and table.target_name == "price"
    np.testing.assert_array_equal(table.features, [[50, 2], [80, 3], [120, 4]])
    np.testing.assert_allclose(table.target, [150.5, 210.0, 330.25])
    assert table.features.dtype == np.float32 and table.target.dtype == np.float32
    by_default = data.read_csv(path)  # the last column
    np.testing.assert_array_equal(by_default.target, table.target)
    middle = data.read_csv(path, target="rooms")
    assert middle.feature_names == ["size", "price"]
    np.testing.assert_allclose(middle.features[:, 1], [150.5, 210.0, 330.25])


def test_integer_labels_are_classes_and_class_names_too(tmp_path):
    rows = "".join(f"{i * 0.1:.1f},{i % 3 + 1}\n" for i in range(12))
    table = data.read_csv(write(tmp_path, "x,label\n" + rows))
    assert table.task == "classification" and table.classes == [1, 2, 3]
    assert table.target.dtype == np.int64
    np.testing.assert_array_equal(table.target, np.arange(12) % 3)
    forced = data.read_csv(write(tmp_path, "x,label\n" + rows), task="regression")
    assert forced.task == "regression" and forced.target[1] == 2.0

    names = data.read_csv(write(tmp_path, "petal,kind\n1.4,setosa\n4.7,versicolor\n1.3,setosa\n"))
    assert names.task == "classification" and names.classes == ["setosa", "versicolor"]
    np.testing.assert_array_equal(names.target, [0, 1, 0])

    many = "".join(f"{i},{i * 1000}\n" for i in range(300))  # whole numbers, 300 of them: values
    assert data.read_csv(write(tmp_path, "x,y\n" + many)).task == "regression"


def test_guess_task():
    assert data.guess_task([0, 1, 1, 0, 2]) == "classification"
    assert data.guess_task([0.5, 1.0, 2.0]) == "regression"
    assert data.guess_task([3, 7, 11]) == "regression"  # all different: a count, not classes
    assert data.guess_task(np.arange(1000) % 500) == "regression"  # too many to be classes


@pytest.mark.parametrize(
    "text, target, message",
    [
        ("a,b\n1,2\n3\n", None, r"data.csv, line 3: 1 cells, but the header has 2 columns"),
        ("a,b\n1,2\n3,x7\n", None, r"data.csv, line 3, column 'b': 'x7' is not a number"),
        ("a,b\n1,2\n,4\n", None, r"data.csv, line 3, column 'a': empty cell"),
        ("a,b\n1,2\nnan,4\n", None, r"line 3, column 'a': nan is not finite"),
        ("a,b\n1,2\n1e300,4\n", None, r"line 3, column 'a': 1e300 is too large for float32"),
        ("a,b\n1,2\n", "price", r"data.csv: no column 'price' \(the columns are a, b\)"),
        ("a,a\n1,2\n", None, r"line 1: duplicate column names: a"),
        ("1,2\n3,4\n", None, r"line 1: the first row should name the columns"),
        ("a,,c\n1,2,3\n", None, r"line 1: column 2 of the header has no name"),
        ("", None, r"empty file"),
        ("a,b\n\n", None, r"a header row but no data rows"),
        ("b\n1\n2\n", None, r"no feature columns"),
        ('a,b\n1,"2\n', None, r"line 2: unexpected end of data"),
        ('a,b\n1,"2"x\n', None, r"line 2: ',' expected after '\"'"),
        ("a,b\n1,2\n3,1.5\n4,n/a\n", None, r"line 4, column 'b': 'n/a' is not a number"),
    ],
)
def test_bad_files_name_the_file_line_and_column(tmp_path, text, target, message):
    path = write(tmp_path, text)
    with pytest.raises(data.CSVError, match=message) as error:
        data.read_csv(path, target=target)
    assert "\n" not in str(error.value)


def test_a_whole_number_class_label_is_required_for_classification(tmp_path):
    path = write(tmp_path, "x,y\n1,0\n2,1\n3,0.5\n")
    with pytest.raises(data.CSVError, match="line 4, column 'y': 0.5 is not a whole number"):
        data.read_csv(path, task="classification")
    with pytest.raises(ValueError, match="task must be"):
        data.read_csv(path, task="clustering")


def test_hostile_files_are_refused_before_they_fill_memory(tmp_path):
    path = write(tmp_path, "a,b\n" + "1,2\n" * 1000)
    with pytest.raises(data.CSVError, match="larger than the limit of 100"):
        data.read_csv(path, max_bytes=100)
    wide = write(tmp_path, ",".join(f"c{i}" for i in range(50)) + "\n", name="wide.csv")
    with pytest.raises(data.CSVError, match="line 1: more than the limit of 10 columns"):
        data.read_csv(wide, max_columns=10)
    huge_cell = write(tmp_path, "a,b\n1," + "9" * 200_000 + "\n", name="cell.csv")
    with pytest.raises(data.CSVError, match="cell.csv, line 2: field larger than field limit"):
        data.read_csv(huge_cell)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n1,\xff\xfe\n")
    with pytest.raises(data.CSVError, match="binary.csv: not UTF-8 text"):
        data.read_csv(binary)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"a,b\n1\x00,2\n")
    with pytest.raises(data.CSVError, match="nul.csv, line 2, column 'a': '1\x00' is not a"):
        data.read_csv(nul)
    names = "".join(f"{i},word{i}\n" for i in range(csv_data.MAX_CLASSES + 1))
    with pytest.raises(data.CSVError, match="101 different words; a class column has at most"):
        data.read_csv(write(tmp_path, "x,name\n" + names))
    with pytest.raises(FileNotFoundError, match="missing.csv: no such file"):
        data.read_csv(tmp_path / "missing.csv")


def test_the_cap_also_holds_while_reading(tmp_path, monkeypatch):
    """A file that grows after its size was checked (or lies about it) is still cut off."""
    path = write(tmp_path, "a,b\n" + "1,2\n" * 1000)
    monkeypatch.setattr(csv_data, "_size_of", lambda path: 10)
    with pytest.raises(data.CSVError, match="more than the limit of 100 characters"):
        data.read_csv(path, max_bytes=100)


def test_a_byte_order_mark_and_windows_line_ends_are_fine(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffx,y\r\n1,2.5\r\n2,3.5\r\n".encode())
    table = data.read_csv(path)
    assert table.feature_names == ["x"] and table.target.tolist() == [2.5, 3.5]


# -- targets that cannot be learned, names that cannot be written back, wide headers --------------


@pytest.mark.parametrize("first", ["nan", "inf", "-Infinity", "1e400"])
def test_a_numeric_target_starting_with_nan_or_inf_is_refused_not_read_as_names(tmp_path, first):
    rows = "".join(f"{i},{i * 0.37:.2f}\n" for i in range(20))
    with pytest.raises(data.CSVError, match=f"line 2, column 'y': {first} is not finite|too large"):
        data.read_csv(write(tmp_path, f"x,y\n1,{first}\n" + rows))
    with pytest.raises(data.CSVError, match="line 2, column 'y': nan is not finite"):
        data.read_csv(write(tmp_path, "x,y\n" + "".join(f"{i},nan\n" for i in range(20))))


@pytest.mark.parametrize(
    "target, task, message",
    [
        ("5", None, "every target is the same class (5)"),
        ("yes", None, "every target is the same class (yes)"),
        ("5", "classification", "every target is the same class (5)"),
        ("2.5", None, "every training target is 2.5; there is nothing to learn"),
        ("5", "regression", "every training target is 5; there is nothing to learn"),
    ],
)
def test_a_constant_target_is_refused_before_training(tmp_path, capsys, target, task, message):
    from hostile import refused

    path = write(tmp_path, "x,y\n" + "".join(f"{i},{target}\n" for i in range(40)))
    out = tmp_path / "run"
    argv = ["train", "--data", path, "--out", out, "--quiet", "--epochs", "1"]
    refused(capsys, argv + (["--task", task] if task else []), message, seconds=20)
    assert not out.exists()


def test_names_a_model_file_could_not_hold_are_refused_when_read(tmp_path):
    long = "a" * 300
    rows = "".join(f"{i},{i % 2}\n" for i in range(10))
    with pytest.raises(data.CSVError, match="line 1: the name of column 1 .* 300 characters"):
        data.read_csv(write(tmp_path, f"{long},y\n" + rows))
    classes = "".join(f"{i},{long if i % 2 else 'short'}\n" for i in range(10))
    with pytest.raises(data.CSVError, match="line 3, column 'y': the class name .* 300 char"):
        data.read_csv(write(tmp_path, "x,y\n" + classes))
    limit = "b" * csv_data.MAX_NAME  # the longest name allowed is read, and trains (below)
    assert data.read_csv(write(tmp_path, f"{limit},y\n" + rows)).feature_names == [limit]


def test_what_train_writes_predict_can_read_back(tmp_path, capsys):
    """The longest names the reader takes make a run that loads; and the writer refuses the
    preprocessing the loader would refuse, before anything is written."""
    from chainrule import nn
    from chainrule.runs import RunError, folder, load_run
    from hostile import succeeds

    name, label = "c" * csv_data.MAX_NAME, "d" * csv_data.MAX_NAME
    rows = "".join(f"{i},{label if i % 2 else 'short'}\n" for i in range(40))
    out = tmp_path / "run"
    argv = ["train", "--data", write(tmp_path, f"{name},y\n" + rows), "--out", out, "--quiet"]
    succeeds(capsys, argv + ["--epochs", "1", "--hidden", "4"])
    _, _, metadata = load_run(out)
    assert metadata["preprocessing"]["feature_names"] == [name]
    assert label in metadata["preprocessing"]["classes"]

    too_long = dict(metadata["preprocessing"], feature_names=[name + "c"])
    with pytest.raises(RunError, match="model.safetensors: preprocessing feature_names holds"):
        folder.write_model(
            tmp_path / "other", nn.Sequential(nn.Linear(1, 2)), {"preprocessing": too_long}
        )
    assert not (tmp_path / "other").exists()


def test_a_header_of_millions_of_columns_is_refused_before_it_is_split(tmp_path):
    """The width is counted on the raw line: a list of 3 x 10^6 cells is never built (178 MiB
    traced before the fix, 17 MiB after; the line itself is 9 MB)."""
    import tracemalloc

    path = write(tmp_path, ",".join(["ab"] * 3_000_000) + "\n1\n")  # strings of 2: not shared
    tracemalloc.start()
    try:
        with pytest.raises(data.CSVError, match="line 1: more than the limit of 4096 columns"):
            data.read_csv(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 << 20, f"peak {peak / 2**20:.0f} MiB"
    quoted = write(tmp_path, 'a,b\n"' + "," * 5000 + '",1\n', name="quoted.csv")
    with pytest.raises(data.CSVError, match="line 2, column 'a'"):  # commas inside quotes: a cell
        data.read_csv(quoted)
    multiline = write(tmp_path, 'a,b\n"x\n' + "," * 5000 + '\ny",1\n', name="multiline.csv")
    with pytest.raises(data.CSVError, match=r"line 4, column 'a': 'x\\n,,,"):  # one line
        data.read_csv(multiline)


def test_a_missing_target_among_many_columns_names_a_few_close_ones(tmp_path):
    header = ",".join(f"col{i}" for i in range(4000))
    path = write(tmp_path, header + "\n" + ",".join(["1"] * 4000) + "\n")
    with pytest.raises(data.CSVError) as error:
        data.read_csv(path, target="col39999")
    message = str(error.value)
    assert "no column 'col39999' (4,000 columns, closest: col3999" in message
    assert len(message) < 200 + len(str(path))
    with pytest.raises(data.CSVError, match="none has a close name"):
        data.read_csv(path, target="zzz")
    with pytest.raises(data.CSVError) as error:
        data.read_features(path, ["other"] + [f"col{i}" for i in range(4000)])
    assert "(4,001 in all)" in str(error.value) and len(str(error.value)) < 600
