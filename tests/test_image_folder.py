"""``chainrule train --data FOLDER``: your own classes, one subfolder of pictures each."""

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chainrule import data
from chainrule.cli import main
from chainrule.runs import RunError, predict_files

SHAPES = ("circle", "cross", "square")


def picture(shape: str, rng) -> Image.Image:
    """A dark ``shape`` on a light page, at a random size, place and thickness."""
    side = int(rng.integers(40, 121))
    page = Image.new("L", (side, side), int(rng.integers(200, 256)))
    draw = ImageDraw.Draw(page)
    r = side * rng.uniform(0.2, 0.35)
    cx, cy = side / 2 + rng.uniform(-0.1, 0.1) * side, side / 2 + rng.uniform(-0.1, 0.1) * side
    width = max(2, int(side * rng.uniform(0.05, 0.1)))
    ink = int(rng.integers(0, 60))
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=ink, width=width)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), outline=ink, width=width)
    else:
        draw.line((cx - r, cy - r, cx + r, cy + r), fill=ink, width=width)
        draw.line((cx - r, cy + r, cx + r, cy - r), fill=ink, width=width)
    return page


def shapes_folder(root, per_class: int = 30, seed: int = 0):
    """``root/circle/``, ``root/cross/``, ``root/square/`` of generated PNG and JPEG pictures,
    with three files that are not pictures (a text file named .png, an empty .jpg, a truncated
    PNG) and a hidden .DS_Store that is ignored."""
    rng = np.random.default_rng(seed)
    for shape in SHAPES:
        (root / shape).mkdir(parents=True)
        for i in range(per_class):
            suffix = ".jpg" if i % 3 == 0 else ".png"
            picture(shape, rng).save(root / shape / f"{i}{suffix}")
    (root / "circle" / "notes.png").write_text("not a picture")
    (root / "cross" / "empty.jpg").write_bytes(b"")
    whole = (root / "square" / "1.png").read_bytes()
    (root / "square" / "cut.png").write_bytes(whole[: len(whole) // 2])
    (root / "square" / ".DS_Store").write_bytes(b"\0\1")
    return root


def test_a_folder_of_class_folders_trains_a_classifier_that_answers_with_names(tmp_path, capsys):
    folder = shapes_folder(tmp_path / "shapes")
    out = tmp_path / "run"
    argv = ["train", "--data", str(folder), "--epochs", "15", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipped 3 file(s) that are not readable images" in captured.err
    for name in ("notes.png", "empty.jpg", "cut.png"):
        assert name in captured.err
    assert ".DS_Store" not in captured.err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.9, metrics
    config = json.loads((out / "config.json").read_text())
    assert config["dataset"] == "folder" and config["model"].startswith("conv")

    rng = np.random.default_rng(1)  # new pictures, of any size, as a user's own
    paths = []
    for shape in SHAPES:
        paths.append(tmp_path / f"new-{shape}.png")
        picture(shape, rng).save(paths[-1])
    answers = [r["prediction"] for r in predict_files(out, paths)]
    assert answers == list(SHAPES)
    assert main(["predict", str(out), str(paths[0])]) == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"{paths[0]}: circle   (circle: ")
    assert said[1].startswith("  read as: ") and "to 32x32" in said[1]


def test_a_folder_with_fewer_than_two_classes_is_refused(tmp_path):
    (tmp_path / "one" / "cat").mkdir(parents=True)
    Image.new("L", (10, 10)).save(tmp_path / "one" / "cat" / "a.png")
    (tmp_path / "one" / "dog").mkdir()
    (tmp_path / "one" / "dog" / "a.png").write_text("no picture")
    with pytest.raises(data.DataError, match=r"at least two; found 1 with images \(cat\)"):
        data.read_image_folder(tmp_path / "one", (8, 8))
    with pytest.raises(RunError, match="not a folder"):
        from chainrule.runs import Config, check_choices

        check_choices(Config(dataset="folder", data=str(tmp_path / "one" / "cat" / "a.png")))
