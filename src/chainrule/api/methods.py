"""The operators and methods of :class:`~chainrule.tensor.Tensor` that no other module of this
package defines under their own name (``a + b``, ``2 - t``, ``t.new_zeros(3)``, ``t.mT``), and
NumPy's hook that lets ``np.exp(t)`` run the differentiable op. The Tensor class body lists
every method and where it is implemented."""

from __future__ import annotations

from ..backend import xp
from ..creation import full, tensor
from ..ops import arithmetic as ar
from ..ops.activations import ReLU
from ..tensor import Tensor, _raw
from . import activations as act
from . import comparison as cmp
from . import indexing as ix
from . import linalg as la
from . import math as m
from . import shapes as sh


def _getitem(self, key):
    return ix.index(self, key)


# The operators call their op directly: they are the hot path of every model, and have no
# keyword arguments (alpha=, out=) to look at.


def _add(a, b):
    return ar.Add.apply(a, b)


def _sub(a, b):
    return ar.Sub.apply(a, b)


def _mul(a, b):
    return ar.Mul.apply(a, b)


def _truediv(a, b):
    return ar.Div.apply(a, b)


def _relu(self):
    return ReLU.apply(self)


def _swap(fn):
    """``fn`` with its two arguments swapped: how ``2 - t`` becomes ``sub(2, t)``."""
    return lambda a, b: fn(b, a)


def type_as(self, other) -> Tensor:
    """This tensor converted to ``other``'s dtype."""
    return self.to(other.dtype)


def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor from ``data`` with this tensor's dtype unless ``dtype`` is given."""
    return tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)


def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False):
    """A tensor of ``size`` filled with ``fill_value``, with this tensor's dtype by default."""
    return full(
        size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad
    )


def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return new_full(self, sh._sizes(size), 0, dtype, device, requires_grad)


def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return new_full(self, sh._sizes(size), 1, dtype, device, requires_grad)


new_empty = new_zeros


# The reflected operators (``2 - t`` is ``sub(2, t)``) and the few methods with no function of
# their own name elsewhere.
_radd, _rsub, _rmul, _rtruediv = _swap(_add), _swap(_sub), _swap(_mul), _swap(_truediv)
_rfloordiv, _rmod, _rpow = _swap(m.floor_divide), _swap(m.remainder), _swap(m.pow)
_rmatmul = _swap(la.matrix_product)
_rand, _ror, _rxor = _swap(cmp.bitwise_and), _swap(cmp.bitwise_or), _swap(cmp.bitwise_xor)


def _pos(self):
    return self


def _where(self, condition, other):
    """``t.where(condition, other)``: this tensor where ``condition`` holds, else ``other``."""
    return m.where(condition, self, other)


T = property(lambda self: sh.transpose(self), doc="All axes reversed (a matrix transposed).")
mT = property(sh.matrix_transpose, doc="The last two axes swapped: each matrix transposed.")


# -- NumPy functions on tensors ------------------------------------------------------------------

_UFUNCS = {
    xp.add: m.add,
    xp.subtract: m.sub,
    xp.multiply: m.mul,
    xp.true_divide: m.div,
    xp.power: m.pow,
    xp.negative: m.neg,
    xp.absolute: m.abs,
    xp.exp: m.exp,
    xp.expm1: m.expm1,
    xp.log: m.log,
    xp.log1p: m.log1p,
    xp.sqrt: m.sqrt,
    xp.sin: m.sin,
    xp.cos: m.cos,
    xp.tan: m.tan,
    xp.tanh: act.tanh,
    xp.maximum: m.maximum,
    xp.minimum: m.minimum,
    xp.matmul: la.matmul,
}


def _array_ufunc(self, ufunc, method, *inputs, **kwargs):
    """NumPy's hook: ``np.float64(2) * t`` and ``np.exp(t)`` run chainrule's differentiable op;
    any other ufunc (``np.isfinite(t)``) runs on the arrays and returns a tensor, as PyTorch's."""
    if method == "__call__" and not kwargs and ufunc in _UFUNCS:
        return _UFUNCS[ufunc](*inputs)
    out = kwargs.get("out")
    if out is not None:
        kwargs["out"] = tuple(_raw(o) for o in out)
    result = getattr(ufunc, method)(*(_raw(x) for x in inputs), **kwargs)
    if out is not None:
        for o in out:
            if isinstance(o, Tensor):
                o._counter[0] += 1
        return out[0] if len(out) == 1 else out
    if isinstance(result, tuple):
        return tuple(Tensor._make(xp.asarray(r), False) for r in result)
    return Tensor._make(xp.asarray(result), False)
