"""L-BFGS, as PyTorch's ``optim.LBFGS``: a quasi-Newton method for small, smooth, full-batch
problems (neural style transfer, fitting a curve), whose ``step(closure)`` calls the closure
again and again to re-evaluate the loss.

Unlike the rules of :mod:`chainrule.optim.rules` it treats all parameters as one flat vector x:
it keeps the last few steps s and gradient changes y, and from them an approximate inverse
Hessian H (never built: the two-loop recursion applies it). The pure functions below are the
algorithm's pieces; :class:`LBFGS` strings them together exactly as PyTorch does, so the two
follow the same trajectory.
"""

from __future__ import annotations

import math
from functools import partial

from ..backend import xp
from ..cores import watch_cores
from ..engine import enable_grad
from ..tensor import as_array
from .optimizer import Optimizer, check_non_negative
from .spec import LR, Setting

LINE_SEARCHES = (None, "strong_wolfe")


def two_loop_direction(grad, old_dirs: list, old_stps: list, ro: list, h_diag):
    """d = -H grad, with H the L-BFGS inverse Hessian of the pairs (y_i, s_i), rho_i = 1/(y_i.s_i),
    and H_0 = h_diag I:
    q = -grad; for i newest..oldest: a_i = rho_i s_i.q, q -= a_i y_i;
    r = h_diag q; for i oldest..newest: b_i = rho_i y_i.r, r += (a_i - b_i) s_i."""
    alphas = [0.0] * len(old_dirs)
    q = -grad
    for i in reversed(range(len(old_dirs))):
        alphas[i] = (old_stps[i] @ q) * ro[i]
        q -= alphas[i] * old_dirs[i]
    r = q * h_diag
    for i in range(len(old_dirs)):
        beta = (old_dirs[i] @ r) * ro[i]
        r += (alphas[i] - beta) * old_stps[i]
    return r


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped to
    ``bounds`` (default: between x1 and x2); their midpoint when the cubic has no minimum.
    d1 = g1 + g2 - 3 (f1 - f2) / (x1 - x2), d2 = sqrt(d1^2 - g1 g2),
    x = x2 - (x2 - x1) (g2 + d2 - d1) / (g2 - g1 + 2 d2)   (x2 the farther point)."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        best = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        best = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(best, low), high)


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step length t along d meeting the strong Wolfe conditions, as PyTorch's (minFunc's):
    f(x + t d) <= f + c1 t g.d (enough decrease) and |g(x + t d).d| <= c2 |g.d| (the slope
    flattened). First a bracket around such a t is found, growing t by cubic extrapolation, then
    the bracket is zoomed by cubic interpolation; at most ``max_ls`` evaluations after the first.

    ``evaluate(t)`` returns (loss, flat gradient) at x + t d. Returns (loss, gradient, t, number
    of evaluations) at the point chosen."""
    d_norm = xp.abs(d).max()
    f_new, g_new = evaluate(t)
    evaluations, gtd_new = 1, g_new @ d
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done, ls_iter = False, 0
    while ls_iter < max_ls:  # bracketing
        too_high = f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev)
        if not too_high and abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, bracket_gtd = [t], [f_new], [g_new], [gtd_new]
            done = True
            break
        if too_high or gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        t_next = cubic_interpolate(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10)
        )
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new, gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evaluations, gtd_new = evaluations + 1, g_new @ d
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g, bracket_gtd = [0, t], [f, f_new], [g, g_new], [gtd, gtd_new]

    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:  # zooming
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(
            bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1]
        )
        # a t too near an end of the bracket twice running (or outside it) moves a tenth in
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evaluations, gtd_new = evaluations + 1, g_new @ d
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high] = t, f_new
            bracket_g[high], bracket_gtd[high] = g_new, gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:  # the old high becomes the low
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low] = t, f_new
            bracket_g[low], bracket_gtd[low] = g_new, gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evaluations


class LBFGS(Optimizer):
    """L-BFGS with PyTorch's arguments and numbers; ``step(closure)`` needs the closure, which
    zeroes the gradients, computes the loss, calls ``backward`` and returns the loss.

    One step, with all parameters as one vector x and f, g = closure(), dL/dx::

        if max|g| <= tolerance_grad: stop
        repeat at most max_iter times:
            the direction d:
                on the very first iteration: d = -g, H_diag = 1
                else: y = g - g_prev, s = t d_prev;
                      if y.s > 1e-10: keep (y, s, rho = 1/y.s), dropping the oldest pair beyond
                                      history_size, and H_diag = y.s / y.y
                      d = -H g by the two-loop recursion (two_loop_direction)
            the step length t = lr (min(1, 1/sum|g|) lr on the very first iteration)
            if g.d > -tolerance_change: stop (no descent left)
            line_search_fn None:  x <- x + t d, then f, g = closure() (not on the last iteration)
            "strong_wolfe":       t, f, g from strong_wolfe(...) with at most
                                  max_eval - (evaluations so far) evaluations; x <- x + t d
            stop after max_iter iterations or max_eval evaluations, when max|g| <= tolerance_grad,
            max|t d| <= tolerance_change, or |f - f_prev| < tolerance_change
        return the loss of the step's first closure() call

    The pairs (y, s), d, t and the counts carry over from one step to the next: they are the
    optimizer's state (``state_dict``), kept under parameter 0 as PyTorch keeps them.

    Args:
        lr: scales every step (1 by default: the quasi-Newton step itself).
        max_iter: iterations per ``step`` call.
        max_eval: closure calls per ``step`` call (default max_iter * 5 // 4).
        tolerance_grad, tolerance_change: stop when the gradient, or the change of the loss or
            of x, is smaller.
        history_size: how many (y, s) pairs are kept.
        line_search_fn: None (fixed steps of length lr) or "strong_wolfe".

    Example:
        >>> optimizer = cr.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> def closure():
        ...     optimizer.zero_grad()
        ...     loss = loss_fn(model(x), y)
        ...     loss.backward()
        ...     return loss
        >>> optimizer.step(closure)
    """

    settings = (
        LR,
        Setting("max_iter", 1, 10_000, "iterations of the method in each step", integer=True),
        Setting("history_size", 1, 10_000, "how many past steps shape the curvature", integer=True),
        Setting("tolerance_grad", help="stop when no gradient entry is larger than this"),
        Setting("tolerance_change", help="stop when the loss or the weights change less"),
    )
    suggested_lr = 1.0
    needs_closure = True  # each step re-evaluates the loss: not for fit(), the CLI or the page

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_iter * 5 // 4 if max_eval is None else max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def check(self, group: dict) -> None:
        for name in ("max_iter", "max_eval", "history_size"):
            value = group[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"LBFGS {name} must be a whole number >= 1, got {value!r}")
        check_non_negative("tolerance_grad", group["tolerance_grad"])
        check_non_negative("tolerance_change", group["tolerance_change"])
        if group["line_search_fn"] not in LINE_SEARCHES:
            raise ValueError(
                f"LBFGS line_search_fn must be None or 'strong_wolfe', got "
                f"{group['line_search_fn']!r:.40}"
            )

    # -- the parameters as one flat vector ------------------------------------------------------
    def _flat_grad(self):
        """dL/dx as one vector (zeros for a parameter without a gradient)."""
        return xp.concatenate(
            [
                xp.zeros(p.numel(), as_array(p).dtype)
                if p.grad is None
                else as_array(p.grad).ravel()
                for p in self._params
            ]
        )

    def _add_step(self, t, d) -> None:
        """x <- x + t d, in place (the parameters' version counters see the change)."""
        offset = 0
        for p in self._params:
            values = as_array(p)
            values += t * d[offset : offset + values.size].reshape(values.shape)
            offset += values.size
            p._counter[0] += 1

    def _set_params(self, saved: list) -> None:
        for p, values in zip(self._params, saved):
            xp.copyto(as_array(p), values)
            p._counter[0] += 1

    def _evaluate_along(self, closure, start: list, d, t):
        """(loss, flat gradient) at x + t d, x being ``start``; the parameters are left at x."""
        self._add_step(t, d)
        result = self._evaluate(closure)
        self._set_params(start)
        return result

    def _evaluate(self, closure):
        """(loss as a float, flat gradient) from one closure call, with gradients recorded."""
        with enable_grad():
            loss = closure()
        return float(loss), self._flat_grad()

    # -- one step -------------------------------------------------------------------------------
    def step(self, closure=None):
        """Run up to ``max_iter`` iterations of L-BFGS, calling ``closure`` to re-evaluate the
        loss and gradients; returns the loss of the first call (see the class docstring)."""
        if closure is None:
            raise ValueError("LBFGS.step needs a closure that recomputes and returns the loss")
        watch_cores()
        group = self.param_groups[0]
        lr = group["lr"](self.step_count + 1) if callable(group["lr"]) else group["lr"]
        max_iter, max_eval = group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        self.step_count += 1
        state = self.state.setdefault(0, {"func_evals": 0, "n_iter": 0})

        with enable_grad():
            first_loss = closure()
        loss, grad = float(first_loss), self._flat_grad()
        evaluations = 1
        state["func_evals"] += 1
        if xp.abs(grad).max() <= tolerance_grad:
            return first_loss

        d, t = state.get("d"), state.get("t")
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_grad = state.get("H_diag"), state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, old_dirs, old_stps, ro, h_diag = -grad, [], [], [], 1
            else:
                y, s = grad - prev_grad, d * t
                ys = y @ s
                if ys > 1e-10:
                    if len(old_dirs) == group["history_size"]:
                        del old_dirs[0], old_stps[0], ro[0]
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    h_diag = ys / (y @ y)
                d = two_loop_direction(grad, old_dirs, old_stps, ro, h_diag)
            prev_grad, prev_loss = grad.copy(), loss

            t = min(1.0, 1.0 / xp.abs(grad).sum()) * lr if state["n_iter"] == 1 else lr
            gtd = grad @ d
            if gtd > -tolerance_change:
                break
            used = 0
            if group["line_search_fn"] == "strong_wolfe":
                start = [as_array(p).copy() for p in self._params]
                along = partial(self._evaluate_along, closure, start, d)
                loss, grad, t, used = strong_wolfe(
                    along, t, d, loss, grad, gtd, max_ls=max_eval - evaluations
                )
                self._add_step(t, d)
            else:
                self._add_step(t, d)
                if n_iter != max_iter:  # the last iteration's loss would not be used
                    loss, grad = self._evaluate(closure)
                    used = 1
            evaluations += used
            state["func_evals"] += used

            if (
                n_iter == max_iter
                or evaluations >= max_eval
                or xp.abs(grad).max() <= tolerance_grad
                or xp.abs(d * t).max() <= tolerance_change
                or abs(loss - prev_loss) < tolerance_change
            ):
                break

        state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=h_diag)
        state.update(prev_flat_grad=prev_grad, prev_loss=prev_loss)
        return first_loss

    # -- saving ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """As :meth:`Optimizer.state_dict`; the history under parameter 0 is copied, its
        numbers as plain floats (lists of arrays for the (y, s) pairs)."""
        saved = super().state_dict()
        saved["state"] = {i: {k: plain(v) for k, v in s.items()} for i, s in self.state.items()}
        return saved

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned, refusing a history whose vectors are not
        the length of this optimizer's parameters put end to end."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self._params):
            raise ValueError(
                "LBFGS.load_state_dict: the saved parameters do not match this optimizer's "
                "(different model?)"
            )
        self.param_groups[0].update({k: v for k, v in groups[0].items() if k != "params"})
        self.check(self.param_groups[0])
        saved = {int(i): s for i, s in state_dict["state"].items()}
        if set(saved) - {0}:
            raise ValueError("LBFGS.load_state_dict: LBFGS keeps its state under parameter 0")
        size = sum(p.numel() for p in self._params)
        self.state = {0: checked_history(saved[0], size)} if saved else {}
        self.step_count = int(state_dict.get("step_count", 0))


def plain(value):
    """A state value as a copy of plain arrays, lists and floats."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, xp.ndarray):
        return value.copy()
    if isinstance(value, xp.generic):
        return value.item()
    return value


VECTORS = ("d", "prev_flat_grad")
HISTORY = ("old_dirs", "old_stps")


def checked_history(state: dict, size: int) -> dict:
    """A copy of a saved LBFGS state, each vector of length ``size`` and the history lists of
    equal length (ValueError naming the entry otherwise)."""
    checked = {}
    for key, value in state.items():
        vectors = value if key in HISTORY else [value] if key in VECTORS else []
        for vector in vectors:
            if xp.shape(vector) != (size,):
                raise ValueError(
                    f"LBFGS.load_state_dict: state '{key}' has a vector of shape "
                    f"{xp.shape(vector)}, the parameters have {size} numbers"
                )
        if key in HISTORY or key == "ro":
            value = [xp.array(v) if key in HISTORY else float(v) for v in value]
        elif key in VECTORS:
            value = xp.array(value)
        checked[key] = value
    lengths = {len(checked.get(key, ())) for key in (*HISTORY, "ro")}
    if len(lengths) > 1:
        raise ValueError("LBFGS.load_state_dict: the saved history lists differ in length")
    return checked
