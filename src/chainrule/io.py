"""Saving and loading without pickle: weights in safetensors, everything else in JSON.

* ``save(model, path)`` writes ``path.safetensors`` (the weights) and ``path.json`` (the
  architecture, rebuilt on load from a registry of known layers, so a file can never run code).
* ``save(obj, path)`` for anything else (a state dict, a tensor, dicts and lists of them) writes
  one file at ``path``, as ``torch.save`` does (:func:`~chainrule.serialization.save_object`);
  ``load(path)`` tells the two apart, so ``model.load_state_dict(cr.load("model.pth"))`` works.
* ``save_checkpoint`` / ``load_checkpoint`` keep model, optimizer and training state in one
  safetensors file (arrays as tensors, the rest as JSON in its header) for exact resuming.
* Every write is atomic: a temporary file in the same folder, fsync, rename. A reader sees the old
  file or the new one, never half of one, even if the process is killed.
* Loading checks the architecture against the weight file's header before allocating anything.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file
from safetensors.numpy import save as safetensors_bytes

from .backend import xp
from .devices import check_device
from .nn import conv as C
from .nn import layers as L
from .nn.module import Module, Sequential
from .serialization import ChainruleFileError, load_object, save_object
from .tensor import Tensor, as_array

MAX_JSON_BYTES = 16 << 20
MAX_DIMENSION = 1 << 24


# -- atomic writes -------------------------------------------------------------------------------


def atomic_write(path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename (all or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path) -> dict:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise ChainruleFileError(f"{path}: too large for a chainrule JSON file")
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ChainruleFileError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ChainruleFileError(f"{path}: not valid JSON ({exc})") from None


# -- the layer registry --------------------------------------------------------------------------


@dataclass
class LayerSpec:
    """How to describe a layer as JSON arguments and which parameter shapes those arguments imply."""

    cls: type
    args: Callable[[Module], dict]
    shapes: Callable[[dict], dict] = lambda args: {}


def _affine(name_count: str, keys=("weight", "bias")):
    def shapes(args):
        n = args[name_count]
        shape = tuple(n) if isinstance(n, list) else (n,)
        return {k: shape for k in keys}

    return shapes


def _batch_norm_args(m) -> dict:
    return {
        "num_features": m.num_features,
        "eps": m.eps,
        "momentum": m.momentum,
        "affine": m.affine,
        "track_running_stats": m.track_running_stats,
    }


def _batch_norm_shapes(args):
    c = args["num_features"]
    out = {"weight": (c,), "bias": (c,)} if args["affine"] else {}
    if args["track_running_stats"]:
        out.update({"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()})
    return out


def _pool_args(m) -> dict:
    return {"kernel_size": m.kernel_size, "stride": m.stride, "padding": m.padding}


LAYERS: dict[str, LayerSpec] = {
    "Linear": LayerSpec(
        L.Linear,
        lambda m: {
            "in_features": m.in_features,
            "out_features": m.out_features,
            "bias": m.bias is not None,
        },
        lambda a: (
            {"weight": (a["out_features"], a["in_features"])}
            | ({"bias": (a["out_features"],)} if a["bias"] else {})
        ),
    ),
    "BatchNorm1d": LayerSpec(
        L.BatchNorm1d,
        _batch_norm_args,
        _batch_norm_shapes,
    ),
    "LayerNorm": LayerSpec(
        L.LayerNorm,
        lambda m: {
            "normalized_shape": list(m.normalized_shape),
            "eps": m.eps,
            "elementwise_affine": m.weight is not None,
        },
        lambda a: _affine("normalized_shape")(a) if a["elementwise_affine"] else {},
    ),
    "Dropout": LayerSpec(L.Dropout, lambda m: {"p": m.p}),
    "Unflatten": LayerSpec(
        L.Unflatten, lambda m: {"dim": m.dim, "unflattened_size": list(m.unflattened_size)}
    ),
    "Conv2d": LayerSpec(
        C.Conv2d,
        lambda m: {
            "in_channels": m.in_channels,
            "out_channels": m.out_channels,
            "kernel_size": list(m.kernel_size),
            "stride": list(m.stride),
            "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
            "dilation": list(m.dilation),
            "groups": m.groups,
            "bias": m.bias is not None,
        },
        lambda a: (
            {
                "weight": (
                    a["out_channels"],
                    a["in_channels"] // max(a["groups"], 1),
                    *a["kernel_size"],
                )
            }
            | ({"bias": (a["out_channels"],)} if a["bias"] else {})
        ),
    ),
    "MaxPool2d": LayerSpec(C.MaxPool2d, lambda m: _pool_args(m)),
    "AvgPool2d": LayerSpec(C.AvgPool2d, lambda m: _pool_args(m)),
    "AdaptiveAvgPool2d": LayerSpec(C.AdaptiveAvgPool2d, lambda m: {"output_size": m.output_size}),
    "BatchNorm2d": LayerSpec(
        C.BatchNorm2d,
        _batch_norm_args,
        _batch_norm_shapes,
    ),
    "Dropout2d": LayerSpec(C.Dropout2d, lambda m: {"p": m.p}),
    "Flatten": LayerSpec(L.Flatten, lambda m: {"start_dim": m.start_dim, "end_dim": m.end_dim}),
    "Identity": LayerSpec(L.Identity, lambda m: {}),
    "ReLU": LayerSpec(L.ReLU, lambda m: {}),
    "LeakyReLU": LayerSpec(L.LeakyReLU, lambda m: {"negative_slope": m.negative_slope}),
    "Sigmoid": LayerSpec(L.Sigmoid, lambda m: {}),
    "Tanh": LayerSpec(L.Tanh, lambda m: {}),
    "GELU": LayerSpec(L.GELU, lambda m: {"approximate": m.approximate}),
    "Softplus": LayerSpec(L.Softplus, lambda m: {"beta": m.beta, "threshold": m.threshold}),
    "Softmax": LayerSpec(L.Softmax, lambda m: {"dim": m.dim}),
    "LogSoftmax": LayerSpec(L.LogSoftmax, lambda m: {"dim": m.dim}),
}


def register_layer(name: str, spec: LayerSpec) -> None:
    """Make a layer class saveable by architecture (for layers defined outside this module)."""
    LAYERS[name] = spec


def architecture(model: Module) -> dict:
    """The JSON description of a Sequential model of registered layers."""
    if not isinstance(model, Sequential):
        raise TypeError(
            f"cr.save stores the architecture of Sequential models of known layers; "
            f"{type(model).__name__} is not one. Save its state dict instead, "
            "cr.save(model.state_dict(), path), rebuild the model in code and call "
            "model.load_state_dict(cr.load(path)) (or cr.save_weights / cr.load_weights)."
        )
    described = []
    for i, layer in enumerate(model):
        name = type(layer).__name__
        if LAYERS.get(name) is None or type(layer) is not LAYERS[name].cls:
            raise TypeError(
                f"cr.save: layer {i} ({name}) is not a known layer; see io.register_layer"
            )
        described.append({"type": name, "args": LAYERS[name].args(layer)})
    return {"format": "chainrule.Sequential", "version": 1, "layers": described}


def _check_args(where: str, args) -> None:
    if not isinstance(args, dict):
        raise ChainruleFileError(f"{where}: 'args' must be an object")
    for key, value in args.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, bool) or v is None or isinstance(v, str):
                continue
            if isinstance(v, int) and 0 <= v <= MAX_DIMENSION or isinstance(v, int) and -8 <= v < 0:
                continue
            if isinstance(v, float) and math.isfinite(v):
                continue
            raise ChainruleFileError(f"{where}: argument {key}={value!r} is not allowed")


def build(
    arch: dict, weight_shapes: dict | None = None, source: str = "architecture"
) -> Sequential:
    """Rebuild a model from :func:`architecture`'s description, checking every parameter shape
    against ``weight_shapes`` (name -> shape) first, so a hostile file cannot make us allocate."""
    if not isinstance(arch, dict) or arch.get("format") != "chainrule.Sequential":
        raise ChainruleFileError(f"{source}: not a chainrule model description")
    layers = arch.get("layers")
    if not isinstance(layers, list):
        raise ChainruleFileError(f"{source}: 'layers' must be a list")
    specs = []
    for i, entry in enumerate(layers):
        where = f"{source}: layer {i}"
        if not isinstance(entry, dict) or entry.get("type") not in LAYERS:
            raise ChainruleFileError(f"{where}: unknown layer type {entry!r:.80}")
        spec, args = LAYERS[entry["type"]], entry.get("args", {})
        _check_args(where, args)
        try:
            expected = spec.shapes(args)
        except (KeyError, TypeError) as exc:
            raise ChainruleFileError(
                f"{where} ({entry['type']}): bad arguments {args} ({exc})"
            ) from None
        if weight_shapes is not None:
            for name, shape in expected.items():
                key = f"{i}.{name}"
                if tuple(weight_shapes.get(key, ("missing",))) != tuple(shape):
                    raise ChainruleFileError(
                        f"{source}: {entry['type']} layer {i} needs '{key}' of shape "
                        f"{tuple(shape)}, the weight file has {weight_shapes.get(key, 'none')}"
                    )
        specs.append((spec, args))
    try:
        return Sequential(*(spec.cls(**args) for spec, args in specs))
    except (TypeError, ValueError) as exc:
        raise ChainruleFileError(f"{source}: cannot build the model ({exc})") from None


# -- weights ---------------------------------------------------------------------------------------


def _read_header(path: Path) -> tuple[dict, dict]:
    """(tensor name -> shape, metadata) from a safetensors header, without reading the data."""
    try:
        with safe_open(str(path), "np") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            return shapes, f.metadata() or {}
    except FileNotFoundError:
        raise ChainruleFileError(f"{path}: file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise ChainruleFileError(f"{path}: not a valid safetensors file ({exc})") from None


def _read_tensors(path: Path) -> dict:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ChainruleFileError(f"{path}: corrupt or truncated weight file ({exc})") from None


def _stem(path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save(obj, path, metadata: dict | None = None) -> Path:
    """Save a model, or anything ``torch.save`` saves, without pickle.

    * a :class:`~chainrule.nn.Sequential` model: ``path.safetensors`` (the weights) and
      ``path.json`` (the architecture and ``metadata``), loaded back as a model;
    * anything else (a state dict, a tensor, dicts/lists/tuples of them with numbers and
      strings): one file at ``path`` exactly (see :func:`~chainrule.serialization.save_object`).

    Returns the path of the (weight) file.
    """
    if isinstance(obj, Module):
        return _save_model(obj, path, metadata)
    if metadata is not None:
        raise TypeError("cr.save: metadata= goes with a model; put it in the saved dict instead")
    return save_object(obj, path)


def _save_model(model: Sequential, path, metadata: dict | None) -> Path:
    stem = _stem(path)
    description = {**architecture(model), "metadata": metadata or {}}
    tensors = {k: _contiguous(as_array(v)) for k, v in model.state_dict().items()}
    weights = stem.with_suffix(".safetensors")
    atomic_write(
        weights, safetensors_bytes(tensors, metadata={"chainrule": json.dumps(description)})
    )
    write_json(stem.with_suffix(".json"), description)
    return weights


def load(path, map_location=None, weights_only=None, mmap=None):
    """Load what :func:`save` saved: a model (from ``path``, ``path.safetensors`` or
    ``path.json``), or the state dict / tensor / nested object saved at ``path``.

    ``map_location`` may name the CPU (the only device); ``weights_only`` and ``mmap`` are
    accepted for PyTorch's sake: loading never runs code whatever they say.
    """
    if map_location is not None and not callable(map_location):
        check_device(map_location)
    if _holds_object(Path(path)):
        return load_object(path)
    return _load_model(path)


def _holds_object(path: Path) -> bool:
    """Whether ``path`` is a file written by ``save_object`` (or another safetensors file, or a
    file of another format that ``load_object`` explains), rather than a saved model."""
    if not path.is_file() or path.suffix == ".json":
        return False
    try:
        with safe_open(str(path), "np") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return path.suffix != ".safetensors"  # e.g. a PyTorch pickle: load_object says so
    return "chainrule" not in metadata  # a model's weight file carries its architecture


def _load_model(path) -> Sequential:
    stem = _stem(path)
    weights = stem.with_suffix(".safetensors")
    shapes, metadata = _read_header(weights)
    description = (
        read_json(stem.with_suffix(".json")) if stem.with_suffix(".json").exists() else None
    )
    if description is None:
        try:
            description = json.loads(metadata.get("chainrule", ""))
        except json.JSONDecodeError:
            raise ChainruleFileError(
                f"{weights}: no architecture found (model.json missing)"
            ) from None
    model = build(description, shapes, source=str(stem.with_suffix(".json")))
    model.load_state_dict(_read_tensors(weights))
    return model


def read_metadata(path) -> dict:
    """The metadata stored with a saved model."""
    return read_json(_stem(path).with_suffix(".json")).get("metadata", {})


def save_weights(model: Module, path) -> None:
    """Save any module's parameters and buffers (safetensors; rebuild the module in code)."""
    tensors = {k: _contiguous(as_array(v)) for k, v in model.state_dict().items()}
    atomic_write(Path(path), safetensors_bytes(tensors))


def load_weights(model: Module, path, strict: bool = True) -> Module:
    """Load weights saved by :func:`save_weights` into ``model`` (names and shapes must match)."""
    shapes, _ = _read_header(Path(path))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    if strict and (missing or unexpected):
        raise ChainruleFileError(f"{path}: missing keys {missing}, unexpected keys {unexpected}")
    for key, shape in shapes.items():
        if key in expected and tuple(expected[key]) != shape:
            raise ChainruleFileError(
                f"{path}: '{key}' has shape {shape}, the model needs {expected[key]}"
            )
    model.load_state_dict(_read_tensors(Path(path)), strict=strict)
    return model


def _contiguous(array):
    """C order, as safetensors needs (``np.ascontiguousarray`` would turn 0-d into 1-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


# -- checkpoints -----------------------------------------------------------------------------------


def _split_arrays(tree, prefix: str, arrays: dict):
    """Replace arrays in a nested dict/list by {"__array__": key}, collecting them in ``arrays``."""
    if isinstance(tree, (xp.ndarray, Tensor)):
        arrays[prefix] = _contiguous(as_array(tree))
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
    atomic_write(
        Path(path),
        safetensors_bytes(arrays, metadata={"chainrule-checkpoint": json.dumps(skeleton)}),
    )


def load_checkpoint(path) -> dict:
    """Read what :func:`save_checkpoint` wrote."""
    path = Path(path)
    _, metadata = _read_header(path)
    try:
        skeleton = json.loads(metadata["chainrule-checkpoint"])
    except (KeyError, json.JSONDecodeError):
        raise ChainruleFileError(f"{path}: not a chainrule checkpoint") from None
    return _join_arrays(skeleton, _read_tensors(path))
