"""Every optimizer setting as a `chainrule train` flag and a TOML key, generated from the
optimizer's own spec: accepted, built into the run's optimizer exactly, kept by config.json and
by a resumed run."""

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule import io, optim, runs
from chainrule.cli import main
from chainrule.optim import spec
from chainrule.runs import folder

STEPPING = optim.stepping_optimizers()


def other_value(setting: spec.Setting):
    """A value of ``setting`` other than its default, inside its range."""
    if setting.kind is bool:
        return not setting.default
    return setting.default / 2 if setting.default else 0.1


def flags(values: dict) -> list[str]:
    """``values`` as `chainrule train` flags."""
    words = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words += [flag, repr(value)]
    return words


def all_other(name: str) -> dict:
    """Each of optimizer ``name``'s settings at another value than its default: SGD's dampening
    stays 0, which its nesterov (turned on) needs."""
    values = {s.name: other_value(s) for s in spec.settings_of(STEPPING[name])}
    if name == "sgd":
        values["dampening"] = 0.0
    return values


def assert_built_with(optimizer, cls, values: dict):
    """``optimizer``'s param group and defaults hold exactly ``values`` (flat names)."""
    expected = spec.arguments(cls, values)
    for where in (optimizer.param_groups[0], optimizer.defaults):
        held = {k: tuple(v) if isinstance(v, list) else v for k, v in where.items()}
        assert {k: held[k] for k in expected} == expected


CASES = [(name, s.name) for name in STEPPING for s in spec.settings_of(STEPPING[name])]


@pytest.mark.parametrize("name, setting", CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_each_setting_of_each_optimizer_is_a_flag_the_run_builds_with(name, setting):
    """The flag parses, passes Config's check and reaches the optimizer the run builds."""
    cls = STEPPING[name]
    given = {setting: other_value(next(s for s in spec.settings_of(cls) if s.name == setting))}
    if given.get("nesterov"):
        given["momentum"] = 0.5
    args = cr.cli.build_parser().parse_args(["train", "--optimizer", name, *flags(given)])
    options = {k: v for k, v in vars(args).items() if k not in ("command", "traceback")}
    config = runs.Config.from_dict(options)
    runs.check_choices(config)
    assert_built_with(runs.build_optimizer(config, [cr.nn.Parameter(cr.ones(3))]), cls, given)


def test_a_shared_setting_is_one_flag_with_one_range(capsys):
    """``eps`` is one flag for the seven optimizers that have it; the specs agree on its range."""
    for name, setting in runs.OPTIMIZER_SETTINGS.items():
        for cls in STEPPING.values():
            for own in spec.settings_of(cls):
                if own.name == name:
                    assert (own.low, own.high, own.low_open, own.high_open, own.help) == (
                        setting.low,
                        setting.high,
                        setting.low_open,
                        setting.high_open,
                        setting.help,
                    )
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for name, setting in runs.OPTIMIZER_SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        assert text.count(f"  {flag} ") + text.count(f"  {flag}, ") == 1, name
        assert setting.kind is bool or setting.range_text() in " ".join(text.split()), name


def train_state(out):
    """The run's checkpoint: its optimizer state and model weights as arrays, and its groups."""
    state = io.load_checkpoint(out / folder.CHECKPOINT)
    return state["optimizer"], state["model"]


@pytest.mark.parametrize("name", sorted(STEPPING))
def test_a_run_keeps_its_optimizer_settings_through_toml_config_json_and_resume(
    name, tmp_path, capsys
):
    """Run A: every setting as a flag, 2 epochs. Run B: the same settings from a TOML file, 1
    epoch, then resumed to 2. Both build the optimizer with exactly those values, config.json
    records them, and B ends with A's optimizer state and weights."""
    cls = STEPPING[name]
    values = all_other(name)
    base = ["train", "--dataset", "xor", "--hidden", "4", "--optimizer", name, "--quiet"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main([*base, "--epochs", "2", *flags(values), "--out", str(a)]) == 0
    toml = tmp_path / "settings.toml"
    toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()))
    assert main([*base, "--epochs", "1", "--config", str(toml), "--out", str(b)]) == 0
    recorded = runs.saved_config(b)
    assert {k: recorded.optimizer_settings[k] for k in values if k != "lr"} == {
        k: v for k, v in values.items() if k != "lr"
    }
    assert recorded.lr == values["lr"]
    assert main(["train", "--out", str(b), "--resume", "--epochs", "2", "--quiet"]) == 0
    (state_a, model_a), (state_b, model_b) = train_state(a), train_state(b)
    model, config, _ = runs.load_run(b)
    made = runs.build_optimizer(config, model.parameters())  # as the resumed run built it
    made.load_state_dict(state_b)
    assert_built_with(made, cls, values)
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys()
    for key, buffers in state_a["state"].items():
        for buffer, array in buffers.items():
            np.testing.assert_array_equal(
                np.asarray(array), np.asarray(state_b["state"][key][buffer])
            )
    for key, array in model_a.items():
        np.testing.assert_array_equal(np.asarray(array), np.asarray(model_b[key]))
    capsys.readouterr()
    assert main(["info", str(a)]) == 0
    said = next(line for line in capsys.readouterr().out.splitlines() if "trained on" in line)
    defaults = runs.optimizer_defaults(name)
    assert all(f"{k} " in said for k, v in values.items() if v != defaults.get(k)), said


def test_a_run_folder_written_before_the_specs_still_reads(tmp_path, capsys):
    """Its config.json holds momentum 0.9 and weight_decay 0 whatever the optimizer."""
    out = tmp_path / "old"
    argv = ["train", "--dataset", "xor", "--hidden", "4", "--epochs", "1", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    for name in runs.optimizer_defaults("adam"):
        del config[name]
    (out / "config.json").write_text(json.dumps(config | {"momentum": 0.9, "weight_decay": 0.0}))
    assert main(["info", str(out)]) == 0 and main(["evaluate", str(out)]) == 0
    assert "with adam (lr 0.001)," in capsys.readouterr().out


def test_a_run_recorded_before_the_specs_reads_as_it_was_trained():
    """config.json files written before: momentum 0.9 and weight_decay 0 in every run, used only
    by SGD's presets and where not 0."""
    old = {"optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0}
    assert runs.Config.from_dict(old, recorded=True).optimizer_settings == {}
    old = {"optimizer": "nesterov", "momentum": 0.8, "weight_decay": 0.001}
    kept = runs.Config.from_dict(old, recorded=True).optimizer_settings
    assert kept == {"momentum": 0.8, "weight_decay": 0.001}
    with pytest.raises(runs.RunError, match="momentum: the optimizer adam has no such setting"):
        runs.Config.from_dict({"optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0})
