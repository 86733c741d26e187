"""save_object / load_object: round trips, PyTorch reading our state dicts and we theirs, refused
pickles (never unpickled), checked structure, atomic writes."""

import json
import os
import pickle

import numpy as np
import pytest
from safetensors.numpy import save_file

import chainrule as cr
from chainrule import nn, optim, serialization
from chainrule.serialization import ChainruleFileError, load_object, save_object


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="install the dev extra for the PyTorch cross-check")


def model(lib):
    """A model with buffers and containers, the same in either library."""

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.nn.ModuleList([lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6)])
            self.head = lib.nn.Sequential(lib.nn.ReLU(), lib.nn.Linear(6, 2))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return self.head(x)

    return Net()


# -- round trips -----------------------------------------------------------------------------------


def test_nested_objects_come_back_with_their_types_and_values(tmp_path):
    shared = cr.tensor([1.0, 2.0], requires_grad=True)
    weight = nn.Parameter(np.ones((2, 2), dtype=np.float32))
    obj = {
        "epoch": 3,
        "lr": 0.5,
        "name": "run",
        "none": None,
        "flag": True,
        7: [shared, (shared, weight)],
        "arrays": {
            str(dtype): np.arange(6).astype(dtype).reshape(2, 3)
            for dtype in (
                "float16",
                "float32",
                "float64",
                "int8",
                "int32",
                "int64",
                "uint8",
                "bool",
            )
        },
        "scalar": np.float32(2.5),
        "zero_d": np.array(4, dtype=np.int64),
        "transposed": np.arange(6.0).reshape(2, 3).T,
        "frozen": cr.tensor([1.0], dtype="float64"),
        "empty": [],
    }
    back = load_object(save_object(obj, tmp_path / "obj.pth"))
    assert list(back) == list(obj)
    assert back["epoch"] == 3 and back["lr"] == 0.5 and back["none"] is None
    assert back["flag"] is True and back["name"] == "run" and back["empty"] == []
    assert back["scalar"] == 2.5 and isinstance(back["scalar"], float)
    for key, array in obj["arrays"].items():
        assert back["arrays"][key].dtype == array.dtype
        np.testing.assert_array_equal(back["arrays"][key], array)
    np.testing.assert_array_equal(back["transposed"], obj["transposed"])
    assert back["zero_d"].shape == () and back["zero_d"] == 4
    first, (again, param) = back[7][0], back[7][1]
    assert isinstance(back[7][1], tuple) and first is again  # one tensor, stored once
    assert isinstance(first, cr.Tensor) and first.requires_grad
    assert isinstance(param, nn.Parameter) and param.requires_grad
    assert not back["frozen"].requires_grad and back["frozen"].dtype == np.float64


def test_a_saved_state_dict_reloads_into_a_model_with_identical_predictions(tmp_path):
    cr.manual_seed(0)
    ours, other = model(cr), model(cr)
    x = cr.randn(5, 4)
    ours(x)  # move BatchNorm's running statistics away from their start
    save_object(ours.state_dict(), tmp_path / "m.pth")
    other.load_state_dict(load_object(tmp_path / "m.pth"))
    ours.eval()
    other.eval()
    np.testing.assert_array_equal(ours(x).detach().numpy(), other(x).detach().numpy())


def test_an_optimizer_state_dict_round_trips_with_int_keys_and_tuples(tmp_path):
    net = nn.Linear(3, 2)
    opt = optim.Adam(net.parameters(), lr=0.1, betas=(0.8, 0.9))
    net(cr.randn(4, 3)).sum().backward()
    opt.step()
    back = load_object(save_object(opt.state_dict(), tmp_path / "opt.pth"))
    assert list(back["state"]) == [0, 1] and back["param_groups"][0]["betas"] == (0.8, 0.9)
    fresh = optim.Adam(nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(back)
    np.testing.assert_array_equal(fresh.state[0]["exp_avg"], opt.state[0]["exp_avg"])


# -- PyTorch both ways --------------------------------------------------------------------------------


@pytest.mark.torch
def test_pytorch_loads_our_state_dict_and_we_load_theirs(torch, tmp_path):
    from safetensors.torch import load_file
    from safetensors.torch import save_file as torch_save_file

    cr.manual_seed(1)
    ours, theirs = model(cr), model(torch)
    ours(cr.randn(8, 4))
    save_object(ours.state_dict(), tmp_path / "ours.pth")
    theirs.load_state_dict(load_file(tmp_path / "ours.pth"))  # strict: every name matches
    ours.eval()
    theirs.eval()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        ours(cr.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach(), rtol=1e-6, atol=1e-6
    )

    torch.manual_seed(2)
    theirs = model(torch)
    theirs(torch.randn(8, 4))
    torch_save_file(theirs.state_dict(), tmp_path / "theirs.safetensors")
    state = load_object(tmp_path / "theirs.safetensors")
    assert all(isinstance(v, cr.Tensor) for v in state.values())
    ours.load_state_dict(state)
    theirs.eval()
    np.testing.assert_allclose(
        ours(cr.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach(), rtol=1e-6, atol=1e-6
    )


@pytest.mark.torch
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pytorch_pickle_is_refused_in_one_line_and_never_unpickled(torch, tmp_path, legacy):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.pth"
    torch.save(
        {"weight": torch.ones(2), "payload": Payload(str(marker))},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    with pytest.raises(ChainruleFileError) as error:
        load_object(path)
    message = str(error.value)
    kind = "legacy" if legacy else "zip"
    assert f"a PyTorch pickle file (torch.save's {kind} format)" in message
    assert "safetensors.torch as st; st.save_file(torch.load(" in message and "\n" not in message
    assert not marker.exists()


class Payload:
    """Unpickling this creates a folder: proof that a loader ran code from the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_plain_pickle_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    for protocol in (2, 4, 5):
        path = tmp_path / f"evil{protocol}.pkl"
        path.write_bytes(pickle.dumps({"x": Payload(str(marker))}, protocol=protocol))
        with pytest.raises(ChainruleFileError, match="a pickle file; chainrule never unpickles"):
            load_object(path)
    assert not marker.exists()


def test_other_files_get_one_clear_line(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(2))
    np.savez(tmp_path / "b.npz", x=np.zeros(2))
    (tmp_path / "c.bin").write_bytes(b"hello world, not a tensor file")
    (tmp_path / "empty").write_bytes(b"")
    save_object({"w": np.zeros(100)}, tmp_path / "good.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "good.pth").read_bytes()[:-50])
    cases = {
        "a.npy": "a NumPy .npy file",
        "b.npz": "a NumPy .npz archive",
        "c.bin": "not a safetensors file",
        "empty": "not a safetensors file",
        "cut.pth": "not a valid safetensors file|cannot read",
        "missing.pth": "file not found",
        ".": "is a folder",
    }
    for name, message in cases.items():
        with pytest.raises(ChainruleFileError, match=message):
            load_object(tmp_path / name)


# -- a checked structure ---------------------------------------------------------------------------------


def write_structure(path, structure, tensors=None, raw=None):
    text = raw if raw is not None else json.dumps({"version": 1, "object": structure})
    save_file(tensors or {}, str(path), metadata={serialization.OBJECT_KEY: text})


@pytest.mark.parametrize(
    "structure, tensors, message",
    [
        ({"tensor": "w", "requires_grad": False}, {}, "missing tensor 'w'"),
        ({"array": "w"}, {"w": np.zeros(1), "v": np.zeros(1)}, r"tensors \['v'\] are stored"),
        ({"set": [1, 2]}, {}, "unexpected entry"),
        ({"dict": [["a"]]}, {}, "malformed dict entry"),
        ({"dict": [[["list", "key"], 1]]}, {}, "malformed dict entry"),
        ({"tensor": "w", "requires_grad": "yes"}, {"w": np.zeros(1)}, "unexpected entry"),
        ({"array": "w", "code": "import os"}, {"w": np.zeros(1)}, "unexpected entry"),
    ],
)
def test_a_bad_structure_is_refused_before_anything_is_built(tmp_path, structure, tensors, message):
    write_structure(tmp_path / "bad.pth", structure, tensors)
    with pytest.raises(ChainruleFileError, match=message):
        load_object(tmp_path / "bad.pth")


def test_json_size_depth_and_version_are_bounded(tmp_path, monkeypatch):
    deep = 1
    for _ in range(serialization.MAX_DEPTH + 5):
        deep = [deep]
    write_structure(tmp_path / "deep.pth", deep)
    with pytest.raises(ChainruleFileError, match="nested more than"):
        load_object(tmp_path / "deep.pth")
    write_structure(tmp_path / "very-deep.pth", None, raw="[" * 100_000 + "]" * 100_000)
    with pytest.raises(ChainruleFileError, match="nested too deeply"):
        load_object(tmp_path / "very-deep.pth")
    write_structure(tmp_path / "v2.pth", None, raw=json.dumps({"version": 2, "object": 1}))
    with pytest.raises(ChainruleFileError, match="unknown chainrule object format"):
        load_object(tmp_path / "v2.pth")
    monkeypatch.setattr(serialization, "MAX_JSON_BYTES", 100)
    write_structure(tmp_path / "big.pth", ["x" * 200])
    with pytest.raises(ChainruleFileError, match="larger than 100 bytes"):
        load_object(tmp_path / "big.pth")


def test_what_cannot_be_saved_is_named(tmp_path):
    with pytest.raises(TypeError, match=r"'model\.layers\.1', a set"):
        save_object({"model": {"layers": [1, {2}]}}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match=r"key \(1, 2\) in the entry 'a' is a tuple"):
        save_object({"a": {(1, 2): 3}}, tmp_path / "x.pth")
    with pytest.raises(TypeError, match="dtype complex128"):
        save_object({"z": np.zeros(2, dtype=complex)}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="nested more than"):
        deep = []
        for _ in range(serialization.MAX_DEPTH + 2):
            deep = [deep]
        save_object(deep, tmp_path / "x.pth")
    assert not (tmp_path / "x.pth").exists()


def test_a_failed_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "w.pth"
    save_object({"w": np.ones(3)}, path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_object({"w": np.zeros(3)}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.pth"]  # no temporary file left
