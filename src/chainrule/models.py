"""Ready-made architectures, built from a few numbers or a short spec (used by the command line).

A spec is a comma-separated list of layers, e.g. LeNet-5 for 28x28 digits:
``conv6k5p2,pool2,conv16k5,pool2,fc120,fc84``:

* ``conv<C>[k<K>][p<P>|psame][s<S>]``: a Conv2d with C filters of KxK (default 3), padding, stride;
* ``pool<K>`` / ``avgpool<K>``: max or average pooling over KxK windows;
* ``bn``: batch normalisation; ``drop<P>``: dropout of P percent;
* ``fc<N>``: a fully connected layer of N neurons.

Each conv and fc layer is followed by the activation; the output layer is added at the end.
"""

from __future__ import annotations

import math
import re

from . import nn
from .ops.conv import output_size

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}
LENET5 = "conv6k5p2,pool2,conv16k5,pool2,fc120,fc84"
_CONV = re.compile(r"conv(\d+)(?:k(\d+))?(?:p(\d+|same))?(?:s(\d+))?$")


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}"
        ) from None


def mlp(
    input_shape,
    hidden=(256, 128),
    outputs: int = 10,
    activation_name: str = "relu",
    dropout: float = 0.0,
) -> nn.Sequential:
    """Flatten, then for each hidden size a Linear layer and an activation (and dropout), then a
    Linear output layer: ``mlp((28, 28), (256, 128), 10)`` is 784-256-128-10."""
    spec = ",".join(
        f"fc{size}" + (f",drop{round(dropout * 100)}" if dropout else "") for size in hidden
    )
    return from_spec(spec, input_shape, outputs, activation_name)


def from_spec(spec: str, input_shape, outputs: int, activation_name: str = "relu") -> nn.Sequential:
    """Build a network from a spec (see the module docstring) for inputs of ``input_shape``
    ((H, W) or (C, H, W) images, or (features,))."""
    shape = tuple(input_shape)
    layers: list[nn.Module] = []
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    for token in tokens:
        conv = _CONV.match(token)
        if conv or token.startswith(("pool", "avgpool")) or (token == "bn" and len(shape) == 3):
            if len(shape) == 2:  # add the channel axis of a grayscale image
                layers.append(nn.Unflatten(1, (1, shape[0])))
                shape = (1, *shape)
            if len(shape) != 3:
                raise ValueError(
                    f"model spec: '{token}' needs image inputs, the input here is {shape}"
                )
        if conv:
            channels, k = int(conv.group(1)), int(conv.group(2) or 3)
            pad, stride = conv.group(3) or "0", int(conv.group(4) or 1)
            padding = "same" if pad == "same" else int(pad)
            layers += [
                nn.Conv2d(shape[0], channels, k, stride=stride, padding=padding),
                activation(activation_name),
            ]
            if pad == "same":
                shape = (channels, shape[1], shape[2])
            else:
                shape = (channels, *(output_size(n, k, stride, 2 * padding) for n in shape[1:]))
        elif token.startswith(("pool", "avgpool")):
            k = _number(token, token.rstrip("0123456789"))
            layers.append(nn.MaxPool2d(k) if token.startswith("pool") else nn.AvgPool2d(k))
            shape = (shape[0], *(output_size(n, k, k, 0) for n in shape[1:]))
        elif token == "bn":
            layers.append(nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0]))
        elif token.startswith("drop"):
            layers.append(nn.Dropout(_number(token, "drop") / 100))
        elif token.startswith("fc"):
            if len(shape) != 1:
                layers.append(nn.Flatten())
                shape = (math.prod(shape),)
            size = _number(token, "fc")
            layers += [nn.Linear(shape[0], size), activation(activation_name)]
            shape = (size,)
        else:
            raise ValueError(f"model spec: unknown layer '{token}' (see chainrule.models)")
        if min(shape) < 1:
            raise ValueError(f"model spec: after '{token}' the feature map {shape} is empty")
    if len(shape) != 1:
        layers.append(nn.Flatten())
        shape = (math.prod(shape),)
    return nn.Sequential(*layers, nn.Linear(shape[0], outputs))


def _number(token: str, prefix: str) -> int:
    try:
        value = int(token[len(prefix) :])
    except ValueError:
        raise ValueError(f"model spec: '{token}' needs a number after '{prefix}'") from None
    if value < 1:
        raise ValueError(f"model spec: '{token}' needs a positive number")
    return value
