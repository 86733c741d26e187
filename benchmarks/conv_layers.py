"""Forward and backward time of single convolution layers, chainrule vs PyTorch, interleaved.

The biggest convolution of each benchmark network, on the input it sees there: chainrule's
arrives channels-last (the previous layer's output), PyTorch's as a contiguous NCHW tensor; both
inputs require a gradient, as inside a network.
"""

from __future__ import annotations

import numpy as np

from .common import forward_backward_ms, median_columns

# name, batch, in channels, out channels, kernel, padding, input size
LAYERS = [
    ("MNIST example conv2 32->64 3x3, 26x26, b64", 64, 32, 64, 3, 0, 26),
    ("LeNet-5 conv2 6->16 5x5, 14x14, b128", 128, 6, 16, 5, 0, 14),
    ("CIFAR conv 32->64 3x3 pad 1, 32x32, b128", 128, 32, 64, 3, 1, 32),
    ("CIFAR conv 64->128 3x3 pad 1, 16x16, b128", 128, 64, 128, 3, 1, 16),
]


def _chainrule_layer(batch, c_in, c_out, k, pad, size, rng):
    import chainrule as cr

    x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32).transpose(0, 3, 1, 2)
    layer = cr.nn.Conv2d(c_in, c_out, k, padding=pad)
    x = cr.Tensor._make(x, True)
    out_shape = layer(x).shape
    grad = rng.standard_normal((out_shape[0], *out_shape[2:], out_shape[1]), dtype=np.float32)
    return layer, x, grad.transpose(0, 3, 1, 2)


def _torch_layer(batch, c_in, c_out, k, pad, size, rng):
    import torch

    layer = torch.nn.Conv2d(c_in, c_out, k, padding=pad)
    x = torch.from_numpy(rng.standard_normal((batch, c_in, size, size), dtype=np.float32))
    x.requires_grad_()
    grad = torch.from_numpy(rng.standard_normal(layer(x).shape, dtype=np.float32))
    return layer, x, grad


def measure(repeats: int = 5, calls: int = 5) -> list[dict]:
    """Per layer: median forward and backward milliseconds of each framework."""
    rows = []
    for name, *shape in LAYERS:
        rng = np.random.default_rng(0)
        layers = {"chainrule": _chainrule_layer(*shape, rng), "pytorch": _torch_layer(*shape, rng)}
        times = {fw: [] for fw in layers}
        for setup in layers.values():  # warm-up
            forward_backward_ms(*setup, 2)
        for _ in range(repeats):
            for fw, setup in layers.items():
                times[fw].append(forward_backward_ms(*setup, calls))
        rows.append({"layer": name, **median_columns(times)})
    return rows
