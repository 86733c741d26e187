"""Saving pictures: matplotlib (an optional extra) drawing off-screen, PNG and animated GIF files
written atomically."""

from __future__ import annotations

import io as _io
import math
from pathlib import Path

from ..io import atomic_write

MIN_WIDTH_PX = 800  # every picture at least this wide, so that its smallest text stays legible
# The sign of a number (a weight, a gradient) has one colour everywhere, the playground's
# (static/js/draw.js): blue for positive, orange for negative, white for zero between them.
POSITIVE, NEGATIVE = "#0877bd", "#f59322"
# the classes' colours, also the playground's: the first two those of the signs
CLASS_COLOURS = [NEGATIVE, POSITIVE, "#2ca02c", "#9467bd", "#d62728", "#17becf"]


def pyplot():
    """matplotlib.pyplot with the off-screen Agg backend, or a clear error if it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the lens draws with matplotlib: pip install 'chainrule[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def sign_colormap():
    """The colour map of signed numbers: orange (negative), white (zero), blue (positive); use
    it with ``vmin=-limit, vmax=limit`` so that white is zero."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("sign", [NEGATIVE, "white", POSITIVE])


def class_colormap(classes: int):
    """The colour map of class numbers 0 .. classes - 1 (use with ``vmin=-0.5,
    vmax=classes - 0.5``), in the playground's colours."""
    from matplotlib.colors import ListedColormap

    if classes > len(CLASS_COLOURS):
        return pyplot().get_cmap("tab10", classes)
    return ListedColormap(CLASS_COLOURS[:classes], name="classes")


def legible_png(fig, **options) -> bytes:
    """The figure as PNG, its dpi raised where needed so that the picture is at least
    MIN_WIDTH_PX wide (its text grows with it)."""
    from PIL import Image

    inches = fig.get_figwidth()
    if options.get("bbox_inches") == "tight":  # the crop, and the padding savefig adds around it
        inches = fig.get_tightbbox().width + 2 * pyplot().rcParams["savefig.pad_inches"]
    dpi = max(float(fig.dpi), math.ceil(MIN_WIDTH_PX / inches))
    for _ in range(3):  # the crop's width in pixels is exact only once drawn: if short, again
        buffer = _io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, **options)
        width = Image.open(_io.BytesIO(buffer.getvalue())).size[0]
        if width >= MIN_WIDTH_PX:
            break
        dpi = math.ceil(dpi * (MIN_WIDTH_PX + 2) / width)
    return buffer.getvalue()


def save_png(fig, path) -> Path:
    """Write a figure as PNG (atomically), at least MIN_WIDTH_PX wide, and close it."""
    data = legible_png(fig, bbox_inches="tight")
    pyplot().close(fig)
    path = Path(path)
    atomic_write(path, data)
    return path


def figure_to_image(fig):
    """The figure as a PIL image (for animation frames); closes it."""
    from PIL import Image

    data = legible_png(fig)
    pyplot().close(fig)
    return Image.open(_io.BytesIO(data)).convert("RGB")


def save_gif(frames: list, path, seconds_per_frame: float = 0.4) -> Path:
    """Write PIL images as an animated GIF (atomically); the last frame is held longer."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif needs at least one frame")
    buffer = _io.BytesIO()
    durations = [int(seconds_per_frame * 1000)] * (len(frames) - 1) + [2000]
    # each frame's own palette of 128 colours, by octree: it keeps every line's colour, where
    # Pillow's default (median cut) merges thin coloured lines into one another and into grey;
    # 256 colours would keep more shades of the antialiasing, in files three times the size
    frames = [frame.quantize(128, method=Image.Quantize.FASTOCTREE) for frame in frames]
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
    )
    path = Path(path)
    atomic_write(path, buffer.getvalue())
    return path
