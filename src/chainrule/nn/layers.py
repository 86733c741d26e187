"""Layers: weights and biases, activations, normalisation and dropout."""

from __future__ import annotations

import math

from ..backend import xp
from ..devices import check_device
from ..dtypes import as_dtype, get_default_dtype
from ..tensor import as_array
from . import functional as F
from . import init
from .module import Module, Parameter


def check_input(layer: Module, x, min_ndim: int, feature_axis: int | None, features: int | None):
    """Raise an error that names the layer and the shapes when ``x`` does not fit."""
    shape = tuple(x.shape)
    if len(shape) < min_ndim:
        raise ValueError(
            f"{layer!r} got input of shape {shape}: it needs at least {min_ndim} dimensions"
        )
    if features is not None and shape[feature_axis] != features:
        where = "last dimension" if feature_axis == -1 else f"dimension {feature_axis}"
        raise ValueError(f"{layer!r} got input of shape {shape}: {where} must be {features}")


def same_shape(layer: Module, input_shape: tuple) -> tuple:
    """The output shape of a layer that works value by value: the input's."""
    return tuple(input_shape)


class Elementwise(Module):
    """Base of the layers whose output has the input's shape (activations, dropout)."""

    output_shape = same_shape
    onnx_op: str | None = None  # the ONNX operator computing the same, where there is one
    activation_name: str | None = None  # an activation's name in --activation, the playground

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """The layer's ONNX form (opset 17, evaluation mode): ``g`` is the graph being built,
        ``x`` the name of the input tensor of ``shape``; returns the output tensor's name."""
        if self.onnx_op is None:
            raise ValueError("has no ONNX form")
        return g.add(self.onnx_op, [x], path)


def check_inplace(layer: Module, inplace) -> bool:
    """``inplace`` if it is a bool, else one line saying so."""
    if not isinstance(inplace, bool):
        raise ValueError(f"{type(layer).__name__}: inplace must be True or False, got {inplace!r}")
    return inplace


def reshape_onnx(g, x: str, target: list, path: str) -> str:
    """ONNX Reshape to ``target`` (0 keeps the batch axis as it is, -1 is inferred)."""
    return g.add("Reshape", [x, g.constant(path, "shape", target, dtype="int64")], path)


def scale_and_shift_onnx(g, layer, path: str, shape: tuple) -> list:
    """A normalisation's weight and bias initializers, or ones and zeros where it has none
    (a LayerNorm may have a weight and no bias)."""
    weight, bias = getattr(layer, "weight", None), getattr(layer, "bias", None)
    return [
        g.constant(path, "ones", xp.ones(shape))
        if weight is None
        else g.weight(f"{path}.weight", as_array(weight)),
        g.constant(path, "zeros", xp.zeros(shape))
        if bias is None
        else g.weight(f"{path}.bias", as_array(bias)),
    ]


class Linear(Module):
    """A layer of neurons: each output is a weighted sum of the inputs plus a bias.

    z = x @ W^T + b, with W of shape (out_features, in_features).
    Initialised as PyTorch does: W, b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    Shape: (..., in_features) -> (..., out_features).

    Example:
        >>> layer = cr.nn.Linear(784, 128)
        >>> layer(cr.randn(32, 784)).shape
        (32, 128)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        check_device(device)
        dtype = as_dtype(dtype) or get_default_dtype()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(xp.empty((out_features, in_features), dtype=dtype))
        self.bias = Parameter(xp.empty(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def config(self) -> dict:
        bias = self.bias is not None
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": bias}

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        out = config["out_features"]
        shapes = {"weight": (out, config["in_features"])}
        return shapes | ({"bias": (out,)} if config.get("bias", True) else {})

    def output_shape(self, input_shape: tuple) -> tuple:
        if not input_shape or input_shape[-1] != self.in_features:
            raise ValueError(f"the last dimension must be {self.in_features}")
        return (*input_shape[:-1], self.out_features)

    def forward(self, x):
        check_input(self, x, 1, -1, self.in_features)
        return F.linear(x, self.weight, self.bias)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """z = x W^T + b: one Gemm for (N, in) inputs, MatMul and Add for (N, ..., in)."""
        weight = g.weight(f"{path}.weight", as_array(self.weight))
        bias = [] if self.bias is None else [g.weight(f"{path}.bias", as_array(self.bias))]
        if len(shape) == 2:
            return g.add("Gemm", [x, weight, *bias], path, transB=1)
        z = g.add("MatMul", [x, g.add("Transpose", [weight], path, perm=[1, 0])], path)
        return g.add("Add", [z, *bias], path) if bias else z

    def extra_repr(self) -> str:
        return f"{self.in_features} -> {self.out_features}" + (
            "" if self.bias is not None else ", bias=False"
        )


class Identity(Elementwise):
    """z = x."""

    onnx_op = "Identity"

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` (by default all but the batch axis) into one."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    def output_shape(self, input_shape: tuple) -> tuple:
        n = len(input_shape)
        start, end = (d % n if -n <= d < n else None for d in (self.start_dim, self.end_dim))
        if start is None or end is None or start > end:
            raise ValueError(f"cannot flatten axes {self.start_dim}..{self.end_dim} of {n}")
        merged = math.prod(input_shape[start : end + 1])
        return (*input_shape[:start], merged, *input_shape[end + 1 :])

    def forward(self, x):
        check_input(self, x, self.start_dim + 1, None, None)
        return F.flatten(x, self.start_dim, self.end_dim)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        start, end = self.start_dim % len(shape), self.end_dim % len(shape)
        if start == 0:
            raise ValueError("merges the batch axis into the others; export keeps it symbolic")
        if start == 1 and end == len(shape) - 1:
            return g.add("Flatten", [x], path, axis=1)
        return reshape_onnx(g, x, [0, *shape[1:start], -1, *shape[end + 1 :]], path)


class Unflatten(Module):
    """Split axis ``dim`` into ``unflattened_size`` (e.g. (N, 28, 28) -> (N, 1, 28, 28))."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def config(self) -> dict:
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size)}

    def output_shape(self, input_shape: tuple) -> tuple:
        n, sizes = len(input_shape), self.unflattened_size
        if not -n <= self.dim < n or math.prod(sizes) != input_shape[self.dim % n]:
            raise ValueError(f"cannot split axis {self.dim} of {tuple(input_shape)} into {sizes}")
        dim = self.dim % n
        return (*input_shape[:dim], *sizes, *input_shape[dim + 1 :])

    def forward(self, x):
        shape = tuple(x.shape)
        dim = self.dim % len(shape)
        if math.prod(self.unflattened_size) != shape[dim]:
            raise ValueError(
                f"{self!r} got input of shape {shape}: dimension {dim} must have "
                f"{math.prod(self.unflattened_size)} values"
            )
        return F.reshape(x, *shape[:dim], *self.unflattened_size, *shape[dim + 1 :])

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        dim = self.dim % len(shape)
        if dim == 0:
            raise ValueError("splits the batch axis; export keeps it symbolic")
        target = [0, *shape[1:dim], *self.unflattened_size, *shape[dim + 1 :]]
        return reshape_onnx(g, x, target, path)

    def extra_repr(self) -> str:
        return f"{self.dim}, {self.unflattened_size}"


class Dropout(Elementwise):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by
    1/(1-p), so that nothing changes at evaluation time (where it does nothing).

    Args:
        p: the probability of zeroing a value.
        inplace: accepted as PyTorch's and kept in config(); it changes nothing
            numerically here: the output is computed out of place, so the input keeps its
            values (PyTorch's flag only saves memory by overwriting them).
    """

    onnx_op = "Identity"  # evaluation mode: dropout does nothing

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"{type(self).__name__} probability must be in [0, 1), got {p}")
        self.p, self.inplace = p, check_inplace(self, inplace)

    def config(self) -> dict:
        return {"p": self.p, "inplace": self.inplace}

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class BatchNorm1d(Module):
    """Normalise each feature over the batch, then scale and shift:
    y = (x - mean) / sqrt(var + eps) * weight + bias.

    Training uses the batch's statistics and updates the running ones
    (running = (1 - momentum) running + momentum batch, variance unbiased); evaluation uses the
    running statistics. Shape: (N, C) or (N, C, L).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = (
            Parameter(xp.ones(num_features, dtype=get_default_dtype())) if affine else None
        )
        self.bias = Parameter(xp.zeros(num_features, dtype=get_default_dtype())) if affine else None
        if track_running_stats:
            self.register_buffer("running_mean", xp.zeros(num_features, dtype=get_default_dtype()))
            self.register_buffer("running_var", xp.ones(num_features, dtype=get_default_dtype()))
            self.register_buffer("num_batches_tracked", xp.zeros((), dtype="int64"))

    def config(self) -> dict:
        names = ("num_features", "eps", "momentum", "affine", "track_running_stats")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        c = (config["num_features"],)
        shapes = {"weight": c, "bias": c} if config.get("affine", True) else {}
        if config.get("track_running_stats", True):
            shapes |= {"running_mean": c, "running_var": c, "num_batches_tracked": ()}
        return shapes

    def output_shape(self, input_shape: tuple) -> tuple:
        self.check(_ShapeOnly(input_shape))
        return tuple(input_shape)

    def check(self, x):
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{self!r} got input of shape {tuple(x.shape)}: expected (N, C) or (N, C, L)"
            )
        check_input(self, x, 2, 1, self.num_features)

    def forward(self, x):
        self.check(x)
        use_batch_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked = self.num_batches_tracked + 1
        return F.batch_norm(
            x,
            getattr(self, "running_mean", None),
            getattr(self, "running_var", None),
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=self.momentum,
            eps=self.eps,
        )

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """The evaluation form: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias."""
        if not self.track_running_stats:
            raise ValueError(
                "keeps no running statistics, so it uses each batch's own even in evaluation; "
                "export writes the running-statistics form only"
            )
        statistics = [
            g.weight(f"{path}.running_mean", as_array(self.running_mean)),
            g.weight(f"{path}.running_var", as_array(self.running_var)),
        ]
        inputs = [x, *scale_and_shift_onnx(g, self, path, (self.num_features,)), *statistics]
        # ONNX's momentum weighs the old running value, PyTorch's and ours the new batch value
        return g.add(
            "BatchNormalization", inputs, path, epsilon=float(self.eps), momentum=1 - self.momentum
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm(Module):
    """Normalise each example over its last dimensions, then scale and shift:
    y = (x - mean) / sqrt(var + eps) * weight + bias (statistics over ``normalized_shape``;
    ``bias=False`` leaves the shift out, as PyTorch's)."""

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        check_device(device)
        dtype = as_dtype(dtype) or get_default_dtype()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        shape = self.normalized_shape
        self.weight = Parameter(xp.ones(shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(xp.zeros(shape, dtype=dtype)) if elementwise_affine and bias else None

    def config(self) -> dict:
        affine = self.weight is not None
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps} | {
            "elementwise_affine": affine,
            "bias": self.bias is not None or not affine,
        }

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        shape = config["normalized_shape"]
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not config.get("elementwise_affine", True):
            return {}
        return {"weight": shape} | ({"bias": shape} if config.get("bias", True) else {})

    def output_shape(self, input_shape: tuple) -> tuple:
        n = len(self.normalized_shape)
        if len(input_shape) < n or tuple(input_shape[-n:]) != self.normalized_shape:
            raise ValueError(f"the last dimensions must be {self.normalized_shape}")
        return tuple(input_shape)

    def forward(self, x):
        n = len(self.normalized_shape)
        if tuple(x.shape[-n:]) != self.normalized_shape or x.ndim < n:
            raise ValueError(
                f"{self!r} got input of shape {tuple(x.shape)}: its last dimensions must be "
                f"{self.normalized_shape}"
            )
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        inputs = [x, *scale_and_shift_onnx(g, self, path, self.normalized_shape)]
        n = len(self.normalized_shape)
        return g.add("LayerNormalization", inputs, path, axis=-n, epsilon=float(self.eps))

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


# -- activation modules --------------------------------------------------------------------------


class ReLU(Elementwise):
    """max(x, 0).

    Args:
        inplace: accepted as PyTorch's and kept in config(); it changes nothing
            numerically here: the output is computed out of place, so the input keeps its
            values (PyTorch's flag only saves memory by overwriting them).
    """

    activation_name = "relu"

    onnx_op = "Relu"

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_inplace(self, inplace)

    def config(self) -> dict:
        return {"inplace": self.inplace}

    def forward(self, x):
        return F.relu(x)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Elementwise):
    """x if x > 0 else negative_slope * x.

    Args:
        negative_slope: the slope for x < 0.
        inplace: accepted as PyTorch's and kept in config(); it changes nothing
            numerically here: the output is computed out of place, so the input keeps its
            values (PyTorch's flag only saves memory by overwriting them).
    """

    activation_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)):
            raise ValueError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope, self.inplace = negative_slope, check_inplace(self, inplace)

    def config(self) -> dict:
        return {"negative_slope": self.negative_slope, "inplace": self.inplace}

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        return g.add("LeakyRelu", [x], path, alpha=float(self.negative_slope))

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Elementwise):
    """1 / (1 + e^-x)."""

    activation_name = "sigmoid"

    onnx_op = "Sigmoid"

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Elementwise):
    """tanh(x)."""

    activation_name = "tanh"

    onnx_op = "Tanh"

    def forward(self, x):
        return F.tanh(x)


class GELU(Elementwise):
    """x Phi(x) (exact erf; ``approximate='tanh'`` for the tanh formula)."""

    activation_name = "gelu"

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def config(self) -> dict:
        return {"approximate": self.approximate}

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """Opset 17 has no Gelu: x (1 + erf(x / sqrt 2)) / 2, or with ``approximate='tanh'``
        x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2, as PyTorch's exporter writes them."""
        half, one = g.constant(path, "half", 0.5), g.constant(path, "one", 1.0)
        if self.approximate == "tanh":
            cube = g.add("Mul", [x, g.add("Mul", [x, x], path)], path)
            kappa_cube = g.add("Mul", [g.constant(path, "kappa", 0.044715), cube], path)
            inner = g.add("Add", [x, kappa_cube], path)
            sqrt_2_over_pi = g.constant(path, "sqrt_2_over_pi", math.sqrt(2 / math.pi))
            scaled = g.add("Mul", [sqrt_2_over_pi, inner], path)
            one_plus = g.add("Add", [one, g.add("Tanh", [scaled], path)], path)
            return g.add("Mul", [half, g.add("Mul", [x, one_plus], path)], path)
        erf = g.add("Erf", [g.add("Div", [x, g.constant(path, "sqrt2", math.sqrt(2))], path)], path)
        z = g.add("Mul", [x, g.add("Add", [erf, one], path)], path)
        return g.add("Mul", [z, half], path)


class Softplus(Elementwise):
    """log(1 + e^(beta x)) / beta."""

    activation_name = "softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold}

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """z = x where beta x > threshold, else log(1 + e^(beta x)) / beta (ONNX's Softplus is
        the beta = 1 formula with no threshold)."""
        beta = g.constant(path, "beta", self.beta)
        bx = g.add("Mul", [x, beta], path)
        smooth = g.add("Div", [g.add("Softplus", [bx], path), beta], path)
        beyond = g.add("Greater", [bx, g.constant(path, "threshold", self.threshold)], path)
        return g.add("Where", [beyond, x, smooth], path)


class Softmax(Elementwise):
    """e^x / sum e^x along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise ValueError(f"{type(self).__name__}: dim must be an axis number, got {dim!r}")
        self.dim = dim

    def config(self) -> dict:
        return {"dim": self.dim}

    def output_shape(self, input_shape: tuple) -> tuple:
        if not -len(input_shape) <= self.dim < len(input_shape):
            raise ValueError(
                f"{self!r} got input of shape {tuple(input_shape)}: dim={self.dim} is not one of "
                "its axes"
            )
        return tuple(input_shape)

    def forward(self, x):
        self.output_shape(tuple(x.shape))  # dim must be an axis of x: say so, naming the layer
        return F.softmax(x, self.dim)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        return g.add(type(self).__name__, [x], path, axis=self.dim)  # Softmax or LogSoftmax

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """x - logsumexp(x) along ``dim``."""

    def forward(self, x):
        self.output_shape(tuple(x.shape))
        return F.log_softmax(x, self.dim)


class _ShapeOnly:
    """Stands in for an input where only its shape matters (a layer's checks on ``output_shape``)."""

    def __init__(self, shape: tuple):
        self.shape, self.ndim = tuple(shape), len(shape)
