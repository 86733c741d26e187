"""Regression from the command line, end to end: the built-in sets and CSV files, the task the
data asks for (and --task), metrics checked against values computed here from the predictions
`chainrule predict` prints, and predict/evaluate/info/export and the lens on regression runs."""

import json
import re

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from chainrule import data, runs
from chainrule.cli import main
from hostile import refused, succeeds

QUIET = ["--quiet"]
ONE_NEURON = ["--hidden", "none", "--optimizer", "gd", "--batch-size", "full"]


def train(capsys, out, *options):
    return succeeds(capsys, ["train", "--out", out, *options, *QUIET], seconds=120)


def metrics_of(run):
    return json.loads((run / "metrics.json").read_text())


def write_rows(path, header, rows):
    lines = [",".join(header)] + [",".join(f"{v:.9g}" for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def fitted_line(info: str) -> dict:
    """The coefficients of ``the fitted function: y = a x1 + b x2 - c`` as `chainrule info`
    prints it: {name: coefficient, ..., "": intercept}."""
    equation = re.search(r"the fitted function: \S+ = (.+)", info).group(1).split()
    terms, sign = {}, 1.0
    tokens = ["+", *equation]
    for i in range(0, len(tokens), 3):
        sign = -1.0 if tokens[i] == "-" else 1.0
        name = tokens[i + 2] if i + 2 < len(tokens) else ""
        terms[name] = sign * float(tokens[i + 1])
    return terms


def predicted(output: str) -> np.ndarray:
    """The values `chainrule predict` printed, one a line (``FILE, line N: VALUE``; the indented
    lines under one are notes, such as a warning)."""
    lines = [line for line in output.strip().splitlines() if not line.startswith("  ")]
    return np.array([float(line.rsplit(": ", 1)[1]) for line in lines])


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    """``chainrule train --dataset diabetes`` with the regression defaults."""
    out = tmp_path_factory.mktemp("runs") / "diabetes"
    assert main(["train", "--dataset", "diabetes", "--out", str(out), "--quiet"]) == 0
    return out


def test_diabetes_reaches_r2_045_with_the_defaults(diabetes_run):
    metrics = metrics_of(diabetes_run)
    assert metrics["task"] == "regression" and metrics["test_r2"] >= 0.45
    assert {"test_mse", "test_rmse", "test_mae", "test_loss", "val_r2"} <= set(metrics)
    assert "test_accuracy" not in metrics
    config = json.loads((diabetes_run / "config.json").read_text())
    assert config["task"] == "regression" and config["loss"] == "mse" and config["hidden"] == [128]
    history = (diabetes_run / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    for key in ("loss", "mse", "rmse", "mae", "r2"):
        assert key in header and f"val_{key}" in header
    assert "accuracy" not in header and len(history) == 31
    rows = [dict(zip(header, map(float, line.split(",")))) for line in history[1:]]
    for row in rows:  # RMSE is the root of MSE, in the target's units, epoch by epoch
        assert row["rmse"] == pytest.approx(row["mse"] ** 0.5, rel=1e-4)
        assert row["val_rmse"] == pytest.approx(row["val_mse"] ** 0.5, rel=1e-4)
    assert rows[-1]["r2"] > rows[0]["r2"] and rows[-1]["mse"] < rows[0]["mse"]


def test_the_metrics_agree_with_r2_computed_from_the_printed_predictions(
    diabetes_run, tmp_path, capsys
):
    """The test rows go through `chainrule predict` as a CSV file; R^2, MSE and MAE computed
    here by scikit-learn from the printed values match metrics.json and `chainrule evaluate`."""
    x, y = data.load_diabetes()
    _, (x_test, y_test) = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    rows = write_rows(tmp_path / "test.csv", data.datasets.DIABETES_FEATURES, x_test)
    values = predicted(succeeds(capsys, ["predict", diabetes_run, rows]))
    assert len(values) == len(y_test) == 88
    metrics = metrics_of(diabetes_run)
    assert r2_score(y_test, values) == pytest.approx(metrics["test_r2"], abs=1e-5)
    assert mean_squared_error(y_test, values) == pytest.approx(metrics["test_mse"], rel=1e-5)
    assert mean_absolute_error(y_test, values) == pytest.approx(metrics["test_mae"], rel=1e-5)
    assert metrics["test_rmse"] == pytest.approx(metrics["test_mse"] ** 0.5, rel=1e-9)
    evaluated = succeeds(capsys, ["evaluate", diabetes_run])
    assert f"test R^2 {metrics['test_r2']:.4f}" in evaluated
    assert f"RMSE {metrics['test_rmse']:.4g}" in evaluated
    # one patient as a .npy file: the same value as its CSV row, in the target's units
    np.save(tmp_path / "one.npy", x_test[0])
    one = predicted(succeeds(capsys, ["predict", diabetes_run, tmp_path / "one.npy"]))
    assert one[0] == pytest.approx(values[0], rel=1e-5) and 25 <= one[0] <= 346
    # the target column may be in the file (it is ignored); the columns in any order
    header = ["progression", *reversed(data.datasets.DIABETES_FEATURES)]
    with_target = np.column_stack([y_test, x_test[:, ::-1]])
    again = succeeds(
        capsys, ["predict", diabetes_run, write_rows(tmp_path / "t.csv", header, with_target)]
    )
    np.testing.assert_allclose(predicted(again), values, rtol=1e-6)


def test_a_patient_in_real_units_is_said_to_lie_outside_the_training_data(
    diabetes_run, tmp_path, capsys
):
    """The diabetes features are standardised; a patient given in years, mg/dl and mm Hg (the
    first patient of the original study) is an extrapolation, and predict says so, naming the
    features; the standardised test rows above get no such warning."""
    real_units = [59, 2, 32.1, 101, 157, 93.2, 38, 4, 4.86, 87]
    rows = write_rows(tmp_path / "real.csv", data.datasets.DIABETES_FEATURES, [real_units])
    said = succeeds(capsys, ["predict", diabetes_run, rows]).splitlines()
    assert len(said) == 2 and said[0].startswith(f"{rows}, line 2: ")
    assert said[1].startswith("  warning: far outside the training data (age = 59, trained on -0.")
    assert "extrapolation" in said[1] and "units" in said[1]


def test_far_outside_is_beyond_the_training_range_by_a_standard_deviation():
    from chainrule.runs.inputs import outside_training_range

    seen = {"mean": [0.0, 0.0], "std": [1.0, 1.0], "feature_names": ["a", "b"]}
    ranged = seen | {"feature_range": [[-1.0, -1.0], [1.0, 1.0]]}
    assert outside_training_range(np.array([0.5, 1.9]), ranged) == ""
    assert "(b = 2.5, trained on -1 to 1)" in outside_training_range(np.array([0.5, 2.5]), ranged)
    # runs that did not record their range: more than 6 standard deviations from the mean
    assert outside_training_range(np.array([0.5, 5.0]), seen) == ""
    assert "b = 10, +10 sd from the mean" in outside_training_range(np.array([0.5, 10.0]), seen)
    broken = seen | {"feature_range": "not two rows"}
    assert "+10 sd" in outside_training_range(np.array([0.5, 10.0]), broken)


def test_info_shows_the_task_and_explain_forward_the_value(diabetes_run, tmp_path, capsys):
    info = succeeds(capsys, ["info", diabetes_run])
    assert "task: regression of progression" in info and "Linear(128 -> 1)" in info
    out = succeeds(capsys, ["explain", "forward", diabetes_run, "--out", tmp_path / "f.png"])
    value = float(re.search(r"prediction: (\S+) =", out).group(1))
    x, y = data.load_diabetes()
    _, (x_test, _) = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    np.save(tmp_path / "first.npy", x_test[0])
    printed = predicted(succeeds(capsys, ["predict", diabetes_run, tmp_path / "first.npy"]))
    assert value == pytest.approx(printed[0], rel=1e-5)


def test_the_lens_on_a_regression_run(diabetes_run, tmp_path, capsys):
    succeeds(capsys, ["plot", "curves", diabetes_run, "--out", tmp_path / "curves.png"])
    succeeds(capsys, ["plot", "weights", diabetes_run, "--out", tmp_path / "weights.png"])
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "weights-histograms.png").exists()
    refused(capsys, ["plot", "confusion", diabetes_run], "is a regression", "chainrule evaluate")
    assert not (tmp_path / "confusion.png").exists()


def test_line_recovers_a_and_b_within_the_noise(tmp_path, capsys):
    """One neuron trained by gradient descent on all points (y = 2 x + 1 + noise of 0.5): the
    fitted line `chainrule info` prints is the least-squares line, whose a and b are within
    three standard errors of the truth."""
    out = tmp_path / "line"
    train(capsys, out, "--dataset", "line", *ONE_NEURON)
    line = fitted_line(succeeds(capsys, ["info", out]))
    a, b = line["x"], line[""]
    x, y = data.line(n=1000, seed=0)
    (x_train, y_train), _ = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    (x_fit, y_fit), _ = data.train_val_split(x_train, y_train, val_fraction=0.1, seed=0)
    design = np.hstack([x_fit, np.ones_like(x_fit)]).astype(np.float64)
    (a_ls, b_ls), *_ = np.linalg.lstsq(design, y_fit.astype(np.float64), rcond=None)
    assert a == pytest.approx(a_ls, abs=1e-3) and b == pytest.approx(b_ls, abs=3e-3)
    spread = x_fit[:, 0].std() * np.sqrt(len(x_fit))
    se_a = 0.5 / spread
    se_b = 0.5 * np.sqrt(1 / len(x_fit) + x_fit.mean() ** 2 / spread**2)
    assert abs(a - 2.0) < 3 * se_a and abs(b - 1.0) < 3 * se_b
    assert metrics_of(out)["test_rmse"] == pytest.approx(0.5, rel=0.15)  # the noise, no more

    # the default network (one hidden layer of 128) draws the same line through the points
    mlp = tmp_path / "mlp"
    train(capsys, mlp, "--dataset", "line")
    points = write_rows(tmp_path / "x.csv", ["x"], [[0.5], [1.5], [2.5], [3.5]])
    values = predicted(succeeds(capsys, ["predict", mlp, points]))
    np.testing.assert_allclose(values, 2 * np.array([0.5, 1.5, 2.5, 3.5]) + 1, atol=0.15)


def test_plane_one_neuron_finds_its_coefficients(tmp_path, capsys):
    out = tmp_path / "plane"
    train(capsys, out, "--dataset", "plane", *ONE_NEURON)
    plane = fitted_line(succeeds(capsys, ["info", out]))  # y = (x1 + x2) / 2 + noise
    assert plane["x1"] == pytest.approx(0.5, abs=0.01) and plane["x2"] == pytest.approx(
        0.5, abs=0.01
    )
    assert plane[""] == pytest.approx(0.0, abs=0.01)
    assert metrics_of(out)["test_r2"] > 0.98


def test_a_csv_with_a_real_target_is_a_regression(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rooms, area = rng.integers(1, 8, 300), rng.uniform(30, 200, 300)
    price = 50 + 1.5 * area + 10 * rooms + rng.normal(0, 5, 300)
    path = write_rows(tmp_path / "houses.csv", ["rooms", "area", "price"], zip(rooms, area, price))
    out = tmp_path / "houses"
    said = train(capsys, out, "--data", path, "--target", "price", *ONE_NEURON)
    assert "test R^2" in said
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "csv" and config["data"] == str(path.resolve())
    info = succeeds(capsys, ["info", out])
    assert "regression of price" in info
    fitted = fitted_line(info)
    np.testing.assert_allclose(
        [fitted["rooms"], fitted["area"], fitted[""]], [10, 1.5, 50], rtol=0.05
    )
    # predict takes the same file (its target column ignored); evaluate works from elsewhere
    values = predicted(succeeds(capsys, ["predict", out, path]))
    assert r2_score(price, values) > 0.99
    assert "test R^2" in succeeds(capsys, ["evaluate", out])
    # --target rooms: whole numbers with few values are classes; --task regression overrides
    classes = tmp_path / "rooms"
    assert "test accuracy" in train(capsys, classes, "--data", path, "--target", "rooms")
    assert "classification into 7 classes: 1, 2, 3" in succeeds(capsys, ["info", classes])
    numbers = tmp_path / "rooms-numbers"
    train(capsys, numbers, "--data", path, "--target", "rooms", "--task", "regression")
    assert metrics_of(numbers)["task"] == "regression"


def test_a_csv_with_class_names_is_a_classification(tmp_path, capsys):
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    lines = ["species," + ",".join(names)]
    lines += [
        f"{iris.target_names[t]}," + ",".join(map(str, row))
        for row, t in zip(iris.data, iris.target)
    ]
    path = tmp_path / "iris.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "iris"
    train(capsys, out, "--data", path, "--target", "species", "--epochs", "60")
    metrics = metrics_of(out)
    # 30 test flowers, one is 3.3 points: seeds 0, 1, 2 give 86.7%, 90% and 93.3%
    assert metrics["task"] == "classification" and metrics["test_accuracy"] >= 0.85
    said = succeeds(capsys, ["predict", out, path])
    first = said.splitlines()[0]
    assert first.startswith(f"{path}, line 2: setosa") and "versicolor: " in first
    succeeds(capsys, ["plot", "confusion", out, "--out", tmp_path / "c.png"])
    refused(
        capsys,
        [
            "train",
            "--out",
            tmp_path / "r",
            "--data",
            path,
            "--target",
            "species",
            "--task",
            "regression",
        ],
        "line 2",
        "column 'species'",
        "not a number",
    )


BAD_CSVS = {
    "missing target column": ("x,y\n1,2\n", ["--target", "price"], ["no column 'price'"]),
    "a word among numbers": ("x,y\n1,2\n3,abc\n", [], ["line 3", "column 'y'", "abc"]),
    "a row too short": ("x,y\n1,2\n3\n", [], ["line 3", "1 cells"]),
    "an empty cell": ("x,y\n1,2\n,4\n", [], ["line 3", "column 'x'", "empty cell"]),
    "no data rows": ("x,y\n", [], ["no data rows"]),
    "a number as a column name": ("x,7\n1,2\n", [], ["line 1", "the number 7"]),
    "real numbers as classes": (
        "x,y\n1,2.5\n2,3\n",
        ["--task", "classification"],
        ["line 2", "not a whole number"],
    ),
    "a class number as --target": (
        "x,y\n1,2\n2,3\n",
        ["--target", "1"],
        ["names the target column"],
    ),
}


@pytest.mark.parametrize("case", BAD_CSVS, ids=[f"csv: {c}" for c in BAD_CSVS])
def test_a_bad_csv_is_refused_in_one_line_and_nothing_is_written(case, tmp_path, capsys):
    text, options, fragments = BAD_CSVS[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    out = tmp_path / "out"
    refused(capsys, ["train", "--out", out, "--data", path, *options, *QUIET], *fragments)
    assert not out.exists()


def test_csv_files_that_are_not_files_are_refused(tmp_path, capsys):
    from hostile import dev_zero, fifo

    out = tmp_path / "out"
    refused(capsys, ["train", "--out", out, "--data", tmp_path / "none.csv"], "no such file")
    refused(capsys, ["train", "--out", out, "--data", fifo(tmp_path / "f.csv")], "not a regular")
    refused(
        capsys, ["train", "--out", out, "--data", dev_zero(tmp_path / "z.csv")], "not a regular"
    )
    # a folder is a folder of pictures, one subfolder per class: this one has none
    refused(
        capsys, ["train", "--out", out, "--data", tmp_path], "one subfolder of images per class"
    )
    assert not out.exists()


def test_settings_that_do_not_go_together_are_refused(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("x,y\n1,2.5\n2,3.5\n3,4.5\n4,5.5\n5,6.5\n")
    out = tmp_path / "out"
    cases = {
        ("--data", path, "--dataset", "mnist"): ["choose one"],
        ("--dataset", "diabetes", "--loss", "cross-entropy"): ["cross-entropy is for classes"],
        ("--dataset", "digits", "--loss", "huber"): ["huber is for regression"],
        ("--dataset", "digits", "--loss", "l1"): ["l1 is for regression"],
        ("--dataset", "diabetes", "--target", "3"): ["--target 3", "diabetes is a regression"],
        ("--dataset", "diabetes", "--task", "classification"): ["not class labels", "214"],
        ("--target", "price"): ["a column name needs --data"],
        ("--target", "-1"): ["--target must be"],
        ("--data", path, "--target", "y", "--loss", "cross-entropy"): ["is for classes"],
    }
    for options, fragments in cases.items():
        refused(capsys, ["train", "--out", out, *options, *QUIET], *fragments)
    assert not out.exists()


TOML_SETTINGS = {
    "task a number": ("task = 5", "task must be classification, regression or text"),
    "task unknown": ('task = "clustering"', "unknown task 'clustering'"),
    "data true": ("data = true", "data must be a CSV file"),
    "target a fraction": ("target = 1.5", "target must be a class number"),
    "target empty": ('target = ""', "target must be"),
    "loss unknown": ('loss = "hinge"', "unknown loss 'hinge'"),
    "hidden none as a word": ('hidden = "nothing"', "hidden must be"),
    "data and a data set": ('data = "x.csv"\ndataset = "digits"', "choose one"),
}


@pytest.mark.parametrize("case", TOML_SETTINGS, ids=[f"toml: {c}" for c in TOML_SETTINGS])
def test_a_bad_regression_setting_in_a_toml_file_is_refused(case, tmp_path, capsys):
    text, fragment = TOML_SETTINGS[case]
    (tmp_path / "run.toml").write_text(text + "\n")
    out = tmp_path / "out"
    refused(capsys, ["train", "--config", tmp_path / "run.toml", "--out", out], fragment)
    assert not out.exists()


def test_resuming_a_regression_equals_a_longer_run(tmp_path, capsys):
    """The regression sums in the checkpoint carry over: two epochs and a resume to three end
    where three epochs end, history included."""
    options = ["--dataset", "diabetes", "--hidden", "16", "--checkpoint-every", "3"]
    short, long = tmp_path / "short", tmp_path / "long"
    train(capsys, short, *options, "--epochs", "2")
    succeeds(capsys, ["train", "--out", short, "--resume", "--epochs", "3", *QUIET])
    train(capsys, long, *options, "--epochs", "3")
    assert without_seconds(short) == without_seconds(long)
    for name in ("test_r2", "test_mse", "val_r2"):
        assert metrics_of(short)[name] == metrics_of(long)[name]
    a, b = runs.load_run(short)[0], runs.load_run(long)[0]
    for p, q in zip(a.state_dict().values(), b.state_dict().values()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def without_seconds(run) -> list:
    lines = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
    keep = [k for k, name in enumerate(lines[0]) if name != "seconds"]
    return [[cells[k] for k in keep] for cells in lines]


def test_a_changed_csv_is_refused_by_resume_and_evaluate(tmp_path, capsys):
    path = tmp_path / "t.csv"
    rows = [[i, 2.0 * i + 1 + 0.1 * (i % 3)] for i in range(40)]
    write_rows(path, ["x", "y"], rows)
    out = tmp_path / "run"
    train(capsys, out, "--data", path, "--epochs", "2")
    write_rows(path, ["x", "y"], rows[:-1])
    refused(capsys, ["evaluate", out], "t.csv has changed")
    refused(capsys, ["train", "--out", out, "--resume", "--epochs", "3", *QUIET], "has changed")
    write_rows(path, ["x", "y"], rows)
    assert "test R^2" in succeeds(capsys, ["evaluate", out])


def scaled_model(run, **changes):
    """Rewrite a run's model file (a valid one) with changed preprocessing."""
    import chainrule as cr

    model, _, metadata = runs.load_run(run)
    metadata["preprocessing"].update(changes)
    cr.save(model, run / "model", metadata=metadata)


@pytest.mark.parametrize(
    "changes",
    [
        {"target_std": 0.0},
        {"target_std": -2.0},
        {"target_mean": None},
        {"target_std": "1"},
        {"task": "clustering"},
        {"feature_names": ["a"]},
        {"feature_names": "age"},
    ],
    ids=lambda c: f"model-files: regression {c}",
)
def test_a_model_that_cannot_undo_its_target_scaling_is_refused(
    changes, diabetes_run, tmp_path, capsys
):
    import shutil

    run = shutil.copytree(diabetes_run, tmp_path / "run")
    scaled_model(run, **changes)
    np.save(tmp_path / "one.npy", np.zeros(10, np.float32))
    for argv in (["evaluate", run], ["info", run], ["predict", run, tmp_path / "one.npy"]):
        refused(capsys, argv, "model.safetensors", "preprocessing")


def test_a_nan_target_scale_is_refused_by_every_reader(diabetes_run, tmp_path, capsys):
    """NaN or Infinity is not JSON: a model file whose header holds one is refused as such."""
    import shutil

    for value in (float("nan"), float("inf")):
        run = shutil.copytree(diabetes_run, tmp_path / f"run-{value}")
        scaled_model(run, target_std=value)
        np.save(tmp_path / "one.npy", np.zeros(10, np.float32))
        for argv in (["evaluate", run], ["info", run], ["predict", run, tmp_path / "one.npy"]):
            refused(capsys, argv, "model.safetensors", "not a JSON number")


def test_predict_refuses_rows_it_cannot_use(diabetes_run, tmp_path, capsys):
    header = ",".join(data.datasets.DIABETES_FEATURES)
    cases = {
        "age,sex\n1,2\n": "no column bmi",
        header + ",colour\n" + "0," * 10 + "red\n": "column colour is not one of them",
        header + "\n" + "0," * 9 + "x\n": "line 2, column 's6'",
        header + "\n" + "0," * 9 + "1e39\n": "too large",
        header + "\n": "no data rows",
    }
    for text, fragment in cases.items():
        (tmp_path / "rows.csv").write_text(text)
        refused(capsys, ["predict", diabetes_run, tmp_path / "rows.csv"], fragment)
    refused(capsys, ["predict", diabetes_run, tmp_path / "none.csv"], "none.csv")


def test_a_model_trained_on_images_takes_no_csv_rows(small_run, tmp_path, capsys):
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    refused(capsys, ["predict", small_run, tmp_path / "rows.csv"], "no column names")
    assert "task: classification" in succeeds(capsys, ["info", small_run])


def test_california_through_the_cli_from_a_local_archive_and_offline(tmp_path, capsys, monkeypatch):
    """No network here: the path runs on a small archive laid out as the real one; the real
    data's R^2 (the issue asks for 0.80) is not measured by the tests."""
    from chainrule.data import datasets as ds
    from test_regression_data import fake_archive

    rng = np.random.default_rng(0)
    n = 200
    households = rng.uniform(100, 1000, n)
    rows = np.column_stack(
        [
            rng.uniform(-124, -114, n),
            rng.uniform(32, 42, n),
            rng.uniform(1, 52, n),
            households * rng.uniform(3, 7, n),
            households * rng.uniform(0.8, 1.2, n),
            households * rng.uniform(2, 4, n),
            households,
            rng.uniform(0.5, 15, n),
            np.zeros(n),
        ]
    )
    rows[:, 8] = 40_000 * rows[:, 7] + rng.normal(0, 20_000, n)  # value grows with income
    fake_archive(tmp_path / "cache" / "california", rows=rows.tolist())
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))
    out = tmp_path / "cal"
    train(capsys, out, "--dataset", "california", "--epochs", "20")
    metrics = metrics_of(out)
    assert metrics["task"] == "regression" and metrics["test_r2"] > 0.8
    assert "MedHouseVal" in succeeds(capsys, ["info", out])

    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "empty"))
    refused(capsys, ["train", "--out", tmp_path / "x", "--dataset", "california"], "--download")
    monkeypatch.setitem(ds.CALIFORNIA, "mirrors", ["http://127.0.0.1:9/files/5976036#"])
    refused(
        capsys,
        ["train", "--out", tmp_path / "x", "--dataset", "california", "--download"],
        "could not download",
    )
    assert not (tmp_path / "x").exists()


def test_an_exported_regression_predicts_the_value_in_the_targets_units(
    diabetes_run, tmp_path, capsys
):
    """`chainrule export` of a regression: onnxruntime's 'prediction' on raw rows is what
    `chainrule predict` prints; 'output' is the network's (standardised) output, which
    cr.onnx.load reads back as the network."""
    ort = pytest.importorskip("onnxruntime")
    import chainrule as cr

    said = succeeds(capsys, ["export", diabetes_run, "--out", tmp_path / "net.onnx"])
    assert "'output' and 'prediction'" in said
    x, y = data.load_diabetes()
    _, (x_test, _) = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    session = ort.InferenceSession(str(tmp_path / "net.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output", "prediction"]
    output, prediction = session.run(None, {"input": x_test[:20]})
    rows = write_rows(tmp_path / "rows.csv", data.datasets.DIABETES_FEATURES, x_test[:20])
    printed = predicted(succeeds(capsys, ["predict", diabetes_run, rows]))
    np.testing.assert_allclose(prediction[:, 0], printed, rtol=1e-5)
    model, _, metadata = runs.load_run(diabetes_run)
    preprocessing = metadata["preprocessing"]
    standardised = (printed - preprocessing["target_mean"]) / preprocessing["target_std"]
    np.testing.assert_allclose(output[:, 0], standardised, rtol=1e-4, atol=1e-5)
    loaded = cr.onnx.load(tmp_path / "net.onnx")
    inputs = cr.data.Standardizer.from_dict(preprocessing)(x_test[:20])
    np.testing.assert_allclose(cr.train.predict(loaded, inputs), output, rtol=1e-5, atol=1e-6)


def test_reading_a_regression_run_changes_nothing(diabetes_run, tmp_path, capsys):
    import shutil

    run = shutil.copytree(diabetes_run, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    x, _ = data.load_diabetes()
    rows = write_rows(tmp_path / "rows.csv", data.datasets.DIABETES_FEATURES, x[:3])
    for argv in (["evaluate", run], ["info", run], ["predict", run, rows]):
        succeeds(capsys, argv)
    succeeds(capsys, ["explain", "forward", run, "--out", tmp_path / "f.png"])
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_the_command_as_a_subprocess(tmp_path):
    """`python -m chainrule` in a fresh process: train a regression on a CSV file, predict."""
    import subprocess
    import sys

    path = write_rows(tmp_path / "t.csv", ["x", "y"], [[i, 3.0 * i - 2] for i in range(50)])
    out = tmp_path / "run"

    def chainrule(*argv):
        done = subprocess.run(
            [sys.executable, "-m", "chainrule", *map(str, argv)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    said = chainrule("train", "--data", path, "--out", out, *ONE_NEURON, "--epochs", "50")
    assert "test R^2 1.0000" in said
    assert fitted_line(chainrule("info", out)) == pytest.approx({"x": 3.0, "": -2.0}, abs=1e-3)
    rows = write_rows(tmp_path / "new.csv", ["x"], [[100.0]])
    said = chainrule("predict", out, rows)  # a line extrapolates, and predict says it does
    assert predicted(said)[0] == pytest.approx(298.0, rel=1e-4)
    assert "warning: far outside the training data (x = 100, trained on " in said
