import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The tests test this checkout's own source, installed or not (and whatever other copy of
# chainrule is installed); the programs they start (the CLI, mpiexec workers) inherit it.
SOURCE = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SOURCE)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [SOURCE, os.environ.get("PYTHONPATH")]))

settings.register_profile(
    "default",
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
settings.register_profile("thorough", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

import chainrule as cr  # noqa: E402 - this checkout's, from SOURCE

MNIST_SUBSET = cr.data.MNIST_SUBSET
FULL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir():
    """MNIST-format files committed with the tests: the first 1,000 training and 200 test
    images of MNIST, shipped with the package (src/chainrule/data/mnist_subset/README.md)."""
    return MNIST_SUBSET


@pytest.fixture
def full_mnist_dir():
    """The complete MNIST files beside the checkout (``../shared/data/mnist``), for the long
    full-data runs only; they are skipped where that folder is absent (a fresh clone)."""
    if not (FULL_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the full MNIST files are not at {FULL_MNIST} (only the slow runs need them)")
    return FULL_MNIST


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A finished two-epoch run on the 8x8 digits (MLP 64-16-10), trained once per session;
    tests that change it work on a copy (:func:`run_copy`)."""
    from chainrule.cli import main

    out = tmp_path_factory.mktemp("session-runs") / "small"
    assert main(["train", "--epochs", "2", "--hidden", "16", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run_copy(small_run, tmp_path):
    """A fresh copy of :func:`small_run` to damage."""
    import shutil

    return Path(shutil.copytree(small_run, tmp_path / "run"))
