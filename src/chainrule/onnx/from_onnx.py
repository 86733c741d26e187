"""Import: an ONNX file as a chainrule Sequential, so the lens can look inside models trained
elsewhere (a PyTorch model through ``torch.onnx.export``, for example).

The file is read as data and never run: it is parsed (protobuf), checked by ``onnx.checker``,
and its sizes are bounded before anything is allocated; weights kept in a separate file (as
PyTorch's default exporter writes them) are read only from the model's own folder. Its graph
must be a chain of layers from its input to its (first) output, made of the operators in
:mod:`chainrule.onnx.operators`; anything else is refused with a message naming the node and
its op type.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from .. import models
from ..backend import xp
from ..files import brief, open_regular, read_capped, regular_file_size
from ..io import ChainruleFileError
from ..nn.module import Sequential
from . import require
from .operators import NODES, PATTERNS, K, Op, Unsupported, as_tuple

onnx = require("onnx")
from google.protobuf.message import DecodeError, Message  # noqa: E402 - protobuf comes with onnx
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after the install hint

MAX_FILE_BYTES = 2**31 - 1  # protobuf's limit for one message
MAX_WEIGHT_BYTES = MAX_FILE_BYTES  # all weights, external ones too: onnx.checker sees one message
MAX_NODES = 100_000
MAX_ELEMENTS = 1 << 28  # in one weight: 1 GiB of float32
MAX_DIMENSION = 1 << 24
MAX_AXES = 8  # of the input: chainrule's layers take at most (N, C, H, W)
MAX_EXAMPLE_ELEMENTS = 1 << 26  # one example, as the input and after each layer
OPSETS = range(13, 26)  # Softmax is per-axis from 13; after 25 nothing is checked yet
FOLDABLE = ("Identity", "Transpose")  # computed on constants here (PyTorch writes weights so)
FLOAT_TYPES = {TensorProto.FLOAT: "float32", TensorProto.DOUBLE: "float64"}
READ_TYPES = {  # the tensor types weights and constants may have (NumPy has a type for each)
    getattr(TensorProto, name)
    for name in ("FLOAT", "DOUBLE", "FLOAT16", "BOOL", "INT8", "INT16", "INT32", "INT64")
    + ("UINT8", "UINT16", "UINT32", "UINT64")
}


def load(path) -> Sequential:
    """Build a chainrule :class:`~chainrule.nn.Sequential` from an ONNX file.

    The model is returned in evaluation mode, as the graph computes (batch norm with its running
    statistics; an ONNX Dropout becomes a ``Dropout`` layer). A file written by ``chainrule
    export`` starts with the run's preprocessing: that is left out (as ``cr.load`` leaves it in
    the run's ``model.json``), so the model takes standardised inputs.

    Each layer's output shape is worked out from its settings, not by running it, so loading
    allocates no activations, however large the file says its examples are.

    Raises:
        ChainruleFileError: the file is missing, not ONNX, too large, or uses an operator or
            setting chainrule's layers do not have (the message names the node).
    """
    graph = Graph(read_model(Path(path)), str(path))
    layers, current, shape = [], graph.input_name, (1, *graph.input_shape[1:])
    current = graph.skip_preprocessing(current)
    while current != graph.output_name:
        layer, current, node = next_layer(graph, current, shape)
        layer.to(graph.dtype).eval()
        shape = output_shape(graph, node, layer, shape)
        layers.append(layer)
    return Sequential(*layers).eval()


def output_shape(graph, node, layer, shape: tuple) -> tuple:
    """The shape (batch first) ``layer``, built from ``node``, gives for inputs of ``shape``."""
    try:
        out = models.output_shape(layer, shape[1:])
    except ValueError as exc:
        graph.refuse(node, f"the layer it becomes does not fit its input ({exc})")
    if out is None:  # a layer without a shape rule: a bug here, not in the file
        raise TypeError(f"cr.onnx.load built a {type(layer).__name__}, whose shape is unknown")
    if math.prod(out) > MAX_EXAMPLE_ELEMENTS:
        graph.refuse(node, f"its output has shape {out} per example, too large")
    return (shape[0], *out)


def read_model(path: Path):
    """The parsed, checked ModelProto, its external data read in: the file, each weight's type
    and shape and all weights together bounded before anything is read or allocated."""
    data = read_capped(path, MAX_FILE_BYTES, "ONNX file", ChainruleFileError)
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, OSError) as exc:
        raise ChainruleFileError(f"{path}: not a valid ONNX model ({brief(exc, 160)})") from None
    if not all_text_is_utf8(model):
        raise ChainruleFileError(f"{path}: not a valid ONNX model (text not in UTF-8)")
    if len(model.graph.node) > MAX_NODES:
        raise ChainruleFileError(f"{path}: {len(model.graph.node)} nodes (at most {MAX_NODES})")
    tensors = [*model.graph.initializer]
    tensors += [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    total = 0
    for tensor in tensors:
        total += tensor_bytes(tensor, path)
        if total > MAX_WEIGHT_BYTES:
            raise ChainruleFileError(
                f"{path}: its weights take more than {MAX_WEIGHT_BYTES:,} bytes (at '"
                f"{brief(tensor.name)}'); cr.onnx.load reads models of up to 2 GiB"
            )
    for tensor in tensors:
        if tensor.data_location == TensorProto.EXTERNAL:
            read_external_data(tensor, path)
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as exc:
        raise ChainruleFileError(f"{path}: not a valid ONNX model ({brief(exc, 160)})") from None
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) not in OPSETS:
        raise ChainruleFileError(
            f"{path}: opset {brief(opsets)}; cr.onnx.load reads opsets "
            f"{OPSETS.start}-{OPSETS.stop - 1}"
        )
    return model


def all_text_is_utf8(model) -> bool:
    """Is every string of ``model`` text? Protobuf hands out a string field that is not UTF-8
    as bytes, which fails later, wherever a name is set or joined."""
    stack = [model]
    while stack:
        for field, value in stack.pop().ListFields():
            if field.message_type is not None:
                stack.extend([value] if isinstance(value, Message) else value)
            elif field.type == field.TYPE_STRING:
                values = [value] if isinstance(value, (str, bytes)) else value
                if any(isinstance(v, bytes) for v in values):
                    return False
    return True


def tensor_bytes(tensor, path: Path) -> int:
    """The bytes a weight's shape and type need; refuses a type or size it will not read."""
    if tensor.data_type not in READ_TYPES:
        known = tensor.data_type in TensorProto.DataType.values()
        kind = TensorProto.DataType.Name(tensor.data_type) if known else "an unknown type"
        raise ChainruleFileError(
            f"{path}: '{brief(tensor.name)}' is {kind} ({tensor.data_type}); cr.onnx.load reads "
            "float, integer and bool tensors"
        )
    dims = list(tensor.dims)
    if any(d < 0 or d > MAX_DIMENSION for d in dims) or math.prod(dims) > MAX_ELEMENTS:
        raise ChainruleFileError(f"{path}: '{brief(tensor.name)}' has shape {dims}, too large")
    return math.prod(dims) * helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def read_external_data(tensor, path: Path) -> None:
    """Read a weight kept in a file beside the model (as PyTorch's default exporter writes
    them): only from a regular file in the model's own folder, exactly the bytes the shape
    needs, checked against the file's size before reading."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    name, location = brief(tensor.name), brief(info.get("location"))
    folder = path.resolve().parent
    data_file = (folder / info.get("location", "")).resolve()
    if data_file.parent != folder:
        raise ChainruleFileError(
            f"{path}: '{name}' is stored in {location!r}; cr.onnx.load reads weight files only "
            "from the model's own folder"
        )
    size = regular_file_size(data_file, ChainruleFileError)
    try:
        offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
    except ValueError:
        raise ChainruleFileError(f"{path}: '{name}': bad external data {brief(info)}") from None
    needed = tensor_bytes(tensor, path)
    if length not in (-1, needed) or offset < 0 or offset + needed > size:
        raise ChainruleFileError(
            f"{path}: '{name}' needs {needed} bytes at offset {offset} of {data_file.name}"
        )
    with open_regular(data_file, ChainruleFileError) as f:
        f.seek(offset)
        tensor.raw_data = f.read(needed)
    if len(tensor.raw_data) != needed:  # it shrank since we looked
        raise ChainruleFileError(f"{path}: {data_file.name} ends before '{name}'")
    tensor.data_location = TensorProto.DEFAULT
    del tensor.external_data[:]


class Graph:
    """What the importer needs of an ONNX graph: its constants (weights, folded), the nodes that
    compute on the input, who produces and who reads each tensor, and the input's shape."""

    def __init__(self, model, source: str):
        self.source = source
        graph = model.graph
        self.constants = {t.name: self.tensor(t, t.name) for t in graph.initializer}
        self.producer: dict = {}
        self.readers: dict = defaultdict(list)
        for index, node in enumerate(graph.node):
            node.name = node.name or f"#{index}"
            self.add(node)
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise ChainruleFileError(
                f"{source}: {len(inputs)} inputs ({brief(', '.join(i.name for i in inputs))}); "
                "a Sequential model has one"
            )
        if not graph.output:
            raise ChainruleFileError(f"{source}: the graph has no output")
        self.input_name, self.input_shape, self.dtype = self.describe_input(inputs[0])
        self.output_name = graph.output[0].name
        self.outputs = {o.name for o in graph.output}
        metadata = {p.key: p.value for p in model.metadata_props}
        self.preprocessed = "chainrule.preprocessing" in metadata

    def refuse(self, node, why: str):
        raise ChainruleFileError(
            f"{self.source}: node '{brief(node.name)}' ({brief(node.op_type, 30)}): {why}"
        )

    def tensor(self, proto, where: str):
        """A TensorProto's values (its type and size were checked by ``read_model``)."""
        try:
            return numpy_helper.to_array(proto)
        except (ValueError, TypeError) as exc:
            raise ChainruleFileError(
                f"{self.source}: '{brief(where)}' cannot be read ({brief(exc, 160)})"
            ) from None

    def add(self, node) -> None:
        """Record a node: a constant (computed here), or a node reading the data."""
        if node.domain not in ("", "ai.onnx"):
            self.refuse(node, f"operator domain '{brief(node.domain)}' is not the standard one")
        inputs = list(dict.fromkeys(t for t in node.input if t))  # a node reads a tensor once
        if node.op_type == "Constant":
            self.constants[node.output[0]] = self.constant_value(node)
        elif node.op_type in FOLDABLE and inputs and all(t in self.constants for t in inputs):
            value = self.constants[inputs[0]]
            if node.op_type == "Transpose":
                perm = self.attributes(node).get("perm")
                try:
                    value = value.transpose(perm) if perm else value.T
                except ValueError as exc:
                    self.refuse(node, f"perm={brief(perm)} does not fit its input ({exc})")
            self.constants[node.output[0]] = value
        else:
            for output in node.output:
                self.producer[output] = node
            for tensor in inputs:
                self.readers[tensor].append(node)

    def constant_value(self, node):
        attribute = node.attribute[0] if len(node.attribute) == 1 else None
        if attribute is None or attribute.name not in (
            "value",
            "value_float",
            "value_floats",
            "value_int",
            "value_ints",
        ):
            self.refuse(node, "only numeric constants are read")
        if attribute.name == "value":
            return self.tensor(attribute.t, node.name)
        return xp.asarray(helper.get_attribute_value(attribute))

    def attributes(self, node) -> dict:
        """A node's attributes as Python values, numbers bounded, strings decoded."""
        values = {}
        for attribute in node.attribute:
            value = helper.get_attribute_value(attribute)
            numbers = value if isinstance(value, list) else [value]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            elif not all(isinstance(v, (int, float)) for v in numbers):
                self.refuse(node, f"attribute {brief(attribute.name)} is not a number or text")
            elif not all(math.isfinite(v) and abs(v) <= MAX_DIMENSION for v in numbers):
                self.refuse(
                    node, f"attribute {brief(attribute.name)}={brief(value)} is out of range"
                )
            values[attribute.name] = value
        return values

    def describe_input(self, value_info) -> tuple:
        tensor_type, name = value_info.type.tensor_type, brief(value_info.name)
        if tensor_type.elem_type not in FLOAT_TYPES:
            raise ChainruleFileError(f"{self.source}: input '{name}' is not float32 or float64")
        if len(tensor_type.shape.dim) > MAX_AXES:
            raise ChainruleFileError(
                f"{self.source}: input '{name}' has {len(tensor_type.shape.dim)} axes; "
                f"cr.onnx.load reads inputs of at most {MAX_AXES}"
            )
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        per_example = dims[1:]
        if not dims or not all(isinstance(d, int) and 0 < d <= MAX_DIMENSION for d in per_example):
            raise ChainruleFileError(
                f"{self.source}: input '{name}' has shape {dims}; every axis but the "
                "first (the batch) needs a fixed size"
            )
        if math.prod(per_example) > MAX_EXAMPLE_ELEMENTS:
            raise ChainruleFileError(
                f"{self.source}: input examples of shape {per_example} are too large"
            )
        return value_info.name, tuple(dims), FLOAT_TYPES[tensor_type.elem_type]

    def skip_preprocessing(self, current: str) -> str:
        """Past the ``preprocess/...`` nodes that ``chainrule export`` puts before the network."""
        while self.preprocessed and len(self.readers[current]) == 1:
            node = self.readers[current][0]
            if not node.name.startswith("preprocess/"):
                break
            current = node.output[0]
        return current


def next_layer(graph: Graph, current: str, shape: tuple) -> tuple:
    """(layer, its output tensor, its last node) for the layer that reads ``current``."""
    readers = graph.readers[current]
    if not readers:
        raise ChainruleFileError(
            f"{graph.source}: nothing reads '{brief(current)}', so the output "
            f"'{brief(graph.output_name)}' does not follow from the input through a chain of layers"
        )
    for pattern in PATTERNS:
        found = find_pattern(graph, pattern.expression, current)
        if found is not None:
            root = found["nodes"][-1]
            try:
                return pattern.build(found, shape), root.output[0], root
            except (Unsupported, ValueError, TypeError) as exc:
                graph.refuse(root, f"reads as {pattern.name}, but {brief(exc, 160)}")
    node = readers[0]
    for reader in readers:
        if reader.op_type == "Shape":
            graph.refuse(
                reader,
                f"reads the shape of '{brief(current)}' at run time (PyTorch writes this for "
                "x.view(x.size(0), -1) or flatten(x, 1, 2)); cr.onnx.load reads reshapes to "
                "a fixed shape: use nn.Flatten() or a constant shape such as view(-1, 400)",
            )
    if len(readers) > 1:
        names = ", ".join(f"'{n.name}' ({n.op_type})" for n in readers)
        raise ChainruleFileError(
            f"{graph.source}: '{brief(current)}' is read by {len(readers)} nodes "
            f"({brief(names, 100)}); cr.onnx.load reads chains of layers (Sequential models), "
            "not branches"
        )
    builder = NODES.get(node.op_type)
    if builder is None:
        graph.refuse(
            node,
            f"not supported (cr.onnx.load reads {len(NODES)} operators: "
            f"{brief(', '.join(sorted(NODES)), 120)}; all in chainrule.onnx.operators.NODES)",
        )
    if node.input[0] != current:
        graph.refuse(
            node,
            f"reads '{brief(current)}' as input {list(node.input).index(current)}, not as its "
            "data input",
        )
    for extra in node.output[1:]:
        if extra and (graph.readers[extra] or extra in graph.outputs):
            graph.refuse(node, f"its output '{brief(extra)}' is used; only the first is read")
    constants = []
    for name in node.input[1:]:
        if name and name not in graph.constants:
            graph.refuse(
                node,
                f"input '{brief(name)}' is computed at run time; it must be a constant "
                "(weights, a fixed shape)",
            )
        constants.append(graph.constants[name] if name else None)
    attributes = graph.attributes(node)
    try:
        return builder(node.op_type, attributes, constants, shape), node.output[0], node
    except (Unsupported, ValueError, TypeError) as exc:  # the layer refuses its arguments
        graph.refuse(node, brief(exc, 160))


def find_pattern(graph: Graph, expression: Op, current: str) -> dict | None:
    """The match of ``expression`` whose input X is ``current`` (constants by name, the nodes
    in ``"nodes"``, the root last), or None. Only a match that nothing outside it reads in the
    middle counts: the nodes must form one layer."""
    frontier, reach = [current], {}
    for _ in range(expression.size()):  # the nodes within reach of the input
        nodes = [n for t in frontier for n in graph.readers[t] if id(n) not in reach]
        reach.update((id(n), n) for n in nodes)
        frontier = [t for n in nodes for t in n.output]
    for root in reach.values():
        found = {"nodes": []}
        if root.op_type == expression.op_type and match(
            graph, expression, root.output[0], current, found
        ):
            inside = {id(n) for n in found["nodes"]}
            if any(id(n) not in inside for n in graph.readers[current]):
                continue
            leaks = [
                t
                for n in found["nodes"]
                if n is not root
                for t in n.output
                if t in graph.outputs or any(id(r) not in inside for r in graph.readers[t])
            ]
            if not leaks:
                return found  # the root is the last node matched
    return None


def match(graph: Graph, pattern, tensor: str, x: str, found: dict) -> bool:
    """Does ``tensor`` compute ``pattern`` from ``x``? Fills ``found`` (constants by name and
    the matched nodes) on success; leaves it as it was otherwise."""
    if pattern == "X":
        return tensor == x
    if isinstance(pattern, K):
        value = graph.constants.get(tensor)
        if value is None or value.dtype.kind != ("i" if pattern.integers else "f"):
            return False
        if pattern.value is not None and not (
            value.size == 1 and math.isclose(float(value.reshape(())), pattern.value, rel_tol=1e-6)
        ):
            return False
        if pattern.name is not None:
            earlier = found.get(pattern.name)
            if earlier is not None and not xp.array_equal(earlier, value):
                return False
            found[pattern.name] = value
        return True
    node = graph.producer.get(tensor)
    if node is None or node.op_type != pattern.op_type or len(node.input) != len(pattern.inputs):
        return False
    attributes = graph.attributes(node)
    if any(as_tuple(attributes.get(name)) != value for name, value in pattern.attributes):
        return False
    orders = [pattern.inputs]
    if node.op_type in ("Add", "Mul"):
        orders.append(pattern.inputs[::-1])
    for inputs in orders:
        trial = {**found, "nodes": list(found["nodes"])}
        if all(match(graph, p, t, x, trial) for p, t in zip(inputs, node.input)):
            if all(n is not node for n in trial["nodes"]):
                trial["nodes"].append(node)
            found.clear()
            found.update(trial)
            return True
    return False
