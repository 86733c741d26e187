"""Learning curves: training and validation loss and accuracy (a regression: RMSE and R^2),
epoch by epoch."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..files import DataFileError, read_capped
from ..train.loop import History

MAX_HISTORY_BYTES = 64 * 2**20  # a million epochs of a dozen columns fit in far less


def read_history(source) -> History:
    """A History from a History, or from a run folder / ``history.csv`` file.

    Raises:
        DataFileError: the file is missing, not a regular file (a FIFO is never waited on), too
            large, or holds a cell that is not a number (naming its line and column).
    """
    if isinstance(source, History):
        return source
    path = Path(source)
    path = path / "history.csv" if path.is_dir() else path
    if not path.exists():
        raise DataFileError(f"{path}: no history here (train a run first)")
    text = read_capped(path, MAX_HISTORY_BYTES, "history.csv").decode("utf-8", "replace")
    rows = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
        except (TypeError, ValueError):
            raise DataFileError(f"{path}, line {line}: not a number in {row}") from None
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
