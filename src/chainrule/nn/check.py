"""Whole-module gradient checking: every parameter of a network against finite differences."""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..backend import fork_rng, manual_seed, xp
from ..gradcheck import GradcheckError, GradcheckReport, compare_with_finite_differences
from ..tensor import Tensor, as_array
from .module import Module


def check_gradients(
    module: Module,
    loss_fn: Callable,
    x,
    y,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    verbose: bool = True,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Check d loss_fn(module(x), y) / d parameter for every parameter, and d/dx, in float64.

    The module is copied and upcast to float64, so the original is untouched. Randomness inside
    (dropout) is re-seeded identically for every evaluation. Prints a per-parameter table of errors
    when ``verbose``.

    Example:
        >>> cr.check_gradients(model, cr.nn.CrossEntropyLoss(), x, labels)
    """
    model = copy.deepcopy(module).double()
    model.zero_grad()
    x64 = Tensor._make(as_array(x).astype(xp.float64), True)
    y64 = y._data if isinstance(y, Tensor) else y
    if isinstance(y64, xp.ndarray) and y64.dtype.kind == "f":
        y64 = y64.astype(xp.float64)

    def loss_value() -> Tensor:
        manual_seed(12345)  # the same dropout masks at every evaluation
        return loss_fn(model(x64), y64)

    with fork_rng():
        loss = loss_value()
        if loss.numel() != 1:
            raise ValueError(f"check_gradients: the loss must be a scalar, got shape {loss.shape}")
        loss.backward()
        tensors = [*model.named_parameters(), ("input", x64)]
        report = compare_with_finite_differences(
            lambda: float(loss_value()._data), tensors, eps, atol, rtol, raise_exception=False
        )
    if verbose:
        print(report)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report
