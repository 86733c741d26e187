"""chainrule: a readable, fast NumPy deep-learning library. Watch a network learn by the chain rule.

>>> import chainrule as cr
>>> w = cr.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()          # w.grad == 2 * w

PyTorch's everyday names work here too (``import chainrule as torch``): see the README.
"""

from . import autograd, backends, inplace  # noqa: I001 - inplace attaches the in-place methods to Tensor
from . import api, backend, data, io, models, nn, optim, train, utils
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
    trace_backward,
)
from .cores import get_num_threads, set_num_threads
from .creation import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    multinomial,
    normal,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .devices import (
    accelerator,
    cuda,
    device,
    get_default_device,
    set_default_device,
)
from .dtypes import (
    can_cast,
    finfo,
    get_default_dtype,
    iinfo,
    is_floating_point,
    promote_types,
    result_type,
    set_default_dtype,
)
from .api import (
    abs,
    absolute,
    add,
    all,
    allclose,
    amax,
    amin,
    any,
    argmax,
    argmin,
    argsort,
    astype,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    bmm,
    broadcast_to,
    cat,
    ceil,
    chunk,
    clamp,
    clip,
    clone,
    concat,
    concatenate,
    contiguous,
    cos,
    count_nonzero,
    cumsum,
    div,
    divide,
    dot,
    einsum,
    eq,
    equal,
    exp,
    expand,
    expand_as,
    expm1,
    flatten,
    flip,
    floor,
    floor_divide,
    gather,
    ge,
    gelu,
    ger,
    greater,
    greater_equal,
    gt,
    index,
    index_select,
    isclose,
    isfinite,
    isinf,
    isnan,
    is_tensor,
    le,
    leaky_relu,
    lerp,
    less,
    less_equal,
    linear,
    log,
    log1p,
    log_softmax,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    logsumexp,
    lt,
    masked_fill,
    masked_select,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    moveaxis,
    movedim,
    mul,
    multiply,
    mv,
    narrow,
    ne,
    neg,
    negative,
    nonzero,
    norm,
    not_equal,
    outer,
    pad,
    permute,
    pow,
    prod,
    reciprocal,
    relu,
    remainder,
    repeat,
    reshape,
    roll,
    round,
    rsqrt,
    select,
    sigmoid,
    sign,
    sin,
    softmax,
    softplus,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    sub,
    subtract,
    sum,
    swapaxes,
    swapdims,
    t,
    tan,
    tanh,
    tile,
    topk,
    transpose,
    tril,
    triu,
    true_divide,
    trunc,
    unbind,
    unflatten,
    unsqueeze,
    var,
    view_as,
    where,
)
from .generator import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    seed,
    set_rng_state,
)
from .gradcheck import GradcheckError, gradcheck
from .io import load, load_weights, save, save_weights
from .nn.check import check_gradients
from .tensor import Size, Tensor

from .dtypes import bool_, float16, float32, float64, int8, int16, int32, int64, uint8

# PyTorch's other names for the same dtypes (these shadow the builtins only inside this file)
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
bool = bool_

__version__ = "0.1.0"

# Training frees and allocates the same big arrays every step; by default glibc hands them back
# to the OS and faults them in again (4,300 page faults a step in the LSTM language model,
# about a tenth of its time): ask it once to keep them for reuse.
backend.keep_freed_memory()


# The applications load when first used (``cr.lens``, ``cr.runs``, ``cr.onnx``, ...), so that
# ``import chainrule`` loads the library alone.
APPLICATIONS = ("distributed", "lens", "onnx", "playground", "runs", "sklearn")


def __getattr__(name: str):
    if name in APPLICATIONS:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
