"""The learning-rate range test: train for a few batches while raising the learning rate
exponentially, and watch the loss; a good learning rate is where it falls fastest."""

from __future__ import annotations

import copy
import math

from ..backend import xp
from ..data import DataLoader


def lr_find(
    model,
    loss_fn,
    optimizer,
    train_data,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    steps: int = 100,
    batch_size: int = 64,
    smoothing: float = 0.1,
    seed: int = 0,
) -> dict:
    """Run the range test; the model and optimizer are restored afterwards.

    Returns ``lrs``, ``losses`` (exponentially smoothed) and ``suggestion``: the learning rate at
    the steepest descent of the smoothed loss. Stops early when the loss explodes (4x its minimum).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_find needs 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    saved_model, saved_optimizer = (
        copy.deepcopy(model.state_dict()),
        copy.deepcopy(optimizer.state_dict()),
    )
    saved_grads = [None if p.grad is None else p.grad._data.copy() for p in model.parameters()]
    was_training = model.training
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, seed=seed)
    factor = (end_lr / start_lr) ** (1 / max(steps - 1, 1))
    lrs, losses, average, best = [], [], None, math.inf
    batches = iter(())
    epoch = 0
    try:
        model.train()
        for step in range(steps):
            lr = start_lr * factor**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            try:
                x, y = next(batches)
            except StopIteration:
                batches = loader.epoch(epoch)
                epoch += 1
                x, y = next(batches)
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = loss.item()
            average = value if average is None else smoothing * value + (1 - smoothing) * average
            lrs.append(lr)
            losses.append(average)
            best = min(best, average)
            if not math.isfinite(average) or average > 4 * best:
                break
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        for p, grad in zip(model.parameters(), saved_grads):
            p.grad = grad
        model.train(was_training)
    return {"lrs": lrs, "losses": losses, "suggestion": suggest(lrs, losses)}


def suggest(lrs, losses) -> float:
    """The learning rate where the smoothed loss falls fastest (per unit of log lr)."""
    if len(lrs) < 3:
        return lrs[0]
    slopes = xp.gradient(xp.array(losses), xp.log(xp.array(lrs)))
    cut = len(slopes) - max(1, len(slopes) // 10)  # ignore the explosion at the end
    return float(lrs[int(xp.argmin(slopes[:cut]))])


def plot_lr_find(result: dict, path):
    from .figures import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4), dpi=80)
    ax.semilogx(result["lrs"], result["losses"])
    ax.axvline(
        result["suggestion"],
        color="tab:red",
        ls="--",
        label=f"suggested lr {result['suggestion']:.2g}",
    )
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    ax.set_title("learning-rate range test")
    ax.legend()
    fig.tight_layout()
    return save_png(fig, path)
