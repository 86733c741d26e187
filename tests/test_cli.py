"""The chainrule command: the default run, its files, evaluate/predict/info, errors, resume."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """``chainrule train`` with no options (but a known --out): the small MLP on the digits."""
    out = tmp_path_factory.mktemp("runs") / "default"
    assert main(["train", "--out", str(out), "--quiet"]) == 0
    return out


def test_the_default_run_reaches_96_percent_on_digits(default_run):
    """96.9% at seed 0 (98.3% with label smoothing 0.1, no longer the default)."""
    metrics = json.loads((default_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.96
    assert {"test_accuracy", "test_loss", "epochs", "train_seconds"} <= set(metrics)
    assert metrics["epochs"] == 30 and metrics["dataset"] == "digits"
    for name in (
        "model.safetensors",
        "model.json",
        "history.csv",
        "config.json",
        "checkpoint.safetensors",
    ):
        assert (default_run / name).exists(), name
    history = (default_run / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,accuracy") and len(history) == 31
    # no label smoothing by default: the training loss falls toward 0 (with 0.1, it levels off
    # near 0.5 at 100% training accuracy)
    assert float(history[-1].split(",")[1]) < 0.05


def test_ctrl_c_says_how_to_continue(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cr.runs.training, "fit", interrupted)
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err == f"chainrule: interrupted; continue with: chainrule train --out {out} --resume\n"


def test_evaluate_info_and_predict(default_run, tmp_path, capsys):
    assert main(["evaluate", str(default_run)]) == 0
    accuracy = json.loads((default_run / "metrics.json").read_text())["test_accuracy"]
    assert f"test accuracy {accuracy:.4f}" in capsys.readouterr().out
    assert main(["info", str(default_run)]) == 0
    out = capsys.readouterr().out
    assert "Linear(64 -> 256)" in out and "50,826" in out and "test_accuracy" in out
    assert "with adam (lr 0.001), batch 32, 30 epochs" in out
    assert f"  test_accuracy: {accuracy:.4g}\n" in out and "  parameters: 50826\n" in out
    config = json.loads((default_run / "config.json").read_text())  # the values used
    assert config["lr"] == 0.001 and config["batch_size"] == 32 and config["label_smoothing"] == 0

    images, labels = cr.data.load_digits()
    np.save(tmp_path / "digit.npy", images[0])
    from PIL import Image

    Image.fromarray((images[1] / 16 * 255).astype(np.uint8)).save(tmp_path / "digit.png")
    assert (
        main(
            ["predict", str(default_run), str(tmp_path / "digit.npy"), str(tmp_path / "digit.png")]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(f"{tmp_path / 'digit.npy'}: {labels[0]} ")
    assert lines[1].startswith(f"{tmp_path / 'digit.png'}: {labels[1]} ")


def test_drawn_digits_of_any_size_black_on_white(default_run, tmp_path, capsys):
    """The test set's digits drawn on paper: enlarged 5 to 25 times, black ink on a white page
    with a margin. Read as the digits set was made, they are classified within a few points of
    the test accuracy."""
    _, (images, labels), _ = cr.runs.load_raw(cr.runs.Config())
    rng = np.random.default_rng(0)
    from PIL import Image

    paths = []
    for i, image in enumerate(images):
        scale = int(rng.integers(5, 26))
        page = np.pad(np.kron(image / 16, np.ones((scale, scale))), int(rng.integers(5, 80)))
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray((255 * (1 - page)).round().astype(np.uint8)).save(paths[-1])
    results = cr.runs.predict_files(default_run, paths)
    drawn = np.mean([r["prediction"] == label for r, label in zip(results, labels)])
    tested = json.loads((default_run / "metrics.json").read_text())["test_accuracy"]
    assert drawn >= tested - 0.06, (drawn, tested)

    seen = tmp_path / "seen.png"
    assert main(["predict", str(default_run), *map(str, paths[:3]), "--show", str(seen)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{paths[0]}: {labels[0]} ")
    assert lines[1].startswith("  read as: inverted (light background); the ink (")
    assert "scaled to" in lines[1] and "in 8x8, as digits was made" in lines[1]
    assert lines[-1] == f"what the network saw: {seen}"
    with Image.open(seen) as sheet:
        assert sheet.height >= 3 * 112


def one_line_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("chainrule: error:")
    for fragment in fragments:
        assert fragment in err, err


def test_bad_input_ends_with_one_clear_line(default_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "empty-cache"))
    one_line_error(
        capsys,
        ["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "nope")],
        "no such folder",
    )
    one_line_error(
        capsys,
        ["train", "--dataset", "mnist", "--out", str(tmp_path / "r")],
        "not found in",
        "download",
    )
    np.save(tmp_path / "big.npy", np.zeros((28, 28)))
    one_line_error(
        capsys, ["predict", str(default_run), str(tmp_path / "big.npy")], "(28, 28)", "(8, 8)"
    )
    (tmp_path / "not-an-image.png").write_text("hello")
    one_line_error(
        capsys,
        ["predict", str(default_run), str(tmp_path / "not-an-image.png")],
        "not a readable image",
    )
    (tmp_path / "bad.toml").write_text("epochs = = 3")
    one_line_error(capsys, ["train", "--config", str(tmp_path / "bad.toml")], "not valid TOML")
    (tmp_path / "unknown.toml").write_text("epoch = 3")
    one_line_error(capsys, ["train", "--config", str(tmp_path / "unknown.toml")], "unknown setting")
    one_line_error(capsys, ["train", "--out", str(default_run)], "--resume")
    one_line_error(capsys, ["evaluate", str(tmp_path)], "not a chainrule run folder")
    one_line_error(capsys, ["train", "--epochs", "0", "--out", str(tmp_path / "z")], "--epochs")
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--dataset", "imagenet"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_a_toml_config_sets_defaults_and_options_win(tmp_path):
    (tmp_path / "run.toml").write_text('dataset = "xor"\nhidden = [16]\nepochs = 50\nlr = 0.01\n')
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "run.toml"),
                "--epochs",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "xor" and config["hidden"] == [16] and config["epochs"] == 3


def test_one_vs_rest_and_mse_options(tmp_path, capsys):
    out = tmp_path / "seven"
    assert main(["train", "--target", "7", "--epochs", "5", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.97
    images, labels = cr.data.load_digits()
    seven, other = images[list(labels).index(7)], images[list(labels).index(3)]
    np.save(tmp_path / "seven.npy", seven)
    np.save(tmp_path / "three.npy", other)
    capsys.readouterr()
    assert (
        main(["predict", str(out), str(tmp_path / "seven.npy"), str(tmp_path / "three.npy")]) == 0
    )
    said = capsys.readouterr().out.splitlines()
    assert re.match(
        rf"{re.escape(str(tmp_path / 'seven.npy'))}: 7   \(7: (0\.9\d\d|1\.000)  not 7", said[0]
    )
    assert re.match(
        rf"{re.escape(str(tmp_path / 'three.npy'))}: not 7   \(not 7: (0\.9\d\d|1\.000)  7", said[1]
    )
    out = tmp_path / "mse"
    assert (
        main(
            [
                "train",
                "--loss",
                "mse",
                "--optimizer",
                "momentum",
                "--epochs",
                "5",
                "--out",
                str(out),
                "--quiet",
                "--schedule",
                "cosine",
            ]
        )
        == 0
    )
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.85


def test_mnist_from_a_folder_learns(mnist_dir, tmp_path):
    """The committed 1,000-image subset: 5 epochs reach about 89% on its 200 test images."""
    metrics = train_mnist(mnist_dir, tmp_path / "mnist", "--epochs 5 --hidden 64")
    assert metrics["test_accuracy"] > 0.85


def run_cli(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def test_help_for_every_command():
    for command in ("train", "evaluate", "predict", "info"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: chainrule " + command in result.stdout
        if command != "train":  # each argument says what it is
            assert "a run folder written by chainrule train" in result.stdout
    said = run_cli("predict", "--help").stdout
    assert "PNG/JPEG pictures, .npy arrays or CSV files" in said and "--show FILE" in said


def test_a_model_spec_builds_a_small_cnn(tmp_path, capsys):
    out = tmp_path / "cnn"
    spec = "conv8k3p1,bn,pool2,conv16k3psame,fc32"
    assert main(["train", "--model", spec, "--epochs", "8", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "metrics.json").read_text())["test_accuracy"] > 0.95
    assert main(["info", str(out)]) == 0
    assert "Conv2d(8 -> 16, 3x3, padding=same)" in capsys.readouterr().out
    one_line_error(
        capsys,
        ["train", "--model", "conv8k9,pool4", "--out", str(tmp_path / "x")],
        "--model conv8k9,pool4",
        "empty",
    )
    one_line_error(
        capsys,
        ["train", "--model", "transformer", "--out", str(tmp_path / "y")],
        "unknown layer 'transformer'",
    )


def train_mnist(mnist_dir, out, options: str) -> dict:
    """``chainrule train --dataset mnist`` with ``options``; returns its metrics.json."""
    argv = [
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--out",
        str(out),
        "--quiet",
        *options.split(),
    ]
    assert main(argv) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_mnist_mlp_reaches_98_percent(full_mnist_dir, tmp_path):
    # label smoothing is off by default (the loss then falls toward zero, as the tutorial says:
    # 97.6% with these settings); with it, as before, the same MLP reaches 98%
    options = "--epochs 12 --batch-size 128 --label-smoothing 0.1"
    metrics = train_mnist(full_mnist_dir, tmp_path / "mlp", options)
    assert metrics["test_accuracy"] >= 0.98


@pytest.mark.slow
def test_is_it_a_7_reaches_99_percent(full_mnist_dir, tmp_path):
    metrics = train_mnist(
        full_mnist_dir, tmp_path / "seven", "--target 7 --epochs 5 --batch-size 128"
    )
    assert metrics["test_accuracy"] >= 0.99


@pytest.mark.slow
def test_lenet_reaches_99_percent(full_mnist_dir, tmp_path):
    options = "--model cnn --epochs 12 --batch-size 128 --schedule cosine"
    assert train_mnist(full_mnist_dir, tmp_path / "lenet", options)["test_accuracy"] >= 0.99


def test_an_unexpected_exception_shows_as_a_bug(small_run, capsys, monkeypatch):
    """Only anticipated errors become one line; a KeyError inside chainrule is a bug: its
    traceback, a request to report it, and exit status 70, never a tidy 'error' line."""

    def broken(*args, **kwargs):
        return {}["accuracy"]

    monkeypatch.setattr(cr.runs, "evaluate_run", broken)
    assert main(["evaluate", str(small_run)]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'accuracy'" in err
    assert "this is a bug in chainrule" in err and "chainrule: error:" not in err


def test_traceback_flag_shows_an_anticipated_error_in_full(tmp_path):
    with pytest.raises(cr.runs.RunError, match="not a chainrule run folder"):
        main(["--traceback", "evaluate", str(tmp_path)])


def test_every_optimizer_trains_from_the_command_line(tmp_path):
    """--optimizer offers every optimizer class (and SGD's presets), built from its own
    description: the learning rate it suggests, and the preset's settings."""
    from chainrule import optim, runs

    names = set(runs.OPTIMIZERS)
    classes = {n for n, c in optim.OPTIMIZER_CLASSES.items() if not c.needs_closure}
    assert classes <= names and {"momentum", "nesterov"} <= names
    for name in sorted(names):
        out = tmp_path / name
        argv = ["train", "--dataset", "xor", "--epochs", "2", "--optimizer", name, "--quiet"]
        assert main([*argv, "--out", str(out)]) == 0, name
        config = json.loads((out / "config.json").read_text())
        cls, preset = runs.OPTIMIZERS[name]
        assert config["lr"] == cls.suggested_lr, name
        if preset:
            made = runs.build_optimizer(runs.Config(optimizer=name), [cr.nn.Parameter(cr.ones(1))])
            assert made.param_groups[0]["momentum"] == 0.9, name
