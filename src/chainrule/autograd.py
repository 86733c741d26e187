"""``cr.autograd``: PyTorch's autograd interface, on chainrule's engine.

* :class:`Function` with PyTorch's contract, for operations you write yourself::

      class Exp(cr.autograd.Function):
          @staticmethod
          def forward(ctx, x):
              y = x.exp()
              ctx.save_for_backward(y)
              return y

          @staticmethod
          def backward(ctx, grad_output):
              (y,) = ctx.saved_tensors
              return grad_output * y

      y = Exp.apply(x)

* :func:`grad` (gradients of outputs with respect to inputs, without touching ``.grad``) and
  :func:`backward`;
* the grad-mode switches ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

Deliberately different from PyTorch: no gradients of gradients (``create_graph=True`` raises), and a
custom ``Function`` returns one tensor.
"""

from __future__ import annotations

import weakref

from . import engine
from .engine import (  # noqa: F401 - the public names
    TraceEvent,
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
    topological_order,
    trace_backward,
)
from .function import Function as _Node
from .tensor import Tensor


class FunctionCtx:
    """What ``forward`` leaves for ``backward``: saved tensors and any attributes you set."""

    def __init__(self, needs_input_grad: tuple):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved: tuple = ()
        self._versions: tuple = ()
        self.non_differentiable: set = set()

    def save_for_backward(self, *tensors) -> None:
        """Keep tensors for backward; changing them in place before backward is an error."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward takes tensors (or None), got {type(t).__name__}; "
                    "store other values as attributes of ctx"
                )
        self._saved = tensors
        self._versions = tuple(None if t is None else t._counter[0] for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        for k, (t, version) in enumerate(zip(self._saved, self._versions)):
            if t is not None and t._counter[0] != version:
                raise RuntimeError(
                    f"saved tensor {k} was modified by an in-place operation after "
                    f"save_for_backward (version {version}, now {t._counter[0]})"
                )
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self.non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = value

    def mark_dirty(self, *tensors) -> None:
        raise NotImplementedError(
            "mark_dirty: in-place custom Functions are not supported; return a new tensor"
        )


class Function:
    """Base class of operations with a hand-written backward (PyTorch's contract).

    Subclasses define ``@staticmethod forward(ctx, *args)`` (tensors in, one tensor out) and
    ``@staticmethod backward(ctx, grad_output)`` returning one gradient per argument of forward
    (None for non-tensors or inputs needing none); or ``forward(*args)`` plus
    ``setup_context(ctx, inputs, output)``. Call it with ``MyFunction.apply(*args)``.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a custom Function must define forward")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a custom Function must define backward")

    setup_context = None

    @classmethod
    def apply(cls, *args, **kwargs):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with engine.no_grad():
            if cls.setup_context is not None:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        if not isinstance(output, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return one tensor (chainrule's custom Functions "
                f"have one output), got {type(output).__name__}"
            )
        if not (engine.is_grad_enabled() and any(needs)) or id(output) in ctx.non_differentiable:
            return output
        if any(output is a for a in args):  # returned an input: give the result its own identity
            output = Tensor._make(output._data, False)
        node = _CustomNode()
        node.function, node.ctx = cls, ctx
        node.inputs, node.needs_grad = args, needs
        node.parents = tuple(a._ctx if isinstance(a, Tensor) else None for a in args)
        node.output = weakref.ref(output)
        output._ctx, output.requires_grad = node, True
        return output


class _CustomNode(_Node):
    """The engine's node for a user-defined :class:`Function`: converts between the engine's
    arrays and the user's tensors."""

    def backward(self, grad):
        with engine.no_grad():
            grads = self.function.backward(self.ctx, Tensor._make(grad, False))
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.inputs):
            raise RuntimeError(
                f"{self.function.__name__}.backward returned {len(grads)} gradients, but forward "
                f"took {len(self.inputs)} arguments: return one per argument (None where none)"
            )
        arrays = []
        for k, (g, inp) in enumerate(zip(grads, self.inputs)):
            if g is None or not self.needs_grad[k]:
                arrays.append(None)
                continue
            array = g._data if isinstance(g, Tensor) else g
            if getattr(array, "shape", None) is None or not _broadcastable(array.shape, inp.shape):
                raise RuntimeError(
                    f"{self.function.__name__}.backward: gradient {k} has shape "
                    f"{getattr(array, 'shape', '?')}, but the input has shape {tuple(inp.shape)}"
                )
            arrays.append(array)
        return tuple(arrays)

    def release(self) -> None:
        super().release()
        self.ctx = None


def _broadcastable(grad_shape, input_shape) -> bool:
    input_shape = tuple(input_shape)
    if tuple(grad_shape) == input_shape:
        return True
    trimmed = grad_shape[len(grad_shape) - len(input_shape) :] if input_shape else ()
    return len(grad_shape) >= len(input_shape) and all(
        n == m or n == 1 for n, m in zip(input_shape, trimmed)
    )


class _VariableType(type):
    """``isinstance(t, Variable)`` is True of every tensor, as in PyTorch."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)


class Variable(metaclass=_VariableType):
    """PyTorch's pre-0.4 wrapper, now a pass-through: ``Variable(t, requires_grad=True)`` is a
    tensor sharing ``t``'s storage that requires grad (``t`` itself is left as it is), as
    ``torch.autograd.Variable`` gives. ``volatile`` is accepted and does nothing (use
    ``no_grad``), as in PyTorch."""

    def __new__(cls, data, requires_grad: bool = False, volatile: bool = False) -> Tensor:
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable wraps a tensor, got {type(data).__name__}")
        return Tensor(data, requires_grad=requires_grad)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph: bool = False,
    allow_unused=None,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of ``outputs`` with respect to each of ``inputs`` (a tuple of tensors),
    without accumulating into any ``.grad``."""
    if create_graph:
        raise NotImplementedError(
            "create_graph=True (gradients of gradients) is not supported by chainrule's engine"
        )
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    arrays = engine.grad(
        outputs, inputs, grad_outputs, retain_graph, bool(allow_unused or materialize_grads)
    )
    results = []
    for t, a in zip(inputs, arrays):
        if a is None and materialize_grads:
            a = t._data * 0
        results.append(None if a is None else Tensor._make(a, False))
    return tuple(results)


def backward(tensors, grad_tensors=None, retain_graph=None, inputs=None) -> None:
    """Add the gradients of ``tensors`` into the leaves' ``.grad`` (``cr.autograd.backward``)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    engine.backward(tensors, list(grad_tensors), bool(retain_graph), inputs=inputs)
