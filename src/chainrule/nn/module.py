"""Parameters and modules: the containers that hold a network's weights and biases.

A :class:`Module` finds its parameters by walking its attributes (and lists, tuples and dicts of
them) in definition order, so a layer written as ``self.weight = ...; self.bias = ...`` lists its
weight before its bias, and nested layers get dotted names such as ``layers.0.weight``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator

from ..backend import xp
from ..tensor import Tensor

_call_observer: Callable | None = None  # set by summary() to see every module's output


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module (always ``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and networks.

    Subclasses set parameters and sub-modules as attributes in ``__init__`` (after calling
    ``super().__init__()``) and compute the output in ``forward``.

    Example:
        >>> class TwoLayer(cr.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.hidden = cr.nn.Linear(4, 8)
        ...         self.out = cr.nn.Linear(8, 2)
        ...     def forward(self, x):
        ...         return self.out(self.hidden(x).relu())
    """

    def __init__(self):
        self.training = True
        self._buffer_names: list[str] = []

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        if _call_observer is not None:
            _call_observer(self, output)
        return output

    # -- walking the tree ----------------------------------------------------------------------
    def _members(self) -> Iterator[tuple[str, object]]:
        """(name, value) for attributes that may hold parameters or modules, nested containers
        flattened with dotted names, in definition order."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            yield from _flatten(name, value)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, each parameter once, in definition order."""
        seen = set()
        for name, p in self._named(prefix, Parameter):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, object]]:
        """Non-learned state such as BatchNorm's running statistics (dotted name, array)."""
        for name in self._buffer_names:
            yield prefix + name, getattr(self, name)
        for child_name, child in self.named_children():
            yield from child.named_buffers(prefix + child_name + ".")

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in self._members():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix.rstrip("."), self
        for name, child in self.named_children():
            yield from child.named_modules(prefix + name + ".")

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def _named(self, prefix, kind):
        for name, value in self._members():
            if isinstance(value, kind):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._named(prefix + name + ".", kind)

    def register_buffer(self, name: str, value) -> None:
        """Keep ``value`` (an array) as state that is saved but not learned."""
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        object.__setattr__(self, name, value)

    # -- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode: dropout drops, batch norm uses batch statistics."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout off, batch norm uses running statistics."""
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the network learns (weights and biases)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    def astype(self, dtype) -> Module:
        """Convert every parameter and floating buffer to ``dtype`` in place (e.g. float64)."""
        dtype = xp.dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        for m in self.modules():
            for name in m._buffer_names:
                value = getattr(m, name)
                if value.dtype.kind == "f":
                    object.__setattr__(m, name, value.astype(dtype))
        return self

    def double(self) -> Module:
        return self.astype(xp.float64)

    def float(self) -> Module:
        return self.astype(xp.float32)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict:
        """Every parameter and buffer by dotted name, as NumPy array copies."""
        state = OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())
        for name, value in self.named_buffers():
            state[name] = xp.array(value, copy=True)
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> list[str]:
        """Copy arrays into the parameters and buffers with the same names.

        With ``strict=True`` a missing or unexpected key is an error; a shape mismatch is always
        one. Returns the list of keys that were missing (non-strict mode).
        """
        targets = {name: (p, None) for name, p in self.named_parameters()}
        for module_name, module in self.named_modules():
            for name in module._buffer_names:
                full = f"{module_name}.{name}" if module_name else name
                targets[full] = (module, name)
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        for key, (owner, buffer_name) in targets.items():
            if key not in state:
                continue
            value = xp.asarray(getattr(state[key], "data", state[key]))
            current = owner.data if buffer_name is None else getattr(owner, buffer_name)
            if value.shape != current.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{key}' has shape {value.shape} in "
                    f"the state dict but {current.shape} in the model"
                )
            if buffer_name is None:
                owner.data[...] = value  # in place: an optimizer may hold views of it
            else:
                object.__setattr__(owner, buffer_name, value.astype(current.dtype, copy=True))
        return missing

    # -- display -------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)


def _flatten(name: str, value) -> Iterator[tuple[str, object]]:
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flatten(f"{name}.{i}", item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(f"{name}.{key}", item)
    elif isinstance(value, (Parameter, Module)):
        yield name, value


class Sequential(Module):
    """Layers applied one after the other: ``Sequential(Linear(784, 128), ReLU(), Linear(128, 10))``."""

    def __init__(self, *layers: Module):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def _named(self, prefix, kind):
        for i, layer in enumerate(self.layers):
            yield from layer._named(f"{prefix}{i}.", kind)


def summary(model: Module, input_shape: tuple, dtype="float32") -> str:
    """A table of the model's leaf layers, their output shapes and parameter counts.

    Runs one forward pass on zeros of ``input_shape`` (batch axis included) without recording a
    graph.
    """
    from .. import autograd

    global _call_observer
    rows = []
    names = {id(m): name for name, m in model.named_modules()}

    def observe(module, output):
        if not list(module.children()):
            count = sum(p.size for p in module.parameters())
            rows.append((names.get(id(module), "?"), repr(module), tuple(output.shape), count))

    previous, _call_observer = _call_observer, observe
    was_training = model.training
    try:
        model.eval()
        with autograd.no_grad():
            model(Tensor(xp.zeros(input_shape, dtype=dtype)))
    finally:
        _call_observer = previous
        model.train(was_training)
    width = max([len(r[0]) + len(r[1]) for r in rows] + [20]) + 4
    lines = [f"{'layer':<{width}}{'output shape':<22}{'parameters':>12}", "-" * (width + 34)]
    for name, text, shape, count in rows:
        lines.append(f"{name + '  ' + text:<{width}}{str(shape):<22}{count:>12,}")
    lines.append("-" * (width + 34))
    total = model.num_parameters()
    lines.append(f"{'total':<{width}}{'':<22}{total:>12,}")
    return "\n".join(lines)
