"""Text runs from the command line: train a character model on the built-in names or a text
file, generate from it, evaluate (loss per character, perplexity), info, resume, bad files."""

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import io
from chainrule.cli import main
from chainrule.runs import text

TINY = ["--hidden", "16", "--sequence-length", "8", "--quiet"]  # trains in well under a second


@pytest.fixture(scope="module")
def names_run(tmp_path_factory):
    """A tiny GRU trained 2 epochs on the built-in names."""
    out = tmp_path_factory.mktemp("runs") / "names"
    argv = ["train", "--task", "text", "--model", "gru", "--epochs", "2", *TINY]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _vocabulary(run) -> str:
    return json.loads((run / "model.json").read_text())["metadata"]["preprocessing"]["vocabulary"]


def test_the_built_in_names_train_a_character_model(names_run, capsys):
    metrics = json.loads((names_run / "metrics.json").read_text())
    config = json.loads((names_run / "config.json").read_text())
    assert metrics["task"] == "text" and metrics["dataset"] == "names" and metrics["epochs"] == 2
    assert "test_accuracy" not in metrics
    assert metrics["test_perplexity"] == pytest.approx(2.718281828 ** metrics["test_loss"])
    assert config["model"] == "gru" and config["sequence_length"] == 8
    assert config["lr"] == pytest.approx(1e-3) and config["hidden"] == [16]
    vocabulary = _vocabulary(names_run)
    assert "\n" in vocabulary and "a" in vocabulary and len(set(vocabulary)) == len(vocabulary)


def test_evaluate_prints_a_perplexity_below_the_vocabulary_size(names_run, capsys):
    """A model that guessed uniformly would have the vocabulary's size as perplexity."""
    assert main(["evaluate", str(names_run)]) == 0
    line = capsys.readouterr().out
    perplexity = float(re.search(r"perplexity ([\d.]+)", line).group(1))
    loss = float(re.search(r"test loss ([\d.]+) per character", line).group(1))
    assert perplexity < len(_vocabulary(names_run)) and perplexity == pytest.approx(
        2.718281828**loss, rel=1e-3
    )
    recorded = json.loads((names_run / "metrics.json").read_text())["test_loss"]
    assert loss == pytest.approx(recorded, abs=1e-4)  # the same test lines as in training


def _generate(run, capsys, *options) -> list[str]:
    assert main(["generate", str(run), *options]) == 0
    return capsys.readouterr().out.splitlines()


def test_generate_samples_count_items_from_the_vocabulary(names_run, capsys):
    samples = _generate(names_run, capsys, "--count", "7", "--temperature", "0.8")
    assert len(samples) == 7
    vocabulary = set(_vocabulary(names_run))
    assert all(set(s) <= vocabulary and 0 < len(s) <= 200 for s in samples)
    assert samples == _generate(names_run, capsys, "--count", "7", "--temperature", "0.8")
    assert samples != _generate(names_run, capsys, "--count", "7", "--seed", "1")


def test_temperature_zero_is_greedy_and_start_primes(names_run, capsys):
    greedy = _generate(names_run, capsys, "--count", "3", "--temperature", "0", "--seed", "5")
    assert len(set(greedy)) == 1  # the likeliest character every time: one sample, 3 times
    assert greedy == _generate(names_run, capsys, "--count", "3", "--temperature", "0")
    primed = _generate(names_run, capsys, "--count", "4", "--start", "ma")
    assert len(primed) == 4 and all(s.startswith("ma") for s in primed)
    short = _generate(names_run, capsys, "--count", "4", "--max-length", "3", "--start", "ma")
    assert all(len(s) <= 3 for s in short)


def test_start_with_characters_outside_the_vocabulary_is_refused(names_run, capsys):
    assert main(["generate", str(names_run), "--start", "Zoë"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'Z'" in err and "'ë'" in err and "vocabulary" in err


def test_info_names_the_model_the_vocabulary_and_the_results(names_run, capsys):
    assert main(["info", str(names_run)]) == 0
    out = capsys.readouterr().out
    vocabulary = _vocabulary(names_run)
    assert "GRU(32, 16" in out and f"over {len(vocabulary)} characters" in out
    assert "test_perplexity" in out and "trained on names" in out


def test_a_text_file_of_ones_own_trains_and_resumes(tmp_path, capsys):
    """Lines of a tiny language (ab, abab, ...): the model learns it well below chance."""
    data = tmp_path / "pattern.txt"
    data.write_text("\n".join("ab" * (1 + i % 5) + "c" for i in range(300)) + "\n")
    out = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(data),
        "--model",
        "lstm",
        "--lr",
        "0.01",
        *TINY,
        "--out",
        str(out),
    ]
    assert main([*argv, "--epochs", "1"]) == 0
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["dataset"] == "text"
    assert len((out / "history.csv").read_text().splitlines()) == 3
    assert metrics["test_perplexity"] < 3  # 4 characters; a, b and c mostly follow rules
    capsys.readouterr()
    samples = _generate(out, capsys, "--count", "5", "--temperature", "0.5")
    assert len(samples) == 5 and all(set(s) <= set("abc") for s in samples)
    data.write_text(data.read_text() + "abc\n")
    assert main(["evaluate", str(out)]) == 2
    assert "has changed" in capsys.readouterr().err


def test_every_model_kind_trains_saves_and_loads(tmp_path):
    for kind in text.MODELS:
        out = tmp_path / kind
        argv = ["train", "--task", "text", "--model", kind, "--epochs", "1", *TINY]
        assert main([*argv, "--out", str(out)]) == 0, kind
        model, vocabulary = text.load_text_model(out)
        assert model.kind == kind and model.vocab_size == len(vocabulary)
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert text.CharModel.state_shapes(model.config()) == shapes  # checked before building
        samples = text.generate(model, vocabulary, 2, 0.0, "a")
        assert samples[0] == samples[1] and samples[0].startswith("a")


def test_a_transformer_sees_only_the_past():
    """Changing a later character leaves the logits of the earlier positions as they were."""
    cr.manual_seed(0)
    model = text.CharModel(vocab_size=5, kind="transformer", hidden_size=8, context=6).eval()
    a = model(cr.tensor([[1, 2, 3, 4]])).detach().numpy()
    b = model(cr.tensor([[1, 2, 3, 0]])).detach().numpy()
    assert (a[:, :3] == b[:, :3]).all() and not (a[:, 3] == b[:, 3]).all()


HOSTILE = {
    "binary.txt": (b"abc\n\x00\x01\x02\n" * 10, "NUL bytes"),
    "latin1.txt": ("café\n".encode("latin-1") * 10, "not UTF-8"),
    "empty.txt": (b"", "no text"),
    "blank.txt": (b"\n  \n\t\n", "no text"),
    "long.txt": (b"abc\n" + b"x" * (text.MAX_LINE + 1) + b"\n", "line 2 holds"),
    "short.txt": (b"ab\ncd\n", "at least 3"),
    "few.txt": (b"a\nb\nc\nd\n", "fewer than one window"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_bad_text_files_are_refused_in_one_line(tmp_path, capsys, name):
    content, expected = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "--data", str(path), *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chainrule: error:") and "\n" not in err, err
    assert expected in err and name in err, err
    assert not out.exists()  # refused before the run folder is claimed


def test_a_file_over_the_size_cap_is_refused_before_reading(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(text, "MAX_TEXT_BYTES", 1000)
    path = tmp_path / "big.txt"
    path.write_text("abcdefghi\n" * 101)
    assert main(["train", "--data", str(path), *TINY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "big.txt" in err and "1,010 bytes" in err


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--task", "text", "--model", "mlp"], "--model mlp: a text run takes"),
        (["--task", "text", "--hidden", "16,32"], "all one size"),
        (["--task", "text", "--dataset", "digits"], "digits is not text"),
        (["--dataset", "names", "--task", "regression"], "a text run takes --task text"),
        (["--task", "text", "--loss", "mse"], "cross-entropy"),
    ],
)
def test_settings_a_text_run_cannot_use_are_refused(tmp_path, capsys, options, expected):
    assert main(["train", *options, "--quiet", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err, err


def test_generate_refuses_a_run_that_is_not_text(tmp_path, capsys):
    out = tmp_path / "xor"
    argv = ["train", "--dataset", "xor", "--epochs", "1", "--hidden", "4", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0
    assert main(["generate", str(out)]) == 2
    assert "not a text run" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [["predict", "RUN", "x.npy"], ["export", "RUN"], ["explain", "forward", "RUN"]]
    + [["plot", "weights", "RUN"], ["plot", "confusion", "RUN"]],
)
def test_commands_for_images_and_tables_point_a_text_run_to_generate(names_run, capsys, command):
    """The commands whose networks read images or tables refuse a text run in one line."""
    assert main([str(names_run) if word == "RUN" else word for word in command]) == 2
    err = capsys.readouterr().err.strip()
    assert "a text run" in err and "chainrule generate" in err and "\n" not in err, err


@pytest.mark.parametrize("vocabulary", ["ab", 5, "abcd\n", "aa\n" * 20])
def test_a_run_with_a_damaged_vocabulary_is_refused(names_run, tmp_path, capsys, vocabulary):
    """Not a string of distinct characters holding the newline, or not the model's size."""
    run = tmp_path / "run"
    shutil.copytree(names_run, run)
    model, _ = text.load_text_model(run)
    preprocessing = {"task": "text", "input_shape": [8], "vocabulary": vocabulary}
    io.save(model, run / "model", metadata={"preprocessing": preprocessing, "dataset": "names"})
    for command in (["generate", str(run)], ["evaluate", str(run)], ["info", str(run)]):
        assert main(command) == 2, command
        err = capsys.readouterr().err.strip()
        assert "vocabulary" in err and "\n" not in err, err


def test_the_commands_run_as_a_program_and_from_a_toml_file(names_run, tmp_path):
    """``chainrule generate`` as its own process; text settings as TOML keys."""
    job = subprocess.run(
        [sys.executable, "-m", "chainrule", "generate", str(names_run), "--count", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert job.returncode == 0 and len(job.stdout.splitlines()) == 3, job.stderr
    settings = tmp_path / "text.toml"
    settings.write_text('task = "text"\nmodel = "rnn"\nhidden = "8"\nsequence_length = 4\n')
    out = tmp_path / "run"
    assert (
        main(["train", "--config", str(settings), "--epochs", "1", "--quiet", "--out", str(out)])
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "names" and config["model"] == "rnn"
    assert config["sequence_length"] == 4 and config["hidden"] == [8]


def test_generate_refuses_weights_that_are_not_finite(names_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(names_run, run)
    model, _ = text.load_text_model(run)
    model.head.bias.data[0] = float("nan")
    metadata = io.read_metadata(names_run / "model")
    io.save(model, run / "model", metadata=metadata)
    assert main(["generate", str(run)]) == 2
    assert "'head.bias' holds NaN" in capsys.readouterr().err


def test_a_run_whose_validation_loss_turns_up_ends_with_advice(names_run, tmp_path, capsys):
    """Random words: a big GRU at a high rate learns its training words by heart, and the
    validation loss rises from the fifth epoch on; the run says so, and what to try."""
    rng = np.random.default_rng(0)
    words = tmp_path / "words.txt"
    words.write_text("\n".join("".join(rng.choice(list("abcdefgh"), 8)) for _ in range(200)))
    out = tmp_path / "words"
    argv = ["train", "--data", str(words), "--model", "gru", "--hidden", "128", "--epochs", "30"]
    argv += ["--sequence-length", "16", "--lr", "0.01", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    risen = json.loads((out / "metrics.json").read_text())["overfitting"]
    assert risen["best_epoch"] <= 22 and risen["last"] > risen["best"] * 1.05
    printed = capsys.readouterr().out
    assert f"lowest at epoch {risen['best_epoch']} ({risen['best']:.4f})" in printed
    assert f"--epochs {risen['best_epoch']}" in printed
    assert "--dropout 0.2" in printed and "--hidden 64" in printed
    assert main(["info", str(out)]) == 0
    shown = f"overfitting: best_epoch {risen['best_epoch']}, best {risen['best']:.4g}, last"
    assert shown in capsys.readouterr().out
    assert "overfitting" not in json.loads((names_run / "metrics.json").read_text())


def test_a_transformer_text_run_is_64_wide_unless_told():
    from chainrule.runs import Config

    def hidden(**settings):
        return Config.from_dict({"task": "text", **settings}).with_task_defaults("text").hidden

    assert hidden(model="transformer") == (64,)
    assert hidden() == hidden(model="gru") == (128,)
    assert hidden(model="transformer", hidden=(128,)) == (128,)


def test_the_overfitting_note_suggests_only_what_the_network_takes():
    from chainrule.cli import _overfitting_hint
    from chainrule.runs import Config

    risen = {"best_epoch": 6, "best": 0.08, "last": 0.13}
    spec = _overfitting_hint(risen, Config(model="conv8k3p1,pool2,fc256"))
    assert spec.startswith("note: the validation loss was lowest at epoch 6 (0.0800)")
    assert "Fewer epochs (--epochs 6)" in spec and "drop25" in spec
    assert "--dropout" not in spec and "--hidden" not in spec  # a spec has no such settings
    mlp = _overfitting_hint(risen, Config(model="mlp", hidden=(256, 128), dropout=0.4))
    assert "--dropout 0.5" in mlp and "--hidden 128,64" in mlp
    narrow = _overfitting_hint(risen, Config(model="transformer", hidden=(36,)))
    assert "--dropout 0.2" in narrow and "--hidden" not in narrow  # 18 is no multiple of 4 heads
