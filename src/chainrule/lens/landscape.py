"""The loss landscape: the loss along the straight line from the initial to the trained weights,
and a 2-D slice around the trained weights along two random, filter-normalised directions
(Li et al., 2018), with the training trajectory projected onto it. The model is restored after."""

from __future__ import annotations

from .. import autograd
from ..backend import new_rng, xp
from ..tensor import Tensor, as_array


def flat_weights(model):
    return xp.concatenate([p.data.ravel().astype(xp.float64) for p in model.parameters()])


def set_flat_weights(model, flat) -> None:
    start = 0
    for p in model.parameters():
        p.data[...] = flat[start : start + p.numel()].reshape(p.shape)
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
            d = d * xp.linalg.norm(p.data) / (xp.linalg.norm(d) + 1e-12)
        else:
            rows_d = d.reshape(p.shape[0], -1)
            rows_p = p.data.reshape(p.shape[0], -1)
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


def loss_surface(
    model, loss_fn, x, y, span: float = 1.0, resolution: int = 21, seed: int = 0, trajectory=()
):
    """Loss on the plane centre + a d1 + b d2 (centre: the current weights), a, b in [-span, span];
    the trajectory (a list of flat weight vectors) is projected onto (d1, d2) by least squares."""
    rng = new_rng(seed)
    centre = flat_weights(model)
    d1, d2 = filter_normalized_direction(model, rng), filter_normalized_direction(model, rng)
    alphas = xp.linspace(-span, span, resolution)
    grid = xp.empty((resolution, resolution))
    try:
        for i, b in enumerate(alphas):
            for j, a in enumerate(alphas):
                grid[i, j] = loss_at(model, loss_fn, x, y, centre + a * d1 + b * d2)
    finally:
        set_flat_weights(model, centre)
    basis = xp.stack([d1, d2], axis=1)
    projected = xp.array([xp.linalg.lstsq(basis, w - centre, rcond=None)[0] for w in trajectory])
    return {"alphas": alphas, "loss": grid, "trajectory": projected.reshape(-1, 2)}


def plot_landscape(
    path, model, loss_fn, x, y, initial, trajectory=(), span: float = 1.0, resolution: int = 21
):
    """Left: loss along the line initial -> trained. Right: the 2-D slice with the trajectory."""
    from .figures import pyplot, save_png

    plt = pyplot()
    ts, line = loss_along_line(model, loss_fn, x, y, initial, flat_weights(model))
    surface = loss_surface(model, loss_fn, x, y, span, resolution, trajectory=trajectory)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    left.plot(ts, line, "-o", ms=3)
    left.axvline(0, color="0.6", ls=":")
    left.axvline(1, color="0.6", ls=":")
    left.set_xlabel("t: 0 = initial weights, 1 = trained weights")
    left.set_ylabel("loss")
    left.set_title("loss along the straight line")
    a = surface["alphas"]
    contour = right.contourf(a, a, xp.log(surface["loss"] + 1e-12), levels=30, cmap="viridis")
    fig.colorbar(contour, ax=right, label="log loss")
    if len(surface["trajectory"]):
        t = surface["trajectory"]
        right.plot(t[:, 0], t[:, 1], "w.-", ms=4, label="training path (projected)")
        right.legend(fontsize=8)
    right.plot([0], [0], "r*", ms=12)
    right.set_title("2-D slice around the trained weights")
    fig.tight_layout()
    return save_png(fig, path), {"line": (ts, line), "surface": surface}
