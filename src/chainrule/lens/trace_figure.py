"""The chain-rule graph as a textbook figure: a layered drawing of the traced backward pass, with
no overlapping boxes, each node showing its operation, its local derivative and the gradient that
flows through it; the loss at the right, leaves (weights, biases, input) at the left of the
operation that uses them. All numbers are the engine's, recorded by its tracer.

:func:`trace_layout` computes the figure (pure, testable: see :mod:`.layout`);
:func:`plot_trace` draws it.
"""

from __future__ import annotations

from ..backend import xp
from .layout import Box, Edge, Layout, layered, text_size
from .trace import ChainRuleTrace, InputRecord, TraceStep, fmt

NODE_CHARS = 34  # wrap node text at this many characters
BACKWARD_OFFSET = 6.0  # points between an edge (values, forward) and its twin (gradients, back)
FORWARD_STYLE = {"color": "0.55", "width": 1.0}
BACKWARD_STYLE = {"color": "firebrick", "width": 1.3}


def formulas(formula: str) -> tuple[str, str]:
    """``(forward formula, local derivative)`` of a traced step's ``formula`` (as
    :func:`.trace.op_formulas` read them from the op's docstring)."""
    forward, _, derivative = formula.partition(".   ")
    return forward.strip().rstrip("."), derivative.strip().rstrip(".")


def trace_layout(trace: ChainRuleTrace) -> Layout:
    """The graph of a traced backward pass, laid out in layers (see :mod:`.layout`): leaves
    (weights, biases, input) at the left of the operation that uses them, the loss at the
    right; each node shows its operation, its local derivative and the gradient through it."""
    forward_order = list(reversed(trace.steps))
    depth, edges, leaves = {}, [], {}
    for step in forward_order:
        names = []
        for k, record in enumerate(step.inputs):
            name = record.name if record.name != "const" else f"const:{step.output}:{k}"
            names.append(name)
            if name not in depth:
                leaves[name] = record
            if (name, step.output) not in edges:
                edges.append((name, step.output))
        depth[step.output] = 1 + max((depth.get(n, 0) for n in names), default=0)
    for name in leaves:
        depth[name] = min(depth[t] for s, t in edges if s == name) - 1
    columns: list[list] = [[] for _ in range(max(depth.values()) + 1)]
    final = trace.steps[0].output if trace.steps else None
    for step in forward_order:
        for k, record in enumerate(step.inputs):
            name = record.name if record.name != "const" else f"const:{step.output}:{k}"
            if name in leaves and all(b.name != name for b in columns[depth[name]]):
                lines, style = _leaf_text(name, record, trace.grads.get(name))
                columns[depth[name]].append(Box(name, *text_size(lines, 7.5), lines, style))
        lines, style = _op_text(step, step.output == final)
        columns[depth[step.output]].append(Box(step.output, *text_size(lines, 7.5), lines, style))
    for column in columns:  # the chain of operations in the middle, leaves around it
        ops = [b for b in column if not b.style.get("leaf")]
        side = [b for b in column if b.style.get("leaf")]
        column[:] = side[: len(side) // 2] + ops + side[len(side) // 2 :]
    layout = layered(columns, edges, column_gap=40.0, row_gap=14.0)
    for edge in layout.edges:
        edge.style = dict(FORWARD_STYLE)
    no_gradient = {name for name in leaves if trace.grads.get(name) is None}  # constants, input
    layout.edges += [_backward_twin(e) for e in layout.edges if e.source not in no_gradient]
    return layout


def _backward_twin(edge: Edge) -> Edge:
    """The way the gradient flows back along ``edge``: the same route, a little below it, from
    its target to its source (no gradient flows back to a constant)."""
    points = [(x, y - BACKWARD_OFFSET) for x, y in reversed(edge.points)]
    return Edge(edge.target, edge.source, points, dict(BACKWARD_STYLE))


def _leaf_text(name: str, record: InputRecord, grad) -> tuple[list[str], dict]:
    base = {"leaf": True, "fontsize": 7.5, "align": "left"}
    if name.startswith("const:"):
        lines = ["constant", *_numbers("value", record.value), "needs no gradient"]
        return lines, base | {"face": "0.93"}
    if grad is None:
        lines = [f"{name} (leaf)", *_numbers("value", record.value), "needs no gradient"]
        return lines, base | {"face": "0.93"}
    lines = [f"{name} (leaf)", *_numbers("value", record.value), *_numbers(".grad", grad)]
    return lines, base | {"face": "#dbeaf7"}


def _op_text(step: TraceStep, is_loss: bool) -> tuple[list[str], dict]:
    forward, derivative = formulas(step.formula)
    args = ", ".join(r.name for r in step.inputs)
    lines = _wrap(f"{step.output} = {step.op}({args})")
    lines += _wrap(forward)
    locals_ = [r for r in step.inputs if r.local is not None]
    if len(locals_) == 1 and xp.asarray(locals_[0].local).size <= 4:
        r = locals_[0]
        lines += _numbers(f"local d{step.output}/d{r.name}", r.local)
    elif step.op == "Linear" or xp.asarray(step.upstream).size == 1:
        lines += _fused_locals(step, derivative)
    elif derivative:
        lines += _wrap("local " + derivative)
    if is_loss:
        lines += [f"loss L = {fmt(step.output_value)}", f"dL/d{step.output} = {fmt(step.upstream)}"]
        style = {"face": "#f9d9d2", "edge": "firebrick", "linewidth": 1.5}
        return lines, style | {"fontsize": 7.5, "align": "left"}
    lines += _numbers(f"grad dL/d{step.output}", step.upstream)
    return lines, {"face": "#fff7d6", "fontsize": 7.5, "align": "left"}


def _fused_locals(step: TraceStep, derivative: str) -> list[str]:
    """The local derivatives of a fused op, with their numbers: a Linear's are its weight and its
    input (dz/dx = W, dz/dW = x, dz/db = 1); those of an op with one number out (a loss), the
    gradient it sends to its input divided by the one it received."""
    z, first = step.output, step.inputs[0]
    if step.op == "Linear":
        x, w = step.inputs[:2]
        lines = _numbers(f"local d{z}/d{x.name} = {w.name}", w.value)
        lines += _numbers(f"local d{z}/d{w.name} = {x.name}", x.value)
        return lines + [f"local d{z}/d{r.name} = 1" for r in step.inputs[2:]]
    upstream = xp.asarray(step.upstream, dtype=xp.float64).ravel()
    if upstream.size == 1 and upstream[0] != 0 and first.grad is not None:
        lines = _wrap("local " + derivative)
        return lines + _numbers(f"  = d{z}/d{first.name}", xp.asarray(first.grad) / upstream[0])
    return _wrap("local " + derivative)


def _numbers(label: str, values) -> list[str]:
    """``label = [a, b, c]``, wrapped to the node's width, or the shape and norm if many."""
    a = xp.asarray(values)
    if a.size > 8:
        return _wrap(f"{label}: shape {a.shape}, norm {float(xp.linalg.norm(a)):.3g}")
    if a.ndim == 0 or a.size == 1:
        return _wrap(f"{label} = {float(a.ravel()[0]):.3g}")
    return _wrap(f"{label} = [" + ", ".join(f"{v:.3g}" for v in a.ravel()) + "]")


def _wrap(text: str) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > NODE_CHARS:
            lines.append(line)
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    return lines + [line]


def plot_trace(trace: ChainRuleTrace, path):
    """Draw the traced graph: values flow left to right; each node shows the gradient dL/d(node)
    that flows back through it, right to left, by the chain rule."""
    from .diagram import draw
    from .figures import save_png

    title = (
        "the chain rule on the graph: each node's gradient = the upstream gradient x its local "
        "derivative\nvalues flow right (grey arrows), gradients flow back left (red arrows)"
    )
    return save_png(draw(trace_layout(trace), title, dpi=100), path)
