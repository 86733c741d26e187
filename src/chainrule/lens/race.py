"""The optimizer race: GD, noisy SGD, momentum, Nesterov, RMSprop and Adam, started from the same
point on 2-D cost surfaces, each moved by chainrule's own optimizer classes (and so by the same
update rules that train networks)."""

from __future__ import annotations

from .. import optim
from ..backend import new_rng, xp
from ..nn.module import Parameter

# name -> (cost of a (2,) tensor p, start, plot extent (xmin, xmax, ymin, ymax), learning rates)
SURFACES = {
    "bowl": (
        lambda p: p[0] ** 2 + p[1] ** 2,
        (-1.5, 1.2),
        (-2, 2, -2, 2),
        {"gd": 0.1, "adaptive": 0.1},
    ),
    "valley": (
        lambda p: 0.05 * p[0] ** 2 + 2 * p[1] ** 2,
        (-4.0, 1.0),
        (-5, 5, -1.5, 1.5),
        {"gd": 0.2, "adaptive": 0.1},
    ),
    "rosenbrock": (
        lambda p: (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2,
        (-1.2, 1.0),
        (-2, 2, -1, 3),
        {"gd": 0.0015, "adaptive": 0.1},
    ),
    "saddle": (
        lambda p: p[0] ** 2 - p[1] ** 2 + 0.25 * p[1] ** 4,
        (-1.5, 0.01),
        (-2, 2, -2, 2),
        {"gd": 0.05, "adaptive": 0.05},
    ),
}

# the lowest points of each surface (the saddle has two, the valley and bowl one, at the origin)
MINIMA = {
    "bowl": [(0.0, 0.0)],
    "valley": [(0.0, 0.0)],
    "rosenbrock": [(1.0, 1.0)],
    "saddle": [(0.0, -(2**0.5)), (0.0, 2**0.5)],
}
# one colour per racer, told apart also by colour-blind readers (Okabe and Ito's palette)
COLOURS = {
    "GD": "#0072b2",
    "SGD (noisy)": "#e69f00",
    "momentum": "#009e73",
    "Nesterov": "#d55e00",
    "RMSprop": "#cc79a7",
    "Adam": "#000000",
}


def racers(lrs: dict) -> dict:
    """The contestants: name -> (optimizer factory, gradient noise)."""
    gd, adaptive = lrs["gd"], lrs["adaptive"]
    return {
        "GD": (lambda ps: optim.GD(ps, lr=gd), 0.0),
        "SGD (noisy)": (lambda ps: optim.GD(ps, lr=gd), 0.5),
        "momentum": (lambda ps: optim.SGD(ps, lr=gd, momentum=0.9), 0.0),
        "Nesterov": (lambda ps: optim.SGD(ps, lr=gd, momentum=0.9, nesterov=True), 0.0),
        "RMSprop": (lambda ps: optim.RMSprop(ps, lr=adaptive / 5), 0.0),
        "Adam": (lambda ps: optim.Adam(ps, lr=adaptive), 0.0),
    }


def trajectory(cost, start, make_optimizer, steps: int, noise: float = 0.0, seed: int = 0):
    """Positions (steps + 1, 2) of an optimizer minimising ``cost`` from ``start``.

    ``noise`` adds Gaussian noise of that relative size to each gradient: the mini-batch
    gradient of SGD is a noisy estimate of the true one.
    """
    p = Parameter(xp.array(start, dtype=xp.float64))
    optimizer = make_optimizer([p])
    rng = new_rng(seed)
    points = [p._data.copy()]
    for _ in range(steps):
        optimizer.zero_grad()
        cost(p).backward()
        if noise:
            p.grad._data += noise * (xp.abs(p.grad._data) + 1.0) * rng.standard_normal(2)
        optimizer.step()
        if not xp.all(xp.isfinite(p._data)) or xp.abs(p._data).max() > 1e3:
            break
        points.append(p._data.copy())
    return xp.array(points)


def run_race(surface: str = "rosenbrock", steps: int = 300) -> dict:
    """Trajectories of every racer on a named surface: name -> (n, 2) array."""
    cost, start, _, lrs = SURFACES[surface]
    return {
        name: trajectory(cost, start, make, steps, noise)
        for name, (make, noise) in racers(lrs).items()
    }


def plot_race(path, surface: str = "rosenbrock", steps: int = 300, gif=None, frames: int = 12):
    """Contours of the surface (with a colour scale of the cost) and every racer's path from the
    start (a circle) towards the minimum (a star, as in the fit-line picture); with ``gif``, an
    animation of the race, its step count on every frame."""
    from .figures import figure_to_image, pyplot, save_gif, save_png

    plt = pyplot()
    cost, start, (x0, x1, y0, y1), _ = SURFACES[surface]
    paths = run_race(surface, steps)
    gx, gy = xp.meshgrid(xp.linspace(x0, x1, 150), xp.linspace(y0, y1, 150))
    height = cost(xp.stack([gx, gy]))
    levels = xp.quantile(height, xp.linspace(0.01, 0.95, 25))

    def frame(upto=None):
        fig, ax = plt.subplots(figsize=(8, 5.5), dpi=100)
        contours = ax.contour(gx, gy, height, levels=xp.unique(levels), cmap="Greys")
        fig.colorbar(contours, ax=ax, label="cost", format="%.3g")
        for name, points in paths.items():
            shown = points[: upto or len(points)]
            ax.plot(*shown.T, ".-", ms=3, lw=1.4, color=COLOURS[name], label=name)
        ax.plot(*start, "o", ms=10, mfc="white", mec="k", mew=2, label="start", zorder=5)
        minima = xp.array(MINIMA[surface])
        ax.plot(*minima.T, "*", ms=16, mfc="gold", mec="k", ls="none", label="minimum", zorder=5)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("p1")
        ax.set_ylabel("p2")
        ax.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4)
        done = steps if upto is None else upto - 1
        ax.set_title(f"optimizer race on the {surface} surface: step {done} of {steps}")
        fig.tight_layout()
        return fig

    if gif:
        marks = xp.unique(xp.linspace(1, steps + 1, min(frames, steps + 1)).astype(int))
        save_gif([figure_to_image(frame(int(m))) for m in marks], gif)
    return save_png(frame(), path), paths
