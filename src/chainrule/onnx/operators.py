"""The ONNX operators :func:`~chainrule.onnx.load` reads, and the chainrule layer each becomes.

Most layers are one ONNX node (``Conv`` -> Conv2d, ``Gemm`` -> Linear, ...): ``NODES`` maps the
op type to a function that builds the layer from the node's attributes and constant inputs.
A few layers are several nodes, because opset 17 has no single operator for them (GELU, Softplus
with beta, Linear on (N, ..., in) inputs, adaptive pooling to uneven bins, PixelUnshuffle):
``PATTERNS`` describes each as a small expression over the layer's input ``X``, constants ``K``
and required attributes, in the forms that chainrule's and PyTorch's exporters write.

Every builder gets the input's shape (batch first) and raises :class:`Unsupported` with the reason
when the node asks for something the layer cannot do (asymmetric padding, ceil mode, ...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..backend import xp
from ..nn import conv as C
from ..nn import conv_transpose as CT
from ..nn import layers as L
from ..nn.functional import conv_padding
from ..nn.module import Module
from ..nn.pixel_shuffle import PixelShuffle, PixelUnshuffle
from ..ops.conv import adaptive_pool_matrix


class Unsupported(Exception):
    """This node (or pattern) asks for something chainrule's layer does not do; says what."""


def with_weights(layer: Module, **arrays) -> Module:
    """``layer`` with its parameters and buffers set from ``arrays`` (names as in its state dict),
    in float64 if the weights are."""
    if any(a.dtype == xp.float64 for a in arrays.values()):
        layer.double()
    layer.load_state_dict(arrays)
    return layer


# -- single nodes ----------------------------------------------------------------------------------
# Each builder gets the node's attributes (a dict), its constant inputs after the first (arrays,
# None for an omitted optional input) and the shape of its data input.

NODES: dict[str, Callable] = {}


def reads(*op_types):
    def register(function):
        for op_type in op_types:
            NODES[op_type] = function
        return function

    return register


@reads("Relu", "Sigmoid", "Tanh", "Identity")
def elementwise(op_type, attributes, constants, shape):
    return {"Relu": L.ReLU, "Sigmoid": L.Sigmoid, "Tanh": L.Tanh, "Identity": L.Identity}[op_type]()


@reads("LeakyRelu")
def leaky_relu(op_type, attributes, constants, shape):
    return L.LeakyReLU(attributes.get("alpha", 0.01))


@reads("Gelu")
def gelu(op_type, attributes, constants, shape):
    # opset 20's single operator (PyTorch's dynamo exporter writes it)
    approximate = attributes.get("approximate", "none")
    if approximate not in ("none", "tanh"):
        raise Unsupported(f"approximate={approximate!r}")
    return L.GELU(approximate)


@reads("Softplus")
def softplus(op_type, attributes, constants, shape):
    # ONNX's has no threshold: the two differ by at most log(1 + e^-20), 2e-9, beyond it
    return L.Softplus()


@reads("Softmax", "LogSoftmax")
def softmax(op_type, attributes, constants, shape):
    axis = attributes.get("axis", -1)
    if not -len(shape) <= axis < len(shape):
        raise Unsupported(f"axis={axis}, but the input has {len(shape)} axes")
    return (L.Softmax if op_type == "Softmax" else L.LogSoftmax)(axis)


@reads("Dropout")
def dropout(op_type, attributes, constants, shape):
    ratio, training = (list(constants) + [None, None])[:2]
    if training is not None and bool(training):
        raise Unsupported("training_mode is on: the graph drops values when it runs")
    return L.Dropout(0.5 if ratio is None else float(ratio))


@reads("Gemm")
def gemm(op_type, attributes, constants, shape):
    """Y = alpha A B' + beta C (B' = B or B^T) -> Linear with W = alpha B'^T, b = beta C."""
    b, c = (list(constants) + [None])[:2]
    if attributes.get("transA", 0):
        raise Unsupported("transA=1 transposes the input batch")
    if b.ndim != 2 or len(shape) != 2:
        raise Unsupported(f"needs a 2-D weight and (N, features) input, got {b.shape} and {shape}")
    weight = attributes.get("alpha", 1.0) * (b if attributes.get("transB", 0) else b.T)
    return linear(weight, None if c is None else attributes.get("beta", 1.0) * c, shape)


def linear(weight, bias, shape):
    """Linear(in -> out) with ``weight`` (out, in) and ``bias`` (broadcast to (out,)) or None."""
    if weight.ndim != 2:
        raise Unsupported(f"weight of shape {weight.shape}: a Linear layer's is 2-D")
    out_features, in_features = weight.shape
    if shape[-1] != in_features:
        raise Unsupported(f"weight {weight.shape} does not fit input of shape {shape}")
    arrays = {"weight": weight}
    if bias is not None:
        if bias.size not in (1, out_features) or bias.ndim > 2:
            raise Unsupported(f"bias of shape {bias.shape} is not one value per output")
        arrays["bias"] = xp.broadcast_to(bias.reshape(-1), (out_features,))
    return with_weights(L.Linear(in_features, out_features, bias=bias is not None), **arrays)


def window_attributes(attributes, shape) -> dict:
    """kernel, stride, dilation and pads of a Conv or pooling node, checked for what chainrule's
    layers do."""
    if len(shape) != 4:
        raise Unsupported(f"needs (N, C, H, W) images, the input here is {shape}")
    auto_pad = attributes.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID", "SAME_UPPER"):
        raise Unsupported(f"auto_pad={auto_pad} (write explicit pads)")
    if attributes.get("ceil_mode", 0):
        raise Unsupported("ceil_mode=1 rounds the output size up; chainrule rounds down")
    kernel = tuple(attributes.get("kernel_shape", ()))
    if len(kernel) != 2:
        raise Unsupported(f"kernel_shape {list(kernel)}: only 2-D windows")
    window = {
        "kernel_size": kernel,
        "stride": tuple(attributes.get("strides", (1, 1))),
        "dilation": tuple(attributes.get("dilations", (1, 1))),
        "pads": tuple(attributes.get("pads", (0, 0, 0, 0))),
    }
    if auto_pad == "SAME_UPPER":  # PyTorch's padding='same': any odd row or column at the end
        if window["stride"] != (1, 1):
            raise Unsupported("auto_pad=SAME_UPPER with a stride (write explicit pads)")
        (top, bottom), (left, right) = conv_padding("same", kernel, window["dilation"])
        window["pads"] = (top, left, bottom, right)
    return window


@reads("Conv")
def conv(op_type, attributes, constants, shape):
    weight, bias = (list(constants) + [None])[:2]
    if weight.ndim != 4:
        raise Unsupported(f"weight of shape {weight.shape}: only 2-D convolution")
    window = window_attributes({"kernel_shape": list(weight.shape[2:]), **attributes}, shape)
    if window["kernel_size"] != tuple(weight.shape[2:]):
        raise Unsupported(f"kernel_shape {list(window['kernel_size'])} but weight {weight.shape}")
    top, left, bottom, right = window["pads"]
    same = conv_padding("same", window["kernel_size"], window["dilation"])
    if (top, left) == (bottom, right):
        padding = (top, left)
    elif window["stride"] == (1, 1) and same == ((top, bottom), (left, right)):
        padding = "same"  # PyTorch's uneven 'same' padding: the extra row and column at the end
    else:
        raise Unsupported(f"pads {list(window['pads'])}: Conv2d pads both sides alike")
    groups = attributes.get("group", 1)
    layer = C.Conv2d(
        weight.shape[1] * groups,
        weight.shape[0],
        window["kernel_size"],
        stride=window["stride"],
        padding=padding,
        dilation=window["dilation"],
        groups=groups,
        bias=bias is not None,
    )
    return with_weights(layer, weight=weight, **({} if bias is None else {"bias": bias}))


@reads("ConvTranspose")
def conv_transpose(op_type, attributes, constants, shape):
    weight, bias = (list(constants) + [None])[:2]
    if weight.ndim != 4:
        raise Unsupported(f"weight of shape {weight.shape}: only 2-D transposed convolution")
    if attributes.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise Unsupported(f"auto_pad={attributes['auto_pad']} (write explicit pads)")
    if "output_shape" in attributes:
        raise Unsupported("output_shape (write pads and output_padding)")
    window = window_attributes({"kernel_shape": list(weight.shape[2:]), **attributes}, shape)
    if window["kernel_size"] != tuple(weight.shape[2:]):
        raise Unsupported(f"kernel_shape {list(window['kernel_size'])} but weight {weight.shape}")
    top, left, bottom, right = window["pads"]
    if (top, left) != (bottom, right):
        raise Unsupported(f"pads {list(window['pads'])}: ConvTranspose2d pads both sides alike")
    groups = attributes.get("group", 1)
    layer = CT.ConvTranspose2d(
        weight.shape[0],
        weight.shape[1] * groups,
        window["kernel_size"],
        stride=window["stride"],
        padding=(top, left),
        output_padding=tuple(attributes.get("output_padding", (0, 0))),
        groups=groups,
        bias=bias is not None,
        dilation=window["dilation"],
    )
    return with_weights(layer, weight=weight, **({} if bias is None else {"bias": bias}))


@reads("MaxPool", "AveragePool")
def pool(op_type, attributes, constants, shape):
    window = window_attributes(attributes, shape)
    if window["dilation"] != (1, 1):
        raise Unsupported(f"dilations {list(window['dilation'])}: pooling windows are dense")
    top, left, bottom, right = window["pads"]
    if (top, left) != (bottom, right):
        raise Unsupported(f"pads {list(window['pads'])}: pooling pads both sides alike")
    if op_type == "AveragePool" and top + left and not attributes.get("count_include_pad", 0):
        raise Unsupported("count_include_pad=0: chainrule counts the padding in the mean")
    layer = C.MaxPool2d if op_type == "MaxPool" else C.AvgPool2d
    return layer(window["kernel_size"], window["stride"], (top, left))


@reads("GlobalAveragePool")
def global_average_pool(op_type, attributes, constants, shape):
    if len(shape) != 4:
        raise Unsupported(f"needs (N, C, H, W) images, the input here is {shape}")
    return C.AdaptiveAvgPool2d(1)


@reads("ReduceMean")
def reduce_mean(op_type, attributes, constants, shape):
    """The mean over the image (H, W), keeping the axes: a 1x1 adaptive average pool."""
    axes = constants[0] if constants else attributes.get("axes")  # an input from opset 18
    if len(shape) != 4 or axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
        raise Unsupported(f"only the mean over H and W of images; axes {axes}, input {shape}")
    if not attributes.get("keepdims", 1):
        raise Unsupported("keepdims=0 drops the image axes")
    return C.AdaptiveAvgPool2d(1)


@reads("BatchNormalization")
def batch_norm(op_type, attributes, constants, shape):
    """The inference form, with running statistics (ONNX's momentum weighs the old value)."""
    scale, bias, mean, var = constants
    if attributes.get("training_mode", 0):
        raise Unsupported("training_mode=1 normalises with each batch's statistics")
    if len(shape) not in (2, 3, 4):
        raise Unsupported(f"input of shape {shape}: batch norm over (N, C), (N, C, L) or images")
    layer = (C.BatchNorm2d if len(shape) == 4 else L.BatchNorm1d)(
        shape[1], eps=attributes.get("epsilon", 1e-5), momentum=1 - attributes.get("momentum", 0.9)
    )
    return with_weights(
        layer,
        weight=scale,
        bias=bias,
        running_mean=mean,
        running_var=var,
        num_batches_tracked=xp.zeros((), dtype=xp.int64),
    )


@reads("LayerNormalization")
def layer_norm(op_type, attributes, constants, shape):
    scale, bias = (list(constants) + [None])[:2]
    axis = attributes.get("axis", -1) % len(shape)
    if axis == 0:
        raise Unsupported("axis=0 normalises across the batch")
    normalized = tuple(shape[axis:])
    bias = xp.zeros(normalized) if bias is None else bias
    layer = L.LayerNorm(normalized, eps=attributes.get("epsilon", 1e-5))
    return with_weights(
        layer, weight=xp.broadcast_to(scale, normalized), bias=xp.broadcast_to(bias, normalized)
    )


@reads("Flatten")
def flatten(op_type, attributes, constants, shape):
    if attributes.get("axis", 1) % max(len(shape), 1) != 1:
        raise Unsupported(f"axis={attributes.get('axis')}: only axis=1 keeps the batch axis")
    return L.Flatten()


@reads("DepthToSpace")
def depth_to_space(op_type, attributes, constants, shape):
    """Channels moved into blocks of pixels: PixelShuffle's order is the CRD mode's."""
    mode = attributes.get("mode", "DCR")
    if mode != "CRD":
        raise Unsupported(f"mode {mode}: PixelShuffle moves channels in the CRD order")
    return PixelShuffle(int(attributes["blocksize"]))


@reads("Reshape")
def reshape(op_type, attributes, constants, shape):
    """A reshape that keeps the batch axis: Flatten (merge axes), Unflatten (split one)."""
    target = [int(v) for v in constants[0]]
    if attributes.get("allowzero", 0) and 0 in target:
        raise Unsupported(f"shape {target} with allowzero=1 makes an empty axis")
    if not target or target[0] not in (0, -1, shape[0]):
        raise Unsupported(f"shape {target} does not keep the batch axis first")
    if 0 in target[len(shape) :]:
        raise Unsupported(f"shape {target} copies axes the input {shape} does not have (0)")
    rest = [shape[i + 1] if v == 0 else v for i, v in enumerate(target[1:])]
    size = math.prod(shape[1:])
    if rest.count(-1) == 1:
        known = math.prod(v for v in rest if v != -1)
        rest[rest.index(-1)] = size // known if known and size % known == 0 else -1
    if any(v < 1 for v in rest) or math.prod(rest) != size:
        raise Unsupported(f"shape {target} moves values between examples of the batch")
    return reshape_layer(tuple(shape[1:]), tuple(rest), target)


def reshape_layer(before: tuple, after: tuple, target) -> Module:
    """The Flatten or Unflatten that turns per-example shape ``before`` into ``after``."""
    if before == after:
        return L.Identity()
    for start in range(len(before)):
        for end in range(start, len(before)):  # merge before[start..end] into one axis
            merged = (*before[:start], math.prod(before[start : end + 1]), *before[end + 1 :])
            if merged == after and end > start:
                return L.Flatten(start + 1, end + 1)
    for dim in range(len(before)):  # split before[dim] into several axes
        k = len(after) - len(before) + 1
        if k > 1 and after[:dim] == before[:dim] and after[dim + k :] == before[dim + 1 :]:
            if math.prod(after[dim : dim + k]) == before[dim]:
                return L.Unflatten(dim + 1, after[dim : dim + k])
    raise Unsupported(f"reshape {before} -> {after} ({target}) is neither a flatten nor a split")


# -- several nodes ---------------------------------------------------------------------------------


X = "X"
"""In a pattern: the layer's input."""


@dataclass(frozen=True)
class K:
    """In a pattern: a constant, required to equal ``value`` if given, captured as ``name``;
    of floats unless ``integers`` (a shape, say)."""

    name: str | None = None
    value: float | None = None
    integers: bool = False


@dataclass(frozen=True)
class Op:
    """In a pattern: a node of ``op_type`` whose inputs match ``inputs`` (either order for the
    commutative Add and Mul) and whose ``attributes`` ((name, value) pairs) are as given."""

    op_type: str
    inputs: tuple
    attributes: tuple = ()

    def size(self) -> int:
        return 1 + sum(i.size() for i in self.inputs if isinstance(i, Op))


def op(op_type: str, *inputs, **attributes) -> Op:
    """A pattern's node (list attributes kept as tuples, so that the pattern stays hashable)."""
    return Op(op_type, inputs, tuple((k, as_tuple(v)) for k, v in attributes.items()))


def as_tuple(value):
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Pattern:
    """A layer written as several ONNX nodes, and how to build it from the captured constants."""

    name: str
    expression: Op
    build: Callable  # (constants by name, input shape) -> Module


def scalar(found: dict, name: str) -> float:
    value = found[name]
    if value.size != 1:
        raise Unsupported(f"{name} has shape {value.shape}; the layer takes one number")
    return float(value.reshape(()))


def adaptive_pool(found: dict, shape) -> Module:
    rows, columns = found["rows"], found["columns"]
    if len(shape) != 4 or rows.ndim != 2 or columns.ndim != 2:
        raise Unsupported("averaging matrices need (N, C, H, W) images")
    (oh, h), (w, ow) = rows.shape, columns.shape
    if (h, w) != tuple(shape[2:]):
        raise Unsupported(f"matrices {rows.shape}, {columns.shape} do not fit images {shape}")
    for got, want in (
        (rows, adaptive_pool_matrix(h, oh, rows.dtype)),
        (columns, adaptive_pool_matrix(w, ow, columns.dtype).T),
    ):
        if not xp.allclose(got, want, rtol=1e-6, atol=0):
            raise Unsupported("the matrices are not adaptive average pooling's bins")
    return C.AdaptiveAvgPool2d((oh, ow))


def pixel_unshuffle(found: dict, shape) -> Module:
    """PixelUnshuffle(r) as (N, C, H, W) -> (N, C, H/r, r, W/r, r) -> moved to
    (N, C, r, r, H/r, W/r) -> (N, C r r, H/r, W/r), the batch axis written 0 (chainrule) or -1
    (PyTorch)."""
    if len(shape) != 4:
        raise Unsupported(f"input {shape}: PixelUnshuffle takes (N, C, H, W) images")
    if any(a.name == "allowzero" and a.i for n in found["nodes"] for a in n.attribute):
        raise Unsupported("allowzero=1 reads a 0 in the shape as an empty axis")
    (_, c, h, w), blocks, target = shape, found["blocks"].tolist(), found["shape"].tolist()
    r = blocks[3] if len(blocks) == 6 else 0
    batch = (0, -1, shape[0])
    if r < 1 or h % r or w % r or blocks[1:] != [c, h // r, r, w // r, r] or blocks[0] not in batch:
        raise Unsupported(f"shape {blocks} does not cut {shape} into r x r blocks")
    if len(target) != 4 or target[1:] != [c * r * r, h // r, w // r] or target[0] not in batch:
        raise Unsupported(f"shape {target} is not PixelUnshuffle({r})'s output")
    return PixelUnshuffle(r)


SQRT2 = math.sqrt(2)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
# GELU, x (1 + erf(x / sqrt 2)) / 2
ERF_TERM = op("Add", op("Erf", op("Div", X, K(value=SQRT2))), K(value=1.0))
GELU_ERF = op("Mul", op("Mul", X, ERF_TERM), K(value=0.5))
# GELU, x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2
CUBE = op("Mul", X, op("Mul", X, X))
INNER = op("Mul", K(value=SQRT_2_OVER_PI), op("Add", X, op("Mul", K(value=0.044715), CUBE)))
GELU_TANH = op("Mul", K(value=0.5), op("Mul", X, op("Add", K(value=1.0), op("Tanh", INNER))))
# Softplus, log(1 + e^(beta x)) / beta, and x where beta x > threshold
SCALED = op("Mul", X, K("beta"))
SMOOTH = op("Div", op("Softplus", SCALED), K("beta"))
SOFTPLUS = op("Where", op("Greater", SCALED, K("threshold")), X, SMOOTH)
# Linear on (N, ..., in): x W^T + b as a MatMul by W^T
LINEAR = op("Add", op("MatMul", X, K("weight")), K("bias"))
# adaptive average pooling: P_h x P_w^T
ADAPTIVE_POOL = op("MatMul", op("MatMul", K("rows"), X), K("columns"))
# PixelUnshuffle (ONNX's SpaceToDepth orders the channels otherwise): cut, move, merge
BLOCKS = op("Reshape", X, K("blocks", integers=True))
PIXEL_UNSHUFFLE = op(
    "Reshape", op("Transpose", BLOCKS, perm=[0, 1, 3, 5, 2, 4]), K("shape", integers=True)
)

PATTERNS = [
    Pattern("GELU (tanh)", GELU_TANH, lambda found, shape: L.GELU("tanh")),
    Pattern("GELU", GELU_ERF, lambda found, shape: L.GELU()),
    Pattern(
        "Softplus",
        SOFTPLUS,
        lambda found, shape: L.Softplus(scalar(found, "beta"), scalar(found, "threshold")),
    ),
    Pattern("Softplus", SMOOTH, lambda found, shape: L.Softplus(scalar(found, "beta"))),
    Pattern("AdaptiveAvgPool2d", ADAPTIVE_POOL, adaptive_pool),
    Pattern("PixelUnshuffle", PIXEL_UNSHUFFLE, pixel_unshuffle),
    Pattern(
        "Linear",
        LINEAR,
        lambda found, shape: linear(found["weight"].T, found["bias"], shape),
    ),
    Pattern(
        "Linear",
        LINEAR.inputs[0],
        lambda found, shape: linear(found["weight"].T, None, shape),
    ),
]
"""Longest first: the first pattern that matches wins."""
