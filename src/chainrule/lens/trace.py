"""The chain rule, step by step: the backward pass node by node, in the order the engine runs it.

For each node: the operation and its formula, its inputs, the upstream gradient dL/dz, the local
derivative dz/dx and their product dL/dx, and how that product accumulates into each weight's
``.grad``. Built on the engine's tracer hook, so no op knows it is being watched.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

from .. import autograd
from ..backend import xp
from ..ops import activations as A
from ..ops import arithmetic as R
from ..tensor import Tensor, as_array

SHOW_VALUES = 6  # tensors with at most this many numbers are written out
ELEMENTWISE = (
    R.Add,
    R.Sub,
    R.Mul,
    R.Div,
    R.Pow,
    R.Neg,
    R.Abs,
    R.Exp,
    R.Log,
    R.Sqrt,
    R.Maximum,
    R.Minimum,
    R.Clip,
    R.Cast,
    A.ReLU,
    A.LeakyReLU,
    A.Sigmoid,
    A.Tanh,
    A.GELU,
    A.Softplus,
)


@dataclass
class InputRecord:
    name: str
    value: object
    grad: object  # dL/d(input) from this node (None when the input needs no gradient)
    local: object = None  # dz/d(input), for elementwise ops
    leaf: bool = False
    total: object = None  # for a leaf: its .grad after this contribution


@dataclass
class TraceStep:
    number: int
    op: str
    formula: str
    output: str
    output_value: object
    upstream: object
    inputs: list = field(default_factory=list)


@dataclass
class ChainRuleTrace:
    steps: list = field(default_factory=list)
    grads: dict = field(default_factory=dict)  # leaf name -> final gradient

    def __str__(self) -> str:
        lines = [
            "backward pass, from the loss back to the weights: "
            "dL/d(input) = dL/d(output) x d(output)/d(input)"
        ]
        for s in self.steps:
            args = ", ".join(r.name for r in s.inputs)
            lines.append(f"\nstep {s.number}: {s.output} = {s.op}({args})    {s.formula}")
            lines.append(f"  upstream dL/d{s.output} = {fmt(s.upstream)}")
            for r in s.inputs:
                if r.grad is None:
                    lines.append(f"  {r.name} = {fmt(r.value)}: needs no gradient")
                    continue
                local = (
                    f" x local d{s.output}/d{r.name} = {fmt(r.local)}"
                    if r.local is not None
                    else ""
                )
                lines.append(f"  dL/d{r.name} = upstream{local} -> {fmt(r.grad)}")
                if r.leaf:
                    lines.append(f"    {r.name}.grad += that, now {fmt(r.total)}")
        lines.append("\nfinal gradients:")
        lines += [f"  dL/d{name} = {fmt(g)}" for name, g in self.grads.items()]
        return "\n".join(lines)


def fmt(a) -> str:
    if a is None:
        return "-"
    a = xp.asarray(a)
    if a.size <= SHOW_VALUES:
        values = ", ".join(f"{v:.4g}" for v in a.ravel())
        return values if a.ndim == 0 else f"[{values}]"
    return f"shape {a.shape}, norm {float(xp.linalg.norm(a)):.4g}"


def trace_backward(loss: Tensor, names: dict | None = None) -> ChainRuleTrace:
    """Backpropagate from ``loss`` (calling ``loss.backward()``) and record every step.

    Args:
        names: optional ``{tensor: name}`` for leaves (weights, inputs); others are named
            ``v1, v2, ...`` in the order they were computed.
    """
    label = {id(t): n for t, n in (names or {}).items()}
    order = autograd.topological_order(loss)
    for node in order:
        for inp in node._ctx.inputs:
            if isinstance(inp, Tensor) and id(inp) not in label and inp._ctx is None:
                label[id(inp)] = f"x{sum(1 for k in label.values() if k.startswith('x'))}"
    for k, node in enumerate(order, start=1):
        label.setdefault(id(node), f"v{k}")
    trace = ChainRuleTrace()
    totals: dict = {}

    def record(event: autograd.TraceEvent) -> None:
        fn = event.op
        local = None
        if isinstance(fn, ELEMENTWISE):
            local = fn.backward(xp.ones_like(event.grad))
            local = local if isinstance(local, tuple) else (local,)
        op_class = getattr(fn, "function", type(fn))  # a Function of the user's: its own class
        step = TraceStep(
            len(trace.steps) + 1,
            op_class.__name__,
            _formula(op_class),
            label[id(event.output)],
            event.output._data.copy(),
            event.grad.copy(),
        )
        for k, (inp, grad) in enumerate(zip(event.inputs, event.input_grads)):
            is_tensor = isinstance(inp, Tensor)
            name = label.get(id(inp), "const") if is_tensor else "const"
            value = inp._data.copy() if is_tensor else inp
            leaf = is_tensor and inp._ctx is None and grad is not None
            rec = InputRecord(name, value, None if grad is None else grad.copy(), leaf=leaf)
            if local is not None and grad is not None and local[k] is not None:
                rec.local = xp.broadcast_to(local[k], event.grad.shape).copy()
            if leaf:
                totals[name] = grad.copy() if name not in totals else totals[name] + grad
                rec.total = totals[name].copy()
            step.inputs.append(rec)
        trace.steps.append(step)

    with autograd.trace_backward(record):
        loss.backward()
    trace.grads = totals
    return trace


def trace_model(model, loss_fn, x, y) -> ChainRuleTrace:
    """Trace one forward and backward pass of ``loss_fn(model(x), y)`` on a copy of the model
    (the model itself is left untouched); weights are named as in ``named_parameters``."""
    twin = copy.deepcopy(model)
    twin.zero_grad()
    x = Tensor._make(as_array(x), False)
    names = {p: name for name, p in twin.named_parameters()}
    names[x] = "x"
    loss = loss_fn(twin(x), y)
    return trace_backward(loss, names)


def op_formulas(op_class: type) -> tuple[str, str]:
    """``(forward formula, local derivative)`` as an op class states them in the first paragraph
    of its docstring, two sentences apart: ``"z = a * b.   dz/da = b,  dz/db = a."`` (a sentence
    ending a line ends it as the three spaces do); a note after them is left out."""
    paragraph = inspect.cleandoc(op_class.__doc__ or "").split("\n\n")[0]
    sentences = paragraph.replace(".\n", ".   ").replace("\n", " ").split(".   ")
    forward, derivative = (*sentences, "", "")[:2]
    return forward.strip().rstrip("."), derivative.strip().rstrip(".")


def _formula(op_class: type) -> str:
    forward, derivative = op_formulas(op_class)
    return f"{forward}.   {derivative}." if derivative else forward
