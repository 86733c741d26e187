"""``plot boundary``, ``plot landscape`` and ``lr-find`` on a trained run."""

import re

import pytest

from chainrule.cli import main

pytest.importorskip("matplotlib", reason="the lens draws with matplotlib (the plot extra)")


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    argv = ["train", "--dataset", "moons", "--hidden", "16", "--epochs", "20", "--out", str(out)]
    assert main([*argv, "--quiet"]) == 0
    return out


def test_plot_boundary_of_a_run_draws_its_model(moons_run, tmp_path, capsys):
    out = tmp_path / "boundary.png"
    assert main(["plot", "boundary", str(moons_run), "--out", str(out)]) == 0
    said = capsys.readouterr().out
    accuracy = float(said.split("test accuracy ")[1].split()[0])
    assert accuracy > 0.8 and out.stat().st_size > 1000


def test_plot_boundary_refuses_a_run_that_is_not_on_2d_points(small_run, tmp_path, capsys):
    assert main(["plot", "boundary", str(small_run), "--out", str(tmp_path / "b.png")]) == 2
    err = capsys.readouterr().err
    assert "(8, 8)" in err and "2-D points" in err and len(err.strip().splitlines()) == 1


def test_plot_landscape_of_a_run_starts_from_its_own_initial_weights(moons_run, tmp_path, capsys):
    out = tmp_path / "landscape.png"
    argv = ["plot", "landscape", str(moons_run), "--resolution", "3", "--out", str(out)]
    assert main(argv) == 0
    said = capsys.readouterr().out
    initial, trained = re.search(
        r"([\d.]+) at the initial weights, ([\d.]+) at the trained", said
    ).groups()
    assert float(trained) < float(initial) / 2 and out.exists()


def test_lr_find_on_a_run_uses_its_settings(moons_run, tmp_path, capsys):
    out = tmp_path / "lr.png"
    assert main(["lr-find", str(moons_run), "--steps", "20", "--out", str(out)]) == 0
    assert "suggested learning rate" in capsys.readouterr().out and out.exists()


def test_every_lr_takes_a_number_plot_descent_one_or_more(tmp_path, capsys):
    out = tmp_path / "descent.png"
    assert main(["plot", "descent", "--lr", "0.3", "--steps", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("lr 0.3    (rate 1): w -1.000 -> ") and out.exists()
