"""Every picture the lens draws is legible: at least 800 pixels wide, and no text overlaps other
text or runs off the edge of the picture.

Each figure is drawn small (few steps, few epochs) through its ``chainrule`` command; every
figure passed to ``save_png`` or made into an animation frame is checked as the renderer draws it:
the texts it actually draws (titles, labels, tick labels, legends, numbers in cells) and their
boxes on the canvas."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from PIL import Image

from chainrule import nn
from chainrule.cli import main

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")

from chainrule.lens import figures, inside  # noqa: E402  (needs matplotlib)

TOLERANCE = 0.5  # pixels: text boxes that touch do not overlap


def drawn_texts(fig) -> list:
    """``(text, box)`` of every non-empty text the renderer draws for ``fig``, in pixels."""
    renderer = fig.canvas.get_renderer()
    drawn = {}
    draw_text = renderer.draw_text

    def record(gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn[id(mtext)] = mtext
        return draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    renderer.draw_text = record
    try:
        fig.draw(renderer)
    finally:
        del renderer.draw_text
    return [(t.get_text(), t.get_window_extent(renderer)) for t in drawn.values()]


def legends(fig) -> list:
    """``(name, box, texts)`` of every legend of ``fig``: its frame, and the texts inside it."""
    renderer = fig.canvas.get_renderer()
    found = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return [
        (f"legend {[t.get_text() for t in lg.get_texts()]}", lg.get_window_extent(renderer), lg)
        for lg in found
    ]


def overlap(a, b) -> bool:
    dx = min(a.x1, b.x1) - max(a.x0, b.x0)
    dy = min(a.y1, b.y1) - max(a.y0, b.y0)
    return dx > TOLERANCE and dy > TOLERANCE


def text_problems(fig) -> list[str]:
    """Texts that overlap each other or a legend they are not part of, or leave the canvas
    (empty when the figure is legible)."""
    texts = drawn_texts(fig)
    width, height = fig.canvas.get_width_height()
    found = []
    for name, frame, legend in legends(fig):
        own = {t.get_text() for t in legend.get_texts()} | {legend.get_title().get_text()}
        found += [
            f"{t!r} overlaps {name}" for t, box in texts if t not in own and overlap(box, frame)
        ]
    for text, box in texts:
        if box.x0 < -TOLERANCE or box.y0 < -TOLERANCE or box.x1 > width + TOLERANCE:
            found.append(f"{text!r} runs off the picture: {box}")
        elif box.y1 > height + TOLERANCE:
            found.append(f"{text!r} runs off the picture: {box}")
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        if overlap(box_a, box_b):
            found.append(f"{a!r} overlaps {b!r}")
    return found


@pytest.fixture
def checked(monkeypatch):
    """Check every figure the lens saves or turns into a frame; returns the problems found,
    figure by figure, and the saved PNG paths."""
    found = {"problems": [], "pngs": []}
    save_png, figure_to_image = figures.save_png, figures.figure_to_image

    def checked_png(fig, path):
        found["problems"] += [f"{path}: {p}" for p in text_problems(fig)]
        found["pngs"].append(save_png(fig, path))
        return found["pngs"][-1]

    def checked_frame(fig):
        found["problems"] += [f"frame {fig.get_suptitle()}: {p}" for p in text_problems(fig)]
        image = figure_to_image(fig)
        assert image.size[0] >= figures.MIN_WIDTH_PX
        return image

    monkeypatch.setattr(figures, "save_png", checked_png)
    monkeypatch.setattr(figures, "figure_to_image", checked_frame)
    return found


def assert_legible(found, count: int) -> None:
    assert not found["problems"], "\n".join(found["problems"])
    assert len(found["pngs"]) == count
    for path in found["pngs"]:
        with Image.open(path) as image:
            assert image.size[0] >= figures.MIN_WIDTH_PX, (path, image.size)


COMMANDS = {
    "fit-line": ["plot", "fit-line", "--steps", "2", "--gif", "{tmp}/fit-line.gif"],
    "descent": ["plot", "descent", "--steps", "1", "--gif", "{tmp}/descent.gif"],
    "race": ["plot", "race", "--steps", "2", "--gif", "{tmp}/race.gif"],
    "race-saddle": ["plot", "race", "--surface", "saddle", "--steps", "4"],
    "boundary": ["plot", "boundary", "--epochs", "2", "--every", "1", "--gif", "{tmp}/b.gif"],
    "landscape": ["plot", "landscape", "--epochs", "2", "--resolution", "4"],
    "gradient-flow": ["plot", "gradient-flow", "--epochs", "1", "--depth", "3"],
    "lr-find": ["lr-find", "--steps", "5"],
    "loss": ["explain", "loss"],
    "loss-cross-entropy": ["explain", "loss", "--loss", "cross-entropy"],
    "forward": ["explain", "forward"],
    "backward": ["explain", "backward"],
    "through-time": ["explain", "through-time", "--steps", "12", "--model", "rnn,lstm,gru"],
    "attention": ["explain", "attention", "--train-steps", "2"],
    "attention-short": ["explain", "attention", "ab", "--train-steps", "2"],
    "sampling": ["explain", "sampling", "--train-steps", "2", "--temperature", "0.5,1,2,4"],
}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_picture_is_legible(name, tmp_path, checked):
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[name]]
    assert main([*argv, "--out", str(tmp_path / f"{name}.png")]) == 0
    assert_legible(checked, 1)


def test_pictures_of_a_run_are_legible(small_run, tmp_path, checked):
    """Learning curves, first-layer weights with the histograms, the confusion matrix, and the
    forward pass of a test digit, of a trained run."""
    for argv in (
        ["plot", "curves", str(small_run)],
        ["plot", "weights", str(small_run)],
        ["plot", "confusion", str(small_run)],
        ["explain", "forward", str(small_run)],
    ):
        assert main([*argv, "--out", str(tmp_path / f"{argv[1]}.png")]) == 0
    assert_legible(checked, 5)


def test_pictures_of_a_regression_are_legible(tmp_path, checked):
    """A regression's curves (loss, RMSE, R^2) and its forward pass."""
    run = str(tmp_path / "line")
    assert main(["train", "--dataset", "line", "--epochs", "2", "--out", run, "--quiet"]) == 0
    assert main(["plot", "curves", run, "--out", str(tmp_path / "curves.png")]) == 0
    assert main(["explain", "forward", run, "--out", str(tmp_path / "forward.png")]) == 0
    assert_legible(checked, 2)


def test_weights_of_a_table_are_legible(tmp_path, checked):
    """The first layer of a network on a table: one map of every neuron's weight on every
    named feature."""
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 1))
    names = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    inside.plot_first_layer(model, (10,), tmp_path / "w.png", feature_names=names)
    assert_legible(checked, 1)


def test_the_check_finds_overlapping_and_clipped_text():
    """The check itself: two texts on top of each other, and one off the edge, are found."""
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(10, 4), dpi=80)
    ax.text(0.5, 0.5, "one label", transform=ax.transAxes)
    ax.text(0.51, 0.5, "another label", transform=ax.transAxes)
    fig.text(0.99, 0.5, "off the edge")
    ax.plot([0, 1], label="a line")
    ax.legend(loc="lower left")
    ax.text(0.05, 0.05, "under the legend", transform=ax.transAxes)
    problems = text_problems(fig)
    plt.close(fig)
    assert any("'one label' overlaps" in p for p in problems)
    assert any("off the picture" in p for p in problems)
    assert any("'under the legend' overlaps legend" in p for p in problems)


def hex_of(rgb) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def test_the_lens_colours_signs_and_classes_as_the_playground_does():
    """One convention: blue for positive, orange for negative, and the same class colours, in
    the lens's pictures and on the playground's page."""
    script = (Path(inside.__file__).parents[1] / "playground/static/js/draw.js").read_text()
    rgb = {
        name: [int(v) for v in re.findall(r"\d+", value)]
        for name, value in re.findall(r"export const (\w+) = \[(\d+, \d+, \d+)\]", script)
    }
    assert hex_of(rgb["POSITIVE"]) == figures.POSITIVE
    assert hex_of(rgb["NEGATIVE"]) == figures.NEGATIVE
    classes = re.search(r"CLASS_COLOURS = \[(.*)\];", script).group(1)
    named = {"NEGATIVE": rgb["NEGATIVE"], "POSITIVE": rgb["POSITIVE"]}
    page = [
        named[item] if item in named else [int(v) for v in re.findall(r"\d+", item)]
        for item in re.findall(r"NEGATIVE|POSITIVE|\[[\d, ]+\]", classes)
    ]
    assert [hex_of(c) for c in page] == figures.CLASS_COLOURS
    sign = figures.sign_colormap()
    assert sign(0.0)[:3] == pytest.approx([c / 255 for c in rgb["NEGATIVE"]], abs=0.01)
    assert sign(1.0)[:3] == pytest.approx([c / 255 for c in rgb["POSITIVE"]], abs=0.01)
    assert sign(0.5)[:3] == pytest.approx([1, 1, 1], abs=0.01)  # zero is white
