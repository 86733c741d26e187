"""Hostile and corrupt run folders: model files, settings files and checkpoints.

Every case damages a copy of a small finished run, then checks that ``evaluate``, ``predict``
and ``info`` (model files) or ``train --resume`` (checkpoints) refuse it with one line naming the
problem, no traceback, promptly, and without allocating what the file asks for.
"""

import json
import os
import shutil

import numpy as np
import pytest
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_bytes

from chainrule import io
from chainrule.cli import main
from hostile import dev_zero, fifo, nested, refused, safetensors_file, succeeds

READERS = ("evaluate", "predict", "info")


def read_model(run):
    tensors = load_file(str(run / "model.safetensors"))
    description = json.loads(io.read_header_metadata(run / "model.safetensors")["chainrule"])
    return tensors, description


def write_model(run, tensors, description, text=None, digest=False):
    """Rewrite the model file; ``digest`` adds a valid SHA-256 (a crafted, not a damaged file)."""
    text = json.dumps(description) if text is None else text
    data = (
        io.tensors_with_json(tensors, "chainrule", text)
        if digest
        else safetensors_bytes(tensors, metadata={"chainrule": text})
    )
    (run / "model.safetensors").write_bytes(data)


def edit_model(edit, digest=False):
    def damage(run):
        tensors, description = read_model(run)
        edit(tensors, description)
        write_model(run, tensors, description, digest=digest)

    return damage


def preprocessing(**changes):
    def edit(tensors, description):
        description["metadata"]["preprocessing"].update(changes)

    return edit


def drop_preprocessing_key(key):
    def edit(tensors, description):
        del description["metadata"]["preprocessing"][key]

    return edit


def layers(new_layers, new_tensors=None):
    def edit(tensors, description):
        description["layers"] = new_layers
        if new_tensors is not None:
            tensors.clear()
            tensors.update(new_tensors)

    return edit


def poke(name, value):
    def edit(tensors, description):
        tensors[name] = tensors[name].copy()
        tensors[name].flat[0] = value

    return edit


def file_bytes(name, transform):
    def damage(run):
        path = run / name
        path.write_bytes(transform(path.read_bytes()))

    return damage


def replace_with(name, make):
    def damage(run):
        (run / name).unlink()
        make(run / name)

    return damage


def flip_a_weight_bit(data: bytes) -> bytes:
    data = bytearray(data)
    data[-3] ^= 0x10
    return bytes(data)


def adaptive_pool_2_24():
    return [
        {"type": "Unflatten", "args": {"dim": 1, "unflattened_size": [1, 8]}},
        {"type": "AdaptiveAvgPool2d", "args": {"output_size": 1 << 24}},
        {"type": "AdaptiveAvgPool2d", "args": {"output_size": 1}},
        {"type": "Flatten", "args": {"start_dim": 1, "end_dim": -1}},
        {"type": "Linear", "args": {"in_features": 1, "out_features": 10, "bias": False}},
    ], {"4.weight": np.zeros((10, 1), np.float32)}


def config_json(text):
    return file_bytes("config.json", lambda _: text.encode())


HUGE = "x" * (17 << 20)

MODEL_FILES = {
    "weights truncated": (file_bytes("model.safetensors", lambda b: b[: len(b) // 2]), "model"),
    "weights junk": (file_bytes("model.safetensors", lambda b: b"\xff" * 64), "safetensors"),
    "weights empty": (file_bytes("model.safetensors", lambda b: b""), "safetensors"),
    "weights a FIFO": (replace_with("model.safetensors", fifo), "FIFO"),
    "weights /dev/zero": (replace_with("model.safetensors", dev_zero), "device"),
    "weights a folder": (replace_with("model.safetensors", os.mkdir), "folder"),
    "weights a symbolic link to itself": (
        replace_with("model.safetensors", lambda p: os.symlink(p.name, p)),
        "symbolic links",
    ),
    "weights header length 10^12": (
        replace_with("model.safetensors", lambda p: safetensors_file(p, {}, length=10**12)),
        "safetensors",
    ),
    "weights header declaring 10^12 values": (
        replace_with(
            "model.safetensors",
            lambda p: safetensors_file(
                p, {"1.weight": {"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 0]}}
            ),
        ),
        "safetensors",
    ),
    "a flipped bit in the weights": (
        file_bytes("model.safetensors", flip_a_weight_bit),
        "SHA-256",
    ),
    "description nested 10,000 deep": (
        lambda run: write_model(run, *read_model(run)[:1], None, text=nested(10_000)),
        "nested",
    ),
    "description holding NaN": (
        lambda run: write_model(run, *read_model(run)[:1], None, text='{"a": NaN}'),
        "NaN",
    ),
    "description holding 1e400": (
        lambda run: write_model(run, *read_model(run)[:1], None, text='{"a": 1e400}'),
        "too large",
    ),
    "description not an object": (
        lambda run: write_model(run, *read_model(run)[:1], None, text="[1, 2]"),
        "not an object",
    ),
    "std zero (would divide by zero)": (edit_model(preprocessing(std=0.0)), "std"),
    "std negative": (edit_model(preprocessing(std=-1.0)), "std"),
    "std a string": (edit_model(preprocessing(std="wide")), "std"),
    "mean missing": (edit_model(drop_preprocessing_key("mean")), "mean"),
    "pixel_max zero": (edit_model(preprocessing(pixel_max=0)), "pixel_max"),
    "pixel_max a string": (edit_model(preprocessing(pixel_max="255")), "pixel_max"),
    "input_shape missing": (edit_model(drop_preprocessing_key("input_shape")), "input_shape"),
    "input_shape negative": (edit_model(preprocessing(input_shape=[-8, 8])), "input_shape"),
    "input_shape not matching the layers": (
        edit_model(preprocessing(input_shape=[28, 28])),
        "gets inputs of shape (784,)",
    ),
    "no preprocessing": (
        edit_model(lambda t, d: d["metadata"].pop("preprocessing")),
        "no preprocessing",
    ),
    "metadata not an object": (edit_model(lambda t, d: d.update(metadata=[1])), "metadata"),
    "weights holding NaN": (edit_model(poke("1.weight", np.nan), digest=True), "NaN"),
    "weights holding Infinity": (edit_model(poke("3.bias", np.inf), digest=True), "Infinity"),
    "unknown layer type": (
        edit_model(layers([{"type": "os.system", "args": {"command": "rm -rf /"}}])),
        "unknown layer type",
    ),
    "Linear 10^6 x 10^6 without the weights": (
        edit_model(
            layers(
                [
                    {
                        "type": "Linear",
                        "args": {"in_features": 10**6, "out_features": 10**6, "bias": False},
                    }
                ]
            )
        ),
        "needs '0.weight' of shape (1000000, 1000000)",
    ),
    "Linear of 10^12 inputs": (
        edit_model(layers([{"type": "Linear", "args": {"in_features": 10**12}}])),
        "out of range",
    ),
    "a 2^24-wide pooling output": (edit_model(layers(*adaptive_pool_2_24())), "free on this"),
    "sizes given as strings": (
        edit_model(
            layers(
                [{"type": "Linear", "args": {"in_features": "64", "out_features": 10, "bias": 1}}]
            )
        ),
        "bias=1 must be true or false",
    ),
    "arguments missing": (
        edit_model(layers([{"type": "Linear", "args": {"in_features": 64}}])),
        "bad arguments",
    ),
    "layers not a list": (edit_model(layers({"0": "Linear"})), "must be a list"),
    "no format marker": (edit_model(lambda t, d: d.pop("format")), "not a chainrule model"),
    "a tensor missing": (edit_model(lambda t, d: t.pop("3.bias")), "needs '3.bias'"),
    "an extra tensor": (
        edit_model(lambda t, d: t.update({"9.weight": np.zeros(3, np.float32)})),
        "no layer uses",
    ),
    "no chainrule header, model.json nested deep": (
        lambda run: (
            (run / "model.safetensors").write_bytes(safetensors_bytes(read_model(run)[0])),
            (run / "model.json").write_text(nested(10_000)),
        ),
        "nested",
    ),
    "no chainrule header, model.json a FIFO": (
        lambda run: (
            (run / "model.safetensors").write_bytes(safetensors_bytes(read_model(run)[0])),
            (run / "model.json").unlink(),
            fifo(run / "model.json"),
        ),
        "FIFO",
    ),
    "no chainrule header, model.json /dev/zero": (
        lambda run: (
            (run / "model.safetensors").write_bytes(safetensors_bytes(read_model(run)[0])),
            (run / "model.json").unlink(),
            dev_zero(run / "model.json"),
        ),
        "device",
    ),
    "no chainrule header, no model.json": (
        lambda run: (
            (run / "model.safetensors").write_bytes(safetensors_bytes(read_model(run)[0])),
            (run / "model.json").unlink(),
        ),
        "no architecture",
    ),
    "config.json missing": (lambda run: (run / "config.json").unlink(), "no config.json"),
    "config.json not JSON": (config_json("{oops"), "not valid JSON"),
    "config.json a list": (config_json("[1]"), "expected a JSON object"),
    "config.json epochs true": (config_json('{"epochs": true}'), "epochs must be"),
    "config.json lr a string": (config_json('{"lr": "fast"}'), "lr must be"),
    "config.json unknown key": (config_json('{"epoch": 3}'), "unknown setting"),
    "config.json nested deep": (config_json('{"hidden": ' + nested(5000) + "}"), "nested"),
    "config.json 17 MB": (config_json(json.dumps({"out": HUGE})), "more than"),
    "config.json a FIFO": (replace_with("config.json", fifo), "FIFO"),
    "config.json /dev/zero": (replace_with("config.json", dev_zero), "device"),
    "no model yet (killed in epoch 1)": (
        lambda run: [(run / n).unlink() for n in ("model.safetensors", "model.json")],
        "no trained model yet",
    ),
    "run folder missing": (lambda run: shutil.rmtree(run), "no such folder"),
    "run folder a file": (lambda run: (shutil.rmtree(run), run.write_text("x")), "no such folder"),
}


@pytest.mark.parametrize("case", MODEL_FILES, ids=[f"model-files: {c}" for c in MODEL_FILES])
def test_a_damaged_model_file_is_refused_by_every_reader(case, run_copy, tmp_path, capsys):
    damage, fragment = MODEL_FILES[case]
    np.save(tmp_path / "digit.npy", np.zeros((8, 8), np.float32))
    damage(run_copy)
    for command in READERS:
        argv = [command, run_copy] + ([tmp_path / "digit.npy"] if command == "predict" else [])
        refused(capsys, argv, fragment)


def test_metrics_json_garbage_is_refused_by_info(run_copy, capsys):
    (run_copy / "metrics.json").write_text("{nope")
    refused(capsys, ["info", run_copy], "metrics.json", "not valid JSON")


def test_the_lens_refuses_a_history_that_is_a_fifo_or_not_numbers(run_copy, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    history = run_copy / "history.csv"
    history.unlink()
    fifo(history)
    refused(
        capsys, ["plot", "curves", run_copy, "--out", tmp_path / "c.png"], "history.csv", "FIFO"
    )
    history.unlink()
    history.write_text("epoch,loss\n1,abc\n")
    refused(capsys, ["plot", "curves", run_copy, "--out", tmp_path / "c.png"], "line 2")
    assert not (tmp_path / "c.png").exists()


def test_a_config_data_path_cannot_leave_the_run_folder(run_copy, capsys, tmp_path):
    (tmp_path / "outside.csv").write_text("x,y\n1,2\n")
    config = json.loads((run_copy / "config.json").read_text())
    config.update(data="../outside.csv", dataset="csv", target=None)
    (run_copy / "config.json").write_text(json.dumps(config))
    refused(capsys, ["evaluate", run_copy], "must be a file in the run folder")


def test_a_run_killed_right_after_its_config_says_how_to_continue(run_copy, capsys):
    for name in ("model.safetensors", "model.json", "checkpoint.safetensors", "history.csv"):
        (run_copy / name).unlink(missing_ok=True)
    refused(capsys, ["info", run_copy], "no trained model here")  # metrics.json: it finished
    (run_copy / "metrics.json").unlink()  # only config.json: killed before its first epoch ended
    for command in READERS:
        argv = [command, run_copy] + ([run_copy / "x.npy"] if command == "predict" else [])
        refused(capsys, argv, "no trained model yet", "--resume")


def test_a_stale_model_json_is_ignored_the_header_wins(run_copy, capsys, tmp_path):
    """A kill between writing model.safetensors and model.json leaves the old model.json: the
    weight file is the model, so readers still see one whole model."""
    before = succeeds(capsys, ["evaluate", run_copy])
    description = json.loads((run_copy / "model.json").read_text())
    description["layers"][1]["args"]["out_features"] = 99  # a different, older model
    (run_copy / "model.json").write_text(json.dumps(description))
    assert succeeds(capsys, ["evaluate", run_copy]) == before
    (run_copy / "model.json").unlink()
    assert succeeds(capsys, ["evaluate", run_copy]) == before
    assert "Linear(64 -> 16)" in succeeds(capsys, ["info", run_copy])


def test_reading_a_run_never_writes_creates_or_downloads(run_copy, tmp_path, capsys, monkeypatch):
    """config.json asking for a download into a folder: evaluate/predict/info leave no trace."""
    config = json.loads((run_copy / "config.json").read_text())
    missing = tmp_path / "would-be-created"
    config.update(dataset="mnist", download=True, data_dir=str(missing))
    (run_copy / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise AssertionError("a read-only command tried to download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    listing = sorted((p.name, p.stat().st_mtime_ns) for p in run_copy.iterdir())
    np.save(tmp_path / "digit.npy", np.zeros((8, 8), np.float32))
    refused(capsys, ["evaluate", run_copy], "no such folder")
    succeeds(capsys, ["predict", run_copy, tmp_path / "digit.npy"])
    succeeds(capsys, ["info", run_copy])
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run_copy.iterdir()) == listing
    assert not missing.exists() and not (tmp_path / "cache").exists()


# -- checkpoints -----------------------------------------------------------------------------------


def edit_checkpoint(edit):
    """Load the checkpoint, change it, save it with a valid SHA-256 (a crafted file)."""

    def damage(run):
        state = io.load_checkpoint(run / "checkpoint.safetensors")
        edit(state)
        io.save_checkpoint(run / "checkpoint.safetensors", state)

    return damage


def set_in(*path, value):
    def edit(state):
        target = state
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def edit_config(**changes):
    def damage(run):
        config = json.loads((run / "config.json").read_text())
        config.update(changes)
        (run / "config.json").write_text(json.dumps(config))

    return damage


def raw_checkpoint(header_text):
    """A checkpoint whose JSON skeleton is ``header_text`` (no SHA-256: a damaged file)."""

    def damage(run):
        data = safetensors_bytes(
            {"x": np.zeros(1, np.float32)}, metadata={"chainrule-checkpoint": header_text}
        )
        (run / "checkpoint.safetensors").write_bytes(data)

    return damage


CHECKPOINTS = {
    "truncated": (file_bytes("checkpoint.safetensors", lambda b: b[: len(b) // 2]), "not a valid"),
    "junk": (file_bytes("checkpoint.safetensors", lambda b: b"\0" * 100), "safetensors"),
    "empty": (file_bytes("checkpoint.safetensors", lambda b: b""), "safetensors"),
    "a FIFO": (replace_with("checkpoint.safetensors", fifo), "FIFO"),
    "a folder": (replace_with("checkpoint.safetensors", os.mkdir), "folder"),
    "a model file instead": (
        lambda run: shutil.copy(run / "model.safetensors", run / "checkpoint.safetensors"),
        "not a chainrule checkpoint",
    ),
    "a flipped bit": (file_bytes("checkpoint.safetensors", flip_a_weight_bit), "SHA-256"),
    "skeleton nested 10,000 deep": (raw_checkpoint(nested(10_000)), "nested"),
    "skeleton naming an absent array": (raw_checkpoint('{"a": {"__array__": "nope"}}'), "absent"),
    "skeleton naming an array by an object": (
        raw_checkpoint('{"a": {"__array__": {"x": 1}}}'),
        "absent",
    ),
    "skeleton not a training state": (raw_checkpoint("[1, 2, 3]"), "training state"),
    "no model weights": (edit_checkpoint(lambda s: s.pop("model")), "'model'"),
    "epoch -1": (edit_checkpoint(set_in("epoch", value=-1)), "outside"),
    "next batch 10^9": (edit_checkpoint(set_in("next_batch", value=10**9)), "outside"),
    "epoch a string": (edit_checkpoint(set_in("epoch", value="two")), "'epoch'"),
    "random state garbage": (edit_checkpoint(set_in("rng", value={"a": 1})), "random state"),
    "optimizer state of the wrong shape": (
        edit_checkpoint(set_in("optimizer", "state", "0", "exp_avg", value=np.zeros(3))),
        "optimizer",
    ),
    "optimizer state for parameter 99": (
        edit_checkpoint(set_in("optimizer", "state", "99", value={})),
        "parameter '99'",
    ),
    "history rows of text": (
        edit_checkpoint(set_in("history", value=[{"loss": "low"}])),
        "history",
    ),
    "epoch sums missing": (edit_checkpoint(set_in("epoch_metrics", value={})), "epoch metrics"),
    "callback states not objects": (
        edit_checkpoint(set_in("callbacks", value={"0.TerminateOnNaN": 3})),
        "callback",
    ),
    "callback state of the wrong type": (
        edit_checkpoint(set_in("callbacks", "0.TerminateOnNaN", value={"first_loss": "x"})),
        "first_loss",
    ),
    "recorded settings garbage": (
        edit_checkpoint(set_in("extra", "config", value={"epochs": "many"})),
        "recorded settings",
    ),
    "weights of another architecture (no recorded settings)": (
        edit_checkpoint(
            lambda s: (
                s.pop("extra"),
                s["model"].update({"1.weight": np.zeros((32, 64), np.float32)}),
            )
        ),
        "another architecture",
    ),
    "another optimizer (no recorded settings)": (
        edit_checkpoint(
            lambda s: (
                s.pop("extra"),
                [g.update(momentum=0.9) for g in s["optimizer"]["param_groups"]],
            )
        ),
        "another optimizer",
    ),
    "config.json edited: lr": (edit_config(lr=0.1), "lr = 0.1"),
    "config.json edited: optimizer": (edit_config(optimizer="adamw"), "optimizer = 'adamw'"),
    "config.json edited: batch size": (edit_config(batch_size=64), "batch_size = 64"),
    "config.json edited: seed": (edit_config(seed=7), "seed = 7"),
    "config.json edited: data set": (edit_config(dataset="xor"), "dataset = 'xor'"),
    "config.json edited: architecture": (edit_config(hidden=[32]), "hidden = 32"),
    "config.json edited: schedule": (edit_config(schedule="cosine"), "schedule = 'cosine'"),
    "config.json edited: beta1": (edit_config(beta1=0.5), "beta1 = 0.5"),
    "config.json edited: a bad value": (edit_config(beta2=2), "beta2 must be in [0, 1)"),
    "config.json edited: another optimizer's setting": (
        edit_config(momentum=0.5),
        "momentum: the optimizer adam has no such setting",
    ),
    "no config.json": (lambda run: (run / "config.json").unlink(), "not a chainrule run"),
    "a history.csv chainrule did not write": (
        lambda run: (run / "history.csv").write_text("my own notes"),
        "not a chainrule file",
    ),
}


@pytest.mark.parametrize("case", CHECKPOINTS, ids=[f"checkpoints: {c}" for c in CHECKPOINTS])
def test_a_damaged_or_mismatched_checkpoint_is_refused(case, run_copy, capsys):
    damage, fragment = CHECKPOINTS[case]
    damage(run_copy)
    listing = sorted(p.name for p in run_copy.iterdir())
    refused(capsys, ["train", "--out", run_copy, "--resume", "--quiet"], fragment)
    assert sorted(p.name for p in run_copy.iterdir()) == listing  # nothing written


RESUME_REQUESTS = {
    "--epochs lower than done": (["--epochs", "1"], "already trained 2 epochs"),
    "another option besides --epochs": (["--lr", "0.5"], "only --epochs may change"),
    "--resume with --overwrite": (["--overwrite"], "choose one"),
    "--resume with --config": (["--config", "x.toml"], "only --epochs may change"),
}


@pytest.mark.parametrize(
    "case", RESUME_REQUESTS, ids=[f"checkpoints: {c}" for c in RESUME_REQUESTS]
)
def test_a_resume_that_would_mix_two_runs_is_refused(case, run_copy, capsys, tmp_path):
    options, fragment = RESUME_REQUESTS[case]
    (tmp_path / "x.toml").write_text("lr = 0.5\n")
    if "--config" in options:
        options = ["--config", tmp_path / "x.toml"]
    refused(capsys, ["train", "--out", run_copy, "--resume", "--quiet", *options], fragment)


def test_checkpoints_resume_without_out_or_run(capsys, tmp_path):
    refused(capsys, ["train", "--resume"], "needs --out")
    refused(capsys, ["train", "--resume", "--out", tmp_path / "none"], "no such folder")


def test_a_cosine_schedule_cannot_be_stretched_on_resume(tmp_path, capsys):
    out = tmp_path / "cos"
    argv = ["train", "--epochs", "2", "--hidden", "8", "--schedule", "cosine", "--out", out]
    succeeds(capsys, [*argv, "--quiet"])
    refused(capsys, ["train", "--out", out, "--resume", "--epochs", "4"], "cosine", "2 epochs")
    assert main(["train", "--out", str(out), "--resume", "--epochs", "2", "--quiet"]) == 0
