"""The op contract: one class per operation, forward and backward side by side.

A subclass implements

* ``forward(*arrays, **params) -> array``: compute the result from plain arrays, ``save`` what
  backward will need;
* ``backward(grad) -> gradient or tuple of gradients``: given the upstream gradient dL/dz, return
  dL/dx for each input (``None`` for inputs that need none). It must not modify ``grad`` in place.
  Broadcasting is undone by the engine, so an op may return gradients in the output's shape.

and states both formulas in its docstring. ``Op.apply(*inputs, **params)`` runs it on tensors and
records the node in the graph when a gradient will be needed.
"""

from __future__ import annotations

from . import autograd
from .backend import xp
from .tensor import Tensor


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    inputs: tuple | None = None
    needs_grad: tuple = ()
    saved: tuple = ()

    def save(self, *values) -> None:
        """Keep arrays (or anything) for backward."""
        self.saved = values

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def release(self) -> None:
        """Drop saved values and inputs once backward has used them (frees the graph)."""
        self.saved = ()
        self.inputs = None

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        """Run the op on tensors (or constants) and record it in the graph if needed."""
        fn = cls()
        arrays = _input_arrays(inputs)
        try:
            out = fn.forward(*arrays, **params)
        except ValueError as exc:  # e.g. shapes that do not broadcast: say which op
            shapes = ", ".join(str(getattr(a, "shape", "scalar")) for a in arrays)
            raise ValueError(f"{cls.__name__} of inputs with shapes {shapes}: {exc}") from None
        if type(out) is not xp.ndarray:
            out = xp.asarray(out)  # NumPy returns scalars, not 0-d arrays, from 0-d math
        if autograd._grad_enabled:
            needs_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
            if any(needs_grad):
                result = Tensor._make(out, True)
                fn.inputs, fn.needs_grad = inputs, needs_grad
                result._ctx = fn
                return result
        return Tensor._make(out, False)


def _input_arrays(inputs) -> list:
    """The arrays behind the inputs; constants keep the tensors' float dtype (no silent upcast)."""
    arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
    if len(arrays) == 1 or all(isinstance(x, Tensor) for x in inputs):
        return arrays
    reference = next(
        (x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"), None
    )
    for i, a in enumerate(arrays):
        if isinstance(inputs[i], Tensor) or a is None:
            continue
        if isinstance(a, xp.generic):
            a = a.item()  # a NumPy float64 scalar would upcast float32 tensors
        if not isinstance(a, (bool, int, float)):
            a = xp.asarray(a)
            if reference is not None and a.dtype.kind == "f" and a.dtype != reference:
                a = a.astype(reference)
        arrays[i] = a
    return arrays
