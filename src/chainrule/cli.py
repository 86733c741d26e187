"""The ``chainrule`` command: train, evaluate, predict, info (and the lens, ONNX and playground
sub-commands, each added by its own package).

Errors we anticipate (bad settings, bad or missing files and data, a diverging run, a missing
optional dependency) end with one line ``chainrule: error: ...`` and exit status 2, as argparse's
own errors do (``--traceback`` shows the traceback for debugging). Anything else is a bug in
chainrule: it shows its traceback, asks to be reported, and exits with status 70 (EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
from pathlib import Path

from . import distributed, io, runs
from .cores import set_num_threads
from .files import DataError, read_capped
from .lens import commands as lens_commands
from .onnx import commands as onnx_commands
from .playground import commands as playground_commands
from .train import DivergenceError

# Errors of the user's request, files, data or environment: one line, exit 2. DataError covers
# every file chainrule reads (data, models, checkpoints, settings); OSError the file system
# (permissions, a full disk); ImportError a missing optional dependency.
EXPECTED_ERRORS = (runs.RunError, DataError, DivergenceError, OSError, ImportError, MemoryError)
BUG_EXIT_STATUS = 70  # EX_SOFTWARE
MAX_TOML_BYTES = 1 << 20
RUN_DIR_HELP = "a run folder written by chainrule train (its --out)"


def _batch_size(text: str):
    if text in ("full", "none", "all"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'full', got {text!r}") from None


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to look, not the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="chainrule",
        description="Train and inspect neural networks built on chainrule's NumPy engine.",
    )
    parser.add_argument("--traceback", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a network and write a run folder",
        description="Train a network. With no options: a small MLP on the built-in 8x8 digits.",
        argument_default=argparse.SUPPRESS,
    )
    train.add_argument("--dataset", choices=runs.DATASETS, help="data set (default: digits)")
    train.add_argument(
        "--data",
        help="your own data: a CSV file (a header row, numbers; the target: --target COLUMN), "
        "a folder with one subfolder of images per class (resized to 32x32 grey), or a text "
        "file (.txt: one item a line, or running text) for a character model",
    )
    train.add_argument(
        "--task",
        choices=runs.TASKS,
        help="default: what the data says (class labels: classification; numbers: regression; "
        "a .txt file: text); text with no --data trains on the built-in names",
    )
    train.add_argument(
        "--data-dir", help="folder with the data set's files (MNIST, Fashion-MNIST, california)"
    )
    train.add_argument("--download", action="store_true", help="download missing files first")
    train.add_argument(
        "--model",
        help="mlp (default; for a folder of images a small CNN), cnn (LeNet-5), or a spec "
        "such as conv8k3,pool2,fc64 (see chainrule.models); for text rnn, lstm (default), gru "
        "or transformer",
    )
    train.add_argument(
        "--hidden",
        help="hidden layer sizes, or none (default: 256,128 for classes, 128 for regression "
        "and text, where 128,128 is two recurrent or Transformer layers of 128)",
    )
    train.add_argument("--activation", help="relu, leaky_relu, sigmoid, tanh, gelu, softplus")
    train.add_argument("--dropout", type=float, help="dropout after each hidden layer")
    train.add_argument(
        "--loss", choices=runs.LOSSES, help="default: cross-entropy (classes), mse (regression)"
    )
    train.add_argument(
        "--label-smoothing",
        type=float,
        help="E for cross-entropy: the target is 1 - E on the right class plus E spread over "
        "all (default 0: off; 0.1 is common, and keeps the loss above about 0.5 for 10 classes)",
    )
    train.add_argument("--optimizer", choices=list(runs.OPTIMIZERS), help="default: adam")
    train.add_argument("--schedule", choices=runs.SCHEDULES, help="learning-rate schedule")
    train.add_argument(
        "--lr", type=runs.learning_rate, help="learning rate (default depends on the optimizer)"
    )
    _add_optimizer_settings(train)
    train.add_argument("--batch-size", type=_batch_size, help="examples per step, or 'full'")
    train.add_argument("--epochs", type=int, help="passes over the training data (default 30)")
    train.add_argument(
        "--target",
        type=runs.target_choice,
        help="with --data: the target column (default: the last); else a class K, to train "
        "'is it a K or not' (one-vs-rest)",
    )
    train.add_argument(
        "--sequence-length",
        type=runs.positive_int,
        help="text: characters the model reads at a time in training (default 32)",
    )
    train.add_argument("--seed", type=int, help="random seed (default 0)")
    train.add_argument("--val-fraction", type=float, help="training data held out (default 0.1)")
    train.add_argument("--checkpoint-every", type=int, help="also checkpoint every N batches")
    train.add_argument("--out", help="run folder (default: runs/<timestamp>)")
    train.add_argument("--config", help="a TOML file of settings (options given here win)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (only chainrule's own files are deleted)",
    )
    train.add_argument(
        "--sync-batchnorm",
        action="store_true",
        help="under mpiexec: batch-norm statistics over all processes (default: each its own)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument(
        "--threads",
        type=runs.thread_count,
        help="threads for the matrix products and batch splitting: a number, or auto (the "
        "default: the cores other programs leave idle, looked at while training)",
    )

    evaluate = commands.add_parser(
        "evaluate", help="test loss and accuracy of a trained run (regression: MSE, RMSE, MAE, R^2)"
    )

    evaluate.add_argument("run_dir", help=RUN_DIR_HELP)
    evaluate.add_argument(
        "--dataset", choices=runs.DATASETS, help="evaluate on another data set's test split"
    )
    evaluate.add_argument("--data-dir", help="folder with the data set's files")

    predict = commands.add_parser(
        "predict",
        help="classify images (PNG/JPEG), .npy arrays or CSV rows; or predict a regression's value",
        description="Classify pictures (any size, dark on light or light on dark: each is made to "
        "look like the training images first, and a line says how), .npy arrays of the model's "
        "input shape, or the rows of a CSV file with the training columns; or predict a "
        "regression's value.",
    )
    predict.add_argument("run_dir", help=RUN_DIR_HELP)
    predict.add_argument(
        "inputs", nargs="+", metavar="FILE", help="PNG/JPEG pictures, .npy arrays or CSV files"
    )
    predict.add_argument(
        "--top", type=runs.positive_int, default=3, help="how many classes to show (default 3)"
    )
    predict.add_argument(
        "--show", metavar="FILE", help="write a PNG of each picture beside what the network saw"
    )

    generate = commands.add_parser(
        "generate",
        help="sample text from a text run (trained with --data FILE.txt or --task text)",
        description="Sample items (lines) from a character model: each is drawn one character "
        "at a time until the model ends the line.",
    )
    generate.add_argument("run_dir", help=RUN_DIR_HELP)
    generate.add_argument(
        "--count", type=runs.positive_int, default=10, help="how many samples (default 10)"
    )
    generate.add_argument(
        "--temperature",
        type=runs.non_negative_float,
        default=1.0,
        help="below 1: safer choices, above 1: wilder; 0: always the likeliest (default 1)",
    )
    generate.add_argument("--start", default="", help="text each sample begins with")
    generate.add_argument("--seed", type=runs.non_negative_int, default=0, help="default 0")
    generate.add_argument(
        "--max-length",
        type=runs.positive_int,
        default=200,
        help="characters a sample may have at most (default 200)",
    )

    info = commands.add_parser(
        "info", help="architecture, size and results of a run (or what a saved model is made of)"
    )
    info.add_argument("run_dir", help=RUN_DIR_HELP)
    COMMANDS.update(lens_commands.add_commands(commands))
    COMMANDS.update(onnx_commands.add_commands(commands))
    COMMANDS.update(playground_commands.add_commands(commands))
    return parser


def _add_optimizer_settings(train: argparse.ArgumentParser) -> None:
    """A flag for each optimizer setting (``--beta2 0.99``, ``--amsgrad``), its help, range and
    defaults from the optimizers' specs; a setting several optimizers share is one flag. Their
    ranges are checked with the other settings', in ``Config.from_dict``."""
    for name, setting in runs.OPTIMIZER_SETTINGS.items():
        said = (
            setting.help if setting.kind is bool else f"{setting.help}, in {setting.range_text()}"
        )
        said += f"; {_defaults_text(name)}"
        flag = "--" + name.replace("_", "-")
        if setting.kind is bool:
            train.add_argument(flag, action=argparse.BooleanOptionalAction, help=said)
        else:
            train.add_argument(flag, type=setting.kind, help=said)


def _defaults_text(name: str) -> str:
    """Which ``--optimizer`` choices take setting ``name`` and their defaults: ``for adam,
    adamw; default 0 (adamw 0.01)``."""
    defaults = {}
    for optimizer in runs.OPTIMIZERS:
        value = runs.optimizer_defaults(optimizer).get(name)
        if value is not None:
            defaults[optimizer] = _setting_text(value)
    values = list(defaults.values())
    usual = max(values, key=values.count)
    others = ", ".join(f"{k} {v}" for k, v in defaults.items() if v != usual)
    return f"for {', '.join(defaults)}; default {usual}" + (f" ({others})" if others else "")


def _setting_text(value) -> str:
    """An optimizer setting's value in a line: ``0.9``, ``1e-08``, ``on``."""
    return ("on" if value else "off") if isinstance(value, bool) else f"{value:g}"


def read_toml(path: str) -> dict:
    """The settings in a TOML file (a regular file of at most 1 MiB)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        text = read_capped(path, MAX_TOML_BYTES, "settings file").decode()
        return tomllib.loads(text)
    except DataError as exc:
        raise runs.RunError(f"--config {exc}") from None
    except UnicodeDecodeError:
        raise runs.RunError(f"--config {path}: not a text file (not UTF-8)") from None
    except RecursionError:
        raise runs.RunError(f"--config {path}: nested too deeply") from None
    except tomllib.TOMLDecodeError as exc:
        raise runs.RunError(f"--config {path}: not valid TOML ({exc})") from None


def command_train(args) -> int:
    options = {k: v for k, v in vars(args).items() if k not in ("command", "traceback")}
    resume, quiet = options.pop("resume", False), options.pop("quiet", False)
    overwrite = options.pop("overwrite", False)
    if resume and overwrite:
        raise runs.RunError("--resume continues a run, --overwrite replaces it: choose one")
    comm = distributed.init()  # several processes when started by mpiexec -n N (N > 1)
    if "threads" in options:
        set_num_threads(options.pop("threads"))
    elif comm.world_size > 1:  # the processes on one machine share its cores
        set_num_threads(distributed.threads_per_process(comm))
    settings = {}
    if "config" in options:
        path = options.pop("config")
        in_file = read_toml(path)
        # the file's optimizer settings are those of the optimizer the command line chooses
        chosen = {k: v for k, v in options.items() if k == "optimizer"}
        checked = runs.Config.from_dict(in_file | chosen, source=path)
        try:
            runs.check_choices(checked)
        except runs.RunError as exc:
            raise runs.RunError(f"--config {path}: {exc}") from None
        settings = {k: v for k, v in checked.to_dict().items() if k in in_file}
    settings.update(options)
    if resume:
        if "out" not in settings:
            raise runs.RunError("--resume needs --out RUN_DIR (the run to continue)")
        changed = set(settings) - {"out", "epochs"}
        if changed:
            raise runs.RunError(
                f"--resume continues a run as it was; only --epochs may change "
                f"(got {', '.join(sorted(changed))})"
            )
        given = runs.Config.from_dict(settings)
        config = dataclasses.replace(
            runs.saved_config(settings["out"]), **{k: getattr(given, k) for k in settings}
        )
    else:
        config = runs.Config.from_dict(settings)
    metrics = runs.train(config, resume, progress=not quiet, overwrite=overwrite, comm=comm)
    if comm.rank != 0:
        return 0
    tested = {k.removeprefix("test_"): v for k, v in metrics.items() if k.startswith("test_")}
    print(
        f"{_results(tested)}  ({metrics['epochs']} epochs, {metrics['train_seconds']:.1f} s)  "
        f"->  {metrics['out']}"
    )
    if "overfitting" in metrics:
        print(_overfitting_hint(metrics["overfitting"], runs.saved_config(metrics["out"])))
    return 0


def _overfitting_hint(risen: dict, config) -> str:
    """What to try when the validation loss rose after its lowest epoch (the run keeps the
    last epoch's weights); ``config`` is the run's, as trained."""
    advice = [f"fewer epochs (--epochs {risen['best_epoch']})"]
    if config.model in ("mlp", *runs.text.MODELS):  # the networks --dropout and --hidden shape
        advice.append(f"--dropout {min(0.5, config.dropout + 0.2):g}")
        halves = [size // 2 for size in config.hidden or ()]
        heads = runs.text.HEADS if config.model == "transformer" else 1
        if halves and min(halves) >= 4 and all(h % heads == 0 for h in halves):
            advice.append(f"a smaller network (--hidden {','.join(map(str, halves))})")
    else:  # a model spec: dropout is one of its layers
        advice.append("a dropout layer in --model (such as drop25 before the last fc)")
    return (
        f"note: the validation loss was lowest at epoch {risen['best_epoch']} "
        f"({risen['best']:.4f}) and rose to {risen['last']:.4f} by the last: the network has "
        f"begun to memorise its training examples (overfitting). {_sentence(advice)}"
        " or more data would generalise better."
    )


def _sentence(parts: list) -> str:
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


def _results(metrics: dict) -> str:
    """Test results in a line: accuracy and loss, a regression's errors in its units, or a text
    model's loss per character and perplexity."""
    if "r2" in metrics:
        r2 = (
            "undefined (all test targets equal)"
            if metrics["r2"] is None
            else f"{metrics['r2']:.4f}"
        )
        return (
            f"test R^2 {r2}  RMSE {metrics['rmse']:.4g}  MAE {metrics['mae']:.4g}  "
            f"MSE {metrics['mse']:.4g}  (loss {metrics['loss']:.4f} on standardised targets)"
        )
    if "perplexity" in metrics:
        return (
            f"test loss {metrics['loss']:.4f} per character  perplexity {metrics['perplexity']:.3f}"
        )
    return f"test accuracy {metrics['accuracy']:.4f}  test loss {metrics['loss']:.4f}"


def command_generate(args) -> int:
    model, vocabulary = runs.load_text_model(args.run_dir)
    for sample in runs.generate(
        model, vocabulary, args.count, args.temperature, args.start, args.seed, args.max_length
    ):
        print(sample)
    return 0


def command_evaluate(args) -> int:
    print(_results(runs.evaluate_run(args.run_dir, args.dataset, args.data_dir)))
    return 0


def command_predict(args) -> int:
    results = runs.predict_files(args.run_dir, args.inputs, args.top)
    for result in results:
        if "top" not in result:  # a regression: the value
            print(f"{result['file']}: {result['prediction']:.6g}")
        else:
            top = "  ".join(f"{cls}: {p:.3f}" for cls, p in result["top"])
            print(f"{result['file']}: {result['prediction']}   ({top})")
        if "input" in result and result["input"].steps:
            print(f"  read as: {result['input'].steps}")
        if "warning" in result:
            print(f"  warning: {result['warning']}")
    if args.show:
        shown = [r for r in results if "input" in r]
        if not shown:
            raise runs.RunError(f"--show {args.show}: none of the inputs is a picture")
        runs.write_seen(args.show, shown)
        print(f"what the network saw: {args.show}")
    return 0


def command_info(args) -> int:
    from .nn import summary

    given = Path(args.run_dir)
    if given.with_name(f"{given.name}.safetensors").is_file() or given.suffix and given.is_file():
        # a model saved with cr.save, not a run folder: what it is made of
        print(io.describe_file(args.run_dir))
        return 0
    model, config, metadata = runs.load_run(args.run_dir, text_run=True)
    if runs.task_of(metadata) == "text":  # summary cannot follow a layer returning a state
        print(f"{model}\n{model.num_parameters():,} parameters")
    else:
        print(summary(model, (1, *metadata["preprocessing"]["input_shape"])))
    # runs written before config.json recorded the values used hold None for the defaults
    lr = "its default" if config.lr is None else f"{config.lr:g}"
    defaults = runs.optimizer_defaults(config.optimizer)  # the settings changed from them:
    settings = "".join(
        f", {name} {_setting_text(value)}"
        for name, value in config.optimizer_settings.items()
        if value != defaults.get(name)
    )
    batch = "the whole training set" if config.batch_size is None else config.batch_size
    print(
        f"\ntrained on {config.data or metadata.get('dataset')} with {config.optimizer} "
        f"(lr {lr}{settings}), batch {batch}, {config.epochs} epochs, seed {config.seed}"
    )
    print(runs.describe_task(model, metadata))
    metrics_path = Path(args.run_dir) / "metrics.json"
    if metrics_path.exists():
        for key, value in io.read_json(metrics_path).items():
            print(f"  {key}: {_shown(value)}")
    else:
        print(
            f"unfinished: no metrics yet (the model is from the last finished epoch); "
            f"continue with: chainrule train --out {args.run_dir} --resume (if it diverged, a "
            f"resume diverges again: start afresh with --overwrite and a smaller --lr)"
        )
    return 0


def _shown(value) -> str:
    """A metric as a person reads it: four significant digits for a measured number, a dict
    (the overfitting record) as its items."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {_shown(item)}" for key, item in value.items())
    return f"{value:.4g}" if isinstance(value, float) else str(value)


COMMANDS = {
    "train": command_train,
    "evaluate": command_evaluate,
    "predict": command_predict,
    "info": command_info,
    "generate": command_generate,
}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return COMMANDS[args.command](args)
    except EXPECTED_ERRORS as exc:
        if args.traceback:
            raise
        print(f"chainrule: error: {_one_line(exc)}", file=sys.stderr)
        return _stop_all(2, exc)
    except KeyboardInterrupt as exc:  # a run being trained says how to continue it
        print(f"chainrule: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    except Exception as exc:
        traceback.print_exc()
        print(
            "chainrule: internal error: this is a bug in chainrule, not in your input; please "
            "report it with the command you ran and the traceback above",
            file=sys.stderr,
        )
        return _stop_all(BUG_EXIT_STATUS, exc)


def _stop_all(status: int, exc: BaseException) -> int:
    """Under mpiexec, stop every process (the others would wait for this one forever)."""
    if distributed.started():
        distributed.abort_job(_one_line(exc), status)
    return status


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "not enough memory; try a smaller --batch-size or a smaller model"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return " ".join(str(exc).split())
