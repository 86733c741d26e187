"""Recurrent layers with PyTorch's signatures, parameter names and layouts: ``RNN`` (tanh or
relu), ``LSTM``, ``GRU`` and the one-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell``.

A layer's weights are named as PyTorch names them (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for the second direction), with the gates
stacked in PyTorch's order (LSTM i, f, g, o; GRU r, z, n), and an LSTM with projections
(``proj_size``) has ``weight_hr_l0`` after the biases, so state dicts cross both ways.
Each layer and direction runs over the whole sequence as one op (:mod:`chainrule.ops.rnn`);
:class:`~chainrule.nn.utils.rnn.PackedSequence` inputs stop each sequence at its own length.
"""

from __future__ import annotations

import math

from ..api import cat, stack
from ..backend import xp
from ..devices import check_device
from ..dtypes import as_dtype, get_default_dtype
from ..ops.rnn import ElmanSequence, GRUSequence, LSTMSequence, ProjectedLSTMSequence
from ..tensor import Tensor
from . import functional as F
from . import init
from .module import Module, Parameter
from .utils.rnn import PackedSequence, pad_packed_sequence

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}
MAX_LAYERS = 1024


def run_layer(
    mode: str, x, state: tuple, weights: list, reverse: bool = False, mask=None, projected=False
):
    """One layer in one direction over x (T, N, I) from ``state`` ((h0,) or (h0, c0)) with
    ``weights`` as PyTorch lists them (``all_weights``; W_hr last where ``projected``):
    (every step's h (T, N, H or P), the final state as a tuple like ``state``)."""
    last = 0 if reverse else -1
    if projected:
        w_ih, w_hh, *biases, w_hr = weights
        biases = biases or [None, None]
        out = ProjectedLSTMSequence.apply(
            x, *state, w_ih, w_hh, *biases, w_hr, reverse=reverse, mask=mask
        )
        width = state[0].shape[-1]
        return out[..., :width], (out[last, :, :width], out[last, :, width:])
    if mode == "LSTM":
        out = LSTMSequence.apply(x, *state, *weights, reverse=reverse, mask=mask)
        hs = out[:-1]
        return hs, (hs[last], out[-1])
    if mode == "GRU":
        hs = GRUSequence.apply(x, *state, *weights, reverse=reverse, mask=mask)
    else:
        relu = mode == "RNN_RELU"
        hs = ElmanSequence.apply(x, *state, *weights, relu=relu, reverse=reverse, mask=mask)
    return hs, (hs[last],)


def _uniform_init(module: Module) -> None:
    """PyTorch's initialisation of recurrent weights: all U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_dtype(layer: Module, x) -> None:
    dtype = next(iter(layer.parameters())).dtype
    if x.dtype != dtype:
        raise TypeError(
            f"{layer!r} got input of dtype {x.dtype} but its weights are {dtype}: convert one "
            "(x.to(dtype) or layer.to(dtype))"
        )


def zero_states(shapes: tuple, dtype) -> tuple:
    """The default initial state: (h,) or, for an LSTM, (h, c), of zeros of ``shapes``
    (constants, no grad)."""
    return tuple(xp.zeros(shape, dtype=dtype) for shape in shapes)


def given_states(layer: Module, hx, mode: str, shapes: tuple) -> tuple:
    """``hx`` as (h,) or, for an LSTM, (h, c), each checked to be of its shape in ``shapes``."""
    given = tuple(hx) if mode == "LSTM" and isinstance(hx, (tuple, list)) else (hx,)
    if len(given) != 1 + (mode == "LSTM"):
        raise ValueError(f"{layer!r} needs hx = (h_0, c_0), got {type(hx).__name__}")
    for name, state, wanted in zip(("h_0", "c_0"), given, shapes):
        if not isinstance(state, Tensor) or tuple(state.shape) != wanted:
            shape = tuple(getattr(state, "shape", ()))
            raise ValueError(f"{layer!r} got {name} of shape {shape}: expected {wanted}")
        _check_dtype(layer, state)
    return given


def checked_projection(config: dict, mode: str) -> int:
    """A config's ``proj_size`` (0: no projection), refused unless 0 <= P < hidden_size, and
    unless 0 for a layer other than an LSTM (as PyTorch refuses them)."""
    projection = config.get("proj_size", 0)
    if projection and mode != "LSTM":
        raise ValueError(
            f"proj_size is only supported for LSTM, not RNN or GRU (got {projection!r})"
        )
    if (
        isinstance(projection, bool)
        or not isinstance(projection, int)
        or not 0 <= projection < config["hidden_size"]
    ):
        raise ValueError(
            "proj_size must be 0 (no projection) or a whole number smaller than hidden_size "
            f"{config['hidden_size']!r}, got {projection!r}"
        )
    return projection


class RNNBase(Module):
    """The multi-layer recurrent layer of ``mode`` 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU' (as
    ``torch.nn.RNNBase``); use :class:`RNN`, :class:`LSTM` or :class:`GRU`.

    Layer k's input is layer k-1's output (both directions side by side when ``bidirectional``),
    with ``dropout`` applied to it in training for k >= 1.

    An LSTM with ``proj_size`` P > 0 (0 < P < hidden_size) projects each step's h to P
    features: h_t = W_hr (o tanh(c_t)), W_hr of shape (P, hidden_size); W_hh is then
    (4 hidden_size, P) and layer k >= 1 takes D P features.

    Shape: input (L, N, input_size) ((N, L, input_size) with ``batch_first``; (L, input_size)
    unbatched; or a PackedSequence), h_0 (D num_layers, N, H_out), D = 2 if bidirectional
    else 1, H_out = proj_size or hidden_size -> output of the input's layout with D H_out
    features, h_n like h_0; an LSTM's c_0 and c_n are (D num_layers, N, hidden_size).
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__()
        check_device(device)
        name = f"{type(self).__name__}({input_size}, {hidden_size})"
        if not 0 <= dropout < 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout must be a probability in [0, 1), got {dropout!r}")
        if hidden_size < 1 or input_size < 1:
            raise ValueError(f"{name}: input_size and hidden_size must be positive")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, proj_size
        dtype = as_dtype(dtype) or get_default_dtype()
        try:
            shapes = RNNBase.state_shapes(self.config() | {"mode": mode, "proj_size": proj_size})
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        for name, shape in shapes.items():
            setattr(self, name, Parameter(xp.empty(shape, dtype=dtype)))
        self.reset_parameters()

    reset_parameters = _uniform_init

    def flatten_parameters(self) -> None:
        """Accepted for PyTorch programs (cuDNN's weight layout); nothing to do here."""

    def config(self) -> dict:
        names = ("mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first")
        config = {name: getattr(self, name) for name in names}
        return config | {
            "dropout": self.dropout,
            "bidirectional": self.bidirectional,
            "proj_size": self.proj_size,
        }

    @classmethod
    def mode_of(cls, config: dict) -> str:
        if config.get("mode") not in GATES:
            raise ValueError(
                f"unknown mode {str(config.get('mode'))[:40]!r} (one of {', '.join(GATES)})"
            )
        return config["mode"]

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        size, layers = config["hidden_size"], config.get("num_layers", 1)
        if not isinstance(layers, int) or not 1 <= layers <= MAX_LAYERS:
            # checked here, before anything is listed: a file's tiny number could ask for
            # millions of weight names
            raise ValueError(
                f"num_layers must be a whole number in [1, {MAX_LAYERS}], got {layers!r}"
            )
        mode = cls.mode_of(config)
        rows, projection = GATES[mode] * size, checked_projection(config, mode)
        width = projection or size  # the width of h
        directions = 2 if config.get("bidirectional", False) else 1
        shapes = {}
        for layer in range(layers):
            for suffix in ("", "_reverse")[:directions]:
                inputs = config["input_size"] if layer == 0 else width * directions
                shapes[f"weight_ih_l{layer}{suffix}"] = (rows, inputs)
                shapes[f"weight_hh_l{layer}{suffix}"] = (rows, width)
                if config.get("bias", True):
                    shapes[f"bias_ih_l{layer}{suffix}"] = (rows,)
                    shapes[f"bias_hh_l{layer}{suffix}"] = (rows,)
                if projection:
                    shapes[f"weight_hr_l{layer}{suffix}"] = (projection, size)
        return shapes

    @property
    def directions(self) -> int:
        """2 for a bidirectional layer, else 1 (PyTorch's D)."""
        return 2 if self.bidirectional else 1

    @property
    def all_weights(self) -> list:
        """The parameters of each layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...], with
        w_hr last where ``proj_size`` (as PyTorch's)."""
        return [self._weights(k) for k in range(self.num_layers * self.directions)]

    def _weights(self, k: int) -> list:
        layer, suffix = divmod(k, self.directions)
        end = f"l{layer}{'_reverse' if suffix else ''}"
        names = [f"weight_ih_{end}", f"weight_hh_{end}"]
        names += [f"bias_ih_{end}", f"bias_hh_{end}"] if self.bias else []
        names += [f"weight_hr_{end}"] if self.proj_size else []
        return [getattr(self, name) for name in names]

    def _hx_shapes(self, batch: tuple) -> tuple:
        """The shapes of (h,) or, for an LSTM, (h, c) for ``batch`` () or (N,): (D num_layers,
        *batch, H_out), c's with hidden_size features."""
        layers = (self.num_layers * self.directions, *batch)
        h = (*layers, self.proj_size or self.hidden_size)
        return (h, (*layers, self.hidden_size)) if self.mode == "LSTM" else (h,)

    def output_shape(self, input_shape: tuple):
        shape = tuple(input_shape)
        if len(shape) not in (2, 3) or shape[-1] != self.input_size:
            raise ValueError(f"needs (L, N, {self.input_size}) or (L, {self.input_size}) input")
        features = self.directions * (self.proj_size or self.hidden_size)
        batch = () if len(shape) == 2 else (shape[0 if self.batch_first else 1],)
        states = self._hx_shapes(batch)
        output = (*shape[:-1], features)
        return (output, states) if self.mode == "LSTM" else (output, states[0])

    def forward(self, input, hx=None):
        x, lengths, unbatched = self._sequence(input)
        mask = None
        if lengths is not None:
            mask = (xp.arange(x.shape[0])[:, None] < lengths[None, :])[:, :, None]
        states = self._initial_states(hx, x, unbatched)
        directions, projected = self.directions, bool(self.proj_size)
        finals = []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, True)
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                start = tuple(s[k] for s in states)
                hs, final = run_layer(
                    self.mode, x, start, self._weights(k), bool(direction), mask, projected
                )
                outputs.append(hs)
                finals.append(final)
            x = outputs[0] if directions == 1 else cat(outputs, dim=-1)
        last = tuple(stack([f[i] for f in finals]) for i in range(len(states)))
        return self._output(input, x, unbatched), self._state_output(last, unbatched)

    def _sequence(self, input) -> tuple:
        """(x as (L, N, features), lengths or None, whether the input was unbatched)."""
        if isinstance(input, PackedSequence):
            padded, lengths = pad_packed_sequence(input)
            _check_dtype(self, padded)
            return padded, lengths.numpy(), False
        if not isinstance(input, Tensor) or input.ndim not in (2, 3):
            shape = tuple(getattr(input, "shape", ()))
            raise ValueError(
                f"{self!r} got input of shape {shape}: expected (L, N, {self.input_size}) "
                f"((N, L, {self.input_size}) with batch_first, (L, {self.input_size}) unbatched)"
            )
        if input.shape[-1] != self.input_size or input.shape[0] == 0:
            raise ValueError(
                f"{self!r} got input of shape {tuple(input.shape)}: the last dimension must be "
                f"{self.input_size} and the sequence at least one step long"
            )
        _check_dtype(self, input)
        if input.ndim == 2:
            return input.reshape(input.shape[0], 1, input.shape[1]), None, True
        return (input.transpose(0, 1) if self.batch_first else input), None, False

    def _initial_states(self, hx, x, unbatched: bool) -> tuple:
        """(h_0,) or (h_0, c_0), each (D num_layers, N, H_out or hidden_size): given, or
        zeros."""
        expected = self._hx_shapes((x.shape[1],))
        if hx is None:
            return zero_states(expected, x.dtype)
        wanted = self._hx_shapes(()) if unbatched else expected
        given = given_states(self, hx, self.mode, wanted)
        return tuple(s.reshape(shape) for s, shape in zip(given, expected))

    def _output(self, input, x, unbatched: bool):
        if isinstance(input, PackedSequence):
            steps, batch = input.positions()
            return input._replace(data=x[steps, batch])
        if unbatched:
            return x[:, 0]
        return x.transpose(0, 1) if self.batch_first else x

    def _state_output(self, last: tuple, unbatched: bool):
        if unbatched:
            last = tuple(s[:, 0] for s in last)
        return last if self.mode == "LSTM" else last[0]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "bias": True, "batch_first": False}
        for name, default in (defaults | {"dropout": 0.0, "bidirectional": False}).items():
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text


class RNN(RNNBase):
    """Elman recurrent layers: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)
    (``nonlinearity='relu'`` for relu). Shapes and options as :class:`RNNBase`.

    Example:
        >>> rnn = cr.nn.RNN(10, 20, num_layers=2)
        >>> output, h_n = rnn(cr.randn(5, 3, 10))       # (5, 3, 20), (2, 3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        proj_size: int = 0,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        mode = f"RNN_{nonlinearity.upper()}"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            proj_size, device, dtype,
        )  # fmt: skip

    def config(self) -> dict:
        config = super().config()
        del config["mode"], config["proj_size"]  # never a projection (refused when built)
        return config | {"nonlinearity": self.nonlinearity}

    @classmethod
    def mode_of(cls, config: dict) -> str:
        return f"RNN_{config.get('nonlinearity', 'tanh').upper()}"


class LSTM(RNNBase):
    """Long short-term memory layers: gates i, f, g, o from x_t and h_{t-1};
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t), or with ``proj_size`` P > 0 h_t = W_hr
    (o tanh(c_t)) of P features. ``hx`` and the returned state are (h, c).

    Example:
        >>> lstm = cr.nn.LSTM(10, 20, batch_first=True, bidirectional=True)
        >>> output, (h_n, c_n) = lstm(cr.randn(3, 5, 10))   # (3, 5, 40), (2, 3, 20) twice
        >>> projected = cr.nn.LSTM(10, 20, num_layers=2, proj_size=5)
        >>> output, (h_n, c_n) = projected(cr.randn(7, 3, 10))  # (7, 3, 5), (2, 3, 5), (2, 3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ):
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device, dtype,
        )  # fmt: skip

    def config(self) -> dict:
        config = super().config()
        del config["mode"]
        return config

    @classmethod
    def mode_of(cls, config: dict) -> str:
        return "LSTM"


class GRU(RNNBase):
    """Gated recurrent unit layers: r, z = sig(...), n = tanh(x W_in^T + b_in + r (h W_hn^T +
    b_hn)), h_t = (1 - z) n + z h_{t-1}.

    Example:
        >>> gru = cr.nn.GRU(10, 20)
        >>> output, h_n = gru(cr.randn(5, 3, 10))       # (5, 3, 20), (1, 3, 20)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        proj_size: int = 0,
    ):
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device, dtype,
        )  # fmt: skip

    def config(self) -> dict:
        config = super().config()
        del config["mode"], config["proj_size"]  # never a projection (refused when built)
        return config

    @classmethod
    def mode_of(cls, config: dict) -> str:
        return "GRU"


# -- one step at a time ----------------------------------------------------------------------------


class _Cell(Module):
    """What the cells share: weight_ih (G H, input_size), weight_hh (G H, H), bias_ih, bias_hh,
    and one step of the sequence op. Input (N, input_size) or (input_size,) unbatched."""

    mode = ""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ):
        super().__init__()
        check_device(device)
        if hidden_size < 1 or input_size < 1:
            raise ValueError(f"{type(self).__name__}: sizes must be positive")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dtype = as_dtype(dtype) or get_default_dtype()
        for name, shape in self.state_shapes(self.config()).items():
            setattr(self, name, Parameter(xp.empty(shape, dtype=dtype)))
        self.reset_parameters()

    reset_parameters = _uniform_init

    def config(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        rows, size = GATES[cls.mode_of(config)] * config["hidden_size"], config["hidden_size"]
        shapes = {"weight_ih": (rows, config["input_size"]), "weight_hh": (rows, size)}
        return shapes | (
            {"bias_ih": (rows,), "bias_hh": (rows,)} if config.get("bias", True) else {}
        )

    @classmethod
    def mode_of(cls, config: dict) -> str:
        return cls.mode

    def output_shape(self, input_shape: tuple):
        if len(input_shape) not in (1, 2) or input_shape[-1] != self.input_size:
            raise ValueError(f"needs (N, {self.input_size}) or ({self.input_size},) input")
        state = (*input_shape[:-1], self.hidden_size)
        return (state, state) if self.mode_of(self.config()) == "LSTM" else state

    def forward(self, input, hx=None):
        if (
            not isinstance(input, Tensor)
            or input.ndim not in (1, 2)
            or (input.shape[-1] != self.input_size)
        ):
            raise ValueError(
                f"{self!r} got input of shape {tuple(getattr(input, 'shape', ()))}: expected "
                f"(N, {self.input_size}) or ({self.input_size},)"
            )
        _check_dtype(self, input)
        mode = self.mode_of(self.config())
        expected = (input.shape[0] if input.ndim == 2 else 1, self.hidden_size)
        count = 1 + (mode == "LSTM")  # h, or h and c: all of hidden_size features
        if hx is None:
            state = zero_states((expected,) * count, input.dtype)
        else:
            wanted = expected[2 - input.ndim :]  # (N, H), or (H,) for an unbatched input
            given = given_states(self, hx, mode, (wanted,) * count)
            state = tuple(s.reshape(expected) for s in given)
        weights = [self.weight_ih, self.weight_hh] + (
            [self.bias_ih, self.bias_hh] if self.bias else []
        )
        _, final = run_layer(mode, input.reshape(1, *expected[:1], self.input_size), state, weights)
        final = tuple(s.reshape(input.shape[:-1] + (self.hidden_size,)) for s in final)
        return final if mode == "LSTM" else final[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_Cell):
    """One step of :class:`RNN`: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def config(self) -> dict:
        return super().config() | {"nonlinearity": self.nonlinearity}

    @classmethod
    def mode_of(cls, config: dict) -> str:
        return RNN.mode_of(config)


class LSTMCell(_Cell):
    """One step of :class:`LSTM`: (h, c) -> (h', c'). ``hx`` is (h, c) or None (zeros)."""

    mode = "LSTM"


class GRUCell(_Cell):
    """One step of :class:`GRU`: h -> h'."""

    mode = "GRU"
