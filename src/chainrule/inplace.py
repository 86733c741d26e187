"""In-place operations, as PyTorch's: ``x += y``, ``x.add_(y)``, ``x.zero_()``, ``x[i] = v``, ...

An in-place operation changes the tensor's own storage, so every view of it sees the change, and
bumps its version counter, so that a backward pass needing the old values refuses to run instead of
computing a wrong gradient. Two paths:

* **not recorded** (inside ``no_grad``, or when nothing involved requires grad): NumPy writes the
  result straight into the storage (``np.subtract(p, step, out=p)``), so the hand-written update
  ``p -= lr * p.grad`` allocates nothing more;
* **recorded**: the ordinary op runs (on a copy of the old values when its backward reads them),
  its result is written into the storage, and the tensor takes the op's place in the graph.

PyTorch's rules: a leaf that requires grad changes in place only inside ``no_grad``; a result
that could not be stored in the tensor's type (a float into an integer tensor) is an error.
Through an indexing view (``h[i] += v``) a recorded change is written back into the base as a
recorded ``h[i] = ...``; through other views (reshape, transpose, detach) it is refused under
autograd, where PyTorch would rewrite the base's history.
"""

from __future__ import annotations

import weakref

from . import api as F
from . import engine
from .backend import xp
from .dtypes import can_cast, result_type
from .generator import stream
from .ops import shape as sh
from .tensor import Tensor, _raw, _raw_key, check_not_recording_leaf


def _recording(target: Tensor, *others) -> bool:
    if not engine._state.grad_enabled:
        return False
    return target.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)


def _check_cast(target: Tensor, dtype, name: str) -> None:
    if not can_cast(dtype, target.dtype):
        raise RuntimeError(
            f"{name}: result type {dtype} can't be cast to the tensor's type {target.dtype}"
        )


def _bump(target: Tensor) -> Tensor:
    target._counter[0] += 1
    return target


def commit(target: Tensor, result: Tensor) -> Tensor:
    """Make ``target`` hold ``result``'s values in its own storage and take its place in the graph."""
    if target._view_of is not None:
        parent, key = target._view_of
        setitem(parent, key, result)  # recorded on the base, which the view shares
    elif target._base is not None:
        raise RuntimeError(
            "an in-place operation under autograd on a view made by reshape/view/transpose/"
            "expand/detach is not supported by chainrule: use the out-of-place form "
            "(y = y + x), or change the base tensor through indexing (base[i] += x)"
        )
    else:
        if result._data is not target._data:
            xp.copyto(target._data, result._data, casting="same_kind")
        _bump(target)
    target._ctx, target.requires_grad = result._ctx, result.requires_grad
    if target._ctx is not None:
        target._ctx.output = weakref.ref(target)
    return target


def _recorded(target: Tensor, name: str, op, saves_inputs: bool, *args) -> Tensor:
    check_not_recording_leaf(target, name)
    source = target
    if saves_inputs:  # the op's backward reads the old values: give it its own copy
        source = Tensor._make(target._data.copy(), target.requires_grad)
        source._ctx = target._ctx
    result = op(source, *args)
    _check_cast(target, result.dtype, name)
    return commit(target, result)


def _binary(name: str, ufunc, op, saves_inputs: bool, scaled: bool = False):
    def method(self, other, *, alpha=None):
        if alpha is not None:
            if not scaled:
                raise TypeError(f"{name}() got an unexpected keyword argument 'alpha'")
            other = other * alpha
        if _recording(self, other):
            return _recorded(self, name, op, saves_inputs, other)
        dtype = result_type(self, other)
        if ufunc is xp.true_divide and dtype.kind != "f":
            dtype = xp.dtype("float64")  # true division of integers gives floats
        _check_cast(self, dtype, name)
        try:
            ufunc(self._data, _raw(other), out=self._data, casting="same_kind")
        except ValueError as exc:
            shape = getattr(_raw(other), "shape", ())
            raise RuntimeError(
                f"{name}: cannot write a result for shapes {tuple(self._data.shape)} and "
                f"{tuple(shape)} into the tensor of shape {tuple(self._data.shape)} ({exc})"
            ) from None
        return _bump(self)

    method.__name__ = name
    method.__doc__ = f"In place: self <- {op.__name__}(self, other) (see :mod:`chainrule.inplace`)."
    return method


def _unary(name: str, ufunc, op, saves_inputs: bool):
    def method(self):
        if _recording(self):
            return _recorded(self, name, op, saves_inputs)
        if self._data.dtype.kind != "f" and ufunc not in (xp.negative, xp.absolute):
            raise RuntimeError(f"{name}: result type float can't be cast to {self.dtype}")
        ufunc(self._data, out=self._data)
        return _bump(self)

    method.__name__ = name
    method.__doc__ = f"In place: self <- {op.__name__}(self)."
    return method


def _relu(x, out=None):
    return xp.maximum(x, 0, out=out)


def setitem(self: Tensor, key, value) -> None:
    """``self[key] = value``: recorded as an op when gradients are involved."""
    key = _raw_key(key)
    if _recording(self, value):
        check_not_recording_leaf(self, "index assignment")
        commit(self, sh.SetItem.apply(self, _as_type(value, self.dtype), key=key))
        return
    self._data[key] = _raw(value)
    _bump(self)


def _as_type(value, dtype):
    if isinstance(value, Tensor) and value.dtype != dtype:
        return F.astype(value, dtype)
    return value


def fill_(self: Tensor, value) -> Tensor:
    """Set every value to ``value`` (a number or a one-element tensor)."""
    setitem(self, Ellipsis, value)
    return self


def zero_(self: Tensor) -> Tensor:
    """Set every value to 0."""
    return fill_(self, 0)


def copy_(self: Tensor, src, non_blocking: bool = False) -> Tensor:
    """Copy ``src``'s values (broadcast to this shape) into this tensor."""
    src_shape = tuple(xp.shape(_raw(src)))
    try:
        xp.broadcast_shapes(src_shape, tuple(self._data.shape))
    except ValueError:
        raise RuntimeError(
            f"copy_: source of shape {src_shape} does not broadcast to {tuple(self._data.shape)}"
        ) from None
    setitem(self, Ellipsis, src)
    return self


def clamp_(self: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit every value to [min, max] in place."""
    if _recording(self):
        return _recorded(self, "clamp_", lambda x: F.clip(x, min, max), False)
    if min is None and max is None:
        raise ValueError("clamp_ needs at least one of min= and max=")
    xp.clip(self._data, _raw(min), _raw(max), out=self._data)
    return _bump(self)


def masked_fill_(self: Tensor, mask, value) -> Tensor:
    """Set the values where ``mask`` (broadcast to this shape) is true to ``value``."""
    mask = xp.asarray(_raw(mask))
    if mask.dtype != xp.bool_:
        raise TypeError(f"masked_fill_ expects a boolean mask, got dtype {mask.dtype}")
    try:
        mask = xp.broadcast_to(mask, self._data.shape)
    except ValueError:
        raise RuntimeError(
            f"masked_fill_: mask of shape {mask.shape} does not broadcast to "
            f"{tuple(self._data.shape)}"
        ) from None
    setitem(self, mask, value)
    return self


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    values = stream(generator).normal(mean, std, self._data.shape)
    setitem(self, Ellipsis, values.astype(self.dtype))
    return self


def uniform_(self: Tensor, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill with samples of the uniform distribution on [a, b)."""
    values = stream(generator).uniform(a, b, self._data.shape)
    setitem(self, Ellipsis, values.astype(self.dtype))
    return self


# The methods, named as Tensor's class body finds them; ``x += y`` is ``x.add_(y)``.
add_ = _binary("add_", xp.add, F.add, False, scaled=True)
sub_ = _binary("sub_", xp.subtract, F.sub, False, scaled=True)
mul_ = _binary("mul_", xp.multiply, F.mul, True)
div_ = _binary("div_", xp.true_divide, F.div, True)
pow_ = _binary("pow_", xp.power, F.pow, True)
neg_ = _unary("neg_", xp.negative, F.neg, False)
abs_ = _unary("abs_", xp.absolute, F.abs, True)
exp_ = _unary("exp_", xp.exp, F.exp, True)
log_ = _unary("log_", xp.log, F.log, True)
sqrt_ = _unary("sqrt_", xp.sqrt, F.sqrt, True)
relu_ = _unary("relu_", _relu, F.relu, True)
