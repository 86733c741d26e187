"""The lens's commands for sequences: ``chainrule explain through-time``, ``explain attention``
and ``explain sampling`` (registered by :mod:`.commands`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .. import runs
from . import text, text_figure, through_time

MAX_STEPS = 500  # time steps of explain through-time: past that a plain RNN's gradient is 0


def models(value: str) -> list:
    """An argparse type: recurrent networks to compare, e.g. rnn,lstm."""
    names = [name.strip() for name in value.split(",")]
    unknown = [name for name in names if name not in through_time.LAYERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(through_time.LAYERS)} separated by commas, got {value!r}"
        )
    return list(dict.fromkeys(names))


def forget_bias(value: str) -> float:
    """An argparse type: a number from -20 to 20 (past that the gate is shut or open for good)."""
    try:
        bias = float(value)
    except ValueError:
        bias = math.nan
    if not -20 <= bias <= 20:
        raise argparse.ArgumentTypeError(f"expected a number from -20 to 20, got {value!r}")
    return bias


def temperatures(value: str) -> list:
    """An argparse type: one to four temperatures > 0, separated by commas."""
    found = [runs.positive_float(part) for part in value.split(",")]
    if len(found) > 4:
        raise argparse.ArgumentTypeError(f"at most four temperatures, got {len(found)}")
    return found


def add_sequence_parsers(which) -> None:
    """``explain through-time``, ``explain attention`` and ``explain sampling``."""
    p = which.add_parser(
        "through-time",
        help="the chain rule through time: the gradient reaching each step of an RNN, LSTM, GRU",
    )
    p.add_argument("--model", type=models, default=["rnn", "lstm"], help="default: rnn,lstm")
    p.add_argument(
        "--steps", type=runs.positive_int, default=50, help="time steps of each sequence"
    )
    p.add_argument(
        "--forget-bias",
        type=forget_bias,
        default=1.0,
        help="added to the LSTM's forget-gate bias (default 1, Keras' start; 0 is PyTorch's)",
    )
    p.add_argument("--seed", type=runs.non_negative_int, default=0)
    p.add_argument("--out", default="through-time.png")
    for name, default, what in (
        ("attention", "emma.olivia.ava", "attention weights per head and layer for a text"),
        ("sampling", "emma.oliv", "the next character's probabilities at several temperatures"),
    ):
        p = which.add_parser(
            name,
            help=f"{what} (of a text run, or of a small Transformer trained on names here)",
        )
        p.add_argument(
            "words",
            nargs="*",
            metavar="[RUN] TEXT",
            help="a text run's folder (chainrule train --data FILE.txt --model transformer), "
            "then the text; without RUN, the demo model: names separated by "
            f"{text.SEPARATOR!r}, at most {text.CONTEXT} characters (default {default!r})",
        )
        p.add_argument(
            "--train-steps",
            type=runs.positive_int,
            default=300,
            help="training steps of the demo model (default 300, a few seconds)",
        )
        p.set_defaults(text_default=default)
        p.add_argument("--seed", type=runs.non_negative_int, default=0)
        if name == "sampling":
            p.add_argument(
                "--temperature", type=temperatures, default=list(text.TEMPERATURES),
                help="default: 0.5,1,2",
            )  # fmt: skip
        p.add_argument("--out", default=f"{name}.png")


def explain_sequences(args: argparse.Namespace) -> int:
    if args.view == "through-time":
        return explain_through_time(args)
    model, vocabulary = text_model(args)
    if args.view == "attention" and not text.has_attention(model):
        raise runs.RunError(
            f"{args.run}: a {model.kind} model has no attention to show (train one with "
            "--model transformer)"
        )
    if args.view == "attention":
        attention = text.attention_of(model, vocabulary.encode, args.text)
        print(text.describe_attention(attention))
        print(f"picture: {text_figure.plot_attention(attention, args.out)}")
    else:
        result = text.next_character(
            model, vocabulary.encode, vocabulary.chars, args.text, args.temperature
        )
        print(text.describe_next(result))
        print(f"picture: {text_figure.plot_next_character(result, args.out)}")
    return 0


def text_model(args) -> tuple:
    """(model, vocabulary) to look into, once TEXT is checked to be readable by it: a trained
    text run's (``[RUN] TEXT``; the text is read as the start of a line, as ``generate``
    starts), or the demo's, trained here (after the check, not to keep anyone waiting for an
    error). Sets ``args.run`` and ``args.text``."""
    default = args.text_default
    if len(args.words) > 2:
        raise runs.RunError(f"explain {args.view} takes [RUN] TEXT, got {len(args.words)} words")
    if len(args.words) == 2 or (len(args.words) == 1 and _is_folder(args.words[0])):
        args.run, given = args.words[0], (args.words[1:] or [""])[0]
        model, characters = runs.load_text_model(args.run)
        vocabulary = text.Vocabulary(characters, numbered=True)
        args.text = runs.text.MARKER + given
        check_text(args.text, model.context, vocabulary)
        return model, vocabulary
    args.run, args.text = None, (args.words or [default])[0]
    check_text(args.text, text.CONTEXT, text.Vocabulary(text.demo_text()))
    return text.demo_model(args.train_steps, args.seed)


def check_text(sample: str, context: int, vocabulary) -> None:
    """One line saying why a model of ``context`` characters and ``vocabulary`` cannot read
    ``sample``, if it cannot."""
    if not sample or len(sample) > context:
        raise runs.RunError(
            f"TEXT {sample!r}: the model reads 1 to {context} characters, got {len(sample)}"
        )
    try:
        vocabulary.encode(sample)
    except ValueError as exc:
        raise runs.RunError(f"TEXT: {exc}") from None


def explain_through_time(args) -> int:
    if args.steps > MAX_STEPS:
        raise runs.RunError(f"--steps {args.steps}: explain through-time shows 1 to {MAX_STEPS}")
    results = [
        through_time.gradient_through_time(
            name, steps=args.steps, forget_bias=args.forget_bias, seed=args.seed
        )
        for name in args.model
    ]
    print(
        f"{args.steps} steps of one random number each; the label is the sign of the first, the "
        "loss is on the last hidden state; freshly initialised layers of 32 units, 32 sequences:"
    )
    print(through_time.describe(results))
    print(f"picture: {through_time.plot_through_time(results, args.out)}")
    return 0


def _is_folder(word: str) -> bool:
    """Whether a lone word is a run folder rather than the text ("" is not ".")."""
    return bool(word) and Path(word).is_dir()
