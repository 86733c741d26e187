"""Gradient checking: compare backpropagation with central finite differences.

For a scalar L(x), the central difference (L(x + eps e_i) - L(x - eps e_i)) / (2 eps) approximates
dL/dx_i with error O(eps^2). Everything is upcast to float64 first, so eps = 1e-6 is meaningful.
For a non-scalar output y we check L = sum(y * w) with fixed random weights w, which exercises every
entry of the Jacobian; a scalar output is checked as it is, so the report shows its own gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import autograd
from .backend import new_rng, xp
from .tensor import Tensor


@dataclass
class GradientComparison:
    """How backpropagation and finite differences agree for one tensor."""

    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic_at_worst: float
    numeric_at_worst: float
    passed: bool


class GradcheckReport:
    """A per-tensor table of errors; truthy when every tensor passed."""

    def __init__(self, rows: list[GradientComparison], atol: float, rtol: float):
        self.rows, self.atol, self.rtol = rows, atol, rtol

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        head = f"{'tensor':<24}{'shape':<16}{'max abs err':>12}{'max rel err':>12}  worst at"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            mark = "" if r.passed else "   <-- FAILED"
            lines.append(
                f"{r.name:<24}{str(r.shape):<16}{r.max_abs_error:>12.2e}{r.max_rel_error:>12.2e}"
                f"  {r.worst_index} (backprop {r.analytic_at_worst:.6g}, "
                f"numeric {r.numeric_at_worst:.6g}){mark}"
            )
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"gradcheck {verdict} (atol={self.atol:g}, rtol={self.rtol:g})")
        return "\n".join(lines)

    __repr__ = __str__


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when a gradient disagrees; carries the report."""

    def __init__(self, report: GradcheckReport):
        super().__init__("backprop and finite differences disagree:\n" + str(report))
        self.report = report


def gradcheck(
    fn: Callable,
    *inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> GradcheckReport:
    """Check the gradients of ``fn(*inputs)`` with respect to every input that requires grad.

    Args:
        fn: a function of the inputs returning a tensor (scalar or not).
        inputs: tensors (those with ``requires_grad=True`` are checked) and other arguments.
        eps: finite-difference step. atol, rtol: a gradient passes where
            |backprop - numeric| <= atol + rtol * |numeric| for every element.
        raise_exception: raise :class:`GradcheckError` on failure (else just return the report).

    Returns:
        A :class:`GradcheckReport`, printable as a table, truthy when all gradients agree.

    Example:
        >>> x = cr.randn(3, 4, requires_grad=True)
        >>> print(cr.gradcheck(lambda t: (t * t).sum(), x))
    """
    inputs64 = [_upcast(x) for x in inputs]
    checked = [(f"input {i}", x) for i, x in enumerate(inputs64) if _is_checked(x)]
    if not checked:
        raise ValueError("gradcheck: no input requires grad; pass tensors with requires_grad=True")
    output = fn(*inputs64)
    if not isinstance(output, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(output).__name__}")
    # a scalar is checked as it is; other outputs through a fixed random weighting of their entries
    if output.numel() == 1:
        weights = xp.ones(output.shape)
    else:
        weights = new_rng(0).standard_normal(output.shape)

    def objective() -> float:
        return float(xp.sum(fn(*inputs64)._data * weights))

    output.backward(grad=weights)
    return compare_with_finite_differences(objective, checked, eps, atol, rtol, raise_exception)


def compare_with_finite_differences(
    objective: Callable[[], float],
    tensors: Sequence[tuple[str, Tensor]],
    eps: float,
    atol: float,
    rtol: float,
    raise_exception: bool,
) -> GradcheckReport:
    """Compare each tensor's ``.grad`` (already computed) with central differences of ``objective``.

    ``objective`` recomputes the scalar from the tensors' current values; each element is nudged
    by +-eps in place and restored.
    """
    rows = []
    with autograd.no_grad():
        for name, t in tensors:
            analytic = t.grad._data if t.grad is not None else xp.zeros_like(t._data)
            numeric = xp.zeros_like(t._data)
            for index in xp.ndindex(t.shape):  # t._data itself, whatever its layout in memory
                original = t._data[index]
                t._data[index] = original + eps
                plus = objective()
                t._data[index] = original - eps
                minus = objective()
                t._data[index] = original
                numeric[index] = (plus - minus) / (2 * eps)
            rows.append(_compare(name, analytic, numeric, atol, rtol))
    report = GradcheckReport(rows, atol, rtol)
    if raise_exception and not report.passed:
        raise GradcheckError(report)
    return report


def _compare(name, analytic, numeric, atol, rtol) -> GradientComparison:
    error = xp.abs(analytic - numeric)
    if error.size == 0:
        return GradientComparison(name, analytic.shape, 0.0, 0.0, (), 0.0, 0.0, True)
    violation = error / (atol + rtol * xp.abs(numeric))
    worst = xp.unravel_index(int(xp.argmax(violation)), error.shape)
    rel = error / xp.maximum(xp.maximum(xp.abs(numeric), xp.abs(analytic)), atol)
    return GradientComparison(
        name=name,
        shape=tuple(analytic.shape),
        max_abs_error=float(error.max()),
        max_rel_error=float(rel.max()),
        worst_index=tuple(int(i) for i in worst),
        analytic_at_worst=float(analytic[worst]),
        numeric_at_worst=float(numeric[worst]),
        passed=bool(xp.all(violation <= 1.0)) and bool(xp.all(xp.isfinite(analytic))),
    )


def _is_checked(x) -> bool:
    return isinstance(x, Tensor) and x.requires_grad


def _upcast(x):
    """A float64 copy of a float tensor or array (a fresh leaf); anything else unchanged."""
    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor._make(x._data.astype(xp.float64), x.requires_grad)
    if isinstance(x, xp.ndarray) and x.dtype.kind == "f":
        return x.astype(xp.float64)
    return x
