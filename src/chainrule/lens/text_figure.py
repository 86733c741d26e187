"""Pictures of a character-level model: attention weights as heat maps (one per head and layer,
the characters on both axes) and the next character's probabilities at several temperatures."""

from __future__ import annotations

from .figures import POSITIVE
from .text import Attention, NextCharacter


def shown(char: str) -> str:
    """A character as a tick label: a space or a newline made visible."""
    return {" ": "␣", "\n": "⏎", "\t": "⇥"}.get(char, char)


def weight_colormap():
    """Weights from 0 (white) to 1 (the lens's blue): attention weights are never negative."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("weight", ["white", POSITIVE])


def plot_attention(attention: Attention, path, title: str = ""):
    """One heat map per layer (rows) and head (columns): row i is where the character at i
    looks (its weights over the characters before it, summing to 1)."""
    from .figures import pyplot, save_png

    plt = pyplot()
    layers, heads = len(attention.weights), len(attention.weights[0])
    labels = [shown(c) for c in attention.text]
    side = max(3.2, 0.24 * len(labels) + 1.2)
    fig, axes = plt.subplots(
        layers,
        heads,
        figsize=(side * heads + 1.2, side * layers + 0.6),
        dpi=80,
        squeeze=False,
        layout="constrained",
    )
    for k, row in enumerate(axes):
        for h, ax in enumerate(row):
            image = ax.imshow(attention.weights[k][h], cmap=weight_colormap(), vmin=0, vmax=1)
            ticks = range(len(labels))
            ax.set_xticks(ticks, labels, fontsize=8, fontfamily="monospace")
            ax.set_yticks(ticks, labels, fontsize=8, fontfamily="monospace")
            ax.tick_params(length=0)
            ax.set_title(f"layer {k + 1}, head {h + 1}", fontsize=10)
            if k == layers - 1:
                ax.set_xlabel("looks at (key)", fontsize=9)
            if h == 0:
                ax.set_ylabel("character (query)", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    fig.suptitle(
        title or f"attention of {attention.text!r}: softmax(q k^T / sqrt(d)), causal", fontsize=11
    )
    return save_png(fig, path)


def plot_next_character(result: NextCharacter, path):
    """The probability of each next character as bars, one panel per temperature."""
    from .figures import pyplot, save_png

    plt = pyplot()
    temperatures = list(result.probabilities)
    fig, axes = plt.subplots(
        1, len(temperatures), figsize=(4.6 * len(temperatures), 3.8), dpi=80, sharey=True
    )
    labels = [shown(c) for c in result.chars]
    top = max(float(p.max()) for p in result.probabilities.values())
    for ax, t in zip(axes, temperatures):
        ax.bar(range(len(labels)), result.probabilities[t], color=POSITIVE)
        ax.set_xticks(range(len(labels)), labels, fontsize=7, fontfamily="monospace")
        ax.tick_params(axis="x", length=0)
        ax.set_ylim(0, min(1.0, top * 1.1))
        ax.set_title(f"T = {t:g}", fontsize=10)
        ax.set_xlabel("next character", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("probability")
    fig.suptitle(
        f"after {result.context!r}: "
        r"$p_i = \exp(z_i / T)\ /\ \sum_j \exp(z_j / T)$"
        "   (T < 1 sharpens, T > 1 flattens)",
        fontsize=11,
    )
    fig.tight_layout()
    return save_png(fig, path)
