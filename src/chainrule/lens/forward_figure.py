"""The forward pass as a textbook figure: neurons in layers, each with its weighted sum z and
activation a, edges coloured by the sign of their weight and as thick as its size, the most
activated output neuron highlighted and named.

:func:`forward_layout` computes the figure (pure, testable: see :mod:`.layout`);
:func:`plot_forward` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import models
from ..backend import xp
from .figures import NEGATIVE, POSITIVE
from .forward import ForwardExplanation
from .layout import Box, Layout, layered, text_size

WEIGHTED = ("Linear", "Conv1d", "Conv2d")  # layers whose outputs are weighted sums z
ACTIVATIONS = tuple(cls.__name__ for cls in models.ACTIVATIONS.values())
PASS_THROUGH = ("Flatten", "Unflatten", "Dropout", "Identity")
OUTPUTS_SHOWN = 10  # an output layer up to this wide is drawn whole (all ten digits)
FONT_SIZE = 8.0


@dataclass
class Column:
    """One layer of the drawing: its neurons' values and which of them are shown."""

    title: str
    z: object  # weighted sums, or the layer's outputs
    shape: tuple = ()  # the layer's output shape (for naming units of feature maps)
    a: object = None  # activations, when an activation follows the weighted sums
    weights: object = None  # (out, in) of the Linear layer feeding it: one weight per edge
    weighted: bool = False
    shown: list = field(default_factory=list)

    @property
    def values(self):
        return self.a if self.a is not None else self.z


def drawing_columns(explanation: ForwardExplanation, max_neurons: int = 6) -> list[Column]:
    """Group the layer steps into columns: a weighted layer (Linear, Conv) and the activation
    after it make one column (z and a). A layer wider than ``max_neurons`` shows its most
    activated neurons (an output layer of up to ``OUTPUTS_SHOWN`` is shown whole)."""
    first = xp.asarray(explanation.steps[0].inputs)
    columns = [Column("input", first.ravel(), first.shape)]
    for step in explanation.steps:
        name = step.layer.split("(")[0]
        out = xp.asarray(step.outputs)
        if name in PASS_THROUGH:
            continue
        if name in ACTIVATIONS and columns[-1].weighted and columns[-1].a is None:
            columns[-1].a = out.ravel()
            columns[-1].title += f" + {name}"
            continue
        weights = xp.asarray(step.weights) if step.is_weighted_sum else None
        columns.append(Column(step.layer, out.ravel(), out.shape, None, weights, name in WEIGHTED))
    for k, column in enumerate(columns):
        n = len(column.values)
        if n <= max_neurons or (k == len(columns) - 1 and n <= OUTPUTS_SHOWN):
            column.shown = list(range(n))
        else:  # the top of the layer, kept in the layer's own order
            top = xp.argsort(-column.values, kind="stable")[:max_neurons]
            column.shown = sorted(int(i) for i in top)
    return columns


def forward_layout(explanation: ForwardExplanation, max_neurons: int = 6, image=None) -> Layout:
    """The network laid out as columns of neurons (see :mod:`.layout` for the guarantees).

    Args:
        explanation: from :func:`~chainrule.lens.explain_forward` (exact values of one input).
        max_neurons: wider layers show their most activated neurons and "... N more".
        image: a 2-D array to draw as the input (e.g. the 28x28 digit), instead of its pixels.
    """
    columns = drawing_columns(explanation, max_neurons)
    last = len(columns) - 1
    boxes: list[list[Box]] = []
    for c, column in enumerate(columns):
        if c == 0 and image is not None:
            column.title = "input: " + " x ".join(map(str, xp.shape(image))) + " image"
            boxes.append([Box("n0:image", 96.0, 96.0, style={"shape": "image", "image": image})])
            continue
        texts = {i: _neuron_text(explanation, column, c, last, i) for i in column.shown}
        width, height = (
            max(v) * 1.42 for v in zip(*(text_size(t, FONT_SIZE) for t in texts.values()))
        )
        column_boxes = []
        for i in column.shown:  # an ellipse around the text: 1.42 = sqrt(2) leaves the corners in
            style = {"shape": "ellipse", "face": "0.92" if c == 0 else "white"}
            if c == last and i == explanation.prediction:
                style |= {"edge": "green", "linewidth": 3.0, "face": "#e6f5e6"}
            column_boxes.append(Box(f"n{c}:{i}", width, height, texts[i], style))
        hidden = len(column.values) - len(column.shown)
        if hidden:
            lines = [f"... {hidden} more", "not shown"]
            style = {"shape": "plain", "fontsize": 7}
            column_boxes.append(Box(f"n{c}:more", *text_size(lines, 7), lines, style))
        boxes.append(column_boxes)
    label = _prediction_label(explanation)
    style = {"shape": "round", "face": "#e6f5e6", "edge": "green", "fontsize": 9}
    boxes.append([Box("prediction", *text_size(label, 9), label, style)])
    edges, styles = _edges(columns, boxes)
    edges.append((f"n{last}:{explanation.prediction}", "prediction"))
    styles[edges[-1]] = {"color": "green", "width": 2.0}
    layout = layered(boxes, edges, column_gap=70.0, row_gap=12.0)
    for edge in layout.edges:
        edge.style = styles[(edge.source, edge.target)]
    _add_headers(layout, [c.title for c in columns], boxes)
    return layout


def _neuron_text(explanation, column: Column, c: int, last: int, i: int) -> list[str]:
    wide = len(column.values) > len(column.shown)
    unit = _unit_name(column.shape, i) if wide else ""
    if c == 0:
        return [f"x{unit or i + 1} = {column.z[i]:.3g}"]
    lines = [unit] if unit else []
    if c == last and len(explanation.probabilities) == len(column.z):
        lines.insert(0, f"class {i}")
    symbol = "z" if column.weighted else "out"
    lines.append(f"{symbol} = {column.z[i]:.3g}")
    if column.a is not None:
        lines.append(f"a = {column.a[i]:.3g}")
    elif c == last and len(explanation.probabilities) == len(column.z):
        lines.append(f"p = {explanation.probabilities[i]:.3g}")
    return lines


def _unit_name(shape: tuple, i: int) -> str:
    """``#17`` in a vector, ``[channel, row, column]`` in a feature map."""
    if len(shape) <= 1:
        return f"#{i}"
    return "[" + ",".join(str(int(v)) for v in xp.unravel_index(i, shape)) + "]"


def _edges(columns: list[Column], boxes: list[list[Box]]):
    """An edge for each weight between two shown neurons (its colour the sign, its width the
    size), and grey edges from a drawn image into a Linear layer (every pixel feeds it)."""
    edges, styles = [], {}
    for c in range(1, len(columns)):
        weights = columns[c].weights
        if weights is None:
            continue  # a convolution or pooling: no single weight joins two drawn units
        scale = float(xp.abs(weights).max()) or 1.0
        for j in columns[c].shown:
            for source in boxes[c - 1]:
                i = source.name.split(":")[1]
                if i == "more":
                    continue
                edge = (source.name, f"n{c}:{j}")
                edges.append(edge)
                if i == "image":
                    styles[edge] = {"color": "0.6", "width": 0.6, "arrow": False}
                    continue
                w = float(weights[j, int(i)])
                styles[edge] = {
                    "color": POSITIVE if w > 0 else NEGATIVE,
                    "width": 0.4 + 3.0 * abs(w) / scale,
                    "alpha": 0.75,
                    "arrow": False,
                }
    return edges, styles


def _prediction_label(explanation: ForwardExplanation) -> list[str]:
    if explanation.target_scale is not None:
        mean, std = explanation.target_scale
        return [
            f"prediction: {explanation.value:.4g}",
            "the output neuron",
            f"x {std:.4g} + {mean:.4g}",
        ]
    p = explanation.probabilities[explanation.prediction]
    return [
        f"prediction: class {explanation.prediction}",
        "the most activated",
        f"output neuron (p = {p:.3g})",
    ]


def _add_headers(layout: Layout, titles: list[str], columns: list[list[Box]]) -> None:
    """Column titles in a row above everything, as boxes (so the overlap check covers them)."""
    top = max(b.top for b in layout.boxes.values()) + 8.0
    for k, (title, column) in enumerate(zip(titles, columns)):
        lines = _wrap(title, 24)
        width, height = text_size(lines, FONT_SIZE)
        box = Box(f"header{k}", width, height, lines, {"shape": "plain"}, column[0].x)
        box.y = top + height / 2
        layout.boxes[box.name] = box


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def plot_forward(explanation: ForwardExplanation, path, max_neurons: int = 6, image=None):
    """Draw the forward pass (see :func:`forward_layout`) as a PNG; returns its path."""
    from .diagram import draw
    from .figures import save_png

    layout = forward_layout(explanation, max_neurons, image)
    title = (
        "forward propagation: z = W x + b, a = activation(z); "
        "edges blue for + weights, orange for -, thicker for larger"
    )
    return save_png(draw(layout, title, dpi=80 if len(layout.boxes) > 20 else 100), path)
