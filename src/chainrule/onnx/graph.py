"""Building an ONNX graph by hand: nodes, weights and constants with unique, readable names.

Node and tensor names follow the layer's place in the model: the layer ``3`` of a Sequential
writes nodes ``3/Gemm`` or ``3/Mul``, ``3/Mul_1``..., reads its weights from initializers named
as in ``state_dict()`` (``3.weight``, ``3.bias``), and its other constants are ``3/sqrt2``...
A node's single output tensor has the node's name.
"""

from __future__ import annotations

from ..backend import xp
from . import IR_VERSION, OPSET, require

onnx = require("onnx")
from onnx import helper, numpy_helper  # noqa: E402 - after the install hint


class GraphBuilder:
    """Collects an ONNX graph's inputs, nodes, initializers and outputs.

    ``dtype`` is the floating type of the activations and weights (float32 unless the model is
    float64).
    """

    def __init__(self, dtype="float32"):
        self.dtype = xp.dtype(dtype)
        self.elem_type = helper.np_dtype_to_tensor_dtype(self.dtype)
        self.inputs: list = []
        self.outputs: list = []
        self.nodes: list = []
        self.initializers: list = []
        self._names: set[str] = set()

    def unique(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``... if it is taken."""
        candidate, n = name, 0
        while candidate in self._names:
            n += 1
            candidate = f"{name}_{n}"
        self._names.add(candidate)
        return candidate

    def input(self, name: str, shape: tuple) -> str:
        """A graph input of ``shape`` whose first axis is the symbolic batch size."""
        self.inputs.append(self._value_info(self.unique(name), shape))
        return name

    def output(self, tensor: str, name: str, shape: tuple) -> None:
        """Make ``tensor`` a graph output called ``name`` (renaming it everywhere)."""
        if tensor in (i.name for i in self.inputs):  # nothing computed: pass the input through
            tensor = self.add("Identity", [tensor], name)
        for node in self.nodes:
            node.input[:] = [name if t == tensor else t for t in node.input]
            node.output[:] = [name if t == tensor else t for t in node.output]
        self._names.add(name)
        self.outputs.append(self._value_info(name, shape))

    def weight(self, name: str, array) -> str:
        """An initializer named ``name`` (a state-dict key), in the graph's float type."""
        array = xp.array(array, dtype=self.dtype, order="C")  # ascontiguousarray makes 0-d 1-d
        self.initializers.append(numpy_helper.from_array(array, self.unique(name)))
        return name

    def constant(self, path: str, label: str, value, dtype=None) -> str:
        """A constant that is not a weight (``3/sqrt2``, a reshape's target shape...)."""
        array = xp.array(value, dtype=dtype or self.dtype, order="C")
        name = self.unique(f"{path}/{label}")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def add(self, op_type: str, inputs: list, path: str, **attributes) -> str:
        """Append a node ``path/op_type``; returns its output tensor (same name)."""
        name = self.unique(f"{path}/{op_type}")
        self.nodes.append(helper.make_node(op_type, inputs, [name], name=name, **attributes))
        return name

    def model(self, doc: str = "", metadata: dict | None = None):
        """The finished ``onnx.ModelProto`` (opset 17, IR version 8)."""
        graph = helper.make_graph(
            self.nodes, "chainrule", self.inputs, self.outputs, self.initializers
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="chainrule",
            doc_string=doc,
        )
        # make_model stamps the newest IR version this onnx knows; older runtimes refuse it.
        model.ir_version = IR_VERSION
        helper.set_model_props(model, metadata or {})
        return model

    def _value_info(self, name: str, shape: tuple):
        dims = ["batch", *shape[1:]]
        return helper.make_tensor_value_info(name, self.elem_type, dims)
