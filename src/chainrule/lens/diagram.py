"""Drawing a :class:`~chainrule.lens.layout.Layout` with matplotlib, one point of the layout to
one point of the figure, so boxes measured for their text hold it exactly.

A box's ``style`` may set ``shape`` ("round", "ellipse", "plain" or "image"), ``face``,
``edge``, ``linewidth``, ``fontsize``, ``weight`` (bold), ``align`` ("left" or centred) and
``image`` (an array for "image");
an edge's ``style`` may set ``color``, ``width``, ``alpha`` and ``arrow``.
"""

from __future__ import annotations

import textwrap

from .layout import CHAR_WIDTH, PADDING, Layout

FONT = "DejaVu Sans Mono"  # ships with matplotlib; the layout measures text for it
MARGIN = 12.0  # points around the drawing
TITLE_SPACE = 30.0  # a line of the title
TITLE_SIZE = 11


def draw(layout: Layout, title: str = "", dpi: int = 100):
    """The figure of a layout (the caller saves it: ``figures.save_png``)."""
    from matplotlib import patches

    from .figures import pyplot

    plt = pyplot()
    left, bottom, right, top = layout.extent()
    # the title wrapped to the drawing's width (measured as if monospaced: wider than it is)
    chars = max(30, int((right - left + 2 * MARGIN) / (CHAR_WIDTH * TITLE_SIZE)))
    title = "\n".join(textwrap.fill(line, chars) for line in title.splitlines())
    top += TITLE_SPACE * (title.count("\n") + 1) if title else 0.0
    width, height = right - left + 2 * MARGIN, top - bottom + 2 * MARGIN
    fig = plt.figure(figsize=(width / 72, height / 72), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(left - MARGIN, right + MARGIN)
    ax.set_ylim(bottom - MARGIN, top + MARGIN)
    ax.axis("off")
    for edge in layout.edges:
        _draw_edge(ax, edge)
    for box in layout.boxes.values():
        style = box.style
        shape = style.get("shape", "round")
        colours = dict(
            facecolor=style.get("face", "white"),
            edgecolor=style.get("edge", "0.3"),
            linewidth=style.get("linewidth", 1.0),
            zorder=2,
        )
        if shape == "ellipse":
            ax.add_patch(patches.Ellipse((box.x, box.y), box.width, box.height, **colours))
        elif shape == "round":
            ax.add_patch(
                patches.FancyBboxPatch(
                    (box.left, box.bottom),
                    box.width,
                    box.height,
                    boxstyle="round,pad=0,rounding_size=6",
                    **colours,
                )
            )
        elif shape == "image":
            ax.imshow(
                style["image"],
                cmap="gray_r",
                extent=(box.left, box.right, box.bottom, box.top),
                interpolation="nearest",
                zorder=2,
            )
        if box.lines:
            left = style.get("align") == "left"
            ax.text(
                box.left + PADDING if left else box.x,
                box.y,
                "\n".join(box.lines),
                ha="left" if left else "center",
                multialignment="left" if left else "center",
                va="center",
                family=FONT,
                fontsize=style.get("fontsize", 8),
                fontweight=style.get("weight", "normal"),
                linespacing=1.2,
                zorder=3,
                gid=box.name,
            )
    if title:
        ax.text((left + right) / 2, top, title, ha="center", va="top", fontsize=TITLE_SIZE)
    return fig


def _draw_edge(ax, edge) -> None:
    style = edge.style
    colour = style.get("color", "0.55")
    width = style.get("width", 1.0)
    alpha = style.get("alpha", 1.0)
    xs, ys = zip(*edge.points)
    ax.plot(xs, ys, color=colour, lw=width, alpha=alpha, solid_capstyle="butt", zorder=1)
    if style.get("arrow", True):
        ax.annotate(
            "",
            xy=edge.points[-1],
            xytext=edge.points[-2],
            arrowprops=dict(
                arrowstyle="-|>",
                color=colour,
                lw=0,
                alpha=alpha,
                shrinkA=0,
                shrinkB=0,
                mutation_scale=10,
            ),
            zorder=1,
        )
