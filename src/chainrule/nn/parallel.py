"""``torch.nn.parallel``: ``DataParallel``, a pass-through here (one device, the CPU)."""

from __future__ import annotations

from . import describe
from .module import Module


class DataParallel(Module):
    """Runs ``module`` as it is: PyTorch's DataParallel splits each batch across GPUs, and
    chainrule has one device, so there is nothing to split. It is here so that programs written
    for several GPUs run unchanged: the wrapped module is ``self.module``, and the weights are
    named ``module.<name>`` in ``state_dict()``, as PyTorch's are. (Training on several
    processes is :mod:`chainrule.distributed`.)

    Args:
        module: the module to run.
        device_ids, output_device: accepted; there is one device.
        dim: the batch axis PyTorch would split (accepted).

    Example:
        >>> model = nn.DataParallel(nn.Linear(4, 2))
        >>> model(cr.randn(8, 4)).shape
        (8, 2)
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps a Module, got {type(module).__name__}")
        self.module, self.device_ids, self.output_device, self.dim = (
            module,
            device_ids,
            output_device,
            dim,
        )

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

    @classmethod
    def from_config(cls, config: dict) -> Module:
        return cls(**(dict(config) | {"module": describe.built(config["module"])}))

    def config(self) -> dict:
        return {"module": describe.layer_entry(self.module, "module"), "dim": self.dim}

    @classmethod
    def state_shapes(cls, config: dict) -> dict:
        return describe.entry_shapes(config["module"], "module")

    def output_shape(self, *input_shapes: tuple) -> tuple:
        return self.module.output_shape(*input_shapes)
