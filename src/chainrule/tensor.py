"""The Tensor: a NumPy array that remembers how it was made, so that gradients can flow back.

Arithmetic operators and methods such as ``t.exp()`` or ``t.sum(dim=1)`` are listed in the class
body, each with the module that implements it over the ops (:mod:`chainrule.api`,
:mod:`chainrule.inplace`).

Storage and versions, as in PyTorch: a tensor and its views (``t[0]``, ``t.view(...)``,
``t.detach()``) share one array and one *version counter*; every in-place change bumps it. An op
that saves a tensor for its backward pass records the version it saw, and ``backward()`` refuses to
use a saved value that was changed since (instead of silently computing a wrong gradient).
"""

from __future__ import annotations

import math
from importlib import import_module

from . import engine
from .backend import xp
from .devices import CPU, check_device
from .dtypes import as_dtype, get_default_dtype, result_type


class Size(tuple):
    """A tensor's shape: a tuple, plus ``numel()`` (PyTorch's ``torch.Size``)."""

    def numel(self) -> int:
        return math.prod(self)

    def __getitem__(self, key):
        item = tuple.__getitem__(self, key)
        return Size(item) if isinstance(key, slice) else item

    def __repr__(self) -> str:
        return f"Size({list(self)})"


class From:
    """A method of :class:`Tensor` implemented in a later module of the package: the ops are
    built on Tensor, so Tensor cannot import them. ``add = From("api.math")`` names the module
    (and the function, where its name differs); on first use the function takes the
    descriptor's place in the class, so later calls cost what a plain method costs."""

    def __init__(self, module: str, function: str | None = None):
        self.module, self.function = module, function

    def __set_name__(self, owner: type, name: str) -> None:
        self.owner, self.name, self.function = owner, name, self.function or name

    def __get__(self, instance, owner=None):
        implementation = getattr(import_module(f"chainrule.{self.module}"), self.function)
        setattr(self.owner, self.name, implementation)
        return implementation.__get__(instance, owner) if instance is not None else implementation


class Tensor:
    """An n-dimensional array with an optional gradient.

    Attributes:
        data: the values as a tensor sharing this one's storage, outside autograd, as PyTorch's
            (``p.data.add_(step)`` changes ``p`` and records nothing; assigning a tensor or
            array replaces the storage). ``.numpy()`` gives the NumPy array.
        grad: dL/d(this tensor), a tensor of the same shape, ``None`` until ``backward()`` reaches
            it. Only leaves (tensors not made by an op) keep their gradient, unless
            ``retain_grad()`` was called.
        requires_grad: whether operations on this tensor are recorded for ``backward()``.

    ``Tensor(2, 3)`` makes a float tensor of that shape and ``Tensor([1, 2])`` one from data, as
    PyTorch's legacy constructor; ``cr.tensor(data)`` keeps the data's type.

    Example:
        >>> w = cr.tensor([1.0, -2.0], requires_grad=True)
        >>> loss = (w * w).sum()
        >>> loss.backward()
        >>> w.grad          # d(sum w^2)/dw = 2w
        tensor([ 2., -4.])
    """

    __slots__ = (
        "_data",
        "_grad",
        "requires_grad",
        "_ctx",
        "name",
        "_counter",
        "_base",
        "_view_of",
        "__weakref__",
    )

    def __init__(self, *args, dtype=None, device=None, requires_grad: bool = False):
        check_device(device)
        dtype = as_dtype(dtype)
        if len(args) == 1 and isinstance(args[0], Tensor) and dtype is None:
            array = args[0]._data  # an alias of the same storage, as PyTorch's Tensor(tensor)
        elif not args:
            array = xp.zeros((0,), dtype=dtype or get_default_dtype())
        elif all(isinstance(a, int) and not isinstance(a, bool) for a in args) or (
            len(args) == 1 and isinstance(args[0], Size)
        ):
            shape = tuple(args[0]) if args and isinstance(args[0], Size) else args
            array = xp.zeros(shape, dtype=dtype or get_default_dtype())
        elif len(args) == 1 and not isinstance(args[0], (int, float, bool)):
            array = xp.array(_plain(args[0]), dtype=dtype or get_default_dtype())
        else:
            raise TypeError(
                f"Tensor(...) takes sizes (Tensor(2, 3)) or one sequence of data "
                f"(Tensor([1, 2])), got {args!r}; use cr.tensor(value) for a number"
            )
        _init(self, array, requires_grad)

    @classmethod
    def _make(cls, data, requires_grad: bool) -> Tensor:
        """Fast constructor for op results: wraps ``data`` (an array) without conversion or copy."""
        t = object.__new__(cls)
        t._data, t._grad, t.requires_grad, t._ctx, t.name = data, None, requires_grad, None, None
        t._counter, t._base, t._view_of = [0], None, None
        return t

    @staticmethod
    def wrap_array(array) -> Tensor:
        """A plain tensor around ``array`` (how the engine hands out ``.grad``)."""
        return Tensor._make(array, False)

    # -- values ----------------------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """The values as a plain tensor over the same storage, outside autograd (PyTorch's ``.data``).

        It does not require grad, has no ``grad_fn`` and its own version counter, so changing it in
        place (``p.data.add_(g, alpha=-lr)``, ``p.data[0] = 5``) changes this tensor's values
        without recording anything, without the leaf check and without invalidating a saved value
        for a later backward, as in PyTorch. Assigning a tensor or an array replaces the storage
        (its shape and dtype may differ). Library code reads the array as ``t._data``.
        """
        return Tensor._make(self._data, False)

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else xp.asarray(value)

    @property
    def grad(self):
        """dL/d(this tensor) as a tensor sharing the array the engine and optimizers update."""
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if isinstance(value, xp.ndarray):
                value = Tensor._make(value, False)
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"assigned grad must be a tensor or None, got {type(value).__name__}"
                )
            if value._data.shape != self._data.shape or value._data.dtype != self._data.dtype:
                raise RuntimeError(
                    f"assigned grad of shape {value._data.shape} and dtype {value._data.dtype} does "
                    f"not match the tensor's shape {self._data.shape} and dtype {self._data.dtype}"
                )
        self._grad = value

    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        """The shape (a :class:`Size`), or the length of dimension ``dim``."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_check_dim(dim, self._data.ndim)]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        """How many values the tensor holds."""
        return self._data.size

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self):
        return CPU

    # PyTorch's device and layout questions: a dense tensor on the CPU, always
    is_cpu = True
    is_cuda = is_mps = is_xpu = is_xla = is_ipu = is_maia = is_mtia = is_vulkan = False
    is_meta = is_sparse = is_sparse_csr = is_quantized = is_mkldnn = is_nested = False

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The operation that made this tensor (None for leaves)."""
        return self._ctx

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's storage has seen."""
        return self._counter[0]

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self) -> bool:
        return self._data.flags.c_contiguous

    def numpy(self, force: bool = False):
        """The values as a NumPy array (shares memory; use ``.numpy().copy()`` to keep them).

        As in PyTorch, a tensor that requires grad needs ``.detach()`` first (or ``force=True``),
        or ``.data.numpy()``."""
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
        return self._data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, this one has shape {self._data.shape}"
            )
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    # -- graph -----------------------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same values and storage, cut off from the graph (no gradient flows through it)."""
        return make_view(self, self._data, False)

    def detach_(self) -> Tensor:
        self._ctx, self.requires_grad = None, False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype} "
                "(call .float() first)"
            )
        if not requires_grad and self._ctx is not None:
            raise RuntimeError(
                "requires_grad_(False) on a tensor made by an operation: use .detach() instead"
            )
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep dL/d(this tensor) in ``.grad`` after backward, though it is not a leaf."""
        if self._ctx is not None:
            self._ctx.retain(self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")

    def backward(
        self, gradient=None, retain_graph=None, create_graph: bool = False, inputs=None, grad=None
    ) -> None:
        """Backpropagate: add d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        Args:
            gradient: d(loss)/d(self); omit it for a one-element tensor such as a loss
                (``grad=`` is accepted too).
            retain_graph: keep the graph so that ``backward`` can run through it again.
            inputs: accumulate only into these leaves.
        """
        if create_graph:
            raise NotImplementedError(
                "create_graph=True (gradients of gradients) is not supported by chainrule's engine"
            )
        seed = gradient if gradient is not None else grad
        engine.backward([self], [seed], bool(retain_graph), inputs=inputs)

    # -- conversion ------------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other_tensor)``: a tensor of
        that type on that device (this one when nothing changes and ``copy`` is False)."""
        dtype, copy = parse_to(args, kwargs)
        if dtype is None or dtype == self._data.dtype:
            return self.astype(self._data.dtype) if copy else self
        return self.astype(dtype)

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args, **kwargs) -> Tensor:
        check_device("cuda")

    def type(self, dtype=None):
        """Without an argument the type's name (``'chainrule.FloatTensor'``); else ``to(dtype)``."""
        if dtype is None:
            return f"chainrule.{_TYPE_NAMES.get(self._data.dtype.name, 'Tensor')}"
        if isinstance(dtype, type) and dtype.__name__.endswith("Tensor"):  # t.type(cr.LongTensor)
            dtype = dtype.__name__
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {v: k for k, v in _TYPE_NAMES.items()}
            dtype = names.get(dtype.rsplit(".", 1)[-1], dtype)
        return self.to(dtype)

    def float(self) -> Tensor:
        return self.to("float32")

    def double(self) -> Tensor:
        return self.to("float64")

    def half(self) -> Tensor:
        return self.to("float16")

    def long(self) -> Tensor:
        return self.to("int64")

    def int(self) -> Tensor:
        return self.to("int32")

    def short(self) -> Tensor:
        return self.to("int16")

    def byte(self) -> Tensor:
        return self.to("uint8")

    def bool(self) -> Tensor:
        return self.to("bool")

    # -- Python protocols ------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` is the storage itself; ``np.array(t)`` (``copy=True``) a copy."""
        if dtype is not None and xp.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self._data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self._data.item())

    def __format__(self, spec: str) -> str:
        if spec and self._data.size == 1:
            return format(self.item(), spec)
        return format(str(self), spec)

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = xp.array2string(
            self._data,
            separator=", ",
            prefix="tensor(",
            precision=4,
            floatmode=_float_mode(self._data),
        )
        extras = []
        if self._data.dtype not in (get_default_dtype(), xp.int64, xp.bool_):
            extras.append(f"dtype={self._data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __deepcopy__(self, memo) -> Tensor:
        copy = type(self)._make(self._data.copy(), self.requires_grad)
        if self._grad is not None:
            copy._grad = Tensor._make(self._grad._data.copy(), False)
        copy.name = self.name
        memo[id(self)] = copy
        return copy

    def __getstate__(self):
        grad = None if self._grad is None else self._grad._data
        return {"data": self._data, "requires_grad": self.requires_grad, "grad": grad}

    def __setstate__(self, state) -> None:
        _init(self, state["data"], state["requires_grad"])
        if state["grad"] is not None:
            self._grad = Tensor._make(state["grad"], False)

    # -- comparisons (not differentiable: they return boolean tensors) ---------------------------
    def __lt__(self, other):
        return compare(xp.less, self, other)

    def __le__(self, other):
        return compare(xp.less_equal, self, other)

    def __gt__(self, other):
        return compare(xp.greater, self, other)

    def __ge__(self, other):
        return compare(xp.greater_equal, self, other)

    def __eq__(self, other):
        return compare(xp.equal, self, other)

    def __ne__(self, other):
        return compare(xp.not_equal, self, other)

    # -- non-differentiable helpers -------------------------------------------------------------
    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """Index of the largest value (for logits: the predicted class)."""
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdim, keepdims)
        return Tensor._make(xp.asarray(xp.argmax(self._data, axis=axis, keepdims=keepdims)), False)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdim, keepdims)
        return Tensor._make(xp.asarray(xp.argmin(self._data, axis=axis, keepdims=keepdims)), False)

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None) -> Tensor:
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdim, keepdims)
        return Tensor._make(xp.asarray(xp.any(self._data, axis=axis, keepdims=keepdims)), False)

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None, out=None) -> Tensor:
        axis, keepdims = resolve_axis(axis, dim), resolve_keepdims(keepdim, keepdims)
        return Tensor._make(xp.asarray(xp.all(self._data, axis=axis, keepdims=keepdims)), False)

    # -- the operators and methods of the API -------------------------------------------------
    # Every differentiable method, as PyTorch's Tensor has it, and the module that implements it
    # (each op is built on Tensor, so its function lives in a later module; see From).
    # operators
    __add__ = From("api.methods", "_add")
    __radd__ = From("api.methods", "_radd")
    __sub__ = From("api.methods", "_sub")
    __rsub__ = From("api.methods", "_rsub")
    __mul__ = From("api.methods", "_mul")
    __rmul__ = From("api.methods", "_rmul")
    __truediv__ = From("api.methods", "_truediv")
    __rtruediv__ = From("api.methods", "_rtruediv")
    __floordiv__ = From("api.math", "floor_divide")
    __rfloordiv__ = From("api.methods", "_rfloordiv")
    __mod__ = From("api.math", "remainder")
    __rmod__ = From("api.methods", "_rmod")
    __pow__ = From("api.math", "pow")
    __rpow__ = From("api.methods", "_rpow")
    __matmul__ = From("api.linalg", "matrix_product")
    __rmatmul__ = From("api.methods", "_rmatmul")
    __neg__ = From("api.math", "neg")
    __pos__ = From("api.methods", "_pos")
    __abs__ = From("api.math", "abs")
    __invert__ = From("api.comparison", "bitwise_not")
    __and__ = From("api.comparison", "bitwise_and")
    __rand__ = From("api.methods", "_rand")
    __or__ = From("api.comparison", "bitwise_or")
    __ror__ = From("api.methods", "_ror")
    __xor__ = From("api.comparison", "bitwise_xor")
    __rxor__ = From("api.methods", "_rxor")
    __getitem__ = From("api.methods", "_getitem")
    # elementwise math
    add = From("api.math")
    sub = From("api.math")
    subtract = From("api.math", "sub")
    mul = From("api.math")
    multiply = From("api.math", "mul")
    div = From("api.math")
    divide = From("api.math", "div")
    floor_divide = From("api.math")
    remainder = From("api.math")
    pow = From("api.math")
    square = From("api.math")
    neg = From("api.math")
    negative = From("api.math", "neg")
    reciprocal = From("api.math")
    abs = From("api.math")
    absolute = From("api.math", "abs")
    exp = From("api.math")
    expm1 = From("api.math")
    log = From("api.math")
    log1p = From("api.math")
    sqrt = From("api.math")
    rsqrt = From("api.math")
    sin = From("api.math")
    cos = From("api.math")
    tan = From("api.math")
    sign = From("api.math")
    floor = From("api.math")
    ceil = From("api.math")
    trunc = From("api.math")
    round = From("api.math")
    clamp = From("api.math")
    clip = From("api.math", "clamp")
    maximum = From("api.math")
    minimum = From("api.math")
    where = From("api.methods", "_where")
    lerp = From("api.math")
    astype = From("api.math")
    type_as = From("api.methods")
    clone = From("api.math")
    contiguous = From("api.math")
    new_tensor = From("api.methods")
    new_full = From("api.methods")
    new_zeros = From("api.methods")
    new_ones = From("api.methods")
    new_empty = From("api.methods")
    # activations
    relu = From("api.methods", "_relu")
    sigmoid = From("api.activations")
    tanh = From("api.activations")
    softmax = From("api.activations")
    log_softmax = From("api.activations")
    # reductions
    sum = From("api.reductions")
    mean = From("api.reductions")
    prod = From("api.reductions")
    cumsum = From("api.reductions")
    var = From("api.reductions")
    std = From("api.reductions")
    norm = From("api.reductions")
    logsumexp = From("api.reductions")
    amax = From("api.reductions")
    amin = From("api.reductions")
    max = From("api.reductions")
    min = From("api.reductions")
    count_nonzero = From("api.reductions")
    # shapes
    reshape = From("api.shapes")
    view = From("api.shapes", "reshape")
    view_as = From("api.shapes")
    reshape_as = From("api.shapes")
    flatten = From("api.shapes")
    unflatten = From("api.shapes")
    permute = From("api.shapes")
    transpose = From("api.shapes")
    swapaxes = From("api.shapes", "transpose")
    swapdims = From("api.shapes", "transpose")
    t = From("api.shapes")
    movedim = From("api.shapes")
    moveaxis = From("api.shapes", "movedim")
    expand = From("api.shapes")
    expand_as = From("api.shapes")
    broadcast_to = From("api.shapes")
    squeeze = From("api.shapes")
    unsqueeze = From("api.shapes")
    repeat = From("api.shapes")
    tile = From("api.shapes")
    flip = From("api.shapes")
    roll = From("api.shapes")
    narrow = From("api.shapes")
    select = From("api.shapes")
    unbind = From("api.shapes")
    split = From("api.shapes")
    chunk = From("api.shapes")
    # indexing
    gather = From("api.indexing")
    index_select = From("api.indexing")
    masked_fill = From("api.indexing")
    masked_select = From("api.indexing")
    tril = From("api.indexing")
    triu = From("api.indexing")
    nonzero = From("api.indexing")
    # comparisons and sorting
    eq = From("api.comparison")
    ne = From("api.comparison")
    lt = From("api.comparison")
    le = From("api.comparison")
    gt = From("api.comparison")
    ge = From("api.comparison")
    equal = From("api.comparison")
    isclose = From("api.comparison")
    allclose = From("api.comparison")
    isnan = From("api.comparison")
    isinf = From("api.comparison")
    isfinite = From("api.comparison")
    logical_not = From("api.comparison")
    logical_and = From("api.comparison")
    logical_or = From("api.comparison")
    logical_xor = From("api.comparison")
    sort = From("api.comparison")
    argsort = From("api.comparison")
    topk = From("api.comparison")
    # linear algebra
    matmul = From("api.linalg")
    mm = From("api.linalg")
    bmm = From("api.linalg")
    mv = From("api.linalg")
    dot = From("api.linalg")
    outer = From("api.linalg")
    # in place (chainrule.inplace)
    add_ = From("inplace")
    sub_ = From("inplace")
    mul_ = From("inplace")
    div_ = From("inplace")
    pow_ = From("inplace")
    neg_ = From("inplace")
    abs_ = From("inplace")
    exp_ = From("inplace")
    log_ = From("inplace")
    sqrt_ = From("inplace")
    relu_ = From("inplace")
    fill_ = From("inplace")
    zero_ = From("inplace")
    copy_ = From("inplace")
    clamp_ = From("inplace")
    clip_ = From("inplace", "clamp_")
    masked_fill_ = From("inplace")
    normal_ = From("inplace")
    uniform_ = From("inplace")
    __setitem__ = From("inplace", "setitem")
    __iadd__ = From("inplace", "add_")
    __isub__ = From("inplace", "sub_")
    __imul__ = From("inplace", "mul_")
    __itruediv__ = From("inplace", "div_")
    __ipow__ = From("inplace", "pow_")
    # NumPy's hook and the transposes
    __array_ufunc__ = From("api.methods", "_array_ufunc")
    T = From("api.methods")
    mT = From("api.methods")


def _float_mode(array) -> str:
    """PyTorch's way to print floats: four decimals for all ("0.2500, 1.0000"), unless every
    value is whole ("1., 2.")."""
    if array.dtype.kind != "f":
        return "maxprec"
    finite = array[xp.isfinite(array)]
    return "maxprec_equal" if (finite == xp.round(finite)).all() else "fixed"


_TYPE_NAMES = {
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "float16": "HalfTensor",
    "int64": "LongTensor",
    "int32": "IntTensor",
    "int16": "ShortTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "bool": "BoolTensor",
}


def _init(t: Tensor, array, requires_grad: bool) -> None:
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(
            f"only floating-point tensors can require gradients, got dtype {array.dtype} "
            "(create it with dtype=cr.float32 or call .float() first)"
        )
    t._data, t._grad, t.requires_grad, t._ctx, t.name = array, None, bool(requires_grad), None, None
    t._counter, t._base, t._view_of = [0], None, None


def make_view(base: Tensor, array, requires_grad: bool) -> Tensor:
    """A tensor over (part of) ``base``'s storage: it shares ``base``'s version counter."""
    view = Tensor._make(array, requires_grad)
    view._counter = base._counter
    view._base = base if base._base is None else base._base
    return view


def _plain(data):
    """Nested lists that may hold tensors, as plain values NumPy can read."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, (list, tuple)) and any(isinstance(d, (Tensor, list, tuple)) for d in data):
        return [_plain(d) for d in data]
    return data


def parse_to(args, kwargs) -> tuple:
    """(dtype or None, copy) from the arguments of ``Tensor.to`` / ``Module.to``."""
    dtype = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    check_device(kwargs.pop("device", None))
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected arguments {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, bool) or arg is None:
            continue
        elif _is_dtype_like(arg):
            dtype = arg
        else:
            check_device(arg)
    return as_dtype(dtype), copy


def _is_dtype_like(value) -> bool:
    if isinstance(value, str):
        try:
            as_dtype(value)
            return True
        except TypeError:
            return False
    return isinstance(value, (type, xp.dtype))


# -- helpers shared by the functional layer ------------------------------------------------------


def _raw(x):
    return x._data if isinstance(x, Tensor) else x


def as_array(x):
    """The array behind a tensor, or ``x`` itself as an array (for gradients, state-dict values
    and buffers, which may be either)."""
    return x._data if isinstance(x, Tensor) else xp.asarray(x)


def _raw_key(key):
    if isinstance(key, tuple):
        return tuple(_raw(k) for k in key)
    if isinstance(key, list) and any(isinstance(k, Tensor) for k in key):
        return [_raw(k) for k in key]
    return _raw(key)


def compare(ufunc, a, b) -> Tensor:
    """A boolean tensor from comparing ``a`` and ``b`` in their promoted type."""
    if not isinstance(b, (Tensor, xp.ndarray, xp.generic, bool, int, float, list, tuple)):
        return NotImplemented  # let the other object decide (e.g. pytest.approx)
    dtype = result_type(a, b)
    return Tensor._make(ufunc(_cast(a, dtype), _cast(b, dtype)), False)


def _cast(x, dtype):
    """``x`` as an array of ``dtype``, except Python numbers, which NumPy already treats weakly."""
    if isinstance(x, (bool, int, float)):
        return x
    array = xp.asarray(_raw(x))
    return array if array.dtype == dtype else array.astype(dtype)


def resolve_axis(axis, dim):
    """Accept NumPy's ``axis`` or PyTorch's ``dim`` (not both)."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        return tuple(dim) if isinstance(dim, list) else dim
    return tuple(axis) if isinstance(axis, list) else axis


def resolve_keepdims(keepdim, keepdims):
    """PyTorch's ``keepdim`` or NumPy's ``keepdims`` (NumPy's wins where it is given)."""
    return bool(keepdims) if keepdims is not None else bool(keepdim)


def _check_dim(dim: int, ndim: int) -> int:
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"dimension {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % max(ndim, 1)


def check_not_recording_leaf(t: Tensor, what: str) -> None:
    """PyTorch's rule: a leaf that requires grad may change in place only inside ``no_grad``."""
    if t.requires_grad and t._ctx is None and engine.is_grad_enabled():
        raise RuntimeError(
            f"a leaf tensor that requires grad is used in an in-place operation ({what}); "
            "do it inside `with cr.no_grad():` (as a hand-written update step does)"
        )
