"""Hand-made features of a point: what the TensorFlow playground feeds its networks.

A network that sees only ``x`` and ``y`` must bend its decision boundary out of straight lines;
given ``x^2 + y^2``-like inputs, one neuron can draw a circle. :class:`PlaneFeatures` computes
such features inside the model, so a saved model takes the raw point and nothing has to be
remembered beside it.
"""

from __future__ import annotations

from .. import api
from .layers import check_input
from .module import Module

# name -> (what it is, how it is computed from the columns x = p[:, 0:1], y = p[:, 1:2])
FEATURES = {
    "x": ("x", lambda x, y: x),
    "y": ("y", lambda x, y: y),
    "x2": ("x²", lambda x, y: x * x),
    "y2": ("y²", lambda x, y: y * y),
    "xy": ("xy", lambda x, y: x * y),
    "sinx": ("sin x", lambda x, y: api.sin(x)),
    "siny": ("sin y", lambda x, y: api.sin(y)),
}
ONE_INPUT = ("x", "x2", "sinx")  # the features of a number x alone (no y)


class PlaneFeatures(Module):
    """The chosen features of each point ``(x, y)`` (or of each number ``x``), side by side.

    z = [f(x, y) for f in features], from ``x``, ``y``, ``x2`` (x²), ``y2`` (y²), ``xy``,
    ``sinx`` (sin x), ``siny`` (sin y). Built from the engine's own operations, so gradients
    flow through it like through any layer (it has no parameters).

    Args:
        features: the names, in the order the outputs take them.
        in_features: 2 for points (x, y), 1 for numbers x (then only x, x2 and sinx exist).

    Shape: (N, in_features) -> (N, len(features)).

    Example:
        >>> layer = cr.nn.PlaneFeatures(["x", "y", "xy"])
        >>> layer(cr.tensor([[2.0, 3.0]]))
        tensor([[2., 3., 6.]])
    """

    def __init__(self, features, in_features: int = 2):
        super().__init__()
        features = list(features)
        if in_features not in (1, 2):
            raise ValueError(f"PlaneFeatures: in_features must be 1 or 2, got {in_features!r}")
        known = ONE_INPUT if in_features == 1 else tuple(FEATURES)
        unknown = [name for name in features if name not in known]
        if unknown or not features or len(set(features)) != len(features):
            raise ValueError(
                f"PlaneFeatures: features must be different names from {', '.join(known)}, "
                f"got {features!r:.80}"
            )
        self.features, self.in_features = features, in_features

    def config(self) -> dict:
        return {"features": list(self.features), "in_features": self.in_features}

    def output_shape(self, input_shape: tuple) -> tuple:
        if len(input_shape) != 2 or input_shape[1] != self.in_features:
            raise ValueError(f"needs (N, {self.in_features}) points")
        return (input_shape[0], self.out_features)

    def forward(self, points):
        check_input(self, points, 2, -1, self.in_features)
        x = points[:, 0:1]
        y = points[:, 1:2] if self.in_features == 2 else None
        return api.cat([FEATURES[name][1](x, y) for name in self.features], dim=1)

    @property
    def out_features(self) -> int:
        return len(self.features)

    @property
    def labels(self) -> list[str]:
        """The features as they are written: ``x²``, ``sin x``, ..."""
        return [FEATURES[name][0] for name in self.features]

    def extra_repr(self) -> str:
        return ", ".join(self.labels)
