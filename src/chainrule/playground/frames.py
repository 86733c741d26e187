"""What the page draws, computed from the network as it is now: the messages the server streams.

* ``data`` (once per setup): the points in the units they were drawn in, the classes, the view's
  domain, the network's shape.
* ``frame`` (up to 20 a second while training): every neuron's output over a grid of the view
  (its little picture), the network's output over the same grid (the big picture), the weights,
  the losses so far and, in the best-fit-line mode, the cost surface over ``(w, b)``.

Pictures travel as base64 bytes, one byte a cell: ``v = 127.5 (1 + a / scale)`` for a neuron's
output ``a`` (``scale`` its largest size on the grid), the winning class and its confidence for
classes, ``255 (y - low) / (high - low)`` for a regression's values.
"""

from __future__ import annotations

import base64
import math

from .. import nn
from ..backend import ignore_float_errors, xp
from ..engine import no_grad
from ..lens.fitline import least_squares
from ..tensor import Tensor, as_array

GRID = 64  # cells a side of the output picture (points x and y)
NEURON_STEP = 2  # a neuron's picture takes every 2nd cell: 32 x 32
CURVE_POINTS = 200  # one input: where the output curve is evaluated
STRIP_POINTS = 50  # one input: cells of a neuron's picture
HISTORY_POINTS = 300  # at most this many points of the loss curves travel per frame
COST_GRID = 41


def encode(values) -> str:
    """Numbers 0..255 as bytes, as base64 text (NaN, from a diverged network, as 0)."""
    values = xp.clip(xp.nan_to_num(xp.asarray(values, dtype=xp.float64)), 0, 255)
    return base64.b64encode(values.astype(xp.uint8).tobytes()).decode()


def signed_bytes(values) -> tuple[str, float]:
    """``values`` as bytes around 127.5, scaled by their largest size (also returned)."""
    values = xp.nan_to_num(xp.asarray(values, dtype=xp.float64), posinf=0.0, neginf=0.0)
    scale = float(xp.abs(values).max()) if values.size else 0.0
    scale = scale if math.isfinite(scale) and scale > 0 else 1.0
    return encode(xp.rint(127.5 * (1 + xp.clip(values / scale, -1, 1)))), scale


def grid_points(domain: tuple, inputs: int):
    """The points of the view where the network is evaluated: a GRID x GRID raster (rows from
    the top, i.e. from the largest y) or, for one input, CURVE_POINTS values of x."""
    (x0, x1), (y0, y1) = domain
    if inputs == 1:
        return xp.linspace(x0, x1, CURVE_POINTS, dtype=xp.float32)[:, None]
    step_x, step_y = (x1 - x0) / GRID, (y1 - y0) / GRID
    xs = x0 + step_x * (xp.arange(GRID) + 0.5)
    ys = y1 - step_y * (xp.arange(GRID) + 0.5)
    gx, gy = xp.meshgrid(xs, ys)
    return xp.stack([gx.ravel(), gy.ravel()], axis=1).astype(xp.float32)


def columns_of(model, x) -> list:
    """The network's outputs layer by layer at the points ``x`` (already scaled): the features,
    each hidden layer after its activation, and the output layer (before softmax/sigmoid).
    Each as an array (points, neurons)."""
    columns, after_linear = [], False
    layers = list(model)
    with no_grad():
        h = Tensor._make(x, False)
        for i, layer in enumerate(layers):
            h = layer(h)
            if isinstance(layer, nn.PlaneFeatures):
                columns.append(as_array(h))
            elif isinstance(layer, nn.Linear):
                after_linear = True
                if i == len(layers) - 1:
                    columns.append(as_array(h))
            elif after_linear:  # the activation right after a hidden Linear
                columns.append(as_array(h))
                after_linear = False
    return columns


def probabilities(logits, output: str):
    """Class probabilities from the output layer: softmax, or [1 - p, p] for one sigmoid."""
    logits = xp.asarray(logits, dtype=xp.float64)
    if output == "sigmoid":
        p = 1 / (1 + xp.exp(-xp.clip(logits[:, 0], -500, 500)))
        return xp.stack([1 - p, p], axis=1)
    shifted = xp.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def data_message(run) -> dict:
    """The ``data`` event: points, classes, domain and the network's shape."""
    points, setup = run.points, run.setup
    n_added = points.added
    train = _rows(points.x_train, points.y_train)
    return {
        "task": points.task,
        "inputs": points.inputs,
        "classes": [str(c) for c in points.classes],
        "domain": [list(r) for r in points.domain],
        "train": train,
        "test": _rows(points.x_test, points.y_test),
        "added": n_added,
        "value_range": _value_range(points),
        "feature_names": points.feature_names,
        "target_name": points.target_name,
        "problem": points.problem,
        "fit_line": run.fit_line,
        "network": run.description,
        "columns": [len(setup.features), *setup.hidden, run.outputs],
        "features": list(setup.features),
        "activations": list(setup.activations),
        "output": setup.output,
    }


def _rows(x, y) -> list:
    values = xp.concatenate(
        [xp.asarray(x, dtype=xp.float64), xp.asarray(y, xp.float64)[:, None]], 1
    )
    return [[float(f"{v:.5g}") for v in row] for row in values]


def _value_range(points) -> list | None:
    if points.task != "regression" or not len(points.y_all):
        return None
    low, high = float(points.y_all.min()), float(points.y_all.max())
    return [low, high if high > low else low + 1.0]


def frame_message(run, playing: bool, message: str | None) -> dict:
    """The ``frame`` event: the pictures, weights and losses of the network as it is now."""
    points, model = run.points, run.model
    model.eval()
    grid = grid_points(points.domain, points.inputs)
    with ignore_float_errors():  # a diverged network's overflow: its pictures say enough
        columns = columns_of(model, points.network_inputs(grid))
    frame = {
        "epoch": run.epoch,
        "playing": playing,
        "message": message,
        "steps": run.steps,
        "train": run.latest("train"),
        "test": run.latest("test"),
        "history": _history([run.start, *run.history] if len(run.start) > 1 else run.history),
        "output": _output_picture(run, columns[-1]),
        "neurons": [_neuron_pictures(c, points.inputs) for c in columns],
        "weights": [
            {"w": _rounded(layer.weight), "b": _rounded(layer.bias)}
            for layer in model
            if isinstance(layer, nn.Linear)
        ],
        "fit_line": _fit_line(run) if run.fit_line else None,
    }
    return frame


def _rounded(tensor) -> list:
    return xp.round(as_array(tensor).astype(xp.float64), 5).tolist()


def _neuron_pictures(values, inputs: int) -> list:
    """Each neuron's picture: 32 x 32 cells (one input: a strip of STRIP_POINTS)."""
    if inputs == 1:
        index = xp.linspace(0, CURVE_POINTS - 1, STRIP_POINTS).round().astype(xp.int64)
        cells = values[index]
    else:
        cells = values.reshape(GRID, GRID, -1)[::NEURON_STEP, ::NEURON_STEP].reshape(
            -1, values.shape[1]
        )
    pictures = []
    for k in range(values.shape[1]):
        data, scale = signed_bytes(cells[:, k])
        pictures.append({"map": data, "scale": float(f"{scale:.4g}")})
    return pictures


def _output_picture(run, logits) -> dict:
    """The big picture: for classes the winning class and its confidence per cell; for a
    regression the predicted value per cell (or, for one input, the curve y(x))."""
    points = run.points
    if points.task == "regression":
        values = logits[:, 0].astype(xp.float64) * points.target_std + points.target_mean
        if points.inputs == 1:
            return {"kind": "curve", "values": [float(f"{v:.6g}") for v in values]}
        low, high = _value_range(points)
        cells = xp.rint(255 * xp.clip((values - low) / (high - low), 0, 1))
        return {"kind": "values", "size": GRID, "map": encode(cells), "range": [low, high]}
    p = probabilities(logits, run.setup.output)
    k = p.shape[1]
    winner = p.argmax(axis=1)
    confidence = (p.max(axis=1) - 1 / k) / (1 - 1 / k)
    return {
        "kind": "classes",
        "size": GRID,
        "map": encode(winner),
        "confidence": encode(xp.rint(255 * xp.clip(confidence, 0, 1))),
    }


def _history(history: list) -> dict:
    """The loss curves, thinned to at most HISTORY_POINTS points (the last epoch kept)."""
    if not history:
        return {"epoch": [], "train": [], "test": []}
    n = len(history)
    index = sorted(set(xp.linspace(0, n - 1, min(n, HISTORY_POINTS)).round().astype(int).tolist()))
    rows = [history[i] for i in index]
    return {
        "epoch": [r["epoch"] for r in rows],
        "train": [_finite(r["loss"]) for r in rows],
        "test": [_finite(r.get("val_loss")) for r in rows],
    }


def _finite(value):
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None


def _fit_line(run) -> dict:
    """The best-fit-line mode: the neuron's (w, b) path over the cost surface
    ``J(w, b) = mean((w x + b - y)^2)`` of the standardised training points, and the line in
    the data's units."""
    points = run.points
    x = points.network_inputs(points.x_train)[:, 0].astype(xp.float64)
    y = points.network_targets(points.y_train)[:, 0].astype(xp.float64)
    path = xp.asarray(run.path, dtype=xp.float64)
    best = least_squares(x, y)
    reach = max(float(xp.abs(path - xp.asarray(best)).max()) * 1.2, 0.5)
    ws = xp.linspace(best[0] - reach, best[0] + reach, COST_GRID)
    bs = xp.linspace(best[1] + reach, best[1] - reach, COST_GRID)  # rows from the top
    # J is a quadratic in (w, b): its mean terms once, then every cell in one expression
    xx, xy_, yy = (x * x).mean(), (x * y).mean(), (y * y).mean()
    w, b = xp.meshgrid(ws, bs)
    cost = w * w * xx + 2 * w * b * x.mean() + b * b - 2 * w * xy_ - 2 * b * y.mean() + yy
    shade = xp.log1p(cost - cost.min())
    w_now, b_now = path[-1]
    (sigma,), (mu,) = points.standardizer.std.tolist(), points.standardizer.mean.tolist()
    slope = points.target_std * w_now / sigma
    intercept = points.target_mean + points.target_std * (b_now - w_now * mu / sigma)
    return {
        "w": float(w_now),
        "b": float(b_now),
        "path": [
            [float(f"{a:.5g}"), float(f"{c:.5g}")] for a, c in path[:: max(1, len(path) // 400)]
        ]
        + [[float(w_now), float(b_now)]],
        "cost": encode(xp.rint(255 * shade / (shade.max() or 1.0))),
        "size": COST_GRID,
        "w_range": [float(ws[0]), float(ws[-1])],
        "b_range": [float(bs[-1]), float(bs[0])],
        "optimum": [float(best[0]), float(best[1])],
        "cost_now": float(((w_now * x + b_now - y) ** 2).mean()),
        "line": [float(slope), float(intercept)],
    }
