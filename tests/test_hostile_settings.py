"""Hostile settings: command-line flags, TOML files, and numbers that blow up.

Every bad setting is refused with a message naming it (argparse's own errors too, in one line),
before any folder is created; training that diverges stops with a message,
and NaN/Inf in the data is reported as a data problem naming the data.
"""

import json

import numpy as np
import pytest

from chainrule import data, nn, optim
from chainrule.cli import main
from chainrule.train import DivergenceError, NonFiniteError, fit
from hostile import dev_zero, fifo, nested, refused, succeeds, time_limit


def parse_refused(capsys, argv, fragment):
    """argparse's refusal: exit 2 and one line naming the option (and pointing at --help)."""
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "--help" in err, err
    assert fragment in err, err


TRAIN_FLAGS = {
    "--epochs 0": (["--epochs", "0"], "--epochs must be a whole number >= 1"),
    "--epochs -3": (["--epochs", "-3"], "--epochs must be"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size must be"),
    "--batch-size -5": (["--batch-size", "-5"], "--batch-size must be"),
    "--momentum 1.5": (["--optimizer", "sgd", "--momentum", "1.5"], "--momentum must be in [0, 1)"),
    "--momentum nan": (["--optimizer", "sgd", "--momentum", "nan"], "--momentum must be"),
    "--momentum for adam": (["--momentum", "0.5"], "--momentum: the optimizer adam has no such"),
    "--eps 2": (["--eps", "2"], "--eps must be in [0, 1], got 2.0"),
    "--beta2 1": (["--optimizer", "nadam", "--beta2", "1"], "--beta2 must be in [0, 1)"),
    "--nesterov without momentum": (["--optimizer", "sgd", "--nesterov"], "Nesterov momentum"),
    "--weight-decay -1": (["--weight-decay", "-1"], "--weight-decay must be"),
    "--weight-decay inf": (["--weight-decay", "inf"], "--weight-decay must be"),
    "--dropout 1": (["--dropout", "1"], "--dropout must be"),
    "--dropout -0.1": (["--dropout", "-0.1"], "--dropout must be"),
    "--label-smoothing 1": (["--label-smoothing", "1"], "--label-smoothing must be"),
    "--val-fraction 1": (["--val-fraction", "1"], "--val-fraction must be"),
    "--val-fraction -0.5": (["--val-fraction", "-0.5"], "--val-fraction must be"),
    "--seed -1": (["--seed", "-1"], "--seed must be"),
    "--seed 2^64": (["--seed", str(2**64)], "--seed must be"),
    "--checkpoint-every 0": (["--checkpoint-every", "0"], "--checkpoint-every must be"),
    "--checkpoint-every -1": (["--checkpoint-every", "-1"], "--checkpoint-every must be"),
    "--target 10 (digits has 0..9)": (["--target", "10"], "not a class"),
    "--target -1": (["--target", "-1"], "--target must be"),
    "--hidden 0": (["--hidden", "0"], "--hidden must be"),
    "--hidden -3": (["--hidden", "-3"], "--hidden must be"),
    "--hidden 8,x": (["--hidden", "8,x"], "--hidden must be"),
    "--hidden of 300 layers": (["--hidden", ",".join(["4"] * 300)], "--hidden must be"),
    "--hidden 10^9 (4 GB of weights)": (["--hidden", str(10**9)], "free on this machine"),
    "--hidden 100000,100000": (["--hidden", "100000,100000"], "free on this machine"),
    "--batch-size 10^12": (["--batch-size", str(10**12), "--model", "conv8"], "free on this"),
    "--model with 100000-filter convolutions": (
        ["--model", "conv100000,conv100000"],
        "free on this machine",
    ),
    "--model conv8k0": (["--model", "conv8k0"], "kernel"),
    "--model conv8s0": (["--model", "conv8s0"], "stride"),
    "--model pool0": (["--model", "pool0"], "positive number"),
    "--model drop150": (["--model", "drop150"], "drop"),
    "--model fc": (["--model", "fc"], "needs a number"),
    "--model conv8k99 (larger than the image)": (["--model", "conv8k99"], "empty"),
    "--model transformer": (["--model", "transformer"], "unknown layer"),
    "--model empty": (["--model", ""], "--model must be"),
    "--model of 300 layers": (["--model", ",".join(["fc4"] * 300)], "more than 256"),
    "--activation swish": (["--activation", "swish"], "unknown activation"),
    "--data-dir that does not exist": (["--data-dir", "/nonexistent/x"], "no such folder"),
    "--config that does not exist": (["--config", "/nonexistent/x.toml"], "not found"),
    "--config a folder": (["--config", "/"], "folder"),
}


@pytest.mark.parametrize("case", TRAIN_FLAGS, ids=[f"cli-flags: train {c}" for c in TRAIN_FLAGS])
def test_a_bad_train_flag_is_refused_naming_it(case, tmp_path, capsys):
    flags, fragment = TRAIN_FLAGS[case]
    out = tmp_path / "run"
    refused(capsys, ["train", "--out", out, "--quiet", *flags], fragment, seconds=20)
    assert not out.exists()


PARSE_ERRORS = {
    "train --epochs 1.5": (["train", "--epochs", "1.5"], "--epochs"),
    "train --epochs abc": (["train", "--epochs", "abc"], "--epochs"),
    "train --batch-size half": (["train", "--batch-size", "half"], "--batch-size"),
    "train --lr fast": (["train", "--lr", "fast"], "--lr"),
    "train --lr 0": (["train", "--lr", "0"], "--lr: must be a positive number such as 0.01"),
    "train --lr -1": (["train", "--lr", "-1"], "--lr: must be"),
    "train --lr nan": (["train", "--lr", "nan"], "--lr: must be"),
    "train --lr inf": (["train", "--lr", "inf"], "--lr: must be"),
    "plot descent --lr 0": (["plot", "descent", "--lr", "0"], "--lr: must be a positive number"),
    "plot fit-line --lr 0": (["plot", "fit-line", "--lr", "0"], "a positive number such as"),
    "train --optimizer lbfgs": (["train", "--optimizer", "lbfgs"], "--optimizer"),
    "train --schedule wavy": (["train", "--schedule", "wavy"], "--schedule"),
    "train --dataset imagenet": (["train", "--dataset", "imagenet"], "--dataset"),
    "train --loss hinge": (["train", "--loss", "hinge"], "--loss"),
    "train --threads 0": (["train", "--threads", "0"], "--threads"),
    "train --threads many": (["train", "--threads", "many"], "--threads"),
    "train --unknown": (["train", "--unknown"], "unrecognized"),
    "predict --top 0": (["predict", "r", "x.npy", "--top", "0"], "--top"),
    "predict --top -1": (["predict", "r", "x.npy", "--top", "-1"], "--top"),
    "predict without inputs": (["predict", "r"], "required"),
    "evaluate --dataset imagenet": (["evaluate", "r", "--dataset", "imagenet"], "--dataset"),
    "explain forward --index -1": (["explain", "forward", "--index", "-1"], "--index"),
    "plot descent --steps 0": (["plot", "descent", "--steps", "0"], "--steps"),
    "plot descent --lr 0.1,-1,2": (["plot", "descent", "--lr", "0.1,-1,2"], "--lr"),
    "plot descent --lr 0.1,nan,2": (["plot", "descent", "--lr", "0.1,nan,2"], "--lr"),
    "plot race --steps -5": (["plot", "race", "--steps", "-5"], "--steps"),
    "plot boundary --epochs 0": (["plot", "boundary", "--epochs", "0"], "--epochs"),
    "plot boundary --every 0": (["plot", "boundary", "--every", "0"], "--every"),
    "plot landscape --resolution 0": (["plot", "landscape", "--resolution", "0"], "--resolution"),
    "plot gradient-flow --depth 0": (["plot", "gradient-flow", "--depth", "0"], "--depth"),
    "lr-find --steps 0": (["lr-find", "--steps", "0"], "--steps"),
    "an unknown command": (["fly"], "invalid choice"),
}


@pytest.mark.parametrize("case", PARSE_ERRORS, ids=[f"cli-flags: {c}" for c in PARSE_ERRORS])
def test_argparse_refuses_malformed_flags_briefly(case, capsys):
    argv, fragment = PARSE_ERRORS[case]
    parse_refused(capsys, argv, fragment)


def test_cli_flags_of_the_reading_commands(small_run, tmp_path, capsys, mnist_dir):
    np.save(tmp_path / "x.npy", np.zeros((8, 8)))
    refused(capsys, ["predict", small_run, tmp_path / "missing.npy"], "not found")
    refused(capsys, ["predict", small_run, tmp_path], "folder")
    refused(capsys, ["evaluate", small_run, "--dataset", "mnist", "--data-dir", mnist_dir], "(28")
    refused(capsys, ["explain", "forward", small_run, "--index", "100000"], "--index 100000")
    refused(capsys, ["plot", "descent", "--lr", "0.1,0.2,0.3,0.4"], "at most three learning rates")
    out = succeeds(capsys, ["predict", small_run, tmp_path / "x.npy", "--top", "50"])
    assert out.count(":") == 11  # "--top" larger than the classes shows all 10


def test_cli_flags_the_run_folder(small_run, tmp_path, capsys):
    """--out: a file, a folder of someone else's files, an earlier run without --overwrite."""
    (tmp_path / "file").write_text("x")
    refused(capsys, ["train", "--out", tmp_path / "file", "--quiet"], "not a folder")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    refused(capsys, ["train", "--out", tmp_path / "mine", "--quiet"], "other files", "notes.txt")
    refused(capsys, ["train", "--out", small_run, "--quiet"], "--overwrite", "--resume")


# -- TOML settings ---------------------------------------------------------------------------------

TOML = {
    "epochs = true": ("epochs = true", "epochs must be a whole number"),
    "epochs = 1.5": ("epochs = 1.5", "epochs must be"),
    'epochs = "3"': ('epochs = "3"', 'got "3"'),
    "epochs = 0": ("epochs = 0", "epochs must be"),
    "epochs = a date": ("epochs = 1979-05-27", "epochs must be"),
    'lr = "fast"': ('lr = "fast"', "lr must be a positive number"),
    "lr = nan": ("lr = nan", "lr must be"),
    "lr = inf": ("lr = inf", "lr must be"),
    "lr = -0.1": ("lr = -0.1", "lr must be"),
    "lr = true": ("lr = true", "lr must be"),
    'hidden = "a,b"': ('hidden = "a,b"', "hidden must be"),
    "hidden = [0]": ("hidden = [0]", "hidden must be"),
    "hidden = [[1]]": ("hidden = [[1]]", "hidden must be"),
    "hidden = 5": ("hidden = 5", "hidden must be"),
    "hidden = [1.5]": ("hidden = [1.5]", "hidden must be"),
    'hidden = ["8"]': ('hidden = ["8"]', "hidden must be"),
    "dataset = 5": ("dataset = 5", "dataset must be"),
    'dataset = "imagenet"': ('dataset = "imagenet"', "unknown data set"),
    "batch_size = 0": ("batch_size = 0", "batch_size must be"),
    'batch_size = "half"': ('batch_size = "half"', "batch_size must be"),
    'download = "yes"': ('download = "yes"', "download must be true or false"),
    "out = 5": ("out = 5", "out must be"),
    "seed = -1": ("seed = -1", "seed must be"),
    "seed = 1.0": ("seed = 1.0", "seed must be"),
    "checkpoint_every = -1": ("checkpoint_every = -1", "checkpoint_every must be"),
    "target = true": ("target = true", "target must be"),
    "dropout = 2": ("dropout = 2", "dropout must be"),
    "momentum = {}": ('optimizer = "sgd"\nmomentum = {}', "momentum must be"),
    "rho = 0.5 for adam": ("rho = 0.5", "rho: the optimizer adam has no such setting"),
    "amsgrad = 1": ("amsgrad = 1", "amsgrad must be true or false"),
    "an unknown key": ("epoch = 3", "unknown setting"),
    "a table": ("[model]\nkind = 'mlp'", "model must be"),
    "duplicate keys": ("epochs = 1\nepochs = 2", "not valid TOML"),
    "not TOML": ("epochs = = 3", "not valid TOML"),
    "nested 10,000 deep": (f"hidden = {nested(10_000)}", "nested too deeply"),
    "nested 50 deep": (f"hidden = {nested(50)}", "hidden must be"),
    "2 MB of settings": ("# " + "x" * (2 << 20), "more than"),
    "binary garbage": (b"\xff\xfe\x00\x01epochs", "not a text file"),
}


@pytest.mark.parametrize("case", TOML, ids=[f"toml-settings: {c}" for c in TOML])
def test_a_bad_toml_setting_is_refused_naming_it_and_the_file(case, tmp_path, capsys):
    text, fragment = TOML[case]
    path = tmp_path / "settings.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "run"
    refused(capsys, ["train", "--config", path, "--out", out, "--quiet"], fragment, "settings.toml")
    assert not out.exists()


@pytest.mark.parametrize(
    "make", [fifo, dev_zero], ids=["toml-settings: a FIFO", "toml-settings: /dev/zero"]
)
def test_a_toml_file_that_never_ends_is_refused(make, tmp_path, capsys):
    path = make(tmp_path / "settings.toml")
    refused(capsys, ["train", "--config", path, "--quiet"], "not a regular file", seconds=5)


@pytest.mark.parametrize("fraction", ["0.9999", "0.99999999"])
def test_a_val_fraction_that_leaves_nothing_to_train_on_is_refused(fraction, tmp_path, capsys):
    """Issue 25, section 5: it ended in an internal error (an empty sampler)."""
    path = tmp_path / "settings.toml"
    path.write_text(f"val_fraction = {fraction}\nepochs = 1\n")
    out = tmp_path / "run"
    argv = ["train", "--config", path, "--out", out, "--quiet"]
    refused(capsys, argv, f"val_fraction {fraction} of 1438 examples leaves 0 for training")
    assert not out.exists()


def test_toml_settings_that_are_fine_are_taken(tmp_path, capsys):
    path = tmp_path / "settings.toml"
    path.write_text('dataset = "xor"\nhidden = "8,4"\nbatch_size = "full"\nepochs = 2\nlr = 1\n')
    succeeds(capsys, ["train", "--config", path, "--out", tmp_path / "run", "--quiet"])
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["hidden"] == [8, 4] and config["lr"] == 1.0
    assert config["batch_size"] == 720  # "full": all 720 training examples (1000 less test, val)


# -- numerics --------------------------------------------------------------------------------------


def test_numerics_a_diverging_run_is_stopped(tmp_path, capsys):
    """lr = 1e6: the loss reaches ~1e19 and stays finite; it is stopped, not trained for 30
    epochs into a useless model."""
    out = tmp_path / "run"
    line = refused(capsys, ["train", "--lr", "1e6", "--out", out, "--quiet"], "diverged")
    assert "smaller learning rate" in line and not (out / "metrics.json").exists()
    # a --resume would diverge again from the last checkpoint: start afresh, 10 times slower
    again = f"chainrule train --task classification --lr 100000 --out {out} --overwrite"
    assert line.rstrip().endswith(again) and "--resume" not in line


def test_numerics_nan_weights_are_stopped(tmp_path, capsys):
    refused(capsys, ["train", "--lr", "1e30", "--out", tmp_path / "r", "--quiet"], "learning rate")


def tiny_fit(x, y, validation=None, **kwargs):
    model = nn.Sequential(nn.Linear(x.shape[1], 3))
    return fit(
        model,
        nn.MSELoss() if y.dtype.kind == "f" else nn.CrossEntropyLoss(),
        optim.SGD(model.parameters(), lr=0.01),
        (x, y),
        validation_data=validation,
        progress=False,
        **kwargs,
    )


NUMERIC_DATA = {
    "NaN in the inputs": (np.nan, None, "training data: inputs"),
    "Inf in the inputs": (np.inf, None, "training data: inputs"),
    "NaN in the targets": (None, np.nan, "training data: targets"),
    "-Inf in the targets": (None, -np.inf, "training data: targets"),
}


@pytest.mark.parametrize("case", NUMERIC_DATA, ids=[f"numerics: {c}" for c in NUMERIC_DATA])
def test_nan_in_the_data_is_a_data_problem_naming_the_data(case):
    bad_x, bad_y, fragment = NUMERIC_DATA[case]
    x, y = np.ones((20, 4), np.float32), np.zeros((20, 3), np.float32)
    if bad_x is not None:
        x[7, 2] = bad_x
    if bad_y is not None:
        y[3, 0] = bad_y
    with pytest.raises(data.DataError, match=fragment + r".*index \((7, 2|3, 0)\)"):
        tiny_fit(x, y)


def test_numerics_nan_in_the_validation_data_is_named():
    x, y = np.ones((20, 4), np.float32), np.zeros((20, 3), np.float32)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(data.DataError, match="validation data: inputs"):
        tiny_fit(x, y, validation=(bad, y))


def test_numerics_a_diverging_fit_stops_but_a_large_loss_that_falls_does_not():
    """The guard compares with the first loss: targets of 1e4 start at a loss of ~1e8 and that
    is not divergence; lr = 1e6 on the same data is."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 3)) * 1e4).astype(np.float32)
    from chainrule.train import TerminateOnNaN

    tiny_fit(x, y, epochs=3, callbacks=[TerminateOnNaN()])
    model = nn.Sequential(nn.Linear(4, 3))
    with pytest.raises((DivergenceError, NonFiniteError), match="diverged|non-finite"):
        fit(
            model,
            nn.MSELoss(),
            optim.SGD(model.parameters(), lr=1e6),
            (x, y),
            epochs=5,
            callbacks=[TerminateOnNaN()],
            progress=False,
        )


def test_numerics_a_huge_logit_gives_a_finite_probability(tmp_path, capsys):
    """One-vs-rest models answer through a sigmoid that cannot overflow."""
    out = tmp_path / "seven"
    succeeds(capsys, ["train", "--target", "7", "--epochs", "1", "--hidden", "8", "--out", out])
    np.save(tmp_path / "big.npy", np.full((8, 8), 1e6, np.float32))
    with time_limit(10):
        answer = succeeds(capsys, ["predict", out, tmp_path / "big.npy"])
    assert "nan" not in answer.lower()
