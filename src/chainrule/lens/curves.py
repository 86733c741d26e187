"""Learning curves: training and validation loss and accuracy (a regression: RMSE and R^2),
epoch by epoch."""

from __future__ import annotations

import csv
from pathlib import Path

from ..train.loop import History


def read_history(source) -> History:
    """A History from a History, or from a run folder / ``history.csv`` file."""
    if isinstance(source, History):
        return source
    path = Path(source)
    path = path / "history.csv" if path.is_dir() else path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no history here (train a run first)")
    with open(path, newline="") as f:
        rows = [
            {k: float(v) for k, v in row.items() if v not in ("", None)}
            for row in csv.DictReader(f)
        ]
    return History(rows)


TITLES = {
    "loss": "loss",
    "accuracy": "accuracy",
    "rmse": "RMSE (in the target's units)",
    "r2": "R^2 (1 is perfect)",
}


def plot_learning_curves(source, path):
    """Loss and accuracy per epoch (a regression: loss, RMSE and R^2), training solid and
    validation dashed."""
    from .figures import pyplot, save_png

    plt = pyplot()
    history = read_history(source)
    epochs = history["epoch"] if "epoch" in history.keys else list(range(1, len(history) + 1))
    regression = "r2" in history.keys
    metrics = ("loss", "rmse", "r2") if regression else ("loss", "accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), dpi=80)
    for ax, metric in zip(axes, metrics):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history.keys:
                ax.plot(epochs, history[key], style, marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(TITLES[metric])
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)
