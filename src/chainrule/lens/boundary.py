"""The decision boundary over time: a small network learning to separate 2-D points (spirals,
moons, xor...), drawn every few epochs."""

from __future__ import annotations

from .. import autograd, data, nn, optim
from ..backend import manual_seed, xp
from ..tensor import Tensor, as_array
from ..train import fit

DATASETS = {
    "spirals": data.spirals,
    "moons": data.moons,
    "xor": data.xor,
    "circles": data.circles,
    "blobs": data.blobs,
}


def grid_for(points, resolution: int = 120):
    lo, hi = points.min(axis=0) - 0.5, points.max(axis=0) + 0.5
    gx, gy = xp.meshgrid(
        xp.linspace(lo[0], hi[0], resolution), xp.linspace(lo[1], hi[1], resolution)
    )
    return gx, gy, xp.stack([gx.ravel(), gy.ravel()], axis=1).astype(xp.float32)


@autograd.no_grad()
def predicted_class(model, points):
    return model(Tensor._make(as_array(points), False))._data.argmax(axis=1)


def boundary_snapshots(
    dataset: str = "spirals",
    epochs: int = 100,
    every: int = 10,
    hidden=(32, 32),
    lr: float = 0.01,
    seed: int = 0,
    resolution: int = 120,
):
    """Train a small tanh network on a 2-D data set; return the points, the grid, and the
    predicted class on the grid after every ``every`` epochs, with the accuracy then."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown 2-D data set {dataset!r}; choose from {', '.join(DATASETS)}")
    x, y = DATASETS[dataset](n=400, seed=seed)
    manual_seed(seed)
    layers, width = [], 2
    for size in hidden:
        layers += [nn.Linear(width, size), nn.Tanh()]
        width = size
    model = nn.Sequential(*layers, nn.Linear(width, int(y.max()) + 1))
    optimizer = optim.Adam(model.parameters(), lr=lr)
    gx, gy, points = grid_for(x, resolution)
    snapshots = [(0, predicted_class(model, points).reshape(gx.shape), None)]
    for start in range(0, epochs, every):
        history = fit(
            model,
            nn.CrossEntropyLoss(),
            optimizer,
            (x, y),
            epochs=min(every, epochs - start),
            batch_size=32,
            progress=False,
            seed=seed + start,
        )
        snapshots.append(
            (
                start + len(history),
                predicted_class(model, points).reshape(gx.shape),
                history["accuracy"][-1],
            )
        )
    return {"x": x, "y": y, "gx": gx, "gy": gy, "snapshots": snapshots, "model": model}


def boundary_of(model, x, y, resolution: int = 120) -> dict:
    """A trained model's boundary over its 2-D points ``x`` (labels ``y``): the result of
    :func:`boundary_snapshots` with one snapshot, the model as it is."""
    gx, gy, points = grid_for(x, resolution)
    accuracy = float((predicted_class(model, x) == y).mean())
    regions = predicted_class(model, points).reshape(gx.shape)
    return {"x": x, "y": y, "gx": gx, "gy": gy, "snapshots": [(None, regions, accuracy)]}


def plot_boundary(
    path,
    dataset: str = "spirals",
    epochs: int = 100,
    every: int = 10,
    gif=None,
    result: dict | None = None,
    **options,
):
    """The final boundary as PNG (and every snapshot as an animated GIF with ``gif``).
    ``result``: a trained run's boundary (:func:`boundary_of`) to draw instead of training."""
    from .figures import class_colormap, figure_to_image, pyplot, save_gif, save_png

    plt = pyplot()
    result = result or boundary_snapshots(dataset, epochs, every, **options)

    classes = int(result["y"].max()) + 1
    colours = class_colormap(classes)  # the playground's

    def frame(epoch, regions, acc):
        fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=70)
        levels = xp.arange(classes + 1) - 0.5
        ax.contourf(result["gx"], result["gy"], regions, alpha=0.35, cmap=colours, levels=levels)
        ax.scatter(
            result["x"][:, 0],
            result["x"][:, 1],
            c=result["y"],
            cmap=colours,
            vmin=-0.5,
            vmax=classes - 0.5,
            s=8,
            edgecolors="k",
            linewidths=0.2,
        )
        accuracy = "" if acc is None else f", accuracy {acc:.2f}"
        when = "of the trained run" if epoch is None else f"after {epoch} epochs"
        ax.set_title(f"{dataset}: decision boundary {when}{accuracy}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return fig

    if gif:
        save_gif([figure_to_image(frame(*s)) for s in result["snapshots"]], gif)
    return save_png(frame(*result["snapshots"][-1]), path), result
