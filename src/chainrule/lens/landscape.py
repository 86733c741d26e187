"""The loss landscape: the loss along the straight line from the initial to the trained weights,
and a 2-D slice around the trained weights, with the training trajectory projected onto it. The
slice is spanned by two random, filter-normalised directions, or by the two directions the
trajectory moved most along, so that its projection shows the path itself (both from Li et al.,
2018). The model is restored after."""

from __future__ import annotations

from .. import autograd
from ..backend import new_rng, xp
from ..tensor import Tensor, as_array


def flat_weights(model):
    return xp.concatenate([p._data.ravel().astype(xp.float64) for p in model.parameters()])


def set_flat_weights(model, flat) -> None:
    start = 0
    for p in model.parameters():
        p._data[...] = flat[start : start + p.numel()].reshape(p.shape)
        start += p.numel()


@autograd.no_grad()
def loss_at(model, loss_fn, x, y, flat) -> float:
    set_flat_weights(model, flat)
    return loss_fn(model(Tensor._make(as_array(x), False)), y).item()


def filter_normalized_direction(model, rng):
    """A random direction with each filter (row of a weight, or a whole bias) scaled to the norm
    of the same filter in the model, so that the picture does not depend on weight scale."""
    parts = []
    for p in model.parameters():
        d = rng.standard_normal(p.shape)
        if p.ndim <= 1:
            d = d * xp.linalg.norm(p._data) / (xp.linalg.norm(d) + 1e-12)
        else:
            rows_d = d.reshape(p.shape[0], -1)
            rows_p = p._data.reshape(p.shape[0], -1)
            rows_d *= (xp.linalg.norm(rows_p, axis=1) / (xp.linalg.norm(rows_d, axis=1) + 1e-12))[
                :, None
            ]
        parts.append(d.ravel())
    return xp.concatenate(parts)


def loss_along_line(model, loss_fn, x, y, start, end, points: int = 25, beyond: float = 0.25):
    """Loss at (1 - t) start + t end for t in [-beyond, 1 + beyond] (start, end: flat weights)."""
    saved = flat_weights(model)
    try:
        ts = xp.linspace(-beyond, 1 + beyond, points)
        losses = [loss_at(model, loss_fn, x, y, (1 - t) * start + t * end) for t in ts]
    finally:
        set_flat_weights(model, saved)
    return ts, xp.array(losses)


def path_directions(model, trajectory, rng):
    """Two orthonormal directions along which the trajectory (flat weight vectors) moved most
    from the current weights: its first two principal components. A straight path has one; the
    second is then random, made orthogonal to it."""
    moves = xp.stack([w - flat_weights(model) for w in trajectory])
    _, sizes, rows = xp.linalg.svd(moves, full_matrices=False)
    if len(sizes) > 1 and sizes[1] > 1e-6 * sizes[0]:
        return rows[0], rows[1]
    second = filter_normalized_direction(model, rng)
    second -= (second @ rows[0]) * rows[0]
    return rows[0], second / xp.linalg.norm(second)


def loss_surface(
    model,
    loss_fn,
    x,
    y,
    span: float | None = 1.0,
    resolution: int = 21,
    seed: int = 0,
    trajectory=(),
    directions: str = "random",
):
    """Loss on the plane centre + a d1 + b d2 (centre: the current weights), a, b in [-span, span];
    the trajectory (a list of flat weight vectors) is projected onto (d1, d2) by least squares.

    Args:
        directions: "random" (filter-normalised: a = 1 is a step the size of each filter) or
            "path" (the trajectory's main directions, :func:`path_directions`; a, b in weight
            units).
        span: None: a quarter more than the farthest point of the projected trajectory.
    """
    rng = new_rng(seed)
    centre = flat_weights(model)
    if directions == "path":
        d1, d2 = path_directions(model, trajectory, rng)
    else:
        d1, d2 = filter_normalized_direction(model, rng), filter_normalized_direction(model, rng)
    basis = xp.stack([d1, d2], axis=1)
    projected = xp.array([xp.linalg.lstsq(basis, w - centre, rcond=None)[0] for w in trajectory])
    projected = projected.reshape(-1, 2)
    if span is None:
        span = 1.25 * float(xp.abs(projected).max()) if projected.size else 1.0
    alphas = xp.linspace(-span, span, resolution)
    grid = xp.empty((resolution, resolution))
    try:
        for i, b in enumerate(alphas):
            for j, a in enumerate(alphas):
                grid[i, j] = loss_at(model, loss_fn, x, y, centre + a * d1 + b * d2)
    finally:
        set_flat_weights(model, centre)
    return {"alphas": alphas, "loss": grid, "trajectory": projected}


def plot_landscape(
    path, model, loss_fn, x, y, initial, trajectory=(), resolution: int = 21, description=""
):
    """Left: loss along the line initial -> trained. Right: the loss on the plane of the
    trajectory's two main directions, with the trajectory on it. ``description`` names the
    network and the data in the title."""
    from .figures import pyplot, save_png

    plt = pyplot()
    ts, line = loss_along_line(model, loss_fn, x, y, initial, flat_weights(model))
    surface = loss_surface(
        model, loss_fn, x, y, None, resolution, trajectory=trajectory, directions="path"
    )
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), dpi=80)
    left.plot(ts, line, "-o", ms=3)
    left.axvline(0, color="0.6", ls=":")
    left.axvline(1, color="0.6", ls=":")
    left.set_xlabel("t: weights (1 - t) initial + t trained")
    left.set_ylabel("loss")
    left.set_title("loss along the straight line from the initial to the trained weights")
    a = surface["alphas"]
    contour = right.contourf(a, a, xp.log10(surface["loss"] + 1e-12), levels=30, cmap="viridis")
    fig.colorbar(contour, ax=right, label="log10 loss", format="%.2f")
    if len(surface["trajectory"]):
        t = surface["trajectory"]
        right.plot(*t.T, "w.-", ms=6, lw=1.5, label="training path (one point an epoch)")
        right.plot(*t[0], "o", ms=9, mfc="white", mec="k", mew=2, label="initial weights")
    right.plot([0], [0], "D", ms=8, mfc="tab:red", mec="white", label="trained weights")
    right.legend(fontsize=8, loc="upper right", facecolor="0.7")  # the path is white
    right.set_xlabel("direction 1: the path's main direction (weight units)")
    right.set_ylabel("direction 2: its second direction")
    right.set_title("the loss on the plane of the training path")
    fig.suptitle(f"loss landscape of {description}" if description else "loss landscape")
    fig.tight_layout()
    return save_png(fig, path), {"line": (ts, line), "surface": surface}
