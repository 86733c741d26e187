"""Layered diagrams, laid out without drawing: boxes in columns, edges between them.

Pure geometry (no matplotlib), so the promises of the pictures can be tested: no two boxes
intersect, every edge starts and ends at a box, and no edge runs through a box on its way.
Units are typographic points (1/72 inch); y grows upwards. Text is measured for a monospaced
font, whose width per character is fixed, so a box always fits its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CHAR_WIDTH = 0.61  # advance of DejaVu Sans Mono, in ems (0.602, rounded up)
LINE_HEIGHT = 1.25  # in ems: matplotlib's line spacing (1.2) and a margin
PADDING = 6.0  # points between the text and the box's edge


@dataclass
class Box:
    """A node: its centre ``(x, y)``, size, and what the drawing should show in it."""

    name: str
    width: float
    height: float
    lines: list = field(default_factory=list)
    style: dict = field(default_factory=dict)
    x: float = 0.0
    y: float = 0.0

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y - self.height / 2

    @property
    def top(self) -> float:
        return self.y + self.height / 2

    def intersects(self, other: Box) -> bool:
        """True when the two rectangles share more than an edge."""
        return (
            self.left < other.right
            and other.left < self.right
            and self.bottom < other.top
            and other.bottom < self.top
        )


@dataclass
class Edge:
    """A connection drawn as a polyline from the source's right side to the target's left."""

    source: str
    target: str
    points: list = field(default_factory=list)
    style: dict = field(default_factory=dict)


@dataclass
class Layout:
    boxes: dict = field(default_factory=dict)  # name -> Box
    edges: list = field(default_factory=list)

    def extent(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` around every box and edge."""
        xs = [v for b in self.boxes.values() for v in (b.left, b.right)]
        ys = [v for b in self.boxes.values() for v in (b.bottom, b.top)]
        xs += [p[0] for e in self.edges for p in e.points]
        ys += [p[1] for e in self.edges for p in e.points]
        return min(xs), min(ys), max(xs), max(ys)

    def problems(self) -> list[str]:
        """What is wrong with the layout (empty when nothing): overlapping boxes, edges whose
        ends are not boxes, and edges that run through a box."""
        found = []
        boxes = list(self.boxes.values())
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                if a.intersects(b):
                    found.append(f"boxes {a.name!r} and {b.name!r} overlap")
        for e in self.edges:
            if e.source not in self.boxes or e.target not in self.boxes:
                found.append(f"edge {e.source!r} -> {e.target!r} does not join two boxes")
                continue
            source, target = self.boxes[e.source], self.boxes[e.target]
            if not (_on_boundary(e.points[0], source) and _on_boundary(e.points[-1], target)):
                found.append(f"edge {e.source!r} -> {e.target!r} does not start and end at them")
            for box in boxes:
                if box.name in (e.source, e.target):
                    continue
                if any(_segment_enters(p, q, box) for p, q in zip(e.points, e.points[1:])):
                    found.append(f"edge {e.source!r} -> {e.target!r} runs through {box.name!r}")
        return found


def text_size(lines: list[str], fontsize: float) -> tuple[float, float]:
    """Width and height in points of a box holding ``lines`` of monospaced text, padded."""
    width = max((len(line) for line in lines), default=0) * CHAR_WIDTH * fontsize
    height = len(lines) * LINE_HEIGHT * fontsize
    return width + 2 * PADDING, height + 2 * PADDING


def layered(
    columns: list[list[Box]],
    edges: list[tuple[str, str]],
    column_gap: float = 36.0,
    row_gap: float = 10.0,
) -> Layout:
    """Place boxes column by column, left to right, and route the edges between them.

    Each box is placed near the mean height of the boxes it connects to in earlier columns (so
    chains run straight), keeping its order within its column and ``row_gap`` from its
    neighbours. An edge leaves its source's right side, crosses the gaps between columns, and
    runs above every box of the columns it passes over, so it never crosses a box.

    Args:
        columns: the boxes of each column, top to bottom (their sizes set; positions are set here).
        edges: ``(source name, target name)`` pairs; the source's column must come first.
    """
    layout = Layout()
    column_of, left_of, right_of = {}, [], []
    x = 0.0
    for k, column in enumerate(columns):
        width = max((b.width for b in column), default=0.0)
        left_of.append(x)
        right_of.append(x + width)
        for box in column:
            if box.name in layout.boxes:
                raise ValueError(f"two boxes are named {box.name!r}")
            box.x = x + width / 2
            layout.boxes[box.name] = box
            column_of[box.name] = k
        x += width + column_gap
    for source, target in edges:
        for name in (source, target):
            if name not in layout.boxes:
                raise ValueError(f"edge {source!r} -> {target!r}: no box named {name!r}")
        if column_of[source] >= column_of[target]:
            raise ValueError(f"edge {source!r} -> {target!r} must run to a later column")
    inputs = {}
    for source, target in edges:
        inputs.setdefault(target, []).append(source)
    for column in columns:
        wanted = []
        for box in column:
            placed = [layout.boxes[s].y for s in inputs.get(box.name, [])]
            wanted.append(sum(placed) / len(placed) if placed else None)
        _stack(column, wanted, row_gap)
    for source, target in edges:
        layout.edges.append(
            _route(
                layout.boxes[source], layout.boxes[target], column_of, columns, left_of, right_of
            )
        )
    return layout


def _stack(column: list[Box], wanted: list, gap: float) -> None:
    """Heights for one column, in order, ``gap`` apart, as close to ``wanted`` as a sweep gets."""
    if not column:
        return
    total = sum(b.height for b in column) + gap * (len(column) - 1)
    top = total / 2  # with nothing wanted: centred on y = 0
    ys = []
    for box in column:
        ys.append(top - box.height / 2)
        top -= box.height + gap
    known = [(w, y) for w, y in zip(wanted, ys) if w is not None]
    if known:  # move the stack as one so it sits, on average, where it is wanted
        shift = sum(w - y for w, y in known) / len(known)
        ys = [y + shift for y in ys]
    for box, y in zip(column, ys):
        box.y = y


def _route(source: Box, target: Box, column_of, columns, left_of, right_of) -> Edge:
    first, last = column_of[source.name], column_of[target.name]
    points = [(source.right, source.y), (right_of[first], source.y)]
    if last > first + 1:  # pass over the columns in between, above their boxes
        between = [b for k in range(first + 1, last) for b in columns[k]]
        over = max(b.top for b in between) + 8.0
        points += [(left_of[first + 1], over), (right_of[last - 1], over)]
    points += [(left_of[last], target.y), (target.left, target.y)]
    return Edge(source.name, target.name, _without_repeats(points))


def _without_repeats(points: list) -> list:
    kept = [points[0]]
    for p in points[1:]:
        if p != kept[-1]:
            kept.append(p)
    return kept


def _on_boundary(point, box: Box, tolerance: float = 1e-6) -> bool:
    x, y = point
    inside_x = box.left - tolerance <= x <= box.right + tolerance
    inside_y = box.bottom - tolerance <= y <= box.top + tolerance
    on_side = min(abs(x - box.left), abs(x - box.right)) <= tolerance
    on_cap = min(abs(y - box.bottom), abs(y - box.top)) <= tolerance
    return inside_x and inside_y and (on_side or on_cap)


def _segment_enters(p, q, box: Box) -> bool:
    """True when the segment p-q passes through the inside of the box (touching is fine)."""
    (x0, y0), (x1, y1) = p, q
    t0, t1 = 0.0, 1.0
    # Liang-Barsky clipping against the open rectangle
    for delta, low, high, start in (
        (x1 - x0, box.left, box.right, x0),
        (y1 - y0, box.bottom, box.top, y0),
    ):
        if delta == 0:
            if not low < start < high:
                return False
            continue
        a, b = (low - start) / delta, (high - start) / delta
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
    return t1 - t0 > 1e-9
