"""The optimizer base class: parameter groups, per-parameter state, zero_grad, step, state_dict.

A subclass names its hyper-parameters (``defaults``), checks them (``check``), creates the state of
one parameter (``init_state``) and applies its rule from :mod:`chainrule.optim.rules`
(``update``). The learning rate of a group is a number, or a schedule ``f(step) -> lr`` called
with the 1-based step count.
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


class Optimizer:
    """Base class. ``params``: an iterable of parameters, or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups with their own hyper-parameters)."""

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = defaults
        self.param_groups: list[dict] = []
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

    def check(self, group: dict) -> None:
        """Refuse bad hyper-parameters with a clear message (subclasses extend)."""

    def init_state(self, p, group: dict) -> dict:
        return {}

    def update(self, p, g, state: dict, lr: float, group: dict) -> None:
        raise NotImplementedError

    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self) -> None:
        """Forget the gradients of the last step (backward accumulates otherwise)."""
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        """Move every parameter that has a gradient one step downhill."""
        self.step_count += 1
        index = 0
        for group in self.param_groups:
            lr = group["lr"](self.step_count) if callable(group["lr"]) else group["lr"]
            for p in group["params"]:
                if p.grad is not None:
                    state = self.state.get(index)
                    if state is None:
                        state = self.state[index] = self.init_state(p, group)
                    self.update(p.data, p.grad, state, lr, group)
                index += 1

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
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(g["params"]) != len(mine["params"]) for g, mine in zip(groups, self.param_groups)
        ):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved parameter groups do not match "
                "this optimizer's (different model?)"
            )
        params = list(self.parameters())
        new_state = {}
        for i, s in state_dict["state"].items():
            i = int(i)
            if i >= len(params):
                raise ValueError(
                    f"load_state_dict: state for parameter {i}, but there are {len(params)}"
                )
            entry = {}
            for k, v in s.items():
                if isinstance(v, xp.ndarray):
                    if v.shape != params[i].shape:
                        raise ValueError(
                            f"load_state_dict: state '{k}' of parameter {i} has shape {v.shape}, "
                            f"the parameter has {params[i].shape}"
                        )
                    v = v.astype(params[i].dtype, copy=True)
                entry[k] = v
            new_state[i] = entry
        for mine, saved in zip(self.param_groups, groups):
            mine.update({k: v for k, v in saved.items() if k != "params"})
        self.state = new_state
        self.step_count = int(state_dict.get("step_count", 0))

    def __repr__(self) -> str:
        hyper = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in hyper.items())})"
