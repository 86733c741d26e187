"""Layers for images (NCHW): convolution, pooling, 2-D batch norm and channel dropout.

Convolution, pooling and batch norm run the fast channels-last ops (:mod:`chainrule.ops.conv_fast`,
:mod:`~chainrule.ops.pool_fast`, :mod:`~chainrule.ops.batchnorm_fast`), split over the BLAS
threads (``cr.set_num_threads``). Their outputs have the (N, C, H, W) shape and values PyTorch
gives, stored channels-last, as PyTorch's ``channels_last`` memory format: the next such layer
reads them without a copy. ``np.ascontiguousarray(y.numpy())`` gives NCHW memory if you need it.
"""

from __future__ import annotations

import math

from ..backend import check_fits, xp
from ..dtypes import get_default_dtype
from ..ops.conv import adaptive_pool_matrix, output_size
from ..tensor import as_array
from . import functional as F
from . import init
from .layers import BatchNorm1d, Dropout
from .module import Module, Parameter


def image_shape(layer, input_shape: tuple, channels=None) -> tuple:
    """(N, C, H, W) checked as :func:`check_image` checks an input (for ``output_shape``)."""
    if len(input_shape) != 4:
        raise ValueError("needs (N, channels, height, width) images")
    if channels is not None and input_shape[1] != channels:
        raise ValueError(f"needs {channels} channels")
    return tuple(input_shape)


def nonempty(shape: tuple) -> tuple:
    if min(shape[1:]) < 1:
        raise ValueError(f"the output {shape} would be empty")
    return shape


def check_image(layer, x, channels=None):
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(f"{layer!r} got input of shape {shape}: expected (N, C, H, W) images")
    if channels is not None and shape[1] != channels:
        raise ValueError(f"{layer!r} got input of shape {shape}: it needs {channels} channels")


class Conv2d(Module):
    """Learned filters slid over the image: each output channel is a weighted sum over a
    kernel_size window of all input channels (of its group), plus a bias.

    Weight (out_channels, in_channels/groups, kh, kw), initialised as PyTorch does.
    Shape: (N, in_channels, H, W) -> (N, out_channels, H', W'),
    H' = (H + 2 padding - dilation (kh - 1) - 1) // stride + 1. ``padding='same'`` keeps H, W.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
    ):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: channels {in_channels} -> {out_channels} not divisible by groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = F.pair(kernel_size, "kernel_size")
        self.stride, self.dilation = F.pair(stride, "stride"), F.pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else F.pair(padding, "padding")
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(xp.empty(shape, dtype=get_default_dtype()))
        self.bias = Parameter(xp.empty(out_channels, dtype=get_default_dtype())) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = init.fans(self.weight)[0]
            bound = 1 / math.sqrt(fan_in) if fan_in else 0
            init.uniform_(self.bias, -bound, bound)

    def config(self) -> dict:
        padding = self.padding if isinstance(self.padding, str) else list(self.padding)
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": padding,
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias is not None,
        }

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        kernel, out = F.pair(config["kernel_size"], "kernel_size"), config["out_channels"]
        per_group = config["in_channels"] // max(config.get("groups", 1), 1)
        shapes = {"weight": (out, per_group, *kernel)}
        return shapes | ({"bias": (out,)} if config.get("bias", True) else {})

    @classmethod
    def scratch_size(cls, config: dict, output_shape: tuple) -> int:
        """The unfolded patches: C_in kh kw numbers for each output position."""
        kh, kw = F.pair(config["kernel_size"], "kernel_size")
        return config["in_channels"] * kh * kw * math.prod(output_shape[-2:])

    def output_shape(self, input_shape: tuple) -> tuple:
        n, _, h, w = image_shape(self, input_shape, self.in_channels)
        pads = F.conv_padding(self.padding, self.kernel_size, self.dilation)
        sizes = zip((h, w), self.kernel_size, self.stride, pads, self.dilation)
        spatial = (output_size(size, k, s, sum(p), d) for size, k, s, p, d in sizes)
        return nonempty((n, self.out_channels, *spatial))

    def forward(self, x):
        check_image(self, x, self.in_channels)
        try:
            return F.conv2d(
                x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
            )
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        (top, bottom), (left, right) = F.conv_padding(self.padding, self.kernel_size, self.dilation)
        inputs = [x, g.weight(f"{path}.weight", as_array(self.weight))]
        if self.bias is not None:
            inputs.append(g.weight(f"{path}.bias", as_array(self.bias)))
        return g.add(
            "Conv",
            inputs,
            path,
            kernel_shape=list(self.kernel_size),
            strides=list(self.stride),
            pads=[top, left, bottom, right],
            dilations=list(self.dilation),
            group=self.groups,
        )

    def extra_repr(self) -> str:
        k = "x".join(map(str, self.kernel_size))
        text = f"{self.in_channels} -> {self.out_channels}, {k}"
        if self.stride != (1, 1):
            text += f", stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class _Pool(Module):
    function = None
    onnx_op = ""  # MaxPool or AveragePool

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        F.pool_window(type(self).__name__, kernel_size, stride, padding)  # refuse a bad window now
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def config(self) -> dict:
        def plain(value):
            return list(value) if isinstance(value, tuple) else value

        return {"kernel_size": plain(self.kernel_size), "stride": plain(self.stride)} | {
            "padding": plain(self.padding)
        }

    def output_shape(self, input_shape: tuple) -> tuple:
        n, c, h, w = image_shape(self, input_shape)
        kernel = F.pair(self.kernel_size, "kernel_size")
        stride = kernel if self.stride is None else F.pair(self.stride, "stride")
        padding = F.pair(self.padding, "padding")
        sizes = zip((h, w), kernel, stride, padding)
        return nonempty((n, c, *(output_size(size, k, s, 2 * p) for size, k, s, p in sizes)))

    def forward(self, x):
        check_image(self, x)
        try:
            return type(self).function(x, self.kernel_size, self.stride, self.padding)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        kernel = F.pair(self.kernel_size, "kernel_size")
        stride = kernel if self.stride is None else F.pair(self.stride, "stride")
        ph, pw = F.pair(self.padding, "padding")
        windows = {"kernel_shape": list(kernel), "strides": list(stride), "pads": [ph, pw, ph, pw]}
        if self.onnx_op == "AveragePool":  # padding counts as zeros in the mean, as in PyTorch
            windows["count_include_pad"] = 1
        return g.add(self.onnx_op, [x], path, **windows)

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}"
        if self.stride is not None:
            text += f", stride={self.stride}"
        return text + (f", padding={self.padding}" if self.padding else "")


class MaxPool2d(_Pool):
    """Keep the largest value of each window (the strongest response of a feature)."""

    function = staticmethod(F.max_pool2d)
    onnx_op = "MaxPool"


class AvgPool2d(_Pool):
    """Keep the mean of each window."""

    function = staticmethod(F.avg_pool2d)
    onnx_op = "AveragePool"


class AdaptiveAvgPool2d(Module):
    """Average into a fixed ``output_size`` grid, whatever the input size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def config(self) -> dict:
        size = self.output_size
        return {"output_size": list(size) if isinstance(size, tuple) else size}

    def output_shape(self, input_shape: tuple) -> tuple:
        n, c, h, w = image_shape(self, input_shape)
        size = self.output_size
        size = (size, size) if isinstance(size, int) or size is None else tuple(size)
        return nonempty((n, c, *(old if new is None else new for old, new in zip((h, w), size))))

    def forward(self, x):
        check_image(self, x)
        check_fits(self.output_shape(tuple(x.shape)), x.dtype, repr(self))
        return F.adaptive_avg_pool2d(x, self.output_size)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        """GlobalAveragePool for 1x1, AveragePool when the bins are equal, otherwise the bins as
        two averaging matrices: z = P_h x P_w^T (as chainrule computes it)."""
        (oh, ow), (h, w) = F.pair(self.output_size, "output_size"), shape[2:]
        if (oh, ow) == (1, 1):
            return g.add("GlobalAveragePool", [x], path)
        if h % oh == 0 and w % ow == 0:
            window = [h // oh, w // ow]
            return g.add("AveragePool", [x], path, kernel_shape=window, strides=window)
        rows = g.constant(path, "rows", adaptive_pool_matrix(h, oh, g.dtype))
        columns = g.constant(path, "columns", adaptive_pool_matrix(w, ow, g.dtype).T)
        return g.add("MatMul", [g.add("MatMul", [rows, x], path), columns], path)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class BatchNorm2d(BatchNorm1d):
    """Batch norm per channel over (N, H, W) of NCHW images; see :class:`BatchNorm1d`."""

    def check(self, x):
        check_image(self, x, self.num_features)


class Dropout2d(Dropout):
    """Zero whole channels with probability p in training (scaling the rest by 1/(1-p)).

    Made for (N, C, H, W) images; other inputs are taken as PyTorch takes them, with its
    warning (a 2-D (N, C) input drops element-wise; see :func:`F.dropout2d`).

    Args:
        p: the probability of zeroing a channel.
        inplace: accepted as PyTorch's and kept in config(); it changes nothing
            numerically here: the output is computed out of place.
    """

    def forward(self, x):
        if x.ndim < 2:
            raise ValueError(f"{self!r} got input of shape {tuple(x.shape)}: expected (N, C, ...)")
        return F.dropout2d(x, self.p, self.training)
