"""The Tensor: a NumPy array that remembers how it was made, so that gradients can flow back.

Arithmetic operators and methods such as ``t.exp()`` or ``t.sum(axis=1)`` are defined over the ops
in :mod:`chainrule.functional`, which attaches them to this class when the package is imported.
"""

from __future__ import annotations

from . import autograd
from .backend import DEFAULT_FLOAT, as_dtype, is_float, rng, xp


class Tensor:
    """An n-dimensional array with an optional gradient.

    Attributes:
        data: the values, a NumPy array (assignable).
        grad: dL/d(this tensor) as an array of the same shape, ``None`` until ``backward()``
            reaches it. Only leaves (tensors not made by an op) keep their gradient.
        requires_grad: whether operations on this tensor are recorded for ``backward()``.

    Example:
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> loss = (w * w).sum()
        >>> loss.backward()
        >>> w.grad          # d(sum w^2)/dw = 2w
        array([ 2., -4.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "name", "__weakref__")
    __array_ufunc__ = None  # make NumPy defer to our operators: np.float64(2) * t -> Tensor

    def __init__(self, data, requires_grad: bool = False, dtype=None, name: str | None = None):
        array = _to_array(data, as_dtype(dtype))
        if requires_grad and not is_float(array.dtype):
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {array.dtype} "
                "(create it with dtype=cr.float32 or call .float() first)"
            )
        self.data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self.name = name

    @classmethod
    def _make(cls, data, requires_grad: bool) -> Tensor:
        """Fast constructor for op results (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data, t.grad, t.requires_grad, t._ctx, t.name = data, None, requires_grad, None, None
        return t

    # -- array-like attributes -----------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def numpy(self):
        """The values as a NumPy array (shares memory; use ``.numpy().copy()`` to keep them)."""
        return self.data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, this one has shape {self.shape}"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same values, cut off from the graph (no gradient flows through it)."""
        return Tensor._make(self.data, False)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not is_float(self.data.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Backpropagate: add d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        Args:
            grad: d(loss)/d(self); omit it for a one-element tensor such as a loss.
            retain_graph: keep the graph so that ``backward`` can run through it again.
        """
        autograd.backward(self, grad, retain_graph)

    # -- Python protocols ----------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self.data
        return self.data.astype(dtype)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = xp.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.data.dtype != DEFAULT_FLOAT:
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn={type(self._ctx).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- comparisons (not differentiable: they return boolean tensors) ---------------------------
    def __lt__(self, other):
        return Tensor._make(self.data < _raw(other), False)

    def __le__(self, other):
        return Tensor._make(self.data <= _raw(other), False)

    def __gt__(self, other):
        return Tensor._make(self.data > _raw(other), False)

    def __ge__(self, other):
        return Tensor._make(self.data >= _raw(other), False)

    def __eq__(self, other):
        return Tensor._make(self.data == _raw(other), False)

    def __ne__(self, other):
        return Tensor._make(self.data != _raw(other), False)

    def __setitem__(self, key, value) -> None:
        if self.requires_grad and autograd.is_grad_enabled():
            raise RuntimeError(
                "in-place assignment to a tensor that requires grad would corrupt its gradient; "
                "do it inside cr.no_grad() or assign to .data"
            )
        self.data[_raw_key(key)] = _raw(value)

    # -- non-differentiable helpers -------------------------------------------------------------
    def argmax(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
        """Index of the largest value (for logits: the predicted class)."""
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdims, keepdim)
        return Tensor._make(xp.argmax(self.data, axis=axis, keepdims=keepdims), False)

    def argmin(self, axis=None, keepdims=False, *, dim=None, keepdim=None) -> Tensor:
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdims, keepdim)
        return Tensor._make(xp.argmin(self.data, axis=axis, keepdims=keepdims), False)

    def any(self) -> bool:
        return bool(self.data.any())

    def all(self) -> bool:
        return bool(self.data.all())


# -- helpers shared by the functional layer ------------------------------------------------------


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def as_array(x):
    """The array behind a tensor, or ``x`` itself as an array (for gradients, state-dict values
    and buffers, which may be either)."""
    return x.data if isinstance(x, Tensor) else xp.asarray(x)


def _raw_key(key):
    if isinstance(key, tuple):
        return tuple(_raw(k) for k in key)
    return _raw(key)


def resolve_axis(axis, dim):
    """Accept NumPy's ``axis`` or PyTorch's ``dim`` (not both)."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        return dim
    return axis


def resolve_keepdims(keepdims, keepdim):
    return bool(keepdim) if keepdim is not None else bool(keepdims)


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data.data
    if dtype is None:
        array = xp.asarray(data)
        if (
            array.dtype.kind == "f"
            and not isinstance(data, xp.ndarray)
            and not isinstance(data, xp.generic)
        ):
            array = array.astype(DEFAULT_FLOAT)  # Python floats and lists: float32 by default
        elif array.dtype.kind not in "fiub":
            raise TypeError(
                f"cannot make a tensor from {type(data).__name__} of dtype {array.dtype}"
            )
        return xp.array(array, copy=True) if array is data else array
    return xp.array(data, dtype=dtype, copy=True)


# -- creation ------------------------------------------------------------------------------------


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """Make a tensor from a number, (nested) list or array.

    float32 by default; float64 when asked for or when given float64 NumPy data; integer and
    boolean data keep their dtype (and can never require grad).
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def _float_dtype(dtype):
    """The requested dtype, float32 if none."""
    return as_dtype(dtype) or DEFAULT_FLOAT


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def zeros(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp.zeros(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(xp.ones(_shape(shape), dtype=_float_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return Tensor(xp.full(shape, fill_value, dtype=_float_dtype(dtype)), requires_grad)


def randn(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from the generator seeded by ``cr.manual_seed``."""
    data = rng().standard_normal(_shape(shape), dtype=xp.float64).astype(_float_dtype(dtype))
    return Tensor(data, requires_grad)


def rand(*shape, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from the generator seeded by ``cr.manual_seed``."""
    data = rng().random(_shape(shape), dtype=xp.float64).astype(_float_dtype(dtype))
    return Tensor(data, requires_grad)


def arange(start, stop=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like ``np.arange``: integers stay int64 unless a float value or dtype is given."""
    if stop is None:
        start, stop = 0, start
    data = xp.arange(start, stop, step)
    if dtype is not None:
        data = data.astype(as_dtype(dtype))
    elif data.dtype.kind == "f":
        data = data.astype(DEFAULT_FLOAT)
    return Tensor(data, requires_grad)


def _like(t, fill, dtype, requires_grad):
    t = _raw(t)
    return Tensor(xp.full(t.shape, fill, dtype=as_dtype(dtype) or t.dtype), requires_grad)


def zeros_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, 0, dtype, requires_grad)


def ones_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, 1, dtype, requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(t, fill_value, dtype, requires_grad)


def randn_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    t = _raw(t)
    return randn(*t.shape, dtype=as_dtype(dtype) or t.dtype, requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad: bool = False) -> Tensor:
    t = _raw(t)
    return rand(*t.shape, dtype=as_dtype(dtype) or t.dtype, requires_grad=requires_grad)
