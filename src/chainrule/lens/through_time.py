"""The chain rule through time: how much gradient reaches each step of a recurrent network.

A plain RNN multiplies the gradient by W_hh^T diag(tanh') at every step back, so it shrinks
geometrically (vanishing gradients); an LSTM also carries it along its cell state, multiplied
only by the forget gate, so it is held as long as the forget gate stays near 1.

The recurrent layers run a whole sequence as one op (:mod:`chainrule.ops.rnn`), so the hidden
state of one step is not a node of the graph. To read dL/dh_t, the layer is unrolled here with
its one-step cell (:class:`~chainrule.nn.RNNCell`, ``LSTMCell``, ``GRUCell``) holding the very
same weight tensors, and ``retain_grad()`` keeps each step's gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn
from ..backend import manual_seed, new_rng, xp
from ..creation import tensor

LAYERS = {"rnn": (nn.RNN, nn.RNNCell), "lstm": (nn.LSTM, nn.LSTMCell), "gru": (nn.GRU, nn.GRUCell)}
NAMES = {"rnn": "RNN (tanh)", "lstm": "LSTM", "gru": "GRU"}


@dataclass
class ThroughTime:
    """|dL/dh_t| for t = 1 .. steps of one recurrent network on the first-sign task."""

    model: str  # rnn, lstm or gru
    label: str  # the legend's name
    grad_norms: list  # one number per step: the mean over the sequences of |dl/dh_t|
    loss: float


def first_sign_task(steps: int, sequences: int, seed: int) -> tuple:
    """``sequences`` random sequences of ``steps`` numbers (N, T, 1), each labelled by the sign
    of its FIRST number (1 if positive): only step 1 matters, so to learn the task the gradient
    must reach step 1 from the loss at the last step."""
    rng = new_rng(seed)
    x = rng.standard_normal((sequences, steps, 1)).astype(xp.float32)
    return x, (x[:, 0, 0] > 0).astype(xp.int64)


def unrolled(layer, cell_class, x) -> list:
    """Each step's hidden state h_t of a one-layer ``layer`` over ``x`` (N, T, I), computed step
    by step by a cell sharing the layer's weight tensors (so the same numbers as ``layer(x)``),
    each keeping its gradient (``retain_grad``)."""
    cell = cell_class(layer.input_size, layer.hidden_size)
    if layer.mode in ("RNN_TANH", "RNN_RELU"):
        cell.nonlinearity = layer.nonlinearity
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        setattr(cell, name, getattr(layer, f"{name}_l0"))
    state, hs = None, []
    for t in range(x.shape[1]):
        state = cell(x[:, t], state)
        h = state[0] if layer.mode == "LSTM" else state
        h.retain_grad()
        hs.append(h)
    return hs


def add_forget_bias(lstm, value: float) -> None:
    """Add ``value`` to the forget gate's bias (gates i, f, g, o): Keras starts it at 1
    (``unit_forget_bias``, after Jozefowicz et al. 2015) so that the cell remembers at first;
    PyTorch's initialisation leaves it near 0 (the gate near one half)."""
    hidden = lstm.hidden_size
    lstm.bias_ih_l0._data[hidden : 2 * hidden] += value


def gradient_through_time(
    model: str,
    steps: int = 50,
    hidden: int = 32,
    sequences: int = 32,
    forget_bias: float = 1.0,
    seed: int = 0,
) -> ThroughTime:
    """|dL/dh_t| at every step of a freshly initialised recurrent layer (``model`` rnn, lstm or
    gru, ``hidden`` units, seeded) with a Linear(hidden, 2) on its last state, on the first-sign
    task; each sequence's own cross-entropy loss, the norm averaged over the sequences."""
    layer_class, cell_class = LAYERS[model]
    manual_seed(seed)
    layer = layer_class(1, hidden, batch_first=True)
    head = nn.Linear(hidden, 2)
    label = NAMES[model]
    if model == "lstm" and forget_bias:
        add_forget_bias(layer, forget_bias)
        label = f"LSTM, forget-gate bias {forget_bias:+g}"
    x, y = first_sign_task(steps, sequences, seed)
    hs = unrolled(layer, cell_class, tensor(x))
    # the mean over the batch scales each sequence's gradient by 1/N: sum, to read each one's own
    loss = nn.CrossEntropyLoss(reduction="sum")(head(hs[-1]), tensor(y))
    loss.backward()
    norms = [float(xp.linalg.norm(h.grad.numpy(), axis=1).mean()) for h in hs]
    return ThroughTime(model, label, norms, float(loss.item()) / sequences)


def describe(results: list, every: int = 10) -> str:
    """The numbers of the picture: |dL/dh_t| every ``every`` steps, and how many times smaller
    it is at step 1 than at the last step."""
    steps = len(results[0].grad_norms)
    shown = sorted({1, *range(every, steps, every), steps})
    width = max(len(r.label) for r in results)
    lines = [f"{'|dL/dh_t| at step t':<{width}}  " + "".join(f"{t:>9}" for t in shown)]
    for r in results:
        row = "".join(f"{r.grad_norms[t - 1]:>9.1e}" for t in shown)
        lines.append(f"{r.label:<{width}}  {row}")
    for r in results:
        if r.grad_norms[0] == 0:  # below float32's smallest number: nothing arrives
            lines.append(f"{r.label}: no gradient at all reaches step 1")
        else:
            shrink = r.grad_norms[-1] / r.grad_norms[0]
            lines.append(f"{r.label}: step 1 gets {shrink:.2g} times less than step {steps}")
    return "\n".join(lines)


def plot_through_time(results: list, path):
    """|dL/dh_t| against t, one line per network, on a log scale."""
    from .figures import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=80)
    for r in results:
        ax.semilogy(range(1, len(r.grad_norms) + 1), r.grad_norms, "o-", ms=3, label=r.label)
    steps = len(results[0].grad_norms)
    ax.set_xlabel(f"time step t (the loss is at step {steps}, on the last hidden state)")
    ax.set_ylabel("|dL/dh_t|, mean over sequences")
    ax.set_title(
        "the chain rule through time: the label is the sign of the FIRST input\n"
        "dL/dh_t = dL/dh_(t+1) dh_(t+1)/dh_t, one factor per step back"
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, which="both")
    return save_png(fig, path)
