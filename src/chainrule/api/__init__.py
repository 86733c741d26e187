"""Every op as a plain function (``cr.exp(t)``, ``cr.matmul(a, b)``) and as a Tensor method.

This is the layer users call. It checks arguments, accepts PyTorch's names (``input``, ``dim``,
``keepdim``) and NumPy's (``axis``, ``keepdims``), and hands plain values to the ops in ``ops/``,
where each derivative lives. One module per job:

* :mod:`.math`: elementwise arithmetic and math (``add``, ``exp``, ``clamp``, ``where``, ...);
* :mod:`.activations`: ``relu``, ``sigmoid``, ``softmax``, ...;
* :mod:`.indexing`: ``t[key]``, ``gather``, ``masked_fill``, ``tril``, ...;
* :mod:`.shapes`: ``reshape``, ``transpose``, ``cat``, ``split``, ``repeat``, ...;
* :mod:`.reductions`: ``sum``, ``mean``, ``max``, ``std``, ``norm``, ...;
* :mod:`.comparison`: ``eq``/``lt``/..., ``isclose``, ``sort``, ``topk``, ...;
* :mod:`.linalg`: ``matmul``, ``mm``, ``bmm``, ``einsum``, ``linear``;
* :mod:`.methods`: attaches all of them to :class:`~chainrule.tensor.Tensor`.
"""

from . import methods  # noqa: F401 - attaches the operators and methods to Tensor
from .activations import gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh
from .comparison import (
    allclose,
    argsort,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    eq,
    equal,
    ge,
    greater,
    greater_equal,
    gt,
    isclose,
    isfinite,
    isinf,
    isnan,
    le,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    ne,
    not_equal,
    sort,
    topk,
)
from .indexing import (
    gather,
    index,
    index_select,
    masked_fill,
    masked_select,
    nonzero,
    tril,
    triu,
)
from .linalg import bmm, dot, einsum, ger, linear, matmul, mm, mv, outer
from .math import (
    abs,
    absolute,
    add,
    astype,
    ceil,
    clamp,
    clip,
    clone,
    contiguous,
    cos,
    div,
    exp,
    expm1,
    floor,
    floor_divide,
    lerp,
    log,
    log1p,
    maximum,
    minimum,
    mul,
    neg,
    negative,
    pow,
    reciprocal,
    remainder,
    round,
    rsqrt,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tan,
    trunc,
    where,
)
from .reductions import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    count_nonzero,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    sum,
    var,
)
from .shapes import (
    broadcast_to,
    cat,
    chunk,
    concat,
    concatenate,
    expand,
    expand_as,
    flatten,
    flip,
    moveaxis,
    movedim,
    narrow,
    pad,
    permute,
    repeat,
    reshape,
    select,
    split,
    squeeze,
    stack,
    swapaxes,
    swapdims,
    t,
    tile,
    transpose,
    unbind,
    unflatten,
    unsqueeze,
    view_as,
)

subtract, multiply, divide, true_divide = sub, mul, div, div
