"""SIGKILL ``chainrule train`` at random moments, again and again: after every kill the run
folder must be readable by ``evaluate``, ``predict`` and ``info`` (or, before the first epoch
has ended, refused with one line saying so), and ``--resume`` must finish with weights and
history identical, bit for bit, to a run that was never interrupted."""

import csv
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from hostile import time_limit

OPTIONS = ["--epochs", "6", "--hidden", "32", "--dropout", "0.2", "--checkpoint-every", "3"]


def launch(out, resume: bool) -> subprocess.Popen:
    argv = ["train", "--out", str(out), "--quiet"] + (["--resume"] if resume else OPTIONS)
    return subprocess.Popen(
        [sys.executable, "-m", "chainrule", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(out, resume: bool) -> None:
    process = launch(out, resume)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run, and its timing: seconds until it wrote config.json (start-up) and
    in all; kills are drawn from that span."""
    out = tmp_path_factory.mktemp("kills") / "reference"
    started = time.monotonic()
    process = launch(out, resume=False)
    while not (out / "config.json").exists() and process.poll() is None:
        time.sleep(0.01)
    startup = time.monotonic() - started
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return out, startup, time.monotonic() - started


def readers_agree(out, digit, capsys) -> str:
    """evaluate, predict and info on a killed run: all work once a model exists; before that
    each refuses in one line. Returns which of the two it was."""
    outcomes = set()
    for argv in (["evaluate", out], ["predict", out, digit], ["info", out]):
        capsys.readouterr()
        with time_limit(60):
            status = main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        if status == 0:
            outcomes.add("loads")
        else:
            assert status == 2 and len(err.strip().splitlines()) == 1, err
            assert "no trained model yet" in err or "not a chainrule run folder" in err, err
            outcomes.add("not yet")
    assert len(outcomes) == 1, outcomes  # the three readers see the same folder
    assert outcomes == {"not yet"} or (out / "model.safetensors").exists()
    return outcomes.pop()


def history_without_times(out):
    with open(out / "history.csv") as f:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(f)]


def kill_at_random_moments(reference, tmp_path, capsys, kills: int, seed: int) -> dict:
    """Kill runs until ``kills`` kills have landed: each run folder is killed and resumed until
    a resume outlives its kill, then it must equal the reference; then a new folder starts."""
    ref, startup, seconds = reference
    rng = random.Random(seed)
    np.save(tmp_path / "digit.npy", cr.data.load_digits()[0][0])
    counts = {"kills": 0, "loads": 0, "not yet": 0, "runs": 0}
    while counts["kills"] < kills:
        out = tmp_path / f"killed-{counts['runs']}"
        counts["runs"] += 1
        while counts["kills"] < kills:
            process = launch(out, resume=(out / "config.json").exists())
            time.sleep(rng.uniform(0.5 * startup, seconds))
            if process.poll() is not None:  # it finished before the kill came
                assert process.returncode == 0, process.stderr.read()
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            counts["kills"] += 1
            if out.exists():
                counts[readers_agree(out, tmp_path / "digit.npy", capsys)] += 1
        if not (out / "metrics.json").exists():
            finish(out, resume=(out / "config.json").exists())
        a, b = cr.load(ref / "model"), cr.load(out / "model")
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            np.testing.assert_array_equal(p, q, err_msg=name)
        assert history_without_times(out) == history_without_times(ref)
        assert not [name for name in os.listdir(out) if name.endswith(".tmp")]  # cleaned up
    return counts


def test_a_run_killed_at_random_moments_loads_and_resumes_bit_identically(
    reference, tmp_path, capsys
):
    counts = kill_at_random_moments(reference, tmp_path, capsys, kills=6, seed=2024)
    print(f"\nkills: {counts}")
    assert counts["kills"] == 6


@pytest.mark.slow
def test_thirty_random_kills(reference, tmp_path, capsys):
    counts = kill_at_random_moments(reference, tmp_path, capsys, kills=30, seed=7)
    print(f"\nkills: {counts}")
