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

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as safetensors_bytes

from .backend import xp
from .data.files import (  # noqa: F401 - atomic_write, ChainruleFileError: io's names too
    ChainruleFileError,
    DataFileError,
    atomic_write,
    brief,
    read_capped,
    regular_file_size,
)
from .devices import check_device, device
from .nn import conv as C
from .nn import features as FT
from .nn import layers as L
from .nn.module import Module, Sequential, some_keys
from .serialization import load_object, read_tensors, save_object
from .tensor import Tensor, as_array

MAX_JSON_BYTES = 16 << 20
MAX_JSON_DEPTH = 32  # our files nest a few levels; a checkpoint's optimizer state about six
MAX_DIMENSION = 1 << 24
DIGEST = "chainrule-sha256"  # header key: SHA-256 of the description and every tensor


def write_json(path, obj) -> None:
    atomic_write(path, (json.dumps(obj, indent=2) + "\n").encode())


def read_json(path) -> dict:
    """A JSON object from a regular file of at most 16 MiB, nested at most 32 deep."""
    text = read_capped(path, MAX_JSON_BYTES, "chainrule JSON file", ChainruleFileError)
    value = parse_json(text, str(path))
    if not isinstance(value, dict):
        raise ChainruleFileError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def parse_json(text: str | bytes, source: str):
    """Strict JSON (no NaN/Infinity), nested at most ``MAX_JSON_DEPTH`` deep."""

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
    "PlaneFeatures": LayerSpec(
        FT.PlaneFeatures, lambda m: {"features": list(m.features), "in_features": m.in_features}
    ),
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
            f"{type(model).__name__} is not one. Use cr.save_weights(model, path) and rebuild "
            "the model in code, then cr.load_weights(model, path)."
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
    specs, expected_keys = [], set()
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
        expected_keys |= {f"{i}.{name}" for name in expected}
        if weight_shapes is not None:
            for name, shape in expected.items():
                key = f"{i}.{name}"
                if tuple(weight_shapes.get(key, ("missing",))) != tuple(shape):
                    raise ChainruleFileError(
                        f"{source}: {entry['type']} layer {i} needs '{key}' of shape "
                        f"{tuple(shape)}, the weight file has {weight_shapes.get(key, 'none')}"
                    )
        specs.append((spec, args))
    unexpected = sorted(set(weight_shapes or ()) - expected_keys)
    if unexpected:
        raise ChainruleFileError(
            f"{source}: the weight file has tensors no layer uses: {', '.join(unexpected[:5])}"
        )
    try:
        return Sequential(*(spec.cls(**args) for spec, args in specs))
    except (TypeError, ValueError) as exc:
        raise ChainruleFileError(f"{source}: cannot build the model ({exc})") from None


# -- weights ---------------------------------------------------------------------------------------


def _read_header(path: Path) -> tuple[dict, dict]:
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
    return _read_header(Path(path))[1]


def _read_tensors(path: Path, described_by: str | None = None) -> dict:
    """The tensors of a safetensors file; with ``described_by`` (the header text they were
    saved with), checked against the header's SHA-256 when it has one."""
    tensors = read_tensors(path)
    expected = _read_header(path)[1].get(DIGEST)
    if described_by is not None and expected is not None:
        if _digest(tensors, described_by) != expected:
            raise ChainruleFileError(f"{path}: corrupt (its content does not match its SHA-256)")
    return tensors


def _digest(tensors: dict, text: str) -> str:
    digest = hashlib.sha256(text.encode())
    for key in sorted(tensors):
        array = tensors[key]
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(_contiguous(array).tobytes())
    return digest.hexdigest()


def _safetensors_bytes(tensors: dict, key: str, text: str) -> bytes:
    """A safetensors file whose header holds ``text`` under ``key`` and the SHA-256 of both."""
    return safetensors_bytes(tensors, metadata={key: text, DIGEST: _digest(tensors, text)})


def _stem(path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


def save(obj, path, metadata: dict | None = None) -> Path:
    """Save a model, or any state, without pickle (``cr.save``, PyTorch's ``torch.save``).

    * a model (a Sequential of known layers): ``path.safetensors`` (weights, architecture and
      ``metadata`` in its header) and ``path.json`` (a readable copy); ``cr.load`` rebuilds it;
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
    tensors = {k: _contiguous(as_array(v)) for k, v in obj.state_dict().items()}
    weights = stem.with_suffix(".safetensors")
    atomic_write(weights, _safetensors_bytes(tensors, "chainrule", json.dumps(description)))
    write_json(stem.with_suffix(".json"), description)
    return weights


def load(path, map_location=None, weights_only=None, mmap=None):
    """Load what :func:`save` saved: a model (from ``path``, ``path.safetensors`` or
    ``path.json``), or the state saved at exactly ``path``. A PyTorch pickle file is refused in
    one line that says how to convert it; nothing is ever unpickled. ``map_location``,
    ``weights_only`` and ``mmap`` are PyTorch's arguments: only the CPU exists here."""
    if isinstance(map_location, (str, device)):
        check_device(map_location)
    path = Path(path)
    if path.suffix != ".json" and path.is_file():
        try:
            _, header = _read_header(path)
        except ChainruleFileError:
            return load_object(path)  # names what the file is instead (a pickle, .npy, ...)
        if "chainrule" not in header:
            return load_object(path)
    elif not _stem(path).with_suffix(".safetensors").exists():
        return load_object(path)  # "file not found"
    return load_model(path)


def load_model(path) -> Sequential:
    """Load a model saved by :func:`save` (from ``path``, ``path.safetensors`` or ``path.json``).

    The architecture comes from the weight file's header; ``path.json`` is used only for weight
    files written by other tools, which have no chainrule header.
    """
    stem = _stem(path)
    weights = stem.with_suffix(".safetensors")
    shapes, header = _read_header(weights)
    description, source = _description(stem)
    model = build(description, shapes, source=source)
    model.load_state_dict(_read_tensors(weights, header.get("chainrule")))
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
    _, header = _read_header(weights)
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
    tensors = {k: _contiguous(as_array(v)) for k, v in model.state_dict().items()}
    atomic_write(Path(path), safetensors_bytes(tensors))


def load_weights(model: Module, path, strict: bool = True) -> Module:
    """Load weights saved by :func:`save_weights` into ``model`` (names and shapes must match)."""
    shapes, _ = _read_header(Path(path))
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
            if tree["__array__"] not in arrays:
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
    atomic_write(Path(path), _safetensors_bytes(arrays, "chainrule-checkpoint", text))


def load_checkpoint(path) -> dict:
    """Read what :func:`save_checkpoint` wrote."""
    path = Path(path)
    _, metadata = _read_header(path)
    if "chainrule-checkpoint" not in metadata:
        raise ChainruleFileError(f"{path}: not a chainrule checkpoint")
    skeleton = parse_json(metadata["chainrule-checkpoint"], str(path))
    tensors = _read_tensors(path, metadata["chainrule-checkpoint"])
    try:
        return _join_arrays(skeleton, tensors)
    except ChainruleFileError as exc:
        raise ChainruleFileError(f"{path}: corrupt checkpoint ({exc})") from None
