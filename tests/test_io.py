"""Saving and loading: round trips, no pickle, atomic writes, clear errors on bad files."""

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

import chainrule as cr
from chainrule import io, nn


def model_with_state():
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(12, 8),
        nn.BatchNorm1d(8),
        nn.GELU(),
        nn.Dropout(0.2),
        nn.LayerNorm(8),
        nn.LeakyReLU(0.1),
        nn.Linear(8, 3),
    )
    model(cr.randn(16, 3, 4))  # move the running statistics away from their initial values
    return model.eval()


def test_save_and_load_give_identical_predictions(tmp_path):
    model = model_with_state()
    path = cr.save(model, tmp_path / "model", metadata={"note": "hello"})
    assert path.name == "model.safetensors" and (tmp_path / "model.json").exists()
    loaded = cr.load(tmp_path / "model.safetensors").eval()
    x = cr.randn(5, 3, 4)
    np.testing.assert_array_equal(model(x).detach().numpy(), loaded(x).detach().numpy())
    assert repr(loaded) == repr(model)
    assert io.read_metadata(tmp_path / "model") == {"note": "hello"}
    description = json.loads((tmp_path / "model.json").read_text())
    assert [layer["type"] for layer in description["layers"]][:3] == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
    ]


def test_the_weight_file_alone_is_enough(tmp_path):
    cr.save(model_with_state(), tmp_path / "m")
    os.remove(tmp_path / "m.json")
    assert isinstance(cr.load(tmp_path / "m"), nn.Sequential)


def test_custom_modules_save_their_weights(tmp_path):
    class Custom(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x)

    with pytest.raises(TypeError, match=r"whole Custom without pickle.*saveable.*state_dict\(\)"):
        cr.save(Custom(), tmp_path / "c")
    source, target = Custom(), Custom()
    cr.save_weights(source, tmp_path / "w.safetensors")
    cr.load_weights(target, tmp_path / "w.safetensors")
    np.testing.assert_array_equal(
        source.a.weight.detach().numpy(), target.a.weight.detach().numpy()
    )
    with pytest.raises(io.ChainruleFileError, match=r"missing keys \['bias', 'weight'\]"):
        cr.load_weights(nn.Linear(3, 3), tmp_path / "w.safetensors")
    cr.save_weights(nn.Linear(3, 3), tmp_path / "l.safetensors")
    with pytest.raises(io.ChainruleFileError, match=r"'weight' has shape \(3, 3\).*\(3, 4\)"):
        cr.load_weights(nn.Linear(4, 3), tmp_path / "l.safetensors")


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    target = tmp_path / "file.bin"
    io.atomic_write(target, b"old")

    def broken_fsync(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk on fire"):
        io.atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_truncated_and_corrupt_files_get_clear_errors(tmp_path):
    cr.save(model_with_state(), tmp_path / "m")
    weights = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(io.ChainruleFileError, match="m.safetensors"):
        cr.load(tmp_path / "m")
    (tmp_path / "m.safetensors").write_bytes(b"\xff" * 8 + b"junk")
    with pytest.raises(io.ChainruleFileError, match="not a valid safetensors"):
        cr.load(tmp_path / "m")
    with pytest.raises(io.ChainruleFileError, match="not found"):
        cr.load(tmp_path / "missing")
    cr.save(model_with_state(), tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")  # a stale or damaged readable copy: ignored
    assert isinstance(cr.load(tmp_path / "m"), nn.Sequential)
    save_file({"0.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(io.ChainruleFileError, match="not valid JSON"):  # no header: the JSON counts
        cr.load(tmp_path / "m")


def hostile(tmp_path, layers, tensors=None):
    (tmp_path / "h.json").write_text(
        json.dumps({"format": "chainrule.Sequential", "layers": layers})
    )
    save_file(
        tensors or {"0.weight": np.zeros((2, 2), np.float32)}, str(tmp_path / "h.safetensors")
    )
    return tmp_path / "h"


def test_hostile_architectures_are_refused_before_allocating(tmp_path):
    huge = [
        {"type": "Linear", "args": {"in_features": 10**6, "out_features": 10**6, "bias": False}}
    ]
    with pytest.raises(
        io.ChainruleFileError, match=r"needs '0.weight' of shape \(1000000, 1000000\)"
    ):
        cr.load(hostile(tmp_path, huge))
    absurd = [{"type": "Linear", "args": {"in_features": 10**12, "out_features": 1}}]
    with pytest.raises(io.ChainruleFileError, match="out of range"):
        cr.load(hostile(tmp_path, absurd))
    code = [{"type": "os.system", "args": {"command": "rm -rf /"}}]
    with pytest.raises(io.ChainruleFileError, match="unknown layer type"):
        cr.load(hostile(tmp_path, code))
    wrong_args = [{"type": "Linear", "args": {"in_features": 2}}]
    with pytest.raises(io.ChainruleFileError, match="bad arguments"):
        cr.load(hostile(tmp_path, wrong_args))


def test_checkpoints_round_trip_nested_state(tmp_path):
    state = {
        "model": {"w": np.arange(3.0)},
        "epoch": 2,
        "rng": {"state": 2**100},
        "history": [{"loss": 0.5}],
        "none": None,
        "opt": {"state": {0: {"m": np.ones(2)}}},
    }
    io.save_checkpoint(tmp_path / "c.safetensors", state)
    back = io.load_checkpoint(tmp_path / "c.safetensors")
    np.testing.assert_array_equal(back["model"]["w"], np.arange(3.0))
    assert back["epoch"] == 2 and back["rng"]["state"] == 2**100 and back["none"] is None
    np.testing.assert_array_equal(back["opt"]["state"]["0"]["m"], np.ones(2))
    with pytest.raises(io.ChainruleFileError, match="not a chainrule checkpoint"):
        cr.save(model_with_state(), tmp_path / "m")
        io.load_checkpoint(tmp_path / "m.safetensors")


def test_no_pickle_anywhere_in_the_package():
    import pathlib

    for path in pathlib.Path(cr.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "allow_pickle=True" not in text, path


def test_convolutional_models_round_trip(tmp_path):
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Unflatten(1, (1, 8)),
        nn.Conv2d(1, 4, 3, padding="same"),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Dropout2d(0.1),
        nn.Conv2d(4, 6, (2, 3), stride=(1, 2), groups=2, padding=1),
        nn.AvgPool2d(2, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    model(cr.randn(4, 8, 8))
    model.eval()
    cr.save(model, tmp_path / "cnn")
    loaded = cr.load(tmp_path / "cnn").eval()
    x = cr.randn(2, 8, 8)
    np.testing.assert_array_equal(model(x).detach().numpy(), loaded(x).detach().numpy())
    assert repr(loaded) == repr(model)


def test_save_and_load_dispatch_state_dicts_as_torch_save_does(tmp_path):
    """cr.save(model.state_dict(), path) writes one file at path (torch.save's contract) and
    cr.load reads it back; cr.save(model, name) keeps writing name.safetensors + name.json."""
    model = model_with_state()
    cr.save(model.state_dict(), tmp_path / "model.pth")
    assert sorted(os.listdir(tmp_path)) == ["model.pth"]
    fresh = model_with_state()
    fresh.load_state_dict(cr.load(tmp_path / "model.pth", weights_only=True, map_location="cpu"))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    cr.save(model, tmp_path / "whole")
    assert isinstance(cr.load(tmp_path / "whole"), nn.Sequential)
    assert isinstance(cr.load(tmp_path / "whole.safetensors"), nn.Sequential)
    cr.save({"step": 3, "w": cr.tensor([1.0, 2.0])}, tmp_path / "nested")
    loaded = cr.load(tmp_path / "nested")
    assert loaded["step"] == 3 and loaded["w"].tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="metadata"):
        cr.save(model.state_dict(), tmp_path / "x", metadata={"a": 1})
    with pytest.raises(RuntimeError, match="cuda"):
        cr.load(tmp_path / "model.pth", map_location="cuda")
    (tmp_path / "pickled.pth").write_bytes(b"\x80\x04junk")
    with pytest.raises(io.ChainruleFileError, match="never unpickles"):
        cr.load(tmp_path / "pickled.pth")
