"""Pixel shuffle: trading channels for resolution, as PyTorch's ``nn.PixelShuffle``.

A sub-pixel convolution (Shi et al. 2016) upsamples by computing ``r * r`` times the channels at
the low resolution and then moving each group of ``r * r`` channels into an ``r x r`` block of
pixels; :class:`PixelUnshuffle` is the exact inverse. Both only move values (a reshape, a
transpose and a reshape), so the gradient moves back the same way.
"""

from __future__ import annotations

from .module import Module


def _check_factor(layer: str, factor) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ValueError(f"{layer}: the factor must be a whole number >= 1, got {factor!r}")
    return factor


class PixelShuffle(Module):
    """(*, C r^2, H, W) -> (*, C, H r, W r): channel c r^2 + i r + j of the input goes to
    pixel (h r + i, w r + j) of output channel c.

    Example:
        >>> shuffle = cr.nn.PixelShuffle(2)
        >>> tuple(shuffle(cr.zeros(1, 8, 3, 3)).shape)
        (1, 2, 6, 6)
    """

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = _check_factor("PixelShuffle", upscale_factor)

    def config(self) -> dict:
        return {"upscale_factor": self.upscale_factor}

    def output_shape(self, input_shape: tuple) -> tuple:
        r = self.upscale_factor
        if len(input_shape) < 3 or input_shape[-3] % (r * r):
            raise ValueError(
                f"{self!r} got input of shape {tuple(input_shape)}: it needs (*, C, H, W) with C "
                f"a multiple of {r * r}"
            )
        *batch, c, h, w = input_shape
        return (*batch, c // (r * r), h * r, w * r)

    def forward(self, x):
        *batch, c, h, w = self.output_shape(tuple(x.shape))
        r, n = self.upscale_factor, len(batch)
        blocks = x.reshape(*batch, c, r, r, h // r, w // r)
        moved = blocks.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # (c, H, i, W, j)
        return moved.reshape(*batch, c, h, w)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        if len(shape) != 4:
            raise ValueError("ONNX's DepthToSpace takes (N, C, H, W) images only")
        return g.add("DepthToSpace", [x], path, blocksize=self.upscale_factor, mode="CRD")

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(*, C, H r, W r) -> (*, C r^2, H, W): the inverse of :class:`PixelShuffle`.

    Example:
        >>> unshuffle = cr.nn.PixelUnshuffle(2)
        >>> tuple(unshuffle(cr.zeros(1, 2, 6, 6)).shape)
        (1, 8, 3, 3)
    """

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = _check_factor("PixelUnshuffle", downscale_factor)

    def config(self) -> dict:
        return {"downscale_factor": self.downscale_factor}

    def output_shape(self, input_shape: tuple) -> tuple:
        r = self.downscale_factor
        if len(input_shape) < 3 or input_shape[-2] % r or input_shape[-1] % r:
            raise ValueError(
                f"{self!r} got input of shape {tuple(input_shape)}: it needs (*, C, H, W) with H "
                f"and W multiples of {r}"
            )
        *batch, c, h, w = input_shape
        return (*batch, c * r * r, h // r, w // r)

    def forward(self, x):
        *batch, c, h, w = x.shape
        self.output_shape(tuple(x.shape))
        r, n = self.downscale_factor, len(batch)
        blocks = x.reshape(*batch, c, h // r, r, w // r, r)
        moved = blocks.permute(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # (c, i, j, H, W)
        return moved.reshape(*batch, c * r * r, h // r, w // r)

    def to_onnx(self, g, x: str, shape: tuple, path: str) -> str:
        if len(shape) != 4:
            raise ValueError("exports (N, C, H, W) images only")
        (_, c, h, w), r = shape, self.downscale_factor
        blocks = g.add(
            "Reshape",
            [x, g.constant(path, "blocks", [0, c, h // r, r, w // r, r], dtype="int64")],
            path,
        )
        moved = g.add("Transpose", [blocks], path, perm=[0, 1, 3, 5, 2, 4])
        target = g.constant(path, "shape", [0, c * r * r, h // r, w // r], dtype="int64")
        return g.add("Reshape", [moved, target], path)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
