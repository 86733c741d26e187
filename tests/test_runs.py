"""Run folders: nothing of the user's is overwritten or deleted, --overwrite replaces only an
earlier chainrule run, leftovers of killed writes are cleaned up, and --resume follows its rules."""

import json
import os

import numpy as np

import chainrule as cr
from chainrule.runs import folder
from hostile import refused, succeeds

TINY = ["--epochs", "2", "--hidden", "8", "--quiet"]


def listing(path):
    return {p.name: p.read_bytes() for p in path.iterdir()}


def test_an_earlier_run_is_replaced_only_with_overwrite(small_run, run_copy, capsys):
    (run_copy / "notes.txt").write_text("my notes")
    before = listing(run_copy)
    refused(capsys, ["train", "--out", run_copy, *TINY], "already holds an earlier chainrule run")
    assert listing(run_copy) == before
    succeeds(capsys, ["train", "--out", run_copy, "--overwrite", "--seed", "3", *TINY])
    assert (run_copy / "notes.txt").read_text() == "my notes"
    assert json.loads((run_copy / "config.json").read_text())["seed"] == 3
    assert json.loads((run_copy / "config.json").read_text())["hidden"] == [8]
    assert (run_copy / "model.safetensors").read_bytes() != before["model.safetensors"]


def test_files_chainrule_did_not_write_are_never_replaced(tmp_path, capsys):
    for name, text in (("config.json", '{"my": "settings"}'), ("history.csv", "date,amount\n")):
        out = tmp_path / name
        out.mkdir()
        (out / name).write_text(text)
        refused(capsys, ["train", "--out", out, "--overwrite", *TINY], name, "not a chainrule file")
        assert (out / name).read_text() == text and os.listdir(out) == [name]


def test_a_fifo_in_a_run_folder_is_not_waited_on(run_copy, capsys):
    from hostile import fifo

    (run_copy / "history.csv").unlink()
    fifo(run_copy / "history.csv")
    refused(capsys, ["train", "--out", run_copy, "--overwrite", *TINY], "history.csv", seconds=10)
    refused(capsys, ["train", "--out", run_copy, "--resume", "--quiet"], "history.csv", seconds=10)


def test_temporaries_of_killed_writes_are_removed_and_nothing_else(run_copy, capsys):
    stale = [run_copy / ".model.safetensors.k2j4h5g6.tmp", run_copy / ".history.csv.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = [run_copy / ".notes.txt.abcdefgh.tmp", run_copy / "model.safetensors.tmp"]
    for path in keep:
        path.write_bytes(b"the user's")
    succeeds(capsys, ["evaluate", run_copy])
    assert all(p.exists() for p in stale)  # reading a run changes nothing
    succeeds(capsys, ["train", "--out", run_copy, "--overwrite", *TINY])
    assert not any(p.exists() for p in stale) and all(p.exists() for p in keep)


def test_the_default_folder_is_never_one_that_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "20250101-120000").mkdir(parents=True)
    (tmp_path / "runs" / "20250101-120000-2").mkdir()
    assert folder.unique_default_folder("20250101-120000").name == "20250101-120000-3"
    assert folder.unique_default_folder("20250101-120001").name == "20250101-120001"


def weights(run):
    return [p.numpy().copy() for p in cr.load(run / "model").state_dict().values()]


def test_a_run_killed_before_its_first_checkpoint_restarts_from_the_start(
    small_run, run_copy, capsys
):
    for name in ("checkpoint.safetensors", "model.safetensors", "model.json", "metrics.json"):
        (run_copy / name).unlink()
    refused(capsys, ["evaluate", run_copy], "no trained model yet", "--resume")
    succeeds(capsys, ["train", "--out", run_copy, "--resume", "--quiet"])
    for a, b in zip(weights(small_run), weights(run_copy)):
        np.testing.assert_array_equal(a, b)


def test_resume_on_a_finished_run_without_its_checkpoint_leaves_the_model_alone(run_copy, capsys):
    """Issue 25, section 5: it retrained from scratch and replaced model.safetensors."""
    (run_copy / "checkpoint.safetensors").unlink()
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    refused(capsys, ["train", "--out", run_copy, "--resume", "--quiet"], "nothing to resume")
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


def test_more_epochs_on_resume_equal_a_longer_run(small_run, run_copy, tmp_path, capsys):
    succeeds(capsys, ["train", "--out", run_copy, "--resume", "--epochs", "3", "--quiet"])
    longer = tmp_path / "longer"
    succeeds(capsys, ["train", "--out", longer, "--epochs", "3", "--hidden", "16", "--quiet"])
    for a, b in zip(weights(longer), weights(run_copy)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((run_copy / "metrics.json").read_text())["epochs"] == 3


def test_info_on_an_unfinished_run_says_how_to_continue(run_copy, capsys):
    (run_copy / "metrics.json").unlink()
    assert "continue with: chainrule train --out" in succeeds(capsys, ["info", run_copy])
    said = succeeds(capsys, ["info", run_copy])
    assert "if it diverged, a resume diverges again: start afresh with --overwrite" in said
