"""The playground without a browser: data, settings, training, frames, export and script."""

import base64
import contextlib
import io
import json
import runpy
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.cli import main
from chainrule.playground import frames
from chainrule.playground.export import exported_model, write_run_folder
from chainrule.playground.points import PlaygroundError, build_points, read_upload
from chainrule.playground.script import python_script
from chainrule.playground.settings import (
    MAX_NEURONS,
    OPTIMIZER_SETTINGS,
    OPTIMIZERS,
    RANGES,
    Setup,
    choices,
)
from chainrule.playground.trainer import Trainer


def bytes_of(text: str):
    """A picture of a frame as its bytes (see chainrule.playground.frames)."""
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8)


def trained(values: dict, epochs: int = 3) -> Trainer:
    setup = Setup.from_dict(values)
    trainer = Trainer(setup, build_points(setup))
    for _ in range(epochs):
        trainer.train_epoch()
    return trainer


# -- data ------------------------------------------------------------------------------------------


def test_two_gaussians_are_two_clouds_around_their_centres():
    x, y = cr.data.two_gaussians(n=400, spread=0.5, distance=2.0, seed=1)
    assert x.shape == (400, 2) and x.dtype == np.float32 and set(y.tolist()) == {0, 1}
    assert np.allclose(x[y == 0].mean(axis=0), [-2, -2], atol=0.15)
    assert np.allclose(x[y == 1].mean(axis=0), [2, 2], atol=0.15)
    assert np.allclose(x[y == 1].std(axis=0), 0.5, atol=0.1)
    same = cr.data.two_gaussians(n=400, spread=0.5, distance=2.0, seed=1)[0]
    assert np.array_equal(x, same)
    with pytest.raises(ValueError, match="positive number of points"):
        cr.data.two_gaussians(n=0)


def test_points_split_as_the_csv_reader_splits_and_added_points_train():
    setup = Setup.from_dict({"dataset": "moons", "n": 200, "points": [[0.25, 0.5, 1]]})
    points = build_points(setup)
    x, y = cr.data.moons(n=200, noise=0.1, seed=0)
    (x_train, y_train), (x_test, y_test) = cr.data.train_val_split(
        x, y, val_fraction=0.2, seed=0, stratify=y
    )
    assert np.array_equal(points.x_test, x_test) and np.array_equal(points.y_test, y_test)
    assert np.array_equal(points.x_train[:-1], x_train)
    assert points.x_train[-1].tolist() == [0.25, 0.5] and points.y_train[-1] == 1
    assert points.added == 1 and len(points.x_all) == 201
    scaled = points.network_inputs(points.x_train)
    assert np.allclose(scaled.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(scaled.std(axis=0), 1, atol=1e-4)


def test_custom_points_say_what_is_missing_before_they_can_train():
    empty = build_points(Setup.from_dict({"dataset": "custom", "classes": 3}))
    assert "class 0 has no points" in empty.problem and empty.domain == ((-1, 1), (-1, 1))
    for points in ([], [[0.5, 0.5, 1]]):  # the page shows an untrained network meanwhile
        setup = Setup.from_dict({"dataset": "custom", "points": points})
        waiting = Trainer(setup, build_points(setup))
        json.dumps(frames.frame_message(waiting, False, None), allow_nan=False)
        assert frames.data_message(waiting)["problem"] is not None
    two = [[-0.5, 0.1 * k, 0] for k in range(5)] + [[0.5, 0.1 * k, 1] for k in range(5)]
    points = build_points(Setup.from_dict({"dataset": "custom", "points": two}))
    assert points.problem is None and len(points.x_test) == 2 and len(points.x_train) == 8


def test_an_uploaded_csv_file_becomes_the_data_set():
    rows = ["height,weight,kind"] + [f"{i},{2 * i + 1},{'ab'[i % 2]}" for i in range(30)]
    upload = read_upload("animals.csv", "\n".join(rows))
    assert upload.feature_names == ["height", "weight"] and upload.classes == ["a", "b"]
    setup = Setup.from_dict({"dataset": "upload"}, upload)
    points = build_points(setup, upload)
    assert points.task == "classification" and points.classes == ["a", "b"]
    assert len(points.x_train) + len(points.x_test) == 30


@pytest.mark.parametrize(
    "text, message",
    [
        ("a,b\noops,1\n", "upload.csv, line 2, column 'a'"),
        ("a,b,c,d\n1,2,3,4\n1,2,3,5\n", "3 feature columns"),
        ("x,y\n" + "\n".join(f"{i},{i}" for i in range(2001)), "at most 2,000"),
        ("a,b,c\n" + "\n".join(f"{i},{i},{i % 7}" for i in range(50)), "7 classes"),
        ("x" * (600 << 10), "at most 512 KiB"),
    ],
)
def test_bad_uploads_are_refused_by_name(text, message):
    with pytest.raises(PlaygroundError, match=message):
        read_upload("upload.csv", text)


# -- settings --------------------------------------------------------------------------------------


def test_defaults_fill_what_the_page_leaves_out():
    setup = Setup.from_dict({"dataset": "spirals", "optimizer": "adam"})
    assert setup.noise == 0.2 and setup.lr == OPTIMIZERS["adam"][1] and setup.output == "softmax"
    line = Setup.from_dict({"dataset": "line", "hidden": []})
    assert line.features == ["x"] and line.output == "linear" and line.activations == []


@pytest.mark.parametrize(
    "values, message",
    [
        ({"hidden": [4, 2, 2, 2, 2, 2, 2]}, "hidden layers: at most 6"),
        ({"hidden": [MAX_NEURONS + 1]}, "hidden layer 1: 1 to 8 neurons, got 9"),
        ({"hidden": [4, "many"]}, 'hidden layer 2: 1 to 8 neurons, got "many"'),
        ({"n": 5000}, r"points \(n\) must be a whole number from 10 to 1000, got 5000"),
        ({"n": "abc"}, 'got "abc"'),
        ({"lr": 0}, r"learning rate \(lr\) must be a number above 0"),
        ({"lr": float("nan")}, "learning rate"),
        ({"test": 0.95}, "test fraction"),
        ({"dropout": 0.95}, "dropout"),
        ({"seed": -1}, "seed"),
        ({"batch": True}, "batch size"),
        ({"dataset": "mnist"}, "dataset must be one of circles"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"features": []}, "choose at least one"),
        ({"features": ["x", "z"]}, '"z" is not a feature'),
        ({"dataset": "line", "features": ["y"]}, "not a feature of one number"),
        ({"activations": ["tanh", "swish"]}, "hidden layer 2: activation must be one of"),
        ({"output": "sigmoid", "dataset": "blobs", "classes": 3}, "not 3"),
        ({"output": "linear"}, "for classes choose softmax or sigmoid"),
        ({"dataset": "plane", "output": "softmax"}, "a regression's output is linear"),
        ({"points": [[0, 0, 2]]}, "added point 1: its class must be 0 to 1"),
        ({"points": [[0, 0]]}, "added point 1: expected 3 numbers"),
        ({"points": [[1e9, 0, 0]]}, "added point 1"),
        ({"points": [[0, 0, 0]] * 501}, "at most 500 added points"),
        ({"nesterov": True}, "nesterov needs the sgd optimizer with momentum"),
        ({"noise": 7}, r"noise \(noise\) must be a number from 0 to 0.3"),
        ({"colour": "red"}, 'unknown setting "colour"'),
        ({"dataset": "upload"}, "upload a CSV file first"),
    ],
)
def test_every_bad_setting_is_refused_with_its_name(values, message):
    with pytest.raises(PlaygroundError, match=message):
        setup = Setup.from_dict(values)
        build_points(setup)


def test_the_learning_rate_menu_offers_only_accepted_rates_and_every_default():
    menu = choices()["learning_rates"]
    assert menu == sorted(menu) and len(set(menu)) == len(menu) >= 8
    assert menu[0] <= 1e-4 and menu[-1] == RANGES["lr"][2]  # as small and as large as sensible
    for lr in menu:
        assert Setup.from_dict({"lr": lr}).lr == lr
    for name, (_, default, _) in OPTIMIZERS.items():
        assert default in menu, name  # each optimizer starts on an item of the menu


def test_every_control_has_a_short_explanation_and_optimizer_settings_their_class_s():
    explanations = choices()["explanations"]
    controls = {"noise", "nesterov", "optimizer", "output", "features", "hidden", "neurons"}
    assert set(explanations) == set(RANGES) | set(OPTIMIZER_SETTINGS) | controls | {"activation"}
    for name, text in explanations.items():
        assert isinstance(text, str) and 20 <= len(text) <= 200, name
    assert explanations["beta1"] == optim.spec.BETA1.help
    assert explanations["weight_decay"] == optim.spec.WEIGHT_DECAY.help
    assert explanations["rho"] == next(s.help for s in optim.Adadelta.settings if s.name == "rho")


# -- the network and its training -------------------------------------------------------------------


def test_plane_features_compute_their_formulas_and_pass_gradients():
    layer = nn.PlaneFeatures(["x", "y", "x2", "y2", "xy", "sinx", "siny"])
    p = cr.tensor([[0.5, -2.0]], dtype=cr.float64)
    out = layer(p).numpy()[0]
    assert np.allclose(out, [0.5, -2, 0.25, 4, -1, np.sin(0.5), np.sin(-2.0)])
    points = cr.randn(5, 2, dtype=cr.float64, requires_grad=True)
    assert cr.gradcheck(lambda q: (layer(q) ** 2).sum(), points)
    one = nn.PlaneFeatures(["x", "sinx"], in_features=1)
    assert one(cr.tensor([[1.0], [2.0]])).shape == (2, 2)
    with pytest.raises(ValueError, match="got input of shape"):
        layer(cr.tensor([[1.0, 2.0, 3.0]]))
    for bad in (["y"], [], ["x", "x"]):
        with pytest.raises(ValueError, match="features must be different names"):
            nn.PlaneFeatures(bad, in_features=1)


def test_a_model_with_features_saves_and_loads(tmp_path):
    model = nn.Sequential(nn.PlaneFeatures(["x", "xy"]), nn.Linear(2, 3))
    cr.save(model, tmp_path / "m")
    loaded = cr.load(tmp_path / "m")
    x = cr.randn(4, 2)
    assert np.array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())
    assert loaded[0].features == ["x", "xy"]


def test_the_loss_falls_and_a_run_repeats_exactly():
    values = {"dataset": "circles", "optimizer": "adam", "lr": 0.03, "hidden": [6]}
    first, again = trained(values, 15), trained(values, 15)
    assert first.history[-1]["loss"] < 0.5 * first.history[0]["loss"]
    assert first.history[-1]["val_accuracy"] > 0.9
    assert first.history == again.history


def test_l1_and_l2_shrink_the_weights():
    plain = trained({"dataset": "xor", "hidden": [8], "optimizer": "adam"}, 10)
    shrunk = trained({"dataset": "xor", "hidden": [8], "optimizer": "adam", "l1": 0.01}, 10)
    size = lambda t: sum(float(np.abs(w.detach().numpy()).sum()) for w in t.weights)  # noqa: E731
    assert size(shrunk) < 0.8 * size(plain)


# -- frames ----------------------------------------------------------------------------------------


def test_a_frame_draws_every_neuron_and_weight():
    trainer = trained({"dataset": "blobs", "classes": 3, "hidden": [5, 4]}, 2)
    frame = frames.frame_message(trainer, True, None)
    assert [len(c) for c in frame["neurons"]] == [2, 5, 4, 3]
    assert len(bytes_of(frame["neurons"][1][0]["map"])) == 32 * 32
    assert [np.shape(w["w"]) for w in frame["weights"]] == [(5, 2), (4, 5), (3, 4)]
    assert frame["output"]["kind"] == "classes"
    assert set(bytes_of(frame["output"]["map"])) <= {0, 1, 2}
    assert frame["epoch"] == 2 and frame["history"]["epoch"] == [0, 1, 2]
    json.dumps(frame, allow_nan=False)
    data = frames.data_message(trainer)
    assert data["columns"] == [2, 5, 4, 3] and data["classes"] == ["0", "1", "2"]


def test_the_class_picture_agrees_with_the_network():
    trainer = trained({"dataset": "gaussians", "hidden": [], "optimizer": "adam", "lr": 0.1}, 5)
    output = frames.frame_message(trainer, False, None)["output"]
    winner = bytes_of(output["map"]).reshape(frames.GRID, frames.GRID)
    assert winner[-1, 0] == 0 and winner[0, -1] == 1  # bottom left: class 0; top right: 1


def test_the_best_fit_line_mode_follows_w_and_b():
    trainer = trained({"dataset": "line", "hidden": [], "optimizer": "sgd", "lr": 0.05}, 20)
    assert trainer.fit_line and len(trainer.path) == trainer.steps + 1
    fit = frames.frame_message(trainer, False, None)["fit_line"]
    assert np.allclose([fit["w"], fit["b"]], fit["optimum"], atol=0.05)
    slope, intercept = fit["line"]
    assert abs(slope - 2) < 0.2 and abs(intercept - 1) < 0.4  # the data: y = 2 x + 1 + noise
    assert fit["cost_now"] == pytest.approx(trainer.history[-1]["loss"], rel=1e-4)


def test_a_diverged_network_still_makes_json_frames_and_is_not_exported(tmp_path):
    trainer = trained({"dataset": "plane", "hidden": [4], "optimizer": "sgd", "lr": 10.0}, 30)
    from chainrule.playground.session import _finite_only

    frame = frames.frame_message(trainer, False, "diverged")
    json.dumps(_finite_only(frame), allow_nan=False)
    with pytest.raises(PlaygroundError, match="diverged"):
        write_run_folder(trainer, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- export and script -----------------------------------------------------------------------------


SCRIPT_CASES = [
    {"dataset": "spirals", "optimizer": name, "hidden": [4, 3], "activations": ["tanh", "relu"]}
    for name in OPTIMIZERS
] + [
    {"dataset": "moons", "output": "sigmoid", "l1": 0.001, "l2": 0.01, "dropout": 0.2},
    {"dataset": "plane", "features": ["x", "y", "xy", "sinx"], "momentum": 0.9, "nesterov": True},
    {"dataset": "line", "hidden": [], "points": [[1.5, 9.0]], "optimizer": "gd"},
    {"dataset": "custom", "points": [[0.1 * k, 0.2, k % 2] for k in range(12)], "batch": 3},
    {"dataset": "blobs", "classes": 4, "points": [[0.5, 0.5, 3]], "hidden": [3], "seed": 11},
]


@pytest.mark.parametrize(
    "values", SCRIPT_CASES, ids=lambda v: f"{v['dataset']}-{v.get('optimizer')}"
)
def test_the_script_repeats_the_run_to_the_same_losses(values, tmp_path):
    trainer = trained(values, 4)
    path = tmp_path / "train.py"
    path.write_text(python_script(trainer))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(path), run_name="__main__")
    words = printed.getvalue().replace(",", "").split()
    train_loss, test_loss = float(words[words.index("train") + 2]), float(words[-1])
    assert train_loss == pytest.approx(trainer.history[-1]["loss"], rel=1e-6)
    assert test_loss == pytest.approx(trainer.history[-1]["val_loss"], rel=1e-6)


def test_the_exported_run_folder_is_read_by_predict_info_evaluate_and_the_lens(tmp_path, capsys):
    trainer = trained({"dataset": "xor", "hidden": [4], "features": ["x", "y", "xy"]}, 5)
    run = write_run_folder(trainer, tmp_path / "run")
    assert main(["info", str(run)]) == 0
    shown = capsys.readouterr().out
    assert "PlaneFeatures(x, y, xy)" in shown and "classification into 2 classes" in shown
    assert main(["evaluate", str(run)]) == 0
    evaluated = capsys.readouterr().out.split()
    # evaluate splits data.csv as the page split its points: the same test points, same loss
    assert float(evaluated[evaluated.index("loss") + 1]) == pytest.approx(
        trainer.history[-1]["val_loss"], abs=1e-4
    )
    assert float(evaluated[2]) == pytest.approx(trainer.history[-1]["val_accuracy"])
    query = tmp_path / "points.csv"
    query.write_text("x,y\n0.8,0.7\n-0.8,0.7\n")
    assert main(["predict", str(run), str(query)]) == 0
    answers = capsys.readouterr().out.splitlines()
    model = exported_model(trainer)
    expected = model(cr.tensor(trainer.points.network_inputs(np.array([[0.8, 0.7], [-0.8, 0.7]]))))
    assert [line.split(": ")[1].split()[0] for line in answers] == [
        str(k) for k in expected.detach().numpy().argmax(axis=1)
    ]
    for command in (
        ["plot", "curves", str(run), "--out", str(tmp_path / "c.png")],
        ["plot", "weights", str(run), "--out", str(tmp_path / "w.png")],
        ["plot", "confusion", str(run), "--out", str(tmp_path / "m.png")],
        ["explain", "forward", str(run), "--out", str(tmp_path / "f.png")],
    ):
        assert main(command) == 0, command
    assert (tmp_path / "w.png").stat().st_size > 1000


def test_a_sigmoid_run_is_exported_as_its_equal_softmax(tmp_path):
    trainer = trained({"dataset": "moons", "output": "sigmoid", "hidden": [3]}, 3)
    model = exported_model(trainer)
    x = cr.tensor(trainer.test_data[0])
    sigmoid = 1 / (1 + np.exp(-trainer.model(x).detach().numpy()[:, 0]))
    logits = model(x).detach().numpy()
    softmax = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert np.allclose(softmax, sigmoid, atol=1e-6)
    run = write_run_folder(trainer, tmp_path / "run")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_loss"] == pytest.approx(trainer.history[-1]["val_loss"], rel=1e-5)


def test_a_regression_run_predicts_in_the_data_units(tmp_path, capsys):
    trainer = trained({"dataset": "line", "hidden": [], "optimizer": "sgd", "lr": 0.1}, 30)
    run = write_run_folder(trainer, tmp_path / "run")
    query = tmp_path / "x.csv"
    query.write_text("x\n0\n3\n")
    assert main(["predict", str(run), str(query)]) == 0
    values = [float(line.split(": ")[1]) for line in capsys.readouterr().out.splitlines()]
    assert values == pytest.approx([1.0, 7.0], abs=0.3)  # y = 2 x + 1
    assert main(["info", str(run)]) == 0
    assert "the fitted function: y = 2." in capsys.readouterr().out
    assert main(["evaluate", str(run)]) == 0
    assert "R^2" in capsys.readouterr().out


def test_exporting_needs_an_epoch_and_a_new_folder(tmp_path):
    setup = Setup.from_dict({})
    with pytest.raises(PlaygroundError, match="train at least one epoch"):
        write_run_folder(Trainer(setup, build_points(setup)), tmp_path / "run")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(cr.runs.RunError, match="already holds other files"):
        write_run_folder(trained({}, 1), busy)
    assert (busy / "notes.txt").read_text() == "mine"


def test_a_run_folder_with_its_data_inside_can_move(tmp_path, capsys):
    run = write_run_folder(trained({"dataset": "circles", "hidden": [3]}, 2), tmp_path / "a")
    moved = Path(run.rename(tmp_path / "b"))
    assert main(["evaluate", str(moved)]) == 0
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("optimizer", ["adadelta", "adamax", "nadam"])
def test_the_optimizers_the_playground_added_to_train_run_from_the_command_line(
    optimizer, tmp_path, capsys
):
    # an exported run's config.json names its optimizer, so `train` must know all of the page's
    out = tmp_path / "run"
    command = ["train", "--dataset", "moons", "--optimizer", optimizer, "--epochs", "2"]
    assert main([*command, "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["optimizer"] == optimizer
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.8


@pytest.mark.parametrize("name", sorted(cr.optim.stepping_optimizers()))
def test_every_optimizer_is_offered_and_the_script_rebuilds_it(name):
    """The page's optimizer menu and each one's settings come from the optimizer classes; the
    optimizer line of the written train.py builds an optimizer equal to the page's, at the
    constructor's defaults and with every setting the page offers changed, and after a step
    both hold the same state."""
    from chainrule import optim
    from chainrule.playground.script import optimizer_call
    from chainrule.playground.settings import Setup, choices

    offered = choices()["optimizers"]
    assert set(offered) == set(optim.stepping_optimizers())
    cls = optim.OPTIMIZER_CLASSES[name]
    assert offered[name]["label"] == cls.__name__ and offered[name]["lr"] == cls.suggested_lr
    own = {s.name: s for s in optim.spec.settings_of(cls)}
    assert set(offered[name]["settings"]) <= set(own)
    setup = Setup.from_dict({"optimizer": name, "dataset": "xor"})
    for setting in offered[name]["settings"]:  # each at its constructor's default
        assert getattr(setup, setting) == own[setting].default, (name, setting)
    changed = {}
    for setting in offered[name]["settings"]:
        default = own[setting].default
        changed[setting] = (not default) if own[setting].kind is bool else default / 2 or 0.1
    if changed.get("nesterov"):
        changed["momentum"] = 0.5
    setup = Setup.from_dict({"optimizer": name, "dataset": "xor", "lr": 0.05, **changed})
    model, twin = nn.Linear(2, 2), nn.Linear(2, 2)
    twin.load_state_dict(model.state_dict())
    page = cr.playground.network.build_optimizer(setup, model.parameters())
    written = eval(optimizer_call(setup), {"optim": optim, "model": twin})  # noqa: S307
    expected = optim.spec.arguments(cls, {"lr": 0.05, **changed})
    group = {k: tuple(v) if isinstance(v, list) else v for k, v in page.param_groups[0].items()}
    assert {k: group[k] for k in expected} == expected
    for p in (*model.parameters(), *twin.parameters()):
        p.grad = cr.ones_like(p)
    page.step(), written.step()
    for mine, theirs in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(mine.detach().numpy(), theirs.detach().numpy())
    mine, theirs = page.state_dict(), written.state_dict()
    assert mine["param_groups"] == theirs["param_groups"], name
    for key, buffers in mine["state"].items():
        for buffer, value in buffers.items():
            np.testing.assert_array_equal(
                np.asarray(value), np.asarray(theirs["state"][key][buffer])
            )


def test_an_optimizer_setting_out_of_its_range_is_refused_naming_it():
    from chainrule.playground.points import PlaygroundError
    from chainrule.playground.settings import Setup

    with pytest.raises(PlaygroundError, match=r"beta2 must be in \[0, 1\), got 1.0"):
        Setup.from_dict({"optimizer": "adam", "beta2": 1.0})
    with pytest.raises(PlaygroundError, match="weight_decay must be at most 10"):
        Setup.from_dict({"optimizer": "adamw", "weight_decay": 50.0})
