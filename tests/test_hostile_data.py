"""Hostile and corrupt data files: IDX sets, cached downloads, .npy and image inputs.

Each is refused with one line naming the file, promptly, before allocating what it declares;
nothing is written (a refused ``train`` creates no run folder). And images are read the way they
look: a 16-bit PNG gives the prediction of the same 8-bit PNG.
"""

import gzip
import hashlib
import os
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from chainrule import data
from chainrule.data import datasets
from hostile import (
    dev_zero,
    fifo,
    idx_bytes,
    npy_header,
    png_header,
    refused,
    succeeds,
    time_limit,
    write_idx,
)

IMAGES, LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"


def bomb(path):
    """Gzip that decompresses to far more than its header's (1000, 28, 28) declare: 64 MiB of
    zeros follow (the file itself is about 64 KiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(idx_bytes(np.zeros((1000, 28, 28), np.uint8)))]
    zeros = bytes(1 << 20)
    parts += [packer.compress(zeros) for _ in range(64)]
    path.write_bytes(b"".join(parts) + packer.flush())


def header_only(shape, compress=True):
    def write(path):
        raw = idx_bytes(np.zeros(0, np.uint8), shape=shape)
        path.write_bytes(gzip.compress(raw) if compress else raw)

    return write


def truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def raw_truncated(path):
    path.unlink()
    (path.parent / path.name.removesuffix(".gz")).write_bytes(
        idx_bytes(np.zeros((1000, 28, 28), np.uint8))[:-5]
    )


def replace(path, make):
    path.unlink()
    make(path)


def no_examples(path):
    """Images and labels that agree: 0 of each."""
    write_idx(path, np.zeros((0, 28, 28)))
    write_idx(path.parent / LABELS, np.zeros(0))


IDX_CASES = {
    "a decompression bomb": (IMAGES, bomb, "more data than its header"),
    "a header declaring 10^12 bytes": (IMAGES, header_only((10**4, 10**4, 10**4)), "more than"),
    "a raw header declaring 10^12 bytes": (
        IMAGES,
        lambda p: replace(p, header_only((10**4, 10**4, 10**4), compress=False)),
        "more than",
    ),
    "a header declaring more than the gzip can hold": (
        IMAGES,
        header_only((60000, 100, 100)),
        "can hold",
    ),
    "truncated gzip": (IMAGES, truncate, "truncated"),
    "truncated raw file": (IMAGES, raw_truncated, "truncated or corrupt"),
    "bad magic number": (LABELS, lambda p: p.write_bytes(gzip.compress(b"\1\2\3\4" * 9)), "magic"),
    "float32 values": (
        IMAGES,
        lambda p: p.write_bytes(gzip.compress(idx_bytes(np.zeros(4, np.float32), 0x0D, (4,)))),
        "float32",
    ),
    "no dimensions": (
        LABELS,
        lambda p: p.write_bytes(gzip.compress(bytes([0, 0, 8, 0]))),
        "header",
    ),
    "labels outside 0..9": (LABELS, lambda p: write_idx(p, np.full(1000, 12)), "outside 0..9"),
    "fewer labels than images": (LABELS, lambda p: write_idx(p, np.zeros(999)), "do not match"),
    "labels with two axes": (LABELS, lambda p: write_idx(p, np.zeros((1000, 2))), "do not match"),
    "test images of another size": (
        TEST_IMAGES,
        lambda p: write_idx(p, np.zeros((200, 20, 20))),
        "same size",
    ),
    "a FIFO": (IMAGES, lambda p: replace(p, fifo), "FIFO"),
    "/dev/zero": (IMAGES, lambda p: replace(p, dev_zero), "device"),
    "an empty file": (LABELS, lambda p: p.write_bytes(b""), "magic"),
    "gzip magic then garbage": (LABELS, lambda p: p.write_bytes(b"\x1f\x8b" + bytes(50)), "gzip"),
    "trailing garbage after the gzip stream": (
        LABELS,
        lambda p: p.write_bytes(p.read_bytes() + b"junk"),
        "gzip",
    ),
    "a folder in place of the file": (IMAGES, lambda p: replace(p, os.mkdir), "folder"),
    "headers declaring 0 examples": (IMAGES, no_examples, "images of shape (0, 28, 28) hold no"),
    "images of 0 pixels": (
        IMAGES,
        lambda p: write_idx(p, np.zeros((1000, 0, 28))),
        "images of shape (1000, 0, 28) hold no data",
    ),
}


@pytest.mark.parametrize("case", IDX_CASES, ids=[f"data-files: IDX {c}" for c in IDX_CASES])
def test_a_hostile_idx_file_is_refused_and_nothing_is_written(case, mnist_dir, tmp_path, capsys):
    name, damage, fragment = IDX_CASES[case]
    folder = shutil.copytree(mnist_dir, tmp_path / "mnist")
    damage(folder / name)
    out = tmp_path / "run"
    argv = ["train", "--dataset", "mnist", "--data-dir", folder, "--out", out, "--quiet"]
    refused(capsys, argv, fragment, seconds=20)
    assert not out.exists()


def test_a_corrupt_cached_download_is_refused_when_used(mnist_dir, tmp_path, capsys, monkeypatch):
    """Files in the download cache are checked against their SHA-256 every time they are read."""
    cache = tmp_path / "cache"
    shutil.copytree(mnist_dir, cache / "mnist")
    hashes = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in mnist_dir.glob("*.gz")}
    monkeypatch.setitem(datasets.SOURCES, "mnist", {**datasets.SOURCES["mnist"], "sha256": hashes})
    monkeypatch.setenv("CHAINRULE_DATA", str(cache))
    (x, _), _ = data.load_mnist()  # intact: accepted
    images = cache / "mnist" / IMAGES
    damaged = bytearray(images.read_bytes())
    damaged[-20] ^= 1  # one bit: still valid gzip? maybe not; the hash catches it either way
    images.write_bytes(bytes(damaged))
    with pytest.raises(data.DataFileError, match="SHA-256 mismatch"):
        data.load_mnist()
    out = tmp_path / "run"
    refused(capsys, ["train", "--dataset", "mnist", "--out", out, "--quiet"], "SHA-256")
    assert not out.exists()


# -- predict inputs --------------------------------------------------------------------------------


def npz_named_npy(path):
    np.savez(path.with_suffix(".npz"), a=np.zeros((8, 8)))
    path.with_suffix(".npz").rename(path)


def truncated_npy(path):
    np.save(path, np.zeros((8, 8), np.float32))
    path.write_bytes(path.read_bytes()[:-10])


def array(values, dtype=np.float32):
    return lambda path: np.save(path, np.asarray(values, dtype=dtype))


def image(mode, size=(8, 8)):
    return lambda path: Image.new(mode, size).save(path)


INPUT_CASES = {
    "npy header declaring 10^12 values": ("x.npy", lambda p: npy_header(p, (10**6, 10**6)), "npy"),
    "npy of Python objects (pickle)": ("x.npy", array([[None] * 8] * 8, object), "npy"),
    "npy of complex numbers": ("x.npy", array(np.zeros((8, 8)), np.complex64), "complex64"),
    "npy of another shape": ("x.npy", array(np.zeros((28, 28))), "(28, 28)"),
    "npy holding NaN": ("x.npy", array(np.full((8, 8), np.nan)), "NaN"),
    "npy holding Infinity": ("x.npy", array(np.full((8, 8), np.inf)), "Infinity"),
    "npy holding 1e300 (float64)": (
        "x.npy",
        array(np.full((8, 8), 1e300), np.float64),
        "too large",
    ),
    "npz renamed .npy": ("x.npy", npz_named_npy, "not a .npy file"),
    "npy truncated": ("x.npy", truncated_npy, "not a readable .npy"),
    "npy empty": ("x.npy", lambda p: p.write_bytes(b""), "not a .npy file"),
    "npy a FIFO": ("x.npy", fifo, "FIFO"),
    "npy /dev/zero": ("x.npy", dev_zero, "device"),
    "npy a folder": ("x.npy", os.mkdir, "folder"),
    "no such file": ("x.npy", lambda p: None, "not found"),
    "PNG of 10000x10000 pixels": ("x.png", lambda p: png_header(p, 10**4, 10**4), "10000x10000"),
    "PNG of 30000x30000 pixels": ("x.png", lambda p: png_header(p, 30000, 30000), "bomb"),
    "PNG of another size": ("x.png", image("L", (28, 28)), "(8, 8)"),
    "PNG whose pixels are cut off": ("x.png", lambda p: png_header(p, 8, 8, b"x\x9c"), "readable"),
    "text named .png": ("x.png", lambda p: p.write_text("hello"), "not a readable image"),
    "empty .png": ("x.png", lambda p: p.write_bytes(b""), "not a readable image"),
    "floating-point TIFF": ("x.tiff", image("F"), "floating-point"),
}


@pytest.mark.parametrize("case", INPUT_CASES, ids=[f"data-files: {c}" for c in INPUT_CASES])
def test_a_hostile_input_file_is_refused_by_predict(case, small_run, tmp_path, capsys):
    name, make, fragment = INPUT_CASES[case]
    make(tmp_path / name)
    refused(capsys, ["predict", small_run, tmp_path / name], fragment, seconds=10)


def test_images_are_read_the_way_they_look(small_run, tmp_path, capsys):
    """The same digit as an 8-bit PNG, a 16-bit PNG, an RGBA PNG and a .npy: one prediction."""
    images, _ = data.load_digits()
    grey = (images[:6] / 16 * 255).round().astype(np.uint8)
    answers = []
    for i, digit in enumerate(grey):
        Image.fromarray(digit).save(tmp_path / f"{i}-8.png")
        Image.fromarray(digit.astype(np.uint16) * 257).save(tmp_path / f"{i}-16.png")
        with Image.open(tmp_path / f"{i}-16.png") as sixteen:
            assert sixteen.mode.startswith("I")
        Image.fromarray(digit).convert("RGBA").save(tmp_path / f"{i}-rgba.png")
        np.save(tmp_path / f"{i}.npy", digit / 255 * 16)
        files = [tmp_path / f"{i}{suffix}" for suffix in ("-8.png", "-16.png", "-rgba.png", ".npy")]
        lines = succeeds(capsys, ["predict", small_run, *files]).splitlines()
        answers.append([line.split(": ", 1)[1] for line in lines])
    for per_digit in answers:
        assert len(set(per_digit)) == 1, per_digit  # same class and the same probabilities


def test_a_point_set_model_takes_no_images(tmp_path, capsys):
    out = tmp_path / "xor"
    succeeds(capsys, ["train", "--dataset", "xor", "--epochs", "1", "--out", out, "--quiet"])
    Image.new("L", (2, 1)).save(tmp_path / "x.png")
    refused(capsys, ["predict", out, tmp_path / "x.png"], "not images")
    np.save(tmp_path / "x.npy", np.array([0.5, -0.5]))
    succeeds(capsys, ["predict", out, tmp_path / "x.npy"])


def test_read_idx_allocates_nothing_for_a_huge_header(tmp_path):
    header_only((2**31, 2**31))(tmp_path / "huge.gz")
    with time_limit(2), pytest.raises(data.DataFileError, match="more than"):
        data.read_idx(tmp_path / "huge.gz")
