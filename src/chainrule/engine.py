"""The engine: reverse-mode automatic differentiation, i.e. backpropagation by the chain rule.

Every tensor made by an operation remembers that operation (``tensor._ctx``, a *node*: an instance
of :class:`~chainrule.function.Function`). The node remembers its inputs and the nodes that made
them (``node.parents``, fixed when the op ran, so later in-place changes cannot rewire the graph).
``backward`` walks that graph from the result back to the leaves:

1. sort the nodes topologically (iteratively, so a chain of 100,000 ops needs no recursion);
2. visit them from the result backwards; each node first checks that nothing it saved for this
   moment was changed in place since (version counters), then turns the upstream gradient dL/dz
   into one gradient per input, dL/dx = dL/dz * dz/dx (the chain rule);
3. sum each returned gradient back to its input's shape (undoing NumPy broadcasting) in ONE place,
   :func:`unbroadcast`;
4. add it to the running total of the input's node; leaves (tensors made by the user, e.g.
   weights) keep theirs in ``.grad``, accumulating across calls;
5. free the graph's saved arrays unless ``retain_graph=True``.

A tracer hook (:func:`trace_backward`) sees every node as it is visited, which is how the chain-rule
trace of :mod:`chainrule.lens` is built without touching any op. The grad-mode switches
(``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``) live here too.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .backend import xp
from .sums import leading_axes_sums


class _ThreadState(threading.local):
    """Grad mode, inference mode and the tracer, one set per thread (as PyTorch's grad mode is
    thread-local): a ``no_grad`` block in one thread never switches gradients off in another.
    The class attributes are each new thread's starting values."""

    grad_enabled = True
    inference_mode = False
    tracer: Callable[[TraceEvent], None] | None = None


_state = _ThreadState()


# -- gradient mode -------------------------------------------------------------------------------


def is_grad_enabled() -> bool:
    """True unless inside :class:`no_grad` (or after ``set_grad_enabled(False)``) in this
    thread."""
    return _state.grad_enabled


def is_inference_mode_enabled() -> bool:
    return _state.inference_mode


class _GradMode(contextlib.ContextDecorator):
    """Sets the grad mode for a block (``with``) or a function (as a decorator)."""

    enabled = True
    inference = False

    def __new__(cls, *args, **kwargs):
        self = super().__new__(cls)
        if len(args) == 1 and callable(args[0]) and not kwargs:  # bare decorator: @cr.no_grad
            self.__init__()
            return self(args[0])
        return self

    def _recreate_cm(self):
        # as a decorator, each call (in any thread) gets its own copy to save its previous mode in
        return copy.copy(self)

    def __enter__(self):
        self._previous = (_state.grad_enabled, _state.inference_mode)
        _state.grad_enabled = self.enabled
        _state.inference_mode = self.inference
        return self

    def __exit__(self, *exc):
        _state.grad_enabled, _state.inference_mode = self._previous
        return False


class no_grad(_GradMode):  # noqa: N801 - PyTorch's name
    """Context manager and decorator: operations inside record no graph (faster, less memory).

    Example:
        >>> with cr.no_grad():
        ...     prediction = model(x)
    """

    enabled = False

    def __init__(self, orig_func=None):
        pass


class enable_grad(_GradMode):  # noqa: N801
    """Context manager and decorator that turns graph recording back on inside ``no_grad``."""

    def __init__(self, orig_func=None):
        pass


class inference_mode(_GradMode):  # noqa: N801
    """Like :class:`no_grad` (PyTorch's faster variant; here the same): ``inference_mode(False)``
    changes nothing."""

    def __init__(self, mode: bool = True):
        self.enabled = not mode and _state.grad_enabled
        self.inference = bool(mode)

    def __enter__(self):
        if not self.inference:
            self._previous = (_state.grad_enabled, _state.inference_mode)
            return self
        return super().__enter__()


class set_grad_enabled(_GradMode):  # noqa: N801
    """Turn recording on or off: at once when called (``cr.set_grad_enabled(False)``), or for a
    block (``with cr.set_grad_enabled(is_training):``), restoring the previous mode after it."""

    def __init__(self, mode: bool):
        self._previous = (_state.grad_enabled, _state.inference_mode)
        self.enabled = bool(mode)
        _state.grad_enabled = self.enabled

    def __enter__(self):
        return self


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
    """Install ``tracer`` (called once per node during backward in this thread); returns the
    previous one."""
    previous, _state.tracer = _state.tracer, tracer
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
    if axes == tuple(range(extra)):  # only new leading axes (a bias): a BLAS product
        return leading_axes_sums(grad, extra).reshape(shape)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def node_order(roots: list) -> list:
    """The nodes ``roots`` depend on (themselves included), inputs before outputs.

    Iterative depth-first search with an explicit stack, so depth is limited only by memory.
    """
    order, visited = [], set()
    stack = [(node, False) for node in roots]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        if node.inputs is None:
            raise RuntimeError(
                f"backward() through a graph that was already freed (at a {type(node).__name__} "
                "node): the first backward() released its saved values. Call the first "
                "backward(retain_graph=True) to backpropagate through the same graph twice, "
                "or recompute the forward pass."
            )
        stack.append((node, True))
        for parent, needs in zip(node.parents, node.needs_grad):
            if needs and parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    return order


def topological_order(root) -> list:
    """The tensors made by operations that ``root`` depends on (itself included), inputs first."""
    if root._ctx is None:
        return []
    return [node.output() for node in node_order([root._ctx])]


def backward(roots: list, grads: list, retain_graph: bool = False, inputs=None) -> None:
    """Backpropagate from ``roots``: add d(roots)/d(leaf) (times ``grads``) into leaves' ``.grad``.

    Args:
        roots: tensors to differentiate, usually one scalar loss.
        grads: dL/d(root) for each root; None for a one-element root (then it is 1).
        retain_graph: keep the graph's saved values so that backward can run through it again.
        inputs: if given, only these leaves accumulate a gradient.
    """
    only = None if inputs is None else {id(t) for t in _as_list(inputs)}
    _run(_seeds(roots, grads), retain_graph, only=only)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, allow_unused=False) -> list:
    """dL/d(input) for each of ``inputs`` (leaves or not) as arrays, without touching ``.grad``;
    None for an input that ``outputs`` do not depend on (when ``allow_unused``)."""
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grad_outputs = [None] * len(outputs) if grad_outputs is None else _as_list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("grad: one of the inputs does not require grad")
    captured: dict = {}
    _run(_seeds(outputs, grad_outputs), bool(retain_graph), capture=(inputs, captured))
    results = []
    for k, t in enumerate(inputs):
        if k not in captured and not allow_unused:
            raise RuntimeError(
                f"grad: input {k} (shape {tuple(t._data.shape)}) was not used to compute the "
                "outputs; pass allow_unused=True to get None for it"
            )
        results.append(captured.get(k))
    return results


def _as_list(values) -> list:
    return list(values) if isinstance(values, (list, tuple)) else [values]


def _seeds(roots: list, grads: list) -> list:
    seeds = []
    for root, seed in zip(roots, grads):
        if not root.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (create the inputs you want gradients for "
                "with requires_grad=True, and do not compute inside cr.no_grad())."
            )
        seeds.append((root, _seed_gradient(root, seed)))
    return seeds


def _seed_gradient(root, grad):
    if grad is None:
        if root._data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {tuple(root._data.shape)} needs "
                "gradient= (dL/d(this tensor), same shape); or reduce it to a scalar first, e.g. "
                "loss.sum().backward() or loss.mean().backward()."
            )
        return xp.ones(root._data.shape, dtype=root._data.dtype)
    grad = xp.array(getattr(grad, "_data", grad), dtype=root._data.dtype, copy=True)
    if grad.shape != root._data.shape:
        raise ValueError(
            f"backward(gradient=...) got a gradient of shape {grad.shape} for a tensor of shape "
            f"{tuple(root._data.shape)}: they must match"
        )
    return grad


def _run(seeds: list, retain_graph: bool, only=None, capture=None) -> None:
    """The backward pass proper (see the module docstring). ``capture=(tensors, found)`` collects
    the gradients of ``tensors`` into ``found`` (by position) instead of filling ``.grad``."""
    deliver, node_targets = _leaf_sink(only, capture)
    grads: dict[int, object] = {}
    roots = []
    for root, seed in seeds:
        if root._ctx is None:  # backward on a leaf: its gradient is the seed itself
            deliver(root, seed, True)
            continue
        roots.append(root._ctx)
        previous = grads.get(id(root._ctx))
        grads[id(root._ctx)] = seed if previous is None else previous + seed

    # arrays already given to some tensor in this pass, by id (weak: a freed array's id may be
    # reused by a new, unshared array)
    handed_out: dict[int, weakref.ref] = {}
    sums: set[int] = set()  # ids of the pending gradients this pass allocated itself (see below)
    for node in reversed(node_order(roots)):
        grad = grads.pop(id(node), None)
        if grad is None:
            continue
        sums.discard(id(grad))
        if node.versions:
            node.check_saved_versions()
        if node.retains_grad:
            _retain(node, grad)
        if node_targets and id(node) in node_targets:
            capture[1][node_targets[id(node)]] = _add(capture[1].get(node_targets[id(node)]), grad)
        input_grads = node.backward(grad)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        summed = [
            None
            if g is None or not needs
            else g
            if type(g) is xp.ndarray and g.shape == inp._data.shape and g.dtype == inp._data.dtype
            else _fit(g, inp)
            for inp, g, needs in zip(node.inputs, input_grads, node.needs_grad)
        ]
        if _state.tracer is not None:
            _state.tracer(TraceEvent(node, node.output(), node.inputs, grad, tuple(summed)))
        for inp, parent, input_grad in zip(node.inputs, node.parents, summed):
            if input_grad is None:
                continue
            if parent is None:
                seen = handed_out.get(id(input_grad))
                deliver(
                    inp, input_grad, input_grad.flags.owndata and (seen is None or seen() is None)
                )
            else:
                grads[id(parent)] = _accumulate(grads.get(id(parent)), input_grad, sums)
            handed_out[id(input_grad)] = weakref.ref(input_grad)
        if not retain_graph:
            node.release()


def _leaf_sink(only, capture):
    """Where a leaf's gradient goes: into ``.grad`` (of every leaf, or of the ``only`` ones), or
    into ``capture``'s dict for ``autograd.grad``; and the non-leaf nodes ``capture`` wants."""
    if capture is None:
        if only is None:
            return accumulate_leaf, None

        def accumulate_some(leaf, grad, exclusive):
            if id(leaf) in only:
                accumulate_leaf(leaf, grad, exclusive)

        return accumulate_some, None
    tensors, found = capture
    leaf_targets = {id(t): k for k, t in enumerate(tensors) if t._ctx is None}

    def collect(leaf, grad, exclusive):
        k = leaf_targets.get(id(leaf))
        if k is not None:
            found[k] = _add(found.get(k), grad)

    return collect, {id(t._ctx): k for k, t in enumerate(tensors) if t._ctx is not None}


def _accumulate(previous, grad, sums: set):
    """previous + grad for a node reached by several paths. The first sum is a new array, which
    this pass alone holds (its id goes into ``sums``); later paths add into it in place, instead
    of allocating a new array for each (a layer's input feeding many layers: the GPT's 12 heads'
    q, k and v). An op's own gradient array is never written: it may be saved or shared."""
    if previous is None:
        return grad
    if id(previous) in sums and previous.shape == grad.shape and previous.dtype == grad.dtype:
        previous += grad
        return previous
    total = previous + grad
    sums.add(id(total))
    return total


def _add(total, grad):
    return grad.copy() if total is None else total + grad


def _fit(grad, inp):
    """The gradient of ``inp``: summed to its shape, in its dtype."""
    data = inp._data
    if type(grad) is not xp.ndarray:
        grad = xp.asarray(grad)
    if grad.shape != data.shape:
        grad = unbroadcast(grad, data.shape)
    return grad if grad.dtype == data.dtype else grad.astype(data.dtype)


def accumulate_leaf(leaf, grad, exclusive: bool) -> None:
    """``leaf.grad += grad``, in place when ``.grad`` exists (it may be a view of an optimizer's
    flat gradient buffer); a new ``.grad`` never shares its array with another tensor."""
    current = leaf._grad
    if current is None:
        same_dtype = grad.dtype == leaf._data.dtype
        array = grad if exclusive and same_dtype else grad.astype(leaf._data.dtype, copy=True)
        leaf._grad = leaf.wrap_array(array)
    else:
        current._data += grad
        current._counter[0] += 1


def _retain(node, grad) -> None:
    """Keep the gradient of a non-leaf whose ``retain_grad()`` was called."""
    output = node.output()
    if output is None:
        return
    if output._grad is None:
        output._grad = output.wrap_array(grad.copy())
    else:
        output._grad._data += grad
