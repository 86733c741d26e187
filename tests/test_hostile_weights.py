"""PyTorch weight files and safetensors headers that chainrule did not write.

bfloat16 and float8 tensors read exactly as PyTorch widens them to float32; types NumPy has no
type for are refused by name; integer weights are cast as PyTorch casts them; thousands of extra
keys, a damaged ``.pt`` zip and a fuzz of safetensors headers each end in a result or one short
line. Every file is generated here.
"""

import json
import random
import struct
import time
import zipfile

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import chainrule as cr
from chainrule import io, serialization
from chainrule.cli import main
from chainrule.io import ChainruleFileError
from hostile import time_limit

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

MAX_MESSAGE = 320  # characters of a refusal besides the path


def short_line(message: str, path) -> str:
    assert "\n" not in message and len(message) <= MAX_MESSAGE + len(str(path)), message
    return message


def linear_state(dtype, scale=3.0, seed=0):
    """A Linear(16 -> 4)'s state dict in ``dtype``, its float32 values as PyTorch widens them."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        "weight": (torch.randn(4, 16, generator=generator) * scale).to(dtype),
        "bias": (torch.randn(4, generator=generator) * scale).to(dtype),
    }
    return state


def outputs_of_both(state, path, x):
    """(chainrule's, PyTorch's) outputs of a Linear(16 -> 4) loaded from the file ``path``."""
    ours = cr.nn.Linear(16, 4)
    ours.load_state_dict(cr.load(path))
    theirs = torch.nn.Linear(16, 4)
    theirs.load_state_dict(safetensors_torch.load_file(str(path)))
    with cr.no_grad(), torch.no_grad():
        return ours(cr.tensor(x)).numpy(), theirs(torch.from_numpy(x)).numpy(), ours, theirs


NARROW = {
    "bfloat16": torch.bfloat16,
    "float8_e4m3fn": torch.float8_e4m3fn,
    "float8_e5m2": torch.float8_e5m2,
}


@pytest.mark.parametrize("name", NARROW)
def test_bfloat16_and_float8_weights_read_exactly_as_pytorch_widens_them(name, tmp_path):
    dtype = NARROW[name]
    # every bit pattern of the type, NaN, infinities and -0 included
    bits = torch.arange(1 << (8 * dtype.itemsize), dtype=torch.int32).to(torch.int16)
    every = bits.to(torch.uint8) if dtype.itemsize == 1 else bits
    state = {"every": every.view(dtype), **linear_state(dtype)}
    path = tmp_path / "narrow.safetensors"
    safetensors_torch.save_file(state, str(path))
    loaded = cr.load(path)
    for key, value in state.items():
        want, got = value.float().numpy(), loaded[key].numpy()
        assert got.dtype == np.float32
        nan = np.isnan(want)  # NaN payloads may differ; every other bit is the same
        np.testing.assert_array_equal(np.isnan(got), nan, err_msg=key)
        np.testing.assert_array_equal(got[~nan].view(np.uint32), want[~nan].view(np.uint32))
    del state["every"]
    safetensors_torch.save_file(state, str(path))
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    ours, theirs, *_ = outputs_of_both(state, path, x)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * np.abs(theirs).max())


def test_a_type_numpy_lacks_is_refused_by_name(tmp_path):
    path = tmp_path / "e8m0.safetensors"
    state = {"weight": torch.ones(4, 16).to(torch.float8_e8m0fnu), "bias": torch.zeros(4)}
    safetensors_torch.save_file(state, str(path))
    for read in (cr.load, lambda p: cr.io.load_weights(cr.nn.Linear(16, 4), p)):
        with pytest.raises(ChainruleFileError) as caught:
            read(path)
        message = short_line(str(caught.value), path)
        assert "'weight' is F8_E8M0" in message and "v.float()" in message


def run_file_in(dtype, run):
    """Rewrite the run's model file with its weights in ``dtype`` and a SHA-256 that matches
    (a consistent file, as another tool might write): what chainrule reads back is float32."""
    weights = run / "model.safetensors"
    text = io.read_header_metadata(weights)["chainrule"]
    state = {k: torch.from_numpy(v).to(dtype) for k, v in load_file(str(weights)).items()}
    widened = {k: v.float().numpy() for k, v in state.items()}
    digest = io.digest(widened, text)
    metadata = {"chainrule": text, io.DIGEST: digest}
    safetensors_torch.save_file(state, str(weights), metadata=metadata)


@pytest.mark.parametrize("name", NARROW)
def test_a_run_whose_weights_are_bfloat16_or_float8_evaluates(name, run_copy, capsys):
    run_file_in(NARROW[name], run_copy)
    capsys.readouterr()
    with time_limit(30):
        status = main(["evaluate", str(run_copy)])
    assert status == 0, capsys.readouterr().err


INTEGERS = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64, torch.bool]


@pytest.mark.parametrize("dtype", INTEGERS, ids=str)
def test_integer_weights_are_cast_as_pytorch_casts_them(dtype, tmp_path):
    state = linear_state(dtype, scale=1.0 if dtype is torch.bool else 60.0)
    if dtype is torch.int64:  # past 2^24, where float32 rounds
        state["weight"][0, :4] = torch.tensor([2**24 + 1, 2**40 + 3, -(2**53) - 7, 2**62 + 1])
    path = tmp_path / "integers.safetensors"
    safetensors_torch.save_file(state, str(path))
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    got, want, ours, theirs = outputs_of_both(state, path, x)
    for name in ("weight", "bias"):  # the same float32 bits
        mine = getattr(ours, name).detach().numpy()
        np.testing.assert_array_equal(mine, getattr(theirs, name).detach().numpy())
    # the same weights; only the order of float32 sums differs
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 * np.abs(want).max())


def test_ten_thousand_extra_keys_give_a_short_message(tmp_path):
    state = {k: v.numpy() for k, v in linear_state(torch.float32).items()}
    state.update({f"extra.{i}": np.zeros(1, np.float32) for i in range(10_000)})
    path = tmp_path / "many.safetensors"
    save_file(state, str(path))
    with pytest.raises(KeyError) as caught:
        cr.nn.Linear(16, 4).load_state_dict(cr.load(path))
    message = short_line(str(caught.value), path)
    assert "and 9995 more" in message
    with pytest.raises(ChainruleFileError) as caught:
        cr.io.load_weights(cr.nn.Linear(16, 4), path)
    assert "and 9995 more" in short_line(str(caught.value), path)


def damaged_zips(tmp_path):
    """A PyTorch file cut in half, cut before its end, and with its directory overwritten."""
    good = tmp_path / "good.pt"
    torch.save(linear_state(torch.float32), good)
    data = good.read_bytes()
    directory = data.rindex(b"PK\x01\x02")  # the central directory's first entry
    damaged = {
        "half.pt": data[: len(data) // 2],
        "end cut.pt": data[:-10],
        "directory overwritten.pt": data[:directory] + b"\xff" * (len(data) - directory),
    }
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
    return [tmp_path / name for name in damaged]


def test_a_damaged_pytorch_zip_says_so_and_how_to_convert_a_good_copy(tmp_path):
    for path in damaged_zips(tmp_path):
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(path)  # damaged indeed
        with pytest.raises(ChainruleFileError) as caught:
            cr.load(path)
        message = str(caught.value)
        assert "\n" not in message
        assert "a damaged zip archive" in message and "PyTorch" in message
        assert "st.save_file(torch.load(" in message


# -- fuzz: safetensors headers, through `chainrule evaluate` ---------------------------------------

FUZZ_CASES = 300
FUZZ_SECONDS = 12
ODD_VALUES = [0, -1, 1, 3, 1 << 31, 10**12, -(10**12), 1.5, "8", None, [], {}, [1, 2, 3]]
TYPES = ["F32", "F64", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "I64", "U8", "BOOL", "Q4"]


def split(data: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join(header, body: bytes, size=None) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text) if size is None else size) + text + body


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One change an attacker might make to a safetensors file; says which."""
    header, body = split(data)
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    choice = rng.randrange(8)
    if choice == 0:
        header[name]["dtype"] = rng.choice(TYPES + ODD_VALUES)
        return join(header, body), f"{name}.dtype = {header[name]['dtype']!r}"
    if choice == 1:
        shape = header[name]["shape"]
        shape = [rng.choice(ODD_VALUES) if rng.random() < 0.5 else d for d in shape] or [5]
        header[name]["shape"] = rng.choice([shape, shape + [2], shape[:-1]])
        return join(header, body), f"{name}.shape = {header[name]['shape']!r}"
    if choice == 2:
        offsets = header[name]["data_offsets"]
        offsets[rng.randrange(2)] = rng.choice(ODD_VALUES)
        return join(header, body), f"{name}.data_offsets = {offsets!r}"
    if choice == 3:
        metadata = header.setdefault("__metadata__", {})
        key = rng.choice([*metadata, "chainrule", io.DIGEST, "x"])
        metadata[key] = rng.choice(["", "{", "[1]", '{"layers": 5}', 7, None, "x" * 1000])
        return join(header, body), f"metadata[{key!r}] changed"
    if choice == 4:
        del header[name]
        return join(header, body), f"{name} removed"
    if choice == 5:
        size = rng.choice([0, 1, 7, len(data), 1 << 40, len(json.dumps(header)) + 3])
        return join(header, body, size), f"header size {size}"
    if choice == 6:
        cut = rng.randrange(len(data))
        return data[:cut], f"cut at {cut}"
    raw = bytearray(data)
    for _ in range(rng.randrange(1, 6)):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw), "bytes changed"


def test_fuzz_every_mutated_model_header_evaluates_or_is_refused_in_one_line(run_copy, capsys):
    rng = random.Random(4)
    weights = run_copy / "model.safetensors"
    good = weights.read_bytes()
    outcomes = {0: 0, 2: 0}
    deadline = time.monotonic() + FUZZ_SECONDS
    for case in range(FUZZ_CASES):
        if time.monotonic() > deadline:
            break
        data, what = mutate(good, rng)
        weights.write_bytes(data)
        capsys.readouterr()
        with time_limit(10):
            status = main(["evaluate", str(run_copy)])
        err = capsys.readouterr().err
        assert status in outcomes, f"case {case} ({what}): exit {status}: {err[-3000:]}"
        if status == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith("chainrule: error:"), (
                f"case {case} ({what}): {err[-3000:]}"
            )
            short_line(err.strip(), weights)
        outcomes[status] += 1
    assert outcomes[2] >= 50, outcomes


def test_a_file_changed_after_its_header_was_checked_is_refused(tmp_path):
    """bfloat16 and float8 tensors are read a second time, as bits: from a file that changed
    in between, that read refuses in one line instead of reading what the new header says."""
    path = tmp_path / "swapped.safetensors"
    safetensors_torch.save_file(linear_state(torch.bfloat16), str(path))
    data = path.read_bytes()
    for changed in (data[:-8], struct.pack("<Q", 1 << 40) + data[8:], data.replace(b"bias", b"bi")):
        path.write_bytes(changed)
        with pytest.raises(ChainruleFileError, match="changed while being read"):
            serialization._read_widened(path, {"weight": "BF16", "bias": "BF16"})
