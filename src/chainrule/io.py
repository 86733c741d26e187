"""Saving and loading without pickle: weights in safetensors, everything else in JSON.

* ``save(model, path)`` writes ``path.safetensors`` (the weights) and ``path.json`` (the
  architecture, rebuilt on load from a registry of known layers, so a file can never run code).
  The weight file is the model: its header carries the architecture and metadata too, so the model
  is written in one atomic step. ``path.json`` is a readable copy written just after; a process
  killed between the two leaves a stale copy, which loading ignores (the header wins) and the next
  save replaces. A reader therefore always sees one whole model, the old one or the new one.
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
    load_object,
    parse_json,
    read_checked_tensors,
    read_header,
    read_header_metadata,
    save_object,
    tensors_with_json,
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


def _stem(path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save(obj, path, metadata: dict | None = None) -> Path:
    """Save a model, or any state, without pickle (``cr.save``, PyTorch's ``torch.save``).

    * a model (a Sequential, nested or not, of chainrule's layers, or a module of a class of yours
      marked ``@cr.nn.saveable``): ``path.safetensors`` (weights, architecture and ``metadata``
      in its header) and ``path.json`` (a readable copy); ``cr.load`` rebuilds it;
    * anything else (a state dict, a tensor, dicts and lists of them with numbers and strings):
      exactly the file ``path``, safetensors with the structure as JSON in its header
      (:func:`~chainrule.serialization.save_object`); PyTorch reads its tensors with
      ``safetensors.torch.load_file``.

    Returns the path of the file holding the tensors.
    """
    if not isinstance(obj, Module):
        if metadata is not None:
            raise TypeError(
                "cr.save: metadata= goes with a model; put it in the saved dict instead"
            )
        return save_object(obj, path)
    stem = _stem(path)
    description = {**architecture(obj), "metadata": metadata or {}}
    tensors = {k: contiguous(as_array(v)) for k, v in obj.state_dict().items()}
    weights = stem.with_suffix(".safetensors")
    atomic_write(weights, tensors_with_json(tensors, "chainrule", json.dumps(description)))
    write_json(stem.with_suffix(".json"), description)
    return weights


def load(path, map_location=None, weights_only=None, mmap=None, modules=()):
    """Load what :func:`save` saved: a model (from ``path``, ``path.safetensors`` or
    ``path.json``), or the state saved at exactly ``path``. A PyTorch pickle file is refused in
    one line that says how to convert it; nothing is ever unpickled. ``map_location``,
    ``weights_only`` and ``mmap`` are PyTorch's arguments: only the CPU exists here.
    ``modules``: module classes of yours the file may name (or mark them ``@cr.nn.saveable``)."""
    if isinstance(map_location, (str, device)):
        check_device(map_location)
    path = Path(path)
    if path.suffix != ".json" and path.is_file():
        try:
            _, header = read_header(path)
        except ChainruleFileError:
            return load_object(path)  # names what the file is instead (a pickle, .npy, ...)
        if "chainrule" not in header:
            return load_object(path)
    elif not _present(_stem(path).with_suffix(".safetensors")):
        return load_object(path)  # "file not found"
    return load_model(path, modules)


def load_model(path, modules=()) -> Module:
    """Load a model saved by :func:`save` (from ``path``, ``path.safetensors`` or ``path.json``).

    The architecture comes from the weight file's header; ``path.json`` is used only for weight
    files written by other tools, which have no chainrule header.
    """
    stem = _stem(path)
    weights = stem.with_suffix(".safetensors")
    shapes, header = read_header(weights)
    description, source = _description(stem)
    model = build(description, shapes, source=source, modules=modules)
    model.load_state_dict(read_checked_tensors(weights, header.get("chainrule")))
    return model


def read_metadata(path) -> dict:
    """The metadata stored with a saved model (from the weight file's header)."""
    metadata = _description(_stem(path))[0].get("metadata", {})
    if not isinstance(metadata, dict):
        raise ChainruleFileError(f"{_stem(path)}: 'metadata' must be an object")
    return metadata


def _description(stem: Path) -> tuple[dict, str]:
    """(architecture description, where it came from): the weight file's header, else the JSON."""
    weights = stem.with_suffix(".safetensors")
    _, header = read_header(weights)
    if "chainrule" in header:
        description = parse_json(header["chainrule"], f"{weights} (header)")
        if not isinstance(description, dict):
            raise ChainruleFileError(f"{weights}: the header's model description is not an object")
        return description, f"{weights} (header)"
    if not stem.with_suffix(".json").exists():
        raise ChainruleFileError(
            f"{weights}: no architecture found (no chainrule header and no {stem.name}.json)"
        )
    return read_json(stem.with_suffix(".json")), str(stem.with_suffix(".json"))


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
