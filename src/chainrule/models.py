"""Ready-made architectures, built from a few numbers (used by the command line)."""

from __future__ import annotations

import math

from . import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "softplus": nn.Softplus,
}


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
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for size in hidden:
        if size < 1:
            raise ValueError(f"hidden layer sizes must be positive, got {size}")
        layers += [nn.Linear(width, size), activation(activation_name)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)
