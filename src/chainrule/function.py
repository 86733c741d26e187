"""The op contract: one class per operation, forward and backward side by side.

A subclass implements

* ``forward(*arrays, **params) -> array``: compute the result from plain arrays, ``save`` what
  backward will need;
* ``backward(grad) -> gradient or tuple of gradients``: given the upstream gradient dL/dz, return
  dL/dx for each input (``None`` for inputs that need none). It must not modify ``grad`` in place.
  Broadcasting is undone by the engine, so an op may return gradients in the output's shape.

and states both formulas in its docstring. ``Op.apply(*inputs, **params)`` runs it on tensors and
records the node in the graph when a gradient will be needed. Class attributes describe the op to
the machinery around it:

* ``promotes``: elementwise over several inputs, whose types are promoted by PyTorch's rules first
  (float32 with a Python number or an integer tensor stays float32);
* ``float_result``: integer inputs are converted to the default float type first (``exp`` of an
  integer tensor is a float tensor);
* ``view``: the result may share the first input's storage (reshape, transpose, slicing), and then
  shares its version counter too;
* ``saves_inputs``: backward reads the input arrays, so an in-place variant must save a copy.
"""

from __future__ import annotations

import weakref

from . import engine
from .backend import xp
from .dtypes import get_default_dtype, result_type
from .tensor import Tensor, make_view


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    promotes = False
    float_result = False
    view = False
    saves_inputs = True

    inputs: tuple | None = None
    parents: tuple = ()
    needs_grad: tuple = ()
    saved: tuple = ()
    versions: tuple = ()  # the inputs' and the output's version counts when the op ran
    retains_grad = False

    def save(self, *values) -> None:
        """Keep arrays (or anything) for backward."""
        self.saved = values

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def output(self):
        """The tensor this node made (None once it is gone)."""
        return None

    def release(self) -> None:
        """Drop saved values and inputs once backward has used them (frees the graph)."""
        self.saved = ()
        self.inputs = None
        self.parents = ()
        self.versions = ()

    def retain(self, tensor) -> None:
        """Keep the gradient of this node's output in ``tensor.grad`` (``retain_grad()``)."""
        self.retains_grad = True

    def check_saved_versions(self) -> None:
        """Refuse to run backward if a value saved for it was changed in place since.

        Cheap when nothing changed (compare version counts); only then are the saved arrays
        matched against the storage of what changed.
        """
        for counter, version, _, _ in self.versions:
            if counter[0] != version:
                break
        else:
            return
        saved_owners = {id(_owner(v)) for v in self.saved if type(v) is xp.ndarray}
        for counter, version, which, array in self.versions:
            if counter[0] != version and id(_owner(array)) in saved_owners:
                what = "its output" if which < 0 else f"its input {which}"
                raise RuntimeError(
                    f"one of the values needed for the gradient has been modified by an in-place "
                    f"operation: {what} ({type(self).__name__} saved it at version {version}; it "
                    f"is now at version {counter[0]}). Do the in-place change after backward(), "
                    "or use the out-of-place form (x = x + y instead of x += y)."
                )

    @classmethod
    def apply(cls, *inputs, **params) -> Tensor:
        """Run the op on tensors (or constants) and record it in the graph if needed."""
        fn = cls()
        arrays = input_arrays(cls, inputs)
        try:
            out = fn.forward(*arrays, **params)
        except ValueError as exc:  # e.g. shapes that do not broadcast: say which op
            shapes = ", ".join(str(getattr(a, "shape", "scalar")) for a in arrays)
            raise ValueError(f"{cls.__name__} of inputs with shapes {shapes}: {exc}") from None
        if type(out) is not xp.ndarray:
            out = xp.asarray(out)  # NumPy returns scalars, not 0-d arrays, from 0-d math
        needs_grad = (
            tuple([isinstance(x, Tensor) and x.requires_grad for x in inputs])
            if engine._state.grad_enabled
            else ()
        )
        recording = True in needs_grad
        if cls.view and isinstance(inputs[0], Tensor) and _same_owner(out, inputs[0]._data):
            result = make_view(inputs[0], out, recording)
        else:
            result = Tensor._make(out, recording)
        if recording:
            fn.inputs, fn.needs_grad = inputs, needs_grad
            fn.parents = tuple([x._ctx if isinstance(x, Tensor) else None for x in inputs])
            if fn.saved:  # what backward will check (see check_saved_versions)
                fn.versions = [
                    (x._counter, x._counter[0], i, x._data)
                    for i, x in enumerate(inputs)
                    if isinstance(x, Tensor)
                ]
                fn.versions.append((result._counter, result._counter[0], -1, out))
            fn.output = weakref.ref(result)
            result._ctx = fn
        return result


def _owner(array):
    return array if array.base is None else array.base


def _same_owner(a, b) -> bool:
    return isinstance(a, xp.ndarray) and isinstance(b, xp.ndarray) and _owner(a) is _owner(b)


def input_arrays(cls, inputs) -> list:
    """The arrays behind the inputs, converted to the op's computing type (see the module
    docstring); Python numbers stay numbers, which NumPy treats as weakly typed."""
    arrays = [
        x._data if isinstance(x, Tensor) else x.item() if isinstance(x, xp.generic) else x
        for x in inputs
    ]  # NumPy scalars become Python numbers, which never change a tensor's type
    if cls.promotes and len(arrays) == 2 and not cls.float_result:
        a, b = arrays
        if type(a) is xp.ndarray:
            if type(b) is xp.ndarray and a.dtype == b.dtype:
                return arrays
            if type(b) in (int, float) and a.dtype.kind == "f":
                return arrays  # a Python number never changes a float tensor's type
        elif type(b) is xp.ndarray and type(a) in (int, float) and b.dtype.kind == "f":
            return arrays
    if not cls.promotes:
        first = arrays[0] if arrays else None
        if cls.float_result and isinstance(first, xp.ndarray) and first.dtype.kind != "f":
            arrays[0] = first.astype(get_default_dtype())
        return arrays
    dtypes = {a.dtype for a in arrays if isinstance(a, xp.ndarray)}
    numbers_only = all(
        isinstance(a, xp.ndarray) or isinstance(a, (bool, int, float)) or a is None for a in arrays
    )
    if numbers_only and len(dtypes) == 1:
        (dtype,) = dtypes
        if dtype.kind == "f" or not (cls.float_result or any(isinstance(a, float) for a in arrays)):
            return arrays  # one type, and no Python float or true division asking for floats
    target = result_type(*arrays)
    if cls.float_result and target.kind != "f":
        target = get_default_dtype()
    return [_convert(a, target) for a in arrays]


def _convert(value, dtype):
    if value is None or isinstance(value, (bool, int, float)):
        return value if value is None or dtype.kind == "f" else xp.asarray(value, dtype=dtype)
    array = xp.asarray(value)
    return array if array.dtype == dtype else array.astype(dtype)
