"""Parameters and modules: the containers that hold a network's weights and biases.

A :class:`Module` finds its parameters by walking its attributes (and lists, tuples and dicts of
them) in definition order, so a layer written as ``self.weight = ...; self.bias = ...`` lists its
weight before its bias, and nested layers get dotted names such as ``layers.0.weight``.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator

from ..backend import xp
from ..creation import as_tensor
from ..devices import check_device
from ..dtypes import as_dtype, get_default_dtype
from ..engine import no_grad
from ..tensor import Tensor, _init, parse_to

_call_observer: Callable | None = None  # set by summary() to see every module's output

LAYER_CLASSES: dict[str, type] = {}
"""Module classes a model file may name, by class name (see :mod:`chainrule.nn.describe`)."""

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A tensor that is a learnable weight of a module (``requires_grad=True`` by default).

    ``Parameter(t)`` shares ``t``'s storage, as PyTorch's; arrays keep their dtype.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            array = xp.empty((0,), dtype=get_default_dtype())
        elif isinstance(data, Tensor):
            array = data._data
        else:
            array = as_tensor(data)._data
        _init(self, array, requires_grad)

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

    def __init_subclass__(cls, **kwargs):
        # the layers of chainrule.nn can be named in a model file as soon as they are defined;
        # a class of yours is registered by @cr.nn.saveable
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("chainrule.nn.") and not cls.__name__.startswith("_"):
            LAYER_CLASSES[cls.__name__] = cls

    def __init__(self):
        self.training = True
        self._buffer_names: list[str] = []
        self._non_persistent: set[str] = set()

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
        flattened with dotted names, in definition order. Containers (Sequential, ModuleList, ...)
        override this one method to name their entries."""
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            yield from _flatten(name, value)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter) pairs, as PyTorch orders them: each module's own parameters
        (in the order they were assigned) before its children's; each parameter once."""
        seen = set()
        modules = self.named_modules(remove_duplicate=False) if recurse else [("", self)]
        for module_name, module in modules:
            path = f"{prefix}{module_name}." if module_name else prefix
            for name, p in module._own(path, Parameter):
                if not remove_duplicate or id(p) not in seen:
                    seen.add(id(p))
                    yield name, p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Non-learned state such as BatchNorm's running statistics (dotted name, tensor)."""
        for name in self._buffer_names:
            value = getattr(self, name)
            if value is not None:
                yield prefix + name, value
        if recurse:
            for child_name, child in self.named_children():
                yield from child.named_buffers(prefix + child_name + ".")

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, value in self._members():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, module) for this module ('') and every module inside it."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(
                memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def apply(self, fn: Callable) -> Module:
        """Call ``fn(module)`` on every sub-module, then on this one (e.g. to initialise weights)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def get_submodule(self, target: str) -> Module:
        """The module at dotted path ``target`` (``'features.0'``); '' is this module."""
        module = self
        for part in target.split(".") if target else []:
            children = dict(module.named_children())
            if part not in children:
                raise AttributeError(f"{type(module).__name__} has no submodule {part!r}")
            module = children[part]
        return module

    def _own(self, prefix, kind):
        for name, value in self._members():
            if isinstance(value, kind):
                yield prefix + name, value

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module")
        setattr(self, name, module)

    register_module = add_module

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {type(param).__name__} is not a Parameter")
        setattr(self, name, param)

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Keep ``value`` (a tensor or array) as state that is saved but not learned."""
        if name not in self._buffer_names:
            self._buffer_names.append(name)
        if not persistent:
            self._non_persistent.add(name)
        if value is not None and not isinstance(value, Tensor):
            value = as_tensor(value)
        object.__setattr__(self, name, value)

    # -- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Training mode: dropout drops, batch norm uses batch statistics."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode) expects a bool, got {mode!r}")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: dropout off, batch norm uses running statistics."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the parameters' gradients (set to None, or zero them in place)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad._data.fill(0)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many numbers the network learns (weights and biases)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- describing itself (Keras' get_config / compute_output_shape) ----------------------------
    def config(self) -> dict:
        """The constructor's arguments as JSON values: ``type(m).from_config(m.config())`` builds
        the same layer with fresh weights. A layer whose constructor takes arguments defines it
        (a module of yours too, to be saved with ``cr.save``; see :func:`chainrule.nn.saveable`)."""
        if type(self).__init__ is Module.__init__:
            return {}
        raise NotImplementedError(
            f"{type(self).__name__} does not describe its constructor's arguments: define "
            "config() returning them as a dict of JSON values"
        )

    @classmethod
    def from_config(cls, config: dict) -> Module:
        """Build the layer that :meth:`config` describes (a file's values are checked against
        the constructor's signature first: :func:`chainrule.nn.describe.checked_arguments`)."""
        return cls(**config)

    @classmethod
    def state_shapes(cls, config: dict) -> dict[str, tuple]:
        """The shapes of the parameters and buffers a layer built from ``config`` holds,
        computed without building it (a file's shapes are checked before anything is
        allocated). Layers without weights hold none."""
        return {}

    @classmethod
    def scratch_size(cls, config: dict, output_shape: tuple) -> int:
        """Numbers of working memory one example needs in a step beyond the layer's output
        (a convolution's unfolded patches); most layers need none."""
        return 0

    def output_shape(self, input_shape: tuple) -> tuple:
        """The shape of the output for an input of ``input_shape`` (batch axis first), worked
        out without computing anything. Raises ValueError saying why the layer cannot take
        that shape."""
        raise NotImplementedError(f"{type(self).__name__} does not say its output shape")

    # -- types and devices ---------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """``to(dtype)``, ``to(device)``: convert floating parameters and buffers in place."""
        dtype, _ = parse_to(args, kwargs)
        if dtype is not None:
            if dtype.kind != "f":
                raise TypeError(f"Module.to only accepts floating-point dtypes, got {dtype}")
            self._cast_floats(dtype)
        return self

    def cpu(self) -> Module:
        return self

    def cuda(self, device=None) -> Module:
        check_device("cuda")
        return self

    def double(self) -> Module:
        return self._cast_floats(xp.float64)

    def float(self) -> Module:
        return self._cast_floats(xp.float32)

    def half(self) -> Module:
        return self._cast_floats(xp.float16)

    def type(self, dst_type) -> Module:
        return self._cast_floats(as_dtype(dst_type))

    def _cast_floats(self, dtype) -> Module:
        """Convert every floating parameter and buffer to ``dtype``: each parameter keeps its
        identity (optimizers holding it see the change), as PyTorch's ``module.double()``."""
        for p in self.parameters():
            if p._data.dtype.kind == "f" and p._data.dtype != dtype:
                p._data = p._data.astype(dtype)
                if p.grad is not None:
                    p.grad = p.grad._data.astype(dtype)
        for m in self.modules():
            for name in m._buffer_names:
                value = getattr(m, name)
                if value is not None and value._data.dtype.kind == "f":
                    value._data = value._data.astype(dtype)
        return self

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """Every parameter and persistent buffer by dotted name, module by module as PyTorch
        orders them, as tensors that share the module's storage (copy them, e.g. with
        ``copy.deepcopy``, to keep a snapshot)."""
        state = OrderedDict() if destination is None else destination
        for name, value in self._state_entries():
            state[prefix + name] = value if keep_vars else value.detach()
        return state

    def _state_entries(self) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, tensor): each module's own parameters, then its persistent buffers."""
        for module_name, module in self.named_modules(remove_duplicate=False):
            path = f"{module_name}." if module_name else ""
            for name, p in module._own("", Parameter):
                yield path + name, p
            for name in module._buffer_names:
                value = getattr(module, name)
                if name not in module._non_persistent and value is not None:
                    yield path + name, value

    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False):
        """Copy values (tensors or arrays) into the parameters and buffers of the same names.

        With ``strict=True`` a missing or unexpected key is an error; a shape mismatch is always
        one. Returns ``(missing_keys, unexpected_keys)``.
        """
        targets = dict(self._state_entries())
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: missing keys {some_keys(missing)}, "
                f"unexpected keys {some_keys(unexpected)}"
            )
        for key, target in targets.items():
            if key not in state_dict:
                continue
            value = _state_array(state_dict[key])
            if value.shape != target._data.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: '{key}' has shape {value.shape} in "
                    f"the state dict but {target._data.shape} in the model"
                )
        with no_grad():
            for key, target in targets.items():
                if key in state_dict:
                    target.copy_(_state_array(state_dict[key]))
        return IncompatibleKeys(missing, unexpected)

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


def some_keys(keys: list, shown: int = 5) -> str:
    """``keys`` for a message: the first few, and how many more (a file may hold thousands)."""
    text = str([str(key)[:60] for key in keys[:shown]])
    return text + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _state_array(value):
    """The array of a state-dict entry: a chainrule tensor's own, or a foreign tensor's ``.data``
    (a PyTorch parameter refuses NumPy conversion while it requires grad), or an array."""
    if isinstance(value, Tensor):
        return value._data
    return xp.asarray(getattr(value, "data", value))


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
    """Layers applied one after the other: ``Sequential(Linear(784, 128), ReLU(), Linear(128, 10))``.

    Layers are named by position (``0.weight``) or, given an ``OrderedDict``, by their keys
    (``Sequential(OrderedDict(hidden=Linear(3, 4)))``: ``model.hidden``, ``hidden.weight``);
    ``append`` and ``add_module`` add a layer at the end, as in PyTorch.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], dict):
            named = list(layers[0].items())
        else:
            if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
                layers = tuple(layers[0])
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        self._layers: dict[str, Module] = {}
        for name, layer in named:
            self.add_module(name, layer)

    def add_module(self, name: str, module: Module) -> None:
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential: layer {name!r} is a {type(module).__name__}, not a Module"
            )
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError("Sequential: a layer name must be a non-empty string without '.'")
        self._layers[name] = module

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._layers)), module)
        return self

    @property
    def layers(self) -> list:
        return list(self._layers.values())

    def forward(self, x):
        for layer in self._layers.values():
            x = layer(x)
        return x

    def __getitem__(self, i):
        layers = list(self._layers.values())
        return Sequential(*layers[i]) if isinstance(i, slice) else layers[i]

    def __getattr__(self, name: str):
        layers = self.__dict__.get("_layers", {})
        if name in layers:
            return layers[name]
        raise AttributeError(f"{type(self).__name__} has no attribute or layer {name!r}")

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers.values())

    def _members(self):
        yield from self._layers.items()


def summary(model: Module, input_shape: tuple, dtype="float32") -> str:
    """A table of the model's leaf layers, their output shapes and parameter counts.

    Runs one forward pass on zeros of ``input_shape`` (batch axis included) without recording a
    graph.
    """
    global _call_observer
    rows = []
    names = {id(m): name for name, m in model.named_modules()}

    def observe(module, output):
        if not list(module.children()):
            count = sum(p.numel() for p in module.parameters())
            rows.append((names.get(id(module), "?"), repr(module), _output_shape(output), count))

    previous, _call_observer = _call_observer, observe
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(Tensor._make(xp.zeros(input_shape, dtype=dtype), False))
    finally:
        _call_observer = previous
        model.train(was_training)
    width = max([len(r[0]) + len(r[1]) for r in rows] + [20]) + 4
    shapes = max([len(str(r[2])) for r in rows] + [20]) + 2
    rule = "-" * (width + shapes + 12)
    lines = [f"{'layer':<{width}}{'output shape':<{shapes}}{'parameters':>12}", rule]
    for name, text, shape, count in rows:
        lines.append(f"{name + '  ' + text:<{width}}{str(shape):<{shapes}}{count:>12,}")
    lines.append(rule)
    total = model.num_parameters()
    lines.append(f"{'total':<{width}}{'':<{shapes}}{total:>12,}")
    return "\n".join(lines)


def _output_shape(output):
    """A layer's output shape for :func:`summary`; a tuple of outputs (an LSTM's (output, (h, c)))
    as the tuple of their shapes, anything else by its type's name."""
    if isinstance(output, Tensor):
        return tuple(output.shape)
    if isinstance(output, (tuple, list)):
        return tuple(_output_shape(item) for item in output)
    return type(output).__name__
