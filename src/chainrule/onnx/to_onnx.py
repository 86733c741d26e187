"""Export: a chainrule Sequential as an ONNX graph that onnxruntime runs.

Each layer becomes the ONNX operators (opset 17) that compute what the layer computes in
evaluation mode: every layer class writes its own form (its ``to_onnx`` method, beside its
``forward``), this module strings them together. The example input fixes
every axis but the first, which stays symbolic (``batch``). Before anything is written the graph
goes through ``onnx.checker`` (with strict shape inference) and, unless ``check=False``,
onnxruntime runs it on the example input and must give chainrule's outputs.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
from collections.abc import Iterator
from pathlib import Path

from .. import autograd, io, runs
from ..api import sigmoid, softmax
from ..backend import new_rng, xp
from ..data import Standardizer
from ..files import open_regular
from ..nn.module import Module, Sequential
from ..tensor import Tensor, as_array
from . import require
from .graph import GraphBuilder, onnx

CHECK_TOLERANCE = 1e-4
"""How far onnxruntime may stray from chainrule, relative to the largest output, before
``export`` refuses to write (float32 sums in another order differ by about 1e-7)."""
MAX_PROTOBUF_BYTES = 2**31 - 1

# -- the model -------------------------------------------------------------------------------------


def leaves(model: Sequential, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """(path, layer) in order, descending into nested Sequentials (paths as in ``state_dict``)."""
    for i, layer in enumerate(model):
        if type(layer) is Sequential:
            yield from leaves(layer, f"{prefix}{i}.")
        else:
            yield f"{prefix}{i}", layer


@contextlib.contextmanager
def evaluation_mode(model: Module):
    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad():
            yield
    finally:
        model.train(was_training)


def standardize(x, preprocessing: dict):
    """Raw inputs as the run's network saw them: (x / pixel_max - mean) / std, in float32."""
    scale = preprocessing.get("pixel_max") or 1.0
    return Standardizer.from_dict(preprocessing)(x / xp.float32(scale))


def add_preprocessing(g: GraphBuilder, x: str, preprocessing: dict) -> str:
    if preprocessing.get("pixel_max"):
        x = g.add(
            "Div",
            [x, g.constant("preprocess", "pixel_max", preprocessing["pixel_max"])],
            "preprocess",
        )
    standardizer = Standardizer.from_dict(preprocessing)
    x = g.add("Sub", [x, g.constant("preprocess", "mean", standardizer.mean)], "preprocess")
    return g.add("Div", [x, g.constant("preprocess", "std", standardizer.std)], "preprocess")


def add_probabilities(g: GraphBuilder, logits: str, shape: tuple) -> tuple:
    """Softmax over the outputs, or [1 - p, p] for a single (one-vs-rest) output, as
    ``chainrule predict`` reports them."""
    if shape[-1] != 1:
        return g.add("Softmax", [logits], "probabilities", axis=-1), shape
    p = g.add("Sigmoid", [logits], "probabilities")
    not_p = g.add("Sub", [g.constant("probabilities", "one", 1.0), p], "probabilities")
    return g.add("Concat", [not_p, p], "probabilities", axis=-1), (*shape[:-1], 2)


def probabilities_of(logits):
    """What ``add_probabilities`` computes, computed by chainrule."""
    scores = Tensor._make(logits, False)
    if logits.shape[-1] != 1:
        return as_array(softmax(scores, -1))
    p = as_array(sigmoid(scores))
    return xp.concatenate([1 - p, p], axis=-1)


def add_target_scaling(g: GraphBuilder, output: str, target_scale: tuple) -> str:
    """A regression's output back in the target's units: output * std + mean."""
    mean, std = target_scale
    scaled = g.add("Mul", [output, g.constant("unscale", "std", std)], "unscale")
    return g.add("Add", [scaled, g.constant("unscale", "mean", mean)], "unscale")


def build(
    model,
    x,
    preprocessing=None,
    probabilities=False,
    input_name="input",
    output_name="output",
    target_scale=None,
):
    """The ONNX model of ``model`` and chainrule's outputs on ``x`` (output name -> array)."""
    if not isinstance(model, Sequential):
        raise TypeError(
            f"cr.onnx.export writes Sequential models of known layers; {type(model).__name__} "
            "is not one (put its layers in a cr.nn.Sequential)"
        )
    g = GraphBuilder("float32")
    current = g.input(input_name, x.shape)
    with evaluation_mode(model):
        h = x
        if preprocessing is not None:
            current, h = add_preprocessing(g, current, preprocessing), standardize(x, preprocessing)
        for path, layer in leaves(model):
            if not hasattr(layer, "to_onnx"):
                raise TypeError(
                    f"cr.onnx.export: layer {path} ({type(layer).__name__}) has no ONNX form "
                    "(a layer that has one defines to_onnx)"
                )
            try:
                current = layer.to_onnx(g, current, h.shape, path)
            except ValueError as exc:
                raise ValueError(f"cr.onnx.export: layer {path} ({layer!r}) {exc}") from None
            h = as_array(layer(Tensor._make(h, False)))
    g.output(current, output_name, h.shape)
    expected = {output_name: h}
    if target_scale is not None:
        g.output(add_target_scaling(g, output_name, target_scale), "prediction", h.shape)
        mean, std = target_scale
        expected["prediction"] = (h * xp.float32(std) + xp.float32(mean)).astype(xp.float32)
    if probabilities:
        name, shape = add_probabilities(g, output_name, h.shape)
        g.output(name, "probabilities", shape)
        expected["probabilities"] = probabilities_of(h)
    metadata = {}
    if preprocessing is not None:
        metadata["chainrule.preprocessing"] = json.dumps(preprocessing)
    return g.model(doc=repr(model), metadata=metadata), expected


def as_example(example_input):
    x = xp.asarray(as_array(example_input), dtype=xp.float32)
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(
            f"cr.onnx.export: example_input of shape {x.shape} needs a batch axis (N, ...)"
        )
    return x


def export(
    model: Sequential,
    path,
    example_input,
    *,
    check: bool = True,
    preprocessing: dict | None = None,
    probabilities: bool = False,
    input_name: str = "input",
    output_name: str = "output",
    target_scale: tuple | None = None,
) -> Path:
    """Write ``model`` to ``path`` as an ONNX graph (opset 17, float32, atomically).

    The graph computes what ``model`` computes in evaluation mode (dropout off, batch norm with
    its running statistics). A float64 model is written in float32.

    Args:
        model: a :class:`~chainrule.nn.Sequential` of the layers in ``EMITTERS`` (nested
            Sequentials too).
        path: the ``.onnx`` file to write.
        example_input: a batch (N, ...) of inputs: it fixes every axis but the batch axis, which
            stays symbolic.
        check: compare onnxruntime's outputs on ``example_input`` with chainrule's and refuse to
            write if they differ by more than ``CHECK_TOLERANCE`` (``onnx.checker`` runs always).
        preprocessing: a run's preprocessing (``pixel_max``, ``mean``, ``std`` as in its
            ``model.json``): the graph then takes raw inputs and standardises them first.
        probabilities: add an output ``probabilities`` (softmax of the outputs, or [1 - p, p]
            for a single output).
        input_name, output_name: the graph's input and output names.
        target_scale: ``(mean, std)`` of a regression trained on standardised targets: add an
            output ``prediction``, ``output * std + mean``, in the target's units.

    Returns:
        The path written.

    Raises:
        FileExistsError: ``path`` is something else than an ONNX file chainrule wrote (a run's
            weights, a FIFO, a device): export writes a new file or replaces one it wrote.
    """
    path = Path(path)
    check_destination(path)
    x = as_example(example_input)
    proto, expected = build(
        model, x, preprocessing, probabilities, input_name, output_name, target_scale
    )
    if proto.ByteSize() > MAX_PROTOBUF_BYTES:
        raise ValueError(f"cr.onnx.export: {path}: the model is larger than one ONNX file (2 GiB)")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise RuntimeError(
            f"cr.onnx.export built an invalid graph, please report it: {exc}"
        ) from exc
    data = proto.SerializeToString()
    if check:
        difference = onnxruntime_difference(data, {input_name: x}, expected)
        if not difference <= CHECK_TOLERANCE:
            raise RuntimeError(
                f"cr.onnx.export: onnxruntime's outputs differ from chainrule's by {difference:.2g} "
                f"(relative to the largest output; allowed {CHECK_TOLERANCE}); not written"
            )
    io.atomic_write(path, data)
    return path


def check_destination(path: Path) -> None:
    """Refuse to write over anything but an ONNX file chainrule wrote: the weights of the run
    being exported, another program's file, a FIFO or a device (which the atomic rename would
    replace by a regular file) stay as they are."""
    if not path.exists():
        return
    with open_regular(path, FileExistsError) as f:  # not a folder, a FIFO, a device
        start = f.read(13)
    # Protobuf writes fields in number order: ir_version (field 1, a one-byte varint below 128),
    # then producer_name (field 2), which export sets to "chainrule".
    if not (start[:1] == b"\x08" and start[1:2] < b"\x80" and start[2:] == b"\x12\x09chainrule"):
        raise FileExistsError(
            errno.EEXIST,
            "exists and is not an ONNX file chainrule wrote (export writes a new file or "
            "replaces one it wrote); remove it or choose another name",
            str(path),
        )


def onnxruntime_difference(model, inputs: dict, expected: dict) -> float:
    """The largest |onnxruntime - expected| over the outputs, relative to the largest |expected|.

    ``model`` is an ONNX file's bytes or path; ``inputs`` and ``expected`` map names to arrays.
    """
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # a check on a few examples: no thread pool to spin up
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    outputs = session.run(list(expected), inputs)
    worst = 0.0
    for got, want in zip(outputs, expected.values()):
        if got.shape != want.shape:
            return math.inf
        scale = max(float(xp.abs(want).max(initial=0.0)), 1e-30)
        difference = float(xp.abs(got - want).max(initial=0.0)) / scale
        if math.isnan(difference):  # max() would pass a NaN over: count it as the worst
            return math.inf
        worst = max(worst, difference)
    return worst


def export_run(run_dir, path=None, *, check: bool = True) -> Path:
    """Write a run folder's network, with its preprocessing, to ``path`` (default
    ``RUN_DIR/model.onnx``).

    The graph's input ``input`` takes raw values as ``chainrule predict`` reads them from
    ``.npy`` files (pixels of the data set's scale: 0-255 for MNIST, 0-16 for the digits; a
    table's columns in their own units); its outputs are ``logits`` and ``probabilities``, or
    for a regression ``output`` (on the standardised scale the network was trained on) and
    ``prediction``, the value in the target's units (as ``chainrule predict`` prints it). The
    check runs on random raw inputs.
    """
    model, _, metadata = runs.load_run(run_dir)
    preprocessing = metadata.get("preprocessing")
    if not preprocessing or "input_shape" not in preprocessing:
        raise runs.RunError(f"{run_dir}: model.json has no preprocessing to export")
    shape = (4, *preprocessing["input_shape"])
    rng = new_rng(0)
    scale = preprocessing.get("pixel_max")
    if scale:
        example = rng.uniform(0, scale, shape)
    else:  # around the training data: the recorded mean and spread of each input
        standardizer = Standardizer.from_dict(preprocessing)
        example = standardizer.mean + standardizer.std * rng.standard_normal(shape)
    regression = runs.task_of(metadata) == "regression"
    return export(
        model,
        path or Path(run_dir) / "model.onnx",
        example.astype(xp.float32),
        check=check,
        preprocessing=preprocessing,
        probabilities=not regression,
        output_name="output" if regression else "logits",
        target_scale=(preprocessing["target_mean"], preprocessing["target_std"])
        if regression
        else None,
    )
