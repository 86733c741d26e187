"""Saving and loading tensors, arrays, state dicts and nested dicts/lists/tuples of them, without
pickle: what ``torch.save(obj, path)`` / ``torch.load(path)`` are for, in one safetensors file.

* Every tensor or array is a tensor of the safetensors file; everything else (the dicts, lists
  and tuples around them, numbers, strings, None, which tensor goes where) is JSON in the file's
  header metadata. A state dict's tensors keep their names (``layers.0.weight``), so PyTorch reads
  the file with ``safetensors.torch.load_file(path)``, and a file PyTorch wrote with
  ``safetensors.torch.save_file(state_dict, path)`` loads here as a dict of tensors.
* Writing is atomic: a temporary file in the same folder, fsync, rename.
* A file object (an open binary file, ``io.BytesIO``) takes the place of a path, as in PyTorch:
  :func:`write_stream` writes the same bytes to it; :func:`read_stream` reads at most
  ``MAX_STREAM_BYTES`` from one and :func:`spooled` hands them to the path readers, so every check
  of a file on disk applies to a file object unchanged.
* Loading never runs code: no pickle, a bounded JSON, and a structure checked before anything
  is built. A PyTorch pickle file (``torch.save``'s zip or legacy format) is recognised and
  refused with the one command that converts it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_bytes

from .backend import xp
from .files import ChainruleFileError, atomic_write, brief, open_regular, regular_file_size
from .nn.module import Parameter, some_keys
from .tensor import Tensor

OBJECT_KEY = "chainrule.object"
"""The metadata entry that holds the structure (as JSON)."""

MAX_JSON_BYTES = 16 << 20
MAX_DEPTH = 10  # a saved object's nesting (a state dict nests two, an optimizer's three)
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # the number torch.save's legacy format starts with
_CONVERT = (
    'python -c "import torch, safetensors.torch as st; '
    "st.save_file(torch.load('{path}'), 'weights.safetensors')\""
)


# -- the file format: safetensors, with JSON in the header ----------------------------------------
# One reader and one writer, with one set of limits, for every file chainrule writes: models and
# checkpoints (chainrule.io) and saved objects (below).

MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 32  # a saved object nests at most MAX_DEPTH levels, up to three JSON levels each
DIGEST = "chainrule-sha256"  # header key: SHA-256 of the JSON text and every tensor


def parse_json(text: str | bytes, source: str):
    """Strict JSON (no NaN/Infinity) of at most ``MAX_JSON_BYTES``, nested at most
    ``MAX_JSON_DEPTH`` deep."""
    if len(text) > MAX_JSON_BYTES:
        raise ChainruleFileError(f"{source}: larger than {MAX_JSON_BYTES} bytes")

    def refuse_constant(name):
        raise ValueError(f"{name} is not a JSON number")

    def finite_float(digits):
        value = float(digits)
        if not math.isfinite(value):  # 1e400 parses as inf
            raise ValueError(f"{digits[:20]} is too large for a number")
        return value

    try:
        value = json.loads(text, parse_constant=refuse_constant, parse_float=finite_float)
    except RecursionError:
        raise ChainruleFileError(f"{source}: JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ChainruleFileError(f"{source}: not valid JSON ({exc})") from None
    check_depth(value, MAX_JSON_DEPTH, source)
    return value


def check_depth(value, limit: int, source: str) -> None:
    """Refuse lists/objects nested more than ``limit`` deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise ChainruleFileError(f"{source}: nested more than {limit} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def read_header(path: Path) -> tuple[dict, dict]:
    """(tensor name -> shape, metadata) from a safetensors header, without reading the data."""
    regular_file_size(path, ChainruleFileError)
    try:
        with safe_open(str(path), "np") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            return shapes, f.metadata() or {}
    except FileNotFoundError:
        raise ChainruleFileError(f"{path}: file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ChainruleFileError(
            f"{path}: not a valid safetensors file ({brief(exc, 160)})"
        ) from None


def read_header_metadata(path) -> dict:
    """The string metadata in a safetensors file's header (no tensor data is read)."""
    return read_header(Path(path))[1]


def read_checked_tensors(path: Path, described_by: str | None = None) -> dict:
    """The tensors of a safetensors file; with ``described_by`` (the header text they were
    saved with), checked against the header's SHA-256 when it has one."""
    tensors = read_tensors(path)
    expected = read_header(path)[1].get(DIGEST)
    if described_by is not None and expected is not None:
        if digest(tensors, described_by) != expected:
            raise ChainruleFileError(f"{path}: corrupt (its content does not match its SHA-256)")
    return tensors


def digest(tensors: dict, text: str) -> str:
    """SHA-256 of ``text`` and every tensor (name, type, shape, bytes)."""
    hashed = hashlib.sha256(text.encode())
    for key in sorted(tensors):
        array = tensors[key]
        hashed.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        hashed.update(contiguous(array).tobytes())
    return hashed.hexdigest()


def tensors_with_json(tensors: dict, key: str, text: str) -> bytes:
    """A safetensors file whose header holds ``text`` under ``key`` and the SHA-256 of both."""
    return safetensors_bytes(tensors, metadata={key: text, DIGEST: digest(tensors, text)})


def contiguous(array):
    """C order, as safetensors needs (``np.ascontiguousarray`` would turn 0-d into 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


# -- writing -------------------------------------------------------------------------------------


def save_object(obj, path) -> Path:
    """Save ``obj`` (a tensor, an array, a state dict, or dicts/lists/tuples of them with
    numbers, strings and None) to ``path``, atomically. Returns the path.

    A tensor that occurs twice (tied weights) is stored once and loads as one tensor again.

    Example:
        >>> save_object(model.state_dict(), "model.pth")
        >>> model.load_state_dict(load_object("model.pth"))
    """
    path = Path(path)
    atomic_write(path, object_bytes(obj))
    return path


def object_bytes(obj) -> bytes:
    """The file :func:`save_object` writes for ``obj``, as bytes."""
    arrays: dict = {}
    names: dict = {}  # id(tensor or array) -> its name in the file
    structure = _encode(obj, "", arrays, names, depth=0)
    text = json.dumps({"version": 1, "object": structure})
    return tensors_with_json(arrays, OBJECT_KEY, text)


def _encode(obj, where: str, arrays: dict, names: dict, depth: int):
    """The JSON description of ``obj``; its tensors and arrays go into ``arrays``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"save_object: {_show(where)} is nested more than {MAX_DEPTH} deep")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, xp.generic):
        return obj.item()
    if isinstance(obj, (Tensor, xp.ndarray)):
        return _encode_array(obj, where, arrays, names)
    if isinstance(obj, dict):
        entries = []
        for key, value in obj.items():
            if key is not None and not isinstance(key, (bool, int, float, str)):
                raise TypeError(
                    f"save_object: the key {key!r} in {_show(where)} is a {type(key).__name__}; "
                    "keys must be strings, numbers, bools or None"
                )
            inner = f"{where}.{key}" if where else str(key)
            entries.append([key, _encode(value, inner, arrays, names, depth + 1)])
        return {"dict": entries}
    if isinstance(obj, (list, tuple)):
        items = [
            _encode(v, f"{where}.{i}" if where else str(i), arrays, names, depth + 1)
            for i, v in enumerate(obj)
        ]
        return items if isinstance(obj, list) else {"tuple": items}
    raise TypeError(
        f"save_object: cannot save {_show(where)}, a {type(obj).__name__}: only tensors, arrays, "
        "numbers, strings, None and dicts/lists/tuples of them"
    )


def _encode_array(obj, where: str, arrays: dict, names: dict) -> dict:
    if id(obj) not in names:
        array = obj._data if isinstance(obj, Tensor) else obj
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"save_object: {_show(where)} has dtype {array.dtype}, not a number type"
            )
        name = where or "tensor"
        if name in arrays or name == "__metadata__":
            name = next(
                f"{name}#{k}" for k in range(1, len(arrays) + 2) if f"{name}#{k}" not in arrays
            )
        arrays[name] = contiguous(array)
        names[id(obj)] = name
    name = names[id(obj)]
    if not isinstance(obj, Tensor):
        return {"array": name}
    entry = {"tensor": name, "requires_grad": bool(obj.requires_grad)}
    return {**entry, "parameter": True} if isinstance(obj, Parameter) else entry


def _show(where: str) -> str:
    return f"the entry '{where}'" if where else "the object"


# -- file objects ----------------------------------------------------------------------------------
# torch.save(obj, f) / torch.load(f) take an open file or io.BytesIO as well as a path.

MAX_STREAM_BYTES = 1 << 32  # what cr.load reads from a file object, which has no size to check
_CHUNK = 1 << 24


def is_file_object(f) -> bool:
    """``f`` is a file object (something with ``read`` or ``write``), not a path."""
    return not isinstance(f, (str, bytes, os.PathLike)) and (
        hasattr(f, "read") or hasattr(f, "write")
    )


def stream_name(f) -> str:
    """What messages call a file object: its file's name, else its type (``<BytesIO>``)."""
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"


def write_stream(f, data: bytes) -> None:
    """Write ``data`` to the binary file object ``f`` (refusing a text or read-only one)."""
    try:
        f.write(data)
    except io.UnsupportedOperation:
        raise TypeError(
            f"cr.save: {stream_name(f)} is not open for writing; open it with 'wb'"
        ) from None
    except TypeError:  # a text file takes only str
        raise TypeError(
            f"cr.save: {stream_name(f)} is open in text mode; open it with 'wb'"
        ) from None


def read_stream(f) -> bytes:
    """What is left in the binary file object ``f``: at most ``MAX_STREAM_BYTES``, read in chunks
    up to one byte more (to tell a file too large), never all of an endless stream."""
    source, chunks, size = stream_name(f), [], 0
    if isinstance(f, io.TextIOBase):
        raise ChainruleFileError(f"{source}: open in text mode; open the file with 'rb'")
    while size <= MAX_STREAM_BYTES:
        try:
            chunk = f.read(min(_CHUNK, MAX_STREAM_BYTES + 1 - size))
        except (OSError, ValueError) as exc:  # not open for reading, closed
            raise ChainruleFileError(f"{source}: cannot read it ({brief(exc, 80)})") from None
        if not isinstance(chunk, (bytes, bytearray)):  # str from a text file, None if non-blocking
            raise ChainruleFileError(
                f"{source}: read {type(chunk).__name__}, not bytes; open the file with 'rb'"
            )
        if not chunk and not chunks:  # torch.save(x, buffer); torch.load(buffer) with no seek(0)
            raise ChainruleFileError(
                f"{source}: nothing to read where it stands; seek(0) after saving into it"
            )
        if not chunk:
            return b"".join(chunks)
        chunks.append(bytes(chunk))
        size += len(chunk)
    raise ChainruleFileError(
        f"{source}: more than a file object cr.load reads may hold ({MAX_STREAM_BYTES:,} bytes)"
    )


@contextmanager
def spooled(data: bytes, source: str):
    """A temporary file holding ``data``, for the readers of paths (safetensors' ``safe_open``
    reads a path): a file object's bytes are checked as a file's are. Their messages name
    ``source`` instead of the temporary file."""
    with tempfile.TemporaryDirectory(prefix="chainrule-") as folder:
        path = Path(folder) / "stream.safetensors"
        path.write_bytes(data)
        try:
            yield path
        except ChainruleFileError as exc:
            raise ChainruleFileError(str(exc).replace(str(path), source)) from None


# -- reading -------------------------------------------------------------------------------------


def load_object(path):
    """Load what :func:`save_object` saved (or any safetensors file: a dict of tensors).

    Raises:
        ChainruleFileError: the file is missing, is not a safetensors file (a PyTorch pickle
            file gets the command that converts it), or its structure does not check out.
    """
    path = Path(path)
    refuse_other_formats(path)
    shapes, metadata = read_header(path)
    names = list(shapes)
    if OBJECT_KEY not in metadata:  # a plain safetensors file, e.g. from PyTorch
        return {name: Tensor._make(array, False) for name, array in read_tensors(path).items()}
    text = metadata[OBJECT_KEY]
    header = parse_json(text, f"{path} (the structure)")
    if not isinstance(header, dict) or header.get("version") != 1 or "object" not in header:
        raise ChainruleFileError(f"{path}: unknown chainrule object format")
    used: set = set()
    _check(header["object"], set(names), used, path, depth=0)
    if used != set(names):
        raise ChainruleFileError(
            f"{path}: tensors {some_keys(sorted(set(names) - used))} are stored but not used by "
            "the structure"
        )
    return _decode(header["object"], read_checked_tensors(path, text), {})


# -- the tensors of a safetensors file -------------------------------------------------------------
# NumPy has no bfloat16 or float8 type: such tensors are read as their bits and widened exactly to
# float32, the values PyTorch's load_state_dict copies into a float32 model.

NUMPY_TYPES = {"BOOL", "U8", "I8", "U16", "I16", "F16", "U32", "I32", "F32", "U64", "I64", "F64"}


def _from_bfloat16(bits):
    """A bfloat16 is the upper half of a float32."""
    return (bits.astype(xp.uint32) << 16).view(xp.float32)


def _from_float8_e5m2(bits):
    """A float8_e5m2 is the upper byte of a float16."""
    return (bits.astype(xp.uint16) << 8).view(xp.float16).astype(xp.float32)


def _float8_e4m3_values():
    """The 256 values of float8_e4m3fn: bias 7, subnormals, no infinities, S.1111.111 NaN."""
    bits = xp.arange(256)
    exponent, fraction = (bits >> 3) & 15, (bits & 7) / 8
    magnitude = xp.where(exponent, (1 + fraction) * 2.0 ** (exponent - 7), fraction * 2.0**-6)
    magnitude[(bits & 127) == 127] = xp.nan
    return xp.where(bits & 128, -magnitude, magnitude).astype(xp.float32)


_FLOAT8_E4M3 = _float8_e4m3_values()
WIDENED = {  # safetensors type -> (the bits' type, little-endian as stored; bits -> float32)
    "BF16": ("<u2", _from_bfloat16),
    "F8_E5M2": ("u1", _from_float8_e5m2),
    "F8_E4M3": ("u1", _FLOAT8_E4M3.__getitem__),
}


def read_tensors(path: Path) -> dict:
    """Every tensor of a safetensors file as a NumPy array (bfloat16 and float8 as float32).

    Raises:
        ChainruleFileError: the file is corrupt or truncated, or holds a tensor of a type
            NumPy cannot hold (named, with the PyTorch line that converts it).
    """
    try:
        with safe_open(str(path), "np") as f:
            types = {name: f.get_slice(name).get_dtype() for name in f.keys()}
            odd = {name: kind for name, kind in types.items() if kind not in NUMPY_TYPES}
            for name, kind in odd.items():
                if kind not in WIDENED:
                    raise ChainruleFileError(
                        f"{path}: tensor '{brief(name)}' is {kind}, which chainrule does not "
                        "read; convert it with PyTorch first: "
                        "{k: v.float() for k, v in state.items()}"
                    )
            tensors = {name: f.get_tensor(name) for name in types if name not in odd}
        tensors.update(_read_widened(path, odd))
    except (SafetensorError, OSError) as exc:
        raise ChainruleFileError(
            f"{path}: corrupt or truncated safetensors file ({brief(exc, 160)})"
        ) from None
    return tensors


def _read_widened(path: Path, types: dict) -> dict:
    """The tensors ``types`` names (bfloat16 or float8), read as bits from a file that
    ``safe_open`` has checked, widened to float32."""
    if not types:
        return {}
    arrays = {}
    with open_regular(path, ChainruleFileError) as f:
        try:  # as safe_open found it, unless it changed since: then say so
            size = int.from_bytes(f.read(8), "little")
            if size > os.fstat(f.fileno()).st_size:
                raise ValueError(f"a header of {size} bytes")
            header = json.loads(f.read(size))
            for name, kind in types.items():
                storage, widen = WIDENED[kind]
                begin, end = header[name]["data_offsets"]
                f.seek(8 + size + begin)
                bits = xp.frombuffer(f.read(end - begin), storage)
                arrays[name] = widen(bits.reshape(header[name]["shape"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ChainruleFileError(f"{path}: changed while being read ({brief(exc)})") from None
    return arrays


def _check(node, names: set, used: set, path: Path, depth: int) -> None:
    """Refuse anything but the shapes :func:`_encode` writes, before building anything."""
    if depth > MAX_DEPTH:
        raise ChainruleFileError(f"{path}: the structure is nested more than {MAX_DEPTH} deep")
    if node is None or isinstance(node, (bool, int, float, str)):
        return
    if isinstance(node, list):
        for item in node:
            _check(item, names, used, path, depth + 1)
        return
    if isinstance(node, dict) and set(node) == {"tuple"} and isinstance(node["tuple"], list):
        for item in node["tuple"]:
            _check(item, names, used, path, depth + 1)
        return
    if isinstance(node, dict) and set(node) == {"dict"} and isinstance(node["dict"], list):
        for entry in node["dict"]:
            if not (isinstance(entry, list) and len(entry) == 2) or isinstance(
                entry[0], (list, dict)
            ):
                raise ChainruleFileError(f"{path}: malformed dict entry {str(entry)[:80]}")
            _check(entry[1], names, used, path, depth + 1)
        return
    if isinstance(node, dict) and _is_tensor_entry(node):
        name = node.get("tensor", node.get("array"))
        if name not in names:
            raise ChainruleFileError(f"{path}: the structure names a missing tensor {name!r}")
        used.add(name)
        return
    raise ChainruleFileError(f"{path}: unexpected entry in the structure: {str(node)[:80]}")


def _is_tensor_entry(node: dict) -> bool:
    if set(node) == {"array"}:
        return isinstance(node["array"], str)
    keys = set(node) - {"parameter"}
    return (
        keys == {"tensor", "requires_grad"}
        and isinstance(node["tensor"], str)
        and isinstance(node["requires_grad"], bool)
        and node.get("parameter", True) is True
    )


def _decode(node, arrays: dict, made: dict):
    if isinstance(node, list):
        return [_decode(item, arrays, made) for item in node]
    if not isinstance(node, dict):
        return node
    if "tuple" in node:
        return tuple(_decode(item, arrays, made) for item in node["tuple"])
    if "dict" in node:
        return {key: _decode(value, arrays, made) for key, value in node["dict"]}
    if "array" in node:
        return arrays[node["array"]]
    name = node["tensor"]
    if name not in made:  # one object per stored tensor: tied weights stay tied
        if node.get("parameter"):
            made[name] = Parameter(arrays[name], requires_grad=node["requires_grad"])
        else:
            made[name] = Tensor._make(arrays[name], node["requires_grad"])
    return made[name]


def refuse_other_formats(path: Path) -> None:
    """Raise a one-line :class:`ChainruleFileError` for a file that is not safetensors: say what
    it is (a PyTorch pickle, a NumPy file, ...) and how to convert it. Never unpickles."""
    regular_file_size(path, ChainruleFileError)  # never wait on a FIFO or read a device
    with open(path, "rb") as f:
        start = f.read(16)
    if start.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = archive.namelist()
        except (zipfile.BadZipFile, EOFError, ValueError) as exc:
            raise ChainruleFileError(
                f"{path}: a damaged zip archive ({brief(exc, 80)}), perhaps a truncated "
                f"PyTorch file; convert an intact copy once with PyTorch: "
                f"{_CONVERT.format(path=path)}"
            ) from None
        if any(m.endswith("data.pkl") for m in members):
            raise ChainruleFileError(
                f"{path}: a PyTorch pickle file (torch.save's zip format); chainrule never "
                f"unpickles (it can run code). Convert a state dict once with PyTorch: "
                f"{_CONVERT.format(path=path)}"
            )
        if members and all(m.endswith(".npy") for m in members):
            raise ChainruleFileError(
                f"{path}: a NumPy .npz archive, not a safetensors file; read it with "
                "numpy.load(path, allow_pickle=False)"
            )
        raise ChainruleFileError(f"{path}: a zip archive, not a safetensors file")
    if start[:1] == b"\x80" and start[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        legacy = start[2:4] == b"\x8a\x0a" and int.from_bytes(start[4:14], "little") == (
            _TORCH_LEGACY_MAGIC
        )
        what = "a PyTorch pickle file (torch.save's legacy format)" if legacy else "a pickle file"
        raise ChainruleFileError(
            f"{path}: {what}; chainrule never unpickles (it can run code). Convert a state dict "
            f"once with PyTorch: {_CONVERT.format(path=path)}"
        )
    if start.startswith(b"\x93NUMPY"):
        raise ChainruleFileError(
            f"{path}: a NumPy .npy file, not a safetensors file; read it with numpy.load"
        )
    header_size = int.from_bytes(start[:8], "little") if len(start) >= 8 else -1
    if len(start) < 9 or not 2 <= header_size <= os.path.getsize(path) - 8 or start[8:9] != b"{":
        raise ChainruleFileError(f"{path}: not a safetensors file (nor a known other format)")
