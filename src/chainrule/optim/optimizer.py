"""The optimizer base class: parameter groups, per-parameter state, zero_grad, step, state_dict.

A subclass names its hyper-parameters (``defaults``), checks them (``check``), names its state
arrays (``state_names``) and applies its rule from :mod:`chainrule.optim.rules` (``update``).
The learning rate of a group is a number, or a schedule ``f(step) -> lr`` called with the 1-based
step count.

Speed: the parameters of a group are moved into one flat array (each parameter's ``.data``
becomes a view of it), and so are their gradients and the optimizer's state. When every
parameter of a group has a gradient, the rule then runs once over the whole group, a handful of
whole-array NumPy calls instead of a Python loop over tensors. Otherwise (some gradient missing)
it runs per parameter on views of the same arrays, with identical results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..backend import xp


def check_lr(lr) -> None:
    if callable(lr):
        return
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(
            f"learning rate must be a non-negative number or a schedule f(step), got {lr!r}"
        )


def check_range(name: str, value, low: float, high: float, high_inclusive: bool = False) -> None:
    ok = low <= value <= high if high_inclusive else low <= value < high
    if not ok:
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be in [{low}, {high}{bracket}, got {value!r}")


def check_non_negative(name: str, value) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


class FlatBuffers:
    """One contiguous array for all parameters of a group, one for their gradients, one per state
    array; every parameter, gradient and state entry is a view into them."""

    def __init__(self, params: list):
        self.spans, total = [], 0
        for p in params:
            self.spans.append((total, total + p.data.size, p.data.shape))
            total += p.data.size
        dtype = params[0].data.dtype
        self.params = xp.empty(total, dtype=dtype)
        self.grads = xp.zeros(total, dtype=dtype)
        self.param_views = self.views(self.params)
        self.grad_views = self.views(self.grads)
        self.state: dict[str, object] = {}
        self.scratch = xp.empty(total, dtype=dtype)  # room for an update rule's temporaries
        for p, view in zip(params, self.param_views):
            view[...] = p.data
            p.data = view

    @staticmethod
    def usable(params: list) -> bool:
        dtypes = {p.data.dtype for p in params}
        return len(dtypes) == 1 and dtypes.pop().kind == "f"

    def views(self, flat) -> list:
        return [flat[lo:hi].reshape(shape) for lo, hi, shape in self.spans]

    def state_array(self, name: str, fill: float):
        if name not in self.state:
            self.state[name] = xp.full(self.params.size, fill, dtype=self.params.dtype)
        return self.state[name]

    def gather(self, params: list) -> bool:
        """Make each parameter and gradient a view of the flat arrays again (copying in whatever
        was assigned to ``.data`` or ``.grad`` meanwhile). False if some gradient is missing."""
        complete = True
        for p, view, grad_view in zip(params, self.param_views, self.grad_views):
            if p.data is not view:
                view[...] = p.data
                p.data = view
            if p.grad is None:
                complete = False
            elif p.grad is not grad_view:
                grad_view[...] = p.grad
                p.grad = grad_view
        return complete


class Optimizer:
    """Base class. ``params``: an iterable of parameters, or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups with their own hyper-parameters)."""

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.flat: list[FlatBuffers | None] = []
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)
        self.state: dict[int, dict] = {}
        self.step_count = 0

    def add_param_group(self, group: dict) -> None:
        group = {**self.defaults, **group, "params": list(group["params"])}
        for p in group["params"]:
            if not getattr(p, "requires_grad", False):
                raise ValueError(f"{type(self).__name__}: every parameter must require grad")
        check_lr(group["lr"])
        self.check(group)
        self.param_groups.append(group)
        usable = group["params"] and FlatBuffers.usable(group["params"])
        self.flat.append(FlatBuffers(group["params"]) if usable else None)

    # -- what a subclass defines ---------------------------------------------------------------
    def check(self, group: dict) -> None:
        """Refuse bad hyper-parameters with a clear message."""

    def state_names(self, group: dict) -> tuple:
        """Names of the per-parameter state arrays this rule keeps (besides the step count)."""
        return ()

    def initial_value(self, name: str, group: dict) -> float:
        return 0.0

    def update(self, p, g, state: dict, lr: float, group: dict) -> None:
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------------------
    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last step (backward accumulates otherwise).

        ``set_to_none=False`` zeroes them in place instead, which saves reallocating them.
        """
        for group, flat in zip(self.param_groups, self.flat):
            if set_to_none:
                for p in group["params"]:
                    p.grad = None
            elif flat is not None:
                flat.grads.fill(0)
                for p, view in zip(group["params"], flat.grad_views):
                    p.grad = view
            else:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.fill(0)

    def step(self) -> None:
        """Move every parameter that has a gradient one step downhill."""
        self.step_count += 1
        first = 0
        for group, flat in zip(self.param_groups, self.flat):
            params = group["params"]
            lr = group["lr"](self.step_count) if callable(group["lr"]) else group["lr"]
            indices = range(first, first + len(params))
            first += len(params)
            states = [
                self._state(i, p, group, flat, k) for k, (i, p) in enumerate(zip(indices, params))
            ]
            complete = flat is not None and flat.gather(params)
            if complete and len({s["step"] for s in states}) == 1:
                whole = {"step": states[0]["step"], "scratch": flat.scratch}
                whole.update({name: flat.state[name] for name in self.state_names(group)})
                self.update(flat.params, flat.grads, whole, lr, group)
                for s in states:
                    s["step"] = whole["step"]
                continue
            for p, state in zip(params, states):
                if p.grad is not None:
                    self.update(p.data, p.grad, state, lr, group)

    def _state(self, index: int, p, group: dict, flat, position: int) -> dict:
        state = self.state.get(index)
        if state is None:
            state = {"step": 0}
            for name in self.state_names(group):
                fill = self.initial_value(name, group)
                if flat is not None:
                    state[name] = flat.views(flat.state_array(name, fill))[position]
                    state[name][...] = fill  # the flat array may hold an older state's values
                else:
                    state[name] = xp.full_like(p.data, fill)
            self.state[index] = state
        return state

    # -- saving --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Plain arrays and numbers: ``{"state": {index: {...}}, "param_groups": [...], "step_count"}``."""
        groups, index = [], 0
        for group in self.param_groups:
            entry = {k: v for k, v in group.items() if k != "params" and not callable(v)}
            entry["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(entry)
        state = {
            i: {k: (v.copy() if isinstance(v, xp.ndarray) else v) for k, v in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": groups, "step_count": self.step_count}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (values are copied into this optimizer)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved parameter groups do not match "
                "this optimizer's (different model?)"
            )
        for mine, saved in zip(self.param_groups, groups):
            mine.update({k: v for k, v in saved.items() if k != "params"})
        located = {}
        first = 0
        for group, flat in zip(self.param_groups, self.flat):
            for k, p in enumerate(group["params"]):
                located[first + k] = (p, group, flat, k)
            first += len(group["params"])
        self.state = {}
        for i, saved in state_dict["state"].items():
            i = int(i)
            if i not in located:
                raise ValueError(
                    f"load_state_dict: state for parameter {i}, but there are {len(located)}"
                )
            p, group, flat, position = located[i]
            state = self._state(i, p, group, flat, position)
            for name, value in saved.items():
                if isinstance(state.get(name), xp.ndarray):
                    if xp.shape(value) != state[name].shape:
                        raise ValueError(
                            f"load_state_dict: state '{name}' of parameter {i} has shape "
                            f"{xp.shape(value)}, the parameter has {state[name].shape}"
                        )
                    state[name][...] = value
                elif name == "step":
                    state[name] = int(value)
        self.step_count = int(state_dict.get("step_count", 0))

    def __repr__(self) -> str:
        hyper = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in hyper.items())})"
