"""Containers of layers and parameters, as PyTorch's: ``ModuleList``, ``ModuleDict``,
``ParameterList``, ``ParameterDict``.

A container is a module whose entries are named by position (``0``, ``1``, ...) or by key, so that
``self.layers = nn.ModuleList([...])`` gives the state-dict names ``layers.0.weight``, ...
It only holds things: it has no ``forward`` of its own (call its entries in yours).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ..tensor import Tensor
from .module import Module, Parameter


class _Container(Module):
    """What the four containers share: the module walker sees their entries, named."""

    def _members(self) -> Iterator[tuple[str, object]]:
        raise NotImplementedError


def _module(owner: str, value) -> Module | None:
    if value is not None and not isinstance(value, Module):
        raise TypeError(f"{owner}: {type(value).__name__} is not a Module subclass")
    return value


def _parameter(value):
    """Tensors become parameters (as in PyTorch); parameters and anything else stay as they are."""
    if isinstance(value, Tensor) and not isinstance(value, Parameter):
        return Parameter(value)
    return value


def _key(owner: Module, key, kind: str) -> str:
    """A valid entry name: a non-empty string without dots that is not an attribute already."""
    if not isinstance(key, str):
        raise TypeError(f"{type(owner).__name__}: {kind} name should be a string, got {key!r}")
    if "." in key or not key:
        raise KeyError(
            f"{type(owner).__name__}: {kind} name must be non-empty without '.', got {key!r}"
        )
    if key not in owner._items and hasattr(owner, key):
        raise KeyError(f"{type(owner).__name__}: attribute '{key}' already exists")
    return key


class _ListContainer(_Container):
    """A list of entries named by position; indices are renumbered after insert and delete."""

    def __init__(self, values: Iterable | None = None):
        super().__init__()
        self._items: list = []
        if values is not None:
            self.extend(values)

    def _convert(self, value):
        raise NotImplementedError

    def _members(self):
        return ((str(i), v) for i, v in enumerate(self._items))

    def _index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(
                f"{type(self).__name__}: index {index} is out of range for {len(self)}"
            )
        return index % len(self)

    def append(self, value):
        """Add ``value`` at the end; returns the container."""
        self._items.append(self._convert(value))
        return self

    def extend(self, values: Iterable):
        """Add every item of ``values`` at the end; returns the container."""
        if not isinstance(values, Iterable):
            raise TypeError(
                f"{type(self).__name__}.extend needs an iterable, got {type(values).__name__}"
            )
        for value in values:
            self.append(value)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(self._items[index])
        return self._items[self._index(index)]

    def __setitem__(self, index: int, value) -> None:
        self._items[self._index(index)] = self._convert(value)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator:
        return iter(self._items)

    def __iadd__(self, values: Iterable):
        return self.extend(values)

    def __add__(self, other: Iterable):
        return type(self)([*self._items, *other])


class ModuleList(_ListContainer):
    """Layers in a list, each registered, so that their parameters are the model's.

    Example:
        >>> class Deep(cr.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.layers = cr.nn.ModuleList([cr.nn.Linear(8, 8) for _ in range(3)])
        ...     def forward(self, x):
        ...         for layer in self.layers:
        ...             x = layer(x).relu()
        ...         return x
    """

    def _convert(self, value):
        return _module(type(self).__name__, value)

    def insert(self, index: int, module: Module) -> None:
        """Put ``module`` before position ``index``."""
        self._items.insert(index, self._convert(module))

    def pop(self, index: int = -1) -> Module:
        return self._items.pop(self._index(index))

    def __delitem__(self, index) -> None:
        if isinstance(index, slice):
            del self._items[index]
        else:
            del self._items[self._index(index)]


class ParameterList(_ListContainer):
    """Parameters in a list (tensors put in become parameters): ``ParameterList([w1, w2])``."""

    def _convert(self, value):
        return _parameter(value)

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): {_describe(p)}" for i, p in enumerate(self._items))

    def __repr__(self) -> str:
        return _repr_lines(self)


class _DictContainer(_Container):
    """Entries by name, in insertion order; ``d["name"]`` and ``d.name`` both give one."""

    _kind = "entry"

    def __init__(self, entries: Mapping | Iterable | None = None):
        super().__init__()
        self._items: dict = {}
        if entries is not None:
            self.update(entries)

    def _convert(self, value):
        raise NotImplementedError

    def _members(self):
        return iter(self._items.items())

    def __getitem__(self, key: str):
        return self._items[key]

    def __setitem__(self, key: str, value) -> None:
        self._items[_key(self, key, self._kind)] = self._convert(value)

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __getattr__(self, name: str):
        items = self.__dict__.get("_items", {})
        if name in items:
            return items[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items

    def keys(self):
        return self._items.keys()

    def items(self):
        return self._items.items()

    def values(self):
        return self._items.values()

    def clear(self) -> None:
        self._items.clear()

    def pop(self, key: str):
        return self._items.pop(key)

    def update(self, entries: Mapping | Iterable) -> None:
        """Add the entries of a mapping, or of an iterable of ``(key, value)`` pairs."""
        for key, value in _pairs(self, entries):
            self[key] = value


class ModuleDict(_DictContainer):
    """Layers by name: ``ModuleDict({"conv": Conv2d(1, 8, 3), "act": ReLU()})``; the state-dict
    names are ``<attribute>.conv.weight``, ..."""

    _kind = "module"

    def _convert(self, value):
        return _module(type(self).__name__, value)


class ParameterDict(_DictContainer):
    """Parameters by name (tensors put in become parameters): ``ParameterDict({"scale": w})``."""

    _kind = "parameter"

    def _convert(self, value):
        return _parameter(value)

    def get(self, key: str, default=None):
        return self._items.get(key, default)

    def setdefault(self, key: str, default=None):
        if key not in self._items:
            self[key] = default
        return self._items[key]

    def copy(self) -> ParameterDict:
        return ParameterDict(self._items)

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): {_describe(p)}" for k, p in self._items.items())

    def __repr__(self) -> str:
        return _repr_lines(self)


def _pairs(owner: Module, entries) -> Iterator[tuple]:
    if isinstance(entries, (Mapping, _DictContainer)):
        yield from entries.items()
        return
    if not isinstance(entries, Iterable):
        raise TypeError(f"{type(owner).__name__}.update needs a mapping or (key, value) pairs")
    for i, pair in enumerate(entries):
        if not isinstance(pair, Iterable) or len(pair := tuple(pair)) != 2:
            raise ValueError(
                f"{type(owner).__name__}.update: element {i} must be a (key, value) pair"
            )
        yield pair


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"Parameter containing: [{value.dtype} of shape {tuple(value.shape)}]"
    return repr(value)


def _repr_lines(container: Module) -> str:
    body = container.extra_repr()
    if not body:
        return f"{type(container).__name__}()"
    return f"{type(container).__name__}(\n  " + body.replace("\n", "\n  ") + "\n)"
