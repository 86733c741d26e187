"""Saving and loading without pickle: weights in safetensors, everything else in JSON.

* ``save(model, path)`` writes ``path.safetensors`` (the weights) and ``path.json`` (the
  architecture, rebuilt on load from a registry of known layers, so a file can never run code).
  The weight file is the model: its header carries the architecture and metadata too, so the model
  is written in one atomic step. ``path.json`` is a readable copy written just after; a process
  killed between the two leaves a stale copy, which loading ignores (the header wins) and the next
  save replaces. A reader therefore always sees one whole model, the old one or the new one.
  A path with a suffix of its own (``model.pt``, as ``torch.save(model, "model.pt")`` is written)
  gets that one weight file, at exactly that path, and no copy.
* A file object (an open binary file, ``io.BytesIO``) takes the place of a path, as in PyTorch:
  ``save(obj, f)`` writes the one file the path would hold, ``load(f)`` reads it back.
* ``save(obj, path)`` for anything else (a state dict, a tensor, dicts and lists of them) writes
  one file at ``path``, as ``torch.save`` does (:func:`~chainrule.serialization.save_object`);
  ``load(path)`` tells the two apart, so ``model.load_state_dict(cr.load("model.pth"))`` works.
* ``save_checkpoint`` / ``load_checkpoint`` keep model, optimizer and training state in one
  safetensors file (arrays as tensors, the rest as JSON in its header) for exact resuming.
* Every write is atomic: a temporary file in the same folder, fsync, rename. A reader sees the old
  file or the new one, never half of one, even if the process is killed.
* Model and checkpoint files carry a SHA-256 of their content in their header, checked on load:
  a flipped bit or a truncated copy is refused instead of giving silently wrong weights.
* Loading checks the architecture against the weight file's header before allocating anything,
  reads only regular files of bounded size (never a FIFO or ``/dev/zero``), and refuses JSON that
  is nested absurdly deep or holds NaN/Infinity (not JSON, though Python's parser takes them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from safetensors.numpy import save as safetensors_bytes

from .backend import xp
from .devices import check_device, device
from .files import (  # noqa: F401 - atomic_write, ChainruleFileError: io's names too
    ChainruleFileError,
    DataFileError,
    atomic_write,
    brief,
    read_capped,
    regular_file_size,
)
from .nn.describe import build as build_described
from .nn.describe import describe
from .nn.module import Module, some_keys
from .serialization import (  # noqa: F401 - parse_json, DIGEST, read_header_metadata: io's too
    DIGEST,
    MAX_JSON_BYTES,
    contiguous,
    digest,
    is_file_object,
    load_object,
    object_bytes,
    parse_json,
    read_checked_tensors,
    read_header,
    read_header_metadata,
    read_stream,
    save_object,
    spooled,
    stream_name,
    tensors_with_json,
    write_stream,
)
from .tensor import Tensor, as_array


def write_json(path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path) -> dict:
    """A JSON object from a regular file of at most 16 MiB, nested at most 32 deep."""
    text = read_capped(path, MAX_JSON_BYTES, "chainrule JSON file", ChainruleFileError)
    value = parse_json(text, str(path))
    if not isinstance(value, dict):
        raise ChainruleFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


# -- the architecture ------------------------------------------------------------------------------
# Each layer describes itself (config, state_shapes); chainrule.nn.describe walks a model with it.


def architecture(model: Module) -> dict:
    """The JSON description of a model (see :mod:`chainrule.nn.describe`)."""
    return describe(model)


def build(
    arch: dict, weight_shapes: dict | None = None, source: str = "architecture", modules=()
) -> Module:
    """Rebuild a model from :func:`architecture`'s description, checking every parameter shape
    against ``weight_shapes`` (name -> shape) first, so a hostile file cannot make us allocate.
    ``modules``: classes of yours the description may name besides the registered ones."""
    try:
        return build_described(arch, weight_shapes, modules, source)
    except ValueError as exc:
        raise ChainruleFileError(str(exc)) from None


# -- weights ---------------------------------------------------------------------------------------


def _present(path: Path) -> bool:
    """There is something at ``path``: a file, or a link even if it leads nowhere (the reader
    then says what is wrong with it, instead of "not found")."""
    return path.exists() or path.is_symlink()


def _model_files(path) -> tuple[Path, Path | None]:
    """(the weight file, its readable JSON copy) of the model saved at ``path``: ``path.safetensors``
    and ``path.json`` (the run-folder format; ``path`` given with or without either suffix), or,
    for a path with a suffix of its own (``model.pt``), that path alone, as ``torch.save`` writes."""
    path = Path(path)
    if path.suffix not in ("", ".safetensors", ".json"):
        return path, None
    stem = path.with_suffix("") if path.suffix else path
    return stem.with_name(f"{stem.name}.safetensors"), stem.with_name(f"{stem.name}.json")


def save(obj, f, metadata: dict | None = None) -> Path | None:
    """Save a model, or any state, without pickle (``cr.save``, PyTorch's ``torch.save``).

    * a model (a Sequential, nested or not, of chainrule's layers, or a module of a class of yours
      marked ``@cr.nn.saveable``): ``f.safetensors`` (weights, architecture and ``metadata``
      in its header) and ``f.json`` (a readable copy), or that weight file alone at exactly ``f``
      when ``f`` has a suffix of its own (``model.pt``); ``cr.load`` rebuilds it;
    * anything else (a state dict, a tensor, dicts and lists of them with numbers and strings):
      exactly the file ``f``, safetensors with the structure as JSON in its header
      (:func:`~chainrule.serialization.save_object`); PyTorch reads its tensors with
      ``safetensors.torch.load_file``.

    ``f`` is a path or a binary file object (an open file, ``io.BytesIO``), which gets the bytes
    of the one file (the weight file of a model). Returns the path of the file holding the
    tensors (None for a file object).
    """
    if not isinstance(obj, Module):
        if metadata is not None:
            raise TypeError(
                "cr.save: metadata= goes with a model; put it in the saved dict instead"
            )
        if not is_file_object(f):
            return save_object(obj, f)
        write_stream(f, object_bytes(obj))
        return None
    description = {**architecture(obj), "metadata": metadata or {}}
    tensors = {k: contiguous(as_array(v)) for k, v in obj.state_dict().items()}
    data = tensors_with_json(tensors, "chainrule", json.dumps(description))
    if is_file_object(f):
        write_stream(f, data)
        return None
    weights, copy = _model_files(f)
    atomic_write(weights, data)
    if copy is not None:
        write_json(copy, description)
    return weights


def load(f, map_location=None, weights_only=None, mmap=None, modules=()):
    """Load what :func:`save` saved: a model (from ``f``, ``f.safetensors`` or ``f.json``), or
    the state saved at exactly ``f``; ``f`` may be a binary file object instead of a path (read
    up to :data:`~chainrule.serialization.MAX_STREAM_BYTES`). A PyTorch pickle file is refused in
    one line that says how to convert it; nothing is ever unpickled. ``map_location``,
    ``weights_only`` and ``mmap`` are PyTorch's arguments: only the CPU exists here.
    ``modules``: module classes of yours the file may name (or mark them ``@cr.nn.saveable``)."""
    if isinstance(map_location, (str, device)):
        check_device(map_location)
    if is_file_object(f):
        with spooled(read_stream(f), stream_name(f)) as path:
            return load(path, modules=modules)
    path = Path(f)
    if path.suffix != ".json" and path.is_file():
        try:
            _, header = read_header(path)
        except ChainruleFileError:
            return load_object(path)  # names what the file is instead (a pickle, .npy, ...)
        if "chainrule" not in header:
            return load_object(path)
        return _load_model(path, None, modules)
    weights, copy = _model_files(path)
    if not _present(weights):
        return load_object(path)  # "file not found"
    return _load_model(weights, copy, modules)


def load_model(path, modules=()) -> Module:
    """Load a model saved by :func:`save` (from ``path``, ``path.safetensors`` or ``path.json``).

    The architecture comes from the weight file's header; ``path.json`` is used only for weight
    files written by other tools, which have no chainrule header.
    """
    return _load_model(*_model_files(path), modules)


def _load_model(weights: Path, copy: Path | None, modules) -> Module:
    shapes, header = read_header(weights)
    description, source = _description(weights, copy)
    model = build(description, shapes, source=source, modules=modules)
    tensors = read_checked_tensors(weights, header.get("chainrule"))
    _take_saved_float_types(model, tensors)
    model.load_state_dict(tensors)
    return model


def _take_saved_float_types(model: Module, tensors: dict) -> None:
    """Give each floating parameter and buffer the type it was saved in: a model saved after
    ``.double()`` loads as float64, as ``torch.load`` gives it back (a layer's description holds
    no dtype: the constructor makes float32)."""
    for name, target in model.state_dict(keep_vars=True).items():
        saved = tensors.get(name)
        if saved is not None and saved.dtype.kind == "f" == target._data.dtype.kind:
            target._data = target._data.astype(saved.dtype, copy=False)


def read_metadata(path) -> dict:
    """The metadata stored with a saved model (from the weight file's header)."""
    weights, copy = _model_files(path)
    metadata = _description(weights, copy)[0].get("metadata", {})
    if not isinstance(metadata, dict):
        raise ChainruleFileError(f"{weights}: 'metadata' must be an object")
    return metadata


def describe_file(path) -> str:
    """What the model saved at ``path`` is made of, read from its description and its weight
    file's header alone (nothing is built, so a module class of yours shows too): one line per
    layer with its arguments, then the number of weights."""
    weights, copy = _model_files(path)
    shapes, _ = read_header(weights)
    description = _description(weights, copy)[0]
    lines: list[str] = []

    def walk(entry, indent: str) -> None:
        if not isinstance(entry, dict):
            raise ChainruleFileError(f"{weights}: a layer entry is not an object")
        kind = str(entry.get("type"))[:60]
        if kind == "Sequential":
            lines.append(f"{indent}Sequential")
            for layer in entry.get("layers") or []:
                walk(layer, indent + "  ")
            return
        arguments = ", ".join(f"{k}={v!r}"[:80] for k, v in (entry.get("args") or {}).items())
        lines.append(f"{indent}{kind}({arguments})")

    if description.get("format") == "chainrule.Sequential":
        walk({"type": "Sequential", "layers": description.get("layers")}, "")
    else:
        walk(description.get("module"), "")
    count = sum(math.prod(shape) for shape in shapes.values())
    lines.append(f"{count:,} numbers in {len(shapes)} tensors ({weights.name})")
    return "\n".join(lines)


def _description(weights: Path, copy: Path | None) -> tuple[dict, str]:
    """(architecture description, where it came from): the weight file's header, else its JSON
    copy."""
    _, header = read_header(weights)
    if "chainrule" in header:
        description = parse_json(header["chainrule"], f"{weights} (header)")
        if not isinstance(description, dict):
            raise ChainruleFileError(f"{weights}: the header's model description is not an object")
        return description, f"{weights} (header)"
    if copy is None or not copy.exists():
        beside = f" and no {copy.name}" if copy is not None else ""
        raise ChainruleFileError(f"{weights}: no architecture found (no chainrule header{beside})")
    return read_json(copy), str(copy)


def save_weights(model: Module, path) -> None:
    """Save any module's parameters and buffers (safetensors; rebuild the module in code)."""
    tensors = {k: contiguous(as_array(v)) for k, v in model.state_dict().items()}
    atomic_write(Path(path), safetensors_bytes(tensors))


def load_weights(model: Module, path, strict: bool = True) -> Module:
    """Load weights saved by :func:`save_weights` into ``model`` (names and shapes must match)."""
    shapes, _ = read_header(Path(path))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if strict and (missing or unexpected):
        raise ChainruleFileError(
            f"{path}: missing keys {some_keys(missing)}, unexpected keys {some_keys(unexpected)}"
        )
    for key, shape in shapes.items():
        if key in expected and tuple(expected[key]) != shape:
            raise ChainruleFileError(
                f"{path}: '{key}' has shape {shape}, the model needs {expected[key]}"
            )
    model.load_state_dict(read_checked_tensors(Path(path)), strict=strict)
    return model


# -- checkpoints -----------------------------------------------------------------------------------


def _split_arrays(tree, prefix: str, arrays: dict):
    """Replace arrays in a nested dict/list by {"__array__": key}, collecting them in ``arrays``."""
    if isinstance(tree, (xp.ndarray, Tensor)):
        arrays[prefix] = contiguous(as_array(tree))
        return {"__array__": prefix}
    if isinstance(tree, dict):
        return {str(k): _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(tree)]
    if isinstance(tree, xp.generic):
        return tree.item()
    return tree


def _join_arrays(tree, arrays: dict):
    if isinstance(tree, dict):
        if set(tree) == {"__array__"}:
            if not isinstance(tree["__array__"], str) or tree["__array__"] not in arrays:
                raise ChainruleFileError(f"names array {tree['__array__']!r:.60}, which is absent")
            return arrays[tree["__array__"]]
        return {k: _join_arrays(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_arrays(v, arrays) for v in tree]
    return tree


def save_checkpoint(path, state: dict) -> None:
    """Write a nested dict of arrays, numbers and strings (model, optimizer, training state) to
    one safetensors file, atomically."""
    arrays: dict = {}
    skeleton = _split_arrays(state, "state", arrays)
    text = json.dumps(skeleton)
    atomic_write(Path(path), tensors_with_json(arrays, "chainrule-checkpoint", text))


def load_checkpoint(path) -> dict:
    """Read what :func:`save_checkpoint` wrote."""
    path = Path(path)
    _, metadata = read_header(path)
    if "chainrule-checkpoint" not in metadata:
        raise ChainruleFileError(f"{path}: not a chainrule checkpoint")
    skeleton = parse_json(metadata["chainrule-checkpoint"], str(path))
    tensors = read_checked_tensors(path, metadata["chainrule-checkpoint"])
    try:
        return _join_arrays(skeleton, tensors)
    except ChainruleFileError as exc:
        raise ChainruleFileError(f"{path}: corrupt checkpoint ({exc})") from None
