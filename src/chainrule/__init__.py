"""chainrule: a readable, fast NumPy deep-learning library. Watch a network learn by the chain rule.

>>> import chainrule as cr
>>> w = cr.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()          # w.grad == 2 * w

PyTorch's everyday names work here too (``import chainrule as torch``): see the README.
"""

from . import autograd, inplace  # noqa: I001 - inplace attaches the in-place methods to Tensor
from . import data, distributed, functional, io, lens, models, nn, onnx, optim, runs, train, utils
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
    trace_backward,
)
from .backend import set_num_threads
from .creation import (
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
from .devices import accelerator, backends, cuda, device
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
from .functional import (
    abs,
    add,
    astype,
    broadcast_to,
    cat,
    clamp,
    clip,
    clone,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    gelu,
    index,
    leaky_relu,
    linear,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    softmax,
    softplus,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
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
