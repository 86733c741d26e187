"""Ready-made architectures, built from a few numbers or a short spec (used by the command line).

A spec is a comma-separated list of layers, e.g. LeNet-5 for 28x28 digits:
``conv6k5p2,pool2,conv16k5,pool2,fc120,fc84``:

* ``conv<C>[k<K>][p<P>|psame][s<S>]``: a Conv2d with C filters of KxK (default 3), padding, stride;
* ``pool<K>`` / ``avgpool<K>``: max or average pooling over KxK windows;
* ``bn``: batch normalisation; ``drop<P>``: dropout of P percent;
* ``fc<N>``: a fully connected layer of N neurons.

Each conv and fc layer is followed by the activation; the output layer is added at the end.

Size checks: :func:`plan` lays a spec out (layer classes, arguments, output shapes) without
building anything, and :func:`check_memory` compares what it would take (weights, gradients,
optimizer state, activations of a batch) with the memory free on this machine, so
``fc100000,fc100000`` gets a clear error instead of an allocation that takes the machine down.
:func:`footprint_of_model` makes the same walk through a model loaded from a file, refusing
layers that do not fit together or outputs (a 2^24-wide pooling grid) no machine could hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import nn
from .backend import available_memory
from .ops.conv import output_size

ACTIVATIONS = {
    cls.activation_name: cls
    for cls in nn.module.LAYER_CLASSES.values()
    if getattr(cls, "activation_name", None)
}
"""Activation layers by name (``relu``, ``leaky_relu``, ...): each layer class names itself."""
LENET5 = "conv6k5p2,pool2,conv16k5,pool2,fc120,fc84"
MAX_LAYERS = 256
_CONV = re.compile(r"conv(\d+)(?:k(\d+))?(?:p(\d+|same))?(?:s(\d+))?$")


def activation(name: str) -> nn.Module:
    return _activation_class(name)()


def _activation_class(name: str) -> type:
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
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
    return from_spec(mlp_spec(hidden, dropout), input_shape, outputs, activation_name)


def mlp_spec(hidden=(256, 128), dropout: float = 0.0) -> str:
    """The spec of :func:`mlp`: ``fc256,fc128`` (with ``drop<P>`` after each if dropout)."""
    return ",".join(
        f"fc{size}" + (f",drop{round(dropout * 100)}" if dropout else "") for size in hidden
    )


def from_spec(spec: str, input_shape, outputs: int, activation_name: str = "relu") -> nn.Sequential:
    """Build a network from a spec (see the module docstring) for inputs of ``input_shape``
    ((H, W) or (C, H, W) images, or (features,))."""
    layers = plan(spec, input_shape, outputs, activation_name)
    return nn.Sequential(*(cls(**args) for cls, args, _ in layers))


def plan(
    spec: str, input_shape, outputs: int, activation_name: str = "relu"
) -> list[tuple[type, dict, tuple]]:
    """The layers of a spec as ``(class, arguments, output shape)``, without building them."""
    act, shape = _activation_class(activation_name), tuple(input_shape)
    layers: list[tuple[type, dict, tuple]] = []
    tokens = [t.strip() for t in spec.split(",") if t.strip()]
    if len(tokens) > MAX_LAYERS:
        raise ValueError(f"model spec: {len(tokens)} layers, more than {MAX_LAYERS}")
    for token in tokens:
        conv = _CONV.match(token)
        if conv or token.startswith(("pool", "avgpool")) or (token == "bn" and len(shape) == 3):
            if len(shape) == 2:  # add the channel axis of a grayscale image
                shape = (1, *shape)
                layers.append((nn.Unflatten, {"dim": 1, "unflattened_size": shape[:2]}, shape))
            if len(shape) != 3:
                raise ValueError(
                    f"model spec: '{token}' needs image inputs, the input here is {shape}"
                )
        if conv:
            channels, k = int(conv.group(1)), int(conv.group(2) or 3)
            pad, stride = conv.group(3) or "0", int(conv.group(4) or 1)
            if min(channels, k, stride) < 1:
                raise ValueError(f"model spec: '{token}' needs filters, kernel and stride >= 1")
            padding = "same" if pad == "same" else int(pad)
            args = {"in_channels": shape[0], "out_channels": channels, "kernel_size": k}
            args |= {"stride": stride, "padding": padding}
            if pad == "same":
                shape = (channels, shape[1], shape[2])
            else:
                shape = (channels, *(output_size(n, k, stride, 2 * padding) for n in shape[1:]))
            layers += [(nn.Conv2d, args, shape), (act, {}, shape)]
        elif token.startswith(("pool", "avgpool")):
            k = _number(token, token.rstrip("0123456789"))
            shape = (shape[0], *(output_size(n, k, k, 0) for n in shape[1:]))
            pool = nn.MaxPool2d if token.startswith("pool") else nn.AvgPool2d
            layers.append((pool, {"kernel_size": k}, shape))
        elif token == "bn":
            norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
            layers.append((norm, {"num_features": shape[0]}, shape))
        elif token.startswith("drop"):
            layers.append((nn.Dropout, {"p": _number(token, "drop") / 100}, shape))
        elif token.startswith("fc"):
            if len(shape) != 1:
                shape = (math.prod(shape),)
                layers.append((nn.Flatten, {}, shape))
            size = _number(token, "fc")
            layers.append((nn.Linear, {"in_features": shape[0], "out_features": size}, (size,)))
            layers.append((act, {}, (size,)))
            shape = (size,)
        else:
            raise ValueError(f"model spec: unknown layer '{token}' (see chainrule.models)")
        if min(shape) < 1:
            raise ValueError(f"model spec: after '{token}' the feature map {shape} is empty")
    if len(shape) != 1:
        shape = (math.prod(shape),)
        layers.append((nn.Flatten, {}, shape))
    layers.append((nn.Linear, {"in_features": shape[0], "out_features": outputs}, (outputs,)))
    return layers


def _number(token: str, prefix: str) -> int:
    try:
        value = int(token[len(prefix) :])
    except ValueError:
        raise ValueError(f"model spec: '{token}' needs a number after '{prefix}'") from None
    if value < 1:
        raise ValueError(f"model spec: '{token}' needs a positive number")
    return value


# -- size checks ---------------------------------------------------------------------------------


@dataclass
class Footprint:
    """What a network holds, in numbers: ``parameters`` (weights and buffers), ``activations``
    (every layer's output, per example) and ``scratch`` (the largest convolution unfold, per
    example)."""

    parameters: int
    activations: int
    scratch: int = 0

    def bytes(self, batch_size: int, training: bool = True, itemsize: int = 4) -> int:
        """About the memory a step needs. Training: weights, gradients and up to three optimizer
        buffers (5 P), each activation saved for backward plus its gradient and a temporary
        (3 A per example) and the unfold with its gradient (2 S). Inference: P + batch (A + S)."""
        if training:
            per_example = 3 * self.activations + 2 * self.scratch
            return itemsize * (5 * self.parameters + batch_size * per_example)
        return itemsize * (self.parameters + batch_size * (self.activations + self.scratch))


def footprint_of_plan(layers: list[tuple[type, dict, tuple]], input_shape) -> Footprint:
    """The footprint of :func:`plan`'s layers, computed from their arguments (each layer class
    says the shapes of its weights and the scratch memory it needs)."""
    shape, params, activations, scratch = tuple(input_shape), 0, 0, 0
    for cls, args, out in layers:
        params += sum(math.prod(s) for s in cls.state_shapes(args).values())
        scratch = max(scratch, cls.scratch_size(args, (1, *out)))
        activations += math.prod(out)
        shape = out
    return Footprint(params, activations + math.prod(shape), scratch)


def footprint_of_model(model: nn.Sequential, input_shape) -> Footprint:
    """The footprint of a built Sequential model for inputs of ``input_shape`` (no batch axis).

    Raises ValueError naming the layer if a layer does not fit the shape it receives; a layer
    that does not say its output shape ends the walk (then only the weights count after it).
    """
    shape = tuple(input_shape)
    params = sum(math.prod(getattr(v, "shape", ())) for v in model.state_dict().values())
    activations, scratch = math.prod(shape), 0
    for i, layer in enumerate(model):
        try:
            out = output_shape(layer, shape)
        except ValueError as exc:
            raise ValueError(f"layer {i} ({layer!r}) gets inputs of shape {shape}: {exc}") from None
        if out is None:
            break
        scratch = max(scratch, type(layer).scratch_size(layer.config(), (1, *out)))
        activations += math.prod(out)
        shape = out
    return Footprint(params, activations, scratch)


def output_shape(layer: nn.Module, shape: tuple) -> tuple | None:
    """The output shape of ``layer`` for one example of ``shape`` (no batch axis; None: a layer
    that does not say). Raises ValueError when the layer cannot take that shape."""
    try:
        out = layer.output_shape((1, *shape))
    except NotImplementedError:
        return None
    if not out or out[0] != 1:
        raise ValueError("it would merge or split the batch axis")
    return tuple(out[1:])


def check_memory(footprint: Footprint, batch_size: int, training: bool = True) -> None:
    """Raise ValueError if a step would need more memory than is free (see :class:`Footprint`)."""
    needed = footprint.bytes(batch_size, training)
    free = available_memory()
    if free is not None and needed > free:
        what = "training" if training else "running"
        raise ValueError(
            f"{what} it needs about {_gib(needed)} (for batches of {batch_size}: "
            f"{footprint.parameters:,} weights, {footprint.activations:,} activations per "
            f"example), more than the {_gib(free)} free on this machine"
        )


def fitting_batch(footprint: Footprint, wanted: int, training: bool = False) -> int:
    """The largest batch up to ``wanted`` whose step fits in the free memory (at least 1)."""
    free = available_memory()
    if free is None or footprint.bytes(wanted, training) <= free:
        return wanted
    per_example = footprint.bytes(1, training) - footprint.bytes(0, training)
    return max(1, min(wanted, (free - footprint.bytes(0, training)) // max(per_example, 1)))


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"
