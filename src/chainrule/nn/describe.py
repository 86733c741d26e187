"""Models as JSON, built back without running code: the layer registry, :func:`describe` and
:func:`build`.

Every layer describes itself (``config``, ``from_config``, ``state_shapes``, ``output_shape`` on
:class:`~chainrule.nn.Module`); this module only walks a model with them. A layer class of
chainrule's own is registered when it is defined; a module class of yours is registered by
:func:`saveable` (or passed to ``cr.load(path, modules=[MyNet])``). A file can only name
registered classes, and their arguments are checked against the constructor's signature before
anything is built, so loading a file never runs code it brings along.

The description of a model::

    {"format": "chainrule.Sequential", "version": 1, "layers": [ENTRY, ...]}    (a Sequential)
    {"format": "chainrule.Module", "version": 2, "module": ENTRY}              (any other module)

    ENTRY = {"type": "Linear", "args": {"in_features": 784, ...}}
          | {"type": "Sequential", "layers": [ENTRY, ...]}                     (nested)

An argument that is itself a layer (a ``TransformerEncoder``'s ``encoder_layer``, its ``norm``)
is written as a ``{"type": ..., "args": ...}`` entry inside ``args``, checked the same way
(:func:`layer_entry`, :func:`checked_entry`, :func:`built`, :func:`entry_shapes`).
"""

from __future__ import annotations

import inspect
import math

from .module import LAYER_CLASSES as REGISTERED
from .module import Module, Sequential

NOT_ARGUMENTS = ("device", "dtype")  # where a layer is made, not what it is
MAX_DIMENSION = 1 << 24
MAX_NESTING = 4  # layers given as arguments of layers (a Transformer's encoder's layer: 2)
MAX_TENSORS = 1 << 16  # parameters and buffers a file may declare (num_layers is a number)


def register(cls: type) -> type:
    """Make ``cls`` nameable in a model file (refusing a second class of the same name)."""
    known = REGISTERED.get(cls.__name__)
    if known is not None and known is not cls and known.__module__.startswith("chainrule."):
        raise ValueError(
            f"cannot register {cls.__module__}.{cls.__name__}: chainrule's own "
            f"{cls.__name__} has that name; rename your class"
        )
    REGISTERED[cls.__name__] = cls
    return cls


def saveable(cls: type) -> type:
    """Class decorator: modules of this class can be saved with ``cr.save`` and loaded with
    ``cr.load`` by their :meth:`~chainrule.nn.Module.config` (the class must define it).

    Example:
        >>> @cr.nn.saveable
        ... class TwoLayer(cr.nn.Module):
        ...     def __init__(self, hidden: int = 8):
        ...         super().__init__()
        ...         self.hidden = hidden
        ...         self.a, self.b = cr.nn.Linear(4, hidden), cr.nn.Linear(hidden, 2)
        ...     def config(self):
        ...         return {"hidden": self.hidden}
        ...     def forward(self, x):
        ...         return self.b(self.a(x).relu())
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise TypeError(f"saveable: {cls!r} is not a Module class")
    if cls.config is Module.config and cls.__init__ is not Module.__init__:
        raise TypeError(f"saveable: {cls.__name__} must define config() to be saved")
    return register(cls)


def checked_arguments(cls: type, config, _depth: int = 0) -> dict:
    """``config`` checked against ``cls``'s constructor: only arguments it takes (never device or
    dtype), every argument without a default present, and each value of the type of its default
    (a bool for a bool, a finite number for a number, a string for a string). Numbers must be
    finite and whole numbers at most 2^24, so no file can ask for an absurd allocation here."""
    name = cls.__name__
    if not isinstance(config, dict):
        raise ValueError(f"{name}: arguments must be an object, got {type(config).__name__}")
    signature = inspect.signature(cls.__init__)
    takes = {
        key: p
        for key, p in list(signature.parameters.items())[1:]
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and key not in NOT_ARGUMENTS
        and not key.startswith("_")
    }
    for key, value in config.items():
        if key not in takes:
            raise ValueError(
                f"{name}: unknown argument {str(key)[:40]!r} (it takes {', '.join(takes) or 'none'})"
            )
        if isinstance(value, dict):  # a layer given as an argument
            checked_entry(value, f"{name}: argument {key}", _depth + 1)
        else:
            _check_value(name, key, value, takes[key].default)
    missing = [k for k, p in takes.items() if p.default is p.empty and k not in config]
    if missing:
        raise ValueError(f"{name}: missing argument {missing[0]!r}")
    return config


def _check_value(name: str, key: str, value, default) -> None:
    def refuse(why: str):
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
        raise ValueError(f"{name}: argument {key}={shown} {why}")

    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int) and not -(1 << 8) <= item <= MAX_DIMENSION:
            refuse(f"is out of range (at most {MAX_DIMENSION})")
        if isinstance(item, float) and not math.isfinite(item):
            refuse("is not a finite number")
        if not isinstance(item, (int, float)):
            refuse("is not a number, string, bool or list of them")
    if isinstance(default, bool) and not isinstance(value, bool):
        refuse("must be true or false")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        # a pair for a stride of 1, a word for some sizes (padding='same'): the constructor
        # checks those further
        numbers = value if isinstance(value, list) else [value]
        if any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in numbers):
            refuse("must be a number or a list of numbers")
    if isinstance(default, str) and not isinstance(value, str):
        refuse("must be a string")


# -- layers as arguments of layers -------------------------------------------------------------


def layer_entry(module: Module, where: str) -> dict:
    """``module`` as an entry that a layer's :meth:`~chainrule.nn.Module.config` can hold."""
    return _entry(module, where)


def checked_entry(entry, where: str, depth: int = 1) -> type:
    """The registered class a layer given as an argument names, its own arguments checked."""
    if depth > MAX_NESTING:
        raise ValueError(f"{where}: layers nested more than {MAX_NESTING} deep")
    if not isinstance(entry, dict) or set(entry) - {"type", "args"}:
        raise ValueError(f"{where}: expected a layer {{'type': ..., 'args': {{...}}}}")
    kind = entry.get("type")
    cls = REGISTERED.get(kind) if isinstance(kind, str) else None
    if cls is None or cls is Sequential:
        raise ValueError(f"{where}: unknown layer type {str(kind)[:60]!r}")
    checked_arguments(cls, entry.get("args", {}), depth)
    return cls


def built(entry: dict) -> Module:
    """The layer a (checked) entry describes, with fresh weights."""
    return REGISTERED[entry["type"]].from_config(entry.get("args", {}))


def entry_shapes(entry: dict, prefix: str, copies: int | None = None) -> dict:
    """The state shapes of the layer an entry describes, named ``prefix.<name>``, or with
    ``copies`` those of that many copies, ``prefix.0.<name>``, ``prefix.1.<name>``, ..."""
    shapes = REGISTERED[entry["type"]].state_shapes(entry.get("args", {}))
    if copies is None:
        return {f"{prefix}.{k}": v for k, v in shapes.items()}
    if copies * len(shapes) > MAX_TENSORS:
        raise ValueError(f"{copies} copies of {entry['type']} hold more than {MAX_TENSORS} tensors")
    return {f"{prefix}.{i}.{k}": v for i in range(copies) for k, v in shapes.items()}


# -- a model as JSON -------------------------------------------------------------------------------


def describe(model: Module) -> dict:
    """The JSON description of ``model`` (see the module docstring)."""
    if type(model) is Sequential:
        return {"format": "chainrule.Sequential", "version": 1, "layers": _entries(model, "")}
    if not _known(model):  # torch.save(model, f) of a class of the user's own
        raise TypeError(
            f"cr.save: cannot save a whole {type(model).__name__} without pickle: mark its class "
            "@cr.nn.saveable and define config() (its constructor's arguments), or save "
            "model.state_dict() and rebuild the model in code to load it"
        )
    return {"format": "chainrule.Module", "version": 2, "module": _entry(model, "model")}


def _known(module: Module) -> bool:
    """``module``'s class is the registered one of its name (a file can name it)."""
    return REGISTERED.get(type(module).__name__) is type(module)


def _entries(model: Sequential, prefix: str) -> list:
    return [_entry(layer, f"{prefix}{i}") for i, layer in enumerate(model)]


def _entry(module: Module, where: str) -> dict:
    if type(module) is Sequential:
        return {"type": "Sequential", "layers": _entries(module, f"{where}.")}
    name = type(module).__name__
    if not _known(module):
        raise TypeError(
            f"cr.save: layer {where} ({name}) is not a known layer: mark its class "
            "@cr.nn.saveable and define config(), or save model.state_dict() and rebuild the "
            "model in code to load it"
        )
    return {"type": name, "args": module.config()}


def build(
    description: dict, weight_shapes: dict | None = None, modules=(), source: str = "model"
) -> Module:
    """The model :func:`describe` described, its parameter shapes checked against
    ``weight_shapes`` (name -> shape) *before* building, so a hostile file cannot make us
    allocate. ``modules``: more classes the description may name (your own, not registered).
    Raises ValueError naming the layer and what is wrong."""
    known = {**REGISTERED, **{cls.__name__: cls for cls in modules}}
    if not isinstance(description, dict):
        raise ValueError(f"{source}: not a chainrule model description")
    form = description.get("format")
    if form == "chainrule.Sequential":
        entry = {"type": "Sequential", "layers": description.get("layers")}
    elif form == "chainrule.Module":
        entry = description.get("module")
    else:
        raise ValueError(f"{source}: not a chainrule model description")
    planned = _plan(entry, "", known, source)
    if weight_shapes is not None:
        for key, shape in planned.shapes.items():
            if tuple(weight_shapes.get(key, ("missing",))) != tuple(shape):
                raise ValueError(
                    f"{source}: layer {key.rsplit('.', 1)[0]} needs '{key}' of shape "
                    f"{tuple(shape)}, the weight file has {weight_shapes.get(key, 'none')}"
                )
    try:
        model = planned.make()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: cannot build the model ({exc})") from None
    if weight_shapes is not None:
        made = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        unexpected = sorted(set(weight_shapes) - set(made))
        if unexpected:
            raise ValueError(
                f"{source}: the weight file has tensors no layer uses: {', '.join(unexpected[:5])}"
                + (f" (and {len(unexpected) - 5} more)" if len(unexpected) > 5 else "")
            )
        for key, shape in made.items():
            if tuple(weight_shapes.get(key, ("missing",))) != shape:
                raise ValueError(
                    f"{source}: the model needs '{key}' of shape {shape}, the weight file has "
                    f"{weight_shapes.get(key, 'none')}"
                )
    return model


class _Planned:
    """A checked entry: what it will build and the parameter shapes it declares (dotted)."""

    def __init__(self, make, shapes: dict):
        self.make, self.shapes = make, shapes


def _plan(entry, prefix: str, known: dict, source: str) -> _Planned:
    where = f"{source}: layer {prefix.rstrip('.') or 'model'}"
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
    kind = entry.get("type")
    if kind == "Sequential":
        layers = entry.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"{where}: 'layers' must be a list")
        parts = [_plan(layer, f"{prefix}{i}.", known, source) for i, layer in enumerate(layers)]
        shapes = {k: v for part in parts for k, v in part.shapes.items()}
        return _Planned(lambda: Sequential(*(part.make() for part in parts)), shapes)
    if not isinstance(kind, str) or kind not in known:
        raise ValueError(f"{where}: unknown layer type {str(kind)[:60]!r}")
    cls, args = known[kind], entry.get("args", {})
    try:
        checked_arguments(cls, args)
        shapes = cls.state_shapes(args)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({kind}): bad arguments ({exc})") from None
    return _Planned(lambda: cls.from_config(args), {f"{prefix}{k}": v for k, v in shapes.items()})
