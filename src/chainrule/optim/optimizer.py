"""The optimizer base class: parameter groups, per-parameter state, zero_grad, step, state_dict.

A subclass names its hyper-parameters (``defaults``), checks them (``check``), names its state
arrays (``state_names``) and applies its rule from :mod:`chainrule.optim.rules` to one parameter
(``update``). The learning rate of a group is a number, or a schedule ``f(step) -> lr`` called with
the 1-based step count.

Speed without surprises: the optimizer keeps each group's gradients and state in one flat array
(:class:`FlatState`), with a view per parameter. A subclass may add ``fused_update``, the same rule
over the whole group in a handful of whole-array NumPy calls (Adam does); it runs when every
parameter of the group has a gradient. The parameters themselves are never moved or rebound: the
fused rule adds each parameter's slice of one flat step to it, so ``p._data`` stays the array the
user holds. If a parameter's dtype or shape changes (``model.double()``), the optimizer follows
when it has no state yet, and refuses with a clear error once it has.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..backend import xp
from ..cores import watch_cores
from ..engine import enable_grad
from ..tensor import Tensor


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


class FlatState:
    """One contiguous array for the gradients of a group's parameters, one per state array, and
    a scratch array for a fused rule's temporaries; each parameter gets a view into each."""

    def __init__(self, params: list):
        self.layout = layout(params)
        self.spans, total = [], 0
        for shape, _ in self.layout:
            size = math.prod(shape)
            self.spans.append((total, total + size, shape))
            total += size
        self.dtype = params[0]._data.dtype
        self.grads = xp.zeros(total, dtype=self.dtype)
        self.grad_views = self.views(self.grads)
        self.scratch = xp.empty(total, dtype=self.dtype)
        self.scratch_views = self.views(self.scratch)
        self.state: dict[str, object] = {}

    @staticmethod
    def usable(params: list) -> bool:
        dtypes = {p._data.dtype for p in params}
        return len(dtypes) == 1 and dtypes.pop().kind == "f"

    def views(self, flat) -> list:
        return [flat[lo:hi].reshape(shape) for lo, hi, shape in self.spans]

    def state_array(self, name: str, fill: float):
        if name not in self.state:
            self.state[name] = xp.full(self.grads.size, fill, dtype=self.dtype)
        return self.state[name]

    def collect_grads(self, params: list) -> bool:
        """Copy into the flat array every gradient that is not already a view of it (no copy
        when ``zero_grad(set_to_none=False)`` handed out the views). False if one is missing."""
        for p, view in zip(params, self.grad_views):
            if p.grad is None:
                return False
            if p.grad._data is not view:
                xp.copyto(view, p.grad._data)
        return True


def layout(params: list) -> list:
    """(shape, dtype) of each parameter: what the optimizer's state was made for."""
    return [(p._data.shape, p._data.dtype) for p in params]


OPTIMIZER_CLASSES: dict[str, type] = {}
"""chainrule's optimizers by their lower-case name (``adam``), registered as they are defined."""


def stepping_optimizers() -> dict[str, type]:
    """The optimizers that take one step per batch with no closure (all but LBFGS): the ones
    ``fit``, the command line and the playground can drive."""
    return {name: cls for name, cls in OPTIMIZER_CLASSES.items() if not cls.needs_closure}


class Optimizer:
    """Base class. ``params``: an iterable of parameters, or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups with their own hyper-parameters).

    A subclass describes itself (see :mod:`chainrule.optim.spec`): ``settings``, its
    hyper-parameters with their ranges and help; ``suggested_lr``, a learning rate that trains
    small networks well (where the command line and the playground start); ``presets``, named
    variants (SGD's ``momentum`` and ``nesterov``).
    """

    fused_update = None  # optional: the rule over a whole group at once (see the module docstring)
    settings: tuple = ()
    suggested_lr: float = 1e-3
    presets: dict = {}
    needs_closure = False  # True where step() must re-evaluate the loss (LBFGS): not for fit()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("chainrule.optim.") and not cls.__name__.startswith("_"):
            OPTIMIZER_CLASSES[cls.__name__.lower()] = cls

    def __init__(self, params: Iterable, defaults: dict):
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.flat: list[FlatState | None] = []
        self.layouts: list[list] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__} expects an iterable of parameters (model.parameters()), "
                "got a single tensor"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)
        self.state: dict[int, dict] = {}
        self.step_count = 0

    def add_param_group(self, group: dict) -> None:
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        group = {**self.defaults, **group, "params": params}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__} can only optimize tensors, got {type(p).__name__}"
                )
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: every parameter must require grad")
        check_lr(group["lr"])
        self.check(group)
        self.param_groups.append(group)
        usable = group["params"] and FlatState.usable(group["params"])
        self.flat.append(FlatState(group["params"]) if usable else None)
        self.layouts.append(layout(group["params"]))

    # -- what a subclass defines ---------------------------------------------------------------
    def check(self, group: dict) -> None:
        """Refuse bad hyper-parameters with a clear message."""

    def state_names(self, group: dict) -> tuple:
        """Names of the per-parameter state arrays this rule keeps (besides the step count)."""
        return ()

    def initial_value(self, name: str, group: dict) -> float:
        return 0.0

    def update(self, p, g, state: dict, lr: float, group: dict) -> None:
        """Apply the rule to one parameter array ``p`` with gradient ``g`` (both arrays)."""
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------------------
    def parameters(self):
        for group in self.param_groups:
            yield from group["params"]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of the last step (backward accumulates otherwise).

        ``set_to_none=False`` zeroes them in place instead; a missing gradient then becomes a view
        of the optimizer's flat gradient array, so backward accumulates straight into it.
        """
        for index, group in enumerate(self.param_groups):
            params = group["params"]
            if set_to_none:
                for p in params:
                    p.grad = None
                continue
            flat = self.flat_state(index)
            for k, p in enumerate(params):
                if p.grad is not None:
                    p.grad._data.fill(0)
                elif flat is not None:
                    flat.grad_views[k].fill(0)
                    p.grad = Tensor.wrap_array(flat.grad_views[k])
                else:
                    p.grad = Tensor.wrap_array(xp.zeros_like(p._data))

    def gather_gradients(self) -> list:
        """Make every gradient a view of its group's flat gradient array (copying values in) and
        return those arrays, e.g. to average them across processes in one call each."""
        arrays = []
        for index, group in enumerate(self.param_groups):
            flat = self.flat_state(index)
            if flat is None:
                raise RuntimeError(
                    f"{type(self).__name__}: parameter group {index} mixes dtypes; it has no "
                    "flat gradient array"
                )
            for k, p in enumerate(group["params"]):
                view = flat.grad_views[k]
                if p.grad is None:
                    view.fill(0)
                elif p.grad._data is not view:
                    xp.copyto(view, p.grad._data)
                if p.grad is None or p.grad._data is not view:
                    p.grad = Tensor.wrap_array(view)
            arrays.append(flat.grads)
        return arrays

    def step(self, closure=None):
        """Move every parameter that has a gradient one step downhill.

        ``closure``: an optional function that recomputes and returns the loss (as PyTorch's).
        Under ``set_num_threads("auto")`` a step is also when the thread count follows the idle
        cores (:mod:`chainrule.cores`).
        """
        watch_cores()
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        self.step_count += 1
        first = 0
        for index, group in enumerate(self.param_groups):
            params = group["params"]
            flat = self.flat_state(index)
            lr = group["lr"](self.step_count) if callable(group["lr"]) else group["lr"]
            indices = range(first, first + len(params))
            first += len(params)
            states = [
                self._state(i, p, group, flat, k) for k, (i, p) in enumerate(zip(indices, params))
            ]
            if (
                self.fused_update is not None
                and flat is not None
                and len({s["step"] for s in states}) == 1
                and flat.collect_grads(params)
            ):
                whole = {name: flat.state[name] for name in self.state_names(group)}
                whole["step"] = states[0]["step"]
                self.fused_update([p._data for p in params], flat, whole, lr, group)
                for s in states:
                    s["step"] = whole["step"]
            else:
                for p, state in zip(params, states):
                    if p.grad is not None:
                        self.update(p._data, p.grad._data, state, lr, group)
            for p in params:
                if p.grad is not None:
                    p._counter[0] += 1  # changed in place: saved copies of it are now stale
        return loss

    def flat_state(self, index: int) -> FlatState | None:
        """Group ``index``'s flat arrays (None where its dtypes are mixed), for the layout its
        parameters have *now*: the one place that decides the layout, used by ``zero_grad``,
        ``gather_gradients``, ``step`` and ``load_state_dict`` alike.

        A change of shape or dtype (``model.double()``) is followed while there is no state yet
        and refused with a clear error afterwards."""
        group = self.param_groups[index]
        now = layout(group["params"])
        if now == self.layouts[index]:
            return self.flat[index]
        first = sum(len(g["params"]) for g in self.param_groups[:index])
        has_state = any(first + k in self.state for k in range(len(group["params"])))
        if has_state:
            changed = next(k for k, (a, b) in enumerate(zip(now, self.layouts[index])) if a != b)
            (shape, dtype), (old_shape, old_dtype) = now[changed], self.layouts[index][changed]
            raise RuntimeError(
                f"{type(self).__name__}: parameter {first + changed} changed from {old_dtype} "
                f"{old_shape} to {dtype} {shape} after the optimizer made its state (e.g. "
                "model.double() after training started): create the optimizer after changing "
                "the model"
            )
        self.layouts[index] = now
        params = group["params"]
        self.flat[index] = FlatState(params) if FlatState.usable(params) else None
        return self.flat[index]

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
                    state[name] = xp.full_like(p._data, fill)
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
        self.state = {}
        located = {}
        first = 0
        for index, group in enumerate(self.param_groups):
            flat = self.flat_state(index)
            for k, p in enumerate(group["params"]):
                located[first + k] = (p, group, flat, k)
            first += len(group["params"])
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
