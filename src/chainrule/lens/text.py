"""The lens on a character-level model: the attention weights of every head of every layer for
a given text, and sampling as the probability of each next character, reshaped by temperature.

Both views take any model that maps a batch of character indices (N, L) to next-character
logits (N, L, V), with an ``encode`` function from text to indices: the small causal Transformer
trained here in seconds (:func:`demo_model`), or a trained text run's model. The attention
weights are read from every :class:`~chainrule.nn.MultiheadAttention` inside the model as it
runs, whatever the model is.
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass

from .. import autograd, nn, optim
from ..backend import manual_seed, new_rng, xp
from ..creation import arange, tensor
from ..nn import functional as F

# the separator between names, the way a reader types it in a text to look at
SEPARATOR = "."
# a built-in text: the most given first names in the US (Social Security records, 2000s)
DEMO_NAMES = (
    "emma olivia ava isabella sophia mia charlotte amelia harper evelyn abigail emily elizabeth "
    "mila ella avery sofia camila aria scarlett victoria madison luna grace chloe penelope layla "
    "riley zoey nora lily eleanor hannah lillian addison aubrey ellie stella natalie zoe leah "
    "hazel violet aurora savannah audrey brooklyn bella claire skylar lucy paisley anna caroline "
    "liam noah william james oliver benjamin elijah lucas mason logan alexander ethan jacob "
    "michael daniel henry jackson sebastian aiden matthew samuel david joseph carter owen wyatt "
    "john jack luke jayden dylan grayson levi isaac gabriel julian anthony lincoln joshua "
    "christopher andrew theodore caleb ryan asher nathan thomas leo isaiah charles josiah hudson "
    "christian hunter connor eli ezra aaron landon adrian jonathan nolan jeremiah easton elias"
).split()
TEMPERATURES = (0.5, 1.0, 2.0)
CONTEXT = 16  # characters the demo model reads at once


class Vocabulary:
    """The characters of a text, each numbered (in sorted order)."""

    def __init__(self, text: str, numbered: bool = False):
        """``numbered``: ``text`` is the characters already in their order (a run's vocabulary)."""
        self.chars = list(text) if numbered else sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list:
        """The indices of ``text``'s characters; ValueError naming those the vocabulary lacks."""
        unknown = sorted(set(text) - set(self.index))
        if unknown:
            raise ValueError(
                f"the text {text!r} has characters the model never saw: "
                f"{' '.join(repr(c) for c in unknown)} (it knows {''.join(self.chars)!r})"
            )
        return [self.index[c] for c in text]


class CharTransformer(nn.Module):
    """A small causal Transformer over characters: token and position embeddings, a
    TransformerEncoder whose mask lets position i attend to positions 0..i only, and a Linear
    to the logits of the next character.

    Shape: (N, L) indices, L <= context -> (N, L, vocabulary) logits.
    """

    def __init__(
        self, vocabulary: int, d_model: int = 32, nhead: int = 2, num_layers: int = 2,
        context: int = CONTEXT,
    ):  # fmt: skip
        super().__init__()
        self.context = context
        self.tokens = nn.Embedding(vocabulary, d_model)
        self.positions = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers)
        self.head = nn.Linear(d_model, vocabulary)

    def forward(self, indices):
        length = indices.shape[1]
        h = self.tokens(indices) + self.positions(arange(length))
        mask = nn.Transformer.generate_square_subsequent_mask(length)
        return self.head(self.encoder(h, mask=mask, is_causal=True))


def demo_text() -> str:
    """The built-in names, one after the other, each followed by the separator."""
    return "".join(name + SEPARATOR for name in DEMO_NAMES)


def demo_model(steps: int = 300, seed: int = 0, log=print) -> tuple:
    """(model, vocabulary): a :class:`CharTransformer` trained for ``steps`` steps of Adam on
    random windows of the built-in names, each position predicting the next character."""
    text = demo_text()
    vocabulary = Vocabulary(text)
    data = xp.array(vocabulary.encode(text), dtype=xp.int64)
    manual_seed(seed)
    model = CharTransformer(len(vocabulary))
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    rng, context, started = new_rng(seed), model.context, time.perf_counter()
    loss_fn = nn.CrossEntropyLoss()
    for step in range(1, steps + 1):
        starts = rng.integers(0, len(data) - context - 1, size=32)
        windows = xp.stack([data[s : s + context + 1] for s in starts])
        logits = model(tensor(windows[:, :-1]))
        loss = loss_fn(logits.reshape(-1, len(vocabulary)), tensor(windows[:, 1:].reshape(-1)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == steps or step % 100 == 0:
            log(f"step {step}: loss per character {loss.item():.3f}")
    seconds = time.perf_counter() - started
    log(
        f"a causal Transformer ({sum(p.numel() for p in model.parameters())} weights, 2 layers of "
        f"2 heads) trained {steps} steps on {len(DEMO_NAMES)} names in {seconds:.1f} s"
    )
    model.eval()
    return model, vocabulary


@contextlib.contextmanager
def recording_attention(model):
    """Inside it, every MultiheadAttention of ``model`` also returns its weights per head
    (as ``need_weights=True, average_attn_weights=False``; the same output) and appends them,
    as an array (N, heads, L, S), to the list this yields, in the order the layers run."""
    found = []
    layers = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]

    def recording(layer):
        signature = inspect.signature(type(layer).forward)

        def forward(*args, **kwargs):
            call = signature.bind(layer, *args, **kwargs)
            call.arguments |= {"need_weights": True, "average_attn_weights": False}
            output, weights = type(layer).forward(*call.args, **call.kwargs)
            found.append(weights.detach().numpy().copy())
            return output, None

        return forward

    for layer in layers:
        layer.forward = recording(layer)
    try:
        yield found
    finally:
        for layer in layers:
            del layer.forward


@dataclass
class Attention:
    """The attention weights of a model reading ``text``: ``weights[layer][head]`` is (L, L),
    row i how position i's query spreads over the positions (columns), summing to 1."""

    text: str
    weights: list


@autograd.no_grad()
def has_attention(model) -> bool:
    """Whether ``model`` has a layer whose attention weights can be shown."""
    return any(isinstance(m, nn.MultiheadAttention) for m in model.modules())


def attention_of(model, encode, text: str) -> Attention:
    """Run ``model`` on ``text`` (``encode``: text -> indices) and keep every head's weights."""
    indices = tensor(xp.array([encode(text)], dtype=xp.int64))
    with recording_attention(model) as found:
        model(indices)
    if not found:
        raise ValueError(f"{type(model).__name__} has no MultiheadAttention layer to look into")
    return Attention(text, [weights[0] for weights in found])


def describe_attention(attention: Attention) -> str:
    """For each layer and head, where the last character looks most, and each head's weights
    on the last row (the position that predicts the next character)."""
    text, lines = attention.text, []
    for k, heads in enumerate(attention.weights):
        for h, weights in enumerate(heads):
            last = weights[-1]
            top = xp.argsort(last)[::-1][:3]
            where = ", ".join(f"{text[j]!r} at {j} ({last[j]:.2f})" for j in top)
            lines.append(f"layer {k + 1} head {h + 1}: the last {text[-1]!r} looks at {where}")
    return "\n".join(lines)


@dataclass
class NextCharacter:
    """The model's logits for the character after ``context`` and, per temperature T, the
    probabilities softmax(logits / T)."""

    context: str
    chars: list
    logits: object  # (V,)
    probabilities: dict  # T -> (V,)


@autograd.no_grad()
def next_character(model, encode, chars, context: str, temperatures=TEMPERATURES):
    """The distribution of the next character after ``context`` at each temperature: the
    logits divided by T, then softmax (T < 1 sharpens it, T > 1 flattens it)."""
    logits = model(tensor(xp.array([encode(context)], dtype=xp.int64)))[0, -1]
    probabilities = {t: F.softmax(logits / t, dim=-1).numpy() for t in temperatures}
    return NextCharacter(context, list(chars), logits.numpy(), probabilities)


def describe_next(result: NextCharacter, top: int = 5) -> str:
    """Per temperature: the ``top`` likeliest characters and the distribution's entropy."""
    lines = [f"after {result.context!r}, the next character:"]
    for t, p in result.probabilities.items():
        best = xp.argsort(p)[::-1][:top]
        entropy = float(-(p * xp.log(xp.maximum(p, 1e-30))).sum())
        shown = "  ".join(f"{result.chars[i]!r} {p[i]:.3f}" for i in best)
        lines.append(f"T = {t:g}: {shown}   (entropy {entropy:.2f} nats)")
    return "\n".join(lines)
