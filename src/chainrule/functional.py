"""Every op as a plain function (``cr.exp(t)``, ``cr.matmul(a, b)``) and as a Tensor method.

This is the layer users call. It checks arguments, accepts both NumPy (``axis``, ``keepdims``)
and PyTorch (``dim``, ``keepdim``) spellings, and hands plain values to the ops in ``ops/``. At the
bottom, the functions are attached to :class:`~chainrule.tensor.Tensor` as operators and methods.
"""

from __future__ import annotations

import builtins

from .backend import xp
from .dtypes import as_dtype, is_floating_point, result_type
from .ops import activations as act
from .ops import arithmetic as ar
from .ops import linalg as la
from .ops import reductions as red
from .ops import shape as sh
from .tensor import Tensor, _raw, _raw_key, resolve_axis, resolve_keepdims

# -- arithmetic ----------------------------------------------------------------------------------


def add(a, b) -> Tensor:
    """a + b, with broadcasting."""
    return ar.Add.apply(a, b)


def sub(a, b) -> Tensor:
    """a - b, with broadcasting."""
    return ar.Sub.apply(a, b)


def mul(a, b) -> Tensor:
    """a * b elementwise, with broadcasting."""
    return ar.Mul.apply(a, b)


def div(a, b) -> Tensor:
    """a / b elementwise, with broadcasting."""
    return ar.Div.apply(a, b)


def pow(a, b) -> Tensor:  # noqa: A001 - the name users know
    """a ** b elementwise."""
    return ar.Pow.apply(a, b)


def neg(a) -> Tensor:
    return ar.Neg.apply(a)


def abs(a) -> Tensor:  # noqa: A001
    return ar.Abs.apply(a)


def exp(a) -> Tensor:
    return ar.Exp.apply(a)


def log(a) -> Tensor:
    """Natural logarithm."""
    return ar.Log.apply(a)


def sqrt(a) -> Tensor:
    return ar.Sqrt.apply(a)


def maximum(a, b) -> Tensor:
    """Elementwise max(a, b); ties share the gradient."""
    return ar.Maximum.apply(a, b)


def minimum(a, b) -> Tensor:
    """Elementwise min(a, b); ties share the gradient."""
    return ar.Minimum.apply(a, b)


def clip(a, min=None, max=None) -> Tensor:  # noqa: A002
    """Limit values to [min, max] (either bound may be None); NumPy's ``clip``, PyTorch's ``clamp``."""
    if min is None and max is None:
        raise ValueError("clip needs at least one of min= and max=")
    return ar.Clip.apply(a, low=_raw(min), high=_raw(max))


clamp = clip


def where(cond, a, b) -> Tensor:
    """a where ``cond`` is true, else b (with broadcasting); ``cond`` is not differentiated."""
    dtype = result_type(a, b)
    return ar.Where.apply(
        xp.asarray(_raw(cond), dtype=bool), _as_type(a, dtype), _as_type(b, dtype)
    )


def _as_type(x, dtype):
    """``x`` in ``dtype`` (differentiably for tensors); Python numbers are left to NumPy."""
    if isinstance(x, Tensor):
        return x if x.dtype == dtype else astype(x, dtype)
    if isinstance(x, (bool, int, float)):
        return x
    return xp.asarray(x, dtype=dtype)


def astype(a, dtype) -> Tensor:
    """A copy converted to ``dtype``; float-to-float casts pass gradients back."""
    dtype = as_dtype(dtype)
    if not (is_floating_point(dtype) and is_floating_point(_raw(a).dtype)):
        return Tensor._make(_raw(a).astype(dtype), False)
    return ar.Cast.apply(a, dtype=dtype)


def clone(a) -> Tensor:
    """A copy with its own storage (gradients flow back to ``a``)."""
    return ar.Clone.apply(a)


def contiguous(a) -> Tensor:
    """``a`` itself when its values are laid out in C order, else a contiguous copy."""
    return a if _raw(a).flags.c_contiguous else clone(a)


# -- activations ---------------------------------------------------------------------------------


def relu(x) -> Tensor:
    """max(x, 0)."""
    return act.ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return act.LeakyReLU.apply(x, negative_slope=negative_slope)


def sigmoid(x) -> Tensor:
    """1 / (1 + e^-x), stable for large |x|."""
    return act.Sigmoid.apply(x)


def tanh(x) -> Tensor:
    return act.Tanh.apply(x)


def gelu(x, approximate: str = "none") -> Tensor:
    """x Phi(x) with the exact erf (``approximate='tanh'`` for the tanh formula)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return act.GELU.apply(x, approximate=approximate)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear above ``threshold`` as in PyTorch."""
    return act.Softplus.apply(x, beta=beta, threshold=threshold)


def softmax(x, axis=-1, *, dim=None) -> Tensor:
    """e^x / sum e^x along ``axis`` (default: the last)."""
    return act.Softmax.apply(x, axis=_one_axis(x, axis if dim is None else dim))


def log_softmax(x, axis=-1, *, dim=None) -> Tensor:
    """x - logsumexp(x) along ``axis``: log-probabilities, stable for large |x|."""
    return act.LogSoftmax.apply(x, axis=_one_axis(x, axis if dim is None else dim))


def logsumexp(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    """log sum e^x along ``axis`` (all axes by default), without overflow."""
    axis = red.normalize_axes(resolve_axis(axis, dim), _raw(x).ndim)
    return act.LogSumExp.apply(x, axis=axis, keepdims=resolve_keepdims(keepdims, keepdim))


def _one_axis(x, axis) -> int:
    ndim = _raw(x).ndim
    if not isinstance(axis, int) or not -ndim <= axis < builtins.max(ndim, 1):
        raise ValueError(f"axis must be an int in [-{ndim}, {ndim}), got {axis!r}")
    return axis


# -- reductions ----------------------------------------------------------------------------------


def sum(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple, or None for all)."""
    return red.Sum.apply(
        x, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdims, keepdim)
    )


def mean(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
    return red.Mean.apply(
        x, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdims, keepdim)
    )


def var(x, axis=None, keepdims=False, ddof=0, *, dim=None, keepdim=None, correction=None) -> Tensor:
    """Variance, NumPy's default ``ddof=0``; PyTorch's ``correction=`` is accepted as ddof."""
    ddof = correction if correction is not None else ddof
    return red.Var.apply(
        x, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdims, keepdim), ddof=ddof
    )


def max(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    """Largest value over ``axis``; tied maxima share the gradient equally."""
    return red.Max.apply(
        x, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdims, keepdim)
    )


def min(x, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    """Smallest value over ``axis``; tied minima share the gradient equally."""
    return red.Min.apply(
        x, axis=resolve_axis(axis, dim), keepdims=resolve_keepdims(keepdims, keepdim)
    )


# -- shapes --------------------------------------------------------------------------------------


def reshape(x, *shape) -> Tensor:
    """The same values in a new shape (one entry may be -1)."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    size = _raw(x).size
    known = 1
    for n in shape:
        known *= n if n != -1 else 1
    if (-1 in shape and (known == 0 or size % known)) or (-1 not in shape and known != size):
        raise ValueError(f"cannot reshape a tensor of shape {_raw(x).shape} into {tuple(shape)}")
    return sh.Reshape.apply(x, shape=shape)


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one (PyTorch's ``flatten``)."""
    shape = _raw(x).shape
    if not shape:
        return reshape(x, 1)
    start, end = start_dim % len(shape), end_dim % len(shape)
    return reshape(x, *shape[:start], -1, *shape[end + 1 :])


def permute(x, *axes) -> Tensor:
    """Reorder the axes (NumPy's ``transpose(axes)``, PyTorch's ``permute``)."""
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    ndim = _raw(x).ndim
    if sorted(a % ndim for a in axes) != list(range(ndim)) or len(axes) != ndim:
        raise ValueError(f"permute axes {axes} are not a permutation of {ndim} axes")
    return sh.Permute.apply(x, axes=axes)


def transpose(x, *axes) -> Tensor:
    """Reverse the axes (no argument), swap two axes (PyTorch's ``transpose(0, 1)``), or reorder
    them by a full permutation (NumPy's ``transpose((2, 0, 1))``)."""
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        return permute(x, *axes[0])
    ndim = _raw(x).ndim
    if not axes:
        return sh.Permute.apply(x, axes=None)
    if len(axes) == 2:
        order = list(range(ndim))
        i, j = axes[0] % ndim, axes[1] % ndim
        order[i], order[j] = order[j], order[i]
        return sh.Permute.apply(x, axes=tuple(order))
    return permute(x, *axes)


def expand(x, *shape) -> Tensor:
    """Broadcast to ``shape`` without copying (-1 keeps an axis as it is)."""
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    old = (1,) * (len(shape) - _raw(x).ndim) + _raw(x).shape
    shape = tuple(o if n == -1 else n for n, o in zip(shape, old))
    try:
        xp.broadcast_shapes(_raw(x).shape, shape)
    except ValueError:
        raise ValueError(f"cannot expand a tensor of shape {_raw(x).shape} to {shape}") from None
    return sh.Expand.apply(x, shape=shape)


def broadcast_to(x, shape) -> Tensor:
    return expand(x, *shape)


def squeeze(x, axis=None, *, dim=None) -> Tensor:
    """Remove axes of length 1 (all of them, or the ones named)."""
    shape = _raw(x).shape
    axes = red.normalize_axes(resolve_axis(axis, dim), len(shape))
    if resolve_axis(axis, dim) is None:
        axes = tuple(i for i in axes if shape[i] == 1)
    for a in axes:
        if shape[a] != 1:
            raise ValueError(f"cannot squeeze axis {a} of length {shape[a]} (shape {shape})")
    return reshape(x, *(n for i, n in enumerate(shape) if i not in axes))


def unsqueeze(x, axis=None, *, dim=None) -> Tensor:
    """Insert an axis of length 1 at ``axis``."""
    axis = resolve_axis(axis, dim)
    shape = list(_raw(x).shape)
    if not isinstance(axis, int) or not -len(shape) - 1 <= axis <= len(shape):
        raise ValueError(f"unsqueeze axis {axis!r} is out of range for shape {tuple(shape)}")
    axis = axis % (len(shape) + 1)
    shape.insert(axis, 1)
    return reshape(x, *shape)


def concatenate(tensors, axis=0, *, dim=None) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(tensors)
    axis = resolve_axis(axis, dim)
    _check_same_shapes("concatenate", tensors, skip_axis=axis)
    return sh.Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors, axis=0, *, dim=None) -> Tensor:
    """Stack same-shaped tensors along a new axis."""
    tensors = list(tensors)
    _check_same_shapes("stack", tensors, skip_axis=None)
    return sh.Stack.apply(*tensors, axis=resolve_axis(axis, dim))


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in ``np.pad`` (per-axis ``(before, after)``)."""
    return sh.Pad.apply(x, pad_width=pad_width, value=value)


def index(x, key) -> Tensor:
    """``x[key]`` with slices, integer arrays or masks; repeated indices accumulate gradients."""
    key = _raw_key(key)
    result = sh.Index.apply(x, key=key)
    if result._base is not None:  # basic indexing: a view that in-place changes write back through
        result._view_of = (x, key)
    return result


def _check_same_shapes(name, tensors, skip_axis) -> None:
    if not tensors:
        raise ValueError(f"{name} needs at least one tensor")
    shapes = [_raw(t).shape for t in tensors]
    first = list(shapes[0])
    for s in shapes[1:]:
        s = list(s)
        if skip_axis is not None and len(s) == len(first) and len(s) > 0:
            a = skip_axis % len(s)
            s[a] = first[a]
        if s != first:
            raise ValueError(f"{name}: tensors must have matching shapes, got {shapes}")


# -- linear algebra ------------------------------------------------------------------------------


def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's rules (1-D, 2-D, batched)."""
    sa, sb = _raw(a).shape, _raw(b).shape
    if not sa or not sb or sa[-1] != (sb[-2] if len(sb) > 1 else sb[0]):
        raise ValueError(f"matmul: shapes {sa} and {sb} do not fit (inner dimensions must match)")
    return la.MatMul.apply(a, b)


def linear(x, weight, bias=None) -> Tensor:
    """x @ weight.T + bias (weight is (out_features, in_features), as in PyTorch)."""
    return la.Linear.apply(x, weight, bias)


# -- attach operators and methods to Tensor ------------------------------------------------------


def _getitem(self, key):
    return index(self, key)


_METHODS = {
    "__add__": add,
    "__radd__": lambda a, b: add(b, a),
    "__sub__": sub,
    "__rsub__": lambda a, b: sub(b, a),
    "__mul__": mul,
    "__rmul__": lambda a, b: mul(b, a),
    "__truediv__": div,
    "__rtruediv__": lambda a, b: div(b, a),
    "__pow__": pow,
    "__rpow__": lambda a, b: pow(b, a),
    "__matmul__": matmul,
    "__rmatmul__": lambda a, b: matmul(b, a),
    "__neg__": neg,
    "__abs__": abs,
    "__getitem__": _getitem,
    "abs": abs,
    "exp": exp,
    "log": log,
    "sqrt": sqrt,
    "clip": clip,
    "clamp": clip,
    "maximum": maximum,
    "minimum": minimum,
    "relu": relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "logsumexp": logsumexp,
    "sum": sum,
    "mean": mean,
    "var": var,
    "max": max,
    "min": min,
    "reshape": reshape,
    "view": reshape,
    "flatten": flatten,
    "permute": permute,
    "transpose": transpose,
    "expand": expand,
    "broadcast_to": broadcast_to,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "matmul": matmul,
    "astype": astype,
    "clone": clone,
    "contiguous": contiguous,
}

for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)


# -- NumPy functions on tensors ------------------------------------------------------------------

_UFUNCS = {
    xp.add: add,
    xp.subtract: sub,
    xp.multiply: mul,
    xp.true_divide: div,
    xp.power: pow,
    xp.negative: neg,
    xp.absolute: abs,
    xp.exp: exp,
    xp.log: log,
    xp.sqrt: sqrt,
    xp.tanh: tanh,
    xp.maximum: maximum,
    xp.minimum: minimum,
    xp.matmul: matmul,
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
Tensor.T = property(lambda self: sh.Permute.apply(self, axes=None))
