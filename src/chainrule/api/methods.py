"""The functions of this package attached to :class:`~chainrule.tensor.Tensor` as operators and
methods (``a + b``, ``t.sum(dim=1)``, ``t.max(1)``, ``t.mT``), as PyTorch's Tensor has them, and
NumPy's hook that lets ``np.exp(t)`` run the differentiable op."""

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
from . import reductions as red
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


METHODS = {
    # operators
    "__add__": _add,
    "__radd__": _swap(_add),
    "__sub__": _sub,
    "__rsub__": _swap(_sub),
    "__mul__": _mul,
    "__rmul__": _swap(_mul),
    "__truediv__": _truediv,
    "__rtruediv__": _swap(_truediv),
    "__floordiv__": m.floor_divide,
    "__rfloordiv__": _swap(m.floor_divide),
    "__mod__": m.remainder,
    "__rmod__": _swap(m.remainder),
    "__pow__": m.pow,
    "__rpow__": _swap(m.pow),
    "__matmul__": la.matrix_product,
    "__rmatmul__": _swap(la.matrix_product),
    "__neg__": m.neg,
    "__pos__": lambda self: self,
    "__abs__": m.abs,
    "__invert__": cmp.bitwise_not,
    "__and__": cmp.bitwise_and,
    "__rand__": _swap(cmp.bitwise_and),
    "__or__": cmp.bitwise_or,
    "__ror__": _swap(cmp.bitwise_or),
    "__xor__": cmp.bitwise_xor,
    "__rxor__": _swap(cmp.bitwise_xor),
    "__getitem__": _getitem,
    # elementwise math
    "add": m.add,
    "sub": m.sub,
    "subtract": m.sub,
    "mul": m.mul,
    "multiply": m.mul,
    "div": m.div,
    "divide": m.div,
    "floor_divide": m.floor_divide,
    "remainder": m.remainder,
    "pow": m.pow,
    "square": m.square,
    "neg": m.neg,
    "negative": m.neg,
    "reciprocal": m.reciprocal,
    "abs": m.abs,
    "absolute": m.abs,
    "exp": m.exp,
    "expm1": m.expm1,
    "log": m.log,
    "log1p": m.log1p,
    "sqrt": m.sqrt,
    "rsqrt": m.rsqrt,
    "sin": m.sin,
    "cos": m.cos,
    "tan": m.tan,
    "sign": m.sign,
    "floor": m.floor,
    "ceil": m.ceil,
    "trunc": m.trunc,
    "round": m.round,
    "clamp": m.clamp,
    "clip": m.clamp,
    "maximum": m.maximum,
    "minimum": m.minimum,
    "where": lambda self, condition, other: m.where(condition, self, other),
    "lerp": m.lerp,
    "astype": m.astype,
    "type_as": type_as,
    "clone": m.clone,
    "contiguous": m.contiguous,
    "new_tensor": new_tensor,
    "new_full": new_full,
    "new_zeros": new_zeros,
    "new_ones": new_ones,
    "new_empty": new_empty,
    # activations
    "relu": _relu,
    "sigmoid": act.sigmoid,
    "tanh": act.tanh,
    "softmax": act.softmax,
    "log_softmax": act.log_softmax,
    # reductions
    "sum": red.sum,
    "mean": red.mean,
    "prod": red.prod,
    "cumsum": red.cumsum,
    "var": red.var,
    "std": red.std,
    "norm": red.norm,
    "logsumexp": red.logsumexp,
    "amax": red.amax,
    "amin": red.amin,
    "max": red.max,
    "min": red.min,
    "count_nonzero": red.count_nonzero,
    # shapes
    "reshape": sh.reshape,
    "view": sh.reshape,
    "view_as": sh.view_as,
    "reshape_as": sh.reshape_as,
    "flatten": sh.flatten,
    "unflatten": sh.unflatten,
    "permute": sh.permute,
    "transpose": sh.transpose,
    "swapaxes": sh.transpose,
    "swapdims": sh.transpose,
    "t": sh.t,
    "movedim": sh.movedim,
    "moveaxis": sh.movedim,
    "expand": sh.expand,
    "expand_as": sh.expand_as,
    "broadcast_to": sh.broadcast_to,
    "squeeze": sh.squeeze,
    "unsqueeze": sh.unsqueeze,
    "repeat": sh.repeat,
    "tile": sh.tile,
    "flip": sh.flip,
    "narrow": sh.narrow,
    "select": sh.select,
    "unbind": sh.unbind,
    "split": sh.split,
    "chunk": sh.chunk,
    # indexing
    "gather": ix.gather,
    "index_select": ix.index_select,
    "masked_fill": ix.masked_fill,
    "masked_select": ix.masked_select,
    "tril": ix.tril,
    "triu": ix.triu,
    "nonzero": ix.nonzero,
    # comparisons and sorting
    "eq": cmp.eq,
    "ne": cmp.ne,
    "lt": cmp.lt,
    "le": cmp.le,
    "gt": cmp.gt,
    "ge": cmp.ge,
    "equal": cmp.equal,
    "isclose": cmp.isclose,
    "allclose": cmp.allclose,
    "isnan": cmp.isnan,
    "isinf": cmp.isinf,
    "isfinite": cmp.isfinite,
    "logical_not": cmp.logical_not,
    "logical_and": cmp.logical_and,
    "logical_or": cmp.logical_or,
    "logical_xor": cmp.logical_xor,
    "sort": cmp.sort,
    "argsort": cmp.argsort,
    "topk": cmp.topk,
    # linear algebra
    "matmul": la.matmul,
    "mm": la.mm,
    "bmm": la.bmm,
    "mv": la.mv,
    "dot": la.dot,
    "outer": la.outer,
}

for _name, _fn in METHODS.items():
    setattr(Tensor, _name, _fn)

Tensor.T = property(lambda self: sh.transpose(self), doc="All axes reversed (a matrix transposed).")
Tensor.mT = property(sh.matrix_transpose, doc="The last two axes swapped: each matrix transposed.")


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


Tensor.__array_ufunc__ = _array_ufunc
