"""The engine: reverse-mode automatic differentiation, i.e. backpropagation by the chain rule.

Every tensor made by an operation remembers that operation (``tensor._ctx``, a
:class:`~chainrule.function.Function`) and the operation remembers its inputs. ``backward`` walks
that graph from the result back to the leaves:

1. sort the graph topologically (iteratively, so a chain of 100,000 ops needs no recursion);
2. visit the nodes from the result backwards; each op turns the upstream gradient dL/dz into one
   gradient per input, dL/dx = dL/dz * dz/dx (the chain rule);
3. sum each returned gradient back to its input's shape (undoing NumPy broadcasting) in ONE place,
   :func:`unbroadcast`;
4. add it to the input's running total; leaves (tensors made by the user, e.g. weights) keep it in
   ``.grad``, accumulating across calls;
5. free the graph's saved arrays unless ``retain_graph=True``.

A tracer hook (:func:`trace_backward`) sees every node as it is visited, which is how the chain-rule
trace of :mod:`chainrule.lens` is built without touching any op.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .backend import xp

_grad_enabled = True
_tracer: Callable[[TraceEvent], None] | None = None


# -- gradient mode -------------------------------------------------------------------------------


def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad`."""
    return _grad_enabled


class _GradMode(contextlib.ContextDecorator):
    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous
        return False


def no_grad() -> _GradMode:
    """Context manager and decorator: operations inside record no graph (faster, less memory).

    Example:
        >>> with cr.no_grad():
        ...     prediction = model(x)
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Context manager and decorator that turns graph recording back on inside ``no_grad``."""
    return _GradMode(True)


# -- the tracer hook -----------------------------------------------------------------------------


@dataclass
class TraceEvent:
    """One node of the backward pass, as seen by a tracer.

    Attributes:
        op: the Function object (its class name is the operation).
        output: the tensor the op produced.
        inputs: the op's inputs (tensors or constants), in order.
        grad: the upstream gradient dL/d(output).
        input_grads: dL/d(input) for each input after un-broadcasting (None where not needed).
    """

    op: Any
    output: Any
    inputs: tuple
    grad: Any
    input_grads: tuple


def set_tracer(tracer: Callable[[TraceEvent], None] | None):
    """Install ``tracer`` (called once per node during backward); returns the previous one."""
    global _tracer
    previous, _tracer = _tracer, tracer
    return previous


@contextlib.contextmanager
def trace_backward(tracer: Callable[[TraceEvent], None]) -> Iterator[None]:
    """Call ``tracer(event)`` for every node visited by ``backward()`` inside the block."""
    previous = set_tracer(tracer)
    try:
        yield
    finally:
        set_tracer(previous)


# -- the engine ----------------------------------------------------------------------------------


def unbroadcast(grad, shape: tuple):
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of length 1, so its
    gradient is the sum over those axes.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def topological_order(root) -> list:
    """Non-leaf tensors that ``root`` depends on (itself included), inputs before outputs.

    Iterative depth-first search with an explicit stack, so depth is limited only by memory.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        fn = node._ctx
        if fn.inputs is None:
            raise RuntimeError(
                f"backward() through a graph that was already freed (at a {type(fn).__name__} "
                "node): the first backward() released its saved values. Call the first "
                "backward(retain_graph=True) to backpropagate through the same graph twice, "
                "or recompute the forward pass."
            )
        stack.append((node, True))
        for inp, needs in zip(fn.inputs, fn.needs_grad):
            if needs and inp._ctx is not None and id(inp) not in visited:
                stack.append((inp, False))
    return order


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Backpropagate from ``root``: add d(root)/d(leaf) (times ``grad``) into every leaf's ``.grad``.

    Args:
        root: the tensor to differentiate, usually the scalar loss.
        grad: dL/d(root); may be omitted for a one-element ``root`` (then it is 1).
        retain_graph: keep the graph's saved values so that backward can run through it again.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad: no input of the "
            "computation had requires_grad=True (create the inputs you want gradients for with "
            "requires_grad=True, and do not compute inside cr.no_grad())."
        )
    grad = _seed_gradient(root, grad)
    if root._ctx is None:  # backward on a leaf: its gradient is the seed itself
        _accumulate_leaf(root, grad, exclusive=True)
        return

    grads = {id(root): grad}
    # arrays already given to some tensor in this pass, by id (weak: a freed array's id may be
    # reused by a new, unshared array)
    handed_out: dict[int, weakref.ref] = {}
    for node in reversed(topological_order(root)):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        fn = node._ctx
        input_grads = fn.backward(grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        summed = tuple(
            unbroadcast(xp.asarray(g), inp.data.shape) if needs and g is not None else None
            for inp, g, needs in zip(fn.inputs, input_grads, fn.needs_grad)
        )
        if _tracer is not None:
            _tracer(TraceEvent(fn, node, fn.inputs, grad, summed))
        for inp, input_grad in zip(fn.inputs, summed):
            if input_grad is None:
                continue
            if inp._ctx is None:
                seen = handed_out.get(id(input_grad))
                exclusive = input_grad.flags.owndata and (seen is None or seen() is None)
                _accumulate_leaf(inp, input_grad, exclusive)
            else:
                previous = grads.get(id(inp))
                grads[id(inp)] = input_grad if previous is None else previous + input_grad
            handed_out[id(input_grad)] = weakref.ref(input_grad)
        if not retain_graph:
            fn.release()


def _seed_gradient(root, grad):
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {root.shape} needs grad= "
                "(dL/d(this tensor), same shape); or reduce it to a scalar first, e.g. "
                "loss.sum().backward() or loss.mean().backward()."
            )
        return xp.ones_like(root.data)
    grad = xp.array(getattr(grad, "data", grad), dtype=root.data.dtype, copy=True)
    if grad.shape != root.shape:
        raise ValueError(
            f"backward(grad=...) got a gradient of shape {grad.shape} for a tensor of shape "
            f"{root.shape}: they must match"
        )
    return grad


def _accumulate_leaf(leaf, grad, exclusive: bool) -> None:
    """``leaf.grad += grad``; ``.grad`` is always an array that no other tensor shares."""
    if leaf.grad is None:
        leaf.grad = (
            grad
            if exclusive and grad.dtype == leaf.data.dtype
            else grad.astype(leaf.data.dtype, copy=True)
        )
    else:
        leaf.grad += grad
