"""Text runs: a character-level model trained on a text file (or the built-in names) and sampled
from, one character at a time (``chainrule train --data names.txt``, ``chainrule generate``).

* **The data.** A UTF-8 text file of lines: one item a line (names, words, titles) or running
  text (its lines are its paragraphs). The built-in ``names`` set (``names.txt`` in this package)
  needs no download. Binary files (NUL bytes, not UTF-8), empty files, lines over
  :data:`MAX_LINE` characters and files over :data:`MAX_TEXT_BYTES` are refused in one line.
* **The vocabulary** is the set of characters of the whole file, newline included, in code-point
  order; the run records it (``model.json``), so ``generate`` and ``evaluate`` decode with it.
* **The end marker is the newline.** Each split's lines are joined as ``"\\n" + "\\n".join(lines)
  + "\\n"``, so every item starts after a newline and ends with one; a sample is generated from
  a newline until the model writes the next one.
* **Splits are by line**: :data:`TEST_FRACTION` of the lines (seed 0, the same for every run on
  the file) are the test lines, then ``--val-fraction`` of the rest validates. An item is never
  in two splits.
* **Batches are windows**: a split's characters are cut into non-overlapping windows of
  ``--sequence-length`` + 1 (the last, shorter piece is dropped); the model reads the first
  ``sequence-length`` characters of a window and predicts each one's successor. Every window
  holds the same number of characters, so the mean loss over windows is the loss per character
  (no padding, no mask), and perplexity is ``exp`` of it.
* **The model** (:class:`CharModel`): an embedding, then recurrent layers (``rnn``, ``lstm``,
  ``gru``) or a small causal Transformer (``transformer``: learned positions, at most
  ``sequence-length`` characters of context), then a linear layer over the vocabulary.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

from .. import nn
from ..autograd import no_grad
from ..backend import new_rng, xp
from ..creation import tensor
from ..data.download import sha256_of
from ..files import DataFileError, read_capped
from .config import TEXT_MODEL as DEFAULT_MODEL
from .config import TEXT_SEQUENCE_LENGTH as DEFAULT_SEQUENCE_LENGTH
from .config import Config, RunError

TEXT_SETS = ("names",)  # built in: a .txt file of this package
MODELS = ("rnn", "lstm", "gru", "transformer")
MARKER = "\n"  # between items: where a sample starts and ends
TEST_FRACTION = 0.1
MAX_TEXT_BYTES = 16 << 20
MAX_LINE = 10_000  # characters: longer is a file that is not text in lines (minified, a dump)
MAX_VOCABULARY = 1024  # different characters
MAX_HIDDEN = 4096
MAX_LAYERS = 16
MAX_CONTEXT = 4096
EMBEDDING_DIM = 32  # for the recurrent models; a Transformer's is its width
HEADS = 4  # of a Transformer's attention (its width must divide by it)


def is_text(config: Config) -> bool:
    """Whether ``config`` asks for a text run (a text file, the built-in names, --task text)."""
    return config.task == "text" or config.dataset in (*TEXT_SETS, "text")


def check_settings(config: Config) -> None:
    """Refuse, before any work, settings a text run cannot use."""
    data = config.data or config.dataset
    if config.task not in (None, "text"):
        raise RunError(f"--task {config.task}: {data} is text; a text run takes --task text")
    if config.dataset not in (*TEXT_SETS, "text"):
        raise RunError(
            f"--task text: the data set {config.dataset} is not text; give --data FILE.txt "
            f"or --dataset {' or '.join(TEXT_SETS)}"
        )
    if config.model is not None and config.model not in MODELS:
        raise RunError(f"--model {config.model}: a text run takes one of {', '.join(MODELS)}")
    if config.target is not None:
        raise RunError(f"--target {config.target}: a text run predicts the next character")
    if config.loss not in (None, "cross-entropy"):
        raise RunError(f"--loss {config.loss}: a text run is trained with cross-entropy")
    _layers(config.hidden or (128,))


def _layers(hidden: tuple) -> tuple[int, int]:
    """(size, number) of the recurrent or Transformer layers ``--hidden`` asks for."""
    if len(set(hidden)) != 1:
        shown = ",".join(map(str, hidden)) or "none"
        raise RunError(
            f"--hidden {shown}: a character model's layers are all one size (e.g. 128,128 for "
            "two layers of 128)"
        )
    return hidden[0], len(hidden)


def source_name(config: Config) -> str:
    return config.data if config.dataset == "text" else config.dataset


# -- reading the text ----------------------------------------------------------------------------


def read_lines(config: Config) -> list[str]:
    """The lines of the run's text (its file, or a built-in set), checked (see the module
    docstring); blank lines and trailing spaces are dropped."""
    if config.dataset in TEXT_SETS:
        text = resources.files(__package__).joinpath(f"{config.dataset}.txt").read_text("utf-8")
        where = config.dataset
    else:
        where = config.data
        try:
            raw = read_capped(config.data, MAX_TEXT_BYTES, "text file")
        except DataFileError as exc:
            raise RunError(str(exc)) from None
        if b"\0" in raw:
            raise RunError(f"{where}: holds NUL bytes, a binary file, not text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RunError(
                f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None
    lines = [line.rstrip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise RunError(f"{where}: no text (every line is blank)")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    if len(lines[longest]) > MAX_LINE:
        raise RunError(
            f"{where}: line {longest + 1} holds {len(lines[longest]):,} characters, more than "
            f"{MAX_LINE:,}; give one item a line, or running text in paragraphs"
        )
    return lines


def vocabulary_of(lines: list[str], where: str) -> str:
    """The characters of ``lines`` and the marker, in code-point order."""
    characters = "".join(sorted(set("".join(lines)) | {MARKER}))
    if len(characters) > MAX_VOCABULARY:
        raise RunError(
            f"{where}: {len(characters):,} different characters, more than a character model "
            f"here takes ({MAX_VOCABULARY})"
        )
    return characters


def encode(text: str, vocabulary: str, what: str):
    """``text`` as indices into ``vocabulary``; RunError naming any character it lacks."""
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted(set(text) - set(index))
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        raise RunError(f"{what}: character(s) {shown} are not in the run's vocabulary")
    return xp.asarray([index[c] for c in text], dtype=xp.int64)


def windows(lines: list[str], vocabulary: str, length: int, where: str, split: str) -> tuple:
    """(inputs, targets): the split's text cut into windows (N, length), each target the next
    character of its input."""
    codes = encode(MARKER + MARKER.join(lines) + MARKER, vocabulary, where)
    count = (len(codes) - 1) // length
    if count == 0:
        raise RunError(
            f"{where}: its {split} lines hold {len(codes) - 1} characters, fewer than one window "
            f"of --sequence-length {length}; give more text or a smaller --sequence-length"
        )
    x = codes[: count * length].reshape(count, length)
    y = codes[1 : count * length + 1].reshape(count, length)
    return x, y


def split_lines(lines: list[str], val_fraction: float, seed: int, where: str) -> tuple:
    """(train, validation, test) lines: the test lines by seed 0, the validation by ``seed``."""
    if len(lines) < 3:
        raise RunError(f"{where}: {len(lines)} line(s); a text run needs at least 3 (train, test)")
    order = new_rng(0).permutation(len(lines))
    tests = max(1, round(len(lines) * TEST_FRACTION))
    test, rest = [lines[i] for i in order[:tests]], [lines[i] for i in order[tests:]]
    vals = round(len(rest) * val_fraction)
    order = new_rng(seed).permutation(len(rest))
    val = [rest[i] for i in order[:vals]]
    return [rest[i] for i in order[vals:]], val, test


def prepare_text(config: Config, recorded: dict | None = None) -> dict:
    """The fields of a :class:`~.recipe.Prepared` for a text run: windows of each split, the
    vocabulary (``recorded``'s, for a trained run) in the preprocessing."""
    where = source_name(config)
    lines = read_lines(config)
    vocabulary = recorded["vocabulary"] if recorded else vocabulary_of(lines, where)
    length = config.sequence_length or DEFAULT_SEQUENCE_LENGTH
    train, val, test = split_lines(lines, config.val_fraction, config.seed, where)
    preprocessing = {
        "task": "text",
        "vocabulary": vocabulary,
        "input_shape": [length],
    }
    if config.dataset == "text":
        preprocessing["data_sha256"] = sha256_of(Path(config.data))
    return {
        "train": windows(train, vocabulary, length, where, "training"),
        "val": windows(val, vocabulary, length, where, "validation") if val else None,
        "test": windows(test, vocabulary, length, where, "test"),
        "input_shape": (length,),
        "outputs": len(vocabulary),
        "preprocessing": preprocessing,
        "task": "text",
    }


def check_vocabulary(preprocessing: dict, where: str) -> None:
    """Refuse a recorded vocabulary that is not a short string of distinct characters holding
    the marker."""
    vocabulary = preprocessing.get("vocabulary")
    if not (
        isinstance(vocabulary, str)
        and MARKER in vocabulary
        and len(set(vocabulary)) == len(vocabulary) <= MAX_VOCABULARY
    ):
        raise RunError(f"{where}: preprocessing vocabulary is not a string of distinct characters")


# -- the model -----------------------------------------------------------------------------------


@nn.saveable
class CharModel(nn.Module):
    """Characters in, the next character's logits out: Embedding -> recurrent layers (``rnn``,
    ``lstm``, ``gru``) or a causal Transformer encoder -> Linear over the vocabulary.

    Shape: (N, L) indices -> (N, L, vocab_size) logits; position t sees positions 0..t only.

    Example:
        >>> model = CharModel(vocab_size=27, kind="gru", hidden_size=16)
        >>> model(cr.tensor([[1, 2, 3]])).shape
        (1, 3, 27)
    """

    def __init__(
        self,
        vocab_size: int,
        kind: str = DEFAULT_MODEL,
        hidden_size: int = 128,
        num_layers: int = 1,
        context: int = DEFAULT_SEQUENCE_LENGTH,
        dropout: float = 0.0,
    ):
        super().__init__()
        CharModel._check(locals())
        self.vocab_size, self.kind, self.hidden_size = vocab_size, kind, hidden_size
        self.num_layers, self.context, self.dropout = num_layers, context, dropout
        width = hidden_size if kind == "transformer" else EMBEDDING_DIM
        self.embedding = nn.Embedding(vocab_size, width)
        if kind == "transformer":
            self.positions = nn.Embedding(context, width)
            layer = nn.TransformerEncoderLayer(**_encoder_layer(hidden_size, dropout))
            self.body = nn.TransformerEncoder(layer, num_layers)
        else:
            self.body = RECURRENT[kind](**_recurrent(hidden_size, num_layers, dropout))
        self.head = nn.Linear(hidden_size, vocab_size)

    @staticmethod
    def _check(config: dict) -> None:
        kind = config.get("kind", DEFAULT_MODEL)
        if kind not in MODELS:
            raise ValueError(
                f"CharModel: kind {str(kind)[:20]!r} is not one of {', '.join(MODELS)}"
            )
        limits = {
            "vocab_size": MAX_VOCABULARY,
            "hidden_size": MAX_HIDDEN,
            "num_layers": MAX_LAYERS,
            "context": MAX_CONTEXT,
        }
        for name, most in limits.items():
            value = config.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"CharModel: {name} must be a whole number in [1, {most}]")
        if kind == "transformer" and config.get("hidden_size", 128) % HEADS:
            raise ValueError(f"CharModel: a transformer's hidden_size must divide by {HEADS}")

    def config(self) -> dict:
        names = ("vocab_size", "kind", "hidden_size", "num_layers", "context", "dropout")
        return {name: getattr(self, name) for name in names}

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        cls._check(config)
        kind, size = config.get("kind", DEFAULT_MODEL), config.get("hidden_size", 128)
        layers, vocab = config.get("num_layers", 1), config["vocab_size"]
        width = size if kind == "transformer" else EMBEDDING_DIM
        shapes = {"embedding.weight": (vocab, width)}
        if kind == "transformer":
            shapes["positions.weight"] = (config.get("context", DEFAULT_SEQUENCE_LENGTH), width)
            layer = nn.TransformerEncoderLayer.state_shapes(_encoder_layer(size, 0.0))
            shapes |= {f"body.layers.{i}.{k}": v for i in range(layers) for k, v in layer.items()}
        else:
            body = RECURRENT[kind].state_shapes(
                _recurrent(size, layers, 0.0) | {"mode": MODES[kind]}
            )
            shapes |= {f"body.{k}": v for k, v in body.items()}
        return shapes | {"head.weight": (vocab, size), "head.bias": (vocab,)}

    def forward(self, x):
        return self.read(x)[0]

    def read(self, x, state=None) -> tuple:
        """(logits (N, L, V), state): the logits after each character of ``x`` (N, L), and what
        to go on from: a recurrent layer's hidden state, or a Transformer's last ``context``
        characters (it reads them again at every step)."""
        if self.kind != "transformer":
            hidden, state = self.body(self.embedding(x), state)
            return self.head(hidden), state
        if state is not None:
            x = tensor(xp.concatenate([state.numpy(), x.numpy()], axis=1))
        x = x[:, -self.context :]
        steps = x.shape[1]
        h = self.embedding(x) + self.positions(tensor(xp.arange(steps)))
        mask = nn.Transformer.generate_square_subsequent_mask(steps)
        hidden = self.body(h, mask=mask, is_causal=True)
        return self.head(hidden), x


RECURRENT = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
MODES = {"rnn": "RNN_TANH", "lstm": "LSTM", "gru": "GRU"}  # RNNBase's name of each


def _recurrent(size: int, layers: int, dropout: float) -> dict:
    dropout = dropout if layers > 1 else 0.0  # between layers only, as PyTorch warns
    return {
        "input_size": EMBEDDING_DIM,
        "hidden_size": size,
        "num_layers": layers,
        "batch_first": True,
        "dropout": dropout,
    }


def _encoder_layer(size: int, dropout: float) -> dict:
    return {
        "d_model": size,
        "nhead": HEADS,
        "dim_feedforward": 4 * size,
        "dropout": dropout,
        "batch_first": True,
        "norm_first": True,
    }


class CharacterLoss(nn.Module):
    """Cross-entropy of logits (N, L, V) against the next characters (N, L): the mean loss per
    character, in nats."""

    def forward(self, logits, target):
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def build_text_model(config: Config, vocab_size: int) -> CharModel:
    """The network ``config`` asks for: ``--model`` (rnn, lstm, gru, transformer), ``--hidden``
    (one size a layer: 128,128 is two layers of 128), ``--dropout``."""
    model = config.model or DEFAULT_MODEL
    hidden = config.hidden or (128,)
    size, layers = _layers(hidden)
    try:
        return CharModel(
            vocab_size,
            model,
            size,
            layers,
            config.sequence_length or DEFAULT_SEQUENCE_LENGTH,
            config.dropout,
        )
    except ValueError as exc:
        raise RunError(f"--model {model} --hidden {','.join(map(str, hidden))}: {exc}") from None


# -- a trained run -------------------------------------------------------------------------------


def load_text_model(run_dir) -> tuple[CharModel, str]:
    """(model, vocabulary) of a text run folder, every part checked as
    :func:`~.folder.load_run` checks a run (for ``generate`` and the lens)."""
    from .folder import load_run, task_of  # (.folder imports this module)

    model, _, metadata = load_run(run_dir, text_run=True)
    if task_of(metadata) != "text":
        raise RunError(f"{run_dir}: not a text run (train one with --data FILE.txt)")
    return model, metadata["preprocessing"]["vocabulary"]


def generate(
    model: CharModel,
    vocabulary: str,
    count: int,
    temperature: float = 1.0,
    start: str = "",
    seed: int = 0,
    max_length: int = 200,
) -> list[str]:
    """``count`` samples, each ``start`` and what follows it up to the end marker (or
    ``max_length`` characters in all; never empty). Each next character is drawn from
    softmax(logits / ``temperature``); temperature 0 takes the likeliest (greedy: every sample
    the same)."""
    if MARKER in start:
        raise RunError("--start: one line of text (no newline)")
    primed = encode(MARKER + start, vocabulary, "--start")
    rng = new_rng(seed)
    model.eval()
    samples = [[] for _ in range(count)]
    done = xp.zeros(count, dtype=bool)
    x, state = tensor(xp.tile(primed, (count, 1))), None
    with no_grad():
        for step in range(max(max_length - len(start), 0)):
            logits, state = model.read(x, state)
            last = logits.numpy()[:, -1].astype(xp.float64)
            if step == 0 and not start:  # no item is empty (blank lines are not trained on)
                last[:, vocabulary.index(MARKER)] = -xp.inf
            chosen = _draw(last, temperature, rng)
            for i in xp.flatnonzero(~done):
                if vocabulary[chosen[i]] == MARKER:
                    done[i] = True
                else:
                    samples[i].append(vocabulary[chosen[i]])
            if done.all():
                break
            x = tensor(chosen[:, None])
    return [start + "".join(s) for s in samples]


def _draw(logits, temperature: float, rng):
    """One index a row: the arg-max for temperature 0, else a draw from softmax(logits / T)."""
    if temperature == 0:
        return logits.argmax(axis=1)
    scaled = logits / temperature
    p = xp.exp(scaled - scaled.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)


def perplexity(loss: float) -> float:
    """exp(loss per character): the number of equally likely characters the model's uncertainty
    is worth."""
    return math.exp(min(loss, 700.0))
