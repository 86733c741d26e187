"""chainrule: a readable, fast NumPy deep-learning library. Watch a network learn by the chain rule.

>>> import chainrule as cr
>>> w = cr.randn(3, requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()          # w.grad == 2 * w
"""

from . import data, functional, io, lens, models, nn, onnx, optim, runs, train
from .autograd import enable_grad, is_grad_enabled, no_grad, trace_backward
from .backend import manual_seed, set_num_threads
from .functional import (
    abs,
    add,
    astype,
    broadcast_to,
    cat,
    clamp,
    clip,
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
from .gradcheck import GradcheckError, gradcheck
from .io import load, load_weights, save, save_weights
from .nn.check import check_gradients
from .tensor import (
    Tensor,
    arange,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)

float32 = "float32"
float64 = "float64"
int64 = "int64"

__version__ = "0.1.0"
