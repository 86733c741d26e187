"""Saving pictures: matplotlib (an optional extra) drawing off-screen, PNG and animated GIF files
written atomically."""

from __future__ import annotations

import io as _io
from pathlib import Path

from ..io import atomic_write


def pyplot():
    """matplotlib.pyplot with the off-screen Agg backend, or a clear error if it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the lens draws with matplotlib: pip install 'chainrule[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path) -> Path:
    """Write a figure as PNG (atomically) and close it."""
    plt = pyplot()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight")
    plt.close(fig)
    path = Path(path)
    atomic_write(path, buffer.getvalue())
    return path


def figure_to_image(fig):
    """The figure as a PIL image (for animation frames); closes it."""
    from PIL import Image

    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    pyplot().close(fig)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_gif(frames: list, path, seconds_per_frame: float = 0.4) -> Path:
    """Write PIL images as an animated GIF (atomically); the last frame is held longer."""
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    buffer = _io.BytesIO()
    durations = [int(seconds_per_frame * 1000)] * (len(frames) - 1) + [2000]
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0
    )
    path = Path(path)
    atomic_write(path, buffer.getvalue())
    return path
