"""Gradient descent finds the best-fit line: one neuron, ``y = w x + b``, fitted to a cloud of
points by minimising the cost ``J(w, b) = mean((w x_i + b - y_i)^2)``.

Each step backpropagates the cost to the two parameters; the slopes ``dJ/dw`` and ``dJ/db`` say
which way is uphill, and the optimizer steps the other way. The path ends where the slopes
vanish: at the least-squares line that ``numpy.linalg.lstsq`` computes in one go.
"""

from __future__ import annotations

from .. import optim
from ..backend import new_rng, xp
from ..nn.functional import mse_loss
from ..nn.module import Parameter
from ..tensor import Tensor, as_array

OPTIMIZERS = ("gd", "sgd", "adam")
PRESETS = ("too small", "right", "too big")
ADAM_RATES = {"too small": 0.005, "right": 0.15, "too big": 1.5}  # steps in units of w and b


def least_squares(x, y) -> tuple[float, float]:
    """The best-fit line ``(w, b)`` by ``numpy.linalg.lstsq``: no descent, one linear solve."""
    x, y = _as_columns(x, y)
    design = xp.stack([x, xp.ones_like(x)], axis=1)
    (w, b), *_ = xp.linalg.lstsq(design, y, rcond=None)
    return float(w), float(b)


def curvatures(x) -> tuple[float, float]:
    """The smallest and largest curvature of the cost: the eigenvalues of its (constant) Hessian
    ``H = 2 [[mean x^2, mean x], [mean x, 1]]``. Gradient descent is stable for ``lr < 2 / max``."""
    x = xp.asarray(x, dtype=xp.float64).ravel()
    hessian = 2 * xp.array([[xp.mean(x * x), xp.mean(x)], [xp.mean(x), 1.0]])
    low, high = xp.linalg.eigvalsh(hessian)
    return float(low), float(high)


def learning_rate(preset: str, optimizer: str, x) -> float:
    """The learning rate a preset stands for.

    For GD and SGD it follows from the cost's curvature: "right" is ``1 / max``, the largest step
    that never overshoots along the steepest direction; "too small" a fiftieth of it; "too big" just
    past the stability limit ``2 / max``, where every step overshoots further. Adam's step is about ``lr`` in
    parameter units whatever the curvature, so its presets are fixed sizes.
    """
    if preset not in PRESETS:
        raise ValueError(
            f"learning-rate preset must be one of {', '.join(PRESETS)}, got {preset!r}"
        )
    if optimizer == "adam":
        return ADAM_RATES[preset]
    high = curvatures(x)[1]
    return {"too small": 0.02 / high, "right": 1 / high, "too big": 2.2 / high}[preset]


def fit_line_path(
    x,
    y,
    optimizer: str = "gd",
    lr: float | str = "right",
    steps: int = 100,
    batch_size: int | None = None,
    start: tuple[float, float] = (0.0, 0.0),
    seed: int = 0,
) -> dict:
    """Fit ``y = w x + b`` by an optimizer of ``chainrule.optim`` and record every step.

    Args:
        x, y: the points, ``n`` of each (x may be (n, 1)).
        optimizer: ``"gd"`` (the full cost each step), ``"sgd"`` (a mini-batch each step) or
            ``"adam"``.
        lr: a number or a preset ("too small", "right", "too big"; see :func:`learning_rate`).
        steps: parameter updates to make (fewer if the cost blows up).
        batch_size: examples per step (default: all for GD and Adam, 8 for SGD).
        start: the initial ``(w, b)``.

    Returns:
        a dict with, per step (``steps + 1`` entries, the start included): ``w``, ``b``, the full
        ``cost`` and its slopes ``slope_w = dJ/dw``, ``slope_b = dJ/db`` (all by backpropagation
        through the engine); and ``lr``, ``optimizer``, ``batch_size``, ``least_squares``
        ``(w, b)``, ``least_squares_cost``, ``diverged`` (the cost ended higher than it began).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    x, y = _as_columns(x, y)
    if isinstance(lr, str):
        lr = learning_rate(lr, optimizer, x)
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive, got {lr}")
    n = len(x)
    batch_size = batch_size or (8 if optimizer == "sgd" else n)
    if not 1 <= batch_size:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    batch_size = min(batch_size, n)
    w = Parameter(xp.array([start[0]], dtype=xp.float64))
    b = Parameter(xp.array([start[1]], dtype=xp.float64))
    step_with = {
        "gd": lambda ps: optim.GD(ps, lr=lr),
        "sgd": lambda ps: optim.SGD(ps, lr=lr),
        "adam": lambda ps: optim.Adam(ps, lr=lr),
    }[optimizer]([w, b])
    batches = _batches(n, batch_size, seed)
    record = {"w": [], "b": [], "cost": [], "slope_w": [], "slope_b": []}
    initial_cost = None
    for step in range(steps + 1):
        cost, slope_w, slope_b = _cost_and_slopes(step_with, w, b, x, y)
        for key, value in zip(record, (w._data[0], b._data[0], cost, slope_w, slope_b)):
            record[key].append(float(value))
        initial_cost = cost if initial_cost is None else initial_cost
        if not xp.isfinite(cost) or cost > 1e8 * max(initial_cost, 1e-12) or step == steps:
            break
        index = next(batches)
        if len(index) < n:  # a mini-batch: the slope of its own cost, a noisy estimate
            step_with.zero_grad()
            mse_loss(_line(w, b, x[index]), _tensor(y[index])).backward()
        step_with.step()  # with all examples, .grad still holds the full slopes from above
    optimum = least_squares(x, y)
    return record | {
        "lr": float(lr),
        "optimizer": optimizer,
        "batch_size": batch_size,
        "least_squares": optimum,
        "least_squares_cost": float(xp.mean((optimum[0] * x + optimum[1] - y) ** 2)),
        # stopped early because the cost blew up, or ended higher than it started
        "diverged": len(record["cost"]) < steps + 1 or not record["cost"][-1] <= record["cost"][0],
    }


def _cost_and_slopes(optimizer, w: Parameter, b: Parameter, x, y):
    """The full cost J(w, b) and its gradient, by a forward and a backward pass."""
    optimizer.zero_grad()
    cost = mse_loss(_line(w, b, x), _tensor(y))
    cost.backward()
    return cost.item(), _first(w.grad), _first(b.grad)


def _line(w, b, x):
    return _tensor(x) * w + b


def _tensor(array) -> Tensor:
    return Tensor._make(array, False)


def _first(grad) -> float:
    return float(as_array(grad).ravel()[0])


def _batches(n: int, batch_size: int, seed: int):
    """Index arrays of mini-batches, a fresh shuffle every epoch, forever."""
    rng = new_rng(seed)
    while True:
        order = rng.permutation(n) if batch_size < n else xp.arange(n)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def _as_columns(x, y):
    x = xp.asarray(x, dtype=xp.float64)
    y = xp.asarray(y, dtype=xp.float64).ravel()
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1 or len(x) != len(y):
        raise ValueError(
            f"the best-fit line needs one x per y: got x of shape {x.shape} and {len(y)} targets"
        )
    if len(x) < 2:
        raise ValueError("the best-fit line needs at least two points")
    return x, y


# -- the picture -----------------------------------------------------------------------------------


def plot_fit_line(
    out,
    x=None,
    y=None,
    optimizer: str = "gd",
    lr: float | str = "right",
    steps: int = 100,
    batch_size: int | None = None,
    start: tuple[float, float] | None = None,
    gif=None,
    names: tuple[str, str] = ("x", "y"),
):
    """Draw gradient descent fitting a line: the line moving through the points, the path of
    ``(w, b)`` over the cost surface with the least-squares optimum, the slopes at the current
    step ("step left/right"), and the cost falling. With ``gif``, also an animation.

    Default points: ``chainrule.data.line(n=40, a=2, b=1, noise=0.5, x_range=(-1, 3))``, from
    the line ``y = -x + 3`` (it slopes the wrong way); with your own points, from ``y = 0``.

    Returns:
        ``(path of the PNG, the result of fit_line_path)``.
    """
    from .figures import figure_to_image, save_gif, save_png

    if x is None:
        from ..data import line

        x, y = line(n=40, a=2.0, b=1.0, noise=0.5, seed=0, x_range=(-1.0, 3.0))
        start = start or (-1.0, 3.0)
    x, y = _as_columns(x, y)
    start = start or (0.0, 0.0)
    result = fit_line_path(x, y, optimizer, lr, steps, batch_size, start)
    if gif:
        last = len(result["cost"]) - 1
        shown = sorted({int(k) for k in xp.unique(xp.geomspace(1, last + 1, 20).round() - 1)})
        save_gif([figure_to_image(_frame(result, x, y, k, names)) for k in shown], gif)
    return save_png(_frame(result, x, y, len(result["cost"]) - 1, names), out), result


def _frame(result: dict, x, y, step: int, names):
    from .figures import pyplot

    plt = pyplot()
    fig, (ax_line, ax_cost, ax_fall) = plt.subplots(
        1, 3, figsize=(13, 4), dpi=70, gridspec_kw={"width_ratios": [1.1, 1.1, 0.9]}
    )
    _draw_points_and_lines(ax_line, result, x, y, step, names)
    _draw_cost_surface(ax_cost, result, x, y, step)
    _draw_cost_falling(ax_fall, result, step)
    name = {"gd": "gradient descent", "sgd": "SGD", "adam": "Adam"}[result["optimizer"]]
    batch = f", batch {result['batch_size']}" if result["batch_size"] < len(x) else ""
    rule = (
        "w <- w - lr dJ/dw,  b <- b - lr dJ/db"
        if result["optimizer"] == "gd"
        else "each step follows the slopes of a mini-batch's cost"
        if result["optimizer"] == "sgd"
        else "steps scaled by the recent sizes of the slopes"
    )
    ending = ": it diverges" if result["diverged"] else ""
    fig.suptitle(
        f"{name} finds the best-fit line (lr = {result['lr']:.3g}{batch}){ending}. {rule}",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def _draw_points_and_lines(ax, result, x, y, step, names):
    ax.scatter(x, y, s=14, color="tab:blue", alpha=0.7, label="points", zorder=3)
    grid = xp.linspace(x.min(), x.max(), 2)
    for k in range(max(0, step - 5), step):  # the last few lines, fading
        ax.plot(grid, result["w"][k] * grid + result["b"][k], color="tab:red", alpha=0.12)
    w, b = result["w"][step], result["b"][step]
    ax.plot(
        grid, w * grid + b, color="tab:red", lw=2, label=f"step {step}: y = {w:.3g} x + {b:.3g}"
    )
    w_best, b_best = result["least_squares"]
    ax.plot(grid, w_best * grid + b_best, "k--", lw=1, label="least squares")
    low, high = y.min(), y.max()
    ax.set_ylim(low - 0.3 * (high - low), high + 0.3 * (high - low))
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("the line moves through the points", fontsize=10)


def _draw_cost_surface(ax, result, x, y, step):
    w_best, b_best = result["least_squares"]
    w0, b0 = result["w"][0], result["b"][0]
    half_w = 1.3 * max(abs(w0 - w_best), 0.5)
    half_b = 1.3 * max(abs(b0 - b_best), 0.5)
    ws = xp.linspace(w_best - half_w, w_best + half_w, 80)
    bs = xp.linspace(b_best - half_b, b_best + half_b, 80)
    grid_w, grid_b = xp.meshgrid(ws, bs)
    surface = ((grid_w[..., None] * x + grid_b[..., None] - y) ** 2).mean(axis=-1)
    filled = ax.contourf(grid_w, grid_b, xp.log10(surface), levels=25, cmap="viridis", alpha=0.85)
    ax.figure.colorbar(filled, ax=ax, label="log10 J", format="%.1f")
    ax.contour(grid_w, grid_b, xp.log10(surface), levels=12, colors="white", linewidths=0.4)
    path_w, path_b = result["w"][: step + 1], result["b"][: step + 1]
    ax.plot(path_w, path_b, "-o", color="tab:red", ms=3, lw=1)
    ax.plot([w0], [b0], "o", ms=9, mfc="white", mec="k", mew=2, label="start", zorder=4)
    ax.plot(path_w[-1:], path_b[-1:], "o", color="tab:red", mec="white", ms=8, zorder=4)
    # the star marks the optimum, as in the optimizer race
    ax.plot([w_best], [b_best], "*", color="gold", ms=16, mec="k", label="least squares")
    ax.set_xlim(ws[0], ws[-1])
    ax.set_ylim(bs[0], bs[-1])
    ax.set_xlabel("w (slope of the line)")
    ax.set_ylabel("b (intercept)")
    ax.legend(fontsize=8, loc="upper right")
    slope_w, slope_b = result["slope_w"][step], result["slope_b"][step]
    ax.set_title(
        f"the cost J(w, b) and the path of the steps\n"
        f"dJ/dw = {slope_w:+.3g}: step w {_direction(slope_w)}; "
        f"dJ/db = {slope_b:+.3g}: step b {_direction(slope_b)}",
        fontsize=9,
    )


def _direction(slope: float) -> str:
    """Against the slope: a positive slope means uphill is to the right, so step left."""
    if slope == 0:
        return "nowhere (flat)"
    return "left" if slope > 0 else "right"


def _draw_cost_falling(ax, result, step):
    costs = result["cost"][: step + 1]
    ax.semilogy(range(len(costs)), costs, color="tab:red", label="cost J")
    ax.axhline(result["least_squares_cost"], color="k", ls="--", lw=1, label="least-squares cost")
    ax.set_xlim(0, len(result["cost"]) - 1)
    finite = [c for c in result["cost"] if xp.isfinite(c)]
    ax.set_ylim(0.5 * result["least_squares_cost"], 2 * max(finite))
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    trend = "falls" if costs[-1] <= costs[0] else "grows"
    ax.set_title(f"the cost {trend}: {costs[-1]:.4g} at step {step}", fontsize=10)
