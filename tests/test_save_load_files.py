"""cr.save / cr.load with file objects (open binary files, io.BytesIO) and whole models saved as
torch.save writes them (one file at the path given): round trips for every kind of object, the
same bytes as a file on disk, and hostile file objects refused in one line, never unpickled."""

import io
import os
import pickle

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, serialization
from chainrule.serialization import ChainruleFileError


@nn.saveable
class Scaled(nn.Module):
    """A module class of the user's own, saveable by its config()."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.width = width
        self.layer = nn.Linear(width, 2)

    def config(self):
        return {"width": self.width}

    def forward(self, x):
        return 2 * self.layer(x)


def sequential():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    model(cr.randn(8, 3))  # running statistics away from their initial values
    return model.eval()


def same_predictions(a, b, width: int = 3):
    x = cr.randn(5, width)
    np.testing.assert_array_equal(a.eval()(x).detach().numpy(), b.eval()(x).detach().numpy())
    return True


def check_tensor(loaded):
    np.testing.assert_array_equal(loaded.numpy(), np.arange(6.0).reshape(2, 3))


def check_state_dict(loaded):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    model.load_state_dict(loaded)
    assert same_predictions(model, sequential())


def check_container(loaded):
    assert loaded["step"] == 7 and loaded["name"] == "run" and loaded[3] is None
    assert isinstance(loaded["pair"], tuple)
    np.testing.assert_array_equal(loaded["pair"][1].numpy(), [1.0, 2.0])


def check_model(loaded):
    assert isinstance(loaded, nn.Sequential) and same_predictions(loaded, sequential())


def check_own_module(loaded):
    assert isinstance(loaded, Scaled) and loaded.width == 5
    cr.manual_seed(1)
    assert same_predictions(loaded, Scaled(5), width=5)


KINDS = {  # what is saved, and how what is loaded is checked
    "tensor": (lambda: cr.arange(6.0).reshape(2, 3), check_tensor),
    "state dict": (lambda: sequential().state_dict(), check_state_dict),
    "container": (
        lambda: {"step": 7, "name": "run", 3: None, "pair": (1.5, cr.tensor([1.0, 2.0]))},
        check_container,
    ),
    "whole model": (sequential, check_model),
    "module of the user's class": (lambda: (cr.manual_seed(1), Scaled(5))[1], check_own_module),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_through_memory(kind):
    make, check = KINDS[kind]
    buffer = io.BytesIO()
    assert cr.save(make(), buffer) is None
    buffer.seek(0)
    check(cr.load(buffer))


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_through_an_open_file(kind, tmp_path):
    make, check = KINDS[kind]
    with open(tmp_path / "saved.pt", "wb") as f:
        cr.save(make(), f)
    with open(tmp_path / "saved.pt", "rb") as f:
        check(cr.load(f))
    check(cr.load(tmp_path / "saved.pt"))  # the same file, by its path


def test_a_file_object_gets_the_file_a_path_gets(tmp_path):
    """The same header (structure or architecture, SHA-256) and tensors; safetensors writes a
    header's entries in no fixed order, so the bytes themselves may differ."""
    for obj, name in ((sequential().state_dict(), "state.pth"), (sequential(), "model")):
        buffer = io.BytesIO()
        cr.save(obj, buffer)
        (tmp_path / "copy").write_bytes(buffer.getvalue())
        on_disk = cr.save(obj, tmp_path / name)
        assert serialization.read_header(tmp_path / "copy") == serialization.read_header(on_disk)


@pytest.mark.torch
def test_pytorch_reads_the_tensors_of_a_state_dict_saved_to_memory():
    safetensors_torch = pytest.importorskip("safetensors.torch")
    model, buffer = sequential(), io.BytesIO()
    cr.save(model.state_dict(), buffer)
    theirs = safetensors_torch.load(buffer.getvalue())
    np.testing.assert_array_equal(
        theirs["0.weight"].detach().numpy(), model[0].weight.detach().numpy()
    )


def test_a_file_object_at_its_end_gets_told_to_seek():
    buffer = io.BytesIO()
    cr.save(cr.ones(2), buffer)
    refused(buffer, r"<BytesIO>: nothing to read where it stands; seek\(0\) after saving")


def test_loading_starts_where_the_file_object_stands():
    buffer = io.BytesIO(b"a header of the caller's own")
    buffer.seek(0, io.SEEK_END)
    cr.save({"x": cr.ones(2)}, buffer)
    buffer.seek(len(b"a header of the caller's own"))
    np.testing.assert_array_equal(cr.load(buffer)["x"].numpy(), [1.0, 1.0])


# -- whole models at a path, as torch.save writes them ---------------------------------------------


def test_a_whole_model_is_one_file_at_exactly_the_path_given(tmp_path):
    cr.save(sequential().double(), tmp_path / "model.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    loaded = cr.load(tmp_path / "model.pt")
    assert loaded[0].weight.dtype == np.float64 and loaded[1].running_mean.dtype == np.float64
    x = cr.randn(5, 3).double()
    np.testing.assert_array_equal(
        loaded.eval()(x).detach().numpy(), sequential().double().eval()(x).detach().numpy()
    )


def test_the_run_folder_format_keeps_its_two_files(tmp_path):
    cr.save(sequential(), tmp_path / "model")
    cr.save(sequential(), tmp_path / "model.v2.safetensors")  # a dot in the name is kept
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["model.json", "model.safetensors", "model.v2.json", "model.v2.safetensors"]
    for given in ("model", "model.json", "model.v2.safetensors"):
        assert same_predictions(cr.load(tmp_path / given), sequential())


def test_a_whole_module_of_an_unknown_class_is_refused_saying_what_to_do(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)

        def forward(self, x):
            return self.a(x)

    buffer = io.BytesIO()
    with pytest.raises(TypeError) as refused:
        cr.save(Net(), buffer)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("cr.save: cannot save a whole Net")
    assert "@cr.nn.saveable" in message and "config()" in message and "state_dict()" in message
    assert buffer.getvalue() == b""  # nothing written
    with pytest.raises(TypeError, match=r"layer 1 \(Net\) is not a known layer"):
        cr.save(nn.Sequential(nn.Linear(2, 2), Net()), tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()


# -- hostile file objects --------------------------------------------------------------------------


def refused(f, match: str) -> str:
    """The one-line message cr.load(f) refuses ``f`` with (naming no temporary file)."""
    with pytest.raises(ChainruleFileError, match=match) as error:
        cr.load(f)
    message = str(error.value)
    assert "\n" not in message and "stream.safetensors" not in message, message
    return message


class Endless(io.RawIOBase):
    """A stream that never ends (a /dev/zero behind a file object), counting what it gives."""

    given = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        buffer[:] = b"\0" * len(buffer)
        self.given += len(buffer)
        return len(buffer)


def test_an_endless_stream_is_refused_after_the_cap_and_one_byte(monkeypatch):
    monkeypatch.setattr(serialization, "MAX_STREAM_BYTES", 1 << 20)
    stream = Endless()
    refused(stream, r"<Endless>: more than a file object cr.load reads may hold \(1,048,576")
    assert stream.given == (1 << 20) + 1


def test_a_stream_over_the_cap_is_refused(monkeypatch):
    monkeypatch.setattr(serialization, "MAX_STREAM_BYTES", 100)
    buffer = io.BytesIO()
    cr.save(cr.ones(50), buffer)
    buffer.seek(0)
    refused(buffer, r"<BytesIO>: more than .* \(100 bytes\)")


@pytest.mark.torch
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pytorch_pickle_in_memory_is_refused_with_the_conversion(legacy):
    torch = pytest.importorskip("torch")
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer, _use_new_zipfile_serialization=not legacy)
    buffer.seek(0)
    message = refused(buffer, "<BytesIO>: a PyTorch pickle file")
    assert "never unpickles" in message and "st.save_file(torch.load(" in message


class Payload:
    """Unpickling this creates a folder: proof that a loader ran code from the file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_in_an_open_file_is_refused_never_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    (tmp_path / "trap.pt").write_bytes(pickle.dumps(Payload(str(marker)), protocol=4))
    with open(tmp_path / "trap.pt", "rb") as f:
        refused(f, "trap.pt: a pickle file; chainrule never unpickles")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["state dict", "whole model"])
def test_a_truncated_stream_is_refused(kind):
    make, _ = KINDS[kind]
    buffer = io.BytesIO()
    cr.save(make(), buffer)
    data = buffer.getvalue()
    for cut in (4, 40, len(data) // 2, len(data) - 1):
        refused(
            io.BytesIO(data[:cut]),
            r"<BytesIO>: (not a (valid )?safetensors file|.*truncated|corrupt)",
        )


def test_a_flipped_byte_in_a_stream_is_caught_by_the_digest():
    buffer = io.BytesIO()
    cr.save(sequential(), buffer)
    data = bytearray(buffer.getvalue())
    data[-3] ^= 0x40  # in the last tensor's bytes
    refused(io.BytesIO(bytes(data)), r"<BytesIO>: corrupt \(its content does not match")


def test_file_objects_in_the_wrong_mode_are_refused_in_one_line(tmp_path):
    cr.save(cr.ones(2), tmp_path / "t.pt")
    with open(tmp_path / "t.pt") as f:  # text mode
        refused(f, r"t.pt: open in text mode; open the file with 'rb'")
    with open(tmp_path / "w.pt", "wb") as f:
        refused(f, r"w.pt: cannot read it")
    with open(tmp_path / "t.pt", "rb") as f, pytest.raises(TypeError, match="not open for writing"):
        cr.save(cr.ones(2), f)
    with open(tmp_path / "text.txt", "w") as f, pytest.raises(TypeError, match="text mode"):
        cr.save(cr.ones(2), f)
    closed = io.BytesIO()
    closed.close()
    refused(closed, r"<BytesIO>: cannot read it \(I/O operation on closed file")
