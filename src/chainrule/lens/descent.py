"""Gradient descent as a ball rolling down a hill: a 1-D cost, the slope (the gradient) at each
step, and what the learning rate does (too small crawls, right converges, too large overshoots).
"""

from __future__ import annotations

from ..backend import xp
from ..nn.module import Parameter
from ..optim import GD

COSTS = {
    "parabola": lambda w: (w - 2.0) ** 2 + 1.0,
    "quartic": lambda w: (w - 2.0) ** 4 / 8 + (w - 2.0) ** 2 / 2 + 1.0,
}
LEARNING_RATES = {"too small": 0.05, "about right": 0.3, "too large": 1.02}


def descent_path(cost, start: float, lr: float, steps: int) -> dict:
    """Run gradient descent on ``cost(w)`` (a function of a one-element tensor) from ``start``.

    Returns the positions, costs and slopes dcost/dw (computed by backpropagation) of each step.
    """
    w = Parameter(xp.array([start], dtype=xp.float64))
    optimizer = GD([w], lr=lr)
    positions, costs, slopes = [], [], []
    for _ in range(steps + 1):
        loss = cost(w).sum()
        optimizer.zero_grad()
        loss.backward()
        positions.append(float(w._data[0]))
        costs.append(loss.item())
        slopes.append(float(w.grad._data[0]))
        if not xp.isfinite(loss.item()) or abs(w._data[0]) > 1e6:
            break
        optimizer.step()  # w <- w - lr * slope: downhill, whatever the slope's sign
    return {"w": positions, "cost": costs, "slope": slopes, "lr": lr}


def _panel(ax, cost, path, title, upto=None):
    ws = path["w"][: (upto or len(path["w"]))]
    lo, hi = min(min(ws), -1.0) - 0.5, max(max(ws), 5.0) + 0.5
    lo, hi = max(lo, -6), min(hi, 10)
    grid = xp.linspace(lo, hi, 200)
    curve = [cost(Parameter(xp.array([g]))).item() for g in grid]
    ax.plot(grid, curve, color="0.4")
    shown = [(w, c, s) for w, c, s in zip(ws, path["cost"], path["slope"]) if lo <= w <= hi]
    for k, (w, c, s) in enumerate(shown):
        ax.plot([w], [c], "o", color="tab:red", alpha=0.3 + 0.7 * (k + 1) / len(shown), ms=9)
        if k == len(shown) - 1:
            sign = "+" if s > 0 else "-"
            move = "left" if s > 0 else "right"
            ax.text(  # at the top, where no tick label or point is
                0.5,
                0.96,
                f"slope {sign}: step {move}",
                transform=ax.transAxes,
                ha="center",
                va="top",
                fontsize=8,
                bbox=dict(fc="white", ec="0.8", alpha=0.9),
            )
    ax.set_title(f"{title}: lr = {path['lr']}", fontsize=10)
    ax.set_xlabel("weight w")
    ax.set_ylim(min(curve) - 0.5, max(curve) + 0.5)


def plot_descent(
    path,
    cost: str = "parabola",
    start: float = -1.0,
    steps: int = 12,
    learning_rates: dict | None = None,
    gif=None,
):
    """Three panels (learning rate too small, about right, too large); with ``gif``, also an
    animation of the ball's steps."""
    from .figures import figure_to_image, pyplot, save_gif, save_png

    plt = pyplot()
    fn = COSTS[cost] if isinstance(cost, str) else cost
    learning_rates = learning_rates or LEARNING_RATES
    paths = {name: descent_path(fn, start, lr, steps) for name, lr in learning_rates.items()}

    def frame(upto=None):
        fig, axes = plt.subplots(1, len(paths), figsize=(4 * len(paths), 3.4), dpi=70)
        for ax, (name, p) in zip(xp.atleast_1d(axes), paths.items()):
            _panel(ax, fn, p, name, upto)
        xp.atleast_1d(axes)[0].set_ylabel("cost")
        done = steps if upto is None else upto - 1
        fig.suptitle(f"gradient descent: w <- w - lr * slope (step {done} of {steps})", fontsize=11)
        fig.tight_layout()
        return fig

    if gif:
        save_gif([figure_to_image(frame(k)) for k in range(1, steps + 2)], gif)
    return save_png(frame(), path), paths
