"""The README and the tutorial run as written: every ``bash``, ``python`` and ``toml`` block of
both, in order, in a fresh empty folder, as a reader would paste them.

- ``python`` blocks of one document share one namespace (a later block uses an earlier one's
  names, as in one interpreter session).
- A ``toml`` block is a file: its first line, ``# NAME.toml``, names it.
- A ``bash`` line ``chainrule ...`` runs through ``chainrule.cli.main`` in this process (the
  same code as the ``chainrule`` script, without a second interpreter start per line); any other
  line (``mpiexec ...``) runs in ``bash`` with a ``chainrule`` on the PATH that is this
  checkout's ``python -m chainrule``. Open MPI's variables for running as root are set, as CI
  containers run as root (the README says so).
- ``pip install`` lines are not run (no network, and slow): they are checked to install
  ``chainrule[...]`` with extras that exist, so that they work from any folder; the one developer
  line, ``pip install -e '.[dev]' && python -m pytest``, runs in a clone, and its second half is
  this suite itself.
- ``chainrule playground`` serves until Ctrl-C: it runs on any free port without opening a
  browser, and is stopped once its page has answered.
- MNIST comes through ``--download``, from a cache that already holds the committed 1,000-image
  subset (as after a first download), so the folder holds nothing the reader would not have.
- ``CHAINRULE_DOCS_QUICK`` (default 1, as the README says): long commands are shortened by
  appending the options of :data:`QUICK` (argparse takes the last value given); ``0`` runs
  everything at its full size (minutes).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
from PIL import Image

from chainrule.cli import main
from chainrule.data import datasets
from chainrule.data.download import sha256_of

pytest.importorskip("matplotlib", reason="the tutorial draws with matplotlib (the plot extra)")

ROOT = Path(__file__).resolve().parents[1]
README, TUTORIAL = ROOT / "README.md", ROOT / "docs" / "how-networks-learn.md"
QUICK_DEFAULT = os.environ.get("CHAINRULE_DOCS_QUICK", "1") != "0"
# command words -> options appended in quick mode
QUICK = {
    ("train",): ["--epochs", "1"],
    ("plot", "boundary"): ["--epochs", "2", "--every", "1"],
    ("plot", "landscape"): ["--epochs", "1", "--resolution", "5"],
    ("plot", "gradient-flow"): ["--epochs", "1"],
    ("plot", "fit-line"): ["--steps", "4"],
    ("plot", "descent"): ["--steps", "3"],
    ("plot", "race"): ["--steps", "5"],
    ("lr-find",): ["--steps", "5"],
    ("explain", "attention"): ["--train-steps", "20"],
    ("explain", "sampling"): ["--train-steps", "20"],
}
EXTRAS = set(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
)
DEVELOPER_LINE = shlex.split("pip install -e '.[dev]' && python -m pytest")
ROOT_MPI = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


@dataclass
class Block:
    language: str
    text: str
    line: int  # where the block starts, for messages

    @property
    def where(self) -> str:
        return f"line {self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    found, block = [], None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if block is None and line.startswith("```"):
            block = Block(line[3:].strip(), "", number)
        elif block is not None and line.startswith("```"):
            found.append(block)
            block = None
        elif block is not None:
            block.text += line + "\n"
    assert block is None, f"{path.name}: the block at line {block.line} is never closed"
    return found


def shell_lines(block: Block) -> list[list[str]]:
    """The words of each command line of a bash block, without comments (a backslash continues
    a line)."""
    text = block.text.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if line.strip()]


def quick(argv: list[str], enabled: bool) -> list[str]:
    """``argv`` (after ``chainrule``) with the quick options of its command appended."""
    if not enabled:
        return argv
    for words, options in QUICK.items():
        if tuple(argv[: len(words)]) == words:
            return argv + options
    return argv


def check_install(command: str) -> None:
    """A ``pip install`` that works from any folder: ``chainrule`` with extras that exist."""
    words = shlex.split(command)
    assert words[:2] == ["pip", "install"], command
    targets = [w for w in words[2:] if not w.startswith("-")]
    assert targets, command
    for target in targets:
        name, _, extras = target.partition("[")
        assert name == "chainrule", f"{command}: installs {target!r}, which needs a checkout"
        assert set(filter(None, extras.rstrip("]").split(","))) <= EXTRAS, command


class Reader:
    """Runs a document's blocks in one folder, as a reader following it would."""

    def __init__(self, folder: Path, quick: bool):
        self.folder, self.quick, self.namespace = folder, quick, {"__name__": "__main__"}
        bin_dir = folder.parent / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "chainrule"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m chainrule "$@"\n')
        shim.chmod(0o755)
        path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
        self.env = {**os.environ, **ROOT_MPI, "PATH": path, "OMPI_MCA_btl": "^ofi"}
        self.env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"  # 2 processes on 1 core too

    def run(self, block: Block) -> None:
        if block.language == "python":
            exec(compile(block.text, block.where, "exec"), self.namespace)
        elif block.language == "toml":
            first = block.text.splitlines()[0]
            assert re.fullmatch(r"# \S+\.toml", first), f"{block.where}: name the file: # X.toml"
            tomllib.loads(block.text)
            (self.folder / first[2:]).write_text(block.text)
        else:
            assert block.language in ("bash", "sh"), f"{block.where}: ```{block.language}"
            for line in shell_lines(block):
                self.shell(line, block)

    def shell(self, line: list[str], block: Block) -> None:
        if line == DEVELOPER_LINE:
            return
        while line:
            end = line.index("&&") if "&&" in line else len(line)
            words, line = line[:end], line[end + 1 :]
            if words[:2] == ["pip", "install"]:
                check_install(shlex.join(words))
            elif words[:2] == ["chainrule", "playground"]:
                self.playground(words)
            elif words[0] == "chainrule":
                argv = quick(words[1:], self.quick)
                assert main(argv) == 0, f"{block.where}: {shlex.join(words)}"
            else:
                self.in_bash(words, block)

    def in_bash(self, words: list[str], block: Block) -> None:
        at = words.index("chainrule")
        words = words[: at + 1] + quick(words[at + 1 :], self.quick)
        job = subprocess.run(
            shlex.join(words),
            shell=True,
            executable="/bin/bash",
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert job.returncode == 0, f"{block.where}: {shlex.join(words)}\n{job.stderr[-2000:]}"

    def playground(self, words: list[str]) -> None:
        server = subprocess.Popen(
            [*words, "--port", "0", "--no-browser"],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = re.search(r"http://\S+/", server.stdout.readline()).group(0)
            with urllib.request.urlopen(url, timeout=30) as page:
                assert page.status == 200 and b"<html" in page.read().lower()
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def mnist_cache(tmp_path, monkeypatch, mnist_dir):
    """``$CHAINRULE_DATA`` holding the committed MNIST subset, as a first ``--download`` leaves
    it; its checksums stand for the originals'."""
    cache = tmp_path / "cache"
    (cache / "mnist").parent.mkdir()
    (cache / "mnist").symlink_to(mnist_dir)
    monkeypatch.setenv("CHAINRULE_DATA", str(cache))
    subset = {f.name: sha256_of(f) for f in mnist_dir.glob("*.gz")}
    monkeypatch.setitem(datasets.SOURCES["mnist"], "sha256", subset)
    return cache


def follow(doc: Path, tmp_path, monkeypatch) -> Path:
    """Run every block of ``doc`` in a fresh empty folder; returns the folder."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    reader = Reader(fresh, QUICK_DEFAULT)
    for block in blocks(doc):
        reader.run(block)
    return fresh


def test_every_install_line_works_from_anywhere():
    """Blocks and prose alike: ``pip install 'chainrule[plot]'``, never ``'.[plot]'``, except
    the developer's editable install in a clone."""
    for doc in (README, TUTORIAL):
        for command in re.findall(r"pip install [^`\n]+", doc.read_text()):
            command = command.split(" && ")[0].strip()
            if command.startswith("pip install -e "):
                assert re.fullmatch(r"pip install -e '\.\[\w+\]'", command), command
                continue
            check_install(command)


def test_the_readme_runs_as_written(tmp_path, monkeypatch, mnist_cache):
    fresh = follow(README, tmp_path, monkeypatch)
    assert (fresh / "runs" / "mine" / "model.onnx").is_file()  # every run folder the text names
    for run in ("mine", "spirals", "mnist", "seven", "toml", "diabetes", "houses", "two"):
        assert (fresh / "runs" / run / "metrics.json").is_file(), run


def test_the_tutorial_runs_as_written(tmp_path, monkeypatch, mnist_cache):
    """Every command of docs/how-networks-learn.md, and every figure it shows is one that a
    command of it writes (and is committed beside it, small)."""
    fresh = follow(TUTORIAL, tmp_path, monkeypatch)
    lines = [line for b in blocks(TUTORIAL) for line in shell_lines(b)]
    assert len(lines) >= 18 and not any("--data-dir" in line for line in lines)
    written = set()
    for word in (word for line in lines for word in line):
        if word.startswith("figures/"):
            with Image.open(fresh / word) as image:
                assert image.size[0] >= 800, word
                assert getattr(image, "n_frames", 1) >= (3 if word.endswith(".gif") else 1), word
            written.add(word)
    shown = set(re.findall(r"\]\((figures/[^)]+)\)", TUTORIAL.read_text()))
    assert shown <= written
    for name in shown:
        committed = TUTORIAL.parent / name
        assert committed.is_file() and committed.stat().st_size < 400_000, name
