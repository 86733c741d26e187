"""The lens on the command line: ``chainrule explain ...``, ``chainrule plot ...``, ``chainrule lr-find``.

Each command prints what it shows (numbers) and saves the picture where ``--out`` says.
"""

from __future__ import annotations

import argparse
import dataclasses

from .. import data, nn, optim, runs
from ..backend import manual_seed, xp
from ..train import fit
from . import (
    boundary,
    curves,
    descent,
    fitline,
    forward,
    forward_figure,
    inside,
    landscape,
    loss,
    lr_finder,
    race,
    sequence_commands,
    trace,
    trace_figure,
)


def tiny_network():
    """A 2-3-2 network (sigmoid) and one input: small enough to check every number by hand."""
    manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 2))
    return model, xp.array([1.0, 0.5], dtype=xp.float32), 1


def image_of(x):
    """A 2-D input (or one channel of it) to draw as a picture; None for a vector."""
    x = xp.squeeze(xp.asarray(x))
    return x if x.ndim == 2 else None


def digits_flat():
    images, labels = data.load_digits()
    x = data.scale(images, 16.0).reshape(len(images), -1)
    return data.train_val_split(x, labels, val_fraction=0.2, seed=0, stratify=labels)


def add_commands(commands) -> dict:
    """Add the lens sub-commands to an argparse sub-parser group; returns name -> handler."""
    explain = commands.add_parser("explain", help="forward or backward pass, number by number")
    which = explain.add_subparsers(dest="view", metavar="VIEW", required=True)
    fwd = which.add_parser("forward", help="weighted sums, activations, prediction for one input")
    fwd.add_argument("run_dir", nargs="?", help="a trained run (default: a tiny 2-3-2 network)")
    fwd.add_argument(
        "--index", type=runs.non_negative_int, default=0, help="which test example (with RUN_DIR)"
    )
    fwd.add_argument("--out", default="forward.png")
    bwd = which.add_parser(
        "backward",
        help="the chain rule, node by node (tiny network; through the steps of a recurrent "
        "network: explain through-time)",
    )
    bwd.add_argument("--out", default="backward.png")
    add_loss_parser(which)
    sequence_commands.add_sequence_parsers(which)

    plot = commands.add_parser("plot", help="pictures of a network learning")
    views = plot.add_subparsers(dest="view", metavar="VIEW", required=True)
    p = views.add_parser("descent", help="gradient descent on a 1-D cost, three learning rates")
    p.add_argument("--cost", choices=list(descent.COSTS), default="parabola")
    p.add_argument(
        "--lr",
        type=runs.learning_rates,
        help="one to three learning rates, e.g. 0.05,0.3,1.02 (default: those three)",
    )
    p.add_argument("--steps", type=runs.positive_int, default=12)
    p.add_argument("--out", default="descent.png")
    p.add_argument("--gif", help="also write an animation")
    add_fit_line_parser(views)
    p = views.add_parser("race", help="optimizers racing on a 2-D surface")
    p.add_argument("--surface", choices=list(race.SURFACES), default="rosenbrock")
    p.add_argument("--steps", type=runs.positive_int, default=300)
    p.add_argument("--out", default="race.png")
    p.add_argument("--gif")
    p = views.add_parser("curves", help="learning curves of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", default="curves.png")
    p = views.add_parser("boundary", help="decision boundary of a 2-D data set over time")
    p.add_argument(
        "run_dir",
        nargs="?",
        help="a trained run on 2-D points (default: train a small network here, drawn every "
        "--every epochs)",
    )
    p.add_argument("--dataset", choices=list(boundary.DATASETS), default="spirals")
    p.add_argument("--epochs", type=runs.positive_int, default=100)
    p.add_argument("--every", type=runs.positive_int, default=10)
    p.add_argument("--out", default="boundary.png")
    p.add_argument("--gif")
    p = views.add_parser("landscape", help="the loss landscape around a trained network")
    p.add_argument(
        "run_dir", nargs="?", help="a trained run (default: a small MLP trained on the digits here)"
    )
    p.add_argument("--epochs", type=runs.positive_int, default=5)
    p.add_argument("--resolution", type=runs.positive_int, default=15)
    p.add_argument("--out", default="landscape.png")
    p = views.add_parser("gradient-flow", help="per-layer gradient norms, sigmoid vs ReLU")
    p.add_argument("--depth", type=runs.positive_int, default=6)
    p.add_argument("--epochs", type=runs.positive_int, default=2)
    p.add_argument("--out", default="gradient-flow.png")
    p = views.add_parser("weights", help="first-layer weights and histograms of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", default="weights.png")
    p = views.add_parser("confusion", help="confusion matrix and misclassified examples of a run")
    p.add_argument("run_dir")
    p.add_argument("--out", default="confusion.png")

    lr = commands.add_parser("lr-find", help="the learning-rate range test")
    lr.add_argument(
        "run_dir", nargs="?", help="a run whose data, network and optimizer to test (from scratch)"
    )
    lr.add_argument("--dataset", choices=runs.DATASETS, help="default: digits (or the run's)")
    lr.add_argument("--data-dir")
    lr.add_argument(
        "--optimizer", choices=list(runs.OPTIMIZERS), help="default: adam (or the run's)"
    )
    lr.add_argument("--steps", type=runs.positive_int, default=100)
    lr.add_argument("--out", default="lr-find.png")
    return {"explain": command_explain, "plot": command_plot, "lr-find": command_lr_find}


def command_explain(args: argparse.Namespace) -> int:
    if args.view == "loss":
        return explain_loss(args)
    if args.view in ("through-time", "attention", "sampling"):
        return sequence_commands.explain_sequences(args)
    if args.view == "forward":
        scale = None
        if args.run_dir:
            model, metadata, (x_test, _) = test_set_of(args.run_dir)
            if args.index >= len(x_test):
                raise runs.RunError(f"--index {args.index}: the test set has {len(x_test)}")
            x = x_test[args.index]
            if runs.task_of(metadata) == "regression":
                scale = tuple(metadata["preprocessing"][k] for k in ("target_mean", "target_std"))
        else:
            model, x, _ = tiny_network()
        explanation = forward.explain_forward(model, x, target_scale=scale)
        print(explanation)
        print(f"picture: {forward_figure.plot_forward(explanation, args.out, image=image_of(x))}")
    else:
        model, x, label = tiny_network()
        result = trace.trace_model(model, nn.CrossEntropyLoss(), x[None], xp.array([label]))
        print(result)
        print(f"picture: {trace_figure.plot_trace(result, args.out)}")
    return 0


def command_plot(args: argparse.Namespace) -> int:
    view = args.view
    if view == "descent":
        rates = descent.LEARNING_RATES
        if args.lr:
            if len(args.lr) > 3:
                raise runs.RunError(f"--lr takes at most three learning rates, got {len(args.lr)}")
            rates = {f"rate {i + 1}": lr for i, lr in enumerate(args.lr)}
        out, paths = descent.plot_descent(
            args.out, args.cost, steps=args.steps, learning_rates=rates, gif=args.gif
        )
        for name, p in paths.items():
            print(
                f"lr {p['lr']:<6} ({name}): w {p['w'][0]:.3f} -> {p['w'][-1]:.4g}, "
                f"cost {p['cost'][0]:.3f} -> {p['cost'][-1]:.4g}"
            )
    elif view == "fit-line":
        out = plot_fit_line(args)
    elif view == "race":
        out, paths = race.plot_race(args.out, args.surface, args.steps, gif=args.gif)
        cost = race.SURFACES[args.surface][0]
        for name, points in paths.items():
            end = points[-1]
            print(f"{name:<12} ends at ({end[0]:.3f}, {end[1]:.3f}), cost {float(cost(end)):.4g}")
    elif view == "curves":
        out = curves.plot_learning_curves(args.run_dir, args.out)
    elif view == "boundary" and args.run_dir:
        out = plot_boundary_of_run(args)
    elif view == "boundary":
        out, result = boundary.plot_boundary(
            args.out, args.dataset, args.epochs, args.every, gif=args.gif
        )
        for epoch, _, accuracy in result["snapshots"][1:]:
            print(f"epoch {epoch}: training accuracy {accuracy:.3f}")
    elif view == "landscape":
        out = plot_landscape_of_run(args) if args.run_dir else plot_landscape_of_digits(args)
    elif view == "gradient-flow":
        flow = inside.gradient_flow(depth=args.depth, epochs=args.epochs)
        for name, per_layer in flow.items():
            print(f"{name:<8}" + "  ".join(f"{v:.2e}" for v in per_layer.values()))
        out = inside.plot_gradient_flow(flow, args.out)
    elif view in ("weights", "confusion"):
        model, metadata, (x, y) = test_set_of(args.run_dir)
        preprocessing = metadata["preprocessing"]
        shape = tuple(preprocessing["input_shape"])
        if view == "weights":
            names = preprocessing.get("feature_names")
            if isinstance(model[0], nn.PlaneFeatures):  # the first Linear takes its features
                shape, names = (model[0].out_features,), model[0].labels
            out = inside.plot_first_layer(model, shape, args.out, feature_names=names)
            inside.plot_histograms(model, x[:500], str(out).replace(".png", "-histograms.png"))
        else:
            if runs.task_of(metadata) == "regression":
                raise runs.RunError(
                    f"plot confusion: {args.run_dir} is a regression (numbers, not classes, so "
                    f"nothing to confuse); its errors: chainrule evaluate {args.run_dir}, per "
                    f"epoch: chainrule plot curves {args.run_dir}"
                )
            out, matrix = inside.plot_confusion(model, x, y, args.out, image_shape=shape)
            print(matrix)
    print(f"picture: {out}")
    return 0


def test_set_of(run_dir) -> tuple:
    """(model, metadata, (x_test, y_test)) of a trained run, its test inputs prepared as in
    training."""
    model, config, metadata = runs.load_run(run_dir)
    config = dataclasses.replace(config, val_fraction=0.0, task=runs.task_of(metadata))
    return model, metadata, runs.test_data(run_dir, config, metadata).test


def plot_boundary_of_run(args) -> str:
    """The decision boundary of a trained run on 2-D points, over its test points (in the
    standardised coordinates the network takes)."""
    model, metadata, (x, y) = test_set_of(args.run_dir)
    shape = tuple(metadata["preprocessing"]["input_shape"])
    if shape != (2,) or runs.task_of(metadata) != "classification" or y.ndim != 1:
        raise runs.RunError(
            f"plot boundary: {args.run_dir} takes inputs of shape {shape} for a "
            f"{runs.task_of(metadata)}; a boundary is drawn for classes of 2-D points (a run on "
            f"{', '.join(boundary.DATASETS)}, with neither --target nor --loss mse)"
        )
    result = boundary.boundary_of(model, x, y)
    out, _ = boundary.plot_boundary(args.out, metadata.get("dataset"), result=result)
    print(f"test accuracy {result['snapshots'][0][2]:.3f}")
    return out


def plot_landscape_of_run(args) -> str:
    """The loss landscape of a trained run on (up to 1,000 of) its test examples: along the line
    from its initial weights (rebuilt from its seed, as training built them) to its trained ones,
    and a 2-D slice around them."""
    model, config, metadata = runs.load_run(args.run_dir)
    config = dataclasses.replace(config, val_fraction=0.0, task=runs.task_of(metadata))
    prepared = runs.test_data(args.run_dir, config, metadata)
    manual_seed(config.seed)
    start = runs.build_model(config, prepared.input_shape, prepared.outputs)
    x, y = (a[:1000] for a in prepared.test)
    loss_fn = runs.build_loss(config, prepared.outputs, prepared.task)
    initial = landscape.flat_weights(start)
    out, result = landscape.plot_landscape(  # a run keeps no path: the line from its start
        args.out,
        model,
        loss_fn,
        x,
        y,
        initial,
        [initial],
        args.resolution,
        f"the run {args.run_dir}",
    )
    _print_line(result)
    return out


def _print_line(result: dict) -> None:
    ts, line = result["line"]
    at = {t: float(line[xp.argmin(xp.abs(ts - t))]) for t in (0.0, 1.0)}
    print(
        f"loss along the straight line: {at[0.0]:.3f} at the initial weights, "
        f"{at[1.0]:.3f} at the trained ones"
    )


def plot_landscape_of_digits(args):
    """Train a small MLP on the digits, keeping its weights after every epoch, then draw."""
    (x, y), _ = digits_flat()
    manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    initial = landscape.flat_weights(model)
    path = [initial]
    for epoch in range(args.epochs):
        fit(model, loss_fn, optimizer, (x, y), epochs=1, progress=False, seed=epoch)
        path.append(landscape.flat_weights(model))
    description = (
        f"an MLP 64-32-10 (ReLU) on the 8x8 digits ({len(x)} training images), "
        f"{args.epochs} epochs of SGD with momentum"
    )
    out, result = landscape.plot_landscape(
        args.out, model, loss_fn, x, y, initial, path, args.resolution, description
    )
    _print_line(result)
    return out


def command_lr_find(args: argparse.Namespace) -> int:
    """The range test on the digits, or on a run's data, network and optimizer (from freshly
    initialised weights: the test is about where training starts); options given here win."""
    config = runs.saved_config(args.run_dir) if args.run_dir else runs.Config()
    given = {"dataset": args.dataset, "data_dir": args.data_dir, "optimizer": args.optimizer}
    config = dataclasses.replace(
        config, val_fraction=0.0, **{k: v for k, v in given.items() if v is not None}
    )
    prepared = runs.prepare(config)
    config = config.with_task_defaults(prepared.task)
    manual_seed(0)
    model = runs.build_model(config, prepared.input_shape, prepared.outputs)
    optimizer = runs.build_optimizer(config, model.parameters())
    result = lr_finder.lr_find(
        model,
        runs.build_loss(config, prepared.outputs, prepared.task),
        optimizer,
        prepared.train,
        steps=args.steps,
    )
    print(f"suggested learning rate: {result['suggestion']:.3g} (loss fell fastest there)")
    print(f"picture: {lr_finder.plot_lr_find(result, args.out)}")
    return 0


def learning_rate_choice(text: str):
    """``--lr``: a preset (too-small, right, too-big) or a learning rate as every ``--lr`` takes
    it (:func:`~chainrule.runs.config.learning_rate`)."""
    preset = text.replace("-", " ")
    if preset in fitline.PRESETS:
        return preset
    try:
        return runs.learning_rate(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be too-small, right, too-big or a positive number such as 0.01, got {text!r}"
        ) from None


def add_fit_line_parser(views) -> None:
    p = views.add_parser(
        "fit-line", help="gradient descent finds the best-fit line (one neuron, y = w x + b)"
    )
    p.add_argument("--optimizer", choices=fitline.OPTIMIZERS, default="gd")
    p.add_argument(
        "--lr",
        type=learning_rate_choice,
        default="right",
        help="too-small, right (default), too-big, or a number",
    )
    p.add_argument("--batch-size", type=int, help="examples per step (default: all; sgd: 8)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--data", help="a CSV file with a header and two columns: x, then y")
    p.add_argument(
        "--start",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        help="the first line as W,B (default: -1,3 for the built-in points, 0,0 for --data)",
    )
    p.add_argument("--out", default="fit-line.png")
    p.add_argument("--gif", help="also write an animation")


def plot_fit_line(args) -> str:
    if args.steps < 1 or (args.batch_size is not None and args.batch_size < 1):
        raise runs.RunError("--steps and --batch-size must be at least 1")
    if args.start is not None and len(args.start) != 2:
        raise runs.RunError(f"--start takes two numbers, W,B; got {len(args.start)}")
    x = y = None
    names = ("x", "y")
    if args.data:
        table = data.read_csv(args.data, task="regression")
        if table.features.shape[1] != 1:
            columns = ", ".join(table.feature_names + [table.target_name])
            raise runs.RunError(
                f"--data {args.data}: fit-line needs two columns (x, then y), got "
                f"{len(table.feature_names) + 1}: {columns}"
            )
        x, y = table.features, table.target
        names = (table.feature_names[0], table.target_name)
        print(f"{len(y)} points from {args.data}: x = {names[0]}, y = {names[1]}")
    else:
        print("40 points around y = 2 x + 1 (chainrule.data.line, noise 0.5)")
    out, result = fitline.plot_fit_line(
        args.out,
        x,
        y,
        args.optimizer,
        args.lr,
        args.steps,
        args.batch_size,
        start=args.start,
        gif=args.gif,
    )
    preset = f" ({args.lr})" if isinstance(args.lr, str) else ""
    batch = f", batches of {result['batch_size']}" if args.optimizer == "sgd" else ""
    print(f"{args.optimizer}, lr {result['lr']:.4g}{preset}{batch}:")
    last = len(result["cost"]) - 1
    for k in sorted({0, 1, 2, 5, 10, 20, 50, 100, 200, 500, last}):
        if k <= last:
            print(
                f"  step {k:>4}: w {result['w'][k]:<9.4g} b {result['b'][k]:<9.4g} "
                f"cost {result['cost'][k]:<9.4g} dJ/dw {result['slope_w'][k]:+.3g}, "
                f"dJ/db {result['slope_b'][k]:+.3g}"
            )
    best_w, best_b = result["least_squares"]
    print(
        f"least squares (numpy.linalg.lstsq): w {best_w:.4g}, b {best_b:.4g}, "
        f"cost {result['least_squares_cost']:.4g}"
    )
    if result["diverged"]:
        print(
            f"the cost grew from {result['cost'][0]:.4g} to {result['cost'][-1]:.4g} in {last} "
            "steps: each step overshoots the valley further (it diverges)"
        )
    else:
        distance = ((result["w"][-1] - best_w) ** 2 + (result["b"][-1] - best_b) ** 2) ** 0.5
        print(f"after {last} steps the line is {distance:.2g} away from it (in (w, b))")
    if args.gif:
        print(f"animation: {args.gif}")
    return out


def add_loss_parser(which) -> None:
    p = which.add_parser("loss", help="each example's loss, the cost as their sum and mean")
    p.add_argument("--loss", choices=loss.LOSSES, default="mse")
    p.add_argument("--examples", type=int, default=4, help="the batch size (1 to 8)")
    p.add_argument("--out", default="loss.png")


def explain_loss(args) -> int:
    if not 1 <= args.examples <= 8:
        raise runs.RunError(f"--examples {args.examples}: explain loss shows 1 to 8 examples")
    model, x, y = loss.small_batch(args.loss, args.examples)
    if args.loss == "mse":
        print("one neuron, prediction = 1.5 x + 0.5, on points around y = 2 x + 1:")
    else:
        print("a softmax classifier Linear(2, 3) on points of three blobs:")
    explanation = loss.explain_loss(model, args.loss, x, y)
    print(explanation)
    print(f"picture: {loss.plot_loss(explanation, args.out)}")
    return 0
