"""Transposed convolutions (ConvTranspose1d, ConvTranspose2d): layers that grow an image or a
sequence, each input position stamping its scaled filter onto the output. A DCGAN generator is
a stack of them (with BatchNorm2d and ReLU) from a 1x1 noise image to a 64x64 picture.

The math is :class:`chainrule.ops.conv_transpose.ConvTranspose2d` (the gradient of a
convolution with respect to its input); a 1-D layer runs it on images one row high.
"""

from __future__ import annotations

import math

from ..backend import check_fits, xp
from ..dtypes import get_default_dtype
from ..ops.conv_transpose import transposed_size
from ..tensor import as_array
from . import functional as F
from .conv import Conv2d, nonempty
from .module import Module, Parameter


class _ConvTranspose(Module):
    """What the 1-D and 2-D layers share; a subclass names its number of spatial axes
    (``dims``), how it reads a size argument (``sizes``) and its function."""

    dims = 2
    function = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
    ):
        super().__init__()
        name = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(
                f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}"
            )
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: channels {in_channels} -> {out_channels} not divisible by groups={groups}"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = self.sizes(kernel_size, "kernel_size")
        self.stride, self.padding = self.sizes(stride, "stride"), self.sizes(padding, "padding")
        self.output_padding = self.sizes(output_padding, "output_padding")
        self.dilation = self.sizes(dilation, "dilation")
        if min(self.kernel_size + self.stride + self.dilation) < 1:
            raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1")
        if min(self.padding + self.output_padding) < 0:
            raise ValueError(f"{name}: padding and output_padding must be >= 0")
        shape = (in_channels, out_channels // groups, *self.kernel_size)
        self.weight = Parameter(xp.empty(shape, dtype=get_default_dtype()))
        self.bias = Parameter(xp.empty(out_channels, dtype=get_default_dtype())) if bias else None
        self.reset_parameters()

    @classmethod
    def sizes(cls, value, name: str) -> tuple:
        """A size argument as a tuple with one entry per spatial axis."""
        if cls.dims == 1:
            return (F.single(value, name),)
        return F.pair(value, name)

    reset_parameters = Conv2d.reset_parameters  # PyTorch's init; fan_in = out/groups * kernel

    def config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "output_padding": list(self.output_padding),
            "groups": self.groups,
            "bias": self.bias is not None,
            "dilation": list(self.dilation),
        }

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        kernel = cls.sizes(config["kernel_size"], "kernel_size")
        per_group = config["out_channels"] // max(config.get("groups", 1), 1)
        shapes = {"weight": (config["in_channels"], per_group, *kernel)}
        return shapes | ({"bias": (config["out_channels"],)} if config.get("bias", True) else {})

    @classmethod
    def scratch_size(cls, config: dict, output_shape: tuple) -> int:
        """The filter stamps before they are added up: C_out times the kernel's taps for each
        input position (fewer input than output positions but for large padding)."""
        taps = math.prod(cls.sizes(config["kernel_size"], "kernel_size"))
        return config["out_channels"] * taps * math.prod(output_shape[2:])

    def output_shape(self, input_shape: tuple) -> tuple:
        self.check_input(input_shape)
        sizes = zip(
            input_shape[2:],
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.output_padding,
        )
        spatial = (transposed_size(*axis) for axis in sizes)
        return nonempty((input_shape[0], self.out_channels, *spatial))

    def check_input(self, shape: tuple) -> None:
        if len(shape) != self.dims + 2:
            axes = "(N, C, L) sequences" if self.dims == 1 else "(N, C, H, W) images"
            raise ValueError(f"{self!r} got input of shape {tuple(shape)}: expected {axes}")
        if shape[1] != self.in_channels:
            raise ValueError(
                f"{self!r} got input of shape {tuple(shape)}: it needs {self.in_channels} channels"
            )

    def forward(self, x, output_size=None):
        """``output_size`` (PyTorch's): the spatial size wanted, among the sizes the stride
        makes possible; it picks the output_padding."""
        shape = tuple(x.shape)
        self.check_input(shape)
        try:
            extra = self.output_padding
            if output_size is not None:
                extra = self.padding_for(shape, output_size)
            # a stride from a file may ask for an output no machine holds: refuse it first
            check_fits(self.output_shape(shape), x.dtype, repr(self))
            return type(self).function(
                x,
                self.weight,
                self.bias,
                self.stride,
                self.padding,
                extra,
                self.groups,
                self.dilation,
            )
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None

    def padding_for(self, input_shape: tuple, output_size) -> tuple:
        """The output_padding that gives ``output_size`` (the last ``dims`` entries)."""
        wanted = tuple(output_size)[-self.dims :]
        smallest = self.output_shape(input_shape)[2:]
        extra = tuple(w - s + p for w, s, p in zip(wanted, smallest, self.output_padding))
        largest = (max(s, d) - 1 for s, d in zip(self.stride, self.dilation))
        if len(wanted) != self.dims or any(not 0 <= e <= top for e, top in zip(extra, largest)):
            raise ValueError(
                f"output_size {tuple(output_size)} is not one the input {input_shape} can give"
            )
        return extra

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        inputs = [x, g.weight(f"{path}.weight", as_array(self.weight))]
        if self.bias is not None:
            inputs.append(g.weight(f"{path}.bias", as_array(self.bias)))
        return g.add(
            "ConvTranspose",
            inputs,
            path,
            kernel_shape=list(self.kernel_size),
            strides=list(self.stride),
            pads=list(self.padding) * 2,
            output_padding=list(self.output_padding),
            dilations=list(self.dilation),
            group=self.groups,
        )

    def extra_repr(self) -> str:
        k = "x".join(map(str, self.kernel_size))
        text = f"{self.in_channels} -> {self.out_channels}, {k}"
        ones, zeros = (1,) * self.dims, (0,) * self.dims
        for name, plain in (
            ("stride", ones),
            ("padding", zeros),
            ("output_padding", zeros),
            ("dilation", ones),
        ):
            if getattr(self, name) != plain:
                text += f", {name}={getattr(self, name)}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        return text + ("" if self.bias is not None else ", bias=False")


class ConvTranspose2d(_ConvTranspose):
    """The transpose of Conv2d: each input pixel adds its filter, scaled by the pixel, onto the
    output at stride steps; overlapping stamps add up.

    Weight (in_channels, out_channels/groups, kh, kw), initialised as PyTorch does.
    Shape: (N, in_channels, H, W) -> (N, out_channels, H', W'),
    H' = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.

    Example:
        >>> up = cr.nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)  # doubles H and W
        >>> tuple(up(cr.randn(1, 8, 5, 5)).shape)
        (1, 4, 10, 10)
    """

    dims = 2
    function = staticmethod(F.conv_transpose2d)


class ConvTranspose1d(_ConvTranspose):
    """The transpose of a 1-D convolution over (N, C, L) sequences; see ConvTranspose2d.

    Weight (in_channels, out_channels/groups, k).
    Shape: (N, in_channels, L) -> (N, out_channels, L'),
    L' = (L - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.
    """

    dims = 1
    function = staticmethod(F.conv_transpose1d)
